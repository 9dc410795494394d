"""SKU mappings: on a connection's page, tell the hub which of our SKUs a channel's own SKU
(or product id) is, so its deliveries rejected for an unknown SKU can be replayed."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from hub.core.errors import HubError
from hub.web.admin import api, field_errors, page


@page(
    "/integrations/connections/<int:connection_id>/sku-mappings",
    "channels.write",
    methods=("POST",),
)
def connection_mapping(connection_id: int) -> ResponseReturnValue:
    channel_ref = request.form.get("channel_ref", "").strip()
    sku = request.form.get("sku", "").strip()
    try:
        api(
            "add_sku_mapping",
            connection_id=connection_id,
            body={"channel_ref": channel_ref, "sku": sku},
        )
    except HubError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        errors = field_errors(exc)
        if "" in errors and "unknown SKU" in errors[""]:
            errors = {"sku": errors[""]}
        return render_template(
            "admin/connection.html",
            connection=api("get_connection", connection_id=connection_id),
            inbox=api("list_inbox", query={"connection": str(connection_id), "per_page": "100"}),
            status=None,
            mapping_errors=errors,
            mapping_form=request.form,
        ), exc.status
    flash(
        _(
            "The channel's %(ref)s is now our %(sku)s. Replay the deliveries rejected for it.",
            ref=channel_ref,
            sku=sku,
        )
    )
    return redirect(url_for("admin.connection", connection_id=connection_id, status="rejected"))
