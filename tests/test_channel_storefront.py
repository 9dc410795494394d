"""The built-in ``storefront`` channel (OrderHub's own order format), tested at the adapter
level with requests a merchant's backend would send: the documented JSON body, an
``Idempotency-Key`` and ``X-OrderHub-Signature`` = base64 HMAC-SHA256 of the raw bytes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from conftest import watch_secret
from jsonschema import Draft202012Validator

from hub.core.adapters import ChannelAdapter, InboundRequest, PayloadError
from hub.core.errors import Invalid
from hub.plugins import DEFAULT_PLUGINS, Plugins
from plugins.channels import storefront
from plugins.channels.storefront import ORDER_SCHEMA, StorefrontChannel

SECRET = "sf_live_7Jq2mX9pLr4Vt8Kw"
OLD_SECRET = "sf_live_old_3Bn6cZ1yHd5Fs0Qe"
KEY = "5f0c6a52-6d1e-4f7e-9a3b-2c8e1d7f4a10"


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(SECRET, OLD_SECRET)


def order_payload(**changes: Any) -> dict[str, Any]:
    """The example order from the module's documentation, every optional field filled in."""
    order: dict[str, Any] = {
        "id": "W-100234",
        "number": "#100234",
        "updated_at": "2024-05-02T14:03:11+02:00",
        "placed_at": "2024-05-02T14:01:55+02:00",
        "paid_at": "2024-05-02T12:02:40Z",
        "status": "placed",
        "currency": "EUR",
        "lines": [
            {"sku": "MUG-BLUE", "quantity": 2, "unit_price": "12.50", "name": "Blue mug"},
            {"sku": "TSHIRT-L", "quantity": 3, "unit_price": "3.333333"},
        ],
        "customer": {"email": "ana@example.com", "name": "Ana Silva", "phone": "+351912345678"},
        "shipping": {
            "name": "Rui Costa",
            "phone": "+351935550100",
            "address": {
                "line1": "Avenida da Liberdade 200",
                "line2": "3º Dto",
                "city": "Lisboa",
                "region": "Lisboa",
                "postcode": "1250-147",
                "country": "PT",
            },
        },
        "shipping_total": "4.90",
        "tax_total": "5.75",
        "discount_total": "2.00",
        "note": "Leave with the neighbour",
    }
    order.update(changes)
    return order


def minimal_payload() -> dict[str, Any]:
    """Only the required fields."""
    return {
        "id": "A-1",
        "updated_at": "2024-05-02T12:00:00Z",
        "currency": "USD",
        "lines": [{"sku": "MUG-BLUE", "quantity": 1, "unit_price": "9.99"}],
        "customer": {"email": "bo@example.com"},
        "shipping": {
            "name": "Bo Lee",
            "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        },
    }


def encode(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post(
    body: bytes, *, secret: str | None = SECRET, key: str | None = KEY, **extra: str
) -> InboundRequest:
    headers = {"Content-Type": "application/json", "User-Agent": "acme-shop-backend/3.2"}
    if secret is not None:
        headers["X-OrderHub-Signature"] = sign(body, secret)
    if key is not None:
        headers["Idempotency-Key"] = key
    headers.update(extra)
    return InboundRequest(headers=headers, body=body, url="https://hub.example.com/hooks/9")


@pytest.fixture
def channel() -> StorefrontChannel:
    return StorefrontChannel({"secret": SECRET})


# --- registration, settings, the schema ------------------------------------------------------


def test_is_a_default_plugin_registered_through_the_hook() -> None:
    assert "plugins.channels.storefront" in DEFAULT_PLUGINS
    plugins = Plugins(env={})
    assert plugins.adapters("channels")["storefront"] is StorefrontChannel
    assert issubclass(StorefrontChannel, ChannelAdapter)
    assert not [f for f in plugins.failures if f.name == "storefront"]


def test_settings_need_a_long_enough_secret() -> None:
    StorefrontChannel.validate_settings({"secret": SECRET, "previous_secret": OLD_SECRET})
    with pytest.raises(Invalid, match="secret"):
        StorefrontChannel.validate_settings({})
    with pytest.raises(Invalid, match="secret"):
        StorefrontChannel.validate_settings({"secret": "short"})
    assert set(StorefrontChannel.secret_settings) == {"secret", "previous_secret"}


def test_the_schema_is_valid_json_schema_and_publishable() -> None:
    Draft202012Validator.check_schema(ORDER_SCHEMA)
    assert json.loads(json.dumps(ORDER_SCHEMA)) == ORDER_SCHEMA  # plain JSON, can be served
    for example in (order_payload(), minimal_payload()):
        assert not list(Draft202012Validator(ORDER_SCHEMA).iter_errors(example))


def test_the_documented_example_is_a_valid_order(channel: StorefrontChannel) -> None:
    """The example in the module docstring (quoted in the README) must stay true."""
    doc = storefront.__doc__ or ""
    start = doc.index('    {\n      "id"')
    end = doc.index("\n    }\n", start) + len("\n    }")
    example = json.loads(doc[start:end])
    [order] = channel.parse("order", encode(example))
    assert order.external_id == "W-100234"


# --- verify ----------------------------------------------------------------------------------


def test_a_signed_request_with_a_key_verifies(channel: StorefrontChannel) -> None:
    assert channel.verify(post(encode(order_payload())))


def test_headers_are_case_insensitive(channel: StorefrontChannel) -> None:
    request = post(encode(order_payload()))
    lower = InboundRequest({k.lower(): v for k, v in request.headers.items()}, request.body)
    assert channel.verify(lower)
    assert channel.delivery(lower) == channel.delivery(request)


def test_the_signature_is_over_the_bytes_as_sent(channel: StorefrontChannel) -> None:
    compact = json.dumps(order_payload(), separators=(",", ":")).encode()
    request = post(compact)
    assert channel.verify(request)
    same_json_other_bytes = json.dumps(order_payload(), indent=2).encode()
    assert not channel.verify(InboundRequest(request.headers, same_json_other_bytes))


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body: post(body, secret="not-the-secret-at-all"), id="wrong-secret"),
        pytest.param(
            lambda body: InboundRequest(post(body).headers, body.replace(b'"12.50"', b'"0.01"')),
            id="tampered-body",
        ),
        pytest.param(lambda body: post(body, secret=None), id="missing-signature"),
        pytest.param(
            lambda body: post(body, secret=None, **{"X-OrderHub-Signature": ""}),
            id="empty-signature",
        ),
        pytest.param(
            lambda body: post(body, secret=None, **{"X-OrderHub-Signature": "€uro"}),
            id="non-ascii-signature",
        ),
        pytest.param(
            lambda body: post(
                body,
                secret=None,
                **{"X-OrderHub-Signature": hmac.new(SECRET.encode(), body, "sha256").hexdigest()},
            ),
            id="hex-not-base64",
        ),
    ],
)
def test_forged_requests_fail(channel: StorefrontChannel, forge: Any) -> None:
    body = encode(order_payload())
    assert b'"12.50"' in body
    assert not channel.verify(forge(body))


def test_rotation_accepts_either_secret_while_both_are_configured() -> None:
    body = encode(order_payload())
    rotating = StorefrontChannel({"secret": SECRET, "previous_secret": OLD_SECRET})
    assert rotating.verify(post(body, secret=SECRET))
    assert rotating.verify(post(body, secret=OLD_SECRET))
    assert not rotating.verify(post(body, secret="a-third-secret-value"))
    assert not StorefrontChannel({"secret": SECRET}).verify(post(body, secret=OLD_SECRET))


@pytest.mark.parametrize(
    "key",
    [None, "", "   ", "has space", "x" * 201, "naïve", "tab\there"],
    ids=["missing", "empty", "blank", "space", "too-long", "non-ascii", "control-char"],
)
def test_a_signed_request_without_a_usable_idempotency_key_is_refused(
    channel: StorefrontChannel, key: str | None
) -> None:
    """Refused rather than acknowledged: delivery() returning None would drop the order."""
    assert not channel.verify(post(encode(order_payload()), key=key))


# --- delivery --------------------------------------------------------------------------------


def test_delivery_key_is_the_idempotency_key(channel: StorefrontChannel) -> None:
    body = encode(order_payload())
    delivery = channel.delivery(post(body))
    assert delivery is not None
    assert (delivery.key, delivery.topic) == (KEY, "order")
    retry = channel.delivery(post(body))
    assert retry == delivery
    longest = channel.delivery(post(body, key="k" * 200))
    assert longest is not None and longest.key == "k" * 200
    assert channel.delivery(post(body, key="other-message")).key == "other-message"  # type: ignore[union-attr]


# --- parse -----------------------------------------------------------------------------------


def test_parse_reads_every_field(channel: StorefrontChannel) -> None:
    [order] = channel.parse("order", encode(order_payload()))
    plus_two = timezone(timedelta(hours=2))
    assert order.external_id == "W-100234"
    assert order.event_time == datetime(2024, 5, 2, 14, 3, 11, tzinfo=plus_two)
    assert order.event_time.tzinfo is not None
    assert order.cancelled is False
    assert order.channel_status == "placed"
    draft = order.draft
    assert draft.channel == "storefront"
    assert (draft.external_id, draft.external_name) == ("W-100234", "#100234")
    assert draft.currency == "EUR"
    assert draft.created_at == datetime(2024, 5, 2, 12, 1, 55, tzinfo=UTC)
    assert draft.paid_at == datetime(2024, 5, 2, 12, 2, 40, tzinfo=UTC)
    assert draft.shipping_total == Decimal("4.90")
    assert draft.tax_total == Decimal("5.75")
    assert draft.discount_total == Decimal("2.00")
    assert draft.note == "Leave with the neighbour"

    mug, shirt = draft.lines
    assert (mug.sku, mug.quantity, mug.unit_price, mug.name) == (
        "MUG-BLUE",
        2,
        Decimal("12.50"),
        "Blue mug",
    )
    assert (shirt.sku, shirt.quantity, shirt.unit_price, shirt.name) == (
        "TSHIRT-L",
        3,
        Decimal("3.333333"),
        None,
    )
    assert mug.channel_product_id is None

    assert draft.consignee.name == "Rui Costa"
    assert draft.consignee.phone == "+351935550100"
    address = draft.consignee.address
    assert (address.line1, address.line2) == ("Avenida da Liberdade 200", "3º Dto")
    assert (address.city, address.region, address.postcode, address.country) == (
        "Lisboa",
        "Lisboa",
        "1250-147",
        "PT",
    )
    assert draft.customer is not None
    assert draft.customer.email == "ana@example.com"
    assert draft.customer.name == "Ana Silva"
    assert draft.customer.phone == "+351912345678"


def test_money_is_decimal_never_float(channel: StorefrontChannel) -> None:
    [order] = channel.parse("order", encode(order_payload()))
    draft = order.draft
    amounts = [draft.shipping_total, draft.tax_total, draft.discount_total]
    amounts += [line.unit_price for line in draft.lines]
    assert all(type(a) is Decimal for a in amounts)
    assert str(draft.lines[0].unit_price) == "12.50"  # the sender's digits, kept exactly


def test_only_required_fields(channel: StorefrontChannel) -> None:
    [order] = channel.parse("order", encode(minimal_payload()))
    draft = order.draft
    assert order.cancelled is False and order.channel_status == "placed"
    assert (draft.shipping_total, draft.tax_total, draft.discount_total) == (0, 0, 0)
    assert draft.external_name == "A-1"
    assert (draft.created_at, draft.paid_at, draft.note) == (None, None, None)
    assert draft.consignee.phone is None
    assert draft.consignee.address.postcode is None
    assert draft.customer is not None and draft.customer.name is None


def test_optional_fields_may_be_null(channel: StorefrontChannel) -> None:
    payload = order_payload(
        number=None, placed_at=None, paid_at=None, status=None, shipping_total=None, note=None
    )
    payload["shipping"]["phone"] = None
    payload["shipping"]["address"]["postcode"] = None
    [order] = channel.parse("order", encode(payload))
    assert order.channel_status == "placed"
    assert order.draft.shipping_total == Decimal(0)
    assert order.draft.consignee.phone == "+351912345678"  # the customer's, as a fallback


def test_a_cancelled_order(channel: StorefrontChannel) -> None:
    [order] = channel.parse("order", encode(order_payload(status="cancelled")))
    assert order.cancelled is True
    assert order.channel_status == "cancelled"


def _change(path: str, value: Any = ...) -> dict[str, Any]:
    """The full example with one field (dotted path, list indexes as numbers) set or removed."""
    payload = copy.deepcopy(order_payload())
    *parents, last = path.split(".")
    target: Any = payload
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_change("id"), "order: 'id' is a required property"),
        (_change("updated_at"), "order: 'updated_at' is a required property"),
        (_change("currency"), "order: 'currency' is a required property"),
        (_change("lines"), "order: 'lines' is a required property"),
        (_change("customer"), "order: 'customer' is a required property"),
        (_change("shipping"), "order: 'shipping' is a required property"),
        (_change("customer.email"), "customer: 'email' is a required property"),
        (_change("shipping.name"), "shipping: 'name' is a required property"),
        (_change("shipping.address.city"), "shipping.address: 'city' is a required property"),
        (_change("shipping.address.country", "Portugal"), "shipping.address.country:"),
        (_change("lines.1.sku"), "lines[1]: 'sku' is a required property"),
        (_change("lines.1.quantity"), "lines[1]: 'quantity' is a required property"),
        (_change("lines.0.unit_price"), "lines[0]: 'unit_price' is a required property"),
        (_change("lines.0.unit_price", 12.5), "lines[0].unit_price: Decimal('12.5') is not"),
        (_change("lines.0.unit_price", "12,50"), "lines[0].unit_price: '12,50' does not match"),
        (_change("lines.0.unit_price", "-1.00"), "lines[0].unit_price:"),
        (_change("lines.0.quantity", 0), "lines[0].quantity: 0 is less than the minimum"),
        (_change("lines.0.quantity", 1.5), "lines[0].quantity:"),
        (_change("lines.0.quantity", "2"), "lines[0].quantity: '2' is not of type 'integer'"),
        (_change("lines", []), "lines: [] should be non-empty"),
        (_change("id", 100234), "id: 100234 is not of type 'string'"),
        (_change("currency", "eur"), "currency: 'eur' does not match"),
        (_change("updated_at", "2024-05-02T14:03:11"), "updated_at:"),  # no offset
        (_change("updated_at", "2024-13-02T14:03:11Z"), "updated_at: not a date-time"),
        (_change("paid_at", "yesterday"), "paid_at:"),
        (_change("shipping_total", "4.9.0"), "shipping_total:"),
        (_change("status", "shipped"), "status: 'shipped' is not one of"),
        (_change("shiping_total", "4.90"), "order: Additional properties are not allowed"),
        (_change("lines.0.qty", 2), "lines[0]: Additional properties are not allowed"),
    ],
)
def test_malformed_payloads_name_the_field(
    channel: StorefrontChannel, payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(PayloadError, match="^storefront: " + re.escape(message)):
        channel.parse("order", encode(payload))


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b'{"id": NaN}'])
def test_a_body_that_is_not_json_is_a_payload_error(
    channel: StorefrontChannel, body: bytes
) -> None:
    with pytest.raises(PayloadError, match="not JSON"):
        channel.parse("order", body)


def test_a_body_that_is_not_an_object_is_a_payload_error(channel: StorefrontChannel) -> None:
    with pytest.raises(PayloadError, match=r"^storefront: order: .* is not of type 'object'"):
        channel.parse("order", encode([order_payload()]))
