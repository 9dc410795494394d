"""How returns and refunds read: the one JSON shape of each (API answers, audit snapshots),
and what an order's own view says of its returns."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hub.core.models import Order, Refund, Return, ReturnLine, ReturnReceipt, Warehouse
from hub.core.money import format_amount


def view(session: Session, ret: Return) -> dict[str, Any]:
    """The one JSON shape of a return: API answers, audit snapshots and events use it."""
    numbers = dict(
        session.execute(
            select(Order.id, Order.number).where(
                Order.id.in_([i for i in (ret.order_id, ret.replacement_order_id) if i])
            )
        ).all()
    )
    receipts = session.execute(
        select(ReturnReceipt, ReturnLine.sku, Warehouse.code)
        .join(ReturnLine, ReturnLine.id == ReturnReceipt.line_id)
        .join(Warehouse, Warehouse.id == ReturnReceipt.warehouse_id)
        .where(ReturnLine.return_id == ret.id)
        .order_by(ReturnReceipt.id)
    ).all()
    refunds = list(
        session.scalars(select(Refund).where(Refund.return_id == ret.id).order_by(Refund.id))
    )
    counted = [r.amount for r in refunds if r.status != "failed"]
    return {
        "id": ret.id,
        "number": ret.number,
        "order": numbers.get(ret.order_id),
        "kind": ret.kind,
        "status": ret.status,
        "reason": ret.reason,
        "replacement_order": numbers.get(ret.replacement_order_id)
        if ret.replacement_order_id
        else None,
        "window_ends_on": ret.window_ends_on.isoformat() if ret.window_ends_on else None,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "received_sellable": line.received,
                "received_damaged": line.damaged,
                "outstanding": line.quantity - line.received - line.damaged,
                "unit_price": format_amount(line.unit_price),
            }
            for line in ret.lines
        ],
        "value_received": format_amount(received_value(ret)),
        "refunded": format_amount(sum(counted, Decimal(0))),
        "receipts": [
            {
                "sku": sku,
                "quantity": r.quantity,
                "condition": r.condition,
                "warehouse": code,
                "actor": r.actor,
                "at": r.at.isoformat(),
            }
            for r, sku, code in receipts
        ],
        "refunds": [refund_view(r, ret.number, numbers.get(ret.order_id)) for r in refunds],
        "label": ret.label,
        "note": ret.note,
        "created_by": ret.created_by,
        "created_at": ret.created_at.isoformat(),
        "received_at": ret.received_at.isoformat() if ret.received_at else None,
        "ended_at": ret.ended_at.isoformat() if ret.ended_at else None,
    }


def refund_view(refund: Refund, return_number: str, order_number: str | None) -> dict[str, Any]:
    return {
        "id": refund.id,
        "return": return_number,
        "order": order_number,
        "amount": format_amount(refund.amount),
        "currency": refund.currency,
        "shipping_included": refund.shipping_included,
        "lines": [{"sku": s, "quantity": q} for s, q in sorted((refund.lines or {}).items())],
        "reason": refund.reason,
        "status": refund.status,
        "external_id": refund.external_id,
        "error": refund.error,
        "created_by": refund.created_by,
        "created_at": refund.created_at.isoformat(),
        "settled_at": refund.settled_at.isoformat() if refund.settled_at else None,
    }


def received_value(ret: Return) -> Decimal:
    """What the units that came back are worth at the order's prices, whatever their state."""
    return sum(((line.received + line.damaged) * line.unit_price for line in ret.lines), Decimal(0))


def order_summary(session: Session, order: Order) -> dict[str, Any]:
    """For the order's own view: how much of it came back ("none", "partial" or "full",
    counting units received on its returns against units ordered) and its returns."""
    found = list(
        session.scalars(
            select(Return)
            .where(Return.order_id == order.id)
            .options(selectinload(Return.lines))
            .order_by(Return.id)
        )
    )
    back = sum(line.received + line.damaged for r in found for line in r.lines)
    ordered = sum(line.quantity for line in order.lines)
    returned = "none" if back == 0 else "full" if back >= ordered else "partial"
    return {
        "returned": returned,
        "returns": [
            {"id": r.id, "number": r.number, "kind": r.kind, "status": r.status} for r in found
        ],
    }
