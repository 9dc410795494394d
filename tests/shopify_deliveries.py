"""Shopify ``orders/*`` webhook deliveries built as Shopify sends them: the REST Order resource
as compact UTF-8 JSON, the headers Shopify's own validator requires, and the base64
HMAC-SHA256 of the raw bytes.

Why a module of its own: the intake resilience tests and ``bench/ingest.py`` both post many
distinct, genuinely signed deliveries to ``/hooks/<tenant>/<connection>``; building them in one
place keeps both honest about what reaches the hub (a test that signed differently from the
bench could pass while the bench measured refusals).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

SHOP = "acme-store.myshopify.com"
API_VERSION = "2024-01"


def order(
    order_id: int,
    lines: Sequence[tuple[str, int, str]],
    *,
    email: str | None = None,
    updated_at: str = "2024-03-01T10:20:00-05:00",
) -> dict[str, Any]:
    """One REST Order resource with ``lines`` as (sku, quantity, unit price) line items.

    Each order gets its own buyer e-mail unless told otherwise, as real traffic would: one
    shared customer row would make every concurrent order wait on the same upsert.
    """
    line_items = [
        {
            "id": order_id * 100 + i,
            "product_id": 8_000_000_000_000 + i,
            "variant_id": 44_000_000_000_000 + i,
            "sku": sku,
            "title": sku.title(),
            "variant_title": None,
            "quantity": quantity,
            "price": price,
            "total_discount": "0.00",
        }
        for i, (sku, quantity, price) in enumerate(lines, start=1)
    ]
    email = email or f"buyer-{order_id}@example.com"
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{order_id}",
        "email": email,
        "phone": None,
        "created_at": "2024-03-01T10:15:30-05:00",
        "updated_at": updated_at,
        "processed_at": "2024-03-01T10:15:29-05:00",
        "cancelled_at": None,
        "currency": "USD",
        "total_tax": "0.00",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "fulfillment_status": None,
        "line_items": line_items,
        "shipping_lines": [{"id": 1, "title": "Standard", "price": "4.00", "code": "STD"}],
        "shipping_address": {
            "name": "Jon Snow",
            "address1": "1 Wall St",
            "city": "New York",
            "province_code": "NY",
            "zip": "10005",
            "country_code": "US",
            "phone": "+1 212 555 0100",
        },
        "customer": {"id": 7_000_000_000 + order_id, "email": email, "first_name": "Jon"},
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as Shopify sends it (non-ASCII stays raw in the signed bytes)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """Base64 of the raw HMAC-SHA256 digest of the raw body: Shopify's X-Shopify-Hmac-Sha256."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(
    body: bytes, secret: str, webhook_id: str, *, topic: str = "orders/create", shop: str = SHOP
) -> dict[str, str]:
    """The headers of one delivery; ``webhook_id`` is what the hub de-duplicates on (Shopify
    keeps it across its retries of one delivery)."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": f"event-{webhook_id}",
        "X-Shopify-Triggered-At": "2024-03-01T15:20:00.123456789Z",
    }


def delivery(
    order_id: int,
    lines: Sequence[tuple[str, int, str]],
    secret: str,
    *,
    webhook_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed ``orders/create`` delivery of one new order: (raw body, headers)."""
    body = encode(order(order_id, lines))
    return body, headers(body, secret, webhook_id or f"webhook-{order_id}")
