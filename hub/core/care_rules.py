"""A tenant's customer-care rules (``[[care.rules]]`` of its file) and review settings
(``[reviews]``): which messages the care sweep sends (hub.core.care), how long after their
trigger, and how late a missed one may still go out.

Each rule has a ``name`` (unique in the tenant: the key its sends are recorded under, so
renaming a rule makes it fire again for every subject in its window) and a ``kind``, which
is also the event it emits. Its timing key depends on the kind:

- ``review_request``: ``days`` after the order was delivered (default 7);
- ``delay_apology``: ``hours`` after a delivery exception of kind delayed opened (default 0);
- ``satisfaction_survey``: ``hours`` after a ticket of ``ticket_kinds`` was resolved
  (default 24; kinds default to complaints);
- ``win_back``: ``months`` after the customer's last order (default 6);
- ``birthday_greeting`` / ``anniversary_greeting``: on the customer's birthday / the day they
  became a customer, each year (UTC days).

``window_days`` is how long after it fell due a subject still gets its message (a sweeper
that was down catches up; a rule switched on never writes to years of old customers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hub.core import events
from hub.core.ticket_rules import KINDS as TICKET_KINDS

KINDS = events.CARE_EVENTS
# Per kind: the timing key it takes and its default, and the default window in days.
TIMING: dict[str, tuple[str | None, int]] = {
    events.REVIEW_REQUEST: ("days", 7),
    events.DELAY_APOLOGY: ("hours", 0),
    events.SATISFACTION_SURVEY: ("hours", 24),
    events.WIN_BACK: ("months", 6),
    events.BIRTHDAY_GREETING: (None, 0),
    events.ANNIVERSARY_GREETING: (None, 0),
}
WINDOW_DAYS = {
    events.REVIEW_REQUEST: 14,
    events.DELAY_APOLOGY: 2,
    events.SATISFACTION_SURVEY: 7,
    events.WIN_BACK: 30,
    events.BIRTHDAY_GREETING: 1,
    events.ANNIVERSARY_GREETING: 1,
}
TIMING_KEYS = ("days", "hours", "months")
NAME_PATTERN = "^[a-z0-9][a-z0-9_-]{0,63}$"

CARE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rules": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "kind"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN},
                    "kind": {"enum": list(KINDS)},
                    "days": {"type": "integer", "minimum": 0, "maximum": 365},
                    "hours": {"type": "integer", "minimum": 0, "maximum": 8760},
                    "months": {"type": "integer", "minimum": 1, "maximum": 120},
                    "window_days": {"type": "integer", "minimum": 1, "maximum": 365},
                    "ticket_kinds": {
                        "type": "array",
                        "items": {"enum": list(TICKET_KINDS)},
                        "minItems": 1,
                        "uniqueItems": True,
                    },
                    "enabled": {"type": "boolean"},
                },
            },
        },
    },
}
REVIEWS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # A rating at or below this opens a complaint ticket; 0 never does.
        "ticket_below": {"type": "integer", "minimum": 0, "maximum": 5},
    },
}


@dataclass(frozen=True)
class CareRule:
    name: str
    kind: str
    # days / hours after the trigger (review, delay, survey); None for win_back and greetings
    delay: timedelta | None = None
    months: int = 0
    window: timedelta = timedelta(days=1)
    ticket_kinds: tuple[str, ...] = ("complaint",)
    enabled: bool = True


@dataclass(frozen=True)
class CareRules:
    rules: tuple[CareRule, ...] = ()
    review_ticket_below: int = 2

    def active(self) -> tuple[CareRule, ...]:
        return tuple(r for r in self.rules if r.enabled)


def care_rules_from(care: dict[str, Any] | None, reviews: dict[str, Any] | None) -> CareRules:
    """The rules from the (schema-checked) sections; ValueError ``"<key>: <problem>"`` for
    what the schema cannot say: a name used twice, a timing key another kind takes."""
    out = []
    for i, raw in enumerate((care or {}).get("rules", ())):
        where = f"care.rules[{i}]"
        kind = raw["kind"]
        if any(r.name == raw["name"] for r in out):
            raise ValueError(f"{where}.name: {raw['name']!r} names two rules")
        key, default = TIMING[kind]
        for other in TIMING_KEYS:
            if other in raw and other != key:
                takes = f"takes {key}" if key else "takes no timing key (it is due on the day)"
                raise ValueError(f"{where}.{other}: a {kind} rule {takes}")
        if "ticket_kinds" in raw and kind != events.SATISFACTION_SURVEY:
            raise ValueError(f"{where}.ticket_kinds: only a satisfaction_survey rule takes it")
        amount = raw.get(key, default) if key else 0
        out.append(
            CareRule(
                name=raw["name"],
                kind=kind,
                delay=timedelta(**{key: amount}) if key in ("days", "hours") else None,
                months=amount if key == "months" else 0,
                window=timedelta(days=raw.get("window_days", WINDOW_DAYS[kind])),
                ticket_kinds=tuple(raw.get("ticket_kinds", ("complaint",))),
                enabled=raw.get("enabled", True),
            )
        )
    return CareRules(tuple(out), (reviews or {}).get("ticket_below", 2))
