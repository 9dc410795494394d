"""Integrations: the plugins on offer, connecting a marketplace with a form made from its
settings schema, and each connection's inbox with rejected deliveries and replay."""

from __future__ import annotations

import secrets

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from hub.core.errors import HubError
from hub.web.admin import api, enabled_plugin, field_errors, page
from hub.web.ui import schema_form


@page("/integrations", "channels.read")
def integrations() -> ResponseReturnValue:
    plugins = api("list_plugins")["items"]
    return render_template(
        "admin/integrations.html",
        channels=[p for p in plugins if p["kind"] == "channel" and p["enabled"]],
        others=[p for p in plugins if p["kind"] != "channel"],
        connections=api("list_connections")["items"],
    )


@page("/integrations/connect/<plugin>", "channels.write", methods=("GET", "POST"))
def connect(plugin: str) -> ResponseReturnValue:
    spec = enabled_plugin("channel", plugin)
    schema = spec["settings_schema"]
    fields = schema_form.fields(schema)
    errors: dict[str, str] = {}
    name = request.form.get("name", "").strip()
    if request.method == "POST":
        settings, errors = schema_form.settings_from(request.form, schema)
        generated = {}
        # A required secret left blank is made here, for channels where the hub names the
        # webhook secret (the merchant pastes it into the channel); it is shown once.
        for f in fields:
            if f.kind == "password" and f.required and f.name not in settings and not errors:
                generated[f.name] = settings[f.name] = secrets.token_urlsafe(32)
        if not name:
            errors["name"] = _("Give the connection a name.")
        if not errors:
            try:
                created = api(
                    "create_connection", body={"plugin": plugin, "name": name, "settings": settings}
                )
            except HubError as exc:
                errors = {
                    k if k in ("name", "") else f"settings.{k.removeprefix('settings.')}": v
                    for k, v in field_errors(exc).items()
                }
            else:
                return render_template(
                    "admin/connected.html", connection=created, generated=generated, plugin=spec
                )
    return render_template(
        "admin/connect.html",
        plugin=spec,
        fields=fields,
        errors=errors,
        form=request.form,
        name=name,
    ), 400 if errors else 200


@page("/integrations/connections/<int:connection_id>", "channels.read")
def connection(connection_id: int) -> ResponseReturnValue:
    status = request.args.get("status") or None
    return render_template(
        "admin/connection.html",
        connection=api("get_connection", connection_id=connection_id),
        inbox=api(
            "list_inbox",
            query={"connection": str(connection_id), "status": status, "per_page": "100"},
        ),
        status=status,
    )


@page(
    "/integrations/inbox/<int:entry_id>/<any(replay, discard):action>",
    lambda path: "orders.write" if path["action"] == "replay" else "channels.write",
    methods=("POST",),
)
def inbox_action(entry_id: int, action: str) -> ResponseReturnValue:
    back = request.form.get("connection", type=int)
    try:
        api("replay_inbox" if action == "replay" else "discard_inbox", entry_id=entry_id)
        flash(_("Delivery %(id)s: %(action)s done.", id=entry_id, action=action))
    except HubError as exc:
        flash(exc.message, "error")
    if back:
        return redirect(url_for("admin.connection", connection_id=back))
    return redirect(url_for("admin.integrations"))


@page("/integrations/connections/<int:connection_id>/test", "channels.write", methods=("POST",))
def connection_test(connection_id: int) -> ResponseReturnValue:
    """Send a test delivery to the connection's webhook URL and say what came back."""
    try:
        result = api("test_connection", connection_id=connection_id)
    except HubError as exc:
        flash(_("No test delivery was sent: %(why)s", why=exc.message), "error")
    else:
        if result["ok"]:
            flash(
                _(
                    "Test delivery received at %(url)s: the address is reachable and the "
                    "secret is right.",
                    url=result["url"],
                )
            )
        else:
            flash(
                _(
                    "The test delivery to %(url)s failed: %(why)s",
                    url=result["url"],
                    why=result["message"],
                ),
                "error",
            )
    return redirect(url_for("admin.connection", connection_id=connection_id))
