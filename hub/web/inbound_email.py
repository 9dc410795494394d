"""``POST /inbound/email/<tenant>``: e-mails to a shop's support address, posted by its mail
provider (Mailgun's route ``forward()``: the parsed message as a form, signed); they become
tickets or messages of tickets (hub.core.email_intake).

The provider retries anything but a 200 or a 406 for hours, so: a 200 once the e-mail is in
(again for one already in: nothing is added twice); a 406 for what will never be taken (no
e-mail intake at this address, no sender), so it stops; a 401 for a bad signature (a key
being fixed is worth its retries). The signature is checked before anything else of the post
is used, and no answer repeats what was posted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from hub.core import email_intake
from hub.core.db import utcnow
from hub.core.errors import Invalid
from hub.core.models import Tenant
from hub.core.scoping import TENANT_KEY
from hub.web.api.framework import ApiError

if TYPE_CHECKING:
    from hub.runtime import Runtime

bp = Blueprint("inbound_email", __name__)
# Attachments per e-mail the hub looks at; a mail with more keeps the first ones.
MAX_ATTACHMENTS = 10


@bp.post("/inbound/email/<tenant>")
def receive(tenant: str) -> ResponseReturnValue:
    runtime: Runtime = current_app.extensions["orderhub"]
    settings = runtime.settings.tenants.get(tenant)
    intake = settings.tickets.email if settings is not None else None
    if settings is None or intake is None:
        raise ApiError(406, "not_acceptable", "no e-mail intake at this address")
    limit = runtime.settings.max_attachment_bytes
    request.max_content_length = limit * MAX_ATTACHMENTS + 1024 * 1024
    email_intake.verify(intake, request.form, utcnow())
    files = []
    for key in sorted(request.files, key=_attachment_order)[:MAX_ATTACHMENTS]:
        upload = request.files[key]
        files.append((upload.filename or key, upload.read(limit + 1)))
    try:
        mail = email_intake.parse(request.form, files)
    except Invalid as exc:
        raise ApiError(406, "not_acceptable", exc.message) from None
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
        if tenant_id is None:
            raise ApiError(406, "not_acceptable", "no e-mail intake at this address")
        session.info[TENANT_KEY] = tenant_id
        ticket, added = email_intake.take(
            session,
            tenant_id,
            settings.tickets,
            mail,
            runtime.settings.data_dir,
            settings.order_number_prefix,
            limit,
        )
        return {"ticket": ticket.number, "added": added}, 200


def _attachment_order(key: str) -> tuple[int, str]:
    """attachment-1, attachment-2 … attachment-10 in their order."""
    tail = key.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else 1_000_000, key)
