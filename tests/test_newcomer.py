"""What a newcomer meets first: the quick start on a busy port, a pip-installed demo with no
``config/`` folder, a plugin's settings discoverable before writing them, a typo in a plugin
name, and docs that point only at files the repository has."""

from __future__ import annotations

import json
import re
import socket
import sys
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import HUB_SECRET_KEY, ORDER, Api, hub_env, watch_secret
from flask import Flask

from hub import create_app, hookimpl
from hub.cli import cli, main
from hub.core.adapters import StubNotifier
from hub.settings import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SHOP_SECRET = "canary-shop-secret-3c9a71f0"


def run_main(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> int:
    """``orderhub ARGS`` as the console script runs it (main(), not the bare click group), so
    what reaches the terminal on a failure is what a user sees."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["orderhub", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return stopped.value.code  # type: ignore[return-value]


# --- serve on a busy port --------------------------------------------------------------------


@SQLITE_ONLY
def test_serve_on_a_busy_port_says_so_in_one_line_and_exits_2(
    db_url: str, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # Given another server holding a port
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # When the hub is asked to serve on it
        code = run_main(
            monkeypatch, hub_env(db_url, config_dir, tmp_path), "serve", "--port", str(port)
        )
    out, err = capsys.readouterr()
    # Then one line says what to do, nothing claimed to listen, and the exit code is 2
    assert code == 2
    assert err.strip().splitlines() == [
        f"port {port} on 127.0.0.1 is in use: stop the other server or pass --port"
    ]
    assert "listening" not in out and "worker running" not in out
    assert "Traceback" not in out + err


# --- GET /api/v1/plugins and orderhub plugins --json -----------------------------------------


@pytest.fixture
def shop_config(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant acme has a Shopify connection in its file, its secret from the environment."""
    monkeypatch.setenv("ACME_SHOP_SECRET", SHOP_SECRET)
    watch_secret(SHOP_SECRET)
    (config_dir / "tenants" / "acme.toml").write_text(
        '[[connections]]\nname = "shop"\nplugin = "shopify"\n'
        '[connections.settings]\nshop_domain = "acme.myshopify.com"\n'
        'secret = { "$env" = "ACME_SHOP_SECRET" }\n'
    )


@pytest.fixture
def shop(shop_config: None, api: Api, db_url: str, config_dir: Path, tmp_path: Path) -> None:
    """The connection made from the file, as ``orderhub init`` / ``serve`` would."""
    result = CliRunner().invoke(
        cli, ["channels", "sync"], env=hub_env(db_url, config_dir, tmp_path)
    )
    assert "connection acme/shop: created" in result.output, result.output


@SQLITE_ONLY
@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_every_user_finds_each_plugins_settings_schema_with_secrets_marked(
    shop: None, api: Api, role: str
) -> None:
    status, body = api.get("/plugins", token=api.tokens[role])
    assert status == 200, body
    found = {(i["kind"], i["name"]): i for i in body["items"]}
    assert {("channel", "shopify"), ("carrier", "ups"), ("notifier", "log")} <= set(found)
    assert body["total"] == len(body["items"])
    shopify = found[("channel", "shopify")]
    assert shopify["description"].startswith("Shopify")
    assert shopify["enabled"] is True
    assert "fulfilment" in shopify["capabilities"]
    properties = shopify["settings_schema"]["properties"]
    secret = {n for n, p in properties.items() if p.get("x-secret") is True}
    assert secret == {"secret", "previous_secret", "access_token"}
    assert "shop_domain" in properties and "x-secret" not in properties["shop_domain"]
    assert {n for n, p in found[("carrier", "ups")]["settings_schema"]["properties"].items()
            if p.get("x-secret")} == {"client_secret", "push_credential"}
    # the configured connection's values never appear, only the plugin's declarations
    text = json.dumps(body)
    assert SHOP_SECRET not in text and "acme.myshopify.com" not in text
    # where plugins load from and what failed is the operator's business: admins only
    assert ("modules" in body, "failures" in body) == ((role == "admin",) * 2)


@SQLITE_ONLY
def test_plugins_route_is_in_the_openapi_document(client: Any) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    [path] = [p for p in doc["paths"] if p.endswith("/plugins")]
    operation = doc["paths"][path]["get"]
    assert "settings schemas" in operation["summary"]


@SQLITE_ONLY
def test_plugins_json_prints_the_same_document(
    shop: None, api: Api, db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["plugins", "--json"], env=hub_env(db_url, config_dir, tmp_path)
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    _, answered = api.get("/plugins")
    # the same document; the tenant's "enabled" flags are the API's, as the CLI has no tenant
    for document in (printed, answered):
        for entry in document["items"] + document["modules"]:
            entry.pop("enabled", None)
    assert printed == answered
    assert SHOP_SECRET not in result.output
    assert any(i["settings_schema"]["properties"]["secret"].get("x-secret")
               for i in printed["items"] if i["name"] == "storefront")


# --- a plugin name nobody installed ----------------------------------------------------------


class Pager:
    """A third-party plugin providing the notifier 'pager'."""

    class PagerNotifier(StubNotifier):
        name = "pager"

    @hookimpl
    def register_notifiers(self) -> list[type]:
        return [self.PagerNotifier]


def settings_for(db_url: str, config_dir: Path, tmp_path: Path) -> dict[str, Any]:
    return {
        "database_url": db_url,
        "broker_url": "embedded",
        "config_dir": config_dir,
        "data_dir": tmp_path / "var",
        "secret_key": HUB_SECRET_KEY,
    }


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("section", "family"),
    [("notifiers", "notifier"), ("connections", "channel"), ("carrier_accounts", "carrier")],
)
def test_a_tenant_file_naming_an_unknown_plugin_stops_create_app(
    db_url: str, config_dir: Path, tmp_path: Path, section: str, family: str
) -> None:
    path = config_dir / "tenants" / "acme.toml"
    path.write_text(f'[[{section}]]\nname = "ops"\nplugin = "pager"\n')
    with pytest.raises(ConfigError) as refused:
        create_app(settings_for(db_url, config_dir, tmp_path))
    assert (refused.value.file, refused.value.key) == (str(path), f"{section}[0].plugin")
    assert f"no {family} plugin 'pager' is installed" in refused.value.problem
    known = {"notifier": "log", "channel": "shopify", "carrier": "table_rate"}[family]
    assert known in refused.value.problem


@SQLITE_ONLY
def test_a_plugin_given_to_create_app_counts_as_installed(
    db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        '[[notifiers]]\nname = "ops"\nplugin = "pager"\n'
    )
    app = create_app(settings_for(db_url, config_dir, tmp_path), plugins={"pager": Pager()})
    try:
        assert app.extensions["orderhub"].plugins.notifier("pager") is Pager.PagerNotifier
    finally:
        app.extensions["orderhub"].close()


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("command", "broker"), [("serve", "embedded"), ("worker", "redis://127.0.0.1:1/0")]
)
def test_serve_and_worker_name_the_unknown_notifier_without_a_traceback(
    db_url: str,
    config_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
    command: str,
    broker: str,
) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        '[[notifiers]]\nname = "ops"\nplugin = "pager"\n'
    )
    env = hub_env(db_url, config_dir, tmp_path, ORDERHUB_BROKER_URL=broker)
    code = run_main(monkeypatch, env, command)
    out, err = capsys.readouterr()
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("configuration error: ") and "acme.toml: notifiers[0].plugin" in line
    assert "'pager'" in line and "log" in line
    assert "Traceback" not in out + err and "listening" not in out


# --- a tenant's currency ---------------------------------------------------------------------


@pytest.fixture
def euro_app(db_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Flask]:
    (config_dir / "tenants" / "acme.toml").write_text('currency = "EUR"\n')
    app = create_app(settings_for(db_url, config_dir, tmp_path))
    yield app
    app.extensions["orderhub"].close()


@SQLITE_ONLY
def test_new_products_take_the_tenants_currency(euro_app: Flask) -> None:
    from conftest import seed_tenant

    runtime = euro_app.extensions["orderhub"]
    client = euro_app.test_client()
    acme = Api(client, seed_tenant(runtime, "acme")["admin"])
    other = Api(client, seed_tenant(runtime, "other")["admin"])

    status, made = acme.post("/products", {"sku": "MUG", "name": "Mug", "price": "9.50"})
    assert (status, made["currency"]) == (201, "EUR")
    status, made = acme.post("/products", {"sku": "CAP", "name": "Cap", "currency": "GBP"})
    assert (status, made["currency"]) == (201, "GBP")  # a product's own currency still wins
    status, made = other.post("/products", {"sku": "MUG", "name": "Mug"})
    assert (status, made["currency"]) == (201, "USD")  # a tenant with no currency set


# --- the demo, pip-installed -----------------------------------------------------------------


def test_the_packaged_demo_tenant_file_is_the_clones(tmp_path: Path) -> None:
    packaged = resources.files("hub").joinpath("demo_tenant.toml")
    assert packaged.is_file()
    assert packaged.read_text(encoding="utf-8") == (
        ROOT / "config" / "tenants" / "demo.toml"
    ).read_text(encoding="utf-8"), "config/tenants/demo.toml and hub/demo_tenant.toml differ"
    # a non-editable install carries only declared package data
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "demo_tenant.toml" in pyproject["tool"]["setuptools"]["package-data"]["hub"]


def demo_order(region: str, city: str, **line: Any) -> dict[str, Any]:
    address = {**ORDER["consignee"]["address"], "region": region, "city": city}
    return {
        **ORDER,
        "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 1, **line}],
        "consignee": {**ORDER["consignee"], "address": address},
    }


@SQLITE_ONLY
def test_init_demo_in_an_empty_folder_writes_the_demo_tenant_and_its_rules_apply(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a folder with no config/, as after `pip install orderhub` anywhere
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORDERHUB_CONFIG_DIR", raising=False)
    env: dict[str, str | None] = {**hub_env(db_url, Path(), tmp_path), "ORDERHUB_CONFIG_DIR": None}
    # When the quick start's init --demo runs there
    result = CliRunner().invoke(cli, ["init", "--demo"], env=env)
    assert result.exit_code == 0, result.output
    written = tmp_path / "config" / "tenants" / "demo.toml"
    assert f"demo tenant settings written to {Path('config') / 'tenants' / 'demo.toml'}" in (
        result.output
    )
    assert written.read_text() == resources.files("hub").joinpath("demo_tenant.toml").read_text()
    [token] = re.findall(r"^API token: (\S+)$", result.output, re.M)

    # Then the hub started there has the demo's rules: orders route to the consignee's state
    app = create_app(
        {"database_url": db_url, "data_dir": tmp_path / "var", "secret_key": HUB_SECRET_KEY}
    )
    try:
        api = Api(app.test_client(), token)
        for region, city, warehouse in (("NJ", "Newark", "MAIN"), ("NV", "Reno", "WEST")):
            status, order = api.post("/orders", demo_order(region, city))
            assert (status, order["status"]) == (201, "confirmed"), order
            allocations = api.get(f"/orders/{order['number']}")[1]["allocations"]
            assert [a["warehouse"] for a in allocations] == [warehouse]
        # … and above 5000 an order needs approval, as the demo file says
        status, order = api.post("/orders", demo_order("NJ", "Newark", unit_price="6000.00"))
        assert (status, order["status"]) == (201, "awaiting_approval"), order
    finally:
        app.extensions["orderhub"].close()


@SQLITE_ONLY
def test_init_demo_never_overwrites_the_operators_tenant_file(
    db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    mine = config_dir / "tenants" / "demo.toml"
    mine.write_text('name = "My demo"\ncurrency = "EUR"\n')
    result = CliRunner().invoke(
        cli, ["init", "--demo"], env=hub_env(db_url, config_dir, tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "written" not in result.output
    assert mine.read_text() == 'name = "My demo"\ncurrency = "EUR"\n'
    [token] = re.findall(r"^API token: (\S+)$", result.output, re.M)
    app = create_app(settings_for(db_url, config_dir, tmp_path))
    try:
        _, products = Api(app.test_client(), token).get("/products")
        assert {p["currency"] for p in products["items"]} == {"EUR"}  # the operator's currency
    finally:
        app.extensions["orderhub"].close()


# --- docs point only at files the repository has ---------------------------------------------

# The repository's top-level folders and files: a path starting with one of these is a
# reference into the repository (other slashes are media types, topics, URLs' tails …).
TOP_LEVEL = ("config", "docs", "hub", "plugins", "tests", "bench", "migrations", ".ci")
PATH = re.compile(r"(?<![\w.:/<>*…-])((?:[\w.<>*…-]+/)+[\w.<>*…-]*|[\w-]+\.md)\b")


def referenced_paths(text: str) -> Iterator[str]:
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".")
        if path.split("/", 1)[0] in TOP_LEVEL or path.endswith(".md"):
            yield path


def exists(reference: str) -> bool:
    """A path (placeholders such as <slug> and globs match any name), or a bare NAME.md
    anywhere in the repository."""
    pattern = re.sub(r"<[^>]*>|…", "*", reference)
    if "/" not in pattern:
        return any(".venv" not in p.parts for p in ROOT.rglob(pattern))
    return any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists()


def documents() -> Iterator[Path]:
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").rglob("*.md"))
    for folder in ("hub", "plugins"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_the_scanner_sees_references_and_missing_files() -> None:
    text = "see `config/tenants/<slug>.toml`, hub/cli.py, design/NOTES.md and CARRIERS.md."
    found = list(referenced_paths(text))
    assert found == ["config/tenants/<slug>.toml", "hub/cli.py", "design/NOTES.md", "CARRIERS.md"]
    assert [exists(p) for p in found] == [True, True, False, False]
    assert list(referenced_paths("application/json, orders/create, https://x.io/a/b.py")) == []


def test_docs_and_messages_name_only_files_the_repository_has() -> None:
    missing = [
        f"{doc.relative_to(ROOT)}: {ref}"
        for doc in documents()
        for ref in referenced_paths(doc.read_text(encoding="utf-8"))
        if not exists(ref)
    ]
    assert missing == []
