"""Returns: the list with the API's filters, one return with its lines, what came back and
its refunds, and the actions its status allows (receive, label, refund, cancel, close)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core import returns as rules
from hub.core.errors import HubError
from hub.web.admin import api, can, field_errors, page

PAGE_SIZES = ("25", "50", "100", "250")
LABELS: dict[str, Any] = {
    "authorised": _l("Authorised"),
    "partially_received": _l("Partly received"),
    "received": _l("Received"),
    "refunded": _l("Refunded"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
}
TONES = {
    "authorised": "warn",
    "partially_received": "warn",
    "received": "ok",
    "refunded": "ok",
    "closed": "",
    "cancelled": "bad",
}
KINDS: dict[str, Any] = {"return": _l("Return"), "exchange": _l("Exchange")}
# What each action needs: the API route's permission; the statuses it starts from are the
# core's own (hub.core.returns.ACTIONS), so no button is offered that would be refused for it.
ACTIONS = {
    "receive": "returns.receive",
    "label": "returns.write",
    "refund": "refunds.write",
    "cancel": "returns.write",
    "close": "returns.write",
}
# A return still expecting goods may get a label (the API says when it has one already).
LABEL_STATUSES = frozenset({"authorised", "partially_received"})


def _offered(ret: dict[str, Any]) -> set[str]:
    """The actions this user may take on the return in its status."""
    out = {a for a, statuses in rules.ACTIONS.items() if ret["status"] in statuses}
    if ret["status"] in LABEL_STATUSES and not ret.get("label"):
        out.add("label")
    if all(line["outstanding"] == 0 for line in ret["lines"]):
        out.discard("receive")
    return {a for a in out if can(ACTIONS[a])}


@page("/returns", "returns.read")
def returns() -> ResponseReturnValue:
    query = MultiDict()
    picked = [s for s in request.args.getlist("status") if s]
    if picked:
        query["status"] = ",".join(picked)
    for key in ("order", "page", "per_page"):
        if value := request.args.get(key, "").strip():
            query[key] = value
    query.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_returns", query=query)
    except HubError as exc:
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    args = {k: v for k, v in request.args.items() if k in ("order", "per_page") and v}
    return render_template(
        "admin/returns.html",
        found=found,
        errors=errors,
        args=args,
        picked=set(picked),
        statuses=rules.STATUSES,
        labels=LABELS,
        tones=TONES,
        kinds=KINDS,
        page_sizes=PAGE_SIZES,
    ), 400 if errors else 200


def _currency(order: str | None) -> str | None:
    if not order or not can("orders.read"):
        return None
    try:
        return api("get_order", number=order)["currency"]
    except HubError:
        return None


def _return_page(
    return_id: int,
    errors: dict[str, dict[str, str]] | None = None,
    form: Any = None,
    status: int = 200,
) -> ResponseReturnValue:
    ret = api("get_return", return_id=return_id)
    offered = _offered(ret)
    accounts: list[tuple[int, str]] = []
    if "label" in offered and can("shipping.read"):
        accounts = [(a["id"], a["name"]) for a in api("list_carrier_accounts")["items"]]
    return render_template(
        "admin/return_detail.html",
        ret=ret,
        offered=offered,
        accounts=accounts,
        currency=_currency(ret["order"]),
        labels=LABELS,
        tones=TONES,
        kinds=KINDS,
        errors=errors or {},
        form=form or {},
    ), status


@page("/returns/<int:return_id>", "returns.read")
def return_detail(return_id: int) -> ResponseReturnValue:
    return _return_page(return_id)


def _done(return_id: int, message: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("admin.return_detail", return_id=return_id))


def _refused(
    return_id: int, action: str, exc: HubError, fields: dict[str, str] | None = None
) -> ResponseReturnValue:
    """The return's page again with the refusal by the form's fields (``fields`` maps the
    API's field names to the form's)."""
    if exc.status >= 500:
        raise exc
    errors: dict[str, str] = {}
    for name, problem in field_errors(exc).items():
        errors[(fields or {}).get(name, name)] = problem
    return _return_page(return_id, {action: errors}, request.form, exc.status)


@page("/returns/<int:return_id>/receive", "returns.receive", methods=("POST",))
def return_receive(return_id: int) -> ResponseReturnValue:
    """One sellable and one damaged count per line; the lines with units become the body,
    and a refusal naming the body's line N is shown by that line's field."""
    lines: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    for i, sku in enumerate(request.form.getlist("sku")):
        for condition in rules.CONDITIONS:
            name = f"{condition}_{i}"
            raw = request.form.get(name, "").strip() or "0"
            if not (raw.isascii() and raw.isdigit()):
                errors[name] = _("Enter a whole number of units.")
                continue
            if int(raw) > 0:
                fields[f"line {len(lines) + 1}"] = name
                fields[f"lines[{len(lines)}].quantity"] = name
                lines.append({"sku": sku, "quantity": int(raw), "condition": condition})
    if not lines and not errors:
        errors[""] = _("Enter how many units of a line came back, sellable or damaged.")
    if errors:
        return _return_page(return_id, {"receive": errors}, request.form, 400)
    try:
        ret = api("receive_return", return_id=return_id, body={"lines": lines})
    except HubError as exc:
        return _refused(return_id, "receive", exc, fields)
    count = sum(line["quantity"] for line in lines)
    return _done(
        return_id,
        _(
            "%(count)s unit(s) received on %(number)s; it is now %(status)s.",
            count=count,
            number=ret["number"],
            status=LABELS.get(ret["status"], ret["status"]),
        ),
    )


@page("/returns/<int:return_id>/label", "returns.write", methods=("POST",))
def return_label(return_id: int) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    account = request.form.get("carrier_account", "").strip()
    if account:
        if not (account.isascii() and account.isdigit()):
            return _return_page(
                return_id,
                {"label": {"carrier_account": _("Pick a carrier account.")}},
                request.form,
                400,
            )
        body["carrier_account"] = int(account)
    if service := request.form.get("service", "").strip():
        body["service"] = service
    try:
        ret = api("label_return", return_id=return_id, body=body)
    except HubError as exc:
        return _refused(return_id, "label", exc)
    label = ret.get("label") or {}
    return _done(
        return_id,
        _(
            "Return label issued: %(tracking)s. Send it to the customer.",
            tracking=label.get("tracking_number") or "",
        ),
    )


@page("/returns/<int:return_id>/refund", "refunds.write", methods=("POST",))
def return_refund(return_id: int) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    if amount := request.form.get("amount", "").strip():
        body["amount"] = amount
    if request.form.get("include_shipping"):
        body["include_shipping"] = True
    if reason := request.form.get("refund_reason", "").strip():
        body["reason"] = reason
    try:
        refund = api("refund_return", return_id=return_id, body=body)
    except HubError as exc:
        return _refused(return_id, "refund", exc, {"reason": "refund_reason"})
    if refund["status"] == "manual":
        message = _(
            "Refund of %(amount)s %(currency)s recorded. This order's channel does not take"
            " refunds: pay it back by hand.",
            amount=refund["amount"],
            currency=refund["currency"],
        )
    else:
        message = _(
            "Refund of %(amount)s %(currency)s granted; it is sent to the sales channel.",
            amount=refund["amount"],
            currency=refund["currency"],
        )
    return _done(return_id, message)


@page("/returns/<int:return_id>/<any(cancel, close):action>", "returns.write", methods=("POST",))
def return_end(return_id: int, action: str) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    if reason := request.form.get(f"{action}_reason", "").strip():
        body["reason"] = reason
    try:
        ret = api(f"{action}_return", return_id=return_id, body=body)
    except HubError as exc:
        return _refused(return_id, action, exc, {"reason": f"{action}_reason"})
    if action == "cancel":
        return _done(return_id, _("Return %(number)s is cancelled.", number=ret["number"]))
    return _done(return_id, _("Return %(number)s is closed.", number=ret["number"]))
