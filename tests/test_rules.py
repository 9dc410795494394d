"""A tenant's order rules: review, classification, priority, approval levels and warehouse
routing — each decision visible on the order and in its history with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api
from sqlalchemy import select, update

from hub.core import orders, rules
from hub.core.models import Customer, Product, StockLevel, Tenant, Warehouse
from hub.core.normalised import OrderDraft
from hub.settings import ConfigError, load_tenants

RULES = """
[rules.review]
require_address = true
require_contact = true

[rules.classification]
high_value = "1000"
home_country = "US"
pre_sale_skus = ["SKU-C"]

[rules.priority]
vip = 50
express = 30
channels = { storefront = 7 }
amount_step = "100"
amount_points = 1
amount_max_points = 20
age_points_per_hour = 2

[[rules.approval]]
above = "50000"
role = "admin"

[[rules.approval]]
above = "5000"
role = "operator"

[rules.routing]
order = ["region", "stock", "priority"]
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(RULES)
    return path


def order(**changes: Any) -> dict[str, Any]:
    return {**ORDER, **changes}


def priced(unit_price: str, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"sku": "SKU-A", "quantity": quantity, "unit_price": unit_price}]


def history(api: Api, number: str) -> list[tuple[str, str | None, str | None]]:
    items = api.get(f"/orders/{number}/history")[1]["items"]
    return [(h["action"], h["to"], h["reason"]) for h in items]


def reasons(api: Api, number: str, action: str) -> list[str]:
    return [r for a, _, r in history(api, number) if a == action]


def reserved(runtime: Any, sku: str) -> dict[str, int]:
    """Warehouse code → units of one acme SKU reserved there."""
    with runtime.transaction() as session:
        rows = session.execute(
            select(Warehouse.code, StockLevel.reserved)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .join(Product, Product.id == StockLevel.product_id)
            .join(Tenant, Tenant.id == Product.tenant_id)
            .where(Tenant.slug == "acme", Product.sku == sku)
        ).all()
        return {code: units for code, units in rows if units}


# --- review ------------------------------------------------------------------------------


def test_an_order_without_an_address_is_held_until_the_address_is_given(api: Api):
    status, created = api.post("/orders", order(consignee={"name": "No Address"}))

    assert status == 201
    assert created["status"] == "held"
    assert created["hold_reason"].startswith("incomplete: no complete shipping address")
    assert reasons(api, created["number"], "review") == [created["hold_reason"]]

    status, fixed = api.patch(f"/orders/{created['number']}", {"consignee": ORDER["consignee"]})
    assert (status, fixed["status"], fixed["hold_reason"]) == (200, "confirmed", None)
    assert ("reserved", "confirmed", "stock reserved") in history(api, created["number"])


def test_an_order_without_any_contact_is_held(api: Api):
    consignee = {k: v for k, v in ORDER["consignee"].items() if k != "phone"}
    body = {k: v for k, v in order(consignee=consignee).items() if k != "customer"}
    status, created = api.post("/orders", body)

    assert (status, created["status"]) == (201, "held")
    assert created["hold_reason"] == "incomplete: no contact (e-mail or phone)"


def test_a_channel_order_with_no_lines_is_kept_and_held(runtime: Any, api: Api):
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        view = orders.create(
            session,
            tenant_id,
            OrderDraft(lines=[], consignee=orders.consignee_from(ORDER["consignee"])),
            actor="channel:test",
            allow_empty=True,
        )
        number = view.number

    got = api.get(f"/orders/{number}")[1]
    assert (got["status"], got["lines"]) == ("held", [])
    assert got["hold_reason"].startswith("incomplete: no lines")


def test_the_api_still_refuses_an_order_with_no_lines(api: Api):
    status, body = api.post("/orders", order(lines=[]))
    assert status == 422, body


# --- stock match and classification ------------------------------------------------------


def test_a_short_order_is_a_held_backorder(api: Api):
    status, created = api.post("/orders", order(lines=[{"sku": "SKU-B", "quantity": 11}]))

    assert (status, created["status"], created["type"]) == (201, "held", "backorder")
    assert created["classes"][0] == "backorder"
    assert "SKU-B needs 11, 10 available" in created["hold_reason"]


@pytest.mark.parametrize(
    ("changes", "classes"),
    [
        ({}, ["normal"]),
        ({"lines": priced("1200.00")}, ["high_value"]),
        (
            {
                "consignee": {
                    **ORDER["consignee"],
                    "address": {
                        "line1": "1 Hauptstr.",
                        "city": "Berlin",
                        "postcode": "10115",
                        "country": "DE",
                    },
                }
            },
            ["cross_border"],
        ),
        ({"lines": [{"sku": "SKU-C", "quantity": 1}]}, ["pre_sale"]),
        (
            {"lines": [{"sku": "SKU-C", "quantity": 1, "unit_price": "1500.00"}]},
            ["pre_sale", "high_value"],
        ),
    ],
)
def test_each_classification(api: Api, changes: dict[str, Any], classes: list[str]):
    status, created = api.post("/orders", order(**changes))

    assert status == 201, created
    assert created["classes"] == classes
    assert created["type"] == classes[0]
    assert reasons(api, created["number"], "classified") == ["classes: " + ", ".join(classes)]


# --- priority ----------------------------------------------------------------------------


def _make_vip(runtime: Any, email: str) -> None:
    with runtime.transaction() as session:
        session.execute(update(Customer).where(Customer.email == email).values(vip=True))


def test_priority_adds_vip_express_channel_and_amount_points(runtime: Any, api: Api):
    api.post("/orders", order())  # the customer exists now
    _make_vip(runtime, ORDER["customer"]["email"])

    status, created = api.post(
        "/orders",
        order(
            lines=priced("250.00"),
            channel="storefront",
            shipping_method="UPS Express Saver",
            priority=3,
        ),
    )

    assert status == 201
    # base 3 + VIP 50 + express 30 + channel 7 + amount 2 (250 // 100)
    assert created["priority"] == 92
    (why,) = reasons(api, created["number"], "prioritised")
    assert why.startswith("score 92: base 3, VIP customer +50, express shipping")
    assert "channel storefront +7" in why and "amount 250.00 +2" in why


def test_amount_points_are_capped(api: Api):
    _, created = api.post("/orders", order(lines=priced("4000.00")))
    assert created["priority"] == 20


def test_the_work_queue_puts_the_highest_score_first(runtime: Any, api: Api):
    plain = api.post("/orders", order())[1]["number"]
    express = api.post("/orders", order(shipping_method="Next Day"))[1]["number"]
    rich = api.post("/orders", order(lines=priced("900.00")))[1]["number"]

    status, queue = api.get("/orders?sort=queue&status=confirmed")

    assert status == 200
    assert [o["number"] for o in queue["items"]] == [express, rich, plain]


def test_age_counts_as_priority_at_the_configured_rate():
    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    weighted = rules.Rules(age_points_per_hour=2)
    # 10 points = 5 hours of waiting: an order 6 hours older with 10 points less goes first.
    assert rules.queue_at(at, 10, weighted) == at - timedelta(hours=5)
    assert rules.queue_at(at - timedelta(hours=6), 0, weighted) < rules.queue_at(at, 10, weighted)
    # Without an age weight the score decides, whatever the age.
    plain = rules.Rules()
    assert rules.queue_at(at, 1, plain) < rules.queue_at(at - timedelta(days=300), 0, plain)


# --- approval ----------------------------------------------------------------------------


def test_above_5000_one_operator_approval_confirms(runtime: Any, api: Api):
    _, created = api.post("/orders", order(lines=priced("6000.00")))
    number = created["number"]

    assert created["status"] == "awaiting_approval"
    assert created["approval"]["next_role"] == "operator"
    assert reasons(api, number, "approval_required") == [
        "total 6000.00 is above 5000: needs approval by an operator (level 1 of 1)"
    ]
    status, body = api.post(f"/orders/{number}/approve", {}, token=api.tokens["warehouse"])
    assert status == 403, body

    status, approved = api.post(
        f"/orders/{number}/approve", {"note": "known customer"}, token=api.tokens["operator"]
    )

    assert (status, approved["status"]) == (200, "confirmed")
    assert approved["approval"]["approvals"][0]["actor"] == "operator"
    assert reasons(api, number, "approved") == [
        "level 1 of 1 approved by operator (operator) for a total of 6000.00: known customer"
    ]
    audit = api.get("/audit?action=order.approve")[1]["items"]
    assert [a["entity_id"] for a in audit] == [number]


# Two levels, four eyes, and every way around them: tests/test_approval.py.


def test_rejection_cancels_and_releases_the_stock(runtime: Any, api: Api):
    before = reserved(runtime, "SKU-A")
    _, created = api.post("/orders", order(lines=priced("6000.00", 2)))
    number = created["number"]
    assert sum(reserved(runtime, "SKU-A").values()) == sum(before.values()) + 2

    status, body = api.post(f"/orders/{number}/reject", {}, token=api.tokens["operator"])
    assert status == 422, body  # a reason is required
    status, rejected = api.post(
        f"/orders/{number}/reject", {"reason": "suspected fraud"}, token=api.tokens["operator"]
    )

    assert (status, rejected["status"]) == (200, "cancelled")
    assert reserved(runtime, "SKU-A") == before
    assert ("rejected", "cancelled", "rejected by operator: suspected fraud") in history(
        api, number
    )
    assert api.post(f"/orders/{number}/approve")[0] == 409


def test_approving_an_order_that_needs_no_approval_is_a_conflict(api: Api):
    number = api.post("/orders", order())[1]["number"]
    status, body = api.post(f"/orders/{number}/approve")
    assert status == 409
    assert "only orders awaiting approval" in body["error"]["message"]


def test_raising_the_total_of_a_confirmed_order_asks_for_approval(api: Api):
    number = api.post("/orders", order())[1]["number"]

    status, changed = api.patch(f"/orders/{number}", {"lines": priced("7000.00")})

    assert (status, changed["status"]) == (200, "awaiting_approval")


def test_a_backorder_needing_approval_waits_for_stock_then_approval(runtime: Any, api: Api):
    lines = [{"sku": "SKU-B", "quantity": 11, "unit_price": "600.00"}]
    _, created = api.post("/orders", order(lines=lines))
    assert (created["status"], created["type"]) == ("held", "backorder")
    status, _ = api.post(
        "/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-B", "quantity": 5}]}
    )
    assert status == 200

    status, allocated = api.post(f"/orders/{created['number']}/allocate")

    assert (status, allocated["status"]) == (200, "awaiting_approval"), allocated
    assert allocated["type"] == "high_value"


# --- routing -----------------------------------------------------------------------------


def allocations(api: Api, number: str) -> list[tuple[str, str, int]]:
    got = api.get(f"/orders/{number}")[1]["allocations"]
    return [(a["warehouse"], a["sku"], a["quantity"]) for a in got]


def test_region_match_routes_to_the_consignees_warehouse(api: Api):
    west = {**ORDER["consignee"]["address"], "region": "west", "city": "Reno"}
    _, created = api.post(
        "/orders",
        order(
            lines=[{"sku": "SKU-A", "quantity": 2}],
            consignee={**ORDER["consignee"], "address": west},
        ),
    )

    assert allocations(api, created["number"]) == [("WEST", "SKU-A", 2)]
    assert reasons(api, created["number"], "routed") == ["from WEST (by region, stock, priority)"]


def test_routing_never_plans_from_a_deactivated_warehouse(api: Api):
    assert api.patch("/warehouses/WEST", {"active": False})[0] == 200
    west = {**ORDER["consignee"]["address"], "region": "west", "city": "Reno"}
    _, near = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 2}],
                                        consignee={**ORDER["consignee"], "address": west}))
    assert allocations(api, near["number"]) == [("MAIN", "SKU-A", 2)]
    # MAIN's 18 left are not enough; WEST's 10 would be, but WEST is closed.
    _, short = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 25}]))
    assert short["status"] == "held" and short["type"] == "backorder"
    assert allocations(api, short["number"]) == []


def test_a_regional_warehouse_holding_exactly_the_order_fills_it(api: Api):
    west = {**ORDER["consignee"]["address"], "region": "west", "city": "Reno"}
    _, created = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 10}],
                                           consignee={**ORDER["consignee"], "address": west}))
    assert allocations(api, created["number"]) == [("WEST", "SKU-A", 10)]  # all WEST has


def test_the_warehouse_priority_breaks_a_tie_of_region_and_stock(api: Api):
    east = {"code": "EAST", "name": "East", "country": "US", "region": "east", "priority": 1}
    assert api.post("/warehouses", east)[0] == 201
    assert api.post("/stock/inbound", {"warehouse": "EAST",
                                       "items": [{"sku": "SKU-C", "quantity": 5}]})[0] == 200
    south = {**ORDER["consignee"]["address"], "region": "south"}
    _, created = api.post("/orders", order(lines=[{"sku": "SKU-C", "quantity": 2}],
                                           consignee={**ORDER["consignee"], "address": south}))
    # MAIN, WEST and EAST: same country, no region match, 2 free each: priority 1 wins.
    assert allocations(api, created["number"]) == [("EAST", "SKU-C", 2)]


def test_most_stock_wins_when_no_region_matches(api: Api):
    south = {**ORDER["consignee"]["address"], "region": "south"}
    _, created = api.post(
        "/orders",
        order(
            lines=[{"sku": "SKU-A", "quantity": 2}],
            consignee={**ORDER["consignee"], "address": south},
        ),
    )
    # MAIN holds 20 SKU-A and WEST 10: same country, no region match, so most stock.
    assert allocations(api, created["number"]) == [("MAIN", "SKU-A", 2)]


def test_one_warehouse_filling_the_whole_order_beats_a_better_ranked_partial_one(api: Api):
    west = {**ORDER["consignee"]["address"], "region": "west"}
    # WEST (region match) has no SKU-B: MAIN can fill both lines, so nothing is split.
    _, created = api.post(
        "/orders",
        order(
            lines=[{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-B", "quantity": 1}],
            consignee={**ORDER["consignee"], "address": west},
        ),
    )
    assert allocations(api, created["number"]) == [("MAIN", "SKU-A", 1), ("MAIN", "SKU-B", 1)]


def test_an_order_no_single_warehouse_can_fill_is_split(api: Api):
    _, created = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 25}]))

    assert created["status"] == "confirmed"
    assert allocations(api, created["number"]) == [("MAIN", "SKU-A", 20), ("WEST", "SKU-A", 5)]
    (why,) = reasons(api, created["number"], "routed")
    assert why.startswith("split across MAIN, WEST: no single warehouse could fill it")


def test_rank_warehouses_by_each_criterion():
    sites = [
        rules.Site(1, priority=20, country="US", region="east"),
        rules.Site(2, priority=10, country="US", region="west"),
        rules.Site(3, priority=30, country="DE", region=None),
    ]
    free = {1: {7: 100}, 2: {7: 3}, 3: {7: 50}}

    def rank(*order: str, country: str = "DE", region: str | None = None) -> list[int]:
        return rules.rank_warehouses(
            sites,
            free,
            {7: 5},
            rules.Rules(routing=order),
            ship_country=country,
            ship_region=region,
        )

    assert rank("priority") == [2, 1, 3]
    assert rank("stock") == [1, 3, 2]
    assert rank("region", "priority") == [3, 2, 1]
    assert rank("region", "priority", country="US", region="east") == [1, 2, 3]


# --- configuration -----------------------------------------------------------------------


def test_rules_in_the_tenant_file_are_validated(tmp_path: Path):
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "shop.toml").write_text(
        '[[rules.approval]]\nabove = "5000"\nrole = "intern"\n'
    )
    with pytest.raises(ConfigError) as error:
        load_tenants(tmp_path, {})
    assert "rules.approval.0.role" in str(error.value)


def test_rules_are_read_with_levels_in_ascending_order(config_dir: Path):
    loaded = load_tenants(config_dir, {})["acme"].rules
    assert [(x.above, x.role) for x in loaded.approval] == [
        (Decimal(5000), "operator"),
        (Decimal(50000), "admin"),
    ]
    assert loaded.routing == ("region", "stock", "priority")
