"""The web admin at /admin/: server-rendered pages over the API's own views.

A page never re-implements a service: it runs the API route's view through
``framework.invoke``, so it needs the same permission, checks its input with the same schema
and refuses what the API refuses. Each page declares the permission of the route it shows and
that check happens before the form is read; a POST without its CSRF token is refused next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from hub.core.errors import NotFound
from hub.web.api import framework
from hub.web.ui import csrf, error_pages, field_errors, page_headers

__all__ = ["api", "bp", "can", "enabled_plugin", "enabled_plugins", "field_errors", "page"]

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates")

# The side navigation: endpoint, label, the permission that shows it.
NAV: list[tuple[str, Any, str | None]] = [
    ("admin.dashboard", _l("Dashboard"), None),
    ("admin.orders", _l("Orders"), "orders.read"),
    ("admin.stock", _l("Inventory"), "stock.read"),
    ("admin.shipments", _l("Logistics"), "shipping.read"),
    ("admin.tickets", _l("Service"), "tickets.read"),
    ("admin.returns", _l("Returns"), "returns.read"),
    ("admin.reviews", _l("Reviews"), "reviews.read"),
    ("admin.reports", _l("Reports"), "reports.read"),
    ("admin.integrations", _l("Integrations"), "channels.read"),
    ("admin.notifications", _l("Notifications"), "notifications.read"),
    ("admin.users", _l("System"), "users.read"),
]


def page(
    rule: str,
    permission: str | Callable[[dict[str, Any]], str | None] | None,
    methods: tuple[str, ...] = ("GET",),
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., ResponseReturnValue]]:
    """Declares a signed-in page needing ``permission`` (the one its API route needs; for a
    page that stands for several routes, a function of the path's values naming it)."""

    def decorate(fn: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
        fn.permission = permission  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=fn, methods=list(methods))
        return fn

    return decorate


def api(
    endpoint: str,
    query: Any = None,
    body: Any = None,
    **path: Any,
) -> Any:
    """The API view ``endpoint`` run as the signed-in user."""
    return framework.invoke(endpoint, g.principal, path, query, body)


def enabled_plugins(kind: str) -> list[dict[str, Any]]:
    """The shop's enabled plugins of one kind ("channel", "carrier"), as the API lists them
    (with their published settings schema)."""
    return [p for p in api("list_plugins")["items"] if p["kind"] == kind and p["enabled"]]


def enabled_plugin(kind: str, name: str) -> dict[str, Any]:
    for found in enabled_plugins(kind):
        if found["name"] == name:
            return found
    raise NotFound(f"no {kind} plugin {name!r} is enabled for this shop")


def can(permission: str | None) -> bool:
    principal = g.get("principal")
    return principal is not None and (permission is None or principal.can(permission))


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    """Who, then may they, then the CSRF token: in that order, before any form is read."""
    from hub.web.admin import staff

    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.endpoint in staff.PUBLIC:
        if request.method == "POST":
            csrf.protect()
        return None
    g.principal = staff.current()
    if g.principal is None:
        if request.method == "GET":
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return render_template(
            "admin/error.html", status=401, message=_l("Please sign in again.")
        ), 401
    permission = getattr(view, "permission", None)
    if callable(permission):  # one page for several API routes: the path says which
        permission = permission(request.view_args or {})
    if permission and not g.principal.can(permission):
        return render_template(
            "admin/error.html",
            status=403,
            message=_l(
                "Your role (%(role)s) may not open this page: it needs %(permission)s.",
                role=g.principal.role,
                permission=permission,
            ),
        ), 403
    if request.method != "GET":
        csrf.protect()
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    return page_headers(response)


@bp.context_processor
def _context() -> dict[str, Any]:
    return {
        "nav": [(e, label) for e, label, perm in NAV if can(perm)],
        "can": can,
        "me": g.get("principal"),
    }


error_pages(bp, "admin/error.html")


def install(app: Flask) -> None:
    from hub.web.admin import (  # noqa: F401  (importing a module declares its pages)
        dashboard,
        integrations,
        inventory,
        logistics,
        mappings,
        notifications,
        order_form,
        orders,
        reports,
        returns,
        reviews,
        service,
        staff,
        system,
        views,
    )

    app.register_blueprint(bp)
