"""The heartbeat thread of an ``orderhub worker`` process (Redis broker): writes its row in
``worker_heartbeats`` every ``[worker] heartbeat_seconds`` and removes it on a clean stop."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from hub.core import heartbeats
from hub.core.db import utcnow

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.worker")
# Rows of workers not heard from for this long are deleted when a worker starts.
FORGET_AFTER = timedelta(days=1)


class Heartbeat:
    def __init__(self, runtime: Runtime, queues: list[str]) -> None:
        self.runtime = runtime
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self.queues = ",".join(sorted(queues))[:1000]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """The first beat is written before this returns, so a worker that says it runs is
        already counted by the health check."""
        with self.runtime.transaction() as session:
            heartbeats.prune(session, utcnow() - FORGET_AFTER)
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="orderhub-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.runtime.settings.heartbeat_seconds):
            self._beat()

    def _beat(self) -> None:
        try:
            with self.runtime.transaction() as session:
                heartbeats.beat(session, self.worker_id, self.queues, utcnow())
        except Exception as exc:  # the database is down: health says so on its own
            logger.warning("could not write the worker heartbeat: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            with self.runtime.transaction() as session:
                heartbeats.forget(session, self.worker_id)
        except Exception as exc:
            logger.warning("could not remove the worker heartbeat: %s", type(exc).__name__)
