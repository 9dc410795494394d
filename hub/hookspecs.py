"""Every hook OrderHub calls. Built-in plugins implement exactly these, like any third party."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("orderhub")
hookimpl = pluggy.HookimplMarker("orderhub")


@hookspec
def register_channels() -> list[type]:
    """Return ChannelAdapter subclasses that take orders in from a sales channel."""


@hookspec
def register_carriers() -> list[type]:
    """Return CarrierAdapter subclasses that quote, ship and track parcels."""


@hookspec
def register_notifiers() -> list[type]:
    """Return Notifier subclasses that tell people about events."""


@hookspec
def order_created(tenant: str, payload: dict[str, Any]) -> None:
    """An order was created; payload has its number and status."""


@hookspec
def order_status_changed(tenant: str, payload: dict[str, Any]) -> None:
    """An order changed status; payload has number, from, to and reason."""


@hookspec
def order_updated(tenant: str, payload: dict[str, Any]) -> None:
    """An order's lines, consignee or other details were changed; payload has its number."""


@hookspec
def stock_low(tenant: str, payload: dict[str, Any]) -> None:
    """A SKU's available stock fell below its threshold; payload has sku, available, threshold."""


@hookspec
def stock_replenished(tenant: str, payload: dict[str, Any]) -> None:
    """A low SKU is back at or above its threshold; payload has sku, available, threshold."""


@hookspec
def shipment_status_changed(tenant: str, payload: dict[str, Any]) -> None:
    """A shipment's tracking status changed; payload has number, tracking_number, from, to."""


@hookspec
def delivery_exception(tenant: str, payload: dict[str, Any]) -> None:
    """A delivery went wrong (delayed, lost, damaged …); payload has id, number, kind, reason."""


@hookspec
def ticket_created(tenant: str, payload: dict[str, Any]) -> None:
    """A service ticket was opened; payload has number, kind, priority and customer (e-mail)."""


@hookspec
def ticket_assigned(tenant: str, payload: dict[str, Any]) -> None:
    """A ticket was given to an agent; payload has number, assignee, assignee_email, priority."""


@hookspec
def ticket_status_changed(tenant: str, payload: dict[str, Any]) -> None:
    """A ticket changed status; payload has number, from and to."""


@hookspec
def ticket_sla_warning(tenant: str, payload: dict[str, Any]) -> None:
    """A ticket's SLA deadline is near; payload has number, clock, due and assignee."""


@hookspec
def ticket_sla_breached(tenant: str, payload: dict[str, Any]) -> None:
    """A ticket's SLA deadline passed; payload has number, clock, due, assignee, escalated_to."""


@hookspec
def ticket_replied(tenant: str, payload: dict[str, Any]) -> None:
    """An agent answered a ticket's customer; payload has number, subject, body (the answer),
    agent, customer_id and order_number (None without an order)."""


@hookspec
def return_created(tenant: str, payload: dict[str, Any]) -> None:
    """A return or exchange was authorised; payload has id, number, order, kind, status, lines."""


@hookspec
def return_received(tenant: str, payload: dict[str, Any]) -> None:
    """Returned goods came back; payload has id, number, order, status and the lines received."""


@hookspec
def return_label_issued(tenant: str, payload: dict[str, Any]) -> None:
    """A carrier issued a return label; payload has id, number, order, carrier, tracking_number."""


@hookspec
def return_cancelled(tenant: str, payload: dict[str, Any]) -> None:
    """A return was cancelled before anything came back; payload has id, number, order, reason."""


@hookspec
def return_closed(tenant: str, payload: dict[str, Any]) -> None:
    """A return was closed (nothing more to do); payload has id, number, order, reason."""


@hookspec
def refund_created(tenant: str, payload: dict[str, Any]) -> None:
    """A refund was granted; payload has id, return, order, amount, currency, status."""


@hookspec
def refund_settled(tenant: str, payload: dict[str, Any]) -> None:
    """The sales channel made or refused a refund; payload has id, return, order, status, error."""


@hookspec
def review_request(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule asks a customer to review a delivered order; payload has rule, number."""


@hookspec
def delay_apology(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule apologises for a delayed parcel; payload has rule, number, tracking_number."""


@hookspec
def satisfaction_survey(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule asks how a resolved ticket went; payload has rule and ticket (its number)."""


@hookspec
def win_back(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule writes to a customer silent for months; payload has rule, last_order_at."""


@hookspec
def birthday_greeting(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule wishes a customer a happy birthday; payload has rule and customer."""


@hookspec
def anniversary_greeting(tenant: str, payload: dict[str, Any]) -> None:
    """A care rule marks a customer's years with the shop; payload has rule and years."""


@hookspec
def review_created(tenant: str, payload: dict[str, Any]) -> None:
    """A customer reviewed a product; payload has id, sku, rating, number, verified_buyer."""


@hookspec
def portal_link(tenant: str, payload: dict[str, Any]) -> None:
    """A customer asked for a sign-in link to the customer portal; payload has customer_id,
    url (works once, until expires_at) and expires_at. Deliver it only to that customer."""
