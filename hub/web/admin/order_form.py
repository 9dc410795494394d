"""Creating and changing an order by hand, merging orders and splitting one.

Form fields are named by the API's own field paths ("consignee.address.city",
"lines[0].sku"), so a refusal's ``field`` lands next to the input it concerns. Finding a
product needs no script: a search posts the form as typed, and each match's *Add* button
puts it on the first free line.
"""

from __future__ import annotations

import re
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError
from hub.web.admin import api, field_errors, page

CONTACT = (
    "customer.email",
    "customer.name",
    "customer.phone",
    "consignee.name",
    "consignee.phone",
    "consignee.address.line1",
    "consignee.address.line2",
    "consignee.address.postcode",
    "consignee.address.city",
    "consignee.address.region",
    "consignee.address.country",
)
LINE = re.compile(r"^lines\[(\d{1,3})\]\.(sku|quantity|unit_price)$")
MIN_ROWS = 4
MAX_ROWS = 200


def _rows(form: MultiDict[str, str]) -> list[dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        found = LINE.match(key)
        if found and int(found[1]) < MAX_ROWS:
            rows.setdefault(int(found[1]), {})[found[2]] = value.strip()
    # Row i stays row i (gaps kept empty), so an error comes back to the row it concerns.
    return [rows.get(i, {}) for i in range(max(rows, default=-1) + 1)]


def _body(form: MultiDict[str, str], rows: list[dict[str, str]]) -> dict[str, Any]:
    """The API body from the form: blanks left out, numbers as the API takes them."""
    body: dict[str, Any] = {}
    for key in CONTACT:
        value = (form.get(key) or "").strip()
        if value:
            node = body
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value.upper() if leaf == "country" else value
    lines = []
    for row in rows:
        if not row.get("sku"):
            continue
        line: dict[str, Any] = {"sku": row["sku"]}
        qty = row.get("quantity", "")
        line["quantity"] = int(qty) if qty.isdigit() else qty or 1
        if row.get("unit_price"):
            line["unit_price"] = row["unit_price"]
        lines.append(line)
    if lines:
        body["lines"] = lines
    if note := (form.get("note") or "").strip():
        body["note"] = note
    return body


def _numbered(errors: dict[str, str], rows: list[dict[str, str]]) -> dict[str, str]:
    """The API numbers the lines it was sent; the form's rows may have gaps."""
    filled = [i for i, row in enumerate(rows) if row.get("sku")]
    out = {}
    for key, problem in errors.items():
        found = re.match(r"^lines\[(\d+)\](.*)$", key)
        if found and int(found[1]) < len(filled):
            key = f"lines[{filled[int(found[1])]}]{found[2]}"
        out[key] = problem
    return out


def _products(query: str) -> list[dict[str, Any]]:
    if not query:
        return []
    return api("list_products", query={"q": query, "per_page": "20", "active": "true"})["items"]


def _form_page(order: dict[str, Any] | None) -> ResponseReturnValue:
    form = request.form if request.method == "POST" else _prefill(order)
    rows = _rows(form)
    errors: dict[str, str] = {}
    search = (form.get("product_q") or "").strip()
    action = request.form.get("action", "save") if request.method == "POST" else "show"
    if action.startswith("add:"):
        sku = action[4:]
        free = next((i for i, row in enumerate(rows) if not row.get("sku")), len(rows))
        product = next((p for p in _products(search) if p["sku"] == sku), None)
        while len(rows) <= free:
            rows.append({})
        rows[free] = {
            "sku": sku,
            "quantity": "1",
            "unit_price": str(product["price"]) if product and product.get("price") else "",
        }
    elif action == "save":
        body = _body(form, rows)
        try:
            if order is None:
                made = api("create_order", body=body)
                flash(_("Order %(number)s is created.", number=made["number"]))
            else:
                made = api("modify_order", number=order["number"], body=body)
                flash(_("Order %(number)s is changed.", number=made["number"]))
            return redirect(url_for("admin.order", number=made["number"]))
        except HubError as exc:
            errors = _numbered(field_errors(exc), rows)
    while len(rows) < max(MIN_ROWS, len([r for r in rows if r.get("sku")]) + 2):
        rows.append({})
    status = 400 if errors else 200
    return render_template(
        "admin/order_form.html",
        order=order,
        form=form,
        rows=rows,
        errors=errors,
        search=search,
        found=_products(search),
        contact=CONTACT,
    ), status


def _prefill(order: dict[str, Any] | None) -> MultiDict[str, str]:
    if order is None:
        return MultiDict(request.args)
    out: MultiDict[str, str] = MultiDict()
    for key in CONTACT:
        node: Any = order
        for part in key.split("."):
            node = (node or {}).get(part) if isinstance(node, dict) else None
        if node:
            out[key] = str(node)
    for i, line in enumerate(order["lines"]):
        out[f"lines[{i}].sku"] = line["sku"]
        out[f"lines[{i}].quantity"] = str(line["quantity"])
        out[f"lines[{i}].unit_price"] = str(line["unit_price"] or "")
    if order.get("note"):
        out["note"] = order["note"]
    return out


@page("/orders/new", "orders.write", methods=("GET", "POST"))
def new_order() -> ResponseReturnValue:
    return _form_page(None)


@page("/orders/<number>/edit", "orders.write", methods=("GET", "POST"))
def edit_order(number: str) -> ResponseReturnValue:
    return _form_page(api("get_order", number=number))


@page("/orders/<number>/split", "orders.write", methods=("POST",))
def split(number: str) -> ResponseReturnValue:
    lines = []
    for key, value in request.form.items():
        if key.startswith("split.") and value.strip():
            if not value.strip().isdigit():
                flash(_("Quantities to split off are whole numbers."), "error")
                return redirect(url_for("admin.order", number=number))
            if int(value) > 0:
                lines.append({"sku": key[6:], "quantity": int(value)})
    if not lines:
        flash(_("Say how many of which lines to split off."), "error")
        return redirect(url_for("admin.order", number=number))
    try:
        made = api("split_order", number=number, body={"lines": lines})
    except HubError as exc:
        flash(_("Split refused: %(why)s", why=exc.message), "error")
        return redirect(url_for("admin.order", number=number))
    flash(_("Split off into %(number)s.", number=made["number"]))
    return redirect(url_for("admin.order", number=made["number"]))


def merge(numbers: list[str]) -> ResponseReturnValue:
    """The bulk action "merge": the selected orders into one."""
    try:
        made = api("merge_orders", body={"numbers": numbers})
    except HubError as exc:
        flash(_("Merge refused: %(why)s", why=exc.message), "error")
        return redirect(url_for("admin.orders"))
    flash(_("Merged into %(number)s.", number=made["number"]))
    return redirect(url_for("admin.order", number=made["number"]))
