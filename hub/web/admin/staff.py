"""Signing staff in and out of the web admin, and who the signed-in user is.

The session cookie holds the user's id and a fingerprint of their password hash, nothing
else; every request re-reads the user, so disabling a user, changing a role or changing the
password takes effect at once on every device (a password change signs the others out).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from limits import parse
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from hub.core import audit, auth
from hub.core.errors import Invalid
from hub.core.models import Tenant, User
from hub.core.models.tenancy import username_key
from hub.runtime import Runtime
from hub.web.admin import bp
from hub.web.ui import attempts

PUBLIC = {"admin.login"}
KEY = "staff"
# Failed sign-ins allowed before the form refuses for a while: per address, and per name
# (so spreading a guess over many addresses does not help).
PER_ADDRESS = parse("20/10 minutes")
PER_NAME = parse("8/10 minutes")
# A hash to check against when no user matched, so a miss costs as long as a wrong password.
_DUMMY: dict[str, str] = {}


def _runtime() -> Runtime:
    return current_app.extensions["orderhub"]


def fingerprint(user: User) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, user.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def current() -> auth.Principal | None:
    held = session.get(KEY)
    if not isinstance(held, dict):
        return None
    with _runtime().session() as db:
        row = db.execute(
            select(User, Tenant.slug)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(User.id == held.get("uid"), User.tenant_id == held.get("tid"))
        ).first()
    if (
        row is None
        or not row[0].active
        or not hmac.compare_digest(fingerprint(row[0]), str(held.get("fp", "")))
    ):
        session.pop(KEY, None)
        return None
    user, slug = row
    return auth.Principal(user.tenant_id, slug, user.id, user.username, user.role)


def _candidates(db: Any, username: str, shop: str) -> list[tuple[User, str]]:
    query = (
        select(User, Tenant.slug)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(User.username_key == username_key(username), User.active.is_(True))
    )
    if shop:
        query = query.where(Tenant.slug == shop)
    return [(row[0], row[1]) for row in db.execute(query.limit(20))]


def _dummy_check(password: str) -> None:
    if "hash" not in _DUMMY:
        _DUMMY["hash"] = generate_password_hash("not a password", method=auth.PASSWORD_METHOD)
    check_password_hash(_DUMMY["hash"], password)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    shop = (request.values.get("tenant") or "").strip().lower()
    if request.method == "GET":
        return render_template("admin/login.html", shop=shop, errors={})
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = _("Enter your username.")
    if not password:
        errors["password"] = _("Enter your password.")
    if errors:
        return render_template("admin/login.html", shop=shop, username=username, errors=errors), 400
    counter = attempts()
    keys = [("address", request.remote_addr or "?"), ("name", f"{shop}/{username_key(username)}")]
    limits = {"address": PER_ADDRESS, "name": PER_NAME}
    if not all(counter.test(limits[kind], "admin-login", kind, key) for kind, key in keys):
        message = _("Too many failed sign-ins. Wait ten minutes and try again.")
        return render_template(
            "admin/login.html", shop=shop, username=username, errors={"": message}
        ), 429
    with _runtime().session() as db:
        candidates = _candidates(db, username, shop)
        if not candidates:
            _dummy_check(password)
        matched = [u for u, _slug in candidates if auth.check_password(u, password)]
        if len(matched) != 1:
            for kind, key in keys:
                counter.hit(limits[kind], "admin-login", kind, key)
            message = (
                _("This username is used in several shops: enter your shop as well.")
                if len(matched) > 1
                else _("The username or password is not right.")
            )
            return render_template(
                "admin/login.html",
                shop=shop,
                username=username,
                errors={"": message},
                ask_shop=len(matched) > 1 or bool(shop),
            ), 401 if not matched else 400
        user = matched[0]
        session.clear()  # a fresh session: nothing set before sign-in survives it
        session.permanent = True
        session[KEY] = {"uid": user.id, "tid": user.tenant_id, "fp": fingerprint(user)}
    target = request.args.get("next") or ""
    if not target.startswith("/admin/") or target.startswith("//"):
        target = url_for("admin.dashboard")
    return redirect(target)


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    session.clear()
    flash(_("You are signed out."))
    return redirect(url_for("admin.login"))


def change_password() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    if request.method == "POST":
        current_pw = request.form.get("current_password") or ""
        new = request.form.get("new_password") or ""
        again = request.form.get("confirm_password") or ""
        principal = g.principal
        with _runtime().transaction() as db:
            db.info["orderhub.tenant_id"] = principal.tenant_id
            user = db.get(User, principal.user_id)
            assert user is not None
            if not auth.check_password(user, current_pw):
                errors["current_password"] = _("This is not your current password.")
            elif new != again:
                errors["confirm_password"] = _("The two new passwords differ.")
            else:
                try:
                    auth.set_password(user, new)
                except Invalid:
                    errors["new_password"] = _("Use at least 8 characters.")
            if not errors:
                audit.record(
                    db,
                    principal.tenant_id,
                    principal.username,
                    "user.password",
                    "user",
                    user.username,
                    None,
                    None,
                )
                db.flush()
                session[KEY] = {"uid": user.id, "tid": user.tenant_id, "fp": fingerprint(user)}
        if not errors:
            flash(_("Your password is changed. Other devices are signed out."))
            return redirect(url_for("admin.account"))
    return render_template("admin/account.html", errors=errors), 400 if errors else 200
