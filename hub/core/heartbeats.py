"""Worker heartbeats: each ``orderhub worker`` process says it is alive every few seconds, so
``/readyz`` can tell "Redis is up but nobody takes jobs from it" from a healthy hub."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from hub.core.models import WorkerHeartbeat


def beat(session: Session, worker_id: str, queues: str, now: datetime) -> None:
    """Record that ``worker_id`` is alive now. Only that process writes its row, so an UPDATE
    that finds nothing can INSERT without racing anyone."""
    found = session.execute(
        update(WorkerHeartbeat)
        .where(WorkerHeartbeat.id == worker_id)
        .values(last_seen=now, queues=queues)
    )
    if found.rowcount == 0:  # type: ignore[attr-defined]
        session.add(WorkerHeartbeat(id=worker_id, queues=queues, started_at=now, last_seen=now))


def forget(session: Session, worker_id: str) -> None:
    """A worker that stops cleanly leaves no row behind to go stale."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.id == worker_id))


def prune(session: Session, before: datetime) -> None:
    """Rows of workers killed long ago (a killed worker cannot remove its own)."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_seen < before))


def live(session: Session, since: datetime) -> int:
    """How many workers were heard from since then."""
    return (
        session.scalar(
            select(func.count())
            .select_from(WorkerHeartbeat)
            .where(WorkerHeartbeat.last_seen >= since)
        )
        or 0
    )
