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
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api
from sqlalchemy import select

from hub import hookimpl
from hub.core import auth, orders
from hub.core.adapters import StubCarrier
from hub.core.models import Tenant
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
    tokens = {}
    with runtime.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "acme"))
        session.info["orderhub.tenant_id"] = tenant.id
        for username, role in PEOPLE.items():
            user = auth.create_user(session, tenant.id, username, f"password-{username}", role,
                                    "seed")
            tokens[username] = auth.create_token(session, user, "seed")
    return tokens


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
KEPT = ("status", "lines", "total", "note", "allocations", "approval", "merged_into")
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
    before = read(api, refused_on)
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
            now = read(api, number)
            assert {k: now[k] for k in KEPT} == {k: before[k] for k in KEPT}, action
    expected = {a: ALLOWED[a].get(state, (409, None)) for a in ACTIONS}
    assert results == expected
