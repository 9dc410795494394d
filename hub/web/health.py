"""``/healthz``: is the process alive (for a liveness probe: it never asks the database, so a
database outage does not get every web process restarted). ``/readyz``: is the database
reachable and migrated to head, is the broker reachable, and does a worker take jobs from it
(for a readiness probe and a load balancer).

Unauthenticated, so it names no host and repeats no exception text (which can carry addresses
and user names): each check says ok or not, and a short generic reason. The log has the rest.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hub.core import heartbeats, migrate
from hub.core.db import utcnow

if TYPE_CHECKING:
    from hub.runtime import Runtime

bp = Blueprint("health", __name__)
logger = logging.getLogger("orderhub.web")


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify({"status": "ok"}), 200


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    runtime = current_app.extensions["orderhub"]
    checks: dict[str, dict[str, object]] = {"database": _database(runtime)}
    checks["broker"] = runtime.jobs.health()
    checks["workers"] = _workers(runtime, database_ok="revision" in checks["database"])
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ok" if ok else "degraded", "checks": checks}), 200 if ok else 503


def _database(runtime: Runtime) -> dict[str, object]:
    engine = runtime.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current(engine)
        heads = migrate.head_revisions(engine)
    except Exception as exc:
        logger.warning("health: the database does not answer: %s", exc)
        return {
            "ok": False,
            "dialect": engine.dialect.name,
            "error": f"unreachable ({type(exc).__name__})",
        }
    check: dict[str, object] = {
        "ok": current == heads,
        "dialect": engine.dialect.name,
        "revision": sorted(current),
    }
    if current != heads:
        check["error"] = "schema is not up to date: run 'orderhub db upgrade'"
    return check


def _workers(runtime: Runtime, *, database_ok: bool) -> dict[str, object]:
    """Embedded broker: the worker in this process. Redis: the ``orderhub worker`` processes
    heard from within ``[worker] heartbeat_timeout_seconds``."""
    jobs, settings = runtime.jobs, runtime.settings
    if jobs.embedded:
        running = jobs.worker is not None
        check: dict[str, object] = {"ok": running, "kind": "embedded", "live": int(running)}
        if not running:
            check["error"] = (
                "no worker runs in this process: with the embedded broker, run the hub with"
                " 'orderhub serve' (or use Redis and 'orderhub worker')"
            )
        return check
    window = settings.heartbeat_timeout_seconds
    check = {"ok": False, "kind": "redis", "live": 0, "window_seconds": window}
    if not database_ok:
        check["error"] = "unknown: the database does not answer"
        return check
    try:
        with runtime.transaction() as session:
            live = heartbeats.live(session, utcnow() - timedelta(seconds=window))
    except Exception as exc:
        logger.warning("health: cannot read worker heartbeats: %s", exc)
        check["error"] = f"cannot read worker heartbeats ({type(exc).__name__})"
        return check
    check["live"], check["ok"] = live, live > 0
    if not live:
        check["error"] = f"no worker heard from in {window:g} s: start 'orderhub worker'"
    return check
