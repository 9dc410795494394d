"""The job queue: Dramatiq on Redis in production, or the in-process stub broker (embedded).

Actors are bound to a runtime here rather than at import time, so one process can build
several runtimes (tests do) and no module-level broker is ever created by accident.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import TimeLimit, default_middleware

from hub.metrics import JOBS
from hub.worker import actors
from hub.worker.heartbeat import Heartbeat

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.worker")

# Seconds the Redis client waits to connect, and for an answer. redis-py's 5 s would hold every
# webhook answer that long while Redis hangs (the channel gives up after 5 s); the delivery is
# stored before the enqueue, so giving up early loses nothing: the sweeper queues it later.
# The broker URL's own options (``?socket_timeout=3``) win.
REDIS_TIMEOUT = 1.0

# Dramatiq's time limit watches jobs from a thread it starts at process boot and never stops.
# An embedded broker is built per runtime, not per process (tests build hundreds), so they
# share one: a thread per broker would pile up and starve the process of its GIL.
_time_limit = TimeLimit()
_time_limit_lock = threading.Lock()
_time_limit_booted = False


def _embedded_broker() -> StubBroker:
    middleware = [m() if m is not TimeLimit else _time_limit for m in default_middleware]
    broker = StubBroker(middleware=middleware)
    global _time_limit_booted
    with _time_limit_lock:
        if not _time_limit_booted:
            _time_limit.after_process_boot(broker)  # starts the watching thread, once
            _time_limit_booted = True
    return broker


class JobMetrics(dramatiq.Middleware):
    """Counts every job's outcome by actor for ``/metrics``: done, failed (an exception: a
    retry follows unless its retries are spent) or skipped."""

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        JOBS.labels(message.actor_name, "failed" if exception is not None else "done").inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        JOBS.labels(message.actor_name, "skipped").inc()


class Jobs:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        if settings.embedded_broker:
            self.broker: dramatiq.Broker = _embedded_broker()
        else:
            pool = redis.ConnectionPool.from_url(
                settings.broker_url,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            self.broker = RedisBroker(connection_pool=pool, namespace=settings.broker_namespace)
        self.broker.add_middleware(JobMetrics())
        self.actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        for name, (fn, options) in actors.ACTORS.items():
            self.actors[name] = dramatiq.actor(
                _bound(fn, runtime), actor_name=name, broker=self.broker, **options
            )
        self.worker: dramatiq.Worker | None = None
        self._heartbeat: Heartbeat | None = None
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self.runtime = runtime

    def send(self, actor: str, *args: Any) -> bool:
        """Enqueue; on a broker outage log and return False — the outbox sweeper retries."""
        try:
            self.actors[actor].send(*args)
        except Exception as exc:
            logger.warning("could not enqueue %s%r: %s (the sweeper will retry)", actor, args, exc)
            return False
        return True

    @property
    def embedded(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue (delayed queues end in ``.DQ``), for ``/metrics``;
        empty when the broker does not answer (the health check says why)."""
        queues = sorted(self.broker.get_declared_queues())
        queues += sorted(self.broker.get_declared_delay_queues())
        if self.embedded:
            stub = self.broker
            return {q: stub.queues[q].qsize() for q in queues if q in stub.queues}  # type: ignore[attr-defined]
        try:
            client = self.broker.client  # type: ignore[attr-defined]
            namespace = self.runtime.settings.broker_namespace
            return {q: int(client.llen(f"{namespace}:{q}")) for q in queues}
        except Exception as exc:
            logger.warning("metrics: cannot read queue depths: %s", exc)
            return {}

    def health(self) -> dict[str, object]:
        """Reachable or not, for an unauthenticated caller: no host, no exception text (the
        log has them)."""
        if self.embedded:
            return {"ok": True, "kind": "embedded", "worker": self.worker is not None}
        try:
            self.broker.client.ping()  # type: ignore[attr-defined]
        except Exception as exc:
            logger.warning("health: the broker does not answer: %s", exc)
            return {"ok": False, "kind": "redis", "error": f"unreachable ({type(exc).__name__})"}
        return {"ok": True, "kind": "redis"}

    def start_worker(self, threads: int | None = None, *, sweep: bool = True) -> dramatiq.Worker:
        self.worker = dramatiq.Worker(
            self.broker,
            worker_threads=threads or self.runtime.settings.worker_threads,
            worker_timeout=100,
        )
        self.worker.start()
        if not self.embedded:
            self._heartbeat = Heartbeat(self.runtime, sorted(self.broker.get_declared_queues()))
            self._heartbeat.start()
        if sweep:
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name="orderhub-sweeper", daemon=True
            )
            self._sweeper.start()
        return self.worker

    def _sweep_loop(self) -> None:
        interval = self.runtime.settings.sweep_seconds
        while not self._stop.wait(interval):
            try:
                actors.sweep(self.runtime)
            except Exception:
                logger.exception("outbox sweep failed")

    def join(self, timeout_ms: int = 30_000) -> None:
        """Wait until every queued job has run (stub broker: tests and embedded shutdown)."""
        if isinstance(self.broker, StubBroker):
            for queue in list(self.broker.queues):
                self.broker.join(queue, timeout=timeout_ms, fail_fast=True)
        if self.worker is not None:
            self.worker.join()

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        self.broker.close()


def _bound(fn: Callable[..., None], runtime: Runtime) -> Callable[..., None]:
    def job(*args: Any) -> None:
        fn(runtime, *args)

    job.__name__ = fn.__name__
    job.__qualname__ = fn.__qualname__
    job.__doc__ = fn.__doc__
    return job
