"""The ``shopify`` channel: orders pushed by Shopify webhooks (``orders/create``,
``orders/updated``, ``orders/cancelled``), body = the REST Order resource; and, when the hub
ships, the fulfilment with its tracking number pushed back through the Admin REST API.

Everything Shopify-specific lives here; the hub only sees the ChannelAdapter contract. The
rules it follows come from Shopify's documentation: the signature is checked over the raw
bytes before anything is parsed, ids stay strings because they can exceed 2**53, and money
stays Decimal because a float cannot hold a price exactly.

Fulfilment uses the FulfillmentOrder-based API (the only one current API versions offer):
``GET /admin/api/{version}/orders/{id}/fulfillment_orders.json`` says what is still to be
fulfilled and from which location, then ``POST /admin/api/{version}/fulfillments.json`` creates
the fulfilment with its tracking. It needs the ``shop_domain`` and an Admin API
``access_token`` with the ``write_merchant_managed_fulfillment_orders`` scope (and
``read_orders``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from hub import hookimpl
from hub.core.adapters import (
    ChannelAdapter,
    ChannelOrder,
    Delivery,
    FulfilledLine,
    Fulfilment,
    InboundRequest,
    PayloadError,
)
from hub.core.http import BusinessError, HttpError, RateLimit
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._fields import Fields
from plugins.channels._signing import base64_hmac_sha256, signature_matches

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

# The Admin API version fulfilment calls use unless the ``api_version`` setting names one.
DEFAULT_API_VERSION = "2026-01"
# Fulfillment orders that can still take a fulfilment; "scheduled" and "on_hold" cannot until
# released, "closed", "cancelled" and "incomplete" never can.
FULFILLABLE_STATUSES = frozenset({"open", "in_progress"})
# The REST Admin API's documented leaky bucket: 40 requests, leaking 2 a second (per store
# and app on a standard plan).
REST_BURST, REST_PER_SECOND = 40, 2.0


class ShopifyChannel(ChannelAdapter):
    """One Shopify store (or one app's webhooks) delivering orders by webhook.

    ``previous_secret`` exists for secret rotation: for up to an hour Shopify may sign with
    either the old or the new secret, and a delivery refused in that window would be retried
    and eventually lost. ``shop_domain`` pins the connection to one store, so a second store
    sharing the app's secret cannot inject orders into this one, and names the store the
    fulfilment calls go to. ``api_version`` is the Admin API version of those calls (parsing
    reads webhook payloads defensively and does not depend on it). ``access_token`` is the
    Admin API token fulfilment needs; ``notify_customer`` says whether Shopify emails the buyer
    the tracking (default: yes).
    """

    name = "shopify"
    title = "Shopify (order webhooks, fulfilment push-back)"
    capabilities = frozenset({"push", "fulfilment"})
    secret_settings = ("secret", "previous_secret", "access_token")
    outbound_settings = ("shop_domain",)
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
            "access_token": {"type": "string", "minLength": 1},
            "notify_customer": {"type": "boolean"},
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

    def test_delivery(self) -> tuple[dict[str, str], bytes] | None:
        """A ``shop/update`` delivery (a real Shopify topic the hub acknowledges and does not
        store), signed with the current secret as Shopify signs."""
        secret = self.settings.get("secret")
        if not secret:
            return None
        body = json.dumps({"id": 0, "name": "OrderHub test delivery"}, separators=(",", ":"))
        raw = body.encode()
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "shop/update",
            "X-Shopify-Hmac-Sha256": base64_hmac_sha256(secret, raw),
            "X-Shopify-Shop-Domain": self.settings.get("shop_domain")
            or "orderhub-test.myshopify.com",
            "X-Shopify-API-Version": self.settings.get("api_version") or DEFAULT_API_VERSION,
            "X-Shopify-Webhook-Id": f"orderhub-test-{secrets.token_hex(8)}",
        }, raw

    def _secrets(self) -> list[str]:
        return [s for s in (self.settings.get("secret"), self.settings.get("previous_secret")) if s]

    # --- fulfilment --------------------------------------------------------------------------

    def push_fulfilment(self, external_id: str, fulfilment: Fulfilment) -> str | None:
        """Create the Shopify fulfilment for what shipped; returns its id.

        The fulfillment orders say what is left to fulfil and where from. No lines means the
        whole order: every fulfillment order is fulfilled in full. Listed lines are matched to
        fulfillment order line items by the channel's SKU, variant id or product id (the
        ``channel_ref`` the hub kept from the order). Shopify takes one location per
        fulfilment, so an order split across locations gets one fulfilment per location, all
        with the same tracking, and their ids come back comma-separated.

        A retry after a lost answer finds nothing left to fulfil; the fulfilment already made
        with the same tracking number is then returned instead of an error.
        """
        if not str(external_id).isdigit():
            raise BusinessError(f"shopify: {external_id!r} is not a Shopify order id")
        self._admin()  # fail on missing settings before any request
        open_orders = [fo for fo in self._fulfillment_orders(external_id) if _can_fulfil(fo)]
        picks: dict[str, list[tuple[Any, int]] | None] = {}
        problem = BusinessError(
            f"shopify: order {external_id} has nothing left to fulfil (already fulfilled,"
            " cancelled or on hold in Shopify)"
        )
        if fulfilment.lines:
            refs = self._line_refs(external_id)
            try:
                picks = _allocate(open_orders, refs, fulfilment.lines, external_id)
            except BusinessError as short:
                problem = short
        else:
            picks = {_fo_key(fo): None for fo in open_orders if _open_items(fo)}
        if not picks:
            done = self._existing_fulfilment(external_id, fulfilment.tracking_number)
            if done is not None:
                return done
            raise problem
        by_location: dict[str, list[dict[str, Any]]] = {}
        for fo in open_orders:
            if _fo_key(fo) not in picks:
                continue
            entry: dict[str, Any] = {"fulfillment_order_id": fo["id"]}
            items = picks[_fo_key(fo)]
            if items is not None:
                entry["fulfillment_order_line_items"] = [
                    {"id": item_id, "quantity": qty} for item_id, qty in items
                ]
            by_location.setdefault(str(fo.get("assigned_location_id")), []).append(entry)
        return ",".join(self._create(group, fulfilment) for group in by_location.values())

    def _admin(self) -> tuple[str, dict[str, str]]:
        """The Admin API base URL and headers, or a clear refusal naming the missing setting."""
        shop, token = self.settings.get("shop_domain"), self.settings.get("access_token")
        missing = [n for n, v in (("shop_domain", shop), ("access_token", token)) if not v]
        if missing:
            raise BusinessError(
                "shopify: pushing fulfilments needs the connection settings "
                + " and ".join(missing)
            )
        version = self.settings.get("api_version") or DEFAULT_API_VERSION
        headers = {"X-Shopify-Access-Token": str(token), "Accept": "application/json"}
        return f"https://{shop}/admin/api/{version}", headers

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        """One Admin API call through the hub's client, paced to the store's REST bucket;
        Shopify's own ``errors`` text is added to any refusal."""
        base, headers = self._admin()
        limit = RateLimit(f"rest:{self.settings['shop_domain']}", REST_PER_SECOND, REST_BURST)
        try:
            response = self.http.request(method, base + path, headers=headers, limit=limit, **kw)
        except HttpError as err:
            reason = _errors_text(err.body)
            if reason:
                err.message = f"{err.message}: {reason}"
            raise
        try:
            return json.loads(response.content)
        except ValueError:
            raise self.http.parse_error(response, "the body is not JSON") from None

    def _fulfillment_orders(self, order_id: str) -> list[dict[str, Any]]:
        answer = self._call("GET", f"/orders/{order_id}/fulfillment_orders.json")
        orders = answer.get("fulfillment_orders") if isinstance(answer, dict) else None
        if not isinstance(orders, list):
            raise BusinessError("shopify: fulfillment_orders.json answered without a list")
        return [fo for fo in orders if isinstance(fo, dict) and "id" in fo]

    def _line_refs(self, order_id: str) -> dict[str, set[str]]:
        """Order line item id → the refs the hub may name it by (SKU, variant, product).

        Fulfillment order line items carry the variant and the order line item id but not the
        SKU, so the order's own line items are read for it.
        """
        answer = self._call("GET", f"/orders/{order_id}.json", params={"fields": "id,line_items"})
        order = answer.get("order") if isinstance(answer, dict) else None
        lines = order.get("line_items") if isinstance(order, dict) else None
        if not isinstance(lines, list):
            raise BusinessError(f"shopify: order {order_id} answered without line_items")
        refs: dict[str, set[str]] = {}
        for line in lines:
            if not isinstance(line, dict):
                continue
            sku = line.get("sku")
            found = {str(line[k]) for k in ("variant_id", "product_id") if line.get(k)}
            if isinstance(sku, str) and sku.strip():
                found.add(sku.strip())
            refs[str(line.get("id"))] = found
        return refs

    def _existing_fulfilment(self, order_id: str, tracking_number: str) -> str | None:
        answer = self._call("GET", f"/orders/{order_id}/fulfillments.json")
        made = answer.get("fulfillments") if isinstance(answer, dict) else None
        for item in made if isinstance(made, list) else []:
            if not isinstance(item, dict) or item.get("status") in ("cancelled", "error"):
                continue
            numbers = [item.get("tracking_number"), *(item.get("tracking_numbers") or [])]
            if tracking_number in numbers:
                return str(item.get("id"))
        return None

    def _create(self, group: list[dict[str, Any]], fulfilment: Fulfilment) -> str:
        tracking = {"company": fulfilment.carrier, "number": fulfilment.tracking_number}
        if fulfilment.tracking_url:
            tracking["url"] = fulfilment.tracking_url
        body = {
            "fulfillment": {
                "line_items_by_fulfillment_order": group,
                "tracking_info": tracking,
                "notify_customer": self.settings.get("notify_customer", True),
            }
        }
        answer = self._call("POST", "/fulfillments.json", json=body)
        made = answer.get("fulfillment") if isinstance(answer, dict) else None
        if not isinstance(made, dict) or made.get("id") is None:
            raise BusinessError("shopify: fulfillments.json answered without fulfillment.id")
        return str(made["id"])


# --- fulfilment mapping (no I/O) -------------------------------------------------------------


def _fo_key(fo: Mapping[str, Any]) -> str:
    return str(fo["id"])


def _can_fulfil(fo: Mapping[str, Any]) -> bool:
    """Open for a fulfilment: the right status and, when Shopify lists the actions, one of
    them is creating a fulfilment (a fulfillment service's order may not allow it)."""
    actions = fo.get("supported_actions")
    allowed = not isinstance(actions, list) or "create_fulfillment" in actions
    return fo.get("status") in FULFILLABLE_STATUSES and allowed


def _open_items(fo: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = fo.get("line_items")
    return [
        item
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and _int(item.get("fulfillable_quantity")) > 0
    ]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _allocate(
    orders: list[dict[str, Any]],
    refs_by_line: Mapping[str, set[str]],
    lines: tuple[FulfilledLine, ...],
    order_id: str,
) -> dict[str, list[tuple[Any, int]] | None]:
    """Fulfillment order id → [(fulfillment order line item id, quantity)] for the shipped
    lines, taking from the open quantities in Shopify's order. A line that cannot be covered
    is refused whole, naming it: a partial push would tell the buyer something false."""
    left = {
        (_fo_key(fo), str(item["id"])): _int(item.get("fulfillable_quantity"))
        for fo in orders
        for item in _open_items(fo)
    }
    picks: dict[str, dict[Any, int]] = {}
    for line in lines:
        want = line.quantity
        for fo in orders:
            for item in _open_items(fo):
                refs = set(refs_by_line.get(str(item.get("line_item_id")), ()))
                if item.get("variant_id"):
                    refs.add(str(item["variant_id"]))
                key = (_fo_key(fo), str(item["id"]))
                if want == 0 or line.channel_ref not in refs or left[key] == 0:
                    continue
                take = min(want, left[key])
                left[key] -= take
                want -= take
                chosen = picks.setdefault(_fo_key(fo), {})
                chosen[item["id"]] = chosen.get(item["id"], 0) + take
        if want:
            raise BusinessError(
                f"shopify: order {order_id}: {line.quantity} of {line.channel_ref!r} shipped but"
                f" only {line.quantity - want} still to fulfil in Shopify"
            )
    return {fo: list(items.items()) for fo, items in picks.items()}


def _errors_text(body: str | None) -> str | None:
    """Shopify's ``{"errors": …}`` as one line: a string, a list, or field → messages."""
    try:
        errors = json.loads(body or "").get("errors")
    except (ValueError, AttributeError):
        return None
    if isinstance(errors, dict):
        parts = []
        for field, messages in errors.items():
            listed = messages if isinstance(messages, list) else [messages]
            parts.append(f"{field}: " + "; ".join(str(m) for m in listed))
        return "; ".join(parts) or None
    if isinstance(errors, list):
        return "; ".join(str(m) for m in errors) or None
    return str(errors) if errors else None


# --- mapping the REST Order resource -------------------------------------------------------


def _order(data: Mapping[str, Any], topic: str | None) -> ChannelOrder:
    """Map one REST Order resource; kept apart from I/O so it is tested on plain payloads."""
    order = _Fields(data, "shopify")
    external_id = order.need_id("id")
    event_time = order.need_time("updated_at")
    currency = order.need_text("currency")
    financial = order.text("financial_status")
    fulfillment = order.text("fulfillment_status")
    processed_at = order.time("processed_at")
    draft = OrderDraft(
        lines=_lines(order),
        consignee=_consignee(order.obj("shipping_address")),
        customer=_customer(order),
        currency=currency.upper(),
        shipping_total=_shipping_total(order),
        tax_total=order.amount("total_tax"),
        discount_total=order.amount("total_discounts"),
        channel="shopify",
        external_id=external_id,
        external_name=order.text("name"),
        created_at=order.time("created_at"),
        paid_at=processed_at if financial == "paid" else None,
    )
    return ChannelOrder(
        external_id=external_id,
        event_time=event_time,
        draft=draft,
        cancelled=topic == "orders/cancelled" or bool(order.get("cancelled_at")),
        channel_status=_status(financial, fulfillment),
    )


def _lines(order: _Fields) -> list[LineItem]:
    """One LineItem per Shopify line, never merged: the same variant on two lines (different
    discounts or properties) stays two lines, as Shopify states it."""
    raw = order.need("line_items")
    if not isinstance(raw, list) or not raw:
        raise order.fail("line_items", "not a non-empty list")
    lines = []
    for item in order.objects("line_items"):
        quantity = item.get("quantity")
        # With parse_int=str a JSON integer arrives as its digits; anything else (a fraction,
        # a negative number, a quoted word) is not a quantity.
        if not (isinstance(quantity, str) and quantity.isdigit()):
            raise item.fail("quantity", "not a non-negative integer")
        item.need("price")
        product = item.id("variant_id") or item.id("product_id")
        lines.append(
            LineItem(
                sku=(item.text("sku") or "").strip(),
                quantity=int(quantity),
                unit_price=item.amount("price"),
                name=item.text("title"),
                channel_product_id=product,
            )
        )
    return lines


def _consignee(address: _Fields | None) -> Consignee:
    """Shopify leaves ``shipping_address`` out when nothing ships; that is an empty consignee,
    not an error."""
    if address is None:
        return Consignee()
    return Consignee(
        name=address.text("name") or address.full_name(),
        phone=address.text("phone"),
        address=Address(
            line1=address.text("address1"),
            line2=address.text("address2"),
            city=address.text("city"),
            region=address.text("province_code") or address.text("province"),
            postcode=address.text("zip"),
            country=address.text("country_code"),
        ),
    )


def _customer(order: _Fields) -> CustomerInfo | None:
    """The buyer: the ``customer`` object when there is one (guest checkouts have none), with
    the order's own ``email`` and ``phone`` as fall-backs."""
    customer = order.obj_or_empty("customer")
    email = customer.text("email") or order.text("email")
    phone = customer.text("phone") or order.text("phone")
    name = customer.full_name()
    if not (email or phone or name):
        return None
    return CustomerInfo(email=email, name=name, phone=phone)


def _shipping_total(order: _Fields) -> Decimal:
    # Shopify sends [] (or nothing) when nothing ships; any empty value means no shipping.
    lines = order.objects("shipping_lines") if order.get("shipping_lines") else []
    return sum((line.amount("price") for line in lines), Decimal(0))


def _status(financial: str | None, fulfillment: str | None) -> str:
    """A short summary such as ``paid/unfulfilled``; Shopify's null fulfillment_status means
    nothing has shipped yet, so it is spelled out rather than left blank."""
    return f"{financial or 'unknown'}/{fulfillment or 'unfulfilled'}"


class _Fields(Fields):
    """The REST Order resource as this channel reads it, where that differs from the shared
    reader: the body is decoded with ``parse_int=str``, "" means not set for every value, and
    Shopify always writes times with an offset, so one without is refused rather than guessed.
    Messages quote the field: ``shopify: 'line_items[1].price' is not a decimal: 'free'``."""

    blank_amounts = True
    offset_required = True

    def fail(self, key: str, problem: str) -> PayloadError:
        return PayloadError(f"{self.channel}: '{self.path(key)}' is {problem}")

    def missing(self, key: str) -> PayloadError:
        return PayloadError(f"{self.channel}: missing required field '{self.path(key)}'")

    def wrong(self, key: str, expected: str, value: Any) -> PayloadError:
        return self.fail(key, f"not {expected}")

    def text(self, key: str) -> str | None:
        """A string as Shopify sent it, not stripped (only the SKU and name parts are trimmed,
        where they are used); a JSON number reads as its digits, as an integer already does
        under parse_int=str."""
        value = self.get(key)
        if isinstance(value, Decimal):
            value = str(value)
        if value is not None and not isinstance(value, str):
            raise self.wrong(key, "a string", value)
        return value or None

    def id(self, key: str) -> str | None:
        """Digits only: integers arrive as their exact digits (parse_int=str), so ids beyond
        2**53 are never rounded; a fraction, a word or a GraphQL gid is not a REST id."""
        value = self.get(key)
        if value is None or value == "":
            return None
        if not (isinstance(value, str) and value.isdigit()):
            raise self.fail(key, f"not an id: {value!r}")
        return value


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [ShopifyChannel]
