"""Telling the sales channel that goods shipped: the ``push_fulfilment`` job.

Runs after the shipment committed, once per shipment, and is idempotent: a shipment that
already carries the channel's fulfilment id is not pushed again. The channel is called outside
any transaction; what it answered is then recorded on the shipment and in the order's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import orders
from hub.core.adapters import FulfilledLine, Fulfilment
from hub.core.db import utcnow
from hub.core.http import HttpError
from hub.core.models import (
    CarrierAccount,
    Connection,
    Order,
    OrderLine,
    Shipment,
    ShipmentItem,
    SkuMapping,
)

if TYPE_CHECKING:
    from hub.runtime import Runtime


def push(runtime: Runtime, shipment_id: int) -> str:
    """Returns what happened: "pushed", "skipped: …" or "failed: …" (retryable failures are
    raised so the job queue retries them)."""
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        order = session.get(Order, shipment.order_id) if shipment else None
        if shipment is None or order is None or order.connection_id is None:
            return "skipped: not a channel order"
        if shipment.channel_fulfilment_id is not None:
            return "skipped: already pushed"
        connection = session.get(Connection, order.connection_id)
        if connection is None:
            return "skipped: the connection is gone"
        adapter = runtime.channel_adapter(connection)
        if "fulfilment" not in adapter.capabilities:
            return f"skipped: {connection.plugin} takes no fulfilments"
        account = session.get(CarrierAccount, shipment.carrier_account_id)
        fulfilment = Fulfilment(
            carrier=account.name if account else shipment.carrier,
            tracking_number=shipment.tracking_number,
            lines=_lines(session, shipment, order, connection),
        )
        external_id = order.external_id or ""
    try:
        reference = adapter.push_fulfilment(external_id, fulfilment)
    except HttpError as problem:
        _record(runtime, shipment_id, None, str(problem))
        if problem.retryable:
            raise
        return f"failed: {problem}"
    _record(runtime, shipment_id, reference or "", None)
    return "pushed"


def _lines(
    session: Session, shipment: Shipment, order: Order, connection: Connection
) -> tuple[FulfilledLine, ...]:
    """Nothing listed when this one shipment carries the whole order (the channel then
    fulfils everything); otherwise each item under the name the channel knows it by."""
    ordered = {
        (line.product_id, line.quantity)
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
    }
    others = session.scalar(
        select(Shipment.id).where(
            Shipment.order_id == order.id,
            Shipment.id != shipment.id,
            Shipment.status != "cancelled",
        )
    )
    items = list(
        session.scalars(select(ShipmentItem).where(ShipmentItem.shipment_id == shipment.id))
    )
    if others is None and ordered == {(i.product_id, i.quantity) for i in items}:
        return ()
    refs = dict(
        session.execute(
            select(SkuMapping.sku, SkuMapping.channel_ref).where(
                SkuMapping.connection_id == connection.id
            )
        ).all()
    )
    return tuple(FulfilledLine(refs.get(i.sku, i.sku), i.quantity) for i in items)


def _record(runtime: Runtime, shipment_id: int, reference: str | None, error: str | None) -> None:
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None:
            return
        order = session.get(Order, shipment.order_id)
        if error is None:
            shipment.channel_fulfilment_id = reference
            shipment.channel_notified_at = utcnow()
            shipment.channel_error = None
            note = f"the channel was told: {shipment.tracking_number}"
        else:
            shipment.channel_error = error[:2000]
            note = f"the channel could not be told of {shipment.tracking_number}: {error}"
        if order is not None:
            orders.record_history(session, order, "channel_fulfilment", "worker", note[:1000])
