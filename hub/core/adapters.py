"""The contracts plugins implement — ChannelAdapter, CarrierAdapter, Notifier — with a Stub of
each, so development and tests never need an outside service.

An adapter class carries its ``name`` and a JSON Schema for its ``settings``; the hub validates
settings before constructing it, so ``__init__`` can trust what it gets.
"""

from __future__ import annotations

import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from jsonschema import Draft202012Validator

from hub.core import schema_errors
from hub.core.errors import Invalid
from hub.core.normalised import Address, Consignee, LineItem, OrderDraft

if TYPE_CHECKING:
    from hub.core.http import HttpClient


class Adapter(ABC):
    name: ClassVar[str]
    title: ClassVar[str] = ""
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    # Settings that hold secrets (API keys, shared secrets), in every family: the hub stores
    # them encrypted (or as {"$env": …} references) and never returns them through the API.
    secret_settings: ClassVar[tuple[str, ...]] = ()
    # Settings that say where the plugin sends requests: an https URL (``api_base``) or a
    # host (``shop_domain``). The hub refuses, when they are saved, any that is not https or
    # not a public host (unless the operator allows it), and checks every connection again.
    outbound_settings: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, settings: Mapping[str, Any] | None = None, *, http: HttpClient | None = None
    ) -> None:
        self.settings = dict(settings or {})
        self._http = http

    @property
    def http(self) -> HttpClient:
        """The hub's HTTP client for this connection or account: timeouts, retries with
        jittered backoff, a circuit breaker and typed errors are the hub's, never the
        plugin's. The hub passes one per connection; a bare adapter makes its own."""
        if self._http is None:
            from hub.core.http import HttpClient

            self._http = HttpClient(self.name)
        return self._http

    @classmethod
    def validate_settings(cls, settings: Mapping[str, Any]) -> None:
        """Invalid naming each field the schema refuses and its rule, never its value: a
        setting may be a secret, and the message goes back to whoever sent it."""
        errors = list(Draft202012Validator(cls.settings_schema).iter_errors(settings))
        if errors:
            found = schema_errors.problems(errors, root="settings")
            raise Invalid(f"{cls.name} {schema_errors.summary(found)}", found)


# --- notifiers -----------------------------------------------------------------------------

# What a notifier's ``addressed`` may say it delivers to; the hub resolves a route's recipients
# ("customer": the order's customer) to an address of that kind.
ADDRESS_KINDS = ("email", "phone")


@dataclass(frozen=True)
class Recipient:
    """Who one message goes to: an address of the notifier's kind (an e-mail address, a phone
    number), a name to greet, and the language to write in (a BCP 47 tag: "en", "zh-CN")."""

    address: str
    name: str | None = None
    language: str = "en"


@dataclass(frozen=True)
class Message:
    """What a notifier is asked to say: the event, a one-line subject in English (for logs),
    and the event's data (its payload, as plugins' event hooks get it).

    ``id`` is the same on every attempt at this message: a receiver's de-duplication key (a
    webhook's ``webhook-id``, an e-mail's Message-ID). ``recipient`` is set for an addressed
    notifier. ``context`` is what templates may use: the payload's fields plus what the hub
    looked up (the tenant, the order, its shipments and tracking links, the recipient)."""

    tenant: str
    event: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    recipient: Recipient | None = None
    context: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None

    @property
    def language(self) -> str:
        return self.recipient.language if self.recipient else "en"


class Undeliverable(Exception):
    """Raised by a notifier when trying again cannot help until someone acts: the recipient or
    the credentials were refused, the destination may not be called. The hub marks the
    message failed at once (it can be replayed); any other exception is retried. The text is
    shown to the tenant: word it, never paste a response or a setting."""


class TryLater(Exception):
    """Raised by a notifier for a failure that may mend (the server is down, busy, or deferred
    the message): the hub retries after its next wait, or after ``retry_after`` seconds when
    the destination asked for longer. Its text is worded for the tenant, like Undeliverable's;
    any other exception is retried too, shown with its type."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Gone(Undeliverable):
    """The destination says it no longer exists (a webhook endpoint's 410): the hub disables
    the notifier for the tenant until an admin enables it again."""


class Notifier(Adapter):
    """Tells people about events. ``addressed`` says what a route's recipients must be for
    it ("email", "phone"); None for a notifier whose destination is in its settings (a URL,
    the log), which takes no recipients."""

    addressed: ClassVar[str | None] = None

    @abstractmethod
    def send(self, message: Message) -> str | None:
        """Deliver the message; return the provider's id for it (a Message-ID, an SMS id)
        when there is one. Raise Undeliverable when retrying cannot help, anything else to
        have the hub retry later (with back-off)."""


class StubNotifier(Notifier):
    """Keeps what it was asked to send, for tests and for trying a configuration out."""

    name = "stub"
    title = "Stub notifier (keeps messages in memory)"
    sent: ClassVar[list[Message]] = []

    def send(self, message: Message) -> str | None:
        self.sent.append(message)
        return None


# --- channels ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundRequest:
    """A webhook request as the channel sent it: raw bytes (signatures are over them), the
    headers (look-ups are case-insensitive), and the URL the channel called."""

    headers: Mapping[str, str]
    body: bytes
    url: str = ""

    def header(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), default)


@dataclass(frozen=True)
class Delivery:
    """A verified request worth keeping: its de-duplication key (unique per connection: the
    channel's delivery or event id) and its topic, kept with the raw bytes in the inbox."""

    key: str
    topic: str | None = None


@dataclass
class ChannelOrder:
    """One order as a channel states it at ``event_time``; an older statement never
    overwrites a newer one. Line SKUs are the channel's; the hub maps them to its own."""

    external_id: str
    event_time: datetime
    draft: OrderDraft
    cancelled: bool = False
    channel_status: str | None = None
    # Set when the channel says the order must not be worked yet (an Amazon order still
    # Pending payment): the hub holds it with this reason until a statement without it.
    hold: str | None = None
    # For an order the channel fulfils itself (``draft.fulfilled_by_channel``): how far its
    # shipping has gone, "partially_shipped" or "shipped"; the hub's order follows it.
    channel_shipped: str | None = None


@dataclass(frozen=True)
class Pulled:
    """One delivery fetched by a pull channel; stored in the inbox exactly like a webhook
    delivery (same de-duplication on ``key``), then parsed by ``parse(topic, body)``."""

    key: str
    body: bytes
    topic: str | None = None


@dataclass(frozen=True)
class PollPage:
    """What one step of a poll fetched. The hub commits each page's deliveries as it comes,
    and saves ``cursor`` (set on the last page only) once everything before it is stored, so
    a poll that dies half-way is simply repeated and its repeats are duplicates."""

    deliveries: list[Pulled]
    cursor: str | None = None


@dataclass(frozen=True)
class FulfilledLine:
    """A shipped quantity of one order line, named as the channel named it (its SKU, or its
    product / variant id when the SKU was empty)."""

    channel_ref: str
    quantity: int


@dataclass(frozen=True)
class Fulfilment:
    """What the hub tells a channel when it ships: carrier, tracking, and which lines (none
    listed = the whole order)."""

    carrier: str
    tracking_number: str
    tracking_url: str | None = None
    lines: tuple[FulfilledLine, ...] = ()


@dataclass(frozen=True)
class RefundedLine:
    """Returned units of one order line a refund pays back, named as the channel named the
    line (its SKU, or its product / variant id when the SKU was empty)."""

    channel_ref: str
    quantity: int


@dataclass(frozen=True)
class ChannelRefund:
    """A refund the hub asks a channel to make on one of its orders. ``key`` is the same on
    every attempt at this refund: send it as the channel's idempotency key (or look the
    channel's refunds up by it before making one), so a retry after a timeout never pays
    twice. ``lines`` are the returned units it pays for; ``shipping_included`` says the
    amount includes the order's shipping. The channel must not restock: the hub did."""

    key: str
    amount: Decimal
    currency: str
    reason: str | None = None
    shipping_included: bool = False
    lines: tuple[RefundedLine, ...] = ()


class PayloadError(Exception):
    """The payload is not what the channel documents; the inbox keeps it as rejected with
    this message, and it can be replayed after a fix."""


class ChannelAdapter(Adapter):
    """A sales channel. Push channels verify and parse webhooks; pull channels poll.

    ``capabilities`` declares what the channel does: "push" (verify / delivery / parse),
    "pull" (poll / parse; the worker polls every ``poll_seconds``), "fulfilment"
    (push_fulfilment) and "refund" (push_refund: without it a refund the hub grants is
    recorded for someone to make by hand). A channel that declares a capability without
    its methods is refused at load. ``secret_settings`` names the settings that hold
    secrets: the hub stores them encrypted (or as ``{"$env": …}`` references) and never
    returns them through the API.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({"push"})
    poll_seconds: ClassVar[int] = 300
    # Some channels count any answer but "2xx with an empty body" as a failed push (Shopee).
    empty_acknowledgement: ClassVar[bool] = False
    # A channel whose format OrderHub defines (the storefront) publishes its JSON Schema here;
    # the API serves it at /api/v1/channels/<name>/schema.
    payload_schema: ClassVar[dict[str, Any] | None] = None

    def verify(self, request: InboundRequest) -> bool:
        """True when the request is authentic (signature over the raw bytes, constant-time)."""
        raise NotImplementedError

    def delivery(self, request: InboundRequest) -> Delivery | None:
        """What to store for a verified request; None acknowledges it and stores nothing
        (a WooCommerce ping, a topic the hub does not handle)."""
        raise NotImplementedError

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        """The orders a stored delivery carries; raise PayloadError when it is malformed."""
        raise NotImplementedError

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        """Pull: what changed since ``cursor`` (None on the first poll), page by page; the
        last page carries the cursor the next poll starts from. HTTP through ``self.http``."""
        raise NotImplementedError

    def test_delivery(self) -> tuple[dict[str, str], bytes] | None:
        """A delivery signed with this connection's settings exactly as the channel signs,
        about something the hub acknowledges and does not store (a topic that is not an
        order): the hub posts it to its own webhook URL to show a merchant that the address
        is reachable and the secret right ("send a test delivery"). (headers, raw body), or
        None when the channel offers no such test (the default)."""
        return None

    def polls(self) -> bool:
        """Should the worker poll this connection on schedule? A push channel that also
        reconciles by polling says no when this connection lacks the credentials for it."""
        return "pull" in self.capabilities

    def push_fulfilment(self, external_id: str, fulfilment: Fulfilment) -> str | None:
        """Tell the channel an order (or some of its lines) shipped; returns the channel's id
        for the fulfilment, if it gives one. Raise (an ``hub.core.http`` error) to be retried."""
        raise NotImplementedError

    def push_refund(self, external_id: str, refund: ChannelRefund) -> str | None:
        """Pay ``refund`` back on the channel's order ``external_id``; returns the channel's
        id for the refund, if it gives one. A retryable ``hub.core.http`` error is tried
        again later with the same ``refund.key``; any other marks the refund failed with its
        message (reword the channel's error: the tenant reads it)."""
        raise NotImplementedError


class StubChannel(ChannelAdapter):
    """A minimal signed JSON channel for tests and demos.

    Body: ``{"id", "updated_at", "lines": [{"sku", "quantity", "unit_price"}], "cancelled"?}``;
    header ``X-Stub-Signature`` = hex HMAC-SHA256 of the body with the ``secret`` setting;
    header ``X-Stub-Delivery`` is the delivery id. Refunds are kept in ``refunds`` (refund
    key → (order id, refund)); the same key twice is one refund, as a real channel's
    idempotency key makes it.
    """

    name = "stub"
    title = "Stub channel"
    capabilities = frozenset({"push", "refund"})
    secret_settings = ("secret",)
    refunds: ClassVar[dict[str, tuple[str, ChannelRefund]]] = {}
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"secret": {"type": "string", "minLength": 1}},
        "required": ["secret"],
        "additionalProperties": False,
    }

    def verify(self, request: InboundRequest) -> bool:
        expected = hmac.new(self.settings["secret"].encode(), request.body, "sha256").hexdigest()
        return hmac.compare_digest(request.header("X-Stub-Signature"), expected)

    def delivery(self, request: InboundRequest) -> Delivery | None:
        key = request.header("X-Stub-Delivery")
        return Delivery(key, "order") if key else None

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        try:
            data = json.loads(body)
            return [
                ChannelOrder(
                    external_id=str(data["id"]),
                    event_time=datetime.fromisoformat(data["updated_at"]),
                    cancelled=bool(data.get("cancelled")),
                    draft=OrderDraft(
                        lines=[
                            LineItem(
                                sku=x["sku"],
                                quantity=int(x["quantity"]),
                                unit_price=Decimal(str(x["unit_price"])),
                            )
                            for x in data["lines"]
                        ],
                        consignee=Consignee(
                            name=data.get("name"), address=Address(country=data.get("country"))
                        ),
                        channel=self.name,
                    ),
                )
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a stub order: {type(exc).__name__}: {exc}") from None

    def push_refund(self, external_id: str, refund: ChannelRefund) -> str | None:
        self.refunds.setdefault(refund.key, (external_id, refund))
        return f"stub-refund-{list(self.refunds).index(refund.key) + 1}"


# --- carriers ------------------------------------------------------------------------------

# Normalised tracking statuses, in the order a shipment moves through them. A
# later event never moves a shipment to a lower rank, except the few moves a carrier states
# explicitly (a failed attempt followed by another trip out; an exception that clears).
TRACKING_STATUSES = (
    "info_received",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "available_for_pickup",
    "delivery_failed",
    "exception",
    "returned_to_sender",
    "delivered",
    "cancelled",
    "expired",
)
TERMINAL_STATUSES = frozenset({"delivered", "returned_to_sender", "cancelled", "expired"})
# Exception reasons a plugin may give (free text is allowed too; these are the known ones).
EXCEPTION_REASONS = (
    "delayed",
    "lost",
    "damaged",
    "refused",
    "address",
    "customs",
    "weather",
    "failed_attempt",
    "returned",
)


@dataclass(frozen=True)
class Parcel:
    weight_kg: Decimal
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None


@dataclass(frozen=True)
class Place:
    """An origin or a destination: the address, and who is there."""

    country: str
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    line1: str | None = None
    line2: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class ShipmentRequest:
    """One shipment to quote or buy: where from, where to, what (parcels), its declared value
    (customs, insurance) and our reference (the order number)."""

    origin: Place
    destination: Place
    parcels: tuple[Parcel, ...]
    declared_value: Decimal | None = None
    currency: str = "USD"
    reference: str | None = None


@dataclass(frozen=True)
class Service:
    """A service a carrier account offers, with its transit estimate in working days."""

    code: str
    name: str
    transit_days: int | None = None


@dataclass(frozen=True)
class Rate:
    carrier: str
    service: str
    amount: Decimal
    currency: str
    estimated_days: int | None
    estimated_delivery: date | None = None
    # The carrier's own handle for this rate, when buying must name it (EasyPost's rate id).
    carrier_ref: str | None = None


class Rates(list[Rate]):
    """What ``quote`` may return instead of a plain list: the rates, with ``notes`` on rates
    the carrier answered but the plugin had to leave out (one without a currency cannot be
    compared with any other). The hub lists each note with the quote's errors, as a "parse"
    error of the account; the account's other rates still count."""

    def __init__(self, rates: Iterable[Rate] = (), notes: Iterable[str] = ()) -> None:
        super().__init__(rates)
        self.notes: tuple[str, ...] = tuple(notes)


@dataclass(frozen=True)
class Waybill:
    """A bought shipment: the tracking number, where its label is, the carrier's own id (to
    cancel or track it), and what it cost when the carrier says."""

    tracking_number: str
    label: str | None = None
    carrier_shipment_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    estimated_delivery: date | None = None


@dataclass(frozen=True)
class TrackingEvent:
    """One scan. ``status`` is one of TRACKING_STATUSES, ``reason`` an exception reason where
    there is one; the carrier's own code and text are kept as they came."""

    status: str
    at: datetime
    raw_code: str
    raw_text: str = ""
    reason: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class TrackingUpdate:
    """What a carrier says about one tracking number: its events (any order, repeats
    allowed: the hub de-duplicates and keeps the status monotonic) and its current estimate."""

    tracking_number: str
    events: tuple[TrackingEvent, ...]
    estimated_delivery: date | None = None


class CarrierAdapter(Adapter):
    """A carrier or aggregator account. Mapping (requests and responses) stays apart from I/O;
    all HTTP goes through ``self.http``; errors are ``hub.core.http`` typed errors.

    ``capabilities``: "rating" (quote), "shipping" (create_shipment), "tracking" (track),
    "tracking_push" (verify_push and parse_push), "cancel" (cancel), "return_label"
    (create_return_label). A carrier that declares
    one without its methods is refused at load. ``track_batch`` is how many tracking numbers
    one ``track`` call takes; the hub also paces calls with the plugin's own RateLimits.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()
    track_batch: ClassVar[int] = 1

    def services(self) -> list[Service]:
        """What this account offers (may depend on its settings)."""
        return []

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        raise NotImplementedError

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        raise NotImplementedError

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        raise NotImplementedError

    def verify_push(self, request: InboundRequest) -> bool:
        raise NotImplementedError

    def parse_push(self, request: InboundRequest) -> list[TrackingUpdate]:
        """A verified carrier webhook's tracking updates; PayloadError when malformed."""
        raise NotImplementedError

    def cancel(self, waybill: Waybill) -> None:
        """Void a shipment not yet picked up; a BusinessError when the carrier refuses."""
        raise NotImplementedError

    def create_return_label(self, request: ShipmentRequest, service: str) -> Waybill:
        """A label the customer sends goods back with: ``request.origin`` is the customer,
        ``request.destination`` the warehouse, ``request.reference`` the return's number."""
        raise NotImplementedError


class StubCarrier(CarrierAdapter):
    """A flat price per parcel and tracking numbers it makes up; for tests and demos. Track
    answers from ``scans`` (tracking number → events), which tests fill in."""

    name = "stub"
    title = "Stub carrier"
    capabilities = frozenset({"rating", "shipping", "tracking", "cancel", "return_label"})
    track_batch = 50
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"price": {"type": "string"}, "currency": {"type": "string"}},
        "additionalProperties": False,
    }
    issued: ClassVar[int] = 0
    scans: ClassVar[dict[str, list[TrackingEvent]]] = {}

    def services(self) -> list[Service]:
        return [Service("standard", "Standard", 3)]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        price = Decimal(self.settings.get("price", "5.00")) * len(request.parcels)
        return [Rate(self.name, "standard", price, self.settings.get("currency", "USD"), 3)]

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        type(self).issued += 1
        return Waybill(f"STUB{type(self).issued:08d}", label=f"stub://label/{type(self).issued}")

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        return [
            TrackingUpdate(number, tuple(self.scans.get(number, ()))) for number in tracking_numbers
        ]

    def cancel(self, waybill: Waybill) -> None:
        return None

    def create_return_label(self, request: ShipmentRequest, service: str) -> Waybill:
        type(self).issued += 1
        number = type(self).issued
        return Waybill(f"STUBRET{number:08d}", label=f"stub://return-label/{number}")
