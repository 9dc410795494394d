"""Channel-intake benchmark: signed Shopify ``orders/create`` webhooks into the hub, in the
production layout (PostgreSQL, Redis broker, a real HTTP server, separate ``orderhub worker``
processes), against two ceilings measured in the same run.

Why this exists: a webhook has two prices. The acknowledgement (verify, store in the inbox,
enqueue, answer 200) is what the channel waits for — Shopify gives up after 5 s and eventually
drops the subscription — and the ingest job (parse, map SKUs, create the order, reserve stock)
is what decides how fast orders really arrive. Neither figure means much on its own on a shared
2-core box, so each is reported as a ratio to a ceiling measured in the same run:

* ``empty_route`` — a bench-only ``POST /_bench/empty`` added to the hub's own Flask app by
  ``bench_app()`` below (not part of the product's API): same server process, same clients,
  same concurrency, the same signed bodies. ``acks / empty route`` is what verifying, storing
  and enqueueing cost on top of HTTP + Flask.
* ``raw_sql_minimal`` — bench/orders.py's minimal order transaction in raw psycopg (order, two
  lines, two conditional reservations, two ledger rows; 4 connections). ``end-to-end orders/s
  / raw SQL`` is the whole price of the hub's intake per order.

Runs, in order (one scratch database for the hub, one for the raw ceiling; Redis keys under a
per-run namespace; everything dropped at the end):

1. the raw-SQL ceiling;
2. the server (gunicorn gthread by default) and ``orderhub worker``; a Shopify connection made
   through the API; a warm-up batch, drained;
3. the empty-route ceiling: N requests, C clients;
4. ``ingest``: N distinct deliveries with the workers consuming — acknowledgements/s, p50/p99,
   and end-to-end orders/s (first POST → last order exists, stock reserved);
5. ``acks_only``: N more deliveries with the workers stopped (the acknowledgement alone), then
   the workers started on that backlog (the ingest alone: drain orders/s);
6. integrity: one order per delivery, inbox all processed, reserved stock = orders x lines,
   ``orderhub stock verify`` clean;
7. profiles, in this process: cProfile of ``--profile-n`` webhook POSTs through the Flask test
   client, then of the ingest job on those stored deliveries.

Run: ``.venv/bin/python bench/ingest.py`` (see ``--help``); results go to
``bench/results/ingest.json``. ``--profile-only --out /tmp/p.json`` runs step 7 alone on a fresh
scratch database (about a minute): the quick way to measure a change to either path. Its
unprofiled timings are the best of ``--plain-rounds`` rounds, the box being shared. The load
generator, scratch-database set-up, servers, workers, CPU accounting and the raw ceiling are
bench/orders.py's.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import pstats
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # shopify_deliveries: signed deliveries

import orders as ob  # noqa: E402  (bench/orders.py: the shared bench plumbing)
import shopify_deliveries  # noqa: E402

ROOT = ob.ROOT
SECRET = "shpss_bench_5b2e9c"
TENANT = "demo"
# Two lines, quantity 1 each: the same rows as the raw ceiling's order.
LINES = (("TSHIRT-BLK-M", 1, "19.90"), ("MUG-LOGO", 1, "9.50"))
GOALS = {"acks_vs_empty_route": 0.25, "ack_p99_ms": 100.0, "e2e_vs_raw_sql": 0.30}


# --- the served app: the hub plus one bench-only route ---------------------------------------


def bench_app() -> Any:
    """The hub's own app (settings from the environment, as gunicorn serves it) plus
    ``POST /_bench/empty``, which reads the body and answers like the webhook route — the
    ceiling for what HTTP + Flask cost on this server. Bench-only: never in the product."""
    from flask import jsonify, request

    from hub import create_app

    app = create_app()

    def empty() -> Any:
        request.get_data(cache=False)
        return jsonify({"received": True, "duplicate": False}), 200

    app.add_url_rule("/_bench/empty", "bench_empty", empty, methods=["POST"])
    return app


# --- deliveries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deliveries:
    """Request ``i`` of client ``tag`` in run ``run``: a distinct, signed orders/create
    delivery (its own order id and webhook id) posted to ``path``. Forked load processes
    inherit it, so nothing is pickled."""

    path: str
    run: str

    def __call__(self, tag: str, i: int) -> tuple[str, bytes, dict[str, str]]:
        key = f"{self.run}:{tag}:{i}"
        order_id = int(hashlib.sha256(key.encode()).hexdigest()[:15], 16)
        body, headers = shopify_deliveries.delivery(order_id, LINES, SECRET, webhook_id=key)
        return self.path, body, headers


def hook_path(connection_id: int) -> str:
    return f"/hooks/{TENANT}/{connection_id}"


def post_json(port: int, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: {response.status} {data}")
        return data
    finally:
        conn.close()


# --- database probes -------------------------------------------------------------------------


def intake_state(url: str, connection_id: int) -> dict[str, Any]:
    """Orders of the connection (total, distinct external ids), inbox by status, reserved."""
    with psycopg.connect(url, autocommit=True) as conn:
        orders, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT external_id) FROM orders WHERE connection_id = %s",
            (connection_id,),
        ).fetchone()  # type: ignore[misc]
        inbox = dict(
            conn.execute(
                "SELECT status, count(*) FROM inbox WHERE connection_id = %s GROUP BY status",
                (connection_id,),
            ).fetchall()
        )
        reserved = dict(
            conn.execute(
                "SELECT p.sku, sum(s.reserved) FROM stock_levels s"
                " JOIN products p ON p.id = s.product_id WHERE p.sku = ANY(%s) GROUP BY p.sku",
                ([sku for sku, _, _ in LINES],),
            ).fetchall()
        )
    return {
        "orders": int(orders),
        "distinct_external_ids": int(distinct),
        "inbox": {k: int(v) for k, v in inbox.items()},
        "reserved": {k: int(v) for k, v in reserved.items()},
    }


def count_connection_orders(conn: psycopg.Connection[Any], connection_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM orders WHERE connection_id = %s", (connection_id,)
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def wait_orders(url: str, connection_id: int, target: int, timeout: float) -> tuple[float, int]:
    """Poll (every 20 ms) until the connection has ``target`` orders; (monotonic time it was
    seen, orders then). An order exists only with its stock reserved: the ingest job creates
    and reserves in one transaction."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            have = count_connection_orders(conn, connection_id)
            now = time.monotonic()
            if have >= target or now > deadline:
                return now, have
            time.sleep(0.02)


# --- measured runs ---------------------------------------------------------------------------


def load(port: int, path: str, run: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    """N requests by C keep-alive clients (bench/orders.py's load generator), no warm-up."""
    return ob.drive(
        port,
        "",
        run,
        args.clients,
        args.load_processes,
        0.0,
        0.0,
        n,
        requests=ob.Requests(Deliveries(path, run), ok="200"),
    )


def ack_figures(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("orders_per_s", "p50_ms", "p99_ms", "mean_ms", "requests", "ok", "errors")
    out = {("per_s" if k == "orders_per_s" else k): result[k] for k in keys}
    out["error_kinds"] = result["error_kinds"]
    out["seconds"] = result["measured_seconds"]
    return out


def run_empty(port: int, args: argparse.Namespace, sessions: dict[str, int], db: str) -> Any:
    before = ob.cpu_snapshot(sessions, db)
    result = load(port, "/_bench/empty", "empty", args.requests, args)
    cpu = ob.cpu_delta_ms(before, ob.cpu_snapshot(sessions, db), result["ok"])
    out = ack_figures(result)
    out["cpu_ms_per_request"] = {**cpu, **result["cpu_ms_per_order"]}
    out["what"] = (
        "POST /_bench/empty on the same server process (bench_app), same clients, same"
        " concurrency, same signed bodies: HTTP + Flask routing + reading the body, nothing else"
    )
    return out


def run_ingest(
    port: int,
    url: str,
    connection_id: int,
    args: argparse.Namespace,
    sessions: dict[str, int],
    db: str,
) -> dict[str, Any]:
    """Acks with the workers consuming, and end-to-end orders/s."""
    with psycopg.connect(url, autocommit=True) as conn:
        before_orders = count_connection_orders(conn, connection_id)
    cpu0 = ob.cpu_snapshot(sessions, db)
    result = load(port, hook_path(connection_id), "ingest", args.requests, args)
    first = result.pop("_first_request_at")
    last_ack = first + result["measured_seconds"]
    done_at, have = wait_orders(url, connection_id, before_orders + result["ok"], args.timeout)
    cpu = ob.cpu_delta_ms(cpu0, ob.cpu_snapshot(sessions, db), result["ok"])
    made = have - before_orders
    e2e_seconds = done_at - first
    return {
        "acks": ack_figures(result),
        "end_to_end": {
            "orders": made,
            "orders_per_s": round(made / e2e_seconds, 1),
            "seconds": round(e2e_seconds, 2),
            "last_order_after_last_ack_s": round(done_at - last_ack, 2),
            "complete": made == result["ok"],
            "what": "first POST sent → the last acknowledged delivery is an order (created with"
            " its stock reserved in one transaction); polled every 20 ms",
        },
        "cpu_ms_per_order": {
            **cpu,
            "load_generator": result["cpu_ms_per_order"].get("load_generator", 0.0),
        },
    }


def run_acks_only(
    port: int,
    url: str,
    connection_id: int,
    args: argparse.Namespace,
    sessions: dict[str, int],
    db: str,
) -> dict[str, Any]:
    """Acks with no worker running (nothing else competes for the CPU)."""
    cpu0 = ob.cpu_snapshot(sessions, db)
    result = load(port, hook_path(connection_id), "acks", args.requests, args)
    result.pop("_first_request_at")
    cpu = ob.cpu_delta_ms(cpu0, ob.cpu_snapshot(sessions, db), result["ok"])
    out = ack_figures(result)
    out["cpu_ms_per_request"] = {**cpu, **result["cpu_ms_per_order"]}
    return out


def run_drain(
    url: str,
    connection_id: int,
    backlog: int,
    env: dict[str, str],
    broker: ob.Broker,
    workdir: Path,
    args: argparse.Namespace,
    db: str,
) -> dict[str, Any]:
    """Workers started on a backlog of ``backlog`` stored deliveries: the ingest alone."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = count_connection_orders(conn, connection_id)
    t0 = time.monotonic()
    with ob.event_worker(broker, env, workdir) as worker:
        assert worker is not None
        ready = time.monotonic()
        cpu0 = ob.cpu_snapshot({"worker": worker.pid}, db)
        done_at, have = wait_orders(url, connection_id, before + backlog, args.timeout)
        cpu = ob.cpu_delta_ms(cpu0, ob.cpu_snapshot({"worker": worker.pid}, db), backlog)
    made = have - before
    return {
        "backlog": backlog,
        "orders": made,
        "orders_per_s": round(made / (done_at - ready), 1),
        "seconds": round(done_at - ready, 2),
        "worker_start_s": round(ready - t0, 2),
        "cpu_ms_per_order": cpu,
        "what": "workers started on the stored backlog; from the worker's 'running' line to"
        " the last order (worker start-up excluded)",
    }


# --- profiles (in this process) --------------------------------------------------------------

ACK_HOT = (
    ("hub/web/hooks.py", "receive", "webhook view (whole acknowledgement)"),
    ("hub/runtime.py", "hook_connection", "connection lookup (cached per process, 5 s)"),
    ("hub/core/intake.py", "push_connection", "SELECT of the connection (+ tenant), on a miss"),
    ("hub/runtime.py", "adapter_for", "connection's adapter (cached per process)"),
    ("hub/runtime.py", "channel_adapter", "building an adapter (decrypt settings), on a miss"),
    ("hub/core/intake.py", "receive", "intake.receive (verify + store)"),
    ("plugins/channels/shopify.py", "verify", "Shopify verify (headers + HMAC)"),
    ("hub/core/intake.py", "_store", "INSERT … ON CONFLICT into inbox"),
    ("hub/core/scoping.py", "_scope", "tenant scoping hook"),
    ("hub/worker/broker.py", "send", "enqueue ingest on Redis"),
    ("sqlalchemy/orm/session.py", "commit", "session commit"),
    ("sqlalchemy/pool/base.py", "checkout", "pool checkout (incl. pre-ping)"),
    ("psycopg/connection.py", "wait", "waiting for PostgreSQL"),
    ("redis/connection.py", "read_response", "waiting for Redis"),
)
INGEST_HOT = (
    ("hub/worker/actors.py", "ingest", "ingest job (whole)"),
    ("hub/core/intake.py", "ingest", "intake.ingest"),
    ("plugins/channels/shopify.py", "parse", "Shopify parse (JSON + mapping)"),
    ("hub/core/intake.py", "_apply", "upsert the order"),
    ("hub/core/intake.py", "_mapped_lines", "SKU mapping lookup (+ the products, once)"),
    ("hub/core/orders.py", "products_by_sku", "SELECT products"),
    ("hub/core/orders.py", "create", "orders.create"),
    ("hub/worker/actors.py", "<lambda>", "order-number prefix (tenant settings, no query)"),
    ("hub/runtime.py", "adapter_for", "connection's adapter (cached per process)"),
    ("hub/core/intake.py", "_finish", "UPDATE inbox (once, at the end)"),
    ("hub/core/orders.py", "upsert_customer", "customer upsert"),
    ("hub/core/orders.py", "_allocate_missing", "allocation (savepoint, reserve, insert)"),
    ("hub/core/inventory.py", "reserve", "inventory.reserve"),
    ("hub/core/inventory.py", "take", "stock reservation (conditional UPDATEs)"),
    ("hub/core/order_writer.py", "write", "order rows (one data-modifying CTE)"),
    ("hub/core/audit.py", "record", "audit.record"),
    ("hub/core/events.py", "emit", "events.emit"),
    ("sqlalchemy/orm/session.py", "flush", "ORM flush"),
    ("sqlalchemy/orm/session.py", "commit", "session commit"),
    ("sqlalchemy/sql/compiler.py", "__init__", "SQL compilation (cache misses)"),
    ("psycopg/connection.py", "wait", "waiting for PostgreSQL"),
)


def _layer(key: tuple[str, int, str]) -> str:
    if key[0].startswith(f"{ROOT}/plugins/"):
        return "plugins (own code)"
    if "/redis/" in key[0]:
        return "redis-py"
    return ob._component(key)


def _own(path: str) -> str | None:
    for top in ("hub", "plugins"):
        if path.startswith(f"{ROOT}/{top}/"):
            return path[len(f"{ROOT}/") :]
    return None


def statement_kind(statement: str) -> str:
    """bench/orders.py's label ("SELECT inbox"), after dropping subqueries: the ingest job's
    first statement selects from inbox with an EXISTS (SELECT … FROM sku_mappings) column."""
    return ob._statement_kind(re.sub(r"\(SELECT [^()]*\)", "(…)", statement))


def summarise_profile(
    profiler: cProfile.Profile,
    n: int,
    wall: float,
    statements: Counter[str],
    sql_seconds: float,
    hot: tuple[tuple[str, str, str], ...],
    top: int,
) -> dict[str, Any]:
    """Per item: the top functions of our own modules by cumulative time, the selected
    functions, the time by layer (own time), and the SQL statements."""
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    own = []
    for (path, line, name), (_cc, calls, tt, ct, _callers) in raw.items():
        rel = _own(path)
        if rel:
            own.append((ct, tt, calls, f"{rel}:{line}({name})"))
    own.sort(reverse=True)
    by_layer: Counter[str] = Counter()
    for key, (_cc, _nc, tt, _ct, _callers) in raw.items():
        by_layer[_layer(key)] += tt
    total = sum(by_layer.values()) or 1.0
    selected = []
    for path, name, label in hot:
        rows = [v for k, v in raw.items() if k[0].endswith(path) and k[2] == name]
        calls = sum(v[1] for v in rows)
        if calls:
            selected.append(
                {
                    "what": label,
                    "function": f"{path}:{name}",
                    "cum_ms": round(sum(v[3] for v in rows) / n * 1000, 3),
                    "calls": round(calls / n, 2),
                }
            )
    return {
        "items": n,
        "profiled_wall_ms": round(wall / n * 1000, 3),
        "python_function_calls": round(sum(v[1] for v in raw.values()) / n),
        "top_own_by_cumulative": [
            {
                "function": fn,
                "cum_ms": round(ct / n * 1000, 3),
                "own_ms": round(tt / n * 1000, 3),
                "calls": round(calls / n, 2),
            }
            for ct, tt, calls, fn in own[:top]
        ],
        "selected_cumulative": selected,
        "own_time_by_layer_share": {k: round(v / total, 3) for k, v in by_layer.most_common()},
        "sql_statements": {k: round(v / n, 2) for k, v in statements.most_common()},
        "sql_statements_total": round(sum(statements.values()) / n, 2),
        "sql_execute_ms": round(sql_seconds / n * 1000, 3),
        "note": "per item; cProfile inflates Python time, so compare shares, not absolutes",
    }


def run_profiles(
    url: str, workdir: Path, broker: ob.Broker, connection_id: int, args: argparse.Namespace
) -> dict[str, Any]:
    """cProfile of N webhook POSTs through the Flask test client (the acknowledgement without
    the HTTP server), then of the ingest job on the N deliveries they stored. Redis broker,
    no worker running: the enqueued jobs stay queued and are deleted with the namespace."""
    from sqlalchemy import event

    from hub import create_app

    n = args.profile_n
    app = create_app(
        {
            "database_url": url,
            "broker_url": broker.url,
            "broker_namespace": broker.namespace,
            "config_dir": workdir / "config",
            "data_dir": workdir / "var",
            "secret_key": ob.hub_env(url, workdir)["ORDERHUB_SECRET_KEY"],
            "log_level": "WARNING",
        }
    )
    runtime = app.extensions["orderhub"]
    client = app.test_client()
    state: dict[str, Any] = {"on": False, "sql": 0.0, "t0": 0.0, "statements": Counter()}

    @event.listens_for(runtime.engine, "before_cursor_execute")
    def _before(*args_: Any) -> None:
        if state["on"]:
            state["statements"][statement_kind(args_[2])] += 1
            state["t0"] = time.perf_counter()

    @event.listens_for(runtime.engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        if state["on"]:
            state["sql"] += time.perf_counter() - state["t0"]

    def post_batch(run: str, count: int) -> float:
        make = Deliveries(hook_path(connection_id), run)
        requests = [make("p", i) for i in range(count)]
        t0 = time.perf_counter()
        for path, body, headers in requests:
            response = client.post(path, data=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"profile POST: {response.status_code} {response.data!r}")
        return time.perf_counter() - t0

    def pending_ids() -> list[int]:
        with psycopg.connect(url, autocommit=True) as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM inbox WHERE connection_id = %s AND status = 'pending'"
                    " ORDER BY id",
                    (connection_id,),
                )
            ]

    ingest = runtime.jobs.actors["ingest"].fn  # the job as a worker runs it
    try:

        def ingest_all(ids: list[int]) -> None:
            for entry_id in ids:
                ingest(entry_id)

        # unprofiled, after a few to fill the statement caches: wall and CPU time per item
        # (process_time: this process's Python, psycopg and SQLAlchemy, not PostgreSQL's)
        # Best of --plain-rounds rounds: the box is shared, and the least disturbed round is
        # the one that says what the code costs.
        post_batch("profile-warm", 20)
        ingest_all(pending_ids())
        plain = min(args.plain_n, n)
        plain_ack = plain_ack_cpu = plain_ingest = plain_ingest_cpu = float("inf")
        for round_ in range(args.plain_rounds):
            c0 = time.process_time()
            plain_ack = min(plain_ack, post_batch(f"profile-plain-{round_}", plain) / plain)
            plain_ack_cpu = min(plain_ack_cpu, (time.process_time() - c0) / plain)
            ids = pending_ids()
            t0, c0 = time.perf_counter(), time.process_time()
            ingest_all(ids)
            count = max(len(ids), 1)
            plain_ingest = min(plain_ingest, (time.perf_counter() - t0) / count)
            plain_ingest_cpu = min(plain_ingest_cpu, (time.process_time() - c0) / count)

        profiler = cProfile.Profile()
        state.update(on=True, sql=0.0, statements=Counter())
        profiler.enable()
        wall = post_batch("profile", n)
        profiler.disable()
        state["on"] = False
        ack = summarise_profile(
            profiler, n, wall, state["statements"], state["sql"], ACK_HOT, args.profile_top
        )
        ack["unprofiled_wall_ms"] = round(plain_ack * 1000, 3)
        ack["unprofiled_cpu_ms"] = round(plain_ack_cpu * 1000, 3)
        ack["what"] = (
            f"{n} signed orders/create deliveries POSTed through the Flask test client (no"
            " HTTP server), Redis broker, PostgreSQL; one thread"
        )
        ack["text_report"] = _write_report(args.out, "ingest-ack-profile.txt", profiler, "ack", n)

        ids = pending_ids()
        profiler = cProfile.Profile()
        state.update(on=True, sql=0.0, statements=Counter())
        t0 = time.perf_counter()
        profiler.enable()
        ingest_all(ids)
        profiler.disable()
        wall = time.perf_counter() - t0
        state["on"] = False
        job = summarise_profile(
            profiler,
            len(ids),
            wall,
            state["statements"],
            state["sql"],
            INGEST_HOT,
            args.profile_top,
        )
        job["unprofiled_wall_ms"] = round(plain_ingest * 1000, 3)
        job["unprofiled_cpu_ms"] = round(plain_ingest_cpu * 1000, 3)
        job["what"] = (
            f"the ingest job (the bound actor function a worker runs) on the {len(ids)}"
            " deliveries the profiled POSTs stored, one after another, one thread"
        )
        job["text_report"] = _write_report(
            args.out, "ingest-job-profile.txt", profiler, "ingest", len(ids)
        )
        return {"acknowledgement": ack, "ingest_job": job}
    finally:
        runtime.close()


def _write_report(out: Path, name: str, profiler: cProfile.Profile, what: str, n: int) -> str:
    """The top 50 by cumulative time as text, next to the JSON; returns where it went."""
    import io

    text = io.StringIO()
    text.write(f"# bench/ingest.py: cProfile of {n} x {what}, top 50 by cumulative time\n\n")
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(50)
    path = out.with_name(name)
    path.write_text(text.getvalue())
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


# --- the run ---------------------------------------------------------------------------------


def server_command(args: argparse.Namespace, port: int) -> list[str]:
    if args.server == "waitress":
        return [
            str(ob.VENV_BIN / "waitress-serve"),
            "--host=127.0.0.1",
            f"--port={port}",
            f"--threads={args.threads}",
            "--call",
            "ingest:bench_app",
        ]
    return [
        str(ob.VENV_BIN / "gunicorn"),
        "-w",
        str(args.web_workers),
        "-k",
        "gthread",
        "--threads",
        str(args.threads),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "ingest:bench_app()",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, default=2000, help="deliveries per run (N)")
    p.add_argument("-c", "--clients", type=int, default=8, help="concurrent HTTP clients (C)")
    p.add_argument("--load-processes", type=int, default=2, help="load generator processes")
    p.add_argument("--server", choices=("gunicorn-gthread", "waitress"), default="gunicorn-gthread")
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=4, help="threads per server process")
    p.add_argument("--worker-processes", type=int, default=2, help="orderhub worker --processes")
    p.add_argument("--worker-threads", type=int, default=4, help="orderhub worker --threads")
    p.add_argument("--warmup", type=int, default=100, help="warm-up deliveries (drained)")
    p.add_argument("--raw-connections", type=int, default=4)
    p.add_argument("--raw-duration", type=float, default=10.0)
    p.add_argument("--raw-warmup", type=float, default=3.0)
    p.add_argument("--profile-n", type=int, default=500, help="deliveries per profile")
    p.add_argument("--profile-top", type=int, default=15, help="own functions listed")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument(
        "--plain-n", type=int, default=200, help="deliveries per unprofiled timing round"
    )
    p.add_argument(
        "--plain-rounds", type=int, default=3, help="unprofiled timing rounds (best is kept)"
    )
    p.add_argument(
        "--profile-only",
        action="store_true",
        help="only the in-process profiles (no ceilings, servers or workers): a quick way to"
        " measure a change to the acknowledgement or the ingest job; writes --out",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="max wait for orders (s)")
    p.add_argument("--redis-url", default=ob.DEFAULT_REDIS_URL)
    p.add_argument("--admin-url", default=os.environ.get("ORDERHUB_BENCH_ADMIN_URL"))
    p.add_argument("--out", type=Path, default=ob.RESULTS / "ingest.json")
    p.add_argument("--keep-db", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run everything and write the JSON; returns what it wrote."""
    args = parse_args(argv)
    admin_url = args.admin_url or ob.DEFAULT_ADMIN_URL
    if not any(host in admin_url for host in ob.LOOPBACK):
        raise SystemExit("only a loopback PostgreSQL is allowed")
    if not any(f"//{h}" in args.redis_url for h in ob.LOOPBACK):
        raise SystemExit("only a loopback Redis is allowed")
    if args.profile_only:
        return profile_only(args, admin_url)
    started = time.monotonic()
    pid = os.getpid()
    hub_db, raw_db = f"orderhub_ingest_{pid}", f"orderhub_ingest_raw_{pid}"
    broker = ob.Broker(
        "redis",
        args.redis_url,
        f"orderhub-ingest-{pid}",
        args.worker_processes,
        args.worker_threads,
    )
    report: dict[str, Any] = {
        "benchmark": "Shopify orders/create webhooks (2 lines, quantity 1, signed) →"
        " POST /hooks/<tenant>/<connection> → inbox → ingest job → order with stock reserved",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "note": "load generator, HTTP server, workers, Redis and PostgreSQL share these"
            " cores, and other jobs (test suites) may run on the box at the same time: the"
            " figures are noisy; the ratios, measured in the same run, are what to compare",
        },
        "code": ob.git_state(),
        "n": args.requests,
        "c": args.clients,
        "goals": GOALS,
    }
    ob.RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="orderhub-ingest-") as tmp:
        workdir = Path(tmp)
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                report["postgres"] = {
                    "version": conn.execute("SHOW server_version").fetchone()[0],  # type: ignore[index]
                    "synchronous_commit": conn.execute("SHOW synchronous_commit").fetchone()[0],  # type: ignore[index]
                }
            print("preparing scratch databases …", flush=True)
            hub = ob.prepare(admin_url, hub_db, workdir)
            raw = ob.prepare(admin_url, raw_db, workdir)

            print(f"raw SQL ceiling: {args.raw_connections} connections …", flush=True)
            minimal = ob.run_raw(raw.url, args.raw_connections, args.raw_warmup, args.raw_duration)
            minimal.update(database=raw_db, statements_per_order=ob.MINIMAL_STATEMENTS)

            env = ob.hub_env(hub.url, workdir, broker, {"PYTHONPATH": str(BENCH)})
            port = ob.free_port()
            command = server_command(args, port)
            settings = _settings(env, args, command)
            print(f"hub: {shlex.join(command[1:])} + {shlex.join(broker.worker_command()[1:])}")
            ob.analyze(hub.url)
            with ob.running(command, env, workdir, port) as server:
                sessions = {"server": server.pid}
                connection = post_json(
                    port,
                    "/api/v1/connections",
                    {"plugin": "shopify", "name": "bench-store", "settings": {"secret": SECRET}},
                    hub.token,
                )
                connection_id = int(connection["id"])
                with ob.event_worker(broker, env, workdir) as worker:
                    assert worker is not None
                    sessions["worker"] = worker.pid
                    print(f"warm-up: {args.warmup} deliveries …", flush=True)
                    warm = ob.drive(
                        port,
                        "",
                        "warm",
                        args.clients,
                        args.load_processes,
                        0.0,
                        0.0,
                        args.warmup,
                        requests=ob.Requests(Deliveries(hook_path(connection_id), "warm")),
                    )
                    wait_orders(hub.url, connection_id, warm["ok"], args.timeout)
                    ob.drive(
                        port,
                        "",
                        "warm-empty",
                        args.clients,
                        args.load_processes,
                        0.0,
                        0.0,
                        args.warmup,
                        requests=ob.Requests(Deliveries("/_bench/empty", "we")),
                    )
                    print(f"empty-route ceiling: {args.requests} requests …", flush=True)
                    empty = run_empty(port, args, sessions, hub.name)
                    print(f"ingest: {args.requests} deliveries, workers consuming …", flush=True)
                    ingest = run_ingest(port, hub.url, connection_id, args, sessions, hub.name)
                sessions.pop("worker")
                print(f"acks only: {args.requests} deliveries, no worker …", flush=True)
                acks_only = run_acks_only(port, hub.url, connection_id, args, sessions, hub.name)
            print("ingest only: workers started on that backlog …", flush=True)
            drain = run_drain(
                hub.url, connection_id, acks_only["ok"], env, broker, workdir, args, hub.name
            )
            integrity = check_integrity(hub.url, connection_id, env, workdir)
            profiles = (
                {}
                if args.no_profile
                else run_profiles(hub.url, workdir, broker, connection_id, args)
            )
        finally:
            if not args.keep_db:
                for name in (hub_db, raw_db):
                    try:
                        ob.drop_database(admin_url, name)
                    except Exception as exc:
                        print(f"could not drop {name}: {exc}", file=sys.stderr)
            redis_keys = broker.delete_keys()

    report["hub_settings"] = settings
    report["ceilings"] = {
        "empty_route": empty,
        "raw_sql_minimal": {
            k: minimal[k]
            for k in (
                "orders_per_s",
                "p50_ms",
                "p99_ms",
                "requests",
                "errors",
                "connections",
                "measured_seconds",
                "cpu_ms_per_order",
                "statements_per_order",
            )
        },
    }
    report["ingest"] = ingest
    report["acks_only"] = acks_only
    report["ingest_only"] = drain
    report["integrity"] = integrity
    report["ratios"] = ratios(report)
    report["profiles"] = profiles
    report["where_the_time_goes"] = where_the_time_goes(report)
    if profiles:
        profiles["where_the_time_goes"] = profile_notes(report)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["redis_keys_deleted"] = redis_keys
    report["reproduce"] = {
        "benchmark": (
            ".venv/bin/python bench/ingest.py "
            + shlex.join(argv if argv is not None else sys.argv[1:])
        ).strip(),
        "hub_setup": "ORDERHUB_BROKER_URL=embedded orderhub init --demo && orderhub stock import"
        " --tenant demo <csv: MAIN,<sku>,1000000 per demo SKU> (bench/orders.py prepare), then"
        " POST /api/v1/connections {plugin: shopify, settings: {secret}}",
        "server": f"PYTHONPATH=bench {shlex.join(command)}",
        "worker": shlex.join(["orderhub", *broker.worker_command()[1:]]),
        "env": {
            k: v for k, v in env.items() if k.startswith("ORDERHUB_") and k != "ORDERHUB_SECRET_KEY"
        },
        "deliveries": "tests/shopify_deliveries.py delivery(): REST Order resource, compact"
        " JSON, base64 HMAC-SHA256 over the raw body, X-Shopify-* headers; a distinct order"
        " id and X-Shopify-Webhook-Id per request",
        "load_generator": "bench/orders.py drive() with Requests (keep-alive http.client,"
        f" {args.load_processes} processes, {args.clients} threads in all)",
        "lint": ".venv/bin/ruff check bench/ && .venv/bin/ruff format bench/",
    }
    report["total_seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_summary(report)
    return report


def profile_only(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    """``--profile-only``: a scratch hub database, the Shopify connection, and the two
    in-process profiles: no ceilings, no servers, no workers, so a change to the
    acknowledgement or the ingest job can be measured in a minute rather than several."""
    from hub import create_app

    pid = os.getpid()
    hub_db = f"orderhub_ingest_profile_{pid}"
    broker = ob.Broker("redis", args.redis_url, f"orderhub-ingest-profile-{pid}")
    report: dict[str, Any] = {
        "mode": "profile-only",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "code": ob.git_state(),
    }
    with tempfile.TemporaryDirectory(prefix="orderhub-ingest-") as tmp:
        workdir = Path(tmp)
        try:
            hub = ob.prepare(admin_url, hub_db, workdir)
            ob.analyze(hub.url)
            env = ob.hub_env(hub.url, workdir)
            app = create_app(
                {
                    "database_url": hub.url,
                    "broker_url": "embedded",
                    "config_dir": workdir / "config",
                    "data_dir": workdir / "var",
                    "secret_key": env["ORDERHUB_SECRET_KEY"],
                    "log_level": "WARNING",
                }
            )
            try:
                response = app.test_client().post(
                    "/api/v1/connections",
                    json={
                        "plugin": "shopify",
                        "name": "bench-store",
                        "settings": {"secret": SECRET},
                    },
                    headers={"Authorization": f"Bearer {hub.token}"},
                )
                if response.status_code != 201:
                    raise RuntimeError(f"connection: {response.status_code} {response.data!r}")
                connection_id = int(response.get_json()["id"])
            finally:
                app.extensions["orderhub"].close()
            report["profiles"] = run_profiles(hub.url, workdir, broker, connection_id, args)
        finally:
            if not args.keep_db:
                ob.drop_database(admin_url, hub_db)
            broker.delete_keys()
    report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    for name, prof in report["profiles"].items():
        print(
            f"{name}: {prof['unprofiled_cpu_ms']} ms CPU, {prof['unprofiled_wall_ms']} ms wall,"
            f" {prof['sql_statements_total']:g} statements {json.dumps(prof['sql_statements'])}"
        )
        for item in prof["selected_cumulative"]:
            print(f"    {item['cum_ms']:>8.3f} ms  {item['calls']:>5g}x  {item['what']}")
    print(f"load average: {report['loadavg_at_start']} → {report['loadavg_at_end']}")
    return report


def _settings(env: dict[str, str], args: argparse.Namespace, command: list[str]) -> dict[str, Any]:
    """The hub's effective settings as its processes load them (secrets left out)."""
    from hub import settings as settings_module

    s = settings_module.load(env=env)
    return {
        "database": s.database_url.rsplit("/", 1)[-1],
        "broker_url": s.broker_url,
        "broker_namespace": s.broker_namespace,
        "log_level": s.log_level,
        "sweep_seconds": s.sweep_seconds,
        "sweep_grace_seconds": s.sweep_grace_seconds,
        "max_body_bytes": s.max_body_bytes,
        "server": args.server,
        "server_processes": 1 if args.server == "waitress" else args.web_workers,
        "server_threads": args.threads,
        "worker_processes": args.worker_processes,
        "worker_threads": args.worker_threads,
        "server_command": shlex.join(command),
    }


def check_integrity(url: str, connection_id: int, env: dict[str, str], workdir: Path) -> Any:
    """Everything acknowledged became exactly one order with its stock; the ledger agrees."""
    state = intake_state(url, connection_id)
    verify = subprocess.run(
        [str(ob.VENV_BIN / "orderhub"), "stock", "verify"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    state["stock_verify"] = (verify.stdout + verify.stderr).strip()
    state["ok"] = (
        verify.returncode == 0
        and state["orders"] == state["distinct_external_ids"]
        and state["inbox"] == {"processed": state["orders"]}
        and all(state["reserved"].get(sku) == q * state["orders"] for sku, q, _ in LINES)
    )
    return state


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    empty = report["ceilings"]["empty_route"]["per_s"]
    raw = report["ceilings"]["raw_sql_minimal"]["orders_per_s"]
    acks = report["ingest"]["acks"]
    alone = report["acks_only"]
    e2e = report["ingest"]["end_to_end"]["orders_per_s"]
    drain = report["ingest_only"]["orders_per_s"]
    out = {
        "acks_vs_empty_route": round(acks["per_s"] / empty, 3),
        "acks_only_vs_empty_route": round(alone["per_s"] / empty, 3),
        "e2e_vs_raw_sql": round(e2e / raw, 3),
        "ingest_only_vs_raw_sql": round(drain / raw, 3),
        "ack_p99_ms": acks["p99_ms"],
        "acks_only_p99_ms": alone["p99_ms"],
    }
    out["goal_met"] = {
        "acks_vs_empty_route": out["acks_vs_empty_route"] >= GOALS["acks_vs_empty_route"],
        "ack_p99_ms": acks["p99_ms"] < GOALS["ack_p99_ms"],
        "e2e_vs_raw_sql": out["e2e_vs_raw_sql"] >= GOALS["e2e_vs_raw_sql"],
    }
    out["meaning"] = {
        "acks_vs_empty_route": "acknowledgements/s (workers consuming at the same time, as in"
        " production) over the empty route's requests/s on the same server and clients",
        "acks_only_vs_empty_route": "the same with no worker running: the acknowledgement's"
        " own price",
        "e2e_vs_raw_sql": "end-to-end orders/s over the raw-SQL minimal order transaction",
        "ingest_only_vs_raw_sql": "the workers draining a stored backlog (no acks competing)"
        " over the raw-SQL minimal order transaction",
    }
    return out


def where_the_time_goes(report: dict[str, Any]) -> list[str]:
    """A few plain sentences from the measurements, so the JSON reads on its own."""
    notes = []
    r = report["ratios"]
    ing = report["ingest"]
    cpu = ing["cpu_ms_per_order"]
    notes.append(
        f"Acks {ing['acks']['per_s']}/s (p50 {ing['acks']['p50_ms']} ms, p99"
        f" {ing['acks']['p99_ms']} ms) while the workers ingest = {r['acks_vs_empty_route']:.0%}"
        f" of the empty route ({report['ceilings']['empty_route']['per_s']}/s); with no worker"
        f" running {report['acks_only']['per_s']}/s = {r['acks_only_vs_empty_route']:.0%}."
    )
    notes.append(
        f"End to end {ing['end_to_end']['orders_per_s']} orders/s ="
        f" {r['e2e_vs_raw_sql']:.0%} of the raw-SQL order transaction"
        f" ({report['ceilings']['raw_sql_minimal']['orders_per_s']}/s); the workers alone drain"
        f" a stored backlog at {report['ingest_only']['orders_per_s']}/s"
        f" ({r['ingest_only_vs_raw_sql']:.0%}). The last order exists"
        f" {ing['end_to_end']['last_order_after_last_ack_s']} s after the last ack: ingest, not"
        " the acknowledgement, sets the pace."
    )
    notes.append(
        "CPU per order during the ingest run (from /proc): server"
        f" {cpu.get('server', 0):.2f} ms, workers {cpu.get('worker', 0):.2f} ms, PostgreSQL"
        f" {cpu.get('postgres_bench_db', 0):.2f} ms, Redis {cpu.get('redis', 0):.2f} ms, load"
        f" generator {cpu.get('load_generator', 0):.2f} ms; whole machine busy"
        f" {cpu.get('machine_busy', 0):.2f} ms per order on {report['machine']['cores']} cores"
        " (other processes on the box included)."
    )
    ours = sum(v for k, v in cpu.items() if k not in ("machine_busy", "postgres_other"))
    if cpu.get("machine_busy"):
        notes.append(
            f"Noise: of the {cpu['machine_busy']:.1f} ms of machine CPU per order in the ingest"
            f" run, this benchmark's own processes account for {ours:.1f} ms; the rest"
            f" ({1 - ours / cpu['machine_busy']:.0%}) went to other jobs on the box (load"
            f" average {report['machine']['loadavg_at_start'][0]} at the start). Ceilings and"
            " hub runs were measured at different moments, so the ratios carry that noise too."
        )
    return notes + profile_notes(report)


def profile_notes(report: dict[str, Any]) -> list[str]:
    """What the two profiles say, next to the /proc CPU figures of the real processes."""
    notes = []
    profiles = {k: v for k, v in report.get("profiles", {}).items() if isinstance(v, dict)}
    ack, job = profiles.get("acknowledgement"), profiles.get("ingest_job")
    if ack:
        alone = report["acks_only"]["cpu_ms_per_request"]
        empty = report["ceilings"]["empty_route"]["cpu_ms_per_request"]
        notes.append(
            f"An acknowledgement costs the server {alone.get('server', 0):.2f} ms CPU (no"
            f" worker running) against {empty.get('server', 0):.2f} ms for an empty-route"
            f" request, plus PostgreSQL {alone.get('postgres_bench_db', 0):.2f} ms and Redis"
            f" {alone.get('redis', 0):.2f} ms. In process (Flask test client, no HTTP server):"
            f" {ack['unprofiled_cpu_ms']:.2f} ms CPU, {ack['unprofiled_wall_ms']:.2f} ms wall,"
            f" {ack['sql_statements_total']:g} SQL statements per request ("
            + ", ".join(f"{v:g}x {k}" for k, v in ack["sql_statements"].items())
            + "; in autocommit, no BEGIN/COMMIT round trips), one Redis enqueue."
        )
    if job:
        worker = report["ingest_only"]["cpu_ms_per_order"].get("worker", 0)
        notes.append(
            f"The ingest job in process: {job['unprofiled_cpu_ms']:.2f} ms CPU,"
            f" {job['unprofiled_wall_ms']:.2f} ms wall, {job['sql_statements_total']:g} SQL"
            " statements ("
            + ", ".join(f"{v:g}x {k}" for k, v in job["sql_statements"].items())
            + ") against 5 + commit in the raw transaction. An 'orderhub worker' spends"
            f" {worker:.2f} ms CPU per order draining a backlog, so Dramatiq and the worker"
            f" (fetch, ack, threads) add about {worker - job['unprofiled_cpu_ms']:.1f} ms per"
            " message."
        )
    for name, prof in profiles.items():
        layers = ", ".join(
            f"{k} {v:.0%}" for k, v in list(prof["own_time_by_layer_share"].items())[:5]
        )
        top = "; ".join(
            f"{s['what']} {s['cum_ms']:.2f} ms" for s in prof["selected_cumulative"][:7]
        )
        notes.append(
            f"cProfile of the {name.replace('_', ' ')} ({prof['profiled_wall_ms']:.2f} ms per"
            f" item under the profiler), cumulative: {top}. Own time by layer: {layers}."
        )
    return notes


def print_summary(report: dict[str, Any]) -> None:
    e, raw = report["ceilings"]["empty_route"], report["ceilings"]["raw_sql_minimal"]
    ing = report["ingest"]
    print(f"\nempty route       {e['per_s']:>8}/s  p50 {e['p50_ms']} ms  p99 {e['p99_ms']} ms")
    print(f"raw SQL order     {raw['orders_per_s']:>8}/s  p50 {raw['p50_ms']} ms")
    a = ing["acks"]
    print(f"acks (ingesting)  {a['per_s']:>8}/s  p50 {a['p50_ms']} ms  p99 {a['p99_ms']} ms")
    a = report["acks_only"]
    print(f"acks (no worker)  {a['per_s']:>8}/s  p50 {a['p50_ms']} ms  p99 {a['p99_ms']} ms")
    print(f"end to end        {ing['end_to_end']['orders_per_s']:>8} orders/s")
    print(f"ingest only       {report['ingest_only']['orders_per_s']:>8} orders/s")
    print(f"ratios: {json.dumps({k: v for k, v in report['ratios'].items() if k != 'meaning'})}")
    print(f"integrity ok: {report['integrity']['ok']}")
    for note in report["where_the_time_goes"]:
        print(f"- {note}")


if __name__ == "__main__":
    main()
