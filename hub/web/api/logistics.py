"""Carrier accounts and rate shopping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from hub.core import carriers, orders, rates, shipments
from hub.core.adapters import CarrierAdapter, Parcel, Place, ShipmentRequest
from hub.core.errors import Invalid
from hub.core.models import CarrierAccount, Product, Warehouse
from hub.web.api.framework import AfterCommit, Ctx, route
from hub.web.api.schemas import COUNTRY, MONEY, SHORT, TEXT, closed

TAG = "logistics"
MAX_SHIPMENTS = 10_000

ACCOUNT_CREATE = closed(
    {
        "plugin": {"type": "string", "minLength": 1, "maxLength": 64},
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "settings": {"type": "object"},
        "services": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "minItems": 1,
            "uniqueItems": True,
        },
        "enabled": {"type": "boolean"},
    },
    ("plugin", "name", "settings"),
)
ACCOUNT_UPDATE = closed(
    {
        "enabled": {"type": "boolean"},
        "services": {
            "description": "service codes this account may use, or null for all it offers",
            "anyOf": [ACCOUNT_CREATE["properties"]["services"], {"type": "null"}],
        },
        "settings": {
            "type": "object",
            "description": "the plugin's settings, all of them; a secret left out keeps its"
            " stored value (secrets are never returned, so they cannot be sent back)",
        },
    },
    minProperties=1,
)

MEASURE = {
    "description": 'a positive decimal: a string such as "1.25" (JSON numbers are accepted too)',
    "anyOf": [
        {"type": "string", "pattern": r"^\d{1,6}(\.\d{1,4})?$"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 999_999},
    ],
}
PLACE = closed(
    {
        "country": COUNTRY,
        "postcode": {"type": "string", "maxLength": 20},
        "city": {"type": "string", "maxLength": 100},
        "region": {"type": "string", "maxLength": 100},
        "line1": TEXT,
        "line2": TEXT,
        "name": TEXT,
        "company": TEXT,
        "phone": {"type": "string", "maxLength": 40},
        "email": {"type": "string", "maxLength": 254},
    },
    ("country",),
)
PARCEL = closed(
    {"weight_kg": MEASURE, "length_cm": MEASURE, "width_cm": MEASURE, "height_cm": MEASURE},
    ("weight_kg",),
)
SHIPMENT_FIELDS: dict[str, Any] = {
    "origin": PLACE,
    "destination": PLACE,
    "parcels": {"type": "array", "items": PARCEL, "minItems": 1, "maxItems": 50},
    "declared_value": MONEY,
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "promised": {"type": "string", "format": "date"},
    "reference": SHORT,
}
SHIPMENT = closed(SHIPMENT_FIELDS, ("origin", "destination", "parcels"))
_FORMS = {
    "order": {"order", "promised"},
    "shipment": set(SHIPMENT_FIELDS),
    "batch": {"shipments"},
}
_ALL = set().union(*_FORMS.values())


def _only(required: list[str], form: str) -> dict[str, Any]:
    others = sorted(_ALL - _FORMS[form])
    return {"required": required, "not": {"anyOf": [{"required": [k]} for k in others]}}


RATES = closed(
    {
        "order": SHORT,
        **SHIPMENT_FIELDS,
        "shipments": {
            "type": "array",
            "items": SHIPMENT,
            "minItems": 1,
            "maxItems": MAX_SHIPMENTS,
        },
    },
    oneOf=[
        _only(["order"], "order"),
        _only(["origin", "destination", "parcels"], "shipment"),
        _only(["shipments"], "batch"),
    ],
    description="give one of: an order number (order, promised?); one shipment (origin,"
    " destination, parcels, declared_value?, currency?, promised?, reference?); or shipments,"
    " a list of such shipments",
)


# --- carrier accounts ------------------------------------------------------------------------


def _view(ctx: Ctx, account: CarrierAccount) -> dict[str, Any]:
    cls = ctx.runtime.plugins.adapters("carriers").get(account.plugin)
    return carriers.account_view(
        account,
        cls,  # type: ignore[arg-type]
        box=ctx.runtime.secrets,
    )


def _carrier_plugins(ctx: Ctx) -> dict[str, type[CarrierAdapter]]:
    return ctx.runtime.plugins.adapters("carriers", ctx.tenant)  # type: ignore[return-value]


@route(
    "/carrier-accounts",
    permission="shipping.read",
    tag=TAG,
    summary="Carrier accounts with their services and capabilities",
)
def list_carrier_accounts(ctx: Ctx) -> dict[str, Any]:
    found = carriers.list_accounts(ctx.session, ctx.tenant_id)
    return {"items": [_view(ctx, a) for a in found], "total": len(found)}


@route(
    "/carrier-accounts",
    "POST",
    permission="carriers.write",
    tag=TAG,
    status=201,
    summary="Add a carrier account: a carrier plugin with its settings",
    body=ACCOUNT_CREATE,
)
def create_carrier_account(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    available = _carrier_plugins(ctx)
    cls = available.get(body["plugin"])
    if cls is None:
        raise Invalid(
            f"plugin: no carrier plugin {body['plugin']!r} is enabled; available: "
            + (", ".join(sorted(available)) or "none")
        )
    account = carriers.create_account(
        ctx.session,
        ctx.tenant_id,
        cls,
        body["name"],
        body["settings"],
        box=ctx.runtime.secrets,
        actor=ctx.actor,
        services=body.get("services"),
        enabled=body.get("enabled", True),
    )
    return _view(ctx, account)


@route(
    "/carrier-accounts/<int:account_id>",
    permission="shipping.read",
    tag=TAG,
    summary="Read a carrier account",
)
def get_carrier_account(ctx: Ctx, account_id: int) -> dict[str, Any]:
    return _view(ctx, carriers.get_account(ctx.session, ctx.tenant_id, account_id))


@route(
    "/carrier-accounts/<int:account_id>",
    "PATCH",
    permission="carriers.write",
    tag=TAG,
    summary="Enable or disable a carrier account, choose its services or change its settings",
    body=ACCOUNT_UPDATE,
)
def update_carrier_account(ctx: Ctx, account_id: int, body: dict[str, Any]) -> dict[str, Any]:
    account = carriers.update_account(
        ctx.session,
        ctx.tenant_id,
        account_id,
        body,
        plugins=ctx.runtime.plugins.adapters("carriers"),  # type: ignore[arg-type]
        box=ctx.runtime.secrets,
        actor=ctx.actor,
    )
    return _view(ctx, account)


# --- rates -----------------------------------------------------------------------------------


@route(
    "/rates",
    "POST",
    permission="shipping.read",
    tag=TAG,
    summary="Quote an order, a shipment or a batch of shipments with every enabled carrier",
    body=RATES,
)
def quote_rates(ctx: Ctx, body: dict[str, Any]) -> AfterCommit:
    """Everything the database says is read here; the carriers are asked after the
    transaction ends (AfterCommit), so a slow carrier holds no lock and no connection."""
    shipping = ctx.tenant.shipping
    today = date.today()
    accounts = ctx.session.scalars(
        select(CarrierAccount)
        .where(CarrierAccount.tenant_id == ctx.tenant_id, CarrierAccount.enabled)
        .order_by(CarrierAccount.id)
    ).all()
    runtime, tenant_id = ctx.runtime, ctx.tenant_id

    def quote(requests: Sequence[ShipmentRequest]) -> list[rates.QuoteResult]:
        return rates.shop(
            runtime,
            tenant_id,
            requests,
            deadline=shipping.deadline_seconds,
            accounts=accounts,
            today=today,
        )

    def answer(result: rates.QuoteResult, promised: date | None) -> dict[str, Any]:
        promised = rates.promised_date(shipping, today, promised)
        selected = rates.choose(
            result.rates,
            shipping.policy,
            country=result.request.destination.country,
            promised=promised,
            preferred=shipping.preferred,
            currency=result.request.currency,
        )
        return {
            "rates": [rates.rate_view(r) for r in result.rates],
            "errors": [rates.error_view(e) for e in result.errors],
            "selected": rates.rate_view(selected) if selected else None,
            "promised": promised,
        }

    if "order" in body:
        order = orders.get(ctx.session, ctx.tenant_id, body["order"])
        parts = shipments.parts_of(ctx.session, order)
        promised = _date(body.get("promised"), "promised")
        labels = _part_labels(ctx, parts)

        def for_order() -> dict[str, Any]:
            results = quote([p.request for p in parts])
            return {
                "order": order.number,
                "policy": shipping.policy,
                "parts": [{**labels[i], **answer(r, promised)} for i, r in enumerate(results)],
            }

        return AfterCommit(for_order)

    if "shipments" in body:
        items = body["shipments"]
        requests = [_request(x, f"shipments[{i}].") for i, x in enumerate(items)]
        dates = [_date(x.get("promised"), f"shipments[{i}].promised") for i, x in enumerate(items)]

        def for_batch() -> dict[str, Any]:
            results = quote(requests)
            return {
                "policy": shipping.policy,
                "quoted": len(results),
                "distinct": len({rates.request_key(r) for r in requests}),
                "results": [
                    {"index": i, "reference": r.request.reference, **answer(r, dates[i])}
                    for i, r in enumerate(results)
                ],
            }

        return AfterCommit(for_batch)

    request = _request(body, "")
    promised = _date(body.get("promised"), "promised")

    def for_one() -> dict[str, Any]:
        [result] = quote([request])
        return {"policy": shipping.policy, **answer(result, promised)}

    return AfterCommit(for_one)


def _part_labels(ctx: Ctx, parts: Sequence[shipments.Part]) -> list[dict[str, Any]]:
    """Each part named as a person reads it: the warehouse's code and the SKUs it sends."""
    warehouse_ids = {p.warehouse_id for p in parts}
    product_ids = {pid for p in parts for pid in p.items}
    codes = dict(
        ctx.session.execute(
            select(Warehouse.id, Warehouse.code).where(Warehouse.id.in_(warehouse_ids))
        ).all()
    )
    skus = dict(
        ctx.session.execute(
            select(Product.id, Product.sku).where(Product.id.in_(product_ids))
        ).all()
    )
    return [
        {
            "warehouse": codes[p.warehouse_id],
            "items": [{"sku": skus[pid], "quantity": q} for pid, q in sorted(p.items.items())],
        }
        for p in parts
    ]


def _request(raw: Mapping[str, Any], where: str) -> ShipmentRequest:
    return ShipmentRequest(
        origin=_place(raw["origin"]),
        destination=_place(raw["destination"]),
        parcels=tuple(_parcel(p, f"{where}parcels[{i}].") for i, p in enumerate(raw["parcels"])),
        declared_value=_decimal(raw["declared_value"]) if "declared_value" in raw else None,
        currency=raw.get("currency", "USD"),
        reference=raw.get("reference"),
    )


def _place(raw: Mapping[str, Any]) -> Place:
    return Place(**{**raw, "country": raw["country"].upper()})


def _parcel(raw: Mapping[str, Any], where: str) -> Parcel:
    def measure(key: str) -> Decimal | None:
        if key not in raw:
            return None
        value = _decimal(raw[key])
        if value <= 0:
            raise Invalid(
                f"{where}{key}: must be more than 0",
                [{"field": f"{where}{key}", "problem": "must be more than 0"}],
            )
        return value

    weight = measure("weight_kg")
    assert weight is not None  # required by the schema
    return Parcel(weight, measure("length_cm"), measure("width_cm"), measure("height_cm"))


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _date(value: str | None, where: str) -> date | None:
    """A date the schema let through; a calendar-impossible one ("2026-02-30") is refused
    here with the field named, since format checkers differ on those."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            f"{where}: {value!r} is not a date (YYYY-MM-DD)",
            [{"field": where, "problem": "not a date (YYYY-MM-DD)"}],
        ) from None
