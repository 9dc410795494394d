"""Ticket routes: open a ticket, find and read them, change status, assignee, priority or
category, and add replies and internal notes. A ticket's id is its number (``T-000042``)."""

from __future__ import annotations

from typing import Any

from flask import Response

from hub.core import tickets
from hub.core.models import Ticket
from hub.core.ticket_rules import KINDS, PRIORITIES
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, Upload, paginate, route
from hub.web.stored_files import stored_file

TAG = "tickets"
BODY_TEXT = {"type": "string", "minLength": 1, "maxLength": 20_000}

TICKET_CREATE = schemas.closed(
    {
        "kind": {"enum": list(KINDS)},
        "subject": {"type": "string", "minLength": 1, "maxLength": 200},
        "body": BODY_TEXT,
        "order": {
            "type": "string",
            "minLength": 1,
            "maxLength": 32,
            "description": "the order's number",
        },
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 200,
            "items": schemas.closed(
                {"sku": schemas.SKU, "quantity": schemas.QUANTITY}, ("sku", "quantity")
            ),
            "description": "the order's lines it is about (needs order)",
        },
        "customer": schemas.closed(
            {
                "email": {"type": "string", "format": "email", "maxLength": 254},
                "name": schemas.TEXT,
            },
            ("email",),
        ),
        "priority": {"enum": list(PRIORITIES)},
        "category": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    ("kind", "subject", "body", "customer"),
)
TICKET_UPDATE = schemas.closed(
    {
        "status": {
            "enum": list(tickets.STATUSES),
            "description": "waiting_customer, resolved, closed; open reopens a resolved"
            " or closed ticket; assigned takes one back from waiting on the customer",
        },
        "assignee": {"type": "string", "minLength": 1, "maxLength": 64},
        "priority": {"enum": list(PRIORITIES)},
        "category": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    minProperties=1,
)
MESSAGE = schemas.closed(
    {
        "body": BODY_TEXT,
        "internal": {"type": "boolean", "description": "a note for staff only"},
        "from_customer": {
            "type": "boolean",
            "description": "record the customer's words, received by phone or e-mail",
        },
        "wait": {
            "type": "boolean",
            "description": "and wait on the customer (status waiting_customer)",
        },
    },
    ("body",),
)


@route(
    "/tickets",
    "POST",
    permission="tickets.write",
    tag=TAG,
    status=201,
    summary="Open a ticket (assigned at once unless the tenant assigns by hand)",
    body=TICKET_CREATE,
)
def create_ticket(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    new = tickets.NewTicket(
        kind=body["kind"],
        subject=body["subject"],
        body=body["body"],
        customer_email=body["customer"]["email"],
        customer_name=body["customer"].get("name"),
        order_number=body.get("order"),
        lines=tuple((x["sku"], x["quantity"]) for x in body.get("lines", ())),
        priority=body.get("priority", "normal"),
        category=body.get("category"),
    )
    ticket = tickets.create(ctx.session, ctx.tenant_id, ctx.tenant.tickets, new, ctx.actor)
    return tickets.view(ctx.session, ticket, full=True)


@route(
    "/tickets",
    permission="tickets.read",
    tag=TAG,
    summary="Find tickets",
    query=(
        Param(
            "status",
            description="one status or several separated by commas",
            enum=tickets.STATUSES,
            many=True,
        ),
        Param("assignee", description="username; none for the unassigned ones"),
        Param("kind", enum=KINDS),
        Param("priority", enum=PRIORITIES),
        Param("category"),
        Param("order", description="order number"),
        Param("customer", description="customer e-mail"),
        Param("escalated", "boolean"),
        Param("breached", "boolean", "an SLA deadline has passed"),
    ),
    paged=True,
)
def list_tickets(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    filters = {k: v for k, v in args.items() if k not in ("page", "per_page")}
    if "status" in filters:
        filters["status"] = filters["status"].split(",")
    stmt = tickets.search(ctx.session, ctx.tenant_id, **filters)
    return paginate(ctx, stmt, Ticket.id.desc(), args, lambda t: tickets.view(ctx.session, t))


@route(
    "/tickets/<number>",
    permission="tickets.read",
    tag=TAG,
    summary="Read a ticket with its lines, conversation and timeline",
)
def get_ticket(ctx: Ctx, number: str) -> dict[str, Any]:
    return tickets.view(ctx.session, tickets.get(ctx.session, ctx.tenant_id, number), full=True)


@route(
    "/tickets/<number>",
    "PATCH",
    permission="tickets.write",
    tag=TAG,
    summary="Change a ticket's status, assignee, priority or category",
    body=TICKET_UPDATE,
)
def update_ticket(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    ticket = tickets.get(ctx.session, ctx.tenant_id, number, lock=True)
    tickets.change(ctx.session, ticket, ctx.tenant.tickets, ctx.actor, **body)
    return tickets.view(ctx.session, ticket, full=True)


@route(
    "/tickets/<number>/messages",
    "POST",
    permission="tickets.write",
    tag=TAG,
    status=201,
    summary="Reply to the customer, or add an internal note",
    body=MESSAGE,
)
def add_message(ctx: Ctx, number: str, body: dict[str, Any]) -> dict[str, Any]:
    ticket = tickets.get(ctx.session, ctx.tenant_id, number, lock=True)
    customer = body.get("from_customer", False)
    tickets.add_message(
        ctx.session,
        ticket,
        ctx.tenant.tickets,
        author_kind="customer" if customer else "agent",
        author=tickets.customer_email(ctx.session, ticket) if customer else ctx.actor,
        body=body["body"],
        internal=body.get("internal", False),
        actor=ctx.actor,
    )
    if body.get("wait") and ticket.status != "waiting_customer":
        tickets.move(ctx.session, ticket, "waiting_customer", ctx.tenant.tickets, ctx.actor)
    return tickets.view(ctx.session, ticket, full=True)


@route(
    "/tickets/<number>/attachments",
    "POST",
    permission="tickets.write",
    tag=TAG,
    status=201,
    body={},
    body_kind="file",
    summary="Attach a file (JPEG, PNG, GIF, WebP, PDF or UTF-8 text) to a ticket",
)
def attach(ctx: Ctx, number: str, body: Upload) -> dict[str, Any]:
    ticket = tickets.get(ctx.session, ctx.tenant_id, number, lock=True)
    row = tickets.attach(
        ctx.session, ticket, ctx.runtime.settings.data_dir, body.filename, body.data, ctx.actor
    )
    return tickets.attachment_view(row)


@route(
    "/tickets/<number>/attachments/<int:attachment_id>",
    permission="tickets.read",
    tag=TAG,
    summary="Download a ticket's file",
)
def download(ctx: Ctx, number: str, attachment_id: int) -> Response:
    ticket = tickets.get(ctx.session, ctx.tenant_id, number)
    row = tickets.attachment(ctx.session, ticket, attachment_id)
    return stored_file(
        ctx.runtime.settings.data_dir,
        ctx.tenant_id,
        row.sha256,
        row.content_type,
        row.filename,
        inline=False,
        missing=f"the file of attachment {attachment_id} is missing from the hub's storage",
    )
