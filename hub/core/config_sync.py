"""Plugin instances that a tenant's config file declares — channel connections under
``[[connections]]``, carrier accounts under ``[[carrier_accounts]]`` — made to match the file
by name when the hub syncs (``orderhub init``, ``serve``, ``worker``, ``channels sync``,
``carriers sync``).

Both families follow the same rules, so they live here once: an entry is created when new and
updated when changed; a row that left the file is kept (orders, inboxes and shipments refer to
it) and reported; rows made through the API are never touched nor taken over; a row's plugin
never changes under its name. Secrets must be ``{"$env": NAME}`` references and are stored as
such — a literal would put a secret in a file that is copied around — and every problem is a
ConfigError naming the file and the key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import audit, plugin_settings
from hub.core.adapters import Adapter
from hub.core.errors import Invalid
from hub.core.secret_box import ENV, SecretBox, redact
from hub.settings import ConfigError


@dataclass(frozen=True)
class Kind:
    """What differs between the families a config file declares."""

    section: str  # the file's key: "connections"
    noun: str  # how messages name one: "connection"
    family: str  # the plugin family, as messages name it: "channel"
    model: type[Any]  # the table: has tenant_id, name, plugin, settings, source
    entity: str  # the audit log's entity type: "connection"
    # Why a row cannot change plugin under its name (what refers to it).
    plugin_fixed: str


def sync(
    session: Session,
    tenant_id: int,
    kind: Kind,
    entries: Sequence[Mapping[str, Any]],
    adapters: Mapping[str, type[Adapter]],
    *,
    box: SecretBox,
    file: str,
    actor: str,
    create: Callable[[type[Adapter], Mapping[str, Any]], object],
    extra: Callable[[type[Adapter], Mapping[str, Any], str], dict[str, Any]] | None = None,
) -> list[tuple[str, str]]:
    """Make the tenant's config rows of ``kind`` match ``entries``. Returns (name, "created" |
    "updated" | "unchanged" | "not in the file") per row.

    ``create(cls, entry)`` makes a new row through the family's own service (which audits it).
    ``extra(cls, entry, where)`` gives the columns besides settings that the entry sets (a
    carrier account's services, say), raising ConfigError when one is wrong; a key the entry
    leaves out is not returned, so what the API changed there stays."""
    outcomes: list[tuple[str, str]] = []
    seen: set[str] = set()
    model = kind.model
    for i, entry in enumerate(entries):
        name, settings = entry["name"], dict(entry.get("settings", {}))
        where = f"{kind.section}[{i}]"
        if name in seen:
            raise ConfigError(file, f"{where}.name", f"{name!r} names two {kind.noun}s")
        seen.add(name)
        cls = adapters.get(entry["plugin"])
        if cls is None:
            raise ConfigError(
                file,
                f"{where}.plugin",
                f"no {kind.family} plugin {entry['plugin']!r} is installed and enabled for this"
                f" tenant (available: {', '.join(sorted(adapters)) or 'none'})",
            )
        secret_names = cls.secret_settings
        check_settings(cls, f"{kind.noun} {name!r}", settings, file, where, box)
        wanted = {"settings": box.seal(settings, secret_names)}
        wanted.update(extra(cls, entry, where) if extra else {})
        row = session.scalar(select(model).where(model.tenant_id == tenant_id, model.name == name))
        if row is None:
            create(cls, entry)
            outcomes.append((name, "created"))
            continue
        if row.source != "config":
            raise ConfigError(
                file,
                f"{where}.name",
                f"a {kind.noun} named {name!r} was made through the API; the config file cannot"
                " take it over, so give this one another name",
            )
        if row.plugin != cls.name:
            raise ConfigError(
                file,
                f"{where}.plugin",
                f"{kind.noun} {name!r} is a {row.plugin!r} {kind.noun}; {kind.plugin_fixed},"
                " so a different plugin needs a new name",
            )
        changed = {key: value for key, value in wanted.items() if getattr(row, key) != value}
        if not changed:
            outcomes.append((name, "unchanged"))
            continue
        before = {key: _shown(key, getattr(row, key), secret_names) for key in changed}
        for key, value in changed.items():
            setattr(row, key, value)
        audit.record(
            session,
            tenant_id,
            actor,
            f"{kind.entity}.update",
            kind.entity,
            row.id,
            before,
            {key: _shown(key, value, secret_names) for key, value in changed.items()},
        )
        outcomes.append((name, "updated"))
    left = session.scalars(
        select(model.name).where(
            model.tenant_id == tenant_id, model.source == "config", model.name.not_in(seen)
        )
    )
    outcomes.extend((name, "not in the file") for name in left)
    return outcomes


def _shown(key: str, value: Any, secret_names: tuple[str, ...]) -> Any:
    """A column as the audit log may hold it: settings with their stored secrets hidden."""
    return redact(value, secret_names) if key == "settings" else value


def check_settings(
    cls: type[Adapter],
    label: str,
    settings: Mapping[str, Any],
    file: str,
    where: str,
    box: SecretBox,
) -> None:
    """Refuse literal secrets and settings the plugin would refuse, before anything is
    stored or used; references are resolved here only to validate, never to be kept.
    ``label`` names the entry in messages ("connection 'shop'"), ``where`` its key."""
    for key, value in settings.items():
        ref = value.get(ENV) if isinstance(value, dict) and set(value) == {ENV} else None
        if key in cls.secret_settings and ref is None:
            raise ConfigError(
                file,
                f"{where}.settings.{key}",
                f"is a secret of {label}: write it as a reference,"
                f' {key} = {{ "$env" = "VARIABLE" }}, never as a literal',
            )
        if ref is not None and ref not in os.environ:
            raise ConfigError(
                file,
                f"{where}.settings.{key}",
                f"environment variable {ref} is not set ({label})",
            )
    try:
        plugin_settings.check(cls, settings, box=box, source="config")
    except Invalid as exc:
        raise ConfigError(file, f"{where}.settings", f"{label}: {exc}") from None
