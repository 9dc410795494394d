"""What the web admin and the customer portal share: languages, CSRF protection, the login
rate limit, page headers, formatting filters, charts, and the local assets (nothing is ever
loaded from another site)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import Babel, format_date, format_datetime, format_decimal, get_locale
from flask_babel import format_currency as babel_currency
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter
from werkzeug.exceptions import HTTPException

from hub.core.errors import HubError
from hub.runtime import Runtime
from hub.web.ui import charts, i18n

bp = Blueprint(
    "ui",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

csrf = CSRFProtect()

# One policy for every page: nothing inline, nothing from another origin. Bare ``data:``
# images are allowed for the form controls' own icons.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    # Not no-referrer: Flask-WTF checks that an HTTPS form came from this origin.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


def page_url(number: int) -> str:
    """This list page's address at another page number, every filter kept (several values
    of one filter included)."""
    from urllib.parse import urlencode

    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    return f"{request.path}?{urlencode([*kept, ('page', number)])}"


def field_id(name: str) -> str:
    """A form field's element id from its name, which is the API's field path
    ("consignee.address.city", "lines[0].sku"): "f-consignee-address-city", "f-lines-0-sku"."""
    return "f-" + name.replace(".", "-").replace("[", "-").replace("]", "")


def attempts() -> RateLimiter:
    """This app's counter of sign-in and lookup attempts (``limits``' moving window)."""
    from flask import current_app

    return current_app.extensions["orderhub.attempts"]  # type: ignore[no-any-return]


def field_errors(exc: HubError) -> dict[str, str]:
    """An API refusal as {field: problem} for a form; "" holds what names no field."""
    out: dict[str, str] = {}
    for detail in exc.details or []:
        if isinstance(detail, dict) and detail.get("field"):
            out.setdefault(str(detail["field"]).removeprefix("body."), str(detail["problem"]))
    if not out:
        out[""] = exc.message
    return out


def error_pages(blueprint: Blueprint, template: str, *, forbidden_as_missing: bool = False) -> None:
    """Refusals on a blueprint's pages as pages (the JSON API answers its own way): a form
    without its CSRF token, a refusal by the service, an HTTP error. ``forbidden_as_missing``
    answers 403 as 404, for visitors who should not learn that a record exists."""

    def render(status: int, message: Any) -> ResponseReturnValue:
        if forbidden_as_missing and status == 403:
            status = 404
        return render_template(template, status=status, message=message), status

    @blueprint.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> ResponseReturnValue:
        return render(
            400,
            _l(
                "The form was refused: its security token is missing or "
                "expired. Reload the page and try again."
            ),
        )

    @blueprint.errorhandler(HubError)
    def _hub_error(exc: HubError) -> ResponseReturnValue:
        return render(exc.status, exc.message)

    @blueprint.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> ResponseReturnValue:
        return render(exc.code or 500, exc.description)


def page_headers(response: Response) -> Response:
    for name, value in PAGE_HEADERS.items():
        response.headers[name] = value
    if request.args.get("lang"):
        response.set_cookie(
            i18n.COOKIE, i18n.select_locale(), max_age=365 * 86400, samesite="Lax", httponly=True
        )
    return response


def install(app: Flask, runtime: Runtime) -> None:
    settings = runtime.settings
    app.config.update(
        # Forms are checked where the pages are (hub.web.admin, hub.web.portal); webhooks and
        # the bearer-token API are never asked for a CSRF token.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=(settings.public_url or "").startswith("https://"),
        SESSION_COOKIE_NAME="orderhub_session",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_TRANSLATION_DIRECTORIES=str(
            i18n.compile_catalogs(settings.data_dir / "translations")
        ),
    )
    # Sign-in and lookup attempts are counted in the broker's Redis in production, so every
    # server counts the same attempts; in memory on the embedded default.
    storage = (
        storage_from_string("memory://")
        if settings.embedded_broker
        else storage_from_string(
            settings.broker_url, key_prefix=f"{settings.broker_namespace}:attempts"
        )
    )
    app.extensions["orderhub.attempts"] = MovingWindowRateLimiter(storage)
    Babel(app, locale_selector=i18n.select_locale, timezone_selector=_timezone)
    csrf.init_app(app)
    app.register_blueprint(bp)
    env = app.jinja_env
    env.filters.update(
        money=money,
        number=number,
        when=when,
        day=day,
        zip_labels=lambda values: [(v, v) for v in values],
        field_id=field_id,
        status_label=lambda s: STATUS_LABELS.get(s, s),
        status_tone=lambda s: STATUS_TONES.get(s, ""),
        tracking_label=lambda s: TRACKING_LABELS.get(s, s),
    )
    env.globals.update(
        page_url=page_url,
        html_lang=lambda: i18n.html_lang(str(get_locale())),
        locale=lambda: str(get_locale()),
        chart=charts,
    )


# Order, shipment and ticket statuses as people read them.
STATUS_LABELS: dict[str, Any] = {
    "new": _l("New"),
    "held": _l("On hold"),
    "awaiting_approval": _l("Awaiting approval"),
    "confirmed": _l("Confirmed"),
    "partially_shipped": _l("Partially shipped"),
    "shipped": _l("Shipped"),
    "delivered": _l("Delivered"),
    "returned": _l("Returned"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
    "open": _l("Open"),
    "assigned": _l("Assigned"),
    "waiting_customer": _l("Waiting on the customer"),
    "resolved": _l("Resolved"),
}
# The hub's normalised tracking statuses, in plain words for customers.
TRACKING_LABELS: dict[str, Any] = {
    "info_received": _l("Label created"),
    "picked_up": _l("Picked up by the carrier"),
    "in_transit": _l("On its way"),
    "out_for_delivery": _l("Out for delivery"),
    "available_for_pickup": _l("Ready to collect"),
    "delivery_failed": _l("Delivery attempt failed"),
    "exception": _l("Delayed: the carrier reports a problem"),
    "returned_to_sender": _l("Returned to the shop"),
    "delivered": _l("Delivered"),
}
STATUS_TONES = {
    "held": "warn",
    "awaiting_approval": "warn",
    "cancelled": "bad",
    "delivered": "ok",
    "shipped": "ok",
    "closed": "ok",
    "resolved": "ok",
    "open": "warn",
}


def _timezone() -> str | None:
    """Times on a page read in the shop's own calendar zone (the one its reports cut days
    in); a page with no shop (the sign-in form) stays in UTC."""
    from flask import current_app, g

    slug = getattr(g.get("principal"), "tenant_slug", None) or g.get("portal_tenant")
    if not slug:
        return None
    runtime = current_app.extensions["orderhub"]
    return str(runtime.tenant_settings(slug).tickets.calendar.timezone)


def money(amount: Any, currency: str | None) -> str:
    if amount is None or amount == "":
        return ""
    return babel_currency(Decimal(str(amount)), currency or "USD")


def number(value: Any) -> str:
    return "" if value is None else format_decimal(value)


def when(value: Any) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, "medium")


def day(value: Any) -> str:
    if not value:
        return ""
    moment = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return format_date(moment, "medium")
