"""The contracts plugins implement — ChannelAdapter, CarrierAdapter, Notifier — with a Stub of
each, so development and tests never need an outside service.

An adapter class carries its ``name`` and a JSON Schema for its ``settings``; the hub validates
settings before constructing it, so ``__init__`` can trust what it gets.
"""

from __future__ import annotations

import hmac
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from jsonschema import Draft202012Validator

from hub.core.errors import Invalid
from hub.core.normalised import Address, Consignee, LineItem, OrderDraft


class Adapter(ABC):
    name: ClassVar[str]
    title: ClassVar[str] = ""
    settings_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

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


class PayloadError(Exception):
    """The payload is not what the channel documents; the inbox keeps it as rejected with
    this message, and it can be replayed after a fix."""


class ChannelAdapter(Adapter):
    """A sales channel. Push channels verify and parse webhooks; pull channels poll.

    ``secret_settings`` names the settings that hold secrets: the hub stores them encrypted
    (or as ``{"$env": …}`` references) and never returns them through the API.
    """

    mode: ClassVar[str] = "push"
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

    def poll(self, cursor: str | None) -> tuple[list[ChannelOrder], str | None]:
        """Pull channels: orders changed since ``cursor``, and the next cursor."""
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
