"""What a channel plugin's ``parse`` returns is checked here, once for every plugin, before
anything of it is written.

A value the database cannot store — a NUL in PostgreSQL text, a lone surrogate (``\\ud800``,
which JSON can spell but no UTF-8 encoder takes), a string longer than its column, an instant
past year 9999 once its offset is applied, an amount beyond its column — used to fail the
ingest's transaction with a database or encoding error: the delivery stayed pending and was
tried again for ever. Checked here it is a ``PayloadError`` naming the field and the rule, on
the first attempt, and the inbox shows it. Messages never quote the value.

Instants come back in UTC (a naive one read as UTC: the columns refuse naive values) and
amounts with at most four decimal places (the columns' scale), so what passes is storable.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column

from hub.core.adapters import ChannelOrder, PayloadError
from hub.core.models import Customer, Order, OrderLine
from hub.core.money import MAX_AMOUNT
from hub.core.normalised import LineItem
from hub.core.orders import MAX_LINE_QUANTITY
from hub.core.times import RANGE_TEXT, OutOfRange, check_instant

_orders, _customers, _lines = Order.__table__.c, Customer.__table__.c, OrderLine.__table__.c
# Where each string of a statement is stored; strings not listed (a channel's SKU or product
# id, only looked up) are checked for what no column can hold, not for a length.
_COLUMNS: dict[str, Column[Any]] = {
    "external_id": _orders.external_id,
    "hold": _orders.channel_hold,
    "draft.external_name": _orders.external_name,
    "draft.currency": _orders.currency,
    "draft.note": _orders.note,
    "draft.shipping_method": _orders.shipping_method,
    "draft.channel": _orders.channel,
    "draft.consignee.name": _orders.consignee_name,
    "draft.consignee.phone": _orders.consignee_phone,
    "draft.consignee.address.line1": _orders.ship_line1,
    "draft.consignee.address.line2": _orders.ship_line2,
    "draft.consignee.address.city": _orders.ship_city,
    "draft.consignee.address.region": _orders.ship_region,
    "draft.consignee.address.postcode": _orders.ship_postcode,
    "draft.consignee.address.country": _orders.ship_country,
    "draft.customer.email": _customers.email,
    "draft.customer.name": _customers.name,
    "draft.customer.phone": _customers.phone,
    "line.name": _lines.name,
}
_AMOUNTS = ("shipping_total", "tax_total", "discount_total")
_INSTANTS = ("created_at", "paid_at")
SCALE = Decimal("0.0001")


def check_statement(statement: ChannelOrder, channel: str) -> ChannelOrder:
    """``statement`` made storable, or a ``PayloadError`` ("shopify: draft.consignee.name:
    contains a NUL character")."""
    problem = _Problems(channel)
    _texts(statement, "", "", problem)
    draft = statement.draft
    lines = [_line(line, f"line {i}", problem) for i, line in enumerate(draft.lines, start=1)]
    draft = dataclasses.replace(
        draft,
        lines=lines,
        **{name: _amount(getattr(draft, name), name, problem) for name in _AMOUNTS},
        **{name: _instant(getattr(draft, name), f"draft.{name}", problem) for name in _INSTANTS},
    )
    event_time = _instant(statement.event_time, "event_time", problem)
    if event_time is None:
        raise problem("event_time", "missing")
    return dataclasses.replace(statement, draft=draft, event_time=event_time)


class _Problems:
    def __init__(self, channel: str) -> None:
        self.channel = channel

    def __call__(self, field: str, rule: str) -> PayloadError:
        return PayloadError(f"{self.channel}: {field}: {rule}")


def _texts(value: Any, path: str, key: str, problem: _Problems) -> None:
    """Every string in the statement's dataclasses; ``path`` names a field in messages (lines
    as "line 2."), ``key`` finds its column in ``_COLUMNS`` (lines as "line.")."""
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if isinstance(item, str):
            _text(item, path + field.name, _COLUMNS.get(key + field.name), problem)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            _texts(item, f"{path}{field.name}.", f"{key}{field.name}.", problem)
        elif isinstance(item, list):
            for i, element in enumerate(item, start=1):
                if dataclasses.is_dataclass(element) and not isinstance(element, type):
                    _texts(element, f"line {i}.", "line.", problem)


def _text(text: str, where: str, column: Column[Any] | None, problem: _Problems) -> None:
    if "\x00" in text:
        raise problem(where, "contains a NUL character, which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise problem(
            where, "contains a lone surrogate (an unpaired \\ud800-\\udfff), which is not text"
        ) from None
    limit = getattr(column.type, "length", None) if column is not None else None
    if limit is not None and len(text) > limit:
        raise problem(where, f"is longer than {limit} characters")


def _line(line: LineItem, where: str, problem: _Problems) -> LineItem:
    quantity = line.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise problem(f"{where}.quantity", "not a whole number")
    if not 0 <= quantity <= MAX_LINE_QUANTITY:
        raise problem(f"{where}.quantity", f"must be between 0 and {MAX_LINE_QUANTITY}")
    price = _amount(line.unit_price, f"{where}.unit_price", problem)
    return line if price is line.unit_price else dataclasses.replace(line, unit_price=price)


def _amount(value: Any, where: str, problem: _Problems) -> Any:
    """Finite, below the columns' limit, at most four places once trailing zeros go."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise problem(where, "not a decimal amount")
    amount = Decimal(value)
    if not amount.is_finite():
        raise problem(where, "not a finite amount")
    if abs(amount) >= MAX_AMOUNT:
        raise problem(where, f"must be below {MAX_AMOUNT} in size")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        if amount != amount.quantize(SCALE):
            raise problem(where, "has more than 4 decimal places")
        return amount.quantize(SCALE)
    return value


def _instant(value: Any, where: str, problem: _Problems) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise problem(where, "not a date-time")
    try:
        return check_instant(value)
    except OutOfRange:
        raise problem(where, f"must be {RANGE_TEXT}") from None
