"""Inventory: stock per warehouse, open low-stock alerts and the ledger, and the forms that
move stock (one adjustment, goods received or sent out, a CSV batch), each over the API's own
view, so a page refuses what the API refuses and names the field the refusal concerns."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from hub.core import stock_import as csv_import
from hub.core.errors import HubError
from hub.web.admin import api, bp, can, field_errors, page
from hub.web.api.framework import BY_ENDPOINT

PAGE_SIZES = ("25", "50", "100", "250")
STOCK_FILTERS = ("sku", "name", "category", "brand", "warehouse", "low_only")
LEDGER_FILTERS = ("sku", "warehouse", "kind", "reference")
PAGING = ("page", "per_page")
# Lines on the receive / send-out form; a bigger batch is a CSV import.
MOVE_LINES = 5
# Changed balances listed after an import; the ledger has them all.
SUMMARY_ROWS = 200

KIND_LABELS: dict[str, Any] = {
    "inbound": _l("Goods received"),
    "outbound": _l("Goods sent out"),
    "adjust": _l("Adjustment"),
    "reserve": _l("Reserved for an order"),
    "release": _l("Released from an order"),
    "ship": _l("Shipped"),
    "unship": _l("Shipment undone"),
}
IMPORT_KINDS: dict[str, Any] = {
    "inbound": _l("Receive: add each quantity"),
    "outbound": _l("Send out: take each quantity away"),
    "adjust": _l("Correct: add a signed change (e.g. -3)"),
}


def _listing(endpoint: str, names: tuple[str, ...]) -> tuple[dict[str, str], Any, dict[str, str]]:
    """The URL's filters (blank ones left out, others ignored), the API's answer for them,
    and its refusal as {field: problem} when it refuses them."""
    args = {k: v for k in names + PAGING if (v := request.args.get(k, "").strip())}
    query = dict(args)
    query.setdefault("per_page", "50")
    try:
        return args, api(endpoint, query=query), {}
    except HubError as exc:
        return args, {"items": [], "total": 0, "page": 1, "per_page": 50}, field_errors(exc)


def _warehouses() -> list[tuple[str, str]]:
    """(code, "code · name") for the warehouse pickers; none when the role may not read
    the catalogue (the pages then take a typed code)."""
    if not can("catalog.read"):
        return []
    found = api("list_warehouses", query={"per_page": "500"})["items"]
    return [(w["code"], f"{w['code']} · {w['name']}") for w in found]


# --- reading ------------------------------------------------------------------------------


@page("/stock", "stock.read")
def stock() -> ResponseReturnValue:
    args, found, errors = _listing("list_stock", STOCK_FILTERS)
    filtered = any(k in args for k in STOCK_FILTERS)
    return render_template(
        "admin/stock.html",
        found=found,
        errors=errors,
        args=args,
        filtered=filtered,
        warehouses=_warehouses(),
        page_sizes=PAGE_SIZES,
    ), 400 if errors else 200


@page("/stock/alerts", "stock.read")
def stock_alerts() -> ResponseReturnValue:
    return render_template("admin/stock_alerts.html", alerts=api("alerts")["items"])


@page("/stock/ledger", "stock.read")
def stock_ledger() -> ResponseReturnValue:
    args, found, errors = _listing("ledger", LEDGER_FILTERS)
    kinds = next(p.enum for p in BY_ENDPOINT["ledger"].query if p.name == "kind") or ()
    return render_template(
        "admin/stock_ledger.html",
        found=found,
        errors=errors,
        args=args,
        filtered=any(k in args for k in LEDGER_FILTERS),
        warehouses=_warehouses(),
        kinds=[(k, KIND_LABELS.get(k, k)) for k in kinds],
        kind_labels=KIND_LABELS,
        page_sizes=PAGE_SIZES,
    ), 400 if errors else 200


# --- moving stock ---------------------------------------------------------------------------

_ITEM = re.compile(r"^items\[(\d+)\](?:\.(\w+))?$")
_LINE = re.compile(r"^line (\d+)$")


def _line_field(problem: str) -> str:
    """Which field of a batch line a service's problem with that line concerns."""
    if problem.startswith(("unknown warehouse", "no warehouse")):
        return "warehouse"
    if problem.startswith("unknown SKU"):
        return "sku"
    return "quantity"  # its range, or not enough stock for it


def _form_errors(exc: HubError, rows: list[int] | None = None) -> dict[str, str]:
    """The API's refusal placed on the form: ``items[i].sku`` and ``line n`` become the field
    of the form row they came from (``sku_3``), or the single ``sku`` / ``quantity`` of a
    one-line form (``rows`` None); the warehouse, reason and reference are the form's own."""
    out: dict[str, str] = {}
    for name, problem in field_errors(exc).items():
        item, line = _ITEM.match(name), _LINE.match(name)
        if item:
            index = int(item[1])
            part = item[2] if item[2] in ("sku", "warehouse") else "quantity"
        elif line:
            index, part = int(line[1]) - 1, _line_field(problem)
        else:
            out.setdefault(name, problem)
            continue
        if part == "warehouse" or rows is None or not 0 <= index < len(rows):
            key = part
        else:
            key = f"{part}_{rows[index]}"
        out.setdefault(key, problem)
    return out


def _whole(raw: str) -> int | None:
    try:
        return int(raw.strip().replace(",", "").replace(" ", ""))
    except ValueError:
        return None


@page("/stock/adjust", "stock.write", methods=("GET", "POST"))
def stock_adjust() -> ResponseReturnValue:
    """One balance corrected: a stock-take's counted on-hand, or a signed change."""
    source = request.form if request.method == "POST" else request.args
    form = {
        "warehouse": source.get("warehouse", "").strip(),
        "sku": source.get("sku", "").strip(),
        "mode": "delta" if source.get("mode") == "delta" else "count",
        "quantity": source.get("quantity", "").strip(),
        "reason": source.get("reason", "").strip(),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        quantity = _whole(form["quantity"])
        if not form["sku"]:
            errors["sku"] = _("Enter the SKU to adjust.")
        if quantity is None:
            errors["quantity"] = (
                _("Enter a whole number, e.g. -3 or 12.")
                if form["mode"] == "delta"
                else _("Enter the counted quantity as a whole number, e.g. 12.")
            )
        if not form["reason"]:
            errors["reason"] = _("Say why the stock changes (e.g. stock-take, damaged).")
        if not errors:
            item = {
                "sku": form["sku"],
                "quantity" if form["mode"] == "count" else "delta": quantity,
            }
            body: dict[str, Any] = {"reason": form["reason"], "items": [item]}
            if form["warehouse"]:
                body["warehouse"] = form["warehouse"]
            try:
                api("adjust", body=body)
            except HubError as exc:
                errors = _form_errors(exc)
            else:
                flash(
                    _(
                        "Stock of %(sku)s at %(warehouse)s adjusted.",
                        sku=form["sku"],
                        warehouse=form["warehouse"],
                    )
                )
                return redirect(
                    url_for("admin.stock", sku=form["sku"], warehouse=form["warehouse"] or None)
                )
    return render_template(
        "admin/stock_adjust.html",
        form=form,
        errors=errors,
        warehouses=_warehouses(),
        balance=_balance(form["sku"], form["warehouse"]),
    ), 400 if errors else 200


def _balance(sku: str, warehouse: str) -> dict[str, Any] | None:
    """The balance the form is about, as it stands now, when the form names one."""
    if not sku or not warehouse:
        return None
    try:
        found = api("list_stock", query={"sku": sku, "warehouse": warehouse, "per_page": "1"})
    except HubError:
        return None
    return found["items"][0] if found["items"] else None


def _move(kind: str) -> ResponseReturnValue:
    """Goods received into, or sent out of, one warehouse: a few lines, all or nothing."""
    source = request.form if request.method == "POST" else request.args
    form = {
        k: source.get(k, "").strip()
        for k in ["warehouse", "reference", "reason"]
        + [f"{f}_{n}" for n in range(1, MOVE_LINES + 1) for f in ("sku", "quantity")]
    }
    if request.method == "GET" and not form["sku_1"]:
        form["sku_1"] = request.args.get("sku", "").strip()
    errors: dict[str, str] = {}
    if request.method == "POST":
        items, rows = [], []
        for n in range(1, MOVE_LINES + 1):
            sku, raw = form[f"sku_{n}"], form[f"quantity_{n}"]
            if not sku and not raw:
                continue
            quantity = _whole(raw)
            if not sku:
                errors[f"sku_{n}"] = _("Enter the SKU for this quantity.")
            if quantity is None:
                errors[f"quantity_{n}"] = _("Enter a whole number, e.g. 12.")
            item: dict[str, Any] = {"sku": sku, "quantity": quantity}
            if form["reason"]:
                item["reason"] = form["reason"]
            items.append(item)
            rows.append(n)
        if not items:
            errors["sku_1"] = _("Enter at least one SKU and its quantity.")
        if not errors:
            body: dict[str, Any] = {"items": items}
            for key in ("warehouse", "reference"):
                if form[key]:
                    body[key] = form[key]
            try:
                api(kind, body=body)
            except HubError as exc:
                errors = _form_errors(exc, rows)
            else:
                flash(
                    _(
                        "Received %(count)s line(s) into %(warehouse)s.",
                        count=len(items),
                        warehouse=form["warehouse"],
                    )
                    if kind == "inbound"
                    else _(
                        "Sent %(count)s line(s) out of %(warehouse)s.",
                        count=len(items),
                        warehouse=form["warehouse"],
                    )
                )
                return redirect(
                    url_for(
                        "admin.stock",
                        warehouse=form["warehouse"] or None,
                        sku=items[0]["sku"] if len(items) == 1 else None,
                    )
                )
    return render_template(
        "admin/stock_move.html",
        kind=kind,
        form=form,
        errors=errors,
        lines=range(1, MOVE_LINES + 1),
        warehouses=_warehouses(),
    ), 400 if errors else 200


@page("/stock/inbound", "stock.write", methods=("GET", "POST"))
def stock_inbound() -> ResponseReturnValue:
    return _move("inbound")


@page("/stock/outbound", "stock.write", methods=("GET", "POST"))
def stock_outbound() -> ResponseReturnValue:
    return _move("outbound")


# --- CSV import ---------------------------------------------------------------------------


@bp.url_value_preprocessor
def _upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """The import page takes a file as large as the API's CSV route does, not just a form's
    worth. This runs before the admin's guard, which reads the form (for its CSRF token)
    only after it has checked who is signed in and that they may import."""
    if endpoint == "admin.stock_import" and request.method == "POST":
        settings = current_app.extensions["orderhub"].settings
        request.max_content_length = settings.max_upload_bytes


@page("/stock/import", "stock.write", methods=("GET", "POST"))
def stock_import() -> ResponseReturnValue:
    form = {
        "kind": request.form.get("kind", "inbound"),
        "reference": request.form.get("reference", "").strip(),
        "reason": request.form.get("reason", "").strip(),
    }
    errors: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors["file"] = _("Choose a CSV file to upload.")
        else:
            try:
                done = api("import_csv", query=form)
            except HubError as exc:
                problems = [d for d in exc.details or [] if isinstance(d, dict) and d.get("line")]
                if problems:
                    errors["file"] = _(
                        "Nothing was imported: fix the line(s) below and upload the file again."
                    )
                else:
                    errors = {k or "file": v for k, v in field_errors(exc).items()}
            else:
                upload.stream.seek(0)
                return render_template(
                    "admin/stock_imported.html",
                    done=done,
                    form=form,
                    kind_label=IMPORT_KINDS.get(done["kind"], done["kind"]),
                    changes=_changes(upload.read(), done["kind"]),
                    limit=SUMMARY_ROWS,
                )
    return render_template(
        "admin/stock_import.html",
        form=form,
        errors=errors,
        problems=problems,
        kinds=list(IMPORT_KINDS.items()),
    ), 400 if errors else 200


def _changes(raw: bytes, kind: str) -> list[dict[str, Any]]:
    """What an applied file changed: the net change per warehouse and SKU, read from the
    file as the import read it."""
    rows, _lines = csv_import.parse(raw.decode("utf-8-sig"))
    sign = -1 if kind == "outbound" else 1
    net: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["warehouse"] or "", r["sku"])
        net[key] = net.get(key, 0) + sign * r["quantity"]
    return [{"warehouse": w, "sku": s, "change": c} for (w, s), c in sorted(net.items())]
