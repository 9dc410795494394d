"""Channel intake: connections, the inbox of raw deliveries, and turning deliveries into orders.

A delivery is verified over its raw bytes, stored (unique per connection and delivery key),
committed and only then acknowledged; the ingest job parses it later, so nothing a channel was
told we received can be lost, and retries or duplicates never make a second order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, orders
from hub.core.adapters import (
    ChannelAdapter,
    ChannelOrder,
    InboundRequest,
    PayloadError,
    Pulled,
)
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.http import HttpError
from hub.core.models import Connection, InboxEntry, Order, Product, SkuMapping
from hub.core.normalised import LineItem
from hub.core.secret_box import ENV, SecretBox, redact
from hub.settings import ConfigError, TenantSettings

KEY_LENGTH = 200  # inbox.delivery_key


# --- connections -----------------------------------------------------------------------------


def create_connection(
    session: Session,
    tenant_id: int,
    plugin: type[ChannelAdapter],
    name: str,
    settings: dict[str, Any],
    *,
    box: SecretBox,
    actor: str,
    source: str = "api",
) -> Connection:
    plugin.validate_settings(box.open(settings))
    if session.scalar(
        select(Connection.id).where(Connection.tenant_id == tenant_id, Connection.name == name)
    ):
        raise Conflict(f"a connection named {name!r} already exists")
    connection = Connection(
        tenant_id=tenant_id,
        plugin=plugin.name,
        name=name,
        settings=box.seal(settings, plugin.secret_settings),
        source=source,
    )
    session.add(connection)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "connection.create",
        "connection",
        connection.id,
        None,
        {
            "plugin": plugin.name,
            "name": name,
            "source": source,
            "settings": redact(settings, plugin.secret_settings),
        },
    )
    return connection


def sync_config_connections(
    session: Session,
    tenant_id: int,
    tenant: TenantSettings,
    channels: Mapping[str, type[ChannelAdapter]],
    *,
    box: SecretBox,
    file: str,
    actor: str = "config",
) -> list[tuple[str, str]]:
    """Make the tenant's config connections match ``[[connections]]`` in its file: create
    the new ones and update changed settings, by name. Returns (name, "created" | "updated" |
    "unchanged" | "not in the file") per connection; one that left the file is kept (its
    inbox and orders refer to it), to be paused by whoever removed it.

    Connections made through the API are never touched. Secrets must be ``{"$env": NAME}``
    references and are stored as such — a literal would put a secret in a file that is
    copied around — and every problem is a ConfigError naming the file and the key."""
    outcomes: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(tenant.connections):
        name, settings = entry["name"], dict(entry.get("settings", {}))
        where = f"connections[{i}]"
        if name in seen:
            raise ConfigError(file, f"{where}.name", f"{name!r} names two connections")
        seen.add(name)
        cls = channels.get(entry["plugin"])
        if cls is None:
            raise ConfigError(
                file,
                f"{where}.plugin",
                f"no channel plugin {entry['plugin']!r} is installed and enabled for this tenant"
                f" (available: {', '.join(sorted(channels)) or 'none'})",
            )
        _check_config_settings(cls, name, settings, file, where, box)
        connection = session.scalar(
            select(Connection).where(Connection.tenant_id == tenant_id, Connection.name == name)
        )
        if connection is None:
            create_connection(
                session, tenant_id, cls, name, settings, box=box, actor=actor, source="config"
            )
            outcomes.append((name, "created"))
        elif connection.source != "config":
            raise ConfigError(
                file,
                f"{where}.name",
                f"a connection named {name!r} was made through the API; the config file cannot"
                " take it over, so give this one another name",
            )
        elif connection.plugin != cls.name:
            raise ConfigError(
                file,
                f"{where}.plugin",
                f"connection {name!r} is a {connection.plugin!r} connection; its orders and"
                " deliveries belong to that channel, so a different plugin needs a new name",
            )
        elif connection.settings != box.seal(settings, cls.secret_settings):
            before = redact(connection.settings, cls.secret_settings)
            connection.settings = box.seal(settings, cls.secret_settings)
            audit.record(
                session,
                tenant_id,
                actor,
                "connection.update",
                "connection",
                connection.id,
                {"settings": before},
                {"settings": redact(settings, cls.secret_settings)},
            )
            outcomes.append((name, "updated"))
        else:
            outcomes.append((name, "unchanged"))
    left = session.scalars(
        select(Connection.name).where(
            Connection.tenant_id == tenant_id,
            Connection.source == "config",
            Connection.name.not_in(seen),
        )
    )
    outcomes.extend((name, "not in the file") for name in left)
    return outcomes


def _check_config_settings(
    cls: type[ChannelAdapter],
    name: str,
    settings: dict[str, Any],
    file: str,
    where: str,
    box: SecretBox,
) -> None:
    """Refuse literal secrets and settings the plugin would refuse, before anything is
    stored; references are resolved here only to validate, never to be kept."""
    for key, value in settings.items():
        ref = value.get(ENV) if isinstance(value, dict) and set(value) == {ENV} else None
        if key in cls.secret_settings and ref is None:
            raise ConfigError(
                file,
                f"{where}.settings.{key}",
                f"is a secret of connection {name!r}: write it as a reference,"
                f' {key} = {{ "$env" = "VARIABLE" }}, never as a literal',
            )
        if ref is not None and ref not in os.environ:
            raise ConfigError(
                file,
                f"{where}.settings.{key}",
                f"environment variable {ref} is not set (connection {name!r})",
            )
    try:
        cls.validate_settings(box.open(settings))
    except Invalid as exc:
        raise ConfigError(file, f"{where}.settings", f"connection {name!r}: {exc}") from None


def get_connection(session: Session, tenant_id: int, connection_id: int) -> Connection:
    connection = session.scalar(
        select(Connection).where(Connection.tenant_id == tenant_id, Connection.id == connection_id)
    )
    if connection is None:
        raise NotFound(f"no connection {connection_id}")
    return connection


def set_paused(
    session: Session, tenant_id: int, connection_id: int, paused: bool, actor: str
) -> Connection:
    connection = get_connection(session, tenant_id, connection_id)
    connection.paused = paused
    audit.record(
        session,
        tenant_id,
        actor,
        "connection.pause" if paused else "connection.resume",
        "connection",
        connection_id,
        None,
        {"paused": paused},
    )
    return connection


def connection_stats(session: Session, tenant_id: int) -> dict[int, dict[str, Any]]:
    """Per connection: deliveries waiting (backlog), rejected, and when the last one came.

    Derived from the inbox rather than kept on the connection row, which every delivery
    would otherwise have to lock and update on the acknowledgement path."""
    rows = session.execute(
        select(
            InboxEntry.connection_id,
            InboxEntry.status,
            func.count(),
            func.max(InboxEntry.received_at),
        )
        .where(InboxEntry.tenant_id == tenant_id)
        .group_by(InboxEntry.connection_id, InboxEntry.status)
    ).all()
    stats: dict[int, dict[str, Any]] = {}
    for connection_id, status, count, last in rows:
        entry = stats.setdefault(
            connection_id, {"pending": 0, "rejected": 0, "last_delivery_at": None}
        )
        entry[status] = count
        if entry["last_delivery_at"] is None or last > entry["last_delivery_at"]:
            entry["last_delivery_at"] = last
    return stats


def add_sku_mapping(
    session: Session, tenant_id: int, connection_id: int, channel_ref: str, sku: str, actor: str
) -> SkuMapping:
    get_connection(session, tenant_id, connection_id)
    if not session.scalar(
        select(Product.id).where(Product.tenant_id == tenant_id, Product.sku == sku)
    ):
        raise Invalid(f"unknown SKU {sku!r}")
    mapping = session.scalar(
        select(SkuMapping).where(
            SkuMapping.tenant_id == tenant_id,
            SkuMapping.connection_id == connection_id,
            SkuMapping.channel_ref == channel_ref,
        )
    )
    if mapping is None:
        mapping = SkuMapping(
            tenant_id=tenant_id, connection_id=connection_id, channel_ref=channel_ref, sku=sku
        )
        session.add(mapping)
    else:
        mapping.sku = sku
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "sku_mapping.set",
        "connection",
        connection_id,
        None,
        {"channel_ref": channel_ref, "sku": sku},
    )
    return mapping


# --- receiving -------------------------------------------------------------------------------


def receive(
    session: Session, connection: Connection, adapter: ChannelAdapter, request: InboundRequest
) -> tuple[str, int | None]:
    """Verify and store one delivery. Returns ("forged" | "ignored" | "duplicate" | "stored",
    the new inbox id). Nothing is written for a forged request."""
    if not adapter.verify(request):
        return "forged", None
    delivery = adapter.delivery(request)
    if delivery is None:
        return "ignored", None
    entry_id = _store(
        session, connection, delivery.key, delivery.topic, dict(request.headers), request.body
    )
    return ("stored", entry_id) if entry_id is not None else ("duplicate", None)


def store_pulled(session: Session, connection: Connection, deliveries: list[Pulled]) -> list[int]:
    """Store what one poll page fetched, exactly as a webhook delivery is stored (pending,
    unique per connection and key). Returns the new inbox ids; the rest were duplicates,
    which a poll repeated from an old cursor is expected to bring."""
    ids = []
    for pulled in deliveries:
        entry_id = _store(session, connection, pulled.key, pulled.topic, {}, pulled.body)
        if entry_id is not None:
            ids.append(entry_id)
    return ids


def _store(
    session: Session,
    connection: Connection,
    key: str,
    topic: str | None,
    headers: dict[str, str],
    body: bytes,
) -> int | None:
    """One row in the inbox, or None when (connection, key) is there already. A single
    INSERT … ON CONFLICT DO NOTHING, so concurrent copies of a delivery never race."""
    now = utcnow()
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return session.execute(
        ins(InboxEntry.__table__)
        .values(
            tenant_id=connection.tenant_id,
            connection_id=connection.id,
            delivery_key=_stored_key(key),
            topic=topic,
            headers=headers,
            body=body,
            status="pending",
            attempts=0,
            received_at=now,
            enqueued_at=now,
        )
        .on_conflict_do_nothing(index_elements=["connection_id", "delivery_key"])
        .returning(InboxEntry.__table__.c.id)
    ).scalar()


def _stored_key(key: str) -> str:
    """Keys longer than the column are hashed, never truncated (two long keys sharing a
    prefix would otherwise look like one delivery)."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


# --- ingesting -------------------------------------------------------------------------------


def ingest(
    session: Session,
    entry_id: int,
    adapter_for: Callable[[Connection], ChannelAdapter],
    *,
    prefix_for: Callable[[int], str],
) -> str:
    """Turn one stored delivery into orders. Returns the entry's new status; a payload the
    channel plugin cannot read, or whose SKUs we cannot map, is kept as rejected."""
    entry = session.scalar(select(InboxEntry).where(InboxEntry.id == entry_id).with_for_update())
    if entry is None or entry.status != "pending":
        return entry.status if entry else "missing"
    connection = session.get(Connection, entry.connection_id)
    assert connection is not None
    if connection.paused:
        return "pending"
    entry.attempts += 1
    adapter = adapter_for(connection)
    prefix = prefix_for(connection.tenant_id)
    try:
        with session.begin_nested():
            for statement in adapter.parse(entry.topic, entry.body):
                _apply(session, connection, statement, prefix)
    except HttpError as problem:
        # A channel that must be asked for the order (Shopee) could not be reached: try
        # again later if that may help (the job queue retries; the sweeper after it),
        # otherwise keep it as rejected with the reason, replayable once fixed.
        if problem.retryable:
            entry.reason = f"will retry: {problem}"[:2000]
            raise
        entry.status, entry.reason = "rejected", str(problem)[:2000]
    except (PayloadError, Invalid) as problem:
        entry.status, entry.reason = "rejected", str(problem)[:2000]
    else:
        entry.status, entry.reason = "processed", None
    entry.processed_at = utcnow()
    return entry.status


def replay(session: Session, tenant_id: int, entry_id: int, actor: str) -> InboxEntry:
    entry = session.scalar(
        select(InboxEntry).where(InboxEntry.tenant_id == tenant_id, InboxEntry.id == entry_id)
    )
    if entry is None:
        raise NotFound(f"no inbox entry {entry_id}")
    if entry.status == "processed":
        raise Conflict(f"inbox entry {entry_id} was processed already")
    entry.status, entry.reason, entry.enqueued_at = "pending", None, utcnow()
    audit.record(session, tenant_id, actor, "inbox.replay", "inbox", entry_id, None, None)
    return entry


def _apply(session: Session, connection: Connection, statement: ChannelOrder, prefix: str) -> None:
    """Upsert on (connection, external id), newest statement wins."""
    tenant_id = connection.tenant_id
    draft = replace(
        statement.draft,
        lines=_mapped_lines(session, connection, statement),
        external_id=statement.external_id,
        channel=connection.plugin,
    )
    existing = session.scalar(
        select(Order)
        .where(Order.connection_id == connection.id, Order.external_id == statement.external_id)
        .with_for_update(of=Order)
    )
    actor = f"channel:{connection.name}"
    if existing is None:
        created = orders.create(
            session,
            tenant_id,
            draft,
            actor=actor,
            prefix=prefix,
            connection_id=connection.id,
            external_updated_at=statement.event_time,
            channel_hold=statement.hold,
            allow_empty=True,
        )
        if statement.cancelled:
            orders.cancel(
                session, tenant_id, created.number, actor=actor, reason="cancelled on the channel"
            )
        return
    if existing.external_updated_at and statement.event_time <= existing.external_updated_at:
        return  # an older (or repeated) statement: the newer one already applied
    existing.external_updated_at = statement.event_time
    if existing.status not in orders.OPEN_STATUSES:
        return
    if statement.cancelled:
        orders.cancel(
            session, tenant_id, existing.number, actor=actor, reason="cancelled on the channel"
        )
        return
    changes: dict[str, Any] = {}
    if _lines_changed(existing, draft.lines):
        changes["lines"] = draft.lines
    if orders.consignee_differs(existing, draft.consignee):
        changes["consignee"] = draft.consignee
    if existing.channel_hold != statement.hold:
        changes["channel_hold"] = statement.hold
    if draft.shipping_method and draft.shipping_method != existing.shipping_method:
        changes["shipping_method"] = draft.shipping_method
    charges = (draft.shipping_total, draft.tax_total, draft.discount_total)
    if charges != (existing.shipping_total, existing.tax_total, existing.discount_total):
        changes["charges"] = charges
    if changes:
        orders.modify(session, tenant_id, existing.number, actor=actor, **changes)


def _lines_changed(order: Order, lines: list[LineItem]) -> bool:
    """Prices count: an Amazon order first stated unpriced (Pending) is priced later."""
    have = sorted((line.sku, line.quantity, line.unit_price) for line in order.lines)
    want = sorted(
        (line.sku, line.quantity, line.unit_price) for line in lines if line.unit_price is not None
    )
    if any(line.unit_price is None for line in lines):
        # Unpriced lines keep the order's prices: compare what was stated.
        have = sorted((line.sku, line.quantity) for line in order.lines)
        want = sorted((line.sku, line.quantity) for line in lines)
    return have != want


def _mapped_lines(
    session: Session, connection: Connection, statement: ChannelOrder
) -> list[LineItem]:
    """The channel's SKUs (or product ids, when the SKU is empty) in our SKUs."""
    lines = statement.draft.lines
    refs = {r for line in lines for r in (line.sku, line.channel_product_id) if r}
    mapped: Mapping[str, str] = dict(
        session.execute(
            select(SkuMapping.channel_ref, SkuMapping.sku).where(
                SkuMapping.connection_id == connection.id, SkuMapping.channel_ref.in_(refs)
            )
        ).all()
    )
    known = set(
        session.scalars(
            select(Product.sku).where(
                Product.tenant_id == connection.tenant_id,
                Product.sku.in_(refs | set(mapped.values())),
            )
        )
    )
    out = []
    for i, line in enumerate(lines, start=1):
        sku = mapped.get(line.sku) or (line.sku if line.sku in known else None)
        if sku is None and line.channel_product_id:
            sku = mapped.get(line.channel_product_id)
        if sku is None:
            ref = line.sku or f"product {line.channel_product_id}"
            raise PayloadError(
                f"line {i}: unknown SKU {ref!r}; add a SKU mapping for connection"
                f" {connection.id} and replay"
            )
        out.append(replace(line, sku=sku))
    return out


def pending_entries(session: Session, older_than: datetime, limit: int = 10_000) -> list[int]:
    return list(
        session.scalars(
            select(InboxEntry.id)
            .where(InboxEntry.status == "pending", InboxEntry.enqueued_at < older_than)
            .order_by(InboxEntry.id)
            .limit(limit)
        )
    )


def mark_enqueued(session: Session, ids: list[int]) -> None:
    if ids:
        session.execute(
            update(InboxEntry.__table__)
            .where(InboxEntry.__table__.c.id.in_(ids))
            .values(enqueued_at=utcnow())
        )


def connection_view(connection: Connection, secret_names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "id": connection.id,
        "plugin": connection.plugin,
        "name": connection.name,
        "paused": connection.paused,
        "settings": redact(connection.settings, secret_names),
        "cursor": connection.cursor,
        "source": connection.source,
        "last_polled_at": _iso(connection.last_polled_at),
        "last_poll_error": connection.last_poll_error,
        "last_poll_error_at": _iso(connection.last_poll_error_at),
        "created_at": connection.created_at.isoformat(),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
