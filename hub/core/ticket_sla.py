"""SLA deadlines of tickets, counted in the tenant's working hours, and the check that warns
before a deadline, marks its breach once and escalates to the supervisor.

Two clocks per ticket: the first public reply, and resolution. Waiting on the customer stops
the resolution clock: what was left of it is kept and counted again from the moment the ticket
is back with the agent. A breach is recorded once and stays recorded whatever happens later
(a changed priority, a reply); a changed priority or category moves deadlines not yet passed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.core import audit, events
from hub.core.db import utcnow
from hub.core.models import Ticket, TicketEvent, User
from hub.core.models.tenancy import username_key
from hub.core.ticket_rules import TicketRules

_ACTIVE = ("open", "assigned", "waiting_customer")


def start(ticket: Ticket, rules: TicketRules, now: datetime) -> None:
    target = rules.target(ticket.category, ticket.priority)
    ticket.first_reply_due = rules.calendar.add(now, target.first_reply_minutes)
    ticket.resolution_due = rules.calendar.add(now, target.resolution_minutes)


def retarget(ticket: Ticket, rules: TicketRules) -> None:
    """New targets counted from the ticket's creation, for the clocks still running."""
    target = rules.target(ticket.category, ticket.priority)
    if ticket.first_replied_at is None and ticket.first_reply_breached_at is None:
        ticket.first_reply_due = rules.calendar.add(ticket.created_at, target.first_reply_minutes)
        ticket.first_reply_warned = False
    if ticket.resolution_breached_at is None and ticket.paused_at is None:
        ticket.resolution_due = rules.calendar.add(ticket.created_at, target.resolution_minutes)
        ticket.resolution_warned = False


def resume(ticket: Ticket, rules: TicketRules, now: datetime) -> None:
    """Back from waiting on the customer: the resolution clock goes on with what was left."""
    if ticket.paused_at is None or ticket.resolution_due is None:
        return
    if ticket.resolution_due > ticket.paused_at:
        left = rules.calendar.between(ticket.paused_at, ticket.resolution_due)
        ticket.resolution_due = rules.calendar.add(now, left)
    ticket.paused_at = None


def view(ticket: Ticket) -> dict[str, Any]:
    def clock(due: datetime | None, done: datetime | None, breached: datetime | None) -> Any:
        return {
            "due": due.isoformat() if due else None,
            "met": None if done is None else breached is None and (due is None or done <= due),
            "breached_at": breached.isoformat() if breached else None,
        }

    return {
        "first_reply": clock(
            ticket.first_reply_due, ticket.first_replied_at, ticket.first_reply_breached_at
        ),
        "resolution": clock(
            ticket.resolution_due, ticket.resolved_at, ticket.resolution_breached_at
        ),
        "paused": ticket.paused_at is not None,
    }


def check(
    session: Session, tenant_id: int, rules: TicketRules, now: datetime | None = None
) -> dict[str, int]:
    """Warn of deadlines within ``warn_minutes``, mark passed ones breached and escalate; each
    at most once per ticket and clock, however often this runs (the flags and the breach time
    are set in the same transaction as the event). Rows are locked and skipped when another
    check holds them, so several workers may run it at once."""
    now = now or utcnow()
    soon = now + timedelta(minutes=rules.warn_minutes)
    due = (
        select(Ticket)
        .where(
            Ticket.tenant_id == tenant_id,
            Ticket.status.in_(_ACTIVE),
            or_(
                (
                    Ticket.first_replied_at.is_(None)
                    & Ticket.first_reply_breached_at.is_(None)
                    & (Ticket.first_reply_due <= soon)
                ),
                (
                    Ticket.paused_at.is_(None)
                    & Ticket.resolution_breached_at.is_(None)
                    & (Ticket.resolution_due <= soon)
                ),
            ),
        )
        .order_by(Ticket.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    counts = {"warned": 0, "breached": 0}
    for ticket in session.scalars(due):
        for clock in ("first_reply", "resolution"):
            if clock == "first_reply" and ticket.first_replied_at is not None:
                continue
            if clock == "resolution" and ticket.paused_at is not None:
                continue
            outcome = _tick(session, ticket, clock, rules, now, soon)
            if outcome:
                counts[outcome] += 1
    return counts


def _tick(
    session: Session,
    ticket: Ticket,
    clock: str,
    rules: TicketRules,
    now: datetime,
    soon: datetime,
) -> str:
    deadline: datetime | None = getattr(ticket, f"{clock}_due")
    if deadline is None or deadline > soon or getattr(ticket, f"{clock}_breached_at"):
        return ""
    if deadline <= now:
        setattr(ticket, f"{clock}_breached_at", now)
        escalated = _escalate(session, ticket, rules)
        _record(
            session,
            ticket,
            "sla_breach",
            {"clock": clock, "due": deadline.isoformat(), "escalated_to": escalated},
        )
        events.emit(
            session,
            ticket.tenant_id,
            events.TICKET_SLA_BREACHED,
            {
                "number": ticket.number,
                "clock": clock,
                "due": deadline.isoformat(),
                "assignee": _username(session, ticket.assignee_id),
                "escalated_to": escalated,
            },
        )
        return "breached"
    if not getattr(ticket, f"{clock}_warned"):
        setattr(ticket, f"{clock}_warned", True)
        _record(session, ticket, "sla_warning", {"clock": clock, "due": deadline.isoformat()})
        events.emit(
            session,
            ticket.tenant_id,
            events.TICKET_SLA_WARNING,
            {
                "number": ticket.number,
                "clock": clock,
                "due": deadline.isoformat(),
                "assignee": _username(session, ticket.assignee_id),
            },
        )
        return "warned"
    return ""


def _escalate(session: Session, ticket: Ticket, rules: TicketRules) -> str | None:
    """To the tenant's supervisor (an active user of any staff role), once."""
    if rules.supervisor is None or ticket.escalated_to_id is not None:
        return _username(session, ticket.escalated_to_id)
    supervisor = session.scalar(
        select(User).where(
            User.tenant_id == ticket.tenant_id,
            User.username_key == username_key(rules.supervisor),
            User.active.is_(True),
        )
    )
    if supervisor is None:
        return None
    ticket.escalated_to_id = supervisor.id
    audit.record(
        session,
        ticket.tenant_id,
        "sla",
        "ticket.escalate",
        "ticket",
        ticket.number,
        None,
        {"escalated_to": supervisor.username},
    )
    return supervisor.username


def _record(session: Session, ticket: Ticket, kind: str, data: dict[str, Any]) -> None:
    session.add(
        TicketEvent(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            at=utcnow(),
            actor="sla",
            kind=kind,
            data=data,
        )
    )


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == user_id))
