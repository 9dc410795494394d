"""The rules' decisions one by one, on their boundaries, without a database.

tests/test_rules.py shows each rule working through the API; this file pins each decision
exactly (the status, history action and reason an order gets, which warehouse gives how many
units, which score) so that a rule changing by one unit or one comparison fails a test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hub.core import rules
from hub.core.rules import ApprovalLevel, Facts, Outcome, Rules, Site


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = dict(
        total=Decimal("100.00"), line_count=1, skus=["MUG-1"], channel="shop",
        ship_line1="1 Main St", ship_city="Springfield", ship_country="US",
        email="ana@example.com", phone=None, vip=False, shipping_method="Standard",
    )
    return Facts(**(base | changes))


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}])
def test_a_tenant_without_rules_gets_exactly_the_documented_defaults(raw: Any):
    assert rules.rules_from(raw) == Rules()
    assert Rules() == Rules(
        require_address=False, require_contact=False, high_value=None, home_country=None,
        pre_sale_skus=(), vip_points=0, express_points=0, express_methods=rules.DEFAULT_EXPRESS,
        channel_points={}, amount_step=None, amount_points=1, amount_max_points=100,
        age_points_per_hour=0.0, approval=(), four_eyes=True, routing=("priority",),
    )


def test_every_setting_of_the_rules_table_reaches_the_rules():
    raw = {
        "four_eyes": False,
        "review": {"require_address": True, "require_contact": True},
        "classification": {"high_value": "900", "home_country": "DE", "pre_sale_skus": ["PRE-*"]},
        "priority": {
            "vip": 7, "express": 5, "express_methods": ["*rush*"], "channels": {"amazon": -3},
            "amount_step": "250.50", "amount_points": 2, "amount_max_points": 9,
            "age_points_per_hour": 1.5,
        },
        "approval": [{"above": "50000", "role": "admin"}, {"above": "5000", "role": "operator"}],
        "routing": {"order": ["stock", "region"]},
    }
    assert rules.rules_from(raw) == Rules(
        require_address=True, require_contact=True, high_value=Decimal("900"),
        home_country="DE", pre_sale_skus=("PRE-*",), vip_points=7, express_points=5,
        express_methods=("*rush*",), channel_points={"amazon": -3},
        amount_step=Decimal("250.50"), amount_points=2, amount_max_points=9,
        age_points_per_hour=1.5,
        approval=(ApprovalLevel(Decimal(5000), "operator"), ApprovalLevel(Decimal(50000), "admin")),
        four_eyes=False, routing=("stock", "region"),
    )


# --- review ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["ship_line1", "ship_city", "ship_country"])
def test_any_one_missing_address_field_makes_the_address_incomplete(missing: str):
    strict = Rules(require_address=True)
    assert rules.review(facts(**{missing: None}), strict) == (
        "incomplete: no complete shipping address (line1, city, country)"
    )
    assert rules.review(facts(**{missing: None}), Rules()) is None


@pytest.mark.parametrize(
    ("email", "phone", "held"),
    [("a@example.com", None, False), (None, "+4930123", False),
     ("a@example.com", "+4930123", False), (None, None, True)],
)
def test_either_an_email_or_a_phone_is_contact_enough(email: str | None, phone: str | None,
                                                      held: bool):
    reason = rules.review(facts(email=email, phone=phone), Rules(require_contact=True))
    assert reason == ("incomplete: no contact (e-mail or phone)" if held else None)


def test_every_missing_thing_is_named_in_one_reason():
    everything = Rules(require_address=True, require_contact=True)
    empty = facts(line_count=0, ship_city=None, email=None)
    assert rules.review(empty, everything) == (
        "incomplete: no lines; no complete shipping address (line1, city, country);"
        " no contact (e-mail or phone)"
    )


# --- classification and priority --------------------------------------------------------


@pytest.mark.parametrize(("total", "high"), [("899.99", False), ("900.00", True), ("900.01", True)])
def test_high_value_starts_at_the_threshold_itself(total: str, high: bool):
    classes = rules.classify(facts(total=Decimal(total)), Rules(high_value=Decimal("900")),
                             backorder=False)
    assert classes == (["high_value"] if high else ["normal"])


def test_no_rule_and_no_base_scores_nothing():
    assert rules.priority(facts(vip=True, shipping_method="Express"), Rules()) == (0, [])
    assert rules.priority(facts(), Rules(), base=3) == (3, ["base 3"])


def test_an_order_without_a_shipping_method_is_never_express():
    catch_all = Rules(express_points=5, express_methods=("?*",))
    assert rules.priority(facts(shipping_method=None), catch_all) == (0, [])
    assert rules.priority(facts(shipping_method="Ground"), catch_all) == (
        5, ["express shipping (Ground) +5"])


@pytest.mark.parametrize(
    ("total", "points"), [("0.99", 0), ("1.00", 1), ("7.99", 7), ("12.00", 10)]
)
def test_amount_points_per_whole_step_capped(total: str, points: int):
    stepped = Rules(amount_step=Decimal("1"), amount_points=1, amount_max_points=10)
    score, parts = rules.priority(facts(total=Decimal(total)), stepped)
    assert score == points
    assert parts == ([f"amount {total} +{points}"] if points else [])


def test_a_channel_without_points_adds_nothing_and_one_with_points_says_so():
    weighted = Rules(channel_points={"amazon": -4})
    assert rules.priority(facts(channel="shop"), weighted) == (0, [])
    assert rules.priority(facts(channel="amazon"), weighted) == (-4, ["channel amazon -4"])


def test_a_fractional_age_weight_still_counts_age():
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    half = Rules(age_points_per_hour=0.5)
    # 0.5 points an hour: 1 point = 2 hours of waiting.
    assert rules.queue_at(at, 1, half) == at - timedelta(hours=2)


def test_without_an_age_weight_a_point_outweighs_a_year_of_waiting():
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert rules.queue_at(at, 2, Rules()) == at - timedelta(days=730)
    # An order a year and an hour older with one point less goes first: a point is one year.
    older = at - timedelta(days=365, hours=1)
    assert rules.queue_at(older, 0, Rules()) < rules.queue_at(at, 1, Rules())


# --- approval ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "level_role", "allowed"),
    [("operator", "operator", True), ("admin", "operator", True), ("admin", "admin", True),
     ("operator", "admin", False), ("service", "operator", False), ("analyst", "operator", False),
     ("viewer", "admin", False)],
)
def test_who_may_give_which_approval_level(role: str, level_role: str, allowed: bool):
    assert rules.may_approve(role, level_role) is allowed


# --- routing -----------------------------------------------------------------------------


def test_a_warehouse_without_a_region_never_matches_the_consignees_region():
    sites = [Site(1, priority=1, country="US", region=None),
             Site(2, priority=2, country="US", region="XXXX")]
    ranked = rules.rank_warehouses(sites, {}, {}, Rules(routing=("region", "priority")),
                                   ship_country="US", ship_region="xxxx")
    assert ranked == [2, 1]


def test_a_warehouse_without_a_country_never_matches_the_consignees_country():
    sites = [Site(1, priority=1, country=None, region=None),
             Site(2, priority=2, country="XXXX", region=None)]
    ranked = rules.rank_warehouses(sites, {}, {}, Rules(routing=("region", "priority")),
                                   ship_country="xxxx", ship_region=None)
    assert ranked == [2, 1]


def test_a_product_a_warehouse_does_not_list_counts_as_no_stock():
    # Warehouse 2 lacks product 8 altogether; warehouse 1 lists it with nothing free: a tie,
    # which the lower id breaks.
    sites = [Site(2, priority=1, country=None, region=None),
             Site(1, priority=1, country=None, region=None)]
    free = {2: {7: 1}, 1: {7: 1, 8: 0}}
    ranked = rules.rank_warehouses(sites, free, {7: 1, 8: 1}, Rules(routing=("stock",)),
                                   ship_country=None, ship_region=None)
    assert ranked == [1, 2]


def test_a_warehouse_with_exactly_enough_fills_the_whole_order():
    assert rules.plan([1, 2], {1: {7: 3, 8: 1}, 2: {7: 9, 8: 9}}, {7: 3, 8: 1}) == {
        7: [(1, 3)], 8: [(1, 1)]}


def test_a_warehouse_missing_one_product_cannot_fill_the_order_alone():
    assert rules.plan([1, 2], {1: {7: 5}, 2: {7: 5, 8: 5}}, {7: 1, 8: 1}) == {
        7: [(2, 1)], 8: [(2, 1)]}


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        # best first, skipping an empty warehouse, stopping once filled
        ({1: {7: 3}, 2: {7: 0}, 3: {7: 4}}, [(1, 3), (3, 2)]),
        # a single unit counts
        ({1: {7: 1}, 2: {}, 3: {7: 4}}, [(1, 1), (3, 4)]),
        # one unit short after the first warehouse
        ({1: {7: 4}, 2: {}, 3: {7: 4}}, [(1, 4), (3, 1)]),
    ],
)
def test_a_split_takes_what_each_warehouse_has_in_rank_order(free: dict, expected: list):
    # Only warehouse 4, ranked last, has product 9, and it cannot fill product 7 alone: every
    # plan is a split.
    needs = {7: 5, 9: 1}
    free = free | {4: {7: 4, 9: 1}}
    assert rules.plan([1, 2, 3, 4], free, needs) == {7: expected, 9: [(4, 1)]}


def test_no_plan_when_the_warehouses_together_fall_short():
    assert rules.plan([1, 2], {1: {7: 2}, 2: {7: 2}}, {7: 5}) is None


# --- the outcome -------------------------------------------------------------------------

FIVE_K = ApprovalLevel(Decimal(5000), "operator")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (dict(channel_hold="fraud check"), Outcome("held", "channel_hold", "fraud check")),
        (dict(incomplete="incomplete: no lines"),
         Outcome("held", "review", "incomplete: no lines")),
        (dict(short="short: MUG-1"), Outcome("held", "backorder", "short: MUG-1")),
        (dict(approvals_left=[FIVE_K], levels=1),
         Outcome("awaiting_approval", "approval_required",
                 "total 6000.00 is above 5000: needs approval by an operator (level 1 of 1)")),
        (dict(levels=1), Outcome("confirmed", "confirmed", "stock reserved")),
        (dict(), Outcome("confirmed", "reserved", "stock reserved")),
    ],
)
def test_each_outcome_exactly(given: dict, expected: Outcome):
    args: dict[str, Any] = dict(channel_hold=None, incomplete=None, short=None, approvals_left=[],
                                levels=0, total=Decimal("6000.00"))
    assert rules.outcome(**(args | given)) == expected


def test_the_first_reason_not_to_work_an_order_wins():
    everything = dict(channel_hold="hold", incomplete="incomplete", short="short",
                      approvals_left=[FIVE_K], levels=1, total=Decimal(6000))
    assert rules.outcome(**everything).action == "channel_hold"
    assert rules.outcome(**(everything | {"channel_hold": None})).action == "review"
    assert rules.outcome(**(everything | {"channel_hold": None, "incomplete": None})).action == (
        "backorder")
