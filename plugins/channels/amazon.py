"""The ``amazon`` channel: orders pulled from Amazon's Selling Partner API (Orders v0).

Amazon never pushes an order to us, so this is a pull channel: the worker calls :meth:`poll`
every few minutes and stores what it returns in the inbox, exactly like a webhook delivery.

Setting up a connection
-----------------------
Register an SP-API application in Seller Central (Apps and Services → Develop Apps) with the
"Inventory and Order Tracking" role, self-authorise it for the seller account, and copy:

* ``client_id`` and ``client_secret``: the application's Login with Amazon (LWA) credentials;
* ``refresh_token``: the ``Atzr|…`` token the authorisation gives (it does not expire unless the
  seller revokes the app);
* ``marketplace_ids``: the marketplaces to read, e.g. ``ATVPDKIKX0DER`` (amazon.com),
  ``A2EUQ1WTGCTBG2`` (amazon.ca), ``A1F83G8C2ARO7P`` (amazon.co.uk), ``A1PA6795UKMFR9``
  (amazon.de);
* ``endpoint``: the region the marketplaces belong to, ``https://sellingpartnerapi-na.amazon.com``
  (default), ``-eu`` or ``-fe``.

The buyer's name, address line and phone are restricted data: getOrders returns them only to
an app with the restricted "Direct-to-Consumer Shipping" role and a Restricted Data Token.
Without them Amazon sends only the city, region, postcode and country, and no BuyerInfo; the
plugin reads whatever is there and never treats a missing field as an error.

``client_secret`` and ``refresh_token`` are secrets: the hub stores them encrypted (or as
``{"$env": …}`` references) and never shows them again.

How a poll works, and why
-------------------------
* **Access token.** The refresh token is exchanged at LWA (``token_url``) for an access token,
  sent as ``x-amz-access-token``. The token lives an hour; it is reused until a minute before
  it expires rather than exchanged for every request. A refused exchange (``invalid_grant``:
  the seller revoked the app, or a secret is wrong) or an SP-API 401/403 is an ``AuthError``:
  retrying cannot fix it, someone has to re-authorise.
* **Window.** The cursor is the instant the previous window ended. A poll asks for orders with
  ``LastUpdatedAfter`` = cursor and ``LastUpdatedBefore`` = now - 2 minutes: Amazon documents
  that the window must end at least two minutes in the past, because the newest updates are not
  yet consistent. The first poll reaches back ``first_poll_days`` (default 7). Windows share
  their boundary, so an order updated exactly on it is fetched twice; the second copy has the
  same key and is stored once.
* **Paging.** ``getOrders`` answers 100 orders at most and a ``NextToken`` for the rest; the
  next request sends only ``MarketplaceIds`` and ``NextToken``, as documented. Each order's
  lines come from ``getOrderItems`` (paged the same way). Each page of orders becomes one
  :class:`PollPage`, committed by the hub as it comes; only the last page carries the new
  cursor, so a poll that dies half-way is repeated from the old cursor and its repeats are
  duplicates.
* **Pacing.** getOrders allows 0.0167 requests/s (burst 20) and getOrderItems 0.5/s (burst 30).
  The hub's HTTP client keeps a token bucket per operation and waits for it, and retries a 429
  with backoff, so a busy account slows the poll down instead of failing it.
* **One delivery per order statement.** An order is stored as ``{"order": …, "items": […]}``
  keyed by ``AmazonOrderId:LastUpdateDate``: a new statement of the order (shipped, cancelled)
  is a new delivery, and the hub keeps the newest.
* **Pending orders.** Until the buyer's payment is authorised an order is ``Pending`` and carries
  no prices and no address. It is taken in held (:attr:`ChannelOrder.hold`), so its stock is
  spoken for but nothing ships; lines without a price are priced from the hub's catalogue. Once
  Amazon moves it to ``Unshipped`` its ``LastUpdateDate`` changes, the next poll fetches it again
  with Amazon's prices, and that statement releases the hold.
* **Fulfilled by Amazon.** An order with ``FulfillmentChannel: AFN`` ships from Amazon's own
  warehouses: it is recorded (sales, reports) as fulfilled by the channel, reserves none of
  the hub's stock, is never work to ship, and follows Amazon's status (``Shipped`` and
  ``InvoiceUnconfirmed``: shipped; ``PartiallyShipped``: partially shipped). An AFN order
  Amazon marks ``Unfulfillable`` is held with that reason. ``MFN`` orders are the seller's.
* **Money.** Each order item carries ``ItemPrice`` (the line total), ``ShippingPrice``,
  ``ItemTax``, ``ShippingTax``, ``PromotionDiscount``, ``ShippingDiscount``, the
  cash-on-delivery ``CODFee`` and ``CODFeeDiscount``, and in its ``BuyerInfo`` the gift wrap
  ``GiftWrapPrice`` and ``GiftWrapTax``: shipping, taxes (with gift wrap tax), discounts (with
  the COD fee discount) and fees (COD fee, gift wrap) add up to Amazon's ``OrderTotal``.
* **Buyer asked to cancel.** An item's ``BuyerRequestedCancel`` (``IsBuyerRequestedCancel``
  ``"true"``, with ``BuyerCancelReason``) holds a seller-fulfilled order with the buyer's
  reason, so it is not shipped before someone decides: cancel it in Seller Central (the next
  poll cancels it here) or in the hub. Amazon handles the requests of the orders it fulfils.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from hashlib import sha256
from typing import Any, ClassVar
from urllib.parse import quote

from hub import hookimpl
from hub.core.adapters import ChannelAdapter, ChannelOrder, PayloadError, PollPage, Pulled
from hub.core.http import AuthError, HttpError, RateLimit
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._fields import Fields, split_total, utc_time

DEFAULT_ENDPOINT = "https://sellingpartnerapi-na.amazon.com"
DEFAULT_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
DEFAULT_FIRST_POLL_DAYS = 7

# Amazon: the window must end at least two minutes before the request.
SETTLE = timedelta(minutes=2)
# Renew the access token this long before Amazon says it expires, so a request never leaves
# with a token that dies in flight.
TOKEN_MARGIN = timedelta(minutes=1)
PAGE_SIZE = 100

# The documented default usage plans (requests per second, burst).
GET_ORDERS = RateLimit("getOrders", 0.0167, 20)
GET_ORDER_ITEMS = RateLimit("getOrderItems", 0.5, 30)

# Statuses in which Amazon has not yet taken the buyer's money: the order must not ship.
UNPAID_STATUSES = frozenset({"Pending", "PendingAvailability"})
CANCELLED_STATUSES = frozenset({"Canceled"})
# FulfillmentChannel: "AFN" is fulfilled by Amazon from its stock, "MFN" by the seller.
AMAZON_FULFILS = "AFN"
# How far Amazon has shipped an order it fulfils itself.
CHANNEL_SHIPPED = {
    "PartiallyShipped": "partially_shipped",
    "Shipped": "shipped",
    "InvoiceUnconfirmed": "shipped",  # all shipped; only the seller's invoice is missing
}
# How much of a buyer's cancellation reason a hold quotes.
REASON_CHARS = 200

# A Pending order may carry no amount at all, so its currency comes from where it was sold.
MARKETPLACE_CURRENCIES = {
    "ATVPDKIKX0DER": "USD",  # United States
    "A2EUQ1WTGCTBG2": "CAD",  # Canada
    "A1AM78C64UM0Y8": "MXN",  # Mexico
    "A2Q3Y263D00KWC": "BRL",  # Brazil
    "A1F83G8C2ARO7P": "GBP",  # United Kingdom
    "A1PA6795UKMFR9": "EUR",  # Germany
    "A13V1IB3VIYZZH": "EUR",  # France
    "APJ6JRA9NG5V4": "EUR",  # Italy
    "A1RKKUPIHCS9HS": "EUR",  # Spain
    "A1805IZSGTT6HS": "EUR",  # Netherlands
    "AMEN7PMS3EDWL": "EUR",  # Belgium
    "A2NODRKZP88ZB9": "SEK",  # Sweden
    "A1C3SOZRARQ6R3": "PLN",  # Poland
    "A33AVAJ2PDY3EV": "TRY",  # Turkey
    "A21TJRUUN4KGV": "INR",  # India
    "A1VC38T7YXB528": "JPY",  # Japan
    "A39IBJ37TRP1C6": "AUD",  # Australia
    "A19VAU5U5O7RUS": "SGD",  # Singapore
    "A2VIGQ35RCS4UG": "AED",  # United Arab Emirates
    "A17E79C6D8DWNP": "SAR",  # Saudi Arabia
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AmazonChannel(ChannelAdapter):
    """One seller account on one SP-API region, read through Orders v0. See the module
    docstring for the set-up and for how a poll works."""

    name = "amazon"
    title = "Amazon (Selling Partner API orders)"
    capabilities: ClassVar[frozenset[str]] = frozenset({"pull"})
    secret_settings = ("refresh_token", "client_secret")
    outbound_settings = ("endpoint", "token_url")
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1},
            "refresh_token": {"type": "string", "minLength": 1},
            "marketplace_ids": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[A-Z0-9]+$"},
                "minItems": 1,
                "uniqueItems": True,
            },
            # A credential never travels in clear text, so only https endpoints are accepted.
            "endpoint": {
                "type": "string",
                "pattern": r"^https://[^/?#\s]+/?$",
                "default": DEFAULT_ENDPOINT,
            },
            "token_url": {
                "type": "string",
                "pattern": r"^https://[^?#\s]+$",
                "default": DEFAULT_TOKEN_URL,
            },
            "first_poll_days": {
                "type": "integer",
                "minimum": 1,
                "maximum": 730,  # Amazon keeps two years of orders
                "default": DEFAULT_FIRST_POLL_DAYS,
            },
        },
        "required": ["client_id", "client_secret", "refresh_token", "marketplace_ids"],
        "additionalProperties": False,
    }

    def __init__(self, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        # The wall clock the window is measured from; tests pin it.
        self.now: Callable[[], datetime] = _utcnow
        self._token: str | None = None
        self._token_expires = datetime.min.replace(tzinfo=UTC)

    # --- pulling -----------------------------------------------------------------------------

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        """Orders updated since ``cursor``, one page per getOrders page (see module docstring).

        A window that has not opened yet (the cursor is less than two minutes old) yields one
        empty page that keeps the cursor, so the hub records a poll that found nothing.
        """
        now = self.now()
        end = now - SETTLE
        start = _cursor_time(cursor) if cursor else now - timedelta(days=self._first_poll_days)
        if start >= end:
            yield PollPage([], cursor=cursor)
            return
        window_end = _iso(end)
        marketplaces = ",".join(self.settings["marketplace_ids"])
        params: dict[str, Any] = {
            "MarketplaceIds": marketplaces,
            "LastUpdatedAfter": _iso(start),
            "LastUpdatedBefore": window_end,
            "MaxResultsPerPage": PAGE_SIZE,
        }
        while True:
            orders, token = self._page("/orders/v0/orders", params, GET_ORDERS, "Orders")
            deliveries = [self._pulled(order) for order in orders]
            yield PollPage(deliveries, cursor=None if token else window_end)
            if token is None:
                return
            params = {"MarketplaceIds": marketplaces, "NextToken": token}

    def _pulled(self, order: Any) -> Pulled:
        """One order with all its items, as Amazon stated them, keyed by its statement."""
        order_id = order.get("AmazonOrderId") if isinstance(order, dict) else None
        updated = order.get("LastUpdateDate") if isinstance(order, dict) else None
        if not (isinstance(order_id, str) and order_id and isinstance(updated, str) and updated):
            # Stored anyway, keyed by its hash: parse rejects it by name in the inbox, where it
            # can be seen and replayed, instead of the whole poll failing on every attempt.
            body = _encode({"order": order, "items": []})
            return Pulled("sha256:" + sha256(body).hexdigest(), body, "order")
        path = f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems"
        items: list[Any] = []
        params: dict[str, Any] = {}
        while True:
            page, token = self._page(path, params, GET_ORDER_ITEMS, "OrderItems")
            items.extend(page)
            if token is None:
                break
            params = {"NextToken": token}
        return Pulled(f"{order_id}:{updated}", _encode({"order": order, "items": items}), "order")

    def _page(
        self, path: str, params: Mapping[str, Any], limit: RateLimit, key: str
    ) -> tuple[list[Any], str | None]:
        """One SP-API page: the list under ``payload[key]`` and the NextToken, if any.

        Amounts are decoded as Decimal (Amazon sends them as strings anyway) so nothing passes
        through float on its way to the inbox.
        """
        url = self.settings.get("endpoint", DEFAULT_ENDPOINT).rstrip("/") + path
        token = self._access_token()
        try:
            response = self.http.request(
                "GET",
                url,
                params=dict(params),
                headers={"x-amz-access-token": token, "Accept": "application/json"},
                limit=limit,
            )
        except AuthError as exc:
            self._token = None  # revoked or refused: whoever tries again starts with a new one
            raise exc.reworded(
                kind=AuthError,
                message=f"Amazon SP-API refused the request ({_amazon_errors(exc)}); check that"
                " the app is still authorised for this seller and has the orders role",
            ) from exc
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self.http.parse_error(response, "the body is not JSON") from None
        payload = data.get("payload") if isinstance(data, dict) else None
        found = payload.get(key) if isinstance(payload, dict) else None
        if not isinstance(found, list):
            raise self.http.parse_error(response, f"the answer has no payload.{key} list")
        more = payload.get("NextToken")  # type: ignore[union-attr]
        return found, more if isinstance(more, str) and more else None

    # --- Login with Amazon ---------------------------------------------------------------------

    def _access_token(self) -> str:
        """A current LWA access token, exchanged from the refresh token when the cached one is
        missing or about to expire."""
        now = self.now()
        if self._token is not None and now < self._token_expires:
            return self._token
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.settings["refresh_token"],
            "client_id": self.settings["client_id"],
            "client_secret": self.settings["client_secret"],
        }
        try:
            # Exchanging the refresh token again changes nothing at Amazon, so the POST may be
            # retried like a GET when LWA is busy.
            answer = self.http.json(
                "POST",
                self.settings.get("token_url", DEFAULT_TOKEN_URL),
                data=form,
                headers={"Accept": "application/json"},
                idempotent=True,
            )
        except HttpError as exc:
            if exc.retryable:
                raise  # LWA is down or busy: the poll is tried again later
            raise exc.reworded(
                kind=AuthError,
                message=f"Login with Amazon refused the refresh token ({_lwa_error(exc)});"
                " re-authorise the app in Seller Central and update client_id, client_secret"
                " and refresh_token",
            ) from exc
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("Login with Amazon answered without an access_token")
        lifetime = answer.get("expires_in", 3600)
        seconds = lifetime if isinstance(lifetime, int) and lifetime > 0 else 3600
        self._token = token
        self._token_expires = now + timedelta(seconds=seconds) - TOKEN_MARGIN
        return token

    @property
    def _first_poll_days(self) -> int:
        return int(self.settings.get("first_poll_days", DEFAULT_FIRST_POLL_DAYS))

    # --- reading -------------------------------------------------------------------------------

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        """The one order a stored ``{"order", "items"}`` delivery carries."""
        try:
            data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"amazon: body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("amazon: body is not a JSON object")
        order = data.get("order")
        if not isinstance(order, dict):
            raise PayloadError("amazon: 'order' is missing or not an object")
        items = data.get("items")
        if not isinstance(items, list):
            raise PayloadError("amazon: 'items' is missing or not a list")
        return [_order(order, items)]


# --- mapping Orders v0 -------------------------------------------------------------------------


def _order(data: Mapping[str, Any], items: list[Any]) -> ChannelOrder:
    """Map an Order and its OrderItems; kept apart from I/O so it is tested on plain payloads."""
    order = Fields(data, "amazon", "order")
    external_id = order.need_text("AmazonOrderId")
    status = order.need_text("OrderStatus")
    amazon_fulfils = order.text("FulfillmentChannel") == AMAZON_FULFILS
    lines: list[LineItem] = []
    shipping = tax = discount = fees = Decimal(0)
    currencies: list[str] = []
    cancel_requests: list[str] = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise PayloadError(f"amazon: items[{i}] is not an object")
        item = Fields(raw, "amazon", f"items[{i}]")
        lines.extend(_lines(item))
        # Gift wrap is stated in the item's BuyerInfo (ItemBuyerInfo in the Orders v0 model).
        buyer = item.obj_or_empty("BuyerInfo")
        shipping += _charge(item, "ShippingPrice")
        tax += _charge(item, "ItemTax") + _charge(item, "ShippingTax")
        tax += _charge(buyer, "GiftWrapTax")
        discount += _charge(item, "PromotionDiscount") + _charge(item, "ShippingDiscount")
        discount += _charge(item, "CODFeeDiscount")
        fees += _charge(item, "CODFee") + _charge(buyer, "GiftWrapPrice")
        currencies.extend(c for c in (_currency(item, "ItemPrice"),) if c)
        request = _cancel_request(item)
        if request is not None:
            cancel_requests.append(request)
    currency = (
        _currency(order, "OrderTotal")
        or next(iter(currencies), None)
        or MARKETPLACE_CURRENCIES.get(order.text("MarketplaceId") or "")
    )
    if currency is None:
        raise PayloadError(
            "amazon: order.OrderTotal.CurrencyCode: missing, and neither the items' ItemPrice"
            " nor the MarketplaceId tells the currency"
        )
    holds = []
    if status in UNPAID_STATUSES:
        holds.append(
            f"Amazon order {status}: not yet paid or priced; completed when Amazon confirms it"
        )
    if amazon_fulfils and status == "Unfulfillable":
        holds.append("Amazon order Unfulfillable: Amazon cannot fulfil it from its stock")
    if cancel_requests and not amazon_fulfils:
        said = "; ".join(dict.fromkeys(r for r in cancel_requests if r))
        holds.append(
            "Amazon: the buyer asked to cancel"
            + (f" ({said[:REASON_CHARS]})" if said else "")
            + "; cancel it in Seller Central (the hub follows) or here"
        )
    return ChannelOrder(
        external_id=external_id,
        event_time=order.need_time("LastUpdateDate"),
        cancelled=status in CANCELLED_STATUSES,
        channel_status=status,
        hold="; ".join(holds) or None,
        channel_shipped=CHANNEL_SHIPPED.get(status) if amazon_fulfils else None,
        draft=OrderDraft(
            lines=lines,
            consignee=_consignee(order.obj("ShippingAddress")),
            customer=_customer(order.obj("BuyerInfo")),
            currency=currency,
            shipping_total=shipping,
            tax_total=tax,
            discount_total=discount,
            fees_total=fees,
            channel="amazon",
            external_id=external_id,
            external_name=external_id,
            # Amazon says when an order was placed, never when it was paid: paid_at stays
            # unknown rather than invented.
            created_at=order.time("PurchaseDate"),
            fulfilled_by_channel=amazon_fulfils,
        ),
    )


def _cancel_request(item: Fields) -> str | None:
    """The buyer's reason ("" when none given) when the buyer asked to cancel this item;
    None when not. Orders v0 writes the flag as the string "true" or "false"."""
    request = item.obj("BuyerRequestedCancel")
    if request is None:
        return None
    flag = request.get("IsBuyerRequestedCancel")
    if not (flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")):
        return None
    reason = request.text("BuyerCancelReason") or ""
    # The buyer's own words: kept printable and short, since they become a hold reason.
    return "".join(c for c in reason if c.isprintable()).strip()


def _lines(item: Fields) -> list[LineItem]:
    """The hub lines for one Amazon order item: none when nothing is ordered any more (a
    cancelled item keeps its row with QuantityOrdered 0), usually one, and two when the line
    total does not divide into whole cents: Amazon's ItemPrice is the LINE total, and splitting
    it (e.g. 10.00 for 3 = 2 x 3.33 + 1 x 3.34) keeps the order's total exactly Amazon's."""
    quantity = item.quantity("QuantityOrdered", zero_ok=True)
    asin = item.need_text("ASIN")
    if quantity == 0:
        return []
    sku = item.text("SellerSKU") or ""
    title = item.text("Title")
    total = _money(item, "ItemPrice")

    def line(qty: int, unit: Decimal | None) -> LineItem:
        return LineItem(sku=sku, quantity=qty, unit_price=unit, name=title, channel_product_id=asin)

    if total is None:
        return [line(quantity, None)]
    if total < 0:
        raise item.fail("ItemPrice", f"a negative line total: {total}")
    return [line(qty, unit) for qty, unit in split_total(total, quantity)]


def _consignee(address: Fields | None) -> Consignee:
    """Amazon sends ShippingAddress only once the order is Unshipped or later."""
    if address is None:
        return Consignee()
    line2 = ", ".join(p for p in (address.text("AddressLine2"), address.text("AddressLine3")) if p)
    return Consignee(
        name=address.text("Name"),
        phone=address.text("Phone"),
        address=Address(
            line1=address.text("AddressLine1"),
            line2=line2 or None,
            city=address.text("City"),
            region=address.text("StateOrRegion"),
            postcode=address.text("PostalCode"),
            country=address.text("CountryCode"),
        ),
    )


def _customer(buyer: Fields | None) -> CustomerInfo | None:
    """BuyerInfo is restricted data: usually absent or empty unless the app has the PII role,
    so no buyer is the normal case, not an error."""
    if buyer is None:
        return None
    email, name = buyer.text("BuyerEmail"), buyer.text("BuyerName")
    return CustomerInfo(email=email, name=name) if email or name else None


# --- Money objects ----------------------------------------------------------------------------


def _money(fields: Fields, key: str) -> Decimal | None:
    """A Money object's ``Amount`` as Decimal; None when Amazon gave none (a Pending order's
    ItemPrice), which is not the same as free."""
    money = fields.obj(key)
    return money.decimal("Amount") if money is not None else None


def _charge(fields: Fields, key: str) -> Decimal:
    """A Money amount that counts as zero when absent (no shipping charged, no tax)."""
    value = _money(fields, key)
    return Decimal(0) if value is None else value


def _currency(fields: Fields, key: str) -> str | None:
    """A Money object's ``CurrencyCode``; None when the object is absent (a Pending order)."""
    money = fields.obj(key)
    return money.text("CurrencyCode") if money is not None else None


# --- small helpers -------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """ISO-8601 in UTC to the second, as Amazon writes its own times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cursor_time(cursor: str) -> datetime:
    try:
        return utc_time(cursor)
    except ValueError:
        raise ValueError(f"amazon: the saved cursor is not an ISO-8601 time: {cursor!r}") from None


def _encode(value: Any) -> bytes:
    """Compact JSON for the inbox. Orders v0 writes amounts as strings; a fractional JSON
    number, decoded as Decimal, is kept exact as its digit string rather than made a float."""
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _amazon_errors(exc: HttpError) -> str:
    """Amazon's ``{"errors": [{"code", "message", "details"}]}`` as one readable line."""
    try:
        errors = json.loads(exc.body or "")["errors"]
        said = "; ".join(
            f"{e['code']}: {e['message']}" + (f" ({e['details']})" if e.get("details") else "")
            for e in errors
        )
    except (ValueError, KeyError, TypeError):
        said = ""
    return f"HTTP {exc.status} {said}".strip()


def _lwa_error(exc: HttpError) -> str:
    """LWA's OAuth error body, ``{"error", "error_description"}``, as one readable line."""
    try:
        body = json.loads(exc.body or "")
        said = f"{body['error']}: {body.get('error_description', '')}"
    except (ValueError, KeyError, TypeError):
        said = ""
    return f"HTTP {exc.status} {said}".strip(" :")


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [AmazonChannel]
