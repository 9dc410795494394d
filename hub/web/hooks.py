"""Inbound webhooks: ``POST /hooks/<tenant>/<connection id>``.

Raw bytes first, then the plugin's signature check, then the inbox — committed before we
answer — then the ingest job. A forged request is a 401 and leaves no row anywhere; a
duplicate is a 200 that does nothing; if the broker is down (or hangs: its client gives up
after a second) the delivery is still stored and acknowledged, and the sweeper enqueues it.

The acknowledgement is what a channel waits for, so it does little: the connection and its
adapter come from per-process caches (``Runtime.hook_connection`` / ``adapter_for``), and its
unit of work is the one INSERT, which PostgreSQL commits by itself
(``hub.core.db.single_statement``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from hub.core import intake
from hub.core.adapters import InboundRequest
from hub.core.db import single_statement
from hub.web.api.framework import MAX_ID
from hub.web.errors import error_body
from hub.web.public_url import addressed_url

if TYPE_CHECKING:
    from hub.runtime import Runtime

bp = Blueprint("hooks", __name__)
logger = logging.getLogger("orderhub.web")


@bp.post("/hooks/<tenant>/<int:connection_id>")
def receive(tenant: str, connection_id: int) -> ResponseReturnValue:
    runtime = current_app.extensions["orderhub"]
    if connection_id > MAX_ID:
        return error_body(404, "not_found", "no such connection")
    body = request.get_data(cache=False)
    # Its unit of work is the one INSERT (now and then a lookup of the connection before it).
    with single_statement(runtime.engine) as db:
        connection = runtime.hook_connection(db, tenant, connection_id)
        if connection is None:
            return error_body(404, "not_found", "no such connection")
        adapter = runtime.adapter_for(connection)
        outcome, entry_id = intake.receive(
            db,
            connection,
            adapter,
            InboundRequest(headers=dict(request.headers), body=body, url=addressed_url()),
        )
        if outcome == "forged":  # nothing was written
            return error_body(401, "bad_signature", "the signature does not match")
    if entry_id is not None and not runtime.jobs.send("ingest", entry_id):
        _unqueued(runtime, entry_id)
    if adapter.empty_acknowledgement:
        return "", 200
    return jsonify({"received": outcome != "ignored", "duplicate": outcome == "duplicate"}), 200


def _unqueued(runtime: Runtime, entry_id: int) -> None:
    """The broker refused the job: mark the entry so the next sweep queues it, instead of
    waiting out the grace period kept for jobs in flight. The delivery is stored either way,
    so a failure here is only logged: the channel still gets its 200."""
    try:
        with runtime.transaction() as session:
            intake.mark_unqueued(session, [entry_id])
    except SQLAlchemyError as exc:
        logger.warning("inbox entry %s: could not mark it for the sweeper: %s", entry_id, exc)
