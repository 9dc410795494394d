"""Service tickets: what a customer asked, who handles it, and every step on the way.

A ticket moves open → assigned → waiting_customer → resolved → closed. Waiting on the customer
stops the resolution clock (hub.core.ticket_sla); a customer's reply starts it again. A resolved
or closed ticket may be reopened within the tenant's ``reopen_days``; after that the customer
opens a new one, so a months-old case never comes back with its old deadlines. Every change is
written to the ticket's timeline and to the audit log, and the ones other people act on
(created, assigned, status changed) are domain events for notifiers and plugins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from hub.core import (
    attachments,
    audit,
    events,
    orders,
    tenancy,
    ticket_assignment,
    ticket_sla,
)
from hub.core.db import utcnow
from hub.core.errors import IllegalTransition, Invalid, NotFound
from hub.core.models import (
    Customer,
    Order,
    OrderLine,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketLine,
    TicketMessage,
    User,
)
from hub.core.normalised import CustomerInfo
from hub.core.ticket_rules import KINDS, PRIORITIES, TicketRules

STATUSES = ("open", "assigned", "waiting_customer", "resolved", "closed")
ACTIVE = ("open", "assigned", "waiting_customer")
# (from, to) → the action's name in the timeline; anything else is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("assigned", "waiting_customer"): "wait",
    ("waiting_customer", "assigned"): "resume",
    ("assigned", "resolved"): "resolve",
    ("waiting_customer", "resolved"): "resolve",
    ("resolved", "closed"): "close",
    ("resolved", "open"): "reopen",
    ("closed", "open"): "reopen",
}
NUMBER_PREFIX = "T-"


@dataclass(frozen=True)
class NewTicket:
    kind: str
    subject: str
    body: str
    customer_email: str
    customer_name: str | None = None
    order_number: str | None = None
    lines: tuple[tuple[str, int], ...] = ()  # (sku, quantity)
    priority: str = "normal"
    category: str | None = None
    source: str = "api"  # api | portal | email


def create(
    session: Session, tenant_id: int, rules: TicketRules, new: NewTicket, actor: str
) -> Ticket:
    """The ticket, its first message (the customer's words) and, unless the tenant assigns
    by hand, its agent. A complaint always gets one at once."""
    _check_choice("kind", new.kind, KINDS)
    _check_choice("priority", new.priority, PRIORITIES)
    category = _category(rules, new.category)
    order = _order(session, tenant_id, new.order_number) if new.order_number else None
    if new.lines and order is None:
        raise Invalid(
            "lines name an order's lines: give the order too",
            [{"field": "lines", "problem": "needs order"}],
        )
    customer = _customer(session, tenant_id, new.customer_email, new.customer_name)
    now = utcnow()
    ticket = Ticket(
        tenant_id=tenant_id,
        number=f"{NUMBER_PREFIX}{tenancy.next_count(session, tenant_id, 'ticket'):06d}",
        kind=new.kind,
        subject=new.subject,
        status="open",
        priority=new.priority,
        category=category,
        source=new.source,
        order_id=order.id if order else None,
        customer_id=customer.id,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    ticket_sla.start(ticket, rules, now)
    session.add(ticket)
    session.flush()
    for order_line, quantity in _lines(session, order, new.lines):
        session.add(
            TicketLine(
                tenant_id=tenant_id,
                ticket_id=ticket.id,
                order_line_id=order_line.id,
                sku=order_line.sku,
                quantity=quantity,
            )
        )
    session.add(
        TicketMessage(
            tenant_id=tenant_id,
            ticket_id=ticket.id,
            author_kind="customer",
            author=customer.email or "",
            visibility="public",
            body=new.body,
            created_at=now,
        )
    )
    note(
        session,
        ticket,
        actor,
        "created",
        {"kind": new.kind, "priority": new.priority, "category": category, "source": new.source},
    )
    audit.record(
        session,
        tenant_id,
        actor,
        "ticket.create",
        "ticket",
        ticket.number,
        None,
        {
            "kind": new.kind,
            "subject": new.subject,
            "order": new.order_number,
            "customer": customer.email,
        },
    )
    events.emit(
        session,
        tenant_id,
        events.TICKET_CREATED,
        {
            "number": ticket.number,
            "kind": ticket.kind,
            "priority": ticket.priority,
            "customer": customer.email,
        },
    )
    if rules.assignment != "manual" or ticket.kind == "complaint":
        ticket_assignment.assign_automatically(session, ticket, rules, actor)
    return ticket


def get(session: Session, tenant_id: int, number: str, *, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.number == number)
    if lock:
        query = query.with_for_update()
    ticket = session.scalar(query)
    if ticket is None:
        raise NotFound(f"ticket {number!r} not found")
    return ticket


def change(
    session: Session,
    ticket: Ticket,
    rules: TicketRules,
    actor: str,
    *,
    status: str | None = None,
    assignee: str | None = None,
    priority: str | None = None,
    category: str | None = None,
) -> Ticket:
    """One PATCH: the fields given, each checked before any is applied."""
    if assignee is not None:
        agent = ticket_assignment.agent(session, ticket.tenant_id, assignee)
        if ticket.status not in ACTIVE:
            raise IllegalTransition(
                f"ticket {ticket.number} is {ticket.status}: reopen it before assigning it"
            )
    if status is not None:
        _check_choice("status", status, STATUSES)
    if priority is not None:
        _check_choice("priority", priority, PRIORITIES)
    if category is not None:
        category = _category(rules, category)
    now = utcnow()
    if assignee is not None:
        ticket_assignment.assign(session, ticket, agent, actor, now)
    if (priority is not None and priority != ticket.priority) or (
        category is not None and category != ticket.category
    ):
        before = {"priority": ticket.priority, "category": ticket.category}
        ticket.priority = priority or ticket.priority
        ticket.category = category or ticket.category
        ticket_sla.retarget(ticket, rules)
        note(
            session,
            ticket,
            actor,
            "classified",
            {"from": before, "to": {"priority": ticket.priority, "category": ticket.category}},
        )
    if status is not None and status != ticket.status:
        move(session, ticket, status, rules, actor, now)
    ticket.updated_at = now
    return ticket


def move(
    session: Session,
    ticket: Ticket,
    status: str,
    rules: TicketRules,
    actor: str,
    now: datetime | None = None,
) -> None:
    """Apply one transition of TRANSITIONS, keeping the SLA clock and the dates in step."""
    now = now or utcnow()
    action = TRANSITIONS.get((ticket.status, status))
    if action is None:
        raise IllegalTransition(_refusal(ticket, status))
    if action == "reopen":
        since = ticket.resolved_at or ticket.closed_at or now
        if now - since > timedelta(days=rules.reopen_days):
            raise IllegalTransition(
                f"ticket {ticket.number} was resolved more than {rules.reopen_days} days ago: "
                "open a new ticket instead"
            )
        ticket.resolved_at = ticket.closed_at = None
        # Back to its agent if one is still there, else to the queue.
        status = "assigned" if ticket.assignee_id is not None else "open"
    if ticket.status == "waiting_customer":
        ticket_sla.resume(ticket, rules, now)
    if status == "waiting_customer":
        ticket.paused_at = now
    if status == "resolved":
        ticket.resolved_at = now
    if status == "closed":
        ticket.closed_at = now
    before = ticket.status
    ticket.status = status
    ticket.updated_at = now
    note(session, ticket, actor, "status", {"action": action, "from": before, "to": status})
    audit.record(
        session,
        ticket.tenant_id,
        actor,
        f"ticket.{action}",
        "ticket",
        ticket.number,
        {"status": before},
        {"status": status},
    )
    events.emit(
        session,
        ticket.tenant_id,
        events.TICKET_STATUS_CHANGED,
        {"number": ticket.number, "from": before, "to": status},
    )


def _refusal(ticket: Ticket, status: str) -> str:
    if status == "assigned" and ticket.status == "open":
        return f"ticket {ticket.number} is open: give it an assignee rather than a status"
    allowed = sorted({to for (frm, to) in TRANSITIONS if frm == ticket.status})
    then = f"it can go to {', '.join(allowed)}" if allowed else "it cannot change status"
    return f"ticket {ticket.number} is {ticket.status}: not {status}; {then}"


def add_message(
    session: Session,
    ticket: Ticket,
    rules: TicketRules,
    *,
    author_kind: str,
    author: str,
    body: str,
    internal: bool = False,
    actor: str,
) -> TicketMessage:
    """A reply or a note. An agent's first public reply stops the first-reply clock (and
    takes an unassigned ticket); a customer's reply while the ticket waits on them, or after
    it was resolved (within the reopen window), puts it back in the agent's hands."""
    if internal and author_kind != "agent":
        raise Invalid(
            "only staff write internal notes",
            [{"field": "internal", "problem": "only staff write internal notes"}],
        )
    if ticket.status == "closed" and author_kind == "customer":
        raise IllegalTransition(f"ticket {ticket.number} is closed: open a new ticket")
    now = utcnow()
    message = TicketMessage(
        tenant_id=ticket.tenant_id,
        ticket_id=ticket.id,
        author_kind=author_kind,
        author=author,
        visibility="internal" if internal else "public",
        body=body,
        created_at=now,
    )
    session.add(message)
    session.flush()
    note(
        session,
        ticket,
        actor,
        "note" if internal else "message",
        {"message": message.id, "author_kind": author_kind},
    )
    if author_kind == "agent" and not internal:
        if ticket.assignee_id is None and ticket.status == "open":
            ticket_assignment.assign(
                session,
                ticket,
                ticket_assignment.agent(session, ticket.tenant_id, author),
                actor,
                now,
            )
        if ticket.first_replied_at is None:
            ticket.first_replied_at = now
        order = (
            session.scalar(select(Order.number).where(Order.id == ticket.order_id))
            if ticket.order_id
            else None
        )
        events.emit(
            session,
            ticket.tenant_id,
            events.TICKET_REPLIED,
            {
                "number": ticket.number,
                "subject": ticket.subject,
                "body": body,
                "agent": author,
                "customer_id": ticket.customer_id,
                "order_number": order,
            },
        )
    if author_kind == "customer":
        if ticket.status == "waiting_customer":
            move(session, ticket, "assigned", rules, actor, now)
        elif ticket.status == "resolved":
            move(session, ticket, "open", rules, actor, now)
    ticket.updated_at = now
    return message


def attach(
    session: Session, ticket: Ticket, data_dir: Path, filename: str, data: bytes, actor: str
) -> TicketAttachment:
    """Keep a file with the ticket (hub.core.attachments says which files and where)."""
    content_type = attachments.kind_of(data)
    count = session.scalar(select(func.count()).where(TicketAttachment.ticket_id == ticket.id)) or 0
    if count >= attachments.MAX_PER_TICKET:
        raise IllegalTransition(
            f"ticket {ticket.number} has {attachments.MAX_PER_TICKET} files already"
        )
    row = TicketAttachment(
        ticket_id=ticket.id,
        **attachments.kept(data_dir, ticket.tenant_id, filename, data, content_type, actor),
    )
    session.add(row)
    session.flush()
    note(session, ticket, actor, "attachment", {"id": row.id, "filename": row.filename})
    audit.record(
        session,
        ticket.tenant_id,
        actor,
        "ticket.attach",
        "ticket",
        ticket.number,
        None,
        {"attachment": row.id, "filename": row.filename, "size": row.size, "sha256": row.sha256},
    )
    ticket.updated_at = utcnow()
    return row


def attachment(session: Session, ticket: Ticket, attachment_id: int) -> TicketAttachment:
    row = session.scalar(
        select(TicketAttachment).where(
            TicketAttachment.id == attachment_id, TicketAttachment.ticket_id == ticket.id
        )
    )
    if row is None:
        raise NotFound(f"ticket {ticket.number} has no attachment {attachment_id}")
    return row


def attachment_view(row: TicketAttachment) -> dict[str, Any]:
    return {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
        "created_at": row.created_at.isoformat(),
    }


def note(session: Session, ticket: Ticket, actor: str, kind: str, data: dict[str, Any]) -> None:
    """One line of the ticket's timeline."""
    session.add(
        TicketEvent(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            at=utcnow(),
            actor=actor,
            kind=kind,
            data=data,
        )
    )


# --- reading ---------------------------------------------------------------------------------


def view(session: Session, ticket: Ticket, *, full: bool = False) -> dict[str, Any]:
    customer = session.get(Customer, ticket.customer_id)
    names = _usernames(session, {ticket.assignee_id, ticket.escalated_to_id})
    order_number = (
        session.scalar(select(Order.number).where(Order.id == ticket.order_id))
        if ticket.order_id
        else None
    )
    out: dict[str, Any] = {
        "id": ticket.number,
        "number": ticket.number,
        "kind": ticket.kind,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "source": ticket.source,
        "order": order_number,
        "customer": {"email": customer.email, "name": customer.name} if customer else None,
        "assignee": names.get(ticket.assignee_id),
        "escalated_to": names.get(ticket.escalated_to_id),
        "created_by": ticket.created_by,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "first_replied_at": _iso(ticket.first_replied_at),
        "resolved_at": _iso(ticket.resolved_at),
        "closed_at": _iso(ticket.closed_at),
        "sla": ticket_sla.view(ticket),
    }
    if full:
        out["lines"] = [
            {"sku": line.sku, "quantity": line.quantity}
            for line in session.scalars(
                select(TicketLine).where(TicketLine.ticket_id == ticket.id).order_by(TicketLine.id)
            )
        ]
        out["messages"] = [
            {
                "id": m.id,
                "author_kind": m.author_kind,
                "author": m.author,
                "visibility": m.visibility,
                "body": m.body,
                "created_at": m.created_at.isoformat(),
            }
            for m in session.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket.id)
                .order_by(TicketMessage.id)
            )
        ]
        out["attachments"] = [
            attachment_view(a)
            for a in session.scalars(
                select(TicketAttachment)
                .where(TicketAttachment.ticket_id == ticket.id)
                .order_by(TicketAttachment.id)
            )
        ]
        out["timeline"] = [
            {"at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "data": e.data}
            for e in session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
        ]
    return out


def search(
    session: Session,
    tenant_id: int,
    *,
    status: list[str] | None = None,
    assignee: str | None = None,
    kind: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    order: str | None = None,
    customer: str | None = None,
    escalated: bool | None = None,
    breached: bool | None = None,
) -> Select[tuple[Ticket]]:
    """The tickets matching every filter given; ``assignee=none`` finds the unassigned ones
    (the queue)."""
    query = select(Ticket).where(Ticket.tenant_id == tenant_id)
    if status:
        query = query.where(Ticket.status.in_(status))
    if assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif assignee:
        user = ticket_assignment.find_agent(session, tenant_id, assignee)
        query = query.where(Ticket.assignee_id == (user.id if user else -1))
    if kind:
        query = query.where(Ticket.kind == kind)
    if category:
        query = query.where(Ticket.category == category)
    if priority:
        query = query.where(Ticket.priority == priority)
    if order:
        query = query.join(Order, Order.id == Ticket.order_id).where(Order.number == order)
    if customer:
        query = query.join(Customer, Customer.id == Ticket.customer_id).where(
            func.lower(Customer.email) == customer.strip().lower()
        )
    if escalated is not None:
        query = query.where(
            Ticket.escalated_to_id.is_not(None) if escalated else Ticket.escalated_to_id.is_(None)
        )
    if breached is not None:
        either = Ticket.first_reply_breached_at.is_not(None) | Ticket.resolution_breached_at.is_not(
            None
        )
        query = query.where(either if breached else ~either)
    return query


# --- helpers ---------------------------------------------------------------------------------


def _check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problem = f"must be one of: {', '.join(allowed)}"
        raise Invalid(f"{field} {problem}", [{"field": field, "problem": problem}])


def _category(rules: TicketRules, category: str | None) -> str | None:
    if category is not None and rules.categories and category not in rules.categories:
        problem = f"must be one of: {', '.join(rules.categories)}"
        raise Invalid(f"category {problem}", [{"field": "category", "problem": problem}])
    return category


def _order(session: Session, tenant_id: int, number: str) -> Order:
    order = session.scalar(
        select(Order).where(Order.tenant_id == tenant_id, Order.number == number)
    )
    if order is None:
        raise Invalid(
            f"order {number!r} not found", [{"field": "order", "problem": f"no order {number!r}"}]
        )
    return order


def _lines(
    session: Session, order: Order | None, wanted: tuple[tuple[str, int], ...]
) -> list[tuple[OrderLine, int]]:
    if order is None or not wanted:
        return []
    by_sku: dict[str, OrderLine] = {}
    for line in session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)):
        by_sku.setdefault(line.sku, line)
    out = []
    for i, (sku, quantity) in enumerate(wanted):
        line = by_sku.get(sku)
        where = f"lines[{i}]"
        if line is None:
            raise Invalid(
                f"{where}: order {order.number} has no line of SKU {sku!r}",
                [{"field": f"{where}.sku", "problem": f"not on order {order.number}"}],
            )
        if quantity > line.quantity:
            raise Invalid(
                f"{where}: order {order.number} has {line.quantity} of {sku}, not {quantity}",
                [{"field": f"{where}.quantity", "problem": f"at most {line.quantity}"}],
            )
        out.append((line, quantity))
    return out


def _customer(session: Session, tenant_id: int, email: str, name: str | None) -> Any:
    """The tenant's customer with this e-mail, made on first contact: the same upsert orders
    use, so a ticket and an order arriving at once for a new customer make one row."""
    return orders.upsert_customer(session, tenant_id, CustomerInfo(email=email, name=name))


def customer_email(session: Session, ticket: Ticket) -> str:
    return session.scalar(select(Customer.email).where(Customer.id == ticket.customer_id)) or ""


def _usernames(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
