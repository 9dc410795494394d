"""Order-creation benchmark: the hub's HTTP API on PostgreSQL against raw-SQL ceilings.

Why this exists: "how many orders per second" means little on its own, because the machine,
PostgreSQL's fsync and the number of cores decide most of it. So the same run also measures
two raw-SQL ceilings in plain psycopg on the same PostgreSQL, and reports the hub's figure as a
ratio to each (``hub orders/s / ceiling orders/s``):

* ``minimal`` — the reference transaction of the project guide, the least database work an
  order needs: an order row, two order lines, two conditional stock reservations and two
  ledger rows. ``ratio_minimal`` is the whole price of the hub, the extra rows it keeps
  included.
* ``same work`` — exactly the rows the hub writes for a 2-line order on PostgreSQL, in the
  hub's statement sequence: product lookup by SKU, customer upsert, the two conditional
  reservations (first warehouse by priority that can fill the line), nextval of the tenant's
  order sequence, then the order, 2 lines, 2 allocations, 2 ledger rows, 2 history rows, the
  audit row (with the order snapshot as ``after``) and the event row — in one data-modifying
  CTE like the hub's (``--same-work-shape cte``, the default) or one INSERT per table
  (``statements``). ``ratio_same_work`` is what the hub's own layers (HTTP, auth, validation,
  SQLAlchemy, Python) cost on top of its database work.

The ratios are what to track and optimise; the absolute figures are only comparable on one
machine.

It creates three scratch databases (the hub's and one per ceiling), runs
``orderhub init --demo`` on each (same schema, indexes, constraints, triggers, demo tenant),
seeds plenty of stock, then:

1. the two raw ceilings, one after the other: 4 processes, one psycopg connection each;
2. the hub under each server kind asked for (waitress, gunicorn sync, gunicorn gthread), driven
   by a multi-process HTTP load generator with keep-alive connections;
3. a profiled single-threaded server (cProfile plus SQL statement counts per request), written
   to ``bench/results/orders-profile.txt`` and summarised in the JSON.

Broker modes (``--broker``). ``redis`` (the default) is the production layout: every hub
server process gets ``ORDERHUB_BROKER_URL=redis://127.0.0.1:6379/14`` and a per-run
``ORDERHUB_BROKER_NAMESPACE``, and each server run has its own ``orderhub worker`` process that
dispatches the domain events (the ``events`` outbox) while the load runs. After the measured
window the script waits (bounded) for the outbox to drain, reports the events created, left
undispatched and the drain time, and counts the worker's CPU in the per-order breakdown.
``embedded`` reproduces the old behaviour: the in-process stub broker, so waitress dispatches
events in-process and gunicorn never dispatches them (they stay queued in each process's
memory), which leaves the fan-out cost out of the gunicorn figures.

Everything it starts is stopped, the databases are dropped and the run's Redis keys deleted at
the end, even on failure.
Run: ``.venv/bin/python bench/orders.py`` (see ``--help``); results go to
``bench/results/orders.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import http.client
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS = ROOT / "bench" / "results"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
SKUS = ("TSHIRT-BLK-M", "TSHIRT-WHT-M", "MUG-LOGO", "HOODIE-GRY-L", "CAP-RED")
SEED_WAREHOUSE = "MAIN"
SEED_QUANTITY = 1_000_000  # the hub's per-movement maximum; far more than a run takes
CONSIGNEE = {
    "name": "Ann Lee",
    "phone": "+1 555 0100",
    "address": {
        "line1": "1 Main St",
        "city": "Newark",
        "region": "NJ",
        "postcode": "07101",
        "country": "US",
    },
}


# --- small helpers ---------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(q / 100 * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def free_port() -> int:
    """A free loopback TCP port (the kernel picks; we close it straight away)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_url(admin_url: str, name: str) -> str:
    """The admin URL with another database name."""
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def git_state() -> dict[str, Any]:
    """Which code was measured: the commit and whether hub/ had local changes."""

    def run(*args: str) -> str:
        out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    return {
        "commit": run("git", "rev-parse", "HEAD"),
        "hub_dirty": bool(run("git", "status", "--porcelain", "--", "hub")),
    }


# --- scratch databases -----------------------------------------------------------------------


@dataclass
class Scratch:
    """A scratch database made ready for the benchmark: migrated, demo tenant, plenty of stock."""

    name: str
    url: str
    token: str = ""


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Broker:
    """How hub processes queue jobs: ``redis`` (separate worker processes) or ``embedded``."""

    mode: str
    url: str = "embedded"
    namespace: str = ""
    worker_processes: int = 1
    worker_threads: int = 4

    @property
    def redis(self) -> bool:
        return self.mode == "redis"

    def env(self) -> dict[str, str]:
        if not self.redis:
            return {"ORDERHUB_BROKER_URL": "embedded"}
        return {"ORDERHUB_BROKER_URL": self.url, "ORDERHUB_BROKER_NAMESPACE": self.namespace}

    def worker_command(self) -> list[str]:
        return [
            str(VENV_BIN / "orderhub"),
            "worker",
            "--processes",
            str(self.worker_processes),
            "--threads",
            str(self.worker_threads),
        ]

    def delete_keys(self) -> int:
        """Delete this run's keys (everything under ``<namespace>:``) from Redis."""
        if not self.redis:
            return 0
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            keys = list(client.scan_iter(match=f"{self.namespace}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            return len(keys)
        finally:
            client.close()


EMBEDDED = Broker("embedded")


def hub_env(
    url: str, workdir: Path, broker: Broker = EMBEDDED, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment every hub process gets: our database, the broker, quiet logs."""
    config = workdir / "config"
    (config / "tenants").mkdir(parents=True, exist_ok=True)
    # The figures are for the default rules: an empty demo tenant file keeps `init --demo`
    # from writing the demo's own (its rules and its log notifier).
    (config / "tenants" / "demo.toml").touch()
    env = dict(os.environ)
    env.update(
        ORDERHUB_DATABASE_URL=url,
        ORDERHUB_CONFIG_DIR=str(config),
        ORDERHUB_DATA_DIR=str(workdir / "var"),
        ORDERHUB_SECRET_KEY="bench-only-secret",
        ORDERHUB_LOG_LEVEL="WARNING",
    )
    env.pop("ORDERHUB_BROKER_NAMESPACE", None)
    env.update(broker.env())
    env.update(extra or {})
    return env


def prepare(admin_url: str, name: str, workdir: Path) -> Scratch:
    """Create, migrate (``orderhub init --demo``) and seed stock through the hub's own CLI.

    Always with the embedded broker: setup is not measured, and it keeps the two scratch
    databases' jobs off the run's Redis namespace (the runs count only their own events).
    """
    create_database(admin_url, name)
    scratch = Scratch(name, db_url(admin_url, name))
    env = hub_env(scratch.url, workdir)
    out = subprocess.run(
        [str(VENV_BIN / "orderhub"), "init", "--demo"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    match = re.search(r"^API token: (\S+)$", out, re.M)
    if not match:
        raise RuntimeError(f"no 'API token:' line from orderhub init --demo:\n{out}")
    scratch.token = match.group(1)
    csv = workdir / f"{name}-stock.csv"
    csv.write_text(
        "warehouse,sku,quantity\n"
        + "".join(f"{SEED_WAREHOUSE},{sku},{SEED_QUANTITY}\n" for sku in SKUS)
    )
    subprocess.run(
        [str(VENV_BIN / "orderhub"), "stock", "import", "--tenant", "demo", str(csv)],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return scratch


NOTIFY_TENANT_TOML = """\
# written by bench/orders.py --notify: one notifier, so every order_created event is fanned out
name = "Demo"

[[notifiers]]
name = "bench-log"
plugin = "log"
events = ["order_created"]
settings = { level = "DEBUG" }
"""


def analyze(url: str) -> None:
    """Fresh statistics before each run, as autovacuum would keep them in a live database.

    Without them the generic plans psycopg's prepared statements get can pick a tenant-only
    index (e.g. customers by tenant_id, then filter on e-mail), which costs O(customers) per
    order and would penalise whichever server runs later, on a bigger table.

    Only tables that hold rows: analysing an empty table records "0 rows", and the generic
    plans of PostgreSQL's own foreign-key checks (``SELECT 1 FROM orders WHERE id = $1 FOR KEY
    SHARE``, 6 per order, and the same on customers) then become sequential scans that grow
    with the table through the whole run — which penalised whichever server ran first, on
    empty ``orders``/``customers``. Left unanalysed, an empty table keeps "never analysed"
    (assumed 10 pages) and index scans, as in the ceilings' databases, which are not analysed.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        for table in tables:
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:  # type: ignore[index]
                conn.execute(f"ANALYZE {table}")


def pg_counters(url: str) -> dict[str, int]:
    """This database's cumulative counters (transactions, rows) from pg_stat_database."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_returned, tup_fetched FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")
    return dict(zip((*keys, "tup_returned", "tup_fetched"), (int(v) for v in row), strict=True))


def per_order(before: dict[str, int], after: dict[str, int], orders: int) -> dict[str, float]:
    return {k: round((after[k] - before[k]) / orders, 2) for k in before} if orders else {}


# --- the events outbox -----------------------------------------------------------------------


def last_event_id(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])  # type: ignore[index]


def outbox(url: str, after_id: int) -> dict[str, int]:
    """Events with ``id > after_id``: created, still undispatched, and dispatched at insert
    (``dispatched_at = created_at``: nobody listens, so the hub never enqueued a job), plus the
    whole table's undispatched count."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE id > %s),"
            " count(*) FILTER (WHERE id > %s AND dispatched_at IS NULL),"
            " count(*) FILTER (WHERE id > %s AND dispatched_at = created_at),"
            " count(*) FILTER (WHERE dispatched_at IS NULL)"
            " FROM events",
            (after_id, after_id, after_id),
        ).fetchone()
    assert row is not None
    keys = ("created", "undispatched", "dispatched_at_insert", "undispatched_whole_table")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def wait_drained(url: str, after_id: int, timeout: float) -> tuple[float, int]:
    """Poll until the run's events are all dispatched (bounded); (seconds waited, left)."""
    t0 = time.monotonic()
    while True:
        left = outbox(url, after_id)["undispatched"]
        waited = time.monotonic() - t0
        if left == 0 or waited >= timeout:
            return round(waited, 2), left
        time.sleep(0.1)


# --- raw SQL ceiling -------------------------------------------------------------------------


@dataclass
class WorkerResult:
    """What one load process measured: latencies (s) of requests completed in the window."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    warmup_done: int = 0
    first_start: float = float("inf")
    last_end: float = 0.0
    cpu_seconds: float = 0.0


def _raw_worker(
    url: str,
    worker: int,
    warm_end: float,
    stop_at: float,
    ids: dict[str, Any],
    out: Any,
) -> None:
    """One connection doing the minimum per-order transaction until ``stop_at``."""
    rng = random.Random(worker)
    cpu0 = os.times()
    result = WorkerResult()
    tenant, warehouse = ids["tenant_id"], ids["warehouse_id"]
    products: dict[str, tuple[int, Decimal]] = ids["products"]
    with psycopg.connect(url) as conn:
        i = 0
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                break
            i += 1
            pair = sorted(rng.sample(SKUS, 2), key=lambda s: products[s][0])
            number = f"RAW-{worker}-{i}"
            subtotal = sum((products[s][1] for s in pair), Decimal(0))
            now = dt.datetime.now(dt.UTC)
            try:
                with conn.transaction():
                    order_id = conn.execute(
                        "INSERT INTO orders (tenant_id, number, channel, status, order_type,"
                        " priority, currency, subtotal, shipping_total, tax_total,"
                        " discount_total, total, consignee_name, consignee_phone, ship_line1,"
                        " ship_city, ship_region, ship_postcode, ship_country, created_at,"
                        " updated_at) VALUES (%s, %s, 'api', 'confirmed', 'normal', 0, 'USD',"
                        " %s, 0, 0, 0, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                        (
                            tenant,
                            number,
                            subtotal,
                            subtotal,
                            CONSIGNEE["name"],
                            CONSIGNEE["phone"],
                            "1 Main St",
                            "Newark",
                            "NJ",
                            "07101",
                            "US",
                            now,
                            now,
                        ),
                    ).fetchone()[0]  # type: ignore[index]
                    conn.execute(
                        "INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, sku,"
                        " name, quantity, unit_price, line_total) VALUES"
                        " (%s, %s, 1, %s, %s, %s, 1, %s, %s), (%s, %s, 2, %s, %s, %s, 1, %s, %s)",
                        [
                            v
                            for s in pair
                            for v in (
                                tenant,
                                order_id,
                                products[s][0],
                                s,
                                s,
                                products[s][1],
                                products[s][1],
                            )
                        ],
                    )
                    for s in pair:
                        cur = conn.execute(
                            "UPDATE stock_levels SET reserved = reserved + 1, updated_at = %s"
                            " WHERE warehouse_id = %s AND product_id = %s"
                            " AND on_hand - reserved >= 1",
                            (now, warehouse, products[s][0]),
                        )
                        if cur.rowcount != 1:
                            raise RuntimeError("out of stock")
                    conn.execute(
                        "INSERT INTO stock_ledger (tenant_id, warehouse_id, product_id, kind,"
                        " on_hand_delta, reserved_delta, reference, actor, at) VALUES"
                        " (%s, %s, %s, 'reserve', 0, 1, %s, 'bench', %s),"
                        " (%s, %s, %s, 'reserve', 0, 1, %s, 'bench', %s)",
                        [v for s in pair for v in (tenant, warehouse, products[s][0], number, now)],
                    )
                ok = True
            except Exception as exc:
                result.errors[type(exc).__name__] += 1
                ok = False
            t1 = time.monotonic()
            if ok and warm_end <= t1 <= stop_at:
                result.latencies.append(t1 - t0)
            elif ok:
                result.warmup_done += 1
        # Stay connected a little past the window: the closing /proc snapshot is taken at
        # stop_at, and a backend exiting just then loses its cmdline (so it was counted as
        # "postgres_other" with its whole lifetime's CPU, and the bench db read ~0).
        time.sleep(max(0.0, stop_at + 0.5 - time.monotonic()))
    cpu1 = os.times()
    result.cpu_seconds = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out.put(result)


def raw_ids(url: str) -> dict[str, Any]:
    """Tenant, warehouse and product ids/prices the raw workers write against."""
    with psycopg.connect(url) as conn:
        tenant_id = conn.execute("SELECT id FROM tenants WHERE slug = 'demo'").fetchone()[0]  # type: ignore[index]
        warehouse_id = conn.execute(
            "SELECT id FROM warehouses WHERE tenant_id = %s AND code = %s",
            (tenant_id, SEED_WAREHOUSE),
        ).fetchone()[0]  # type: ignore[index]
        products = {
            sku: (pid, price)
            for sku, pid, price in conn.execute(
                "SELECT sku, id, price FROM products WHERE tenant_id = %s", (tenant_id,)
            )
        }
    return {"tenant_id": tenant_id, "warehouse_id": warehouse_id, "products": products}


def run_raw(
    url: str,
    connections: int,
    warmup: float,
    duration: float,
    target: Callable[..., None] = _raw_worker,
    ids: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ceiling: ``connections`` processes running ``target`` (one transaction per order) for
    ``duration`` after ``warmup``; the minimal one unless told otherwise."""
    ids = raw_ids(url) if ids is None else ids
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 0.5
    warm_end, stop_at = start + warmup, start + warmup + duration
    before = pg_counters(url)
    procs = [
        ctx.Process(target=target, args=(url, w, warm_end, stop_at, ids, queue))
        for w in range(connections)
    ]
    cpu = CpuWindow({}, url.rsplit("/", 1)[1], warm_end, stop_at)
    for p in procs:
        p.start()
    results = [queue.get(timeout=warmup + duration + 60) for _ in procs]
    for p in procs:
        p.join(10)
    time.sleep(1.0)  # let PostgreSQL flush its statistics
    after = pg_counters(url)
    summary = summarise(results, duration, None)
    cpu_ms = cpu.per_order_ms(summary["ok"])
    done = summary["requests"] + summary["warmup_requests"]
    if done:
        cpu_ms["raw_sql_clients"] = round(sum(r.cpu_seconds for r in results) / done * 1000, 3)
    summary["cpu_ms_per_order"] = cpu_ms
    summary.update(
        connections=connections,
        kind="raw psycopg, one process per connection",
        pg_per_order=per_order(before, after, done),
    )
    return summary


MINIMAL_STATEMENTS = (
    "BEGIN; INSERT orders RETURNING id; INSERT 2 order_lines (one statement);"
    " 2x UPDATE stock_levels SET reserved = reserved + 1 WHERE warehouse_id AND"
    " product_id AND on_hand - reserved >= 1; INSERT 2 stock_ledger rows"
    " (one statement); COMMIT"
)

GOAL_RATIO = 0.30
CEILING_MEANING = {
    "ratio_minimal": "hub orders/s over the minimal ceiling (order + 2 lines + 2 reservations"
    " + 2 ledger rows in raw SQL): the whole price of the hub per order, the extra rows it"
    " keeps (customer, allocations, history, audit, event, number) included.",
    "ratio_same_work": "hub orders/s over the same-work ceiling (exactly the rows the hub"
    " writes, same statement sequence, in raw SQL): what the hub's own layers (HTTP, auth,"
    " validation, SQLAlchemy, Python) cost on top of its database work; 1.0 would mean they"
    " cost nothing.",
}


def _ratio(orders_per_s: float, ceiling: dict[str, Any]) -> float | None:
    return round(orders_per_s / ceiling["orders_per_s"], 3) if ceiling["orders_per_s"] else None


# --- raw SQL ceiling, the same work as the hub -----------------------------------------------
#
# Everything the hub's orders.create writes for a 2-line API order on PostgreSQL, in the same
# statement sequence as the hub (product lookup, customer upsert, one conditional reservation
# per line, nextval, then every row in one data-modifying CTE), written as plain SQL with plain
# parameters (arrays for the multi-row tables) and prepared by psycopg as usual. Not the hub's
# code: it does not import hub/, so it stays a fixed yardstick while hub/ changes.

ACTOR = "api:bench"  # the actor column the rows carry (the hub writes its token's actor)

SAME_PRODUCTS = (
    "SELECT id, sku, name, price, low_stock_threshold, active FROM products"
    " WHERE tenant_id = %s AND sku IN (%s, %s)"
)
SAME_CUSTOMER = (
    "INSERT INTO customers (tenant_id, email, name, phone, vip, created_at)"
    " VALUES (%s, %s, %s, %s, false, %s)"
    " ON CONFLICT (tenant_id, email) DO UPDATE SET"
    " name = coalesce(customers.name, excluded.name),"
    " phone = coalesce(customers.phone, excluded.phone)"
    " RETURNING id, email, name, phone"
)
# The hub's fast path: the first active warehouse by priority that can fill the whole line.
SAME_RESERVE = (
    "UPDATE stock_levels SET reserved = reserved + %(q)s, updated_at = %(now)s"
    " WHERE id = (SELECT l.id FROM stock_levels l JOIN warehouses w ON w.id = l.warehouse_id"
    " WHERE l.tenant_id = %(t)s AND l.product_id = %(p)s AND w.active"
    " AND l.on_hand - l.reserved >= %(q)s ORDER BY w.priority, w.id LIMIT 1)"
    " AND on_hand - reserved >= %(q)s"
    " RETURNING warehouse_id, on_hand - reserved"
)
SAME_NEXTVAL = "SELECT nextval(%s::regclass)"
_ORDER_COLS = (
    "tenant_id, number, channel, external_id, external_name, status, order_type, hold_reason,"
    " priority, customer_id, currency, subtotal, shipping_total, tax_total, discount_total,"
    " total, consignee_name, consignee_phone, ship_line1, ship_line2, ship_city, ship_region,"
    " ship_postcode, ship_country, note, parent_number, merged_into, created_at, paid_at,"
    " updated_at"
)
_ORDER_VALUES = (
    "%(t)s, %(number)s, %(channel)s, %(external_id)s, %(external_name)s, %(status)s,"
    " %(order_type)s, %(hold_reason)s, %(priority)s, %(customer_id)s, %(currency)s,"
    " %(subtotal)s, %(shipping)s, %(tax)s, %(discount)s, %(total)s, %(c_name)s, %(c_phone)s,"
    " %(line1)s, %(line2)s, %(city)s, %(region)s, %(postcode)s, %(country)s, %(note)s,"
    " NULL, NULL, %(now)s, %(paid_at)s, %(now)s"
)
_TAKEN = "unnest(%(a_w)s::int[], %(a_p)s::int[], %(a_q)s::int[]) AS x(w, p, q)"
SAME_WRITE_CTE = f"""
WITH o AS (
  INSERT INTO orders ({_ORDER_COLS}) VALUES ({_ORDER_VALUES})
  RETURNING id, number
), l AS (
  INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, sku, name, quantity,
                           unit_price, line_total)
  SELECT %(t)s, o.id, x.n, x.p, x.s, x.nm, x.q, x.u, x.lt
  FROM o, unnest(%(l_no)s::int[], %(l_p)s::int[], %(l_sku)s::text[], %(l_name)s::text[],
                 %(l_q)s::int[], %(l_u)s::numeric[], %(l_lt)s::numeric[])
          AS x(n, p, s, nm, q, u, lt)
), a AS (
  INSERT INTO allocations (tenant_id, order_id, warehouse_id, product_id, quantity)
  SELECT %(t)s, o.id, x.w, x.p, x.q FROM o, {_TAKEN}
), g AS (
  INSERT INTO stock_ledger (tenant_id, warehouse_id, product_id, kind, on_hand_delta,
                            reserved_delta, reason, reference, actor, at)
  SELECT %(t)s, x.w, x.p, 'reserve', 0, x.q, NULL, o.number, %(actor)s, %(now)s
  FROM o, {_TAKEN}
), h AS (
  INSERT INTO order_history (tenant_id, order_id, action, from_status, to_status, reason,
                             actor, details, at)
  SELECT %(t)s, o.id, x.action, x.f, x.s, x.r, %(actor)s, NULL, %(now)s
  FROM o, unnest(%(h_action)s::text[], %(h_from)s::text[], %(h_to)s::text[],
                 %(h_reason)s::text[]) AS x(action, f, s, r)
), au AS (
  INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, before, after)
  SELECT %(t)s, %(now)s, %(actor)s, 'order.create', 'order', o.number, NULL, %(after)s::json
  FROM o
), e AS (
  INSERT INTO events (tenant_id, name, payload, created_at, dispatched_at)
  VALUES (%(t)s, 'order_created', %(payload)s::json, %(now)s, %(dispatched_at)s)
  RETURNING id
)
SELECT o.id, e.id FROM o, e
"""
# The "statements" shape: the same rows, one INSERT per table (multi-row VALUES).
SAME_WRITE_STATEMENTS = (
    f"INSERT INTO orders ({_ORDER_COLS}) VALUES ({_ORDER_VALUES}) RETURNING id",
    "INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, sku, name, quantity,"
    " unit_price, line_total) VALUES"
    " (%(t)s, %(order_id)s, 1, %(p1)s, %(sku1)s, %(name1)s, %(q1)s, %(u1)s, %(lt1)s),"
    " (%(t)s, %(order_id)s, 2, %(p2)s, %(sku2)s, %(name2)s, %(q2)s, %(u2)s, %(lt2)s)",
    "INSERT INTO allocations (tenant_id, order_id, warehouse_id, product_id, quantity) VALUES"
    " (%(t)s, %(order_id)s, %(w1)s, %(ap1)s, %(aq1)s), (%(t)s, %(order_id)s, %(w2)s, %(ap2)s,"
    " %(aq2)s)",
    "INSERT INTO stock_ledger (tenant_id, warehouse_id, product_id, kind, on_hand_delta,"
    " reserved_delta, reason, reference, actor, at) VALUES"
    " (%(t)s, %(w1)s, %(ap1)s, 'reserve', 0, %(aq1)s, NULL, %(number)s, %(actor)s, %(now)s),"
    " (%(t)s, %(w2)s, %(ap2)s, 'reserve', 0, %(aq2)s, NULL, %(number)s, %(actor)s, %(now)s)",
    "INSERT INTO order_history (tenant_id, order_id, action, from_status, to_status, reason,"
    " actor, details, at) VALUES"
    " (%(t)s, %(order_id)s, 'created', NULL, 'new', NULL, %(actor)s, NULL, %(now)s),"
    " (%(t)s, %(order_id)s, 'reserved', 'new', %(status)s, 'stock reserved', %(actor)s, NULL,"
    " %(now)s)",
    "INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, before, after)"
    " VALUES (%(t)s, %(now)s, %(actor)s, 'order.create', 'order', %(number)s, NULL,"
    " %(after)s::json)",
    "INSERT INTO events (tenant_id, name, payload, created_at, dispatched_at) VALUES"
    " (%(t)s, 'order_created', %(payload)s::json, %(now)s, %(dispatched_at)s) RETURNING id",
)


def _amount(value: Decimal) -> str:
    """Two places unless the amount has more (the hub's API shape)."""
    cents = value.quantize(Decimal("0.01"))
    return str(cents) if cents == value else str(value.normalize())


def order_snapshot(
    number: str,
    customer: tuple[Any, ...],
    lines: list[dict[str, Any]],
    subtotal: Decimal,
    now: dt.datetime,
) -> dict[str, Any]:
    """The audit ``after`` document: the same keys and values the hub's order snapshot has."""
    address = CONSIGNEE["address"]
    assert isinstance(address, dict)
    return {
        "number": number,
        "status": "confirmed",
        "type": "normal",
        "priority": 0,
        "hold_reason": None,
        "channel": "api",
        "external_id": None,
        "external_name": None,
        "currency": "USD",
        "subtotal": _amount(subtotal),
        "shipping_total": "0.00",
        "tax_total": "0.00",
        "discount_total": "0.00",
        "total": _amount(subtotal),
        "customer": {
            "id": customer[0],
            "email": customer[1],
            "name": customer[2],
            "phone": customer[3],
        },
        "consignee": {
            "name": CONSIGNEE["name"],
            "phone": CONSIGNEE["phone"],
            "address": {
                "line1": address["line1"],
                "line2": None,
                "city": address["city"],
                "region": address["region"],
                "postcode": address["postcode"],
                "country": address["country"],
            },
        },
        "lines": [
            {
                "line_no": x["line_no"],
                "sku": x["sku"],
                "name": x["name"],
                "quantity": x["quantity"],
                "unit_price": _amount(x["unit_price"]),
                "line_total": _amount(x["line_total"]),
            }
            for x in lines
        ],
        "note": None,
        "parent_number": None,
        "merged_into": None,
        "created_at": now.isoformat(),
        "paid_at": None,
        "updated_at": now.isoformat(),
    }


def _same_work_worker(
    url: str,
    worker: int,
    warm_end: float,
    stop_at: float,
    ids: dict[str, Any],
    out: Any,
) -> None:
    """One connection doing, per order, every row the hub writes, until ``stop_at``."""
    rng = random.Random(1000 + worker)
    cpu0 = os.times()
    result = WorkerResult()
    tenant, sequence, shape = ids["tenant_id"], ids["sequence"], ids["shape"]
    address = CONSIGNEE["address"]
    assert isinstance(address, dict)
    with psycopg.connect(url) as conn:
        i = 0
        while True:
            t0 = time.monotonic()
            if t0 >= stop_at:
                break
            i += 1
            skus = rng.sample(SKUS, 2)  # order lines in the order the client sent them
            email = f"same-{worker}-{i}@bench.example"
            now = dt.datetime.now(dt.UTC)
            try:
                with conn.transaction():
                    found = {r[1]: r for r in conn.execute(SAME_PRODUCTS, (tenant, *skus))}
                    if len(found) != 2 or not all(r[5] for r in found.values()):
                        raise RuntimeError("unknown or inactive SKU")
                    lines = [
                        {
                            "line_no": n,
                            "product_id": found[s][0],
                            "sku": s,
                            "name": found[s][2],
                            "quantity": 1,
                            "unit_price": found[s][3],
                            "line_total": found[s][3],
                        }
                        for n, s in enumerate(skus, start=1)
                    ]
                    customer = conn.execute(
                        SAME_CUSTOMER, (tenant, email, "Bench Customer", None, now)
                    ).fetchone()
                    assert customer is not None
                    taken = []  # (warehouse, product, quantity), products in ascending id
                    for product_id in sorted(x["product_id"] for x in lines):
                        hit = conn.execute(
                            SAME_RESERVE, {"q": 1, "now": now, "t": tenant, "p": product_id}
                        ).fetchone()
                        if hit is None:
                            raise RuntimeError("out of stock")
                        taken.append((hit[0], product_id, 1))
                    seq = conn.execute(SAME_NEXTVAL, (sequence,)).fetchone()[0]  # type: ignore[index]
                    number = f"SO-{seq:06d}"
                    subtotal = sum((x["line_total"] for x in lines), Decimal(0))
                    after = order_snapshot(number, customer, lines, subtotal, now)
                    params: dict[str, Any] = {
                        "t": tenant,
                        "number": number,
                        "channel": "api",
                        "external_id": None,
                        "external_name": None,
                        "status": "confirmed",
                        "order_type": "normal",
                        "hold_reason": None,
                        "priority": 0,
                        "customer_id": customer[0],
                        "currency": "USD",
                        "subtotal": subtotal,
                        "shipping": Decimal(0),
                        "tax": Decimal(0),
                        "discount": Decimal(0),
                        "total": subtotal,
                        "c_name": CONSIGNEE["name"],
                        "c_phone": CONSIGNEE["phone"],
                        "line1": address["line1"],
                        "line2": None,
                        "city": address["city"],
                        "region": address["region"],
                        "postcode": address["postcode"],
                        "country": address["country"],
                        "note": None,
                        "now": now,
                        "paid_at": None,
                        "actor": ACTOR,
                        "after": json.dumps(after),
                        "payload": json.dumps({"number": number, "status": "confirmed"}),
                        # as the hub writes it in this layout (its outbox shows none dispatched
                        # at insert): NULL, for the worker to dispatch (not part of the order)
                        "dispatched_at": None,
                    }
                    if shape == "cte":
                        params.update(
                            l_no=[x["line_no"] for x in lines],
                            l_p=[x["product_id"] for x in lines],
                            l_sku=[x["sku"] for x in lines],
                            l_name=[x["name"] for x in lines],
                            l_q=[x["quantity"] for x in lines],
                            l_u=[x["unit_price"] for x in lines],
                            l_lt=[x["line_total"] for x in lines],
                            a_w=[a[0] for a in taken],
                            a_p=[a[1] for a in taken],
                            a_q=[a[2] for a in taken],
                            h_action=["created", "reserved"],
                            h_from=[None, "new"],
                            h_to=["new", "confirmed"],
                            h_reason=[None, "stock reserved"],
                        )
                        conn.execute(SAME_WRITE_CTE, params).fetchone()
                    else:
                        first, *rest = SAME_WRITE_STATEMENTS
                        params["order_id"] = conn.execute(first, params).fetchone()[0]  # type: ignore[index]
                        for n, x in enumerate(lines, start=1):
                            params.update(
                                {
                                    f"p{n}": x["product_id"],
                                    f"sku{n}": x["sku"],
                                    f"name{n}": x["name"],
                                    f"q{n}": x["quantity"],
                                    f"u{n}": x["unit_price"],
                                    f"lt{n}": x["line_total"],
                                }
                            )
                        for n, (w, p, q) in enumerate(taken, start=1):
                            params.update({f"w{n}": w, f"ap{n}": p, f"aq{n}": q})
                        for statement in rest:
                            conn.execute(statement, params)
                ok = True
            except Exception as exc:
                result.errors[type(exc).__name__] += 1
                ok = False
            t1 = time.monotonic()
            if ok and warm_end <= t1 <= stop_at:
                result.latencies.append(t1 - t0)
            elif ok:
                result.warmup_done += 1
        time.sleep(max(0.0, stop_at + 0.5 - time.monotonic()))  # see _raw_worker
    cpu1 = os.times()
    result.cpu_seconds = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out.put(result)


def same_work_ids(url: str, shape: str, notify: bool) -> dict[str, Any]:
    """The demo tenant and its order-number sequence (the hub's naming, checked to exist)."""
    with psycopg.connect(url) as conn:
        tenant_id = conn.execute("SELECT id FROM tenants WHERE slug = 'demo'").fetchone()[0]  # type: ignore[index]
        sequence = f"orderhub_order_seq_{int(tenant_id)}"
        if conn.execute("SELECT to_regclass(%s)", (sequence,)).fetchone()[0] is None:  # type: ignore[index]
            raise RuntimeError(f"no sequence {sequence} after orderhub init --demo")
    return {"tenant_id": tenant_id, "sequence": sequence, "shape": shape, "notify": notify}


def audit_after_bytes(url: str) -> int:
    """Average size of the order-creation audit snapshots (``after``) in a database."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(round(avg(octet_length(after::text))), 0) FROM audit_log"
            " WHERE action = 'order.create'"
        ).fetchone()
    return int(row[0]) if row else 0  # type: ignore[index]


def same_work_statements(shape: str) -> str:
    writes = (
        "one INSERT … WITH data-modifying CTE writing the order, 2 order_lines, 2 allocations,"
        " 2 stock_ledger 'reserve' rows, 2 order_history rows, 1 audit_log row (json after,"
        " the order snapshot) and 1 events row, arrays unnested for the 2-row tables"
        if shape == "cte"
        else "INSERT orders RETURNING id; then one multi-row INSERT each for 2 order_lines,"
        " 2 allocations, 2 stock_ledger 'reserve' rows, 2 order_history rows; INSERT 1"
        " audit_log row (json after, the order snapshot); INSERT 1 events row RETURNING id"
    )
    return (
        "BEGIN; SELECT products WHERE tenant_id AND sku IN (2); INSERT customers … ON CONFLICT"
        " (tenant_id, email) DO UPDATE … RETURNING; 2x UPDATE stock_levels SET reserved, updated_at"
        " WHERE id = (first active warehouse by priority that can fill the line, subquery) AND"
        f" free >= qty RETURNING; SELECT nextval(tenant's order sequence); {writes}; COMMIT"
    )


# --- CPU accounting ----------------------------------------------------------------------


def cpu_snapshot(sessions: dict[str, int], dbname: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far: each named process session (``{"server": sid, "worker": sid}``:
    everything we start gets its own session), PostgreSQL backends of the bench database,
    other postgres processes, Redis, and the whole machine's busy time.

    Read from /proc so the breakdown is measured, not guessed: with two cores shared by load
    generator, server and database (and whatever else runs on the box), who burns the CPU per
    order decides the throughput.
    """
    tick = os.sysconf("SC_CLK_TCK")
    by_sid = {sid: name for name, sid in sessions.items()}
    out: dict[str, dict[int, float]] = {name: {} for name in sessions}
    out.update(postgres_bench_db={}, postgres_other={}, redis={})
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            # fields[0] is stat field 3 (state): session is field 6, utime/stime 14/15
            session, used = int(fields[3]), (int(fields[11]) + int(fields[12])) / tick
            pid = int(entry.name)
            if session in by_sid:
                out[by_sid[session]][pid] = used
            elif comm == "redis-server":
                out["redis"][pid] = used
            elif comm == "postgres":
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    cmdline = f.read().decode(errors="replace")
                key = "postgres_bench_db" if f" {dbname} " in cmdline else "postgres_other"
                out[key][pid] = used
        except (OSError, ValueError, IndexError):
            continue
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait
    out["machine_busy"] = {0: (sum(cpu[:8]) - cpu[3] - cpu[4]) / tick}
    return out


class CpuWindow:
    """Snapshots CPU use at the start and the end of the measured window, on a timer thread."""

    def __init__(self, sessions: dict[str, int], dbname: str, start: float, end: float) -> None:
        self.sid, self.db, self.start, self.end = sessions, dbname, start, end
        self.before: dict[str, dict[int, float]] = {}
        self.after: dict[str, dict[int, float]] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        time.sleep(max(0.0, self.start - time.monotonic()))
        self.before = cpu_snapshot(self.sid, self.db)
        time.sleep(max(0.0, self.end - time.monotonic()))
        self.after = cpu_snapshot(self.sid, self.db)

    def per_order_ms(self, orders: int) -> dict[str, float]:
        self.thread.join(30)
        if not (self.before and self.after and orders):
            return {}
        return cpu_delta_ms(self.before, self.after, orders)


def cpu_delta_ms(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], orders: int
) -> dict[str, float]:
    """CPU milliseconds per order between two snapshots, per category.

    Per process: a process that exited in between drops out instead of making the difference
    negative; one that started in between counts from zero.
    """
    if not orders:
        return {}
    return {
        k: round(
            sum(v - before[k].get(pid, 0.0) for pid, v in after.get(k, {}).items()) / orders * 1000,
            3,
        )
        for k in before
    }


# --- HTTP load generator ---------------------------------------------------------------------


def _order_body(rng: random.Random, email: str) -> bytes:
    a, b = rng.sample(SKUS, 2)
    return json.dumps(
        {
            "lines": [{"sku": a, "quantity": 1}, {"sku": b, "quantity": 1}],
            "consignee": CONSIGNEE,
            "customer": {"email": email, "name": "Bench Customer"},
        }
    ).encode()


@dataclass(frozen=True)
class Requests:
    """What the load generator sends, when it is not ``POST /api/v1/orders``: ``build(tag, i)``
    gives (path, body, headers) of client ``tag``'s ``i``-th request (so every request can be
    distinct, e.g. a signed webhook delivery), and ``ok`` is the status that counts as done.
    Other benchmarks (bench/ingest.py) reuse this one load generator through it."""

    build: Callable[[str, int], tuple[str, bytes, dict[str, str]]]
    ok: str = "200"


def _client_thread(
    port: int,
    token: str,
    tag: str,
    start: float,
    warm_end: float,
    stop_at: float,
    quota: int | None,
    result: WorkerResult,
    lock: threading.Lock,
    requests: Requests | None = None,
) -> None:
    rng = random.Random(tag)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    ok = "201" if requests is None else requests.ok
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    # Every client starts at the same moment, so a fixed number of requests (warm-up 0) is
    # exactly that many measured ones, none lost to process start-up.
    time.sleep(max(0.0, start - time.monotonic()))
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    warm = 0
    first, last = float("inf"), 0.0
    i = 0
    while True:
        t0 = time.monotonic()
        if quota is None and t0 >= stop_at:
            break
        if quota is not None and t0 >= warm_end and len(latencies) >= quota:
            break
        i += 1
        if requests is None:
            path, body = "/api/v1/orders", _order_body(rng, f"{tag}-{i}@bench.example")
        else:
            path, body, headers = requests.build(tag, i)
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
            conn.close()
        t1 = time.monotonic()
        measured = warm_end <= t1 <= stop_at if quota is None else t0 >= warm_end
        if not measured:
            warm += 1
            continue
        first, last = min(first, t0), max(last, t1)
        if status == ok:
            latencies.append(t1 - t0)
        else:
            errors[status] += 1
    conn.close()
    with lock:
        result.latencies.extend(latencies)
        result.errors.update(errors)
        result.warmup_done += warm
        result.first_start = min(result.first_start, first)
        result.last_end = max(result.last_end, last)


def _client_process(
    port: int,
    token: str,
    threads: int,
    tag: str,
    start: float,
    warm_end: float,
    stop_at: float,
    quota: int | None,
    out: Any,
    requests: Requests | None = None,
) -> None:
    cpu0 = os.times()
    result, lock = WorkerResult(), threading.Lock()
    workers = [
        threading.Thread(
            target=_client_thread,
            args=(
                port,
                token,
                f"{tag}-t{t}",
                start,
                warm_end,
                stop_at,
                None if quota is None else quota // threads + (t < quota % threads),
                result,
                lock,
                requests,
            ),
        )
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu1 = os.times()
    result.cpu_seconds = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    out.put(result)


def drive(
    port: int,
    token: str,
    tag: str,
    clients: int,
    processes: int,
    warmup: float,
    duration: float,
    total: int | None,
    sessions: dict[str, int] | None = None,
    dbname: str = "",
    requests: Requests | None = None,
) -> dict[str, Any]:
    """Run ``clients`` keep-alive connections spread over ``processes`` and summarise.

    With ``sessions`` (named process sessions to charge CPU to), the summary carries the CPU
    per order over the measured window, and ``_cpu_at_window_end`` (the raw snapshot) so the
    caller can charge what happens after the window (the outbox drain) the same way.
    ``_first_request_at`` is the monotonic time the first measured request was sent.
    ``requests`` replaces the default order POSTs (see Requests).
    """
    processes = max(1, min(processes, clients))
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.monotonic() + 0.3
    warm_end, stop_at = start + warmup, start + warmup + duration
    procs = []
    for p in range(processes):
        threads = clients // processes + (p < clients % processes)
        quota = None if total is None else total // processes + (p < total % processes)
        procs.append(
            ctx.Process(
                target=_client_process,
                args=(
                    port,
                    token,
                    threads,
                    f"{tag}-p{p}",
                    start,
                    warm_end,
                    stop_at,
                    quota,
                    queue,
                    requests,
                ),
            )
        )
    cpu = CpuWindow(sessions, dbname, warm_end, stop_at) if total is None and sessions else None
    for proc in procs:
        proc.start()
    limit = warmup + duration + 120 if total is None else 600
    results = [queue.get(timeout=limit) for _ in procs]
    for proc in procs:
        proc.join(10)
    summary = summarise(results, duration, total)
    all_requests = summary["requests"] + summary["warmup_requests"]
    cpu_ms = cpu.per_order_ms(summary["ok"]) if cpu else {}
    if all_requests:
        cpu_ms["load_generator"] = round(
            sum(r.cpu_seconds for r in results) / all_requests * 1000, 3
        )
    summary["cpu_ms_per_order"] = cpu_ms
    if cpu is not None and cpu.after:
        summary["_cpu_at_window_end"] = cpu.after
    summary["_first_request_at"] = min(r.first_start for r in results)
    return summary


def summarise(results: list[WorkerResult], duration: float, total: int | None) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r.latencies)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    if total is None:
        elapsed = duration
    else:
        first = min(r.first_start for r in results)
        last = max(r.last_end for r in results)
        elapsed = max(last - first, 1e-9)
    ok = len(latencies)
    return {
        "orders_per_s": round(ok / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "mean_ms": round(sum(latencies) / ok * 1000, 2) if ok else 0.0,
        "requests": ok + sum(errors.values()),
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "warmup_requests": sum(r.warmup_done for r in results),
        "measured_seconds": round(elapsed, 2),
    }


# --- hub servers -----------------------------------------------------------------------------


@dataclass
class ServerKind:
    """One way of serving the hub: a name, its command line and its concurrency."""

    name: str
    command: Callable[[int], list[str]]
    workers: int
    threads: int
    note: str = ""
    # With the embedded broker, does this server dispatch events itself (``orderhub serve``
    # starts the stub broker's worker in-process; gunicorn's app factory does not)?
    embedded_worker: bool = False


def server_kinds(args: argparse.Namespace) -> dict[str, ServerKind]:
    gunicorn = str(VENV_BIN / "gunicorn")
    if args.broker == "redis":
        events_note = (
            f"events dispatched by a separate 'orderhub worker --processes"
            f" {args.worker_processes} --threads {args.worker_threads}' via Redis"
        )
        waitress_note = gunicorn_note = events_note
    else:
        waitress_note = "embedded event worker runs in-process"
        gunicorn_note = "no embedded event worker (events stay queued in memory)"
    return {
        "waitress": ServerKind(
            "waitress",
            lambda port: [
                str(VENV_BIN / "orderhub"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--threads",
                str(args.waitress_threads),
            ],
            1,
            args.waitress_threads,
            f"one process (GIL-bound); {waitress_note}",
            embedded_worker=True,
        ),
        "gunicorn-sync": ServerKind(
            "gunicorn-sync",
            lambda port: [
                gunicorn,
                "-w",
                str(args.gunicorn_workers),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "hub:create_app()",
            ],
            args.gunicorn_workers,
            1,
            "sync workers close the connection after each response (no keep-alive);"
            f" {gunicorn_note}",
        ),
        "gunicorn-gthread": ServerKind(
            "gunicorn-gthread",
            lambda port: [
                gunicorn,
                "-w",
                str(args.gunicorn_workers),
                "-k",
                "gthread",
                "--threads",
                str(args.gthread_threads),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "hub:create_app()",
            ],
            args.gunicorn_workers,
            args.gthread_threads,
            f"keep-alive; {gunicorn_note}",
        ),
    }


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], cwd: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process group, wait for /healthz, and always stop it afterwards."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_healthy(proc, log, port)
            yield proc
        finally:
            stop(proc)


@contextlib.contextmanager
def event_worker(
    broker: Broker, env: dict[str, str], cwd: Path
) -> Iterator[subprocess.Popen[bytes] | None]:
    """With the Redis broker, run ``orderhub worker`` (own session) until the block ends.

    Ready once every worker process has printed its "worker running" line; stopped with
    SIGTERM (then waited for, SIGKILL only if it lingers). With the embedded broker there is
    nothing to start.
    """
    if not broker.redis:
        yield None
        return
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            broker.worker_command(),
            env={**env, "PYTHONUNBUFFERED": "1"},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                log.seek(0)
                text = log.read().decode(errors="replace")
                if proc.poll() is not None:
                    raise RuntimeError(f"orderhub worker exited: {text[-2000:]}")
                if text.count("worker running") >= broker.worker_processes:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"orderhub worker not ready within 60 s: {text[-2000:]}")
                time.sleep(0.1)
            yield proc
        finally:
            stop(proc)


@contextlib.contextmanager
def serving(
    kind: ServerKind, scratch: Scratch, workdir: Path, broker: Broker, port: int
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes] | None]]:
    """The hub as deployed in this broker mode: (worker, if any, first) then the server."""
    env = hub_env(scratch.url, workdir, broker)
    with (
        event_worker(broker, env, workdir) as worker,
        running(kind.command(port), env, workdir, port) as server,
    ):
        yield server, worker


def _wait_healthy(proc: subprocess.Popen[bytes], log: Any, port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                answer = conn.getresponse()
                # Up with its database; gunicorn on the embedded broker has no worker, which
                # /healthz rightly reports as a 503 (the workers check) - not a reason to wait.
                if answer.status == 200 or json.loads(answer.read())["checks"]["database"]["ok"]:
                    return
            finally:
                conn.close()
        if time.monotonic() > deadline:
            raise RuntimeError("server did not become healthy within 60 s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def count_orders(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])  # type: ignore[index]


# --- profiled server (runs as a child process of this script) --------------------------------


def _component(key: tuple[str, int, str]) -> str:
    """Which layer a profiled function belongs to, for the where-the-time-goes breakdown."""
    filename, _, name = key
    if filename == "~":
        if "psycopg" in name:
            return "psycopg (C)"
        if "json" in name:
            return "json"
        return "builtins / C"
    if filename.endswith("psycopg/connection.py") and name == "wait":
        return "waiting for PostgreSQL (network + server)"
    for marker, label in (
        ("/psycopg", "psycopg (Python)"),
        ("/sqlalchemy/", "SQLAlchemy"),
        ("/jsonschema", "jsonschema"),
        ("/referencing/", "jsonschema"),
        ("/flask/", "Flask/Werkzeug"),
        ("/werkzeug/", "Flask/Werkzeug"),
        ("/waitress/", "waitress"),
        ("/dramatiq/", "dramatiq (enqueue)"),
        ("/pluggy/", "pluggy"),
        (f"{ROOT}/hub/", "hub (own code)"),
    ):
        if marker in filename:
            return label
    return "stdlib / other"


_HOT = (
    ("hub/web/api/framework.py", "view", "whole view (auth + validation + txn + handler)"),
    ("hub/web/api/framework.py", "_parse_body", "JSON parse + jsonschema validation"),
    ("hub/web/api/framework.py", "_authenticate", "token lookup"),
    ("hub/web/api/orders.py", "create_order", "create_order handler (incl. order_dict)"),
    ("hub/core/orders.py", "create", "orders.create service"),
    ("hub/core/orders.py", "upsert_customer", "customer upsert"),
    ("hub/core/orders.py", "_products_for", "product lookup"),
    ("hub/core/orders.py", "_allocate_missing", "allocation (savepoint, reserve, insert)"),
    ("hub/core/inventory.py", "reserve", "inventory.reserve"),
    ("hub/core/inventory.py", "check_low_stock", "low-stock check"),
    ("hub/core/orders.py", "order_dict", "order_dict (serialisation)"),
    ("hub/core/audit.py", "record", "audit.record"),
    ("hub/core/events.py", "emit", "events.emit"),
    ("hub/core/tenancy.py", "next_value", "order number (nextval)"),
    ("hub/core/scoping.py", "_scope", "tenant scoping hook (with_loader_criteria)"),
    ("hub/runtime.py", "_after_commit", "after-commit enqueue of events"),
    ("sqlalchemy/orm/session.py", "flush", "ORM flush"),
    ("sqlalchemy/orm/session.py", "commit", "session commit"),
    ("sqlalchemy/engine/base.py", "_execute_context", "SQLAlchemy statement execution"),
    ("sqlalchemy/sql/compiler.py", "__init__", "SQL compilation (cache misses)"),
    ("sqlalchemy/pool/base.py", "checkout", "pool checkout (incl. pre-ping)"),
    ("psycopg/connection.py", "wait", "waiting for PostgreSQL"),
)


def _statement_kind(statement: str) -> str:
    s = " ".join(statement.split())
    m = re.match(r"(?i)(INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", s)
    if m:
        return f"{m.group(1).split()[0].upper()} {m.group(2)}"
    m = re.match(r"(?i)SELECT\s+nextval", s)
    if m:
        return "SELECT nextval"
    m = re.match(r"(?i)SELECT .*? FROM (\w+)", s)
    if m:
        return f"SELECT {m.group(1)}"
    return s.split(" ", 1)[0].upper()


def profile_server(port: int, out_path: Path) -> None:
    """Serve the hub on one waitress thread with cProfile on around each request.

    One request thread keeps cProfile honest (it only sees the thread it was enabled in) and
    lets SQL statements be attributed to requests through a thread-local flag; statements run
    by other threads (the in-process event worker, on either broker) are counted separately.
    """
    from sqlalchemy import event
    from waitress import serve

    from hub import create_app

    app = create_app()
    runtime = app.extensions["orderhub"]
    runtime.jobs.start_worker()
    local = threading.local()
    profiler = cProfile.Profile()
    lock = threading.Lock()
    state: dict[str, Any] = {
        "requests": 0,
        "wall": 0.0,
        "sql": 0.0,
        "statements": Counter(),
        "other_statements": Counter(),
        "checkouts": 0,
        "commits": 0,
        "statuses": Counter(),
    }

    @event.listens_for(runtime.engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        kind = _statement_kind(statement)
        if getattr(local, "active", False):
            state["statements"][kind] += 1
            local.t0 = time.perf_counter()
        else:
            with lock:
                state["other_statements"][kind] += 1

    @event.listens_for(runtime.engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        if getattr(local, "active", False):
            state["sql"] += time.perf_counter() - local.t0

    @event.listens_for(runtime.engine, "checkout")
    def _checkout(*_: Any) -> None:
        if getattr(local, "active", False):
            state["checkouts"] += 1

    @event.listens_for(runtime.engine, "commit")
    def _commit(*_: Any) -> None:
        if getattr(local, "active", False):
            state["commits"] += 1

    def dump() -> dict[str, Any]:
        n = max(state["requests"], 1)
        stats = pstats.Stats(profiler)
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        by_component: Counter[str] = Counter()
        for key, (_cc, _nc, tt, _ct, _callers) in raw.items():
            by_component[_component(key)] += tt
        profiled = sum(by_component.values())
        hot = []
        for path, name, label in _HOT:
            ct = sum(v[3] for k, v in raw.items() if k[0].endswith(path) and k[2] == name)
            calls = sum(v[1] for k, v in raw.items() if k[0].endswith(path) and k[2] == name)
            if calls:
                hot.append(
                    {
                        "what": label,
                        "function": f"{path}:{name}",
                        "ms_per_request": round(ct / n * 1000, 3),
                        "calls_per_request": round(calls / n, 2),
                    }
                )
        text = io.StringIO()
        text.write(
            f"# OrderHub POST /api/v1/orders under cProfile: {state['requests']} requests,"
            f" one waitress thread\n# profiled wall per request"
            f" {state['wall'] / n * 1000:.2f} ms (cProfile inflates Python time)\n\n"
        )
        text.write("## time by component (tottime per request)\n")
        for comp, tt in by_component.most_common():
            text.write(f"{tt / n * 1000:9.3f} ms  {tt / profiled:6.1%}  {comp}\n")
        text.write("\n## selected functions (cumulative per request)\n")
        for h in hot:
            text.write(
                f"{h['ms_per_request']:9.3f} ms  x{h['calls_per_request']:<6}"
                f" {h['what']} ({h['function']})\n"
            )
        text.write("\n## SQL statements per request (request thread)\n")
        for kind, count in state["statements"].most_common():
            text.write(f"{count / n:7.2f}  {kind}\n")
        text.write(f"{state['checkouts'] / n:7.2f}  pool checkouts (each a pre-ping round trip)\n")
        text.write(f"{state['commits'] / n:7.2f}  commits\n")
        text.write("\n## SQL statements per order in other threads (in-process event worker)\n")
        for kind, count in state["other_statements"].most_common():
            text.write(f"{count / n:7.2f}  {kind}\n")
        text.write("\n## top 40 by cumulative time\n")
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        text.write("\n## top 30 by own time\n")
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        out_path.write_text(text.getvalue())
        return {
            "requests": state["requests"],
            "python_function_calls_per_request": round(sum(v[1] for v in raw.values()) / n),
            "statuses": dict(state["statuses"]),
            "profiled_wall_ms_per_request": round(state["wall"] / n * 1000, 3),
            "sql_execute_ms_per_request": round(state["sql"] / n * 1000, 3),
            "by_component_ms_per_request": {
                k: round(v / n * 1000, 3) for k, v in by_component.most_common()
            },
            "by_component_share": {
                k: round(v / profiled, 3) for k, v in by_component.most_common()
            },
            "hot_functions": hot,
            "sql_statements_per_request": {
                k: round(v / n, 2) for k, v in state["statements"].most_common()
            },
            "sql_statements_total_per_request": round(sum(state["statements"].values()) / n, 2),
            "pool_checkouts_per_request": round(state["checkouts"] / n, 2),
            "commits_per_request": round(state["commits"] / n, 2),
            "other_thread_statements_per_request": {
                k: round(v / n, 2) for k, v in state["other_statements"].most_common()
            },
        }

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/_bench/profile":
            runtime.jobs.join(10_000)
            body = json.dumps(dump()).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if environ.get("PATH_INFO") != "/api/v1/orders":
            return list(app(environ, start_response))

        def recording_start(status: str, headers: Any, exc_info: Any = None) -> Any:
            state["statuses"][status.split(" ", 1)[0]] += 1
            return start_response(status, headers, exc_info)

        local.active = True
        t0 = time.perf_counter()
        profiler.enable()
        try:
            body_parts = list(app(environ, recording_start))
        finally:
            profiler.disable()
            state["wall"] += time.perf_counter() - t0
            state["requests"] += 1
            local.active = False
        return body_parts

    serve(wsgi, host="127.0.0.1", port=port, threads=1, ident="orderhub-bench")


def run_profile(
    scratch: Scratch,
    workdir: Path,
    broker: Broker,
    warmup: float,
    duration: float,
    clients: int,
) -> dict[str, Any]:
    """Drive the profiled server briefly, then fetch its summary (the text goes to a file)."""
    port = free_port()
    out_path = RESULTS / "orders-profile.txt"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "profile-server",
        "--port",
        str(port),
        "--out",
        str(out_path),
    ]
    # With the Redis broker the in-process worker consumes the run's namespace instead of the
    # stub broker: the same jobs, so its statements still show up as "other threads".
    with running(command, hub_env(scratch.url, workdir, broker), workdir, port):
        # Warm up unprofiled? The profile includes the warm-up requests too: statement caches
        # fill in the first few requests, so a short warm-up changes little; keep it simple.
        load = drive(port, scratch.token, "profile", clients, 1, warmup, duration, None)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/_bench/profile")
        summary = json.loads(conn.getresponse().read())
        conn.close()
    summary["load_under_profiler"] = {k: load[k] for k in ("orders_per_s", "p50_ms", "ok")}
    summary["text_report"] = str(out_path.relative_to(ROOT))
    summary["command"] = shlex.join(command)
    return summary


# --- sampling profile of the real server (py-spy) --------------------------------------------


def _frame_component(frame: str) -> str:
    m = re.search(r"\((.*?):\d+\)$", frame)
    path = m.group(1) if m else ""
    return _component((f"/{path}" if path else "~", 0, frame))


def _matches(frame: str, path: str, name: str) -> bool:
    m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not m:
        return False
    func, file = m.groups()
    return (func == name or func.endswith(f".{name}")) and path.endswith(file)


def summarise_pyspy(raw_text: str, top: int = 30) -> dict[str, Any]:
    """Aggregate py-spy's collapsed stacks: own samples by layer, inclusive by function."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    hot: Counter[str] = Counter()
    for line in raw_text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[_frame_component(frames[-1])] += count
        for name in {re.sub(r":\d+\)$", ")", f) for f in frames}:
            inclusive[name] += count
        for path, name, label in _HOT:
            if any(_matches(f, path, name) for f in frames):
                hot[label] += count
    total = max(total, 1)
    return {
        "samples": total,
        "own_time_by_layer": {k: round(v / total, 3) for k, v in own.most_common()},
        "inclusive_share": [
            {"what": label, "function": f"{path}:{name}", "share": round(hot[label] / total, 3)}
            for path, name, label in _HOT
            if hot[label]
        ],
        "top_inclusive": [
            {"function": f, "share": round(c / total, 3)} for f, c in inclusive.most_common(top)
        ],
    }


def run_pyspy(
    kind: ServerKind,
    scratch: Scratch,
    workdir: Path,
    broker: Broker,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Sample the fastest server kind under the same load with py-spy (CPU only, not idle)."""
    pyspy = VENV_BIN / "py-spy"
    if not pyspy.exists():
        return {"skipped": "py-spy is not installed (.venv/bin/pip install py-spy)"}
    port = free_port()
    raw_path = workdir / "pyspy.txt"
    first_event = last_event_id(scratch.url)
    with serving(kind, scratch, workdir, broker, port) as (server, worker):
        spy_cmd = [
            str(pyspy),
            "record",
            "--pid",
            str(server.pid),
            "--subprocesses",
            "--nonblocking",
            "--gil",
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(raw_path),
            "--duration",
            str(int(args.profile_duration)),
        ]
        spy = subprocess.Popen(
            spy_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            load = drive(
                port,
                scratch.token,
                f"pyspy-{kind.name}",
                args.clients,
                args.load_processes,
                0.5,
                args.profile_duration,
                None,
            )
            spy_out = spy.communicate(timeout=60)[0].decode(errors="replace")
        finally:
            stop(spy)  # type: ignore[arg-type]
        if worker is not None:
            # leave no backlog for the profiled server's in-process worker to pick up
            wait_drained(scratch.url, first_event, args.drain_timeout)
    if not raw_path.exists():
        return {"skipped": f"py-spy wrote nothing: {spy_out[-500:]}"}
    summary = summarise_pyspy(raw_path.read_text())
    summary.update(
        server=kind.name,
        load_while_sampling={k: load[k] for k in ("orders_per_s", "p50_ms", "ok")},
        command=shlex.join(["py-spy", *spy_cmd[1:]]),
        note="py-spy --gil samples only threads holding the GIL, so shares are of the"
        " server's Python CPU time (waits on PostgreSQL excluded); py-spy itself takes CPU;"
        " the separate 'orderhub worker' (Redis broker) is not sampled",
    )
    return summary


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--clients", type=int, default=8, help="concurrent HTTP clients")
    p.add_argument("-n", "--requests", type=int, help="fixed number of measured requests")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds per server")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (not measured)")
    p.add_argument("--load-processes", type=int, default=2, help="load generator processes")
    p.add_argument(
        "--servers",
        default="waitress,gunicorn-sync,gunicorn-gthread",
        help="comma-separated: waitress, gunicorn-sync, gunicorn-gthread",
    )
    p.add_argument("--waitress-threads", type=int, default=4)
    p.add_argument("--gunicorn-workers", type=int, default=2)
    p.add_argument("--gthread-threads", type=int, default=4)
    p.add_argument(
        "--broker",
        choices=("redis", "embedded"),
        default="redis",
        help="redis: production layout (Redis broker + a separate 'orderhub worker' per server"
        " run; default); embedded: in-process stub broker (the old behaviour: waitress"
        " dispatches events itself, gunicorn never does)",
    )
    p.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help="loopback Redis for --broker redis"
    )
    p.add_argument("--worker-processes", type=int, default=1, help="orderhub worker --processes")
    p.add_argument("--worker-threads", type=int, default=4, help="orderhub worker --threads")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="seconds to wait after each run for the events outbox to drain",
    )
    p.add_argument(
        "--notify",
        action="store_true",
        help="subscribe a 'log' notifier to order_created for the demo tenant (bench config"
        " only), so each order's event is enqueued and fanned out (dispatch + one delivery);"
        " without it the demo tenant has no listener and the hub may record events as"
        " dispatched at insert",
    )
    p.add_argument("--raw-connections", type=int, default=4)
    p.add_argument("--raw-duration", type=float, default=10.0, help="measured s per ceiling")
    p.add_argument(
        "--same-work-shape",
        choices=("cte", "statements"),
        default="cte",
        help="statement shape of the same-work ceiling's writes: cte (the hub's sequence: one"
        " data-modifying CTE for every row; default) or statements (one INSERT per table)",
    )
    p.add_argument("--no-profile", action="store_true", help="skip the profiled server run")
    p.add_argument("--profile-duration", type=float, default=8.0)
    p.add_argument("--admin-url", default=os.environ.get("ORDERHUB_BENCH_ADMIN_URL"))
    p.add_argument("--out", type=Path, default=RESULTS / "orders.json")
    p.add_argument("--keep-db", action="store_true", help="do not drop the scratch databases")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the whole benchmark and write the JSON; returns what it wrote."""
    args = parse_args(argv)
    admin_url = args.admin_url or DEFAULT_ADMIN_URL
    if not any(host in admin_url for host in LOOPBACK):
        raise SystemExit("only a loopback PostgreSQL is allowed")
    if args.broker == "redis" and not any(f"//{h}" in args.redis_url for h in LOOPBACK):
        raise SystemExit("only a loopback Redis is allowed")
    broker = (
        Broker(
            "redis",
            args.redis_url,
            f"orderhub-bench-{os.getpid()}",
            args.worker_processes,
            args.worker_threads,
        )
        if args.broker == "redis"
        else EMBEDDED
    )
    kinds = server_kinds(args)
    chosen = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in kinds]
    if unknown:
        raise SystemExit(f"unknown server kind(s): {', '.join(unknown)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    pid = os.getpid()
    hub_db, raw_db = f"orderhub_bench_{pid}", f"orderhub_bench_raw_{pid}"
    same_db = f"orderhub_bench_same_{pid}"
    report: dict[str, Any] = {
        "benchmark": "POST /api/v1/orders (2 lines, quantity 1, new customer e-mail each order)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "load generator, hub server(s) and PostgreSQL share these cores",
        },
        "code": git_state(),
        "broker": {
            "mode": broker.mode,
            **(
                {
                    "url": broker.url,
                    "namespace": broker.namespace,
                    "worker_command": shlex.join(["orderhub", *broker.worker_command()[1:]]),
                    "note": "one worker per server run, started before the load and stopped"
                    " (SIGTERM) after the outbox drained; its CPU is counted per order",
                }
                if broker.redis
                else {
                    "note": "stub broker in each hub process: waitress dispatches events"
                    " in-process, gunicorn never dispatches them (fan-out cost left out)",
                }
            ),
            "drain_timeout_s": args.drain_timeout,
            "demo_tenant_notifier": (
                "log notifier 'bench-log' on order_created (--notify)"
                if args.notify
                else "none (the demo tenant's default: no notifier)"
            ),
        },
    }
    with tempfile.TemporaryDirectory(prefix="orderhub-bench-") as tmp:
        workdir = Path(tmp)
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                report["postgres"] = {
                    "version": conn.execute("SHOW server_version").fetchone()[0],  # type: ignore[index]
                    "synchronous_commit": conn.execute("SHOW synchronous_commit").fetchone()[0],  # type: ignore[index]
                }
            print("preparing scratch databases …", flush=True)
            hub = prepare(admin_url, hub_db, workdir)
            raw = prepare(admin_url, raw_db, workdir)
            same = prepare(admin_url, same_db, workdir)
            if args.notify:
                # after setup, so setup's own events are not made live under the stub broker
                (workdir / "config" / "tenants" / "demo.toml").write_text(NOTIFY_TENANT_TOML)

            print(f"raw SQL ceiling 'minimal': {args.raw_connections} connections …", flush=True)
            minimal = run_raw(raw.url, args.raw_connections, args.warmup, args.raw_duration)
            minimal.update(
                database=raw_db,
                what="the reference transaction of the project guide: the least database work"
                " an order needs",
                statements_per_order=MINIMAL_STATEMENTS,
            )
            print(
                f"raw SQL ceiling 'same work' ({args.same_work_shape}):"
                f" {args.raw_connections} connections …",
                flush=True,
            )
            same_work = run_raw(
                same.url,
                args.raw_connections,
                args.warmup,
                args.raw_duration,
                _same_work_worker,
                same_work_ids(same.url, args.same_work_shape, args.notify),
            )
            same_work.update(
                database=same_db,
                what="every row the hub writes for a 2-line order on PostgreSQL, same statement"
                " sequence, plain psycopg (the hub's HTTP, auth, validation, ORM/Core and"
                " Python left out)",
                shape=args.same_work_shape,
                statements_per_order=same_work_statements(args.same_work_shape),
                audit_after_bytes=audit_after_bytes(same.url),
            )
            report["ceilings"] = {"minimal": minimal, "same_work": same_work}
            report["ceiling_meaning"] = CEILING_MEANING

            runs = []
            for name in chosen:
                kind = kinds[name]
                port = free_port()
                command = kind.command(port)
                print(
                    f"hub on {name} ({broker.mode} broker): {' '.join(command[1:])} …", flush=True
                )
                analyze(hub.url)
                with serving(kind, hub, workdir, broker, port) as (server, worker):
                    sessions = {"server": server.pid}
                    if worker is not None:
                        sessions["worker"] = worker.pid
                    first_event = last_event_id(hub.url)
                    backlog = outbox(hub.url, first_event)["undispatched_whole_table"]
                    before_orders, before = count_orders(hub.url), pg_counters(hub.url)
                    result = drive(
                        port,
                        hub.token,
                        name,
                        args.clients,
                        args.load_processes,
                        args.warmup,
                        args.duration,
                        args.requests,
                        sessions,
                        hub.name,
                    )
                    cpu_at_end = result.pop("_cpu_at_window_end", None)
                    result.pop("_first_request_at", None)
                    at_end = outbox(hub.url, first_event)
                    dispatcher = worker is not None or kind.embedded_worker
                    if dispatcher:
                        drain_s, _ = wait_drained(hub.url, first_event, args.drain_timeout)
                    else:
                        drain_s = None
                    after_drain = outbox(hub.url, first_event)
                    drain_cpu = (
                        cpu_delta_ms(cpu_at_end, cpu_snapshot(sessions, hub.name), result["ok"])
                        if cpu_at_end and dispatcher
                        else {}
                    )
                    time.sleep(1.0)  # let PostgreSQL flush its statistics
                    made = count_orders(hub.url) - before_orders
                    after = pg_counters(hub.url)
                drained = after_drain["undispatched"] == 0
                result.update(
                    server=name,
                    workers=kind.workers,
                    threads=kind.threads,
                    note=kind.note,
                    broker=broker.mode,
                    client_concurrency=args.clients,
                    load_processes=args.load_processes,
                    orders_in_db_during_run=made,
                    events={
                        "created": after_drain["created"],
                        "dispatched_at_insert": after_drain["dispatched_at_insert"],
                        "undispatched_at_window_end": at_end["undispatched"],
                        "undispatched_after_drain": after_drain["undispatched"],
                        "drain_seconds": drain_s,
                        "drained": drained,
                        "undispatched_whole_table_before_run": backlog,
                        "cpu_ms_per_order_during_drain": drain_cpu,
                        "worker_exit_code": None if worker is None else worker.returncode,
                        "note": (
                            "events with id above the table's max id at the start of the run"
                            " (warm-up and in-flight orders included); drain_seconds counts"
                            " from the end of the load until none of them has dispatched_at"
                            " IS NULL (bounded by --drain-timeout); dispatched_at_insert ="
                            " nobody listens, so no job was enqueued;"
                            " cpu_ms_per_order_during_drain = CPU after the measured window"
                            " until drained, per measured order"
                            if dispatcher
                            else "nothing dispatches these events (stub broker in each gunicorn"
                            " process, no worker): no drain wait"
                        ),
                    },
                    pg_per_order=per_order(before, after, made),
                    ratio_minimal=_ratio(result["orders_per_s"], minimal),
                    ratio_same_work=_ratio(result["orders_per_s"], same_work),
                    server_command=shlex.join(command),
                )
                if dispatcher and not drained:
                    print(
                        f"  outbox did not drain within {args.drain_timeout:g} s:"
                        f" {after_drain['undispatched']} events left",
                        flush=True,
                    )
                runs.append(result)
            report["hub_runs"] = runs
            best = max(runs, key=lambda r: r["orders_per_s"]) if runs else None
            if best is not None:
                report["hub"] = {
                    k: best[k]
                    for k in (
                        "server",
                        "workers",
                        "threads",
                        "orders_per_s",
                        "p50_ms",
                        "p99_ms",
                        "requests",
                        "errors",
                        "client_concurrency",
                    )
                }
                report["ratio_minimal"] = best["ratio_minimal"]
                report["ratio_same_work"] = best["ratio_same_work"]
                report["goal_ratio"] = GOAL_RATIO
                report["goal_note"] = (
                    f"goal: hub/ceiling ratio >= {GOAL_RATIO:.2f}, set when the minimal ceiling"
                    " was the only one; goal_met says against which ceiling it holds"
                )
                report["goal_met"] = {
                    "minimal": best["ratio_minimal"] >= GOAL_RATIO,
                    "same_work": best["ratio_same_work"] >= GOAL_RATIO,
                }
                report["hub"]["audit_after_bytes"] = audit_after_bytes(hub.url)

            if not args.no_profile and best is not None:
                print(f"sampling {best['server']} with py-spy …", flush=True)
                report["pyspy"] = run_pyspy(kinds[best["server"]], hub, workdir, broker, args)
            if not args.no_profile:
                print("counting SQL per request on one instrumented waitress thread …", flush=True)
                report["profile"] = run_profile(
                    hub, workdir, broker, 1.0, args.profile_duration, clients=2
                )
        finally:
            if not args.keep_db:
                for name in (hub_db, raw_db, same_db):
                    with contextlib.suppress(Exception):
                        drop_database(admin_url, name)
            try:
                report["broker"]["redis_keys_deleted"] = broker.delete_keys()
            except Exception as exc:  # report, but do not hide the run's own failure
                report["broker"]["redis_cleanup_error"] = f"{type(exc).__name__}: {exc}"

    base_env = (
        f"ORDERHUB_DATABASE_URL={db_url(admin_url, hub_db)}"
        " ORDERHUB_CONFIG_DIR=<tmp>/config ORDERHUB_DATA_DIR=<tmp>/var"
    )
    env_line = f"{base_env} " + " ".join(f"{k}={v}" for k, v in broker.env().items())
    report["reproduce"] = {
        "benchmark": ".venv/bin/python bench/orders.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "broker_mode": f"--broker {broker.mode} (the default is redis; --broker embedded"
        " reproduces the old in-process stub broker runs)",
        "hub_setup": f"{base_env} ORDERHUB_BROKER_URL=embedded .venv/bin/orderhub init --demo"
        " && orderhub stock import --tenant demo <csv: MAIN,<sku>,1000000 per demo SKU>",
        "ceiling_setup": "the same two commands (embedded broker) on each ceiling's own scratch"
        f" database: ORDERHUB_DATABASE_URL={db_url(admin_url, raw_db)} (minimal) and"
        f" {db_url(admin_url, same_db)} (same work), so schema, indexes, constraints,"
        " triggers, demo tenant, warehouses, products and stock are the hub's",
        "ceilings": f"--raw-connections {args.raw_connections} --raw-duration"
        f" {args.raw_duration:g} --warmup {args.warmup:g} --same-work-shape"
        f" {args.same_work_shape}: bench/orders.py _raw_worker (minimal) and _same_work_worker"
        " (same work), one process and psycopg connection each; statements under"
        " ceilings.*.statements_per_order",
        "servers": {
            r["server"]: f"{env_line} {r['server_command']}" for r in report.get("hub_runs", [])
        },
        **(
            {
                "worker": f"{env_line} {shlex.join(broker.worker_command())}"
                " (one per server run, started first)",
                "outbox_drained_when": "SELECT count(*) FROM events WHERE dispatched_at IS NULL"
                " = 0",
            }
            if broker.redis
            else {}
        ),
        "lint": ".venv/bin/ruff check bench/ && .venv/bin/ruff format bench/",
    }
    report["total_seconds"] = round(time.monotonic() - started, 1)
    report["where_the_time_goes"] = where_the_time_goes(report)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_summary(report)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return report


def where_the_time_goes(report: dict[str, Any]) -> list[str]:
    """A few plain sentences from the measurements, so the JSON reads on its own."""
    notes = []
    chosen = report.get("hub", {}).get("server")
    best = next((r for r in report.get("hub_runs", []) if r["server"] == chosen), None)
    ceilings = report.get("ceilings", {})
    mode = report.get("broker", {}).get("mode", "embedded")
    if mode == "redis":
        notes.append(
            "Broker: Redis, with a separate 'orderhub worker' process per server run"
            " (production layout); the worker's CPU is part of the hub's cost per order."
        )
    else:
        notes.append(
            "Broker: embedded (in-process stub). waitress dispatches events in-process and"
            " pays the fan-out; gunicorn never dispatches them, so its figures leave the"
            " event fan-out out (run with --broker redis for the production layout)."
        )
    if best and best.get("cpu_ms_per_order"):
        cpu = best["cpu_ms_per_order"]
        need = "; ".join(
            f"the {name.replace('_', '-')} ceiling needs PostgreSQL"
            f" {c.get('cpu_ms_per_order', {}).get('postgres_bench_db', 0):.2f} ms + client"
            f" {c.get('cpu_ms_per_order', {}).get('raw_sql_clients', 0):.2f} ms"
            for name, c in ceilings.items()
        )
        worker = (
            f" event worker {cpu['worker']:.1f} ms, Redis {cpu.get('redis', 0):.2f} ms,"
            if "worker" in cpu
            else ""
        )
        hub_cpu = cpu.get("server", 0) + cpu.get("worker", 0)
        notes.append(
            f"CPU per order on {best['server']} (from /proc, measured window):"
            f" hub server {cpu.get('server', 0):.1f} ms,{worker} PostgreSQL (bench db)"
            f" {cpu.get('postgres_bench_db', 0):.1f} ms, load generator"
            f" {cpu.get('load_generator', 0):.1f} ms; {need}. Whole machine busy"
            f" {cpu.get('machine_busy', 0):.1f} ms per hub order (other processes on the box"
            f" included). The hub's own Python ({hub_cpu:.1f} ms) is what binds it."
        )
    for run in report.get("hub_runs", []):
        ev = run.get("events")
        if not ev:
            continue
        if ev["drain_seconds"] is None:
            state = (
                f"{ev['undispatched_after_drain']} never dispatched (no worker)"
                if ev["undispatched_after_drain"]
                else "none needed a worker"
            )
        elif ev["drained"]:
            state = f"outbox drained {ev['drain_seconds']:.1f} s after the load"
        else:
            state = (
                f"{ev['undispatched_after_drain']} still undispatched after"
                f" {ev['drain_seconds']:.0f} s"
            )
        notes.append(
            f"Events on {run['server']}: {ev['created']} created for"
            f" {run['orders_in_db_during_run']} orders ({ev['dispatched_at_insert']} dispatched"
            f" at insert, nobody listening), {ev['undispatched_at_window_end']} undispatched"
            f" when the window closed; {state}."
        )
    spy = report.get("pyspy", {})
    if spy.get("samples"):
        layers = ", ".join(f"{k} {v:.0%}" for k, v in list(spy["own_time_by_layer"].items())[:6])
        inc = ", ".join(f"{h['what']} {h['share']:.0%}" for h in spy["inclusive_share"])
        notes.append(f"py-spy (GIL-holding samples) own time by layer: {layers}.")
        notes.append(f"py-spy inclusive shares of server Python time: {inc}.")
    prof = report.get("profile")
    if prof:
        per = prof["sql_statements_per_request"]
        listing = ", ".join(f"{v:g}x {k}" for k, v in per.items())
        notes.append(
            f"{prof['sql_statements_total_per_request']:g} SQL statements per order in the"
            f" request ({listing}) + {prof['pool_checkouts_per_request']:g} pool pre-ping +"
            f" {prof['commits_per_request']:g} commit, vs 5 statements + commit in the minimal"
            " ceiling and 6 (statement sequence as the hub's at the time of writing) + commit"
            " in the same-work ceiling;"
            f" the event worker (in-process in the profiled server, consuming the {mode}"
            f" broker) adds {sum(prof['other_thread_statements_per_request'].values()):g}"
            " statements per order"
            + (
                " (a separate 'orderhub worker' in the measured runs)."
                if mode == "redis"
                else " (waitress only; gunicorn never runs them with this broker)."
            )
        )
        notes.append(
            f"About {prof['python_function_calls_per_request']} Python function calls per"
            " request (cProfile count on one thread; see bench/results/orders-profile.txt)."
        )
    return notes


def print_summary(report: dict[str, Any]) -> None:
    def cpu_total(cpu: dict[str, float]) -> str:
        return f"{sum(v for k, v in cpu.items() if k != 'machine_busy'):.2f}" if cpu else ""

    rows = [
        (
            f"ceiling {name.replace('_', '-')}",
            f"{c['connections']} conns" + (f", {c['shape']}" if "shape" in c else ""),
            c["orders_per_s"],
            c["p50_ms"],
            c["p99_ms"],
            c["requests"],
            c["errors"],
            "",
            "",
            "",
            "",
            "",
            cpu_total(c.get("cpu_ms_per_order", {})),
        )
        for name, c in report.get("ceilings", {}).items()
    ]
    for r in report.get("hub_runs", []):
        ev, cpu = r.get("events", {}), r.get("cpu_ms_per_order", {})
        drain = ev.get("drain_seconds")
        rows.append(
            (
                f"hub {r['server']}",
                f"{r['workers']}w x {r['threads']}t, c={r['client_concurrency']}",
                r["orders_per_s"],
                r["p50_ms"],
                r["p99_ms"],
                r["requests"],
                r["errors"],
                f"{r['ratio_minimal']:.3f}",
                f"{r['ratio_same_work']:.3f}",
                f"{ev.get('created', '')}/{ev.get('undispatched_at_window_end', '')}"
                f"/{ev.get('undispatched_after_drain', '')}",
                "-" if drain is None else f"{drain:.1f}",
                f"{cpu['worker']:.2f}" if "worker" in cpu else "-",
                cpu_total(cpu),
            )
        )
    head = (
        "run",
        "concurrency",
        "orders/s",
        "p50 ms",
        "p99 ms",
        "requests",
        "errors",
        "ratio_minimal",
        "ratio_same_work",
        "events made/open@end/open@drain",
        "drain s",
        "worker cpu ms",
        "cpu ms/order",
    )
    print(f"broker: {report.get('broker', {}).get('mode', '?')}")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
    if "ratio_minimal" in report:
        met = [k.replace("_", "-") for k, v in report["goal_met"].items() if v]
        print(
            f"\nbest on {report['hub']['server']}: ratio_minimal"
            f" {report['ratio_minimal']:.3f}, ratio_same_work {report['ratio_same_work']:.3f};"
            f" goal {report['goal_ratio']:.2f} met against:"
            f" {', '.join(met) if met else 'neither ceiling'}"
        )
    for key, meaning in report.get("ceiling_meaning", {}).items():
        print(f"  {key}: {meaning}")
    for note in report.get("where_the_time_goes", []):
        print(f"- {note}")


def _profile_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    profile_server(a.port, a.out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "profile-server":
        _profile_main(sys.argv[2:])
    else:
        main()
