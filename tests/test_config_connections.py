"""Connections written in config/tenants/<slug>.toml: created and updated by name when the
hub syncs (``orderhub channels sync``, ``init``, ``serve``, ``worker``), secrets kept as
``{"$env": …}`` references, every mistake a ConfigError naming the file and the key, and
connections made through the API left alone."""

from __future__ import annotations

import hmac
import json
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner, Result
from conftest import Api
from sqlalchemy import select

from hub import hookimpl
from hub import plugins as plugins_module
from hub import settings as settings_module
from hub.cli import cli
from hub.core.adapters import StubChannel
from hub.core.models import AuditEntry, Connection
from hub.runtime import Runtime
from hub.settings import ConfigError

SECRET = "from-the-environment"


class RegionalShop(StubChannel):
    """The Stub channel with a non-secret setting beside its secret."""

    name = "regional"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "minLength": 8},
            "region": {"enum": ["eu", "us"]},
        },
        "required": ["secret", "region"],
        "additionalProperties": False,
    }


class ShopPlugin:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [RegionalShop, StubChannel]


@pytest.fixture(autouse=True)
def _shop_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed as a third-party plugin would be, so the app and the CLI both see it."""
    original = plugins_module.entry_points
    ep = EntryPoint(name="regional", value="test_config_connections:ShopPlugin", group="orderhub")
    monkeypatch.setattr(
        plugins_module,
        "entry_points",
        lambda *, group: [*original(group=group), *([ep] if group == "orderhub" else [])],
    )
    monkeypatch.delenv("ORDERHUB_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("SHOP_SECRET", SECRET)


@pytest.fixture
def acme_file(config_dir: Path) -> Path:
    return config_dir / "tenants" / "acme.toml"


def shop(
    name: str = "eu-shop", region: str = '"eu"', secret: str = '{ "$env" = "SHOP_SECRET" }'
) -> str:
    """One [[connections]] entry of the regional channel, values written as TOML."""
    return (
        f'[[connections]]\nname = "{name}"\nplugin = "regional"\n'
        f"[connections.settings]\nregion = {region}\nsecret = {secret}\n"
    )



def sync(env: dict[str, str | None], command: tuple[str, ...] = ("channels", "sync")) -> Result:
    return CliRunner().invoke(cli, list(command), env=env)


def rows(runtime: Runtime) -> dict[str, Connection]:
    with runtime.session() as session:
        return {c.name: c for c in session.scalars(select(Connection))}


def audit(runtime: Runtime, action: str) -> list[AuditEntry]:
    with runtime.session() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def config_error(result: Result) -> str:
    assert isinstance(result.exception, ConfigError), result.output
    return str(result.exception)


def test_loading_settings_keeps_connection_references_unresolved(config_dir: Path) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(shop())
    # Not even set: the file still loads; the sync is where a missing variable is reported.
    tenant = settings_module.load_tenants(config_dir, env={})["acme"]
    assert tenant.connections == [
        {
            "name": "eu-shop",
            "plugin": "regional",
            "settings": {"region": "eu", "secret": {"$env": "SHOP_SECRET"}},
        }
    ]


def test_sync_creates_the_connection_and_keeps_its_secret_a_reference(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    acme_file.write_text(shop())

    result = sync(cli_env)

    assert result.exit_code == 0, result.output
    assert "config connection acme/eu-shop: created" in result.output
    _, listed = api.get("/connections")
    [shown] = listed["items"]
    assert shown["source"] == "config" and shown["capabilities"] == ["push", "refund"]
    assert shown["settings"] == {"region": "eu", "secret": {"$env": "SHOP_SECRET"}}
    stored = rows(runtime)["eu-shop"]
    assert stored.settings == {"region": "eu", "secret": {"$env": "SHOP_SECRET"}}
    assert SECRET not in json.dumps(stored.settings)
    [created] = audit(runtime, "connection.create")
    assert created.actor == "config" and created.after["source"] == "config"
    # Resolved only when the adapter is built: a delivery signed with the variable's value
    # is accepted.
    body = b'{"id": "1", "updated_at": "2026-11-01T10:00:00+00:00", "lines": []}'
    response = api.client.post(
        f"/hooks/acme/{stored.id}",
        data=body,
        headers={
            "X-Stub-Signature": hmac.new(SECRET.encode(), body, "sha256").hexdigest(),
            "X-Stub-Delivery": "d-1",
        },
    )
    assert response.status_code == 200


def test_sync_updates_what_changed_and_leaves_the_rest(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    acme_file.write_text(shop() + shop("us-shop", region='"us"'))
    assert sync(cli_env).exit_code == 0
    us_shop = rows(runtime)["us-shop"]
    assert api.post(f"/connections/{us_shop.id}/pause")[0] == 200  # pausing is the API's

    acme_file.write_text(shop(region='"us"') + shop("us-shop", region='"us"'))
    result = sync(cli_env)

    assert result.exit_code == 0, result.output
    assert "config connection acme/eu-shop: updated" in result.output
    assert "config connection acme/us-shop: unchanged" in result.output
    now = rows(runtime)
    assert now["eu-shop"].settings["region"] == "us"
    assert now["us-shop"].paused is True  # the sync changes settings, not the pause
    [updated] = audit(runtime, "connection.update")
    assert (updated.actor, updated.entity_id) == ("config", str(now["eu-shop"].id))
    assert updated.before["settings"]["region"] == "eu"
    assert updated.after["settings"]["region"] == "us"

    acme_file.write_text(shop(region='"us"'))
    result = sync(cli_env)
    assert "config connection acme/eu-shop: unchanged" in result.output
    assert "config connection acme/us-shop: not in the file" in result.output
    assert "us-shop" in rows(runtime)  # kept: its inbox and orders refer to it
    assert len(audit(runtime, "connection.update")) == 1


def test_a_literal_secret_is_refused_naming_the_file_and_key(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    acme_file.write_text(shop() + shop("leaky", secret='"hunter2-hunter2"'))

    message = config_error(sync(cli_env))

    assert message.startswith(f"{acme_file}: connections[1].settings.secret: ")
    assert "'leaky'" in message and '"$env"' in message
    assert rows(runtime) == {}  # all or nothing: eu-shop was not created either


@pytest.mark.parametrize(
    ("entry", "where", "says"),
    [
        (shop(region='"mars"'), "connections[0].settings", "region"),
        (
            shop(secret='{ "$env" = "NO_SUCH_VARIABLE" }'),
            "connections[0].settings.secret",
            "environment variable NO_SUCH_VARIABLE is not set",
        ),
        (
            shop().replace('"regional"', '"nope"'),
            "connections[0].plugin",
            "no channel plugin 'nope'",
        ),
        (shop() + shop(), "connections[1].name", "'eu-shop' names two connections"),
    ],
    ids=["invalid setting", "unset variable", "unknown plugin", "same name twice"],
)
def test_a_bad_connection_is_a_config_error(
    api: Api,
    runtime: Runtime,
    acme_file: Path,
    cli_env: dict[str, str | None],
    entry: str,
    where: str,
    says: str,
) -> None:
    acme_file.write_text(entry)
    message = config_error(sync(cli_env))
    assert message.startswith(f"{acme_file}: {where}: ")
    assert says in message
    assert rows(runtime) == {}


def test_connections_made_through_the_api_are_never_touched(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    status, _ = api.post(
        "/connections", {"plugin": "stub", "name": "web", "settings": {"secret": "typed-in"}}
    )
    assert status == 201
    before = rows(runtime)["web"].settings
    acme_file.write_text(shop())

    assert sync(cli_env).exit_code == 0

    assert rows(runtime)["web"].settings == before
    assert rows(runtime)["web"].source == "api"
    assert audit(runtime, "connection.update") == []
    # A config entry cannot take an API connection over by using its name.
    acme_file.write_text(shop("web"))
    message = config_error(sync(cli_env))
    assert message.startswith(f"{acme_file}: connections[0].name: ")
    assert "made through the API" in message
    assert rows(runtime)["web"].plugin == "stub"


def test_init_syncs_config_connections(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    acme_file.write_text(shop())
    (acme_file.parent / "newcomer.toml").write_text(shop())  # a tenant not added yet

    result = sync(cli_env, ("init",))

    assert result.exit_code == 0, result.output
    assert "config connection acme/eu-shop: created" in result.output
    assert "config connection newcomer/(all): skipped: run 'orderhub tenants add newcomer'" in (
        result.output
    )
    assert rows(runtime)["eu-shop"].source == "config"


def test_a_connection_written_without_settings_is_checked_as_empty_settings(
    api: Api, runtime: Runtime, acme_file: Path, cli_env: dict[str, str | None]
) -> None:
    """No ``[connections.settings]`` table is no settings at all: the plugin's schema says
    what is missing, as for any other mistake, rather than the sync failing on it."""
    acme_file.write_text('[[connections]]\nname = "bare"\nplugin = "regional"\n')
    message = config_error(sync(cli_env))
    assert message == (
        f"{acme_file}: connections[0].settings: connection 'bare': regional settings.secret:"
        " is required (and 1 more problem)"
    )
    assert rows(runtime) == {}
