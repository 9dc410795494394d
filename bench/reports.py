"""Reports benchmark: every report and the order search on a large shop's PostgreSQL.

What it answers: does a merchant with a million orders get every report in under a second,
for a quarter and for a year, and a page of a multi-condition order search in under 50 ms?
A large shop's filter takes 9.5 s in a well-known open-source platform; the hub should be far
ahead of that.

The data (bench/report_seed.py): 1,000,000 orders of tenant "demo" over two years (2 million
lines over 5,000 products in 40 categories, 200,000 customers in 24 regions of 10 countries,
three currencies, six channels), their shipments with items, promised and delivered dates and
2 % delivery exceptions, 60,000 tickets over 12 agents with SLA deadlines, 18,000 returns
with refunds — and a second tenant with 100,000 orders in the same tables. The demo tenant
cuts its days in Asia/Shanghai.

What it measures, through the hub's real HTTP stack (``orderhub serve``, waitress, its
embedded worker sweeping as in production), each case three times after a warm-up, reporting
the median and the spread (max - min) — a user meets the median:

* every report (``GET /api/v1/reports/<name>``) for the last 90 days and the last year, in
  each of its shapes (orders by day, week, month, channel, status, warehouse, category; sales
  by day and month; products by quantity and amount; customers, returns, tickets, carriers);
* the order search (``GET /api/v1/orders`` with several conditions, a page of 50 with its
  total) for the filters a back office uses;
* the rollups' upkeep: the full build (``orderhub reports refresh --rebuild``); and, after
  1,000 orders change (once among the last 14 days' orders, as a shop's day moves them, once
  spread over two years), a year's report before the refresh (it sums the changed days from
  the raw rows), the refresh the worker's sweep runs, and the report after it.

Ceilings measured in the same run, so the noisy 2-core machine's figures mean something:

* ``raw_sql_ms``: the same answer computed by plain SQL over the raw tables (psycopg, no
  hub) — what the report would cost without the rollups. ``ratio_to_raw_sql`` < 1 is the
  rollups winning;
* ``route_floor_ms``: the same route for a one-minute period with no rows in it — the fixed
  cost of HTTP, authentication, the rollups' freshness check and JSON;
* for the order search: the same page (rows, and the total counted up to 1,000 as the hub
  counts it) in plain SQL; the hub also loads the page's order lines.

Run: ``.venv/bin/python bench/reports.py`` (``--help``; ``--keep-db`` then ``--reuse`` skip
the five-minute seeding on later runs). Results: ``bench/results/reports.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import report_seed
from orders import (
    DEFAULT_ADMIN_URL,
    RESULTS,
    VENV_BIN,
    create_database,
    db_url,
    drop_database,
    free_port,
    git_state,
    hub_env,
    running,
)

ZONE = "Asia/Shanghai"
DB_NAME = "orderhub_bench_reports"
PERIODS = {"90d": 90, "1y": 365}
REPORT_CASES: list[tuple[str, str]] = [
    ("orders", "by=day"),
    ("orders", "by=week"),
    ("orders", "by=month"),
    ("orders", "by=channel"),
    ("orders", "by=status"),
    ("orders", "by=warehouse"),
    ("orders", "by=category"),
    ("sales", "interval=day"),
    ("sales", "interval=month"),
    ("customers", ""),
    ("products", "sort=quantity"),
    ("products", "sort=amount"),
    ("returns", ""),
    ("tickets", ""),
    ("carriers", ""),
]
GOALS = {"report_ms": 1000.0, "order_page_ms": 50.0}
REPORT_LOOKBACK_S = 61  # hub.core.report_rollups.REPORT_OVERLAP, and a second


# --- raw-SQL ceilings: the same answers from the raw tables --------------------------------

DAY = "(o.created_at AT TIME ZONE %(zone)s)::date"
IN_PERIOD = "o.tenant_id = %(t)s AND o.created_at >= %(lo)s AND o.created_at < %(hi)s"
RAW_SQL: dict[tuple[str, str], str] = {
    ("orders", "by=day"): f"""SELECT {DAY}, o.currency, count(*), sum(o.total) FROM orders o
        WHERE {IN_PERIOD} GROUP BY 1, 2""",
    ("orders", "by=channel"): f"""SELECT o.channel, o.currency, count(*), sum(o.total)
        FROM orders o WHERE {IN_PERIOD} GROUP BY 1, 2""",
    ("orders", "by=category"): f"""SELECT coalesce(p.category, ''), o.currency, count(*),
        sum(l.quantity), sum(l.line_total) FROM order_lines l
        JOIN orders o ON o.id = l.order_id JOIN products p ON p.id = l.product_id
        WHERE {IN_PERIOD} AND o.status <> 'cancelled' GROUP BY 1, 2""",
    ("products", "sort=quantity"): f"""SELECT * FROM (SELECT l.product_id, o.currency,
        count(DISTINCT o.id), sum(l.quantity) AS units, sum(l.line_total),
        row_number() OVER (PARTITION BY o.currency ORDER BY sum(l.quantity) DESC) AS rank
        FROM order_lines l JOIN orders o ON o.id = l.order_id
        WHERE {IN_PERIOD} AND o.status <> 'cancelled' GROUP BY 1, 2) r WHERE rank <= 50""",
    ("customers", ""): f"""WITH pairs AS (SELECT DISTINCT coalesce(o.ship_country, '') AS c,
        coalesce(o.ship_region, '') AS r, o.customer_id FROM orders o
        WHERE {IN_PERIOD} AND o.customer_id IS NOT NULL)
        SELECT c, r, count(*) FROM pairs GROUP BY 1, 2
        UNION ALL SELECT NULL, NULL, count(DISTINCT customer_id) FROM pairs""",
    ("carriers", ""): """SELECT s.carrier_account_id, count(*),
        count(*) FILTER (WHERE s.status = 'delivered'),
        count(*) FILTER (WHERE s.status = 'delivered'
            AND (s.delivered_at AT TIME ZONE %(zone)s)::date <= s.promised_delivery),
        sum(extract(epoch FROM s.delivered_at - s.created_at) / 86400),
        count(*) FILTER (WHERE EXISTS (SELECT 1 FROM delivery_exceptions e
                                       WHERE e.shipment_id = s.id))
        FROM shipments s WHERE s.tenant_id = %(t)s AND s.created_at >= %(lo)s
        AND s.created_at < %(hi)s AND s.status <> 'cancelled' GROUP BY 1""",
}


def order_searches(now: datetime) -> list[tuple[str, dict[str, str], str]]:
    """(label, query of GET /orders, the same page and total in plain SQL)."""
    year_ago = (now - timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    quarter_ago = (now - timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page = "SELECT o.* FROM orders o WHERE {w} ORDER BY {o} LIMIT 50"  # with the lines next
    # the hub counts up to 1,000 matches (and says whether there are more)
    count = "SELECT count(*) FROM (SELECT 1 FROM orders o WHERE {w} LIMIT 1001) c"
    cases = [
        (
            "status in (delivered, shipped) + channel + a year, newest first",
            {"status": "delivered,shipped", "channel": "amazon", "created_from": year_ago,
             "sort": "-created_at"},
            "o.tenant_id = %(t)s AND o.status IN ('delivered', 'shipped')"
            " AND o.channel = 'amazon' AND o.created_at >= %(y)s",
            "o.created_at DESC, o.id DESC",
        ),
        (
            "status + amount range + a quarter, largest first",
            {"status": "confirmed", "amount_min": "100", "amount_max": "500",
             "created_from": quarter_ago, "sort": "-total"},
            "o.tenant_id = %(t)s AND o.status = 'confirmed' AND o.total BETWEEN 100 AND 500"
            " AND o.created_at >= %(q)s",
            "o.total DESC, o.id DESC",
        ),
        (
            "orders with one SKU, delivered",
            {"sku": "BENCH-000123", "status": "delivered"},
            "o.tenant_id = %(t)s AND o.status = 'delivered' AND EXISTS (SELECT 1 FROM"
            " order_lines l WHERE l.order_id = o.id AND l.tenant_id = %(t)s"
            " AND l.sku = 'BENCH-000123')",
            "o.created_at DESC, o.id DESC",
        ),
        (
            "one customer's orders by e-mail",
            {"customer": "c12345@demo.example"},
            "o.tenant_id = %(t)s AND EXISTS (SELECT 1 FROM customers c WHERE"
            " c.id = o.customer_id AND (c.name ILIKE %(c)s OR c.email ILIKE %(c)s"
            " OR c.phone ILIKE %(c)s))",
            "o.created_at DESC, o.id DESC",
        ),
        (
            "the work queue: confirmed, by queue order",
            {"status": "confirmed", "sort": "queue"},
            "o.tenant_id = %(t)s AND o.status = 'confirmed'",
            "o.queue_at, o.id",
        ),
    ]
    return [
        (label, query, page.format(w=where, o=order) + ";\n" + count.format(w=where))
        for label, query, where, order in cases
    ]


# --- measuring -------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(values), 1),
        "spread_ms": round(max(values) - min(values), 1),
        "runs_ms": [round(v, 1) for v in values],
    }


class Client:
    """One keep-alive HTTP connection to the hub with the demo admin's token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[float, int, bytes]:
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle keep-alive connection (a minute's pause): reconnect
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.conn.port, timeout=120)
            return self._get(path)

    def _get(self, path: str) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        answer = self.conn.getresponse()
        body = answer.read()
        return (time.perf_counter() - started) * 1000, answer.status, body

    def timed(self, path: str, runs: int) -> dict[str, Any]:
        took, status, body = self.get(path)  # warm-up: plans and caches, not measured
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:500]!r}")
        values = []
        for _ in range(runs):
            took, status, body = self.get(path)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}: {body[:500]!r}")
            values.append(took)
        return {**summary(values), "bytes": len(body)}


def timed_sql(url: str, sql: str, params: dict[str, Any], runs: int) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        conn.execute("SET work_mem = '32MB'")  # as the hub's report transactions have
        statements = [s for s in sql.split(";\n") if s.strip()]
        for statement in statements:  # warm-up
            conn.execute(statement, params).fetchall()
        values = []
        for _ in range(runs):
            started = time.perf_counter()
            for statement in statements:
                conn.execute(statement, params).fetchall()
            values.append((time.perf_counter() - started) * 1000)
    return summary(values)


def cli(env: dict[str, str], workdir: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    out = subprocess.run(
        [str(VENV_BIN / "orderhub"), *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return time.perf_counter() - started, out.stdout


def change_orders(url: str, tenant_id: int, changes: int, days: int) -> None:
    """``changes`` orders created in the last ``days`` days move on (shipped to delivered,
    delivered to closed), as a shop's day moves them; their ``updated_at`` is now."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """UPDATE orders SET status = CASE status WHEN 'delivered' THEN 'closed'
                                                    WHEN 'shipped' THEN 'delivered'
                                                    ELSE status END,
                   updated_at = now()
               WHERE id IN (SELECT id FROM orders WHERE tenant_id = %s
                            AND created_at >= now() - make_interval(days => %s)
                            ORDER BY (id::bigint * 7919) %% 1000003 LIMIT %s)""",
            (tenant_id, days, changes),
        )


def kept_seed(out: Path) -> dict[str, Any] | None:
    """With --reuse: what the run that seeded the kept database wrote of its seeding."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        previous = json.loads(out.read_text())
        if previous.get("seed"):
            seeded_by = previous["seed"].get("seeded_by_the_run_of", previous["date"])
            return {**previous["seed"], "seeded_by_the_run_of": seeded_by}
    return None


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=1_000_000, help="the demo tenant's orders")
    p.add_argument("--other-orders", type=int, default=100_000, help="a second tenant's")
    p.add_argument("--runs", type=int, default=3, help="measured requests per case")
    p.add_argument("--changes", type=int, default=1000, help="orders changed per upkeep case")
    p.add_argument("--admin-url", default=os.environ.get("ORDERHUB_BENCH_ADMIN_URL"))
    p.add_argument("--out", type=Path, default=RESULTS / "reports.json")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument("--reuse", action="store_true", help="use the kept database as it is")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    admin_url = args.admin_url or DEFAULT_ADMIN_URL
    url = db_url(admin_url, DB_NAME)
    say = print
    report: dict[str, Any] = {
        "benchmark": "GET /api/v1/reports/<name> and GET /api/v1/orders on a large shop",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "note": "HTTP client, hub server (with its embedded worker) and PostgreSQL share"
            " these cores, and the box is shared: compare the ratios measured in the same run",
        },
        "code": git_state(),
        "goals": GOALS,
        "commands": {
            "run": ".venv/bin/python bench/reports.py",
            "again_without_seeding": ".venv/bin/python bench/reports.py --keep-db, then"
            " .venv/bin/python bench/reports.py --reuse",
        },
    }
    with tempfile.TemporaryDirectory(prefix="orderhub-bench-reports-") as tmp:
        workdir = Path(tmp)
        (workdir / "config" / "tenants").mkdir(parents=True)
        (workdir / "config" / "tenants" / "demo.toml").write_text(
            f'[calendar]\ntimezone = "{ZONE}"\n'
        )
        env = hub_env(url, workdir)
        try:
            if not args.reuse:
                say(f"creating {DB_NAME} and seeding (a few minutes)")
                create_database(admin_url, DB_NAME)
                cli(env, workdir, "init", "--demo")
                started = time.perf_counter()
                seeded = {
                    "other": report_seed.seed(url, "other", args.other_orders,
                                              customers=20_000, tickets=6_000, returns=2_500),
                    "demo": report_seed.seed(url, "demo", args.orders),
                }
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
                report["seed"] = {
                    "rows": seeded,
                    "seconds": round(time.perf_counter() - started, 1),
                    "how": "bench/report_seed.py: INSERT ... SELECT over generate_series",
                }
            else:
                cli(env, workdir, "db", "upgrade")  # a kept database, code moved on since
                report["seed"] = kept_seed(args.out)
            took, out = cli(env, workdir, "reports", "refresh", "--rebuild")
            report["rollups_full_build"] = {
                "command": "orderhub reports refresh --rebuild",
                "seconds": round(took, 1),
                "output": out.strip().splitlines()[-2:],
            }
            say(f"rollups built in {took:.1f} s")
            token_out = cli(env, workdir, "tokens", "create", "--tenant", "demo", "--user",
                            "admin")[1]
            token = token_out.strip().split()[-1]
            with psycopg.connect(url) as conn:
                demo_id = conn.execute("SELECT id FROM tenants WHERE slug = 'demo'").fetchone()[0]
                report["rows_in_database"] = {
                    table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    for table in ("orders", "order_lines", "customers", "shipments",
                                  "tickets", "returns", "report_product_days",
                                  "report_product_months", "report_order_days")
                }
            port = free_port()
            serve = [str(VENV_BIN / "orderhub"), "serve", "--host", "127.0.0.1", "--port",
                     str(port), "--threads", "4"]
            with running(serve, env, workdir, port):
                measure(report, Client(port, token), url, demo_id, args, env, workdir)
        finally:
            if not args.keep_db:
                with contextlib.suppress(Exception):
                    drop_database(admin_url, DB_NAME)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_summary(report)
    say(f"written to {args.out}")
    return report


def measure(
    report: dict[str, Any],
    client: Client,
    url: str,
    demo_id: int,
    args: argparse.Namespace,
    env: dict[str, str],
    workdir: Path,
) -> None:
    now = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    to = now.strftime(stamp)
    floor_from, floor_to = "2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z"
    reports: dict[str, Any] = {}
    for name, options in REPORT_CASES:
        key = f"{name}?{options}" if options else name
        case: dict[str, Any] = {}
        floor = client.timed(
            f"/api/v1/reports/{name}?from={floor_from}&to={floor_to}"
            + (f"&{options}" if options else ""),
            args.runs,
        )
        case["route_floor_ms"] = floor["median_ms"]
        for label, days in PERIODS.items():
            start = now - timedelta(days=days)
            path = f"/api/v1/reports/{name}?from={start.strftime(stamp)}&to={to}" + (
                f"&{options}" if options else ""
            )
            hub = client.timed(path, args.runs)
            entry: dict[str, Any] = {"hub": hub, "path": path}
            sql = RAW_SQL.get((name, options))
            if sql is not None:
                params = {"t": demo_id, "lo": start, "hi": now, "zone": ZONE}
                raw = timed_sql(url, sql, params, args.runs)
                entry["raw_sql_from_raw_tables"] = raw
                entry["ratio_to_raw_sql"] = round(hub["median_ms"] / raw["median_ms"], 3)
            entry["under_goal"] = hub["median_ms"] < GOALS["report_ms"]
            case[label] = entry
            print(f"  {key:32} {label:4} {hub['median_ms']:8.1f} ms (spread "
                  f"{hub['spread_ms']:.1f})")
        reports[key] = case
    report["reports"] = reports
    # the order search
    searches = []
    for label, query, sql in order_searches(now):
        path = "/api/v1/orders?" + urllib.parse.urlencode(query) + "&per_page=50"
        hub = client.timed(path, args.runs)
        params = {
            "t": demo_id,
            "y": now - timedelta(days=365),
            "q": now - timedelta(days=90),
            "c": "%c12345@demo.example%",
        }
        raw = timed_sql(url, sql, params, args.runs)
        total = json.loads(client.get(path)[2])["total"]
        searches.append({
            "search": label,
            "path": path,
            "matching_orders": total,
            "hub": hub,
            "raw_sql_same_page_and_total": raw,
            "ratio_to_raw_sql": round(hub["median_ms"] / raw["median_ms"], 3),
            "under_goal": hub["median_ms"] < GOALS["order_page_ms"],
        })
        print(f"  orders: {label:60} {hub['median_ms']:7.1f} ms ({total} match)")
    report["order_search"] = searches
    # the rollups' upkeep: changed days are summed raw until the sweep folds them in
    year = f"/api/v1/reports/orders?from={(now - timedelta(days=365)).strftime(stamp)}&to={to}"
    upkeep: dict[str, Any] = {
        "what": "orders change; until the worker's sweep (every minute) folds them into the"
        " rollups, a report sums their days from the raw rows; then `orderhub reports"
        " refresh` (what the sweep runs) folds them in; once a refresh has begun a minute or"
        " more after the changes, reports read those days from the rollups again",
        "report": year,
    }
    for label, days in (("busy_minute_last_14_days", 14), ("burst_over_two_years", 730)):
        change_orders(url, demo_id, args.changes, days)
        dirty = client.timed(year, args.runs)
        # a report sums raw the days changed up to a minute before the last refresh began:
        # the refresh that clears them is one that begins a minute after the changes
        time.sleep(REPORT_LOOKBACK_S)
        took, out = cli(env, workdir, "reports", "refresh", "--tenant", "demo")
        clean = client.timed(year, args.runs)
        upkeep[label] = {
            "orders_changed": args.changes,
            "created_within_days": days,
            "report_before_the_refresh": dirty,
            "refresh_seconds": round(took, 2),
            "refresh_output": out.strip().splitlines()[-1:],
            "report_after_a_refresh_begun_a_minute_later": clean,
        }
        print(f"  upkeep {label}: report {dirty['median_ms']:.1f} ms before the refresh,"
              f" refresh {took:.1f} s, report {clean['median_ms']:.1f} ms after")
    report["rollup_upkeep"] = upkeep


def print_summary(report: dict[str, Any]) -> None:
    worst = max(
        (entry["hub"]["median_ms"], f"{key} {label}")
        for key, case in report["reports"].items()
        for label, entry in case.items()
        if label in PERIODS
    )
    worst_search = max((s["hub"]["median_ms"], s["search"]) for s in report["order_search"])
    print(f"slowest report: {worst[1]} at {worst[0]:.1f} ms (goal {GOALS['report_ms']:.0f})")
    print(f"slowest order page: {worst_search[1]} at {worst_search[0]:.1f} ms"
          f" (goal {GOALS['order_page_ms']:.0f})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
