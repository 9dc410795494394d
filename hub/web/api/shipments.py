"""Shipment routes: ship an order, find shipments, read one with its tracking timeline, void
one before pickup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.core import shipments, tracking
from hub.core.models import Order, Shipment
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, paginate, route

TAG = "shipments"


@route(
    "/orders/<number>/shipments",
    "POST",
    permission="shipping.write",
    tag=TAG,
    status=201,
    summary="Ship an order (all its reserved stock, or some lines), one shipment per warehouse",
    body=schemas.SHIP,
)
def ship_order(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    made = shipments.ship(
        ctx.session,
        ctx.runtime,
        ctx.tenant_id,
        number,
        actor=ctx.actor,
        account_id=body.get("carrier_account"),
        service=body.get("service"),
        lines={x["sku"]: x["quantity"] for x in body["lines"]} if "lines" in body else None,
    )
    views = [shipments.shipment_dict(s, number) for s in made]
    return {**views[0], "shipments": views}


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
        Param("status", description="one status or several separated by commas"),
        Param("created_from", "date-time"),
        Param("created_to", "date-time"),
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
def cancel_shipment(ctx: Ctx, shipment_id: int) -> dict[str, Any]:
    shipment = shipments.cancel(
        ctx.session, ctx.runtime, ctx.tenant_id, shipment_id, actor=ctx.actor
    )
    return _view(ctx, shipment)


def _view(ctx: Ctx, shipment: Shipment) -> dict[str, Any]:
    return shipments.shipment_dict(shipment, shipments.order_number(ctx.session, shipment))
