"""A tenant's working calendar: SLA deadlines count only the time its service desk works.

Deadlines are computed in UTC from windows built in the tenant's own zone, one day at a time,
so a daylight-saving change shortens or lengthens that day's window as the clock on the office
wall does. Arithmetic on aware datetimes of one zone would ignore the offset change; every
window is therefore turned into UTC before anything is added or subtracted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Far enough for any target (a year of working days); a calendar with no working day at all is
# refused when the configuration is read, so this only bounds a loop.
_HORIZON_DAYS = 3 * 366


@dataclass(frozen=True)
class WorkingHours:
    timezone: str = "UTC"
    # weekday (0 = Monday) → (opening, closing); a day that is not here is closed
    hours: Mapping[int, tuple[time, time]] = field(
        default_factory=lambda: {d: (time(9), time(17)) for d in range(5)}
    )
    holidays: frozenset[date] = frozenset()

    def windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working windows (UTC) from the local day of ``start`` on."""
        zone = ZoneInfo(self.timezone)
        day = start.astimezone(zone).date()
        for _ in range(_HORIZON_DAYS):
            opening = self.hours.get(day.weekday())
            if opening is not None and day not in self.holidays:
                yield (
                    datetime.combine(day, opening[0], zone).astimezone(UTC),
                    datetime.combine(day, opening[1], zone).astimezone(UTC),
                )
            day += timedelta(days=1)

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant when ``minutes`` of working time have passed since ``start``."""
        left = timedelta(minutes=minutes)
        for opens, closes in self.windows(start):
            begin = max(opens, start)
            if begin >= closes:
                continue
            if begin + left <= closes:
                return begin + left
            left -= closes - begin
        raise ValueError("no working time within three years")

    def between(self, start: datetime, end: datetime) -> float:
        """Minutes of working time from ``start`` to ``end`` (0 when end is not later)."""
        total = timedelta()
        for opens, closes in self.windows(start):
            if opens >= end:
                break
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += finish - begin
        return total.total_seconds() / 60


def parse(raw: Mapping[str, object]) -> WorkingHours:
    """``[calendar]`` of a tenant file: ``timezone``, ``hours`` (``mon = "09:00-17:30"`` …, a
    day left out is closed) and ``holidays`` (ISO dates). Raises ValueError naming the key."""
    zone = str(raw.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"timezone: {zone!r} is not an IANA time zone") from None
    hours: dict[int, tuple[time, time]] = {}
    given = raw.get("hours")
    if given is None:
        hours = dict(WorkingHours().hours)
    else:
        assert isinstance(given, Mapping)
        for name, span in given.items():
            opening, _, closing = str(span).partition("-")
            try:
                window = (time.fromisoformat(opening), time.fromisoformat(closing))
            except ValueError:
                raise ValueError(f"hours.{name}: must be HH:MM-HH:MM") from None
            if window[0] >= window[1]:
                raise ValueError(f"hours.{name}: must close after it opens")
            hours[DAYS.index(name)] = window
        if not hours:
            raise ValueError("hours: at least one day must have working hours")
    holidays = frozenset(date.fromisoformat(str(d)) for d in raw.get("holidays", []))  # type: ignore[attr-defined]
    return WorkingHours(zone, hours, holidays)
