"""The ``ups`` carrier: rates, labels, tracking, Track Alert pushes and voids through UPS's REST
APIs (developer.ups.com), in plain HTTP through the hub's client.

Setting up an account
---------------------
Create an app at developer.ups.com ("I want to integrate UPS technology into my business"),
add the products Authorization (OAuth), Rating, Shipping and Tracking (and Track Alert for
pushes), link the shipper account, and copy:

* ``client_id`` and ``client_secret``: the app's credentials (the secret is stored encrypted);
* ``account_number``: the six-character shipper number. It is sent as ``x-merchant-id`` when a
  token is made, as ``ShipperNumber`` and as the account billed for every shipment;
* ``push_credential`` (optional, secret, 16 characters or more, as it is the only proof an
  event is UPS's): the opaque value given as ``destination.credential`` when subscribing
  tracking numbers to Track Alert; UPS sends it back in the ``credential`` header of every
  event, and an event without it is refused;
* ``api_base``: ``https://onlinetools.ups.com`` (default) or the test environment
  ``https://wwwcie.ups.com``;
* ``rating_version`` / ``shipping_version``: the API versions in the path, ``v2409`` by default
  (the version UPS's OpenAPI documents; from it on, lists always come as JSON arrays).

Optional: ``unit_system`` ("metric": KGS/CM, "imperial": LBS/IN; by default imperial when the
parcel leaves the US or Puerto Rico, which UPS requires, and metric elsewhere),
``negotiated_rates`` (ask for the account's contract rates), ``label_format`` (GIF default,
PNG, ZPL, EPL, SPL) and ``shipper_country`` (where the account ships from, e.g. "CA": which
services the account lists; without it, the services of every origin are listed).

How it talks to UPS, and why
----------------------------
* **Token.** Client credentials are exchanged at ``POST /security/v1/oauth/token`` (HTTP Basic
  ``client_id:client_secret``, form ``grant_type=client_credentials``). UPS states the lifetime
  in ``expires_in`` (a string, about four hours); the token is reused until a minute before it
  ends. A 401 from any API drops it, so whoever tries next starts with a fresh one.
* **Headers.** Every call carries ``transId`` (a fresh 32-character id, UPS's maximum) and
  ``transactionSrc`` ("OrderHub"): the Track API refuses a call without them, and UPS support
  asks for the ``transId`` when a call is disputed.
* **Quote** = Rating ``POST /api/rating/{version}/Shoptimeintransit`` (every service, with
  transit times; plain ``Shop`` for a border shipment without a declared value, which UPS
  needs as the invoice total to estimate transit): one Rate per ``RatedShipment``. The request
  asks for taxes (``TaxInformationIndicator``); the amount is the contract price when UPS
  returns one (``NegotiatedRateCharges``), else the published one, each with its taxes when UPS
  states them (``TotalChargesWithTaxes``: Canadian HST, European VAT), else without
  (``TotalCharge`` / ``TotalCharges``). ``estimated_days`` is Time in Transit's
  ``EstimatedArrival.BusinessDaysInTransit`` (every service), else ``GuaranteedDelivery
  .BusinessDaysInTransit`` (guaranteed services only); ``estimated_delivery`` is its arrival
  date. Rating books nothing, so the POST is retried like a GET when UPS is down.
* **Services by origin.** UPS's codes mean different services depending on where the
  shipment starts (``01`` is Next Day Air from the US, Express from Canada): each code is read
  with the table of the shipment's origin country (``plugins.carriers.ups_services``, UPS's
  "Service Codes" appendix), and a service named when shipping is looked up the same way.
* **Buy** = Shipping ``POST /api/shipments/{version}/ship``. It is billed, so it is never
  repeated after UPS may have acted on it (the hub client retries a POST only when the server
  surely did not process it). The waybill's ``label`` is the reference ``ups-label:<1Z>``, not
  the image: UPS returns the label as base64 (tens of kilobytes) and the hub keeps 2,000
  characters; the image can be fetched again with UPS's Label Recovery API by tracking number.
  The tracking number is the first package's; ``carrier_shipment_id`` is the
  ``ShipmentIdentificationNumber`` the void needs; the cost is read as the quote's is (with
  taxes when UPS states them).
* **Track** = ``GET /api/track/v1/details/{inquiryNumber}``, one number per call
  (``track_batch = 1``), paced by ``TRACK_LIMIT``: UPS publishes no per-second figure, so the
  pace is a courtesy that keeps a polling burst from drawing 429s (which are retried anyway). A
  number UPS does not know yet (a label made minutes ago: ``TW0001`` "Tracking Information Not
  Found", or a 404) is an update with no events, not an error.
* **Push** = Track Alert: UPS POSTs one event per request to the subscribed URL with the
  ``credential`` header; it is compared in constant time with ``push_credential``.
* **Cancel** = ``DELETE /api/shipments/{version}/void/cancel/{shipmentidentificationnumber}``.
  A refusal (picked up, outside the void period: ``190102``) is a BusinessError with UPS's own
  code and message.
* **Errors.** UPS answers ``{"response": {"errors": [{"code", "message"}]}}``; its code and
  message become the error's message (400 → BusinessError, 401/403 → AuthError, 429 and 5xx
  retried by the hub's client, then RateLimited / Unavailable).

Tracking statuses
-----------------
An activity carries ``status.type`` (a letter or two), ``status.code`` (two characters),
``status.statusCode`` (three digits; ``descriptionCode`` in Track Alert) and a description.
``raw_code`` is ``"<type>/<code>"``. The normalised status is decided in this order:

1. ``STATUS_BY_STATUS_CODE``: the three-digit codes, which say most precisely what happened
   (a ``D`` event of code 040 is a parcel waiting at an Access Point, not yet delivered);
2. ``STATUS_BY_TYPE_AND_CODE``: the few type and code pairs that narrow their type (``I/OT``
   is out for delivery);
3. ``STATUS_BY_TYPE``: the type alone;
4. an exception still without a reason gets one from its description (``REASON_WORDS``); a
   failed delivery attempt becomes ``delivery_failed``.

A type UPS has not documented is ``info_received``: the lowest status, so an event nobody
understands never moves a shipment forward, while its raw code stays visible.

Times are UTC: from the activity's GMT date and time when UPS gives them (live answers write
``gmtTime`` as "094100" or "09:41:00"), else its local date and time at its ``gmtOffset``
("-06:00", also "-0600"), else the local time read as UTC (see ``_when``). Every instant is
range-checked (``hub.core.times``): an absurd date is a parse error naming the field.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import requests

from hub import hookimpl
from hub.core.adapters import (
    CarrierAdapter,
    InboundRequest,
    Parcel,
    PayloadError,
    Place,
    Rate,
    Service,
    ShipmentRequest,
    TrackingEvent,
    TrackingUpdate,
    Waybill,
)
from hub.core.http import AuthError, BusinessError, HttpError, RateLimit
from hub.core.times import OutOfRange, check_date, check_instant
from plugins.carriers import ups_services

log = logging.getLogger(__name__)
_E = TypeVar("_E", bound=HttpError)

DEFAULT_API_BASE = "https://onlinetools.ups.com"
SANDBOX_API_BASE = "https://wwwcie.ups.com"
DEFAULT_RATING_VERSION = "v2409"
DEFAULT_SHIPPING_VERSION = "v2409"
TRACK_VERSION = "v1"
TRANSACTION_SRC = "OrderHub"
DEFAULT_LABEL_FORMAT = "GIF"

# Renew the token this long before UPS says it ends, so no request leaves with a dying token.
TOKEN_MARGIN = timedelta(minutes=1)
# When UPS's answer has no readable lifetime: short, so a wrong guess costs only a token call.
FALLBACK_TOKEN_SECONDS = 300

TRACK_LIMIT = RateLimit("track", 2.0, 10)

# UPS requires pounds and inches from these origins; kilograms and centimetres elsewhere.
IMPERIAL_ORIGINS = frozenset({"US", "PR"})
KG_PER_LB = Decimal("0.45359237")  # exact, by definition of the pound
CM_PER_IN = Decimal("2.54")  # exact, by definition of the inch
TENTH = Decimal("0.1")
CENT = Decimal("0.01")
NAME_LIMIT = 35  # UPS's Name and AttentionName fields


# --- tracking status tables (see the module docstring for the order they are read in) -------

# Activity status types: Track API appendix and the Track Alert FAQ.
STATUS_BY_TYPE: dict[str, str] = {
    "M": "info_received",  # manifest: label created, billing information received
    "MV": "cancelled",  # manifest voided: the label was voided
    "P": "picked_up",  # pickup scan
    "I": "in_transit",  # in progress through the UPS network
    "U": "in_transit",  # update, usually a new scheduled delivery date
    "X": "exception",  # something out of the ordinary; the reason comes from its text
    "D": "delivered",
    "RS": "returned_to_sender",
    "DO": "in_transit",  # freight: delivered to the origin container freight station
    "DD": "in_transit",  # freight: at the destination freight station, not with the consignee
    "W": "in_transit",  # freight: warehousing
    "NA": "info_received",  # not available: says nothing, so it moves nothing forward
}

# Three-digit status codes (Track API ``statusCode``, Track Alert ``descriptionCode``), from
# the Track Alert examples and UPS's status code table.
STATUS_BY_STATUS_CODE: dict[str, tuple[str, str | None]] = {
    "003": ("info_received", None),  # Shipment Ready for UPS (label created)
    "044": ("info_received", None),  # In Transit to UPS: on its way, UPS has not scanned it
    "038": ("picked_up", None),  # Picked Up
    "005": ("in_transit", None),  # On the Way / In Transit
    "012": ("in_transit", None),  # Clearance in Progress
    "071": ("in_transit", None),  # Preparing for Delivery
    "021": ("out_for_delivery", None),  # Out for Delivery (Today)
    "017": ("available_for_pickup", None),  # Held for Customer Pickup
    "040": ("available_for_pickup", None),  # Delivered to a UPS Access Point, awaiting pickup
    "022": ("delivery_failed", "failed_attempt"),  # First Attempt Made
    "013": ("exception", None),  # Exception (reason from its description)
    "048": ("exception", "delayed"),  # Delay
    "051": ("exception", "weather"),  # Delay: Emergency Situation or Severe Weather
    "052": ("exception", "weather"),  # Delay: Severe Weather
    "053": ("exception", "weather"),  # Delay: Severe Weather, recovery in progress
    "011": ("delivered", None),  # Delivered
    "007": ("cancelled", None),  # Shipment Information Voided
}

# Type and two-character code pairs that say more than their type.
STATUS_BY_TYPE_AND_CODE: dict[tuple[str, str], tuple[str, str | None]] = {
    ("I", "OT"): ("out_for_delivery", None),  # "Out For Delivery Today"
}

# An exception's reason from words of its description, first match wins (a refusal that is
# being returned is a refusal). A missed delivery is not an exception but a failed attempt.
REASON_WORDS: tuple[tuple[str, str, str], ...] = (
    ("REFUSED", "exception", "refused"),
    ("DAMAGE", "exception", "damaged"),
    ("ADDRESS", "exception", "address"),
    ("WEATHER", "exception", "weather"),
    ("CUSTOMS", "exception", "customs"),
    ("BROKER", "exception", "customs"),
    ("ATTEMPT", "delivery_failed", "failed_attempt"),
    ("NOT AVAILABLE", "delivery_failed", "failed_attempt"),
    ("RETURN", "exception", "returned"),
    ("DELAY", "exception", "delayed"),
)

# Unknown activity types, reported once each per process rather than on every poll.
_unknown_types_seen: set[str] = set()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class UpsCarrier(CarrierAdapter):
    """One UPS shipper account. See the module docstring for set-up and behaviour."""

    name = "ups"
    title = "UPS (Rating, Shipping, Tracking and Track Alert)"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"rating", "shipping", "tracking", "tracking_push", "cancel"}
    )
    track_batch: ClassVar[int] = 1
    secret_settings: ClassVar[tuple[str, ...]] = ("client_secret", "push_credential")
    outbound_settings: ClassVar[tuple[str, ...]] = ("api_base",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "client_id": {"type": "string", "minLength": 1},
            "client_secret": {"type": "string", "minLength": 1},
            "account_number": {"type": "string", "pattern": "^[A-Za-z0-9]{6}$"},
            "push_credential": {"type": "string", "minLength": 16},
            # Credentials never travel in clear text, so only https is accepted.
            "api_base": {
                "type": "string",
                "pattern": r"^https://[^/?#\s]+/?$",
                "default": DEFAULT_API_BASE,
            },
            "rating_version": {
                "type": "string",
                "pattern": "^v[0-9]+$",
                "default": DEFAULT_RATING_VERSION,
            },
            "shipping_version": {
                "type": "string",
                "pattern": "^v[0-9]+$",
                "default": DEFAULT_SHIPPING_VERSION,
            },
            "unit_system": {"enum": ["metric", "imperial"]},
            # Where the account ships from: which services ``services()`` lists. Quotes and
            # labels always read UPS's codes with the shipment's own origin country.
            "shipper_country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "negotiated_rates": {"type": "boolean", "default": False},
            "label_format": {
                "enum": ["GIF", "PNG", "ZPL", "EPL", "SPL"],
                "default": DEFAULT_LABEL_FORMAT,
            },
        },
        "required": ["client_id", "client_secret", "account_number"],
        "additionalProperties": False,
    }

    def __init__(self, settings: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        # The wall clock the token's lifetime is measured on; tests pin it.
        self.now: Callable[[], datetime] = _utcnow
        self._token: str | None = None
        self._token_expires = datetime.min.replace(tzinfo=UTC)

    # --- the contract --------------------------------------------------------------------------

    def services(self) -> list[Service]:
        """Every service UPS documents from the account's ``shipper_country`` (from every
        origin when it is not set); which ones a lane offers, Shop says per quote."""
        country = self.settings.get("shipper_country")
        if country:
            table = ups_services.ORIGINS[ups_services.origin_of(country)]
            return [Service(key, title) for key, title in table.values()]
        return [Service(key, title) for key, title in ups_services.every_service().items()]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        """Every service UPS offers for the shipment (Rating "Shop", with transit times when
        UPS can give them), one Rate each."""
        version = self.settings.get("rating_version", DEFAULT_RATING_VERSION)
        body = rate_request(request, self._account, self._units(request), self._negotiated)
        option = body["RateRequest"]["Request"]["RequestOption"]
        response = self._call(
            "POST",
            f"/api/rating/{version}/{option}",
            what="rating",
            json=body,
            idempotent=True,  # rating books nothing: safe to repeat when UPS is busy
        )
        return self._parsed(response, lambda data: rates_from(data, request.origin.country))

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        """Buy the label (Shipping "ship"); never repeated once UPS may have billed it."""
        origin = request.origin.country
        if rate is not None and rate.carrier_ref:
            code = rate.carrier_ref
        else:
            code = service_code(service, origin)
        version = self.settings.get("shipping_version", DEFAULT_SHIPPING_VERSION)
        body = ship_request(
            request,
            code,
            ups_services.title_of(code, origin),
            self._account,
            self._units(request),
            self._negotiated,
            self.settings.get("label_format", DEFAULT_LABEL_FORMAT),
        )
        response = self._call("POST", f"/api/shipments/{version}/ship", what="shipping", json=body)
        return self._parsed(response, waybill_from)

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        """One Track API call per number (UPS takes one inquiry number per request)."""
        return [self._track_one(number) for number in tracking_numbers]

    def verify_push(self, request: InboundRequest) -> bool:
        """True when the ``credential`` header is the one given at subscription; compared in
        constant time. Without a configured ``push_credential`` nothing can be verified."""
        expected = self.settings.get("push_credential") or ""
        given = request.header("credential")
        if not expected or not given:
            return False
        return hmac.compare_digest(given.encode(), expected.encode())

    def parse_push(self, request: InboundRequest) -> list[TrackingUpdate]:
        """The one event a Track Alert POST carries; PayloadError when malformed."""
        try:
            data = json.loads(request.body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"ups: Track Alert body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PayloadError("ups: Track Alert body is not a JSON object")
        try:
            return [push_update(data)]
        except Malformed as exc:
            raise PayloadError(f"ups: Track Alert event: {exc}") from None

    def cancel(self, waybill: Waybill) -> None:
        """Void the shipment; a BusinessError with UPS's reason when UPS will not."""
        number = waybill.carrier_shipment_id or waybill.tracking_number
        version = self.settings.get("shipping_version", DEFAULT_SHIPPING_VERSION)
        response = self._call(
            "DELETE", f"/api/shipments/{version}/void/cancel/{quote(number, safe='')}", what="void"
        )
        status = self._parsed(response, void_status)
        if status is not None:
            raise BusinessError(
                f"UPS did not void shipment {number}: {status}",
                status=response.status_code,
                body=response.text[:2000],
            )

    # --- I/O -----------------------------------------------------------------------------------

    def _track_one(self, number: str) -> TrackingUpdate:
        try:
            response = self._call(
                "GET",
                f"/api/track/{TRACK_VERSION}/details/{quote(number, safe='')}",
                what="tracking",
                params={"locale": "en_US", "returnSignature": "false", "returnPOD": "false"},
                limit=TRACK_LIMIT,
            )
        except BusinessError as exc:
            # UPS documents 404 for a number it has no information on (yet).
            if exc.status == 404 and ups_errors(exc.body):
                return TrackingUpdate(number, ())
            raise
        return self._parsed(response, lambda data: track_update(number, data))

    def _call(self, method: str, path: str, *, what: str, **kw: Any) -> requests.Response:
        """One UPS API request with a current token and UPS's transaction headers; refusals
        come back worded with UPS's own error code and message."""
        headers = {
            "Authorization": f"Bearer {self._access_token()}",
            "transId": uuid.uuid4().hex,
            "transactionSrc": TRANSACTION_SRC,
            "Accept": "application/json",
        }
        try:
            return self.http.request(method, self._url(path), headers=headers, **kw)
        except AuthError as exc:
            self._token = None  # expired or revoked: the next call starts with a new one
            raise exc.reworded(
                kind=AuthError,
                message=f"UPS refused the {what} request ({_said(exc)}); check that the app is"
                f" active and includes the {what.capitalize()} product",
            ) from exc
        except BusinessError as exc:
            raise exc.reworded(
                kind=BusinessError, message=f"UPS refused the {what}: {_said(exc)}"
            ) from exc

    def _parsed(self, response: requests.Response, read: Callable[[dict[str, Any]], Any]) -> Any:
        """Decode a UPS answer (amounts stay Decimal) and map it; a body that is not what UPS
        documents is a ParseError that says which field."""
        try:
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self.http.parse_error(response, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise self.http.parse_error(response, "the body is not a JSON object")
        try:
            return read(data)
        except Malformed as exc:
            raise self.http.parse_error(response, str(exc)) from None

    def _access_token(self) -> str:
        """A current OAuth token, made from the client credentials when the cached one is
        missing or about to expire."""
        now = self.now()
        if self._token is not None and now < self._token_expires:
            return self._token
        try:
            # Making a token changes nothing at UPS, so the POST may be retried like a GET.
            answer = self.http.json(
                "POST",
                self._url("/security/v1/oauth/token"),
                data={"grant_type": "client_credentials"},
                auth=(self.settings["client_id"], self.settings["client_secret"]),
                headers={"x-merchant-id": self._account, "Accept": "application/json"},
                idempotent=True,
            )
        except HttpError as exc:
            if exc.retryable:
                raise  # UPS is down or busy: tried again later
            raise exc.reworded(
                kind=AuthError,
                message=f"UPS OAuth refused the client credentials ({_said(exc)}); check client_id,"
                " client_secret and account_number against the app at developer.ups.com",
            ) from exc
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthError("UPS OAuth answered without an access_token")
        self._token = token
        self._token_expires = now + timedelta(seconds=_lifetime(answer)) - TOKEN_MARGIN
        return token

    def _url(self, path: str) -> str:
        return self.settings.get("api_base", DEFAULT_API_BASE).rstrip("/") + path

    def _units(self, request: ShipmentRequest) -> Units:
        system = self.settings.get("unit_system")
        if system is None:
            system = "imperial" if request.origin.country.upper() in IMPERIAL_ORIGINS else "metric"
        return IMPERIAL if system == "imperial" else METRIC

    @property
    def _account(self) -> str:
        return str(self.settings["account_number"])

    @property
    def _negotiated(self) -> bool:
        return bool(self.settings.get("negotiated_rates", False))


# --- units -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """How parcels are measured for UPS: codes and conversions from the hub's kg and cm.
    Values are rounded up to a tenth, so a parcel is never declared lighter or smaller than
    it is (UPS re-weighs and bills the difference)."""

    weight_code: str
    weight_name: str
    length_code: str
    length_name: str
    per_kg: Decimal
    per_cm: Decimal

    def weight(self, kg: Decimal) -> str:
        return str(max(kg * self.per_kg, TENTH).quantize(TENTH, rounding=ROUND_UP))

    def length(self, cm: Decimal) -> str:
        return str(max(cm * self.per_cm, TENTH).quantize(TENTH, rounding=ROUND_UP))


METRIC = Units("KGS", "Kilograms", "CM", "Centimeters", Decimal(1), Decimal(1))
IMPERIAL = Units("LBS", "Pounds", "IN", "Inches", 1 / KG_PER_LB, 1 / CM_PER_IN)


# --- requests (pure: built from the hub's types, tested without the network) ---------------


def service_code(service: str, origin: str) -> str:
    """The UPS code of a service as OrderHub names it (or as UPS codes it) for a shipment
    from ``origin``; a BusinessError naming that origin's services when it has no such one."""
    code = ups_services.code_of(service, origin)
    if code is None:
        known = ", ".join(sorted(ups_services.keys_of(origin)))
        raise BusinessError(
            f"UPS has no service {service!r} for shipments from {origin.upper()}; known: {known}"
        )
    return code


def rate_request(
    request: ShipmentRequest, account: str, units: Units, negotiated: bool
) -> dict[str, Any]:
    """A Rating ``RateRequest`` for every service, billed to the shipper's account, asking
    for taxes (``TaxInformationIndicator``: UPS then states the total with them) and, when
    UPS can answer it, for transit times ("Shoptimeintransit")."""
    shipment: dict[str, Any] = {
        "Shipper": _party(request.origin, shipper_number=account),
        "ShipFrom": _party(request.origin),
        "ShipTo": _party(request.destination),
        "PaymentDetails": {"ShipmentCharge": [_bill_shipper(account)]},
        "NumOfPieces": str(len(request.parcels)),
        "Package": [_package(p, units, "PackagingType") for p in request.parcels],
        "TaxInformationIndicator": "",
    }
    if negotiated:
        shipment["ShipmentRatingOptions"] = {"NegotiatedRatesIndicator": "Y"}
    transit = _time_in_transit(request, units)
    if transit is not None:
        shipment.update(transit)
    option = "Shop" if transit is None else "Shoptimeintransit"
    return {"RateRequest": {"Request": _request_block(option, request), "Shipment": shipment}}


def _time_in_transit(request: ShipmentRequest, units: Units) -> dict[str, Any] | None:
    """What Rating needs to answer with transit times: the bill type (03: not documents only)
    and the shipment's total weight; across a border also the invoice total, which UPS
    requires there (from the declared value). None when a border shipment has no declared
    value: UPS would refuse the whole quote, so it is asked without transit times."""
    block: dict[str, Any] = {
        "DeliveryTimeInformation": {"PackageBillType": "03"},
        "ShipmentTotalWeight": {
            "UnitOfMeasurement": {"Code": units.weight_code, "Description": units.weight_name},
            "Weight": units.weight(sum((p.weight_kg for p in request.parcels), Decimal(0))),
        },
    }
    if request.origin.country.upper() != request.destination.country.upper():
        value = request.declared_value
        if value is None or not value.is_finite() or value < 1:
            return None  # UPS accepts invoice totals from 1
        block["InvoiceLineTotal"] = {
            "CurrencyCode": request.currency.upper(),
            "MonetaryValue": str(value.quantize(CENT, rounding=ROUND_UP)),
        }
    return block


def ship_request(
    request: ShipmentRequest,
    code: str,
    title: str,
    account: str,
    units: Units,
    negotiated: bool,
    label_format: str,
) -> dict[str, Any]:
    """A Shipping ``ShipmentRequest`` for one service, with a 4x6 label. "validate" makes UPS
    refuse a US city, state and ZIP that do not belong together, rather than print a label
    for an address it cannot reach."""
    shipment: dict[str, Any] = {
        "Shipper": _party(request.origin, shipper_number=account),
        "ShipFrom": _party(request.origin),
        "ShipTo": _party(request.destination),
        "PaymentInformation": {"ShipmentCharge": [_bill_shipper(account)]},
        "Service": {"Code": code, "Description": title},
        "Package": [_package(p, units, "Packaging") for p in request.parcels],
        "TaxInformationIndicator": "",
    }
    if negotiated:
        shipment["ShipmentRatingOptions"] = {"NegotiatedRatesIndicator": "Y"}
    label: dict[str, Any] = {
        "LabelImageFormat": {"Code": label_format, "Description": label_format},
        "LabelStockSize": {"Height": "6", "Width": "4"},
    }
    if label_format == "GIF":
        label["HTTPUserAgent"] = "Mozilla/4.5"  # UPS's documented default for GIF images
    return {
        "ShipmentRequest": {
            "Request": _request_block("validate", request),
            "Shipment": shipment,
            "LabelSpecification": label,
        }
    }


def _request_block(option: str, request: ShipmentRequest) -> dict[str, Any]:
    block: dict[str, Any] = {"RequestOption": option}
    if request.reference:
        # Echoed back by UPS: ties a disputed call to the order that made it.
        block["TransactionReference"] = {"CustomerContext": request.reference[:512]}
    return block


def _bill_shipper(account: str) -> dict[str, Any]:
    return {"Type": "01", "BillShipper": {"AccountNumber": account}}  # 01 = transportation


def _party(place: Place, *, shipper_number: str | None = None) -> dict[str, Any]:
    party: dict[str, Any] = {}
    name = place.company or place.name
    if name:
        party["Name"] = name[:NAME_LIMIT]
    if place.name:
        party["AttentionName"] = place.name[:NAME_LIMIT]
    if shipper_number:
        party["ShipperNumber"] = shipper_number
    if place.phone:
        party["Phone"] = {"Number": place.phone}
    if place.email:
        party["EMailAddress"] = place.email
    address: dict[str, Any] = {
        "AddressLine": [line for line in (place.line1, place.line2) if line],
        "City": place.city,
        "StateProvinceCode": place.region,
        "PostalCode": place.postcode,
        "CountryCode": place.country.upper(),
    }
    party["Address"] = {key: value for key, value in address.items() if value}
    return party


def _package(parcel: Parcel, units: Units, packaging_key: str) -> dict[str, Any]:
    """One package ("02" = the customer's own packaging); dimensions only when all three are
    known, since UPS rejects a partial set."""
    package: dict[str, Any] = {
        packaging_key: {"Code": "02", "Description": "Package"},
        "PackageWeight": {
            "UnitOfMeasurement": {"Code": units.weight_code, "Description": units.weight_name},
            "Weight": units.weight(parcel.weight_kg),
        },
    }
    sides = (parcel.length_cm, parcel.width_cm, parcel.height_cm)
    if all(side is not None for side in sides):
        length, width, height = (units.length(side) for side in sides)  # type: ignore[arg-type]
        package["Dimensions"] = {
            "UnitOfMeasurement": {"Code": units.length_code, "Description": units.length_name},
            "Length": length,
            "Width": width,
            "Height": height,
        }
    return package


# --- responses (pure) ------------------------------------------------------------------------


class Malformed(Exception):
    """A UPS document is not the shape UPS documents; the message names the field."""


def rates_from(data: Mapping[str, Any], origin: str) -> list[Rate]:
    """One Rate per ``RatedShipment`` (an object, not a list, before v2409), its code read
    with the table of the shipment's ``origin`` country. Days in transit are the estimate of
    ``TimeInTransit`` when UPS gives one (every service), else the guarantee's (guaranteed
    services only); the arrival date is Time in Transit's."""
    response = _obj(data, "RateResponse", "")
    rates = []
    for i, rated in enumerate(_items(response.get("RatedShipment"))):
        at = f"RateResponse.RatedShipment[{i}]"
        if not isinstance(rated, dict):
            raise Malformed(f"{at} is not an object")
        code = _need_text(_obj(rated, "Service", at), "Code", f"{at}.Service")
        amount, currency = _charges(rated, rated, at)
        transit = _opt_obj(rated, "TimeInTransit", at)
        summary = _opt_obj(transit, "ServiceSummary", f"{at}.TimeInTransit")
        arrival = _opt_obj(summary, "EstimatedArrival", f"{at}.TimeInTransit.ServiceSummary")
        where = f"{at}.TimeInTransit.ServiceSummary.EstimatedArrival"
        days = _days(arrival, "BusinessDaysInTransit")
        if days is None:
            days = _days(_opt_obj(rated, "GuaranteedDelivery", at), "BusinessDaysInTransit")
        day = _text(_opt_obj(arrival, "Arrival", where), "Date")
        rates.append(
            Rate(
                carrier=UpsCarrier.name,
                service=ups_services.name_of(code, origin),
                amount=amount,
                currency=currency,
                estimated_days=days,
                estimated_delivery=_day(day, f"{where}.Arrival.Date") if day else None,
                carrier_ref=code,
            )
        )
    return rates


def _days(container: Mapping[str, Any] | None, key: str) -> int | None:
    """A count of business days ("2"); anything else is no estimate rather than an error."""
    days = _text(container, key)
    return int(days) if days and days.isdigit() and len(days) <= 3 else None


def waybill_from(data: Mapping[str, Any]) -> Waybill:
    """The waybill of a Shipping ``ShipmentResponse``: the first package's tracking number, a
    label reference (never the image), the shipment id and what UPS charged."""
    results = _obj(_obj(data, "ShipmentResponse", ""), "ShipmentResults", "ShipmentResponse")
    shipment_id = _text(results, "ShipmentIdentificationNumber")
    at = "ShipmentResponse.ShipmentResults"
    try:
        packages = _items(results.get("PackageResults"))
        first = packages[0] if packages else None
        if not isinstance(first, dict):
            raise Malformed(f"{at}.PackageResults is missing")
        tracking = _need_text(first, "TrackingNumber", f"{at}.PackageResults[0]")
        # UPS documents the charges as optional here: a label without a price is still bought.
        plain = _opt_obj(results, "ShipmentCharges", at)
        priced = results.get("NegotiatedRateCharges") or plain
        amount, currency = (None, None)
        if priced:
            amount, currency = _charges(results, plain, at, plain_at=f"{at}.ShipmentCharges")
    except Malformed as exc:
        # UPS has made (and will bill) the shipment by now: say which one, so it can be voided.
        if shipment_id:
            raise Malformed(f"{exc} (shipment {shipment_id} was created; void it)") from None
        raise
    return Waybill(
        tracking_number=tracking,
        label=f"ups-label:{tracking}",
        carrier_shipment_id=shipment_id or tracking,
        amount=amount,
        currency=currency,
    )


def void_status(data: Mapping[str, Any]) -> str | None:
    """None when UPS voided the shipment, else UPS's description of what happened."""
    summary = _obj(_obj(data, "VoidShipmentResponse", ""), "SummaryResult", "VoidShipmentResponse")
    status = _obj(summary, "Status", "VoidShipmentResponse.SummaryResult")
    code = _clean(_need_text(status, "Code", "VoidShipmentResponse.SummaryResult.Status"))
    if code == "1":
        return None
    return _clean(_text(status, "Description") or "") or f"status {code}"


def track_update(number: str, data: Mapping[str, Any]) -> TrackingUpdate:
    """Events and the current estimate from a Track API ``trackResponse``."""
    shipments = _items(_obj(data, "trackResponse", "").get("shipment"))
    events: list[TrackingEvent] = []
    estimate: date | None = None
    for i, shipment in enumerate(shipments):
        if not isinstance(shipment, dict):
            raise Malformed(f"trackResponse.shipment[{i}] is not an object")
        packages = [p for p in _items(shipment.get("package")) if isinstance(p, dict)]
        # Asked by package number, UPS answers that package; asked by a shipment number, it may
        # answer all of the shipment's packages, and the first one stands for the shipment.
        mine = [p for p in packages if _text(p, "trackingNumber") == number] or packages[:1]
        for j, package in enumerate(mine):
            at = f"trackResponse.shipment[{i}].package[{j}]"
            for k, activity in enumerate(_items(package.get("activity"))):
                events.append(_activity_event(activity, f"{at}.activity[{k}]"))
            estimate = estimate or _estimate(package)
    return TrackingUpdate(number, tuple(events), estimate)


def push_update(data: Mapping[str, Any]) -> TrackingUpdate:
    """The update one Track Alert event makes."""
    number = _need_text(data, "trackingNumber", "")
    status = _obj(data, "activityStatus", "")
    at = _when(
        data,
        gmt=("gmtActivityDate", "gmtActivityTime"),
        local=("localActivityDate", "localActivityTime"),
        offset=None,  # Track Alert states no offset
        at="",
    )
    event = _event(
        _need_text(status, "type", "activityStatus"),
        _text(status, "code") or "",
        _text(status, "descriptionCode"),
        _text(status, "description") or "",
        at,
        _location(_opt_obj(data, "activityLocation", "")),
    )
    scheduled = _text(data, "scheduledDeliveryDate")
    estimate = None
    if scheduled and not _text(data, "actualDeliveryDate"):
        estimate = _day(scheduled, "scheduledDeliveryDate")
    return TrackingUpdate(number, (event,), estimate)


def _activity_event(activity: Any, at: str) -> TrackingEvent:
    if not isinstance(activity, dict):
        raise Malformed(f"{at} is not an object")
    status = _obj(activity, "status", at)
    moment = _when(
        activity, gmt=("gmtDate", "gmtTime"), local=("date", "time"), offset="gmtOffset", at=at
    )
    location = _opt_obj(activity, "location", at)
    return _event(
        _need_text(status, "type", f"{at}.status"),
        _text(status, "code") or "",
        _text(status, "statusCode"),
        _text(status, "description") or "",
        moment,
        _location(_opt_obj(location, "address", f"{at}.location") if location else None),
    )


def _event(
    kind: str,
    code: str,
    status_code: str | None,
    description: str,
    at: datetime,
    location: str | None,
) -> TrackingEvent:
    status, reason = status_of(kind, code, status_code, description)
    return TrackingEvent(
        status=status,
        at=at,
        raw_code=f"{kind}/{code}",
        raw_text=description,
        reason=reason,
        location=location,
    )


def status_of(
    kind: str, code: str, status_code: str | None, description: str
) -> tuple[str, str | None]:
    """The normalised status and reason of one UPS activity (the module docstring has the
    order the tables are read in)."""
    kind, code = kind.strip().upper(), code.strip().upper()
    number = (status_code or "").strip()
    if number.isdigit():
        number = number.zfill(3)
    if number in STATUS_BY_STATUS_CODE:
        status, reason = STATUS_BY_STATUS_CODE[number]
    elif (kind, code) in STATUS_BY_TYPE_AND_CODE:
        status, reason = STATUS_BY_TYPE_AND_CODE[(kind, code)]
    elif kind in STATUS_BY_TYPE:
        status, reason = STATUS_BY_TYPE[kind], None
    else:
        if kind not in _unknown_types_seen:
            _unknown_types_seen.add(kind)
            log.warning("ups: activity type %r is not documented; read as info_received", kind)
        return "info_received", None
    if status == "exception" and reason is None:
        text = description.upper()
        for word, worded_status, worded_reason in REASON_WORDS:
            if word in text:
                return worded_status, worded_reason
    return status, reason


def _estimate(package: Mapping[str, Any]) -> date | None:
    """The rescheduled delivery date if UPS set one, else the scheduled one; none once
    delivered."""
    found: dict[str, str] = {}
    for entry in _items(package.get("deliveryDate")):
        if isinstance(entry, dict) and _text(entry, "type") and _text(entry, "date"):
            found[str(_text(entry, "type")).upper()] = str(_text(entry, "date"))
    if "DEL" in found:
        return None
    for kind in ("RDD", "SDD"):
        if kind in found:
            return _day(found[kind], f"deliveryDate[{kind}]")
    return None


def _location(address: Mapping[str, Any] | None) -> str | None:
    if not address:
        return None
    parts = (
        _text(address, "city"),
        _text(address, "stateProvince"),
        _text(address, "countryCode") or _text(address, "country"),
    )
    return ", ".join(part for part in parts if part) or None


def _charges(
    container: Mapping[str, Any],
    plain: Mapping[str, Any] | None,
    at: str,
    *,
    plain_at: str | None = None,
) -> tuple[Decimal, str]:
    """What the shipment costs: the contract price when UPS states one, else the published
    one; each with its taxes when UPS states them (``TotalChargesWithTaxes``, given when the
    request asked for taxes and some apply, e.g. Canadian HST or European VAT). ``plain`` holds
    the published ``TotalCharges`` (the RatedShipment itself; ShipmentResults' ShipmentCharges)."""
    plain_at = plain_at or at
    negotiated = _opt_obj(container, "NegotiatedRateCharges", at)
    choices = (
        (negotiated, "TotalChargesWithTaxes", f"{at}.NegotiatedRateCharges"),
        (negotiated, "TotalCharge", f"{at}.NegotiatedRateCharges"),
        (plain, "TotalChargesWithTaxes", plain_at),
    )
    for holder, key, where in choices:
        charge = _opt_obj(holder, key, where)
        if charge is not None and _text(charge, "MonetaryValue") is not None:
            where = f"{where}.{key}"
            break
    else:
        if plain is None:
            raise Malformed(f"{plain_at} is missing")
        charge, where = _obj(plain, "TotalCharges", plain_at), f"{plain_at}.TotalCharges"
    raw = _need_text(charge, "MonetaryValue", where)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise Malformed(f"{where}.MonetaryValue is not an amount: {raw!r}") from None
    if not amount.is_finite() or amount < 0:
        raise Malformed(f"{where}.MonetaryValue is not an amount: {raw!r}")
    return amount, _need_text(charge, "CurrencyCode", where).upper()


# --- small readers -----------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """UPS sends a list, or (before v2403/v2409) a lone object where there is one item."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _obj(data: Mapping[str, Any], key: str, at: str) -> Mapping[str, Any]:
    found = _opt_obj(data, key, at)
    if found is None:
        raise Malformed(f"{_path(at, key)} is missing")
    return found


def _opt_obj(data: Mapping[str, Any] | None, key: str, at: str) -> Mapping[str, Any] | None:
    value = data.get(key) if data is not None else None
    if value is None or value == "":
        return None
    if not isinstance(value, dict):
        raise Malformed(f"{_path(at, key)} is not an object")
    return value


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = data.get(key) if data is not None else None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _need_text(data: Mapping[str, Any], key: str, at: str) -> str:
    value = _text(data, key)
    if value is None:
        raise Malformed(f"{_path(at, key)} is missing")
    return value


def _path(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _clean(text: str) -> str:
    """UPS's test environment has answered codes like "&#xD;&#xD;1" (carriage returns left
    encoded); the meaning is the text around them."""
    return text.replace("&#xD;", "").strip()


def _day(value: str, at: str) -> date:
    try:
        return check_date(datetime.strptime(value.strip(), "%Y%m%d").date())
    except OutOfRange as exc:
        raise Malformed(f"{at}: {value!r} {exc}") from None
    except ValueError:
        raise Malformed(f"{at} is not a YYYYMMDD date: {value!r}") from None


# HHMMSS, which UPS also sends without its leading zeros ("74700" is 07:47:00), or HH:MM:SS.
_DIGITS_TIME = re.compile(r"[0-9]{1,6}")
_COLON_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
# -05:00, -0500 or -05; +00:00 or Z for UTC.
_OFFSET = re.compile(r"([+-])([0-9]{1,2})(?::?([0-9]{2}))?")
MAX_OFFSET = timedelta(hours=14)  # the furthest any zone is from UTC


def _clock(text: str) -> tuple[int, int, int]:
    """Hours, minutes and seconds of a UPS time; ValueError when it is none."""
    text = text.strip()
    if _DIGITS_TIME.fullmatch(text):
        digits = text.zfill(6)
        parts = (int(digits[:2]), int(digits[2:4]), int(digits[4:]))
    elif match := _COLON_TIME.fullmatch(text):
        parts = (int(match[1]), int(match[2]), int(match[3] or 0))
    else:
        raise ValueError("not HHMMSS or HH:MM:SS")
    hours, minutes, seconds = parts
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError("not a time of day")
    return parts


def _zone(text: str) -> timezone:
    """A UTC offset as UPS writes it (``-06:00``, sometimes ``-0600``); ValueError if not."""
    text = text.strip()
    if text.upper() == "Z":
        return UTC
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError("not ±HH:MM")
    size = timedelta(hours=int(match[2]), minutes=int(match[3] or 0))
    if size > MAX_OFFSET or int(match[3] or 0) > 59:
        raise ValueError("not a UTC offset")
    return timezone(-size if match[1] == "-" else size)


def _instant(day: str, time: str, zone: timezone) -> datetime:
    """The UTC instant of a UPS date (YYYYMMDD) and time (blank: midnight) at ``zone``, in
    the hub's range; ValueError (OutOfRange for a well-formed but absurd one) when none."""
    moment = datetime.strptime(day.strip(), "%Y%m%d")
    if time.strip():
        hours, minutes, seconds = _clock(time)
        moment = moment.replace(hour=hours, minute=minutes, second=seconds)
    return check_instant(moment.replace(tzinfo=zone))


def _when(
    data: Mapping[str, Any],
    *,
    gmt: tuple[str, str],
    local: tuple[str, str],
    offset: str | None,
    at: str,
) -> datetime:
    """When an activity happened, in UTC, from the first reading that can be read:

    1. its GMT date and time (live answers write the time as "094100" or "09:41:00");
    2. its local date and time at its ``gmtOffset`` ("-06:00", also "-0600");
    3. its local date and time read as UTC, when no offset is given or readable: wrong by at
       most the place's offset, which only shifts that event, while refusing it would fail
       every poll of the parcel; statuses never move backwards, so a scan placed a few hours
       off cannot undo a later one.

    The GMT fields and the offset are extras (the Track API gives them no format, and live
    answers differ from its examples), so one that cannot be read gives way to the next
    reading; the local date (YYYYMMDD) and time (HHMMSS) are documented, and an activity whose
    local date cannot be read either is Malformed. Track Alert states no offset."""
    gmt_day, gmt_time = _text(data, gmt[0]), _text(data, gmt[1])
    if gmt_day and gmt_time:
        try:
            return _instant(gmt_day, gmt_time, UTC)
        except ValueError:
            pass  # an unreadable extra: the local reading decides
    day, time = _need_text(data, local[0], at), _text(data, local[1]) or ""
    zone = UTC
    stated = _text(data, offset) if offset else None
    if stated:
        with contextlib.suppress(ValueError):  # unknown offset: read as UTC (3. above)
            zone = _zone(stated)
    try:
        return _instant(day, time, zone)
    except OutOfRange as exc:
        raise Malformed(f"{_path(at, local[0])}: {day} {time} {exc}") from None
    except ValueError:
        raise Malformed(
            f"{_path(at, local[0])}: not a YYYYMMDD date and HHMMSS time: {day!r} {time!r}"
        ) from None


def _lifetime(answer: Mapping[str, Any]) -> int:
    """UPS writes ``expires_in`` as a string of seconds."""
    raw = answer.get("expires_in")
    seconds = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    return int(seconds) if seconds.isdigit() and int(seconds) > 0 else FALLBACK_TOKEN_SECONDS


def ups_errors(body: str | None) -> str:
    """UPS's ``{"response": {"errors": [{"code", "message"}]}}`` (Track Alert sometimes drops
    the ``response`` wrapper) as one readable line; empty when the body is not that."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    container = data.get("response") if isinstance(data.get("response"), dict) else data
    errors = container.get("errors")
    if not isinstance(errors, list):
        return ""
    said = [
        ": ".join(str(e[k]).strip() for k in ("code", "message") if e.get(k))
        for e in errors
        if isinstance(e, dict)
    ]
    return "; ".join(s for s in said if s)


def _said(exc: HttpError) -> str:
    return ups_errors(exc.body) or f"HTTP {exc.status}"


@hookimpl
def register_carriers() -> list[type[CarrierAdapter]]:
    return [UpsCarrier]
