"""Money is Decimal from the wire to the database; floats never carry an amount."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from hub.core.errors import Invalid

MAX_AMOUNT = Decimal("1000000000000")
CENTS = Decimal("0.01")


def parse_amount(value: object, what: str) -> Decimal:
    """Accept a decimal string, an int, or a JSON number already parsed as Decimal."""
    if isinstance(value, bool | float):
        raise Invalid(f'{what} must be a decimal string such as "19.99", not a float')
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise Invalid(f'{what} must be a decimal amount such as "19.99", got {value!r}')
    if amount < 0:
        raise Invalid(f"{what} must not be negative")
    if amount >= MAX_AMOUNT:
        raise Invalid(f"{what} is too large")
    if -amount.as_tuple().exponent > 4:  # type: ignore[operator]
        raise Invalid(f"{what} has more than 4 decimal places")
    return amount


def format_amount(amount: Decimal | None) -> str | None:
    """Two places unless the amount really has more (stored with four)."""
    if amount is None:
        return None
    cents = amount.quantize(CENTS)
    return str(cents) if cents == amount else str(amount.normalize())
