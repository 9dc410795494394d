"""Outbound requests go only to public hosts over https (hub.core.outbound): refused when a
tenant saves such a base URL, refused again on every connection (the resolved address, so a
name that rebinds to an internal address fails too), and allowed host by host by the operator
in hub.toml. What an outside server answers never reaches the tenant verbatim.

The connection-level checks are proven against real servers on 127.0.0.1 (``responses`` fakes
requests' adapter, so it would skip them), and with ``localhost``, a name that resolves to
loopback.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ENV_CANARY_NAME, Api, allow_outbound
from sqlalchemy import select
from test_channel_shopee import SETTINGS as SHOPEE_SETTINGS
from test_channel_shopee import sign_push as push_signature

from hub.core import outbound
from hub.core.http import BusinessError, HttpClient, OutboundRefused, Unavailable
from hub.core.models import InboxEntry
from hub.settings import ConfigError, load

# --- a real server on 127.0.0.1 --------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    answer: tuple[int, dict[str, str], bytes]
    seen: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        status, headers, body = self.server.answer
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


class Local:
    """A server on 127.0.0.1 that records what reached it and answers as told."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.seen = []
        self.answer(200, b'{"ok": true}')
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def seen(self) -> list[str]:
        return self.server.seen

    def answer(self, status: int, body: bytes, **headers: str) -> None:
        self.server.answer = (status, {"Content-Type": "application/json", **headers}, body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def local() -> Iterator[Local]:
    server = Local()
    yield server
    server.close()


@pytest.fixture
def other_local() -> Iterator[Local]:
    server = Local()
    yield server
    server.close()


def client() -> HttpClient:
    made = HttpClient("test:outbound", retries=0, timeout=5)
    made.sleep = lambda seconds: None
    return made


# --- what counts as public -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "198.18.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::7f00:1",  # IPv4-compatible form of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert not outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"])
def test_internet_addresses_are_public(address: str) -> None:
    assert outbound.is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://api.example.com/v1", None),
        ("https://93.184.216.34/v1", None),
        ("http://api.example.com/v1", outbound.NOT_HTTPS),
        ("ftp://api.example.com/", outbound.NOT_HTTPS),
        ("https://127.0.0.1/", outbound.NOT_PUBLIC),
        ("https://10.0.0.1:8443/x", outbound.NOT_PUBLIC),
        ("https://169.254.169.254/latest/meta-data/", outbound.NOT_PUBLIC),
        ("https://[::1]/", outbound.NOT_PUBLIC),
        ("https://[::ffff:127.0.0.1]/", outbound.NOT_PUBLIC),
        ("https:///nohost", "the URL names no host"),
    ],
)
def test_a_url_is_judged_before_sending_without_dns(url: str, refused: str | None) -> None:
    assert outbound.url_problem(url) == refused


@pytest.mark.parametrize(
    ("entries", "host", "port", "allowed"),
    [
        (["carrier.internal"], "carrier.internal", 8443, True),
        (["carrier.internal"], "CARRIER.internal.", 443, True),
        (["carrier.internal:8443"], "carrier.internal", 8443, True),
        (["carrier.internal:8443"], "carrier.internal", 443, False),
        (["127.0.0.1:9000"], "127.0.0.1", 9000, True),
        (["[::1]:9000"], "::1", 9000, True),
        (["[::1]"], "::1", 1, True),
        (["::1"], "::1", 1, True),
        (["localhost"], "127.0.0.1", 80, False),  # a name allows that name, not its address
        ([], "127.0.0.1", 80, False),
    ],
)
def test_the_allow_list_matches_host_and_port(
    entries: list[str], host: str, port: int, allowed: bool
) -> None:
    outbound.allow(entries)
    assert outbound.allowed(host, port) is allowed


@pytest.mark.parametrize("entry", ["host:port", "host:0", "host:70000", "[::1]x", ":80", "a:b:c:"])
def test_hub_toml_refuses_an_allow_entry_that_is_not_a_host(config_dir: Path, entry: str) -> None:
    (config_dir / "hub.toml").write_text(f'[outbound]\nallow = ["ok.example", "{entry}"]\n')
    with pytest.raises(ConfigError) as refused:
        load({"config_dir": config_dir}, env={})
    assert refused.value.key.startswith("outbound.allow")


def test_hub_toml_reads_the_allow_list(config_dir: Path) -> None:
    allow_outbound(config_dir, "carrier.internal:8443", "127.0.0.1", "[::1]:9000")
    settings = load({"config_dir": config_dir}, env={})
    assert settings.outbound_allow == ["carrier.internal:8443", "127.0.0.1", "[::1]:9000"]


# --- at connect: the address actually connected to -----------------------------------------


def test_a_loopback_server_is_refused_until_the_operator_allows_it(local: Local) -> None:
    for url in (f"http://127.0.0.1:{local.port}/v1", f"https://127.0.0.1:{local.port}/v1"):
        with pytest.raises(OutboundRefused) as refused:
            client().request("GET", url)
        assert not refused.value.retryable and refused.value.unprocessed
    assert local.seen == []

    outbound.allow([f"127.0.0.1:{local.port}"])
    assert client().json("GET", f"http://127.0.0.1:{local.port}/v1") == {"ok": True}
    assert local.seen == ["GET /v1"]


@pytest.mark.parametrize(
    "base",
    [
        "https://127.0.0.1:{port}",
        "https://10.0.0.1:{port}",
        "https://169.254.169.254:{port}",
        "https://[::1]:{port}",
        "https://localhost:{port}",
        "http://localhost:{port}",
        "http://api.example.com:{port}",
    ],
)
def test_every_internal_or_plain_http_base_is_refused_with_nothing_sent(
    local: Local, base: str
) -> None:
    url = base.format(port=local.port) + "/orders?token=t0ken"
    with pytest.raises(OutboundRefused) as refused:
        client().request("POST", url, json={"a": 1})
    assert refused.value.unprocessed and not refused.value.retryable
    assert refused.value.status is None and "t0ken" not in str(refused.value)
    assert local.seen == []


def test_ipv6_loopback_is_refused_until_allowed() -> None:
    class V6(_Server):
        address_family = socket.AF_INET6

    try:
        server = V6(("::1", 0), _Handler)
    except OSError as exc:  # pragma: no cover - a host without IPv6 loopback
        pytest.skip(f"no IPv6 loopback here: {exc}")
    server.seen, server.answer = [], (200, {"Content-Type": "application/json"}, b"{}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        with pytest.raises(OutboundRefused):
            client().request("GET", f"http://[::1]:{port}/v1")
        assert server.seen == []
        outbound.allow([f"[::1]:{port}"])
        assert client().json("GET", f"http://[::1]:{port}/v1") == {}
        assert server.seen == ["GET /v1"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_name_resolving_to_loopback_is_refused_at_connect(local: Local) -> None:
    # No DNS before sending: it is the connection that resolves localhost and refuses.
    url = f"https://localhost:{local.port}/v1"
    assert outbound.url_problem(url) is None
    with pytest.raises(OutboundRefused, match="not a public address"):
        client().request("GET", url)
    assert local.seen == []

    outbound.allow([f"localhost:{local.port}"])
    assert client().json("GET", f"http://localhost:{local.port}/v1") == {"ok": True}
    assert local.seen == ["GET /v1"]


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public when saved, loopback when connected to: the connection checks the address it
    actually uses, so rebinding between the two fails."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != "rebind.example.test":
            return real(host, port, *args, **kw)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"https://rebind.example.test:{local.port}/v1"
    assert outbound.setting_problem(url) is None  # saved: it resolved to a public address
    with pytest.raises(OutboundRefused):
        client().request("GET", url)
    assert local.seen == []


def test_a_name_that_does_not_resolve_is_a_retryable_failure_with_nothing_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_such_name(*args: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(Unavailable) as failed:
        client().request("POST", "https://shop.example.test/orders")
    assert failed.value.retryable and failed.value.unprocessed


def test_a_redirect_to_an_internal_host_is_refused_at_its_hop(
    local: Local, other_local: Local
) -> None:
    outbound.allow([f"127.0.0.1:{local.port}"])
    local.answer(302, b"", Location=f"http://127.0.0.1:{other_local.port}/latest/meta-data/")
    with pytest.raises(OutboundRefused):
        client().request("GET", f"http://127.0.0.1:{local.port}/start")
    assert local.seen == ["GET /start"]
    assert other_local.seen == []


# --- at save: every built-in outbound setting ------------------------------------------------

# Settings each built-in plugin accepts, and its outbound settings with a URL (or host) of the
# right shape for its schema.
PLUGIN_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("connections", "amazon"): {
        "client_id": "amzn1.application-oa2-client.x",
        "client_secret": "amzn1.oa2-cs.v1.x",
        "refresh_token": "Atzr|x",
        "marketplace_ids": ["ATVPDKIKX0DER"],
    },
    ("connections", "shopee"): SHOPEE_SETTINGS,
    ("connections", "shopify"): {"secret": "shpss_x"},
    ("connections", "woocommerce"): {"secret": "wc-secret"},
    ("carrier-accounts", "easypost"): {"api_key": "EZTK_x"},
    ("carrier-accounts", "ups"): {
        "client_id": "ups-client",
        "client_secret": "ups-secret",
        "account_number": "A1B2C3",
    },
}
OUTBOUND = [
    ("connections", "amazon", "endpoint"),
    ("connections", "amazon", "token_url"),
    ("connections", "shopee", "api_base"),
    ("connections", "woocommerce", "store_url"),
    ("carrier-accounts", "easypost", "api_base"),
    ("carrier-accounts", "ups", "api_base"),
]
INTERNAL = [
    "https://127.0.0.1",
    "https://10.0.0.1",
    "https://169.254.169.254",
    "https://[::1]",
    "https://localhost",
]


def test_every_built_in_plugin_declares_its_outbound_settings(api: Api, runtime: Any) -> None:
    declared = {
        (family, cls.name, name)
        for family, kind in (("connections", "channels"), ("carrier-accounts", "carriers"))
        for cls in runtime.plugins.adapters(kind).values()
        for name in cls.outbound_settings
    }
    assert declared == {*OUTBOUND, ("connections", "shopify", "shop_domain")}


def _create(api: Api, family: str, plugin: str, **settings: Any) -> tuple[int, Any]:
    body = {
        "plugin": plugin,
        "name": f"{plugin}-{len(settings)}-{abs(hash(json.dumps(settings)))}",
        "settings": {**PLUGIN_SETTINGS[(family, plugin)], **settings},
    }
    return api.post(f"/{family}", body)


@pytest.mark.parametrize(("family", "plugin", "setting"), OUTBOUND)
def test_an_internal_base_url_is_refused_at_save_naming_the_field(
    api: Api, family: str, plugin: str, setting: str
) -> None:
    for url in INTERNAL:
        status, error = _create(api, family, plugin, **{setting: url})
        assert status == 422, (url, error)
        assert error["error"]["details"] == [
            {"field": f"settings.{setting}", "problem": outbound.NOT_PUBLIC}
        ], url
        assert urlsplit(url).hostname not in json.dumps(error)
    assert api.get(f"/{family}")[1]["total"] == 0


@pytest.mark.parametrize(
    ("family", "plugin", "setting"),
    [("connections", "shopee", "api_base"), ("connections", "woocommerce", "store_url")],
)
def test_a_plain_http_base_url_is_refused_at_save(
    api: Api, family: str, plugin: str, setting: str
) -> None:
    status, error = _create(api, family, plugin, **{setting: "http://api.example.com"})
    assert status == 422
    assert error["error"]["details"] == [
        {"field": f"settings.{setting}", "problem": outbound.NOT_HTTPS}
    ]


def test_a_shop_domain_resolving_to_loopback_is_refused_at_save(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "evil.myshopify.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    status, error = _create(api, "connections", "shopify", shop_domain="evil.myshopify.com")
    assert status == 422
    assert error["error"]["details"] == [
        {"field": "settings.shop_domain", "problem": outbound.NOT_PUBLIC}
    ]


def test_a_public_or_unresolvable_base_url_is_accepted(api: Api) -> None:
    # Public literals pass; a name that does not resolve (yet) is accepted, since every
    # connection checks again (no network here: example.com names do not resolve).
    status, made = _create(api, "connections", "shopee", api_base="https://93.184.216.34")
    assert status == 201, made
    status, made = _create(api, "carrier-accounts", "ups", api_base="https://ups.example.com")
    assert status == 201, made


@pytest.fixture
def allowed_config(config_dir: Path) -> Path:
    allow_outbound(
        config_dir,
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "[::1]",
        "localhost",
        "api.example.com",
    )
    return config_dir


@pytest.mark.parametrize(("family", "plugin", "setting"), OUTBOUND)
def test_allowed_hosts_are_accepted_at_save(
    allowed_config: Path, api: Api, family: str, plugin: str, setting: str
) -> None:
    for url in INTERNAL:
        status, made = _create(api, family, plugin, **{setting: url})
        assert status == 201, (url, made)


def test_an_allowed_host_may_be_plain_http(allowed_config: Path, api: Api) -> None:
    status, made = _create(api, "connections", "shopee", api_base="http://api.example.com")
    assert status == 201, made


def test_config_files_are_checked_the_same_way(api: Api, runtime: Any) -> None:
    from hub.core import intake
    from hub.core.models import Tenant

    tenant = runtime.settings.tenant("acme")
    reference = {"$env": ENV_CANARY_NAME}
    tenant.connections = [
        {
            "name": "sg",
            "plugin": "shopee",
            "settings": {
                **SHOPEE_SETTINGS,
                "partner_key": reference,
                "access_token": reference,
                "api_base": "https://169.254.169.254",
            },
        }
    ]
    with runtime.transaction() as session, pytest.raises(ConfigError) as refused:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        intake.sync_config_connections(
            session,
            tenant_id,
            tenant,
            runtime.plugins.adapters("channels"),
            box=runtime.secrets,
            file="acme.toml",
        )
    assert refused.value.key == "connections[0].settings"
    assert "settings.api_base: the host is not a public address" in str(refused.value)
    assert "169.254" not in str(refused.value)


# --- through the worker: the case ----------------------------------------------------


@pytest.fixture
def shopee_at_local(local: Local, api: Api, runtime: Any) -> dict[str, Any]:
    """A Shopee connection whose api_base is the local server, saved while the operator
    allowed it; each test decides whether it still is."""
    outbound.allow([f"127.0.0.1:{local.port}"])
    status, made = _create(api, "connections", "shopee", api_base=f"http://127.0.0.1:{local.port}")
    assert status == 201, made
    runtime.jobs.start_worker(1, sweep=False)
    return made


def _push(api: Api, connection: dict[str, Any]) -> None:
    body = json.dumps(
        {
            "msg_id": "m1",
            "data": {"ordersn": "240501ABCD1234", "status": "READY_TO_SHIP", "update_time": 1},
            "shop_id": SHOPEE_SETTINGS["shop_id"],
            "code": 3,
            "timestamp": 2,
        }
    ).encode()
    url = connection["webhook_url"]
    answer = api.client.post(
        urlsplit(url).path,
        data=body,
        headers={"Authorization": push_signature(body, url), "Content-Type": "application/json"},
    )
    assert answer.status_code == 200


def _inbox(runtime: Any) -> list[InboxEntry]:
    with runtime.session() as session:
        return list(session.scalars(select(InboxEntry)))


def test_the_worker_never_calls_a_stored_internal_base_url(
    api: Api, runtime: Any, local: Local, shopee_at_local: dict[str, Any]
) -> None:
    outbound.allow(())  # the operator took it out (or the row predates the check)
    _push(api, shopee_at_local)
    runtime.jobs.join()

    [entry] = _inbox(runtime)
    assert entry.status == "rejected"
    assert "not sent" in entry.reason and "not a public address" not in entry.reason
    assert "must be https" in entry.reason
    assert local.seen == []


def test_an_outside_body_reaches_the_log_not_the_tenant(
    api: Api,
    runtime: Any,
    local: Local,
    shopee_at_local: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = b"<html>INTERNAL-ONLY: db password is hunter2 " + b"x" * 5000 + b"</html>"
    local.answer(403, body, **{"Content-Type": "text/html"})
    with caplog.at_level(logging.DEBUG, logger="hub.core.http"):
        _push(api, shopee_at_local)
        runtime.jobs.join()

    [entry] = _inbox(runtime)
    assert entry.status == "rejected"
    assert "403 Forbidden" in entry.reason
    assert "INTERNAL-ONLY" not in entry.reason and "hunter2" not in entry.reason
    assert len(entry.reason) <= 600
    _, listed = api.get("/inbox?status=rejected")
    assert "hunter2" not in json.dumps(listed)
    assert any("INTERNAL-ONLY" in r.getMessage() for r in caplog.records if r.levelname == "DEBUG")


def test_an_error_text_carries_no_body_and_is_capped() -> None:
    said = "platform says: " + "y" * 5000
    error = BusinessError(
        f"400 Bad Request (request rejected): {said}",
        status=400,
        body="INTERNAL-ONLY body",
        url="https://api.example.com/v1",
        method="GET",
        client="ups:account:1",
    )
    text = str(error)
    assert text.startswith("ups:account:1: GET https://api.example.com/v1 → 400 Bad Request")
    assert "INTERNAL-ONLY" not in text
    assert len(text) < 400 and text.endswith("…")
