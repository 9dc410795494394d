"""System: users and their roles, their API tokens, and the audit log.

Every page runs the API route's own view, so only a role with ``users.read`` sees users and
tokens, only ``users.write`` changes them, and only ``audit.read`` reads the log.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError, NotFound
from hub.core.models.tenancy import username_key
from hub.web.admin import api, field_errors, page
from hub.web.api.framework import BY_ENDPOINT

# What the user form may change, besides role and active.
CONTACT = ("full_name", "email", "phone")
AUDIT_FILTERS = ("entity_type", "entity_id", "actor", "action")
PAGE_SIZES = ("25", "50", "100", "250")
ROLE_LABELS: dict[str, Any] = {
    "admin": _l("Admin: everything, users and settings included"),
    "operator": _l("Operator: orders, shipping, service, returns"),
    "warehouse": _l("Warehouse: stock, shipping, receiving returns"),
    "service": _l("Service: tickets, returns, refunds up to the limit, reviews"),
    "analyst": _l("Analyst: reads and reports"),
}
TOKEN_STATES: dict[str, Any] = {
    "active": _l("active"),
    "expired": _l("expired"),
    "revoked": _l("revoked"),
}


def roles() -> list[tuple[str, Any]]:
    """The roles the API takes, in its order, with what each may do."""
    body = BY_ENDPOINT["create_user"].body or {}
    names = body["properties"]["role"]["enum"]
    return [(name, ROLE_LABELS.get(name, name)) for name in names]


def _refusal(exc: HubError) -> dict[str, str]:
    if exc.status >= 500:
        raise exc
    return field_errors(exc)


# --- users ----------------------------------------------------------------------------------


def _users_page(errors: dict[str, str], form: Any, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "admin/users.html",
        users=api("list_users")["items"],
        roles=roles(),
        errors=errors,
        form=form,
    ), status


@page("/users", "users.read")
def users() -> ResponseReturnValue:
    return _users_page({}, {})


@page("/users", "users.write", methods=("POST",))
def user_create() -> ResponseReturnValue:
    form = request.form
    body: dict[str, Any] = {
        "username": form.get("username", "").strip(),
        "password": form.get("password", ""),
        "role": form.get("role", ""),
    }
    for key in ("full_name", "email"):
        if value := form.get(key, "").strip():
            body[key] = value
    try:
        made = api("create_user", body=body)
    except HubError as exc:
        errors = _refusal(exc)
        return _users_page(errors, {k: v for k, v in body.items() if k != "password"}, exc.status)
    flash(_("User %(name)s is created and can sign in now.", name=made["username"]))
    return redirect(url_for("admin.user", username=made["username"]))


def _find_user(username: str) -> dict[str, Any]:
    key = username_key(username)
    for user in api("list_users")["items"]:
        if username_key(user["username"]) == key:
            return user
    raise NotFound(_("There is no user %(name)s in this shop.", name=username))


def _user_page(
    username: str,
    errors: dict[str, str] | None = None,
    form: Any = None,
    status: int = 200,
    token_errors: dict[str, str] | None = None,
) -> ResponseReturnValue:
    user = _find_user(username)
    ended = request.args.get("ended") == "1"
    query = {"user": user["username"], "include_ended": "true" if ended else ""}
    return render_template(
        "admin/user_detail.html",
        user=user,
        roles=roles(),
        tokens=api("list_tokens", query=query)["items"],
        ended=ended,
        states=TOKEN_STATES,
        errors=errors or {},
        form=form or {},
        token_errors=token_errors or {},
        token_form=request.form if token_errors else {},
    ), status


@page("/users/<username>", "users.read")
def user(username: str) -> ResponseReturnValue:
    return _user_page(username)


@page("/users/<username>", "users.write", methods=("POST",))
def user_update(username: str) -> ResponseReturnValue:
    """Only what the form changed goes to the API, so saving a page left as it was changes
    nothing, and an admin editing their own contact does not touch their own role."""
    current = _find_user(username)
    form = request.form
    body: dict[str, Any] = {}
    if (role := form.get("role", "")) and role != current["role"]:
        body["role"] = role
    active = {"yes": True, "no": False}.get(form.get("active", ""))
    if active is not None and active != current["active"]:
        body["active"] = active
    for key in CONTACT:
        value = form.get(key, "").strip()
        if key in form and value != (current.get(key) or ""):
            body[key] = value
    if not body:
        flash(_("Nothing was changed."))
        return redirect(url_for("admin.user", username=username))
    try:
        api("update_user", username=username, body=body)
    except HubError as exc:
        errors = _refusal(exc)
        return _user_page(username, errors, form, exc.status)
    if body.get("active") is False:
        flash(
            _(
                "%(name)s is deactivated: signed out everywhere, their API tokens revoked.",
                name=username,
            )
        )
    else:
        flash(_("%(name)s is updated.", name=username))
    return redirect(url_for("admin.user", username=username))


# --- API tokens -----------------------------------------------------------------------------


@page("/users/<username>/tokens", "users.write", methods=("POST",))
def token_create(username: str) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    if name := request.form.get("name", "").strip():
        body["name"] = name
    days = request.form.get("expires_in_days", "").strip()
    if days:
        if not (days.isascii() and days.isdigit()):
            errors = {"expires_in_days": _("Enter a whole number of days, or leave it empty.")}
            return _user_page(username, status=400, token_errors=errors)
        body["expires_in_days"] = int(days)
    try:
        made = api("create_token", username=username, body=body)
    except HubError as exc:
        return _user_page(username, status=exc.status, token_errors=_refusal(exc))
    return render_template("admin/token_issued.html", token=made, username=username)


@page("/tokens/<int:token_id>/revoke", "users.write", methods=("POST",))
def token_revoke(token_id: int) -> ResponseReturnValue:
    back = request.form.get("back", "")
    try:
        revoked = api("revoke_token", token_id=token_id)
    except HubError as exc:
        _refusal(exc)
        flash(exc.message, "error")
    else:
        flash(
            _(
                "Token %(prefix)s… of %(name)s is revoked: it no longer works.",
                prefix=revoked["prefix"],
                name=revoked["user"],
            )
        )
        if back != "tokens":
            return redirect(url_for("admin.user", username=revoked["user"]))
    return redirect(url_for("admin.tokens"))


@page("/users/<username>/tokens/revoke", "users.write", methods=("POST",))
def tokens_revoke(username: str) -> ResponseReturnValue:
    try:
        answer = api("revoke_tokens", username=username)
    except HubError as exc:
        _refusal(exc)
        flash(exc.message, "error")
    else:
        flash(
            _(
                "%(count)s token(s) of %(name)s revoked.",
                count=answer["revoked"],
                name=username,
            )
        )
    return redirect(url_for("admin.user", username=username))


@page("/tokens", "users.read")
def tokens() -> ResponseReturnValue:
    query: dict[str, str] = {}
    if who := request.args.get("user", "").strip():
        query["user"] = who
    ended = request.args.get("ended") == "1"
    if ended:
        query["include_ended"] = "true"
    errors: dict[str, str] = {}
    try:
        found = api("list_tokens", query=query)["items"]
    except HubError as exc:
        errors, found = _refusal(exc), []
    return render_template(
        "admin/tokens.html",
        tokens=found,
        who=who,
        ended=ended,
        states=TOKEN_STATES,
        errors=errors,
    ), 400 if errors else 200


# --- the audit log --------------------------------------------------------------------------


@page("/audit", "audit.read")
def audit() -> ResponseReturnValue:
    query = MultiDict(
        [(k, v.strip()) for k, v in request.args.items() if k in AUDIT_FILTERS and v.strip()]
    )
    for key in ("page", "per_page"):
        if request.args.get(key):
            query[key] = request.args[key]
    query.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_audit", query=query)
    except HubError as exc:
        errors = _refusal(exc)
        found = {"items": [], "total": 0, "page": 1, "per_page": 50}
    return render_template(
        "admin/audit.html",
        found=found,
        args=query.to_dict(),
        errors=errors,
        page_sizes=PAGE_SIZES
        if query["per_page"] in PAGE_SIZES
        else (query["per_page"], *PAGE_SIZES),
    ), 400 if errors else 200
