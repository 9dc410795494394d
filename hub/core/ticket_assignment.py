"""Who gets a ticket. Agents are the tenant's active users of the ``service`` role who are
marked available; the tenant picks the strategy:

- ``round_robin``: the agent given a ticket longest ago (never first), in turn;
- ``least_loaded``: the agent with the fewest active tickets, ties by turn;
- ``skills``: among agents whose skills name the ticket's category, the least loaded; when
  nobody has that skill (or the ticket has no category), among all agents;
- ``manual``: nobody is chosen automatically, except for complaints, which go to the least
  loaded agent the moment they arrive.

With nobody available the ticket waits unassigned ("open"); the worker's sweep hands out the
waiting ones, oldest first, as agents become available. The chosen agent's row is locked
(PostgreSQL) before the choice is written, so two tickets created at once never both read the
same "longest ago" and skew the turn.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.core import audit, events
from hub.core.db import utcnow
from hub.core.errors import Invalid
from hub.core.models import Ticket, TicketEvent, User
from hub.core.models.tenancy import username_key
from hub.core.ticket_rules import TicketRules

AGENT_ROLE = "service"
_ACTIVE = ("open", "assigned", "waiting_customer")


def find_agent(session: Session, tenant_id: int, username: str) -> User | None:
    return session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.username_key == username_key(username))
    )


def agent(session: Session, tenant_id: int, username: str) -> User:
    """A user who may hold tickets: active, of a staff role that handles tickets."""
    user = find_agent(session, tenant_id, username)
    if user is None or not user.active:
        raise Invalid(
            f"no active user {username!r}",
            [{"field": "assignee", "problem": f"no active user {username!r}"}],
        )
    if user.role not in (AGENT_ROLE, "operator", "admin"):
        raise Invalid(
            f"{user.username} ({user.role}) does not handle tickets",
            [{"field": "assignee", "problem": "must be a service agent, operator or admin"}],
        )
    return user


def choose(
    session: Session, ticket: Ticket, rules: TicketRules, *, exclude: int | None = None
) -> User | None:
    strategy = rules.assignment
    if strategy == "manual":
        strategy = "least_loaded"  # only complaints get here
    query = select(User).where(
        User.tenant_id == ticket.tenant_id,
        User.role == AGENT_ROLE,
        User.active.is_(True),
        User.available.is_(True),
    )
    if exclude is not None:
        query = query.where(User.id != exclude)
    agents = list(session.scalars(query.order_by(User.id)))
    if strategy == "skills" and ticket.category:
        skilled = [a for a in agents if ticket.category in (a.skills or [])]
        agents = skilled or agents
    if not agents:
        return None

    def turn(a: User) -> tuple[bool, datetime | None, int]:
        return (a.last_assigned_at is not None, a.last_assigned_at, a.id)

    if strategy == "round_robin":
        return min(agents, key=turn)
    load = dict(
        session.execute(
            select(Ticket.assignee_id, func.count())
            .where(
                Ticket.tenant_id == ticket.tenant_id,
                Ticket.status.in_(_ACTIVE),
                Ticket.assignee_id.in_([a.id for a in agents]),
            )
            .group_by(Ticket.assignee_id)
        ).all()
    )
    return min(agents, key=lambda a: (load.get(a.id, 0), *turn(a)))


def assign_automatically(
    session: Session,
    ticket: Ticket,
    rules: TicketRules,
    actor: str,
    *,
    exclude: int | None = None,
) -> User | None:
    if session.get_bind().dialect.name == "postgresql":
        # One chooser per tenant at a time: the rest wait here, then read the new turn.
        session.execute(
            select(User.id)
            .where(User.tenant_id == ticket.tenant_id, User.role == AGENT_ROLE)
            .order_by(User.id)
            .with_for_update()
        )
    chosen = choose(session, ticket, rules, exclude=exclude)
    if chosen is not None:
        assign(session, ticket, chosen, actor, utcnow(), strategy=rules.assignment)
    return chosen


def assign(
    session: Session,
    ticket: Ticket,
    user: User,
    actor: str,
    now: datetime,
    *,
    strategy: str | None = None,
) -> None:
    before = ticket.assignee_id
    if before == user.id:
        return
    ticket.assignee_id = user.id
    user.last_assigned_at = now
    if ticket.status == "open":
        ticket.status = "assigned"
    ticket.updated_at = now
    session.add(
        TicketEvent(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            at=now,
            actor=actor,
            kind="assigned",
            data={"to": user.username, "strategy": strategy},
        )
    )
    audit.record(
        session,
        ticket.tenant_id,
        actor,
        "ticket.assign",
        "ticket",
        ticket.number,
        {"assignee_id": before},
        {"assignee": user.username},
    )
    events.emit(
        session,
        ticket.tenant_id,
        events.TICKET_ASSIGNED,
        {
            "number": ticket.number,
            "assignee": user.username,
            "assignee_email": user.email,
            "priority": ticket.priority,
        },
    )


def hand_over(session: Session, user: User, rules: TicketRules, actor: str) -> list[str]:
    """An agent went unavailable (or was deactivated): each of their active tickets goes to
    another agent by the tenant's strategy, or back to the queue when nobody is free."""
    moved = []
    for ticket in session.scalars(
        select(Ticket)
        .where(
            Ticket.tenant_id == user.tenant_id,
            Ticket.assignee_id == user.id,
            Ticket.status.in_(_ACTIVE),
        )
        .order_by(Ticket.id)
    ):
        if assign_automatically(session, ticket, rules, actor, exclude=user.id) is None:
            ticket.assignee_id = None
            if ticket.status == "assigned":
                ticket.status = "open"
            session.add(
                TicketEvent(
                    tenant_id=ticket.tenant_id,
                    ticket_id=ticket.id,
                    at=utcnow(),
                    actor=actor,
                    kind="unassigned",
                    data={"from": user.username, "why": "nobody available"},
                )
            )
        moved.append(ticket.number)
    return moved


def assign_waiting(session: Session, tenant_id: int, rules: TicketRules, actor: str) -> int:
    """Hand out the unassigned active tickets, oldest first, while agents are available."""
    waiting = select(Ticket).where(
        Ticket.tenant_id == tenant_id, Ticket.status == "open", Ticket.assignee_id.is_(None)
    )
    if rules.assignment == "manual":
        waiting = waiting.where(Ticket.kind == "complaint")
    done = 0
    for ticket in session.scalars(waiting.order_by(Ticket.id).limit(500)):
        if assign_automatically(session, ticket, rules, actor) is None:
            break
        done += 1
    return done
