"""A tenant's service-desk rules (``[tickets]`` and ``[calendar]`` of its file): how tickets
are assigned, the SLA targets per category and priority, the escalation supervisor, and the
working hours the targets are counted in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.core import working_hours
from hub.core.working_hours import DAYS, WorkingHours

KINDS = ("return", "exchange", "refund", "repair", "complaint", "question")
PRIORITIES = ("low", "normal", "high", "urgent")
STRATEGIES = ("round_robin", "least_loaded", "skills", "manual")
# Working minutes to the first public reply and to resolution, when the tenant sets none.
DEFAULT_TARGETS = {
    "urgent": (60, 480),
    "high": (240, 1440),
    "normal": (480, 2880),
    "low": (1440, 5760),
}

_MINUTES = {"type": "integer", "minimum": 1, "maximum": 525_600}
TICKETS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "assignment": {"enum": list(STRATEGIES)},
        "reopen_days": {"type": "integer", "minimum": 0, "maximum": 365},
        "supervisor": {"type": "string", "minLength": 1, "maxLength": 64},
        "warn_minutes": {"type": "integer", "minimum": 0, "maximum": 10_080},
        "categories": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "uniqueItems": True,
        },
        # Tickets from e-mail (hub.core.email_intake): the mail provider's webhook signing key
        # (a secret: write it as {"$env" = "NAME"}), what a new e-mail opens, how old a
        # signed post may be.
        "email": {
            "type": "object",
            "additionalProperties": False,
            "required": ["signing_key"],
            "properties": {
                "signing_key": {
                    "anyOf": [
                        {"type": "string", "minLength": 16},
                        {
                            "type": "object",
                            "properties": {"$env": {"type": "string"}},
                            "required": ["$env"],
                            "additionalProperties": False,
                        },
                    ]
                },
                "kind": {"enum": list(KINDS)},
                "max_age_seconds": {"type": "integer", "minimum": 30, "maximum": 86_400},
            },
        },
        "sla": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["first_reply_minutes", "resolution_minutes"],
                "properties": {
                    "category": {"type": "string", "minLength": 1, "maxLength": 64},
                    "priority": {"enum": list(PRIORITIES)},
                    "first_reply_minutes": _MINUTES,
                    "resolution_minutes": _MINUTES,
                },
            },
        },
    },
}
CALENDAR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
        "hours": {
            "type": "object",
            "propertyNames": {"enum": list(DAYS)},
            "additionalProperties": {
                "type": "string",
                "pattern": "^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$",
            },
        },
        "holidays": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        },
    },
}


@dataclass(frozen=True)
class Target:
    first_reply_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class EmailIntake:
    """``[tickets.email]``: how the tenant's support mailbox reaches the hub."""

    signing_key: str = field(repr=False)  # never in a log line or an error
    kind: str = "question"
    max_age_seconds: int = 900


@dataclass(frozen=True)
class TicketRules:
    assignment: str = "least_loaded"
    reopen_days: int = 7
    supervisor: str | None = None
    warn_minutes: int = 60
    categories: tuple[str, ...] = ()
    # First match wins: an entry naming a category and a priority before one naming either.
    sla: tuple[dict[str, Any], ...] = ()
    calendar: WorkingHours = field(default_factory=WorkingHours)
    email: EmailIntake | None = None

    def target(self, category: str | None, priority: str) -> Target:
        for entry in self.sla:
            if (
                entry.get("category", category) == category
                and entry.get("priority", priority) == priority
            ):
                return Target(entry["first_reply_minutes"], entry["resolution_minutes"])
        return Target(*DEFAULT_TARGETS[priority])


def ticket_rules_from(
    tickets: dict[str, Any] | None, calendar: dict[str, Any] | None
) -> TicketRules:
    """The rules from the (schema-checked) sections; ValueError names a key whose value the
    schema cannot judge (an unknown time zone, hours that close before they open)."""
    tickets = tickets or {}
    return TicketRules(
        assignment=tickets.get("assignment", "least_loaded"),
        reopen_days=tickets.get("reopen_days", 7),
        supervisor=tickets.get("supervisor"),
        warn_minutes=tickets.get("warn_minutes", 60),
        categories=tuple(tickets.get("categories", ())),
        sla=tuple(tickets.get("sla", ())),
        calendar=working_hours.parse(calendar or {}),
        email=EmailIntake(**tickets["email"]) if "email" in tickets else None,
    )
