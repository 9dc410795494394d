"""The ``easypost`` carrier: rates, labels, tracking and refunds from many carriers through
EasyPost's REST API v2 (https://docs.easypost.com), in plain HTTP through the hub's client.

Setting up an account
---------------------
* ``api_key``: an EasyPost API key (a Test key for trying things out, a Production key to buy
  real labels). It is the Basic-auth user name of every request, with an empty password.
* ``carrier_accounts`` (optional): EasyPost carrier account ids (``ca_…``) to rate with. Without
  it, EasyPost rates with every carrier account enabled on the EasyPost account.
* ``webhook_secret`` (optional): the secret given when the EasyPost webhook was created; without
  it every tracking push is refused, because it cannot be told from a forgery.
* ``api_base``: only for tests or a proxy; https://api.easypost.com by default.

``api_key`` and ``webhook_secret`` are secrets: the hub stores them sealed (or as ``{"$env": …}``
references) and never shows them again.

How it maps onto EasyPost, and why
----------------------------------
* **Quote** creates a Shipment (``POST /v2/shipments`` with ``to_address``, ``from_address`` and
  ``parcel`` inline); EasyPost answers with its ``rates``. Each becomes a Rate whose carrier is
  ``"easypost:<EasyPost's carrier>"`` (e.g. ``easypost:USPS``): the plugin's name first, like
  every other carrier plugin's rates, then the carrier that will really move the parcel, which
  is what people recognise. The service is EasyPost's own (``Priority``, ``GroundAdvantage``),
  and ``carrier_ref`` is ``"<shipment id>:<rate id>"``, which is what buying needs. A carrier
  that fails to rate is a ``messages`` entry, logged; when no carrier rated at all, the
  messages become a BusinessError. A rate without a currency cannot be compared with any
  other: it is left out with a note (``Rates.notes``, listed with the quote's errors) and the
  other rates stand. Creating a Shipment buys nothing, so this POST is retried
  like a read when EasyPost is busy. ``services()`` lists nothing: what an EasyPost account
  offers is whatever its carrier accounts offer, which only a quote tells.
* **Units.** EasyPost wants ounces and inches; the hub speaks kilograms and centimetres. Both
  are converted exactly (1 oz = 28.349523125 g, 1 in = 2.54 cm) and rounded *up* to a tenth,
  because a parcel declared lighter or smaller than it is gets a carrier surcharge later.
  Dimensions are sent only when all three are known. EasyPost takes one parcel per Shipment,
  so a request with several parcels is refused rather than half-quoted.
* **Buying** is ``POST /v2/shipments/{id}/buy`` with ``{"rate": {"id": …}}``. With a quoted
  rate's ``carrier_ref`` that exact rate is bought; without one, a Shipment is created and the
  cheapest rate of the asked service (and of the rate's carrier, when a rate is given) is
  bought. A buy charges the account, so it is never repeated after the request may have
  reached EasyPost (the hub's client does not retry a POST then). A buy that EasyPost refuses
  is checked against the Shipment: if that rate is already bought (an earlier attempt whose
  answer was lost), its label is returned instead of an error, so buying by ``carrier_ref`` is
  safe to repeat.
* **Tracking** asks for one Tracker per number (``POST /v2/trackers``). EasyPost returns the
  existing Tracker for a code it already tracks (every label bought through it has one), so
  this POST is repeatable and is retried like a read. A number EasyPost refuses (a code no
  carrier recognises) is logged and left out; the other numbers of the batch still answer.
* **Pushes** are webhook Events; only ``tracker.created`` and ``tracker.updated`` carry
  tracking. The ``X-Hmac-Signature`` header is ``hmac-sha256-hex=`` and the hex HMAC-SHA256 of
  the raw body, keyed with the webhook secret after Unicode NFKD normalisation and UTF-8
  encoding, as EasyPost's own client libraries compute it.
* **Cancel** is a refund request (``POST /v2/shipments/{id}/refund``). ``submitted`` and
  ``refunded`` mean the label is void. ``rejected`` is a BusinessError (EasyPost notes that a
  refund asked for right after the label was made can be wrongly rejected, so it may be asked
  again later). ``not_applicable`` is what bill-on-scan carriers answer: they charge only for a
  label that is scanned, so there is nothing to refund and an unused label costs nothing; it is
  accepted with a warning.
* **Errors.** EasyPost's error body ``{"error": {"code", "message", "errors"}}`` is added to the
  hub's typed error, so an operator reads e.g. ``ADDRESS.VERIFY.FAILURE: Address not found
  (street1: House number is missing)`` instead of a bare 422.

Tracking statuses
-----------------
EasyPost gives each scan a ``status`` (the parcel's state) and a ``status_detail`` (a
refinement of it); both are kept as the raw code ``"status/status_detail"``. The status
decides first and the detail refines within it (``map_status``): EasyPost's final statuses
(delivered, returned to sender, cancelled) stand; ``failure`` is a failed delivery whose
detail gives the reason (``failure/delayed`` with "Customer not available or business
closed" is a failed attempt, not a late parcel), unless the detail is worse (lost, damaged,
refused, returning) or no delivery was tried (a hold, a shipment exception, information the
carrier waits for); for a parcel on its way a detail that names a problem (lost, damaged, a
delay, ``awaiting_information``) makes it an exception with that reason. The carrier's
message refines a reason where the detail is vague: what ``awaiting_information`` waits for
(an address, customs papers), a failed delivery that was a refusal. See ``STATUSES``,
``PROBLEMS`` and ``FAILURE_PROBLEMS`` below. Two choices differ from a word-for-word reading
of the hub's statuses (``TRACKING_STATUSES``): EasyPost's ``unknown`` means "no information
from the carrier yet" (a label just bought), so a scan with it gives no event at all rather
than a terminal ``expired`` that would stop tracking a parcel before its first scan, while the
``expired`` detail (EasyPost stopped tracking) does give ``expired``; and ``in_transit`` with
the ``return`` detail (on its way back) is an exception with reason "returned", because the
terminal ``returned_to_sender`` is kept for EasyPost's ``return_to_sender``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote as quote_path

import requests

from hub import hookimpl
from hub.core.adapters import (
    CarrierAdapter,
    InboundRequest,
    Parcel,
    PayloadError,
    Place,
    Rate,
    Rates,
    ShipmentRequest,
    TrackingEvent,
    TrackingUpdate,
    Waybill,
)
from hub.core.http import AuthError, BusinessError, HttpError
from hub.core.times import OutOfRange, check_instant

logger = logging.getLogger("orderhub.carriers.easypost")

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.easypost.com"

# Exact definitions: the avoirdupois ounce is 28.349523125 g, the inch 2.54 cm.
OUNCES_PER_KG = Decimal(1000) / Decimal("28.349523125")
CM_PER_INCH = Decimal("2.54")
TENTH = Decimal("0.1")

SIGNATURE_HEADER = "X-Hmac-Signature"
SIGNATURE_PREFIX = "hmac-sha256-hex="
TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})

REFUND_DONE = frozenset({"submitted", "refunded"})

# --- tracking status mapping (see the module docstring) ------------------------------------

# EasyPost status -> (OrderHub status, reason). "unknown" is absent on purpose: no event.
STATUSES: dict[str, tuple[str, str | None]] = {
    "pre_transit": ("info_received", None),
    "in_transit": ("in_transit", None),
    "out_for_delivery": ("out_for_delivery", None),
    "available_for_pickup": ("available_for_pickup", None),
    "delivered": ("delivered", None),
    "return_to_sender": ("returned_to_sender", "returned"),
    "failure": ("delivery_failed", "failed_attempt"),
    "cancelled": ("cancelled", None),
    "error": ("exception", None),
}
# EasyPost's last word on a parcel: a detail only refines the reason of a return.
FINAL_STATUSES = frozenset({"delivered", "return_to_sender", "cancelled"})
RETURN_REASONS = {"refused": "refused", "address_correction": "address", "damaged": "damaged"}
# Details that name a problem, with the exception reason they give a parcel that is not
# (yet) a failed delivery: pre_transit, in_transit, out_for_delivery, available_for_pickup,
# error. "awaiting_information" gets its reason from the carrier's message (AWAITING_WORDS).
PROBLEMS: dict[str, str | None] = {
    "lost": "lost",
    "damaged": "damaged",
    "refused": "refused",
    "weather_delay": "weather",
    "delayed": "delayed",
    "missorted": "delayed",  # sent the wrong way: it will be late
    "held": None,
    "transit_exception": None,
    "awaiting_information": "awaiting_information",
    "return": "returned",
}
# Within ``failure`` (a delivery that failed) only these details are something else than a
# failed attempt: worse (lost, damaged, refused, on its way back), or no delivery attempt at
# all (a shipment exception, a hold, information the carrier waits for).
FAILURE_PROBLEMS = frozenset(
    {"lost", "damaged", "refused", "return", "held", "transit_exception", "awaiting_information"}
)
# The reason a failed delivery gets from its detail; any other detail ("delayed": the
# delivery is late because it failed, "delivery_exception", "failure") is a failed attempt.
FAILURE_REASONS = {"address_correction": "address", "weather_delay": "weather"}
# Details that say how far a parcel in transit (or just handed over) has come.
PROGRESS_DETAILS = {
    "received_at_origin_facility": "picked_up",
    "out_for_delivery": "out_for_delivery",
    "arrived_at_pickup_location": "available_for_pickup",
}
# What the carrier waits for, from the words of its message (first match wins); otherwise the
# reason is "awaiting_information" itself.
AWAITING_WORDS: tuple[tuple[str, str], ...] = (
    ("ADDRESS", "address"),
    ("CUSTOMS", "customs"),
    ("CLEARANCE", "customs"),
    ("DUTIES", "customs"),
)
# Words of a failed delivery's message that make it a refusal or an address problem rather
# than an attempt nobody answered ("Customer not available or business closed").
FAILURE_WORDS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("REFUSED", ("exception", "refused")),
    ("ADDRESS", ("delivery_failed", "address")),
)


def map_status(status: str, detail: str | None, message: str = "") -> tuple[str, str | None] | None:
    """The OrderHub status and reason for one EasyPost scan; None when the scan says nothing
    (``unknown``) or its status is one EasyPost does not document.

    EasyPost defines ``status`` as the parcel's state and ``status_detail`` as a refinement of
    it, so the status decides first and the detail only refines within it: a ``failure`` with
    the detail ``delayed`` ("Delivery exception (Customer not available or business closed)")
    is a failed delivery attempt, not a parcel running late. Two details end tracking whatever
    the status: ``cancelled`` and ``expired`` (EasyPost stopped tracking)."""
    upper = message.upper()
    if status in FINAL_STATUSES:
        hub_status, reason = STATUSES[status]
        if status == "return_to_sender":
            reason = RETURN_REASONS.get(detail or "", reason)
        return hub_status, reason
    if detail in ("expired", "cancelled"):
        return detail, None
    if status not in STATUSES:
        return None  # unknown (no news yet) or undocumented
    if status == "failure":
        if detail in FAILURE_PROBLEMS:
            return "exception", _problem(detail, upper)
        for word, mapped in FAILURE_WORDS:
            if word in upper:
                return mapped
        return "delivery_failed", FAILURE_REASONS.get(detail or "", "failed_attempt")
    if detail in PROBLEMS:
        return "exception", _problem(detail, upper)
    if detail == "delivery_exception" and status != "error":
        return "delivery_failed", "failed_attempt"
    if status in ("pre_transit", "in_transit") and detail in PROGRESS_DETAILS:
        return PROGRESS_DETAILS[detail], None
    return STATUSES[status]


def _problem(detail: str, upper_message: str) -> str | None:
    if detail == "awaiting_information":
        for word, reason in AWAITING_WORDS:
            if word in upper_message:
                return reason
    return PROBLEMS[detail]


# --- the adapter ---------------------------------------------------------------------------


class EasyPostCarrier(CarrierAdapter):
    """One EasyPost account. See the module docstring for the set-up and the mapping."""

    name = "easypost"
    title = "EasyPost (multi-carrier rates, labels and tracking)"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"rating", "shipping", "tracking", "tracking_push", "cancel"}
    )
    # One Tracker request per number: twenty keep a tracking call short.
    track_batch: ClassVar[int] = 20
    secret_settings = ("api_key", "webhook_secret")
    outbound_settings = ("api_base",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "api_key": {"type": "string", "minLength": 1},
            "webhook_secret": {"type": "string", "minLength": 1},
            # The API key travels in every request, so only https is accepted.
            "api_base": {
                "type": "string",
                "pattern": r"^https://[^/?#\s]+/?$",
                "default": DEFAULT_API_BASE,
            },
            "carrier_accounts": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^ca_[A-Za-z0-9]+$"},
                "minItems": 1,
                "uniqueItems": True,
            },
        },
        "required": ["api_key"],
        "additionalProperties": False,
    }

    # --- rating ----------------------------------------------------------------------------

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        """Every rate EasyPost's carriers give for the shipment (see the module docstring)."""
        shipment, response = self._new_shipment(request)
        return self._parsed(response, _rates, shipment)

    # --- shipping --------------------------------------------------------------------------

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        """Buy the quoted rate (``rate.carrier_ref``), or else the cheapest rate of ``service``
        on a new Shipment; the Waybill carries the label URL and the Shipment id for cancel."""
        if rate is not None and rate.carrier_ref:
            shipment_id, rate_id = _split_ref(rate.carrier_ref)
        else:
            shipment, response = self._new_shipment(request)
            rates = self._parsed(response, _rates, shipment)
            carrier = rate.carrier if rate is not None else None
            wanted = [r for r in rates if r.service == service and carrier in (None, r.carrier)]
            if not wanted:
                offered = ", ".join(sorted({f"{r.carrier} {r.service}" for r in rates}))
                raise BusinessError(
                    f"EasyPost offers no {service} rate"
                    + (f" from {carrier}" if carrier else "")
                    + f" for this shipment (offered: {offered or 'nothing'})"
                )
            cheapest = min(wanted, key=lambda r: r.amount)
            shipment_id, rate_id = _split_ref(cheapest.carrier_ref or "")
        return self._buy(shipment_id, rate_id)

    def _buy(self, shipment_id: str, rate_id: str) -> Waybill:
        path = f"/v2/shipments/{quote_path(shipment_id, safe='')}/buy"
        try:
            # A POST: the hub's client never repeats it once EasyPost may have charged for it.
            bought, response = self._json("POST", path, {"rate": {"id": rate_id}})
        except BusinessError:
            done = self._already_bought(shipment_id, rate_id)
            if done is None:
                raise
            logger.info(
                "easypost: %s was already bought with %s; its label kept", shipment_id, rate_id
            )
            return done
        return self._parsed(response, _waybill, bought)

    def _already_bought(self, shipment_id: str, rate_id: str) -> Waybill | None:
        """The label of a Shipment already bought with this rate (an earlier attempt whose
        answer was lost); None when it was not, or when that cannot be told."""
        try:
            shipment, _ = self._json("GET", f"/v2/shipments/{quote_path(shipment_id, safe='')}")
            selected = shipment.get("selected_rate")
            if not (isinstance(selected, dict) and selected.get("id") == rate_id):
                return None
            return _waybill(shipment)
        except (HttpError, _Shape):
            return None

    # --- tracking --------------------------------------------------------------------------

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        """One Tracker per number; EasyPost hands back the one it already has for a code."""
        updates = []
        for number in tracking_numbers:
            try:
                tracker, response = self._json(
                    "POST",
                    "/v2/trackers",
                    {"tracker": {"tracking_code": number}},
                    # EasyPost returns the existing Tracker for a repeated code: safe to repeat.
                    idempotent=True,
                )
            except BusinessError as exc:
                logger.warning("easypost: no tracking for %s: %s", number, exc)
                continue
            update = self._parsed(response, _tracking_update, tracker)
            # Reported under the number the hub asked about, whatever case EasyPost echoes.
            updates.append(TrackingUpdate(number, update.events, update.estimated_delivery))
        return updates

    def verify_push(self, request: InboundRequest) -> bool:
        """True when ``X-Hmac-Signature`` is EasyPost's signature of the raw body under the
        configured webhook secret (constant-time); always False without a secret."""
        secret = self.settings.get("webhook_secret")
        given = request.header(SIGNATURE_HEADER).strip()
        if not secret or not given:
            return False
        expected = signature(secret, request.body)
        return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))

    def parse_push(self, request: InboundRequest) -> list[TrackingUpdate]:
        """The tracking a verified webhook Event carries: its Tracker for ``tracker.created``
        and ``tracker.updated``, nothing for the other events an EasyPost webhook receives."""
        try:
            event = json.loads(request.body, parse_float=Decimal, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"easypost: webhook body is not JSON: {exc}") from None
        if not isinstance(event, dict) or event.get("object") != "Event":
            raise PayloadError("easypost: webhook body is not an Event object")
        if event.get("description") not in TRACKER_EVENTS:
            return []
        tracker = event.get("result")
        if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
            raise PayloadError("easypost: a tracker event whose result is not a Tracker")
        try:
            return [_tracking_update(tracker)]
        except _Shape as exc:
            raise PayloadError(f"easypost: {exc}") from None

    # --- cancel ----------------------------------------------------------------------------

    def cancel(self, waybill: Waybill) -> None:
        """Ask EasyPost to refund the label (see the module docstring for the answers)."""
        if not waybill.carrier_shipment_id:
            raise BusinessError(
                f"cannot cancel {waybill.tracking_number} through EasyPost: the waybill has no"
                " EasyPost shipment id"
            )
        path = f"/v2/shipments/{quote_path(waybill.carrier_shipment_id, safe='')}/refund"
        shipment, response = self._json("POST", path)
        status = shipment.get("refund_status")
        if status in REFUND_DONE:
            return
        if status == "not_applicable":
            logger.warning(
                "easypost: refund of %s not applicable (a bill-on-scan carrier charges only a"
                " scanned label); do not use the label",
                waybill.carrier_shipment_id,
            )
            return
        if status == "rejected":
            raise BusinessError(
                f"the carrier rejected the refund of {waybill.tracking_number}; EasyPost notes"
                " that a refund asked for right after the label was made can be wrongly"
                " rejected, so asking again later may succeed",
                status=response.status_code,
                url=response.url,
                method="POST",
                client=self.http.name,
            )
        raise self.http.parse_error(response, f"refund_status is {status!r}")

    # --- I/O -------------------------------------------------------------------------------

    def _new_shipment(self, request: ShipmentRequest) -> tuple[dict[str, Any], requests.Response]:
        body = {"shipment": shipment_body(request, self.settings.get("carrier_accounts"))}
        # An unbought Shipment costs nothing, so a repeat after a lost answer is harmless.
        return self._json("POST", "/v2/shipments", body, idempotent=True)

    def _json(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> tuple[dict[str, Any], requests.Response]:
        """One API call, decoded with amounts as Decimal; a refusal is the hub's typed error
        with EasyPost's own code and message added."""
        url = self.settings.get("api_base", DEFAULT_API_BASE).rstrip("/") + path
        try:
            response = self.http.request(
                method,
                url,
                json=body,
                auth=(self.settings["api_key"], ""),
                headers={"Accept": "application/json"},
                idempotent=idempotent,
            )
        except HttpError as exc:
            _add_easypost_error(exc)
            raise
        try:
            data = json.loads(response.content, parse_float=Decimal, parse_constant=_no_constant)
        except ValueError:
            raise self.http.parse_error(response, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise self.http.parse_error(response, "the body is not a JSON object")
        return data, response

    def _parsed(
        self,
        response: requests.Response,
        mapper: Callable[[dict[str, Any]], T],
        data: dict[str, Any],
    ) -> T:
        """``mapper(data)``, a ParseError naming the response when the shape is wrong."""
        try:
            return mapper(data)
        except _Shape as exc:
            raise self.http.parse_error(response, str(exc)) from None


# --- request building ----------------------------------------------------------------------


def shipment_body(
    request: ShipmentRequest, carrier_accounts: list[str] | None = None
) -> dict[str, Any]:
    """The ``shipment`` object of a Create Shipment request."""
    if len(request.parcels) != 1:
        raise BusinessError(
            f"EasyPost ships one parcel per shipment; this one has {len(request.parcels)}"
        )
    body: dict[str, Any] = {
        "to_address": address(request.destination),
        "from_address": address(request.origin),
        "parcel": parcel(request.parcels[0]),
    }
    if request.reference:
        body["reference"] = request.reference
    if carrier_accounts:
        body["carrier_accounts"] = list(carrier_accounts)
    return body


def address(place: Place) -> dict[str, str]:
    """An EasyPost Address; fields the hub does not know are left out, not sent empty."""
    fields = {
        "name": place.name,
        "company": place.company,
        "street1": place.line1,
        "street2": place.line2,
        "city": place.city,
        "state": place.region,
        "zip": place.postcode,
        "country": place.country,
        "phone": place.phone,
        "email": place.email,
    }
    return {key: value for key, value in fields.items() if value}


def parcel(item: Parcel) -> dict[str, float]:
    """An EasyPost Parcel in ounces and inches, each rounded up to a tenth.

    Sent as JSON numbers: a value with one decimal place converts to a float and prints back
    exactly, and these are measurements, not money.
    """
    if item.weight_kg <= 0:
        raise BusinessError(f"a parcel must weigh something; got {item.weight_kg} kg")
    body = {"weight": float(_tenth_up(item.weight_kg * OUNCES_PER_KG))}
    sides = {"length": item.length_cm, "width": item.width_cm, "height": item.height_cm}
    if all(cm is not None and cm > 0 for cm in sides.values()):
        body.update({side: float(_tenth_up(cm / CM_PER_INCH)) for side, cm in sides.items() if cm})
    return body


def signature(secret: str, body: bytes) -> str:
    """The ``X-Hmac-Signature`` value EasyPost sends for ``body``."""
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return SIGNATURE_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


# --- response mapping ----------------------------------------------------------------------


class _Shape(ValueError):
    """An EasyPost object that is not what the API documents."""


def _rates(shipment: Mapping[str, Any]) -> Rates:
    """A Shipment's rates; a BusinessError with the carriers' messages when none rated. A
    rate without a currency cannot be compared with any other, so it is left out with a note
    (the quote lists it with its errors) rather than failing the whole quote."""
    shipment_id = _text(shipment, "id", "shipment")
    raw = shipment.get("rates")
    if not isinstance(raw, list):
        raise _Shape("the shipment has no rates list")
    listed = shipment.get("messages")
    messages = [m for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
    for m in messages:
        logger.info("easypost: %s could not rate: %s", m.get("carrier"), m.get("message"))
    rates = Rates()
    notes = []
    for i, entry in enumerate(raw):
        if isinstance(entry, dict) and not _has_text(entry, "currency"):
            notes.append(f"easypost: rates[{i}] ({_label(entry)}) left out: it has no currency")
            continue
        rates.append(_rate(entry, shipment_id, f"rates[{i}]"))
    for note in notes:
        logger.warning("%s", note)
    rates.notes = tuple(notes)
    if not rates and not notes and messages:
        said = "; ".join(f"{m.get('carrier')}: {m.get('message')}" for m in messages)
        raise BusinessError(f"no EasyPost carrier rated this shipment ({said})")
    return rates


def _has_text(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    return isinstance(value, str) and bool(value.strip())


def _label(rate: Mapping[str, Any]) -> str:
    """ "USPS Priority" for a note about a rate, from what it states of itself."""
    said = [str(rate[k]) for k in ("carrier", "service") if isinstance(rate.get(k), str)]
    return " ".join(said) or str(rate.get("id") or "a rate")


def _rate(raw: Any, shipment_id: str, at: str) -> Rate:
    if not isinstance(raw, dict):
        raise _Shape(f"{at} is not an object")
    days = raw.get("delivery_days")
    if days is None:
        days = raw.get("est_delivery_days")
    return Rate(
        carrier=f"easypost:{_text(raw, 'carrier', at)}",
        service=_text(raw, "service", at),
        amount=_amount(raw.get("rate"), f"{at}.rate"),
        currency=_text(raw, "currency", at),
        estimated_days=days if isinstance(days, int) and not isinstance(days, bool) else None,
        estimated_delivery=_date(raw.get("delivery_date"), f"{at}.delivery_date"),
        carrier_ref=f"{shipment_id}:{_text(raw, 'id', at)}",
    )


def _waybill(shipment: Mapping[str, Any]) -> Waybill:
    """A bought Shipment as a Waybill: tracking code, label URL, Shipment id and price."""
    label = shipment.get("postage_label")
    if not isinstance(label, dict):
        raise _Shape("the shipment has no postage_label: it was not bought")
    selected = shipment.get("selected_rate")
    if not isinstance(selected, dict):
        raise _Shape("the shipment has no selected_rate")
    tracker = shipment.get("tracker")
    estimate = _date(selected.get("delivery_date"), "selected_rate.delivery_date")
    if estimate is None and isinstance(tracker, dict):
        estimate = _date(tracker.get("est_delivery_date"), "tracker.est_delivery_date")
    return Waybill(
        tracking_number=_text(shipment, "tracking_code", "shipment"),
        label=_text(label, "label_url", "postage_label"),
        carrier_shipment_id=_text(shipment, "id", "shipment"),
        amount=_amount(selected.get("rate"), "selected_rate.rate"),
        currency=_text(selected, "currency", "selected_rate"),
        estimated_delivery=estimate,
    )


def _tracking_update(tracker: Mapping[str, Any]) -> TrackingUpdate:
    """A Tracker's scans (``tracking_details``) as events, and its delivery estimate."""
    number = _text(tracker, "tracking_code", "tracker")
    details = tracker.get("tracking_details") or []
    if not isinstance(details, list):
        raise _Shape("tracker.tracking_details is not a list")
    events = []
    for i, detail in enumerate(details):
        at = f"tracking_details[{i}]"
        if not isinstance(detail, dict):
            raise _Shape(f"{at} is not an object")
        status = _text(detail, "status", at)
        sub = detail.get("status_detail") or None
        said = str(detail.get("message") or detail.get("description") or "")
        mapped = map_status(status, sub, said)
        if mapped is None:
            if status != "unknown":
                logger.warning("easypost: %s: undocumented status %r left out", number, status)
            continue
        events.append(
            TrackingEvent(
                status=mapped[0],
                at=_time(detail.get("datetime"), f"{at}.datetime"),
                raw_code=f"{status}/{sub}" if sub else status,
                raw_text=said,
                reason=mapped[1],
                location=_location(detail.get("tracking_location")),
            )
        )
    return TrackingUpdate(
        number,
        tuple(events),
        _date(tracker.get("est_delivery_date"), "tracker.est_delivery_date"),
    )


def _location(raw: Any) -> str | None:
    """ "HOUSTON, TX 77063, US" from a TrackingLocation, leaving out what the carrier omits."""
    if not isinstance(raw, dict):
        return None
    region = " ".join(str(raw[k]) for k in ("state", "zip") if raw.get(k))
    parts = [str(raw["city"]) if raw.get("city") else "", region, str(raw.get("country") or "")]
    return ", ".join(p for p in parts if p) or None


def _split_ref(ref: str) -> tuple[str, str]:
    shipment_id, _, rate_id = ref.partition(":")
    if not (shipment_id.startswith("shp_") and rate_id.startswith("rate_")):
        raise BusinessError(f"{ref!r} is not an EasyPost rate reference (shp_…:rate_…)")
    return shipment_id, rate_id


# --- field readers ---------------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str, at: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise _Shape(f"{at}.{key} is missing or not a string")
    return value


def _amount(value: Any, at: str) -> Decimal:
    """EasyPost writes amounts as strings ("7.33"); a JSON number was decoded as Decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise _Shape(f"{at} is not an amount: {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _Shape(f"{at} is not an amount: {value!r}") from None
    if not amount.is_finite():
        raise _Shape(f"{at} is not an amount: {value!r}")
    return amount


def _time(value: Any, at: str) -> datetime:
    if not isinstance(value, str):
        raise _Shape(f"{at} is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Shape(f"{at} is not an ISO-8601 time: {value!r}") from None
    # EasyPost gives a local offset when it knows the place, UTC ("Z") otherwise.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    try:
        check_instant(moment)  # kept at its own offset: a date is read as EasyPost states it
    except OutOfRange as exc:
        raise _Shape(f"{at}: {value!r} {exc}") from None
    return moment


def _date(value: Any, at: str) -> date | None:
    """The calendar day of an EasyPost date-time, as EasyPost states it (no conversion)."""
    if value in (None, ""):
        return None
    return _time(value, at).date()


def _tenth_up(value: Decimal) -> Decimal:
    return value.quantize(TENTH, rounding=ROUND_UP)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _add_easypost_error(exc: HttpError) -> None:
    """Append EasyPost's ``{"error": {"code", "message", "errors"}}`` to the hub's message,
    keeping the error's class (and so whether a retry may help)."""
    try:
        error = json.loads(exc.body or "")["error"]
        said = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return
    details = []
    for item in error.get("errors") or []:
        if isinstance(item, dict) and item.get("message"):
            field = f"{item['field']}: " if item.get("field") else ""
            details.append(f"{field}{item['message']}")
        elif isinstance(item, str):
            details.append(item)
    if details:
        said += f" ({'; '.join(details)})"
    advice = "; check the api_key setting" if isinstance(exc, AuthError) else ""
    exc.message = f"{exc.message}; EasyPost says {said}{advice}"
    exc.args = (exc.message,)


@hookimpl
def register_carriers() -> list[type[CarrierAdapter]]:
    return [EasyPostCarrier]
