"""Returns (RMA) of delivered goods, what came back of them and in which condition, and the
refunds granted for them.

The counters on a return line are the truth the checks read (how many units of an order are
already on returns, how many a receipt may still take); the CHECK constraints keep them
honest whatever the code does: never more received than requested.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Return(TenantScoped, Base):
    """A return of some of an order's delivered units (``kind`` "return"), or an exchange:
    the same plus a replacement order (``kind`` "exchange"). ``status`` follows
    hub.core.returns.TRANSITIONS. ``window_ends_on`` is the last day of the return window
    as it stood when the return was made (None: not delivered yet, the window had not
    started); ``label`` is the return label a carrier issued, if one was."""

    __tablename__ = "returns"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index("ix_returns_tenant_status", "tenant_id", "status"),
        Index("ix_returns_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(500))
    replacement_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL")
    )
    window_ends_on: Mapped[date | None]
    label: Mapped[dict[str, Any] | None]
    # Why it was cancelled or closed.
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    received_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    lines: Mapped[list[ReturnLine]] = relationship(
        back_populates="ret", cascade="all, delete-orphan", order_by="ReturnLine.id"
    )


class ReturnLine(TenantScoped, Base):
    """Units of one product asked back, and how many came back sellable or damaged. The
    unit price is the order's (its lines' average for the product), kept for refunds."""

    __tablename__ = "return_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("received >= 0 AND damaged >= 0", name="received_not_negative"),
        CheckConstraint("received + damaged <= quantity", name="received_within_requested"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]
    received: Mapped[int] = mapped_column(default=0)  # sellable, back on hand
    damaged: Mapped[int] = mapped_column(default=0)  # in quarantine
    unit_price: Mapped[Decimal]

    ret: Mapped[Return] = relationship(back_populates="lines")


class ReturnReceipt(TenantScoped, Base):
    """One receipt of units of a line: in which condition, the warehouse they had shipped
    from (``origin_id``) and where their stock went (the origin, or the quarantine)."""

    __tablename__ = "return_receipts"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(
        ForeignKey("return_lines.id", ondelete="CASCADE"), index=True
    )
    condition: Mapped[str] = mapped_column(String(12))
    quantity: Mapped[int]
    origin_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Refund(TenantScoped, Base):
    """Money granted back for a return. ``status``: "pending" (to be pushed to the sales
    channel), "succeeded" (the channel made it; ``external_id`` is its id), "failed" (the
    channel refused, ``error`` says why; it no longer counts against what was paid) or
    "manual" (the channel cannot take refunds: someone makes it by hand)."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_refunds_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("returns.id", ondelete="CASCADE"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    shipping_included: Mapped[bool] = mapped_column(default=False)
    # The returned units it pays for, by SKU: those received since the return's last refund.
    lines: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(12))
    external_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(2000))
    attempts: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None]
