"""Customer care: the tenant's care rules (hub.core.care_rules) turned into messages, each at
most once per rule and subject however often and however many sweepers run.

A sweep looks, per rule, for subjects whose time has come within the rule's window (an order
delivered N days ago, a delayed parcel, a resolved complaint, a customer silent for months, a
birthday today) and claims each with a ``care_sends`` row unique on (tenant, rule, subject):
``INSERT … ON CONFLICT DO NOTHING`` in the same transaction that emits the rule's event. A
second sweep, or one running at the same time (it waits on the unique key, then finds it
taken), claims nothing and emits nothing. The event then reaches the customer through the
tenant's notification routes (``to = ["customer"]``).

Consent: a customer who opted out of a kind (the signed unsubscribe link in every care
message) is recorded as ``skipped`` when a rule fires, and a message already on its way is
skipped when it is sent (``suppressed``)."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import extract, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, care_links, events, tickets
from hub.core.adapters import Recipient
from hub.core.care_rules import KINDS, CareRule, CareRules
from hub.core.db import utcnow
from hub.core.errors import Conflict
from hub.core.models import (
    CareOptOut,
    CareSend,
    Customer,
    DeliveryException,
    Order,
    OrderHistory,
    OrderLine,
    Review,
    Shipment,
    Tenant,
    Ticket,
    TicketSurvey,
)

OUTCOMES = ("emitted", "skipped", "taken")


@dataclass(frozen=True)
class Candidate:
    """A subject a rule may fire for: its key, its customer, and what the event says."""

    subject: str
    customer_id: int
    payload: dict[str, Any] = field(default_factory=dict)
    order_id: int | None = None
    ticket_id: int | None = None
    skip: str | None = None  # why not to send, found while looking (already reviewed)


# --- the sweep ---------------------------------------------------------------------------------


def sweep(
    session: Session, tenant_id: int, rules: CareRules, now: datetime | None = None
) -> dict[str, int]:
    """Fire every enabled rule of one tenant for the subjects due at ``now``. Returns how many
    were emitted, skipped (opted out, nothing left to ask) and taken (claimed by another
    sweep meanwhile)."""
    now = now or utcnow()
    counts = dict.fromkeys(OUTCOMES, 0)
    for rule in rules.active():
        found = list(FINDERS[rule.kind](session, tenant_id, rule, now))
        if not found:
            continue
        done = _claimed(session, tenant_id, rule, [c.subject for c in found])
        seen: set[str] = set()
        for candidate in found:
            if candidate.subject in done or candidate.subject in seen:
                continue
            seen.add(candidate.subject)
            counts[_claim(session, tenant_id, rule, candidate, now)] += 1
    return counts


def _claimed(session: Session, tenant_id: int, rule: CareRule, subjects: list[str]) -> set[str]:
    """Subjects this rule already fired for: no need to try them again."""
    out: set[str] = set()
    for i in range(0, len(subjects), 500):
        out.update(
            session.scalars(
                select(CareSend.subject).where(
                    CareSend.tenant_id == tenant_id,
                    CareSend.rule == rule.name,
                    CareSend.subject.in_(subjects[i : i + 500]),
                )
            )
        )
    return out


def _claim(
    session: Session, tenant_id: int, rule: CareRule, candidate: Candidate, now: datetime
) -> str:
    """The unique row, then (only for the sweep that wrote it) the event, in one
    transaction: if either fails, neither is there."""
    customer = session.get(Customer, candidate.customer_id)
    reason = candidate.skip
    if reason is None and opted_out(session, tenant_id, candidate.customer_id, rule.kind):
        reason = "the customer opted out"
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    made = session.execute(
        insert(CareSend)
        .values(
            tenant_id=tenant_id,
            rule=rule.name,
            kind=rule.kind,
            subject=candidate.subject,
            customer_id=candidate.customer_id,
            order_id=candidate.order_id,
            ticket_id=candidate.ticket_id,
            status="skipped" if reason else "emitted",
            reason=reason,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "rule", "subject"])
        .returning(CareSend.id)
    ).first()
    if made is None:
        return "taken"
    if reason:
        return "skipped"
    events.emit(
        session,
        tenant_id,
        rule.kind,
        {
            "rule": rule.name,
            "customer": customer.email if customer else None,
            "customer_id": candidate.customer_id,
            **candidate.payload,
        },
    )
    return "emitted"


# --- who is due, per kind ----------------------------------------------------------------------

Finder = Callable[[Session, int, CareRule, datetime], Iterable[Candidate]]


def _review_requests(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Orders delivered ``days`` ago (the last time they became delivered), still delivered
    or closed; skipped when every line is reviewed already."""
    assert rule.delay is not None
    due = now - rule.delay
    delivered = (
        select(OrderHistory.order_id, func.max(OrderHistory.at).label("at"))
        .where(
            OrderHistory.tenant_id == tenant_id,
            OrderHistory.to_status == "delivered",
            OrderHistory.at > due - rule.window,  # ix_order_history_delivered
        )
        .group_by(OrderHistory.order_id)
        .subquery()
    )
    rows = session.execute(
        select(Order.id, Order.number, Order.customer_id, delivered.c.at)
        .join(delivered, delivered.c.order_id == Order.id)
        .where(
            Order.tenant_id == tenant_id,
            Order.customer_id.is_not(None),
            Order.status.in_(("delivered", "closed")),
            delivered.c.at <= due,
            delivered.c.at > due - rule.window,
        )
        .order_by(Order.id)
    ).all()
    reviewed = _reviewed_everything(session, [r.id for r in rows])
    for order_id, number, customer_id, at in rows:
        yield Candidate(
            f"order:{order_id}",
            customer_id,
            {"number": number, "delivered_at": at.isoformat()},
            order_id=order_id,
            skip="every line is reviewed already" if order_id in reviewed else None,
        )


def _reviewed_everything(session: Session, order_ids: list[int]) -> set[int]:
    if not order_ids:
        return set()
    lines = dict(
        session.execute(
            select(OrderLine.order_id, func.count())
            .where(OrderLine.order_id.in_(order_ids))
            .group_by(OrderLine.order_id)
        ).all()
    )
    done = dict(
        session.execute(
            select(Review.order_id, func.count())
            .where(Review.order_id.in_(order_ids))
            .group_by(Review.order_id)
        ).all()
    )
    return {o for o, n in lines.items() if done.get(o, 0) >= n}


def _delay_apologies(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Orders with an open delivery exception of kind delayed, opened ``hours`` ago: one
    apology per order, however many of its parcels are late."""
    assert rule.delay is not None
    due = now - rule.delay
    rows = session.execute(
        select(
            Order.id,
            Order.number,
            Order.customer_id,
            Shipment.tracking_number,
            Shipment.carrier,
            DeliveryException.id,
        )
        .join(Shipment, Shipment.id == DeliveryException.shipment_id)
        .join(Order, Order.id == Shipment.order_id)
        .where(
            DeliveryException.tenant_id == tenant_id,
            DeliveryException.kind == "delayed",
            DeliveryException.status == "open",
            DeliveryException.created_at <= due,
            DeliveryException.created_at > due - rule.window,
            Order.customer_id.is_not(None),
        )
        .order_by(DeliveryException.id)
    ).all()
    for order_id, number, customer_id, tracking_number, carrier, exception_id in rows:
        yield Candidate(
            f"order:{order_id}",
            customer_id,
            {
                "number": number,
                "tracking_number": tracking_number,
                "carrier": carrier,
                "exception": exception_id,
            },
            order_id=order_id,
        )


def _surveys(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Tickets of the rule's kinds resolved ``hours`` ago (and not reopened since): one
    survey per ticket, even if it is resolved again later."""
    assert rule.delay is not None
    due = now - rule.delay
    rows = session.execute(
        select(Ticket.id, Ticket.number, Ticket.customer_id, Order.number)
        .outerjoin(Order, Order.id == Ticket.order_id)
        .where(
            Ticket.tenant_id == tenant_id,
            Ticket.kind.in_(rule.ticket_kinds),
            Ticket.status.in_(("resolved", "closed")),
            Ticket.resolved_at <= due,
            Ticket.resolved_at > due - rule.window,
        )
        .order_by(Ticket.id)
    ).all()
    for ticket_id, ticket_number, customer_id, order_number in rows:
        yield Candidate(
            f"ticket:{ticket_id}",
            customer_id,
            {"ticket": ticket_number, "number": order_number},
            ticket_id=ticket_id,
        )


def _win_backs(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Customers whose last order is ``months`` old: once per silence (a new order and a new
    silence is a new subject)."""
    due = add_months(now, -rule.months)
    last = (
        select(
            Order.customer_id,
            func.max(Order.created_at).label("at"),
            func.max(Order.id).label("last_id"),
        )
        .where(Order.tenant_id == tenant_id, Order.customer_id.is_not(None))
        .group_by(Order.customer_id)
        .subquery()
    )
    rows = session.execute(
        select(last.c.customer_id, last.c.at, last.c.last_id, Order.number)
        .join(Order, Order.id == last.c.last_id)
        .where(last.c.at <= due, last.c.at > due - rule.window)
        .order_by(last.c.customer_id)
    ).all()
    for customer_id, at, last_id, number in rows:
        yield Candidate(
            f"customer:{customer_id}:after:{last_id}",
            customer_id,
            {"last_order": number, "last_order_at": at.isoformat(), "months": rule.months},
        )


def _days(now: datetime, window: timedelta) -> list[date]:
    """The UTC days a greeting may still go out on: today and the window's days before."""
    today = now.date()
    return [today - timedelta(days=i) for i in range(max(window.days, 1))]


def _matches(day: date, anniversary: date) -> bool:
    """``day`` is the yearly return of ``anniversary``: 29 February counts on the 28th in
    years without one."""
    if (anniversary.month, anniversary.day) == (day.month, day.day):
        return True
    return (
        (anniversary.month, anniversary.day) == (2, 29)
        and (day.month, day.day) == (2, 28)
        and not calendar.isleap(day.year)
    )


def _greetings(
    session: Session,
    tenant_id: int,
    days: list[date],
    column: Any,
    born: Callable[[Any], date],
) -> Iterable[tuple[int, date, date]]:
    """(customer, the day it fell on, the original date) for each customer whose date in
    ``column`` comes back on one of ``days``. The month and day are matched in SQL, the
    rest (29 February, the year) here."""
    wanted = {(d.month, d.day) for d in days}
    if (2, 28) in wanted:
        wanted.add((2, 29))
    day_of = column
    if session.get_bind().dialect.name == "postgresql" and column is Customer.created_at:
        day_of = func.timezone("UTC", column)  # the UTC day, whatever the session's zone
    rows = session.execute(
        select(Customer.id, column)
        .where(
            Customer.tenant_id == tenant_id,
            column.is_not(None),
            or_(
                *(
                    (extract("month", day_of) == m) & (extract("day", day_of) == d)
                    for m, d in sorted(wanted)
                )
            ),
        )
        .order_by(Customer.id)
    ).all()
    for customer_id, value in rows:
        original = born(value)
        for day in days:
            if _matches(day, original):
                yield customer_id, day, original
                break


def _birthdays(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Customers whose birthday (month and day) is today, once a year."""
    for customer_id, day, _ in _greetings(
        session, tenant_id, _days(now, rule.window), Customer.birthday, lambda v: v
    ):
        yield Candidate(f"customer:{customer_id}:{day.year}", customer_id, {"day": day.isoformat()})


def _anniversaries(
    session: Session, tenant_id: int, rule: CareRule, now: datetime
) -> Iterable[Candidate]:
    """Customers who became customers on this day a whole number of years ago (their record's
    first day, UTC), once a year."""
    for customer_id, day, since in _greetings(
        session, tenant_id, _days(now, rule.window), Customer.created_at, lambda v: v.date()
    ):
        years = day.year - since.year
        if years >= 1:
            yield Candidate(
                f"customer:{customer_id}:{day.year}",
                customer_id,
                {"day": day.isoformat(), "years": years, "since": since.isoformat()},
            )


FINDERS: dict[str, Finder] = {
    events.REVIEW_REQUEST: _review_requests,
    events.DELAY_APOLOGY: _delay_apologies,
    events.SATISFACTION_SURVEY: _surveys,
    events.WIN_BACK: _win_backs,
    events.BIRTHDAY_GREETING: _birthdays,
    events.ANNIVERSARY_GREETING: _anniversaries,
}


def add_months(when: datetime, months: int) -> datetime:
    """The same moment ``months`` calendar months away; a day the month lacks becomes its
    last (31 March minus one month is 28 or 29 February)."""
    index = when.year * 12 + when.month - 1 + months
    year, month = divmod(index, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


# --- consent -----------------------------------------------------------------------------------


def opted_out(session: Session, tenant_id: int, customer_id: int, kind: str) -> bool:
    return (
        session.scalar(
            select(CareOptOut.id).where(
                CareOptOut.tenant_id == tenant_id,
                CareOptOut.customer_id == customer_id,
                CareOptOut.kind == kind,
            )
        )
        is not None
    )


def suppressed(session: Session, tenant_id: int, event: str, payload: dict[str, Any]) -> str | None:
    """Why a message of a care event must not go out now (the customer opted out of its kind
    after the rule fired), or None. Checked by the sender before every attempt."""
    if event not in KINDS:
        return None
    customer_id = payload.get("customer_id")
    if isinstance(customer_id, int) and opted_out(session, tenant_id, customer_id, event):
        return f"the customer opted out of {event} messages"
    return None


def _unsubscribe_customer(session: Session, data: dict[str, Any]) -> tuple[Customer, str]:
    customer = session.scalar(
        select(Customer).where(Customer.tenant_id == data["t"], Customer.id == data.get("c"))
    )
    kind = data.get("k")
    if customer is None or kind not in KINDS:
        raise care_links.LinkInvalid
    return customer, kind


def subscription(session: Session, secret_key: str, token: str) -> dict[str, Any]:
    """What an unsubscribe link is about, for the page it opens (no e-mail address: the link
    may have been forwarded)."""
    data = care_links.read(secret_key, "unsubscribe", token)
    customer, kind = _unsubscribe_customer(session, data)
    return {
        "tenant": _tenant_name(session, data["t"]),
        "kind": kind,
        "subscribed": not opted_out(session, data["t"], customer.id, kind),
    }


def unsubscribe(session: Session, secret_key: str, token: str, source: str) -> dict[str, Any]:
    """Opt the link's customer out of its kind; doing it again changes nothing."""
    data = care_links.read(secret_key, "unsubscribe", token)
    customer, kind = _unsubscribe_customer(session, data)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    made = session.execute(
        insert(CareOptOut)
        .values(
            tenant_id=data["t"],
            customer_id=customer.id,
            kind=kind,
            source=source,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "customer_id", "kind"])
        .returning(CareOptOut.id)
    ).first()
    if made is not None:
        audit.record(
            session,
            data["t"],
            f"customer:{customer.id}",
            "care.opt_out",
            "customer",
            customer.id,
            None,
            {"kind": kind, "source": source},
        )
    return {"tenant": _tenant_name(session, data["t"]), "kind": kind, "subscribed": False}


def _tenant_name(session: Session, tenant_id: int) -> str | None:
    """The tenant's slug; the web layer shows its configured name."""
    return session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))


# --- the satisfaction survey -------------------------------------------------------------------


def _survey_ticket(session: Session, secret_key: str, token: str) -> Ticket:
    data = care_links.read(secret_key, "survey", token)
    ticket = session.scalar(
        select(Ticket).where(Ticket.tenant_id == data["t"], Ticket.id == data.get("k"))
    )
    if ticket is None:
        raise care_links.LinkInvalid
    return ticket


def survey(session: Session, secret_key: str, token: str) -> dict[str, Any]:
    ticket = _survey_ticket(session, secret_key, token)
    answer = session.scalar(select(TicketSurvey).where(TicketSurvey.ticket_id == ticket.id))
    return {
        "tenant": _tenant_name(session, ticket.tenant_id),
        "ticket": ticket.number,
        "subject": ticket.subject,
        "answered": answer is not None,
        "scale": {"worst": 1, "best": 5},
    }


def answer_survey(
    session: Session, secret_key: str, token: str, rating: int, comment: str | None
) -> dict[str, Any]:
    """Record the customer's answer against the ticket, once: a second answer (or a second
    click racing the first) is a 409 and changes nothing."""
    ticket = _survey_ticket(session, secret_key, token)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    made = session.execute(
        insert(TicketSurvey)
        .values(
            tenant_id=ticket.tenant_id,
            ticket_id=ticket.id,
            rating=rating,
            comment=comment or None,
            answered_at=now,
        )
        .on_conflict_do_nothing(index_elements=["ticket_id"])
        .returning(TicketSurvey.id)
    ).first()
    if made is None:
        raise Conflict(f"the survey of ticket {ticket.number} is answered already")
    actor = f"customer:{ticket.customer_id}"
    tickets.note(session, ticket, actor, "survey", {"rating": rating, "comment": bool(comment)})
    audit.record(
        session,
        ticket.tenant_id,
        actor,
        "ticket.survey",
        "ticket",
        ticket.number,
        None,
        {"rating": rating},
    )
    return {
        "ticket": ticket.number,
        "rating": rating,
        "comment": comment or None,
        "answered_at": now.isoformat(),
    }


def survey_view(session: Session, survey_row: TicketSurvey) -> dict[str, Any]:
    number = session.scalar(select(Ticket.number).where(Ticket.id == survey_row.ticket_id))
    return {
        "ticket": number,
        "rating": survey_row.rating,
        "comment": survey_row.comment,
        "answered_at": survey_row.answered_at.isoformat(),
    }


# --- what a message may link to ----------------------------------------------------------------


def message_links(
    session: Session,
    public_url: str | None,
    secret_key: str,
    tenant_id: int,
    event: str,
    payload: dict[str, Any],
    recipient: Recipient | None,
) -> dict[str, str | None]:
    """Signed links for a care message to its customer: ``unsubscribe_url`` always,
    ``review_url`` in a review request, ``survey_url`` in a survey. None for a copy to anyone
    else (a link is the customer's credential) and for other events."""
    if event not in KINDS:
        return {}
    links: dict[str, str | None] = {"unsubscribe_url": None, "review_url": None, "survey_url": None}
    customer = session.scalar(
        select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.id == payload.get("customer_id")
        )
    )
    if customer is None or recipient is None or not _is_customer(customer, recipient):
        return links
    links["unsubscribe_url"] = care_links.url(
        public_url, secret_key, "unsubscribe", {"t": tenant_id, "c": customer.id, "k": event}
    )
    if event == events.REVIEW_REQUEST:
        order_id = session.scalar(
            select(Order.id).where(
                Order.tenant_id == tenant_id, Order.number == str(payload.get("number"))
            )
        )
        if order_id is not None:
            links["review_url"] = care_links.url(
                public_url, secret_key, "review", {"t": tenant_id, "o": order_id, "c": customer.id}
            )
    if event == events.SATISFACTION_SURVEY:
        ticket_id = session.scalar(
            select(Ticket.id).where(
                Ticket.tenant_id == tenant_id, Ticket.number == str(payload.get("ticket"))
            )
        )
        if ticket_id is not None:
            links["survey_url"] = care_links.url(
                public_url, secret_key, "survey", {"t": tenant_id, "k": ticket_id}
            )
    return links


def _is_customer(customer: Customer, recipient: Recipient) -> bool:
    address = recipient.address.strip().lower()
    return bool(address) and address in {
        (customer.email or "").lower(),
        (customer.phone or "").strip().lower(),
    }


# --- what staff see ----------------------------------------------------------------------------


def send_view(send: CareSend) -> dict[str, Any]:
    return {
        "id": send.id,
        "rule": send.rule,
        "kind": send.kind,
        "subject": send.subject,
        "customer_id": send.customer_id,
        "status": send.status,
        "reason": send.reason,
        "created_at": send.created_at.isoformat(),
    }
