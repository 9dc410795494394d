"""A form from a plugin's settings schema, and the settings back from the posted form.

PyPI has no maintained framework-neutral renderer from JSON Schema to server-side HTML, so
this covers a declared subset: string, integer, number, boolean, ``enum``, ``oneOf`` of
``const`` and arrays of scalars (a textarea, one value per line). A property outside the
subset is shown as a JSON text field, so no plugin makes the page fail. Secrets
(``x-secret``, ``writeOnly`` or ``x-orderhub-secret``) are password fields, never
pre-filled. Checking the values stays the API's job (the same schema, the same messages).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text, password, integer, number, checkbox, select, lines, json
    required: bool
    hint: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    default: Any = None


def is_secret(spec: dict[str, Any]) -> bool:
    return bool(spec.get("x-secret") or spec.get("writeOnly") or spec.get("x-orderhub-secret"))


def fields(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required") or ())
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        label = spec.get("title") or name.replace("_", " ").capitalize()
        hint = spec.get("description") or ""
        kind, choices = _kind(spec)
        out.append(Field(name, label, kind, name in required, hint, choices, spec.get("default")))
    return out


def _kind(spec: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    if "enum" in spec:
        return "select", [(str(v), str(v)) for v in spec["enum"]]
    if "oneOf" in spec and all(isinstance(o, dict) and "const" in o for o in spec["oneOf"]):
        return "select", [(str(o["const"]), str(o.get("title", o["const"]))) for o in spec["oneOf"]]
    kind = spec.get("type")
    if kind == "string":
        return ("password" if is_secret(spec) else "text"), []
    if kind in ("integer", "number"):
        return kind, []
    if kind == "boolean":
        return "checkbox", []
    if kind == "array" and (spec.get("items") or {}).get("type") in ("string", "integer"):
        return "lines", []
    return "json", []


def settings_from(
    form: MultiDict[str, str], schema: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings a form posted, cast to the schema's types; blanks are left out (so an
    optional field keeps its default), and what cannot be cast is an error for its field."""
    settings: dict[str, Any] = {}
    errors: dict[str, str] = {}
    props = schema.get("properties") or {}
    for f in fields(schema):
        raw = form.get(f"settings.{f.name}", "")
        if f.kind == "checkbox":
            if f"settings.{f.name}" in form:
                settings[f.name] = raw in ("on", "true", "1")
            continue
        if raw.strip() == "":
            continue
        try:
            settings[f.name] = _cast(f.kind, raw, props[f.name])
        except ValueError as exc:
            errors[f"settings.{f.name}"] = str(exc)
    return settings, errors


def _cast(kind: str, raw: str, spec: dict[str, Any]) -> Any:
    if kind == "integer":
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind == "number":
        try:
            return float(raw.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    if kind == "lines":
        items = [line.strip() for line in raw.splitlines() if line.strip()]
        if (spec.get("items") or {}).get("type") == "integer":
            return [_cast("integer", i, {}) for i in items]
        return items
    if kind == "select":
        for value in spec.get("enum") or [o.get("const") for o in spec.get("oneOf") or []]:
            if str(value) == raw:
                return value
        raise ValueError("is not one of the choices")
    if kind == "json":
        try:
            return json.loads(raw)
        except ValueError:
            raise ValueError("must be JSON") from None
    return raw
