"""The normalised shapes that cross the core's boundary: what the API, the CLI and channel
plugins hand to the order service, whatever format the order arrived in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal


@dataclass
class Address:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    country: str | None = None


@dataclass
class Consignee:
    name: str | None = None
    phone: str | None = None
    address: Address = field(default_factory=Address)


@dataclass
class CustomerInfo:
    email: str | None = None
    name: str | None = None
    phone: str | None = None
    # The language the customer reads (BCP 47, "zh-CN"), when the caller or channel says.
    language: str | None = None
    # For a birthday greeting (hub.core.care), when the customer gave it.
    birthday: date | None = None


@dataclass
class LineItem:
    sku: str
    quantity: int
    unit_price: Decimal | None = None
    name: str | None = None
    # Channels: the channel's product or variant id, mapped when the SKU is empty or unknown.
    channel_product_id: str | None = None


@dataclass
class OrderDraft:
    lines: list[LineItem]
    consignee: Consignee = field(default_factory=Consignee)
    customer: CustomerInfo | None = None
    currency: str = "USD"
    shipping_total: Decimal = Decimal(0)
    tax_total: Decimal = Decimal(0)
    discount_total: Decimal = Decimal(0)
    # Other charges the buyer paid (gift wrap, a cash-on-delivery fee): part of the total.
    fees_total: Decimal = Decimal(0)
    channel: str = "api"
    external_id: str | None = None
    external_name: str | None = None
    priority: int = 0
    note: str | None = None
    # As the channel or caller names it ("Express", "UPS Next Day Air"); the priority rules
    # match it against the tenant's express patterns.
    shipping_method: str | None = None
    created_at: datetime | None = None
    paid_at: datetime | None = None
    # The channel ships it from its own stock (Amazon AFN, a marketplace's fulfilment
    # service): the hub records the sale but reserves nothing and ships nothing.
    fulfilled_by_channel: bool = False
