"""The ``storefront`` channel: OrderHub's own order format, for the merchant's website and app.

A website or mobile-app backend sends each order to OrderHub itself, without a marketplace in
between. It posts the order, and again whenever the order changes, to the connection's webhook
URL::

    POST <webhook URL of the connection>
    Content-Type: application/json
    Idempotency-Key: 5f0c6a52-6d1e-4f7e-9a3b-2c8e1d7f4a10
    X-OrderHub-Signature: <base64(HMAC-SHA256(secret, raw body))>

    {
      "id": "W-100234",
      "number": "#100234",
      "updated_at": "2024-05-02T14:03:11+02:00",
      "placed_at": "2024-05-02T14:01:55+02:00",
      "paid_at": "2024-05-02T14:02:40+02:00",
      "status": "placed",
      "currency": "EUR",
      "lines": [
        {"sku": "MUG-BLUE", "quantity": 2, "unit_price": "12.50", "name": "Blue mug"}
      ],
      "customer": {"email": "ana@example.com", "name": "Ana Silva", "phone": "+351912345678"},
      "shipping": {
        "name": "Ana Silva",
        "phone": "+351912345678",
        "address": {"line1": "Rua Augusta 10", "line2": "2º Esq", "city": "Lisboa",
                    "region": "Lisboa", "postcode": "1100-053", "country": "PT"}
      },
      "shipping_total": "4.90",
      "tax_total": "5.75",
      "discount_total": "0.00",
      "note": "Leave with the neighbour"
    }

The rules:

* **Signature.** ``X-OrderHub-Signature`` is the base64-encoded HMAC-SHA256 of the exact body
  bytes, keyed with the connection's ``secret``; sign the bytes you send, after serialising.
  While a secret is being rotated, the connection accepts ``previous_secret`` too.
* **Idempotency-Key** is required: 1 to 200 visible ASCII characters, the same on every retry
  of one message and different for every new message (a UUID per message works). OrderHub
  stores a key once, so retrying is always safe. A request without a valid key is refused like
  a bad signature (never acknowledged and dropped), so the sender notices.
* **Answers.** 2xx means OrderHub has stored the message (a repeat is answered 2xx too); retry
  on anything else. Orders are processed shortly after the answer.
* **Updates.** Send the whole order again with a later ``updated_at``; the newest
  ``updated_at`` wins and an older message never overwrites a newer one. ``"status":
  "cancelled"`` cancels the order (if it has not shipped yet).
* **Fields.** ``id`` is your order id (a string, unique in your shop). Times are ISO-8601 with
  a UTC offset (``Z`` or ``+02:00``). Money is a decimal *string* (``"12.50"``, never a JSON
  number, so no rounding can creep in), in ``currency`` (ISO 4217, e.g. ``"EUR"``);
  ``unit_price`` is the price of one unit after discounts. ``sku`` is the SKU as OrderHub
  knows the product (or as mapped on the connection). ``country`` is ISO 3166-1 alpha-2.
  Required: ``id``, ``updated_at``, ``currency``, ``lines`` (at least one, each with ``sku``,
  ``quantity``, ``unit_price``), ``customer.email``, ``shipping.name``,
  ``shipping.address.line1``, ``shipping.address.city`` and ``shipping.address.country``.
  Optional fields may be left out or sent as null. Unknown fields are rejected, so a misspelt
  optional field (``"shiping_total"``) cannot silently drop money.
* **Schema.** :data:`ORDER_SCHEMA` is the JSON Schema (draft 2020-12) of the body; a message
  that does not match it is stored as rejected with the offending field named, and can be
  replayed once the sender or the connection is fixed.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from hub import hookimpl
from hub.core.adapters import ChannelAdapter, ChannelOrder, Delivery, InboundRequest, PayloadError
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._fields import Fields
from plugins.channels._signing import signature_matches

SIGNATURE_HEADER = "X-OrderHub-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOPIC = "order"

# RFC 3339: a date-time always with its offset, so no order time is ambiguous.
_DATE_TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$",
}
_MONEY = {"type": "string", "pattern": r"^(0|[1-9]\d{0,11})(\.\d{1,6})?$"}
_TEXT = {"type": ["string", "null"], "maxLength": 200}

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OrderHub storefront order",
    "description": "An order as a merchant's website or app sends it to OrderHub.",
    "type": "object",
    "required": ["id", "updated_at", "currency", "lines", "customer", "shipping"],
    "additionalProperties": False,
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "The order's id in the merchant's system; unique per connection.",
        },
        "number": {**_TEXT, "description": "The order number the customer sees."},
        "updated_at": {**_DATE_TIME, "description": "When the order last changed."},
        "placed_at": {"anyOf": [_DATE_TIME, {"type": "null"}]},
        "paid_at": {"anyOf": [_DATE_TIME, {"type": "null"}]},
        "status": {"enum": ["placed", "cancelled", None], "default": "placed"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["sku", "quantity", "unit_price"],
                "additionalProperties": False,
                "properties": {
                    "sku": {"type": "string", "minLength": 1, "maxLength": 64},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                    "unit_price": {**_MONEY, "description": "One unit, after discounts."},
                    "name": _TEXT,
                },
            },
        },
        "customer": {
            "type": "object",
            "required": ["email"],
            "additionalProperties": False,
            "properties": {
                "email": {"type": "string", "minLength": 3, "maxLength": 254, "pattern": "@"},
                "name": _TEXT,
                "phone": {"type": ["string", "null"], "maxLength": 40},
            },
        },
        "shipping": {
            "type": "object",
            "required": ["name", "address"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "phone": {"type": ["string", "null"], "maxLength": 40},
                "address": {
                    "type": "object",
                    "required": ["line1", "city", "country"],
                    "additionalProperties": False,
                    "properties": {
                        "line1": {"type": "string", "minLength": 1, "maxLength": 200},
                        "line2": _TEXT,
                        "city": {"type": "string", "minLength": 1, "maxLength": 100},
                        "region": {"type": ["string", "null"], "maxLength": 100},
                        "postcode": {"type": ["string", "null"], "maxLength": 20},
                        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                    },
                },
            },
        },
        "shipping_total": {"anyOf": [_MONEY, {"type": "null"}]},
        "tax_total": {"anyOf": [_MONEY, {"type": "null"}]},
        "discount_total": {"anyOf": [_MONEY, {"type": "null"}]},
        "note": {"type": ["string", "null"], "maxLength": 2000},
    },
}

_VALIDATOR = Draft202012Validator(ORDER_SCHEMA)
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")


class StorefrontChannel(ChannelAdapter):
    """Orders in OrderHub's own documented format (:data:`ORDER_SCHEMA`)."""

    name = "storefront"
    payload_schema = ORDER_SCHEMA
    title = "Storefront (your website or app, OrderHub's order format)"
    secret_settings = ("secret", "previous_secret")
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "minLength": 16},
            "previous_secret": {"type": "string", "minLength": 16},
        },
        "required": ["secret"],
        "additionalProperties": False,
    }

    def verify(self, request: InboundRequest) -> bool:
        """Signed by a configured secret *and* carrying a usable Idempotency-Key.

        The key is checked here, not in :meth:`delivery`, because a None from ``delivery``
        would acknowledge the order and drop it; refusing makes the sender see the mistake.
        """
        if _IDEMPOTENCY_KEY.fullmatch(request.header(IDEMPOTENCY_HEADER).strip()) is None:
            return False
        return signature_matches(
            request.header(SIGNATURE_HEADER),
            request.body,
            (self.settings["secret"], self.settings.get("previous_secret")),
        )

    def delivery(self, request: InboundRequest) -> Delivery | None:
        return Delivery(request.header(IDEMPOTENCY_HEADER).strip(), TOPIC)

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        try:
            data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"storefront: body is not JSON: {exc}") from None
        error = best_match(_VALIDATOR.iter_errors(data))
        if error is not None:
            where = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
            ).lstrip(".")
            raise PayloadError(f"storefront: {where or 'order'}: {error.message}")

        shipping, address = data["shipping"], data["shipping"]["address"]
        customer = data["customer"]
        status = data.get("status") or "placed"
        # The schema's pattern admits impossible dates like month 13: the reader names them.
        order = Fields(data, self.name)
        return [
            ChannelOrder(
                external_id=data["id"],
                event_time=order.need_time("updated_at"),
                cancelled=status == "cancelled",
                channel_status=status,
                draft=OrderDraft(
                    lines=[
                        LineItem(
                            sku=line["sku"],
                            quantity=line["quantity"],
                            unit_price=Decimal(line["unit_price"]),
                            name=line.get("name"),
                        )
                        for line in data["lines"]
                    ],
                    consignee=Consignee(
                        name=shipping["name"],
                        phone=shipping.get("phone") or customer.get("phone"),
                        address=Address(
                            line1=address["line1"],
                            line2=address.get("line2"),
                            city=address["city"],
                            region=address.get("region"),
                            postcode=address.get("postcode"),
                            country=address["country"],
                        ),
                    ),
                    customer=CustomerInfo(
                        email=customer["email"],
                        name=customer.get("name"),
                        phone=customer.get("phone"),
                    ),
                    currency=data["currency"],
                    shipping_total=Decimal(data.get("shipping_total") or 0),
                    tax_total=Decimal(data.get("tax_total") or 0),
                    discount_total=Decimal(data.get("discount_total") or 0),
                    channel=self.name,
                    external_id=data["id"],
                    external_name=data.get("number") or data["id"],
                    note=data.get("note"),
                    created_at=order.time("placed_at"),
                    paid_at=order.time("paid_at"),
                ),
            )
        ]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [StorefrontChannel]
