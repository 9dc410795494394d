"""Keeping the reports' day rollups (hub.core.models.reports) equal to the raw rows.

Why rollups: summed from the raw rows, a year of a large shop (half a million orders, a
million lines) takes seconds per report; from rollups, a few thousand rows. Why this
refresh and not triggers or writes on every order: the order paths stay as fast as they are,
and one place decides what a rollup holds.

How it stays exact: orders and shipments carry ``updated_at`` (set on every change, indexed
per tenant). The worker's sweep refreshes every minute: it looks at the rows changed since
the last refresh, minus an overlap that covers a transaction still open then and clocks that
disagree a little, and rebuilds the local days they were created on — deleting those days'
rollup rows and summing them again from the raw rows, many days per statement. Rebuilding a
day is idempotent, so overlapping refreshes cannot double count; a per-tenant row lock makes
concurrent ones take turns. A report never waits for a refresh: it finds the days changed
since a minute before the last refresh (:func:`changed_days`, REPORT_OVERLAP) and sums
those, and the partial days at its period's edges, from the raw rows
(hub.core.reports.Period.facts), so it is exact as of its own start.

Days are the tenant's local days (its ``[calendar] timezone``): a merchant in Shanghai
closes the day at midnight in Shanghai. On SQLite (the embedded hub) a day is cut at the
zone's *current* UTC offset, an hour off across a daylight-saving change; PostgreSQL cuts
exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from hub.core.db import utcnow
from hub.core.models import (
    Allocation,
    DeliveryException,
    Order,
    OrderLine,
    ReportCarrierDay,
    ReportOrderDay,
    ReportPlaceDay,
    ReportProductDay,
    ReportProductMonth,
    ReportRefresh,
    ReportWarehouseDay,
    Shipment,
    ShipmentItem,
    TrackingEventRecord,
)

# A transaction open longer than this when a refresh runs may commit a change the next
# refresh will not see; order transactions last milliseconds. Each refresh rebuilds again the
# days changed this long before the last one: longer costs a burst of changes that many more
# rebuilds of its days (the sweep refreshes every minute).
OVERLAP = timedelta(minutes=2)
# What a report sums raw: the days changed since this long before the last refresh. Shorter
# than OVERLAP — the refresh looks back further to be safe — so that a day folded in is read
# from the rollups a minute later: a change whose transaction commits more than a minute
# after it was made may then reach a report up to a refresh late.
REPORT_OVERLAP = timedelta(minutes=1)
# Days rebuilt per statement on a full rebuild: bounds one statement's work and memory.
CHUNK_DAYS = 31
# Runs of changed days one statement rebuilds (each run is a range in its WHERE clause).
RUNS_PER_STATEMENT = 100
# [lo, hi) instants in UTC
Spans = list[tuple[datetime, datetime]]
ROLLUPS = (
    ReportOrderDay,
    ReportPlaceDay,
    ReportProductDay,
    ReportWarehouseDay,
    ReportCarrierDay,
)


@dataclass(frozen=True)
class Days:
    """How a tenant's days are cut: its zone, and the SQL that turns a UTC time into one."""

    zone: ZoneInfo
    dialect: str

    def of(self, column: Any) -> ColumnElement[date]:
        if self.dialect == "postgresql":
            return cast(func.timezone(self.zone.key, column), Date)
        offset = datetime.now(UTC).astimezone(self.zone).utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        return func.date(column, f"{minutes:+d} minutes", type_=Date)

    def start(self, day: date) -> datetime:
        """When ``day`` begins, in UTC."""
        if self.dialect == "postgresql":
            return datetime.combine(day, time(0), self.zone).astimezone(UTC)
        offset = datetime.now(UTC).astimezone(self.zone).utcoffset() or timedelta(0)
        return datetime.combine(day, time(0), UTC) - offset

    def day_of(self, moment: datetime) -> date:
        if self.dialect == "postgresql":
            return moment.astimezone(self.zone).date()
        offset = datetime.now(UTC).astimezone(self.zone).utcoffset() or timedelta(0)
        return (moment.astimezone(UTC) + offset).date()


def days_for(session: Session, timezone: str) -> Days:
    return Days(ZoneInfo(timezone), session.get_bind().dialect.name)


def refresh(
    session: Session,
    tenant_id: int,
    timezone: str,
    *,
    rebuild: bool = False,
    progress: Any = None,
) -> int:
    """Fold every change since the last refresh into the tenant's rollups; the first time
    (or with ``rebuild``, or when the tenant's zone changed) build them all. Returns the days
    rebuilt. ``progress(done, total)`` is told after each chunk of a full build."""
    started = utcnow()
    days = days_for(session, timezone)
    state = _lock_state(session, tenant_id, timezone)
    full = rebuild or state.scanned_to is None or state.timezone != timezone
    if full:
        for table in ROLLUPS:
            session.execute(delete(table).where(table.tenant_id == tenant_id))
        bounds = session.execute(
            select(func.min(Order.created_at), func.max(Order.created_at)).where(
                Order.tenant_id == tenant_id
            )
        ).one()
        ship_bounds = session.execute(
            select(func.min(Shipment.created_at), func.max(Shipment.created_at)).where(
                Shipment.tenant_id == tenant_id
            )
        ).one()
        moments = [m for m in (*bounds, *ship_bounds) if m is not None]
        dirty: list[date] = []
        if moments:
            first, last = days.day_of(min(moments)), days.day_of(max(moments))
            dirty = [first + timedelta(n) for n in range((last - first).days + 1)]
        batches = [[run] for run in _chunks(dirty, CHUNK_DAYS)]
    else:
        assert state.scanned_to is not None
        dirty = sorted(changed_days(session, days, tenant_id, state.scanned_to - OVERLAP))
        runs = list(consecutive(dirty))
        batches = [
            runs[i : i + RUNS_PER_STATEMENT] for i in range(0, len(runs), RUNS_PER_STATEMENT)
        ]
    for done, runs in enumerate(batches, 1):
        if not full:
            for table in ROLLUPS:
                session.execute(
                    delete(table).where(table.tenant_id == tenant_id, on_days(table.day, runs))
                )
        _build(session, days, tenant_id, runs)
        if progress is not None:
            progress(done, len(batches))
    _fold_months(session, days, tenant_id, state, dirty, full, started)
    if full and days.dialect == "postgresql":
        # A fresh table has no statistics until autovacuum comes by; a report's plan needs them.
        for table in (*ROLLUPS, ReportProductMonth):
            session.execute(text(f"ANALYZE {table.__tablename__}"))
    state.timezone = timezone
    state.scanned_to = started
    state.refreshed_at = utcnow()
    session.flush()
    return len(dirty)


def built(session: Session, tenant_id: int, timezone: str) -> ReportRefresh | None:
    """The tenant's refresh state when its rollups exist for this zone (else a report sums
    raw rows)."""
    state = session.get(ReportRefresh, tenant_id)
    if state is None or state.scanned_to is None or state.timezone != timezone:
        return None
    return state


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _fold_months(
    session: Session,
    days: Days,
    tenant_id: int,
    state: ReportRefresh,
    dirty: list[date],
    full: bool,
    now: datetime,
) -> None:
    """Sum the product days of whole past months into month rows: the months a change
    touched, and those that ended since the last refresh. The current month stays in days
    (it changes every minute)."""
    current = month_of(days.day_of(now))
    if full:
        session.execute(delete(ReportProductMonth).where(ReportProductMonth.tenant_id == tenant_id))
        months = sorted({month_of(d) for d in dirty if month_of(d) < current})
    else:
        done = state.months_to or current
        months = sorted({month_of(d) for d in dirty if month_of(d) < done})
        month = done
        while month < current:
            months.append(month)
            month = next_month(month)
    for month in months:
        session.execute(
            delete(ReportProductMonth).where(
                ReportProductMonth.tenant_id == tenant_id, ReportProductMonth.month == month
            )
        )
    for first, last in _consecutive_months(sorted(set(months))):
        session.execute(
            insert(ReportProductMonth).from_select(
                ["tenant_id", "month", "product_id", "currency", "orders", "units", "amount"],
                _product_months_select(days, tenant_id, first, next_month(last)),
            )
        )
    state.months_to = current


def _consecutive_months(months: list[date]) -> Iterator[tuple[date, date]]:
    if not months:
        return
    first = last = months[0]
    for month in months[1:]:
        if month == next_month(last):
            last = month
            continue
        yield first, last
        first = last = month
    yield first, last


def _product_months_select(days: Days, tenant_id: int, first: date, end: date) -> Any:
    row = ReportProductDay
    if days.dialect == "postgresql":
        month = cast(func.date_trunc("month", row.day), Date)
    else:
        month = func.date(row.day, "start of month", type_=Date)
    return (
        select(
            literal(tenant_id),
            month,
            row.product_id,
            row.currency,
            func.sum(row.orders),
            func.sum(row.units),
            func.sum(row.amount),
        )
        .where(row.tenant_id == tenant_id, row.day >= first, row.day < end)
        .group_by(month, row.product_id, row.currency)
    )


def _lock_state(session: Session, tenant_id: int, timezone: str) -> ReportRefresh:
    """The tenant's refresh row, locked for this transaction: concurrent refreshes take
    turns (on SQLite the database lock does it)."""
    table = ReportRefresh.__table__
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    session.execute(
        upsert(table)
        .values(tenant_id=tenant_id, timezone=timezone, scanned_to=None)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    state = session.scalars(
        select(ReportRefresh)
        .where(ReportRefresh.tenant_id == tenant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return state


def changed_days(session: Session, days: Days, tenant_id: int, since: datetime) -> set[date]:
    """The local days whose rollup rows may be out of date: those orders and shipments that
    changed since ``since`` were created on (and a changed shipment's order)."""
    orders = select(days.of(Order.created_at).label("day")).where(
        Order.tenant_id == tenant_id, Order.updated_at >= since
    )
    shipments = select(days.of(Shipment.created_at).label("day")).where(
        Shipment.tenant_id == tenant_id, Shipment.updated_at >= since
    )
    # A shipment counts for its order's day too (the warehouse rollup is by order day).
    their_orders = (
        select(days.of(Order.created_at).label("day"))
        .join(Shipment, Shipment.order_id == Order.id)
        .where(Shipment.tenant_id == tenant_id, Shipment.updated_at >= since)
    )
    both = union_all(orders, shipments, their_orders).subquery()
    return {d for (d,) in session.execute(select(both.c.day).distinct()) if d is not None}


def spans_of(days: Days, runs: Iterable[tuple[date, date]]) -> Spans:
    """Runs of local days as UTC instants [start of first, start of the day after last)."""
    return [(days.start(first), days.start(last + timedelta(1))) for first, last in runs]


def on_days(column: Any, runs: list[tuple[date, date]]) -> Any:
    ranges = [and_(column >= first, column <= last) for first, last in runs]
    return ranges[0] if len(ranges) == 1 else or_(*ranges)


def consecutive(dirty: list[date]) -> Iterator[tuple[date, date]]:
    """Sorted days as (first, last) runs of consecutive days."""
    if not dirty:
        return
    first = last = dirty[0]
    for day in dirty[1:]:
        if day == last + timedelta(1):
            last = day
            continue
        yield first, last
        first = last = day
    yield first, last


def _chunks(days: list[date], size: int) -> Iterable[tuple[date, date]]:
    for i in range(0, len(days), size):
        yield days[i], days[min(i + size, len(days)) - 1]


def _build(session: Session, days: Days, tenant_id: int, runs: list[tuple[date, date]]) -> None:
    """Sum the raw rows of the runs of local days into every rollup."""
    spans = spans_of(days, runs)
    for statement in (
        _order_days(days, tenant_id, spans),
        _place_days(days, tenant_id, spans),
        _product_days(days, tenant_id, spans),
        _warehouse_days(days, tenant_id, spans),
        _carrier_days(days, tenant_id, spans),
    ):
        session.execute(statement)


def _in(column: Any, tenant_column: Any, tenant_id: int, spans: Spans) -> Any:
    """The tenant's rows whose ``column`` falls in one of the spans [lo, hi)."""
    ranges = [and_(column >= lo, column < hi) for lo, hi in spans]
    return and_(tenant_column == tenant_id, ranges[0] if len(ranges) == 1 else or_(*ranges))


def order_days_select(days: Days, tenant_id: int, spans: Spans) -> Any:
    period = _in(Order.created_at, Order.tenant_id, tenant_id, spans)
    units = (
        select(OrderLine.order_id, func.sum(OrderLine.quantity).label("units"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(period)
        .group_by(OrderLine.order_id)
        .subquery("units")
    )
    day = days.of(Order.created_at)
    return (
        select(
            literal(tenant_id).label("tenant_id"),
            day.label("day"),
            Order.channel,
            Order.status,
            Order.currency,
            func.count().label("orders"),
            func.sum(Order.total).label("amount"),
            func.coalesce(func.sum(units.c.units), 0).label("units"),
        )
        .outerjoin(units, units.c.order_id == Order.id)
        .where(period)
        .group_by(day, Order.channel, Order.status, Order.currency)
    )


def _order_days(days: Days, tenant_id: int, spans: Spans) -> Any:
    query = order_days_select(days, tenant_id, spans)
    return insert(ReportOrderDay).from_select(
        ["tenant_id", "day", "channel", "status", "currency", "orders", "amount", "units"], query
    )


def first_order_flag() -> Any:
    """1 when the order is its customer's first ever (ties broken by id), else 0."""
    earlier = aliased(Order)
    return case(
        (
            and_(
                Order.customer_id.is_not(None),
                ~exists().where(
                    earlier.customer_id == Order.customer_id,
                    or_(
                        earlier.created_at < Order.created_at,
                        and_(earlier.created_at == Order.created_at, earlier.id < Order.id),
                    ),
                ),
            ),
            1,
        ),
        else_=0,
    )


def place_days_select(days: Days, tenant_id: int, spans: Spans) -> Any:
    day = days.of(Order.created_at)
    country = func.coalesce(Order.ship_country, "")
    region = func.coalesce(Order.ship_region, "")
    return (
        select(
            literal(tenant_id).label("tenant_id"),
            day.label("day"),
            country.label("country"),
            region.label("region"),
            Order.currency,
            func.count().label("orders"),
            func.sum(Order.total).label("amount"),
            func.sum(first_order_flag()).label("new_customers"),
        )
        .where(_in(Order.created_at, Order.tenant_id, tenant_id, spans))
        .group_by(day, country, region, Order.currency)
    )


def _place_days(days: Days, tenant_id: int, spans: Spans) -> Any:
    return insert(ReportPlaceDay).from_select(
        [
            "tenant_id",
            "day",
            "country",
            "region",
            "currency",
            "orders",
            "amount",
            "new_customers",
        ],
        place_days_select(days, tenant_id, spans),
    )


def product_days_select(days: Days, tenant_id: int, spans: Spans) -> Any:
    day = days.of(Order.created_at)
    return (
        select(
            literal(tenant_id).label("tenant_id"),
            day.label("day"),
            OrderLine.product_id,
            Order.currency,
            func.count(func.distinct(Order.id)).label("orders"),
            func.sum(OrderLine.quantity).label("units"),
            func.sum(OrderLine.line_total).label("amount"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            _in(Order.created_at, Order.tenant_id, tenant_id, spans),
            Order.status != "cancelled",
        )
        .group_by(day, OrderLine.product_id, Order.currency)
    )


def _product_days(days: Days, tenant_id: int, spans: Spans) -> Any:
    return insert(ReportProductDay).from_select(
        ["tenant_id", "day", "product_id", "currency", "orders", "units", "amount"],
        product_days_select(days, tenant_id, spans),
    )


def warehouse_days_select(days: Days, tenant_id: int, spans: Spans) -> Any:
    """Units by the warehouse that shipped them (live shipments) or holds them reserved (an
    allocation), valued at the order's average unit price of that product."""
    period = _in(Order.created_at, Order.tenant_id, tenant_id, spans)
    shipped = (
        select(
            Shipment.order_id.label("order_id"),
            Shipment.warehouse_id.label("warehouse_id"),
            ShipmentItem.product_id.label("product_id"),
            ShipmentItem.quantity.label("quantity"),
        )
        .join(Shipment, Shipment.id == ShipmentItem.shipment_id)
        .join(Order, Order.id == Shipment.order_id)
        .where(period, Shipment.status != "cancelled")
    )
    reserved = (
        select(
            Allocation.order_id,
            Allocation.warehouse_id,
            Allocation.product_id,
            Allocation.quantity,
        )
        .join(Order, Order.id == Allocation.order_id)
        .where(period)
    )
    units = union_all(shipped, reserved).subquery("units")
    prices = (
        select(
            OrderLine.order_id,
            OrderLine.product_id,
            (func.sum(OrderLine.line_total) / func.sum(OrderLine.quantity)).label("price"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(period)
        .group_by(OrderLine.order_id, OrderLine.product_id)
        .subquery("prices")
    )
    day = days.of(Order.created_at)
    return (
        select(
            literal(tenant_id).label("tenant_id"),
            day.label("day"),
            units.c.warehouse_id,
            Order.currency,
            func.count(func.distinct(Order.id)).label("orders"),
            func.sum(units.c.quantity).label("units"),
            func.coalesce(func.sum(units.c.quantity * prices.c.price), 0).label("amount"),
        )
        .select_from(units)
        .join(Order, Order.id == units.c.order_id)
        .outerjoin(
            prices,
            and_(
                prices.c.order_id == units.c.order_id,
                prices.c.product_id == units.c.product_id,
            ),
        )
        .group_by(day, units.c.warehouse_id, Order.currency)
    )


def _warehouse_days(days: Days, tenant_id: int, spans: Spans) -> Any:
    return insert(ReportWarehouseDay).from_select(
        ["tenant_id", "day", "warehouse_id", "currency", "orders", "units", "amount"],
        warehouse_days_select(days, tenant_id, spans),
    )


def carrier_days_select(days: Days, tenant_id: int, spans: Spans) -> Any:
    """Per carrier account and day the shipment was created (voided ones left out, they
    never travelled): how many, delivered, judged (delivered with a date to judge by: the
    promised date, else the carrier's first estimate — a later estimate would excuse the
    carrier's own delay), on time, the summed transit days (from the first scan of the
    parcel on its way — "info received" is only the label's data and a lone "delivered"
    scan says nothing of when it left — or, without one, from the shipment's creation),
    and how many had a delivery exception."""
    first_scan = (
        select(
            TrackingEventRecord.shipment_id,
            func.min(TrackingEventRecord.at).label("at"),
        )
        .join(Shipment, Shipment.id == TrackingEventRecord.shipment_id)
        .where(
            _in(Shipment.created_at, Shipment.tenant_id, tenant_id, spans),
            TrackingEventRecord.status.not_in(("info_received", "delivered")),
            TrackingEventRecord.source != "hub",
        )
        .group_by(TrackingEventRecord.shipment_id)
        .subquery()
    )
    began = func.coalesce(first_scan.c.at, Shipment.created_at)
    due = func.coalesce(
        Shipment.promised_delivery, Shipment.first_estimated_delivery, Shipment.estimated_delivery
    )
    delivered_on = days.of(Shipment.delivered_at)
    if days.dialect == "postgresql":
        transit = func.extract("epoch", Shipment.delivered_at - began) / 86400
    else:
        transit = func.julianday(Shipment.delivered_at) - func.julianday(began)
    delivered = Shipment.status == "delivered"
    had_exception = exists().where(DeliveryException.shipment_id == Shipment.id)
    day = days.of(Shipment.created_at)
    return (
        select(
            literal(tenant_id).label("tenant_id"),
            day.label("day"),
            Shipment.carrier_account_id,
            func.count().label("shipments"),
            func.count().filter(delivered).label("delivered"),
            func.count().filter(delivered, due.is_not(None)).label("judged"),
            func.count().filter(delivered, due.is_not(None), delivered_on <= due).label("on_time"),
            func.coalesce(func.sum(case((delivered, transit))), 0).label("transit_days"),
            func.count().filter(had_exception).label("exceptions"),
        )
        .outerjoin(first_scan, first_scan.c.shipment_id == Shipment.id)
        .where(
            _in(Shipment.created_at, Shipment.tenant_id, tenant_id, spans),
            Shipment.status != "cancelled",
        )
        .group_by(day, Shipment.carrier_account_id)
    )


def _carrier_days(days: Days, tenant_id: int, spans: Spans) -> Any:
    return insert(ReportCarrierDay).from_select(
        [
            "tenant_id",
            "day",
            "carrier_account_id",
            "shipments",
            "delivered",
            "judged",
            "on_time",
            "transit_days",
            "exceptions",
        ],
        carrier_days_select(days, tenant_id, spans),
    )
