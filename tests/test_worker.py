"""Background work: events fan out to plugins and notifiers through the job queue, exactly once,
with retries, surviving a broker outage, and on real Redis with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from conftest import HUB_SECRET_KEY, ORDER, REDIS_NAMESPACE, Api, reset_postgres, seed_tenant
from dramatiq.errors import Retry
from flask import Flask
from sqlalchemy import select

from hub import create_app, hookimpl
from hub import settings as settings_module
from hub.cli import cli
from hub.core.adapters import Message, Notifier, StubNotifier
from hub.core.models import Event, NotificationDelivery
from hub.runtime import Runtime
from hub.settings import ConfigError
from hub.worker import actors

ACME = """
name = "Acme"

[[notifiers]]
name = "ops"
plugin = "stub"
events = ["order_created", "stock_low"]
"""


class FlakyNotifier(Notifier):
    """Fails its first ``failures`` sends, then delivers."""

    name = "flaky"
    failures: ClassVar[int] = 1
    calls: ClassVar[int] = 0
    sent: ClassVar[list[Message]] = []

    def send(self, message: Message) -> None:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise ConnectionError("smtp.example.com refused the connection")
        type(self).sent.append(message)


class Recorder:
    """A test plugin: provides the stub and flaky notifiers and records every event hook."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def register_notifiers(self) -> list[type[Notifier]]:
        return [StubNotifier, FlakyNotifier]

    @hookimpl
    def order_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("order_created", tenant, payload))

    @hookimpl
    def order_status_changed(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("order_status_changed", tenant, payload))

    @hookimpl
    def stock_low(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("stock_low", tenant, payload))


@pytest.fixture(autouse=True)
def _fresh_notifiers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StubNotifier, "sent", [])
    monkeypatch.setattr(FlakyNotifier, "sent", [])
    monkeypatch.setattr(FlakyNotifier, "calls", 0)
    monkeypatch.setattr(FlakyNotifier, "failures", 1)


def _hub(
    config_dir: Path,
    tmp_path: Path,
    db_url: str,
    broker_url: str = "embedded",
    plugins: dict[str, object] | None = None,
    **extra: Any,
) -> Flask:
    return create_app(
        {
            "database_url": db_url,
            "broker_url": broker_url,
            "config_dir": config_dir,
            "data_dir": tmp_path / "var",
            "secret_key": HUB_SECRET_KEY,
            **extra,
        },
        plugins=plugins,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def app(db_url: str, config_dir: Path, tmp_path: Path, recorder: Recorder) -> Iterator[Flask]:
    """Overrides conftest's app: tenant 'acme' has a stub notifier, the test plugin is on."""
    (config_dir / "tenants" / "acme.toml").write_text(ACME)
    app = _hub(config_dir, tmp_path, db_url, plugins={"recorder": recorder})
    yield app
    app.extensions["orderhub"].close()


def _deliveries(runtime: Runtime) -> list[NotificationDelivery]:
    with runtime.session() as session:
        return list(session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def _events(runtime: Runtime, name: str | None = None) -> list[Event]:
    with runtime.session() as session:
        query = select(Event).order_by(Event.id)
        if name:
            query = query.where(Event.name == name)
        return list(session.scalars(query))


# --- stub broker, in-process worker ----------------------------------------------------------


def test_order_created_notifies_once(api: Api, runtime: Runtime) -> None:
    runtime.jobs.start_worker(sweep=False)
    status, order = api.post("/orders", ORDER)
    assert status == 201, order
    runtime.jobs.join()

    assert [(m.tenant, m.event) for m in StubNotifier.sent] == [("acme", "order_created")]
    message = StubNotifier.sent[0]
    assert order["number"] in message.subject
    assert message.data["number"] == order["number"]
    [delivery] = _deliveries(runtime)
    assert (delivery.notifier, delivery.plugin, delivery.status, delivery.attempts) == (
        "ops",
        "stub",
        "sent",
        1,
    )
    assert delivery.sent_at is not None
    assert all(ev.dispatched_at is not None for ev in _events(runtime))


def test_stock_low_is_notified(api: Api, runtime: Runtime) -> None:
    runtime.jobs.start_worker(sweep=False)
    # SKU-A: 30 available, threshold 5; taking 26 leaves 4.
    body = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 26, "unit_price": "10.00"}]}
    status, order = api.post("/orders", body)
    assert status == 201, order
    runtime.jobs.join()

    assert sorted(m.event for m in StubNotifier.sent) == ["order_created", "stock_low"]
    low = next(m for m in StubNotifier.sent if m.event == "stock_low")
    assert low.data == {"sku": "SKU-A", "available": 4, "threshold": 5}
    assert "SKU-A" in low.subject


def test_events_outside_the_notifier_list_are_not_sent(api: Api, runtime: Runtime) -> None:
    runtime.jobs.start_worker(sweep=False)
    status, order = api.post("/orders", ORDER)
    assert status == 201, order
    status, _ = api.post(f"/orders/{order['number']}/cancel", {"reason": "customer asked"})
    assert status == 200
    runtime.jobs.join()

    assert _events(runtime, "order_status_changed")  # the event exists ...
    assert [m.event for m in StubNotifier.sent] == ["order_created"]  # ... but ops skips it


def test_dispatching_an_event_twice_sends_nothing_more(
    api: Api, runtime: Runtime, recorder: Recorder
) -> None:
    runtime.jobs.start_worker(sweep=False)
    status, _ = api.post("/orders", ORDER)
    assert status == 201
    runtime.jobs.join()
    [event] = _events(runtime, "order_created")
    assert len(StubNotifier.sent) == 1

    actors.dispatch_event(runtime, event.id)  # run directly ...
    runtime.jobs.send("dispatch_event", event.id)  # ... and through the queue
    runtime.jobs.join()
    assert len(StubNotifier.sent) == 1
    assert len(_deliveries(runtime)) == 1
    assert [c[0] for c in recorder.calls].count("order_created") == 1  # hooks not re-run


def test_sending_a_delivery_twice_sends_once(api: Api, runtime: Runtime) -> None:
    runtime.jobs.start_worker(sweep=False)
    api.post("/orders", ORDER)
    runtime.jobs.join()
    [delivery] = _deliveries(runtime)

    actors.send_notification(runtime, delivery.id)
    assert len(StubNotifier.sent) == 1
    assert _deliveries(runtime)[0].attempts == 1


def _flaky_config(config_dir: Path) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        'name = "Acme"\n\n[[notifiers]]\nname = "pager"\nplugin = "flaky"\n'
        'events = ["order_created"]\n'
    )


# Waits before each retry of a failed notification: none, so the tests need not wait; the
# schedule's length is still the number of retries.
NO_WAITS = (0.0,) * 8


@pytest.fixture
def flaky_app(db_url: str, config_dir: Path, tmp_path: Path, recorder: Recorder) -> Iterator[Flask]:
    _flaky_config(config_dir)
    app = _hub(
        config_dir,
        tmp_path,
        db_url,
        plugins={"recorder": recorder},
        notification_retry_seconds=NO_WAITS,
    )
    yield app
    app.extensions["orderhub"].close()


def test_failing_notifier_records_attempts_and_error(flaky_app: Flask) -> None:
    runtime: Runtime = flaky_app.extensions["orderhub"]
    api = Api(flaky_app.test_client(), seed_tenant(runtime, "acme")["admin"])
    FlakyNotifier.failures = 2
    status, _ = api.post("/orders", ORDER)  # no worker: the jobs stay queued
    assert status == 201
    [event] = _events(runtime, "order_created")
    actors.dispatch_event(runtime, event.id)
    [delivery] = _deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("pending", 0)

    with pytest.raises(Retry, match="will retry"):
        actors.send_notification(runtime, delivery.id)
    [delivery] = _deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.next_attempt_at is not None
    assert delivery.last_error == "ConnectionError: smtp.example.com refused the connection"
    assert delivery.sent_at is None

    with pytest.raises(Retry):
        actors.send_notification(runtime, delivery.id)
    actors.send_notification(runtime, delivery.id)  # third time lucky
    [delivery] = _deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert delivery.sent_at is not None
    assert "refused" in (delivery.last_error or "")  # the last failure stays on record
    assert len(FlakyNotifier.sent) == 1


def test_notifier_gives_up_after_its_retries(flaky_app: Flask) -> None:
    runtime: Runtime = flaky_app.extensions["orderhub"]
    api = Api(flaky_app.test_client(), seed_tenant(runtime, "acme")["admin"])
    FlakyNotifier.failures = 1000
    api.post("/orders", ORDER)
    [event] = _events(runtime, "order_created")
    actors.dispatch_event(runtime, event.id)
    [delivery] = _deliveries(runtime)
    for _ in range(len(NO_WAITS)):
        with pytest.raises(Retry):
            actors.send_notification(runtime, delivery.id)
        assert _deliveries(runtime)[0].status == "retrying"
    actors.send_notification(runtime, delivery.id)  # the last attempt fails for good
    [delivery] = _deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("failed", len(NO_WAITS) + 1)
    assert delivery.next_attempt_at is None
    assert FlakyNotifier.sent == []


def test_worker_retries_a_failing_notifier(flaky_app: Flask) -> None:
    runtime: Runtime = flaky_app.extensions["orderhub"]
    api = Api(flaky_app.test_client(), seed_tenant(runtime, "acme")["admin"])
    # The real back-off starts at 5 s; the mechanism is the same without waits.
    runtime.jobs.start_worker(sweep=False)
    status, _ = api.post("/orders", ORDER)
    assert status == 201
    runtime.jobs.join()

    assert FlakyNotifier.calls == 2
    assert [m.event for m in FlakyNotifier.sent] == ["order_created"]
    [delivery] = _deliveries(runtime)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.last_error == "ConnectionError: smtp.example.com refused the connection"


def test_event_hooks_are_called(api: Api, runtime: Runtime, recorder: Recorder) -> None:
    runtime.jobs.start_worker(sweep=False)
    status, order = api.post("/orders", ORDER)
    assert status == 201
    status, _ = api.post(f"/orders/{order['number']}/cancel", {"reason": "customer asked"})
    assert status == 200
    runtime.jobs.join()

    number = order["number"]
    assert ("order_created", "acme", {"number": number, "status": "confirmed"}) in recorder.calls
    changed = [c[2] for c in recorder.calls if c[0] == "order_status_changed"]
    cancel = {"number": number, "from": "confirmed", "to": "cancelled", "reason": "customer asked"}
    assert changed.count(cancel) == 1
    assert len(changed) == len(_events(runtime, "order_status_changed"))  # each one, once


def test_a_hook_that_raises_is_retried_without_duplicate_notifications(
    api: Api, runtime: Runtime
) -> None:
    class Grumpy:
        fails = 1

        @hookimpl
        def order_created(self, tenant: str, payload: dict[str, Any]) -> None:
            if self.fails:
                self.fails -= 1
                raise RuntimeError("plugin hiccup")

    runtime.plugins.register(Grumpy(), "grumpy")
    runtime.jobs.actors["dispatch_event"].options.update(min_backoff=10, max_backoff=50)
    runtime.jobs.start_worker(sweep=False)
    status, _ = api.post("/orders", ORDER)
    assert status == 201
    runtime.jobs.join()
    assert [m.event for m in StubNotifier.sent] == ["order_created"]
    assert all(ev.dispatched_at is not None for ev in _events(runtime))


# --- broker outage ---------------------------------------------------------------------------


def test_broker_outage_does_not_lose_events(
    db_url: str, config_dir: Path, tmp_path: Path, recorder: Recorder
) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(ACME)
    down = _hub(
        config_dir,
        tmp_path,
        db_url,
        broker_url="redis://127.0.0.1:1/0",
        plugins={"recorder": recorder},
    )
    runtime: Runtime = down.extensions["orderhub"]
    try:
        api = Api(down.test_client(), seed_tenant(runtime, "acme")["admin"])
        assert runtime.jobs.health()["ok"] is False
        status, order = api.post("/orders", ORDER)
        assert status == 201, order
        pending = _events(runtime)
        assert [e.name for e in pending if e.name != "order_status_changed"] == ["order_created"]
        assert all(e.dispatched_at is None for e in pending)
        assert _deliveries(runtime) == []
    finally:
        runtime.close()

    up = _hub(config_dir, tmp_path, db_url, plugins={"recorder": recorder})
    runtime = up.extensions["orderhub"]
    try:
        runtime.jobs.start_worker(sweep=False)
        # Too recent for the default grace period: the sweeper leaves in-flight events alone.
        assert actors.sweep(runtime) == 0
        assert actors.sweep(runtime, older_than=timedelta(0)) == len(pending)
        runtime.jobs.join()
        [event] = _events(runtime, "order_created")
        assert event.dispatched_at is not None
        assert [m.event for m in StubNotifier.sent] == ["order_created"]
        assert [d.status for d in _deliveries(runtime)] == ["sent"]
        assert actors.sweep(runtime, older_than=timedelta(0)) == 0  # nothing left to do
    finally:
        runtime.close()


def test_the_sweep_grace_period_is_a_setting(config_dir: Path, tmp_path: Path) -> None:
    assert settings_module.load({"config_dir": config_dir}).sweep_grace_seconds == 60.0
    (config_dir / "hub.toml").write_text("[worker]\nsweep_grace_seconds = 300\n")
    assert settings_module.load({"config_dir": config_dir}).sweep_grace_seconds == 300.0
    (config_dir / "hub.toml").write_text("[worker]\nsweep_grace_seconds = 0\n")
    with pytest.raises(ConfigError, match="sweep_grace_seconds"):
        settings_module.load({"config_dir": config_dir})


def test_runtimes_come_and_go_without_leaving_threads_behind(tmp_path: Path) -> None:
    """A process that builds many embedded runtimes (a test suite, a shell session) must not
    gather threads: each one left running wakes every second and takes the GIL."""
    def build_and_close(i: int) -> None:
        app = create_app(
            {"database_url": f"sqlite:///{tmp_path}/hub{i}.db", "broker_url": "embedded",
             "config_dir": tmp_path / "config", "data_dir": tmp_path / f"var{i}",
             "secret_key": HUB_SECRET_KEY}
        )
        runtime = app.extensions["orderhub"]
        runtime.jobs.start_worker(threads=1, sweep=False)
        runtime.close()

    build_and_close(0)  # the first may start what a process keeps once (the time limit)
    time.sleep(0.2)
    before = {t.ident for t in threading.enumerate()}
    for i in range(1, 6):
        build_and_close(i)
    time.sleep(0.5)  # stopped worker threads finish their last poll
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []


@pytest.mark.parametrize(
    ("query", "socket_timeout"), [("", 1.0), ("?socket_timeout=3", 3.0)], ids=["default", "url"]
)
def test_the_redis_client_gives_up_after_a_second(
    config_dir: Path, tmp_path: Path, query: str, socket_timeout: float
) -> None:
    """A hung Redis would otherwise hold each webhook answer for redis-py's 5 s; the URL's
    own options still win. (tests/test_intake.py posts to a hook against a hung server.)"""
    app = _hub(
        config_dir,
        tmp_path,
        f"sqlite:///{tmp_path / 'hub.db'}",
        broker_url=f"redis://127.0.0.1:1/0{query}",
    )
    runtime: Runtime = app.extensions["orderhub"]
    try:
        options = runtime.jobs.broker.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
        assert options["socket_timeout"] == socket_timeout
        assert options["socket_connect_timeout"] == 1.0
    finally:
        runtime.close()


# --- real Redis, real worker processes -------------------------------------------------------


def _wait_for(
    what: str, check: Callable[[], Any], timeout: float = 30.0, message: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{message()}")
        time.sleep(0.1)


class Output:
    """Collects a subprocess's merged output from a thread, so the pipe never fills."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._stream = proc.stdout
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def close(self) -> None:
        self._thread.join(timeout=5)
        self._stream.close()

    def text(self) -> str:
        return "".join(self.lines)

    def count(self, needle: str) -> int:
        return sum(needle in line for line in self.lines)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_worker_processes_on_redis_and_postgres(
    postgres_url: str, redis_url: str, config_dir: Path, tmp_path: Path
) -> None:
    reset_postgres(postgres_url)
    (config_dir / "tenants" / "acme.toml").write_text(
        'name = "Acme"\n\n[[notifiers]]\nname = "log"\nplugin = "log"\n'
    )
    env = {
        **os.environ,
        "ORDERHUB_DATABASE_URL": postgres_url,
        "ORDERHUB_BROKER_URL": redis_url,
        "ORDERHUB_BROKER_NAMESPACE": REDIS_NAMESPACE,
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    orderhub = Path(sys.executable).with_name("orderhub")
    app = _hub(
        config_dir, tmp_path, postgres_url, broker_url=redis_url, broker_namespace=REDIS_NAMESPACE
    )
    runtime: Runtime = app.extensions["orderhub"]
    proc = subprocess.Popen(
        [str(orderhub), "worker", "--processes", "2", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = Output(proc)
    client = app.test_client()
    try:
        _wait_for("two workers to start", lambda: output.count("worker running") == 2)
        # Health counts both workers by their heartbeats, and names no host.
        health = client.get("/readyz")
        assert health.status_code == 200, health.get_json()
        assert health.get_json()["checks"]["workers"]["live"] == 2
        for url in (postgres_url, redis_url):
            assert urlsplit(url).hostname not in health.get_data(as_text=True)
        api = Api(client, seed_tenant(runtime, "acme")["admin"])
        numbers = []
        for _ in range(3):
            status, order = api.post("/orders", ORDER)
            assert status == 201, order
            numbers.append(order["number"])
        assert len(_events(runtime, "order_created")) == 3  # written with the orders

        def all_sent() -> bool:
            events, rows = _events(runtime), _deliveries(runtime)
            return (
                all(e.dispatched_at for e in events)
                and len(rows) == len(events)
                and all(d.status == "sent" for d in rows)
            )

        _wait_for("every event's delivery to be sent", all_sent, message=output.text)
        events = _events(runtime)
        assert [e.payload["number"] for e in events if e.name == "order_created"] == numbers
        rows = _deliveries(runtime)
        assert {d.event_id for d in rows} == {e.id for e in events}  # one each, no more
        assert {(d.notifier, d.plugin, d.attempts) for d in rows} == {("log", "log", 1)}
        assert {e.payload["number"] for e in events} == set(numbers)

        # The log notifier's lines reach the worker's output (its logging is set up).
        for number in numbers:
            assert output.count(f"orderhub.notify: [acme] Order {number}") == 1, output.text()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, output.text()
        _wait_for("both workers to stop", lambda: output.count("worker stopping") == 2, 5)
        assert "Traceback" not in output.text()
        # Stopped workers remove their heartbeats: no worker is left, and health says so.
        health = client.get("/readyz")
        assert health.status_code == 503
        workers = health.get_json()["checks"]["workers"]
        assert (workers["ok"], workers["live"]) == (False, 0)
        assert "orderhub worker" in workers["error"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        output.close()
        runtime.close()


def test_worker_refuses_the_embedded_broker(tmp_path: Path) -> None:
    env = {
        "ORDERHUB_CONFIG_DIR": str(tmp_path / "config"),
        "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
        "ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "ORDERHUB_BROKER_URL": "embedded",
        "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
    }
    result = CliRunner().invoke(cli, ["worker"], env=env)
    assert result.exit_code == 1
    assert "the broker is embedded" in result.output
    assert "orderhub serve" in result.output
    assert "ORDERHUB_BROKER_URL=redis://" in result.output
