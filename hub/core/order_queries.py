"""Finding orders: multi-condition search with sorting and a total count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from hub.core.models import Customer, Order, OrderLine

SORTS = {
    "created_at": Order.created_at,
    "paid_at": Order.paid_at,
    "total": Order.total,
    "number": Order.number,
    "priority": Order.priority,
    "status": Order.status,
    # The work queue: highest priority first, counting how long the order has waited.
    "queue": Order.queue_at,
}


@dataclass
class OrderQuery:
    q: str | None = None
    number: str | None = None
    status: str | None = None
    channel: str | None = None
    sku: str | None = None
    customer: str | None = None
    consignee: str | None = None
    phone: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    paid_from: datetime | None = None
    paid_to: datetime | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    fulfilled_by: str | None = None  # "hub" or "channel"
    sort: str = "-created_at"
    page: int = 1
    per_page: int = 50


def search(session: Session, tenant_id: int, query: OrderQuery) -> tuple[list[Order], int, bool]:
    """A page of the matching orders, how many match — counted up to COUNT_CAP — and
    whether there are more than that. Counting every one of a large shop's 50,000 delivered
    orders costs ten times the page itself; past a thousand, a person narrows the filter."""
    customers = (
        _customer_ids(session, tenant_id, _like(query.customer.strip())) if query.customer else None
    )
    stmt = _filtered(select(Order).where(Order.tenant_id == tenant_id), query, tenant_id, customers)
    if query.sort.lstrip("-") == "queue":
        # The work queue: orders the channel fulfils from its own stock are no work of ours.
        stmt = stmt.where(Order.fulfilled_by_channel.is_(False))
    column = SORTS[query.sort.lstrip("-")]
    descending = query.sort.startswith("-")
    # Ties in the same direction as the sort, so an index on the column serves both.
    ordering = (column.desc(), Order.id.desc()) if descending else (column.asc(), Order.id.asc())
    # Counted in the page's own order: the planner then walks the index the page walks and
    # stops at the cap, rather than gather every match first.
    counted = session.scalar(
        select(func.count()).select_from(
            stmt.order_by(*ordering).limit(COUNT_CAP + 1).with_only_columns(Order.id).subquery()
        )
    )
    rows = session.scalars(
        stmt.order_by(*ordering)
        .options(selectinload(Order.lines))
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).all()
    counted = int(counted or 0)
    return list(rows), min(counted, COUNT_CAP), counted > COUNT_CAP


COUNT_CAP = 1000
# Customers matching a "customer" filter that are looked up first, by id.
FEW_CUSTOMERS = 500


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _customers_like(tenant_id: int, pattern: str) -> Select[tuple[int]]:
    """The tenant's customers whose name, e-mail or phone contains the text, found first
    (one pass over the customers), their orders then by customer — rather than a look at
    each matching order's customer, which on a large shop is a million look-ups."""
    return select(Customer.id).where(
        Customer.tenant_id == tenant_id,
        or_(
            Customer.name.ilike(pattern, escape="\\"),
            Customer.email.ilike(pattern, escape="\\"),
            Customer.phone.ilike(pattern, escape="\\"),
        ),
    )


def _customer_ids(session: Session, tenant_id: int, pattern: str) -> list[int] | None:
    """The matching customers' ids when they are few (then their orders are found through
    the customer index, whatever the sort); None when there are many — the filter then
    stays a subquery for the planner to weigh."""
    ids = session.scalars(_customers_like(tenant_id, pattern).limit(FEW_CUSTOMERS + 1)).all()
    return list(ids) if len(ids) <= FEW_CUSTOMERS else None


def _filtered(
    stmt: Select[tuple[Order]],
    query: OrderQuery,
    tenant_id: int,
    customers: list[int] | None = None,
) -> Select[tuple[Order]]:
    customer_match = None
    if query.q:
        pattern = _like(query.q.strip())
        customer_match = Order.customer_id.in_(_customers_like(tenant_id, pattern))
        stmt = stmt.where(
            or_(
                Order.number.ilike(pattern, escape="\\"),
                Order.external_id.ilike(pattern, escape="\\"),
                Order.external_name.ilike(pattern, escape="\\"),
                Order.consignee_name.ilike(pattern, escape="\\"),
                Order.consignee_phone.ilike(pattern, escape="\\"),
                customer_match,
            )
        )
    if query.number:
        stmt = stmt.where(Order.number == query.number)
    if query.status:
        stmt = stmt.where(Order.status.in_(query.status.split(",")))
    if query.channel:
        stmt = stmt.where(Order.channel == query.channel)
    if query.sku:
        stmt = stmt.where(
            exists().where(OrderLine.order_id == Order.id, OrderLine.sku == query.sku)
        )
    if query.customer:
        pattern = _like(query.customer.strip())
        stmt = stmt.where(
            Order.customer_id.in_(
                customers if customers is not None else _customers_like(tenant_id, pattern)
            )
        )
    if query.consignee:
        stmt = stmt.where(Order.consignee_name.ilike(_like(query.consignee.strip()), escape="\\"))
    if query.phone:
        stmt = stmt.where(Order.consignee_phone.ilike(_like(query.phone.strip()), escape="\\"))
    if query.created_from:
        stmt = stmt.where(Order.created_at >= query.created_from)
    if query.created_to:
        stmt = stmt.where(Order.created_at < query.created_to)
    if query.paid_from:
        stmt = stmt.where(Order.paid_at >= query.paid_from)
    if query.paid_to:
        stmt = stmt.where(Order.paid_at < query.paid_to)
    if query.amount_min is not None:
        stmt = stmt.where(Order.total >= query.amount_min)
    if query.amount_max is not None:
        stmt = stmt.where(Order.total <= query.amount_max)
    if query.fulfilled_by:
        stmt = stmt.where(Order.fulfilled_by_channel.is_(query.fulfilled_by == "channel"))
    return stmt
