"""Customers, orders, their lines, the stock allocated to them and their history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Customer(TenantScoped, Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        # "Orders of a customer whose name, e-mail or phone contains …": on PostgreSQL a
        # trigram index (pg_trgm) finds the few among a shop's customers without reading
        # them all. SQLite has no such index; there it is an empty partial one.
        Index(
            "ix_customers_search",
            "email",
            "name",
            "phone",
            postgresql_using="gin",
            postgresql_ops={
                "email": "gin_trgm_ops",
                "name": "gin_trgm_ops",
                "phone": "gin_trgm_ops",
            },
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    # The language the customer reads (a BCP 47 tag, "zh-CN"), for what the hub tells them;
    # None: the tenant's [notifications] language.
    language: Mapped[str | None] = mapped_column(String(35))
    # For a birthday greeting (hub.core.care); None: not known, no greeting.
    birthday: Mapped[date | None]
    vip: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Order(TenantScoped, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        # On PostgreSQL it also carries what the customers report counts distinct customers
        # by, so a year of orders is read from the index alone.
        Index(
            "ix_orders_tenant_created",
            "tenant_id",
            "created_at",
            postgresql_include=["customer_id", "ship_country", "ship_region"],
        ),
        Index("ix_orders_tenant_status", "tenant_id", "status", "queue_at"),
        # The back office's usual search: orders in some statuses over a stretch of time.
        Index("ix_orders_tenant_status_created", "tenant_id", "status", "created_at"),
        Index("ix_orders_tenant_external", "tenant_id", "channel", "external_id"),
        # A customer's orders oldest first: whether an order is the customer's first (new vs
        # returning customers in the reports) is one probe.
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        # What changed since a time: the reports' rollups refresh the days these fall on.
        Index("ix_orders_tenant_updated", "tenant_id", "updated_at"),
        # One order per channel order: the upsert key of intake.
        Index(
            "uq_orders_connection_external",
            "connection_id",
            "external_id",
            unique=True,
            postgresql_where=text("connection_id IS NOT NULL"),
            sqlite_where=text("connection_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(64), default="api")
    external_id: Mapped[str | None] = mapped_column(String(64))
    external_name: Mapped[str | None] = mapped_column(String(64))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    # The channel's time of the last statement applied; older statements are ignored.
    external_updated_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(24))
    order_type: Mapped[str] = mapped_column(String(24), default="normal")
    priority: Mapped[int] = mapped_column(default=0)
    hold_reason: Mapped[str | None] = mapped_column(String(500))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal]
    shipping_total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    tax_total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    discount_total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # Other charges the buyer paid: gift wrap, a cash-on-delivery fee.
    fees_total: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default=text("0"))
    total: Mapped[Decimal]
    consignee_name: Mapped[str | None] = mapped_column(String(200))
    consignee_phone: Mapped[str | None] = mapped_column(String(40))
    ship_line1: Mapped[str | None] = mapped_column(String(200))
    ship_line2: Mapped[str | None] = mapped_column(String(200))
    ship_city: Mapped[str | None] = mapped_column(String(100))
    ship_region: Mapped[str | None] = mapped_column(String(100))
    ship_postcode: Mapped[str | None] = mapped_column(String(20))
    ship_country: Mapped[str | None] = mapped_column(String(2))
    note: Mapped[str | None] = mapped_column(String(1000))
    shipping_method: Mapped[str | None] = mapped_column(String(100))
    # The channel's own reason not to work the order yet (an unpaid marketplace order); kept
    # apart from hold_reason, which the hub's other checks also write.
    channel_hold: Mapped[str | None] = mapped_column(String(500))
    # The sales channel ships it from its own stock (Amazon's AFN, a marketplace fulfilment
    # service): recorded for sales and reports, but it reserves none of ours and is no work.
    fulfilled_by_channel: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Who created it: a username, or "channel:<connection>" for a channel's order. With the
    # four-eyes rule its creator may not approve it.
    created_by: Mapped[str | None] = mapped_column(String(100))
    # The rules' decisions: classes, what made up the priority, approval levels needed, the
    # approvals given (each with the total it was given for), the amount approval is decided
    # on at least (a split part's whole) and who changed its lines or charges
    # ({"classes", "priority", "approval", "approvals", "approval_floor", "amended_by"}).
    decisions: Mapped[dict[str, Any] | None]
    # Work-queue order (oldest first): creation time moved earlier by the priority score.
    queue_at: Mapped[datetime | None]
    # Where this order came from when it was split off, or went when it was merged away.
    parent_number: Mapped[str | None] = mapped_column(String(32))
    merged_into: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_no", cascade="all, delete-orphan"
    )
    customer: Mapped[Customer | None] = relationship(lazy="joined")


class OrderLine(TenantScoped, Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_order_lines_tenant_sku", "tenant_id", "sku"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int]
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(300))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    line_total: Mapped[Decimal]

    order: Mapped[Order] = relationship(back_populates="lines")


class Allocation(TenantScoped, Base):
    """Stock reserved for an order, per warehouse: what a cancel releases and a shipment ships.
    ``purchase_id`` marks stock a label is being bought for (hub.core.purchases): no second
    shipment may take it meanwhile."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index(
            "ix_allocations_purchase",
            "purchase_id",
            postgresql_where=text("purchase_id IS NOT NULL"),
            sqlite_where=text("purchase_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    quantity: Mapped[int]
    purchase_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipment_purchases.id", ondelete="SET NULL")
    )


class OrderHistory(TenantScoped, Base):
    __tablename__ = "order_history"
    __table_args__ = (
        # Deliveries by time, for the review requests of customer care (hub.core.care): a
        # small index, written only for the one transition it serves.
        Index(
            "ix_order_history_delivered",
            "tenant_id",
            "at",
            postgresql_where=text("to_status = 'delivered'"),
            sqlite_where=text("to_status = 'delivered'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(1000))
    actor: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any] | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)
