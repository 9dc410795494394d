"""The built-in ``amazon`` channel, tested against Amazon's HTTP API faked with ``responses``:
Login with Amazon's token exchange, and SP-API Orders v0 ``getOrders`` / ``getOrderItems``
answering exactly as Amazon documents them (the ``payload`` wrapper, ``NextToken`` paging,
amounts as strings, ``{"errors": [{"code", "message", "details"}]}`` on failure).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from conftest import watch_secret
from responses import matchers

from hub.core import http
from hub.core.adapters import ChannelAdapter, ChannelOrder, PayloadError, PollPage
from hub.core.errors import Invalid
from hub.core.http import AuthError
from hub.plugins import DEFAULT_PLUGINS, Plugins
from hub.worker.actors import poll_channel
from plugins.channels import amazon
from plugins.channels.amazon import AmazonChannel

ENDPOINT = "https://sellingpartnerapi-na.amazon.com"
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
ORDERS_URL = f"{ENDPOINT}/orders/v0/orders"
US = "ATVPDKIKX0DER"
CA = "A2EUQ1WTGCTBG2"
CLIENT_ID = "amzn1.application-oa2-client.6b1e7d0c5f2a4c3b9e8d7f6a5b4c3d2e"
CLIENT_SECRET = "amzn1.oa2-cs.v1.3f0e5c1d2b4a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"
REFRESH_TOKEN = "Atzr|IwEBIA-refresh-token-of-the-seller-7Hq2"
ACCESS_TOKEN = "Atza|IwEBIJ-access-token-one-9Lm4"


@pytest.fixture(autouse=True)
def _watch_secrets(_no_secret_leaks: None) -> None:
    """Fail any test here whose answers or logs show one of these (conftest)."""
    watch_secret(CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN)


NOW = datetime(2024, 3, 5, 12, 0, 0, tzinfo=UTC)
CURSOR = "2024-03-05T10:00:00Z"
WINDOW_END = "2024-03-05T11:58:00Z"  # two minutes before NOW, as Amazon requires

FIRST = "902-3159896-1390916"
SECOND = "113-8752281-5539421"
THIRD = "114-2046273-1048265"
NEXT_ORDERS = "MRgZW55IGNhcm5hbCBwbGVhc3VyZS4/2Yg+YW55=="  # "/", "+" and "=" as Amazon sends
NEXT_ITEMS = "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4"

QUOTA_EXCEEDED = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}
UNAUTHORIZED = {
    "errors": [
        {
            "message": "Access to requested resource is denied.",
            "code": "Unauthorized",
            "details": "The access token you provided is revoked, malformed or invalid.",
        }
    ]
}
INVALID_GRANT = {
    "error_description": "The request has an invalid grant parameter : refresh_token",
    "error": "invalid_grant",
}


# --- Amazon's documents ----------------------------------------------------------------------


def money(amount: str, currency: str = "USD") -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": amount}


def an_order(
    order_id: str = FIRST,
    status: str = "Unshipped",
    updated: str = "2024-03-05T11:20:04Z",
    **changes: Any,
) -> dict[str, Any]:
    """An Order as getOrders returns it (Orders v0), for a merchant-fulfilled US order."""
    order: dict[str, Any] = {
        "AmazonOrderId": order_id,
        "PurchaseDate": "2024-03-05T09:14:28Z",
        "LastUpdateDate": updated,
        "OrderStatus": status,
        "FulfillmentChannel": "MFN",
        "SalesChannel": "Amazon.com",
        "ShipServiceLevel": "Std US D2D Dom",
        "OrderTotal": money("52.53"),
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 3,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "IsReplacementOrder": False,
        "MarketplaceId": US,
        "ShipmentServiceLevelCategory": "Standard",
        "OrderType": "StandardOrder",
        "EarliestShipDate": "2024-03-06T08:00:00Z",
        "LatestShipDate": "2024-03-07T07:59:59Z",
        "IsBusinessOrder": False,
        "IsPrime": False,
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "HasRegulatedItems": False,
        "ShippingAddress": {
            "Name": "Jane Doe",
            "AddressLine1": "410 Terry Ave N",
            "AddressLine2": "Floor 3",
            "AddressLine3": "Suite 300",
            "City": "Seattle",
            "StateOrRegion": "WA",
            "PostalCode": "98109-5210",
            "CountryCode": "US",
            "Phone": "+1 206-555-0100",
            "AddressType": "Residential",
        },
        "BuyerInfo": {
            "BuyerEmail": "5vtm9c2hl2qxq4c@marketplace.amazon.com",
            "BuyerName": "Jane Doe",
        },
    }
    order.update(changes)
    return order


def a_pending_order(order_id: str = SECOND, updated: str = "2024-03-05T11:02:51Z") -> dict:
    """A Pending order: payment not yet authorised, so no total, no address, no buyer."""
    order = an_order(order_id, "Pending", updated, NumberOfItemsUnshipped=1)
    for absent in ("OrderTotal", "ShippingAddress", "BuyerInfo", "PaymentMethodDetails"):
        del order[absent]
    return order


def an_item(
    sku: str = "SKU-A",
    quantity: int = 2,
    price: str | None = "20.00",
    *,
    asin: str = "B07XJ8C8F5",
    item_id: str = "68828574383266",
    title: str = "Alpha multi-tool, stainless",
    **money_fields: str,
) -> dict[str, Any]:
    """An OrderItem as getOrderItems returns it; ``price`` is ItemPrice, the LINE total."""
    item: dict[str, Any] = {
        "ASIN": asin,
        "OrderItemId": item_id,
        "SellerSKU": sku,
        "Title": title,
        "QuantityOrdered": quantity,
        "QuantityShipped": 0,
        "ProductInfo": {"NumberOfItems": "1"},
        "IsGift": "false",
        "IsTransparency": False,
        "SerialNumberRequired": False,
    }
    if price is not None:
        item["ItemPrice"] = money(price)
    for name, amount in money_fields.items():
        item[name] = money(amount)
    return item


def first_items() -> list[dict[str, Any]]:
    """FIRST's two lines: 2 x SKU-A for 20.00 with shipping, tax and a promotion; 1 x SKU-B."""
    return [
        an_item(
            ShippingPrice="4.99",
            ItemTax="1.60",
            ShippingTax="0.40",
            PromotionDiscount="2.00",
            ShippingDiscount="0.00",
        ),
        an_item(
            "SKU-B",
            1,
            "25.50",
            asin="B0C1H2QZ7T",
            item_id="79039765272157",
            title="Bravo bolt set",
            ShippingPrice="0.00",
            ItemTax="2.04",
            PromotionDiscount="0.00",
        ),
    ]


def orders_page(orders: list[dict], next_token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"Orders": orders, "LastUpdatedBefore": WINDOW_END}
    if next_token:
        payload["NextToken"] = next_token
    return {"payload": payload}


def items_page(order_id: str, items: list[dict], next_token: str | None = None) -> dict:
    payload: dict[str, Any] = {"OrderItems": items, "AmazonOrderId": order_id}
    if next_token:
        payload["NextToken"] = next_token
    return {"payload": payload}


def items_url(order_id: str) -> str:
    return f"{ORDERS_URL}/{order_id}/orderItems"


def token_answer(token: str = ACCESS_TOKEN) -> dict[str, Any]:
    return {
        "access_token": token,
        "refresh_token": REFRESH_TOKEN,
        "token_type": "bearer",
        "expires_in": 3600,
    }


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_quotas() -> Iterator[None]:
    """Rate-limit buckets and breakers are per process; no test inherits another's."""
    http.reset_for_tests()
    yield
    http.reset_for_tests()


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def waits() -> list[float]:
    return []


def settings(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "marketplace_ids": [US, CA],
    }
    values.update(changes)
    return values


def channel(waits: list[float], **changes: Any) -> AmazonChannel:
    values = settings(**changes)
    AmazonChannel.validate_settings(values)
    adapter = AmazonChannel(values)
    adapter.now = lambda: NOW
    adapter.http.sleep = waits.append  # nothing really waits
    adapter.http.clock = lambda: 0.0  # and no time passes: pacing is deterministic
    return adapter


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def sp_api_calls(fake: responses.RequestsMock) -> list[Any]:
    return [c for c in fake.calls if c.request.url.startswith(ENDPOINT)]


def token_calls(fake: responses.RequestsMock) -> list[Any]:
    return [c for c in fake.calls if c.request.url == TOKEN_URL]


# --- registration and settings -----------------------------------------------------------------


def test_registered_as_a_built_in_pull_channel() -> None:
    assert "plugins.channels.amazon" in DEFAULT_PLUGINS
    assert amazon.register_channels() == [AmazonChannel]
    assert Plugins(env={}).adapters("channels")["amazon"] is AmazonChannel
    assert issubclass(AmazonChannel, ChannelAdapter)
    assert AmazonChannel.capabilities == frozenset({"pull"})
    assert AmazonChannel.secret_settings == ("refresh_token", "client_secret")


def test_settings_accept_the_documented_keys() -> None:
    AmazonChannel.validate_settings(settings())
    AmazonChannel.validate_settings(
        settings(
            endpoint="https://sellingpartnerapi-eu.amazon.com",
            token_url=TOKEN_URL,
            first_poll_days=30,
            marketplace_ids=["A1F83G8C2ARO7P"],
        )
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": None},
        {"refresh_token": ""},
        {"marketplace_ids": []},
        {"marketplace_ids": "ATVPDKIKX0DER"},
        {"endpoint": "http://sellingpartnerapi-na.amazon.com"},  # a token would travel in clear
        {"token_url": "http://api.amazon.com/auth/o2/token"},
        {"first_poll_days": 0},
        {"first_poll_days": "7"},
        {"seller_id": "A2ABCDEF"},
    ],
)
def test_settings_refuse_what_cannot_work(changes: dict[str, Any]) -> None:
    values = {k: v for k, v in settings(**changes).items() if v is not None}
    with pytest.raises(Invalid):
        AmazonChannel.validate_settings(values)


# --- poll --------------------------------------------------------------------------------------


def fake_two_pages(fake: responses.RequestsMock) -> None:
    """Two getOrders pages (the second by NextToken); FIRST's items come in two pages, and
    SECOND's items request is throttled once with Amazon's 429 before it answers."""
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(
        ORDERS_URL,
        json=orders_page([an_order(FIRST), a_pending_order(SECOND)], NEXT_ORDERS),
        match=[matchers.query_param_matcher({"LastUpdatedAfter": CURSOR}, strict_match=False)],
    )
    fake.get(
        ORDERS_URL,
        json=orders_page([an_order(THIRD, "Shipped", "2024-03-05T11:41:10Z")]),
        match=[matchers.query_param_matcher({"NextToken": NEXT_ORDERS}, strict_match=False)],
    )
    fake.get(
        items_url(FIRST),
        json=items_page(FIRST, first_items()[:1], NEXT_ITEMS),
        match=[matchers.query_string_matcher("")],
    )
    fake.get(
        items_url(FIRST),
        json=items_page(FIRST, first_items()[1:]),
        match=[matchers.query_param_matcher({"NextToken": NEXT_ITEMS})],
    )
    fake.get(items_url(SECOND), status=429, json=QUOTA_EXCEEDED)
    fake.get(items_url(SECOND), json=items_page(SECOND, [an_item(price=None, quantity=1)]))
    fake.get(items_url(THIRD), json=items_page(THIRD, [an_item("SKU-C", 3, "11.97")]))


def test_a_poll_pages_through_orders_and_their_items(fake, waits) -> None:
    fake_two_pages(fake)

    pages = list(channel(waits).poll(CURSOR))

    assert [len(p.deliveries) for p in pages] == [2, 1]
    assert [p.cursor for p in pages] == [None, WINDOW_END]  # only the last page moves on
    first, second = pages[0].deliveries
    [third] = pages[1].deliveries
    assert [d.key for d in (first, second, third)] == [
        f"{FIRST}:2024-03-05T11:20:04Z",
        f"{SECOND}:2024-03-05T11:02:51Z",
        f"{THIRD}:2024-03-05T11:41:10Z",
    ]
    assert {d.topic for d in (first, second, third)} == {"order"}
    # The order exactly as Amazon stated it, with every item from both items pages.
    assert json.loads(first.body) == {"order": an_order(FIRST), "items": first_items()}
    assert json.loads(second.body)["items"] == [an_item(price=None, quantity=1)]
    assert json.loads(third.body)["order"]["OrderStatus"] == "Shipped"


def test_the_requests_are_the_documented_ones(fake, waits) -> None:
    fake_two_pages(fake)

    list(channel(waits).poll(CURSOR))

    [token_call] = token_calls(fake)  # exchanged once, then reused for all seven calls
    assert parse_qs(token_call.request.body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    calls = sp_api_calls(fake)
    assert len(calls) == 7
    assert {c.request.headers["x-amz-access-token"] for c in calls} == {ACCESS_TOKEN}
    first, next_page = (c for c in calls if urlsplit(c.request.url).path == "/orders/v0/orders")
    assert query(first) == {
        "MarketplaceIds": [f"{US},{CA}"],
        "LastUpdatedAfter": [CURSOR],
        "LastUpdatedBefore": [WINDOW_END],
        "MaxResultsPerPage": ["100"],
    }
    # A NextToken request carries only the marketplaces and the token, as documented.
    assert query(next_page) == {"MarketplaceIds": [f"{US},{CA}"], "NextToken": [NEXT_ORDERS]}


def test_a_throttled_request_is_retried_and_the_poll_completes(fake, waits) -> None:
    fake_two_pages(fake)

    pages = list(channel(waits).poll(CURSOR))

    statuses = [c.response.status_code for c in fake.calls if SECOND in c.request.url]
    assert statuses == [429, 200]
    assert len(waits) == 1 and 0 <= waits[0] <= 30  # one backoff, through the fake sleep
    assert pages[-1].cursor == WINDOW_END


def test_a_long_poll_is_paced_at_amazons_documented_rate(fake, waits) -> None:
    # getOrders allows a burst of 20, then one request every 1 / 0.0167 s.
    fake.post(TOKEN_URL, json=token_answer())
    ids = [f"902-{n:07d}-1390916" for n in range(22)]
    for n, order_id in enumerate(ids):
        more = f"token-{n + 1}" if n + 1 < len(ids) else None
        fake.get(ORDERS_URL, json=orders_page([an_order(order_id)], more))
        fake.get(items_url(order_id), json=items_page(order_id, [an_item()]))

    pages = list(channel(waits).poll(CURSOR))

    assert len(pages) == 22 and pages[-1].cursor == WINDOW_END
    assert waits == [pytest.approx(1 / 0.0167), pytest.approx(2 / 0.0167)]


def test_the_first_poll_reaches_back_first_poll_days(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(ORDERS_URL, json=orders_page([]))

    [page] = list(channel(waits, first_poll_days=2).poll(None))

    assert page == PollPage([], cursor=WINDOW_END)
    [call] = sp_api_calls(fake)
    assert query(call)["LastUpdatedAfter"] == ["2024-03-03T12:00:00Z"]


def test_the_default_first_poll_reaches_back_seven_days(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(ORDERS_URL, json=orders_page([]))

    list(channel(waits).poll(None))

    assert query(sp_api_calls(fake)[0])["LastUpdatedAfter"] == ["2024-02-27T12:00:00Z"]


@pytest.mark.parametrize("cursor", ["2024-03-05T11:59:00Z", "2024-03-05T11:58:00Z"])
def test_a_window_that_has_not_opened_asks_nothing_and_keeps_the_cursor(
    fake, waits, cursor: str
) -> None:
    pages = list(channel(waits).poll(cursor))

    assert pages == [PollPage([], cursor=cursor)]
    assert len(fake.calls) == 0  # not even a token exchange


def test_the_token_is_reused_until_shortly_before_it_expires(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer("Atza|first"))
    fake.post(TOKEN_URL, json=token_answer("Atza|second"))
    fake.get(ORDERS_URL, json=orders_page([]))
    adapter = channel(waits)

    list(adapter.poll(CURSOR))
    adapter.now = lambda: NOW + timedelta(minutes=30)
    list(adapter.poll(WINDOW_END))
    adapter.now = lambda: NOW + timedelta(minutes=59, seconds=30)  # 30 s of life left
    list(adapter.poll("2024-03-05T12:28:00Z"))

    assert len(token_calls(fake)) == 2
    used = [c.request.headers["x-amz-access-token"] for c in sp_api_calls(fake)]
    assert used == ["Atza|first", "Atza|first", "Atza|second"]


def test_a_refused_refresh_token_is_an_auth_error_and_not_retried(fake, waits) -> None:
    fake.post(TOKEN_URL, status=400, json=INVALID_GRANT)

    with pytest.raises(AuthError) as caught:
        list(channel(waits).poll(CURSOR))

    message = str(caught.value)
    assert "invalid_grant" in message and "re-authorise" in message
    assert REFRESH_TOKEN not in message and CLIENT_SECRET not in message
    assert caught.value.status == 400
    assert len(fake.calls) == 1 and waits == []  # no retry, no SP-API call


def test_wrong_client_credentials_are_an_auth_error(fake, waits) -> None:
    body = {"error_description": "Client authentication failed", "error": "invalid_client"}
    fake.post(TOKEN_URL, status=401, json=body)

    with pytest.raises(AuthError, match="invalid_client"):
        list(channel(waits).poll(CURSOR))
    assert len(fake.calls) == 1


def test_an_access_token_refused_by_sp_api_is_an_auth_error(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(ORDERS_URL, status=403, json=UNAUTHORIZED)

    with pytest.raises(AuthError) as caught:
        list(channel(waits).poll(CURSOR))

    message = str(caught.value)
    assert "Unauthorized: Access to requested resource is denied." in message
    assert "revoked, malformed or invalid" in message
    assert ACCESS_TOKEN not in message
    assert len(sp_api_calls(fake)) == 1 and waits == []


def test_after_a_refusal_the_next_attempt_exchanges_a_new_token(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer("Atza|revoked"))
    fake.post(TOKEN_URL, json=token_answer("Atza|fresh"))
    fake.get(ORDERS_URL, status=403, json=UNAUTHORIZED)
    fake.get(ORDERS_URL, json=orders_page([]))
    adapter = channel(waits)

    with pytest.raises(AuthError):
        list(adapter.poll(CURSOR))
    list(adapter.poll(CURSOR))

    used = [c.request.headers["x-amz-access-token"] for c in sp_api_calls(fake)]
    assert used == ["Atza|revoked", "Atza|fresh"]


def test_an_answer_without_its_payload_is_a_parse_error(fake, waits) -> None:
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(ORDERS_URL, json={"Orders": []})  # not wrapped in "payload"

    with pytest.raises(http.ParseError, match=r"payload\.Orders"):
        list(channel(waits).poll(CURSOR))


def test_an_order_without_an_id_is_still_stored_so_the_inbox_shows_it(fake, waits) -> None:
    broken = an_order()
    del broken["AmazonOrderId"]
    fake.post(TOKEN_URL, json=token_answer())
    fake.get(ORDERS_URL, json=orders_page([broken]))

    [page] = list(channel(waits).poll(CURSOR))

    [delivery] = page.deliveries
    assert delivery.key.startswith("sha256:")
    with pytest.raises(PayloadError, match="AmazonOrderId"):
        AmazonChannel(settings()).parse(delivery.topic, delivery.body)


# --- parse -------------------------------------------------------------------------------------


def parse(order: dict[str, Any], items: list[dict[str, Any]]) -> ChannelOrder:
    body = json.dumps({"order": order, "items": items}).encode()
    [parsed] = AmazonChannel(settings()).parse("order", body)
    return parsed


def test_parse_maps_an_unshipped_order() -> None:
    parsed = parse(an_order(), first_items())
    draft = parsed.draft

    assert parsed.external_id == FIRST
    assert parsed.event_time == datetime(2024, 3, 5, 11, 20, 4, tzinfo=UTC)
    assert parsed.channel_status == "Unshipped"
    assert parsed.cancelled is False
    assert parsed.hold is None
    assert draft.channel == "amazon"
    assert draft.external_id == FIRST
    assert draft.created_at == datetime(2024, 3, 5, 9, 14, 28, tzinfo=UTC)
    assert draft.currency == "USD"

    # ItemPrice is the line total: 20.00 for two is 10.00 each.
    assert [
        (x.sku, x.quantity, x.unit_price, x.name, x.channel_product_id) for x in draft.lines
    ] == [
        ("SKU-A", 2, Decimal("10.00"), "Alpha multi-tool, stainless", "B07XJ8C8F5"),
        ("SKU-B", 1, Decimal("25.50"), "Bravo bolt set", "B0C1H2QZ7T"),
    ]
    assert draft.shipping_total == Decimal("4.99")
    assert draft.tax_total == Decimal("4.04")  # 1.60 + 0.40 shipping tax + 2.04
    assert draft.discount_total == Decimal("2.00")
    amounts = [x.unit_price for x in draft.lines]
    amounts += [draft.shipping_total, draft.tax_total, draft.discount_total]
    assert all(type(a) is Decimal for a in amounts)
    # Everything adds up to Amazon's own OrderTotal.
    subtotal = sum(x.unit_price * x.quantity for x in draft.lines)
    total = subtotal + draft.shipping_total + draft.tax_total - draft.discount_total
    assert total == Decimal(an_order()["OrderTotal"]["Amount"])

    consignee = draft.consignee
    assert (consignee.name, consignee.phone) == ("Jane Doe", "+1 206-555-0100")
    assert consignee.address.line1 == "410 Terry Ave N"
    assert consignee.address.line2 == "Floor 3, Suite 300"
    assert consignee.address.city == "Seattle"
    assert consignee.address.region == "WA"
    assert consignee.address.postcode == "98109-5210"
    assert consignee.address.country == "US"
    assert draft.customer is not None
    assert draft.customer.email == "5vtm9c2hl2qxq4c@marketplace.amazon.com"
    assert draft.customer.name == "Jane Doe"


def test_a_line_total_that_does_not_divide_keeps_amazons_total() -> None:
    # 10.00 for three: no unit price in cents makes 10.00, so two lines do.
    [parsed] = [parse(an_order(), [an_item("SKU-C", 3, "10.00")])]
    lines = [(x.sku, x.quantity, x.unit_price) for x in parsed.draft.lines]
    assert lines == [("SKU-C", 2, Decimal("3.33")), ("SKU-C", 1, Decimal("3.34"))]
    assert sum(x.unit_price * x.quantity for x in parsed.draft.lines) == Decimal("10.00")


def test_a_fully_cancelled_item_is_left_out() -> None:
    items = [*first_items(), an_item("SKU-C", 0, "0.00", asin="B09ZZZZZZZ")]
    assert [x.sku for x in parse(an_order(), items).draft.lines] == ["SKU-A", "SKU-B"]


def test_a_canceled_order_cancels() -> None:
    items = [an_item(quantity=0, price="0.00")]
    parsed = parse(an_order(status="Canceled"), items)
    assert parsed.cancelled is True
    assert parsed.channel_status == "Canceled"
    assert parsed.hold is None


@pytest.mark.parametrize("status", ["Pending", "PendingAvailability"])
def test_an_unpaid_order_is_held_without_prices(status: str) -> None:
    order = a_pending_order()
    order["OrderStatus"] = status
    parsed = parse(order, [an_item(price=None, quantity=1)])

    assert parsed.hold is not None and status in parsed.hold
    assert "not yet paid" in parsed.hold
    assert parsed.cancelled is False
    assert parsed.channel_status == status
    [line] = parsed.draft.lines
    assert (line.sku, line.quantity, line.unit_price) == ("SKU-A", 1, None)  # hub prices it
    assert parsed.draft.currency == "USD"  # from the marketplace: there is no amount at all
    assert parsed.draft.consignee.name is None  # Amazon gives no address before payment
    assert parsed.draft.customer is None
    assert parsed.draft.shipping_total == parsed.draft.tax_total == Decimal(0)


def test_the_currency_comes_from_the_amounts_first() -> None:
    order = an_order(OrderTotal=money("52.53", "CAD"), MarketplaceId=CA)
    assert parse(order, first_items()).draft.currency == "CAD"
    order = a_pending_order()
    order["MarketplaceId"] = "A1F83G8C2ARO7P"  # amazon.co.uk
    assert parse(order, [an_item(price=None)]).draft.currency == "GBP"


def test_an_address_without_restricted_data_keeps_what_amazon_gives() -> None:
    # Without a Restricted Data Token getOrders sends only these four fields.
    partial = {"StateOrRegion": "TN", "PostalCode": "37064-4738", "City": "FRANKLIN"}
    order = an_order(ShippingAddress={**partial, "CountryCode": "US"})
    del order["BuyerInfo"]
    consignee = parse(order, first_items()).draft.consignee
    assert (consignee.name, consignee.phone, consignee.address.line1) == (None, None, None)
    assert consignee.address.city == "FRANKLIN"
    assert (consignee.address.region, consignee.address.postcode) == ("TN", "37064-4738")
    assert consignee.address.country == "US"


def test_buyer_info_is_often_restricted_and_then_absent() -> None:
    assert parse(an_order(BuyerInfo={}), first_items()).draft.customer is None
    order = an_order()
    del order["BuyerInfo"]
    assert parse(order, first_items()).draft.customer is None


def test_money_never_passes_through_float() -> None:
    body = json.dumps({"order": an_order(), "items": first_items()})
    body = body.replace('"Amount": "25.50"', '"Amount": 25.50000000000000000001')
    [parsed] = AmazonChannel(settings()).parse("order", body.encode())
    assert parsed.draft.lines[1].unit_price == Decimal("25.50000000000000000001")


@pytest.mark.parametrize("field", ["AmazonOrderId", "LastUpdateDate", "OrderStatus"])
def test_a_missing_order_field_is_named(field: str) -> None:
    order = an_order()
    del order[field]
    with pytest.raises(PayloadError, match=f"order.{field}"):
        parse(order, first_items())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"QuantityOrdered": "2"}, r"items\[1\]\.QuantityOrdered"),
        ({"QuantityOrdered": -1}, r"items\[1\]\.QuantityOrdered"),
        ({"ASIN": None}, r"items\[1\]\.ASIN"),
        ({"ItemPrice": money("twenty")}, r"items\[1\]\.ItemPrice\.Amount"),
        ({"ItemPrice": "25.50"}, r"items\[1\]\.ItemPrice"),
        ({"ItemTax": money("-")}, r"items\[1\]\.ItemTax\.Amount"),
    ],
)
def test_a_malformed_item_is_named(change: dict[str, Any], named: str) -> None:
    items = copy.deepcopy(first_items())
    items[1].update(change)
    with pytest.raises(PayloadError, match=named):
        parse(an_order(), items)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"LastUpdateDate": "yesterday"}, "order.LastUpdateDate"),
        ({"ShippingAddress": "410 Terry Ave N"}, "order.ShippingAddress"),
        ({"OrderTotal": None, "MarketplaceId": "A0UNKNOWN"}, "CurrencyCode"),
    ],
)
def test_a_malformed_order_is_named(change: dict[str, Any], named: str) -> None:
    with pytest.raises(PayloadError, match=named):
        parse(an_order(**change), [an_item(price=None)])


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"order": []}', b'{"order": {}, "items": {}}', b"\xff\xfe"],
)
def test_a_body_that_is_not_a_stored_order_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadError):
        AmazonChannel(settings()).parse("order", body)


# --- fulfilled by Amazon, cash on delivery, gift wrap, buyer cancellation ----------------------

JP = "A1VC38T7YXB528"
FOURTH = "114-9317425-6043401"


def an_afn_order(
    order_id: str = FOURTH, status: str = "Unshipped", updated: str = "2024-03-05T11:31:17Z"
) -> dict[str, Any]:
    """An order Amazon fulfils from its own warehouses (FBA), as getOrders returns it: Prime,
    FulfillmentChannel AFN, no ship-by commitment of the seller."""
    shipped = status in ("Shipped", "InvoiceUnconfirmed")
    order = an_order(
        order_id,
        status,
        updated,
        FulfillmentChannel="AFN",
        ShipServiceLevel="Expedited",
        ShipmentServiceLevelCategory="Expedited",
        OrderTotal=money("199.50"),
        NumberOfItemsShipped=50 if shipped else 0,
        NumberOfItemsUnshipped=0 if shipped else 50,
        IsPrime=True,
    )
    return order


def afn_items() -> list[dict[str, Any]]:
    """Fifty SKU-C for 199.50: more than the hub has in stock (ten)."""
    return [an_item("SKU-C", 50, "199.50", asin="B0BZ7Q2M9K", item_id="30583462581741")]


def jpy(amount: str) -> dict[str, str]:
    return money(amount, "JPY")


def a_cod_order() -> dict[str, Any]:
    """A cash-on-delivery order on amazon.co.jp: PaymentMethod COD, the fee on its item."""
    return an_order(
        "503-5327291-1920644",
        MarketplaceId=JP,
        SalesChannel="Amazon.co.jp",
        PaymentMethod="COD",
        PaymentMethodDetails=["COD"],
        OrderTotal=jpy("4610.00"),
        ShippingAddress={
            "StateOrRegion": "東京都",
            "PostalCode": "153-0064",
            "City": "目黒区",
            "CountryCode": "JP",
        },
    )


def a_cod_item() -> dict[str, Any]:
    """An OrderItem shaped as the getOrderItems example of the Orders v0 model: points,
    scheduled delivery, CODFee / CODFeeDiscount, and the gift fields in BuyerInfo."""
    return {
        "ASIN": "BT0093TELA",
        "OrderItemId": "68828574383266",
        "SellerSKU": "SKU-A",
        "Title": "Alpha multi-tool, stainless",
        "QuantityOrdered": 1,
        "QuantityShipped": 0,
        "PointsGranted": {"PointsNumber": 39, "PointsMonetaryValue": jpy("39.00")},
        "ItemPrice": jpy("3980.00"),
        "ShippingPrice": jpy("350.00"),
        "ItemTax": jpy("0.00"),
        "ScheduledDeliveryEndDate": "2024-03-07T12:00:00Z",
        "ScheduledDeliveryStartDate": "2024-03-07T00:00:00Z",
        "CODFee": jpy("330.00"),
        "CODFeeDiscount": jpy("50.00"),
        "PriceDesignation": "BusinessPrice",
        "IsGift": "false",
    }


def gift_wrapped_items() -> list[dict[str, Any]]:
    """FIRST's items with the first one gift wrapped: the price and its tax are in the
    item's BuyerInfo (ItemBuyerInfo), beside the gift message."""
    items = first_items()
    items[0]["IsGift"] = "true"
    items[0]["BuyerInfo"] = {
        "GiftMessageText": "For you!",
        "GiftWrapPrice": money("3.99"),
        "GiftWrapTax": money("0.32"),
        "GiftWrapLevel": "Classic",
    }
    return items


def cancel_requested(items: list[dict[str, Any]], reason: str = "Found cheaper somewhere else."):
    """The items with the buyer's cancellation request on the first, as Amazon writes it."""
    items[0]["BuyerRequestedCancel"] = {
        "IsBuyerRequestedCancel": "true",
        "BuyerCancelReason": reason,
    }
    return items


def total_of(parsed: ChannelOrder) -> Decimal:
    d = parsed.draft
    subtotal = sum(x.unit_price * x.quantity for x in d.lines)
    return subtotal + d.shipping_total + d.tax_total + d.fees_total - d.discount_total


def test_an_order_amazon_fulfils_is_marked_fulfilled_by_the_channel() -> None:
    parsed = parse(an_afn_order(), afn_items())
    assert parsed.draft.fulfilled_by_channel is True
    assert parsed.channel_shipped is None  # Unshipped: Amazon has not shipped it yet
    assert parsed.hold is None
    assert total_of(parsed) == Decimal("199.50")

    mfn = parse(an_order(), first_items())
    assert (mfn.draft.fulfilled_by_channel, mfn.channel_shipped) == (False, None)


@pytest.mark.parametrize(
    ("status", "shipped"),
    [
        ("PartiallyShipped", "partially_shipped"),
        ("Shipped", "shipped"),
        ("InvoiceUnconfirmed", "shipped"),
        ("Unshipped", None),
    ],
)
def test_amazons_shipping_of_its_own_orders_is_followed(status: str, shipped: str | None) -> None:
    assert parse(an_afn_order(status=status), afn_items()).channel_shipped == shipped
    # The seller's own orders ship through the hub: Amazon's status never ships them.
    assert parse(an_order(status=status), first_items()).channel_shipped is None


def test_an_order_amazon_cannot_fulfil_is_held() -> None:
    parsed = parse(an_afn_order(status="Unfulfillable"), afn_items())
    assert parsed.hold is not None and "Unfulfillable" in parsed.hold


def test_the_cod_fee_and_its_discount_count_in_the_total() -> None:
    parsed = parse(a_cod_order(), [a_cod_item()])

    assert parsed.draft.currency == "JPY"
    assert parsed.draft.fees_total == Decimal("330.00")  # the COD fee
    assert parsed.draft.discount_total == Decimal("50.00")  # its discount
    assert parsed.draft.shipping_total == Decimal("350.00")
    assert total_of(parsed) == Decimal(a_cod_order()["OrderTotal"]["Amount"])


def test_gift_wrap_and_its_tax_count_in_the_total() -> None:
    parsed = parse(an_order(OrderTotal=money("56.84")), gift_wrapped_items())

    assert parsed.draft.fees_total == Decimal("3.99")  # the gift wrap
    assert parsed.draft.tax_total == Decimal("4.36")  # 4.04 and the gift wrap's 0.32
    assert total_of(parsed) == Decimal("56.84")


def test_a_buyers_cancellation_request_holds_the_order_with_the_reason() -> None:
    parsed = parse(an_order(), cancel_requested(first_items()))

    assert parsed.hold is not None
    assert "buyer asked to cancel (Found cheaper somewhere else.)" in parsed.hold
    assert parsed.cancelled is False


def test_a_cancellation_request_without_a_reason_still_holds() -> None:
    items = cancel_requested(first_items())
    del items[0]["BuyerRequestedCancel"]["BuyerCancelReason"]
    hold = parse(an_order(), items).hold
    assert hold is not None and hold.startswith("Amazon: the buyer asked to cancel;")


def test_a_buyers_reason_is_quoted_short_and_printable() -> None:
    items = cancel_requested(first_items(), "changed my mind\u0000\n" + "x" * 900)
    hold = parse(an_order(), items).hold
    assert hold is not None and len(hold) < 400
    assert "\u0000" not in hold and "\n" not in hold


def test_no_cancellation_request_holds_nothing() -> None:
    items = first_items()
    items[0]["BuyerRequestedCancel"] = {"IsBuyerRequestedCancel": "false", "BuyerCancelReason": ""}
    assert parse(an_order(), items).hold is None


def test_amazon_handles_the_cancellation_requests_of_the_orders_it_fulfils() -> None:
    assert parse(an_afn_order(), cancel_requested(afn_items())).hold is None


def test_a_pending_order_with_a_cancellation_request_gives_both_reasons() -> None:
    hold = parse(a_pending_order(), cancel_requested([an_item(price=None, quantity=1)])).hold
    assert hold is not None and "not yet paid" in hold and "asked to cancel" in hold


# --- end to end: polled through the hub ----------------------------------------------------------


@pytest.fixture
def hub_clock() -> dict[str, datetime]:
    """The wall clock of the adapters the hub builds; a test moves it between polls."""
    return {"now": NOW}


@pytest.fixture
def amazon_shop(api, runtime, monkeypatch, waits, hub_clock) -> dict[str, Any]:
    """An Amazon connection made through the API, the in-process worker running, and every
    adapter the hub builds for it on a pinned clock with a sleep that only records."""
    status, connection = api.post(
        "/connections", {"plugin": "amazon", "name": "amazon-us", "settings": settings()}
    )
    assert status == 201, connection
    shown = json.dumps(connection)
    assert REFRESH_TOKEN not in shown and CLIENT_SECRET not in shown
    build = runtime.channel_adapter

    def adapter_for(row: Any) -> Any:
        adapter = build(row)
        if isinstance(adapter, AmazonChannel):
            adapter.now = lambda: hub_clock["now"]
            adapter.http.sleep = waits.append
        return adapter

    monkeypatch.setattr(runtime, "channel_adapter", adapter_for)
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def poll(runtime: Any, connection: dict[str, Any], fake_amazon: Any) -> dict[str, Any]:
    """One poll_channel run against Amazon as ``fake_amazon`` registers it, then the ingest
    jobs drained."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as fake:
        fake.post(TOKEN_URL, json=token_answer())
        fake_amazon(fake)
        result = poll_channel(runtime, connection["id"])
    runtime.jobs.join()
    return result


def amazon_orders(api: Any) -> dict[str, dict[str, Any]]:
    status, found = api.get("/orders?channel=amazon&per_page=100")
    assert status == 200, found
    return {o["external_id"]: o for o in found["items"]}


def reserved(api: Any, sku: str) -> int:
    _, stock = api.get(f"/stock?sku={sku}")
    return sum(item["reserved"] for item in stock["items"])


def three_orders(fake: responses.RequestsMock, pending: dict[str, Any] | None = None) -> None:
    """FIRST (Unshipped) and SECOND (Pending, or ``pending`` instead) on the first page,
    THIRD on the NextToken page; FIRST's items paged, SECOND's throttled once."""
    second = pending or a_pending_order(SECOND)
    fake.get(
        ORDERS_URL,
        json=orders_page([an_order(FIRST), second], NEXT_ORDERS),
        match=[matchers.query_param_matcher({"MaxResultsPerPage": "100"}, strict_match=False)],
    )
    fake.get(
        ORDERS_URL,
        json=orders_page([an_order(THIRD, updated="2024-03-05T11:41:10Z")]),
        match=[matchers.query_param_matcher({"NextToken": NEXT_ORDERS}, strict_match=False)],
    )
    fake.get(
        items_url(FIRST),
        json=items_page(FIRST, first_items()[:1], NEXT_ITEMS),
        match=[matchers.query_string_matcher("")],
    )
    fake.get(
        items_url(FIRST),
        json=items_page(FIRST, first_items()[1:]),
        match=[matchers.query_param_matcher({"NextToken": NEXT_ITEMS})],
    )
    if pending is None:
        fake.get(items_url(SECOND), status=429, json=QUOTA_EXCEEDED)
        fake.get(items_url(SECOND), json=items_page(SECOND, [an_item(price=None, quantity=1)]))
    else:
        fake.get(items_url(SECOND), json=items_page(SECOND, priced_second_items()))
    fake.get(items_url(THIRD), json=items_page(THIRD, [an_item("SKU-C", 3, "11.97")]))


def priced_second_items() -> list[dict[str, Any]]:
    return [an_item("SKU-A", 1, "9.50", ShippingPrice="3.99", ItemTax="0.76")]


def test_polled_orders_become_hub_orders_with_reserved_stock(api, runtime, amazon_shop, waits):
    # When the hub polls Amazon (two pages of orders, one items request throttled)
    result = poll(runtime, amazon_shop, three_orders)

    # Then every order is stored once, and the cursor moves to the window's end
    assert (result["stored"], result["duplicates"], result["error"]) == (3, 0, None)
    assert result["cursor"] == WINDOW_END
    _, listed = api.get(f"/connections/{amazon_shop['id']}")
    assert listed["cursor"] == WINDOW_END and listed["last_poll_error"] is None
    assert len(waits) == 1  # the throttled request was retried after a backoff

    # And each Amazon order is one hub order with Amazon's lines, money and address
    found = amazon_orders(api)
    assert set(found) == {FIRST, SECOND, THIRD}
    first = found[FIRST]
    assert first["status"] == "confirmed" and first["channel_hold"] is None
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in first["lines"]] == [
        ("SKU-A", 2, "10.00"),
        ("SKU-B", 1, "25.50"),
    ]
    assert (first["shipping_total"], first["tax_total"], first["discount_total"]) == (
        "4.99",
        "4.04",
        "2.00",
    )
    assert first["total"] == "52.53" and first["currency"] == "USD"
    assert first["consignee"]["name"] == "Jane Doe"
    assert first["consignee"]["address"] == {
        "line1": "410 Terry Ave N",
        "line2": "Floor 3, Suite 300",
        "city": "Seattle",
        "region": "WA",
        "postcode": "98109-5210",
        "country": "US",
    }
    assert first["customer"]["email"] == "5vtm9c2hl2qxq4c@marketplace.amazon.com"
    third = found[THIRD]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in third["lines"]] == [
        ("SKU-C", 3, "3.99")
    ]

    # And the Pending one is held, priced from the catalogue until Amazon prices it
    second = found[SECOND]
    assert second["status"] == "held"
    assert "Pending" in second["channel_hold"]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in second["lines"]] == [
        ("SKU-A", 1, "10.00")
    ]

    # And stock is reserved for all three, the held one included
    assert (reserved(api, "SKU-A"), reserved(api, "SKU-B"), reserved(api, "SKU-C")) == (3, 1, 3)


def test_polling_the_same_orders_again_creates_nothing(api, runtime, amazon_shop, hub_clock):
    poll(runtime, amazon_shop, three_orders)
    before = amazon_orders(api)

    # When a later poll gets the same statements (Amazon's windows share their boundary)
    hub_clock["now"] = NOW + timedelta(minutes=10)
    result = poll(runtime, amazon_shop, three_orders)

    # Then they are duplicates: no inbox entry, no order, no stock moved
    assert (result["stored"], result["duplicates"]) == (0, 3)
    assert result["cursor"] == "2024-03-05T12:08:00Z"
    assert amazon_orders(api) == before
    _, inbox = api.get(f"/inbox?connection={amazon_shop['id']}")
    assert inbox["total"] == 3
    assert (reserved(api, "SKU-A"), reserved(api, "SKU-B"), reserved(api, "SKU-C")) == (3, 1, 3)


def test_a_pending_order_polled_again_once_paid_takes_amazons_prices(
    api, runtime, amazon_shop, hub_clock
):
    poll(runtime, amazon_shop, three_orders)

    # When Amazon has taken the payment: the order is Unshipped, priced, with an address
    paid = an_order(SECOND, "Unshipped", "2024-03-05T12:04:40Z", OrderTotal=money("14.25"))
    hub_clock["now"] = NOW + timedelta(minutes=10)
    result = poll(runtime, amazon_shop, lambda fake: three_orders(fake, pending=paid))

    # Then that new statement is stored and the order released with Amazon's prices
    assert (result["stored"], result["duplicates"]) == (1, 2)
    second = amazon_orders(api)[SECOND]
    assert second["channel_hold"] is None
    assert second["status"] == "confirmed"
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in second["lines"]] == [
        ("SKU-A", 1, "9.50")
    ]
    assert second["consignee"]["name"] == "Jane Doe"
    assert reserved(api, "SKU-A") == 3  # the same unit stays reserved, not a second one


def test_a_pending_order_takes_amazons_totals_once_priced(api, runtime, amazon_shop, hub_clock):
    poll(runtime, amazon_shop, three_orders)

    paid = an_order(SECOND, "Unshipped", "2024-03-05T12:04:40Z", OrderTotal=money("14.25"))
    hub_clock["now"] = NOW + timedelta(minutes=10)
    poll(runtime, amazon_shop, lambda fake: three_orders(fake, pending=paid))

    # Shipping and tax arrive with the priced statement; the order's total is Amazon's.
    second = amazon_orders(api)[SECOND]
    assert (second["shipping_total"], second["tax_total"]) == ("3.99", "0.76")
    assert second["total"] == "14.25"


def test_a_refused_login_is_recorded_on_the_connection_and_keeps_the_cursor(
    api, runtime, amazon_shop
):
    with responses.RequestsMock() as fake:
        fake.post(TOKEN_URL, status=400, json=INVALID_GRANT)
        result = poll_channel(runtime, amazon_shop["id"])

    assert result["stored"] == 0 and "invalid_grant" in result["error"]
    _, listed = api.get(f"/connections/{amazon_shop['id']}")
    assert listed["cursor"] is None
    assert "re-authorise" in listed["last_poll_error"]
    assert REFRESH_TOKEN not in listed["last_poll_error"]
    assert amazon_orders(api) == {}


# --- end to end: Amazon's own fulfilment, fees and cancellation requests -----------------------


def afn_poll(fake: responses.RequestsMock, status: str = "Unshipped", updated: str | None = None):
    """One page: FIRST (the seller's) and FOURTH (Amazon's own) with their items."""
    afn = an_afn_order(status=status, updated=updated or "2024-03-05T11:31:17Z")
    fake.get(ORDERS_URL, json=orders_page([an_order(FIRST), afn]))
    fake.get(items_url(FIRST), json=items_page(FIRST, first_items()))
    fake.get(items_url(FOURTH), json=items_page(FOURTH, afn_items()))


def on_hand(api: Any, sku: str) -> int:
    _, stock = api.get(f"/stock?sku={sku}")
    return sum(item["on_hand"] for item in stock["items"])


def test_an_order_amazon_fulfils_is_recorded_but_reserves_and_ships_nothing(
    api, runtime, amazon_shop, hub_clock
):
    # When the poll brings an order Amazon fulfils: 50 SKU-C, of which the hub has 10
    poll(runtime, amazon_shop, afn_poll)

    # Then it is recorded as Amazon's, confirmed, with none of the hub's stock reserved
    found = amazon_orders(api)
    afn, number = found[FOURTH], found[FOURTH]["number"]
    assert afn["fulfilled_by_channel"] is True and found[FIRST]["fulfilled_by_channel"] is False
    assert (afn["status"], afn["type"], afn["total"]) == ("confirmed", "normal", "199.50")
    assert afn["created_by"] == "channel:amazon-us"
    assert reserved(api, "SKU-C") == 0 and on_hand(api, "SKU-C") == 10
    assert reserved(api, "SKU-A") == 2  # the seller's own order reserves as before
    reasons = [h["reason"] for h in api.get(f"/orders/{number}/history")[1]["items"]]
    assert "fulfilled by the sales channel from its own stock" in reasons

    # And it counts in sales
    _, stats = api.get("/orders/stats?from=2024-03-01T00:00:00Z&to=2024-04-01T00:00:00Z")
    assert stats["by_channel"] == [
        {"key": "amazon", "currency": "USD", "count": 2, "amount": "252.03"}
    ]

    # But it is no work: not in the work queue, and apart from what the hub ships
    _, queue = api.get("/orders?sort=queue")
    assert [o["external_id"] for o in queue["items"]] == [FIRST]
    _, by_channel = api.get("/orders?fulfilled_by=channel")
    assert [o["number"] for o in by_channel["items"]] == [number]
    _, by_hub = api.get("/orders?fulfilled_by=hub")
    assert number not in [o["number"] for o in by_hub["items"]]

    # And the hub refuses to ship, split or merge it
    status, body = api.post(f"/orders/{number}/shipments", {})
    assert status == 409, body
    assert "fulfils it from its own stock" in body["error"]["message"]
    status, body = api.post(f"/orders/{number}/split", {"lines": [{"sku": "SKU-C", "quantity": 1}]})
    assert status == 409, body
    status, body = api.post("/orders/merge", {"numbers": [found[FIRST]["number"], number]})
    assert status == 409, body


def test_an_order_amazon_fulfils_follows_amazons_status(api, runtime, amazon_shop, hub_clock):
    poll(runtime, amazon_shop, afn_poll)

    # When Amazon reports it shipped
    hub_clock["now"] = NOW + timedelta(minutes=10)
    poll(runtime, amazon_shop, lambda fake: afn_poll(fake, "Shipped", "2024-03-05T12:03:09Z"))

    # Then the hub's order is shipped, without any stock of the hub moving
    afn = amazon_orders(api)[FOURTH]
    assert afn["status"] == "shipped"
    history = api.get(f"/orders/{afn['number']}/history")[1]["items"]
    assert ("shipped_by_channel", "confirmed", "shipped") in [
        (h["action"], h["from"], h["to"]) for h in history
    ]
    assert (
        history[-1]["reason"] == "the sales channel reports it shipped (Shipped) from its own stock"
    )
    assert (reserved(api, "SKU-C"), on_hand(api, "SKU-C")) == (0, 10)
    _, shipments = api.get(f"/shipments?order={afn['number']}")
    assert shipments["total"] == 0


def test_an_order_amazon_shipped_before_the_first_poll_comes_in_shipped(api, runtime, amazon_shop):
    poll(runtime, amazon_shop, lambda fake: afn_poll(fake, "Shipped"))

    afn = amazon_orders(api)[FOURTH]
    assert afn["status"] == "shipped"
    assert reserved(api, "SKU-C") == 0


def test_an_order_with_a_cod_fee_and_gift_wrap_totals_as_amazon_says(api, runtime, amazon_shop):
    wrapped = an_order(FIRST, OrderTotal=money("56.84"))

    def fake_amazon(fake: responses.RequestsMock) -> None:
        fake.get(ORDERS_URL, json=orders_page([wrapped]))
        fake.get(items_url(FIRST), json=items_page(FIRST, gift_wrapped_items()))

    poll(runtime, amazon_shop, fake_amazon)

    first = amazon_orders(api)[FIRST]
    assert (first["fees_total"], first["tax_total"]) == ("3.99", "4.36")
    assert first["total"] == wrapped["OrderTotal"]["Amount"]


def test_a_cancellation_request_holds_the_order_until_amazon_cancels_it(
    api, runtime, amazon_shop, hub_clock
):
    def requested(fake: responses.RequestsMock) -> None:
        fake.get(ORDERS_URL, json=orders_page([an_order(FIRST)]))
        fake.get(items_url(FIRST), json=items_page(FIRST, cancel_requested(first_items())))

    poll(runtime, amazon_shop, requested)

    # The order is held for a person, with the buyer's reason; it cannot ship
    first = amazon_orders(api)[FIRST]
    assert first["status"] == "held"
    assert "Found cheaper somewhere else." in first["hold_reason"]
    assert first["channel_hold"] == first["hold_reason"]
    assert reserved(api, "SKU-A") == 2
    status, body = api.post(f"/orders/{first['number']}/shipments", {})
    assert status == 409, body

    # When the seller cancels it on Amazon, the hub cancels it and frees the stock
    cancelled = an_order(FIRST, "Canceled", "2024-03-05T12:05:00Z")
    hub_clock["now"] = NOW + timedelta(minutes=10)

    def cancelled_on_amazon(fake: responses.RequestsMock) -> None:
        fake.get(ORDERS_URL, json=orders_page([cancelled]))
        fake.get(items_url(FIRST), json=items_page(FIRST, cancel_requested(first_items())))

    poll(runtime, amazon_shop, cancelled_on_amazon)
    assert amazon_orders(api)[FIRST]["status"] == "cancelled"
    assert reserved(api, "SKU-A") == 0
