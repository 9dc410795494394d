"""Tests that refuse: each one fails when a plausible bug is planted in returns or refunds.

- every (status, action) pair of a return: what the state machine refuses stays refused (a
  received return is never cancelled, a closed one never refunded) and what it allows moves
  it where it should;
- the return window, the units that may come back and the units a receipt may take, each on,
  below and above its bound;
- refunds: never more than what came back is worth, nor more than was paid; shipping once;
  the service role's limit on, below and above it, and none without one;
- the quarantine: never reserved, never available, never made sellable;
- whatever counts an order's units or money waits for the order's row (PostgreSQL), so two
  returns or refunds at once are counted one after the other.

acme takes returns for 7 days and lets its service staff refund up to 20.00. The behaviour
here does not depend on the database engine, so everything but the locking runs on SQLite
only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, seed_people, waits_for_a_lock
from sqlalchemy import text
from test_returns import (
    ask_back,
    day,
    delivered,
    ledger,
    made,
    receive,
    stock,
    stub_account,
)

from hub.runtime import Runtime

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(
        '[service]\nreturn_window_days = 7\nrefund_limit = "20.00"\n'
    )
    return path


@pytest.fixture
def carrier(api: Api, runtime: Runtime) -> int:
    return stub_account(api, runtime)


def refund(api: Api, ret: dict[str, Any], token: str | None = None, **body: Any) -> Any:
    return api.post(f"/returns/{ret['id']}/refund", body, token=token)


def status_of(api: Api, ret: dict[str, Any]) -> str:
    return api.get(f"/returns/{ret['id']}")[1]["status"]


# --- 1. every (status, action) pair ------------------------------------------------------


def reach(api: Api, carrier: int, status: str) -> dict[str, Any]:
    """A return of both SKU-A of a fresh delivered order, brought to ``status``."""
    ret = made(api, delivered(api, carrier), ("SKU-A", 2))
    if status in ("partially_received", "closed"):
        assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200
    if status in ("received", "refunded"):
        assert receive(api, ret, ("SKU-A", 2, "sellable"))[0] == 200
    if status == "refunded":
        assert refund(api, ret)[0] == 201
    if status == "closed":
        assert api.post(f"/returns/{ret['id']}/close", {})[0] == 200
    if status == "cancelled":
        assert api.post(f"/returns/{ret['id']}/cancel", {})[0] == 200
    assert status_of(api, ret) == status
    return ret


ACTIONS = {
    "receive": {"lines": [{"sku": "SKU-A", "quantity": 1, "condition": "sellable"}]},
    "refund": {},
    "cancel": {},
    "close": {},
}
# status → action → (HTTP status, the return's status after it, why it was refused)
TABLE: dict[str, dict[str, tuple[int, str, str | None]]] = {
    "authorised": {
        "receive": (200, "partially_received", None),
        "refund": (409, "authorised", "nothing of it has come back yet"),
        "cancel": (200, "cancelled", None),
        "close": (409, "authorised", "nothing of it has come back (cancel it instead)"),
    },
    "partially_received": {
        "receive": (200, "received", None),
        "refund": (201, "refunded", None),
        "cancel": (409, "partially_received", "goods have come back (close it instead)"),
        "close": (200, "closed", None),
    },
    "received": {
        "receive": (409, "received", "every unit asked back has been received"),
        "refund": (201, "refunded", None),
        "cancel": (409, "received", "goods have come back (close it instead)"),
        "close": (200, "closed", None),
    },
    "refunded": {
        "receive": (409, "refunded", "every unit asked back has been received"),
        "refund": (409, "refunded", "nothing is left to refund"),
        "cancel": (409, "refunded", "goods have come back (close it instead)"),
        "close": (200, "closed", None),
    },
    "closed": {action: (409, "closed", "it is closed") for action in ACTIONS},
    "cancelled": {action: (409, "cancelled", "it is cancelled") for action in ACTIONS},
}
PAIRS = [(status, action) for status in TABLE for action in ACTIONS]


def test_the_table_covers_every_status_and_action() -> None:
    from hub.core.returns import ACTIONS as SERVICE_ACTIONS
    from hub.core.returns import STATUSES

    assert set(TABLE) == set(STATUSES)
    assert set(ACTIONS) == set(SERVICE_ACTIONS)


@SQLITE_ONLY
@pytest.mark.parametrize(("status", "action"), PAIRS, ids=[f"{s}-{a}" for s, a in PAIRS])
def test_every_status_and_action(api: Api, carrier: int, status: str, action: str) -> None:
    ret = reach(api, carrier, status)
    before = ledger(api, ret["number"])
    http, after, why = TABLE[status][action]

    answer_status, answer = api.post(f"/returns/{ret['id']}/{action}", ACTIONS[action])

    assert answer_status == http, answer
    assert status_of(api, ret) == after
    if why is None:
        return
    assert why in answer["error"]["message"]
    assert ledger(api, ret["number"]) == before  # a refusal moves no stock


@SQLITE_ONLY
def test_a_parcel_that_comes_back_after_the_refund_is_received_and_refunded_in_turn(
    api: Api, carrier: int
) -> None:
    ret = reach(api, carrier, "partially_received")
    status, first = refund(api, ret)
    assert (status, first["amount"], first["lines"]) == (
        201,
        "10.00",
        [{"sku": "SKU-A", "quantity": 1}],
    )

    status, answer = receive(api, ret, ("SKU-A", 1, "damaged"))

    assert (status, answer["status"]) == (200, "received")
    status, second = refund(api, ret)
    assert (status, second["amount"], second["lines"]) == (
        201,
        "10.00",
        [{"sku": "SKU-A", "quantity": 1}],
    )


# --- 2. the window -----------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(("days", "allowed"), [(6, True), (7, True), (8, False)])
def test_the_tenants_window_is_counted_in_days_from_delivery(
    api: Api, carrier: int, days: int, allowed: bool
) -> None:
    number = delivered(api, carrier, days=days)

    status, answer = ask_back(api, number, ("SKU-A", 1))

    if allowed:
        assert (status, answer["window_ends_on"]) == (201, day(7 - days))
    else:
        assert status == 409, answer
        assert answer["error"]["message"] == (
            f"the return window of order {number} has ended: delivered on {day(-8)}, returns"
            f" are taken for 7 days (until {day(-1)})"
        )


# --- 3. what may come back ---------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize("status", ["confirmed", "cancelled"])
def test_only_goods_that_shipped_can_be_returned(api: Api, status: str) -> None:
    _, order = api.post("/orders", ORDER)
    if status == "cancelled":
        assert api.post(f"/orders/{order['number']}/cancel", {})[0] == 200

    answer_status, answer = ask_back(api, order["number"], ("SKU-A", 1))

    assert answer_status == 409, answer
    assert answer["error"]["message"] == (
        f"order {order['number']} is {status}: only goods that shipped can be returned"
    )
    assert answer["error"]["details"] == {"reason": "not_shipped", "status": status}


@SQLITE_ONLY
def test_of_a_partly_shipped_order_only_what_shipped_comes_back(api: Api, carrier: int) -> None:
    _, order = api.post("/orders", ORDER)
    number = order["number"]
    body = {"carrier_account": carrier, "service": "standard"}
    status, _ = api.post(
        f"/orders/{number}/shipments", {**body, "lines": [{"sku": "SKU-A", "quantity": 1}]}
    )
    assert status == 201

    status, answer = ask_back(api, number, ("SKU-B", 1))
    assert status == 409, answer
    assert answer["error"]["message"] == f"line 1: no SKU-B of order {number} has shipped"

    status, answer = ask_back(api, number, ("SKU-A", 2))
    assert status == 422, answer
    assert answer["error"]["message"] == "line 1: SKU-A: 1 shipped, so 2 cannot come back"

    assert ask_back(api, number, ("SKU-A", 1))[0] == 201


@SQLITE_ONLY
def test_units_come_back_once_each_up_to_what_shipped(api: Api, carrier: int) -> None:
    number = delivered(api, carrier)  # 2 SKU-A shipped
    assert ask_back(api, number, ("SKU-A", 3))[0] == 422  # above what shipped
    first = made(api, number, ("SKU-A", 1))  # below
    status, answer = ask_back(api, number, ("SKU-A", 2))  # above what is left
    assert status == 409, answer
    assert answer["error"]["message"] == (
        f"line 1: SKU-A: 1 of the 2 shipped are on return {first['number']} already; at most 1"
        " more can be returned"
    )
    second = made(api, number, ("SKU-A", 1))  # on the bound
    status, answer = ask_back(api, number, ("SKU-A", 1))
    assert status == 409, answer
    assert f"on return {first['number']}, {second['number']} already" in answer["error"]["message"]


@SQLITE_ONLY
def test_a_cancelled_return_frees_its_units_and_a_closed_one_what_never_came(
    api: Api, carrier: int
) -> None:
    number = delivered(api, carrier)
    first = made(api, number, ("SKU-A", 2))
    assert api.post(f"/returns/{first['id']}/cancel", {})[0] == 200
    second = made(api, number, ("SKU-A", 2))
    assert receive(api, second, ("SKU-A", 1, "sellable"))[0] == 200
    assert api.post(f"/returns/{second['id']}/close", {"reason": "lost in the post"})[0] == 200

    assert ask_back(api, number, ("SKU-A", 2))[0] == 409
    third = made(api, number, ("SKU-A", 1))

    assert third["number"] == f"{number}-R3"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"lines": [{"sku": "SKU-C", "quantity": 1}]}, "line 1: SKU-C is not on order {n}"),
        (
            {"lines": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-A", "quantity": 1}]},
            "line 2: SKU-A is listed twice; give each SKU once",
        ),
        (
            {"replacement": [{"sku": "SKU-C", "quantity": 1}]},
            "replacement: only an exchange has replacement lines",
        ),
        (
            {"kind": "exchange", "replacement": [{"sku": "NOPE", "quantity": 1}]},
            "replacement line 1: NOPE is not a product for sale",
        ),
    ],
    ids=["not on the order", "twice", "replacement of a return", "unknown replacement"],
)
@SQLITE_ONLY
def test_a_return_that_makes_no_sense_is_refused_and_leaves_nothing(
    api: Api, carrier: int, body: dict[str, Any], message: str
) -> None:
    number = delivered(api, carrier)
    request = {"order": number, "reason": "x", "lines": [{"sku": "SKU-A", "quantity": 1}], **body}

    status, answer = api.post("/returns", request)

    assert status == 422, answer
    assert answer["error"]["message"] == message.format(n=number)
    assert api.get(f"/returns?order={number}")[1]["items"] == []
    assert api.get("/orders?channel=exchange")[1]["items"] == []


# --- 4. what a receipt may take ----------------------------------------------------------


@SQLITE_ONLY
def test_a_receipt_takes_no_more_than_was_asked_back(api: Api, carrier: int) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 2))

    status, answer = receive(api, ret, ("SKU-A", 2, "sellable"), ("SKU-A", 1, "damaged"))
    assert status == 422, answer
    assert answer["error"]["message"] == "line 2: SKU-A: 2 were asked back; 3 cannot come"
    status, answer = receive(api, ret, ("SKU-B", 1, "sellable"))
    assert status == 422, answer
    assert answer["error"]["message"] == f"line 1: SKU-B is not on return {ret['number']}"
    assert ledger(api, ret["number"]) == []

    assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200  # below
    status, answer = receive(api, ret, ("SKU-A", 2, "sellable"))  # above what is left
    assert status == 409, answer
    assert answer["error"]["message"] == (
        "line 1: SKU-A: 1 of the 2 asked back came already; at most 1 more can be received"
    )
    status, answer = receive(api, ret, ("SKU-A", 1, "sellable"))  # on the bound
    assert (status, answer["status"]) == (200, "received")
    assert ledger(api, ret["number"]) == [
        ("return", "SKU-A", "MAIN", 1, 0),
        ("return", "SKU-A", "MAIN", 1, 0),
    ]


@SQLITE_ONLY
def test_units_shipped_from_two_warehouses_go_back_to_each_no_more_than_it_sent(
    api: Api, carrier: int
) -> None:
    # 25 SKU-A: MAIN has 20, WEST 10, so 20 ship from MAIN and 5 from WEST
    big = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 25, "unit_price": "10.00"}]}
    ret = made(api, delivered(api, carrier, order=big), ("SKU-A", 25))

    assert receive(api, ret, ("SKU-A", 18, "sellable"))[0] == 200
    assert receive(api, ret, ("SKU-A", 7, "damaged"))[0] == 200

    assert ledger(api, ret["number"]) == [
        ("quarantine", "SKU-A", "QUARANTINE", 2, 0),
        ("quarantine", "SKU-A", "QUARANTINE", 5, 0),
        ("return", "SKU-A", "MAIN", 18, 0),
    ]
    _, ret = api.get(f"/returns/{ret['id']}")
    assert stock(api, "SKU-A") == {
        "MAIN": (18, 0, 18),
        "WEST": (5, 0, 5),
        "QUARANTINE": (7, 0, 0),
    }


# --- 5. refunds --------------------------------------------------------------------------


def received(
    api: Api, carrier: int, *lines: tuple[str, int], order: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A return of ``lines`` of a fresh delivered order, all of it received sellable."""
    ret = made(api, delivered(api, carrier, order=order), *lines)
    status, ret = receive(api, ret, *((s, q, "sellable") for s, q in lines))
    assert status == 200, ret
    return ret


@SQLITE_ONLY
def test_a_refund_is_never_more_than_what_came_back_is_worth(api: Api, carrier: int) -> None:
    ret = received(api, carrier, ("SKU-A", 2))  # 2 at 10.00

    status, answer = refund(api, ret, amount="20.01")  # above
    assert status == 422, answer
    assert answer["error"]["message"] == (
        f"amount: at most 20.00 can be refunded: what came back on {ret['number']} is worth 20.00"
    )
    assert answer["error"]["details"] == [
        {
            "field": "amount",
            "problem": f"at most 20.00 can be refunded: what came back on {ret['number']} is"
            " worth 20.00",
        }
    ]
    assert refund(api, ret, amount="0")[0] == 422
    assert refund(api, ret, amount="12.50")[1]["amount"] == "12.50"  # below
    status, answer = refund(api, ret, amount="7.51")
    assert status == 422, answer
    assert answer["error"]["message"].endswith("worth 20.00, 12.50 of it refunded already")
    status, rest = refund(api, ret)  # the default: what is left, on the bound
    assert (status, rest["amount"]) == (201, "7.50")
    status, answer = refund(api, ret)
    assert status == 409, answer
    assert answer["error"]["message"] == (
        f"nothing is left to refund on return {ret['number']}: what came back on"
        f" {ret['number']} is worth 20.00, 20.00 of it refunded already"
    )


@SQLITE_ONLY
def test_a_refund_is_never_more_than_the_order_was_paid(api: Api, carrier: int) -> None:
    # 2 at 10.00 + 25.50 less a 40.00 discount: 5.50 was paid
    cheap = {**ORDER, "discount_total": "40.00"}
    ret = received(api, carrier, ("SKU-A", 2), order=cheap)

    status, answer = refund(api, ret, amount="5.51")
    assert status == 422, answer
    assert answer["error"]["message"] == (
        f"amount: at most 5.50 can be refunded: order {ret['order']} totals 5.50 and 0.00 of"
        " it is refunded already"
    )
    status, all_of_it = refund(api, ret)
    assert (status, all_of_it["amount"]) == (201, "5.50")


@SQLITE_ONLY
def test_the_orders_shipping_is_refunded_once_and_only_when_asked(api: Api, carrier: int) -> None:
    shipped = {**ORDER, "shipping_total": "4.99"}
    number = delivered(api, carrier, order=shipped)
    first = made(api, number, ("SKU-A", 2))
    second = made(api, number, ("SKU-B", 1))
    assert receive(api, first, ("SKU-A", 2, "sellable"))[0] == 200
    assert receive(api, second, ("SKU-B", 1, "damaged"))[0] == 200

    status, with_shipping = refund(api, first, include_shipping=True)
    assert (status, with_shipping["amount"], with_shipping["shipping_included"]) == (
        201,
        "24.99",
        True,
    )
    status, answer = refund(api, second, include_shipping=True)
    assert status == 409, answer
    assert answer["error"]["message"] == (
        f"the shipping of order {number} was refunded already (refund {with_shipping['id']})"
    )
    status, without = refund(api, second)
    assert (status, without["amount"]) == (201, "25.50")

    plain = received(api, carrier, ("SKU-A", 1))
    status, answer = refund(api, plain, include_shipping=True)
    assert status == 422, answer
    assert answer["error"]["message"] == (
        f"include_shipping: order {plain['order']} charged no shipping"
    )


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("amount", "allowed"),
    [("19.99", True), ("20.00", True), ("20.01", False), (None, False)],
    ids=["below", "on", "above", "everything (25.50)"],
)
def test_the_service_role_refunds_up_to_the_tenants_limit(
    api: Api, carrier: int, amount: str | None, allowed: bool
) -> None:
    ret = received(api, carrier, ("SKU-B", 1))  # 25.50
    body = {} if amount is None else {"amount": amount}

    status, answer = refund(api, ret, token=api.tokens["service"], **body)

    if allowed:
        assert (status, answer["amount"], answer["created_by"]) == (201, amount, "service")
        return
    assert status == 403, answer
    shown = amount or "25.50"
    assert answer["error"]["message"] == (
        f"a refund of {shown} is above what the service role may grant; an operator or admin"
        " must grant it"
    )
    assert "20.00" not in answer["error"]["message"]  # a setting's value is never shown
    assert status_of(api, ret) == "received"
    status, answer = refund(api, ret, token=api.tokens["operator"], **body)
    assert (status, answer["amount"]) == (201, shown)


@SQLITE_ONLY
def test_without_a_limit_the_service_role_refunds_nothing(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    # 'other' has no tenant file: its service staff have no refund limit set
    sue = seed_people(runtime, {"sue": "service"}, slug="other")["sue"]
    admin = api.tokens["stranger"]
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "other-post", "settings": {}}, token=admin
    )
    assert status == 201, account
    number = delivered(api, account["id"], token=admin)
    status, ret = ask_back(api, number, ("SKU-A", 1), token=sue)
    assert status == 201, ret
    assert receive(api, ret, ("SKU-A", 1, "sellable"), token=sue)[0] == 200

    status, answer = refund(api, ret, token=sue, amount="0.01")

    assert status == 403, answer
    assert refund(api, ret, token=admin, amount="0.01")[0] == 201


# --- 6. the quarantine -------------------------------------------------------------------


@SQLITE_ONLY
def test_quarantined_goods_are_never_reserved_nor_counted_available(api: Api, carrier: int) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 2))
    assert receive(api, ret, ("SKU-A", 2, "damaged"))[0] == 200
    assert stock(api, "SKU-A") == {
        "MAIN": (18, 0, 18),
        "WEST": (10, 0, 10),
        "QUARANTINE": (2, 0, 0),
    }

    # An order for every sellable unit and one more waits: the quarantine's two are not sold
    status, order = api.post(
        "/orders", {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 29, "unit_price": "1.00"}]}
    )
    assert status == 201, order
    assert (order["status"], order["type"]) == ("held", "backorder")
    assert api.get(f"/orders/{order['number']}")[1]["allocations"] == []
    status, order = api.post(
        "/orders", {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 24, "unit_price": "1.00"}]}
    )
    assert status == 201, order
    assert {a["warehouse"] for a in api.get(f"/orders/{order['number']}")[1]["allocations"]} == {
        "MAIN",
        "WEST",
    }
    # SKU-A's threshold is 5: 4 are left to sell, so it is low, whatever the quarantine holds
    assert [(a["sku"], a["available"]) for a in api.get("/stock/alerts")[1]["items"]] == [
        ("SKU-A", 4)
    ]


@SQLITE_ONLY
def test_the_quarantine_cannot_be_made_a_warehouse_to_sell_from(api: Api, carrier: int) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 1))
    assert receive(api, ret, ("SKU-A", 1, "damaged"))[0] == 200

    status, answer = api.patch("/warehouses/QUARANTINE", {"active": True})

    assert status == 409, answer
    assert answer["error"]["message"].startswith(
        "warehouse 'QUARANTINE' holds returned goods in quarantine: it is never active"
    )
    assert api.get("/warehouses/QUARANTINE")[1]["active"] is False
    # Anything else about it may change
    assert api.patch("/warehouses/QUARANTINE", {"name": "Bay 9"})[0] == 200


@SQLITE_ONLY
def test_damaged_goods_never_go_to_a_sellable_warehouse_of_the_quarantines_name(
    api: Api, carrier: int
) -> None:
    assert api.post("/warehouses", {"code": "QUARANTINE", "name": "Shop floor"})[0] == 201
    ret = made(api, delivered(api, carrier), ("SKU-A", 1))

    status, answer = receive(api, ret, ("SKU-A", 1, "damaged"))

    assert status == 409, answer
    assert "is a warehouse of sellable stock" in answer["error"]["message"]
    assert "QUARANTINE" not in answer["error"]["message"]
    assert ledger(api, ret["number"]) == []
    assert status_of(api, ret) == "authorised"


# --- 7. one at a time --------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("action", ["create", "receive", "refund"])
def test_returns_and_refunds_wait_for_the_orders_row(
    api: Api, runtime: Runtime, carrier: int, action: str
) -> None:
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1))
    if action == "refund":
        assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200
    perform = {
        "create": lambda: ask_back(api, number, ("SKU-A", 1)),
        "receive": lambda: receive(api, ret, ("SKU-A", 1, "damaged")),
        "refund": lambda: refund(api, ret),
    }[action]
    with runtime.engine.connect() as other:
        other.execute(text("SELECT id FROM orders WHERE number = :n FOR UPDATE"), {"n": number})
        waited, worker, answer = waits_for_a_lock(runtime.engine, perform)
        other.commit()  # let it go
        worker.join(timeout=60)
    assert waited, f"{action} went ahead without waiting for the order's row lock"
    assert answer and answer[0][0] in (200, 201), answer
