"""``/healthz``: is the database reachable and migrated, and is the broker reachable."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hub.core import migrate

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    runtime = current_app.extensions["orderhub"]
    checks: dict[str, dict[str, object]] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current(runtime.engine)
        heads = migrate.head_revisions(runtime.engine)
        checks["database"] = {
            "ok": current == heads,
            "dialect": runtime.engine.dialect.name,
            "revision": sorted(current),
        }
        if current != heads:
            checks["database"]["error"] = "schema is not up to date: run 'orderhub db upgrade'"
    except Exception as exc:
        checks["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    checks["broker"] = runtime.jobs.health()
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ok" if ok else "degraded", "checks": checks}), 200 if ok else 503
