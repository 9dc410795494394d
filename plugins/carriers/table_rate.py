"""The ``table_rate`` carrier: the merchant's contract rate card, for a courier with no API.

A merchant with a negotiated contract (a regional courier, a freight forwarder, its own vans)
has a price list, not a web service: destination zones by weight bands by services. This plugin
turns that card, kept in the connection's settings, into the same rates, waybills and tracking
that an API carrier gives, so such a courier competes in a multi-carrier quote like any other.

How a price is made (the card is read the way a courier's own price list is):

* The destination's zone is the first zone in the card that matches it: a zone names countries
  (ISO 3166 alpha-2, or ``"*"`` for every country) and may narrow them to postcode prefixes
  (``"995"``) or prefix ranges (``"995-999"``). A zone with postcodes does not match a
  destination that has none. The origin is not read: a card is priced from the merchant's
  own dispatch point.
* Each parcel is charged by its billable weight, the larger of its actual weight and its
  volumetric weight (length x width x height in cm / ``volumetric_divisor``), at the first band
  of its zone whose ``max_kg`` is at least that weight. Beyond the heaviest band the service
  does not carry the parcel, unless that band has ``extra_per_kg``: then each kilogram or part
  of one above it costs that much more.
* Surcharges are per parcel, as the big carriers charge them: ``remote_area`` for every parcel
  to one of its zones, ``oversize`` for every parcel whose longest side exceeds its limit.
* A service whose bands cannot carry every parcel of the shipment is left out of the quote;
  a destination that no zone serves is a BusinessError, which no retry will change.

The card is checked when it is saved (``validate_settings``): beyond the JSON Schema, every
band must name a zone of the card, bands must ascend, and a zone that an earlier zone already
takes in full (so "first match wins" would never reach it) is refused with the field named.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from hub import hookimpl
from hub.core.adapters import (
    CarrierAdapter,
    Parcel,
    Place,
    Rate,
    Service,
    ShipmentRequest,
    TrackingEvent,
    TrackingUpdate,
    Waybill,
)
from hub.core.errors import Invalid
from hub.core.http import BusinessError

DEFAULT_CARRIER_NAME = "table_rate"
DEFAULT_VOLUMETRIC_DIVISOR = 5000
DEFAULT_TRACKING_PREFIX = "TR"
CENT = Decimal("0.01")
EVERY_COUNTRY = "*"

# Tracking numbers are prefix + 7 characters of issue time (UNIX seconds) + 10 random ones +
# one check character, in Crockford's base 32: no I, L, O or U, so a number read aloud or
# copied off a label by hand is not mistaken. The time lets ``track`` say when the waybill was
# issued without storing anything; 50 random bits make two processes issuing in the same
# second collide about once in 10**15 pairs.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TIME_CHARS = 7  # 32**7 seconds reaches the year 3058
# No number of this plugin was issued before this: earlier "issue times" are damaged numbers.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
RANDOM_CHARS = 10
BODY_CHARS = TIME_CHARS + RANDOM_CHARS

# A decimal written as a string, so a price never passes through float. Up to four decimals,
# because a per-kilogram price is often quoted finer than a cent; totals are rounded to cents.
DECIMAL_STRING = {"type": "string", "pattern": r"^(0|[1-9][0-9]*)(\.[0-9]{1,4})?$"}
CODE = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,40}$"}
POSITIVE_NUMBER = {"type": "number", "exclusiveMinimum": 0}

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "currency": {"type": "string", "pattern": r"^[A-Z]{3}$"},
        "carrier_name": {"type": "string", "minLength": 1, "maxLength": 80},
        "zones": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "code": CODE,
                    "countries": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": r"^([A-Z]{2}|\*)$"},
                    },
                    "postcodes": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "string",
                            "pattern": r"^[A-Za-z0-9]{1,10}(-[A-Za-z0-9]{1,10})?$",
                        },
                    },
                },
                "required": ["code", "countries"],
                "additionalProperties": False,
            },
        },
        "services": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "code": CODE,
                    "name": {"type": "string", "minLength": 1, "maxLength": 80},
                    "transit_days": {"type": "integer", "minimum": 0, "maximum": 90},
                    "bands": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {
                                "zone": CODE,
                                "max_kg": POSITIVE_NUMBER,
                                "price": DECIMAL_STRING,
                                "extra_per_kg": DECIMAL_STRING,
                            },
                            "required": ["zone", "max_kg", "price"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["code", "name", "transit_days", "bands"],
                "additionalProperties": False,
            },
        },
        "volumetric_divisor": {"type": "integer", "minimum": 1},
        "surcharges": {
            "type": "object",
            "properties": {
                "remote_area": {
                    "type": "object",
                    "properties": {
                        "zones": {"type": "array", "minItems": 1, "items": CODE},
                        "amount": DECIMAL_STRING,
                    },
                    "required": ["zones", "amount"],
                    "additionalProperties": False,
                },
                "oversize": {
                    "type": "object",
                    "properties": {"max_side_cm": POSITIVE_NUMBER, "amount": DECIMAL_STRING},
                    "required": ["max_side_cm", "amount"],
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
        "tracking_prefix": {"type": "string", "pattern": r"^[A-Z]{1,6}$"},
    },
    "required": ["currency", "zones", "services"],
    "additionalProperties": False,
}

# A US merchant shipping from the east coast: the demo tenant's card, and a model for a real
# one. Alaska and Hawaii come before the rest of the US because the first matching zone wins.
EXAMPLE_SETTINGS: dict[str, Any] = {
    "currency": "USD",
    "carrier_name": "Contract courier",
    "zones": [
        {"code": "us_remote", "countries": ["US"], "postcodes": ["967-968", "995-999"]},
        {"code": "us_east", "countries": ["US"], "postcodes": ["0-4"]},
        {"code": "us_west", "countries": ["US"]},
        {"code": "ca", "countries": ["CA"]},
        {"code": "world", "countries": [EVERY_COUNTRY]},
    ],
    "services": [
        {
            "code": "ground",
            "name": "Ground",
            "transit_days": 5,
            "bands": [
                {"zone": "us_east", "max_kg": 1, "price": "6.50"},
                {"zone": "us_east", "max_kg": 5, "price": "9.90"},
                {"zone": "us_east", "max_kg": 20, "price": "18.50", "extra_per_kg": "0.95"},
                {"zone": "us_west", "max_kg": 1, "price": "8.20"},
                {"zone": "us_west", "max_kg": 5, "price": "12.40"},
                {"zone": "us_west", "max_kg": 20, "price": "24.00", "extra_per_kg": "1.20"},
                {"zone": "us_remote", "max_kg": 1, "price": "14.00"},
                {"zone": "us_remote", "max_kg": 5, "price": "22.00"},
                {"zone": "us_remote", "max_kg": 20, "price": "48.00"},
                {"zone": "ca", "max_kg": 1, "price": "16.00"},
                {"zone": "ca", "max_kg": 5, "price": "27.50"},
                {"zone": "ca", "max_kg": 20, "price": "55.00"},
                {"zone": "world", "max_kg": 1, "price": "24.00"},
                {"zone": "world", "max_kg": 5, "price": "45.00"},
                {"zone": "world", "max_kg": 20, "price": "98.00"},
            ],
        },
        {
            "code": "express",
            "name": "Express",
            "transit_days": 2,
            "bands": [
                {"zone": "us_east", "max_kg": 1, "price": "14.90"},
                {"zone": "us_east", "max_kg": 5, "price": "21.50"},
                {"zone": "us_east", "max_kg": 10, "price": "34.00"},
                {"zone": "us_west", "max_kg": 1, "price": "18.90"},
                {"zone": "us_west", "max_kg": 5, "price": "27.00"},
                {"zone": "us_west", "max_kg": 10, "price": "42.00"},
                {"zone": "us_remote", "max_kg": 1, "price": "29.00"},
                {"zone": "us_remote", "max_kg": 5, "price": "49.00"},
                {"zone": "ca", "max_kg": 1, "price": "32.00"},
                {"zone": "ca", "max_kg": 5, "price": "54.00"},
                {"zone": "world", "max_kg": 1, "price": "45.00"},
                {"zone": "world", "max_kg": 5, "price": "89.00"},
            ],
        },
    ],
    "volumetric_divisor": 5000,
    "surcharges": {
        "remote_area": {"zones": ["us_remote"], "amount": "4.50"},
        "oversize": {"max_side_cm": 120, "amount": "15.00"},
    },
    "tracking_prefix": "TR",
}


# --- the card, read once -------------------------------------------------------------------


@dataclass(frozen=True)
class _Zone:
    code: str
    countries: frozenset[str]
    # (low, high) prefix ranges of a normalised postcode; a plain prefix is (p, p). Empty
    # means the zone takes its countries whole.
    postcodes: tuple[tuple[str, str], ...]

    def matches(self, country: str, postcode: str | None) -> bool:
        if EVERY_COUNTRY not in self.countries and country not in self.countries:
            return False
        if not self.postcodes:
            return True
        if not postcode:
            return False
        return any(
            len(low) <= len(postcode) and low <= postcode[: len(low)] <= high
            for low, high in self.postcodes
        )


@dataclass(frozen=True)
class _Band:
    max_kg: Decimal
    price: Decimal
    extra_per_kg: Decimal | None = None


@dataclass(frozen=True)
class _ServiceCard:
    code: str
    name: str
    transit_days: int
    bands: Mapping[str, tuple[_Band, ...]]  # zone code → bands, lightest first


def _decimal(value: Any) -> Decimal:
    """Settings hold weights as JSON numbers; ``str`` first so 0.1 stays 0.1, not its float."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _normal_postcode(postcode: str | None) -> str | None:
    """Upper case without spaces or hyphens, so "99501-1234" and "sw1a 1aa" match prefixes."""
    if postcode is None:
        return None
    return "".join(ch for ch in postcode.upper() if ch not in " -") or None


def _postcode_range(pattern: str) -> tuple[str, str]:
    low, _, high = pattern.upper().partition("-")
    return low, high or low


class TableRate(CarrierAdapter):
    """A courier priced from the merchant's own rate card (see the module docstring).

    There is no API behind it: waybills are issued here, nothing needs voiding on cancel,
    and the courier sends no scans, so tracking can only say when the waybill was issued.
    ``today`` and ``now`` are methods so tests (and a hub that knows the merchant's time zone)
    can replace the clock.
    """

    name = "table_rate"
    title = "Table rate (the merchant's contract rate card)"
    capabilities = frozenset({"rating", "shipping", "tracking", "cancel"})
    # No remote API to protect: a batch is only parsing strings.
    track_batch = 500
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA

    def __init__(self, settings: Mapping[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(settings, **kw)
        s = self.settings
        self.carrier_name: str = s.get("carrier_name", DEFAULT_CARRIER_NAME)
        self.currency: str = s.get("currency", "USD")
        self.tracking_prefix: str = s.get("tracking_prefix", DEFAULT_TRACKING_PREFIX)
        self.divisor = Decimal(s.get("volumetric_divisor", DEFAULT_VOLUMETRIC_DIVISOR))
        self.zones = tuple(
            _Zone(
                z["code"],
                frozenset(z["countries"]),
                tuple(_postcode_range(p) for p in z.get("postcodes", ())),
            )
            for z in s.get("zones", ())
        )
        self.cards = tuple(_service_card(svc) for svc in s.get("services", ()))
        surcharges = s.get("surcharges", {})
        remote = surcharges.get("remote_area")
        self.remote_zones = frozenset(remote["zones"]) if remote else frozenset()
        self.remote_amount = Decimal(remote["amount"]) if remote else Decimal(0)
        oversize = surcharges.get("oversize")
        self.oversize_side = _decimal(oversize["max_side_cm"]) if oversize else None
        self.oversize_amount = Decimal(oversize["amount"]) if oversize else Decimal(0)

    @classmethod
    def validate_settings(cls, settings: Mapping[str, Any]) -> None:
        """The JSON Schema first, then what a schema cannot say about a card: bands that name
        no zone, bands out of order, and zones "first match wins" would never reach. Each is
        refused with the field named, because a card that loads but quotes wrongly costs the
        merchant money on every order before anyone notices."""
        super().validate_settings(settings)
        problem = _card_problem(settings)
        if problem is not None:
            where, message = problem
            field = f"settings.{where}"
            raise Invalid(f"{cls.name} {field}: {message}", [{"field": field, "problem": message}])

    # --- the clock -------------------------------------------------------------------------

    def today(self) -> date:
        """The dispatch date estimates count from (the server's local date)."""
        return date.today()

    def now(self) -> datetime:
        """The issue time written into tracking numbers."""
        return datetime.now(UTC)

    # --- the contract ----------------------------------------------------------------------

    def services(self) -> list[Service]:
        """The card's services, in the card's order."""
        return [Service(c.code, c.name, c.transit_days) for c in self.cards]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        """One rate per service that can carry every parcel to the destination's zone.

        A service that cannot is simply absent (as an API carrier omits a service it does not
        offer for a shipment); a destination in no zone is a BusinessError, not retryable.
        """
        zone = self._zone_for(request)
        delivery = self.estimated_delivery
        return [
            Rate(
                self.carrier_name,
                card.code,
                amount,
                self.currency,
                card.transit_days,
                delivery(card.transit_days),
            )
            for card in self.cards
            if (amount := self._price(card, zone, request.parcels)) is not None
        ]

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        """Issue a waybill priced from the card as it is now (the card is the contract, so a
        stale quoted ``rate`` does not set the price). The label is a reference to write on
        the merchant's own label: there is no carrier to print one."""
        card = next((c for c in self.cards if c.code == service), None)
        if card is None:
            offered = ", ".join(c.code for c in self.cards)
            raise BusinessError(f"{self.name}: no service {service!r} on the card ({offered})")
        zone = self._zone_for(request)
        amount = self._price(card, zone, request.parcels)
        if amount is None:
            raise BusinessError(
                f"{self.name}: service {service!r} has no band for zone {zone.code!r} that"
                " carries every parcel of this shipment"
            )
        number = self.issue_tracking_number()
        return Waybill(
            number,
            label=f"{self.name}://label/{number}",
            carrier_shipment_id=number,
            amount=amount,
            currency=self.currency,
            estimated_delivery=self.estimated_delivery(card.transit_days),
        )

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        """The merchant's courier has no scans to report, so each number this card issued
        gets one "info_received" event at the moment it was issued (read back from the
        number itself, so every poll returns the same event and the hub keeps one). A number
        that is not one of ours (wrong length, alphabet or check character) gets no events:
        one mistyped number must not fail the batch. Later statuses are recorded by hand."""
        updates = []
        for number in tracking_numbers:
            issued = issued_at(number, self.now())
            events = (
                ()
                if issued is None
                else (
                    TrackingEvent(
                        "info_received",
                        issued,
                        "issued",
                        f"Waybill issued by {self.carrier_name}; this courier sends no scans",
                    ),
                )
            )
            updates.append(TrackingUpdate(number, events))
        return updates

    def cancel(self, waybill: Waybill) -> None:
        """Nothing to void: no carrier system holds the shipment, and an unused number
        is never issued again."""
        return None

    # --- pricing ---------------------------------------------------------------------------

    def estimated_delivery(self, transit_days: int) -> date:
        """``today`` plus the transit days counted in working days: Saturdays and Sundays do
        not count (public holidays are not known to the card)."""
        day, left = self.today(), transit_days
        while left > 0:
            day += timedelta(days=1)
            if day.weekday() < 5:
                left -= 1
        return day

    def billable_kg(self, parcel: Parcel) -> Decimal:
        """The larger of the actual and the volumetric weight: couriers charge for the room a
        light, bulky parcel takes. Without all three dimensions only the weight counts."""
        weight = _decimal(parcel.weight_kg)
        sides = (parcel.length_cm, parcel.width_cm, parcel.height_cm)
        if any(side is None for side in sides):
            return weight
        length, width, height = (_decimal(side) for side in sides)
        return max(weight, length * width * height / self.divisor)

    def _zone_for(self, request: ShipmentRequest) -> _Zone:
        """The first zone that serves the destination; a BusinessError when none does (or
        there is nothing to send), since asking again will not change the answer."""
        if not request.parcels:
            raise BusinessError(f"{self.name}: a shipment needs at least one parcel")
        destination: Place = request.destination
        country = (destination.country or "").upper()
        postcode = _normal_postcode(destination.postcode)
        for zone in self.zones:
            if zone.matches(country, postcode):
                return zone
        where = f"{country} {destination.postcode}" if destination.postcode else country
        raise BusinessError(f"{self.name}: no zone serves {where}", retryable=False)

    def _price(self, card: _ServiceCard, zone: _Zone, parcels: Sequence[Parcel]) -> Decimal | None:
        """The service's price for these parcels to this zone, rounded to the cent, or None
        when some parcel is heavier than what the zone's bands carry."""
        bands = card.bands.get(zone.code)
        if not bands or not parcels:
            return None
        total = Decimal(0)
        for parcel in parcels:
            charge = _band_charge(bands, self.billable_kg(parcel))
            if charge is None:
                return None
            total += charge
            if zone.code in self.remote_zones:
                total += self.remote_amount
            if self.oversize_side is not None and _longest_side(parcel) > self.oversize_side:
                total += self.oversize_amount
        return total.quantize(CENT, rounding=ROUND_HALF_UP)

    # --- tracking numbers ------------------------------------------------------------------

    def issue_tracking_number(self) -> str:
        """A new number: prefix, issue time, random part and check character. Random bits
        from ``secrets`` rather than a counter, so processes and servers that share a card
        never need to agree on anything to stay unique."""
        seconds = max(0, int(self.now().timestamp()))
        body = _encode(seconds, TIME_CHARS) + _encode(
            secrets.randbelow(len(ALPHABET) ** RANDOM_CHARS), RANDOM_CHARS
        )
        return self.tracking_prefix + body + check_character(body)


def _service_card(svc: Mapping[str, Any]) -> _ServiceCard:
    bands: dict[str, list[_Band]] = {}
    for band in svc["bands"]:
        extra = band.get("extra_per_kg")
        bands.setdefault(band["zone"], []).append(
            _Band(
                _decimal(band["max_kg"]),
                Decimal(band["price"]),
                Decimal(extra) if extra is not None else None,
            )
        )
    return _ServiceCard(
        svc["code"],
        svc["name"],
        svc["transit_days"],
        {zone: tuple(sorted(b, key=lambda x: x.max_kg)) for zone, b in bands.items()},
    )


def _band_charge(bands: Sequence[_Band], kg: Decimal) -> Decimal | None:
    """The first band that carries ``kg`` (a parcel of exactly ``max_kg`` is in that band);
    beyond the heaviest, its ``extra_per_kg`` for each kilogram or part of one, if it has
    one."""
    for band in bands:
        if kg <= band.max_kg:
            return band.price
    last = bands[-1]
    if last.extra_per_kg is None:
        return None
    started_kg = (kg - last.max_kg).to_integral_value(rounding=ROUND_CEILING)
    return last.price + started_kg * last.extra_per_kg


def _longest_side(parcel: Parcel) -> Decimal:
    sides = [_decimal(s) for s in (parcel.length_cm, parcel.width_cm, parcel.height_cm) if s]
    return max(sides, default=Decimal(0))


# --- tracking number format ----------------------------------------------------------------


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * len(ALPHABET) + ALPHABET.index(ch)
    return value


def check_character(body: str) -> str:
    """Luhn's algorithm over base 32: catches every single mistyped character and every
    swap of two neighbouring ones except a few, so a typo is refused rather than tracked
    as someone else's parcel."""
    base = len(ALPHABET)
    total = 0
    for position, ch in enumerate(reversed(body)):
        addend = ALPHABET.index(ch) * (2 if position % 2 == 0 else 1)
        total += addend // base + addend % base
    return ALPHABET[-total % base]


def issued_at(number: str, now: datetime) -> datetime | None:
    """When a number this plugin issued was issued, or None when it is not well-formed
    (whatever its prefix: a card whose prefix changed still tracks its older numbers).

    The check character alone lets one in 32 damaged numbers through (a number cut short
    reads its prefix's last character as body), so the issue time must also be possible:
    not before ``EARLIEST`` and not after ``now``."""
    if len(number) <= BODY_CHARS + 1:
        return None
    body, check = number[-BODY_CHARS - 1 : -1], number[-1]
    if any(ch not in ALPHABET for ch in body + check) or check_character(body) != check:
        return None
    issued = datetime.fromtimestamp(_decode(body[:TIME_CHARS]), UTC)
    if not EARLIEST <= issued <= now + timedelta(minutes=5):  # a little clock skew
        return None
    return issued


# --- what the schema cannot say ------------------------------------------------------------


def _card_problem(settings: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first cross-field mistake in a card that passed the schema, as (field, problem).
    Problems name fields, never values: settings go back to whoever sent them."""
    zones = settings["zones"]
    codes: dict[str, int] = {}
    whole: dict[str, int] = {}  # country (or "*") → index of the first zone that takes it whole
    for i, zone in enumerate(zones):
        code, countries = zone["code"], zone["countries"]
        if code in codes:
            return f"zones[{i}].code", f"is also the code of zones[{codes[code]}]"
        codes[code] = i
        if EVERY_COUNTRY in countries and len(countries) > 1:
            return f"zones[{i}].countries", "'*' (every country) must be the only entry"
        for j, pattern in enumerate(zone.get("postcodes", ())):
            low, high = _postcode_range(pattern)
            if len(low) != len(high) or low > high:
                return (
                    f"zones[{i}].postcodes[{j}]",
                    "is not a range of prefixes of one length, low to high",
                )
        for k, country in enumerate(countries):
            key = country if country in whole else EVERY_COUNTRY
            earlier = whole.get(key)
            if earlier is not None:
                taken = "every country" if key == EVERY_COUNTRY else f"countries[{k}]"
                return (
                    f"zones[{i}].countries",
                    f"this zone is never used: zones[{earlier}] comes first and takes {taken}"
                    " whole; the first matching zone wins, so put narrower zones first",
                )
        if not zone.get("postcodes"):
            for country in countries:
                whole.setdefault(country, i)

    services: dict[str, int] = {}
    for i, svc in enumerate(settings["services"]):
        if svc["code"] in services:
            return f"services[{i}].code", f"is also the code of services[{services[svc['code']]}]"
        services[svc["code"]] = i
        problem = _bands_problem(f"services[{i}].bands", svc["bands"], codes)
        if problem is not None:
            return problem

    remote = settings.get("surcharges", {}).get("remote_area")
    for j, code in enumerate(remote["zones"] if remote else ()):
        if code not in codes:
            return f"surcharges.remote_area.zones[{j}]", UNKNOWN_ZONE
    return None


UNKNOWN_ZONE = "is not the code of one of the card's zones"


def _bands_problem(
    where: str, bands: Sequence[Mapping[str, Any]], codes: Iterable[str]
) -> tuple[str, str] | None:
    heaviest: dict[str, tuple[int, Decimal]] = {}
    for k, band in enumerate(bands):
        zone, max_kg = band["zone"], _decimal(band["max_kg"])
        if zone not in codes:
            return f"{where}[{k}].zone", UNKNOWN_ZONE
        if zone in heaviest:
            previous, previous_kg = heaviest[zone]
            if max_kg <= previous_kg:
                return f"{where}[{k}].max_kg", (
                    f"must be above max_kg of {where}[{previous}], the zone's previous band;"
                    " list each zone's bands lightest first"
                )
            if "extra_per_kg" in bands[previous]:
                return f"{where}[{previous}].extra_per_kg", (
                    "only the heaviest band of a zone may have it: it prices what is beyond"
                    " the last band"
                )
        heaviest[zone] = (k, max_kg)
    return None


@hookimpl
def register_carriers() -> list[type[CarrierAdapter]]:
    return [TableRate]
