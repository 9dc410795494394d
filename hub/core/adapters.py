"""The contracts plugins implement — ChannelAdapter, CarrierAdapter, Notifier — with a Stub of
each, so development and tests never need an outside service.

An adapter class carries its ``name`` and a JSON Schema for its ``settings``; the hub validates
settings before constructing it, so ``__init__`` can trust what it gets.
"""

from __future__ import annotations

import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from jsonschema import Draft202012Validator

from hub.core.errors import Invalid
from hub.core.normalised import Address, Consignee, LineItem, OrderDraft

if TYPE_CHECKING:
    from hub.core.http import HttpClient


class Adapter(ABC):
    name: ClassVar[str]
    title: ClassVar[str] = ""
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}

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
        error = next(iter(Draft202012Validator(cls.settings_schema).iter_errors(settings)), None)
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "settings"
            raise Invalid(f"{cls.name} settings: {where}: {error.message}")


# --- notifiers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """What a notifier is asked to say: the event, a one-line subject, and the event's data."""

    tenant: str
    event: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)


class Notifier(Adapter):
    @abstractmethod
    def send(self, message: Message) -> None:
        """Deliver the message; raise to have the hub retry later."""


class StubNotifier(Notifier):
    """Keeps what it was asked to send, for tests and for trying a configuration out."""

    name = "stub"
    title = "Stub notifier (keeps messages in memory)"
    sent: ClassVar[list[Message]] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


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


class PayloadError(Exception):
    """The payload is not what the channel documents; the inbox keeps it as rejected with
    this message, and it can be replayed after a fix."""


class ChannelAdapter(Adapter):
    """A sales channel. Push channels verify and parse webhooks; pull channels poll.

    ``capabilities`` declares what the channel does: "push" (verify / delivery / parse),
    "pull" (poll / parse; the worker polls every ``poll_seconds``) and "fulfilment"
    (push_fulfilment). A channel that declares a capability without its methods is refused
    at load. ``secret_settings`` names the settings that hold secrets: the hub stores them
    encrypted (or as ``{"$env": …}`` references) and never returns them through the API.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({"push"})
    poll_seconds: ClassVar[int] = 300
    # Some channels count any answer but "2xx with an empty body" as a failed push (Shopee).
    empty_acknowledgement: ClassVar[bool] = False
    secret_settings: ClassVar[tuple[str, ...]] = ()
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

    def polls(self) -> bool:
        """Should the worker poll this connection on schedule? A push channel that also
        reconciles by polling says no when this connection lacks the credentials for it."""
        return "pull" in self.capabilities

    def push_fulfilment(self, external_id: str, fulfilment: Fulfilment) -> str | None:
        """Tell the channel an order (or some of its lines) shipped; returns the channel's id
        for the fulfilment, if it gives one. Raise (an ``hub.core.http`` error) to be retried."""
        raise NotImplementedError


class StubChannel(ChannelAdapter):
    """A minimal signed JSON channel for tests and demos.

    Body: ``{"id", "updated_at", "lines": [{"sku", "quantity", "unit_price"}], "cancelled"?}``;
    header ``X-Stub-Signature`` = hex HMAC-SHA256 of the body with the ``secret`` setting;
    header ``X-Stub-Delivery`` is the delivery id.
    """

    name = "stub"
    title = "Stub channel"
    secret_settings = ("secret",)
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


# --- carriers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parcel:
    weight_kg: Decimal
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None


@dataclass(frozen=True)
class ShipmentRequest:
    origin_country: str
    destination_country: str
    destination_postcode: str | None
    parcels: tuple[Parcel, ...]
    reference: str | None = None


@dataclass(frozen=True)
class Rate:
    carrier: str
    service: str
    amount: Decimal
    currency: str
    estimated_days: int | None


@dataclass(frozen=True)
class TrackingEvent:
    tracking_number: str
    status: str
    raw_code: str
    description: str
    at: str
    location: str | None = None


class CarrierAdapter(Adapter):
    """A carrier or aggregator. Mapping (requests and responses) stays apart from I/O."""

    def services(self) -> list[str]:
        raise NotImplementedError

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        raise NotImplementedError

    def create_shipment(self, request: ShipmentRequest, service: str) -> dict[str, Any]:
        raise NotImplementedError

    def track(self, tracking_numbers: list[str]) -> list[TrackingEvent]:
        raise NotImplementedError

    def cancel(self, tracking_number: str) -> None:
        raise NotImplementedError


class StubCarrier(CarrierAdapter):
    """A flat price per parcel and tracking numbers it makes up; for tests and demos."""

    name = "stub"
    title = "Stub carrier"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"price": {"type": "string"}, "currency": {"type": "string"}},
        "additionalProperties": False,
    }
    issued: ClassVar[int] = 0

    def services(self) -> list[str]:
        return ["standard"]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        price = Decimal(self.settings.get("price", "5.00")) * len(request.parcels)
        return [Rate(self.name, "standard", price, self.settings.get("currency", "USD"), 3)]

    def create_shipment(self, request: ShipmentRequest, service: str) -> dict[str, Any]:
        type(self).issued += 1
        return {"tracking_number": f"STUB{type(self).issued:08d}", "service": service}

    def track(self, tracking_numbers: list[str]) -> list[TrackingEvent]:
        return []

    def cancel(self, tracking_number: str) -> None:
        return None
