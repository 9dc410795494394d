"""The outbox: domain events written in the same transaction as the change they announce, and
one delivery row per (event, notifier) so a retried fan-out never tells anyone twice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class Event(TenantScoped, Base):
    __tablename__ = "events"
    # Only undispatched events are indexed: the sweeper's query, and a tiny index.
    __table_args__ = (
        Index(
            "ix_events_undispatched",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]


class NotificationDelivery(TenantScoped, Base):
    """One message: an event told through one notifier to one recipient ("" for a notifier
    whose destination is in its settings). Unique per (event, notifier, recipient), so a
    retried fan-out tells nobody twice; ``message_id`` is the same on every attempt (the
    receiver's de-duplication key).

    status: pending → sent, or → retrying (``next_attempt_at``) → … → sent | failed; skipped
    when there was nobody to tell (the customer has no e-mail address). A failed one can be
    replayed: pending again, its attempts from then on counted after ``round_start``."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "notifier", "recipient"),
        Index("ix_notification_deliveries_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    notifier: Mapped[str] = mapped_column(String(100))
    plugin: Mapped[str] = mapped_column(String(100))
    recipient: Mapped[str] = mapped_column(String(254), default="", server_default="")
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(35))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    round_start: Mapped[int] = mapped_column(default=0, server_default="0")
    replays: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(1000))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifierState(TenantScoped, Base):
    """A configured notifier the hub stopped using: its destination answered that it is gone
    (a webhook's 410). Messages for it fail at once, naming this, until an admin enables it
    again (the row is then deleted)."""

    __tablename__ = "notifier_states"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    disabled_at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(1000))
