"""Channel intake survives its infrastructure failing, in the production layout: PostgreSQL, a
Redis broker and real ``orderhub worker`` processes.

* Redis down: Shopify is still told "200, we have it" for every order, and once Redis is back
  the worker's sweeper turns every stored delivery into exactly one order.
* Workers SIGKILLed mid-backlog: the jobs they had taken from Redis are gone with them, yet
  every acknowledged delivery still becomes exactly one order, with its stock reserved once.

Each test runs its own redis-server (on a free port), so it can stop and restart it without
touching the machine's shared Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import shopify_deliveries
from click.testing import CliRunner
from conftest import HUB_SECRET_KEY, missing_service, reset_postgres, seed_tenant
from flask.testing import FlaskClient
from sqlalchemy import text

from hub import create_app
from hub.cli import cli
from hub.runtime import Runtime

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SECRET = "shpss_resilience_7c1d"
NAMESPACE = f"orderhub-resilience-{os.getpid()}"
LINES = (("SKU-A", 2, "10.00"), ("SKU-B", 1, "25.50"))  # (sku, quantity, price) per order
STOCK = {"MAIN": {"SKU-A": 5_000, "SKU-B": 3_000}}
ORDERHUB = Path(sys.executable).with_name("orderhub")
# How often the workers' sweeper looks for deliveries that were never enqueued (hub.toml).
SWEEP_SECONDS = 0.5


# --- a Redis of our own ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A throwaway redis-server (no persistence, like a crashed cache): stop() and start()
    again on the same port, with every queued message lost in between."""

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            _wait_for("redis-server to answer", lambda: _pings(client), 10, self.log.read_text)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        missing_service("redis-server", "not on PATH")
    server = PrivateRedis(tmp_path / "redis.log")
    try:
        server.start()
    except Exception as exc:
        server.stop()
        missing_service("redis-server", exc)
    yield server
    server.stop()


# --- the hub: web app in this process, workers as subprocesses -------------------------------


@dataclass
class Hub:
    """The web side in this process (Flask test client bound to the Redis broker, so every
    acknowledgement really enqueues), read-only SQL probes, and a way to start workers."""

    client: FlaskClient
    runtime: Runtime
    connection_id: int
    env: dict[str, str]
    tmp_path: Path

    def post(self, delivery: tuple[bytes, dict[str, str]]) -> tuple[int, Any]:
        body, headers = delivery
        response = self.client.post(f"/hooks/acme/{self.connection_id}", data=body, headers=headers)
        return response.status_code, response.get_json(silent=True)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.runtime.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.runtime.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def orders(self) -> int:
        return int(self.scalar("SELECT count(*) FROM orders WHERE channel = 'shopify'"))

    def inbox(self) -> dict[str, int]:
        return {s: int(n) for s, n in self.rows("SELECT status, count(*) FROM inbox GROUP BY 1")}

    def reserved(self) -> dict[str, int]:
        return {
            sku: int(n)
            for sku, n in self.rows(
                "SELECT p.sku, sum(s.reserved) FROM stock_levels s"
                " JOIN products p ON p.id = s.product_id GROUP BY p.sku"
            )
        }

    def worker(self, processes: int, threads: int) -> Worker:
        log = self.tmp_path / f"worker-{time.monotonic_ns()}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(ORDERHUB), "worker", "--processes", str(processes), "--threads", str(threads)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so SIGKILL reaches every child
            )
        return Worker(proc, log, processes)


@dataclass
class Worker:
    """A running ``orderhub worker`` (its own process group) and its log file, which needs
    no reader thread and survives the process being SIGKILLed."""

    proc: subprocess.Popen[bytes]
    log: Path
    processes: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_running(self) -> None:
        def running() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"orderhub worker exited:\n{self.output()}")
            return self.output().count("worker running") >= self.processes

        _wait_for(f"{self.processes} worker process(es) to start", running, 60, self.output)

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up, no acks, transactions cut off."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.kill()  # whatever is left of the group


@pytest.fixture
def hub(
    postgres_url: str, private_redis: PrivateRedis, config_dir: Path, tmp_path: Path
) -> Iterator[Hub]:
    """Tenant 'acme' (SKU-A and SKU-B well stocked) with a Shopify connection; the web app on
    the private Redis; the environment an ``orderhub worker`` needs to join it."""
    reset_postgres(postgres_url)
    (config_dir / "hub.toml").write_text(f"[worker]\nsweep_seconds = {SWEEP_SECONDS}\n")
    settings = {
        "database_url": postgres_url,
        "broker_url": private_redis.url,
        "broker_namespace": NAMESPACE,
        "config_dir": config_dir,
        "data_dir": tmp_path / "var",
        "secret_key": HUB_SECRET_KEY,
    }
    app = create_app(settings)
    runtime: Runtime = app.extensions["orderhub"]
    try:
        admin = seed_tenant(runtime, "acme", stock=STOCK)["admin"]
        client = app.test_client()
        response = client.post(
            "/api/v1/connections",
            json={"plugin": "shopify", "name": "acme-store", "settings": {"secret": SECRET}},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code == 201, response.get_json()
        env = {
            **os.environ,
            "ORDERHUB_DATABASE_URL": postgres_url,
            "ORDERHUB_BROKER_URL": private_redis.url,
            "ORDERHUB_BROKER_NAMESPACE": NAMESPACE,
            "ORDERHUB_CONFIG_DIR": str(config_dir),
            "ORDERHUB_DATA_DIR": str(tmp_path / "var"),
            # the same key, or the connection's secret is unreadable
            "ORDERHUB_SECRET_KEY": HUB_SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
        yield Hub(client, runtime, response.get_json()["id"], env, tmp_path)
    finally:
        runtime.close()


def _wait_for(
    what: str, check: Callable[[], Any], timeout: float, detail: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")
        time.sleep(0.05)


def _deliveries(count: int, first_id: int) -> list[tuple[bytes, dict[str, str]]]:
    return [shopify_deliveries.delivery(first_id + i, LINES, SECRET) for i in range(count)]


def _assert_each_order_once(hub: Hub, count: int, first_id: int) -> None:
    """Exactly one confirmed order per external id, stock reserved once per order, the inbox
    all processed, and the ledger still explaining every balance."""
    external = [
        row[0]
        for row in hub.rows(
            "SELECT external_id FROM orders WHERE channel = 'shopify' AND status = 'confirmed'"
        )
    ]
    assert len(external) == hub.orders() == count
    assert sorted(external, key=int) == [str(first_id + i) for i in range(count)]  # none twice
    assert hub.reserved() == {sku: quantity * count for sku, quantity, _ in LINES}
    assert hub.inbox() == {"processed": count}
    verify = CliRunner().invoke(cli, ["stock", "verify"], env=hub.env)
    assert verify.exit_code == 0, verify.output
    assert "no drift" in verify.output


# --- the tests -------------------------------------------------------------------------------


def test_deliveries_acknowledged_while_redis_is_down_become_orders_when_it_is_back(
    hub: Hub, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    deliveries = _deliveries(50, first_id=5_000_000_001)

    # Given Redis goes down under a running web process
    private_redis.stop()
    # When Shopify delivers 50 new orders
    with caplog.at_level(logging.WARNING, logger="orderhub.worker"):
        answers = [hub.post(d) for d in deliveries]

    # Then every one is acknowledged (Shopify would otherwise retry, then drop the webhook) ...
    assert answers == [(200, {"received": True, "duplicate": False})] * 50
    # ... and kept in the inbox, waiting, with the operator told why
    assert hub.inbox() == {"pending": 50}
    assert hub.orders() == 0
    failed = [r for r in caplog.records if "could not enqueue ingest" in r.getMessage()]
    assert len(failed) == 50
    assert "the sweeper will retry" in failed[0].getMessage()

    # When Redis comes back (empty: nothing was ever queued) and a worker starts
    private_redis.start()
    worker = hub.worker(processes=1, threads=2)
    try:
        # Then its sweeper enqueues the stored deliveries, and each becomes one order
        _wait_for(
            "50 processed deliveries", lambda: hub.inbox() == {"processed": 50}, 60, worker.output
        )
        _assert_each_order_once(hub, 50, first_id=5_000_000_001)
        assert worker.terminate() == 0, worker.output()
    finally:
        worker.kill()
    assert "Traceback" not in worker.output()


def test_sigkilled_workers_lose_and_duplicate_no_order(hub: Hub) -> None:
    count, first_id = 2_000, 6_000_000_001
    deliveries = _deliveries(count, first_id)
    redis_client = hub.runtime.jobs.broker.client  # type: ignore[attr-defined]

    # Given workers (2 processes x 2 threads) consuming while 2,000 orders arrive
    first = hub.worker(processes=2, threads=2)
    answers: list[tuple[int, Any]] = []

    def post_all() -> None:
        with ThreadPoolExecutor(4) as pool:
            answers.extend(pool.map(hub.post, deliveries))

    posting = threading.Thread(target=post_all, daemon=True)
    second: Worker | None = None
    try:
        posting.start()
        first.wait_running()
        # When a third of the orders exist, every worker process is SIGKILLed
        _wait_for("a third of the orders", lambda: hub.orders() >= count // 3, 60, first.output)
        first.kill()
        orders_at_kill = hub.orders()
        # the jobs they had taken off the queue (running or prefetched) die with them
        stranded = sum(
            redis_client.scard(key)
            for key in redis_client.scan_iter(f"{NAMESPACE}:__acks__.*.intake")
        )
        assert orders_at_kill < count and stranded > 0, (orders_at_kill, stranded)

        # and new workers start
        second = hub.worker(processes=2, threads=2)
        posting.join(timeout=120)
        assert not posting.is_alive()
        assert len(answers) == count
        assert answers == [(200, {"received": True, "duplicate": False})] * count

        # Then every acknowledged delivery becomes exactly one order
        _wait_for(
            f"{count} processed deliveries",
            lambda: hub.inbox().get("processed") == count,
            90,
            lambda: f"inbox {hub.inbox()}\n{second.output() if second else ''}",
        )
        _assert_each_order_once(hub, count, first_id)
        assert second.terminate() == 0, second.output()
        assert "Traceback" not in second.output()
    finally:
        first.kill()
        if second is not None:
            second.kill()


def _poison(webhook_id: str, key: str, raw: str) -> tuple[bytes, dict[str, str]]:
    """A genuinely signed Shopify delivery with ``raw`` JSON text at ``key``."""
    payload = shopify_deliveries.order(7_000_000_001, LINES)
    payload[key] = "@@poison@@"
    body = shopify_deliveries.encode(payload).replace(b'"@@poison@@"', raw.encode())
    return body, shopify_deliveries.headers(body, SECRET, webhook_id)


def test_poison_deliveries_are_rejected_by_real_workers_and_never_loop(hub: Hub) -> None:
    # Given workers whose sweeper runs every half second with a half-second grace period
    (Path(hub.env["ORDERHUB_CONFIG_DIR"]) / "hub.toml").write_text(
        f"[worker]\nsweep_seconds = {SWEEP_SECONDS}\nsweep_grace_seconds = 0.5\n"
    )
    poisons = {
        "nested": _poison("nested", "note_attributes", "[" * 100_000 + "]" * 100_000),
        "surrogate": _poison("surrogate", "customer", '{"email":"jon\\ud800@example.com"}'),
        "nul": _poison("nul", "shipping_address", '{"name":"Jon\\u0000","country_code":"US"}'),
        "year-10000": _poison("year-10000", "updated_at", '"9999-12-31T23:59:59-14:00"'),
    }
    worker = hub.worker(processes=1, threads=2)
    try:
        worker.wait_running()
        # When Shopify delivers them among 20 good orders
        answers = [hub.post(d) for d in (*poisons.values(), *_deliveries(20, 8_000_000_001))]
        assert {status for status, _ in answers} == {200}

        # Then the good ones become orders and every poison ends rejected, after one attempt
        _wait_for(
            "no delivery pending",
            lambda: hub.inbox() == {"processed": 20, "rejected": 4},
            60,
            lambda: f"inbox {hub.inbox()}\n{worker.output()}",
        )
        rows = "SELECT delivery_key, attempts, reason FROM inbox WHERE status = 'rejected'"
        before = sorted(hub.rows(rows))
        assert [(key, attempts) for key, attempts, _ in before] == [
            (key, 1) for key in sorted(poisons)
        ]
        # and many sweeps later nothing has started on them again
        time.sleep(10 * SWEEP_SECONDS)
        assert sorted(hub.rows(rows)) == before
        assert hub.inbox() == {"processed": 20, "rejected": 4}
        assert worker.terminate() == 0, worker.output()
    finally:
        worker.kill()
    assert "Traceback" not in worker.output()
