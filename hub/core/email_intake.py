"""Tickets by e-mail: a customer writes to the shop's support address, and the conversation
goes on by e-mail until it is solved.

In: the shop points its mail provider's inbound route at ``POST /inbound/email/<tenant>``
(Mailgun's ``forward()`` of a route: a form post of the parsed message, signed). The hub
checks the signature (HMAC-SHA256 of timestamp + token with the tenant's signing key, and a
timestamp no older than ``max_age_seconds``), then either adds the e-mail to the ticket its
subject names (``T-000123``, as the hub's own mails about it
have it), when the sender is that ticket's customer — or opens a new
ticket (``[tickets.email] kind``, default a question) for the sender, linked to an order
whose number the subject names when it is the sender's. What the customer quoted of earlier
mails is left out (the provider's ``stripped-text``); attachments are kept as the ticket's
files when they are of a kind the hub keeps (hub.core.attachments), and named in the ticket's
timeline when not. The e-mail's Message-ID is kept with the message: the provider posting the same
e-mail again (it retries until it gets a 200) adds nothing.

Out: an agent's public reply is the event ``ticket_replied``, routed like any other — to
the ``requester`` by e-mail — with ``[T-000123]`` in its subject, so the customer's answer comes
back to the same ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import tickets
from hub.core.errors import HubError, Invalid, NotFound
from hub.core.models import Customer, Order, Ticket, TicketMessage
from hub.core.ticket_rules import EmailIntake, TicketRules

TICKET_TAG = re.compile(r"\b(T-\d{6,})\b")
SUBJECT_LENGTH = 200
BODY_LENGTH = 20_000


class BadSignature(HubError):
    """The post is not from the tenant's mail provider, or is too old to trust."""

    status = 401
    code = "bad_signature"


@dataclass(frozen=True)
class InboundEmail:
    sender: str  # the address, lower case
    name: str | None
    subject: str
    text: str
    message_id: str | None
    attachments: list[tuple[str, bytes]] = field(default_factory=list)


def verify(intake: EmailIntake, form: Mapping[str, str], now: datetime) -> None:
    """Mailgun's webhook signature: HMAC-SHA256 over timestamp + token, hex."""
    timestamp, token, signature = (form.get(k, "") for k in ("timestamp", "token", "signature"))
    expected = hmac.new(
        intake.signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    if not (timestamp and token and hmac.compare_digest(expected, signature.lower())):
        raise BadSignature("the post is not signed with this shop's signing key")
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > intake.max_age_seconds:
        raise BadSignature("the signed timestamp is too old (or in the future): a replay?")


def parse(form: Mapping[str, str], files: list[tuple[str, bytes]]) -> InboundEmail:
    """The fields of Mailgun's parsed post that matter; Invalid when it has no sender."""
    name, address = parseaddr(form.get("from", ""))
    if "@" not in address:
        address = parseaddr(form.get("sender", ""))[1]
    if "@" not in address or len(address) > 254:
        problem = [{"field": "from", "problem": "no address"}]
        raise Invalid("the e-mail has no sender address", problem)
    text = form.get("stripped-text") or form.get("body-plain") or ""
    return InboundEmail(
        sender=address.strip().lower(),
        name=name.strip()[:200] or None,
        subject=(form.get("subject") or "").strip()[:SUBJECT_LENGTH],
        text=text.strip()[:BODY_LENGTH],
        message_id=_header(form, "Message-Id"),
        attachments=files,
    )


def _header(form: Mapping[str, str], name: str) -> str | None:
    """A MIME header: Mailgun posts the common ones as fields of their own, and all of them
    in ``message-headers`` (a JSON list of [name, value] pairs)."""
    for key, value in form.items():
        if key.lower() == name.lower() and value:
            return value.strip()[:250]
    try:
        pairs = json.loads(form.get("message-headers") or "[]")
    except ValueError:
        return None
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and str(pair[0]).lower() == name.lower():
            return str(pair[1]).strip()[:250]
    return None


def take(
    session: Session,
    tenant_id: int,
    rules: TicketRules,
    mail: InboundEmail,
    data_dir: Path,
    order_prefix: str,
    max_bytes: int,
) -> tuple[Ticket, bool]:
    """The ticket the e-mail went to, and whether this post added it (False: seen before)."""
    if mail.message_id is not None:
        seen = session.scalar(
            select(Ticket)
            .join(TicketMessage, TicketMessage.ticket_id == Ticket.id)
            .where(
                TicketMessage.tenant_id == tenant_id,
                TicketMessage.external_id == mail.message_id,
            )
        )
        if seen is not None:
            return seen, False
    actor = f"email:{mail.sender}"
    body = mail.text or "(the e-mail has no text)"
    ticket = _thread(session, tenant_id, mail)
    if ticket is not None:
        message: TicketMessage | None = tickets.add_message(
            session,
            ticket,
            rules,
            author_kind="customer",
            author=mail.sender,
            body=body,
            actor=actor,
        )
    else:
        assert rules.email is not None
        ticket = tickets.create(
            session,
            tenant_id,
            rules,
            tickets.NewTicket(
                kind=rules.email.kind,
                subject=mail.subject or "(no subject)",
                body=body,
                customer_email=mail.sender,
                customer_name=mail.name,
                order_number=_order(session, tenant_id, mail, order_prefix),
                source="email",
            ),
            actor,
        )
        message = session.scalars(
            select(TicketMessage)
            .where(TicketMessage.ticket_id == ticket.id)
            .order_by(TicketMessage.id)
        ).first()
    assert message is not None
    message.external_id = mail.message_id
    for filename, data in mail.attachments:
        try:
            if len(data) > max_bytes:
                raise Invalid(f"the file is larger than {max_bytes} bytes")
            tickets.attach(session, ticket, data_dir, filename, data, actor)
        except HubError as refused:  # the timeline says so; the e-mail is taken all the same
            tickets.note(
                session,
                ticket,
                actor,
                "attachment_refused",
                {"filename": filename[:200], "problem": refused.message},
            )
    return ticket, True


def _thread(session: Session, tenant_id: int, mail: InboundEmail) -> Ticket | None:
    """The ticket the subject names, when the sender is its customer and it is not closed
    (a closed ticket's conversation starts again in a new one)."""
    found = TICKET_TAG.search(mail.subject)
    if found is None:
        return None
    try:
        ticket = tickets.get(session, tenant_id, found.group(1), lock=True)
    except NotFound:
        return None
    email = session.scalar(select(Customer.email).where(Customer.id == ticket.customer_id))
    if (email or "").lower() != mail.sender or ticket.status == "closed":
        return None
    return ticket


def _order(session: Session, tenant_id: int, mail: InboundEmail, prefix: str) -> str | None:
    """An order number in the subject, when that order is the sender's."""
    pattern = re.escape(prefix) + r"\d+"
    for number in re.findall(pattern, mail.subject):
        email = session.scalar(
            select(Customer.email)
            .join(Order, Order.customer_id == Customer.id)
            .where(Order.tenant_id == tenant_id, Order.number == number)
        )
        if (email or "").lower() == mail.sender:
            return str(number)
    return None


def form_view(ticket: Ticket, created: bool) -> dict[str, Any]:
    return {"ticket": ticket.number, "added": created}
