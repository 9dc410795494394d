"""A tenant's order rules: review, classification, priority, approval and warehouse routing.

Everything here is a pure decision over facts the order service has already read, so the rules
cost no database round trip on the intake hot path and each one is tested on its own. The
order service applies the decisions (``hub.core.orders``) and writes each one, with its
reason, in the order's history.

Rules live in the tenant's config file under ``[rules]`` (see ``RULES_SCHEMA``); a tenant
without them gets ``Rules()``: only an order with no lines is held, nothing needs approval,
and stock comes from the warehouses in their priority order (``orderhub init --demo`` writes
a tenant file with every rule switched on, as an example).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hub.core.money import format_amount

# Who may approve what: a level needing an operator may also be approved by an admin.
APPROVER_RANK = {"operator": 1, "admin": 2}

_AMOUNT = {"type": "string", "pattern": r"^[0-9]{1,14}(\.[0-9]{1,4})?$"}
_POINTS = {"type": "integer", "minimum": -1000, "maximum": 1000}
_PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}

RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # Four eyes on approvals: the person who created an order (or changed its lines or
        # charges) may not approve it, and one person gives at most one level of an order.
        "four_eyes": {"type": "boolean"},
        "review": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "require_address": {"type": "boolean"},
                "require_contact": {"type": "boolean"},
            },
        },
        "classification": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "high_value": _AMOUNT,
                "home_country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "pre_sale_skus": _PATTERNS,
            },
        },
        "priority": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "vip": _POINTS,
                "express": _POINTS,
                "express_methods": _PATTERNS,
                "channels": {"type": "object", "additionalProperties": _POINTS},
                "amount_step": _AMOUNT,
                "amount_points": _POINTS,
                "amount_max_points": {"type": "integer", "minimum": 0, "maximum": 1000},
                "age_points_per_hour": {"type": "number", "minimum": 0, "maximum": 1000},
            },
        },
        "approval": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["above", "role"],
                "properties": {"above": _AMOUNT, "role": {"enum": list(APPROVER_RANK)}},
            },
        },
        "routing": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "order": {
                    "type": "array",
                    "items": {"enum": ["region", "priority", "stock"]},
                    "uniqueItems": True,
                    "minItems": 1,
                },
            },
        },
    },
}

DEFAULT_EXPRESS = ("*express*", "*next day*", "*next-day*", "*overnight*", "*priority*")


@dataclass(frozen=True)
class ApprovalLevel:
    above: Decimal
    role: str


@dataclass(frozen=True)
class Rules:
    require_address: bool = False
    require_contact: bool = False
    high_value: Decimal | None = None
    home_country: str | None = None
    pre_sale_skus: tuple[str, ...] = ()
    vip_points: int = 0
    express_points: int = 0
    express_methods: tuple[str, ...] = DEFAULT_EXPRESS
    channel_points: Mapping[str, int] = field(default_factory=dict)
    amount_step: Decimal | None = None
    amount_points: int = 1
    amount_max_points: int = 100
    age_points_per_hour: float = 0.0
    approval: tuple[ApprovalLevel, ...] = ()
    four_eyes: bool = True
    routing: tuple[str, ...] = ("priority",)

    @property
    def routes_by_plan(self) -> bool:
        """Priority-only routing is the inventory's own fast path; anything else is planned."""
        return self.routing != ("priority",)


def rules_from(raw: Mapping[str, Any] | None) -> Rules:
    """The ``[rules]`` table of a tenant file (already validated against RULES_SCHEMA)."""
    raw = raw or {}
    review = raw.get("review", {})
    cls = raw.get("classification", {})
    prio = raw.get("priority", {})
    return Rules(
        require_address=review.get("require_address", False),
        require_contact=review.get("require_contact", False),
        high_value=_decimal(cls.get("high_value")),
        home_country=cls.get("home_country"),
        pre_sale_skus=tuple(cls.get("pre_sale_skus", ())),
        vip_points=prio.get("vip", 0),
        express_points=prio.get("express", 0),
        express_methods=tuple(prio.get("express_methods", DEFAULT_EXPRESS)),
        channel_points=dict(prio.get("channels", {})),
        amount_step=_decimal(prio.get("amount_step")),
        amount_points=prio.get("amount_points", 1),
        amount_max_points=prio.get("amount_max_points", 100),
        age_points_per_hour=float(prio.get("age_points_per_hour", 0)),
        approval=tuple(
            sorted(
                (ApprovalLevel(Decimal(a["above"]), a["role"]) for a in raw.get("approval", ())),
                key=lambda level: level.above,
            )
        ),
        four_eyes=raw.get("four_eyes", True),
        routing=tuple(raw.get("routing", {}).get("order", ("priority",))),
    )


def _decimal(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


@dataclass(frozen=True)
class Facts:
    """What the rules look at, read from a draft or from a stored order alike."""

    total: Decimal
    line_count: int
    skus: Sequence[str]
    channel: str
    ship_line1: str | None
    ship_city: str | None
    ship_country: str | None
    email: str | None
    phone: str | None
    vip: bool
    shipping_method: str | None


# --- review ------------------------------------------------------------------------------


def review(facts: Facts, rules: Rules) -> str | None:
    """Why the order cannot be worked as it stands (held until fixed), or None."""
    missing = []
    if facts.line_count == 0:
        missing.append("no lines")
    if rules.require_address and not (facts.ship_line1 and facts.ship_city and facts.ship_country):
        missing.append("no complete shipping address (line1, city, country)")
    if rules.require_contact and not (facts.email or facts.phone):
        missing.append("no contact (e-mail or phone)")
    return "incomplete: " + "; ".join(missing) if missing else None


# --- classification ----------------------------------------------------------------------


def classify(facts: Facts, rules: Rules, *, backorder: bool) -> list[str]:
    """Every class that applies, most operationally urgent first; the first is the order's
    type. "normal" only when nothing else applies."""
    classes = []
    if backorder:
        classes.append("backorder")
    if any(_matches(sku, rules.pre_sale_skus) for sku in facts.skus):
        classes.append("pre_sale")
    if rules.home_country and facts.ship_country and facts.ship_country != rules.home_country:
        classes.append("cross_border")
    if rules.high_value is not None and facts.total >= rules.high_value:
        classes.append("high_value")
    return classes or ["normal"]


def _matches(value: str | None, patterns: Sequence[str]) -> bool:
    text = (value or "").lower()
    return any(fnmatch.fnmatchcase(text, p.lower()) for p in patterns)


# --- priority ----------------------------------------------------------------------------


def priority(facts: Facts, rules: Rules, base: int = 0) -> tuple[int, list[str]]:
    """The score that orders the work queues (higher first), with what made it up."""
    score, parts = base, [f"base {base}"] if base else []
    if facts.vip and rules.vip_points:
        score += rules.vip_points
        parts.append(f"VIP customer +{rules.vip_points}")
    if rules.express_points and _matches(facts.shipping_method, rules.express_methods):
        score += rules.express_points
        parts.append(f"express shipping ({facts.shipping_method}) +{rules.express_points}")
    channel = rules.channel_points.get(facts.channel, 0)
    if channel:
        score += channel
        parts.append(f"channel {facts.channel} {channel:+d}")
    if rules.amount_step and rules.amount_step > 0:
        steps = int(facts.total // rules.amount_step)
        points = min(steps * rules.amount_points, rules.amount_max_points)
        if points:
            score += points
            parts.append(f"amount {facts.total} {points:+d}")
    return score, parts


def queue_at(created_at: datetime, score: int, rules: Rules) -> datetime:
    """The work queue's sort key: an order's place is its age plus its score, expressed as a
    time (each point counts as 1/age_points_per_hour hours of waiting), so "oldest first" on
    this column is "highest score, counting age, first" — and it never has to be recomputed
    as orders wait. Without an age weight the score decides and age only breaks ties."""
    if rules.age_points_per_hour > 0:
        return created_at - timedelta(hours=score / rules.age_points_per_hour)
    return created_at - timedelta(days=365 * score)


# --- approval ----------------------------------------------------------------------------


def approvals_needed(total: Decimal, rules: Rules) -> list[ApprovalLevel]:
    """The approval levels an order of this total must pass, in order. ``total`` is the
    amount the requirement is decided on: the order's own total, or more when it was split
    from (or merged with part of) a larger whole, so that cutting an order into pieces never
    lowers what it needs."""
    return [level for level in rules.approval if total > level.above]


def may_approve(role: str, level_role: str) -> bool:
    return APPROVER_RANK.get(role, 0) >= APPROVER_RANK[level_role]


def same_person(a: str | None, b: str | None) -> bool:
    """Usernames name one person whatever their case."""
    return a is not None and b is not None and a.casefold() == b.casefold()


def four_eyes_refusal(
    actor: str, *, authors: Sequence[str], approvers: Sequence[str], rules: Rules
) -> str | None:
    """Why ``actor`` may not give the next approval level under the four-eyes rule, or None.
    ``authors``: who created the order or changed its lines or charges; ``approvers``: who
    gave the levels already given."""
    if not rules.four_eyes:
        return None
    if any(same_person(actor, a) for a in authors):
        return "author"
    if any(same_person(actor, a) for a in approvers):
        return "approver"
    return None


# --- routing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A warehouse as routing sees it."""

    id: int
    priority: int
    country: str | None
    region: str | None


def rank_warehouses(
    sites: Sequence[Site],
    free: Mapping[int, Mapping[int, int]],
    needs: Mapping[int, int],
    rules: Rules,
    *,
    ship_country: str | None,
    ship_region: str | None,
) -> list[int]:
    """Warehouse ids, best first, by the tenant's routing order: "region" (same country and
    region as the consignee, then same country), "priority" (the warehouse's own number, lower
    first), "stock" (most of what this order needs free). ``free`` is warehouse → product →
    units free."""

    def region_rank(s: Site) -> int:
        if not ship_country or (s.country or "").upper() != ship_country.upper():
            return 2
        same_region = ship_region and (s.region or "").lower() == ship_region.lower()
        return 0 if same_region else 1

    def stock_rank(s: Site) -> int:
        have = free.get(s.id, {})
        return -sum(min(have.get(p, 0), q) for p, q in needs.items())

    keys = {"region": region_rank, "priority": lambda s: s.priority, "stock": stock_rank}
    ordered = sorted(sites, key=lambda s: (*(keys[k](s) for k in rules.routing), s.id))
    return [s.id for s in ordered]


def plan(
    ranked: Sequence[int], free: Mapping[int, Mapping[int, int]], needs: Mapping[int, int]
) -> dict[int, list[tuple[int, int]]] | None:
    """Product → [(warehouse, quantity)]: the best single warehouse that can fill the whole
    order; failing that, each product from the best warehouses that have it (a split). None
    when the warehouses together cannot fill it."""
    for wh in ranked:
        have = free.get(wh, {})
        if all(have.get(p, 0) >= q for p, q in needs.items()):
            return {p: [(wh, q)] for p, q in needs.items()}
    out: dict[int, list[tuple[int, int]]] = {}
    for product, quantity in needs.items():
        left, parts = quantity, []
        for wh in ranked:
            take = min(free.get(wh, {}).get(product, 0), left)
            if take > 0:
                parts.append((wh, take))
                left -= take
            if left == 0:
                break
        if left:
            return None
        out[product] = parts
    return out


# --- the outcome -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The status the rules give an open order, the history action, and why."""

    status: str
    action: str
    reason: str


def outcome(
    *,
    channel_hold: str | None,
    incomplete: str | None,
    short: str | None,
    approvals_left: Sequence[ApprovalLevel],
    levels: int,
    total: Decimal,
    decided_on: Decimal | None = None,
) -> Outcome:
    """First reason not to work the order wins: the channel's hold, an incomplete order, a
    stock shortage (backorder), an approval still missing; otherwise it is confirmed.
    ``decided_on``: the amount approval was decided on when it is more than ``total`` (the
    whole an order was split from)."""
    if channel_hold:
        return Outcome("held", "channel_hold", channel_hold)
    if incomplete:
        return Outcome("held", "review", incomplete)
    if short:
        return Outcome("held", "backorder", short)
    if approvals_left:
        level = approvals_left[0]
        done = levels - len(approvals_left)
        amount = (
            f"total {format_amount(total)} is part of {format_amount(decided_on)}, which"
            if decided_on is not None and decided_on > total
            else f"total {format_amount(total)}"
        )
        return Outcome(
            "awaiting_approval",
            "approval_required",
            f"{amount} is above {level.above}: needs approval by an {level.role}"
            f" (level {done + 1} of {levels})",
        )
    return Outcome("confirmed", "confirmed" if levels else "reserved", "stock reserved")
