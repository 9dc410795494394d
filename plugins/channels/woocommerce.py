"""The ``woocommerce`` channel: orders pushed by a WooCommerce store's webhooks.

Set up in WooCommerce (Settings → Advanced → Webhooks) one webhook per topic,
``order.created`` and ``order.updated``, API version "WP REST API Integration v3", delivery URL
= the connection's webhook URL, and the same secret as the connection's ``secret`` setting.

How a delivery is handled, and why:

* **Signature.** ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(secret, raw body)). It is
  checked over the bytes exactly as received: WooCommerce writes "/" as "\\/" in its JSON, so a
  re-serialised body would never match. During a secret rotation ``previous_secret`` is also
  accepted.
* **Creation ping.** When a webhook is saved, WooCommerce posts an unsigned form body
  ``webhook_id=<id>`` with no ``X-WC-Webhook-*`` headers and disables the webhook unless it
  gets a 2xx. Exactly that shape passes ``verify`` and ``delivery`` returns None (acknowledged,
  nothing stored); any other unsigned request is refused.
* **De-duplication.** ``X-WC-Webhook-Delivery-ID`` is new on every attempt, so it cannot
  recognise a repeat. The key is (order ``id``, ``date_modified_gmt``, store URL from
  ``X-WC-Webhook-Source``): the same snapshot of the same order is stored once, whichever
  topic carried it.
* **Topics.** ``order.created`` and ``order.updated`` are stored; any other topic (e.g.
  ``order.deleted``, ``order.restored``, ``action.*``) is acknowledged and dropped.
* **Status.** Only ``cancelled`` cancels the hub order. ``refunded`` is not a cancellation
  (the goods may have shipped and come back) and ``failed`` is not final (the customer can pay
  again and WooCommerce moves the order on to ``processing``); both, like every status, are
  passed on as ``channel_status``. Unpaid orders (``pending``, ``on-hold``, ``failed``) arrive
  with ``paid_at`` = None.
* **No retries, so also polling.** WooCommerce never re-sends a failed delivery and disables
  a webhook after repeated failures, so a connection with REST API keys (WooCommerce →
  Settings → Advanced → REST API, a *Read* key: ``consumer_key`` / ``consumer_secret``) is
  also polled: ``GET /wp-json/wc/v3/orders?modified_after=…`` page by page, over HTTPS with the
  keys as Basic auth. Each order found is stored under exactly the key its webhook delivery
  gets (``store_url`` stands in for ``X-WC-Webhook-Source``, so set it to the site URL
  WooCommerce sends there), so an order snapshot seen both ways is stored once. A connection
  without the keys still declares polling and each poll fails saying which settings are
  missing: a standing reminder that its lost deliveries are not being caught. Pages are ordered
  by id, not by modification time: an order modified while the poll pages through then stays
  where it was instead of shifting every later order back a place and making the poll skip
  one. The cursor is the newest ``date_modified_gmt`` seen, and each poll starts a few minutes
  before it (``modified_after`` is exclusive and an order can change while a poll runs); the
  overlap only brings duplicates, which the inbox ignores.
* **Prices and totals.** A line's ``price`` is *after* its coupon while ``discount_total`` is
  that same coupon, so reading both would take every coupon off twice. Lines are priced from
  ``subtotal`` (before coupons, without tax), the coupons are the order's discount, and the
  order's total is made to be WooCommerce's ``total`` (see ``_charges``: fees, and a rounding
  rest with tax-inclusive prices). Names and other text for people arrive with HTML entities
  ("Hoodie &ndash; Blue") and are decoded.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar

from hub import hookimpl
from hub.core.adapters import (
    ChannelAdapter,
    ChannelOrder,
    Delivery,
    InboundRequest,
    PayloadError,
    PollPage,
    Pulled,
)
from hub.core.http import BusinessError, HttpError
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._fields import Fields, split_total, utc_time
from plugins.channels._signing import signature_matches

ORDER_TOPICS = frozenset({"order.created", "order.updated"})
# WooCommerce statuses that mean the order will not be fulfilled; see the module docstring.
CANCELLED_STATUSES = frozenset({"cancelled"})
ORDERS_PATH = "/wp-json/wc/v3/orders"
# The topic a polled order is stored under: the snapshot of an order as it is now, which is
# what an order.updated webhook carries.
POLLED_TOPIC = "order.updated"
PER_PAGE = 100  # the most WooCommerce gives in one page
# The first poll of a connection looks back this far; later ones start at the cursor.
FIRST_LOOKBACK = timedelta(days=1)
# Each poll starts this long before its cursor; see the module docstring.
OVERLAP = timedelta(minutes=5)
CURSOR_FORMAT = "%Y-%m-%dT%H:%M:%S"
UNIT_PRICE_PLACES = 4  # what the hub stores
SHIPPING_METHOD_LENGTH = 100  # orders.shipping_method

logger = logging.getLogger("orderhub.channels.woocommerce")

_PING_BODY = re.compile(rb"webhook_id=[0-9]+")
_FORM = "application/x-www-form-urlencoded"


class WooCommerceChannel(ChannelAdapter):
    """A WooCommerce store sending ``order.created`` / ``order.updated`` webhooks (REST v3),
    and polled through the REST API for what the webhooks lost."""

    name = "woocommerce"
    title = "WooCommerce (webhooks, reconciled by polling)"
    capabilities = frozenset({"push", "pull"})
    secret_settings = ("secret", "previous_secret", "consumer_key", "consumer_secret")
    outbound_settings = ("store_url",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "minLength": 1},
            "previous_secret": {"type": "string", "minLength": 1},
            "store_url": {"type": "string", "pattern": "^https?://[^/?#]+"},
            # WooCommerce prefixes its keys, which catches the two being swapped.
            "consumer_key": {"type": "string", "pattern": "^ck_[A-Za-z0-9]+$"},
            "consumer_secret": {"type": "string", "pattern": "^cs_[A-Za-z0-9]+$"},
        },
        "required": ["secret"],
        "dependentRequired": {
            "consumer_key": ["consumer_secret", "store_url"],
            "consumer_secret": ["consumer_key", "store_url"],
        },
        "additionalProperties": False,
    }

    # --- receiving ---------------------------------------------------------------------------

    def verify(self, request: InboundRequest) -> bool:
        if _is_ping(request):
            return True
        return signature_matches(
            request.header("X-WC-Webhook-Signature"),
            request.body,
            (self.settings["secret"], self.settings.get("previous_secret")),
        )

    def delivery(self, request: InboundRequest) -> Delivery | None:
        if _is_ping(request):
            return None
        topic = request.header("X-WC-Webhook-Topic").strip().lower()
        if topic not in ORDER_TOPICS:
            return None
        store = request.header("X-WC-Webhook-Source") or self.settings.get("store_url", "")
        return Delivery(self._delivery_key(store, request.body), topic)

    @staticmethod
    def _delivery_key(store: str, body: bytes) -> str:
        """(order id, date_modified_gmt, store URL), from a minimal read of the body.

        A signed body that cannot be read this far is still stored, keyed by its hash, so it
        shows up as rejected in the inbox (and can be replayed) instead of vanishing.
        """
        try:
            data = json.loads(body)
            order_id, modified = data["id"], data["date_modified_gmt"]
            if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not modified:
                raise ValueError("no id or date_modified_gmt")
        except (ValueError, KeyError, TypeError):
            return "body-sha256:" + hashlib.sha256(body).hexdigest()
        # The hub hashes keys longer than its column, so no length check here.
        return f"{order_id}@{modified}@{store.strip().rstrip('/')}"

    # --- reading -----------------------------------------------------------------------------

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        """The one order a webhook body or a polled delivery carries."""
        try:
            data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"woocommerce: body is not JSON: {exc}") from None
        return [self._order(data, "")]

    def _order(self, data: Any, at: str) -> ChannelOrder:
        if not isinstance(data, dict):
            raise PayloadError(f"woocommerce: {at or 'body'}: not an order object")
        order = _Fields(data, self.name, at)
        external_id = order.need_id("id")
        status = order.need_text("status")
        shipping = order.obj_or_empty("shipping")
        billing = order.obj_or_empty("billing")
        order.need("line_items")
        lines = [line for item in order.objects("line_items") for line in _lines(item)]
        charges = _charges(order, lines, external_id)
        return ChannelOrder(
            external_id=external_id,
            event_time=order.need_time("date_modified_gmt"),
            cancelled=status in CANCELLED_STATUSES,
            channel_status=status,
            draft=OrderDraft(
                lines=lines,
                consignee=Consignee(
                    name=shipping.full_name(),
                    phone=shipping.text("phone") or billing.text("phone"),
                    address=Address(
                        line1=shipping.words("address_1"),
                        line2=shipping.words("address_2"),
                        city=shipping.words("city"),
                        region=shipping.text("state"),
                        postcode=shipping.text("postcode"),
                        country=shipping.text("country"),
                    ),
                ),
                customer=CustomerInfo(
                    email=billing.text("email"),
                    name=billing.full_name(),
                    phone=billing.text("phone"),
                ),
                currency=order.need_text("currency"),
                shipping_total=charges.shipping,
                tax_total=charges.tax,
                discount_total=charges.discount,
                shipping_method=_shipping_method(order),
                channel=self.name,
                external_id=external_id,
                external_name=order.text("number") or external_id,
                note=order.words("customer_note"),
                created_at=order.time("date_created_gmt"),
                paid_at=order.time("date_paid_gmt"),
            ),
        )

    # --- polling -----------------------------------------------------------------------------

    def polls(self) -> bool:
        """Only a connection given a REST API key reconciles; a webhook-only one is not polled."""
        return bool(self.settings.get("consumer_key") and self.settings.get("consumer_secret"))

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        """Orders modified since ``cursor`` (a ``date_modified_gmt``), one page per request.

        Every order becomes its own delivery, its body the order's JSON exactly as the list
        carried it and its key the webhook key, so whichever way a snapshot arrives first, the
        other is a duplicate. Paging follows ``X-WP-TotalPages``; the last page carries the
        newest modification time seen (the old cursor when nothing newer came).
        """
        store, auth = self._rest_api()
        since = _read_cursor(cursor) if cursor else _utcnow() - FIRST_LOOKBACK
        newest = since.strftime(CURSOR_FORMAT)
        params: dict[str, Any] = {
            "modified_after": (since - OVERLAP).strftime(CURSOR_FORMAT),
            "dates_are_gmt": "true",
            "orderby": "id",
            "order": "asc",
            "per_page": PER_PAGE,
        }
        page = 1
        while True:
            try:
                response = self.http.request(
                    "GET", store + ORDERS_PATH, params={**params, "page": page}, auth=auth
                )
            except HttpError as err:
                reason = _rest_error_text(err.body)
                if reason:
                    err.message = f"{err.message}: {reason}"
                raise
            try:
                bodies = _json_array_items(response.content)
            except ValueError as exc:
                raise self.http.parse_error(response, f"not a JSON list of orders: {exc}") from None
            deliveries = [Pulled(self._delivery_key(store, b), b, POLLED_TOPIC) for b in bodies]
            for body in bodies:
                newest = max(newest, _modified(body) or newest)
            pages = _total_pages(response.headers.get("X-WP-TotalPages"))
            if page >= pages or not bodies:
                yield PollPage(deliveries, cursor=newest)
                return
            yield PollPage(deliveries)
            page += 1

    def _rest_api(self) -> tuple[str, tuple[str, str]]:
        """The store URL and Basic credentials polling needs, or a clear refusal."""
        store = (self.settings.get("store_url") or "").strip().rstrip("/")
        key, secret = self.settings.get("consumer_key"), self.settings.get("consumer_secret")
        missing = [
            name
            for name, value in (
                ("store_url", store),
                ("consumer_key", key),
                ("consumer_secret", secret),
            )
            if not value
        ]
        if missing:
            raise BusinessError(
                "woocommerce: polling needs the connection settings " + ", ".join(missing)
            )
        if not store.lower().startswith("https://"):
            # Over plain HTTP WooCommerce refuses Basic auth (it wants OAuth 1.0a signatures),
            # and the keys would travel in clear text anyway.
            raise BusinessError("woocommerce: polling needs an https:// store_url")
        return store, (str(key), str(secret))


# --- helpers ---------------------------------------------------------------------------------


def _is_ping(request: InboundRequest) -> bool:
    """WooCommerce's creation ping, and nothing else: the form body, no webhook headers."""
    if any(name.lower().startswith("x-wc-webhook-") for name in request.headers):
        return False
    content_type = request.header("Content-Type").split(";", 1)[0].strip().lower()
    if content_type not in ("", _FORM):
        return False
    return _PING_BODY.fullmatch(request.body) is not None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _gmt(value: str) -> datetime | None:
    """A ``*_gmt`` time (or a saved cursor) as an aware UTC datetime; None if unreadable."""
    try:
        return utc_time(value)
    except ValueError:
        return None


def _read_cursor(cursor: str) -> datetime:
    moment = _gmt(cursor)
    if moment is None:
        raise BusinessError(f"woocommerce: the saved cursor {cursor!r} is not a date-time")
    return moment


def _modified(body: bytes) -> str | None:
    """An order's ``date_modified_gmt`` in the cursor's format, for comparing as text."""
    try:
        value = json.loads(body).get("date_modified_gmt")
    except (ValueError, AttributeError):
        return None
    moment = _gmt(value) if isinstance(value, str) else None
    return moment.strftime(CURSOR_FORMAT) if moment else None


def _total_pages(header: str | None) -> int:
    try:
        return max(1, int(header or 1))
    except ValueError:
        return 1


_WHITESPACE = " \t\n\r"


def _json_array_items(content: bytes) -> list[bytes]:
    """The bytes of each element of a JSON array, exactly as sent (a re-serialisation would
    change the escaping), so each polled order is stored as WooCommerce wrote it."""
    text = content.decode("utf-8")
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    at = _skip(text, 0)
    if text[at : at + 1] != "[":
        raise ValueError("expected a JSON array")
    at = _skip(text, at + 1)
    items: list[bytes] = []
    if text[at : at + 1] == "]":
        at += 1
    else:
        while True:
            _, end = decoder.raw_decode(text, at)
            items.append(text[at:end].encode("utf-8"))
            at = _skip(text, end)
            if text[at : at + 1] == "]":
                at += 1
                break
            if text[at : at + 1] != ",":
                raise ValueError(f"expected ',' or ']' at character {at}")
            at = _skip(text, at + 1)
    if _skip(text, at) != len(text):
        raise ValueError(f"extra data after the array at character {at}")
    return items


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


def _rest_error_text(body: str | None) -> str | None:
    """WooCommerce's REST error, ``{"code", "message", "data": {"status"}}``, as one line."""
    try:
        error = json.loads(body or "")
    except ValueError:
        return None
    if not isinstance(error, dict) or not error.get("code"):
        return None
    return f"{error['code']}: {error.get('message') or 'no message'}"


class _Fields(Fields):
    """WooCommerce's JSON as PHP writes it: "" for an amount never set, ``[]`` for an empty
    object (PHP serialises an empty array that way), and text that people read with HTML
    entities: product and variation names ("Hoodie &ndash; Blue", "Salt &amp; Pepper"),
    shipping method titles, and a lone "<" that WordPress's sanitising turns into "&lt;"."""

    blank_amounts = True

    def obj(self, key: str) -> _Fields | None:
        if self.get(key) == []:
            return self.child({}, key)
        return super().obj(key)

    def words(self, key: str) -> str | None:
        """Text for people, its HTML entities decoded. Identifiers (SKU, status, e-mail,
        currency) are read with ``text``: they are compared, not read."""
        value = self.text(key)
        return (html.unescape(value).strip() or None) if value else None

    def full_name(self) -> str | None:
        parts = (self.words("first_name"), self.words("last_name"))
        return " ".join(p for p in parts if p) or None


def _lines(line: _Fields) -> list[LineItem]:
    """The hub lines of one line item, priced before coupons: ``subtotal`` is the line's
    total before discounts (and without tax), and the coupons become the order's discount
    (``_charges``). ``price``, which is after the coupon, is not read: with the coupon also in
    ``discount_total`` it would take the coupon off twice. A subtotal that does not divide
    into whole cents makes two lines (``split_total``), so the hub's subtotal is exactly
    WooCommerce's."""
    quantity = line.quantity("quantity")
    subtotal = line.decimal("subtotal")  # "" (never set) reads as None too
    if subtotal is None:
        raise line.missing("subtotal")
    if subtotal < 0:
        raise line.fail("subtotal", "a negative line subtotal")
    if -subtotal.as_tuple().exponent > UNIT_PRICE_PLACES:  # type: ignore[operator]
        # Asked with a larger ``dp``: the hub keeps four places.
        subtotal = subtotal.quantize(
            Decimal(1).scaleb(-UNIT_PRICE_PLACES), rounding=ROUND_HALF_EVEN
        )
    # The variation is the thing sold when there is one; WooCommerce sends 0 when there is not.
    product_ref = next(
        (str(v) for v in (line.get("variation_id"), line.get("product_id")) if v and v != "0"),
        None,
    )
    # sku is "" when the product has none and null when it was deleted: the hub then maps
    # channel_product_id instead.
    return [
        LineItem(
            sku=line.text("sku") or "",
            quantity=units,
            unit_price=price,
            name=line.words("name"),
            channel_product_id=product_ref,
        )
        for units, price in split_total(subtotal, quantity)
    ]


@dataclass(frozen=True)
class _Charges:
    shipping: Decimal
    tax: Decimal
    discount: Decimal


def _charges(order: _Fields, lines: list[LineItem], external_id: str) -> _Charges:
    """The order's shipping, tax and discount, such that the hub's total (lines + shipping +
    tax - discount) is WooCommerce's ``total``, which is what the customer paid.

    WooCommerce's own parts: ``shipping_total`` (without tax), ``total_tax`` (every tax: the
    lines' after coupons, shipping's, fees'), ``discount_total`` (the coupons, without tax;
    their tax is already out of ``total_tax``), and ``fee_lines`` (a cash-on-delivery fee, gift
    wrapping; negative for a discount given as a fee). The hub's order has no fee field, so a
    fee counts with the shipping charge and a negative fee with the discount.

    WooCommerce rounds each figure it sends to the store's decimals, so with prices entered
    with tax (and taxes rounded at the subtotal) the parts can add up to a cent or two more or
    less than ``total``; that rest goes to the tax, where the rounding happened (to the
    discount when the tax cannot give it), and a larger one is logged: it means a part this
    plugin does not read."""
    shipping = order.amount("shipping_total")
    tax = order.amount("total_tax")
    discount = order.amount("discount_total")
    for fee in order.objects("fee_lines"):
        amount = fee.amount("total")
        if amount >= 0:
            shipping += amount
        else:
            discount -= amount
    paid = order.decimal("total")
    if paid is None:
        return _Charges(shipping, tax, discount)
    goods = sum(((line.unit_price or Decimal(0)) * line.quantity for line in lines), Decimal(0))
    parts = goods + shipping + tax - discount
    rest = paid - parts
    if rest:
        cent = Decimal("0.01")
        if abs(rest) > cent * (len(lines) + 2):
            logger.warning(
                "woocommerce: order %s: its parts come to %s but its total is %s; the total"
                " is kept",
                external_id,
                parts,
                paid,
            )
        if tax + rest >= 0:
            tax += rest
        else:
            discount -= rest
    return _Charges(shipping, tax, discount)


def _shipping_method(order: _Fields) -> str | None:
    """The shipping methods' titles as the customer chose them ("Flat rate", "Express &amp;
    insured" decoded), for the hub's express rules."""
    titles = [line.words("method_title") for line in order.objects("shipping_lines")]
    joined = ", ".join(dict.fromkeys(t for t in titles if t))
    return joined[:SHIPPING_METHOD_LENGTH] or None


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [WooCommerceChannel]
