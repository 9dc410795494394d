"""Customer care and reviews: the messages care rules sent (each at most once per rule and
subject), what customers opted out of, the satisfaction surveys they answered, and their
product reviews."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class CareSend(TenantScoped, Base):
    """One care rule fired for one subject (an order, a ticket, a customer's year). The row is
    claimed in the transaction that emits the rule's event, and its key is unique, so however
    many sweeps run at once the rule fires once. ``status`` is ``emitted`` or ``skipped``
    (``reason`` says why: the customer opted out)."""

    __tablename__ = "care_sends"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rule", "subject"),
        Index("ix_care_sends_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CareOptOut(TenantScoped, Base):
    """A customer who wants no more messages of one kind (``review_request``, ``win_back``
    …): checked when a rule fires and again when each message is sent."""

    __tablename__ = "care_opt_outs"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20))  # link | one-click
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketSurvey(TenantScoped, Base):
    """The customer's answer to the satisfaction survey of a resolved ticket: once."""

    __tablename__ = "ticket_surveys"
    __table_args__ = (
        UniqueConstraint("ticket_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    rating: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(TenantScoped, Base):
    """A customer's rating of one order line's product. ``verified_buyer`` is the hub's own
    finding (the line was delivered), never the reviewer's claim. A hidden review counts
    nowhere public; it is hidden for a reason from a fixed list, never for being negative.
    At most one public reply, from staff."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("order_line_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        Index("ix_reviews_tenant_product", "tenant_id", "product_id", "hidden"),
        Index("ix_reviews_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    rating: Mapped[int]
    title: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    verified_buyer: Mapped[bool]
    source: Mapped[str] = mapped_column(String(10))  # api | link
    created_by: Mapped[str] = mapped_column(String(254))
    hidden: Mapped[bool] = mapped_column(default=False)
    hidden_reason: Mapped[str | None] = mapped_column(String(20))
    reply: Mapped[str | None] = mapped_column(Text)
    replied_by: Mapped[str | None] = mapped_column(String(100))
    replied_at: Mapped[datetime | None]
    # The complaint a low rating opened, if any.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    photos: Mapped[list[ReviewPhoto]] = relationship(
        order_by="ReviewPhoto.id", lazy="selectin", cascade="all, delete-orphan"
    )


class ReviewPhoto(TenantScoped, Base):
    """A photo with a review, kept by the hub like a ticket's files (hub.core.attachments):
    images only, a few per review, shown publicly only while the review is."""

    __tablename__ = "review_photos"
    __table_args__ = (Index("ix_review_photos_review", "review_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
