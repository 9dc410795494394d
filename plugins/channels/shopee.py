"""The ``shopee`` channel: Shopee Open Platform (API v2) order status pushes, each followed by
an order detail pull.

Setup: in the Shopee Open Platform console, open the app (its *partner id* and *partner key*
are on the app page), set the push *callback URL* to the connection's webhook URL and switch on
"Order Status Push". Authorise the app on the shop; the shop-level OAuth exchange gives the
*access token* this connection uses (``shop_id``, ``access_token``). When the hub sits behind a
proxy that rewrites the URL, put the URL exactly as registered in the console in
``callback_url``: Shopee signs that string, not the URL the hub happens to see.

Why a push and then a pull:

* **The push is thin.** Code 3 (order status) carries only ``ordersn``, ``status`` and
  ``update_time``. It is verified (``Authorization`` = hex HMAC-SHA256 of
  ``callback URL + "|" + raw body`` under the partner key, compared in constant time) and
  stored as it came; the ingest job then calls ``GET /api/v2/order/get_order_detail`` for the
  lines, prices and address. Fetching in the worker, not the webhook, keeps the answer fast, and
  a failed fetch is retried by the hub instead of being lost.
* **De-duplication.** Shopee re-sends a push it thinks failed with the same content, so the
  key is ``ordersn:status:update_time``: a repeat is a duplicate, a new status is a new
  delivery. Other push codes (tracking numbers, shop updates…) are acknowledged and not stored;
  so are pushes for another shop of the same partner app, which Shopee sends to the same URL.
* **Errors.** Shopee reports API errors in the body (``{"error": "error_auth", "message": …}``),
  sometimes with HTTP 200. They become the hub's typed HTTP errors, never a silent rejection:
  an expired token is an AuthError (fix the token, replay), a server-side error is retried.
* **Money.** Shopee sends prices as JSON numbers; they are read as Decimal, never float. The
  order total is made to equal ``total_amount`` (what the buyer paid): the goods at
  ``model_discounted_price`` (the original price for bundle deal items, which Shopee prices
  at 0) plus ``estimated_shipping_fee``, with what vouchers, coins and bundle deals took off
  as the discount.
* **Statuses.** ``UNPAID`` orders are held until paid; ``CANCELLED`` cancels; ``IN_CANCEL``
  (the buyer asked to cancel, the seller has not answered) is only passed on as
  ``channel_status``, like every other status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from hub import hookimpl
from hub.core.adapters import ChannelAdapter, ChannelOrder, Delivery, InboundRequest, PayloadError
from hub.core.http import (
    BODY_LIMIT,
    AuthError,
    BusinessError,
    HttpError,
    RateLimited,
    Unavailable,
)
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from plugins.channels._fields import Fields

DEFAULT_API_BASE = "https://partner.shopeemobile.com"
ORDER_DETAIL_PATH = "/api/v2/order/get_order_detail"
ORDER_STATUS_PUSH = 3
TOPIC = "order_status"
# What get_order_detail leaves out unless asked: everything the mapping below reads.
OPTIONAL_FIELDS = (
    "buyer_username",
    "buyer_user_id",
    "recipient_address",
    "item_list",
    "total_amount",
    "estimated_shipping_fee",
    "pay_time",
    "note",
    "message_to_seller",
)

# Shopee's error names, by what the hub should do about them. Anything else is a business
# error: not retried, kept as rejected with Shopee's message, replayable.
_AUTH_ERRORS = frozenset(
    {
        "error_auth",
        "error_sign",
        "error_permission",
        "invalid_access_token",
        "invalid_acceess_token",  # sic: Shopee's own spelling in some answers
    }
)
_RETRYABLE_ERRORS = frozenset({"error_server", "error_inner"})


class ShopeeChannel(ChannelAdapter):
    """One Shopee shop, authorised to one partner app (see the module docstring)."""

    name = "shopee"
    title = "Shopee (order status push + order detail)"
    capabilities = frozenset({"push"})
    # Shopee counts anything but a 2xx with an empty body as a failed push.
    empty_acknowledgement = True
    secret_settings = ("partner_key", "access_token")
    outbound_settings = ("api_base",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "partner_id": {"type": "integer", "minimum": 1},
            "partner_key": {"type": "string", "minLength": 1},
            "shop_id": {"type": "integer", "minimum": 1},
            "access_token": {"type": "string", "minLength": 1},
            "api_base": {"type": "string", "pattern": r"^https?://[^/?#]+/?$"},
            "callback_url": {"type": "string", "pattern": r"^https?://[^/?#]+"},
        },
        "required": ["partner_id", "partner_key", "shop_id", "access_token"],
        "additionalProperties": False,
    }

    # --- receiving ---------------------------------------------------------------------------

    def verify(self, request: InboundRequest) -> bool:
        """Authentic when ``Authorization`` is the push signature over the callback URL and
        the raw body. The URL is the registered one (``callback_url``) when configured, because
        a proxy in front of the hub changes the URL the hub sees but not what Shopee signed."""
        if not request.body:
            return False
        url = self.settings.get("callback_url") or request.url
        expected = push_signature(self.settings["partner_key"], url, request.body)
        given = request.header("Authorization").strip().lower().encode("utf-8", "replace")
        return hmac.compare_digest(given, expected.encode("ascii"))

    def delivery(self, request: InboundRequest) -> Delivery | None:
        """Order status pushes for this shop are kept, keyed on what makes a status change
        unique; anything else is acknowledged (a non-2xx would make Shopee retry it and count
        it against the push success rate, which can switch the push off)."""
        try:
            push = json.loads(request.body)
            if not isinstance(push, dict):
                raise ValueError("not an object")
        except ValueError:
            # Signed but unreadable: kept (by its hash) so it shows up as rejected, not lost.
            return Delivery("body-sha256:" + hashlib.sha256(request.body).hexdigest(), TOPIC)
        if push.get("code") != ORDER_STATUS_PUSH:
            return None
        if push.get("shop_id") != self.settings["shop_id"]:
            return None
        data = push.get("data")
        data = data if isinstance(data, dict) else {}
        ordersn, status, updated = data.get("ordersn"), data.get("status"), data.get("update_time")
        if not ordersn:
            return Delivery("body-sha256:" + hashlib.sha256(request.body).hexdigest(), TOPIC)
        return Delivery(f"{ordersn}:{status}:{updated}", TOPIC)

    # --- reading -----------------------------------------------------------------------------

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        """The order a push names, as get_order_detail states it now.

        Reading the push is strict (a push without ``ordersn`` is a PayloadError); the fetch
        raises the hub's HTTP errors, so the ingest job retries what can be retried.
        """
        try:
            push = json.loads(body)
        except ValueError as exc:
            raise PayloadError(f"shopee: push body is not JSON: {exc}") from None
        data = push.get("data") if isinstance(push, dict) else None
        ordersn = data.get("ordersn") if isinstance(data, dict) else None
        if not isinstance(ordersn, str) or not ordersn:
            raise PayloadError("shopee: push has no data.ordersn")
        detail = self.order_detail([ordersn])
        found = [o for o in detail if isinstance(o, dict) and o.get("order_sn") == ordersn]
        if not found:
            raise PayloadError(f"shopee: get_order_detail did not return order {ordersn}")
        return [order_from_detail(found[0])]

    def order_detail(self, order_sns: list[str]) -> list[Any]:
        """``GET /api/v2/order/get_order_detail`` for up to 50 orders: the ``order_list``."""
        params = self.signed_params(ORDER_DETAIL_PATH)
        params["order_sn_list"] = ",".join(order_sns)
        params["response_optional_fields"] = ",".join(OPTIONAL_FIELDS)
        base = (self.settings.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        url = f"{base}{ORDER_DETAIL_PATH}"
        try:
            response = self.http.request("GET", url, params=params)
        except HttpError as err:
            raise _explained(err) from None
        try:
            answer = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self.http.parse_error(response, "the body is not JSON") from None
        if not isinstance(answer, dict):
            raise self.http.parse_error(response, "the body is not a JSON object")
        if answer.get("error"):
            # Shopee reports some errors with HTTP 200: the body decides, not the status.
            cls, what = _classify(answer)
            raise cls(
                f"{response.status_code} but {what}",
                status=response.status_code,
                body=response.text[:BODY_LIMIT],
                url=url,
                method="GET",
                client=self.http.name,
            )
        result = answer.get("response")
        orders = result.get("order_list") if isinstance(result, dict) else None
        if not isinstance(orders, list):
            raise self.http.parse_error(response, "it has no response.order_list")
        return orders

    def signed_params(self, path: str) -> dict[str, Any]:
        """The common parameters of a shop-level call, signed as Shopee documents:
        hex HMAC-SHA256(partner key, partner_id + path + timestamp + access_token + shop_id).
        The timestamp must be within five minutes of Shopee's clock, so it is taken per call."""
        moment = int(time.time())
        partner_id, shop_id = self.settings["partner_id"], self.settings["shop_id"]
        token = self.settings["access_token"]
        base = f"{partner_id}{path}{moment}{token}{shop_id}"
        sign = hmac.new(
            self.settings["partner_key"].encode(), base.encode(), hashlib.sha256
        ).hexdigest()
        return {
            "partner_id": partner_id,
            "timestamp": moment,
            "access_token": token,
            "shop_id": shop_id,
            "sign": sign,
        }


def push_signature(partner_key: str, url: str, body: bytes) -> str:
    """What Shopee puts in ``Authorization``: hex HMAC-SHA256 of ``url|body`` (raw bytes)."""
    message = url.encode("utf-8") + b"|" + body
    return hmac.new(partner_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _classify(answer: Mapping[str, Any]) -> tuple[type[HttpError], str]:
    """The hub's error class for a Shopee error body, and Shopee's words for the message."""
    error = str(answer.get("error"))
    what = (
        f"shopee {error}: {answer.get('message') or 'no message'}"
        f" (request_id {answer.get('request_id') or '?'})"
    )
    if error in _AUTH_ERRORS:
        return AuthError, what
    if "rate_limit" in error or "too_many" in error:
        return RateLimited, what
    if error in _RETRYABLE_ERRORS:
        return Unavailable, what
    return BusinessError, what


def _explained(err: HttpError) -> HttpError:
    """The client's error with Shopee's own reason added, and a refused request that Shopee
    says is about credentials made an AuthError (Shopee does not always use 401/403)."""
    try:
        answer = json.loads(err.body or "")
    except ValueError:
        return err
    if not isinstance(answer, dict) or not answer.get("error"):
        return err
    cls, what = _classify(answer)
    err.message = f"{err.message}: {what}"
    if isinstance(err, BusinessError) and cls is AuthError:
        return AuthError(
            err.message,
            status=err.status,
            body=err.body,
            url=err.url,
            method=err.method,
            client=err.client,
            attempts=err.attempts,
        )
    return err


# --- mapping an order detail -----------------------------------------------------------------


def order_from_detail(order: Mapping[str, Any]) -> ChannelOrder:
    """Map one ``order_list`` entry; kept apart from I/O so it is tested on plain answers."""
    f = Fields(order, "shopee")
    order_sn = f.need_text("order_sn")
    status = f.need_text("order_status")
    event_time = f.need_unix_time("update_time")
    raw_items = f.get("item_list")
    if not isinstance(raw_items, list) or not raw_items:
        raise f.fail("item_list", "missing or empty")
    lines = [_line(item) for item in f.objects("item_list")]
    goods = sum((line.unit_price or Decimal(0)) * line.quantity for line in lines)
    shipping = _price(f, "estimated_shipping_fee")
    discount = Decimal(0)
    if f.get("total_amount") is not None:
        paid = _price(f, "total_amount")
        # The hub's total (goods + shipping - discount) is made to equal what the buyer paid;
        # vouchers and coins are the gap below it, buyer-paid shipping above the estimate the
        # gap above it.
        if goods + shipping >= paid:
            discount = goods + shipping - paid
        else:
            shipping = paid - goods
    address = f.obj_or_empty("recipient_address")
    buyer = f.text("buyer_username")
    return ChannelOrder(
        external_id=order_sn,
        event_time=event_time,
        cancelled=status == "CANCELLED",
        channel_status=status,
        hold="awaiting payment on Shopee" if status == "UNPAID" else None,
        draft=OrderDraft(
            lines=lines,
            consignee=Consignee(
                name=address.text("name"),
                phone=address.text("phone"),
                address=Address(
                    line1=address.text("full_address"),
                    city=address.text("city") or address.text("district"),
                    region=address.text("state"),
                    postcode=address.text("zipcode"),
                    country=address.text("region") or f.text("region"),
                ),
            ),
            customer=CustomerInfo(name=buyer) if buyer else None,
            currency=f.need_text("currency"),
            shipping_total=shipping,
            discount_total=discount,
            channel="shopee",
            external_id=order_sn,
            external_name=order_sn,
            note=f.text("message_to_seller") or f.text("note"),
            created_at=f.unix_time("create_time"),
            paid_at=f.unix_time("pay_time"),
        ),
    )


def _line(f: Fields) -> LineItem:
    """One ``item_list`` entry. The model (variation) SKU names what was sold when it has one;
    a product without variations has model_id 0 and only the item SKU."""
    quantity = f.quantity("model_quantity_purchased")
    f.need("model_discounted_price")
    item_id = f.get("item_id")
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise f.fail("item_id", "expected an id")  # Shopee's ids are JSON integers
    model_id = f.get("model_id") or 0
    name, model = f.text("item_name"), f.text("model_name")
    price = _price(f, "model_discounted_price")
    if price == 0:
        # Shopee gives a bundle deal's items a discounted price of 0 (the bundle discount is
        # not broken down per item): they are priced at the original price, and the bundle
        # discount ends up in the order's discount.
        price = _price(f, "model_original_price")
    return LineItem(
        sku=f.text("model_sku") or f.text("item_sku") or "",
        quantity=quantity,
        unit_price=price,
        name=f"{name} ({model})" if name and model else name,
        channel_product_id=f"{item_id}:{model_id}",
    )


def _price(f: Fields, key: str) -> Decimal:
    """Shopee's prices are JSON numbers (floats on the wire, decoded as Decimal, never float);
    absent reads as zero, and a negative price is not one Shopee writes."""
    amount = f.amount(key)
    if amount < 0:
        raise f.fail(key, f"not an amount: {f.get(key)!r}")
    return amount


@hookimpl
def register_channels() -> list[type[ChannelAdapter]]:
    return [ShopeeChannel]
