"""Delivery exceptions (list, open by hand, resolve) and the carrier performance report. A
shipment's own tracking timeline is served with the shipment (hub/web/api/shipments.py)."""

from __future__ import annotations

from typing import Any

from hub.core import delivery_exceptions, shipments
from hub.core.models import DeliveryException
from hub.runtime import Runtime
from hub.web.api.framework import AfterCommit, Ctx, Param, paginate, route
from hub.web.api.schemas import closed

RESOLVE = closed(
    {
        "resolution": {"enum": list(delivery_exceptions.RESOLUTIONS)},
        "note": {"type": "string", "minLength": 1, "maxLength": delivery_exceptions.NOTE_LENGTH},
    },
    ("resolution",),
)


OPEN = closed(
    {
        "kind": {"enum": list(delivery_exceptions.BY_HAND)},
        "note": {
            "type": "string",
            "minLength": 1,
            "maxLength": delivery_exceptions.REASON_LENGTH,
            "description": "what happened, as the customer or the courier told it",
        },
    },
    ("kind", "note"),
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
def resolve_exception(
    ctx: Ctx, exception_id: int, body: dict[str, Any]
) -> dict[str, Any] | AfterCommit:
    if body["resolution"] == "reship":
        # The replacement's label is bought after this transaction (hub.core.shipments.buy),
        # and the exception resolved when it is recorded.
        plan = delivery_exceptions.start_reship(
            ctx.session,
            ctx.runtime,
            ctx.tenant_id,
            exception_id,
            note=body.get("note"),
            actor=ctx.actor,
        )
        runtime, tenant_id = ctx.runtime, ctx.tenant_id

        def reship() -> dict[str, Any]:
            shipments.buy(runtime, plan)
            return _exception_view(runtime, tenant_id, exception_id)

        return AfterCommit(reship)
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
    "/shipments/<int:shipment_id>/exceptions",
    "POST",
    permission="tracking.write",
    tag="exceptions",
    status=201,
    summary="Open a delivery exception by hand (the customer says the parcel is lost …)",
    body=OPEN,
)
def open_exception(ctx: Ctx, shipment_id: int, body: dict[str, Any]) -> dict[str, Any]:
    found = delivery_exceptions.open_by_hand(
        ctx.session, ctx.tenant_id, shipment_id, body["kind"], body["note"], actor=ctx.actor
    )
    row = delivery_exceptions.find(ctx.tenant_id).where(DeliveryException.id == found.id)
    return delivery_exceptions.exception_dict(*ctx.session.execute(row).one())


def _exception_view(runtime: Runtime, tenant_id: int, exception_id: int) -> dict[str, Any]:
    with runtime.session(tenant_id) as session:
        row = delivery_exceptions.find(tenant_id).where(DeliveryException.id == exception_id)
        return delivery_exceptions.exception_dict(*session.execute(row).one())
