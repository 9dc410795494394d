"""Service tickets: after-sales requests, complaints and questions, with their conversation and
timeline. A ticket knows its customer (customers are not users) and, when there is one, the
order and the lines it is about."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Ticket(TenantScoped, Base):
    """Deadlines are stored, not derived on read: the SLA check scans them by index, and a
    later change of the tenant's targets never moves a deadline a ticket was given."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index("ix_tickets_tenant_status", "tenant_id", "status", "created_at"),
        Index("ix_tickets_tenant_assignee", "tenant_id", "assignee_id", "status"),
        Index("ix_tickets_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="open")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    category: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20), default="api")
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    escalated_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_replied_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # SLA: the deadlines, when waiting on the customer stopped the clock, and what the check
    # already reported (each alert is raised once).
    first_reply_due: Mapped[datetime | None] = mapped_column(index=True)
    resolution_due: Mapped[datetime | None] = mapped_column(index=True)
    paused_at: Mapped[datetime | None]
    first_reply_warned: Mapped[bool] = mapped_column(default=False)
    resolution_warned: Mapped[bool] = mapped_column(default=False)
    first_reply_breached_at: Mapped[datetime | None]
    resolution_breached_at: Mapped[datetime | None]


class TicketLine(TenantScoped, Base):
    """An order line the ticket is about, and how many of its units."""

    __tablename__ = "ticket_lines"
    __table_args__ = (UniqueConstraint("ticket_id", "order_line_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]


class TicketMessage(TenantScoped, Base):
    """One message of the conversation. ``internal`` notes are for staff only: never shown to
    the customer and never counted as a reply."""

    __tablename__ = "ticket_messages"
    __table_args__ = (
        Index("ix_ticket_messages_ticket", "ticket_id", "id"),
        # An e-mail's Message-ID: a provider posting the same e-mail again adds nothing.
        Index(
            "uq_ticket_messages_external",
            "tenant_id",
            "external_id",
            unique=True,
            postgresql_where=text("external_id IS NOT NULL"),
            sqlite_where=text("external_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_kind: Mapped[str] = mapped_column(String(10))  # customer | agent | system
    author: Mapped[str] = mapped_column(String(254))
    visibility: Mapped[str] = mapped_column(String(10), default="public")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    external_id: Mapped[str | None] = mapped_column(String(250))


class TicketAttachment(TenantScoped, Base):
    """A file kept by the hub under its data directory, named by its SHA-256 (the row holds
    what to call it and what it is; the bytes never sit in the database)."""

    __tablename__ = "ticket_attachments"
    __table_args__ = (Index("ix_ticket_attachments_ticket", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_messages.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketEvent(TenantScoped, Base):
    """The ticket's timeline: every change, who made it and what it was."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(254))
    kind: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict[str, Any]]
