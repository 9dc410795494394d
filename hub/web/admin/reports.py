"""Reports: pick one and a period, see its figures as bar charts and as tables, and download
any of its tables as the API's own CSV.

The figures are the API's (``read_report``), never re-computed here. A chart has one bar per
row; money is charted per currency, one chart each, because adding euros to dollars would be
a lie. Counts (orders, units, tickets) may be added up over currencies, and are.

The API reads a plain day in ``from``/``to`` as a day of the shop's calendar by looking at
the request's own query, so these pages keep the API's parameter names and always pass on
exactly what their URL says (a missing period is filled in by a redirect, never silently).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.core import reports as core
from hub.core.errors import HubError, NotFound
from hub.web.admin import api, field_errors, page
from hub.web.api.framework import BY_ENDPOINT
from hub.web.api.reports import OPTIONS
from hub.web.ui import STATUS_LABELS, money

DEFAULT_DAYS = 30
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

NAMES: dict[str, Any] = {
    "sales": _l("Sales"),
    "orders": _l("Orders"),
    "products": _l("Products"),
    "customers": _l("Customers"),
    "returns": _l("Returns"),
    "tickets": _l("Tickets"),
    "carriers": _l("Carriers"),
}
DESCRIPTIONS: dict[str, Any] = {
    "sales": _l("Orders, units, gross, refunds and net per day, week or month."),
    "orders": _l("Orders and their amount by period, channel, status, warehouse or category."),
    "products": _l("Best sellers by units or by amount."),
    "customers": _l("Customers and orders by ship-to country and region; new and returning."),
    "returns": _l("Returns by reason: units, damage and refunds."),
    "tickets": _l("Service tickets by kind, and per agent: reply times and SLA."),
    "carriers": _l("Shipments per carrier: delivered, on time, transit days, exceptions."),
}
OPTION_LABELS: dict[str, Any] = {
    "by": _l("Group by"),
    "interval": _l("Interval"),
    "sort": _l("Rank by"),
    "limit": _l("Rows per currency"),
}
# What a table's rows are, in titles ("Orders by day").
GROUPS: dict[str, Any] = {
    "day": _l("day"),
    "week": _l("week"),
    "month": _l("month"),
    "channel": _l("channel"),
    "status": _l("status"),
    "warehouse": _l("warehouse"),
    "category": _l("category"),
    "place": _l("place"),
    "product": _l("product"),
    "reason": _l("reason"),
    "kind": _l("kind and category"),
    "agent": _l("agent"),
    "carrier": _l("carrier"),
    "account": _l("carrier account"),
}
# The same values as choices in a list.
CHOICES: dict[str, Any] = {
    "day": _l("Day"),
    "week": _l("Week"),
    "month": _l("Month"),
    "channel": _l("Channel"),
    "status": _l("Status"),
    "warehouse": _l("Warehouse"),
    "category": _l("Category"),
    "quantity": _l("Units sold"),
    "amount": _l("Amount"),
}
COLUMNS: dict[str, Any] = {
    "day": _l("Day"),
    "week": _l("Week from"),
    "month": _l("Month"),
    "channel": _l("Channel"),
    "status": _l("Status"),
    "warehouse": _l("Warehouse"),
    "category": _l("Category"),
    "currency": _l("Currency"),
    "orders": _l("Orders"),
    "amount": _l("Amount"),
    "units": _l("Units"),
    "lines": _l("Order lines"),
    "name": _l("Name"),
    "gross": _l("Gross sales"),
    "refunds": _l("Refunds"),
    "refunded": _l("Refunded"),
    "net": _l("Net sales"),
    "average_order": _l("Average order"),
    "country": _l("Country"),
    "region": _l("Region"),
    "customers": _l("Customers"),
    "new_customers": _l("New customers"),
    "returning_customers": _l("Returning customers"),
    "rank": _l("Rank"),
    "sku": _l("SKU"),
    "brand": _l("Brand"),
    "reason": _l("Reason"),
    "returns": _l("Returns"),
    "exchanges": _l("Exchanges"),
    "received": _l("Units received"),
    "damaged": _l("Units damaged"),
    "kind": _l("Kind"),
    "tickets": _l("Tickets"),
    "open": _l("Open"),
    "resolved": _l("Resolved"),
    "agent": _l("Agent"),
    "first_replies": _l("First replies"),
    "average_first_reply_hours": _l("Average first reply (hours)"),
    "average_resolution_hours": _l("Average resolution (hours)"),
    "first_reply_sla_judged": _l("First replies judged"),
    "first_reply_sla_met": _l("First replies on time"),
    "first_reply_sla_rate": _l("First reply SLA met"),
    "resolution_sla_judged": _l("Resolutions judged"),
    "resolution_sla_met": _l("Resolutions on time"),
    "resolution_sla_rate": _l("Resolution SLA met"),
    "account": _l("Account id"),
    "carrier": _l("Carrier"),
    "shipments": _l("Shipments"),
    "delivered": _l("Delivered"),
    "on_time": _l("On time"),
    "on_time_rate": _l("On-time rate"),
    "average_transit_days": _l("Average transit (days)"),
    "exception_rate": _l("Exception rate"),
}
MONEY = frozenset({"amount", "gross", "refunded", "net", "average_order"})
RATES = frozenset({"on_time_rate", "exception_rate", "first_reply_sla_rate", "resolution_sla_rate"})
TABLE_TITLES: dict[str, Any] = {
    "totals": _l("Totals"),
    "volume": _l("By kind and category"),
    "agents": _l("By agent"),
    "carriers": _l("By carrier"),
    "accounts": _l("By carrier account"),
}


@dataclass(frozen=True)
class Figure:
    """A chart of one column of one table: a bar per row."""

    table: str
    column: str


def _figures(name: str, options: dict[str, str]) -> list[Figure]:
    """What each report charts: its main count, and its main amount (per currency)."""
    if name == "orders":
        count = "units" if options.get("by") == "category" else "orders"
        return [Figure("rows", count), Figure("rows", "amount")]
    if name == "sales":
        return [Figure("rows", "orders"), Figure("rows", "gross")]
    if name == "products":
        return [Figure("rows", "amount" if options.get("sort") == "amount" else "units")]
    return {
        "customers": [Figure("rows", "customers")],
        "returns": [Figure("rows", "returns"), Figure("rows", "refunded")],
        "tickets": [Figure("volume", "tickets"), Figure("agents", "tickets")],
        "carriers": [Figure("accounts", "shipments")],
    }.get(name, [])


def _rows_of(name: str, table: str, options: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """What a table's rows are (a word for titles) and the columns that name a row."""
    if table == "totals":
        return "currency", ("currency",)
    if name == "orders":
        by = options.get("by") or "day"
        return by, (by,)
    if name == "sales":
        interval = options.get("interval") or "day"
        return interval, (interval,)
    return {
        "customers": ("place", ("country", "region")),
        "products": ("product", ("sku",)),
        "returns": ("reason", ("reason",)),
        "tickets": ("agent", ("agent",)) if table == "agents" else ("kind", ("kind", "category")),
        "carriers": ("account", ("name",)) if table == "accounts" else ("carrier", ("carrier",)),
    }[name]


def _key_text(column: str, value: Any) -> str:
    if value is None or value == "":
        return _("(none)") if column != "agent" else _("(unassigned)")
    if column == "status":
        return str(STATUS_LABELS.get(value, value))
    return str(value)


def _label(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return " · ".join(_key_text(k, row.get(k)) for k in keys if k in row)


def cell(column: str, value: Any, currency: str | None) -> str:
    """A figure as people read it: money in its currency, shares as percentages."""
    if value is None:
        return "—"
    if column in MONEY:
        return money(value, currency)
    if column in RATES:
        return format_percent(value, "#,##0.#%")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _key_text(column, value)
    return format_decimal(value)


def _money_of(currency: str) -> Callable[[Any], str]:
    return lambda value: money(value, currency)


def charts(name: str, report: dict[str, Any], options: dict[str, str]) -> list[dict[str, Any]]:
    """The report's bar charts: ``rows`` as the ``bar_chart`` macro takes them."""
    out = []
    for fig in _figures(name, options):
        rows = report.get(fig.table) or []
        kind, keys = _rows_of(name, fig.table, options)
        figure = COLUMNS.get(fig.column, fig.column)
        group = GROUPS.get(kind, kind)
        per_currency = fig.column in MONEY or name == "products"  # a ranking per currency
        if per_currency:
            for currency in sorted({r["currency"] for r in rows}):
                out.append(
                    {
                        "id": f"chart-{fig.table}-{fig.column}-{currency}",
                        "title": _(
                            "%(figure)s by %(group)s (%(currency)s)",
                            figure=figure,
                            group=group,
                            currency=currency,
                        ),
                        "value_label": f"{figure} ({currency})",
                        "rows": [
                            (_label(r, keys), r[fig.column])
                            for r in rows
                            if r["currency"] == currency
                        ],
                        "fmt": _money_of(currency) if fig.column in MONEY else None,
                    }
                )
            continue
        # A count: rows that differ only in currency are one bar, their counts added.
        summed: dict[str, int] = {}
        for r in rows:
            label = _label(r, keys)
            summed[label] = summed.get(label, 0) + int(r[fig.column] or 0)
        out.append(
            {
                "id": f"chart-{fig.table}-{fig.column}",
                "title": _("%(figure)s by %(group)s", figure=figure, group=group),
                "value_label": str(figure),
                "rows": list(summed.items()),
                "fmt": None,
            }
        )
    return out


def tables(name: str, report: dict[str, Any], options: dict[str, str]) -> list[dict[str, Any]]:
    """Every table of the report, totals first, each cell written out; the columns that
    name a row come first, to head it."""
    names = sorted(core.REPORTS[name][1], key=lambda t: t != "totals")
    out = []
    for table in names:
        rows = report.get(table) or []
        kind, keys = _rows_of(name, table, options)
        columns: list[str] = [k for k in keys if any(k in row for row in rows)]
        for row in rows:
            columns += [k for k in row if k not in columns]
        out.append(
            {
                "name": table,
                "title": TABLE_TITLES.get(table) or _("By %(group)s", group=GROUPS.get(kind, kind)),
                "heads": len([c for c in columns if c in keys]),
                "columns": [(c, COLUMNS.get(c, c), _numeric(c, rows)) for c in columns],
                "rows": [
                    [cell(c, row.get(c), row.get("currency")) for c in columns] for row in rows
                ],
            }
        )
    return out


def _numeric(column: str, rows: list[dict[str, Any]]) -> bool:
    """Whether a column holds figures (right-aligned) rather than names."""
    if column in MONEY or column in RATES:
        return True
    value = next((r[column] for r in rows if r.get(column) is not None), None)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _today() -> date:
    runtime = current_app.extensions["orderhub"]
    zone = runtime.tenant_settings(g.principal.tenant_slug).tickets.calendar.timezone
    return datetime.now(ZoneInfo(zone)).date()


def _presets(today: date) -> list[tuple[Any, str, str]]:
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    return [
        (_l("Last 7 days"), (today - timedelta(days=6)).isoformat(), today.isoformat()),
        (_l("Last 30 days"), (today - timedelta(days=29)).isoformat(), today.isoformat()),
        (_l("Last 90 days"), (today - timedelta(days=89)).isoformat(), today.isoformat()),
        (_l("This month"), month.isoformat(), today.isoformat()),
        (
            _l("Last month"),
            last_month_end.replace(day=1).isoformat(),
            last_month_end.isoformat(),
        ),
    ]


def _known(name: str) -> None:
    if name not in core.REPORTS:
        raise NotFound(f"no report {name!r}; there are: {', '.join(core.REPORTS)}")


def _options(name: str) -> dict[str, str]:
    """This report's options from the URL, as given (the API checks them)."""
    return {k: request.args[k] for k in sorted(OPTIONS.get(name, ())) if request.args.get(k)}


def _choices(option: str) -> list[tuple[str, Any]]:
    param = next(p for p in BY_ENDPOINT["read_report"].query if p.name == option)
    return [(v, CHOICES.get(v, v)) for v in param.enum or ()]


@page("/reports", "reports.read")
def reports() -> ResponseReturnValue:
    return render_template("admin/reports.html", names=NAMES, descriptions=DESCRIPTIONS)


@page("/reports/<name>", "reports.read")
def report(name: str) -> ResponseReturnValue:
    _known(name)
    options = _options(name)
    if "from" not in request.args or "to" not in request.args:
        today = _today()
        period = {
            "from": request.args.get(
                "from", (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
            ),
            "to": request.args.get("to", today.isoformat()),
        }
        return redirect(url_for("admin.report", name=name, **period, **options))
    period = {"from": request.args["from"], "to": request.args["to"]}
    errors: dict[str, str] = {}
    found = None
    try:
        found = api("read_report", name=name, query={**period, **options})
    except HubError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        errors = field_errors(exc)
    return render_template(
        "admin/report_view.html",
        name=name,
        names=NAMES,
        description=DESCRIPTIONS[name],
        period=period,
        options=options,
        option_fields=[
            (o, OPTION_LABELS[o], _choices(o) if o != "limit" else None)
            for o in sorted(OPTIONS.get(name, ()))
        ],
        max_limit=core.MAX_PRODUCTS,
        tabs=[(n, label, url_for("admin.report", name=n, **period)) for n, label in NAMES.items()],
        presets=[
            (label, url_for("admin.report", name=name, **{"from": start, "to": end}, **options))
            for label, start, end in _presets(_today())
        ],
        csv_url=lambda table=None: url_for(
            "admin.report_csv",
            name=name,
            **period,
            **options,
            **({"table": table} if table else {}),
        ),
        errors=errors,
        report=found,
        charts=charts(name, found, options) if found else [],
        tables=tables(name, found, options) if found else [],
    ), 400 if errors else 200


@page("/reports/<name>/csv", "reports.read")
def report_csv(name: str) -> ResponseReturnValue:
    """One table of the report as the API writes it (text/csv, formula-safe), saved as a
    file named after the report, the table and the period."""
    _known(name)
    query = {
        k: request.args[k]
        for k in ("from", "to", "table", *sorted(OPTIONS.get(name, ())))
        if request.args.get(k)
    }
    response = api("read_report", name=name, query={**query, "format": "csv"})
    table = query.get("table") or core.REPORTS[name][1][0]
    parts = [name, table] + [query[k] for k in ("from", "to") if DAY.match(query.get(k, ""))]
    response.headers["Content-Disposition"] = f'attachment; filename="{"_".join(parts)}.csv"'
    return response
