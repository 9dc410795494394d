"""The built-in ``woocommerce`` channel, tested at the adapter level with requests shaped and
signed as WooCommerce sends them (design/CHANNELS.md): a REST v3 order serialised the PHP way
(every "/" escaped as "\\/"), the ``X-WC-Webhook-*`` headers, base64 HMAC-SHA256 of the raw
bytes, and the unsigned form-encoded ping sent when a webhook is created. Polling is tested
against ``GET /wp-json/wc/v3/orders`` faked with ``responses``: pages of orders with the
``X-WP-Total`` / ``X-WP-TotalPages`` headers WordPress sends, and its REST error bodies.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from conftest import watch_secret
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from hub.core.adapters import ChannelAdapter, InboundRequest, PayloadError
from hub.core.errors import Invalid
from hub.core.http import AuthError, BusinessError, HttpClient, ParseError
from hub.core.models import InboxEntry, Order
from hub.plugins import DEFAULT_PLUGINS, Plugins
from hub.worker import actors
from plugins.channels.woocommerce import WooCommerceChannel

SECRET = "wc-secret-2024-current"
OLD_SECRET = "wc-secret-2023-previous"
STORE = "https://shop.example.com/"


def order_payload(**changes: Any) -> dict[str, Any]:
    """A REST v3 order as a ``order.updated`` webhook carries it, trimmed to what matters.

    Line 1 is a simple product without a SKU (sku ""), line 2 a variation (its name with the
    HTML entity WooCommerce puts between product and attribute) that a 2.00 coupon applies to,
    so its ``price`` (after the coupon) is a long fraction. The figures add up as WooCommerce's
    do: 25.00 + 10.00 (lines after the coupon) + 4.90 shipping + 5.75 tax = 45.65. The store's
    local time is two hours ahead of the ``*_gmt`` ones.
    """
    order: dict[str, Any] = {
        "id": 727,
        "parent_id": 0,
        "status": "processing",
        "currency": "EUR",
        "version": "8.7.0",
        "prices_include_tax": False,
        "date_created": "2024-05-02T16:03:11",
        "date_modified": "2024-05-02T16:05:40",
        "discount_total": "2.00",
        "discount_tax": "0.00",
        "shipping_total": "4.90",
        "shipping_tax": "0.00",
        "cart_tax": "5.75",
        "total": "45.65",
        "total_tax": "5.75",
        "customer_id": 12,
        "order_key": "wc_order_kR8tWq3vZpL1a",
        "billing": {
            "first_name": "Ana",
            "last_name": "Silva",
            "company": "",
            "address_1": "Rua Augusta 10",
            "address_2": "",
            "city": "Lisboa",
            "state": "",
            "postcode": "1100-053",
            "country": "PT",
            "email": "ana@example.com",
            "phone": "+351912345678",
        },
        "shipping": {
            "first_name": "Rui",
            "last_name": "Costa",
            "company": "Costa & Filhos",
            "address_1": "Avenida da Liberdade 200",
            "address_2": "3º Dto",
            "city": "Lisboa",
            "state": "LI",
            "postcode": "1250-147",
            "country": "PT",
            "phone": "+351935550100",
        },
        "payment_method": "stripe",
        "payment_method_title": "Credit card",
        "transaction_id": "pi_3PBx2aLkdIwHu7ix0QmZ1",
        "customer_ip_address": "203.0.113.7",
        "customer_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "created_via": "checkout",
        "customer_note": "Ring twice, please",
        "date_completed": None,
        "date_paid": "2024-05-02T16:05:39",
        "cart_hash": "a3f1c9d2b7e4",
        "number": "727",
        "meta_data": [],
        "line_items": [
            {
                "id": 315,
                "name": "Blue mug",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 2,
                "tax_class": "",
                "subtotal": "25.00",
                "subtotal_tax": "5.75",
                "total": "25.00",
                "total_tax": "5.75",
                "taxes": [{"id": 1, "total": "5.75", "subtotal": "5.75"}],
                "meta_data": [],
                "sku": "",
                "price": 12.5,
                "image": {"id": "94", "src": "https://shop.example.com/wp-content/mug.jpg"},
                "parent_name": None,
            },
            {
                "id": 316,
                "name": "T-shirt &ndash; Large",
                "product_id": 22,
                "variation_id": 23,
                "quantity": 3,
                "tax_class": "",
                "subtotal": "12.00",
                "subtotal_tax": "0.00",
                "total": "10.00",
                "total_tax": "0.00",
                "taxes": [],
                "meta_data": [{"id": 1, "key": "pa_size", "value": "large"}],
                "sku": "TSHIRT-L",
                "price": 3.3333333333333335,
                "image": {"id": "", "src": ""},
                "parent_name": "T-shirt",
            },
        ],
        "tax_lines": [],
        "shipping_lines": [
            {"id": 317, "method_title": "Flat rate", "method_id": "flat_rate", "total": "4.90"}
        ],
        "fee_lines": [],
        "coupon_lines": [
            {
                "id": 318,
                "code": "spring2",
                "discount": "2.00",
                "discount_tax": "0.00",
                "meta_data": [],
            }
        ],
        "refunds": [],
        "currency_symbol": "€",
        "date_created_gmt": "2024-05-02T14:03:11",
        "date_modified_gmt": "2024-05-02T14:05:40",
        "date_completed_gmt": None,
        "date_paid_gmt": "2024-05-02T14:05:39",
        "_links": {
            "self": [{"href": "https://shop.example.com/wp-json/wc/v3/orders/727"}],
            "collection": [{"href": "https://shop.example.com/wp-json/wc/v3/orders"}],
            "customer": [{"href": "https://shop.example.com/wp-json/wc/v3/customers/12"}],
        },
    }
    order.update(changes)
    return order


def php_json(data: Any) -> bytes:
    """Serialise like PHP's json_encode as WordPress calls it: "/" escaped, UTF-8 kept."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/").encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    """The signature as WooCommerce computes it (WC_Webhook::generate_signature)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook(
    body: bytes,
    *,
    topic: str = "order.updated",
    secret: str | None = SECRET,
    delivery_id: str = "9b1c4e0f-21d3-4a57-8f0e-3c2b6d1a7e55",
    source: str = STORE,
    **extra: str,
) -> InboundRequest:
    resource, _, event = topic.partition(".")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/8.7.0 Hookshot (WordPress/6.5.2)",
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }
    if secret is not None:
        headers["X-WC-Webhook-Signature"] = sign(body, secret)
    headers.update(extra)
    return InboundRequest(headers=headers, body=body, url="https://hub.example.com/hooks/7")


def ping(body: bytes = b"webhook_id=14", **headers: str) -> InboundRequest:
    """The unsigned request WooCommerce sends when a webhook is saved."""
    base = {
        "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        "User-Agent": "WooCommerce/8.7.0 Hookshot (WordPress/6.5.2)",
    }
    return InboundRequest(headers={**base, **headers}, body=body)


@pytest.fixture
def channel() -> WooCommerceChannel:
    return WooCommerceChannel({"secret": SECRET, "store_url": "https://shop.example.com"})


# --- registration and settings ---------------------------------------------------------------


def test_is_a_default_plugin_registered_through_the_hook() -> None:
    assert "plugins.channels.woocommerce" in DEFAULT_PLUGINS
    plugins = Plugins(env={})
    assert plugins.adapters("channels")["woocommerce"] is WooCommerceChannel
    assert issubclass(WooCommerceChannel, ChannelAdapter)
    assert not [f for f in plugins.failures if f.name == "woocommerce"]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"consumer_key": "ck_1a2b"}, "consumer_secret"),  # one key without the other
        ({"consumer_key": "ck_1a2b", "consumer_secret": "cs_3c4d"}, "store_url"),
        ({"consumer_key": "cs_3c4d", "consumer_secret": "ck_1a2b", "store_url": STORE}, "ck_"),
    ],
)
def test_polling_settings_come_together(settings: dict[str, str], named: str) -> None:
    with pytest.raises(Invalid, match=named):
        WooCommerceChannel.validate_settings({"secret": SECRET, **settings})


def test_settings_need_a_secret_and_keep_secrets_secret() -> None:
    WooCommerceChannel.validate_settings({"secret": SECRET, "previous_secret": OLD_SECRET})
    with pytest.raises(Invalid, match="secret"):
        WooCommerceChannel.validate_settings({"store_url": STORE})
    with pytest.raises(Invalid, match="store_url"):
        WooCommerceChannel.validate_settings({"secret": SECRET, "store_url": "shop.example.com"})
    assert set(WooCommerceChannel.secret_settings) == {
        "secret",
        "previous_secret",
        "consumer_key",
        "consumer_secret",
    }


# --- verify ----------------------------------------------------------------------------------


def test_signature_over_the_escaped_bytes_as_sent(channel: WooCommerceChannel) -> None:
    body = php_json(order_payload())
    assert b"https:\\/\\/shop.example.com\\/wp-json" in body  # escaped exactly as PHP sends it
    request = webhook(body)
    assert channel.verify(request)
    # Re-serialising what was parsed does not reproduce the signed bytes: this is why the
    # check must run over the raw body.
    reserialised = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    assert sign(reserialised.encode()) != request.header("X-WC-Webhook-Signature")


def test_headers_are_case_insensitive(channel: WooCommerceChannel) -> None:
    request = webhook(php_json(order_payload()))
    lower = InboundRequest({k.lower(): v for k, v in request.headers.items()}, request.body)
    assert channel.verify(lower)
    assert channel.delivery(lower) == channel.delivery(request)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda r: webhook(r.body, secret="not-the-secret"), id="wrong-secret"),
        pytest.param(
            lambda r: InboundRequest(r.headers, r.body.replace(b'"total":"45.65"', b'"total":"0"')),
            id="tampered-body",
        ),
        pytest.param(lambda r: webhook(r.body, secret=None), id="missing-signature"),
        pytest.param(
            lambda r: webhook(r.body, secret=None, **{"X-WC-Webhook-Signature": ""}),
            id="empty-signature",
        ),
        pytest.param(
            lambda r: webhook(r.body, secret=None, **{"X-WC-Webhook-Signature": "sïgnature"}),
            id="non-ascii-signature",
        ),
        pytest.param(
            lambda r: webhook(
                r.body,
                secret=None,
                **{
                    "X-WC-Webhook-Signature": hmac.new(
                        SECRET.encode(), r.body, "sha256"
                    ).hexdigest()
                },
            ),
            id="hex-not-base64",
        ),
    ],
)
def test_forged_requests_fail(channel: WooCommerceChannel, forge: Any) -> None:
    genuine = webhook(php_json(order_payload()))
    assert b'"total":"45.65"' in genuine.body
    assert not channel.verify(forge(genuine))


def test_rotation_accepts_either_secret_while_both_are_configured() -> None:
    body = php_json(order_payload())
    rotating = WooCommerceChannel({"secret": SECRET, "previous_secret": OLD_SECRET})
    assert rotating.verify(webhook(body, secret=SECRET))
    assert rotating.verify(webhook(body, secret=OLD_SECRET))
    assert not rotating.verify(webhook(body, secret="third-secret"))
    rotated = WooCommerceChannel({"secret": SECRET})
    assert not rotated.verify(webhook(body, secret=OLD_SECRET))


# --- the creation ping -----------------------------------------------------------------------


def test_creation_ping_is_acknowledged_and_stores_nothing(channel: WooCommerceChannel) -> None:
    request = ping()
    assert channel.verify(request)
    assert channel.delivery(request) is None
    bare = InboundRequest({}, b"webhook_id=3")  # no Content-Type at all is still the ping
    assert channel.verify(bare)
    assert channel.delivery(bare) is None


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(ping(b"webhook_id=14&status=active"), id="extra-form-field"),
        pytest.param(ping(b"webhook_id=abc"), id="non-numeric-id"),
        pytest.param(ping(b"webhook_id="), id="empty-id"),
        pytest.param(ping(b"webhook_id=14\n"), id="trailing-newline"),
        pytest.param(ping(b'{"webhook_id":14}'), id="json-body"),
        pytest.param(ping(**{"Content-Type": "application/json"}), id="json-content-type"),
        pytest.param(ping(**{"X-WC-Webhook-Topic": "order.created"}), id="with-webhook-header"),
        pytest.param(ping(**{"x-wc-webhook-source": STORE}), id="with-lowercase-header"),
        pytest.param(ping(php_json(order_payload())), id="unsigned-order"),
    ],
)
def test_only_the_exact_ping_shape_passes_unsigned(
    channel: WooCommerceChannel, request_: InboundRequest
) -> None:
    assert not channel.verify(request_)


# --- delivery --------------------------------------------------------------------------------


def test_delivery_key_is_store_order_and_modification_time(channel: WooCommerceChannel) -> None:
    body = php_json(order_payload())
    delivery = channel.delivery(webhook(body))
    assert delivery is not None
    assert delivery.topic == "order.updated"
    assert delivery.key == "727@2024-05-02T14:05:40@https://shop.example.com"


def test_a_resent_snapshot_has_the_same_key_whatever_the_delivery_id_or_topic(
    channel: WooCommerceChannel,
) -> None:
    body = php_json(order_payload())
    first = channel.delivery(webhook(body, delivery_id="a1", topic="order.created"))
    again = channel.delivery(webhook(body, delivery_id="b2", topic="order.updated"))
    assert first is not None and again is not None
    assert first.key == again.key
    assert (first.topic, again.topic) == ("order.created", "order.updated")


def test_a_new_modification_or_another_store_gets_a_new_key(channel: WooCommerceChannel) -> None:
    base = channel.delivery(webhook(php_json(order_payload())))
    later = channel.delivery(
        webhook(php_json(order_payload(date_modified_gmt="2024-05-02T14:09:00")))
    )
    other_order = channel.delivery(webhook(php_json(order_payload(id=728))))
    other_store = channel.delivery(
        webhook(php_json(order_payload()), source="https://other.example.com/")
    )
    keys = {d.key for d in (base, later, other_order, other_store) if d is not None}
    assert len(keys) == 4


def test_store_url_setting_stands_in_for_a_missing_source_header() -> None:
    body = php_json(order_payload())
    request = webhook(body)
    headers = {k: v for k, v in request.headers.items() if k != "X-WC-Webhook-Source"}
    channel = WooCommerceChannel({"secret": SECRET, "store_url": "https://shop.example.com/"})
    delivery = channel.delivery(InboundRequest(headers, body))
    assert delivery is not None
    assert delivery.key == channel.delivery(request).key  # type: ignore[union-attr]


def test_a_very_long_store_url_still_keeps_orders_apart(channel: WooCommerceChannel) -> None:
    # The hub hashes keys longer than its column (tests/test_intake.py); the key itself
    # must keep the order id, so two orders of one long-named store never share a key.
    long_store = "https://shop.example.com/" + "a" * 250 + "/"
    one = channel.delivery(webhook(php_json(order_payload()), source=long_store))
    two = channel.delivery(webhook(php_json(order_payload(id=728)), source=long_store))
    assert one is not None and two is not None
    assert one.key != two.key


def test_a_signed_unreadable_body_is_still_stored_to_be_rejected(
    channel: WooCommerceChannel,
) -> None:
    body = b'{"id": 727, "status": "processing"'  # cut short
    request = webhook(body)
    assert channel.verify(request)
    delivery = channel.delivery(request)
    assert delivery is not None
    assert delivery.key == "body-sha256:" + hashlib.sha256(body).hexdigest()
    with pytest.raises(PayloadError, match="not JSON"):
        channel.parse(delivery.topic, body)


@pytest.mark.parametrize(
    "topic",
    ["order.deleted", "order.restored", "product.updated", "action.woocommerce_new_order", ""],
)
def test_other_topics_are_acknowledged_and_not_stored(
    channel: WooCommerceChannel, topic: str
) -> None:
    request = webhook(php_json(order_payload()), topic=topic)
    assert channel.verify(request)
    assert channel.delivery(request) is None


# --- parse -----------------------------------------------------------------------------------


def test_parse_reads_every_field(channel: WooCommerceChannel) -> None:
    [order] = channel.parse("order.updated", php_json(order_payload()))
    assert order.external_id == "727"
    assert order.event_time == datetime(2024, 5, 2, 14, 5, 40, tzinfo=UTC)
    assert order.cancelled is False
    assert order.channel_status == "processing"
    draft = order.draft
    assert draft.channel == "woocommerce"
    assert draft.external_id == "727"
    assert draft.external_name == "727"
    assert draft.currency == "EUR"
    assert draft.shipping_total == Decimal("4.90")
    assert draft.tax_total == Decimal("5.75")
    assert draft.discount_total == Decimal("2.00")
    assert draft.created_at == datetime(2024, 5, 2, 14, 3, 11, tzinfo=UTC)
    assert draft.paid_at == datetime(2024, 5, 2, 14, 5, 39, tzinfo=UTC)
    assert draft.note == "Ring twice, please"

    mug, shirt = draft.lines
    assert (mug.sku, mug.channel_product_id, mug.quantity) == ("", "93", 2)
    assert (mug.unit_price, mug.name) == (Decimal("12.5"), "Blue mug")
    assert (shirt.sku, shirt.channel_product_id, shirt.quantity) == ("TSHIRT-L", "23", 3)
    # Before the coupon (12.00 for three), which is the order's discount; the name decoded.
    assert (shirt.unit_price, shirt.name) == (Decimal("4.00"), "T-shirt \u2013 Large")
    assert draft.shipping_method == "Flat rate"

    assert draft.consignee.name == "Rui Costa"
    assert draft.consignee.phone == "+351935550100"
    address = draft.consignee.address
    assert address.line1 == "Avenida da Liberdade 200"
    assert address.line2 == "3º Dto"
    assert (address.city, address.region, address.postcode) == ("Lisboa", "LI", "1250-147")
    assert address.country == "PT"

    assert draft.customer is not None
    assert draft.customer.email == "ana@example.com"
    assert draft.customer.name == "Ana Silva"
    assert draft.customer.phone == "+351912345678"


def test_money_is_decimal_never_float(channel: WooCommerceChannel) -> None:
    [order] = channel.parse("order.updated", php_json(order_payload()))
    draft = order.draft
    amounts = [draft.shipping_total, draft.tax_total, draft.discount_total]
    amounts += [line.unit_price for line in draft.lines]
    assert all(type(a) is Decimal for a in amounts)
    assert draft.lines[0].unit_price == Decimal("12.5")
    # WooCommerce's float price after the coupon (3.3333333333333335) is not read at all: the
    # string subtotal before it is.
    assert draft.lines[1].unit_price == Decimal("4.00")


# --- totals: coupons, taxes, fees -------------------------------------------------------------


def woo_line(
    line_id: int,
    name: str,
    quantity: int,
    subtotal: str,
    total: str,
    subtotal_tax: str = "0.00",
    total_tax: str = "0.00",
    *,
    sku: str = "",
    product_id: int = 40,
    taxes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A line item as REST v3 writes it: the amounts strings rounded to the store's decimals,
    ``price`` a JSON number, total / quantity, after the coupon."""
    return {
        "id": line_id,
        "name": name,
        "product_id": product_id,
        "variation_id": 0,
        "quantity": quantity,
        "tax_class": "",
        "subtotal": subtotal,
        "subtotal_tax": subtotal_tax,
        "total": total,
        "total_tax": total_tax,
        "taxes": taxes or [],
        "meta_data": [],
        "sku": sku,
        "price": float(Decimal(total) / quantity),
        "image": {"id": "", "src": ""},
        "parent_name": None,
    }


def coupon(code: str, discount: str, discount_tax: str = "0.00") -> dict[str, Any]:
    return {
        "id": 900,
        "code": code,
        "discount": discount,
        "discount_tax": discount_tax,
        "meta_data": [{"id": 1, "key": "coupon_data", "value": {"code": code, "amount": discount}}],
    }


def shipping_line(title: str, total: str, total_tax: str = "0.00") -> dict[str, Any]:
    return {
        "id": 901,
        "method_title": title,
        "method_id": "flat_rate",
        "instance_id": "2",
        "total": total,
        "total_tax": total_tax,
        "taxes": [],
        "meta_data": [],
    }


def total_of(draft: Any) -> Decimal:
    """The order's total as the hub computes it (hub.core.orders): lines, shipping and tax,
    less the discount."""
    goods = sum((line.unit_price * line.quantity for line in draft.lines), Decimal(0))
    return goods + draft.shipping_total + draft.tax_total - draft.discount_total


PERCENT_COUPON = order_payload(  # 10% off everything, no tax (a US store without nexus)
    currency="USD",
    prices_include_tax=False,
    discount_total="9.90",
    discount_tax="0.00",
    shipping_total="5.00",
    shipping_tax="0.00",
    cart_tax="0.00",
    total_tax="0.00",
    total="94.10",
    line_items=[
        woo_line(11, "Hoodie with Logo", 1, "45.00", "40.50", sku="HOODIE-LOGO"),
        woo_line(12, "Beanie", 3, "54.00", "48.60", sku="BEANIE"),
    ],
    shipping_lines=[shipping_line("Flat rate", "5.00")],
    coupon_lines=[coupon("take10", "9.90")],
)
FIXED_COUPON_WITH_TAX = order_payload(  # 5.00 off the cart, 10% tax on goods and shipping
    currency="USD",
    prices_include_tax=False,
    discount_total="5.00",
    discount_tax="0.50",
    shipping_total="6.00",
    shipping_tax="0.60",
    cart_tax="2.50",
    total_tax="3.10",
    total="34.10",
    line_items=[
        woo_line(
            21,
            "Polo",
            3,
            "30.00",
            "25.00",
            "3.00",
            "2.50",
            sku="POLO",
            taxes=[{"id": 1, "total": "2.5", "subtotal": "3"}],
        ),
    ],
    shipping_lines=[shipping_line("Flat rate", "6.00", "0.60")],
    coupon_lines=[coupon("five-off", "5.00", "0.50")],
)
# Prices entered with 2% tax, a fixed 0.20 cart coupon: the order the WooCommerce mobile apps
# reported (woocommerce-ios #6885), its line figures rounded to cents by the REST API.
TAX_INCLUSIVE_COUPON = order_payload(
    currency="USD",
    prices_include_tax=True,
    discount_total="0.20",
    discount_tax="0.00",
    shipping_total="0.00",
    shipping_tax="0.00",
    cart_tax="0.35",
    total_tax="0.35",
    total="17.80",
    line_items=[
        woo_line(
            31,
            "Beanie",
            1,
            "17.65",
            "17.45",
            "0.35",
            "0.35",
            sku="BEANIE",
            taxes=[{"id": 2, "total": "0.34902", "subtotal": "0.352941"}],
        )
    ],
    shipping_lines=[],
    coupon_lines=[coupon("20cents", "0.20")],
)
TAX_INCLUSIVE_ROUNDING = order_payload(
    # 3 x 9.99 with 20% VAT included and taxes rounded at the subtotal: 24.975 and 4.995,
    # which the REST API writes 24.98 and 5.00; the customer paid 29.97.
    currency="GBP",
    prices_include_tax=True,
    discount_total="0.00",
    shipping_total="0.00",
    shipping_tax="0.00",
    cart_tax="5.00",
    total_tax="5.00",
    total="29.97",
    line_items=[woo_line(41, "Tea towel", 3, "24.98", "24.98", "5.00", "5.00", sku="TOWEL")],
    shipping_lines=[],
    coupon_lines=[],
)


@pytest.mark.parametrize(
    ("payload", "shipping", "tax", "discount"),
    [
        (PERCENT_COUPON, "5.00", "0.00", "9.90"),
        (FIXED_COUPON_WITH_TAX, "6.00", "3.10", "5.00"),
        (TAX_INCLUSIVE_COUPON, "0.00", "0.35", "0.20"),
        (order_payload(), "4.90", "5.75", "2.00"),
    ],
    ids=["percent", "fixed-with-tax", "tax-inclusive", "product-coupon"],
)
def test_an_order_with_a_coupon_totals_what_woocommerce_charged(
    channel: WooCommerceChannel, payload: dict[str, Any], shipping: str, tax: str, discount: str
) -> None:
    [order] = channel.parse("order.updated", php_json(payload))
    draft = order.draft

    # The coupon is taken off once: lines before it, the coupon as the discount.
    assert total_of(draft) == Decimal(payload["total"])
    assert (draft.shipping_total, draft.tax_total, draft.discount_total) == (
        Decimal(shipping),
        Decimal(tax),
        Decimal(discount),
    )
    subtotal = sum(Decimal(item["subtotal"]) for item in payload["line_items"])
    assert sum(line.unit_price * line.quantity for line in draft.lines) == subtotal


def test_a_subtotal_that_does_not_divide_is_split_and_the_rounding_rest_goes_to_the_tax(
    channel: WooCommerceChannel,
) -> None:
    [order] = channel.parse("order.updated", php_json(TAX_INCLUSIVE_ROUNDING))
    draft = order.draft

    assert [(line.sku, line.quantity, line.unit_price) for line in draft.lines] == [
        ("TOWEL", 1, Decimal("8.32")),
        ("TOWEL", 2, Decimal("8.33")),
    ]
    assert draft.tax_total == Decimal("4.99")  # 5.00 as written, less the cent of rounding
    assert total_of(draft) == Decimal("29.97")


def test_fees_count_with_the_shipping_and_a_negative_fee_with_the_discount(
    channel: WooCommerceChannel,
) -> None:
    payload = copy.deepcopy(PERCENT_COUPON)
    payload["fee_lines"] = [
        {
            "id": 50,
            "name": "Cash on delivery fee",
            "tax_class": "",
            "tax_status": "taxable",
            "amount": "2.5",
            "total": "2.50",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
        },
        {
            "id": 51,
            "name": "Loyalty discount",
            "tax_class": "",
            "tax_status": "none",
            "amount": "-5",
            "total": "-5.00",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
        },
    ]
    payload["total"] = "91.60"  # 94.10 + 2.50 - 5.00

    [order] = channel.parse("order.updated", php_json(payload))
    draft = order.draft

    assert (draft.shipping_total, draft.discount_total) == (Decimal("7.50"), Decimal("14.90"))
    assert total_of(draft) == Decimal("91.60")


def test_a_total_far_from_its_parts_is_still_kept_and_logged(
    channel: WooCommerceChannel, caplog: pytest.LogCaptureFixture
) -> None:
    payload = order_payload(total="50.65")  # 5.00 that no field WooCommerce sends explains
    with caplog.at_level(logging.WARNING, logger="orderhub.channels.woocommerce"):
        [order] = channel.parse("order.updated", php_json(payload))

    assert total_of(order.draft) == Decimal("50.65")
    assert order.draft.tax_total == Decimal("10.75")
    assert "order 727: its parts come to 45.65 but its total is 50.65" in caplog.text


def test_a_total_below_its_parts_with_no_tax_to_absorb_it_raises_the_discount(
    channel: WooCommerceChannel,
) -> None:
    payload = copy.deepcopy(PERCENT_COUPON)
    payload["total"] = "94.09"

    [order] = channel.parse("order.updated", php_json(payload))

    assert (order.draft.tax_total, order.draft.discount_total) == (Decimal(0), Decimal("9.91"))
    assert total_of(order.draft) == Decimal("94.09")


def test_text_for_people_arrives_with_html_entities_and_is_decoded(
    channel: WooCommerceChannel,
) -> None:
    payload = copy.deepcopy(order_payload())
    payload["line_items"][0]["name"] = "Salt &amp; Pepper Mill &ndash; Oak"
    payload["shipping"].update(first_name="Jos&eacute;", address_1="Rua &lt;B&gt; 4")
    payload["billing"]["last_name"] = "O&#039;Neil"
    payload["shipping_lines"] = [
        shipping_line("Express &amp; insured", "9.90"),
        shipping_line("Express &amp; insured", "0.00"),
    ]
    payload["customer_note"] = "Leave it at &quot;the blue door&quot;"

    [order] = channel.parse("order.updated", php_json(payload))
    draft = order.draft

    assert draft.lines[0].name == "Salt & Pepper Mill \u2013 Oak"
    assert draft.consignee.name == "Jos\u00e9 Costa"
    assert draft.consignee.address.line1 == "Rua <B> 4"
    assert draft.customer is not None and draft.customer.name == "Ana O'Neil"
    assert draft.shipping_method == "Express & insured"
    assert draft.note == 'Leave it at "the blue door"'
    # Identifiers are compared, not read: a SKU keeps what it says.
    payload["line_items"][1]["sku"] = "R&amp;D-1"
    [order] = channel.parse("order.updated", php_json(payload))
    assert order.draft.lines[1].sku == "R&amp;D-1"


def test_a_large_id_and_number_stay_strings(channel: WooCommerceChannel) -> None:
    [order] = channel.parse("order.created", php_json(order_payload(id=2**53 + 1, number="W-9")))
    assert order.external_id == "9007199254740993"
    assert order.draft.external_name == "W-9"


def test_a_deleted_product_falls_back_to_the_product_id(channel: WooCommerceChannel) -> None:
    payload = order_payload()
    payload["line_items"][0]["sku"] = None
    [order] = channel.parse("order.updated", php_json(payload))
    assert order.draft.lines[0].sku == ""
    assert order.draft.lines[0].channel_product_id == "93"


def test_a_virtual_order_has_an_empty_consignee_and_the_billing_phone(
    channel: WooCommerceChannel,
) -> None:
    empty = {k: "" for k in order_payload()["shipping"]}
    for shipping in (empty, [], None):
        [order] = channel.parse("order.created", php_json(order_payload(shipping=shipping)))
        consignee = order.draft.consignee
        assert consignee.name is None
        assert consignee.phone == "+351912345678"
        assert consignee.address.line1 is None and consignee.address.country is None


def test_a_time_with_an_offset_is_converted_to_utc(channel: WooCommerceChannel) -> None:
    [order] = channel.parse(
        "order.updated", php_json(order_payload(date_modified_gmt="2024-05-02T16:05:40+02:00"))
    )
    assert order.event_time == datetime(2024, 5, 2, 14, 5, 40, tzinfo=UTC)
    assert order.event_time.utcoffset() == timedelta(0)


def test_an_unpaid_order_has_no_paid_at(channel: WooCommerceChannel) -> None:
    [order] = channel.parse(
        "order.created", php_json(order_payload(status="pending", date_paid_gmt=None))
    )
    assert order.draft.paid_at is None
    assert order.cancelled is False


@pytest.mark.parametrize(
    ("status", "cancelled"),
    [
        ("cancelled", True),
        ("refunded", False),  # may have shipped and come back: not the hub's cancellation
        ("failed", False),  # the customer can still pay; WooCommerce then moves it on
        ("on-hold", False),
        ("completed", False),
    ],
)
def test_only_cancelled_cancels(channel: WooCommerceChannel, status: str, cancelled: bool) -> None:
    [order] = channel.parse("order.updated", php_json(order_payload(status=status)))
    assert order.cancelled is cancelled
    assert order.channel_status == status


def test_a_list_of_orders_is_not_an_order(channel: WooCommerceChannel) -> None:
    # Polling stores each order of a list as its own delivery; a stored list is malformed.
    with pytest.raises(PayloadError, match="not an order object"):
        channel.parse("order.updated", php_json([order_payload()]))


def _without(key: str) -> dict[str, Any]:
    payload = order_payload()
    del payload[key]
    return payload


def _line_change(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(order_payload())
    payload["line_items"][1].update(changes)
    return payload


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (_without("id"), "id: missing"),
        (_without("date_modified_gmt"), "date_modified_gmt: missing"),
        (_without("currency"), "currency: missing"),
        (_without("status"), "status: missing"),
        (_without("line_items"), "line_items: missing"),
        (order_payload(line_items={}), "line_items: not a list"),
        (order_payload(date_modified_gmt="yesterday"), "date_modified_gmt: not a date-time"),
        (order_payload(total_tax="1,35"), "total_tax: not a decimal"),
        (order_payload(shipping_total=4.9), None),  # a JSON number is still exact: accepted
        (order_payload(billing="Ana"), "billing: not an object"),
        (order_payload(id=True), "id: expected an id"),
        (_line_change(quantity="3"), "line_items[1].quantity: expected a positive integer"),
        (_line_change(quantity=0), "line_items[1].quantity"),
        (_line_change(subtotal=None), "line_items[1].subtotal: missing"),
        (_line_change(subtotal=""), "line_items[1].subtotal: missing"),
        (_line_change(subtotal="abc"), "line_items[1].subtotal: not a decimal"),
        (_line_change(subtotal=True), "line_items[1].subtotal: expected a decimal"),
        (_line_change(subtotal="-12.00"), "line_items[1].subtotal: a negative line subtotal"),
        (order_payload(total="45,65"), "total: not a decimal"),
        (order_payload(fee_lines=[{"id": 1, "total": "x"}]), "fee_lines[0].total: not a"),
        (_line_change(sku=5), "line_items[1].sku: expected a string"),
        ("order", "body: not an order object"),
    ],
)
def test_malformed_payloads_name_the_field(
    channel: WooCommerceChannel, payload: Any, names: str | None
) -> None:
    body = php_json(payload)
    if names is None:
        [order] = channel.parse("order.updated", body)
        assert order.draft.shipping_total == Decimal("4.9")
        return
    with pytest.raises(PayloadError, match=re.escape(names)):
        channel.parse("order.updated", body)


@pytest.mark.parametrize("body", [b"webhook_id=14", b"\xff\xfe", b'{"id": NaN}', b""])
def test_a_body_that_is_not_json_is_a_payload_error(
    channel: WooCommerceChannel, body: bytes
) -> None:
    with pytest.raises(PayloadError, match="not JSON"):
        channel.parse("order.updated", body)


# --- polling ---------------------------------------------------------------------------------

CONSUMER_KEY = "ck_4f2a9c1e7b3d5a8f0c6e2b9d4a7f1c3e5b8d0a2f"
CONSUMER_SECRET = "cs_9e1b7d3f5a2c8e4b0d6f2a9c7e1b3d5f8a0c4e6b"
ORDERS_URL = "https://shop.example.com/wp-json/wc/v3/orders"


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(SECRET, OLD_SECRET, CONSUMER_KEY, CONSUMER_SECRET)


def poller(**settings: Any) -> WooCommerceChannel:
    merged = {
        "secret": SECRET,
        "store_url": "https://shop.example.com",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        **settings,
    }
    merged = {k: v for k, v in merged.items() if v is not None}
    WooCommerceChannel.validate_settings(merged)
    client = HttpClient("woocommerce:test")
    client.sleep = lambda seconds: None
    return WooCommerceChannel(merged, http=client)


def orders_page(orders: list[dict[str, Any]], *, total: int, pages: int) -> dict[str, Any]:
    """One page of ``GET /wp-json/wc/v3/orders`` as WordPress answers it."""
    return {
        "body": php_json(orders),
        "headers": {
            "X-WP-Total": str(total),
            "X-WP-TotalPages": str(pages),
            "Link": f'<{ORDERS_URL}?page=2>; rel="next"',
        },
        "content_type": "application/json; charset=UTF-8",
    }


def modified(order_id: int, at: str) -> dict[str, Any]:
    return order_payload(id=order_id, number=str(order_id), date_modified_gmt=at)


def query_of(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@responses.activate
def test_a_poll_pages_through_x_wp_totalpages() -> None:
    responses.get(
        ORDERS_URL,
        **orders_page(
            [modified(727, "2024-05-02T14:05:40"), modified(731, "2024-05-02T15:10:00")],
            total=3,
            pages=2,
        ),
    )
    responses.get(
        ORDERS_URL, **orders_page([modified(735, "2024-05-02T14:59:59")], total=3, pages=2)
    )

    pages = list(poller().poll("2024-05-02T14:00:00"))

    assert [[p.key.split("@")[0] for p in page.deliveries] for page in pages] == [
        ["727", "731"],
        ["735"],
    ]
    # Only the last page moves the cursor: the newest modification seen, on any page.
    assert [page.cursor for page in pages] == [None, "2024-05-02T15:10:00"]
    first, second = (query_of(c) for c in responses.calls)
    assert first == {
        "modified_after": "2024-05-02T13:55:00",  # a few minutes before the cursor
        "dates_are_gmt": "true",
        "orderby": "id",
        "order": "asc",
        "per_page": "100",
        "page": "1",
    }
    assert second["page"] == "2" and second["modified_after"] == first["modified_after"]
    basic = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
    assert all(c.request.headers["Authorization"] == f"Basic {basic}" for c in responses.calls)


@responses.activate
def test_a_polled_order_has_the_key_its_webhook_delivery_has() -> None:
    # Given one order snapshot, delivered by webhook and also found by a poll
    snapshot = order_payload()
    webhook_delivery = poller().delivery(webhook(php_json(snapshot)))
    responses.get(ORDERS_URL, **orders_page([snapshot], total=1, pages=1))
    [page] = poller().poll("2024-05-02T14:00:00")
    [pulled] = page.deliveries
    # Then the inbox sees the same key twice: the second is a duplicate
    assert webhook_delivery is not None
    assert pulled.key == webhook_delivery.key == "727@2024-05-02T14:05:40@https://shop.example.com"
    assert pulled.topic == "order.updated"
    # And the polled body is that one order, exactly as WooCommerce wrote it in the list
    assert pulled.body == php_json(snapshot)
    assert poller().parse(pulled.topic, pulled.body) == poller().parse(
        "order.updated", php_json(snapshot)
    )


@responses.activate
def test_nothing_new_keeps_the_cursor_and_the_overlap_never_moves_it_back() -> None:
    responses.get(ORDERS_URL, **orders_page([], total=0, pages=0))
    responses.get(
        ORDERS_URL,
        **orders_page([modified(727, "2024-05-02T13:58:00")], total=1, pages=1),  # overlap
    )
    assert [p.cursor for p in poller().poll("2024-05-02T14:00:00")] == ["2024-05-02T14:00:00"]
    [page] = poller().poll("2024-05-02T14:00:00")
    assert len(page.deliveries) == 1
    assert page.cursor == "2024-05-02T14:00:00"


@responses.activate
def test_the_first_poll_looks_back_one_day() -> None:
    responses.get(ORDERS_URL, **orders_page([], total=0, pages=0))
    before = datetime.now(UTC)
    [page] = poller().poll(None)
    after = datetime.now(UTC)
    since = datetime.fromisoformat(query_of(responses.calls[0])["modified_after"])
    since = since.replace(tzinfo=UTC)
    window = (before - since, after - since)
    assert timedelta(days=1, minutes=4) < window[0] <= window[1] < timedelta(days=1, minutes=6)
    # The window's start is kept, so an outage longer than a day loses nothing later.
    cursor = datetime.fromisoformat(page.cursor or "").replace(tzinfo=UTC)
    assert timedelta(hours=23) < after - cursor < timedelta(hours=25)


@responses.activate
def test_refused_keys_are_an_auth_error_with_woocommerces_reason() -> None:
    responses.get(
        ORDERS_URL,
        status=401,
        json={
            "code": "woocommerce_rest_cannot_view",
            "message": "Sorry, you cannot list resources.",
            "data": {"status": 401},
        },
    )
    with pytest.raises(AuthError) as caught:
        list(poller().poll("2024-05-02T14:00:00"))
    assert not caught.value.retryable
    assert "woocommerce_rest_cannot_view: Sorry, you cannot list resources." in str(caught.value)
    assert CONSUMER_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"consumer_key": None, "consumer_secret": None}, "consumer_key, consumer_secret"),
        (
            {"consumer_key": None, "consumer_secret": None, "store_url": None},
            "store_url, consumer_key, consumer_secret",
        ),
        ({"store_url": "http://shop.example.com"}, "https://"),
    ],
)
@responses.activate
def test_polling_without_what_it_needs_is_a_clear_error(
    settings: dict[str, Any], named: str
) -> None:
    adapter = poller(**settings)
    with pytest.raises(BusinessError, match=re.escape(named)) as caught:
        list(adapter.poll(None))
    assert not caught.value.retryable
    assert len(responses.calls) == 0


@responses.activate
def test_a_page_that_is_not_a_list_is_a_parse_error() -> None:
    responses.get(ORDERS_URL, body=b"<html>Maintenance</html>", content_type="text/html")
    with pytest.raises(ParseError, match="not a JSON list of orders"):
        list(poller().poll("2024-05-02T14:00:00"))


# --- polling end to end ----------------------------------------------------------------------


def hub_order(order_id: int = 812, at: str = "2024-05-02T14:05:40") -> dict[str, Any]:
    """An order of the seeded catalogue (SKU-A, SKU-C), so the hub can reserve it."""
    order = copy.deepcopy(order_payload(id=order_id, number=str(order_id), date_modified_gmt=at))
    order["line_items"][0].update(sku="SKU-A", quantity=2)
    order["line_items"][1].update(sku="SKU-C", quantity=1)
    return order


@pytest.fixture
def woo_shop(api: Any, runtime: Any) -> dict[str, Any]:
    settings = {
        "secret": SECRET,
        "store_url": "https://shop.example.com",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
    }
    status, connection = api.post(
        "/connections", {"plugin": "woocommerce", "name": "woo", "settings": settings}
    )
    assert status == 201, connection
    assert connection["settings"]["consumer_secret"] == "********"
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def woo_orders(runtime: Any) -> list[Order]:
    with runtime.transaction() as session:
        return list(
            session.scalars(
                select(Order)
                .where(Order.channel == "woocommerce")
                .options(selectinload(Order.lines))
            )
        )


def test_a_poll_brings_lost_orders_into_the_hub(
    api: Any, runtime: Any, woo_shop: dict[str, Any]
) -> None:
    # Given two orders changed in the last hours whose webhooks never arrived
    hours_ago = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    latest = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    with responses.RequestsMock() as woo:
        woo.get(
            ORDERS_URL,
            **orders_page([hub_order(812, latest), hub_order(813, hours_ago)], total=2, pages=1),
        )
        # When the connection is polled
        result = actors.poll_channel(runtime, woo_shop["id"])
        runtime.jobs.join()

    # Then both are hub orders, with stock reserved, and the cursor moved on
    assert result["error"] is None and result["stored"] == 2, result
    orders = woo_orders(runtime)
    assert sorted(o.external_id for o in orders) == ["812", "813"]
    assert all(o.status == "confirmed" for o in orders)
    assert sorted((line.sku, line.quantity) for line in orders[0].lines) == [
        ("SKU-A", 2),
        ("SKU-C", 1),
    ]
    _, stock = api.get("/stock?sku=SKU-A")
    assert sum(i["reserved"] for i in stock["items"]) == 4
    _, connection = api.get(f"/connections/{woo_shop['id']}")
    assert connection["cursor"] == latest


def test_a_snapshot_seen_by_webhook_and_by_poll_is_stored_once(
    api: Any, runtime: Any, woo_shop: dict[str, Any]
) -> None:
    snapshot = hub_order(812)
    body = php_json(snapshot)
    response = api.client.post(
        urlsplit(woo_shop["webhook_url"]).path, data=body, headers=dict(webhook(body).headers)
    )
    assert response.status_code == 200
    with responses.RequestsMock() as woo:
        woo.get(ORDERS_URL, **orders_page([snapshot], total=1, pages=1))
        result = actors.poll_channel(runtime, woo_shop["id"])
        runtime.jobs.join()

    assert (result["stored"], result["duplicates"]) == (0, 1)
    assert len(woo_orders(runtime)) == 1
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_coupon_order_in_the_hub_totals_what_woocommerce_charged(
    api: Any, runtime: Any, woo_shop: dict[str, Any]
) -> None:
    # 10% off two catalogue products, tax included in the lines' own tax, shipping taxed too.
    snapshot = order_payload(
        id=901,
        number="901",
        currency="USD",
        discount_total="2.40",
        discount_tax="0.24",
        shipping_total="4.90",
        shipping_tax="0.49",
        cart_tax="2.16",
        total_tax="2.65",
        total="29.15",
        line_items=[
            woo_line(61, "Alpha", 2, "20.00", "18.00", "2.00", "1.80", sku="SKU-A"),
            woo_line(62, "Charlie", 1, "4.00", "3.60", "0.40", "0.36", sku="SKU-C"),
        ],
        shipping_lines=[shipping_line("Flat rate", "4.90", "0.49")],
        coupon_lines=[coupon("take10", "2.40", "0.24")],
    )
    body = php_json(snapshot)
    response = api.client.post(
        urlsplit(woo_shop["webhook_url"]).path, data=body, headers=dict(webhook(body).headers)
    )
    assert response.status_code == 200
    runtime.jobs.join()

    status, order = api.get("/orders?channel=woocommerce")
    assert status == 200, order
    [summary] = order["items"]
    _, order = api.get(f"/orders/{summary['number']}")
    assert order["total"] == "29.15"  # what the customer paid, coupon taken off once
    assert (order["subtotal"], order["discount_total"]) == ("24.00", "2.40")
    assert (order["shipping_total"], order["tax_total"]) == ("4.90", "2.65")


@responses.activate
def test_a_webhook_only_connection_is_not_polled_on_schedule(api: Any, runtime: Any) -> None:
    status, connection = api.post(
        "/connections",
        {"plugin": "woocommerce", "name": "hooks-only", "settings": {"secret": SECRET}},
    )
    assert status == 201, connection

    result = actors.poll_channel(runtime, connection["id"], True)

    assert result["skipped"] == "this connection is not set up for polling"
    assert len(responses.calls) == 0
    _, seen = api.get(f"/connections/{connection['id']}")
    assert seen["last_poll_error"] is None and seen["last_polled_at"] is not None
    # Not due again until the plugin's interval has passed.
    assert actors.poll_channel(runtime, connection["id"], True)["skipped"] == (
        "not due, or being polled"
    )
