"""Stock balances per (warehouse, product) and the ledger that explains every change to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class StockLevel(TenantScoped, Base):
    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("warehouse_id", "product_id"),
        # The database itself refuses an oversell or a negative balance, whatever the code does.
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    on_hand: Mapped[int] = mapped_column(default=0)
    reserved: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StockLedger(TenantScoped, Base):
    """Append-only: the balances are a cache of these sums (``orderhub stock verify``)."""

    __tablename__ = "stock_ledger"
    __table_args__ = (Index("ix_stock_ledger_product_at", "product_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(20))
    on_hand_delta: Mapped[int] = mapped_column(default=0)
    reserved_delta: Mapped[int] = mapped_column(default=0)
    reason: Mapped[str | None] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(String(100), index=True)
    actor: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(default=utcnow)
