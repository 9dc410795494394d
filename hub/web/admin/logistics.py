"""Logistics: shipments with their tracking timelines, the delivery-exceptions queue, the
rate-quote tool and carrier accounts.

Every figure comes from, and every action goes through, the API route a user could call
(``api``): the page needs that route's permission, and the API's refusals are shown next to
the fields they name. What the page adds is only the translation of a form into the route's
query or body (and of the API's field names back onto the form).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError
from hub.core.shipments import CANCELLABLE
from hub.web.admin import api, can, enabled_plugin, enabled_plugins, field_errors, page
from hub.web.api.framework import BY_ENDPOINT
from hub.web.ui import schema_form

PAGE_SIZES = ("25", "50", "100", "250")
# Form fields that are the page's own, not the API's filters.
_PAGE_ONLY = {"lang", "status_pick"}
# Parcel rows on the quote form; a row left blank is not sent.
PARCEL_ROWS = 3
MEASURES = ("weight_kg", "length_cm", "width_cm", "height_cm")

TRACKING_LABELS: dict[str, Any] = {
    "created": _l("Label created"),
    "info_received": _l("Carrier informed"),
    "picked_up": _l("Picked up"),
    "in_transit": _l("In transit"),
    "out_for_delivery": _l("Out for delivery"),
    "available_for_pickup": _l("Ready for pickup"),
    "delivery_failed": _l("Delivery attempt failed"),
    "exception": _l("Exception"),
    "returned_to_sender": _l("Returned to sender"),
    "delivered": _l("Delivered"),
    "cancelled": _l("Cancelled"),
    "expired": _l("Tracking expired"),
}
TRACKING_TONES = {
    "delivered": "ok",
    "delivery_failed": "bad",
    "exception": "bad",
    "returned_to_sender": "bad",
    "expired": "warn",
    "cancelled": "warn",
}
KIND_LABELS: dict[str, Any] = {
    "delayed": _l("Delayed"),
    "lost": _l("Lost"),
    "damaged": _l("Damaged"),
    "refused": _l("Refused by the customer"),
    "failed_attempt": _l("Failed delivery attempt"),
    "returned": _l("Returned to sender"),
    "expired": _l("Tracking expired"),
    "exception": _l("Other exception"),
}
REASON_LABELS: dict[str, Any] = {
    "delayed": _l("Delayed"),
    "lost": _l("Lost"),
    "damaged": _l("Damaged"),
    "refused": _l("Refused by the customer"),
    "address": _l("Address problem"),
    "customs": _l("Held at customs"),
    "weather": _l("Weather"),
    "failed_attempt": _l("Failed delivery attempt"),
    "returned": _l("Returned to sender"),
}
RESOLUTION_LABELS: dict[str, Any] = {
    "reship": _l("Reship the goods"),
    "refund": _l("Refund the customer"),
    "close": _l("Close: nothing more to do"),
    "contact": _l("Note a customer contact (stays open)"),
}
SOURCE_LABELS: dict[str, Any] = {
    "poll": _l("from the carrier"),
    "push": _l("pushed by the carrier"),
    "hub": _l("concluded by the hub"),
    "manual": _l("recorded by hand"),
}


def _query_enum(endpoint: str, name: str) -> tuple[str, ...]:
    return next(p.enum for p in BY_ENDPOINT[endpoint].query if p.name == name) or ()


def _body_enum(endpoint: str, name: str) -> tuple[str, ...]:
    body = BY_ENDPOINT[endpoint].body or {}
    return tuple(body["properties"][name]["enum"])


def _labelled(values: tuple[str, ...], labels: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(v, labels.get(v, v)) for v in values]


def _render(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """A logistics page, with the words for statuses, kinds and resolutions."""
    return render_template(
        template,
        tracking_label=lambda s: TRACKING_LABELS.get(s, s),
        tracking_tone=lambda s: TRACKING_TONES.get(s, ""),
        kind_label=lambda k: KIND_LABELS.get(k, k),
        reason_label=lambda r: REASON_LABELS.get(r, r),
        resolution_label=lambda r: RESOLUTION_LABELS.get(r, r),
        source_label=lambda s: SOURCE_LABELS.get(s, s),
        **context,
    ), status


def _refusal(exc: HubError) -> None:
    """Re-raise what is no refusal of the form: a missing record, or a fault of ours."""
    if exc.status == 404 or exc.status >= 500:
        raise exc


def _page_url(endpoint: str, number: int, **path: Any) -> str:
    args = request.args.to_dict(flat=False)
    args["page"] = [str(number)]
    return url_for(endpoint, **path, **args)


def _zone() -> str:
    runtime = current_app.extensions["orderhub"]
    return str(runtime.tenant_settings(g.principal.tenant_slug).tickets.calendar.timezone)


# --- shipments -------------------------------------------------------------------------------


@page("/shipments", "shipping.read")
def shipments() -> ResponseReturnValue:
    filters = MultiDict(
        [(k, v) for k, v in request.args.items(multi=True) if k not in _PAGE_ONLY and v != ""]
    )
    picked = request.args.getlist("status_pick")
    if picked:
        filters["status"] = ",".join(picked)
    filters.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_shipments", query=filters)
    except HubError as exc:
        _refusal(exc)
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    if "status" in errors:
        errors["status_pick"] = errors.pop("status")
    accounts = api("list_carrier_accounts")["items"]
    page_no = found["page"]
    return _render(
        "admin/shipments.html",
        400 if errors else 200,
        found=found,
        errors=errors,
        args=request.args,
        chosen=set((filters.get("status") or "").split(",")),
        statuses=_labelled(_query_enum("list_shipments", "status"), TRACKING_LABELS),
        accounts=accounts,
        account_options=[(str(a["id"]), a["name"]) for a in accounts],
        carriers=sorted({a["plugin"] for a in accounts}),
        page_sizes=[(s, s) for s in PAGE_SIZES],
        previous=_page_url("admin.shipments", page_no - 1) if page_no > 1 else None,
        following=(
            _page_url("admin.shipments", page_no + 1)
            if page_no * found["per_page"] < found["total"]
            else None
        ),
    )


@page("/shipments/<int:shipment_id>", "shipping.read")
def shipment(shipment_id: int) -> ResponseReturnValue:
    return _shipment_page(shipment_id)


def _shipment_page(
    shipment_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: MultiDict[str, str] | None = None,
) -> ResponseReturnValue:
    tracking = api("shipment_events", shipment_id=shipment_id)
    found = tracking["shipment"]
    return _render(
        "admin/shipment.html",
        400 if errors else 200,
        shipment=found,
        events=list(reversed(tracking["items"])),  # newest first
        errors=errors or {},
        form=form or MultiDict(),
        zone=_zone(),
        cancellable=found["status"] in CANCELLABLE,
        event_statuses=_labelled(_body_enum("record_event", "status"), TRACKING_LABELS),
        event_reasons=_labelled(_body_enum("record_event", "reason"), REASON_LABELS),
        exception_kinds=_labelled(_body_enum("open_exception", "kind"), KIND_LABELS),
    )


def _instant(raw: str) -> str:
    """A time from the form: a browser's ``datetime-local`` (no zone) is read in the shop's
    time zone; anything else goes to the API as typed, which says what is wrong with it."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(_zone()))
    return moment.isoformat()


@page("/shipments/<int:shipment_id>/events", "tracking.write", methods=("POST",))
def shipment_event(shipment_id: int) -> ResponseReturnValue:
    form = request.form
    body: dict[str, Any] = {"status": form.get("status", "")}
    if form.get("at", "").strip():
        body["at"] = _instant(form["at"].strip())
    for key in ("location", "note", "reason"):
        if form.get(key, "").strip():
            body[key] = form[key].strip()
    try:
        result = api("record_event", shipment_id=shipment_id, body=body)
    except HubError as exc:
        _refusal(exc)
        return _shipment_page(shipment_id, errors=field_errors(exc), form=form)
    now = TRACKING_LABELS.get(result["shipment"]["status"], result["shipment"]["status"])
    if not result["stored"]:
        flash(_("This event was recorded before; nothing changed."))
    elif result["changed"]:
        flash(_("Event recorded: the shipment is now %(status)s.", status=now))
    else:
        flash(
            _(
                "Event recorded. The shipment stays %(status)s: a later scan decides its status.",
                status=now,
            )
        )
    return redirect(url_for("admin.shipment", shipment_id=shipment_id))


@page("/shipments/<int:shipment_id>/track", "tracking.write", methods=("POST",))
def shipment_track(shipment_id: int) -> ResponseReturnValue:
    try:
        result = api("track_shipment", shipment_id=shipment_id)
    except HubError as exc:
        _refusal(exc)
        flash(_("Tracking was not checked: %(why)s", why=exc.message), "error")
    else:
        if result["changed"]:
            flash(_("Tracking checked: the carrier had news."))
        else:
            flash(_("Tracking checked: nothing new from the carrier."))
    return redirect(url_for("admin.shipment", shipment_id=shipment_id))


@page("/shipments/<int:shipment_id>/cancel", "shipping.write", methods=("POST",))
def shipment_cancel(shipment_id: int) -> ResponseReturnValue:
    try:
        api("cancel_shipment", shipment_id=shipment_id)
    except HubError as exc:
        _refusal(exc)
        flash(_("The shipment was not voided: %(why)s", why=exc.message), "error")
    else:
        flash(_("Shipment voided: its goods are reserved for the order again."))
    return redirect(url_for("admin.shipment", shipment_id=shipment_id))


@page("/shipments/<int:shipment_id>/exceptions", "tracking.write", methods=("POST",))
def shipment_exception(shipment_id: int) -> ResponseReturnValue:
    form = request.form
    body = {
        k: form.get(f"exception.{k}", "").strip()
        for k in ("kind", "note")
        if form.get(f"exception.{k}", "").strip()
    }
    try:
        opened = api("open_exception", shipment_id=shipment_id, body=body)
    except HubError as exc:
        _refusal(exc)
        errors = {
            (f"exception.{k}" if k in ("kind", "note") else k): v
            for k, v in field_errors(exc).items()
        }
        return _shipment_page(shipment_id, errors=errors, form=form)
    flash(_("Delivery exception #%(id)s opened.", id=opened["id"]))
    return redirect(url_for("admin.exceptions"))


# --- delivery exceptions ---------------------------------------------------------------------


@page("/exceptions", "shipping.read")
def exceptions() -> ResponseReturnValue:
    view = request.args.get("status") or "open"  # the queue: what still needs a person
    query = {
        "status": None if view == "all" else view,
        "kind": request.args.get("kind"),
        "page": request.args.get("page"),
        "per_page": request.args.get("per_page") or "50",
    }
    errors: dict[str, str] = {}
    try:
        found = api("list_exceptions", query=query)
    except HubError as exc:
        _refusal(exc)
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    page_no = found["page"]
    return _render(
        "admin/exceptions.html",
        400 if errors else 200,
        found=found,
        errors=errors,
        view=view,
        kind=request.args.get("kind", ""),
        kinds=_labelled(_query_enum("list_exceptions", "kind"), KIND_LABELS),
        resolutions=_labelled(_body_enum("resolve_exception", "resolution"), RESOLUTION_LABELS),
        here=request.full_path.rstrip("?"),
        previous=_page_url("admin.exceptions", page_no - 1) if page_no > 1 else None,
        following=(
            _page_url("admin.exceptions", page_no + 1)
            if page_no * found["per_page"] < found["total"]
            else None
        ),
    )


@page("/exceptions/<int:exception_id>/resolve", "shipping.write", methods=("POST",))
def exception_resolve(exception_id: int) -> ResponseReturnValue:
    form = request.form
    body = {"resolution": form.get("resolution", "")}
    if form.get("note", "").strip():
        body["note"] = form["note"].strip()
    try:
        done = api("resolve_exception", exception_id=exception_id, body=body)
    except HubError as exc:
        _refusal(exc)
        flash(
            _("Exception #%(id)s was not resolved: %(why)s", id=exception_id, why=exc.message),
            "error",
        )
    else:
        if done["status"] == "open":
            flash(_("Exception #%(id)s: note saved; it stays open.", id=exception_id))
        else:
            flash(
                _(
                    "Exception #%(id)s resolved: %(resolution)s.",
                    id=exception_id,
                    resolution=RESOLUTION_LABELS.get(done["resolution"], done["resolution"]),
                )
            )
    back = form.get("next", "")
    if not back.startswith(url_for("admin.exceptions")):
        back = url_for("admin.exceptions")
    return redirect(back)


# --- rate quotes -----------------------------------------------------------------------------


def _warehouses() -> list[dict[str, Any]]:
    if not can("catalog.read"):
        return []
    found = api("list_warehouses", query={"per_page": "500"})["items"]
    return [w for w in found if w.get("active", True) and w.get("country")]


def _place(form: MultiDict[str, str], prefix: str, keys: tuple[str, ...]) -> dict[str, str]:
    return {k: form[f"{prefix}.{k}"].strip() for k in keys if form.get(f"{prefix}.{k}", "").strip()}


def _parcel_body(
    form: MultiDict[str, str], warehouses: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The quote_rates body for one shipment, and how the API's field names map back onto
    the form's (a parcel row left blank is skipped, so API index and row number differ)."""
    names: dict[str, str] = {}
    body: dict[str, Any] = {}
    source = next((w for w in warehouses if w["code"] == form.get("from")), None)
    if source is not None:
        body["origin"] = {
            k: source[k] for k in ("country", "postcode", "city", "region") if source.get(k)
        }
        names.update({f"origin.{k}": "from" for k in ("country", "postcode", "city", "region")})
        names["origin"] = "from"
    else:
        body["origin"] = _place(form, "origin", ("country", "postcode", "city"))
        names["origin"] = "origin.country"
    body["destination"] = _place(
        form, "destination", ("country", "postcode", "city", "region", "line1")
    )
    names["destination"] = "destination.country"
    body["parcels"] = []
    for row in range(PARCEL_ROWS):
        parcel = _place(form, f"parcels.{row}", MEASURES)
        if parcel:
            index = len(body["parcels"])
            body["parcels"].append(parcel)
            names[f"parcels[{index}]"] = f"parcels.{row}.weight_kg"
            names.update({f"parcels[{index}].{m}": f"parcels.{row}.{m}" for m in MEASURES})
    names["parcels"] = "parcels.0.weight_kg"
    for key in ("declared_value", "currency", "promised", "reference"):
        if form.get(key, "").strip():
            body[key] = form[key].strip()
    return body, names


@page("/rates", "shipping.read", methods=("GET", "POST"))
def rates() -> ResponseReturnValue:
    """Quote an order, or one shipment described on the form, with every enabled carrier."""
    warehouses = _warehouses()
    accounts = [a for a in api("list_carrier_accounts")["items"] if a["enabled"]]
    form = request.form if request.method == "POST" else MultiDict()
    mode = form.get("mode", "parcel")
    answer, errors = None, {}
    if request.method == "POST":
        if mode == "order":
            body: dict[str, Any] = {"order": form.get("order", "").strip()}
            if form.get("order_promised", "").strip():
                body["promised"] = form["order_promised"].strip()
            names = {"order": "order", "promised": "order_promised", "(body)": "order"}
        else:
            body, names = _parcel_body(form, warehouses)
        try:
            answer = api("quote_rates", body=body)
        except HubError as exc:
            errors = {names.get(k, k): v for k, v in field_errors(exc).items()}
            if mode == "order" and "" in errors:
                errors["order"] = errors.pop("")
    return _render(
        "admin/rates.html",
        400 if errors else 200,
        mode=mode,
        form=form,
        errors=errors,
        answer=answer,
        accounts=accounts,
        warehouses=warehouses,
        parcel_rows=range(PARCEL_ROWS),
    )


# --- carrier accounts ------------------------------------------------------------------------


@page("/carriers", "shipping.read")
def carrier_accounts() -> ResponseReturnValue:
    return _render(
        "admin/carrier_accounts.html",
        accounts=api("list_carrier_accounts")["items"],
        plugins=enabled_plugins("carrier") if can("carriers.write") else [],
    )


_SETTING = re.compile(r"^settings\.([A-Za-z0-9_-]+)(.*)$")


def _setting_errors(exc: HubError, fields: list[schema_form.Field]) -> dict[str, str]:
    """The API's refusal on the generated form: a problem deep inside a setting
    (``settings.zones[0].code``) sits by that setting's field, saying where inside it."""
    names = {f.name for f in fields}
    out: dict[str, str] = {}
    for key, problem in field_errors(exc).items():
        found = _SETTING.match(key)
        if found and found.group(1) in names:
            where = f"settings.{found.group(1)}"
            text = f"{found.group(1)}{found.group(2)}: {problem}" if found.group(2) else problem
            out[where] = f"{out[where]}; {text}" if where in out else text
        elif key in ("name", ""):
            out[key] = problem
        else:
            out.setdefault("", f"{key}: {problem}")
    if exc.status == 409 and "" in out:  # the one conflict: the name is taken
        out["name"] = out.pop("")
    return out


@page("/carriers/new/<plugin>", "carriers.write", methods=("GET", "POST"))
def carrier_new(plugin: str) -> ResponseReturnValue:
    spec = enabled_plugin("carrier", plugin)
    schema = spec["settings_schema"]
    fields = schema_form.fields(schema)
    errors: dict[str, str] = {}
    name = request.form.get("name", "").strip()
    if request.method == "POST":
        settings, errors = schema_form.settings_from(request.form, schema)
        if not name:
            errors["name"] = _("Give the account a name.")
        if not errors:
            body = {
                "plugin": plugin,
                "name": name,
                "settings": settings,
                "enabled": "enabled" in request.form,
            }
            try:
                created = api("create_carrier_account", body=body)
            except HubError as exc:
                errors = _setting_errors(exc, fields)
            else:
                flash(_("Carrier account %(name)s added.", name=created["name"]))
                return redirect(url_for("admin.carrier_account", account_id=created["id"]))
    return _render(
        "admin/carrier_new.html",
        400 if errors else 200,
        plugin=spec,
        fields=fields,
        errors=errors,
        form=request.form,
        name=name,
    )


def _shown_settings(account: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(label, value, is a secret) for each stored setting; secrets only say they are set."""
    spec = next((p for p in enabled_plugins("carrier") if p["name"] == account["plugin"]), None)
    fields = {f.name: f for f in schema_form.fields(spec["settings_schema"])} if spec else {}
    out = []
    for key, value in account["settings"].items():
        field = fields.get(key)
        secret = (field is not None and field.kind == "password") or value == "********"
        if secret:
            text = _("set (never shown)")
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False)
        out.append((str(field.label) if field else key, text, secret))
    return out


def _account_page(
    account_id: int,
    *,
    errors: dict[str, str] | None = None,
    form: MultiDict[str, str] | None = None,
    settings_form: MultiDict[str, str] | None = None,
) -> ResponseReturnValue:
    account = api("get_carrier_account", account_id=account_id)
    spec = next((p for p in enabled_plugins("carrier") if p["name"] == account["plugin"]), None)
    fields = schema_form.fields(spec["settings_schema"]) if spec else []
    return _render(
        "admin/carrier_account.html",
        400 if errors else 200,
        account=account,
        settings=_shown_settings(account),
        errors=errors or {},
        form=form,
        fields=fields,
        settings_form=settings_form or _settings_prefill(account, fields),
        settings_open=settings_form is not None,
    )


def _settings_prefill(account: dict[str, Any], fields: list[schema_form.Field]) -> MultiDict:
    """The stored settings as the generated form shows them; secrets stay blank ("leave
    blank to keep"), since they are never shown."""
    out: MultiDict[str, str] = MultiDict()
    kinds = {f.name: f.kind for f in fields}
    for key, value in account["settings"].items():
        kind = kinds.get(key)
        if kind in (None, "password") or value == "********":
            continue
        if kind == "checkbox":
            if value:
                out[f"settings.{key}"] = "on"
        elif kind == "lines":
            out[f"settings.{key}"] = "\n".join(str(v) for v in value)
        elif kind == "json":
            out[f"settings.{key}"] = json.dumps(value, ensure_ascii=False)
        else:
            out[f"settings.{key}"] = str(value)
    return out


@page("/carriers/<int:account_id>/settings", "carriers.write", methods=("POST",))
def carrier_settings(account_id: int) -> ResponseReturnValue:
    """New settings from the generated form; a secret left blank keeps its stored value."""
    account = api("get_carrier_account", account_id=account_id)
    spec = enabled_plugin("carrier", account["plugin"])
    fields = schema_form.fields(spec["settings_schema"])
    settings, errors = schema_form.settings_from(request.form, spec["settings_schema"])
    if not errors:
        try:
            api("update_carrier_account", account_id=account_id, body={"settings": settings})
        except HubError as exc:
            errors = _setting_errors(exc, fields)
    if errors:
        return _account_page(account_id, errors=errors, settings_form=request.form)
    flash(_("The settings of %(name)s are saved.", name=account["name"]))
    return redirect(url_for("admin.carrier_account", account_id=account_id))


@page("/carriers/<int:account_id>", "shipping.read")
def carrier_account(account_id: int) -> ResponseReturnValue:
    return _account_page(account_id)


@page("/carriers/<int:account_id>/edit", "carriers.write", methods=("POST",))
def carrier_update(account_id: int) -> ResponseReturnValue:
    """Switch an account on or off and choose its services: what the API lets change."""
    account = api("get_carrier_account", account_id=account_id)
    body: dict[str, Any] = {"enabled": "enabled" in request.form}
    offered = [s["code"] for s in account["services"]]
    if offered:
        picked = [code for code in offered if code in request.form.getlist("services")]
        # Every service ticked: the account may use all it offers, new ones included.
        body["services"] = None if picked == offered else picked
    try:
        api("update_carrier_account", account_id=account_id, body=body)
    except HubError as exc:
        _refusal(exc)
        return _account_page(account_id, errors=field_errors(exc), form=request.form)
    flash(_("Carrier account %(name)s saved.", name=account["name"]))
    return redirect(url_for("admin.carrier_account", account_id=account_id))
