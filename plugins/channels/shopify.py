"""The ``shopify`` channel: orders pushed by Shopify webhooks (``orders/create``,
``orders/updated``, ``orders/cancelled``), body = the REST Order resource.

Everything Shopify-specific lives here; the hub only sees the ChannelAdapter contract. The
rules it follows come from Shopify's documentation (see design/CHANNELS.md): the signature is
checked over the raw bytes before anything is parsed, ids stay strings because they can exceed
2**53, and money stays Decimal because a float cannot hold a price exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar

from hub import hookimpl
from hub.core.adapters import ChannelAdapter, ChannelOrder, Delivery, InboundRequest, PayloadError
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._signing import signature_matches

# Shopify's own validator rejects a delivery missing any of these, so the plugin does too:
# a request without them did not come from Shopify, whatever its signature says.
REQUIRED_HEADERS = (
    "X-Shopify-Topic",
    "X-Shopify-Hmac-Sha256",
    "X-Shopify-Shop-Domain",
    "X-Shopify-API-Version",
    "X-Shopify-Webhook-Id",
)

# The topics that change an order. Any other topic the app happens to be subscribed to is
# acknowledged and dropped, so Shopify does not retry it for four hours.
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled"})

T = TypeVar("T")


class ShopifyChannel(ChannelAdapter):
    """One Shopify store (or one app's webhooks) delivering orders by webhook.

    ``previous_secret`` exists for secret rotation: for up to an hour Shopify may sign with
    either the old or the new secret, and a delivery refused in that window would be retried
    and eventually lost. ``shop_domain`` pins the connection to one store, so a second store
    sharing the app's secret cannot inject orders into this one. ``api_version`` records the
    version the subscription was made with; parsing reads the payload defensively and does not
    depend on it.
    """

    name = "shopify"
    title = "Shopify (order webhooks)"
    mode = "push"
    secret_settings = ("secret", "previous_secret")
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "minLength": 1},
            "previous_secret": {"type": "string", "minLength": 1},
            # Shopify always names the store by its myshopify.com domain in the header, never
            # by a custom domain; the pattern catches that mistake when the connection is set
            # up rather than by refusing every delivery later.
            "shop_domain": {
                "type": "string",
                "pattern": r"^[A-Za-z0-9][A-Za-z0-9-]*\.myshopify\.com$",
            },
            "api_version": {"type": "string", "pattern": r"^(\d{4}-\d{2}|unstable)$"},
        },
        "required": ["secret"],
        "additionalProperties": False,
    }

    # --- receiving -------------------------------------------------------------------------

    def verify(self, request: InboundRequest) -> bool:
        """Authentic when every header Shopify always sends is there, the body is not empty,
        the shop is the configured one, and the HMAC matches the current or previous secret.

        Shopify signs as WooCommerce and the storefront do (base64 HMAC-SHA256 of the raw
        body), so the shared constant-time check is used: every configured secret is compared,
        with no early exit, and a non-ASCII header is a mismatch rather than an error.
        """
        if not request.body:
            return False
        if any(not request.header(name).strip() for name in REQUIRED_HEADERS):
            return False
        expected_shop = self.settings.get("shop_domain")
        shop = request.header("X-Shopify-Shop-Domain").strip()
        if expected_shop and shop.lower() != expected_shop.lower():
            return False
        return signature_matches(
            request.header("X-Shopify-Hmac-Sha256"), request.body, self._secrets()
        )

    def delivery(self, request: InboundRequest) -> Delivery | None:
        """Keyed on ``X-Shopify-Webhook-Id``, which stays the same across Shopify's retries of
        one delivery, so a retry is recognised as a duplicate. Non-order topics store nothing.
        """
        key = request.header("X-Shopify-Webhook-Id").strip()
        topic = request.header("X-Shopify-Topic").strip().lower()
        if not key or topic not in ORDER_TOPICS:
            return None
        return Delivery(key=key, topic=topic)

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        """The one order a Shopify order webhook carries.

        The body is decoded with integers kept as their digit strings and fractions as
        Decimal: no value ever passes through float, so a 64-bit id and a price both survive
        exactly. A missing or malformed field raises PayloadError naming the field, so the
        inbox shows what was wrong and the delivery can be replayed after a fix.
        """
        try:
            data = json.loads(body, parse_int=str, parse_float=Decimal)
        except ValueError as exc:  # includes bytes that are not UTF-8
            raise PayloadError(f"shopify: body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("shopify: body is not a JSON object (the REST Order resource)")
        return [_order(data, topic)]

    def _secrets(self) -> list[str]:
        return [s for s in (self.settings.get("secret"), self.settings.get("previous_secret")) if s]


# --- mapping the REST Order resource -------------------------------------------------------


def _order(data: Mapping[str, Any], topic: str | None) -> ChannelOrder:
    """Map one REST Order resource; kept apart from I/O so it is tested on plain payloads."""
    external_id = _required(_id(data, "id"), "id")
    event_time = _required(_time(data, "updated_at"), "updated_at")
    currency = _required(_text(data, "currency"), "currency")
    financial = _text(data, "financial_status")
    fulfillment = _text(data, "fulfillment_status")
    processed_at = _time(data, "processed_at")
    draft = OrderDraft(
        lines=_lines(data),
        consignee=_consignee(data.get("shipping_address")),
        customer=_customer(data),
        currency=currency.upper(),
        shipping_total=_shipping_total(data),
        tax_total=_money(data, "total_tax"),
        discount_total=_money(data, "total_discounts"),
        channel="shopify",
        external_id=external_id,
        external_name=_text(data, "name"),
        created_at=_time(data, "created_at"),
        paid_at=processed_at if financial == "paid" else None,
    )
    return ChannelOrder(
        external_id=external_id,
        event_time=event_time,
        draft=draft,
        cancelled=topic == "orders/cancelled" or bool(data.get("cancelled_at")),
        channel_status=_status(financial, fulfillment),
    )


def _lines(data: Mapping[str, Any]) -> list[LineItem]:
    """One LineItem per Shopify line, never merged: the same variant on two lines (different
    discounts or properties) stays two lines, as Shopify states it."""
    raw = data.get("line_items")
    if raw is None:
        raise PayloadError("shopify: missing required field 'line_items'")
    if not isinstance(raw, list) or not raw:
        raise PayloadError("shopify: 'line_items' must be a non-empty list")
    lines = []
    for i, item in enumerate(raw):
        where = f"line_items[{i}]"
        if not isinstance(item, dict):
            raise PayloadError(f"shopify: '{where}' is not an object")
        quantity = item.get("quantity")
        # With parse_int=str a JSON integer arrives as its digits; anything else (a fraction,
        # a negative number, a quoted word) is not a quantity.
        if not (isinstance(quantity, str) and quantity.isdigit()):
            raise PayloadError(f"shopify: '{where}.quantity' must be a non-negative integer")
        if item.get("price") is None:
            raise PayloadError(f"shopify: missing required field '{where}.price'")
        product = _id(item, "variant_id", where) or _id(item, "product_id", where)
        lines.append(
            LineItem(
                sku=(_text(item, "sku", where) or "").strip(),
                quantity=int(quantity),
                unit_price=_money(item, "price", where),
                name=_text(item, "title", where),
                channel_product_id=product,
            )
        )
    return lines


def _consignee(address: Any) -> Consignee:
    """Shopify leaves ``shipping_address`` out when nothing ships; that is an empty consignee,
    not an error."""
    if address is None:
        return Consignee()
    if not isinstance(address, dict):
        raise PayloadError("shopify: 'shipping_address' is not an object")
    where = "shipping_address"
    return Consignee(
        name=_text(address, "name", where) or _full_name(address, where),
        phone=_text(address, "phone", where),
        address=Address(
            line1=_text(address, "address1", where),
            line2=_text(address, "address2", where),
            city=_text(address, "city", where),
            region=_text(address, "province_code", where) or _text(address, "province", where),
            postcode=_text(address, "zip", where),
            country=_text(address, "country_code", where),
        ),
    )


def _customer(data: Mapping[str, Any]) -> CustomerInfo | None:
    """The buyer: the ``customer`` object when there is one (guest checkouts have none), with
    the order's own ``email`` and ``phone`` as fall-backs."""
    customer = data.get("customer")
    if customer is not None and not isinstance(customer, dict):
        raise PayloadError("shopify: 'customer' is not an object")
    customer = customer or {}
    email = _text(customer, "email", "customer") or _text(data, "email")
    phone = _text(customer, "phone", "customer") or _text(data, "phone")
    name = _full_name(customer, "customer")
    if not (email or phone or name):
        return None
    return CustomerInfo(email=email, name=name, phone=phone)


def _shipping_total(data: Mapping[str, Any]) -> Decimal:
    lines = data.get("shipping_lines") or []
    if not isinstance(lines, list):
        raise PayloadError("shopify: 'shipping_lines' must be a list")
    total = Decimal(0)
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            raise PayloadError(f"shopify: 'shipping_lines[{i}]' is not an object")
        total += _money(line, "price", f"shipping_lines[{i}]")
    return total


def _status(financial: str | None, fulfillment: str | None) -> str:
    """A short summary such as ``paid/unfulfilled``; Shopify's null fulfillment_status means
    nothing has shipped yet, so it is spelled out rather than left blank."""
    return f"{financial or 'unknown'}/{fulfillment or 'unfulfilled'}"


# --- field readers: each names the field it rejects ----------------------------------------


def _field(where: str | None, key: str) -> str:
    return f"{where}.{key}" if where else key


def _text(obj: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
    """A string field; null and "" both read as None so callers can fall back with ``or``."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | Decimal):
        raise PayloadError(f"shopify: '{_field(where, key)}' is not a string")
    return str(value)


def _required(value: T | None, name: str) -> T:
    """A required field: absent or null names the field, so the inbox says what is missing."""
    if value is None:
        raise PayloadError(f"shopify: missing required field '{name}'")
    return value


def _id(obj: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
    """An id as a string. Integers arrive as their exact digits (parse_int=str), so ids beyond
    2**53 are never rounded; a fraction, a word or an object is not a REST id."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not (isinstance(value, str) and value.isdigit()):
        raise PayloadError(f"shopify: '{_field(where, key)}' is not an id: {value!r}")
    return value


def _money(obj: Mapping[str, Any], key: str, where: str | None = None) -> Decimal:
    """A decimal-string amount (Shopify's format); a JSON number is accepted too, and both
    become Decimal without passing through float. Absent means zero."""
    value = obj.get(key)
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool):
        raise PayloadError(f"shopify: '{_field(where, key)}' is not an amount")
    try:
        amount = Decimal(value) if isinstance(value, str | Decimal) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise PayloadError(f"shopify: '{_field(where, key)}' is not an amount: {value!r}")
    return amount


def _time(obj: Mapping[str, Any], key: str, where: str | None = None) -> datetime | None:
    """An ISO-8601 timestamp with an offset, returned in UTC so that ordering updates by
    ``updated_at`` compares instants, not wall-clock readings in different zones."""
    value = obj.get(key)
    name = _field(where, key)
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise PayloadError(f"shopify: '{name}' is not an ISO-8601 time with an offset: {value!r}")
    return moment.astimezone(UTC)


def _full_name(obj: Mapping[str, Any], where: str) -> str | None:
    parts = [_text(obj, "first_name", where), _text(obj, "last_name", where)]
    return " ".join(p.strip() for p in parts if p and p.strip()) or None


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [ShopifyChannel]
