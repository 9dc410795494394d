"""The reports: what a merchant's business did in a period, per tenant.

Every report takes a period [start, end) and cuts days in the tenant's zone. The sums come
from the day rollups (hub.core.report_rollups) for the whole days inside the period and from
the raw rows for the partial days at its edges, so a year of a large shop answers from a few
thousand rows and the answer is still exact. Amounts are per currency, always: adding euros
to dollars would be a lie. Each report is a dict of tables (lists of flat rows) — what the
API answers as JSON, and one of which it writes as CSV.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from hub.core import report_rollups as rollups
from hub.core.errors import Invalid
from hub.core.models import (
    CarrierAccount,
    Order,
    Product,
    Refund,
    ReportCarrierDay,
    ReportOrderDay,
    ReportPlaceDay,
    ReportProductDay,
    ReportProductMonth,
    ReportWarehouseDay,
    Return,
    ReturnLine,
    Ticket,
    User,
    Warehouse,
)
from hub.core.money import format_amount

INTERVALS = ("day", "week", "month")
ORDER_GROUPS = (*INTERVALS, "channel", "status", "warehouse", "category")
PRODUCT_SORTS = ("quantity", "amount")
MAX_PRODUCTS = 1000


@dataclass(frozen=True)
class Period:
    """Whose and which stretch of time, and how its days are cut."""

    session: Session
    tenant_id: int
    start: datetime
    end: datetime
    days: rollups.Days
    use_rollups: bool
    months_to: date | None = None
    # Days whose rollup rows may be stale (changed since the last refresh): summed raw.
    dirty: frozenset[date] = frozenset()

    def header(self, name: str) -> dict[str, Any]:
        return {
            "report": name,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "timezone": self.days.zone.key,
        }

    def facts(
        self,
        table: Any,
        raw: Callable[[rollups.Days, int, rollups.Spans], Any],
        months: Any = None,
    ) -> Any:
        """The rollup's rows for the period as one subquery: month rows (``months``, when
        the rollup has them) for whole past months, day rows for the other whole days, and
        raw sums for the partial days at the edges and for the days changed since the last
        refresh — so the answer is exact as of now without waiting for one (all raw when the
        rollups are not built yet)."""
        whole = [(self.start, self.end)]
        first, last = self._whole_days()
        if not self.use_rollups or first > last:
            return raw(self.days, self.tenant_id, whole).subquery()
        kinds: list[tuple[date, str]] = []
        day = first
        while day <= last:
            month_end = rollups.next_month(day) - timedelta(1)
            if (
                months is not None
                and self.months_to is not None
                and day.day == 1
                and month_end <= last
                and rollups.next_month(day) <= self.months_to
                and not any(d in self.dirty for d in _each_day(day, month_end))
            ):
                kinds += [(d, "month") for d in _each_day(day, month_end)]
                day = month_end + timedelta(1)
                continue
            kinds.append((day, "raw" if day in self.dirty else "day"))
            day += timedelta(1)
        runs: dict[str, list[tuple[date, date]]] = {"month": [], "day": [], "raw": []}
        for kind in runs:
            runs[kind] = list(rollups.consecutive([d for d, k in kinds if k == kind]))
        columns = [c.name for c in raw(self.days, self.tenant_id, whole).selected_columns]
        parts = []
        if runs["month"]:
            by_month = months.__table__.c
            parts.append(
                select(
                    *(by_month.month.label("day") if n == "day" else by_month[n] for n in columns)
                ).where(
                    by_month.tenant_id == self.tenant_id,
                    rollups.on_days(by_month.month, runs["month"]),
                )
            )
        if runs["day"]:
            stored = table.__table__.c
            parts.append(
                select(*(stored[n] for n in columns)).where(
                    stored.tenant_id == self.tenant_id, rollups.on_days(stored.day, runs["day"])
                )
            )
        edges = [
            (self.start, self.days.start(first)),
            (self.days.start(last + timedelta(1)), self.end),
        ]
        spans = [(lo, hi) for lo, hi in edges if lo < hi] + rollups.spans_of(self.days, runs["raw"])
        if spans:
            parts.append(raw(self.days, self.tenant_id, spans))
        return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()

    def _whole_days(self) -> tuple[date, date]:
        first = self.days.day_of(self.start)
        if self.days.start(first) < self.start:
            first += timedelta(1)
        last = self.days.day_of(self.end) - timedelta(1)
        return first, last


def period(
    session: Session,
    tenant_id: int,
    timezone: str,
    start: datetime,
    end: datetime,
) -> Period:
    """A report's period. It reads, never writes: the rollups are the worker's to refresh
    (every minute); what changed since is summed raw (Period.facts), and before the first
    build everything is — a request never builds a shop's whole history."""
    if start >= end:
        raise Invalid("'from' must be before 'to'")
    if session.get_bind().dialect.name == "postgresql":
        # Sums over a year of a large shop sort and hash more than the default 4 MB holds;
        # spilling them to disk doubles a report's time. Only this transaction's queries.
        session.execute(text("SET LOCAL work_mem = '32MB'"))
    state = rollups.built(session, tenant_id, timezone)
    days = rollups.days_for(session, timezone)
    if state is None or state.scanned_to is None:
        return Period(session, tenant_id, start, end, days, False)
    dirty = rollups.changed_days(
        session, days, tenant_id, state.scanned_to - rollups.REPORT_OVERLAP
    )
    return Period(session, tenant_id, start, end, days, True, state.months_to, frozenset(dirty))


def _each_day(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


def bucket(day: date, interval: str) -> date:
    """The first day of the day's week (Monday) or month."""
    if interval == "week":
        return day - timedelta(day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _amount(value: Any) -> str | None:
    return format_amount(Decimal(value)) if value is not None else None


def _average(total: Any, count: int) -> str | None:
    return format_amount((Decimal(total) / count).quantize(Decimal("0.01"))) if count else None


def _totals(rows: list[dict[str, Any]], *counts: str) -> list[dict[str, Any]]:
    """Per currency: the counts and the amount summed over the rows."""
    sums: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = sums.setdefault(
            row["currency"],
            {"currency": row["currency"], **dict.fromkeys(counts, 0), "amount": Decimal(0)},
        )
        for name in counts:
            total[name] += row[name]
        total["amount"] += Decimal(row["amount"])
    return [{**total, "amount": _amount(total["amount"])} for _, total in sorted(sums.items())]


# --- orders ----------------------------------------------------------------------------------


def orders_report(p: Period, by: str = "day") -> dict[str, Any]:
    """Order count and amount for the period, by day, week or month, channel, status,
    warehouse (units it shipped or holds reserved) or product category (lines and units)."""
    if by not in ORDER_GROUPS:
        raise Invalid(f"'by' must be one of: {', '.join(ORDER_GROUPS)}")
    if by == "warehouse":
        rows = _by_warehouse(p)
        counts: tuple[str, ...] = ("orders", "units")
    elif by == "category":
        rows = _by_category(p)
        counts = ("lines", "units")
    else:
        rows = _order_rows(p, by)
        counts = ("orders",)
    return {**p.header("orders"), "by": by, "totals": _totals(rows, *counts), "rows": rows}


def _order_rows(p: Period, by: str) -> list[dict[str, Any]]:
    facts = p.facts(ReportOrderDay, rollups.order_days_select)
    key = facts.c.day if by in INTERVALS else facts.c[by]
    found = p.session.execute(
        select(key, facts.c.currency, func.sum(facts.c.orders), func.sum(facts.c.amount)).group_by(
            key, facts.c.currency
        )
    ).all()
    sums: dict[tuple[Any, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for k, currency, orders, amount in found:
        if by in INTERVALS:
            k = bucket(k, by).isoformat()
        sums[(k, currency)][0] += int(orders)
        sums[(k, currency)][1] += Decimal(amount)
    return [
        {by: k, "currency": currency, "orders": n, "amount": _amount(amount)}
        for (k, currency), (n, amount) in sorted(sums.items())
    ]


def _by_warehouse(p: Period) -> list[dict[str, Any]]:
    facts = p.facts(ReportWarehouseDay, rollups.warehouse_days_select)
    found = p.session.execute(
        select(
            Warehouse.code,
            Warehouse.name,
            facts.c.currency,
            func.sum(facts.c.orders),
            func.sum(facts.c.units),
            func.sum(facts.c.amount),
        )
        .join(Warehouse, Warehouse.id == facts.c.warehouse_id)
        .group_by(Warehouse.code, Warehouse.name, facts.c.currency)
        .order_by(Warehouse.code, facts.c.currency)
    ).all()
    return [
        {
            "warehouse": code,
            "name": name,
            "currency": currency,
            "orders": int(orders),
            "units": int(units),
            "amount": _amount(amount),
        }
        for code, name, currency, orders, units, amount in found
    ]


def _by_category(p: Period) -> list[dict[str, Any]]:
    """By the product's category now (a product moved to another category moves its history
    with it); "lines" are order lines, an order with two products of one category is two."""
    sums = _product_sums(p)
    category = func.coalesce(Product.category, "")
    found = p.session.execute(
        select(
            category,
            sums.c.currency,
            func.sum(sums.c.orders),
            func.sum(sums.c.units),
            func.sum(sums.c.amount),
        )
        .join(Product, Product.id == sums.c.product_id)
        .group_by(category, sums.c.currency)
        .order_by(category, sums.c.currency)
    ).all()
    return [
        {
            "category": cat,
            "currency": currency,
            "lines": int(lines),
            "units": int(units),
            "amount": _amount(amount),
        }
        for cat, currency, lines, units, amount in found
    ]


# --- sales -----------------------------------------------------------------------------------


def sales_report(p: Period, interval: str = "day") -> dict[str, Any]:
    """What was sold per day, week or month and currency: orders and amount (cancelled ones
    left out), units, refunds made in the bucket (all but failed ones: pending, succeeded or
    paid out by hand), net, average order value."""
    if interval not in INTERVALS:
        raise Invalid(f"'interval' must be one of: {', '.join(INTERVALS)}")
    facts = p.facts(ReportOrderDay, rollups.order_days_select)
    sums: dict[tuple[str, str], dict[str, Any]] = {}

    def row(day: date, currency: str) -> dict[str, Any]:
        key = (bucket(day, interval).isoformat(), currency)
        return sums.setdefault(
            key,
            {"orders": 0, "gross": Decimal(0), "units": 0, "refunds": 0, "refunded": Decimal(0)},
        )

    for day, currency, orders, amount, units in p.session.execute(
        select(
            facts.c.day,
            facts.c.currency,
            func.sum(facts.c.orders),
            func.sum(facts.c.amount),
            func.sum(facts.c.units),
        )
        .where(facts.c.status != "cancelled")
        .group_by(facts.c.day, facts.c.currency)
    ):
        r = row(day, currency)
        r["orders"] += int(orders)
        r["gross"] += Decimal(amount)
        r["units"] += int(units)
    refunded_on = p.days.of(Refund.created_at)
    for day, currency, count, amount in p.session.execute(
        select(refunded_on, Refund.currency, func.count(), func.sum(Refund.amount))
        .where(
            Refund.tenant_id == p.tenant_id,
            Refund.created_at >= p.start,
            Refund.created_at < p.end,
            Refund.status != "failed",
        )
        .group_by(refunded_on, Refund.currency)
    ):
        r = row(day, currency)
        r["refunds"] += int(count)
        r["refunded"] += Decimal(amount)
    rows = [
        {
            interval: key,
            "currency": currency,
            "orders": r["orders"],
            "units": r["units"],
            "gross": _amount(r["gross"]),
            "refunds": r["refunds"],
            "refunded": _amount(r["refunded"]),
            "net": _amount(r["gross"] - r["refunded"]),
            "average_order": _average(r["gross"], r["orders"]),
        }
        for (key, currency), r in sorted(sums.items())
    ]
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = totals.setdefault(
            r["currency"],
            {
                "currency": r["currency"],
                "orders": 0,
                "units": 0,
                "gross": Decimal(0),
                "refunds": 0,
                "refunded": Decimal(0),
            },
        )
        for name in ("orders", "units", "refunds"):
            t[name] += r[name]
        t["gross"] += Decimal(r["gross"])
        t["refunded"] += Decimal(r["refunded"])
    return {
        **p.header("sales"),
        "interval": interval,
        "totals": [
            {
                **t,
                "gross": _amount(t["gross"]),
                "refunded": _amount(t["refunded"]),
                "net": _amount(t["gross"] - t["refunded"]),
                "average_order": _average(t["gross"], t["orders"]),
            }
            for _, t in sorted(totals.items())
        ],
        "rows": rows,
    }


# --- customers -------------------------------------------------------------------------------


def customers_report(p: Period) -> dict[str, Any]:
    """Who ordered in the period, by ship-to country and region: customers (each once per
    place), orders, new customers (their first order ever is in the period, counted where it
    went) and returning ones. Orders without a customer count as orders only."""
    facts = p.facts(ReportPlaceDay, rollups.place_days_select)
    places: dict[tuple[str, str], dict[str, Any]] = {}
    for country, region, orders, new in p.session.execute(
        select(
            facts.c.country,
            facts.c.region,
            func.sum(facts.c.orders),
            func.sum(facts.c.new_customers),
        ).group_by(facts.c.country, facts.c.region)
    ):
        places[(country, region)] = {
            "country": country or None,
            "region": region or None,
            "customers": 0,
            "new_customers": int(new),
            "returning_customers": 0,
            "orders": int(orders),
        }
    in_period = and_(
        Order.tenant_id == p.tenant_id,
        Order.created_at >= p.start,
        Order.created_at < p.end,
        Order.customer_id.is_not(None),
    )
    country = func.coalesce(Order.ship_country, "")
    region = func.coalesce(Order.ship_region, "")
    # Each (place, customer) once, read once: per place it is counted, and over all places
    # its customers are counted again distinct (a customer may ship to two places).
    pairs = (
        select(country.label("country"), region.label("region"), Order.customer_id)
        .where(in_period)
        .distinct()
        .cte("pairs")
    )
    found = p.session.execute(
        union_all(
            select(pairs.c.country, pairs.c.region, func.count()).group_by(
                pairs.c.country, pairs.c.region
            ),
            select(
                literal(None).label("country"),
                literal(None).label("region"),
                func.count(func.distinct(pairs.c.customer_id)),
            ),
        )
    ).all()
    counted = [(c, r, n) for c, r, n in found if c is not None]
    customers = sum(n for c, _, n in found if c is None)
    for c, r, n in counted:
        place = places.get((c, r))
        if place is not None:
            place["customers"] = int(n)
            place["returning_customers"] = max(0, int(n) - place["new_customers"])
    new = sum(place["new_customers"] for place in places.values())
    rows = sorted(
        places.values(),
        key=lambda r: (-r["customers"], -r["orders"], r["country"] or "", r["region"] or ""),
    )
    return {
        **p.header("customers"),
        "totals": [
            {
                "customers": int(customers),
                "new_customers": new,
                "returning_customers": max(0, int(customers) - new),
                "orders": sum(r["orders"] for r in rows),
            }
        ],
        "rows": rows,
    }


# --- products --------------------------------------------------------------------------------


def products_report(p: Period, sort: str = "quantity", limit: int = 50) -> dict[str, Any]:
    """Products ranked by units sold or by amount, within each currency (cancelled orders
    left out)."""
    if sort not in PRODUCT_SORTS:
        raise Invalid(f"'sort' must be one of: {', '.join(PRODUCT_SORTS)}")
    if not 1 <= limit <= MAX_PRODUCTS:
        raise Invalid(f"'limit' must be from 1 to {MAX_PRODUCTS}")
    sums = _product_sums(p)
    first, second = (
        (sums.c.units, sums.c.amount) if sort == "quantity" else (sums.c.amount, sums.c.units)
    )
    rank = func.row_number().over(
        partition_by=sums.c.currency, order_by=(first.desc(), second.desc(), Product.sku)
    )
    ranked = (
        select(
            rank.label("rank"),
            Product.sku,
            Product.name,
            Product.category,
            Product.brand,
            sums.c.currency,
            sums.c.orders,
            sums.c.units,
            sums.c.amount,
        )
        .join(Product, Product.id == sums.c.product_id)
        .subquery()
    )
    found = p.session.execute(
        select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.currency, ranked.c.rank)
    ).all()
    return {
        **p.header("products"),
        "sort": sort,
        "rows": [
            {
                "currency": r.currency,
                "rank": int(r.rank),
                "sku": r.sku,
                "name": r.name,
                "category": r.category,
                "brand": r.brand,
                "orders": int(r.orders),
                "units": int(r.units),
                "amount": _amount(r.amount),
            }
            for r in found
        ],
    }


def _product_sums(p: Period) -> Any:
    """Per product and currency over the period, summed before any join: a year of a large
    shop is close to a million product-days, and joining them row by row to the catalogue
    costs more than adding them up."""
    facts = p.facts(ReportProductDay, rollups.product_days_select, ReportProductMonth)
    return (
        select(
            facts.c.product_id,
            facts.c.currency,
            func.sum(facts.c.orders).label("orders"),
            func.sum(facts.c.units).label("units"),
            func.sum(facts.c.amount).label("amount"),
        )
        .group_by(facts.c.product_id, facts.c.currency)
        .subquery("sums")
    )


# --- returns ---------------------------------------------------------------------------------


def returns_report(p: Period) -> dict[str, Any]:
    """Returns opened in the period by reason (and the order's currency): how many, exchanges
    among them, units asked back, received and damaged; refunds of those returns and the
    amount refunded (failed refunds left out)."""
    units = (
        select(
            ReturnLine.return_id,
            func.sum(ReturnLine.quantity).label("units"),
            func.sum(ReturnLine.received + ReturnLine.damaged).label("received"),
            func.sum(ReturnLine.damaged).label("damaged"),
        )
        .join(Return, Return.id == ReturnLine.return_id)
        .where(
            Return.tenant_id == p.tenant_id, Return.created_at >= p.start, Return.created_at < p.end
        )
        .group_by(ReturnLine.return_id)
        .subquery()
    )
    refunds = (
        select(
            Refund.return_id,
            func.count().label("refunds"),
            func.sum(Refund.amount).label("refunded"),
        )
        .join(Return, Return.id == Refund.return_id)
        .where(
            Return.tenant_id == p.tenant_id,
            Return.created_at >= p.start,
            Return.created_at < p.end,
            Refund.status != "failed",
        )
        .group_by(Refund.return_id)
        .subquery()
    )
    found = p.session.execute(
        select(
            Return.reason,
            Order.currency,
            func.count(),
            func.count().filter(Return.kind == "exchange"),
            func.coalesce(func.sum(units.c.units), 0),
            func.coalesce(func.sum(units.c.received), 0),
            func.coalesce(func.sum(units.c.damaged), 0),
            func.coalesce(func.sum(refunds.c.refunds), 0),
            func.coalesce(func.sum(refunds.c.refunded), 0),
        )
        .join(Order, Order.id == Return.order_id)
        .outerjoin(units, units.c.return_id == Return.id)
        .outerjoin(refunds, refunds.c.return_id == Return.id)
        .where(
            Return.tenant_id == p.tenant_id, Return.created_at >= p.start, Return.created_at < p.end
        )
        .group_by(Return.reason, Order.currency)
        .order_by(func.count().desc(), Return.reason, Order.currency)
    ).all()
    rows = [
        {
            "reason": reason,
            "currency": currency,
            "returns": int(n),
            "exchanges": int(exchanges),
            "units": int(u),
            "received": int(received),
            "damaged": int(damaged),
            "refunds": int(refund_count),
            "refunded": _amount(refunded),
        }
        for reason, currency, n, exchanges, u, received, damaged, refund_count, refunded in found
    ]
    totals: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = totals.setdefault(r["currency"], {"currency": r["currency"], "refunded": Decimal(0)})
        for name in ("returns", "exchanges", "units", "received", "damaged", "refunds"):
            t[name] = t.get(name, 0) + r[name]
        t["refunded"] += Decimal(r["refunded"])
    return {
        **p.header("returns"),
        "totals": [{**t, "refunded": _amount(t["refunded"])} for _, t in sorted(totals.items())],
        "rows": rows,
    }


# --- tickets ---------------------------------------------------------------------------------


def tickets_report(p: Period) -> dict[str, Any]:
    """Tickets opened in the period: volume by kind and category, and per agent (the current
    assignee) the first-reply and resolution times (wall-clock hours, averaged over the
    tickets that have one) and SLA attainment: of the tickets whose deadline has been met or
    missed, the share met."""
    base = (
        Ticket.tenant_id == p.tenant_id,
        Ticket.created_at >= p.start,
        Ticket.created_at < p.end,
    )
    volume = [
        {
            "kind": kind,
            "category": category,
            "tickets": int(n),
            "open": int(active),
            "resolved": int(resolved),
        }
        for kind, category, n, active, resolved in p.session.execute(
            select(
                Ticket.kind,
                Ticket.category,
                func.count(),
                func.count().filter(Ticket.status.not_in(("resolved", "closed"))),
                func.count().filter(Ticket.resolved_at.is_not(None)),
            )
            .where(*base)
            .group_by(Ticket.kind, Ticket.category)
            .order_by(func.count().desc(), Ticket.kind, Ticket.category)
        )
    ]
    hours = _hours(p.days.dialect)
    replied = Ticket.first_replied_at.is_not(None)
    resolved = Ticket.resolved_at.is_not(None)
    reply_judged = replied | Ticket.first_reply_breached_at.is_not(None)
    resolve_judged = resolved | Ticket.resolution_breached_at.is_not(None)
    agents = []
    for row in p.session.execute(
        select(
            User.username,
            func.count(),
            func.count().filter(replied),
            func.avg(hours(Ticket.created_at, Ticket.first_replied_at)),
            func.count().filter(resolved),
            func.avg(hours(Ticket.created_at, Ticket.resolved_at)),
            func.count().filter(reply_judged),
            func.count().filter(reply_judged, Ticket.first_reply_breached_at.is_(None)),
            func.count().filter(resolve_judged),
            func.count().filter(resolve_judged, Ticket.resolution_breached_at.is_(None)),
        )
        .outerjoin(User, User.id == Ticket.assignee_id)
        .where(*base)
        .group_by(User.username)
        .order_by(User.username)
    ):
        (
            agent,
            n,
            first_replies,
            reply_h,
            resolutions,
            resolve_h,
            reply_j,
            reply_met,
            resolve_j,
            resolve_met,
        ) = row
        agents.append(
            {
                "agent": agent,
                "tickets": int(n),
                "first_replies": int(first_replies),
                "average_first_reply_hours": _hours_value(reply_h),
                "resolved": int(resolutions),
                "average_resolution_hours": _hours_value(resolve_h),
                "first_reply_sla_judged": int(reply_j),
                "first_reply_sla_met": int(reply_met),
                "first_reply_sla_rate": round(reply_met / reply_j, 4) if reply_j else None,
                "resolution_sla_judged": int(resolve_j),
                "resolution_sla_met": int(resolve_met),
                "resolution_sla_rate": round(resolve_met / resolve_j, 4) if resolve_j else None,
            }
        )
    return {
        **p.header("tickets"),
        "totals": [
            {
                "tickets": sum(v["tickets"] for v in volume),
                "open": sum(v["open"] for v in volume),
                "resolved": sum(v["resolved"] for v in volume),
            }
        ],
        "volume": volume,
        "agents": agents,
    }


def _hours(dialect: str) -> Callable[[Any, Any], Any]:
    if dialect == "postgresql":
        return lambda a, b: func.extract("epoch", b - a) / 3600
    return lambda a, b: (func.julianday(b) - func.julianday(a)) * 24


def _hours_value(value: Any) -> float | None:
    return round(float(value), 2) if value is not None else None


# --- carriers --------------------------------------------------------------------------------


def carrier_performance(p: Period) -> dict[str, Any]:
    """Per carrier account, and per carrier over its accounts, for the shipments created in
    the period (rollups.carrier_days_select says what each count holds): shipments,
    delivered, the on-time rate, the average transit in days and the exception rate."""
    facts = p.facts(ReportCarrierDay, rollups.carrier_days_select)
    counts = ("shipments", "delivered", "judged", "on_time", "transit_days", "exceptions")
    found = p.session.execute(
        select(
            CarrierAccount.id,
            CarrierAccount.name,
            CarrierAccount.plugin,
            *(func.sum(facts.c[name]) for name in counts),
        )
        .join(CarrierAccount, CarrierAccount.id == facts.c.carrier_account_id)
        .group_by(CarrierAccount.id, CarrierAccount.name, CarrierAccount.plugin)
        .order_by(CarrierAccount.plugin, CarrierAccount.name)
    ).all()
    accounts = []
    carriers: dict[str, list[Any]] = {}
    for account_id, name, plugin, *sums in found:
        accounts.append({"account": account_id, "name": name, **_performance(plugin, *sums)})
        total = carriers.setdefault(plugin, [0] * len(sums))
        for i, value in enumerate(sums):
            total[i] += value
    return {
        **p.header("carriers"),
        "accounts": accounts,
        "carriers": [_performance(plugin, *sums) for plugin, sums in carriers.items()],
    }


def _performance(
    carrier: str,
    shipments: Any,
    delivered: Any,
    judged: Any,
    on_time: Any,
    transit_days: Any,
    exceptions: Any,
) -> dict[str, Any]:
    shipments, delivered, judged, on_time, exceptions = (
        int(shipments),
        int(delivered),
        int(judged),
        int(on_time),
        int(exceptions),
    )
    return {
        "carrier": carrier,
        "shipments": shipments,
        "delivered": delivered,
        "on_time": on_time,
        "on_time_rate": round(on_time / judged, 4) if judged else None,
        "average_transit_days": round(float(transit_days) / delivered, 2) if delivered else None,
        "exception_rate": round(exceptions / shipments, 4) if shipments else None,
    }


# --- the catalogue of reports ----------------------------------------------------------------

# name → (function, its tables in CSV order: the first is the default)
REPORTS: dict[str, tuple[Callable[..., dict[str, Any]], tuple[str, ...]]] = {
    "orders": (orders_report, ("rows", "totals")),
    "sales": (sales_report, ("rows", "totals")),
    "customers": (customers_report, ("rows", "totals")),
    "products": (products_report, ("rows",)),
    "returns": (returns_report, ("rows", "totals")),
    "tickets": (tickets_report, ("agents", "volume", "totals")),
    "carriers": (carrier_performance, ("carriers", "accounts")),
}


def order_stats(session: Session, tenant_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    """The older summary of ``GET /orders/stats`` (UTC days): totals per currency and count
    and amount by day, status and channel — now the orders report's rows, in its shape."""
    p = period(session, tenant_id, "UTC", start, end)
    rows = {by: _order_rows(p, by) for by in ("day", "status", "channel")}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "total": [
            {"currency": t["currency"], "count": t["orders"], "amount": t["amount"]}
            for t in _totals(rows["day"], "orders")
        ],
        "by_day": [_stat(r, "day") for r in rows["day"]],
        "by_status": [_stat(r, "status") for r in rows["status"]],
        "by_channel": [_stat(r, "channel") for r in rows["channel"]],
    }


def _stat(row: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "key": row[key],
        "currency": row["currency"],
        "count": row["orders"],
        "amount": row["amount"],
    }
