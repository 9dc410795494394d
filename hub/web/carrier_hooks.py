"""Carriers' tracking pushes: ``POST /carrier-hooks/<tenant>/<carrier account id>``.

Raw bytes first, then the plugin's signature check (``verify_push``) — a forged request is a
401 and changes nothing — then its parse, then the updates applied to the account's shipments
and committed before the 200.

Applied at once rather than stored for a job, unlike channel deliveries: a push carries a few
scans (not an order to review, reserve and route), applying them is a few small writes, and
doing it again is harmless (scans are de-duplicated, the status only moves forward). If the
database fails the carrier gets a 5xx and sends the push again — carriers retry — so no inbox
is needed to keep it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hub.core import tracking
from hub.core.adapters import InboundRequest, PayloadError
from hub.core.models import CarrierAccount, Tenant
from hub.web.api.framework import MAX_ID
from hub.web.errors import error_body
from hub.web.public_url import addressed_url

bp = Blueprint("carrier_hooks", __name__)


@bp.post("/carrier-hooks/<tenant>/<int:account_id>")
def receive(tenant: str, account_id: int) -> ResponseReturnValue:
    runtime = current_app.extensions["orderhub"]
    if account_id > MAX_ID:
        return error_body(404, "not_found", "no such carrier account")
    body = request.get_data(cache=False)
    with runtime.transaction() as session:
        account = session.scalar(
            select(CarrierAccount)
            .join(Tenant, Tenant.id == CarrierAccount.tenant_id)
            .where(CarrierAccount.id == account_id, Tenant.slug == tenant)
        )
        cls = runtime.plugins.adapters("carriers").get(account.plugin) if account else None
        if account is None or cls is None or "tracking_push" not in cls.capabilities:
            return error_body(404, "not_found", "no carrier account here takes tracking pushes")
        adapter = runtime.carrier_adapter(account)
        inbound = InboundRequest(headers=dict(request.headers), body=body, url=addressed_url())
        if not adapter.verify_push(inbound):
            return error_body(401, "bad_signature", "the signature does not match")
        try:
            updates = adapter.parse_push(inbound)
        except PayloadError as exc:
            return error_body(400, "bad_payload", str(exc))
        counts = tracking.record_push(
            session, account, updates, runtime.tenant_settings(tenant).tracking
        )
    return jsonify(counts), 200
