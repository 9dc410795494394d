"""What the hub knows about its own processes: worker heartbeats (read by ``/readyz``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow


class WorkerHeartbeat(Base):
    """One row per ``orderhub worker`` process, rewritten every few seconds while it runs and
    removed when it stops cleanly; a killed worker's row simply goes stale. Not tenant data."""

    __tablename__ = "worker_heartbeats"

    # "<hostname>-<pid>": unique among live processes, and says where to look.
    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    queues: Mapped[str] = mapped_column(String(1000))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
