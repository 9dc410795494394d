"""Orders: the list with the API's filters, one order's page with its timeline, and the
actions on one order or a selection."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError
from hub.web.admin import api, can, field_errors, order_form, page, views
from hub.web.api.framework import BY_ENDPOINT

STATUSES = BY_ENDPOINT["list_orders"].query
PAGE_SIZES = (25, 50, 100, 250)
SORTS = {
    "-created_at": _l("Newest first"),
    "created_at": _l("Oldest first"),
    "-paid_at": _l("Paid, newest first"),
    "paid_at": _l("Paid, oldest first"),
    "-total": _l("Highest total first"),
    "total": _l("Lowest total first"),
    "number": _l("Number, ascending"),
    "-number": _l("Number, descending"),
    "-priority": _l("Highest priority first"),
    "priority": _l("Lowest priority first"),
    "status": _l("Status"),
    "-status": _l("Status, reversed"),
    "-queue": _l("Work queue (priority and age)"),
    "queue": _l("Work queue, reversed"),
}
# Form fields that are the page's own, not the API's filters.
_PAGE_ONLY = {"lang", "status_pick"}


def _filters() -> MultiDict[str, str]:
    """The URL's filters as the API takes them: several ticked statuses join with commas
    (OR within a field), every other field narrows (AND across fields)."""
    args = MultiDict(
        [(k, v) for k, v in request.args.items(multi=True) if k not in _PAGE_ONLY and v != ""]
    )
    picked = request.args.getlist("status_pick")
    if picked:
        args["status"] = ",".join(picked)
    return args


def _enum(endpoint: str, name: str) -> tuple[str, ...]:
    return next(p.enum for p in BY_ENDPOINT[endpoint].query if p.name == name) or ()


@page("/orders", "orders.read")
def orders() -> ResponseReturnValue:
    filters = _filters()
    filters.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_orders", query=filters)
    except HubError as exc:
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    chosen = set((filters.get("status") or "").split(","))
    return render_template(
        "admin/orders.html",
        found=found,
        errors=errors,
        args=request.args,
        chosen=chosen,
        statuses=_enum("list_orders", "status"),
        sort_labels=[(key, SORTS.get(key, key)) for key in _enum("list_orders", "sort")],
        page_sizes=PAGE_SIZES,
        views=views.listed("orders"),
        query=views.current_query(),
        status=400 if errors else 200,
    ), 400 if errors else 200


@page("/orders/<number>", "orders.read")
def order(number: str) -> ResponseReturnValue:
    found = api("get_order", number=number)
    return render_template(
        "admin/order.html",
        order=found,
        timeline=_timeline(number),
        shipments=_optional("shipping.read", "list_shipments", {"order": number}),
    )


def _optional(permission: str, endpoint: str, query: dict[str, str]) -> list[Any]:
    return api(endpoint, query=query)["items"] if can(permission) else []


def _timeline(number: str) -> list[dict[str, Any]]:
    """One time line of what happened to the order: its history, its shipments' tracking,
    its tickets and its returns, newest first, each entry saying who did it."""
    out: list[dict[str, Any]] = []
    for h in api("order_history", number=number)["items"]:
        text = h["action"].replace("_", " ")
        if h["from"] != h["to"] and h["to"]:
            text += f" → {h['to']}"
        out.append(
            {"at": h["at"], "what": text, "detail": h["reason"], "who": h["actor"], "kind": "order"}
        )
    for s in _optional("shipping.read", "list_shipments", {"order": number}):
        for e in api("shipment_events", shipment_id=s["id"])["items"]:
            place = f" ({e['location']})" if e.get("location") else ""
            out.append(
                {
                    "at": e["at"],
                    "kind": "tracking",
                    "what": f"{s['tracking_number'] or s['id']}: {e['status']}",
                    "detail": (e.get("raw_text") or "") + place,
                    "who": s["carrier"],
                }
            )
    for t in _optional("tickets.read", "list_tickets", {"order": number}):
        out.append(
            {
                "at": t["created_at"],
                "kind": "ticket",
                "what": _(
                    "Ticket %(number)s: %(subject)s", number=t["number"], subject=t["subject"]
                ),
                "detail": t["status"],
                "who": t.get("assignee"),
                "link": url_for("admin.ticket", number=t["number"]),
            }
        )
    for r in _optional("returns.read", "list_returns", {"order": number}):
        out.append(
            {
                "at": r["created_at"],
                "kind": "return",
                "what": _("Return %(id)s: %(reason)s", id=r["id"], reason=r.get("reason") or ""),
                "detail": r["status"],
                "who": r.get("created_by"),
            }
        )
    out.sort(key=lambda e: e["at"] or "", reverse=True)
    return out


# --- actions ------------------------------------------------------------------------------

ACTIONS = {
    # action: (endpoint, permission, body from the form)
    "approve": ("approve_order", "orders.approve"),
    "reject": ("reject_order", "orders.approve"),
    "cancel": ("cancel_order", "orders.write"),
    "ship": ("ship_order", "shipping.write"),
}


def _act(action: str, number: str, reason: str) -> Any:
    endpoint, _permission = ACTIONS[action]
    body: dict[str, Any] = {}
    if action in ("reject", "cancel"):
        body["reason"] = reason or _("no reason given")
    elif action == "approve" and reason:
        body["note"] = reason
    return api(endpoint, number=number, body=body)


@page(
    "/orders/<number>/<any(approve, reject, cancel, ship):action>",
    lambda path: ACTIONS[path["action"]][1],
    methods=("POST",),
)
def order_action(number: str, action: str) -> ResponseReturnValue:
    try:
        _act(action, number, request.form.get("reason", "").strip())
    except HubError as exc:
        flash(_("%(action)s refused: %(why)s", action=action, why=exc.message), "error")
    else:
        flash(_("Done: %(action)s %(number)s.", action=action, number=number))
    return redirect(url_for("admin.order", number=number))


@page("/orders/bulk", "orders.read", methods=("POST",))
def bulk() -> ResponseReturnValue:
    """A selection's action, order by order: partial failure is normal and every failure is
    named with its reason."""
    numbers = list(dict.fromkeys(request.form.getlist("numbers")))[:500]
    action = request.form.get("action", "")
    if action == "packing":
        return redirect(url_for("admin.packing", numbers=",".join(numbers)))
    if action == "merge":
        if not can("orders.write"):
            flash(_("Your role may not merge orders."), "error")
            return redirect(url_for("admin.orders"))
        return order_form.merge(numbers)
    if action not in ACTIONS or not numbers:
        flash(_("Pick orders and an action first."), "error")
        return redirect(url_for("admin.orders"))
    done, failed = [], []
    for number in numbers:
        try:
            _act(action, number, request.form.get("reason", "").strip())
            done.append(number)
        except HubError as exc:
            failed.append((number, exc.message))
    return render_template("admin/bulk_result.html", action=action, done=done, failed=failed)


@page("/orders/packing", "orders.read")
def packing() -> ResponseReturnValue:
    numbers = [n for n in (request.args.get("numbers") or "").split(",") if n][:500]
    orders, missing = [], []
    for number in numbers:
        try:
            orders.append(api("get_order", number=number))
        except HubError:
            missing.append(number)
    return render_template("admin/packing.html", orders=orders, missing=missing)
