"""Carrier accounts: made through the API (settings checked against the plugin's schema,
secrets sealed and never shown, services limited to what the account offers) or declared in
a tenant's config file (kept as ``$env`` references, synced by name), every change audited."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from conftest import Api, watch_secret
from sqlalchemy import select

from hub import hookimpl
from hub import plugins as plugins_module
from hub.cli import cli
from hub.core.adapters import CarrierAdapter, Rate, Service, ShipmentRequest
from hub.core.models import AuditEntry, CarrierAccount
from hub.runtime import Runtime
from hub.settings import ConfigError

API_KEY = "sk_live_not-for-your-eyes"


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(API_KEY)


class Keyed(CarrierAdapter):
    """A carrier whose account has a secret key and offers three services."""

    name = "keyed"
    capabilities = frozenset({"rating"})
    secret_settings = ("api_key",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "api_key": {"type": "string", "minLength": 8},
            "account_number": {"type": "string", "pattern": "^[A-Z0-9]{6}$"},
        },
        "required": ["api_key", "account_number"],
        "additionalProperties": False,
    }

    def services(self) -> list[Service]:
        return [
            Service("ground", "Ground", 5),
            Service("express", "Express", 2),
            Service("overnight", "Overnight", 1),
        ]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        return []


class KeyedPlugin:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [Keyed]


@pytest.fixture(autouse=True)
def _keyed_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed as a third-party plugin would be, so both the app and the CLI see it."""
    original = plugins_module.entry_points
    ep = EntryPoint(name="keyed", value="test_carrier_accounts:KeyedPlugin", group="orderhub")
    monkeypatch.setattr(
        plugins_module,
        "entry_points",
        lambda *, group: [*original(group=group), *([ep] if group == "orderhub" else [])],
    )
    monkeypatch.delenv("ORDERHUB_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("KEYED_API_KEY", API_KEY)


def account(name: str = "main", **extra: Any) -> dict[str, Any]:
    return {
        "plugin": "keyed",
        "name": name,
        "settings": {"api_key": API_KEY, "account_number": "A1B2C3"},
        **extra,
    }


def audit(runtime: Runtime, action: str) -> list[AuditEntry]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def stored(runtime: Runtime) -> dict[str, CarrierAccount]:
    with runtime.session() as session:
        return {a.name: a for a in session.scalars(select(CarrierAccount))}


# --- the API ---------------------------------------------------------------------------------


def test_an_account_is_created_with_its_services_and_its_secret_is_never_shown(
    api: Api, runtime: Runtime
) -> None:
    status, made = api.post("/carrier-accounts", account())

    assert status == 201, made
    assert made["plugin"] == "keyed" and made["name"] == "main"
    assert made["enabled"] is True and made["source"] == "api"
    assert made["capabilities"] == ["rating"]
    assert made["settings"] == {"api_key": "********", "account_number": "A1B2C3"}
    assert made["services"] == [
        {"code": "ground", "name": "Ground", "transit_days": 5, "allowed": True},
        {"code": "express", "name": "Express", "transit_days": 2, "allowed": True},
        {"code": "overnight", "name": "Overnight", "transit_days": 1, "allowed": True},
    ]
    assert made["allowed_services"] is None
    # Neither the answers, the stored row nor the audit log hold the key in clear.
    status, listed = api.get("/carrier-accounts")
    assert status == 200 and [a["id"] for a in listed["items"]] == [made["id"]]
    assert api.get(f"/carrier-accounts/{made['id']}") == (200, made)
    row = stored(runtime)["main"]
    assert API_KEY not in json.dumps(row.settings)
    [created] = audit(runtime, "carrier_account.create")
    assert created.actor == "admin" and created.after["settings"]["api_key"] == "********"
    for answer in (made, listed):
        assert API_KEY not in json.dumps(answer)
    # ... but the adapter built for quoting gets it.
    assert runtime.carrier_adapter(row).settings["api_key"] == API_KEY


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            account(settings={"api_key": API_KEY, "account_number": "lower"}),
            "keyed settings.account_number: must match the pattern",
        ),
        (account(settings={"api_key": API_KEY}), "keyed settings.account_number: is required"),
        (account(plugin="nope"), "plugin: no carrier plugin 'nope' is enabled"),
        (account(services=["ground", "freight"]), "services[1]: not offered by this keyed"),
    ],
    ids=["setting invalid", "setting missing", "unknown plugin", "unknown service"],
)
def test_a_bad_account_is_refused_naming_what_is_wrong(
    api: Api, runtime: Runtime, body: dict[str, Any], says: str
) -> None:
    status, error = api.post("/carrier-accounts", body)

    assert status == 422, error
    assert says in error["error"]["message"]
    assert stored(runtime) == {}


def test_a_name_is_unique_within_a_tenant_only(api: Api) -> None:
    assert api.post("/carrier-accounts", account())[0] == 201
    status, error = api.post("/carrier-accounts", account())
    assert status == 409 and "'main' already exists" in error["error"]["message"]
    assert api.post("/carrier-accounts", account(), token=api.tokens["stranger"])[0] == 201


def test_services_can_be_limited_and_the_account_disabled_each_change_audited(
    api: Api, runtime: Runtime
) -> None:
    _, made = api.post("/carrier-accounts", account(services=["ground"]))
    assert [s["allowed"] for s in made["services"]] == [True, False, False]
    path = f"/carrier-accounts/{made['id']}"

    status, changed = api.patch(path, {"services": ["express", "overnight"]})
    assert status == 200
    assert changed["allowed_services"] == ["express", "overnight"]
    assert [s["allowed"] for s in changed["services"]] == [False, True, True]

    status, error = api.patch(path, {"services": ["teleport"]})
    assert status == 422 and "services[0]: not offered" in error["error"]["message"]
    assert "teleport" not in json.dumps(error)
    assert api.patch(path, {"services": []})[0] == 422  # disable it instead

    status, changed = api.patch(path, {"services": None, "enabled": False})
    assert status == 200
    assert changed["enabled"] is False and changed["allowed_services"] is None
    assert all(s["allowed"] for s in changed["services"])
    assert api.patch(path, {"enabled": False})[0] == 200  # no change, nothing to audit

    updates = audit(runtime, "carrier_account.update")
    assert [(u.before, u.after) for u in updates] == [
        (
            {"services": {"allowed": ["ground"]}},
            {"services": {"allowed": ["express", "overnight"]}},
        ),
        (
            {"services": {"allowed": ["express", "overnight"]}, "enabled": True},
            {"services": None, "enabled": False},
        ),
    ]


def test_settings_change_keeping_a_secret_left_out(api: Api, runtime: Runtime) -> None:
    _, made = api.post("/carrier-accounts", account())
    path = f"/carrier-accounts/{made['id']}"

    status, changed = api.patch(path, {"settings": {"account_number": "Z9Y8X7"}})

    assert status == 200, changed
    assert changed["settings"] == {"api_key": "********", "account_number": "Z9Y8X7"}
    row = stored(runtime)["main"]
    assert runtime.carrier_adapter(row).settings == {"api_key": API_KEY,
                                                      "account_number": "Z9Y8X7"}
    [entry] = audit(runtime, "carrier_account.settings")
    assert entry.after == {"changed": ["account_number"]}  # names, never values
    # a new secret replaces the old one, sealed
    status, _ = api.patch(path, {"settings": {"api_key": "another-key-123",
                                              "account_number": "Z9Y8X7"}})
    assert status == 200
    row = stored(runtime)["main"]
    assert "another-key-123" not in json.dumps(row.settings)
    assert runtime.carrier_adapter(row).settings["api_key"] == "another-key-123"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"account_number": "lower"}, "settings.account_number: must match the pattern"),
        ({"api_key": {"$env": "KEYED_API_KEY"}, "account_number": "A1B2C3"}, "api_key"),
        ({"api_key": "short", "account_number": "A1B2C3"}, "settings.api_key"),
        ({}, "settings.account_number: is required"),
    ],
    ids=["bad value", "a reference", "bad secret", "required left out"],
)
def test_a_bad_settings_change_is_refused_and_nothing_changes(
    api: Api, runtime: Runtime, settings: dict[str, Any], says: str
) -> None:
    _, made = api.post("/carrier-accounts", account())
    before = stored(runtime)["main"].settings

    status, error = api.patch(f"/carrier-accounts/{made['id']}", {"settings": settings})

    assert status == 422, error
    assert says in error["error"]["message"]
    assert "short" not in json.dumps(error)  # a refused secret is not repeated either
    assert stored(runtime)["main"].settings == before


def test_another_tenants_account_is_not_found(api: Api) -> None:
    _, made = api.post("/carrier-accounts", account())
    stranger = api.tokens["stranger"]
    assert api.get(f"/carrier-accounts/{made['id']}", token=stranger)[0] == 404
    assert (
        api.patch(f"/carrier-accounts/{made['id']}", {"enabled": False}, token=stranger)[0] == 404
    )
    assert api.get("/carrier-accounts", token=stranger) == (
        200,
        {"items": [], "total": 0},
    )


# --- the config file -------------------------------------------------------------------------


def entry(
    name: str = "ups-main",
    key: str = '{ "$env" = "KEYED_API_KEY" }',
    extra: str = "",
) -> str:
    """One [[carrier_accounts]] entry of the keyed carrier, written as TOML."""
    return (
        f'[[carrier_accounts]]\nname = "{name}"\nplugin = "keyed"\n{extra}'
        f'[carrier_accounts.settings]\napi_key = {key}\naccount_number = "A1B2C3"\n'
    )


@pytest.fixture
def acme_file(config_dir: Path) -> Path:
    return config_dir / "tenants" / "acme.toml"



def sync(env: dict[str, str | None], command: tuple[str, ...] = ("carriers", "sync")) -> Result:
    return CliRunner().invoke(cli, list(command), env=env)


def config_error(result: Result) -> str:
    assert isinstance(result.exception, ConfigError), result.output
    return str(result.exception)


def test_config_accounts_are_synced_by_name_keeping_secrets_as_references(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    acme_file.write_text(entry() + entry("keyed-express", extra='services = ["express"]\n'))

    result = sync(cli_env)

    assert result.exit_code == 0, result.output
    assert "config carrier account acme/ups-main: created" in result.output
    assert "config carrier account acme/keyed-express: created" in result.output
    _, listed = api.get("/carrier-accounts")
    main, express = listed["items"]
    assert main["source"] == "config"
    assert main["settings"]["api_key"] == {"$env": "KEYED_API_KEY"}
    assert express["allowed_services"] == ["express"]
    assert API_KEY not in json.dumps(stored(runtime)["ups-main"].settings)

    # An operator disables one through the API; a file that does not say otherwise keeps it
    # so, while what the file does set wins.
    assert api.patch(f"/carrier-accounts/{main['id']}", {"enabled": False})[0] == 200
    status, error = api.patch(f"/carrier-accounts/{main['id']}",
                              {"settings": {"account_number": "B2C3D4"}})
    assert status == 422 and "config file" in error["error"]["message"]
    acme_file.write_text(entry() + entry("keyed-express", extra="enabled = false\n"))
    result = sync(cli_env)
    assert "config carrier account acme/ups-main: unchanged" in result.output
    assert "config carrier account acme/keyed-express: updated" in result.output
    now = stored(runtime)
    assert now["ups-main"].enabled is False
    assert now["keyed-express"].enabled is False
    assert now["keyed-express"].services == {"allowed": ["express"]}  # left out: kept
    [*_, updated] = audit(runtime, "carrier_account.update")
    assert updated.actor == "config"
    assert (updated.before, updated.after) == ({"enabled": True}, {"enabled": False})

    acme_file.write_text(entry())
    result = sync(cli_env)
    assert "config carrier account acme/keyed-express: not in the file" in result.output
    assert "keyed-express" in stored(runtime)  # kept: shipments may refer to it


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        (entry(key='"sk_live_in_the_file"'), "carrier_accounts[0].settings.api_key", '"$env"'),
        (
            entry(extra='services = ["teleport"]\n'),
            "carrier_accounts[0].services",
            "services[0]: not offered",
        ),
        (
            entry().replace('"A1B2C3"', '"bad"'),
            "carrier_accounts[0].settings",
            "account_number",
        ),
        (entry() + entry(), "carrier_accounts[1].name", "'ups-main' names two carrier accounts"),
        (
            entry().replace('"keyed"', '"nope"'),
            "carrier_accounts[0].plugin",
            "no carrier plugin 'nope'",
        ),
    ],
    ids=["literal secret", "unknown service", "invalid setting", "same name twice", "no plugin"],
)
def test_a_bad_config_account_is_a_config_error_naming_file_and_key(
    api: Api,
    runtime: Runtime,
    acme_file: Path,
    cli_env: dict[str, str | None],
    text: str,
    where: str,
    says: str,
) -> None:
    acme_file.write_text(text)

    message = config_error(sync(cli_env))

    assert message.startswith(f"{acme_file}: {where}: "), message
    assert says in message
    assert stored(runtime) == {}


def test_the_file_cannot_take_over_an_api_account_and_init_syncs_accounts(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    assert api.post("/carrier-accounts", account("ups-main"))[0] == 201
    acme_file.write_text(entry())
    message = config_error(sync(cli_env))
    assert "made through the API" in message
    assert stored(runtime)["ups-main"].source == "api"

    acme_file.write_text(entry("from-init"))
    result = sync(cli_env, ("init",))
    assert result.exit_code == 0, result.output
    assert "config carrier account acme/from-init: created" in result.output
    assert stored(runtime)["from-init"].source == "config"


def test_the_demo_tenant_can_quote_with_its_rate_card_at_once(
    api: Api, cli_env: dict[str, str | None]
) -> None:
    result = sync(cli_env, ("init", "--demo"))
    assert result.exit_code == 0, result.output
    [token] = [line.split(": ", 1)[1] for line in result.output.splitlines() if "token" in line]

    status, listed = api.get("/carrier-accounts", token=token)
    assert status == 200
    [card] = listed["items"]
    assert (card["plugin"], card["name"], card["enabled"]) == ("table_rate", "table-rate", True)
    assert [s["code"] for s in card["services"]] == ["ground", "express"]
    shipment = {
        "origin": {"country": "US", "postcode": "07101"},
        "destination": {"country": "US", "postcode": "10001"},
        "parcels": [{"weight_kg": "0.8"}],
    }
    status, quoted = api.post("/rates", shipment, token=token)
    assert status == 200, quoted
    assert [(r["service"], r["amount"]) for r in quoted["rates"]] == [
        ("ground", "6.50"),
        ("express", "14.90"),
    ]
