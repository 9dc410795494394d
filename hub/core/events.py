"""Domain events, written to the outbox in the caller's transaction.

The session remembers what it emitted; whoever owns the session factory (the runtime) enqueues
the fan-out after commit. If that enqueue fails the row is still there and the sweeper finds it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hub.core.db import utcnow
from hub.core.models import Event

ORDER_CREATED = "order_created"
ORDER_STATUS_CHANGED = "order_status_changed"
ORDER_UPDATED = "order_updated"
STOCK_LOW = "stock_low"
STOCK_REPLENISHED = "stock_replenished"
SHIPMENT_STATUS_CHANGED = "shipment_status_changed"
DELIVERY_EXCEPTION = "delivery_exception"
TICKET_CREATED = "ticket_created"
TICKET_ASSIGNED = "ticket_assigned"
TICKET_STATUS_CHANGED = "ticket_status_changed"
TICKET_SLA_WARNING = "ticket_sla_warning"
TICKET_SLA_BREACHED = "ticket_sla_breached"
# An agent answered the customer (a public message): what the e-mail conversation sends.
TICKET_REPLIED = "ticket_replied"
RETURN_CREATED = "return_created"
RETURN_RECEIVED = "return_received"
RETURN_LABEL_ISSUED = "return_label_issued"
RETURN_CANCELLED = "return_cancelled"
RETURN_CLOSED = "return_closed"
REFUND_CREATED = "refund_created"
REFUND_SETTLED = "refund_settled"
# Customer care (hub.core.care): each is a message to one customer, fired by a care rule.
REVIEW_REQUEST = "review_request"
DELAY_APOLOGY = "delay_apology"
SATISFACTION_SURVEY = "satisfaction_survey"
WIN_BACK = "win_back"
BIRTHDAY_GREETING = "birthday_greeting"
ANNIVERSARY_GREETING = "anniversary_greeting"
REVIEW_CREATED = "review_created"
# A customer asked the portal for a one-time sign-in link: the message that carries it.
PORTAL_LINK = "portal_link"

CARE_EVENTS = (
    REVIEW_REQUEST,
    DELAY_APOLOGY,
    SATISFACTION_SURVEY,
    WIN_BACK,
    BIRTHDAY_GREETING,
    ANNIVERSARY_GREETING,
)

EVENT_NAMES = (
    ORDER_CREATED,
    ORDER_STATUS_CHANGED,
    ORDER_UPDATED,
    STOCK_LOW,
    STOCK_REPLENISHED,
    SHIPMENT_STATUS_CHANGED,
    DELIVERY_EXCEPTION,
    TICKET_CREATED,
    TICKET_ASSIGNED,
    TICKET_STATUS_CHANGED,
    TICKET_SLA_WARNING,
    TICKET_SLA_BREACHED,
    TICKET_REPLIED,
    RETURN_CREATED,
    RETURN_RECEIVED,
    RETURN_LABEL_ISSUED,
    RETURN_CANCELLED,
    RETURN_CLOSED,
    REFUND_CREATED,
    REFUND_SETTLED,
    *CARE_EVENTS,
    REVIEW_CREATED,
    PORTAL_LINK,
)

OUTBOX_KEY = "orderhub.outbox"
# Set by the runtime: ``listens(session, tenant_id, name) -> bool``. An event nobody listens to
# (no notifier subscribed, no plugin implementing its hook) is recorded as already dispatched,
# so it costs no job. Without an oracle every event is dispatched.
LISTENS_KEY = "orderhub.listens"


_INSERT = insert(Event.__table__).returning(Event.__table__.c.id)


def emit(session: Session, tenant_id: int, name: str, payload: dict[str, Any]) -> None:
    row, live = prepare(session, tenant_id, name, payload)
    event_id = session.execute(_INSERT, [row]).scalar_one()
    if live:
        remember(session, event_id)


def prepare(
    session: Session, tenant_id: int, name: str, payload: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The outbox row for an event, and whether anyone listens (then it must be dispatched)."""
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event {name!r}")
    listens = session.info.get(LISTENS_KEY)
    live = listens is None or listens(session, tenant_id, name)
    now = utcnow()
    row = {
        "tenant_id": tenant_id,
        "name": name,
        "payload": payload,
        "created_at": now,
        "dispatched_at": None if live else now,
    }
    return row, live


def remember(session: Session, event_id: int) -> None:
    """Have the runtime enqueue this event's fan-out once the transaction commits."""
    session.info.setdefault(OUTBOX_KEY, []).append(event_id)


def take_emitted(session: Session) -> list[int]:
    return session.info.pop(OUTBOX_KEY, [])


# Jobs a transaction asks for, sent by the runtime only once it has committed.
AFTER_COMMIT_JOBS = "orderhub.after_commit_jobs"


def send_after_commit(session: Session, actor: str, arg: Any) -> None:
    """Have the runtime send ``actor(arg)`` once this transaction commits (never if it rolls
    back), so a job never looks for rows that do not exist yet."""
    session.info.setdefault(AFTER_COMMIT_JOBS, []).append((actor, arg))
