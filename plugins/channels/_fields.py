"""Reading a channel's JSON field by field, shared by the built-in channels.

Every channel refuses a payload it cannot map with a PayloadError that names the failing field
by its path (``amazon: items[1].ItemPrice.Amount: not a decimal: 'twenty'``), because the inbox
shows that message to whoever has to fix the sender or the connection and replay the delivery.
Each channel used to carry its own copy of these readers; one implementation keeps the rules
that matter for money and time (Decimal, never float; instants in UTC) the same everywhere.

A channel that reads a field differently subclasses :class:`Fields` and overrides only that
rule (WooCommerce's ``[]`` for an empty object, Shopify's message wording and offset rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, ClassVar, Self, TypeVar

from hub.core.adapters import PayloadError
from hub.core.times import RANGE_TEXT, OutOfRange, check_instant

T = TypeVar("T")


def utc_time(value: str, *, offset_required: bool = False) -> datetime:
    """An ISO-8601 time as an aware datetime in UTC, so times from different zones compare as
    instants. One without an offset is read as UTC (Amazon's and WooCommerce's ``*_gmt`` times
    are UTC without saying so) unless ``offset_required``. Raises ValueError, and
    ``OutOfRange`` (a ValueError) outside the hub's range (``hub.core.times``): year 9999
    with a negative offset is past what a datetime can hold in UTC."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        if offset_required:
            raise ValueError(f"no UTC offset in {value!r}")
        moment = moment.replace(tzinfo=UTC)
    return check_instant(moment)


def split_total(total: Decimal, quantity: int) -> list[tuple[int, Decimal]]:
    """A line total as (quantity, unit price) parts whose sum is exactly ``total``: one part
    when it divides into whole cents (or the total's own finer places), else two, the second's
    units a cent dearer (10.00 for 3 = 2 x 3.33 + 1 x 3.34). Channels that state a line's total
    rather than its unit price need this so an order's total stays exactly theirs."""
    cent = Decimal(1).scaleb(min(total.as_tuple().exponent, -2))  # type: ignore[arg-type]
    unit = (total / quantity).quantize(cent, rounding=ROUND_DOWN)
    extra = int((total - unit * quantity) / cent)  # units that carry one more cent
    if extra == 0:
        return [(quantity, unit)]
    return [(quantity - extra, unit), (extra, unit + cent)]


class Fields:
    """One JSON object of a channel's payload, read field by field.

    ``at`` is the object's path in the payload ("" for the top, ``items[1]`` for a list
    element), so a failure deep inside names the whole path; ``channel`` starts every message,
    because the inbox lists deliveries from every channel together.
    """

    # Whether "" reads as no amount rather than a malformed one: WooCommerce and Shopify write
    # "" for an amount never set, while from other channels it can only be a broken payload.
    blank_amounts: ClassVar[bool] = False
    # Whether a time without a UTC offset is refused instead of read as UTC: a channel that
    # always sends an offset gives a time without one no known instant.
    offset_required: ClassVar[bool] = False

    def __init__(self, data: Mapping[str, Any], channel: str, at: str = "") -> None:
        self.data, self.channel, self.at = data, channel, at

    # --- messages ----------------------------------------------------------------------------

    def path(self, key: str) -> str:
        return f"{self.at}.{key}" if self.at else key

    def fail(self, key: str, problem: str) -> PayloadError:
        """The error naming ``key`` by its path; ``problem`` says what is wrong ("missing")."""
        return PayloadError(f"{self.channel}: {self.path(key)}: {problem}")

    def missing(self, key: str) -> PayloadError:
        return self.fail(key, "missing")

    def wrong(self, key: str, expected: str, value: Any) -> PayloadError:
        """A value of the wrong JSON type; ``expected`` is what should be there ("a string")."""
        return self.fail(key, f"expected {expected}, got {type(value).__name__}")

    def _present(self, key: str, value: T | None) -> T:
        if value is None:
            raise self.missing(key)
        return value

    # --- structure ---------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def need(self, key: str) -> Any:
        """The raw value of a required field (null counts as missing)."""
        return self._present(key, self.get(key))

    def child(self, data: Mapping[str, Any], key: str) -> Self:
        """A reader for a nested object, of the same kind as this one, at ``key``'s path."""
        return type(self)(data, self.channel, self.path(key))

    def obj(self, key: str) -> Self | None:
        """A nested object; None when absent, so a caller can tell "not sent" from empty."""
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "not an object")
        return self.child(value, key)

    def obj_or_empty(self, key: str) -> Self:
        """A nested object whose absence means nothing is in it (no address on a virtual
        order), so every field in it reads as None without a check at each use."""
        return self.obj(key) or self.child({}, key)

    def objects(self, key: str) -> list[Self]:
        """A list of objects (order lines); absent reads as an empty list."""
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "not a list")
        readers = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                raise self.fail(where, "not an object")
            readers.append(self.child(item, where))
        return readers

    # --- values ------------------------------------------------------------------------------

    def text(self, key: str) -> str | None:
        """A string, stripped; "" and blanks read as None, so a caller can fall back with
        ``or`` (channels send "" for a field the buyer left empty)."""
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.wrong(key, "a string", value)
        return value.strip() or None

    def need_text(self, key: str) -> str:
        return self._present(key, self.text(key))

    def full_name(self) -> str | None:
        """``first_name`` and ``last_name`` joined, for the channels that split a name."""
        parts = (self.text("first_name"), self.text("last_name"))
        return " ".join(p.strip() for p in parts if p and p.strip()) or None

    def id(self, key: str) -> str | None:
        """An id as a string: an integer id is kept as its exact digits, never a float, so a
        64-bit id survives; a boolean or an object is no id."""
        value = self.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
            raise self.wrong(key, "an id", value)
        return str(value)

    def need_id(self, key: str) -> str:
        return self._present(key, self.id(key))

    def quantity(self, key: str, *, zero_ok: bool = False) -> int:
        """A required count of units: a JSON integer (not a boolean, not a numeric string),
        at least 1, or at least 0 when ``zero_ok`` (a line whose units were all cancelled)."""
        value = self.need(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
            kind = "a non-negative" if zero_ok else "a positive"
            raise self.fail(key, f"expected {kind} integer, got {value!r}")
        return value

    def decimal(self, key: str) -> Decimal | None:
        """An amount as Decimal, from a decimal string or a JSON number the channel decoded
        as Decimal (``parse_float=Decimal``); a float is refused, because it cannot hold a
        price exactly, and so are NaN and infinities. None when absent."""
        value = self.get(key)
        if value is None or (self.blank_amounts and value == ""):
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise self.wrong(key, "a decimal", value)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise self.fail(key, f"not a decimal: {value!r}")
        return amount

    def amount(self, key: str) -> Decimal:
        """An amount that counts as zero when absent (no shipping charged, no tax)."""
        value = self.decimal(key)
        return Decimal(0) if value is None else value

    def time(self, key: str) -> datetime | None:
        """An ISO-8601 time in UTC (see :func:`utc_time`); None when absent."""
        value = self.text(key)
        if value is None:
            return None
        try:
            return utc_time(value, offset_required=self.offset_required)
        except OutOfRange:
            raise self.fail(key, f"not a date-time {RANGE_TEXT}") from None
        except ValueError:
            kind = "a date-time with an offset" if self.offset_required else "a date-time"
            raise self.fail(key, f"not {kind}: {value!r}") from None

    def need_time(self, key: str) -> datetime:
        return self._present(key, self.time(key))

    def unix_time(self, key: str) -> datetime | None:
        """Unix seconds, which are UTC. 0 reads as None: no order happened at the epoch, and
        Shopee writes 0 for "not yet" (an unpaid order's pay_time)."""
        value = self.get(key)
        if value is None or value == 0:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"expected unix seconds, got {value!r}")
        try:
            return check_instant(datetime.fromtimestamp(value, tz=UTC))
        except (OverflowError, OSError, ValueError):  # past year 9999, or out of range
            raise self.fail(key, f"not unix seconds {RANGE_TEXT}") from None

    def need_unix_time(self, key: str) -> datetime:
        return self._present(key, self.unix_time(key))
