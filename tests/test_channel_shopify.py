"""The built-in ``shopify`` channel, tested at the adapter level with requests shaped and
signed exactly as Shopify sends them (design/CHANNELS.md): the REST Order resource as the body,
the five headers Shopify's own validator requires, and base64 HMAC-SHA256 of the raw bytes.
Fulfilment push-back is tested against the Admin REST API faked with ``responses`` in the shape
Shopify documents for FulfillmentOrder and Fulfillment.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import responses
from conftest import watch_secret

from hub.core.adapters import (
    ChannelAdapter,
    FulfilledLine,
    Fulfilment,
    InboundRequest,
    PayloadError,
)
from hub.core.errors import Invalid
from hub.core.http import BusinessError, HttpClient
from hub.plugins import DEFAULT_PLUGINS, Plugins
from plugins.channels import shopify
from plugins.channels.shopify import ShopifyChannel

SECRET = "shpss_current_4f1e2d"
OLD_SECRET = "shpss_previous_9a8b7c"
SHOP = "acme-store.myshopify.com"
BIG_ID = 2**53 + 12345  # 9007199254753337: a float would round this to a different id
VARIANT = 44004408688917
OTHER_VARIANT = 44004408721685


def order_payload(**changes: Any) -> dict[str, Any]:
    """A full order as Shopify's REST Admin API (2024-01) states it, trimmed to what matters.

    The same variant appears on two lines (different discounts), the second line has a null
    SKU, and times carry the store's -05:00 offset.
    """
    order: dict[str, Any] = {
        "id": BIG_ID,
        "admin_graphql_api_id": f"gid://shopify/Order/{BIG_ID}",
        "name": "#1001",
        "order_number": 1001,
        "email": "jon@example.com",
        "phone": None,
        "created_at": "2024-03-01T10:15:30-05:00",
        "updated_at": "2024-03-01T10:20:00-05:00",
        "processed_at": "2024-03-01T10:15:29-05:00",
        "cancelled_at": None,
        "cancel_reason": None,
        "currency": "USD",
        "presentment_currency": "USD",
        "subtotal_price": "59.97",
        "total_price": "66.83",
        "total_tax": "4.86",
        "total_discounts": "5.00",
        "financial_status": "paid",
        "fulfillment_status": None,
        "line_items": [
            {
                "id": 13575230128405,
                "product_id": 8012345678901,
                "variant_id": VARIANT,
                "sku": "TEE-BLK-M",
                "title": "Classic Tee",
                "variant_title": "Black / M",
                "quantity": 2,
                "price": "19.99",
                "total_discount": "0.00",
            },
            {
                "id": 13575230161173,
                "product_id": 8012345678901,
                "variant_id": VARIANT,
                "sku": "TEE-BLK-M",
                "title": "Classic Tee",
                "variant_title": "Black / M",
                "quantity": 1,
                "price": "19.99",
                "total_discount": "5.00",
            },
        ],
        "shipping_lines": [
            {"id": 4426743693589, "title": "Standard", "price": "4.00", "code": "STD"},
            {"id": 4426743726357, "title": "Insurance", "price": "2.00", "code": "INS"},
        ],
        "shipping_address": {
            "first_name": "Jon",
            "last_name": "Snow",
            "name": "Jon Snow",
            "company": None,
            "address1": "1 Wall St",
            "address2": "Apt 5",
            "city": "New York",
            "province": "New York",
            "province_code": "NY",
            "zip": "10005",
            "country": "United States",
            "country_code": "US",
            "phone": "+1 212 555 0100",
        },
        "customer": {
            "id": 7012345678901,
            "email": "jon@example.com",
            "first_name": "Jon",
            "last_name": "Snow",
            "phone": None,
        },
    }
    order.update(changes)
    return order


def encode(payload: dict[str, Any]) -> bytes:
    # Shopify sends compact UTF-8 JSON; non-ASCII stays raw, so the signed bytes are not ASCII.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    """Exactly as Shopify signs: base64 of the raw HMAC-SHA256 digest of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_request(
    body: bytes | None = None,
    *,
    secret: str = SECRET,
    topic: str = "orders/create",
    shop: str = SHOP,
    drop: str | None = None,
    **extra: str,
) -> InboundRequest:
    body = encode(order_payload()) if body is None else body
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-API-Version": "2024-01",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2024-03-01T15:20:00.123456789Z",
        "Content-Type": "application/json",
        **extra,
    }
    if drop:
        del headers[drop]
    return InboundRequest(headers=headers, body=body, url="https://hub.example/webhooks/shopify")


def channel(**settings: str) -> ShopifyChannel:
    settings = {"secret": SECRET, **settings}
    ShopifyChannel.validate_settings(settings)
    return ShopifyChannel(settings)


# --- registration and settings ---------------------------------------------------------------


def test_registered_as_a_built_in_channel() -> None:
    assert "plugins.channels.shopify" in DEFAULT_PLUGINS
    assert shopify.register_channels() == [ShopifyChannel]
    assert Plugins(env={}).adapters("channels")["shopify"] is ShopifyChannel
    assert issubclass(ShopifyChannel, ChannelAdapter)
    assert ShopifyChannel.secret_settings == ("secret", "previous_secret", "access_token")
    assert ShopifyChannel.capabilities == {"push", "fulfilment"}


def test_settings_accept_the_documented_keys() -> None:
    ShopifyChannel.validate_settings(
        {
            "secret": SECRET,
            "previous_secret": OLD_SECRET,
            "shop_domain": SHOP,
            "api_version": "2024-01",
            "access_token": "shpat_0123456789abcdef",
            "notify_customer": False,
        }
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"secret": ""},
        {"secret": SECRET, "shop_domain": "shop.acme.com"},  # a custom domain never arrives
        {"secret": SECRET, "api_version": "latest"},
        {"secret": SECRET, "webhook_secret": "x"},
        {"secret": SECRET, "access_token": ""},
        {"secret": SECRET, "notify_customer": "yes"},
    ],
)
def test_settings_refuse_what_cannot_work(settings: dict[str, str]) -> None:
    with pytest.raises(Invalid):
        ShopifyChannel.validate_settings(settings)


# --- verify ----------------------------------------------------------------------------------


def test_verify_accepts_a_genuine_delivery() -> None:
    assert channel().verify(shopify_request())


def test_verify_signs_the_raw_bytes_not_a_re_serialisation() -> None:
    # Key order, spacing and raw UTF-8 as sent: re-encoding the parsed JSON would differ.
    body = b'{"name": "#1001",  "id": 1, "note": "Z\xc3\xbcrich \\/ Genf"}'
    assert channel().verify(shopify_request(body))


def test_verify_headers_are_case_insensitive() -> None:
    request = shopify_request()
    lowered = InboundRequest({k.lower(): v for k, v in request.headers.items()}, request.body)
    assert channel().verify(lowered)


def test_verify_refuses_a_forged_signature() -> None:
    assert not channel().verify(shopify_request(secret="guessed"))


def test_verify_refuses_a_tampered_body() -> None:
    request = shopify_request()
    tampered = request.body.replace(b'"19.99"', b'"0.01"')
    assert tampered != request.body
    assert not channel().verify(InboundRequest(request.headers, tampered))


def test_verify_refuses_a_signature_that_is_not_ascii() -> None:
    request = shopify_request(**{"X-Shopify-Hmac-Sha256": "sïgnature"})
    assert not channel().verify(request)


@pytest.mark.parametrize("header", shopify.REQUIRED_HEADERS)
def test_verify_refuses_when_a_required_header_is_missing(header: str) -> None:
    assert not channel().verify(shopify_request(drop=header))


def test_verify_does_not_need_the_optional_headers() -> None:
    request = shopify_request(drop="X-Shopify-Event-Id")
    headers = {k: v for k, v in request.headers.items() if k != "X-Shopify-Triggered-At"}
    assert channel().verify(InboundRequest(headers, request.body))


def test_verify_refuses_an_empty_body_even_when_signed() -> None:
    assert not channel().verify(shopify_request(b""))


def test_verify_accepts_either_secret_during_rotation() -> None:
    rotating = channel(previous_secret=OLD_SECRET)
    assert rotating.verify(shopify_request(secret=SECRET))
    assert rotating.verify(shopify_request(secret=OLD_SECRET))
    assert not rotating.verify(shopify_request(secret="neither"))


def test_verify_refuses_the_old_secret_once_rotation_is_over() -> None:
    assert not channel().verify(shopify_request(secret=OLD_SECRET))


def test_verify_refuses_another_shop() -> None:
    pinned = channel(shop_domain=SHOP)
    assert pinned.verify(shopify_request(shop=SHOP))
    assert pinned.verify(shopify_request(shop=SHOP.upper()))  # domains ignore case
    assert not pinned.verify(shopify_request(shop="other-store.myshopify.com"))


def test_verify_accepts_any_shop_when_none_is_pinned() -> None:
    assert channel().verify(shopify_request(shop="other-store.myshopify.com"))


# --- delivery --------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["orders/create", "orders/updated", "orders/cancelled"])
def test_delivery_is_keyed_on_the_webhook_id(topic: str) -> None:
    delivery = channel().delivery(shopify_request(topic=topic))
    assert delivery is not None
    assert delivery.key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.topic == topic


def test_a_retry_has_the_same_key() -> None:
    # Shopify retries the same payload with the same webhook id; the event id is not the key.
    first = channel().delivery(shopify_request())
    retry = channel().delivery(shopify_request(**{"X-Shopify-Triggered-At": "later"}))
    assert first == retry


@pytest.mark.parametrize("topic", ["products/update", "app/uninstalled", "orders/paid"])
def test_delivery_ignores_other_topics(topic: str) -> None:
    assert channel().delivery(shopify_request(topic=topic)) is None


# --- parse -----------------------------------------------------------------------------------


def parse(payload: dict[str, Any], topic: str = "orders/create") -> Any:
    [order] = channel().parse(topic, encode(payload))
    return order


def test_parse_maps_a_full_order() -> None:
    order = parse(order_payload())
    draft = order.draft

    assert order.external_id == str(BIG_ID) == "9007199254753337"
    assert order.event_time == datetime(2024, 3, 1, 15, 20, tzinfo=UTC)
    assert order.event_time.utcoffset().total_seconds() == 0
    assert order.cancelled is False
    assert order.channel_status == "paid/unfulfilled"

    assert draft.channel == "shopify"
    assert draft.external_id == str(BIG_ID)
    assert draft.external_name == "#1001"
    assert draft.currency == "USD"
    assert draft.created_at == datetime(2024, 3, 1, 15, 15, 30, tzinfo=UTC)
    assert draft.paid_at == datetime(2024, 3, 1, 15, 15, 29, tzinfo=UTC)

    assert draft.shipping_total == Decimal("6.00")
    assert draft.tax_total == Decimal("4.86")
    assert draft.discount_total == Decimal("5.00")
    for amount in (draft.shipping_total, draft.tax_total, draft.discount_total):
        assert type(amount) is Decimal

    consignee = draft.consignee
    assert consignee.name == "Jon Snow"
    assert consignee.phone == "+1 212 555 0100"
    assert consignee.address.line1 == "1 Wall St"
    assert consignee.address.line2 == "Apt 5"
    assert consignee.address.city == "New York"
    assert consignee.address.region == "NY"
    assert consignee.address.postcode == "10005"
    assert consignee.address.country == "US"

    assert draft.customer is not None
    assert draft.customer.email == "jon@example.com"
    assert draft.customer.name == "Jon Snow"


def test_the_same_variant_on_two_lines_stays_two_lines() -> None:
    lines = parse(order_payload()).draft.lines
    assert [(x.sku, x.quantity, x.unit_price, x.name) for x in lines] == [
        ("TEE-BLK-M", 2, Decimal("19.99"), "Classic Tee"),
        ("TEE-BLK-M", 1, Decimal("19.99"), "Classic Tee"),
    ]
    assert [x.channel_product_id for x in lines] == [str(VARIANT), str(VARIANT)]
    assert all(type(x.unit_price) is Decimal for x in lines)


def test_a_line_without_sku_keeps_the_channel_product_id() -> None:
    payload = order_payload()
    payload["line_items"][0]["sku"] = None
    payload["line_items"][1].update(sku="", variant_id=None, product_id=8012345678999)
    lines = parse(payload).draft.lines
    assert [(x.sku, x.channel_product_id) for x in lines] == [
        ("", str(VARIANT)),
        ("", "8012345678999"),
    ]


def test_a_custom_line_has_neither_sku_nor_product() -> None:
    payload = order_payload()
    payload["line_items"] = [
        {
            "id": 1,
            "title": "Gift wrap",
            "quantity": 1,
            "price": "3.50",
            "sku": None,
            "variant_id": None,
            "product_id": None,
        }
    ]
    [line] = parse(payload).draft.lines
    assert (line.sku, line.channel_product_id, line.name) == ("", None, "Gift wrap")


def test_64_bit_ids_never_pass_through_float() -> None:
    huge = 2**63 - 1
    payload = order_payload(id=huge)
    payload["line_items"][0]["variant_id"] = huge - 1
    order = parse(payload)
    assert order.external_id == "9223372036854775807"
    assert order.draft.lines[0].channel_product_id == "9223372036854775806"
    assert float(huge) != huge  # the rounding this guards against


def test_a_price_sent_as_a_json_number_stays_exact() -> None:
    body = encode(order_payload()).replace(b'"price":"19.99"', b'"price":0.1', 1)
    [order] = channel().parse("orders/create", body)
    assert order.draft.lines[0].unit_price == Decimal("0.1")


def test_paid_at_only_when_paid() -> None:
    order = parse(order_payload(financial_status="pending", fulfillment_status="partial"))
    assert order.draft.paid_at is None
    assert order.channel_status == "pending/partial"


def test_the_cancelled_topic_cancels() -> None:
    assert parse(order_payload(), topic="orders/cancelled").cancelled is True


def test_cancelled_at_cancels_on_any_topic() -> None:
    payload = order_payload(cancelled_at="2024-03-02T09:00:00-05:00", financial_status="voided")
    order = parse(payload, topic="orders/updated")
    assert order.cancelled is True
    assert order.channel_status == "voided/unfulfilled"


def test_an_order_that_ships_nothing_has_an_empty_consignee() -> None:
    payload = order_payload(shipping_lines=[])
    del payload["shipping_address"]
    draft = parse(payload).draft
    assert draft.consignee.name is None
    assert draft.consignee.address.country is None
    assert draft.shipping_total == Decimal(0)


def test_a_guest_checkout_uses_the_order_email() -> None:
    payload = order_payload(customer=None, email="guest@example.com")
    customer = parse(payload).draft.customer
    assert customer is not None
    assert (customer.email, customer.name) == ("guest@example.com", None)
    assert parse(order_payload(customer=None, email=None)).draft.customer is None


def test_region_falls_back_to_the_province_name() -> None:
    payload = order_payload()
    payload["shipping_address"].update(province_code=None, province="Greater London")
    assert parse(payload).draft.consignee.address.region == "Greater London"


@pytest.mark.parametrize("field", ["id", "line_items", "updated_at", "currency"])
@pytest.mark.parametrize("how", ["absent", "null"])
def test_a_missing_required_field_is_named(field: str, how: str) -> None:
    payload = order_payload()
    if how == "absent":
        del payload[field]
    else:
        payload[field] = None
    with pytest.raises(PayloadError, match=field):
        parse(payload)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"id": 1.5}, "id"),
        ({"id": "gid://shopify/Order/1"}, "id"),
        ({"line_items": []}, "line_items"),
        ({"updated_at": "2024-03-01T10:20:00"}, "updated_at"),  # no offset: which instant?
        ({"updated_at": "yesterday"}, "updated_at"),
        ({"total_tax": "4,86"}, "total_tax"),
        ({"shipping_address": "1 Wall St"}, "shipping_address"),
    ],
)
def test_a_malformed_field_is_named(change: dict[str, Any], named: str) -> None:
    with pytest.raises(PayloadError, match=named):
        parse(order_payload(**change))


@pytest.mark.parametrize(
    ("line_change", "named"),
    [
        ({"quantity": 1.5}, r"line_items\[1\]\.quantity"),
        ({"quantity": -1}, r"line_items\[1\]\.quantity"),
        ({"price": None}, r"line_items\[1\]\.price"),
        ({"price": "free"}, r"line_items\[1\]\.price"),
    ],
)
def test_a_malformed_line_is_named(line_change: dict[str, Any], named: str) -> None:
    payload = copy.deepcopy(order_payload())
    payload["line_items"][1].update(line_change)
    with pytest.raises(PayloadError, match=named):
        parse(payload)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_an_order_object_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        channel().parse("orders/create", body)


# --- fulfilment push-back --------------------------------------------------------------------

TOKEN = "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"
ADMIN = f"https://{SHOP}/admin/api/2026-01"
ORDER_ID = str(BIG_ID)
FO_URL = f"{ADMIN}/orders/{ORDER_ID}/fulfillment_orders.json"
ORDER_URL = f"{ADMIN}/orders/{ORDER_ID}.json"
FULFILLMENTS_URL = f"{ADMIN}/fulfillments.json"
MADE_URL = f"{ADMIN}/orders/{ORDER_ID}/fulfillments.json"
LOCATION, OTHER_LOCATION = 24826418, 24826419
UPS = Fulfilment(
    "UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784"
)


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(SECRET, OLD_SECRET, TOKEN)


def fo_line(item_id: int, line_item_id: int, variant: int | None, open_qty: int) -> dict[str, Any]:
    """A fulfillment order line item as the REST API states it (no SKU: only ids)."""
    return {
        "id": item_id,
        "shop_id": 548380009,
        "fulfillment_order_id": 1046000818,
        "quantity": max(open_qty, 1),
        "line_item_id": line_item_id,
        "inventory_item_id": 49148385 + item_id % 7,
        "fulfillable_quantity": open_qty,
        "variant_id": variant,
    }


def fulfillment_order(
    fo_id: int = 1046000818,
    *,
    status: str = "open",
    location: int = LOCATION,
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The order's one fulfillment order: two lines of the same variant (2 + 1 open) and a
    mug whose order line has no SKU."""
    return {
        "id": fo_id,
        "shop_id": 548380009,
        "order_id": BIG_ID,
        "assigned_location_id": location,
        "request_status": "unsubmitted",
        "status": status,
        "fulfill_at": "2024-03-01T10:00:00-05:00",
        "fulfill_by": None,
        "supported_actions": ["create_fulfillment", "hold", "move"] if status == "open" else [],
        "destination": {
            "id": 1056470240,
            "address1": "1 Wall St",
            "address2": "Apt 5",
            "city": "New York",
            "company": None,
            "country": "United States",
            "email": "jon@example.com",
            "first_name": "Jon",
            "last_name": "Snow",
            "phone": "+1 212 555 0100",
            "province": "New York",
            "zip": "10005",
        },
        "line_items": lines
        if lines is not None
        else [
            fo_line(1058737510, 13575230128405, VARIANT, 2),
            fo_line(1058737511, 13575230161173, VARIANT, 1),
            fo_line(1058737512, 13575230193941, OTHER_VARIANT, 1),
        ],
        "international_duties": None,
        "fulfillment_holds": [],
        "delivery_method": {"id": 6498312372, "method_type": "shipping"},
        "created_at": "2024-03-01T10:15:31-05:00",
        "updated_at": "2024-03-01T10:15:31-05:00",
        "assigned_location": {"name": "Main warehouse", "location_id": location},
        "merchant_requests": [],
    }


def order_lines() -> dict[str, Any]:
    """``GET orders/{id}.json?fields=id,line_items``: where the SKUs are."""
    lines = order_payload()["line_items"] + [
        {
            "id": 13575230193941,
            "product_id": 8012345679999,
            "variant_id": OTHER_VARIANT,
            "sku": "",
            "title": "Mug",
            "quantity": 1,
            "price": "9.00",
        }
    ]
    return {"order": {"id": BIG_ID, "line_items": lines}}


def created(fulfillment_id: int = 255858046) -> dict[str, Any]:
    return {
        "fulfillment": {
            "id": fulfillment_id,
            "order_id": BIG_ID,
            "status": "success",
            "tracking_company": "UPS",
            "tracking_number": UPS.tracking_number,
            "tracking_numbers": [UPS.tracking_number],
            "tracking_url": UPS.tracking_url,
            "tracking_urls": [UPS.tracking_url],
            "name": "#1001.1",
            "location_id": LOCATION,
        }
    }


def fulfiller(**settings: Any) -> tuple[ShopifyChannel, list[float]]:
    """A connection set up for fulfilment, whose client records its waits instead of sleeping."""
    merged = {"secret": SECRET, "shop_domain": SHOP, "access_token": TOKEN, **settings}
    merged = {k: v for k, v in merged.items() if v is not None}
    ShopifyChannel.validate_settings(merged)
    client = HttpClient("shopify:test")
    waits: list[float] = []
    client.sleep = waits.append
    return ShopifyChannel(merged, http=client), waits


def posted(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)["fulfillment"]


@responses.activate
def test_fulfilling_the_whole_order() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.post(FULFILLMENTS_URL, status=201, json=created())
    adapter, _ = fulfiller()

    assert adapter.push_fulfilment(ORDER_ID, UPS) == "255858046"

    get, post = responses.calls
    assert get.request.headers["X-Shopify-Access-Token"] == TOKEN
    assert post.request.headers["X-Shopify-Access-Token"] == TOKEN
    assert posted(post) == {
        # No line items listed: Shopify fulfils everything still open on the order.
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": 1046000818}],
        "tracking_info": {
            "company": "UPS",
            "number": "1Z999AA10123456784",
            "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        },
        "notify_customer": True,
    }


@responses.activate
def test_fulfilling_some_lines_by_sku_and_by_variant() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.get(ORDER_URL, json=order_lines())
    responses.post(FULFILLMENTS_URL, status=201, json=created(255858047))
    adapter, _ = fulfiller(notify_customer=False)
    shipment = Fulfilment(
        "DHL Express",
        "JD014600006281230000",
        lines=(
            FulfilledLine("TEE-BLK-M", 3),  # spread over the two lines of that variant
            FulfilledLine(str(OTHER_VARIANT), 1),  # the mug had no SKU
        ),
    )

    assert adapter.push_fulfilment(ORDER_ID, shipment) == "255858047"

    order_call = responses.calls[1]
    assert "fields=id%2Cline_items" in order_call.request.url
    body = posted(responses.calls[2])
    assert body["line_items_by_fulfillment_order"] == [
        {
            "fulfillment_order_id": 1046000818,
            "fulfillment_order_line_items": [
                {"id": 1058737510, "quantity": 2},
                {"id": 1058737511, "quantity": 1},
                {"id": 1058737512, "quantity": 1},
            ],
        }
    ]
    assert body["tracking_info"] == {"company": "DHL Express", "number": "JD014600006281230000"}
    assert body["notify_customer"] is False


@responses.activate
def test_a_partial_quantity_of_one_line() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.get(ORDER_URL, json=order_lines())
    responses.post(FULFILLMENTS_URL, status=201, json=created())
    adapter, _ = fulfiller()
    adapter.push_fulfilment(
        ORDER_ID, Fulfilment("UPS", "1Z1", lines=(FulfilledLine("TEE-BLK-M", 1),))
    )
    [group] = posted(responses.calls[2])["line_items_by_fulfillment_order"]
    assert group["fulfillment_order_line_items"] == [{"id": 1058737510, "quantity": 1}]


@responses.activate
def test_more_than_is_open_is_refused_naming_the_line() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.get(ORDER_URL, json=order_lines())
    responses.get(MADE_URL, json={"fulfillments": []})
    adapter, _ = fulfiller()
    shipment = Fulfilment("UPS", "1Z1", lines=(FulfilledLine("TEE-BLK-M", 4),))
    with pytest.raises(BusinessError, match=r"4 of 'TEE-BLK-M' shipped but only 3"):
        adapter.push_fulfilment(ORDER_ID, shipment)
    assert not [c for c in responses.calls if c.request.method == "POST"]


@responses.activate
def test_an_order_split_across_locations_gets_one_fulfilment_per_location() -> None:
    east = fulfillment_order(lines=[fo_line(1058737510, 13575230128405, VARIANT, 2)])
    west = fulfillment_order(
        1046000819,
        location=OTHER_LOCATION,
        lines=[fo_line(1058737520, 13575230193941, OTHER_VARIANT, 1)],
    )
    responses.get(FO_URL, json={"fulfillment_orders": [east, west]})
    responses.post(FULFILLMENTS_URL, status=201, json=created(255858046))
    responses.post(FULFILLMENTS_URL, status=201, json=created(255858047))
    adapter, _ = fulfiller()

    assert adapter.push_fulfilment(ORDER_ID, UPS) == "255858046,255858047"
    bodies = [posted(c) for c in responses.calls if c.request.method == "POST"]
    assert [b["line_items_by_fulfillment_order"] for b in bodies] == [
        [{"fulfillment_order_id": 1046000818}],
        [{"fulfillment_order_id": 1046000819}],
    ]


@pytest.mark.parametrize("status", ["closed", "cancelled", "on_hold"])
@responses.activate
def test_nothing_left_to_fulfil_is_a_clear_error(status: str) -> None:
    done = fulfillment_order(status=status, lines=[fo_line(1058737510, 13575230128405, VARIANT, 0)])
    responses.get(FO_URL, json={"fulfillment_orders": [done]})
    earlier = created(255850000)["fulfillment"] | {
        "tracking_number": "OTHER1",
        "tracking_numbers": ["OTHER1"],
    }
    responses.get(MADE_URL, json={"fulfillments": [earlier]})
    adapter, _ = fulfiller()
    with pytest.raises(BusinessError, match="nothing left to fulfil") as caught:
        adapter.push_fulfilment(ORDER_ID, UPS)
    assert not caught.value.retryable
    assert not [c for c in responses.calls if c.request.method == "POST"]


@responses.activate
def test_a_retry_after_a_lost_answer_returns_the_fulfilment_already_made() -> None:
    done = fulfillment_order(
        status="closed", lines=[fo_line(1058737510, 13575230128405, VARIANT, 0)]
    )
    responses.get(FO_URL, json={"fulfillment_orders": [done]})
    responses.get(MADE_URL, json={"fulfillments": [created(255858046)["fulfillment"]]})
    adapter, _ = fulfiller()
    assert adapter.push_fulfilment(ORDER_ID, UPS) == "255858046"
    assert not [c for c in responses.calls if c.request.method == "POST"]


@responses.activate
def test_a_retried_partial_fulfilment_also_returns_the_one_already_made() -> None:
    done = fulfillment_order(
        status="closed", lines=[fo_line(1058737510, 13575230128405, VARIANT, 0)]
    )
    responses.get(FO_URL, json={"fulfillment_orders": [done]})
    responses.get(ORDER_URL, json=order_lines())
    responses.get(MADE_URL, json={"fulfillments": [created(255858046)["fulfillment"]]})
    adapter, _ = fulfiller()
    shipment = Fulfilment("UPS", UPS.tracking_number, lines=(FulfilledLine("TEE-BLK-M", 2),))
    assert adapter.push_fulfilment(ORDER_ID, shipment) == "255858046"


@responses.activate
def test_a_422_from_shopify_is_a_business_error_with_shopifys_message() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.post(
        FULFILLMENTS_URL,
        status=422,
        json={"errors": ["Invalid fulfillment order line item quantity requested."]},
    )
    adapter, _ = fulfiller()
    with pytest.raises(BusinessError) as caught:
        adapter.push_fulfilment(ORDER_ID, UPS)
    assert "Invalid fulfillment order line item quantity requested." in str(caught.value)
    assert caught.value.status == 422 and not caught.value.retryable
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1


@responses.activate
def test_a_field_error_body_is_spelled_out() -> None:
    responses.get(FO_URL, status=404, json={"errors": "Not Found"})
    adapter, _ = fulfiller()
    with pytest.raises(BusinessError, match="Not Found"):
        adapter.push_fulfilment(ORDER_ID, UPS)
    responses.replace(
        responses.GET, FO_URL, status=422, json={"errors": {"base": ["Order is archived"]}}
    )
    with pytest.raises(BusinessError, match="base: Order is archived"):
        adapter.push_fulfilment(ORDER_ID, UPS)


@responses.activate
def test_a_429_with_retry_after_is_waited_out_and_retried() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.post(
        FULFILLMENTS_URL,
        status=429,
        headers={"Retry-After": "2.0"},
        json={"errors": "Exceeded 2 calls per second for api client. Reduce request rates."},
    )
    responses.post(FULFILLMENTS_URL, status=201, json=created())
    adapter, waits = fulfiller()

    assert adapter.push_fulfilment(ORDER_ID, UPS) == "255858046"
    assert len(waits) == 1  # waited once (never for real), then sent again
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 2


@responses.activate
def test_shopifys_fractional_retry_after_is_honoured() -> None:
    responses.get(FO_URL, json={"fulfillment_orders": [fulfillment_order()]})
    responses.post(FULFILLMENTS_URL, status=429, headers={"Retry-After": "2.0"})
    responses.post(FULFILLMENTS_URL, status=201, json=created())
    adapter, waits = fulfiller()
    adapter.push_fulfilment(ORDER_ID, UPS)
    assert waits == [2.0]


@pytest.mark.parametrize(
    ("drop", "named"),
    [("shop_domain", "shop_domain"), ("access_token", "access_token")],
)
@responses.activate
def test_missing_admin_settings_are_a_clear_error_before_any_request(drop: str, named: str) -> None:
    adapter, _ = fulfiller(**{drop: None})
    with pytest.raises(BusinessError, match=named) as caught:
        adapter.push_fulfilment(ORDER_ID, UPS)
    assert not caught.value.retryable
    assert len(responses.calls) == 0


@responses.activate
def test_the_api_version_setting_is_used() -> None:
    url = f"https://{SHOP}/admin/api/2025-04/orders/{ORDER_ID}/fulfillment_orders.json"
    responses.get(url, json={"fulfillment_orders": [fulfillment_order()]})
    responses.post(
        f"https://{SHOP}/admin/api/2025-04/fulfillments.json", status=201, json=created()
    )
    adapter, _ = fulfiller(api_version="2025-04")
    assert adapter.push_fulfilment(ORDER_ID, UPS) == "255858046"
