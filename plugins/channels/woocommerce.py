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
* **No retries.** WooCommerce never re-sends a failed delivery, so a connection should also
  poll: :meth:`WooCommerceChannel.reconcile_query` builds the documented
  ``GET /wp-json/wc/v3/orders?modified_after=…`` request, and :meth:`parse` also reads the JSON
  array that request returns.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urlencode

from hub import hookimpl
from hub.core.adapters import ChannelAdapter, ChannelOrder, Delivery, InboundRequest, PayloadError
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._signing import signature_matches

ORDER_TOPICS = frozenset({"order.created", "order.updated"})
# WooCommerce statuses that mean the order will not be fulfilled; see the module docstring.
CANCELLED_STATUSES = frozenset({"cancelled"})
ORDERS_PATH = "/wp-json/wc/v3/orders"

_PING_BODY = re.compile(rb"webhook_id=[0-9]+")
_FORM = "application/x-www-form-urlencoded"


class WooCommerceChannel(ChannelAdapter):
    """A WooCommerce store sending ``order.created`` / ``order.updated`` webhooks (REST v3)."""

    name = "woocommerce"
    title = "WooCommerce (webhooks)"
    secret_settings = ("secret", "previous_secret")
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "secret": {"type": "string", "minLength": 1},
            "previous_secret": {"type": "string", "minLength": 1},
            "store_url": {"type": "string", "pattern": "^https?://[^/?#]+"},
        },
        "required": ["secret"],
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
        """One order from a webhook body, or every order of a REST list (reconciliation)."""
        try:
            data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"woocommerce: body is not JSON: {exc}") from None
        if isinstance(data, list):
            return [self._order(item, f"[{i}].") for i, item in enumerate(data)]
        return [self._order(data, "")]

    def _order(self, data: Any, at: str) -> ChannelOrder:
        if not isinstance(data, dict):
            raise PayloadError(f"woocommerce: {at or 'body'}: not an order object")
        order = _Fields(data, at)
        external_id = order.id("id")
        status = order.need_text("status")
        shipping = order.obj("shipping")
        billing = order.obj("billing")
        raw_lines = order.get("line_items", required=True)
        if not isinstance(raw_lines, list):
            raise PayloadError(f"woocommerce: {at}line_items: not a list")
        return ChannelOrder(
            external_id=external_id,
            event_time=order.need_utc("date_modified_gmt"),
            cancelled=status in CANCELLED_STATUSES,
            channel_status=status,
            draft=OrderDraft(
                lines=[_line(item, f"{at}line_items[{i}].") for i, item in enumerate(raw_lines)],
                consignee=Consignee(
                    name=_full_name(shipping),
                    phone=shipping.text("phone") or billing.text("phone"),
                    address=Address(
                        line1=shipping.text("address_1"),
                        line2=shipping.text("address_2"),
                        city=shipping.text("city"),
                        region=shipping.text("state"),
                        postcode=shipping.text("postcode"),
                        country=shipping.text("country"),
                    ),
                ),
                customer=CustomerInfo(
                    email=billing.text("email"),
                    name=_full_name(billing),
                    phone=billing.text("phone"),
                ),
                currency=order.need_text("currency"),
                shipping_total=order.money("shipping_total"),
                tax_total=order.money("total_tax"),
                discount_total=order.money("discount_total"),
                channel=self.name,
                external_id=external_id,
                external_name=order.text("number") or external_id,
                note=order.text("customer_note"),
                created_at=order.utc("date_created_gmt"),
                paid_at=order.utc("date_paid_gmt"),
            ),
        )

    # --- reconciliation ----------------------------------------------------------------------

    def reconcile_query(
        self, modified_after: datetime, page: int = 1, per_page: int = 100
    ) -> tuple[str, str]:
        """The polling request that catches deliveries WooCommerce lost: (method, URL).

        ``dates_are_gmt`` makes WooCommerce read ``modified_after`` as UTC, matching the
        ``*_gmt`` fields; ordering by id keeps pages stable while orders change. The caller
        adds the REST API credentials and hands the response body to :meth:`parse`.
        """
        if modified_after.tzinfo is None:
            raise ValueError("modified_after must be timezone-aware")
        store = self.settings.get("store_url", "").rstrip("/")
        if not store:
            raise ValueError("the store_url setting is needed to poll WooCommerce")
        query = urlencode(
            {
                "modified_after": modified_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "dates_are_gmt": "true",
                "orderby": "id",
                "order": "asc",
                "per_page": per_page,
                "page": page,
            }
        )
        return "GET", f"{store}{ORDERS_PATH}?{query}"


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


class _Fields:
    """Typed reads of one JSON object; every error names the field (with its path)."""

    def __init__(self, data: Mapping[str, Any], at: str) -> None:
        self.data, self.at = data, at

    def fail(self, key: str, problem: str) -> PayloadError:
        return PayloadError(f"woocommerce: {self.at}{key}: {problem}")

    def get(self, key: str, required: bool = False) -> Any:
        value = self.data.get(key)
        if required and value is None:
            raise self.fail(key, "missing")
        return value

    def obj(self, key: str) -> _Fields:
        """A nested object; absent or null reads as empty (a virtual order ships nothing)."""
        value = self.get(key)
        if value is None or value == []:  # PHP serialises an empty array as []
            value = {}
        if not isinstance(value, dict):
            raise self.fail(key, "not an object")
        return _Fields(value, f"{self.at}{key}.")

    def text(self, key: str) -> str | None:
        """A string; WooCommerce sends "" for an empty field, which reads as None."""
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {type(value).__name__}")
        return value.strip() or None

    def need_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.fail(key, "missing")
        return value

    def id(self, key: str) -> str:
        value = self.get(key, required=True)
        if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
            raise self.fail(key, "expected an id")
        return str(value)

    def money(self, key: str) -> Decimal:
        """A decimal string (or a JSON number, read as Decimal); absent reads as zero."""
        value = self.get(key)
        if value is None or value == "":
            return Decimal(0)
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self.fail(key, f"expected a decimal, got {type(value).__name__}")
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise self.fail(key, f"not a decimal: {value!r}") from None
        if not amount.is_finite():
            raise self.fail(key, f"not a decimal: {value!r}")
        return amount

    def utc(self, key: str) -> datetime | None:
        """A ``*_gmt`` timestamp: WooCommerce gives no offset because it is UTC."""
        value = self.text(key)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(key, f"not a date-time: {value!r}") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def need_utc(self, key: str) -> datetime:
        moment = self.utc(key)
        if moment is None:
            raise self.fail(key, "missing")
        return moment


def _full_name(fields: _Fields) -> str | None:
    parts = (fields.text("first_name"), fields.text("last_name"))
    return " ".join(p for p in parts if p) or None


def _line(item: Any, at: str) -> LineItem:
    if not isinstance(item, dict):
        raise PayloadError(f"woocommerce: {at.rstrip('.')}: not a line item")
    line = _Fields(item, at)
    quantity = line.get("quantity", required=True)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise line.fail("quantity", f"expected a positive integer, got {quantity!r}")
    if line.get("price", required=True) == "":
        raise line.fail("price", "missing")
    # The variation is the thing sold when there is one; WooCommerce sends 0 when there is not.
    product_ref = next(
        (str(v) for v in (line.get("variation_id"), line.get("product_id")) if v and v != "0"),
        None,
    )
    # sku is "" when the product has none and null when it was deleted: the hub then maps
    # channel_product_id instead.
    return LineItem(
        sku=line.text("sku") or "",
        quantity=quantity,
        unit_price=line.money("price"),
        name=line.text("name"),
        channel_product_id=product_ref,
    )


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [WooCommerceChannel]
