"""The built-in ``shopee`` channel: pushes shaped and signed as Shopee Open Platform v2 sends
them (design/CHANNELS.md), and the order detail call faked with ``responses`` in the shape of
Shopee's ``GET /api/v2/order/get_order_detail`` answer, errors included.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
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
from hub.core.http import AuthError, BusinessError, HttpClient, Unavailable
from hub.core.models import InboxEntry, Order
from hub.plugins import DEFAULT_PLUGINS, Plugins
from plugins.channels.shopee import ShopeeChannel

PARTNER_ID = 2001887
PARTNER_KEY = "4a6f6e6174686f6e2d7061727472657220b2a1c3d4e5f60718293a4b5c6d7e8f"
SHOP_ID = 225570
ACCESS_TOKEN = "6c5a3e4f2b1d0c9e8f7a6b5c4d3e2f1a"
ORDER_SN = "240501ABCD1234"
HOOK_URL = "https://hub.example.com/hooks/acme/3"
DETAIL_URL = "https://partner.shopeemobile.com/api/v2/order/get_order_detail"
SETTINGS = {
    "partner_id": PARTNER_ID,
    "partner_key": PARTNER_KEY,
    "shop_id": SHOP_ID,
    "access_token": ACCESS_TOKEN,
}


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(PARTNER_KEY, ACCESS_TOKEN)


def push_body(
    status: str = "READY_TO_SHIP",
    update_time: int = 1714554000,
    *,
    code: int = 3,
    shop_id: int = SHOP_ID,
    msg_id: str = "a3c5e0b6d9f24b1f8e2c7d4a9b6e1f03",
) -> bytes:
    """An order status push (code 3) as Shopee sends it: compact JSON, thin ``data``."""
    push = {
        "msg_id": msg_id,
        "data": {
            "ordersn": ORDER_SN,
            "status": status,
            "completed_scenario": "",
            "update_time": update_time,
        },
        "shop_id": shop_id,
        "code": code,
        "timestamp": update_time + 1,
    }
    return json.dumps(push, separators=(",", ":")).encode()


def sign_push(body: bytes, url: str = HOOK_URL, key: str = PARTNER_KEY) -> str:
    """Shopee's documented push signature, computed here independently of the plugin."""
    return hmac.new(key.encode(), f"{url}|".encode() + body, hashlib.sha256).hexdigest()


def push_request(
    body: bytes, *, url: str = HOOK_URL, signature: str | None = None
) -> InboundRequest:
    headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    headers["Authorization"] = sign_push(body, url) if signature is None else signature
    return InboundRequest(headers=headers, body=body, url=url)


def detail_order(**changes: Any) -> dict[str, Any]:
    """One ``order_list`` entry with the optional fields the plugin asks for.

    Line 1 is a product without variations (model_id 0, only an item SKU); line 2 a variation
    with its own model SKU. A 2.00 voucher brings the goods (45.50) plus the estimated shipping
    (3.99) down to the 47.49 the buyer paid.
    """
    order: dict[str, Any] = {
        "order_sn": ORDER_SN,
        "region": "SG",
        "currency": "SGD",
        "cod": False,
        "total_amount": 47.49,
        "order_status": "READY_TO_SHIP",
        "shipping_carrier": "Ninja Van",
        "payment_method": "Credit Card/Debit Card",
        "estimated_shipping_fee": 3.99,
        "message_to_seller": "Please pack well",
        "create_time": 1714550400,
        "update_time": 1714554000,
        "days_to_ship": 3,
        "ship_by_date": 1714809600,
        "buyer_user_id": 345678901,
        "buyer_username": "tan.meiling",
        "recipient_address": {
            "name": "Tan Mei Ling",
            "phone": "6591234567",
            "town": "",
            "district": "",
            "city": "Singapore",
            "state": "",
            "region": "SG",
            "zipcode": "238801",
            "full_address": "10 Orchard Road, #05-01, Singapore 238801",
        },
        "actual_shipping_fee": 0,
        "goods_to_declare": False,
        "note": "",
        "note_update_time": 0,
        "item_list": [
            {
                "item_id": 100200300,
                "item_name": "Alpha Tool",
                "item_sku": "SKU-A",
                "model_id": 0,
                "model_name": "",
                "model_sku": "",
                "model_quantity_purchased": 2,
                "model_original_price": 12.0,
                "model_discounted_price": 10.0,
                "wholesale": False,
                "weight": 0.3,
                "add_on_deal": False,
                "main_item": False,
                "add_on_deal_id": 0,
                "promotion_type": "",
                "promotion_id": 0,
                "order_item_id": 100200300,
                "promotion_group_id": 0,
                "image_info": {"image_url": "https://cf.shopee.sg/file/sg-11134201-7r98o"},
            },
            {
                "item_id": 100200400,
                "item_name": "Bravo Kit",
                "item_sku": "BRAVO",
                "model_id": 5550001,
                "model_name": "Large",
                "model_sku": "SKU-B",
                "model_quantity_purchased": 1,
                "model_original_price": 30.0,
                "model_discounted_price": 25.5,
                "wholesale": False,
                "weight": 1.2,
                "add_on_deal": False,
                "main_item": False,
                "add_on_deal_id": 0,
                "promotion_type": "product_promotion",
                "promotion_id": 881234,
                "order_item_id": 100200400,
                "promotion_group_id": 0,
                "image_info": {"image_url": "https://cf.shopee.sg/file/sg-11134201-7r99a"},
            },
        ],
        "pay_time": 1714550460,
        "dropshipper": "",
        "dropshipper_phone": "",
        "split_up": False,
    }
    order.update(changes)
    return order


def detail_answer(*orders: dict[str, Any]) -> dict[str, Any]:
    return {
        "error": "",
        "message": "",
        "request_id": "b937c04e554847789cbf3fe33a0ad5f1",
        "response": {"order_list": list(orders) or [detail_order()]},
    }


def channel(**settings: Any) -> ShopeeChannel:
    """An adapter whose client never really sleeps: retries are recorded instead."""
    merged = {**SETTINGS, **settings}
    ShopeeChannel.validate_settings(merged)
    client = HttpClient("shopee:test")
    client.sleep = lambda seconds: None
    return ShopeeChannel(merged, http=client)


# --- registration and settings ---------------------------------------------------------------


def test_registered_as_a_built_in_push_channel() -> None:
    assert "plugins.channels.shopee" in DEFAULT_PLUGINS
    assert Plugins(env={}).adapters("channels")["shopee"] is ShopeeChannel
    assert issubclass(ShopeeChannel, ChannelAdapter)
    assert ShopeeChannel.capabilities == {"push"}
    assert set(ShopeeChannel.secret_settings) == {"partner_key", "access_token"}


@pytest.mark.parametrize(
    "change",
    [
        {"partner_id": "2001887"},  # Shopee's ids are integers; a string would sign differently
        {"shop_id": None},
        {"access_token": ""},
        {"callback_url": "hub.example.com/hooks/acme/3"},
        {"webhook_secret": "x"},
    ],
)
def test_settings_refuse_what_cannot_work(change: dict[str, Any]) -> None:
    with pytest.raises(Invalid):
        ShopeeChannel.validate_settings({**SETTINGS, **change})


# --- verify ----------------------------------------------------------------------------------


def test_a_signed_push_is_authentic() -> None:
    assert channel().verify(push_request(push_body()))


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(sign_push(push_body(), key="not-the-partner-key"), id="wrong-key"),
        pytest.param(sign_push(push_body(), url="https://elsewhere.example/hook"), id="other-url"),
        pytest.param(
            hmac.new(PARTNER_KEY.encode(), push_body(), hashlib.sha256).hexdigest(), id="no-url"
        ),
        pytest.param("", id="missing"),
        pytest.param("sïgnature", id="not-ascii"),
    ],
)
def test_a_forged_or_missing_signature_is_refused(signature: str) -> None:
    assert not channel().verify(push_request(push_body(), signature=signature))


def test_a_tampered_body_is_refused() -> None:
    genuine = push_request(push_body())
    tampered = genuine.body.replace(b"READY_TO_SHIP", b"CANCELLED")
    assert not channel().verify(InboundRequest(genuine.headers, tampered, genuine.url))


def test_the_registered_callback_url_is_what_is_signed_behind_a_proxy() -> None:
    # Shopee signs the URL registered in its console; behind a proxy the hub sees another one.
    body = push_body()
    seen = InboundRequest(
        {"Authorization": sign_push(body, HOOK_URL)}, body, "http://10.0.0.5:8000/hooks/acme/3"
    )
    assert not channel().verify(seen)
    assert channel(callback_url=HOOK_URL).verify(seen)


# --- delivery --------------------------------------------------------------------------------


def test_an_order_status_push_is_kept_with_a_key_per_status_change() -> None:
    delivery = channel().delivery(push_request(push_body()))
    assert delivery is not None
    assert delivery.key == f"{ORDER_SN}:READY_TO_SHIP:1714554000"
    assert delivery.topic == "order_status"


def test_a_resent_push_has_the_same_key_and_a_new_status_a_new_one() -> None:
    adapter = channel()
    first = adapter.delivery(push_request(push_body()))
    resent = adapter.delivery(push_request(push_body(msg_id="f0e1d2c3b4a5968778695a4b3c2d1e0f")))
    shipped = adapter.delivery(push_request(push_body("SHIPPED", 1714640400)))
    assert first == resent
    assert shipped is not None and first is not None and shipped.key != first.key


def test_other_push_codes_and_other_shops_are_acknowledged_not_stored() -> None:
    tracking = json.dumps(
        {
            "data": {
                "ordersn": ORDER_SN,
                "package_number": "OFG151234567890123",
                "tracking_no": "SPXSG0123456789",
            },
            "shop_id": SHOP_ID,
            "code": 4,
            "timestamp": 1714560000,
        }
    ).encode()
    adapter = channel()
    assert adapter.verify(push_request(tracking))
    assert adapter.delivery(push_request(tracking)) is None
    other_shop = push_request(push_body(shop_id=998877))
    assert adapter.verify(other_shop)  # same partner app, same callback URL
    assert adapter.delivery(other_shop) is None


def test_a_signed_unreadable_push_is_kept_to_be_rejected_visibly() -> None:
    body = b'{"data":{"ordersn":"2405'  # cut short
    delivery = channel().delivery(push_request(body))
    assert delivery is not None
    assert delivery.key == "body-sha256:" + hashlib.sha256(body).hexdigest()
    with pytest.raises(PayloadError, match="not JSON"):
        channel().parse(delivery.topic, body)


# --- the detail pull -------------------------------------------------------------------------


@responses.activate
def test_the_detail_call_is_signed_as_shopee_documents() -> None:
    responses.get(DETAIL_URL, json=detail_answer())
    before = int(time.time())
    channel().parse("order_status", push_body())
    after = int(time.time())

    [call] = responses.calls
    parts = urlsplit(call.request.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/api/v2/order/get_order_detail"
    assert query["partner_id"] == str(PARTNER_ID)
    assert query["shop_id"] == str(SHOP_ID)
    assert query["access_token"] == ACCESS_TOKEN
    assert query["order_sn_list"] == ORDER_SN
    optional = set(query["response_optional_fields"].split(","))
    assert {"item_list", "recipient_address", "total_amount", "estimated_shipping_fee"} <= optional
    timestamp = int(query["timestamp"])
    assert before <= timestamp <= after  # Shopee refuses a timestamp off by minutes
    base = f"{PARTNER_ID}/api/v2/order/get_order_detail{timestamp}{ACCESS_TOKEN}{SHOP_ID}"
    expected = hmac.new(PARTNER_KEY.encode(), base.encode(), hashlib.sha256).hexdigest()
    assert query["sign"] == expected


@responses.activate
def test_a_custom_api_base_is_used() -> None:
    sandbox = "https://partner.test-stable.shopeemobile.com"
    responses.get(f"{sandbox}/api/v2/order/get_order_detail", json=detail_answer())
    [order] = channel(api_base=sandbox + "/").parse("order_status", push_body())
    assert order.external_id == ORDER_SN


@responses.activate
def test_parse_maps_money_lines_consignee_and_times() -> None:
    responses.get(DETAIL_URL, json=detail_answer())
    [order] = channel().parse("order_status", push_body())
    draft = order.draft

    assert order.external_id == draft.external_id == ORDER_SN
    assert order.event_time == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    assert (order.cancelled, order.hold, order.channel_status) == (False, None, "READY_TO_SHIP")
    assert draft.channel == "shopee"
    assert draft.currency == "SGD"
    assert draft.created_at == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert draft.paid_at == datetime(2024, 5, 1, 8, 1, tzinfo=UTC)
    assert draft.note == "Please pack well"

    alpha, bravo = draft.lines
    assert (alpha.sku, alpha.channel_product_id, alpha.quantity) == ("SKU-A", "100200300:0", 2)
    assert (alpha.unit_price, alpha.name) == (Decimal("10.0"), "Alpha Tool")
    assert (bravo.sku, bravo.channel_product_id, bravo.quantity) == (
        "SKU-B",
        "100200400:5550001",
        1,
    )
    assert (bravo.unit_price, bravo.name) == (Decimal("25.5"), "Bravo Kit (Large)")

    # Money never passes through float, and the hub's total is what the buyer paid.
    assert draft.shipping_total == Decimal("3.99")
    assert draft.discount_total == Decimal("2.00")
    amounts = [draft.shipping_total, draft.discount_total, alpha.unit_price, bravo.unit_price]
    assert all(type(a) is Decimal for a in amounts)
    goods = sum(line.unit_price * line.quantity for line in draft.lines)
    assert goods + draft.shipping_total - draft.discount_total == Decimal("47.49")

    consignee = draft.consignee
    assert (consignee.name, consignee.phone) == ("Tan Mei Ling", "6591234567")
    assert consignee.address.line1 == "10 Orchard Road, #05-01, Singapore 238801"
    assert (consignee.address.city, consignee.address.postcode) == ("Singapore", "238801")
    assert consignee.address.country == "SG"
    assert draft.customer is not None and draft.customer.name == "tan.meiling"


@responses.activate
def test_shipping_paid_above_the_estimate_is_shipping_not_a_negative_discount() -> None:
    responses.get(DETAIL_URL, json=detail_answer(detail_order(total_amount=50.49)))
    [order] = channel().parse("order_status", push_body())
    assert order.draft.shipping_total == Decimal("4.99")
    assert order.draft.discount_total == Decimal(0)


@responses.activate
def test_a_bundle_deal_item_is_priced_at_its_original_price() -> None:
    # Shopee does not break a bundle discount down per item: the discounted price reads 0.
    order = copy.deepcopy(detail_order(total_amount=40.99))
    order["item_list"][1].update(model_discounted_price=0, promotion_type="bundle_deal")
    responses.get(DETAIL_URL, json=detail_answer(order))
    [parsed] = channel().parse("order_status", push_body())
    assert parsed.draft.lines[1].unit_price == Decimal("30.0")
    # goods 20.00 + 30.00, shipping 3.99, paid 40.99: the bundle and voucher took off 13.00
    assert parsed.draft.discount_total == Decimal("13.00")


@pytest.mark.parametrize(
    ("status", "cancelled", "held"),
    [
        ("UNPAID", False, True),
        ("READY_TO_SHIP", False, False),
        ("PROCESSED", False, False),
        ("SHIPPED", False, False),
        ("COMPLETED", False, False),
        ("IN_CANCEL", False, False),  # the buyer asked; the seller has not answered yet
        ("CANCELLED", True, False),
    ],
)
@responses.activate
def test_statuses(status: str, cancelled: bool, held: bool) -> None:
    pay_time = 0 if status == "UNPAID" else 1714550460
    responses.get(
        DETAIL_URL, json=detail_answer(detail_order(order_status=status, pay_time=pay_time))
    )
    [order] = channel().parse("order_status", push_body(status))
    assert order.cancelled is cancelled
    assert (order.hold is not None) is held
    assert order.channel_status == status
    if held:
        assert "payment" in (order.hold or "")
        assert order.draft.paid_at is None


@responses.activate
def test_the_detail_not_the_push_decides_the_status() -> None:
    # A late push for an old status: the order is mapped as Shopee states it now.
    responses.get(DETAIL_URL, json=detail_answer(detail_order(order_status="SHIPPED")))
    [order] = channel().parse("order_status", push_body("READY_TO_SHIP"))
    assert order.channel_status == "SHIPPED"


def _bad_line(**changes: Any) -> dict[str, Any]:
    order = copy.deepcopy(detail_order())
    order["item_list"][1].update(changes)
    return order


@pytest.mark.parametrize(
    ("order", "named"),
    [
        (detail_order(item_list=[]), "item_list: missing or empty"),
        (detail_order(update_time=None), "update_time: missing"),
        (detail_order(currency=None), "currency: missing"),
        (_bad_line(model_quantity_purchased=0), "item_list[1].model_quantity_purchased"),
        (_bad_line(model_discounted_price=None), "item_list[1].model_discounted_price: missing"),
        (_bad_line(model_discounted_price="free"), "item_list[1].model_discounted_price"),
        (detail_order(recipient_address="10 Orchard Road"), "recipient_address: not an object"),
    ],
)
@responses.activate
def test_a_malformed_detail_names_the_field(order: dict[str, Any], named: str) -> None:
    responses.get(DETAIL_URL, json=detail_answer(order))
    with pytest.raises(PayloadError, match=named.replace("[", r"\[").replace("]", r"\]")):
        channel().parse("order_status", push_body())


@responses.activate
def test_an_order_missing_from_the_answer_is_a_payload_error() -> None:
    responses.get(DETAIL_URL, json={**detail_answer(), "response": {"order_list": []}})
    with pytest.raises(PayloadError, match=ORDER_SN):
        channel().parse("order_status", push_body())


def test_a_push_without_ordersn_is_a_payload_error() -> None:
    body = json.dumps({"data": {}, "shop_id": SHOP_ID, "code": 3, "timestamp": 1}).encode()
    with pytest.raises(PayloadError, match="ordersn"):
        channel().parse("order_status", body)


# --- errors from Shopee ----------------------------------------------------------------------


@responses.activate
def test_an_auth_error_in_a_200_body_is_an_auth_error() -> None:
    responses.get(
        DETAIL_URL,
        json={
            "error": "error_auth",
            "message": "Invalid access_token.",
            "request_id": "e3e3e7f3324bb9b7a0d3dc2f16a5d6b2",
        },
    )
    with pytest.raises(AuthError) as caught:
        channel().parse("order_status", push_body())
    assert not caught.value.retryable
    assert "Invalid access_token." in str(caught.value)
    assert ACCESS_TOKEN not in str(caught.value)  # the query string holds secrets


@responses.activate
def test_an_auth_error_with_http_403_is_an_auth_error_with_shopees_reason() -> None:
    responses.get(
        DETAIL_URL,
        status=403,
        json={"error": "error_auth", "message": "No permission.", "request_id": "9f2c"},
    )
    with pytest.raises(AuthError, match="No permission"):
        channel().parse("order_status", push_body())


@responses.activate
def test_a_parameter_error_is_a_business_error_not_retried() -> None:
    responses.get(
        DETAIL_URL,
        json={
            "error": "error_param",
            "message": "order_sn_list: 240501ABCD1234 is invalid",
            "request_id": "1b2c",
        },
    )
    with pytest.raises(BusinessError, match="is invalid") as caught:
        channel().parse("order_status", push_body())
    assert not caught.value.retryable


@responses.activate
def test_a_shopee_500_is_retried_then_raised_as_retryable() -> None:
    responses.get(
        DETAIL_URL,
        status=500,
        json={"error": "error_server", "message": "Something wrong.", "request_id": "77a1"},
    )
    with pytest.raises(Unavailable) as caught:
        channel().parse("order_status", push_body())
    assert caught.value.retryable  # so the hub keeps the delivery pending and tries later
    assert len(responses.calls) > 1  # the client already tried again
    assert "Something wrong." in str(caught.value)


@responses.activate
def test_a_server_error_in_a_200_body_is_retryable() -> None:
    responses.get(
        DETAIL_URL,
        json={"error": "error_server", "message": "System busy.", "request_id": "77a2"},
    )
    with pytest.raises(Unavailable) as caught:
        channel().parse("order_status", push_body())
    assert caught.value.retryable


# --- end to end through the hub --------------------------------------------------------------


@pytest.fixture
def shopee_shop(api: Any, runtime: Any) -> dict[str, Any]:
    status, connection = api.post(
        "/connections", {"plugin": "shopee", "name": "shopee-sg", "settings": SETTINGS}
    )
    assert status == 201, connection
    assert connection["settings"]["partner_key"] == "********"
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def post_push(api: Any, connection: dict[str, Any], body: bytes) -> Any:
    url = connection["webhook_url"]
    return api.client.post(
        urlsplit(url).path,
        data=body,
        headers={"Authorization": sign_push(body, url), "Content-Type": "application/json"},
    )


def shopee_orders(runtime: Any) -> list[Order]:
    with runtime.transaction() as session:
        return list(
            session.scalars(
                select(Order).where(Order.channel == "shopee").options(selectinload(Order.lines))
            )
        )


def test_a_push_becomes_one_order_with_lines_total_consignee_and_stock(
    api: Any, runtime: Any, shopee_shop: dict[str, Any]
) -> None:
    with responses.RequestsMock() as shopee:
        shopee.get(DETAIL_URL, json=detail_answer())
        response = post_push(api, shopee_shop, push_body())
        # Shopee wants exactly a 2xx with an empty body.
        assert (response.status_code, response.data) == (200, b"")
        runtime.jobs.join()

    [order] = shopee_orders(runtime)
    assert order.external_id == ORDER_SN
    assert order.status == "confirmed"
    assert sorted((line.sku, line.quantity) for line in order.lines) == [
        ("SKU-A", 2),
        ("SKU-B", 1),
    ]
    assert order.total == Decimal("47.49")
    assert order.currency == "SGD"
    assert (order.consignee_name, order.ship_country) == ("Tan Mei Ling", "SG")
    _, stock = api.get("/stock?sku=SKU-A&warehouse=MAIN")
    assert stock["items"][0]["reserved"] == 2


def test_the_same_push_three_times_makes_one_order_and_one_fetch(
    api: Any, runtime: Any, shopee_shop: dict[str, Any]
) -> None:
    with responses.RequestsMock() as shopee:
        shopee.get(DETAIL_URL, json=detail_answer())
        codes = [post_push(api, shopee_shop, push_body()).status_code for _ in range(3)]
        runtime.jobs.join()
        fetches = len(shopee.calls)

    assert codes == [200, 200, 200]
    assert fetches == 1
    assert len(shopee_orders(runtime)) == 1
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_forged_push_is_refused_through_the_hub(
    api: Any, runtime: Any, shopee_shop: dict[str, Any]
) -> None:
    body = push_body()
    response = api.client.post(
        urlsplit(shopee_shop["webhook_url"]).path,
        data=body,
        headers={"Authorization": sign_push(body, key="guessed")},
    )
    assert response.status_code == 401
    assert shopee_orders(runtime) == []


def test_an_unpaid_order_is_held_until_shopee_says_it_is_paid(
    api: Any, runtime: Any, shopee_shop: dict[str, Any]
) -> None:
    unpaid = detail_order(order_status="UNPAID", pay_time=0, update_time=1714550400)
    with responses.RequestsMock() as shopee:
        shopee.get(DETAIL_URL, json=detail_answer(unpaid))
        post_push(api, shopee_shop, push_body("UNPAID", 1714550400))
        runtime.jobs.join()
    [order] = shopee_orders(runtime)
    assert order.status == "held"
    assert "payment" in (order.hold_reason or "")

    with responses.RequestsMock() as shopee:
        shopee.get(DETAIL_URL, json=detail_answer())
        post_push(api, shopee_shop, push_body("READY_TO_SHIP", 1714554000))
        runtime.jobs.join()
    [order] = shopee_orders(runtime)
    assert order.status == "confirmed"


def test_a_refused_token_leaves_the_push_rejected_with_shopees_reason(
    api: Any, runtime: Any, shopee_shop: dict[str, Any]
) -> None:
    with responses.RequestsMock() as shopee:
        shopee.get(
            DETAIL_URL,
            json={"error": "error_auth", "message": "Invalid access_token.", "request_id": "x1"},
        )
        post_push(api, shopee_shop, push_body())
        runtime.jobs.join()
    assert shopee_orders(runtime) == []
    _, rejected = api.get("/inbox?status=rejected")
    [entry] = rejected["items"]
    assert "Invalid access_token." in entry["reason"]
    assert ACCESS_TOKEN not in entry["reason"]
