"""Which events a tenant's notifiers hear, and who each message goes to (``[notifications]``
in the tenant file).

A *route* sends some events to one notifier, for some recipients: fixed addresses (the
warehouse team's e-mail) or a *kind* the hub looks up per event ("customer": the order's
customer). A notifier whose destination is in its own settings (a webhook URL, the log)
takes no recipients; its ``[[notifiers]] events`` is a route with none. Routes are read once
at start-up and checked against the installed plugins (``check``), so a mistake stops the hub
naming the file and key instead of a message silently going nowhere.

A new kind of recipient (a ticket's agent, say) is one entry in RECIPIENT_KINDS: the events
that can name one, and how to find its address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import events
from hub.core.adapters import Recipient
from hub.core.models import Customer, Order, Ticket, User
from hub.core.models.tenancy import username_key

LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
LANGUAGE = {"type": "string", "pattern": LANGUAGE_PATTERN, "maxLength": 35}
KIND_PATTERN = re.compile(r"^[a-z][a-z_]*$")
EMAIL_PATTERN = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
PHONE_PATTERN = re.compile(r"^\+[1-9][0-9]{6,14}$")
# What a fixed address must look like for each kind of addressed notifier.
ADDRESS_SHAPES = {
    "email": (EMAIL_PATTERN, "an e-mail address (name@example.com)"),
    "phone": (PHONE_PATTERN, "a phone number in E.164 form (+8613800138000)"),
}
ADDRESS_LENGTH = 254

# Events that concern one order: their payload's "number" names it.
RETURN_EVENTS = frozenset(
    {
        events.RETURN_CREATED,
        events.RETURN_RECEIVED,
        events.RETURN_LABEL_ISSUED,
        events.RETURN_CANCELLED,
        events.RETURN_CLOSED,
        events.REFUND_CREATED,
        events.REFUND_SETTLED,
    }
)
ORDER_EVENTS = frozenset(
    {
        events.ORDER_CREATED,
        events.ORDER_STATUS_CHANGED,
        events.ORDER_UPDATED,
        events.SHIPMENT_STATUS_CHANGED,
        events.DELIVERY_EXCEPTION,
    }
)

_RECIPIENT = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": ADDRESS_LENGTH},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["address"],
            "properties": {
                "address": {"type": "string", "minLength": 1, "maxLength": ADDRESS_LENGTH},
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "language": LANGUAGE,
            },
        },
    ]
}
ROUTE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["events", "notifier"],
    "properties": {
        "events": {
            "type": "array",
            "items": {"enum": list(events.EVENT_NAMES)},
            "minItems": 1,
            "uniqueItems": True,
        },
        "notifier": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "to": {"type": "array", "items": _RECIPIENT, "minItems": 1, "maxItems": 50},
        # Payload field → the values that let the event through ({to = ["shipped"]}).
        "when": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z_]{0,39}$"},
            "additionalProperties": {
                "type": "array",
                "items": {"type": ["string", "integer", "boolean"]},
                "minItems": 1,
            },
        },
    },
}
NOTIFICATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "language": LANGUAGE,
        # Carrier plugin ("*": any other) → its tracking page, with {tracking_number}.
        "tracking_urls": {
            "type": "object",
            "propertyNames": {"pattern": "^([a-z0-9_-]{1,64}|\\*)$"},
            "additionalProperties": {
                "type": "string",
                "pattern": "^https://[^\\s]*\\{tracking_number\\}[^\\s]*$",
                "maxLength": 500,
            },
        },
        "routes": {"type": "array", "items": ROUTE_SCHEMA, "maxItems": 200},
    },
}


class RouteProblem(ValueError):
    """A problem in the routing config: the key it is at and what is wrong (never a value
    that could be a secret; addresses and event names are not)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class Fixed:
    """A recipient written in the route: an address, with a name and language if given."""

    address: str
    name: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Route:
    """Events to one notifier. ``events`` None: every event. ``to`` empty: the notifier's own
    destination. ``where`` is the config key it came from, for messages. ``implicit``: made
    from a notifier no route names and whose ``events`` were left out."""

    notifier: str
    events: frozenset[str] | None
    to: tuple[str | Fixed, ...] = ()
    when: Mapping[str, frozenset[str]] = field(default_factory=dict)
    where: str = ""
    implicit: bool = False

    def hears(self, event: str) -> bool:
        return self.events is None or event in self.events

    def matches(self, event: str, payload: Mapping[str, Any]) -> bool:
        return self.hears(event) and all(
            _text(payload.get(key)) in accepted for key, accepted in self.when.items()
        )


@dataclass(frozen=True)
class Notifications:
    """A tenant's ``[notifications]``: the language of recipients who have none, tracking
    links per carrier, and every route (the notifiers' own ``events`` included)."""

    language: str = "en"
    tracking_urls: Mapping[str, str] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()

    def routes_for(self, event: str, payload: Mapping[str, Any]) -> list[Route]:
        return [r for r in self.routes if r.matches(event, payload)]

    def hears(self, event: str) -> bool:
        return any(r.hears(event) for r in self.routes)

    def tracking_url(self, carrier: str | None, tracking_number: str | None) -> str | None:
        from urllib.parse import quote

        template = self.tracking_urls.get(carrier or "") or self.tracking_urls.get("*")
        if not template or not tracking_number:
            return None
        return template.replace("{tracking_number}", quote(tracking_number, safe=""))


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def from_config(
    raw: Mapping[str, Any] | None, notifiers: Sequence[Mapping[str, Any]]
) -> Notifications:
    """The routes of a tenant file (validated against the schemas): explicit ones first, then
    one per notifier for its own ``events``. Raises RouteProblem."""
    raw = raw or {}
    names = [n["name"] for n in notifiers]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise RouteProblem(f"notifiers[{i}].name", f"{name!r} names two notifiers")
    routes: list[Route] = []
    for i, entry in enumerate(raw.get("routes", [])):
        where = f"notifications.routes[{i}]"
        if entry["notifier"] not in names:
            raise RouteProblem(
                f"{where}.notifier",
                f"no notifier {entry['notifier']!r} in [[notifiers]]"
                f" (there: {', '.join(names) or 'none'})",
            )
        heard = frozenset(entry["events"])
        to = tuple(
            _recipient(x, heard, f"{where}.to[{j}]") for j, x in enumerate(entry.get("to", ()))
        )
        when = {k: frozenset(_text(v) for v in vs) for k, vs in entry.get("when", {}).items()}
        routes.append(Route(entry["notifier"], heard, to, when, where))
    routed = {r.notifier for r in routes}
    for i, notifier in enumerate(notifiers):
        own = notifier.get("events")
        if own:
            routes.append(Route(notifier["name"], frozenset(own), where=f"notifiers[{i}].events"))
        elif notifier["name"] not in routed:
            routes.append(Route(notifier["name"], None, where=f"notifiers[{i}]", implicit=True))
    return Notifications(
        language=raw.get("language", "en"),
        tracking_urls=dict(raw.get("tracking_urls", {})),
        routes=tuple(routes),
    )


def _recipient(raw: str | Mapping[str, Any], heard: frozenset[str], where: str) -> str | Fixed:
    if isinstance(raw, Mapping):
        return Fixed(raw["address"].strip(), raw.get("name"), raw.get("language"))
    if not KIND_PATTERN.match(raw):
        return Fixed(raw.strip())
    kind = RECIPIENT_KINDS.get(raw)
    if kind is None:
        raise RouteProblem(
            where,
            f"{raw!r} is neither an address nor a kind of recipient"
            f" ({', '.join(sorted(RECIPIENT_KINDS))})",
        )
    foreign = sorted(heard - kind.events)
    if foreign:
        raise RouteProblem(
            where, f"{', '.join(foreign)} names no {raw} (a {raw} is named by {kind.describe})"
        )
    return raw


def check(
    notifications: Notifications,
    notifiers: Sequence[Mapping[str, Any]],
    addressed: Mapping[str, str | None],
) -> None:
    """RouteProblem for a route that does not suit its notifier: recipients for one whose
    destination is in its settings, none (or an address of the wrong shape) for one that
    delivers to addresses. ``addressed``: notifier name → the kind of address it takes."""
    for route in notifications.routes:
        kind = addressed.get(route.notifier)
        plugin = next(n["plugin"] for n in notifiers if n["name"] == route.notifier)
        if kind is None and route.to:
            raise RouteProblem(
                f"{route.where}.to",
                f"notifier {route.notifier!r} ({plugin}) takes no recipients: where it delivers"
                " is in its settings",
            )
        if kind is not None and not route.to:
            problem = (
                "is named by no route"
                if route.implicit
                else "hears events only through [[notifications.routes]] naming who gets them"
            )
            raise RouteProblem(
                route.where,
                f"notifier {route.notifier!r} ({plugin}) sends to {kind} addresses and {problem}"
                " (to = [...])",
            )
        for j, to in enumerate(route.to):
            found = address_problem(to.address, kind) if isinstance(to, Fixed) and kind else None
            if found:
                raise RouteProblem(f"{route.where}.to[{j}]", f"{to.address!r} {found}")


def address_problem(address: str, addressed: str) -> str | None:
    """Why a fixed address does not suit a notifier delivering to ``addressed``."""
    pattern, shape = ADDRESS_SHAPES[addressed]
    return None if pattern.match(address) else f"is not {shape}"


# --- recipients the hub looks up ---------------------------------------------------------------

# Found: the recipients; or why there is none (recorded as a skipped message).
Found = list[Recipient] | str
Lookup = Callable[[Session, int, Mapping[str, Any], str], Found]


@dataclass(frozen=True)
class RecipientKind:
    """A kind of recipient: the events that name one, and how to find it for an event."""

    events: frozenset[str]
    lookup: Lookup
    describe: str


def _customer(session: Session, tenant_id: int, payload: Mapping[str, Any], address: str) -> Found:
    """The order's customer: its e-mail, or its phone (the consignee's when it has none). A
    care event names its customer itself (``customer_id``)."""
    if "customer_id" in payload:
        return _named_customer(session, tenant_id, payload, address)
    row = session.execute(
        select(Order.consignee_name, Order.consignee_phone, Customer)
        .outerjoin(Customer, Customer.id == Order.customer_id)
        .where(Order.tenant_id == tenant_id, Order.number == _order_number(payload))
    ).first()
    if row is None:
        return f"order {_order_number(payload)} is not there any more"
    consignee, consignee_phone, customer = row
    if address == "email":
        found = customer.email if customer else None
    else:
        found = (customer.phone if customer else None) or consignee_phone
    if not found:
        noun = "e-mail address" if address == "email" else "phone number"
        return f"the customer of order {_order_number(payload)} has no {noun}"
    name = (customer.name if customer else None) or consignee
    language = customer.language if customer else None
    return [Recipient(found, name, language or "")]


def _named_customer(
    session: Session, tenant_id: int, payload: Mapping[str, Any], address: str
) -> Found:
    customer = session.scalar(
        select(Customer).where(
            Customer.tenant_id == tenant_id, Customer.id == payload.get("customer_id")
        )
    )
    if customer is None:
        return f"customer {payload.get('customer_id')} is not there any more"
    found = customer.email if address == "email" else customer.phone
    if not found:
        noun = "e-mail address" if address == "email" else "phone number"
        return f"customer {customer.id} has no {noun}"
    return [Recipient(found, customer.name, customer.language or "")]


def _staff(payload_key: str) -> Lookup:
    """The user a ticket event names under ``payload_key`` (its agent, its supervisor)."""

    def lookup(session: Session, tenant_id: int, payload: Mapping[str, Any], address: str) -> Found:
        username = payload.get(payload_key)
        if not username:
            return f"ticket {payload.get('number')} has no {payload_key.replace('_', ' ')}"
        user = session.scalar(
            select(User).where(
                User.tenant_id == tenant_id, User.username_key == username_key(str(username))
            )
        )
        found = (user.email if address == "email" else user.phone) if user else None
        if not found:
            noun = "e-mail address" if address == "email" else "phone number"
            return f"user {username} has no {noun}"
        return [Recipient(found, user.full_name or user.username, "")]  # type: ignore[union-attr]

    return lookup


def _requester(session: Session, tenant_id: int, payload: Mapping[str, Any], address: str) -> Found:
    """The customer who opened the ticket."""
    customer = session.scalar(
        select(Customer)
        .join(Ticket, Ticket.customer_id == Customer.id)
        .where(Ticket.tenant_id == tenant_id, Ticket.number == str(payload.get("number")))
    )
    found = (customer.email if address == "email" else customer.phone) if customer else None
    if not found:
        noun = "e-mail address" if address == "email" else "phone number"
        return f"the customer of ticket {payload.get('number')} has no {noun}"
    return [Recipient(found, customer.name, customer.language or "")]  # type: ignore[union-attr]


def _order_number(payload: Mapping[str, Any]) -> str:
    """Events about an order carry its number as ``number``; those about a return or a
    refund of it, as ``order``."""
    return str(payload.get("order") or payload.get("number"))


RECIPIENT_KINDS: dict[str, RecipientKind] = {
    "customer": RecipientKind(
        ORDER_EVENTS | RETURN_EVENTS | frozenset((*events.CARE_EVENTS, events.PORTAL_LINK)),
        _customer,
        "events about an order, its returns and refunds, customer care messages and portal"
        " sign-in links",
    ),
    "agent": RecipientKind(
        frozenset({events.TICKET_ASSIGNED, events.TICKET_SLA_WARNING, events.TICKET_SLA_BREACHED}),
        _staff("assignee"),
        "a ticket's assignment and SLA alerts",
    ),
    "supervisor": RecipientKind(
        frozenset({events.TICKET_SLA_BREACHED}), _staff("escalated_to"), "SLA breaches"
    ),
    "requester": RecipientKind(
        frozenset({events.TICKET_CREATED, events.TICKET_STATUS_CHANGED, events.TICKET_REPLIED}),
        _requester,
        "a ticket's opening, status changes and the agents' answers",
    ),
}


def resolve(
    session: Session,
    tenant_id: int,
    route: Route,
    payload: Mapping[str, Any],
    addressed: str,
    default_language: str,
) -> list[Recipient | tuple[str, str]]:
    """Each recipient of a route for one event: a Recipient, or (kind, why none) for a kind
    that found nobody. Recipients without a language get the tenant's."""
    out: list[Recipient | tuple[str, str]] = []
    for to in route.to:
        if isinstance(to, Fixed):
            out.append(Recipient(to.address, to.name, to.language or default_language))
            continue
        found = RECIPIENT_KINDS[to].lookup(session, tenant_id, payload, addressed)
        if isinstance(found, str):
            out.append((to, found))
            continue
        out.extend(Recipient(r.address, r.name, r.language or default_language) for r in found)
    return out
