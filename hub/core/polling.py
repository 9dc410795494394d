"""Pull channels: who may poll a connection now, which connections are due, and what a poll
leaves on the connection (cursor, last success, last error).

A poll holds a *lease* on its connection — ``poll_started_at``, taken by one conditional UPDATE
and renewed with every page it stores — rather than a row lock. A lock would have to stay open
across minutes of rate-limited HTTP calls (SQLite has no ``SKIP LOCKED``, and its one writer
would be blocked all that time); a lease is a short write, works the same on SQLite and
PostgreSQL, and a poller that dies leaves a lease that simply goes stale after ``LEASE``.
Every write a poller makes afterwards names the lease it holds, so a poller that outlived its
lease cannot overwrite the cursor of the one that took over.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from hub.core.db import utcnow
from hub.core.models import Connection

# Longer than any one page takes (Amazon's getOrders allows one request a minute), since the
# lease is renewed page by page; this is also how long a crashed poller blocks the next one.
LEASE = timedelta(minutes=15)
ERROR_LENGTH = 2000  # connections.last_poll_error

_table = Connection.__table__
_c = _table.c


def claim(
    session: Session, connection_id: int, now: datetime, *, every: int | None = None
) -> datetime | None:
    """Take the poll lease of an unpaused connection that nobody is polling; with ``every``
    (seconds), only when its last successful poll is at least that old — so a scheduled poll
    queued twice runs once, while Dramatiq's retry of a failed one still runs. Returns the
    lease to pass to every later call, or None when the connection is not to be polled now.

    One UPDATE decides, so two workers asking at once cannot both get it (PostgreSQL re-checks
    the condition against the row the other committed; SQLite runs one writer at a time)."""
    stmt = update(_table).where(
        _c.id == connection_id,
        _c.paused.is_(False),
        or_(_c.poll_started_at.is_(None), _c.poll_started_at < now - LEASE),
    )
    if every is not None:
        since = now - timedelta(seconds=every)
        stmt = stmt.where(or_(_c.last_polled_at.is_(None), _c.last_polled_at <= since))
    result = session.execute(stmt.values(poll_started_at=now))
    return now if result.rowcount == 1 else None


def renew(session: Session, connection_id: int, lease: datetime) -> datetime | None:
    """Extend a lease still held (a new page arrived); None when another poller took over."""
    now = utcnow()
    return now if _held(session, connection_id, lease, poll_started_at=now) else None


def finish(session: Session, connection_id: int, lease: datetime, cursor: str | None) -> bool:
    """A poll fetched and stored everything: save where the next one starts, clear the last
    error and give the lease back. False when the lease was lost (nothing is written)."""
    return _held(
        session,
        connection_id,
        lease,
        cursor=cursor,
        last_polled_at=utcnow(),
        last_poll_error=None,
        last_poll_error_at=None,
        poll_started_at=None,
    )


def fail(session: Session, connection_id: int, lease: datetime, error: str) -> bool:
    """A poll stopped half-way: keep the old cursor (the pages stored so far come again as
    duplicates next time), record why for the admin, and give the lease back."""
    return _held(
        session,
        connection_id,
        lease,
        last_poll_error=error[:ERROR_LENGTH],
        last_poll_error_at=utcnow(),
        poll_started_at=None,
    )


def due(session: Session, now: datetime, every: Mapping[str, int]) -> list[int]:
    """Unpaused connections of the pull plugins in ``every`` (plugin → seconds between polls)
    that nobody is polling and whose last poll, successful or failed, is at least that old.
    A failing channel is retried by Dramatiq in the short run, then at its own pace rather
    than on every sweep."""
    if not every:
        return []
    rows = session.execute(
        select(_c.id, _c.plugin, _c.last_polled_at, _c.last_poll_error_at)
        .where(
            _c.paused.is_(False),
            _c.plugin.in_(list(every)),
            or_(_c.poll_started_at.is_(None), _c.poll_started_at < now - LEASE),
        )
        .order_by(_c.id)
    ).all()
    out = []
    for connection_id, plugin, polled, failed in rows:
        last = max((t for t in (polled, failed) if t is not None), default=None)
        if last is None or last <= now - timedelta(seconds=every[plugin]):
            out.append(connection_id)
    return out


def _held(session: Session, connection_id: int, lease: datetime, **values: object) -> bool:
    result = session.execute(
        update(_table).where(_c.id == connection_id, _c.poll_started_at == lease).values(**values)
    )
    return result.rowcount == 1
