"""Inbound webhooks: ``POST /hooks/<tenant>/<connection id>``.

Raw bytes first, then the plugin's signature check, then the inbox — committed before we
answer — then the ingest job. A forged request is a 401 and leaves no row anywhere; a
duplicate is a 200 that does nothing; if the broker is down the delivery is still stored and
acknowledged, and the sweeper enqueues it later.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hub.core import intake
from hub.core.adapters import InboundRequest
from hub.core.models import Connection, Tenant
from hub.web.api.framework import MAX_ID
from hub.web.errors import error_body

bp = Blueprint("hooks", __name__)


@bp.post("/hooks/<tenant>/<int:connection_id>")
def receive(tenant: str, connection_id: int) -> ResponseReturnValue:
    runtime = current_app.extensions["orderhub"]
    if connection_id > MAX_ID:
        return error_body(404, "not_found", "no such connection")
    body = request.get_data(cache=False)
    with runtime.transaction() as session:
        connection = session.scalar(
            select(Connection)
            .join(Tenant, Tenant.id == Connection.tenant_id)
            .where(Connection.id == connection_id, Tenant.slug == tenant)
        )
        if connection is None:
            return error_body(404, "not_found", "no such connection")
        adapter = runtime.channel_adapter(connection)
        outcome, entry_id = intake.receive(
            session,
            connection,
            adapter,
            InboundRequest(headers=dict(request.headers), body=body, url=request.url),
        )
        if outcome == "forged":  # nothing was written
            return error_body(401, "bad_signature", "the signature does not match")
    if entry_id is not None:
        runtime.jobs.send("ingest", entry_id)
    if adapter.empty_acknowledgement:
        return "", 200
    return jsonify({"received": outcome != "ignored", "duplicate": outcome == "duplicate"}), 200
