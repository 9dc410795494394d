"""Report routes: ``GET /reports/<name>`` for every report of hub.core.reports, as JSON or
as one of its tables in CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response

from hub.core import reports
from hub.core.errors import Invalid, NotFound
from hub.web.api.framework import Ctx, Param, route

FORMULA = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
# Which options each report takes; any other is refused by name.
OPTIONS = {
    "orders": {"by"},
    "sales": {"interval"},
    "products": {"sort", "limit"},
}


@route(
    "/reports/<name>",
    permission="reports.read",
    tag="reports",
    summary="Read a report for a period (orders, sales, customers, products, returns, "
    "tickets, carriers)",
    query=(
        Param(
            "from",
            "date-time",
            "start (default: 30 days before 'to'); a plain day is the start of that day in"
            " the tenant's time zone",
        ),
        Param(
            "to", "date-time", "end, exclusive (default: now); a plain day is included", end=True
        ),
        Param("format", enum=("json", "csv"), description="json (default) or csv"),
        Param("table", description="with format=csv: which table (default: the report's main one)"),
        Param("by", enum=reports.ORDER_GROUPS, description="orders: how to group"),
        Param("interval", enum=reports.INTERVALS, description="sales: the bucket"),
        Param("sort", enum=reports.PRODUCT_SORTS, description="products: rank by"),
        Param(
            "limit",
            "integer",
            "products: rows per currency (default 50)",
            minimum=1,
            maximum=reports.MAX_PRODUCTS,
        ),
    ),
)
def read_report(ctx: Ctx, name: str, args: dict[str, Any]) -> Any:
    if name not in reports.REPORTS:
        raise NotFound(f"no report {name!r}; there are: {', '.join(reports.REPORTS)}")
    fn, tables = reports.REPORTS[name]
    options = {k: v for k, v in args.items() if k in ("by", "interval", "sort", "limit")}
    stray = sorted(set(options) - OPTIONS.get(name, set()))
    if stray:
        raise Invalid(f"the {name} report takes no {', '.join(repr(s) for s in stray)}")
    table = args.get("table")
    if table is not None and args.get("format") != "csv":
        raise Invalid("'table' goes with format=csv (JSON has every table)")
    if table is not None and table not in tables:
        raise Invalid(f"the {name} report has the tables: {', '.join(tables)}")
    zone = ctx.tenant.tickets.calendar.timezone
    end = _local(ctx.raw_query.get("to"), args.get("to"), zone, True) or datetime.now(UTC)
    start = _local(ctx.raw_query.get("from"), args.get("from"), zone, False) or (
        end - timedelta(days=30)
    )
    result = fn(reports.period(ctx.session, ctx.tenant_id, zone, start, end), **options)
    if args.get("format") != "csv":
        return result
    return _csv(name, table or tables[0], result[table or tables[0]])


def _local(raw: str | None, parsed: datetime | None, zone: str, end: bool) -> datetime | None:
    """A plain day means that day in the tenant's zone (the framework read it in UTC)."""
    if raw is None or parsed is None or len(raw) != 10:
        return parsed
    day = date.fromisoformat(raw) + timedelta(days=1 if end else 0)
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


def _csv(name: str, table: str, rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}-{table}.csv"'},
    )


def _cell(value: Any) -> Any:
    """No cell starts a formula when the file is opened in a spreadsheet (a tenant's own
    text — a category, a reason — is untrusted)."""
    if isinstance(value, str) and value[:1] in FORMULA and not NUMBER.fullmatch(value):
        return "'" + value
    return "" if value is None else value
