"""JSON Schemas of request bodies. Every object is closed (``additionalProperties: false``) so
a misspelt field is an error the caller sees, not a value silently ignored."""

from __future__ import annotations

from typing import Any

MONEY: dict[str, Any] = {
    "description": 'an amount is a decimal string with at most 4 decimals, such as "19.99"'
    " (JSON numbers are accepted too)",
    "anyOf": [
        {"type": "string", "pattern": r"^\d{1,12}(\.\d{1,4})?$"},
        {"type": "number", "minimum": 0, "maximum": 999_999_999_999},
    ],
}
TEXT = {"type": "string", "maxLength": 200}
SHORT = {"type": "string", "maxLength": 64, "minLength": 1}
SKU = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[^\s/?#]+$"}
CODE = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": r"^[A-Za-z0-9_.-]+$"}
QUANTITY = {"type": "integer", "minimum": 1, "maximum": 10_000}
STOCK_QUANTITY = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
COUNTRY = {"type": "string", "pattern": "^[A-Za-z]{2}$"}


def closed(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


ADDRESS = closed(
    {
        "line1": TEXT,
        "line2": TEXT,
        "city": {"type": "string", "maxLength": 100},
        "region": {"type": "string", "maxLength": 100},
        "postcode": {"type": "string", "maxLength": 20},
        "country": COUNTRY,
    }
)
CONSIGNEE = closed(
    {
        "name": TEXT,
        "phone": {"type": "string", "maxLength": 40},
        "address": ADDRESS,
    }
)
CUSTOMER = closed(
    {
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "name": TEXT,
        "phone": {"type": "string", "maxLength": 40},
        "language": {
            "type": "string",
            "pattern": r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
            "maxLength": 35,
            "description": "the language the customer reads, for what the hub tells them:"
            ' a BCP 47 tag such as "en" or "zh-CN"',
        },
        "birthday": {
            "type": "string",
            "format": "date",
            "description": "YYYY-MM-DD, for a birthday greeting (care rules); optional",
        },
    }
)
ORDER_LINE = closed(
    {
        "sku": SKU,
        "quantity": QUANTITY,
        "unit_price": MONEY,
        "name": {"type": "string", "maxLength": 300},
    },
    ("sku", "quantity"),
)
ORDER_CREATE = closed(
    {
        "lines": {"type": "array", "items": ORDER_LINE, "minItems": 1, "maxItems": 500},
        "consignee": CONSIGNEE,
        "customer": CUSTOMER,
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "shipping_total": MONEY,
        "tax_total": MONEY,
        "discount_total": MONEY,
        "channel": SHORT,
        "external_id": SHORT,
        "external_name": SHORT,
        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "note": {"type": "string", "maxLength": 1000},
        "paid_at": {"type": "string", "format": "date-time"},
        "shipping_method": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    ("lines",),
)
ORDER_MODIFY = closed(
    {
        "lines": ORDER_CREATE["properties"]["lines"],
        "consignee": CONSIGNEE,
        "customer": CUSTOMER,
        "note": {"type": "string", "maxLength": 1000},
        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "shipping_method": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    minProperties=1,
)
REASON = closed({"reason": {"type": "string", "maxLength": 500}})
APPROVE = closed({"note": {"type": "string", "maxLength": 500}})
REJECT = closed({"reason": {"type": "string", "minLength": 1, "maxLength": 500}}, ("reason",))
MERGE = closed(
    {"numbers": {"type": "array", "items": SHORT, "minItems": 2, "maxItems": 50}}, ("numbers",)
)
SPLIT = closed(
    {
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": closed({"sku": SKU, "quantity": QUANTITY}, ("sku", "quantity")),
        }
    },
    ("lines",),
)

PRODUCT_FIELDS: dict[str, Any] = {
    "sku": SKU,
    "name": {"type": "string", "minLength": 1, "maxLength": 300},
    "category": {"type": ["string", "null"], "maxLength": 100},
    "brand": {"type": ["string", "null"], "maxLength": 100},
    "price": MONEY,
    "market_price": MONEY,
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "weight_kg": MONEY,
    "length_cm": MONEY,
    "width_cm": MONEY,
    "height_cm": MONEY,
    "low_stock_threshold": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
    "active": {"type": "boolean"},
}
PRODUCT_CREATE = closed(PRODUCT_FIELDS, ("sku", "name"))
PRODUCT_UPDATE = closed({k: v for k, v in PRODUCT_FIELDS.items() if k != "sku"}, minProperties=1)

WAREHOUSE_FIELDS: dict[str, Any] = {
    "code": CODE,
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "region": {"type": ["string", "null"], "maxLength": 100},
    "country": {"anyOf": [COUNTRY, {"type": "null"}]},
    "city": {"type": ["string", "null"], "maxLength": 100},
    "address": {"type": ["string", "null"], "maxLength": 500},
    "postcode": {"type": ["string", "null"], "maxLength": 20},
    "priority": {"type": "integer", "minimum": 0, "maximum": 10_000},
    "active": {"type": "boolean"},
}
WAREHOUSE_CREATE = closed(WAREHOUSE_FIELDS, ("code", "name"))
WAREHOUSE_UPDATE = closed(
    {k: v for k, v in WAREHOUSE_FIELDS.items() if k != "code"}, minProperties=1
)

_MOVE_ITEM = closed(
    {
        "sku": SKU,
        "quantity": STOCK_QUANTITY,
        "warehouse": CODE,
        "reason": {"type": "string", "maxLength": 500},
    },
    ("sku", "quantity"),
)
STOCK_MOVE = closed(
    {
        "warehouse": CODE,
        "reference": {"type": "string", "maxLength": 100},
        "reason": {"type": "string", "maxLength": 500},
        "items": {"type": "array", "items": _MOVE_ITEM, "minItems": 1, "maxItems": 20_000},
    },
    ("items",),
)
_ADJUST_ITEM = closed(
    {
        "sku": SKU,
        "warehouse": CODE,
        "quantity": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "delta": {"type": "integer", "minimum": -1_000_000, "maximum": 1_000_000},
        "reason": {"type": "string", "maxLength": 500},
    },
    ("sku",),
    oneOf=[{"required": ["quantity"]}, {"required": ["delta"]}],
    description="give either quantity (the counted on-hand) or delta (a signed change)",
)
STOCK_ADJUST = closed(
    {
        "warehouse": CODE,
        "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        "items": {"type": "array", "items": _ADJUST_ITEM, "minItems": 1, "maxItems": 20_000},
    },
    ("items", "reason"),
)

USER_CREATE = closed(
    {
        "username": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$"},
        "password": {"type": "string", "minLength": 8, "maxLength": 200},
        "role": {"enum": ["admin", "operator", "warehouse", "service", "analyst"]},
        "full_name": TEXT,
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "phone": {"type": "string", "maxLength": 40},
        "address": {"type": "string", "maxLength": 500},
    },
    ("username", "password", "role"),
)
USER_UPDATE = closed(
    {
        "password": {"type": "string", "minLength": 8, "maxLength": 200},
        "role": {"enum": ["admin", "operator", "warehouse", "service", "analyst"]},
        "full_name": TEXT,
        "email": {"type": "string", "format": "email", "maxLength": 254},
        "phone": {"type": "string", "maxLength": 40},
        "address": {"type": "string", "maxLength": 500},
        "active": {"type": "boolean"},
        "available": {
            "type": "boolean",
            "description": "whether tickets are assigned to this agent now; false hands their"
            " open tickets to others",
        },
        "skills": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "maxItems": 50,
            "uniqueItems": True,
            "description": "ticket categories this agent handles (assignment by skill)",
        },
    },
    minProperties=1,
)
TOKEN_CREATE = closed(
    {
        "name": {"type": "string", "maxLength": 100},
        # An ISO date (that day's start, UTC) or date-time; or a number of days from now.
        "expires_at": {"type": "string", "minLength": 10, "maxLength": 40},
        "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    }
)
SHIP = closed(
    {
        "carrier_account": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "service": {"type": "string", "minLength": 1, "maxLength": 64},
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": closed({"sku": SKU, "quantity": QUANTITY}, ("sku", "quantity")),
        },
    },
    dependentRequired={"carrier_account": ["service"], "service": ["carrier_account"]},
)
