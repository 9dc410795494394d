"""Returns, exchanges and refunds as a customer-service team uses them: a return of part of a
delivered order comes back (sellable units on hand again, damaged ones in quarantine, every
unit in the stock ledger) and is refunded; an exchange makes a replacement order that reserves
its stock; the same units cannot come back twice; refunds reach the sales channel once, and
the service role refunds only up to its limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ORDER, Api
from sqlalchemy import select

from hub import hookimpl
from hub.core.adapters import StubCarrier, StubChannel
from hub.core.models import AuditEntry, Event
from hub.runtime import Runtime


class StubPlugins:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]

    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


@pytest.fixture
def carrier(api: Api, runtime: Runtime) -> int:
    """acme's carrier account: the Stub carrier."""
    runtime.plugins.register(StubPlugins, "stub-plugins")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}
    )
    assert status == 201, account
    return account["id"]


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def delivered(
    api: Api, carrier: int, *, days: float | None = 1, order: dict[str, Any] | None = None
) -> str:
    """A new acme order, shipped with the Stub carrier and delivered ``days`` ago (None:
    shipped, not delivered yet). Its number."""
    status, made = api.post("/orders", order or ORDER)
    assert status == 201, made
    status, shipment = api.post(
        f"/orders/{made['number']}/shipments", {"carrier_account": carrier, "service": "standard"}
    )
    assert status == 201, shipment
    if days is not None:
        status, answer = api.post(
            f"/shipments/{shipment['id']}/events", {"status": "delivered", "at": days_ago(days)}
        )
        assert status == 201, answer
    return made["number"]


def day(offset: int) -> str:
    """Today (UTC) plus ``offset`` days, as the API writes a day."""
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def ask_back(api: Api, number: str, *lines: tuple[str, int], **more: Any) -> tuple[int, Any]:
    body = {"order": number, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    return api.post("/returns", {"reason": "too small", **body, **more})


def made(api: Api, number: str, *lines: tuple[str, int], **more: Any) -> dict[str, Any]:
    status, ret = ask_back(api, number, *lines, **more)
    assert status == 201, ret
    return ret


def receive(api: Api, ret: dict[str, Any], *lines: tuple[str, int, str]) -> tuple[int, Any]:
    return api.post(
        f"/returns/{ret['id']}/receive",
        {"lines": [{"sku": s, "quantity": q, "condition": c} for s, q, c in lines]},
    )


def stock(api: Api, sku: str) -> dict[str, tuple[int, int, int]]:
    """Warehouse → (on hand, reserved, available) of a SKU."""
    status, found = api.get(f"/stock?sku={sku}")
    assert status == 200, found
    return {i["warehouse"]: (i["on_hand"], i["reserved"], i["available"]) for i in found["items"]}


def ledger(api: Api, reference: str) -> list[tuple[str, str, str, int, int]]:
    status, rows = api.get(f"/stock/ledger?reference={reference}&per_page=100")
    assert status == 200, rows
    return sorted(
        (r["kind"], r["sku"], r["warehouse"], r["on_hand_delta"], r["reserved_delta"])
        for r in rows["items"]
    )


def named(runtime: Runtime, *names: str) -> list[tuple[str, dict[str, Any]]]:
    with runtime.session() as session:
        return [
            (e.name, e.payload)
            for e in session.scalars(select(Event).where(Event.name.in_(names)).order_by(Event.id))
        ]


def audited(runtime: Runtime, entity_id: str) -> list[str]:
    with runtime.session() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_type == "return", AuditEntry.entity_id == entity_id)
                .order_by(AuditEntry.id)
            )
        )


# --- the story -------------------------------------------------------------------------------


def test_a_return_of_one_line_comes_back_into_stock_and_quarantine_and_is_refunded(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    # Given a delivered order of 2 SKU-A at 10.00 and 1 SKU-B at 25.50, shipped from MAIN
    number = delivered(api, carrier, days=3)
    assert stock(api, "SKU-A")["MAIN"] == (18, 0, 18)

    # When the customer sends back the SKU-A line
    status, ret = ask_back(api, number, ("SKU-A", 2), reason="wrong colour")

    # Then it is authorised, and the order shows nothing has come back yet
    assert status == 201, ret
    assert (ret["number"], ret["status"], ret["kind"], ret["order"]) == (
        f"{number}-R1",
        "authorised",
        "return",
        number,
    )
    assert ret["lines"] == [
        {
            "sku": "SKU-A",
            "quantity": 2,
            "received_sellable": 0,
            "received_damaged": 0,
            "outstanding": 2,
            "unit_price": "10.00",
        }
    ]
    assert ret["window_ends_on"] == day(27)  # delivered 3 days ago, 30 days to send it back
    order = api.get(f"/orders/{number}")[1]
    assert (order["status"], order["returned"]) == ("delivered", "none")

    # When one unit comes back sellable and one damaged
    status, ret = receive(api, ret, ("SKU-A", 1, "sellable"), ("SKU-A", 1, "damaged"))

    # Then the ledger shows exactly those two units: one on hand at MAIN, one in quarantine
    assert status == 200, ret
    assert ret["status"] == "received"
    assert ledger(api, ret["number"]) == [
        ("quarantine", "SKU-A", "QUARANTINE", 1, 0),
        ("return", "SKU-A", "MAIN", 1, 0),
    ]
    assert stock(api, "SKU-A") == {
        "MAIN": (19, 0, 19),
        "WEST": (10, 0, 10),
        "QUARANTINE": (1, 0, 0),  # on hand, never available
    }
    assert [(r["sku"], r["quantity"], r["condition"], r["warehouse"]) for r in ret["receipts"]] == [
        ("SKU-A", 1, "sellable", "MAIN"),
        ("SKU-A", 1, "damaged", "QUARANTINE"),
    ]
    status, quarantine = api.get("/warehouses/QUARANTINE")
    assert (quarantine["kind"], quarantine["active"]) == ("quarantine", False)

    # When it is refunded in full
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})

    # Then the refund is the two units' value; an order from no channel is refunded by hand
    assert status == 201, refund
    assert (refund["amount"], refund["currency"], refund["status"]) == ("20.00", "USD", "manual")
    assert refund["lines"] == [{"sku": "SKU-A", "quantity": 2}]
    assert refund["return_status"] == "refunded"
    _, ret = api.get(f"/returns/{ret['id']}")
    assert (ret["status"], ret["refunded"], ret["value_received"]) == (
        "refunded",
        "20.00",
        "20.00",
    )
    order = api.get(f"/orders/{number}")[1]
    assert (order["status"], order["returned"]) == ("delivered", "partial")
    assert order["returns"] == [
        {"id": ret["id"], "number": ret["number"], "kind": "return", "status": "refunded"}
    ]

    # And every step is audited and announced
    assert audited(runtime, ret["number"]) == ["return.create", "return.receive", "return.refund"]
    assert [name for name, _ in named(runtime, "return_created", "return_received",
                                      "refund_created")] == [
        "return_created",
        "return_received",
        "refund_created",
    ]
    history = [h["action"] for h in api.get(f"/orders/{number}/history")[1]["items"]]
    assert history[-3:] == ["return_authorised", "return_received", "refund_granted"]
