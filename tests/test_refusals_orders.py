"""Tests that refuse: each one fails when a plausible bug is planted in the order core.

- every (status, action) pair of an order: what the state machine refuses stays refused (a
  shipped order is never cancelled) and what it allows succeeds;
- the approval levels start strictly above their amounts (5,000.00 needs none, 5,000.01 does);
- four eyes compares people, not roles: the users are named apart from their roles (kim and
  pat are operators, lee and sam admins);
- splitting off a SKU that sits on two lines moves exactly the quantities asked for, line by
  line, with the stock reserved for them;
- an order's total is its subtotal plus shipping, tax and fees, minus its discount.

Thresholds are tested on, just below and just above. The behaviour here does not depend on the
database engine, so everything runs on SQLite only.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, seed_people, waits_for_a_lock
from sqlalchemy import func, select, text

from hub import hookimpl
from hub.core import orders
from hub.core.adapters import StubCarrier
from hub.core.models import Event, Order, ShipmentPurchase, Tenant
from hub.runtime import Runtime

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PEOPLE = {"kim": "operator", "pat": "operator", "lee": "admin", "sam": "admin"}


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """acme: approval by an operator above 5,000 and by an admin too above 50,000."""
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(
        '[rules]\n[[rules.approval]]\nabove = "5000"\nrole = "operator"\n'
        '[[rules.approval]]\nabove = "50000"\nrole = "admin"\n'
    )
    return path


@pytest.fixture
def who(api: Api, runtime: Runtime) -> dict[str, str]:
    """Tokens of kim and pat (operators), lee and sam (admins) of tenant acme."""
    return seed_people(runtime, PEOPLE)


class StubCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]


@pytest.fixture
def carrier(api: Api, runtime: Runtime) -> int:
    """acme's one carrier account (the stub), so an empty shipment body ships."""
    runtime.plugins.register(StubCarriers, "stub-carriers")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}
    )
    assert status == 201, account
    return account["id"]


def line(sku: str, quantity: int, unit_price: str) -> dict[str, Any]:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price}


def create(api: Api, token: str | None = None, **changes: Any) -> dict[str, Any]:
    status, order = api.post("/orders", {**ORDER, **changes}, token=token)
    assert status == 201, order
    return order


def read(api: Api, number: str) -> dict[str, Any]:
    status, order = api.get(f"/orders/{number}")
    assert status == 200, order
    return order


def shipments_of(api: Api, runtime: Runtime, number: str) -> tuple[Any, ...]:
    """The order's shipments, and how many labels were ever bought for it (a label bought
    and voided again still cost a call to the carrier)."""
    status, found = api.get(f"/shipments?order={number}")
    assert status == 200, found
    with runtime.session() as session:
        bought = session.scalar(
            select(func.count())
            .select_from(ShipmentPurchase)
            .join(Order, Order.id == ShipmentPurchase.order_id)
            .where(Order.number == number)
        )
    return bought, [(x["id"], x["status"]) for x in found["items"]]


def set_status(runtime: Runtime, number: str, *steps: str) -> None:
    """Statuses the API does not reach on its own (a carrier's delivery, a return, closing),
    through the order service's one way of changing a status."""
    with runtime.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "acme"))
        session.info["orderhub.tenant_id"] = tenant.id
        order = orders.get(session, tenant.id, number, for_update=True)
        for to in steps:
            orders.set_status(session, order, to, to, "test")


# --- 1. every (status, action) pair ----------------------------------------------------------

# Every order here has two different SKUs, so a split always leaves a line behind.
HELD_LINES = [line("SKU-A", 1, "10.00"), line("SKU-B", 1000, "25.50")]  # more than in stock
APPROVAL_LINES = [line("SKU-A", 1, "6000.00"), line("SKU-C", 1, "3.99")]


def reach(api: Api, runtime: Runtime, status: str) -> str:
    """A new order of acme in ``status``, the way a user would get it there."""
    if status == "held":
        number = create(api, lines=HELD_LINES)["number"]
    elif status == "awaiting_approval":
        number = create(api, lines=APPROVAL_LINES)["number"]
    else:
        number = create(api)["number"]
    if status == "partially_shipped":
        answer = api.post(
            f"/orders/{number}/shipments", {"lines": [{"sku": "SKU-A", "quantity": 1}]}
        )
        assert answer[0] == 201, answer
    if status in ("shipped", "delivered", "returned", "closed"):
        answer = api.post(f"/orders/{number}/shipments", {})
        assert answer[0] == 201, answer
    if status == "delivered":
        set_status(runtime, number, "delivered")
    elif status == "returned":
        set_status(runtime, number, "returned")
    elif status == "closed":
        set_status(runtime, number, "delivered", "closed")
    elif status == "cancelled":
        assert api.post(f"/orders/{number}/cancel", {"reason": "test"})[0] == 200
    assert read(api, number)["status"] == status
    return number


Action = Callable[[Api, dict[str, str], str], tuple[int, Any]]


def _merge(api: Api, who: dict[str, str], number: str) -> tuple[int, Any]:
    partner = create(api)["number"]  # same customer and address, confirmed
    return api.post("/orders/merge", {"numbers": [number, partner]})


def _split(api: Api, who: dict[str, str], number: str) -> tuple[int, Any]:
    return api.post(f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 1}]})


ACTIONS: dict[str, Action] = {
    "cancel": lambda api, who, n: api.post(f"/orders/{n}/cancel", {"reason": "changed mind"}),
    # lee: an admin who did not create it (the seeded "admin" did).
    "approve": lambda api, who, n: api.post(f"/orders/{n}/approve", {}, token=who["lee"]),
    "reject": lambda api, who, n: api.post(
        f"/orders/{n}/reject", {"reason": "too dear"}, token=who["lee"]
    ),
    "modify": lambda api, who, n: api.patch(f"/orders/{n}", {"note": "leave at the door"}),
    "modify_lines": lambda api, who, n: api.patch(
        f"/orders/{n}", {"lines": [line("SKU-A", 1, "10.00"), line("SKU-C", 1, "3.99")]}
    ),
    "allocate": lambda api, who, n: api.post(f"/orders/{n}/allocate"),
    "split": _split,
    "merge": _merge,
    "ship": lambda api, who, n: api.post(f"/orders/{n}/shipments", {}),
}

ORDER_SKUS = ("SKU-A", "SKU-B", "SKU-C")
# What a refused action must leave as it was.
KEPT = ("status", "lines", "total", "note", "allocations", "approval", "merged_into", "shipments")
STATES = (
    "held",
    "awaiting_approval",
    "confirmed",
    "partially_shipped",
    "shipped",
    "delivered",
    "returned",
    "closed",
    "cancelled",
)
OPEN = ("held", "awaiting_approval", "confirmed")
# action → {status it is allowed from: (HTTP status, the order's status afterwards)}; every
# pair not listed must be refused and leave the order as it was.
ALLOWED: dict[str, dict[str, tuple[int, str]]] = {
    "cancel": {s: (200, "cancelled") for s in OPEN},
    "approve": {"awaiting_approval": (200, "confirmed")},
    "reject": {"awaiting_approval": (200, "cancelled")},
    "modify": {s: (200, s) for s in OPEN},
    # Two lines that fit the stock and need no approval: the rules decide again.
    "modify_lines": {s: (200, "confirmed") for s in OPEN},
    "allocate": {s: (200, s) for s in OPEN},
    "split": {s: (201, s) for s in OPEN},
    "merge": {s: (200, s) for s in OPEN},
    "ship": {"confirmed": (201, "shipped"), "partially_shipped": (201, "shipped")},
}


def test_the_table_names_every_status_the_state_machine_knows():
    """``new`` lasts only while an order is being created; everything else is in the table."""
    assert set(STATES) | {"new"} == set(orders.STATUSES)
    assert set(OPEN) == orders.OPEN_STATUSES - {"new"}


@SQLITE_ONLY
@pytest.mark.parametrize("state", STATES)
def test_every_action_in_every_status_is_allowed_or_refused(
    api: Api, runtime: Runtime, who: dict[str, str], carrier: int, state: str
):
    """Refused actions all try one order, which none of them may change; each allowed
    action gets an order of its own."""
    status, answer = api.post(
        "/stock/inbound",
        {"warehouse": "MAIN", "items": [{"sku": s, "quantity": 50} for s in ORDER_SKUS]},
    )
    assert status == 200, answer
    refused_on = reach(api, runtime, state)
    before = {**read(api, refused_on), "shipments": shipments_of(api, runtime, refused_on)}
    results = {}
    for action, act in ACTIONS.items():
        allowed = ALLOWED[action].get(state)
        number = reach(api, runtime, state) if allowed else refused_on
        status, body = act(api, who, number)
        if allowed:
            results[action] = (status, read(api, number)["status"])
            assert results[action] == allowed, (action, body)
        else:
            results[action] = (status, None)
            assert status == 409, (action, body)
            message = body["error"]["message"]
            assert number in message and state in message, (action, message)
            now = {**read(api, number), "shipments": shipments_of(api, runtime, number)}
            assert {k: now[k] for k in KEPT} == {k: before[k] for k in KEPT}, action
    expected = {a: ALLOWED[a].get(state, (409, None)) for a in ACTIONS}
    assert results == expected


# --- 2. approval thresholds: strictly above, on the total ------------------------------------

# (lines, shipping, discount) → the approval levels' roles; each threshold on, just below and
# just above, and decided on the total (shipping and discount count), not the subtotal.
THRESHOLDS = [
    ("4999.99", "0", "0", []),
    ("5000.00", "0", "0", []),
    ("5000.01", "0", "0", ["operator"]),
    ("4990.00", "10.01", "0", ["operator"]),
    ("5000.01", "0", "0.01", []),
    ("49999.99", "0", "0", ["operator"]),
    ("50000.00", "0", "0", ["operator"]),
    ("50000.01", "0", "0", ["operator", "admin"]),
    ("49990.00", "10.01", "0", ["operator", "admin"]),
    ("50000.01", "0", "0.01", ["operator"]),
]


@SQLITE_ONLY
def test_approval_starts_a_cent_above_each_threshold(api: Api):
    seen = []
    for price, shipping, discount, _ in THRESHOLDS:
        order = create(
            api,
            lines=[line("SKU-A", 1, price)],
            shipping_total=shipping,
            discount_total=discount,
        )
        levels = [level["role"] for level in (order["approval"] or {}).get("levels", [])]
        status = "awaiting_approval" if levels else "confirmed"
        assert order["status"] == status, (order["total"], order["hold_reason"])
        seen.append((price, shipping, discount, levels))
    assert seen == [(p, s, d, roles) for p, s, d, roles in THRESHOLDS]


# --- 3. four eyes: people, not roles ---------------------------------------------------------


def approve(api: Api, number: str, token: str) -> tuple[int, Any]:
    return api.post(f"/orders/{number}/approve", {}, token=token)


@SQLITE_ONLY
def test_four_eyes_keeps_the_creator_out_and_one_person_to_one_level(api: Api, who: dict[str, str]):
    number = create(api, who["kim"], lines=[line("SKU-A", 1, "60000.00")])["number"]
    assert read(api, number)["approval"]["not_by"] == ["kim"]

    status, body = approve(api, number, who["kim"])  # the creator, an operator: level 1 is hers
    assert status == 403, body
    assert "you created" in body["error"]["message"]
    assert read(api, number)["approval"]["approvals"] == []

    status, body = approve(api, number, who["lee"])  # an admin may give the operator level
    assert status == 200, body
    assert body["status"] == "awaiting_approval"

    status, body = approve(api, number, who["pat"])  # an operator, but level 2 needs an admin
    assert status == 403, body
    status, body = approve(api, number, who["lee"])  # the right role, but lee gave level 1
    assert status == 409, body
    assert "earlier level" in body["error"]["message"]
    assert read(api, number)["status"] == "awaiting_approval"

    status, body = approve(api, number, who["sam"])  # another admin
    assert status == 200, body
    assert body["status"] == "confirmed"
    given = body["approval"]["approvals"]
    assert [(g["level"], g["actor"], g["role"]) for g in given] == [
        (1, "lee", "admin"),
        (2, "sam", "admin"),
    ]


@SQLITE_ONLY
def test_four_eyes_holds_for_an_admin_creator_and_lets_an_operator_approve(
    api: Api, who: dict[str, str]
):
    number = create(api, who["lee"], lines=[line("SKU-A", 1, "6000.00")])["number"]

    status, body = approve(api, number, who["lee"])
    assert status == 403, body
    status, body = api.post(f"/orders/{number}/reject", {"reason": "mine"}, token=who["kim"])
    assert (status, body["status"]) == (200, "cancelled")  # anyone with the role may refuse

    number = create(api, who["lee"], lines=[line("SKU-A", 1, "6000.00")])["number"]
    status, body = approve(api, number, who["kim"])
    assert (status, body["status"]) == (200, "confirmed"), body


# --- 4. a split of a SKU on two lines ------------------------------------------------------


def stock_of(api: Api, sku: str) -> dict[str, tuple[int, int]]:
    _, found = api.get(f"/stock?sku={sku}")
    return {i["warehouse"]: (i["on_hand"], i["reserved"]) for i in found["items"]}


def lines_of(order: dict[str, Any]) -> list[tuple[int, str, int, str, str]]:
    return [
        (x["line_no"], x["sku"], x["quantity"], x["unit_price"], x["line_total"])
        for x in order["lines"]
    ]


TWO_A_LINES = [line("SKU-A", 3, "10.00"), line("SKU-B", 1, "25.50"), line("SKU-A", 4, "12.00")]


@SQLITE_ONLY
def test_splitting_a_sku_on_two_lines_moves_exactly_what_was_asked(api: Api):
    number = create(api, lines=TWO_A_LINES)["number"]
    stock_a, stock_b = stock_of(api, "SKU-A"), stock_of(api, "SKU-B")

    status, child = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 5}]}
    )

    assert status == 201, child
    parent, child = read(api, number), read(api, child["number"])
    # The first line whole, then two of the second A line.
    assert lines_of(child) == [(1, "SKU-A", 3, "10.00", "30.00"), (2, "SKU-A", 2, "12.00", "24.00")]
    assert lines_of(parent) == [
        (1, "SKU-B", 1, "25.50", "25.50"),
        (2, "SKU-A", 2, "12.00", "24.00"),
    ]
    assert (child["subtotal"], child["total"]) == ("54.00", "54.00")
    assert (parent["subtotal"], parent["total"]) == ("49.50", "49.50")
    assert (parent["status"], child["status"]) == ("confirmed", "confirmed")
    assert child["allocations"] == [{"warehouse": "MAIN", "sku": "SKU-A", "quantity": 5}]
    assert parent["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 2},
        {"warehouse": "MAIN", "sku": "SKU-B", "quantity": 1},
    ]
    # The reserved stock changed hands, none was reserved or released.
    assert (stock_of(api, "SKU-A"), stock_of(api, "SKU-B")) == (stock_a, stock_b)


@SQLITE_ONLY
def test_splitting_a_sku_reserved_in_two_warehouses_hands_over_exactly_its_stock(api: Api):
    # 25 of SKU-A on two lines: MAIN has 20, WEST 10, so 20 are reserved at MAIN and 5 at WEST.
    lines = [line("SKU-A", 15, "10.00"), line("SKU-B", 1, "25.50"), line("SKU-A", 10, "12.00")]
    number = create(api, lines=lines)["number"]
    assert read(api, number)["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 20},
        {"warehouse": "WEST", "sku": "SKU-A", "quantity": 5},
        {"warehouse": "MAIN", "sku": "SKU-B", "quantity": 1},
    ]
    stock_a = stock_of(api, "SKU-A")
    assert stock_a == {"MAIN": (20, 20), "WEST": (10, 5)}

    status, child = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 22}]}
    )

    assert status == 201, child
    parent, child = read(api, number), read(api, child["number"])
    assert lines_of(child) == [
        (1, "SKU-A", 15, "10.00", "150.00"),
        (2, "SKU-A", 7, "12.00", "84.00"),
    ]
    assert lines_of(parent) == [
        (1, "SKU-B", 1, "25.50", "25.50"),
        (2, "SKU-A", 3, "12.00", "36.00"),
    ]
    # The child takes the first reservation whole and two units of the second.
    assert child["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 20},
        {"warehouse": "WEST", "sku": "SKU-A", "quantity": 2},
    ]
    assert parent["allocations"] == [
        {"warehouse": "WEST", "sku": "SKU-A", "quantity": 3},
        {"warehouse": "MAIN", "sku": "SKU-B", "quantity": 1},
    ]
    assert (parent["status"], child["status"]) == ("confirmed", "confirmed")
    assert stock_of(api, "SKU-A") == stock_a  # handed over: nothing more reserved, none freed


@SQLITE_ONLY
def test_a_split_takes_at_most_what_the_order_has_and_leaves_a_line(api: Api):
    number = create(api, lines=TWO_A_LINES)["number"]  # 7 of SKU-A on two lines

    status, body = api.post(f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 8}]})
    assert status == 422, body
    assert "has 7 of 'SKU-A'" in body["error"]["message"]
    status, body = api.post(
        f"/orders/{number}/split",
        {"lines": [{"sku": "SKU-A", "quantity": 7}, {"sku": "SKU-B", "quantity": 1}]},
    )
    assert status == 422, body
    assert "at least one line" in body["error"]["message"]
    assert lines_of(read(api, number)) == [
        (1, "SKU-A", 3, "10.00", "30.00"),
        (2, "SKU-B", 1, "25.50", "25.50"),
        (3, "SKU-A", 4, "12.00", "48.00"),
    ]

    status, child = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 7}]}
    )
    assert status == 201, child
    assert lines_of(child) == [(1, "SKU-A", 3, "10.00", "30.00"), (2, "SKU-A", 4, "12.00", "48.00")]
    assert lines_of(read(api, number)) == [(1, "SKU-B", 1, "25.50", "25.50")]


# --- 5. totals -------------------------------------------------------------------------------


@SQLITE_ONLY
def test_the_total_adds_shipping_tax_and_fees_and_takes_off_the_discount(
    api: Api, runtime: Runtime
):
    # ORDER's lines: 2 x 10.00 + 1 x 25.50 = 45.50
    order = create(api, shipping_total="7.25", tax_total="3.10", discount_total="1.40")
    assert (order["subtotal"], order["total"]) == ("45.50", "54.45")

    with runtime.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "acme"))
        session.info["orderhub.tenant_id"] = tenant.id
        orders.modify(
            session,
            tenant.id,
            order["number"],
            actor="test",
            charges=(Decimal("6.00"), Decimal("2.20"), Decimal("0.35"), Decimal("1.05")),
        )
    order = read(api, order["number"])
    assert (order["shipping_total"], order["tax_total"]) == ("6.00", "2.20")
    assert (order["discount_total"], order["fees_total"]) == ("0.35", "1.05")
    assert order["total"] == "54.40"  # 45.50 + 6.00 + 2.20 + 1.05 - 0.35


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("discount", "total"), [("11.49", "0.01"), ("11.50", "0.00"), ("11.51", None)]
)
def test_a_discount_may_take_the_total_to_zero_but_not_below(
    api: Api, discount: str, total: str | None
):
    body = {
        **ORDER,
        "lines": [line("SKU-A", 1, "10.00")],
        "shipping_total": "1.00",
        "tax_total": "0.50",
        "discount_total": discount,
    }
    status, order = api.post("/orders", body)
    if total is None:
        assert status == 422, order
        assert "discount is larger" in order["error"]["message"]
        assert api.get("/orders")[1]["total"] == 0
    else:
        assert (status, order["total"]) == (201, total), order


# --- an order its channel ships (Amazon FBA and the like) --------------------------------


def channel_fulfils(runtime: Runtime, number: str, status: str | None = None,
                    by_channel: bool = True) -> None:
    """Mark an order as one its channel ships (and put it in ``status``), as intake does for
    an Amazon FBA order."""
    with runtime.transaction() as session:
        order = session.scalars(select(Order).where(Order.number == number)).one()
        order.fulfilled_by_channel = by_channel
        order.status = status or order.status


def channel_reports(runtime: Runtime, number: str, shipped: str,
                    said: str | None = None) -> None:
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        orders.follow_channel_shipping(session, tenant_id, number, shipped,
                                       actor="amazon-sync", channel_status=said)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("status", "by_channel", "reported", "after"),
    [
        ("confirmed", True, "partially_shipped", "partially_shipped"),
        ("confirmed", True, "shipped", "shipped"),
        ("partially_shipped", True, "shipped", "shipped"),
        # never backwards, never the same step twice
        ("partially_shipped", True, "partially_shipped", "partially_shipped"),
        ("shipped", True, "partially_shipped", "shipped"),
        ("shipped", True, "shipped", "shipped"),
        # only the shipping steps are the channel's to report
        ("confirmed", True, "delivered", "confirmed"),
        ("confirmed", True, "cancelled", "confirmed"),
        # held (the channel's own hold) or cancelled orders are not moved
        ("held", True, "shipped", "held"),
        ("cancelled", True, "shipped", "cancelled"),
        # an order the hub ships is never moved by what the channel says
        ("confirmed", False, "shipped", "confirmed"),
        ("confirmed", False, "partially_shipped", "confirmed"),
    ],
)
def test_a_channel_fulfilled_order_follows_the_channel_forward_only(
    api: Api, runtime: Runtime, status: str, by_channel: bool, reported: str, after: str
):
    number = create(api)["number"]
    channel_fulfils(runtime, number, status, by_channel)
    channel_reports(runtime, number, reported, "Shipped")
    assert api.get(f"/orders/{number}")[1]["status"] == after
    moves = [h for h in api.get(f"/orders/{number}/history")[1]["items"]
             if h["action"] == "shipped_by_channel"]
    changes = api.get(f"/audit?action=order.ship&entity_id={number}")[1]["items"]
    if after == status:
        assert moves == [] and changes == []
        return
    assert [(m["from"], m["to"], m["actor"], m["reason"]) for m in moves] == [(
        status, after, "amazon-sync",
        f"the sales channel reports it {after.replace('_', ' ')} (Shipped) from its own stock",
    )]
    assert [(c["actor"], c["entity_type"], c["before"]["status"], c["after"]["status"])
            for c in changes] == [("amazon-sync", "order", status, after)]


@SQLITE_ONLY
def test_the_channel_s_own_words_are_quoted_only_when_it_gave_some(api: Api, runtime: Runtime):
    number = create(api)["number"]
    channel_fulfils(runtime, number)
    channel_reports(runtime, number, "shipped")
    (move,) = [h for h in api.get(f"/orders/{number}/history")[1]["items"]
               if h["action"] == "shipped_by_channel"]
    assert move["reason"] == "the sales channel reports it shipped from its own stock"


def test_the_postgresql_writer_sends_amounts_and_times_exactly_and_nothing_else():
    from datetime import UTC, datetime

    from hub.core import order_writer

    at = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)
    assert order_writer._json({"total": Decimal("0.10"), "at": at, "n": 2}) == (
        '{"total": "0.10", "at": "2026-03-02T08:00:00.123456+00:00", "n": 2}')
    with pytest.raises(TypeError, match=r"^cannot write set as JSON$"):
        order_writer._json({"x": {1}})


# --- one writer at a time per order -------------------------------------------------------

POSTGRES_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@POSTGRES_ONLY
@pytest.mark.parametrize(
    "action", ["cancel", "approve", "reject", "modify", "modify_lines", "allocate", "split",
               "merge", "follow_channel"],
)
def test_every_order_action_locks_the_order_before_reading_it(
    api: Api, runtime: Runtime, who: dict[str, str], action: str
):
    """Two people acting on one order at once must act one after the other, each seeing
    what the other did (two approvals both counting as the first level, a cancel racing a
    split). So each action takes the order's row lock (FOR UPDATE) before it reads the
    order. Shown by holding a key-share lock elsewhere: it blocks FOR UPDATE, but not the
    plain UPDATE an action that forgot the lock would go on to write with."""
    if action == "follow_channel":  # an order its channel ships, told it shipped
        number = reach(api, runtime, "confirmed")
        channel_fulfils(runtime, number)

        def follow(api: Api, who: dict[str, str], number: str) -> tuple[int, Any]:
            channel_reports(runtime, number, "shipped")
            return 200, None

        perform, expected = follow, 200
    else:
        status = next(iter(ALLOWED[action]))
        number = reach(api, runtime, status)
        perform, expected = ACTIONS[action], ALLOWED[action][status][0]
    with runtime.engine.connect() as other:
        other.execute(text("SELECT id FROM orders WHERE number = :n FOR KEY SHARE"),
                      {"n": number})
        waited, worker, answer = waits_for_a_lock(runtime.engine,
                                                  lambda: perform(api, who, number))
        other.commit()  # let it go
        worker.join(timeout=60)
    assert waited, f"{action} went ahead without waiting for the order's row lock"
    assert answer and answer[0][0] == expected, answer


@SQLITE_ONLY
def test_an_operator_at_an_admin_level_is_told_which_level_needs_whom(
    api: Api, who: dict[str, str]
):
    number = create(api, lines=[line("SKU-A", 1, "60000.00")])["number"]
    assert api.post(f"/orders/{number}/approve", {}, token=who["kim"])[0] == 200  # level 1
    status, body = api.post(f"/orders/{number}/approve", {}, token=who["pat"])
    assert (status, body["error"]["message"]) == (
        403, f"order {number} needs approval by an admin at level 2 of 2; you are an operator")
    status, body = api.post(f"/orders/{number}/reject", {"reason": "no"}, token=who["pat"])
    assert (status, body["error"]["message"]) == (
        403, f"order {number} is at approval level 2 of 2, which needs an admin;"
        " you are an operator")
    assert read(api, number)["status"] == "awaiting_approval"


def test_roles_are_named_with_their_article():
    assert [orders._article(w) for w in ("admin", "operator", "warehouse", "service")] == [
        "an", "an", "a", "a"]


@pytest.mark.parametrize(
    ("restated", "differs"),
    [
        ({}, False),
        ({"line2": ""}, False),  # an empty text is no text
        ({"country": "us"}, False),  # countries are compared upper-case
        ({"city": "Trenton"}, True),
        ({"line2": "Apt 4"}, True),
        ({"name": None}, True),  # a name taken away is a change
        ({"postcode": "07102"}, True),
    ],
)
def test_a_restated_consignee_differs_only_where_a_value_does(restated: dict, differs: bool):
    from hub.core.normalised import Address, Consignee

    stored = Order(consignee_name="Ann Lee", consignee_phone="+1 555 0100", ship_line1="1 Main St",
                   ship_line2=None, ship_city="Newark", ship_region="NJ", ship_postcode="07101",
                   ship_country="US")
    address = {"line1": "1 Main St", "line2": None, "city": "Newark", "region": "NJ",
               "postcode": "07101", "country": "US"}
    changes = dict(restated)  # the parameter itself is shared by every run of the test
    name = changes.pop("name", "Ann Lee")
    consignee = Consignee(name=name, phone="+1 555 0100", address=Address(**(address | changes)))
    assert orders.consignee_differs(stored, consignee) is differs


class HearsOrders:
    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    @hookimpl
    def order_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self.created.append((tenant, payload["number"]))


def test_a_new_order_is_announced_once_on_either_database(api: Api, runtime: Runtime):
    """The writer differs by database (one JSON-carrying statement on PostgreSQL); both must
    hand the order's events to the runtime to dispatch once the transaction commits."""
    heard = HearsOrders()
    runtime.plugins.register(heard, "hears-orders")
    runtime.jobs.start_worker(sweep=False)
    number = create(api)["number"]
    runtime.jobs.join()
    assert heard.created == [("acme", number)]
    with runtime.session() as session:
        pending = session.scalar(select(func.count()).select_from(Event)
                                 .where(Event.dispatched_at.is_(None)))
    assert pending == 0
