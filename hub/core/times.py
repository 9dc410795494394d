"""Instants that come from outside (request bodies, query parameters, channel and carrier
payloads) are range-checked here, after their offset is applied.

PostgreSQL stores ``9999-12-31T23:59:59-14:00`` as year 10000, which Python cannot read back:
one such row would make every read of it fail. A sane business range keeps far away from
both ends of ``datetime``, so no offset, addition or time-zone shift can overflow it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
RANGE_TEXT = "between 1900-01-01 and 2999-12-31 (UTC)"


class OutOfRange(ValueError):
    """A well-formed instant outside ``EARLIEST`` … ``LATEST``."""


def check_instant(value: datetime) -> datetime:
    """``value`` in UTC, or ``OutOfRange``. A naive value is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # the offset pushed it past year 1 or 9999
        raise OutOfRange(f"must be {RANGE_TEXT}") from None
    if not EARLIEST <= utc <= LATEST:
        raise OutOfRange(f"must be {RANGE_TEXT}")
    return utc


def parse_instant(text: str, *, assume_utc: bool = False) -> datetime:
    """An ISO-8601 date-time (``Z`` or an offset; without one only when ``assume_utc``), in
    UTC and in range. Raises ``ValueError`` (``OutOfRange`` for a valid but absurd one)."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None and not assume_utc:
        raise ValueError("needs a time zone (Z or an offset such as +02:00)")
    return check_instant(value)


def check_date(value: date) -> date:
    """A calendar date in the same range."""
    if not EARLIEST.date() <= value <= LATEST.date():
        raise OutOfRange(f"must be {RANGE_TEXT}")
    return value


def parse_day(text: str) -> date:
    """A calendar day written ``YYYY-MM-DD``, in range. Raises ``ValueError``."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a YYYY-MM-DD day")
    return check_date(date.fromisoformat(text))


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def clamp(value: datetime) -> datetime:
    """``value`` in UTC, pulled into ``EARLIEST`` … ``LATEST``: what a read does with a value
    stored before the range was enforced, so one absurd row cannot break a page of them."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        return LATEST if value.year > 1 else EARLIEST
    return min(max(utc, EARLIEST), LATEST)
