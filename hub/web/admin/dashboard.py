"""The dashboard: today at a glance, each figure from the API route a user could call."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, g, render_template
from flask.typing import ResponseReturnValue

from hub.core.errors import HubError
from hub.web.admin import api, can, page
from hub.web.admin.staff import change_password


def today() -> tuple[str, str]:
    """Today in the shop's own calendar, as the reports take plain days (``to`` includes
    its day), and the day a fortnight before it."""
    runtime = current_app.extensions["orderhub"]
    zone = runtime.tenant_settings(g.principal.tenant_slug).tickets.calendar.timezone
    day = datetime.now(ZoneInfo(zone)).date()
    return day.isoformat(), (day - timedelta(days=13)).isoformat()


def _maybe(permission: str, endpoint: str, **kw: Any) -> Any:
    """A figure the user may see, or None (the card is then left out, not shown empty)."""
    if not can(permission):
        return None
    try:
        return api(endpoint, **kw)
    except HubError:
        return None


@page("/", None)
def dashboard() -> ResponseReturnValue:
    day, fortnight_start = today()
    fortnight = _maybe(
        "reports.read",
        "read_report",
        name="sales",
        query={"from": fortnight_start, "to": day, "interval": "day"},
    )
    backlog = _maybe(
        "reports.read",
        "read_report",
        name="orders",
        query={"by": "status", "from": fortnight_start, "to": day},
    )
    return render_template(
        "admin/dashboard.html",
        sales=_maybe(
            "reports.read",
            "read_report",
            name="sales",
            query={"from": day, "to": day, "interval": "day"},
        ),
        per_day=_counts(fortnight, "day", "orders") if fortnight else None,
        backlog=_counts(backlog, "status", "orders") if backlog else None,
        alerts=_maybe("stock.read", "alerts"),
        exceptions=_maybe("shipping.read", "list_exceptions", query={"status": "open"}),
        breached=_maybe("tickets.read", "list_tickets", query={"breached": "true"}),
        held=_maybe("orders.read", "list_orders", query={"status": "held", "per_page": "1"}),
        approval=_maybe(
            "orders.read", "list_orders", query={"status": "awaiting_approval", "per_page": "1"}
        ),
    )


@page("/account", None, methods=("GET", "POST"))
def account() -> ResponseReturnValue:
    return change_password()


def _counts(report: dict[str, Any], key: str, value: str) -> list[tuple[str, int]]:
    """One bar per key, summed over currencies (a count, so summing is right)."""
    out: dict[str, int] = {}
    for row in report["rows"]:
        out[str(row[key])] = out.get(str(row[key]), 0) + int(row[value])
    return list(out.items())
