"""SLA time counts only the service desk's working hours, in the tenant's own zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from hub.core.working_hours import WorkingHours, parse

OFFICE = WorkingHours()  # Monday to Friday, 09:00-17:00 UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (utc(2026, 12, 7, 10), 60, utc(2026, 12, 7, 11)),  # Monday, inside the day
        (utc(2026, 12, 7, 9), 480, utc(2026, 12, 7, 17)),  # the whole day ends at closing
        (utc(2026, 12, 7, 9), 481, utc(2026, 12, 8, 9, 1)),  # a minute more: next morning
        (utc(2026, 12, 7, 7), 60, utc(2026, 12, 7, 10)),  # before opening: from 09:00
        (utc(2026, 12, 7, 18), 60, utc(2026, 12, 8, 10)),  # after closing: next day
        (utc(2026, 12, 11, 16), 120, utc(2026, 12, 14, 10)),  # Friday 16:00 → Monday
        (utc(2026, 12, 12, 12), 30, utc(2026, 12, 14, 9, 30)),  # from a Saturday
    ],
)
def test_working_minutes_are_added_within_opening_hours_only(
    start: datetime, minutes: int, due: datetime
) -> None:
    assert OFFICE.add(start, minutes) == due
    assert OFFICE.between(start, due) == minutes


def test_a_holiday_is_skipped_like_a_weekend() -> None:
    christmas = WorkingHours(holidays=frozenset({date(2026, 12, 25)}))
    # Thursday 24th 16:00, two hours: one on Thursday, one on Monday the 28th.
    assert christmas.add(utc(2026, 12, 24, 16), 120) == utc(2026, 12, 28, 10)


def test_hours_are_the_tenant_s_local_ones() -> None:
    shanghai = parse({"timezone": "Asia/Shanghai"})
    # 09:00 in Shanghai is 01:00 UTC.
    assert shanghai.add(utc(2026, 12, 7, 0), 60) == utc(2026, 12, 7, 2)


def test_a_daylight_saving_change_moves_the_window_with_the_wall_clock() -> None:
    new_york = parse({"timezone": "America/New_York"})
    # Friday 6 March 2026, 16:00 EST (21:00 UTC): one hour left that day; the clocks go
    # forward on Sunday, so Monday opens at 09:00 EDT = 13:00 UTC.
    assert new_york.add(utc(2026, 3, 6, 21), 120) == utc(2026, 3, 9, 14)


def test_the_calendar_is_read_from_the_tenant_file_or_refused() -> None:
    calendar = parse({"hours": {"sat": "10:00-14:00"}, "holidays": ["2026-12-26"]})
    assert dict(calendar.hours) == {5: (time(10), time(14))}
    assert calendar.add(utc(2026, 12, 26, 10), 60) == utc(2027, 1, 2, 11)  # holiday Saturday
    for raw, problem in (
        ({"timezone": "Nowhere/Land"}, "timezone"),
        ({"hours": {"mon": "17:00-09:00"}}, "hours.mon: must close after it opens"),
        ({"hours": {}}, "hours: at least one day"),
    ):
        with pytest.raises(ValueError, match=problem):
            parse(raw)
