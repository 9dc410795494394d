"""Logistics: carrier accounts, shipments and what they carry, tracking events, and delivery
exceptions with their resolution."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class CarrierAccount(TenantScoped, Base):
    """A tenant's account with one carrier plugin: settings (secrets sealed or $env
    references), the services it may use (None: all), enabled or not."""

    __tablename__ = "carrier_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]]
    services: Mapped[dict[str, Any] | None]  # {"allowed": [codes]} or None for all
    enabled: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(10), default="api")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the last tracking poll of the whole account failed (credentials refused, carrier
    # down), for the admin; cleared by the next poll that works (hub.core.tracking).
    last_track_error: Mapped[str | None] = mapped_column(String(2000))
    last_track_error_at: Mapped[datetime | None]


class Shipment(TenantScoped, Base):
    """Goods of one order leaving one warehouse with one carrier account. ``status`` is
    "created" until the carrier's first scan, then a normalised tracking status that only
    moves forward (hub.core.adapters.TRACKING_STATUSES)."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("carrier_account_id", "tracking_number"),
        Index("ix_shipments_tenant_tracking", "tenant_id", "tracking_number"),
        Index("ix_shipments_tenant_created", "tenant_id", "created_at"),
        Index("ix_shipments_tenant_updated", "tenant_id", "updated_at"),
        # The tracker's work list: live shipments by when they are due a check.
        Index(
            "ix_shipments_due",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
            sqlite_where=text("next_check_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    carrier_account_id: Mapped[int] = mapped_column(
        ForeignKey("carrier_accounts.id", ondelete="RESTRICT")
    )
    carrier: Mapped[str] = mapped_column(String(64))  # the plugin name, for queries
    service: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(2000))
    carrier_shipment_id: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default="created")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    estimated_delivery: Mapped[date | None]
    # The carrier's first estimate, kept when later ones replace estimated_delivery: on-time
    # is judged against it when nothing was promised (carrier performance report).
    first_estimated_delivery: Mapped[date | None]
    promised_delivery: Mapped[date | None]
    last_event_at: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    # The sales channel told of this shipment (its fulfilment id), or why it could not be.
    channel_fulfilment_id: Mapped[str | None] = mapped_column(String(200))
    channel_notified_at: Mapped[datetime | None]
    channel_error: Mapped[str | None] = mapped_column(String(2000))
    # A replacement (reship) names the shipment it replaces.
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[ShipmentItem]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan", order_by="ShipmentItem.id"
    )


class ShipmentItem(TenantScoped, Base):
    __tablename__ = "shipment_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int]

    shipment: Mapped[Shipment] = relationship(back_populates="items")


class TrackingEventRecord(TenantScoped, Base):
    """Every scan a carrier reported, once (de-duplicated on time and raw code), with the
    normalised status and the carrier's own code and text."""

    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "at", "raw_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(100))
    raw_code: Mapped[str] = mapped_column(String(100))
    raw_text: Mapped[str | None] = mapped_column(String(1000))
    location: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(10), default="poll")  # poll | push | hub | manual
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who recorded an event by hand (source "manual"); None for what carriers reported.
    entered_by: Mapped[str | None] = mapped_column(String(100))


class DeliveryException(TenantScoped, Base):
    """Something went wrong on the way (delayed, lost, damaged, refused, failed attempt,
    returned): open until resolved by a reship, a refund / close, or contacting the customer."""

    __tablename__ = "delivery_exceptions"
    __table_args__ = (
        Index("ix_delivery_exceptions_tenant_status", "tenant_id", "status"),
        # One open exception per shipment and kind: a second "lost" scan, or the delay check
        # running again, finds the open one (INSERT … ON CONFLICT DO NOTHING on this index).
        Index(
            "uq_delivery_exceptions_open",
            "shipment_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | resolved
    resolution: Mapped[str | None] = mapped_column(String(24))  # reship | refund | close | contact
    note: Mapped[str | None] = mapped_column(String(1000))
    replacement_shipment_id: Mapped[int | None] = mapped_column(
        ForeignKey("shipments.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))


class ShipmentPurchase(TenantScoped, Base):
    """A label being bought for goods of one order leaving one warehouse (hub.core.purchases).
    Written and committed before the carrier is called; the goods it claims are the
    allocations naming it. It ends ``recorded`` (its shipment made), ``released`` (nothing was
    bought, the goods are free again), ``voided`` (a label was bought but could not be
    recorded, and was voided) or ``void_failed`` (… and the carrier would not void it yet: the
    sweeper asks again while ``due_at`` is set). ``due_at`` is when the sweeper looks at it:
    a purchase still ``buying`` or ``bought`` by then was interrupted."""

    __tablename__ = "shipment_purchases"
    __table_args__ = (
        Index(
            "ix_shipment_purchases_due",
            "due_at",
            postgresql_where=text("due_at IS NOT NULL"),
            sqlite_where=text("due_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))  # ship | reship
    # The shipment a reship replaces, and the delivery exception it resolves.
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id", ondelete="SET NULL"))
    exception_id: Mapped[int | None] = mapped_column(
        ForeignKey("delivery_exceptions.id", ondelete="SET NULL")
    )
    # Known before buying when named; chosen by the tenant's policy otherwise.
    carrier_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("carrier_accounts.id", ondelete="RESTRICT")
    )
    service: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[dict[str, Any]]  # {"<product id>": quantity}
    status: Mapped[str] = mapped_column(String(12), default="buying")
    waybill: Mapped[dict[str, Any] | None]  # what the carrier sold, once it answered
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(String(2000))
    void_attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[datetime | None]
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
