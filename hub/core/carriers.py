"""Carrier accounts: a tenant's accounts with carrier plugins — settings (secrets sealed, or
``{"$env": …}`` references), the services each may use, enabled or not — made through the API
or declared under ``[[carrier_accounts]]`` in the tenant's config file, every change audited.

Settings are checked against the plugin's schema and the allowed services against what the
account offers before anything is stored, so a typo is a 422 naming the field now rather than
a quote that silently lacks a carrier later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import audit, config_sync, plugin_settings
from hub.core.adapters import CarrierAdapter
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.models import CarrierAccount
from hub.core.secret_box import ENCRYPTED, SecretBox, redact
from hub.settings import ConfigError, TenantSettings

CONFIG = config_sync.Kind(
    section="carrier_accounts",
    noun="carrier account",
    family="carrier",
    model=CarrierAccount,
    entity="carrier_account",
    plugin_fixed="its shipments were bought from that carrier",
)


def create_account(
    session: Session,
    tenant_id: int,
    plugin: type[CarrierAdapter],
    name: str,
    settings: dict[str, Any],
    *,
    box: SecretBox,
    actor: str,
    services: Sequence[str] | None = None,
    enabled: bool = True,
    source: str = "api",
) -> CarrierAccount:
    """A new account; ``services`` limits it to some of what it offers (None: all)."""
    opened = plugin_settings.check(plugin, settings, box=box, source=source)
    allowed = _allowed(plugin(opened), services)
    if session.scalar(
        select(CarrierAccount.id).where(
            CarrierAccount.tenant_id == tenant_id, CarrierAccount.name == name
        )
    ):
        raise Conflict(f"a carrier account named {name!r} already exists")
    account = CarrierAccount(
        tenant_id=tenant_id,
        plugin=plugin.name,
        name=name,
        settings=box.seal(settings, plugin.secret_settings),
        services=allowed,
        enabled=enabled,
        source=source,
    )
    session.add(account)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "carrier_account.create",
        "carrier_account",
        account.id,
        None,
        {
            "plugin": plugin.name,
            "name": name,
            "source": source,
            "enabled": enabled,
            "services": allowed,
            "settings": redact(settings, plugin.secret_settings),
        },
    )
    return account


def list_accounts(session: Session, tenant_id: int) -> list[CarrierAccount]:
    return list(
        session.scalars(
            select(CarrierAccount)
            .where(CarrierAccount.tenant_id == tenant_id)
            .order_by(CarrierAccount.id)
        )
    )


def get_account(session: Session, tenant_id: int, account_id: int) -> CarrierAccount:
    account = session.scalar(
        select(CarrierAccount).where(
            CarrierAccount.tenant_id == tenant_id, CarrierAccount.id == account_id
        )
    )
    if account is None:
        raise NotFound(f"no carrier account {account_id}")
    return account


def update_account(
    session: Session,
    tenant_id: int,
    account_id: int,
    changes: Mapping[str, Any],
    *,
    plugins: Mapping[str, type[CarrierAdapter]],
    box: SecretBox,
    actor: str,
) -> CarrierAccount:
    """Switch an account on or off (``enabled``), change which of its services may be used
    (``services``: a list of codes, or None for all) or its ``settings`` (secrets left out keep
    their stored value). An account declared in a config file can be switched too — disabling
    a carrier in an outage should not wait for a deploy — but a key its file sets wins again
    at the next sync, and its settings are changed in the file only."""
    account = get_account(session, tenant_id, account_id)
    wanted: dict[str, Any] = {}
    if "settings" in changes:
        cls = plugins.get(account.plugin)
        if cls is None:
            raise Invalid(f"settings: carrier plugin {account.plugin!r} is not installed")
        if account.source == "config":
            raise Invalid(
                "settings: this account is declared in the shop's config file; change its"
                " settings there",
                [{"field": "settings", "problem": "is set in the config file"}],
            )
        sealed, _opened = plugin_settings.check_change(
            cls, account.settings, changes["settings"], box=box
        )
        if sealed != account.settings:
            names = sorted(
                k
                for k in set(sealed) | set(account.settings)
                if sealed.get(k) != account.settings.get(k)
            )
            account.settings = sealed
            # Which settings changed, never their values (secrets among them).
            audit.record(
                session,
                tenant_id,
                actor,
                "carrier_account.settings",
                "carrier_account",
                account.id,
                None,
                {"changed": names},
            )
    if "enabled" in changes:
        wanted["enabled"] = bool(changes["enabled"])
    if "services" in changes:
        cls = plugins.get(account.plugin)
        if cls is None:
            raise Invalid(
                f"services: carrier plugin {account.plugin!r} is not installed, so its services"
                " cannot be checked"
            )
        opened = box.open(account.settings, references=account.source == "config")
        wanted["services"] = _allowed(cls(opened), changes["services"])
    changed = {k: v for k, v in wanted.items() if getattr(account, k) != v}
    if changed:
        before = {k: getattr(account, k) for k in changed}
        for key, value in changed.items():
            setattr(account, key, value)
        audit.record(
            session,
            tenant_id,
            actor,
            "carrier_account.update",
            "carrier_account",
            account.id,
            before,
            changed,
        )
    return account


def allowed_services(account: CarrierAccount) -> frozenset[str] | None:
    """The service codes the account may use; None when it may use all it offers."""
    if account.services is None:
        return None
    return frozenset(account.services.get("allowed", ()))


def _allowed(adapter: CarrierAdapter, services: Iterable[str] | None) -> dict[str, Any] | None:
    """The stored form of an allowed-services list, checked against what the account
    offers; None (all services) stays None."""
    if services is None:
        return None
    codes = list(services)
    if not codes:
        raise Invalid(
            "services: list at least one service, or leave services out to allow them all"
            " (to stop using the account, disable it)"
        )
    offered = [s.code for s in adapter.services()]
    # An account that lists nothing (an aggregator: only a quote tells what it offers) takes
    # the codes as given; they filter its quotes all the same.
    # Named by position, not by the code sent: no message repeats what a tenant sent.
    unknown = [f"services[{i}]" for i, code in enumerate(codes) if offered and code not in offered]
    if unknown:
        problem = f"not offered by this {adapter.name} account (it offers: {', '.join(offered)})"
        raise Invalid(
            f"{', '.join(unknown)}: {problem}",
            [{"field": where, "problem": problem} for where in unknown],
        )
    return {"allowed": codes}


def sync_config_accounts(
    session: Session,
    tenant_id: int,
    tenant: TenantSettings,
    carriers: Mapping[str, type[CarrierAdapter]],
    *,
    box: SecretBox,
    file: str,
    actor: str = "config",
) -> list[tuple[str, str]]:
    """Make the tenant's config carrier accounts match ``[[carrier_accounts]]`` in its file,
    by the rules every config-declared plugin instance follows (``hub.core.config_sync``).
    ``services`` and ``enabled`` are the file's when it sets them; left out, what the API set
    stays. An account that left the file is kept (its shipments refer to it); disable it
    through the API."""

    def extra(cls: type[Any], entry: Mapping[str, Any], where: str) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        if "services" in entry:
            adapter = cls(box.open(dict(entry.get("settings", {}))))
            try:
                wanted["services"] = _allowed(adapter, entry["services"])
            except Invalid as exc:
                raise ConfigError(
                    file, f"{where}.services", f"carrier account {entry['name']!r}: {exc}"
                ) from None
        if "enabled" in entry:
            wanted["enabled"] = entry["enabled"]
        return wanted

    return config_sync.sync(
        session,
        tenant_id,
        CONFIG,
        tenant.carrier_accounts,
        carriers,
        box=box,
        file=file,
        actor=actor,
        create=lambda cls, entry: create_account(
            session,
            tenant_id,
            cls,  # type: ignore[arg-type]
            entry["name"],
            dict(entry.get("settings", {})),
            box=box,
            actor=actor,
            services=entry.get("services"),
            enabled=entry.get("enabled", True),
            source="config",
        ),
        extra=extra,
    )


def account_view(
    account: CarrierAccount, cls: type[CarrierAdapter] | None, *, box: SecretBox
) -> dict[str, Any]:
    """An account as the API shows it: never a stored secret (``$env`` references stay
    visible: they name a variable, not its value). Its services are what the account offers
    now, each with its transit estimate and whether this account may use it; ``problem`` says
    why they cannot be listed (the plugin is gone, a referenced variable is unset)."""
    secret_names = (
        cls.secret_settings
        if cls is not None
        else tuple(k for k, v in account.settings.items() if isinstance(v, dict) and ENCRYPTED in v)
    )
    allowed = allowed_services(account)
    services: list[dict[str, Any]] = []
    problem = None
    if cls is None:
        problem = f"carrier plugin {account.plugin!r} is not installed or failed to load"
    else:
        try:
            opened = box.open(account.settings, references=account.source == "config")
            offered = cls(opened).services()
        except Invalid as exc:
            offered, problem = [], exc.message
        services = [
            {
                "code": s.code,
                "name": s.name,
                "transit_days": s.transit_days,
                "allowed": allowed is None or s.code in allowed,
            }
            for s in offered
        ]
    return {
        "id": account.id,
        "plugin": account.plugin,
        "name": account.name,
        "enabled": account.enabled,
        "source": account.source,
        "capabilities": sorted(cls.capabilities) if cls else [],
        "services": services,
        "allowed_services": sorted(allowed) if allowed is not None else None,
        "settings": redact(account.settings, secret_names),
        "problem": problem,
        "created_at": account.created_at.isoformat(),
    }
