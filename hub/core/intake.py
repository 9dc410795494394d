"""Channel intake: connections, the inbox of raw deliveries, and turning deliveries into orders.

A delivery is verified over its raw bytes, stored (unique per connection and delivery key),
committed and only then acknowledged; the ingest job parses it later, so nothing a channel was
told we received can be lost, and retries or duplicates never make a second order.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection as DbConnection
from sqlalchemy import String, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hub.core import audit, config_sync, orders, plugin_settings, storable
from hub.core.adapters import (
    ChannelAdapter,
    ChannelOrder,
    Delivery,
    InboundRequest,
    PayloadError,
    Pulled,
)
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.http import HttpError
from hub.core.models import Connection, InboxEntry, Order, Product, SkuMapping, Tenant
from hub.core.normalised import LineItem
from hub.core.secret_box import SecretBox, redact
from hub.metrics import ORDERS_INGESTED
from hub.settings import TenantSettings

KEY_LENGTH = 200  # inbox.delivery_key
REASON_LENGTH = 2000  # inbox.reason
INBOX_STATUSES = ("pending", "processed", "rejected", "discarded")
# What a plugin's pure code raises on content it did not expect (a year-10000 timestamp, an
# integer of 5,000 digits, a JSON body nested 100,000 deep): trying again cannot help.
CONTENT_ERRORS = (RecursionError, ValueError, TypeError, LookupError, ArithmeticError)
logger = logging.getLogger("orderhub.intake")


class ConnectionFacts(Protocol):
    """What receiving and ingesting read of a connection: an ORM ``Connection``, or the row
    the webhook route and the ingest job select with the statement they run anyway (loading
    an ORM object per delivery was a quarter of the acknowledgement's time)."""

    @property
    def id(self) -> int: ...

    @property
    def tenant_id(self) -> int: ...

    @property
    def plugin(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> dict[str, Any]: ...

    @property
    def source(self) -> str: ...


class Rejected(Exception):
    """``ingest`` could not apply a delivery (an unknown SKU, an order the hub refuses) and
    may have applied part of it. The caller rolls its transaction back — undoing that part —
    and records the rejection with ``reject`` in a short transaction of its own: cheaper than
    a savepoint around every delivery for a failure that is rare."""

    def __init__(self, entry_id: int, reason: str) -> None:
        super().__init__(reason)
        self.entry_id = entry_id
        self.reason = reason


_inbox = InboxEntry.__table__
_connections = Connection.__table__
_tenants = Tenant.__table__
_mappings = SkuMapping.__table__


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
    plugin_settings.check(plugin, settings, box=box, source=source)
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


CONFIG = config_sync.Kind(
    section="connections",
    noun="connection",
    family="channel",
    model=Connection,
    entity="connection",
    plugin_fixed="its orders and deliveries belong to that channel",
)


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
    the new ones and update changed settings, by name (the rules shared with carrier accounts
    are in ``hub.core.config_sync``). A connection that left the file is kept (its inbox and
    orders refer to it), to be paused by whoever removed it; the pause is the API's."""
    return config_sync.sync(
        session,
        tenant_id,
        CONFIG,
        tenant.connections,
        channels,
        box=box,
        file=file,
        actor=actor,
        create=lambda cls, entry: create_connection(
            session,
            tenant_id,
            cls,  # type: ignore[arg-type]
            entry["name"],
            dict(entry.get("settings", {})),
            box=box,
            actor=actor,
            source="config",
        ),
    )


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


_PUSH_CONNECTION = (
    select(
        _connections.c.id,
        _connections.c.tenant_id,
        _connections.c.plugin,
        _connections.c.name,
        _connections.c.settings,
        _connections.c.source,
    )
    .join_from(_connections, _tenants, _tenants.c.id == _connections.c.tenant_id)
    .where(_connections.c.id == bindparam("b_connection"), _tenants.c.slug == bindparam("b_slug"))
)


def push_connection(db: DbConnection, slug: str, connection_id: int) -> ConnectionFacts | None:
    """The connection a webhook URL names, if it belongs to that tenant (else None: a 404)."""
    return db.execute(  # type: ignore[return-value]
        _PUSH_CONNECTION, {"b_connection": connection_id, "b_slug": slug}
    ).first()


def receive(
    db: DbConnection, connection: ConnectionFacts, adapter: ChannelAdapter, request: InboundRequest
) -> tuple[str, int | None]:
    """Verify and store one delivery. Returns ("forged" | "ignored" | "duplicate" | "stored",
    the new inbox id). Nothing is written for a forged request. ``db`` is a Core connection:
    the webhook route needs no ORM session for its one statement."""
    if not adapter.verify(request):
        return "forged", None
    try:
        delivery = adapter.delivery(request)
    except CONTENT_ERRORS as exc:
        # Signed, but the plugin cannot read even its key (nested too deeply to decode, say):
        # kept by its hash, so it is rejected visibly instead of failing the acknowledgement
        # (the channel would retry it, then give up on the webhook).
        logger.warning(
            "connection %s: %s could not key a signed delivery (%s); stored by its hash",
            connection.id,
            connection.plugin,
            describe(exc),
        )
        delivery = Delivery("body-sha256:" + hashlib.sha256(request.body).hexdigest())
    if delivery is None:
        return "ignored", None
    entry_id = _store(
        db, connection, delivery.key, delivery.topic, dict(request.headers), request.body
    )
    return ("stored", entry_id) if entry_id is not None else ("duplicate", None)


def store_pulled(
    session: Session, connection: ConnectionFacts, deliveries: list[Pulled]
) -> list[int]:
    """Store what one poll page fetched, exactly as a webhook delivery is stored (pending,
    unique per connection and key). Returns the new inbox ids; the rest were duplicates,
    which a poll repeated from an old cursor is expected to bring."""
    ids = []
    db = session.connection()
    for pulled in deliveries:
        entry_id = _store(db, connection, pulled.key, pulled.topic, {}, pulled.body)
        if entry_id is not None:
            ids.append(entry_id)
    return ids


def _store(
    db: DbConnection,
    connection: ConnectionFacts,
    key: str,
    topic: str | None,
    headers: dict[str, str],
    body: bytes,
) -> int | None:
    """One row in the inbox, or None when (connection, key) is there already. A single
    INSERT … ON CONFLICT DO NOTHING, so concurrent copies of a delivery never race."""
    now = utcnow()
    return db.execute(
        _insert_entry(db.dialect.name),
        {
            "tenant_id": connection.tenant_id,
            "connection_id": connection.id,
            "delivery_key": _stored_key(key),
            "topic": topic,
            "headers": headers,
            "body": body,
            "status": "pending",
            "attempts": 0,
            "received_at": now,
            "enqueued_at": now,
        },
    ).scalar()


@functools.cache
def _insert_entry(dialect: str) -> Any:
    """Built once per dialect: one runs for every delivery, and building it anew each time
    was about 7% of an acknowledgement's CPU."""
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        ins(_inbox)
        .on_conflict_do_nothing(index_elements=["connection_id", "delivery_key"])
        .returning(_inbox.c.id)
    )


def _stored_key(key: str) -> str:
    """Keys longer than the column are hashed, never truncated (two long keys sharing a
    prefix would otherwise look like one delivery); so is a key the column cannot hold (a NUL
    or a lone surrogate read out of a body), or the acknowledgement would fail on it."""
    if len(key) <= KEY_LENGTH and (key.isascii() or _encodable(key)) and "\x00" not in key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# --- ingesting -------------------------------------------------------------------------------


_LOCK_ENTRY = (
    select(
        _inbox.c.status,
        _inbox.c.topic,
        _inbox.c.body,
        _connections.c.id,
        _connections.c.tenant_id,
        _connections.c.plugin,
        _connections.c.name,
        _connections.c.settings,
        _connections.c.source,
        _connections.c.paused,
        _tenants.c.slug,
        # Most connections map no SKU (the channel's are ours): then no mapping query.
        exists()
        .where(
            _mappings.c.tenant_id == _connections.c.tenant_id,
            _mappings.c.connection_id == _connections.c.id,
        )
        .label("maps_skus"),
    )
    .join_from(_inbox, _connections, _connections.c.id == _inbox.c.connection_id)
    .join(_tenants, _tenants.c.id == _connections.c.tenant_id)
    .where(_inbox.c.id == bindparam("b_entry"))
    .with_for_update(of=_inbox)
)
# The entry's outcome, in the one UPDATE that ends the job (its attempt was counted when it
# started, by ``begin_attempt``).
_FINISH_ENTRY = (
    update(_inbox)
    .where(_inbox.c.id == bindparam("b_entry"))
    .values(
        status=bindparam("b_status"),
        reason=bindparam("b_reason"),
        processed_at=bindparam("b_at"),
        started_at=None,
    )
)
_REJECT_ENTRY = _FINISH_ENTRY.where(_inbox.c.status == "pending")
_PAUSED = exists().where(
    _connections.c.id == _inbox.c.connection_id, _connections.c.paused.is_(True)
)
# Nothing may start while another attempt runs: one that started after ``b_stale`` is
# running (or died less than a grace period ago, which cannot be told apart).
_IDLE = or_(_inbox.c.started_at.is_(None), _inbox.c.started_at < bindparam("b_stale"))
_BEGIN_ATTEMPT = (
    update(_inbox)
    .where(
        _inbox.c.id == bindparam("b_entry"),
        _inbox.c.status == "pending",
        _inbox.c.attempts < bindparam("b_max"),
        _IDLE,
        ~_PAUSED,
    )
    .values(attempts=_inbox.c.attempts + 1, started_at=bindparam("b_now"))
    .returning(_inbox.c.attempts)
)
# An entry whose last attempt never ended (its worker was killed, or it ran out of time)
# and that has no attempts left.
_GIVE_UP = (
    update(_inbox)
    .where(
        _inbox.c.id == bindparam("b_entry"),
        _inbox.c.status == "pending",
        _inbox.c.attempts >= bindparam("b_max"),
        _IDLE,
        ~_PAUSED,
    )
    .values(
        status="rejected",
        reason=func.substr(
            bindparam("b_reason", type_=String)
            + func.coalesce(_inbox.c.reason, "no error was recorded"),
            1,
            REASON_LENGTH,
        ),
        processed_at=bindparam("b_now"),
        started_at=None,
    )
)


def begin_attempt(
    db: DbConnection | Session, entry_id: int, now: datetime, stale: datetime, limit: int
) -> int | None:
    """Count an attempt at ingesting an entry and mark it running, before the attempt does
    anything: run it in a transaction of its own (committed first), so an attempt that
    crashes, or whose worker is killed, still counts. Returns the attempt's number, or None
    when there is nothing to attempt: the entry is done, its connection is paused, another
    attempt started after ``stale`` (the grace period ago) and may still be running, or
    ``limit`` attempts were made already — then the entry is rejected here, its last
    attempt having never ended."""
    params = {"b_entry": entry_id, "b_now": now, "b_stale": stale, "b_max": limit}
    attempt = db.execute(_BEGIN_ATTEMPT, params).scalar()
    if attempt is None:
        gave_up = db.execute(
            _GIVE_UP,
            {
                **params,
                "b_reason": f"failed {limit} times: the last attempt never ended (its worker"
                " stopped or ran out of time); before it: ",
            },
        )
        if gave_up.rowcount:  # type: ignore[attr-defined]
            logger.warning("inbox entry %s: rejected after %s attempts", entry_id, limit)
    return attempt


def fail_attempt(
    session: Session, entry_id: int, attempt: int, limit: int, error: BaseException
) -> bool:
    """Record an attempt that raised (after its transaction was rolled back). The last one
    allowed rejects the entry with the error, reworded (``describe``); before that the entry
    is marked as queued again, since the job queue retries it, and as no longer running.
    Returns True when the entry was rejected, so the caller stops retrying."""
    final = attempt >= limit
    problem = describe(error)
    if final:
        reason = f"failed {attempt} times; the last error: {problem}"
    else:
        reason = f"attempt {attempt} of {limit} failed: {problem}; it will be tried again"
    now = utcnow()
    values: dict[str, Any] = {"reason": reason[:REASON_LENGTH], "started_at": None}
    if final:
        values.update(status="rejected", processed_at=now)
    else:
        values["enqueued_at"] = now
    session.execute(
        update(_inbox).where(_inbox.c.id == entry_id, _inbox.c.status == "pending").values(**values)
    )
    return final


def describe(error: BaseException) -> str:
    """An error as the inbox shows it: its kind and the first line of its message, capped —
    never a traceback, never a database statement with its parameters (SQLAlchemy's message
    carries both), never a payload quoted at length."""
    inner = getattr(error, "orig", None) if isinstance(error, SQLAlchemyError) else None
    shown = inner if isinstance(inner, BaseException) else error
    lines = str(shown).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > 200:
        text = text[:199] + "…"
    kind = type(shown).__name__
    return f"{kind}: {text}" if text else kind


def ingest(
    session: Session,
    entry_id: int,
    adapter_for: Callable[[ConnectionFacts], ChannelAdapter],
    *,
    prefix_for: Callable[[str], str],
) -> str:
    """Turn one stored delivery into orders. Returns the entry's new status; a payload the
    channel plugin cannot read, or that could not be stored (``hub.core.storable``), is kept
    as rejected. When applying it fails (an unknown SKU, an order the hub refuses) it raises
    ``Rejected``: roll back, then call ``reject``. Anything else raised is a failed attempt
    (``fail_attempt``). The caller counted the attempt first (``begin_attempt``).

    ``prefix_for`` gives a tenant's order-number prefix by slug. The entry is locked and its
    connection read (paused, settings) in one statement; the delivery is parsed before
    anything is written, and the entry is updated once, at the end."""
    row = session.execute(_LOCK_ENTRY, {"b_entry": entry_id}).first()
    if row is None or row.status != "pending":
        return row.status if row else "missing"
    if row.paused:  # since the attempt began: resuming queues it again
        session.execute(update(_inbox).where(_inbox.c.id == entry_id).values(started_at=None))
        return "pending"
    adapter = adapter_for(row)
    try:
        statements = [
            storable.check_statement(statement, row.plugin)
            for statement in adapter.parse(row.topic, row.body)
        ]
    except HttpError as problem:
        # A channel that must be asked for the order (Shopee) could not be reached: try
        # again later if that may help (a failed attempt: the job queue retries it),
        # otherwise keep it as rejected with the reason, replayable once fixed.
        if problem.retryable:
            raise
        return _finish(session, entry_id, "rejected", str(problem))
    except (PayloadError, Invalid) as problem:
        return _finish(session, entry_id, "rejected", str(problem))
    except RecursionError:
        return _finish(
            session, entry_id, "rejected", f"{row.plugin}: the payload is nested too deeply"
        )
    except CONTENT_ERRORS as problem:
        # The plugin's own code tripped over the content: it would every time.
        return _finish(
            session,
            entry_id,
            "rejected",
            f"{row.plugin}: the payload could not be read ({describe(problem)})",
        )
    prefix = prefix_for(row.slug)
    try:
        for statement in statements:
            _apply(session, row, statement, prefix, maps_skus=row.maps_skus)
    except (PayloadError, Invalid) as problem:
        raise Rejected(entry_id, str(problem)[:REASON_LENGTH]) from problem
    ORDERS_INGESTED.labels(row.plugin).inc(len(statements))
    return _finish(session, entry_id, "processed", None)


def reject(session: Session, entry_id: int, reason: str) -> bool:
    """Record an entry ``ingest`` raised ``Rejected`` for, after the caller rolled back what
    was applied of it. Only a still-pending entry is touched: a copy of the job may have
    finished it in between. True when it was recorded."""
    done = session.execute(
        _REJECT_ENTRY,
        {"b_entry": entry_id, "b_status": "rejected", "b_reason": reason, "b_at": utcnow()},
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def _finish(session: Session, entry_id: int, status: str, reason: str | None) -> str:
    session.execute(
        _FINISH_ENTRY,
        {
            "b_entry": entry_id,
            "b_status": status,
            "b_reason": reason[:REASON_LENGTH] if reason else None,
            "b_at": utcnow(),
        },
    )
    return status


def _entry(session: Session, tenant_id: int, entry_id: int) -> InboxEntry:
    entry = session.scalar(
        select(InboxEntry)
        .where(InboxEntry.tenant_id == tenant_id, InboxEntry.id == entry_id)
        .with_for_update()
    )
    if entry is None:
        raise NotFound(f"no inbox entry {entry_id}")
    return entry


def replay(session: Session, tenant_id: int, entry_id: int, actor: str) -> InboxEntry:
    """Queue an entry again with a fresh set of attempts: whoever replays it has fixed
    something (a SKU mapping, the plugin)."""
    entry = _entry(session, tenant_id, entry_id)
    if entry.status == "processed":
        raise Conflict(f"inbox entry {entry_id} was processed already")
    if entry.status == "discarded":
        raise Conflict(f"inbox entry {entry_id} was discarded; it is never processed")
    entry.status, entry.reason, entry.enqueued_at = "pending", None, utcnow()
    entry.attempts = 0
    audit.record(session, tenant_id, actor, "inbox.replay", "inbox", entry_id, None, None)
    return entry


def discard(
    session: Session, tenant_id: int, entry_id: int, actor: str, reason: str, stale: datetime
) -> InboxEntry:
    """Give up on a delivery for good: it stays listed, as ``discarded``, and is never
    processed, replayed or queued again. A rejected one, or a pending one no attempt is
    running for (one that started after ``stale`` may be; wait for it to end)."""
    entry = _entry(session, tenant_id, entry_id)
    if entry.status in ("processed", "discarded"):
        raise Conflict(f"inbox entry {entry_id} was {entry.status} already")
    if entry.status == "pending" and entry.started_at is not None and entry.started_at > stale:
        raise Conflict(
            f"inbox entry {entry_id} is being processed now; discard it once that attempt ends"
        )
    before = {"status": entry.status, "reason": entry.reason}
    entry.status, entry.processed_at, entry.started_at = "discarded", utcnow(), None
    entry.reason = f"discarded by {actor}: {reason}"[:REASON_LENGTH]
    audit.record(
        session,
        tenant_id,
        actor,
        "inbox.discard",
        "inbox",
        entry_id,
        before,
        {"status": "discarded", "reason": reason},
    )
    return entry


def _apply(
    session: Session,
    connection: ConnectionFacts,
    statement: ChannelOrder,
    prefix: str,
    *,
    maps_skus: bool = True,
) -> None:
    """Upsert on (connection, external id), newest statement wins. ``maps_skus``: False when
    the connection has no SKU mapping, so none is looked up."""
    tenant_id = connection.tenant_id
    lines, products = _mapped_lines(session, connection, statement, maps_skus=maps_skus)
    draft = replace(
        statement.draft,
        lines=lines,
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
            products=products,
        )
        if statement.cancelled:
            orders.cancel(
                session, tenant_id, created.number, actor=actor, reason="cancelled on the channel"
            )
        else:
            _follow_channel_shipping(session, tenant_id, created.number, statement, actor)
        return
    if existing.external_updated_at and statement.event_time <= existing.external_updated_at:
        return  # an older (or repeated) statement: the newer one already applied
    existing.external_updated_at = statement.event_time
    if existing.status not in orders.OPEN_STATUSES:
        _follow_channel_shipping(session, tenant_id, existing.number, statement, actor)
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
    charges = (draft.shipping_total, draft.tax_total, draft.discount_total, draft.fees_total)
    if charges != (
        existing.shipping_total,
        existing.tax_total,
        existing.discount_total,
        existing.fees_total,
    ):
        changes["charges"] = charges
    if changes:
        orders.modify(session, tenant_id, existing.number, actor=actor, **changes)
    _follow_channel_shipping(session, tenant_id, existing.number, statement, actor)


def _follow_channel_shipping(
    session: Session, tenant_id: int, number: str, statement: ChannelOrder, actor: str
) -> None:
    """An order the channel fulfils takes the shipping status the channel reports."""
    if statement.channel_shipped and statement.draft.fulfilled_by_channel:
        orders.follow_channel_shipping(
            session,
            tenant_id,
            number,
            statement.channel_shipped,
            actor=actor,
            channel_status=statement.channel_status,
        )


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


_MAPPINGS = select(_mappings.c.channel_ref, _mappings.c.sku).where(
    _mappings.c.connection_id == bindparam("b_connection"),
    _mappings.c.channel_ref.in_(bindparam("b_refs", expanding=True)),
)


def _mapped_lines(
    session: Session, connection: ConnectionFacts, statement: ChannelOrder, *, maps_skus: bool
) -> tuple[list[LineItem], dict[str, Any]]:
    """The channel's SKUs (or product ids, when the SKU is empty) in our SKUs, and the
    product rows of every SKU involved, which ``orders.create`` takes rather than read them
    a second time."""
    lines = statement.draft.lines
    refs = {r for line in lines for r in (line.sku, line.channel_product_id) if r}
    if not refs:
        return [], {}
    mapped: Mapping[str, str] = (
        dict(
            session.execute(_MAPPINGS, {"b_connection": connection.id, "b_refs": list(refs)}).all()
        )
        if maps_skus
        else {}
    )
    products = orders.products_by_sku(session, connection.tenant_id, refs | set(mapped.values()))
    out = []
    for i, line in enumerate(lines, start=1):
        sku = mapped.get(line.sku) or (line.sku if line.sku in products else None)
        if sku is None and line.channel_product_id:
            sku = mapped.get(line.channel_product_id)
        if sku is None:
            ref = line.sku or f"product {line.channel_product_id}"
            raise PayloadError(
                f"line {i}: unknown SKU {ref!r}; add a SKU mapping for connection"
                f" {connection.id} and replay"
            )
        out.append(replace(line, sku=sku))
    return out, products


def claim_unqueued(session: Session, older_than: datetime, limit: int = 10_000) -> list[int]:
    """Pending entries whose job may be lost — never queued (``enqueued_at`` NULL: the
    broker refused it), or queued before ``older_than`` — stamped as queued now, in one
    statement: sweepers running at once (one per worker process) never both claim an entry,
    and a backlog that is being worked through is queued again only after the grace period.
    Not an entry an attempt started on after ``older_than`` (it may be running: its end
    decides what comes next), nor one of a paused connection (resuming queues those).
    On PostgreSQL rows locked by a running ingest job or by another sweep are skipped;
    SQLite runs one writer at a time anyway."""
    due = (
        select(_inbox.c.id)
        .where(
            _inbox.c.status == "pending",
            or_(_inbox.c.enqueued_at.is_(None), _inbox.c.enqueued_at < older_than),
            or_(_inbox.c.started_at.is_(None), _inbox.c.started_at < older_than),
            ~_PAUSED,
        )
        .order_by(_inbox.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.scalars(
        update(_inbox)
        .where(_inbox.c.id.in_(due.scalar_subquery()))
        .values(enqueued_at=utcnow())
        .returning(_inbox.c.id)
    )
    return sorted(claimed)


def mark_unqueued(session: Session, ids: list[int]) -> None:
    """No job is queued for these pending entries (the broker refused it): the next sweep
    queues them, rather than waiting out the grace period meant for jobs in flight."""
    if ids:
        session.execute(
            update(_inbox)
            .where(_inbox.c.id.in_(ids), _inbox.c.status == "pending")
            .values(enqueued_at=None)
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
