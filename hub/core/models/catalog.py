"""Products (SKUs) and warehouses."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Product(TenantScoped, Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    brand: Mapped[str | None] = mapped_column(String(100), index=True)
    price: Mapped[Decimal | None]
    market_price: Mapped[Decimal | None]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    weight_kg: Mapped[Decimal | None]
    length_cm: Mapped[Decimal | None]
    width_cm: Mapped[Decimal | None]
    height_cm: Mapped[Decimal | None]
    low_stock_threshold: Mapped[int] = mapped_column(default=0)
    # Set while a low-stock alert is open; a conditional UPDATE on it raises an alert only once.
    low_stock_since: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Warehouse(TenantScoped, Base):
    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    city: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(500))
    postcode: Mapped[str | None] = mapped_column(String(20))
    # Lower numbers are tried first when reserving stock.
    priority: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)
    # "stock", or "quarantine": returned goods that may not be sold (hub.core.quarantine).
    # A quarantine warehouse is never active, so no reservation ever takes from it.
    kind: Mapped[str] = mapped_column(String(12), default="stock", server_default="stock")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
