"""Delivery exceptions (list, resolve) and the carrier performance report. A shipment's own
tracking timeline is served with the shipment (hub/web/api/shipments.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hub.core import delivery_exceptions, reports
from hub.core.errors import Invalid
from hub.core.models import DeliveryException
from hub.web.api.framework import Ctx, Param, paginate, route
from hub.web.api.schemas import closed

RESOLVE = closed(
    {
        "resolution": {"enum": list(delivery_exceptions.RESOLUTIONS)},
        "note": {"type": "string", "minLength": 1, "maxLength": delivery_exceptions.NOTE_LENGTH},
    },
    ("resolution",),
)


@route(
    "/exceptions",
    permission="shipping.read",
    tag="exceptions",
    summary="Delivery exceptions (delayed, lost, damaged …), newest first",
    query=(
        Param("status", enum=("open", "resolved")),
        Param("kind", enum=delivery_exceptions.KINDS),
    ),
    paged=True,
)
def list_exceptions(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = delivery_exceptions.find(ctx.tenant_id, status=args.get("status"), kind=args.get("kind"))
    return paginate(
        ctx,
        stmt,
        DeliveryException.id.desc(),
        args,
        lambda row: delivery_exceptions.exception_dict(*row),
        rows=True,
    )


@route(
    "/exceptions/<int:exception_id>/resolve",
    "POST",
    permission="shipping.write",
    tag="exceptions",
    summary="Resolve a delivery exception: reship, refund, close, or note a customer contact",
    body=RESOLVE,
)
def resolve_exception(ctx: Ctx, exception_id: int, body: dict[str, Any]) -> dict[str, Any]:
    found = delivery_exceptions.resolve(
        ctx.session,
        ctx.runtime,
        ctx.tenant_id,
        exception_id,
        body["resolution"],
        note=body.get("note"),
        actor=ctx.actor,
    )
    row = delivery_exceptions.find(ctx.tenant_id).where(DeliveryException.id == found.id)
    return delivery_exceptions.exception_dict(*ctx.session.execute(row).one())


@route(
    "/reports/carriers",
    permission="reports.read",
    tag="reports",
    summary="Carrier performance: shipments, delivered, on-time rate, transit days, exceptions",
    query=(
        Param("from", "date-time", "shipments created from (default: 30 days ago)"),
        Param("to", "date-time", "created before, exclusive (default: now)"),
    ),
)
def carrier_report(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    try:  # times at the edge of the calendar cannot move to UTC or back 30 days
        end = (args.get("to") or datetime.now(UTC)).astimezone(UTC)
        start = (args.get("from") or end - timedelta(days=30)).astimezone(UTC)
    except OverflowError:
        raise Invalid("'from' and 'to' must be dates within the calendar's range") from None
    if start >= end:
        raise Invalid("'from' must be before 'to'")
    return reports.carrier_performance(ctx.session, ctx.tenant_id, start, end)
