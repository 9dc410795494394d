"""What the hub checks of a plugin instance's settings (a channel connection's, a carrier
account's) before it stores them, wherever they come from.

- Through the API, settings are values and nothing else: ``{"$env": NAME}`` would have the hub
  read its own environment for a tenant (and echo it back in a validation error), and
  ``{"$enc": …}`` is the hub's stored form of a secret. Both are refused at any depth, before
  anything resolves them, with the same answer whether or not such a variable exists.
  References are for the operator's config files only.
- The plugin's JSON Schema, explained by field and rule, never by value.
- Settings the plugin declares as outbound (``outbound_settings``) must name public https
  hosts (``hub.core.outbound``), unless the operator allows the host.

It also publishes what a plugin takes (``published_schema``), for whoever writes the settings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hub.core import outbound
from hub.core.adapters import Adapter
from hub.core.errors import Invalid
from hub.core.schema_errors import MAX_FIELD, MAX_KEY, MAX_PROBLEMS, summary
from hub.core.secret_box import ENCRYPTED, ENV, SecretBox

# What every API caller is told for a reference, whatever the variable: a set and an unset
# name must answer alike, or the answer tells which variables exist.
NOT_A_VALUE = (
    'must be the value itself: {"$env": …} references are read only from the operator\'s'
    " config files"
)
ROOT = "settings"
# The JSON Schema annotation (an "x-" keyword, which validators ignore) that marks a secret
# setting in a published schema.
SECRET_MARK = "x-secret"


def check(
    cls: type[Adapter], settings: Mapping[str, Any], *, box: SecretBox, source: str
) -> dict[str, Any]:
    """Every check, in order; returns the settings opened (secrets decrypted, config
    references resolved) for the caller to build an adapter with. ``source`` is "config"
    for a tenant file, anything else for the API."""
    if source != "config":
        refuse_references(settings)
    opened = box.open(settings, references=source == "config")
    cls.validate_settings(opened)
    check_outbound(cls, opened)
    return opened


def check_change(
    cls: type[Adapter], stored: Mapping[str, Any], sent: Mapping[str, Any], *, box: SecretBox
) -> tuple[dict[str, Any], dict[str, Any]]:
    """New settings sent through the API for an existing record: every setting as sent, and
    each secret the sender left out kept as stored ("leave blank to keep": a secret is never
    shown, so it cannot be sent back). Returns (what to store, sealed; the settings opened);
    the same checks as ``check``."""
    refuse_references(sent)
    merged = dict(sent)
    for name in cls.secret_settings:
        if name not in merged and name in stored:
            merged[name] = stored[name]
    sealed = box.seal(merged, cls.secret_settings)
    opened = box.open(sealed, references=False)
    cls.validate_settings(opened)
    check_outbound(cls, opened)
    return sealed, opened


def published_schema(cls: type[Adapter]) -> dict[str, Any]:
    """The adapter's settings schema as ``GET /api/v1/plugins`` and ``orderhub plugins --json``
    show it: a copy with each of its ``secret_settings`` marked ``"x-secret": true``, so whoever
    writes the settings knows which the hub encrypts and never returns (and which a tenant file
    must give as ``{"$env": …}``). A secret the schema leaves undescribed is added, marked, so
    none goes unmentioned. Built from the class alone: no configured value can appear."""
    schema = copy.deepcopy(cls.settings_schema)
    if cls.secret_settings:
        properties = schema.setdefault("properties", {})
        for name in cls.secret_settings:
            described = properties.get(name)
            properties[name] = {
                **(described if isinstance(described, Mapping) else {}),
                SECRET_MARK: True,
            }
    return schema


def refuse_references(settings: Mapping[str, Any]) -> None:
    """Invalid naming every field of API-sent settings that holds a ``{"$env": …}`` or
    ``{"$enc": …}`` object, at any depth."""
    found = [{"field": where, "problem": NOT_A_VALUE} for where in _references(settings)]
    if found:
        raise Invalid(f"{summary(found)}", found)


def check_outbound(cls: type[Adapter], opened: Mapping[str, Any]) -> None:
    """Invalid naming each outbound setting that is not an https URL (or host) of a public
    host the hub may call; the value is never repeated."""
    found = []
    for name in cls.outbound_settings:
        value = opened.get(name)
        problem = outbound.setting_problem(value) if isinstance(value, str) else None
        if problem is not None:
            found.append({"field": f"{ROOT}.{name}", "problem": problem})
    if found:
        raise Invalid(f"{cls.name} {summary(found)}", found)


def _references(settings: Mapping[str, Any]) -> list[str]:
    """Paths (``settings.zones[0].code``) of the objects that carry a reference key. An
    explicit stack rather than recursion: a body nested as deep as the JSON parser allows
    must not overflow Python's stack."""
    out: list[str] = []
    stack: list[tuple[str, Any]] = [(ROOT, settings)]
    while stack and len(out) < MAX_PROBLEMS:
        where, value = stack.pop()
        if isinstance(value, Mapping):
            if ENV in value or ENCRYPTED in value:
                out.append(where)
                continue
            stack.extend((_cap(f"{where}.{_cap(str(k), MAX_KEY)}"), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((_cap(f"{where}[{i}]"), v) for i, v in enumerate(value))
    return sorted(out)


def _cap(text: str, limit: int = MAX_FIELD) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
