"""Service: the ticket queue, one ticket with its conversation, assignment and replies."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError
from hub.web.admin import api, field_errors, page


@page("/tickets", "tickets.read")
def tickets() -> ResponseReturnValue:
    query = MultiDict([(k, v) for k, v in request.args.items() if v and k != "lang"])
    query.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_tickets", query=query)
    except HubError as exc:
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    return render_template(
        "admin/tickets.html", found=found, args=request.args, errors=errors
    ), 400 if errors else 200


@page("/tickets/<number>", "tickets.read")
def ticket(number: str) -> ResponseReturnValue:
    return render_template("admin/ticket.html", ticket=api("get_ticket", number=number), errors={})


@page("/tickets/<number>/reply", "tickets.write", methods=("POST",))
def ticket_reply(number: str) -> ResponseReturnValue:
    body = {"body": request.form.get("body", "").strip()}
    if request.form.get("internal"):
        body["internal"] = True
    if request.form.get("wait"):
        body["wait"] = True
    try:
        api("add_message", number=number, body=body)
    except HubError as exc:
        return render_template(
            "admin/ticket.html",
            ticket=api("get_ticket", number=number),
            errors=field_errors(exc),
            form=request.form,
        ), exc.status
    flash(_("Your note is saved.") if body.get("internal") else _("Your reply is sent."))
    return redirect(url_for("admin.ticket", number=number))


@page("/tickets/<number>/update", "tickets.write", methods=("POST",))
def ticket_update(number: str) -> ResponseReturnValue:
    body = {
        k: v for k in ("status", "assignee", "priority") if (v := request.form.get(k, "").strip())
    }
    try:
        api("update_ticket", number=number, body=body)
        flash(_("The ticket is updated."))
    except HubError as exc:
        flash(exc.message, "error")
    return redirect(url_for("admin.ticket", number=number))
