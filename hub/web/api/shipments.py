"""Shipment routes: ship an order, find shipments, read one with its tracking timeline, void
one before pickup, record tracking events by hand, check tracking now.

A route that calls a carrier (ship, cancel, track) checks and claims what it needs in the
request's transaction and calls the carrier after it has ended (``AfterCommit``): no
transaction is ever open across a carrier's answer (hub.core.shipments, hub.core.purchases).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub.core import shipments, times, tracking
from hub.core.adapters import EXCEPTION_REASONS
from hub.core.db import utcnow
from hub.core.errors import Invalid
from hub.core.models import Order, Shipment
from hub.web.api import schemas
from hub.web.api.framework import AfterCommit, Ctx, Param, paginate, route

TAG = "shipments"

TRACKING_EVENT = schemas.closed(
    {
        "status": {
            "enum": list(tracking.BY_HAND),
            "description": "OrderHub's normalised tracking status",
        },
        "at": {
            "type": "string",
            "maxLength": 40,
            "description": "when it happened (ISO 8601 with a time zone); default: now",
        },
        "location": {"type": "string", "minLength": 1, "maxLength": 200},
        "note": {"type": "string", "minLength": 1, "maxLength": 1000},
        "reason": {
            "enum": list(EXCEPTION_REASONS),
            "description": "why, with status exception or delivery_failed",
        },
    },
    ("status",),
)


@route(
    "/orders/<number>/shipments",
    "POST",
    permission="shipping.write",
    tag=TAG,
    status=201,
    summary="Ship an order (all its reserved stock, or some lines), one shipment per warehouse",
    body=schemas.SHIP,
)
def ship_order(ctx: Ctx, number: str, body: dict[str, Any]) -> AfterCommit:
    plan = shipments.ship(
        ctx.session,
        ctx.runtime,
        ctx.tenant_id,
        number,
        actor=ctx.actor,
        account_id=body.get("carrier_account"),
        service=body.get("service"),
        lines={x["sku"]: x["quantity"] for x in body["lines"]} if "lines" in body else None,
    )
    runtime = ctx.runtime

    def buy() -> dict[str, Any]:
        views = shipments.views(runtime, plan.tenant_id, shipments.buy(runtime, plan))
        return {**views[0], "shipments": views}

    return AfterCommit(buy)


@route(
    "/shipments",
    permission="shipping.read",
    tag=TAG,
    summary="Find shipments",
    query=(
        Param("order", description="order number"),
        Param("carrier", description="carrier plugin, e.g. ups"),
        Param("carrier_account", "integer", minimum=1),
        Param("tracking_number"),
        Param(
            "status",
            description="one status or several separated by commas",
            enum=shipments.STATUSES,
            many=True,
        ),
        Param("created_from", "date-time"),
        Param("created_to", "date-time", end=True),
    ),
    paged=True,
)
def list_shipments(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = (
        select(Shipment, Order.number)
        .join(Order, Order.id == Shipment.order_id)
        .where(Shipment.tenant_id == ctx.tenant_id)
    )
    if "order" in args:
        stmt = stmt.where(Order.number == args["order"])
    if "carrier" in args:
        stmt = stmt.where(Shipment.carrier == args["carrier"])
    if "carrier_account" in args:
        stmt = stmt.where(Shipment.carrier_account_id == args["carrier_account"])
    if "tracking_number" in args:
        stmt = stmt.where(Shipment.tracking_number == args["tracking_number"])
    if "status" in args:
        stmt = stmt.where(Shipment.status.in_(args["status"].split(",")))
    if "created_from" in args:
        stmt = stmt.where(Shipment.created_at >= args["created_from"])
    if "created_to" in args:
        stmt = stmt.where(Shipment.created_at < args["created_to"])
    return paginate(
        ctx,
        stmt,
        Shipment.id.desc(),
        args,
        lambda row: shipments.shipment_dict(row[0], row[1]),
        rows=True,
    )


@route(
    "/shipments/<int:shipment_id>",
    permission="shipping.read",
    tag=TAG,
    summary="Read a shipment",
)
def get_shipment(ctx: Ctx, shipment_id: int) -> dict[str, Any]:
    shipment = shipments.get(ctx.session, ctx.tenant_id, shipment_id)
    return _view(ctx, shipment)


@route(
    "/shipments/<int:shipment_id>/events",
    permission="shipping.read",
    tag=TAG,
    summary="A shipment's tracking timeline: every scan, oldest first, with the carrier's code",
)
def shipment_events(ctx: Ctx, shipment_id: int) -> dict[str, Any]:
    shipment = shipments.get(ctx.session, ctx.tenant_id, shipment_id)
    items = tracking.timeline(ctx.session, shipment)
    return {
        "shipment": _view(ctx, shipment),
        "items": items,
        "total": len(items),
    }


@route(
    "/shipments/<int:shipment_id>/cancel",
    "POST",
    permission="shipping.write",
    tag=TAG,
    summary="Void a shipment before pickup: the goods are reserved for the order again",
)
def cancel_shipment(ctx: Ctx, shipment_id: int) -> AfterCommit:
    plan = shipments.cancel(ctx.session, ctx.runtime, ctx.tenant_id, shipment_id, actor=ctx.actor)
    runtime = ctx.runtime

    def void() -> dict[str, Any]:
        return shipments.views(runtime, plan.tenant_id, [shipments.void(runtime, plan)])[0]

    return AfterCommit(void)


@route(
    "/shipments/<int:shipment_id>/events",
    "POST",
    permission="tracking.write",
    tag=TAG,
    status=201,
    summary="Record a tracking event by hand (a courier without tracking, a customer's word)",
    body=TRACKING_EVENT,
)
def record_event(ctx: Ctx, shipment_id: int, body: dict[str, Any]) -> dict[str, Any]:
    at = _instant(body["at"], "at") if "at" in body else utcnow()
    shipment = shipments.get(ctx.session, ctx.tenant_id, shipment_id)
    result = tracking.record_by_hand(
        ctx.session,
        shipment,
        status=body["status"],
        at=at,
        actor=ctx.actor,
        location=body.get("location"),
        note=body.get("note"),
        reason=body.get("reason"),
    )
    items = tracking.timeline(ctx.session, shipment)
    return {"shipment": _view(ctx, shipment), **result, "items": items, "total": len(items)}


@route(
    "/shipments/<int:shipment_id>/track",
    "POST",
    permission="tracking.write",
    tag=TAG,
    summary="Check a shipment's tracking with its carrier now",
)
def track_shipment(ctx: Ctx, shipment_id: int) -> AfterCommit:
    shipments.get(ctx.session, ctx.tenant_id, shipment_id)  # another tenant's: 404 here
    runtime, tenant_id = ctx.runtime, ctx.tenant_id

    def check() -> dict[str, Any]:
        result = tracking.check_now(runtime, tenant_id, shipment_id)
        with runtime.session(tenant_id) as session:
            shipment = shipments.get(session, tenant_id, shipment_id)
            items = tracking.timeline(session, shipment)
            view = shipments.shipment_dict(shipment, shipments.order_number(session, shipment))
        return {"shipment": view, "changed": result["changed"], "items": items, "total": len(items)}

    return AfterCommit(check)


def _view(ctx: Ctx, shipment: Shipment) -> dict[str, Any]:
    return shipments.shipment_dict(shipment, shipments.order_number(ctx.session, shipment))


def _instant(value: str, where: str) -> datetime:
    """A time from the body, in UTC and in range (hub.core.times); never echoed back."""
    try:
        return times.parse_instant(value)
    except times.OutOfRange as exc:
        problem = str(exc)
    except ValueError:
        problem = "must be an ISO 8601 date-time with a time zone, such as 2026-03-02T08:00:00Z"
    raise Invalid(f"{where}: {problem}", [{"field": where, "problem": problem}])
