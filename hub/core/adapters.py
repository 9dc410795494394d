"""The contracts plugins implement — ChannelAdapter, CarrierAdapter, Notifier — with a Stub of
each, so development and tests never need an outside service.

An adapter class carries its ``name`` and a JSON Schema for its ``settings``; the hub validates
settings before constructing it, so ``__init__`` can trust what it gets.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from jsonschema import Draft202012Validator

from hub.core.errors import Invalid
from hub.core.normalised import OrderDraft


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
    """The raw webhook request a channel verifies and parses: bytes, not parsed JSON."""

    headers: Mapping[str, str]
    body: bytes


class ChannelAdapter(Adapter):
    """A sales channel. Push channels verify and parse webhooks; pull channels poll."""

    mode: ClassVar[str] = "push"

    def verify(self, request: InboundRequest) -> bool:
        """True when the request is authentic (signature over the raw bytes)."""
        raise NotImplementedError

    def event_id(self, request: InboundRequest) -> str:
        """The channel's delivery or event id, the key that de-duplicates retries."""
        raise NotImplementedError

    def parse(self, request: InboundRequest) -> list[OrderDraft]:
        """Normalised orders carried by the request."""
        raise NotImplementedError

    def poll(self, cursor: str | None) -> tuple[list[OrderDraft], str | None]:
        """Pull channels: orders changed since ``cursor``, and the next cursor."""
        raise NotImplementedError


class StubChannel(ChannelAdapter):
    """Accepts a JSON list of drafts signed with a shared token header; for tests and demos."""

    name = "stub"
    title = "Stub channel"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"token": {"type": "string"}},
        "additionalProperties": False,
    }
    queued: ClassVar[list[OrderDraft]] = []

    def verify(self, request: InboundRequest) -> bool:
        return hmac.compare_digest(
            request.headers.get("X-Stub-Token", ""), self.settings.get("token", "")
        )

    def event_id(self, request: InboundRequest) -> str:
        return request.headers.get("X-Stub-Event", "")

    def parse(self, request: InboundRequest) -> list[OrderDraft]:
        return list(self.queued)

    def poll(self, cursor: str | None) -> tuple[list[OrderDraft], str | None]:
        start = int(cursor or 0)
        return self.queued[start:], str(len(self.queued))


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
