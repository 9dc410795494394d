"""Small idempotent jobs. Each takes ids, opens its own transaction, and declares its retries.

Running one twice does nothing the second time: dispatch checks ``dispatched_at``, a delivery
row is unique per (event, notifier) and carries its ``sent`` status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hub.core import intake
from hub.core.adapters import Message
from hub.core.db import utcnow
from hub.core.models import Event, NotificationDelivery, Tenant

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.worker")

NOTIFY_RETRIES = 8

SUBJECTS = {
    "order_created": "Order {number} created ({status})",
    "order_status_changed": "Order {number}: {from} → {to}",
    "order_updated": "Order {number} updated",
    "stock_low": "Low stock: {sku} has {available} available (threshold {threshold})",
    "stock_replenished": "Stock back: {sku} has {available} available",
}


def dispatch_event(runtime: Runtime, event_id: int) -> None:
    """Fan an event out: the event hook on every enabled plugin, then one delivery per notifier."""
    new_deliveries: list[int] = []
    with runtime.transaction() as session:
        ev = session.scalar(select(Event).where(Event.id == event_id).with_for_update())
        if ev is None or ev.dispatched_at is not None:
            return
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == ev.tenant_id))
        tenant = runtime.tenant_settings(slug)
        runtime.plugins.announce(ev.name, tenant, ev.payload)
        ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for cfg in tenant.notifiers:
            if cfg.get("events") and ev.name not in cfg["events"]:
                continue
            delivery_id = session.execute(
                ins(NotificationDelivery)
                .values(
                    tenant_id=ev.tenant_id,
                    event_id=ev.id,
                    notifier=cfg["name"],
                    plugin=cfg["plugin"],
                    status="pending",
                    attempts=0,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["event_id", "notifier"])
                .returning(NotificationDelivery.id)
            ).scalar()
            if delivery_id is not None:
                new_deliveries.append(delivery_id)
        ev.dispatched_at = utcnow()
    for delivery_id in new_deliveries:
        runtime.jobs.send("send_notification", delivery_id)


def send_notification(runtime: Runtime, delivery_id: int) -> None:
    """Deliver one message through one configured notifier; raises (and retries) on failure."""
    with runtime.transaction() as session:
        row = session.execute(
            select(NotificationDelivery, Event, Tenant.slug)
            .join(Event, Event.id == NotificationDelivery.event_id)
            .join(Tenant, Tenant.id == NotificationDelivery.tenant_id)
            .where(NotificationDelivery.id == delivery_id)
            .with_for_update(of=NotificationDelivery)
        ).first()
        if row is None or row[0].status == "sent":
            return
        delivery, ev, slug = row
        tenant = runtime.tenant_settings(slug)
        cfg = next((n for n in tenant.notifiers if n["name"] == delivery.notifier), None)
        cls = runtime.plugins.notifier(delivery.plugin, tenant)
        delivery.attempts += 1
        if cfg is None or cls is None:
            delivery.status = "failed"
            delivery.last_error = f"notifier {delivery.notifier!r} ({delivery.plugin}) unavailable"
            return
        message = Message(
            slug, ev.name, SUBJECTS[ev.name].format_map(_Loose(ev.payload)), dict(ev.payload)
        )
        try:
            notifier = cls(cfg.get("settings", {}))
            notifier.validate_settings(notifier.settings)
            notifier.send(message)
        except Exception as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            delivery.status = "failed" if delivery.attempts > NOTIFY_RETRIES else "retrying"
            retry = delivery.status == "retrying"
        else:
            delivery.status, delivery.sent_at, retry = "sent", utcnow(), False
    if retry:
        raise RuntimeError(f"notification {delivery_id} failed; will retry")


def ingest(runtime: Runtime, entry_id: int) -> None:
    """Turn one stored channel delivery into orders (or a rejected inbox entry)."""
    with runtime.transaction() as session:
        intake.ingest(
            session,
            entry_id,
            runtime.channel_adapter,
            prefix_for=lambda tenant_id: (
                runtime.tenant_settings(
                    session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id)) or ""
                ).order_number_prefix
            ),
        )


def sweep(runtime: Runtime, older_than: timedelta = timedelta(seconds=10)) -> int:
    """Re-enqueue what never ran (broker down, process died): event fan-outs, and channel
    deliveries whose last enqueue is older than ``older_than`` (stamped again, so a backlog
    is not enqueued twice on every sweep)."""
    cutoff = utcnow() - older_than
    with runtime.transaction() as session:
        entries = intake.pending_entries(session, cutoff)
        intake.mark_enqueued(session, entries)
    for entry_id in entries:
        runtime.jobs.send("ingest", entry_id)
    with runtime.transaction() as session:
        ids = list(
            session.scalars(
                select(Event.id)
                .where(Event.dispatched_at.is_(None), Event.created_at < cutoff)
                .order_by(Event.id)
                .limit(10_000)
            )
        )
        pending = list(
            session.scalars(
                select(NotificationDelivery.id)
                .where(
                    NotificationDelivery.status == "pending",
                    NotificationDelivery.created_at < cutoff,
                )
                .limit(10_000)
            )
        )
    for event_id in ids:
        runtime.jobs.send("dispatch_event", event_id)
    for delivery_id in pending:
        runtime.jobs.send("send_notification", delivery_id)
    return len(ids) + len(pending) + len(entries)


class _Loose(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


ACTORS: dict[str, tuple[Callable[..., None], dict[str, Any]]] = {
    "ingest": (
        ingest,
        {"max_retries": 20, "min_backoff": 500, "max_backoff": 300_000, "queue_name": "intake"},
    ),
    "dispatch_event": (
        dispatch_event,
        {"max_retries": 20, "min_backoff": 1000, "max_backoff": 300_000, "queue_name": "events"},
    ),
    "send_notification": (
        send_notification,
        {
            "max_retries": NOTIFY_RETRIES,
            "min_backoff": 2000,
            "max_backoff": 600_000,
            "queue_name": "notify",
        },
    ),
}
