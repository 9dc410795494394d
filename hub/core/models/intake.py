"""Channel intake: connections to sales channels, the inbox of raw deliveries, SKU mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Connection(TenantScoped, Base):
    """A tenant's account on one channel plugin, with its settings (secrets encrypted)."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plugin: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    settings: Mapped[dict[str, Any]]
    paused: Mapped[bool] = mapped_column(default=False)
    # Pull channels: where the last poll stopped.
    cursor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "api" (made by a merchant, settings encrypted) or "config" (from the tenant's file,
    # secrets kept as $env references); the config sync only ever touches its own.
    source: Mapped[str] = mapped_column(String(10), default="api", server_default="api")
    # Pull channels: when a poll last completed, and the lease of the poll running now (a
    # poller that died leaves a stale lease, which expires, instead of a lock held forever).
    last_polled_at: Mapped[datetime | None]
    poll_started_at: Mapped[datetime | None]
    last_poll_error: Mapped[str | None] = mapped_column(String(2000))
    last_poll_error_at: Mapped[datetime | None]


class InboxEntry(TenantScoped, Base):
    """A delivery exactly as received; the record of what must still be turned into orders."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("connection_id", "delivery_key"),
        Index(
            "ix_inbox_unprocessed",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_inbox_tenant_status", "tenant_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    delivery_key: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(100))
    headers: Mapped[dict[str, Any]]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # pending → processed | rejected; pending or rejected → discarded (by an admin, for good).
    status: Mapped[str] = mapped_column(String(20), default="pending")
    reason: Mapped[str | None] = mapped_column(String(2000))
    # Counted when an attempt starts, in a transaction of its own, so an attempt that crashes
    # or is killed still counts toward ``[worker] max_delivery_attempts``.
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    # Set while an attempt runs (cleared when it ends): the sweeper does not queue the entry
    # again, nor does another copy of the job start, until it is older than the grace period.
    started_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]


class SkuMapping(TenantScoped, Base):
    """A channel's SKU (or product / variant id) that differs from ours."""

    __tablename__ = "sku_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "connection_id", "channel_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    channel_ref: Mapped[str] = mapped_column(String(100))
    sku: Mapped[str] = mapped_column(String(64))
