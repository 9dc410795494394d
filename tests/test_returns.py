"""Returns, exchanges and refunds as a customer-service team uses them: a return of part of a
delivered order comes back (sellable units on hand again, damaged ones in quarantine, every
unit in the stock ledger) and is refunded; an exchange makes a replacement order that reserves
its stock; the same units cannot come back twice; refunds reach the sales channel once, and
the service role refunds only up to its limit."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import ORDER, Api
from sqlalchemy import select

from hub import hookimpl
from hub.core import refunds
from hub.core.adapters import (
    ChannelRefund,
    RefundedLine,
    ShipmentRequest,
    StubCarrier,
    StubChannel,
    Waybill,
)
from hub.core.http import BusinessError, Timeout
from hub.core.models import AuditEntry, Event
from hub.runtime import Runtime
from hub.settings import ConfigError, load
from hub.worker import actors
from plugins.carriers.table_rate import EXAMPLE_SETTINGS

SECRET = "returns-shop-secret"


class FlakyShop(StubChannel):
    """The Stub channel answering refunds as told by ``answers``, one per call: "timeout"
    (it made the refund, but the answer never came), "refuse", then "ok" once they run out."""

    name = "flaky-shop"
    answers: ClassVar[list[str]] = []

    def push_refund(self, external_id: str, refund: ChannelRefund) -> str | None:
        outcome = self.answers.pop(0) if self.answers else "ok"
        if outcome == "refuse":
            raise BusinessError("the shop refused the refund: the order is archived")
        made = super().push_refund(external_id, refund)
        if outcome == "timeout":
            raise Timeout("the shop did not answer in time")
        return made


class CountingShop(StubChannel):
    """A channel that takes orders but no refunds."""

    name = "counting-shop"
    capabilities = frozenset({"push"})


class StubPlugins:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]

    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel, FlakyShop, CountingShop]


@pytest.fixture(autouse=True)
def _fresh_channel_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StubChannel, "refunds", {})
    monkeypatch.setattr(FlakyShop, "answers", [])


def stub_account(api: Api, runtime: Runtime) -> int:
    """acme's carrier account on the Stub carrier (with the Stub channels installed too)."""
    runtime.plugins.register(StubPlugins, "stub-plugins")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}
    )
    assert status == 201, account
    return account["id"]


@pytest.fixture
def carrier(api: Api, runtime: Runtime) -> int:
    return stub_account(api, runtime)


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def delivered(
    api: Api,
    carrier: int,
    *,
    days: float | None = 1,
    order: dict[str, Any] | None = None,
    token: str | None = None,
) -> str:
    """A new order (of acme, or of the token's tenant), shipped with the Stub carrier and
    delivered ``days`` ago (None: shipped, not delivered yet). Its number."""
    status, made = api.post("/orders", order or ORDER, token=token)
    assert status == 201, made
    status, shipment = api.post(
        f"/orders/{made['number']}/shipments",
        {"carrier_account": carrier, "service": "standard"},
        token=token,
    )
    assert status == 201, shipment
    if days is not None:
        status, answer = api.post(
            f"/shipments/{shipment['id']}/events",
            {"status": "delivered", "at": days_ago(days)},
            token=token,
        )
        assert status == 201, answer
    return made["number"]


def day(offset: int) -> str:
    """Today (UTC) plus ``offset`` days, as the API writes a day."""
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


def channel_order(api: Api, runtime: Runtime, carrier: int, plugin: str = "stub") -> str:
    """An order of 2 SKU-A at 10.00 that came in from a shop on ``plugin`` (its id "5001"),
    shipped and delivered yesterday. Its number."""
    status, connection = api.post(
        "/connections", {"plugin": plugin, "name": "web-shop", "settings": {"secret": SECRET}}
    )
    assert status == 201, connection
    body = json.dumps(
        {
            "id": "5001",
            "updated_at": "2026-11-01T10:00:00+00:00",
            "name": "Ann Lee",
            "country": "US",
            "lines": [{"sku": "SKU-A", "quantity": 2, "unit_price": "10.00"}],
        }
    ).encode()
    response = api.client.post(
        f"/hooks/acme/{connection['id']}",
        data=body,
        headers={
            "X-Stub-Signature": hmac.new(SECRET.encode(), body, "sha256").hexdigest(),
            "X-Stub-Delivery": "d-5001",
        },
    )
    assert response.status_code == 200
    [entry] = api.get("/inbox")[1]["items"]
    actors.ingest(runtime, entry["id"])
    if runtime.jobs.worker is not None:
        # The worker got the delivery's job too: when it holds the entry, the call above
        # leaves it to it; wait for its ingest to end.
        runtime.jobs.join()
    [order] = api.get(f"/orders?channel={plugin}")[1]["items"]
    status, shipment = api.post(
        f"/orders/{order['number']}/shipments", {"carrier_account": carrier, "service": "standard"}
    )
    assert status == 201, shipment
    status, _ = api.post(
        f"/shipments/{shipment['id']}/events", {"status": "delivered", "at": days_ago(1)}
    )
    assert status == 201
    return order["number"]


def returned(api: Api, number: str) -> dict[str, Any]:
    """Both SKU-A of the order asked back and received sellable."""
    ret = made(api, number, ("SKU-A", 2))
    status, ret = receive(api, ret, ("SKU-A", 2, "sellable"))
    assert status == 200, ret
    return ret


def refund_of(api: Api, ret: dict[str, Any]) -> dict[str, Any]:
    [refund] = api.get(f"/returns/{ret['id']}")[1]["refunds"]
    return refund


def ask_back(
    api: Api, number: str, *lines: tuple[str, int], token: str | None = None, **more: Any
) -> tuple[int, Any]:
    body = {"order": number, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    return api.post("/returns", {"reason": "too small", **body, **more}, token=token)


def made(api: Api, number: str, *lines: tuple[str, int], **more: Any) -> dict[str, Any]:
    status, ret = ask_back(api, number, *lines, **more)
    assert status == 201, ret
    return ret


def receive(
    api: Api, ret: dict[str, Any], *lines: tuple[str, int, str], token: str | None = None
) -> tuple[int, Any]:
    return api.post(
        f"/returns/{ret['id']}/receive",
        {"lines": [{"sku": s, "quantity": q, "condition": c} for s, q, c in lines]},
        token=token,
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
    assert [
        name for name, _ in named(runtime, "return_created", "return_received", "refund_created")
    ] == [
        "return_created",
        "return_received",
        "refund_created",
    ]
    history = [h["action"] for h in api.get(f"/orders/{number}/history")[1]["items"]]
    assert history[-3:] == ["return_authorised", "return_received", "refund_granted"]


# --- the tenant's settings ------------------------------------------------------------------


def test_the_service_settings_are_read_with_their_defaults(config_dir: Path) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        '[service]\nreturn_window_days = 14\nrefund_limit = "75.50"\n'
        'quarantine_warehouse = "Q-BAY"\n'
    )
    settings = load({"config_dir": config_dir}, env={"ORDERHUB_SECRET_KEY": "k"})
    acme, other = settings.tenant("acme").service, settings.tenant("other").service
    assert (acme.return_window_days, acme.refund_limit, acme.quarantine_warehouse) == (
        14,
        Decimal("75.50"),
        "Q-BAY",
    )
    assert (other.return_window_days, other.refund_limit, other.quarantine_warehouse) == (
        30,
        Decimal(0),
        "QUARANTINE",
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('refund_limit = "lots"', "service.refund_limit"),
        ("refund_limit = 20.5", "service.refund_limit"),
        ("return_window_days = -1", "service.return_window_days"),
        ('quarantine_warehouse = "no spaces"', "service.quarantine_warehouse"),
        ("window = 30", "service"),
    ],
)
def test_bad_service_settings_stop_the_hub_naming_the_key(
    config_dir: Path, text: str, key: str
) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(f"[service]\n{text}\n")
    with pytest.raises(ConfigError) as caught:
        load({"config_dir": config_dir}, env={"ORDERHUB_SECRET_KEY": "k"})
    assert caught.value.key == key
    assert "lots" not in str(caught.value)  # the rule, never the value


# --- the window ------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [30, 31, None], ids=["last day", "a day late", "in transit"])
def test_returns_are_taken_until_thirty_days_after_delivery(
    api: Api, carrier: int, days: int | None
) -> None:
    number = delivered(api, carrier, days=days)

    status, answer = ask_back(api, number, ("SKU-A", 1))

    if days is None:  # not delivered yet: the window has not started
        assert (status, answer["window_ends_on"]) == (201, None)
    elif days == 30:
        assert (status, answer["window_ends_on"]) == (201, day(0))
    else:
        assert status == 409, answer
        assert answer["error"] == {
            "code": "conflict",
            "message": f"the return window of order {number} has ended: delivered on"
            f" {day(-31)}, returns are taken for 30 days (until {day(-1)})",
            "details": {"reason": "return_period_ended", "delivered_on": day(-31)},
        }


# --- exchanges -------------------------------------------------------------------------------


def test_an_exchange_makes_a_replacement_order_that_reserves_its_stock(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = delivered(api, carrier)
    before = stock(api, "SKU-C")

    # When the customer exchanges one SKU-A for a SKU-C
    ret = made(
        api,
        number,
        ("SKU-A", 1),
        kind="exchange",
        replacement=[{"sku": "SKU-C", "quantity": 1}],
        reason="wants the other model",
    )

    # Then a replacement order, linked to the original, reserves the SKU-C the normal way
    assert (ret["kind"], ret["status"]) == ("exchange", "authorised")
    replacement = api.get(f"/orders/{ret['replacement_order']}")[1]
    assert (replacement["status"], replacement["channel"], replacement["parent_number"]) == (
        "confirmed",
        "exchange",
        number,
    )
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in replacement["lines"]] == [
        ("SKU-C", 1, "0.00")
    ]
    assert replacement["total"] == "0.00"
    assert replacement["customer"]["email"] == "ann@example.com"
    assert replacement["consignee"]["address"]["city"] == "Newark"
    assert replacement["allocations"] == [{"warehouse": "MAIN", "sku": "SKU-C", "quantity": 1}]
    assert ledger(api, replacement["number"]) == [("reserve", "SKU-C", "MAIN", 0, 1)]
    on_hand, reserved, available = before["MAIN"]
    assert stock(api, "SKU-C")["MAIN"] == (on_hand, reserved + 1, available - 1)
    history = api.get(f"/orders/{number}/history")[1]["items"]
    assert [h["reason"] for h in history if h["action"] == "exchange_replacement"] == [
        f"{ret['number']}: replaced by {replacement['number']}"
    ]

    # And the exchange is settled by that order: no refund while it stands
    status, _ = receive(api, ret, ("SKU-A", 1, "sellable"))
    assert status == 200
    status, refused = api.post(f"/returns/{ret['id']}/refund", {})
    assert status == 409, refused
    assert refused["error"]["message"] == (
        f"exchange {ret['number']} is settled by its replacement order"
        f" {replacement['number']}; cancel that order first to refund instead"
    )
    # ... unless the replacement cannot be sent after all
    assert api.post(f"/orders/{replacement['number']}/cancel", {"reason": "none left"})[0] == 200
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert (status, refund["amount"]) == (201, "10.00")


def test_an_exchange_replaces_the_same_goods_by_default_and_waits_for_stock_like_any_order(
    api: Api, carrier: int
) -> None:
    number = delivered(api, carrier)
    # Nothing of SKU-B is left to reserve
    status, _ = api.post(
        "/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-B", "quantity": 9}]}
    )
    assert status == 200

    ret = made(api, number, ("SKU-B", 1), kind="exchange")

    replacement = api.get(f"/orders/{ret['replacement_order']}")[1]
    assert [(x["sku"], x["quantity"]) for x in replacement["lines"]] == [("SKU-B", 1)]
    assert (replacement["status"], replacement["type"]) == ("held", "backorder")
    assert replacement["allocations"] == []


def test_cancelling_an_exchange_cancels_its_replacement_and_frees_its_stock(
    api: Api, carrier: int
) -> None:
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 2), kind="exchange")
    replacement = ret["replacement_order"]
    assert stock(api, "SKU-A")["MAIN"] == (18, 2, 16)

    status, cancelled = api.post(f"/returns/{ret['id']}/cancel", {"reason": "kept them"})

    assert status == 200, cancelled
    assert (cancelled["status"], cancelled["note"]) == ("cancelled", "kept them")
    assert api.get(f"/orders/{replacement}")[1]["status"] == "cancelled"
    assert stock(api, "SKU-A")["MAIN"] == (18, 0, 18)
    # The units are free to come back on another return
    assert ask_back(api, number, ("SKU-A", 2))[0] == 201


def test_an_exchange_whose_replacement_shipped_cannot_be_cancelled(api: Api, carrier: int) -> None:
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1), kind="exchange")
    status, _ = api.post(
        f"/orders/{ret['replacement_order']}/shipments",
        {"carrier_account": carrier, "service": "standard"},
    )
    assert status == 201

    status, refused = api.post(f"/returns/{ret['id']}/cancel", {})

    assert status == 409, refused
    assert refused["error"]["message"] == (
        f"cannot cancel exchange {ret['number']}: its replacement order"
        f" {ret['replacement_order']} is shipped"
    )
    assert api.get(f"/returns/{ret['id']}")[1]["status"] == "authorised"


# --- the same units twice ------------------------------------------------------------------


def test_a_second_return_of_the_same_units_is_refused_naming_the_sku(
    api: Api, carrier: int
) -> None:
    number = delivered(api, carrier)
    first = made(api, number, ("SKU-A", 2))

    status, refused = ask_back(api, number, ("SKU-B", 1), ("SKU-A", 1))

    assert status == 409, refused
    assert refused["error"]["message"] == (
        f"line 2: SKU-A: 2 of the 2 shipped are on return {first['number']} already; at most 0"
        " more can be returned"
    )
    assert refused["error"]["details"] == [
        {
            "field": "line 2",
            "problem": f"SKU-A: 2 of the 2 shipped are on return {first['number']} already;"
            " at most 0 more can be returned",
            "line": 2,
            "sku": "SKU-A",
            "reason": "already_returned",
        }
    ]
    # Nothing was made of the refused request, not even its SKU-B line
    assert [r["number"] for r in api.get(f"/returns?order={number}")[1]["items"]] == [
        first["number"]
    ]


def test_the_whole_order_back_shows_as_fully_returned(api: Api, carrier: int) -> None:
    number = delivered(api, carrier)
    a = made(api, number, ("SKU-A", 2))
    b = made(api, number, ("SKU-B", 1))
    assert b["number"] == f"{number}-R2"
    assert receive(api, a, ("SKU-A", 2, "sellable"))[0] == 200
    assert api.get(f"/orders/{number}")[1]["returned"] == "partial"

    assert receive(api, b, ("SKU-B", 1, "damaged"))[0] == 200

    order = api.get(f"/orders/{number}")[1]
    assert (order["status"], order["returned"]) == ("delivered", "full")


# --- finding returns, and strangers ----------------------------------------------------------


def test_returns_are_listed_by_status_and_order(api: Api, carrier: int) -> None:
    first, second = delivered(api, carrier), delivered(api, carrier)
    a = made(api, first, ("SKU-A", 1))
    b = made(api, second, ("SKU-B", 1))
    assert receive(api, b, ("SKU-B", 1, "sellable"))[0] == 200

    def numbers(query: str) -> list[str]:
        status, found = api.get(f"/returns{query}")
        assert status == 200, found
        return [r["number"] for r in found["items"]]

    assert numbers("") == [b["number"], a["number"]]  # newest first
    assert numbers("?status=authorised") == [a["number"]]
    assert numbers("?status=received,authorised") == [b["number"], a["number"]]
    assert numbers(f"?order={second}") == [b["number"]]
    assert numbers("?order=SO-999999") == []
    status, refused = api.get("/returns?status=lost")
    assert status == 400, refused


def test_another_tenants_return_is_not_found(api: Api, carrier: int) -> None:
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1))
    stranger = api.tokens["stranger"]
    path = f"/returns/{ret['id']}"

    assert api.get(path, token=stranger)[0] == 404
    for action, body in (
        ("receive", {"lines": [{"sku": "SKU-A", "quantity": 1, "condition": "sellable"}]}),
        ("refund", {}),
        ("cancel", {}),
        ("close", {}),
    ):
        status, answer = api.post(f"{path}/{action}", body, token=stranger)
        assert status == 404, (action, answer)
        assert answer["error"]["message"] == f"no return {ret['id']}"
    assert api.get("/returns", token=stranger)[1]["items"] == []
    # Nor can the stranger make a return of acme's order
    status, answer = ask_back(api, number, ("SKU-A", 1), token=stranger)
    assert status == 404, answer
    assert api.get(path)[1]["status"] == "authorised"


# --- refunds reach the sales channel ---------------------------------------------------------


def test_a_refund_is_made_by_the_sales_channel_the_order_came_from(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = channel_order(api, runtime, carrier)
    ret = returned(api, number)

    status, refund = api.post(f"/returns/{ret['id']}/refund", {"reason": "faulty"})
    assert status == 201, refund
    assert (refund["status"], refund["external_id"]) == ("pending", None)
    runtime.jobs.start_worker(2, sweep=False)
    runtime.jobs.join()

    refund = refund_of(api, ret)
    assert (refund["status"], refund["external_id"], refund["error"]) == (
        "succeeded",
        "stub-refund-1",
        None,
    )
    assert StubChannel.refunds == {
        f"orderhub-refund-{refund['id']}": (
            "5001",
            ChannelRefund(
                key=f"orderhub-refund-{refund['id']}",
                amount=Decimal("20.0000"),
                currency="USD",
                reason="faulty",
                lines=(RefundedLine("SKU-A", 2),),
            ),
        )
    }
    [(_, settled)] = named(runtime, "refund_settled")
    assert (settled["status"], settled["amount"]) == ("succeeded", "20.00")
    history = api.get(f"/orders/{number}/history")[1]["items"]
    assert history[-1]["reason"] == (
        f"refund {refund['id']} of 20.00 USD: made by the sales channel"
    )


def test_a_refund_whose_job_was_lost_is_pushed_by_the_sweeper(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = channel_order(api, runtime, carrier)
    ret = returned(api, number)
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert status == 201, refund
    runtime.jobs.broker.flush_all()  # the job is lost before any worker ran it

    assert actors.sweep(runtime, older_than=timedelta(0)) >= 1
    runtime.jobs.start_worker(2, sweep=False)
    runtime.jobs.join()

    assert refund_of(api, ret)["status"] == "succeeded"
    assert list(StubChannel.refunds) == [f"orderhub-refund-{refund['id']}"]
    with runtime.session() as session:  # nothing is left to push
        assert refunds.unpushed(session, datetime.now(UTC)) == []


def test_a_refund_retried_after_a_timeout_is_made_once(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = channel_order(api, runtime, carrier, plugin="flaky-shop")
    ret = returned(api, number)
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert status == 201, refund
    FlakyShop.answers = ["timeout"]

    # The shop made the refund but its answer was lost: the job fails, to be retried
    with pytest.raises(Timeout):
        refunds.push(runtime, refund["id"])
    waiting = refund_of(api, ret)
    assert (waiting["status"], waiting["error"]) == ("pending", "the shop did not answer in time")

    # The retry sends the same key: the shop still has one refund
    assert refunds.push(runtime, refund["id"]) == "pushed"
    assert list(FlakyShop.refunds) == [f"orderhub-refund-{refund['id']}"]
    assert refund_of(api, ret)["status"] == "succeeded"
    assert refunds.push(runtime, refund["id"]) == "skipped: not waiting to be pushed"


def test_a_refund_the_channel_refuses_fails_and_stops_counting(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = channel_order(api, runtime, carrier, plugin="flaky-shop")
    ret = returned(api, number)
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert status == 201, refund
    FlakyShop.answers = ["refuse"]

    assert refunds.push(runtime, refund["id"]).startswith("failed: ")

    ret = api.get(f"/returns/{ret['id']}")[1]
    [failed] = ret["refunds"]
    assert (failed["status"], failed["error"]) == (
        "failed",
        "the shop refused the refund: the order is archived",
    )
    # Back to waiting for a refund, and the whole amount may be granted again
    assert (ret["status"], ret["refunded"]) == ("received", "0.00")
    status, again = api.post(f"/returns/{ret['id']}/refund", {})
    assert (status, again["amount"], again["status"]) == (201, "20.00", "pending")


def test_a_channel_that_takes_no_refunds_leaves_them_to_be_made_by_hand(
    api: Api, runtime: Runtime, carrier: int
) -> None:
    number = channel_order(api, runtime, carrier, plugin="counting-shop")
    ret = returned(api, number)

    status, refund = api.post(f"/returns/{ret['id']}/refund", {"amount": "15.00"})

    assert status == 201, refund
    assert (refund["amount"], refund["status"]) == ("15.00", "manual")
    [(_, created)] = named(runtime, "refund_created")
    assert created["status"] == "manual"


# --- return labels ---------------------------------------------------------------------------


@pytest.fixture
def label_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ShipmentRequest, str]]:
    """What the Stub carrier was asked for return labels."""
    asked: list[tuple[ShipmentRequest, str]] = []
    issue = StubCarrier.create_return_label

    def recording(self: StubCarrier, request: ShipmentRequest, service: str) -> Waybill:
        asked.append((request, service))
        return issue(self, request, service)

    monkeypatch.setattr(StubCarrier, "create_return_label", recording)
    return asked


def test_the_carrier_that_delivered_issues_the_return_label_once(
    api: Api, carrier: int, label_requests: list[tuple[ShipmentRequest, str]]
) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 2))

    status, labelled = api.post(f"/returns/{ret['id']}/label", {})

    assert status == 201, labelled
    label = labelled["label"]
    assert label["tracking_number"].startswith("STUBRET")
    assert (label["status"], label["carrier"], label["carrier_account"], label["service"]) == (
        "issued",
        "stub",
        "stub-post",
        "standard",
    )
    assert label["url"].startswith("stub://return-label/")
    [(request, service)] = label_requests
    # From the customer back to the warehouse the goods left, for what is still to come
    assert (request.origin.name, request.origin.city) == ("Ann Lee", "Newark")
    assert (request.destination.name, request.reference, service) == (
        "Main",
        ret["number"],
        "standard",
    )
    assert request.parcels[0].weight_kg == Decimal("1.0")  # 2 units of unknown weight
    status, again = api.post(f"/returns/{ret['id']}/label", {})
    assert status == 409, again
    assert again["error"]["message"] == (
        f"return {ret['number']} has a label already: {label['tracking_number']}"
    )
    assert len(label_requests) == 1


def test_a_carrier_that_cannot_issue_return_labels_is_refused_before_it_is_asked(
    api: Api, carrier: int
) -> None:
    status, courier = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "courier", "settings": EXAMPLE_SETTINGS},
    )
    assert status == 201, courier
    ret = made(api, delivered(api, carrier), ("SKU-A", 1))

    status, answer = api.post(
        f"/returns/{ret['id']}/label", {"carrier_account": courier["id"], "service": "ground"}
    )

    assert status == 409, answer
    assert answer["error"]["message"] == (
        "carrier account 'courier' (table_rate) cannot issue return labels; name another"
        " carrier_account, or send the customer your own label"
    )
    assert api.get(f"/returns/{ret['id']}")[1]["label"] is None


def test_a_refused_return_label_can_be_asked_for_again(
    api: Api, carrier: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 1))

    def refuse(self: StubCarrier, request: ShipmentRequest, service: str) -> Waybill:
        raise BusinessError("no returns from this postcode")

    with monkeypatch.context() as patch:
        patch.setattr(StubCarrier, "create_return_label", refuse)
        status, answer = api.post(f"/returns/{ret['id']}/label", {})
    assert status == 422, answer
    assert answer["error"]["code"] == "carrier_refused"
    assert answer["error"]["message"] == (
        "carrier account 'stub-post' (stub) refused to issue the return label: no returns from"
        " this postcode"
    )
    assert api.get(f"/returns/{ret['id']}")[1]["label"] is None

    status, labelled = api.post(f"/returns/{ret['id']}/label", {})
    assert (status, labelled["label"]["status"]) == (201, "issued")


def test_a_return_with_nothing_left_to_come_needs_no_label(api: Api, carrier: int) -> None:
    ret = made(api, delivered(api, carrier), ("SKU-A", 1))
    assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200

    status, answer = api.post(f"/returns/{ret['id']}/label", {})

    assert status == 409, answer
    assert answer["error"]["message"] == (
        f"return {ret['number']} expects no more goods: it needs no label"
    )


# --- every hook is called --------------------------------------------------------------------


class Recorder:
    """Records the returns' event hooks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def return_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("return_created", tenant, payload))

    @hookimpl
    def return_received(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("return_received", tenant, payload))

    @hookimpl
    def return_label_issued(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("return_label_issued", tenant, payload))

    @hookimpl
    def return_cancelled(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("return_cancelled", tenant, payload))

    @hookimpl
    def return_closed(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("return_closed", tenant, payload))

    @hookimpl
    def refund_created(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("refund_created", tenant, payload))

    @hookimpl
    def refund_settled(self, tenant: str, payload: dict[str, Any]) -> None:
        self.calls.append(("refund_settled", tenant, payload))

    def hooks(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(tenant, payload) for hook, tenant, payload in self.calls if hook == name]


@pytest.fixture
def recorder(runtime: Runtime, carrier: int) -> Recorder:
    found = Recorder()
    runtime.plugins.register(found, "return-recorder")
    runtime.jobs.start_worker(2, sweep=False)
    return found


def test_hook_return_created(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1), kind="exchange")
    runtime.jobs.join()
    assert recorder.hooks("return_created") == [
        (
            "acme",
            {
                "id": ret["id"],
                "number": ret["number"],
                "order": number,
                "kind": "exchange",
                "status": "authorised",
                "replacement_order": ret["replacement_order"],
                "lines": [{"sku": "SKU-A", "quantity": 1}],
            },
        )
    ]


def test_hook_return_received(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 2))
    assert receive(api, ret, ("SKU-A", 1, "damaged"))[0] == 200
    runtime.jobs.join()
    assert recorder.hooks("return_received") == [
        (
            "acme",
            {
                "id": ret["id"],
                "number": ret["number"],
                "order": number,
                "status": "partially_received",
                "lines": [{"sku": "SKU-A", "quantity": 1, "condition": "damaged"}],
            },
        )
    ]


def test_hook_return_label_issued(
    api: Api, runtime: Runtime, carrier: int, recorder: Recorder
) -> None:
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1))
    status, labelled = api.post(f"/returns/{ret['id']}/label", {})
    assert status == 201, labelled
    runtime.jobs.join()
    assert recorder.hooks("return_label_issued") == [
        (
            "acme",
            {
                "id": ret["id"],
                "number": ret["number"],
                "order": number,
                "carrier": "stub",
                "tracking_number": labelled["label"]["tracking_number"],
            },
        )
    ]


def test_hook_return_cancelled(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 1))
    assert api.post(f"/returns/{ret['id']}/cancel", {"reason": "kept it"})[0] == 200
    runtime.jobs.join()
    assert recorder.hooks("return_cancelled") == [
        ("acme", {"id": ret["id"], "number": ret["number"], "order": number, "reason": "kept it"})
    ]


def test_hook_return_closed(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = delivered(api, carrier)
    ret = made(api, number, ("SKU-A", 2))
    assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200
    assert api.post(f"/returns/{ret['id']}/close", {})[0] == 200
    runtime.jobs.join()
    assert recorder.hooks("return_closed") == [
        ("acme", {"id": ret["id"], "number": ret["number"], "order": number, "reason": None})
    ]


def test_hook_refund_created(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = delivered(api, carrier)
    ret = returned(api, number)
    status, refund = api.post(f"/returns/{ret['id']}/refund", {"amount": "12.50"})
    assert status == 201, refund
    runtime.jobs.join()
    assert recorder.hooks("refund_created") == [
        (
            "acme",
            {
                "id": refund["id"],
                "return": ret["number"],
                "order": number,
                "amount": "12.50",
                "currency": "USD",
                "status": "manual",
                "error": None,
            },
        )
    ]


def test_hook_refund_settled(api: Api, runtime: Runtime, carrier: int, recorder: Recorder):
    number = channel_order(api, runtime, carrier)
    ret = returned(api, number)
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert status == 201, refund
    runtime.jobs.join()
    assert recorder.hooks("refund_settled") == [
        (
            "acme",
            {
                "id": refund["id"],
                "return": ret["number"],
                "order": number,
                "amount": "20.00",
                "currency": "USD",
                "status": "succeeded",
                "error": None,
            },
        )
    ]
