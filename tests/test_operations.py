"""Running the hub in production: its public address (never a request's Host header), what
/readyz tells an unauthenticated caller, worker heartbeats, and the README's server commands.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import HUB_SECRET_KEY, PUBLIC_URL, Api
from flask import Flask

from hub import create_app, hookimpl
from hub import settings as settings_module
from hub.core import heartbeats, migrate
from hub.core.adapters import StubChannel
from hub.core.db import make_engine, utcnow
from hub.settings import ConfigError
from plugins.channels.shopee import push_signature

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
BIN = Path(sys.executable).parent
README = Path(__file__).parent.parent / "README.md"


def hub(tmp_path: Path, config_dir: Path, db_url: str, **extra: Any) -> Flask:
    return create_app(
        {
            "database_url": db_url,
            "broker_url": "embedded",
            "config_dir": config_dir,
            "data_dir": tmp_path / "var",
            "secret_key": HUB_SECRET_KEY,
            **extra,
        }
    )


class Stubs:
    """Makes the Stub channel available, as a third-party plugin would."""

    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


@pytest.fixture
def stub_channel(api: Api) -> None:
    api.client.application.extensions["orderhub"].plugins.register(Stubs, "stubs")


# --- the public URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "hub.example.com",
        "ftp://hub.example.com",
        "https:///no-host",
        "https://hub.example.com/?next=1",
        "https://ops:hunter2-secret@hub.example.com",
        "https://hub.example.com:99999",
    ],
)
def test_public_url_must_be_an_absolute_http_url(tmp_path: Path, value: str) -> None:
    (tmp_path / "hub.toml").write_text(f'[server]\npublic_url = "{value}"\n')
    for env in ({}, {"ORDERHUB_PUBLIC_URL": value}):
        with pytest.raises(ConfigError) as refused:
            settings_module.load({"config_dir": tmp_path, "data_dir": tmp_path}, env=env)
        assert refused.value.key == "server.public_url"
        assert value not in str(refused.value)  # named, never echoed
        where = "ORDERHUB_PUBLIC_URL" if env else "hub.toml"
        assert where in str(refused.value)


def test_public_url_from_the_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "hub.toml").write_text('[server]\npublic_url = "https://hub.example.com/"\n')
    load = settings_module.load
    assert load({"config_dir": tmp_path}, env={}).public_url == "https://hub.example.com"
    env = {"ORDERHUB_PUBLIC_URL": "https://orders.example.net/hub"}
    assert load({"config_dir": tmp_path}, env=env).public_url == "https://orders.example.net/hub"
    (tmp_path / "hub.toml").unlink()
    assert load({"config_dir": tmp_path}, env={}).public_url is None


def test_the_heartbeat_window_must_outlast_the_heartbeat(tmp_path: Path) -> None:
    (tmp_path / "hub.toml").write_text("[worker]\nheartbeat_seconds = 60\n")  # window: 60
    with pytest.raises(ConfigError) as refused:
        settings_module.load({"config_dir": tmp_path, "data_dir": tmp_path}, env={})
    assert refused.value.key == "worker.heartbeat_timeout_seconds"
    (tmp_path / "hub.toml").write_text(
        "[worker]\nheartbeat_seconds = 30\nheartbeat_timeout_seconds = 90\n"
    )
    loaded = settings_module.load({"config_dir": tmp_path, "data_dir": tmp_path}, env={})
    assert (loaded.heartbeat_seconds, loaded.heartbeat_timeout_seconds) == (30, 90)


@SQLITE_ONLY
def test_a_forged_host_header_does_not_change_the_webhook_url(api: Api, stub_channel) -> None:
    body = {"plugin": "stub", "name": "shop", "settings": {"secret": "shh"}}
    forged = {"base_url": "https://attacker.example"}  # the Host header the request carries
    status, created = api.call("POST", "/connections", body, **forged)
    assert status == 201, created
    expected = f"{PUBLIC_URL}/hooks/acme/{created['id']}"
    assert created["webhook_url"] == expected and created["webhook_url_problem"] is None
    status, listed = api.call("GET", "/connections", **forged)
    assert [c["webhook_url"] for c in listed["items"]] == [expected]


@SQLITE_ONLY
def test_signatures_over_the_url_are_checked_against_the_public_url(
    api: Api, runtime, monkeypatch
) -> None:
    """Shopee signs the URL it posts to: the one the hub handed out, whatever Host the
    request arrives with (a proxy in front of the hub changes it; so can an attacker)."""
    monkeypatch.setattr(runtime.settings, "public_url", "https://hub.example.com")
    key = "shopee-partner-key-for-this-test"
    settings = {"partner_id": 1, "partner_key": key, "shop_id": 2, "access_token": "t0ken"}
    body = {"plugin": "shopee", "name": "sg", "settings": settings}
    status, shop = api.post("/connections", body)
    assert status == 201, shop
    url = shop["webhook_url"]
    assert url == f"https://hub.example.com/hooks/acme/{shop['id']}"
    body = b'{"code": 0, "shop_id": 2, "data": {}}'  # not an order push: acknowledged

    def push(signed_url: str) -> int:
        headers = {"Authorization": push_signature(key, signed_url, body)}
        path = f"/hooks/acme/{shop['id']}"
        forged = "https://attacker.example"
        return api.client.post(path, data=body, headers=headers, base_url=forged).status_code

    assert push(url) == 200
    assert push(f"https://attacker.example/hooks/acme/{shop['id']}") == 401


@SQLITE_ONLY
def test_without_a_public_url_the_webhook_url_is_null_and_says_why(
    db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    from conftest import seed_tenant

    app = hub(tmp_path, config_dir, db_url)
    try:
        runtime = app.extensions["orderhub"]
        runtime.plugins.register(Stubs, "stubs")
        api = Api(app.test_client(), seed_tenant(runtime, "acme")["admin"])
        body = {"plugin": "stub", "name": "shop", "settings": {"secret": "shh"}}
        status, created = api.post("/connections", body, base_url="https://attacker.example")
        assert status == 201, created
        assert created["webhook_url"] is None
        assert "public_url" in created["webhook_url_problem"]
    finally:
        app.extensions["orderhub"].close()


# --- /readyz: ready to serve (the database, the broker, a worker) ----------------------------


def test_health_names_no_host_when_the_database_and_broker_are_down(
    config_dir: Path, tmp_path: Path
) -> None:
    closed_port = _free_port()  # nothing listens there
    db = f"postgresql://hub:db-password@127.0.0.1:{closed_port}/orderhub"
    app = hub(
        tmp_path,
        config_dir,
        db,
        broker_url=f"redis://127.0.0.1:{closed_port}/0",
    )
    try:
        answer = app.test_client().get("/readyz")
        assert answer.status_code == 503
        text = answer.get_data(as_text=True)
        for private in ("127.0.0.1", str(closed_port), "db-password", "hub:"):
            assert private not in text
        checks = answer.get_json()["checks"]
        assert checks["database"]["ok"] is False
        assert checks["database"]["dialect"] == "postgresql"
        assert checks["database"]["error"].startswith("unreachable")
        assert set(checks["broker"]) == {"ok", "kind", "error"}
        assert checks["broker"]["error"].startswith("unreachable")
        assert checks["workers"]["ok"] is False
    finally:
        app.extensions["orderhub"].close()


@SQLITE_ONLY
def test_health_with_the_embedded_broker_counts_the_in_process_worker(client, runtime) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 503
    workers = answer.get_json()["checks"]["workers"]
    assert (workers["ok"], workers["kind"], workers["live"]) == (False, "embedded", 0)
    assert "orderhub serve" in workers["error"]

    runtime.jobs.start_worker(1, sweep=False)
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["checks"]["workers"] == {"ok": True, "kind": "embedded", "live": 1}


@SQLITE_ONLY
@pytest.mark.redis
def test_health_on_redis_counts_workers_heard_from_within_the_window(
    db_url: str, redis_url: str, config_dir: Path, tmp_path: Path
) -> None:
    from conftest import REDIS_NAMESPACE

    (config_dir / "hub.toml").write_text("[worker]\nheartbeat_timeout_seconds = 30\n")
    app = hub(tmp_path, config_dir, db_url, broker_url=redis_url, broker_namespace=REDIS_NAMESPACE)
    runtime = app.extensions["orderhub"]
    client = app.test_client()
    try:
        # No worker ever ran: Redis is up, but nobody takes jobs from it.
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.get_json()["checks"]["broker"]["ok"] is True
        workers = answer.get_json()["checks"]["workers"]
        assert (workers["live"], workers["window_seconds"]) == (0, 30)
        assert "orderhub worker" in workers["error"]

        now = utcnow()
        with runtime.transaction() as session:
            heartbeats.beat(session, "host-a-1", "default", now - timedelta(seconds=31))
        assert client.get("/readyz").status_code == 503  # heard from too long ago
        with runtime.transaction() as session:
            heartbeats.beat(session, "host-a-1", "default", now - timedelta(seconds=29))
            heartbeats.beat(session, "host-b-2", "default", now)
        answer = client.get("/readyz")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["checks"]["workers"]["live"] == 2
    finally:
        runtime.close()


# --- servers as the README runs them ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "config" / "tenants").mkdir(parents=True)
    values = {
        "ORDERHUB_CONFIG_DIR": str(tmp_path / "config"),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "ORDERHUB_BROKER_URL": "embedded",
        "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    engine = make_engine(values["ORDERHUB_DATABASE_URL"])
    migrate.upgrade(engine)
    engine.dispose()
    yield {**os.environ, **values, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


def _health(port: int, proc: subprocess.Popen[str]) -> requests.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited:\n{_stop(proc)}")
        try:
            # Generous: a gunicorn worker builds the app before it answers the first request.
            return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=20)
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer:\n{_stop(proc)}")


@pytest.mark.slow
def test_the_readme_gunicorn_command_serves_the_hub(env: dict[str, str], tmp_path: Path) -> None:
    # Given the README's production command, as written but bound to a free local port
    line = next(
        line for line in README.read_text().splitlines() if line.startswith("gunicorn ")
    )
    command = shlex.split(line.split("#", 1)[0])
    port = _free_port()
    command[command.index("-b") + 1] = f"127.0.0.1:{port}"
    command[command.index("-w") + 1] = "1"
    # When gunicorn (installed with the hub, not only for tests) runs it
    proc = _start(command, env, tmp_path)
    try:
        answer = _health(port, proc)
    finally:
        output = _stop(proc)
    # Then the hub answers; on the embedded broker its health says no worker runs there
    assert answer.headers["Content-Type"] == "application/json", output
    checks = answer.json()["checks"]
    assert checks["database"]["ok"] is True, output
    assert checks["workers"]["ok"] is False and "orderhub serve" in checks["workers"]["error"]
    assert "Traceback" not in output


@pytest.mark.slow
def test_serve_on_redis_says_workers_are_needed(env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    env = {**env, "ORDERHUB_BROKER_URL": f"redis://127.0.0.1:{_free_port()}/0"}
    proc = _start([str(BIN / "orderhub"), "serve", "--port", str(port)], env, tmp_path)
    try:
        _health(port, proc)
    finally:
        output = _stop(proc)
    assert "start 'orderhub worker' processes to run them" in output
    assert "embedded worker running" not in output


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(env: dict[str, str], tmp_path: Path) -> None:
    """Two gunicorn workers, one PROMETHEUS_MULTIPROC_DIR: whichever worker answers the
    scrape, it counts every request any worker served, including workers since recycled."""
    from prometheus_client.parser import text_string_to_metric_families

    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = _free_port()
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    # Each worker is recycled after 40 requests (gunicorn's --max-requests), so 120 requests
    # are surely served by several processes, live and gone, whose counts must all add up.
    command = [str(BIN / "gunicorn"), "-w", "2", "--max-requests", "40",
               "-b", f"127.0.0.1:{port}", "hub:create_app()"]
    proc = _start(command, env, tmp_path)
    try:
        _health(port, proc)

        def ping(_: int) -> bool:
            with requests.Session() as fresh:  # a new connection each: any worker may take it
                return fresh.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok

        # Many at once, so both (sync, one request at a time) workers must take some.
        with ThreadPoolExecutor(16) as pool:
            assert all(pool.map(ping, range(120)))
        counts = []
        for _ in range(4):
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if (sample.name == "orderhub_http_requests_total"
                            and sample.labels["route"] == "/healthz"):
                        counts.append(sample.value)
        files = sorted(p.name for p in folder.iterdir())
    finally:
        output = _stop(proc)
    assert counts == [120.0] * 4, output
    assert len({name for name in files if name.startswith("counter_")}) >= 3
