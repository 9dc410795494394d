"""What a message may say about its event: the payload, plus what the hub looks up for
templates — the tenant, the order and its customer, its shipments with their tracking links,
the product of a stock alert. Looked up when the message is sent (current state), read-only,
scoped to the event's tenant."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core.adapters import Recipient
from hub.core.models import Customer, Order, Product, Shipment
from hub.core.money import format_amount

if TYPE_CHECKING:
    from hub.settings import TenantSettings

SUBJECTS = {
    "order_created": "Order {number} created ({status})",
    "order_status_changed": "Order {number}: {from} → {to}",
    "order_updated": "Order {number} updated",
    "stock_low": "Low stock: {sku} has {available} available (threshold {threshold})",
    "stock_replenished": "Stock back: {sku} has {available} available",
    "shipment_status_changed": "Order {number}: shipment {tracking_number} {from} → {to}",
    "delivery_exception": "Order {number}: delivery exception ({kind}) on {tracking_number}",
    "ticket_created": "Ticket {number} opened ({kind}, {priority})",
    "ticket_assigned": "Ticket {number} assigned to {assignee}",
    "ticket_status_changed": "Ticket {number}: {from} → {to}",
    "ticket_sla_warning": "Ticket {number}: {clock} due at {due}",
    "ticket_sla_breached": "Ticket {number}: {clock} deadline passed ({due})",
    "ticket_replied": "Re: [{number}] {subject}",
    "return_created": "Order {order}: {kind} {number} authorised",
    "return_received": "Return {number} of order {order}: goods received ({status})",
    "return_label_issued": "Return {number} of order {order}: label {tracking_number}",
    "return_cancelled": "Return {number} of order {order} cancelled",
    "return_closed": "Return {number} of order {order} closed",
    "refund_created": "Order {order}: refund of {amount} {currency} for return {return} ({status})",
    "refund_settled": "Order {order}: refund of {amount} {currency} {status}",
    "review_request": "Review request for order {number} ({customer})",
    "delay_apology": "Apology for the delay of order {number} ({customer})",
    "satisfaction_survey": "Satisfaction survey for ticket {ticket} ({customer})",
    "win_back": "We miss you ({customer}; last order {last_order})",
    "birthday_greeting": "Happy birthday ({customer})",
    "anniversary_greeting": "{years} years with us ({customer})",
    "review_created": "Review of {sku}: {rating}/5 (order {number})",
    "portal_link": "Sign-in link to the order portal (customer {customer_id})",
}


class _Loose(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def subject(event: str, payload: Mapping[str, Any]) -> str:
    """The one-line English subject of an event (logs, the log notifier)."""
    return SUBJECTS.get(event, event).format_map(_Loose(payload))


def build(
    session: Session,
    tenant_id: int,
    tenant: TenantSettings,
    event: str,
    payload: Mapping[str, Any],
    occurred_at: datetime,
    recipient: Recipient | None,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        **payload,
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        "tenant": {"slug": tenant.slug, "name": tenant.name},
        "recipient": None
        if recipient is None
        else {
            "address": recipient.address,
            "name": recipient.name,
            "language": recipient.language,
        },
        "order": None,
        "shipments": [],
        "shipment": None,
        "tracking_url": None,
        "product": None,
    }
    if payload.get("sku") is not None:
        name = session.scalar(
            select(Product.name).where(
                Product.tenant_id == tenant_id, Product.sku == str(payload["sku"])
            )
        )
        context["product"] = {"sku": payload["sku"], "name": name}
    if payload.get("number") is not None:
        _order(session, tenant_id, tenant, str(payload["number"]), payload, context)
    return context


def _order(
    session: Session,
    tenant_id: int,
    tenant: TenantSettings,
    number: str,
    payload: Mapping[str, Any],
    context: dict[str, Any],
) -> None:
    row = session.execute(
        select(Order, Customer)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(Order.tenant_id == tenant_id, Order.number == number)
    ).first()
    if row is None:
        return
    order, customer = row
    context["order"] = {
        "number": order.number,
        "status": order.status,
        "total": format_amount(order.total),
        "currency": order.currency,
        "customer_name": (customer.name if customer else None) or order.consignee_name,
    }
    shipments = [
        {
            "id": s.id,
            "carrier": s.carrier,
            "tracking_number": s.tracking_number,
            "status": s.status,
            "tracking_url": tenant.notifications.tracking_url(s.carrier, s.tracking_number),
        }
        for s in session.scalars(
            select(Shipment)
            .where(Shipment.tenant_id == tenant_id, Shipment.order_id == order.id)
            .where(Shipment.status != "cancelled")
            .order_by(Shipment.id)
        )
    ]
    context["shipments"] = shipments
    named = payload.get("tracking_number")
    current = next((s for s in shipments if s["tracking_number"] == named), None)
    if current is None and shipments:
        current = shipments[-1]
    context["shipment"] = current
    context["tracking_url"] = current["tracking_url"] if current else None
