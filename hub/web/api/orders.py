"""Order routes: create, find, read, modify, cancel, allocate, merge, split, history, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.core import orders, return_views, times
from hub.core.errors import Invalid
from hub.core.money import parse_amount
from hub.core.normalised import OrderDraft
from hub.core.order_queries import SORTS, OrderQuery, search
from hub.core.reports import order_stats
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, route

TAG = "orders"

SEARCH_PARAMS = (
    Param(
        "q",
        description="free text: order number, channel order name or id, customer or "
        "consignee name, e-mail or phone",
    ),
    Param("number"),
    Param(
        "status",
        description="one status or several separated by commas",
        enum=orders.STATUSES,
        many=True,
    ),
    Param("channel"),
    Param("sku", description="orders with a line of this SKU"),
    Param("customer", description="customer name, e-mail or phone contains"),
    Param("consignee", description="consignee name contains"),
    Param("phone", description="consignee phone contains"),
    Param("created_from", "date-time"),
    Param("created_to", "date-time", end=True),
    Param("paid_from", "date-time"),
    Param("paid_to", "date-time", end=True),
    Param("amount_min", "decimal"),
    Param("amount_max", "decimal"),
    Param(
        "fulfilled_by",
        enum=("hub", "channel"),
        description="who ships it: the hub, or the sales channel from its own stock",
    ),
    Param("sort", enum=tuple(s for k in SORTS for s in (k, f"-{k}"))),
)


@route(
    "/orders",
    "POST",
    permission="orders.write",
    summary="Create an order",
    tag=TAG,
    body=schemas.ORDER_CREATE,
    status=201,
)
def create_order(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    draft = OrderDraft(
        lines=orders.draft_lines(body["lines"]),
        consignee=orders.consignee_from(body.get("consignee") or {}),
        customer=orders.customer_from(body.get("customer")),
        currency=body.get("currency", ctx.tenant.currency),
        shipping_total=parse_amount(body.get("shipping_total", 0), "shipping_total"),
        tax_total=parse_amount(body.get("tax_total", 0), "tax_total"),
        discount_total=parse_amount(body.get("discount_total", 0), "discount_total"),
        channel=body.get("channel", "api"),
        external_id=body.get("external_id"),
        external_name=body.get("external_name"),
        priority=body.get("priority", 0),
        note=body.get("note"),
        paid_at=_datetime(body.get("paid_at"), "paid_at"),
        shipping_method=body.get("shipping_method"),
    )
    order = orders.create(
        ctx.session, ctx.tenant_id, draft, actor=ctx.actor, prefix=ctx.tenant.order_number_prefix
    )
    return orders.order_dict(order)


@route(
    "/orders",
    permission="orders.read",
    summary="Find orders",
    tag=TAG,
    query=SEARCH_PARAMS,
    paged=True,
)
def list_orders(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    query = OrderQuery(
        **{k: v for k, v in args.items() if k != "per_page"},
        per_page=min(args.get("per_page", 50), ctx.runtime.settings.max_per_page),
    )
    found, total, capped = search(ctx.session, ctx.tenant_id, query)
    return {
        "items": [orders.order_dict(o) for o in found],
        "total": total,
        "total_capped": capped,
        "page": query.page,
        "per_page": query.per_page,
    }


@route(
    "/orders/stats",
    permission="reports.read",
    summary="Order statistics for a period",
    tag=TAG,
    query=(
        Param("from", "date-time", "start (default: 30 days ago)"),
        Param("to", "date-time", "end, exclusive (default: now)", end=True),
    ),
)
def stats(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    end = args.get("to") or datetime.now(UTC)
    start = args.get("from") or end - timedelta(days=30)
    if start >= end:
        raise Invalid("'from' must be before 'to'")
    return order_stats(ctx.session, ctx.tenant_id, start, end)


@route("/orders/<number>", permission="orders.read", summary="Read an order", tag=TAG)
def get_order(ctx: Ctx, number: str) -> dict[str, Any]:
    order = orders.get(ctx.session, ctx.tenant_id, number)
    out = orders.order_dict(order)
    out["allocations"] = orders.allocation_rows(ctx.session, order)
    # What came back of it ("none", "partial", "full") and its returns; its status is the
    # shipping's and stays so.
    out.update(return_views.order_summary(ctx.session, order))
    return out


@route(
    "/orders/<number>",
    "PATCH",
    permission="orders.write",
    tag=TAG,
    summary="Modify an order until it ships (lines replace the lines)",
    body=schemas.ORDER_MODIFY,
)
def modify_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    order = orders.modify(
        ctx.session,
        ctx.tenant_id,
        number,
        actor=ctx.actor,
        lines=orders.draft_lines(body["lines"]) if "lines" in body else None,
        consignee=orders.consignee_from(body["consignee"]) if "consignee" in body else None,
        customer=orders.customer_from(body.get("customer")),
        note=body.get("note"),
        priority=body.get("priority"),
        shipping_method=body.get("shipping_method"),
    )
    return orders.order_dict(order)


@route(
    "/orders/<number>/cancel",
    "POST",
    permission="orders.write",
    tag=TAG,
    summary="Cancel an order before it ships, releasing its stock",
    body=schemas.REASON,
)
def cancel_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    order = orders.cancel(
        ctx.session, ctx.tenant_id, number, actor=ctx.actor, reason=body.get("reason")
    )
    return orders.order_dict(order)


@route(
    "/orders/<number>/approve",
    "POST",
    permission="orders.approve",
    tag=TAG,
    summary="Give the next approval level of an order awaiting approval",
    body=schemas.APPROVE,
)
def approve_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    order = orders.approve(
        ctx.session,
        ctx.tenant_id,
        number,
        actor=ctx.actor,
        role=ctx.principal.role,
        note=body.get("note"),
    )
    return orders.order_dict(order)


@route(
    "/orders/<number>/reject",
    "POST",
    permission="orders.approve",
    tag=TAG,
    summary="Reject an order awaiting approval: it is cancelled and its stock released",
    body=schemas.REJECT,
)
def reject_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    order = orders.reject(
        ctx.session,
        ctx.tenant_id,
        number,
        actor=ctx.actor,
        role=ctx.principal.role,
        reason=body["reason"],
    )
    return orders.order_dict(order)


@route(
    "/orders/<number>/allocate",
    "POST",
    permission="orders.write",
    tag=TAG,
    summary="Try again to reserve stock for a held order",
)
def allocate_order(ctx: Ctx, number: str) -> dict[str, Any]:
    order = orders.allocate(ctx.session, ctx.tenant_id, number, actor=ctx.actor)
    return orders.order_dict(order)


@route(
    "/orders/merge",
    "POST",
    permission="orders.write",
    tag=TAG,
    summary="Merge orders of one customer and address into the first",
    body=schemas.MERGE,
)
def merge_orders(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    order = orders.merge(ctx.session, ctx.tenant_id, body["numbers"], actor=ctx.actor)
    return orders.order_dict(order)


@route(
    "/orders/<number>/split",
    "POST",
    permission="orders.write",
    tag=TAG,
    status=201,
    summary="Split lines or quantities off into a new order",
    body=schemas.SPLIT,
)
def split_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    child = orders.split(
        ctx.session,
        ctx.tenant_id,
        number,
        [(line["sku"], line["quantity"]) for line in body["lines"]],
        actor=ctx.actor,
        prefix=ctx.tenant.order_number_prefix,
    )
    return orders.order_dict(child)


@route(
    "/orders/<number>/history",
    permission="orders.read",
    tag=TAG,
    summary="Every transition and change of an order",
)
def order_history(ctx: Ctx, number: str) -> dict[str, Any]:
    order = orders.get(ctx.session, ctx.tenant_id, number)
    items = [
        {
            "at": h.at.isoformat(),
            "action": h.action,
            "from": h.from_status,
            "to": h.to_status,
            "reason": h.reason,
            "actor": h.actor,
            "details": h.details,
        }
        for h in orders.history_of(ctx.session, order)
    ]
    return {"items": items, "total": len(items)}


def _datetime(value: str | None, what: str) -> datetime | None:
    """A date-time the schema's format check let through (hub.core.times), in UTC."""
    if value is None:
        return None
    try:
        return times.parse_instant(value)
    except ValueError as exc:
        problem = str(exc) if isinstance(exc, times.OutOfRange) else "is not a valid date-time"
        raise Invalid(f"{what}: {problem}", [{"field": what, "problem": problem}]) from None
