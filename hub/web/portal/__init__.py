"""The customer portal at /portal/<tenant>/: customers are not users, so what a visitor may
see is a *grant* held in a cookie of the portal's own (signed, scoped to the shop's path,
separate from the staff session, so a customer grant can never become a staff sign-in).

A grant names the shop, and either the orders the visitor proved they own (order number plus
the e-mail or phone on it) or the customer they proved to be (a one-time sign-in link). Pages
run the API's own views through ``framework.invoke`` as a *customer principal* that may only
read orders, shipments, tickets and reviews and write tickets and reviews — and the portal
only ever asks about the orders the grant names.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select

from hub.core import auth
from hub.core.models import Tenant
from hub.web.api import framework
from hub.web.ui import csrf, error_pages, page_headers

bp = Blueprint("portal", __name__, url_prefix="/portal/<tenant>", template_folder="templates")

COOKIE = "orderhub_portal"
LOOKUP_SECONDS = 30 * 60  # a looked-up order stays open this long
SIGNED_IN_SECONDS = 12 * 3600  # a sign-in link's session
CUSTOMER_CAN = frozenset(
    {
        "orders.read",
        "shipping.read",
        "tickets.read",
        "tickets.write",
        "reviews.read",
        "reviews.write",
        "returns.read",
    }
)


@dataclass(frozen=True)
class CustomerPrincipal(auth.Principal):
    """A customer acting in the portal: a narrow, fixed set of permissions."""

    def can(self, permission: str) -> bool:
        return permission in CUSTOMER_CAN


@dataclass
class Grant:
    tenant_id: int
    orders: list[str] = field(default_factory=list)
    customer_id: int | None = None
    until: float = 0.0

    def allows(self, number: str) -> bool:
        return number in self.orders


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"],
        salt="orderhub.portal.grant",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def read_grant(tenant_id: int) -> Grant | None:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4000:
        return None
    try:
        data = _serializer().loads(raw, max_age=SIGNED_IN_SECONDS)
    except BadData:
        return None
    if not isinstance(data, dict) or data.get("t") != tenant_id or data.get("u", 0) < time.time():
        return None
    return Grant(tenant_id, list(data.get("o") or [])[:50], data.get("c"), data["u"])


def write_grant(response: Any, grant: Grant) -> Any:
    token = _serializer().dumps(
        {"t": grant.tenant_id, "o": grant.orders[-50:], "c": grant.customer_id, "u": grant.until}
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(max(grant.until - time.time(), 0)),
        path=f"/portal/{g.portal_tenant}/",
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


def forget_grant(response: Any) -> Any:
    response.delete_cookie(COOKIE, path=f"/portal/{g.portal_tenant}/")
    return response


def principal() -> CustomerPrincipal:
    grant = g.get("grant")
    who = f"customer:{grant.customer_id}" if grant and grant.customer_id else "customer"
    return CustomerPrincipal(g.portal_tenant_id, g.portal_tenant, 0, who, "customer")


def api(endpoint: str, query: Any = None, body: Any = None, **path: Any) -> Any:
    return framework.invoke(endpoint, principal(), path, query, body)


def title() -> str:
    runtime = current_app.extensions["orderhub"]
    settings = runtime.tenant_settings(g.portal_tenant)
    # The portal's own title, else the name in the shop's settings file, else its record's.
    named = settings.name if settings.name != g.portal_tenant else None
    return settings.portal.get("title") or named or g.portal_tenant_name


@bp.url_value_preprocessor
def _tenant(endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.portal_tenant = (values or {}).pop("tenant", "")


@bp.url_defaults
def _keep_tenant(endpoint: str, values: dict[str, Any]) -> None:
    if "tenant" not in values and g.get("portal_tenant"):
        values["tenant"] = g.portal_tenant


@bp.before_request
def _guard() -> ResponseReturnValue | None:
    runtime = current_app.extensions["orderhub"]
    slug = g.portal_tenant
    row = None
    if 0 < len(slug) <= 64 and slug.replace("-", "").replace("_", "").isalnum():
        with runtime.session() as session:
            row = session.execute(select(Tenant.id, Tenant.name).where(Tenant.slug == slug)).first()
    if row is None:
        g.portal_tenant_id, g.portal_tenant_name = 0, ""
        return render_template(
            "portal/error.html", status=404, message=_l("There is no shop at this address.")
        ), 404
    g.portal_tenant_id, g.portal_tenant_name = row.id, row.name
    g.grant = read_grant(row.id)
    if request.method == "POST":
        csrf.protect()
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    return page_headers(response)


@bp.context_processor
def _context() -> dict[str, Any]:
    if not g.get("portal_tenant_id"):
        return {"shop_title": "", "has_logo": False, "grant": None}
    runtime = current_app.extensions["orderhub"]
    logo = runtime.tenant_settings(g.portal_tenant).portal.get("logo")
    return {"shop_title": title(), "has_logo": bool(logo), "grant": g.get("grant")}


error_pages(bp, "portal/error.html", forbidden_as_missing=True)


def install(app: Flask) -> None:
    from hub.web.portal import pages  # noqa: F401  (declares the pages)

    app.register_blueprint(bp)
