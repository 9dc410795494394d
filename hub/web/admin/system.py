"""System: users and roles, and the audit log."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from hub.web.admin import api, page


@page("/users", "users.read")
def users() -> ResponseReturnValue:
    return render_template("admin/users.html", users=api("list_users")["items"])


@page("/audit", "audit.read")
def audit() -> ResponseReturnValue:
    query = {"page": request.args.get("page", ""), "per_page": "50"}
    return render_template("admin/audit.html", found=api("list_audit", query=query))
