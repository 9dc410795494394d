"""Outside instants are kept within a range PostgreSQL and Python both read back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from hub.core import times


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "3000-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "2999-12-31T23:00:00-01:00",
    ],
)
def test_absurd_instants_are_refused_after_their_offset(text: str) -> None:
    with pytest.raises(times.OutOfRange, match="between 1900-01-01 and 2999-12-31"):
        times.parse_instant(text)


def test_instants_in_range_come_back_in_utc() -> None:
    assert times.parse_instant("2026-03-01T10:00:00+02:00") == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert times.parse_instant("1900-01-01T00:00:00Z") == times.EARLIEST
    assert times.parse_instant("2999-12-31T23:59:59Z") == times.LATEST


def test_a_missing_zone_is_refused_unless_utc_is_assumed() -> None:
    with pytest.raises(ValueError, match="time zone"):
        times.parse_instant("2026-03-01T10:00:00")
    assert times.parse_instant("2026-03-01T10:00:00", assume_utc=True).tzinfo == UTC


def test_datetimes_and_dates_are_checked_too() -> None:
    east = timezone(timedelta(hours=14))
    with pytest.raises(times.OutOfRange):
        times.check_instant(datetime(1900, 1, 1, 5, tzinfo=east))
    assert times.check_instant(datetime(2026, 1, 1)).tzinfo == UTC
    assert times.check_date(date(2026, 1, 1)) == date(2026, 1, 1)
    with pytest.raises(times.OutOfRange):
        times.check_date(date(9999, 1, 1))
