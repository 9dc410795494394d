"""Buying labels with no database transaction open: a carrier's refusal or trouble answered as
422 / 502 / 503 (never 500), a label bought and then lost to a failure voided through the
carrier with the goods reserved for the order again, interrupted purchases settled by the
sweeper, two requests never buying two labels for the same goods, and services the account
may not use refused before any carrier is asked.

EasyPost's API is faked with ``responses`` in the shapes of its documentation (the bodies of
tests/test_carrier_easypost.py); the other carriers are Stub subclasses that let a test act
while "the carrier" is being asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import requests
import responses
from conftest import ORDER, Api
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from test_carrier_easypost import (
    ADDRESS_NOT_FOUND,
    API_KEY,
    KEY_INACTIVE,
    LABEL_URL,
    SERVER_ERROR,
    SHIPMENTS,
    SHP,
    TRACKING_CODE,
    a_bought_shipment,
    a_shipment,
    usps_rates,
)

from hub import hookimpl
from hub.core import orders, purchases, shipments
from hub.core.adapters import Rate, ShipmentRequest, StubCarrier, Waybill
from hub.core.db import utcnow
from hub.core.errors import HubError
from hub.core.http import BusinessError
from hub.core.models import (
    Allocation,
    DeliveryException,
    Order,
    OrderHistory,
    Shipment,
    ShipmentPurchase,
    StockLedger,
    Tenant,
)
from hub.runtime import Runtime
from hub.worker import actors

REFUND = f"{SHIPMENTS}/{SHP}/refund"
BUY = f"{SHIPMENTS}/{SHP}/buy"


class Died(BaseException):
    """The process stopping half-way (killed, out of memory): no ``except Exception`` runs."""


class Hooked(StubCarrier):
    """The Stub carrier with two services, whose purchase can be made to do something while
    "the carrier" answers (``during``) or to refuse (``refuse``: the n-th buy of a test), and
    which remembers what it was asked to void."""

    name = "hooked"
    during: ClassVar[Callable[[], None] | None] = None
    refuse: ClassVar[int | None] = None
    bought: ClassVar[list[str]] = []
    voided: ClassVar[list[str]] = []

    def services(self) -> list[Any]:
        from hub.core.adapters import Service

        return [Service("standard", "Standard", 3), Service("express", "Express", 1)]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        return [
            Rate(self.name, "standard", self.price("5.00"), "USD", 3),
            Rate(self.name, "express", self.price("4.00"), "USD", 1),
        ]

    def price(self, amount: str) -> Any:
        from decimal import Decimal

        return Decimal(amount)

    def create_shipment(
        self, request: ShipmentRequest, service: str, rate: Rate | None = None
    ) -> Waybill:
        cls = type(self)
        if cls.during is not None:
            cls.during()
        if cls.refuse is not None and len(cls.bought) + 1 == cls.refuse:
            raise BusinessError("not a deliverable postcode")
        waybill = super().create_shipment(request, service, rate)
        cls.bought.append(waybill.tracking_number)
        return waybill

    def cancel(self, waybill: Waybill) -> None:
        type(self).voided.append(waybill.tracking_number)


class HookedCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [Hooked]


@pytest.fixture(autouse=True)
def _fresh_hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Hooked, "during", None)
    monkeypatch.setattr(Hooked, "refuse", None)
    monkeypatch.setattr(Hooked, "bought", [])
    monkeypatch.setattr(Hooked, "voided", [])


@pytest.fixture
def no_waiting(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Carriers' retries back off without really sleeping."""
    build = runtime.carrier_adapter

    def quick(account: Any, **kw: Any) -> Any:
        adapter = build(account, **kw)
        adapter.http.sleep = lambda seconds: None
        return adapter

    monkeypatch.setattr(runtime, "carrier_adapter", quick)


@pytest.fixture
def easypost(api: Api, no_waiting: None) -> int:
    status, account = api.post(
        "/carrier-accounts",
        {"plugin": "easypost", "name": "ep", "settings": {"api_key": API_KEY}},
    )
    assert status == 201, account
    return account["id"]


@pytest.fixture
def hooked(api: Api, runtime: Runtime) -> int:
    if runtime.plugins.pm.get_plugin("hooked-carriers") is None:
        runtime.plugins.register(HookedCarriers, "hooked-carriers")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "hooked", "name": "hooked-post", "settings": {}}
    )
    assert status == 201, account
    return account["id"]


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def order(api: Api, **changes: Any) -> str:
    status, created = api.post("/orders", {**ORDER, **changes})
    assert status == 201 and created["status"] == "confirmed", created
    return created["number"]


def state(api: Api, runtime: Runtime, number: str) -> dict[str, Any]:
    """What a user would look at: the order's status and reserved stock, its shipments, the
    stock, the ledger rows of the order, its purchases and the claims on its goods."""
    _, got = api.get(f"/orders/{number}")
    _, stock = api.get("/stock?per_page=100")
    with runtime.session() as session:
        order_id = session.scalar(select(Order.id).where(Order.number == number))
        claimed = session.scalar(
            select(func.count())
            .select_from(Allocation)
            .where(Allocation.order_id == order_id, Allocation.purchase_id.is_not(None))
        )
        bought = session.execute(
            select(ShipmentPurchase.status, ShipmentPurchase.waybill)
            .where(ShipmentPurchase.order_id == order_id)
            .order_by(ShipmentPurchase.id)
        ).all()
        ledger = session.scalars(
            select(StockLedger.kind).where(StockLedger.reference == number)
        ).all()
    return {
        "status": got["status"],
        "allocations": sorted(
            (a["warehouse"], a["sku"], a["quantity"]) for a in got["allocations"]
        ),
        "shipments": api.get(f"/shipments?order={number}")[1]["total"],
        "stock": sorted(
            (i["warehouse"], i["sku"], i["on_hand"], i["reserved"]) for i in stock["items"]
        ),
        "ledger": sorted(ledger),
        "purchases": [p.status for p in bought],
        "waybills": [p.waybill["tracking_number"] if p.waybill else None for p in bought],
        "claimed": claimed,
    }


def history(runtime: Runtime, number: str) -> list[tuple[str, str]]:
    with runtime.session() as session:
        return [
            (h.action, h.reason or "")
            for h in session.scalars(
                select(OrderHistory)
                .join(Order, Order.id == OrderHistory.order_id)
                .where(Order.number == number)
                .order_by(OrderHistory.id)
            )
        ]


def easypost_quotes(fake: responses.RequestsMock) -> None:
    """EasyPost rates the shipment (a named service is bought from a fresh Shipment)."""
    fake.post(SHIPMENTS, json=a_shipment(usps_rates()))


# --- a carrier's refusal and trouble ---------------------------------------------------------


def test_a_carriers_refusal_while_buying_is_a_422_with_its_words_and_changes_nothing(
    api: Api, runtime: Runtime, easypost: int, fake: responses.RequestsMock
) -> None:
    number = order(api)
    before = state(api, runtime, number)
    easypost_quotes(fake)
    fake.post(BUY, status=422, json=ADDRESS_NOT_FOUND)
    fake.get(f"{SHIPMENTS}/{SHP}", json=a_shipment(usps_rates()))  # not bought after all

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )

    assert status == 422, body
    assert body["error"]["code"] == "carrier_refused"
    message = body["error"]["message"]
    assert message.startswith("carrier account 'ep' (easypost) refused to buy the label: ")
    assert message.endswith(
        "EasyPost says ADDRESS.VERIFY.FAILURE: Address not found (address: Address not found;"
        " street1: House number is missing)"
    )
    assert body["error"]["details"] == {
        "carrier_account": "ep",
        "carrier": "easypost",
        "retryable": False,
    }
    after = state(api, runtime, number)
    assert after["purchases"] == ["released"] and after["claimed"] == 0
    same = ("status", "allocations", "shipments", "stock", "ledger")
    assert {k: after[k] for k in same} == {k: before[k] for k in same}


def test_table_rate_refusing_a_destination_is_a_422_naming_it(api: Api, runtime: Runtime) -> None:
    settings = {
        "currency": "USD",
        "zones": [{"code": "de", "countries": ["DE"]}],
        "services": [
            {
                "code": "ground",
                "name": "Ground",
                "transit_days": 2,
                "bands": [{"zone": "de", "max_kg": 30, "price": "7.00"}],
            }
        ],
    }
    status, account = api.post(
        "/carrier-accounts", {"plugin": "table_rate", "name": "courier", "settings": settings}
    )
    assert status == 201, account
    number = order(api)

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": account["id"], "service": "ground"}
    )

    assert (status, body["error"]["code"]) == (422, "carrier_refused"), body
    assert "no zone serves" in body["error"]["message"]
    assert state(api, runtime, number)["allocations"] != []
    assert api.get(f"/orders/{number}")[1]["status"] == "confirmed"


@pytest.mark.parametrize(
    ("answer", "want_status", "want_code", "label_may_exist", "retry_after"),
    [
        # EasyPost turned the buy away before acting on it: retried, then a retryable 503.
        ({"status": 503, "json": SERVER_ERROR}, 503, "carrier_unavailable", False, None),
        (
            {"status": 429, "json": SERVER_ERROR, "headers": {"Retry-After": "7"}},
            503,
            "carrier_unavailable",
            False,
            "7",
        ),
        # A server error or a timeout after the buy reached EasyPost: it may have bought it.
        ({"status": 500, "json": SERVER_ERROR}, 502, "carrier_error", True, None),
        (
            {"body": requests.exceptions.ReadTimeout("read timed out")},
            503,
            "carrier_unavailable",
            True,
            None,
        ),
    ],
    ids=["503", "429", "500", "timeout"],
)
def test_a_carrier_in_trouble_is_a_retryable_502_or_503_never_a_500(
    api: Api,
    runtime: Runtime,
    easypost: int,
    fake: responses.RequestsMock,
    answer: dict[str, Any],
    want_status: int,
    want_code: str,
    label_may_exist: bool,
    retry_after: str | None,
) -> None:
    number = order(api)
    easypost_quotes(fake)
    fake.post(BUY, **answer)

    response = api.client.post(
        f"/api/v1/orders/{number}/shipments",
        json={"carrier_account": easypost, "service": "Priority"},
        headers={"Authorization": f"Bearer {api.token}"},
    )

    body = response.get_json()
    assert (response.status_code, body["error"]["code"]) == (want_status, want_code), body
    details = body["error"]["details"]
    assert details["retryable"] is True
    assert details.get("label_may_exist", False) is label_may_exist
    assert ("check the carrier account" in body["error"]["message"]) is label_may_exist
    assert response.headers.get("Retry-After") == retry_after
    assert details.get("retry_after") == (int(retry_after) if retry_after else None)
    # Turned away before acting: asked again (4 tries); may have acted: never asked twice.
    buys = [c for c in fake.calls if c.request.url == BUY]
    assert len(buys) == (1 if label_may_exist else 4)
    assert state(api, runtime, number)["purchases"] == ["released"]
    assert api.get(f"/orders/{number}")[1]["status"] == "confirmed"


def test_refused_credentials_tell_the_admin_to_fix_the_account(
    api: Api, easypost: int, fake: responses.RequestsMock
) -> None:
    number = order(api)
    fake.post(SHIPMENTS, status=401, json=KEY_INACTIVE)

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )

    assert (status, body["error"]["code"]) == (502, "carrier_auth_failed"), body
    assert "an admin must fix the carrier account's settings" in body["error"]["message"]
    assert body["error"]["details"]["retryable"] is False
    assert API_KEY not in str(body)


def test_a_void_the_carrier_refuses_is_a_422_and_the_shipment_stays(
    api: Api, runtime: Runtime, easypost: int, fake: responses.RequestsMock
) -> None:
    number = order(api)
    easypost_quotes(fake)
    fake.post(BUY, json=a_bought_shipment(usps_rates()[1]))
    status, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )
    assert status == 201, shipped
    fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "rejected"))

    status, body = api.post(f"/shipments/{shipped['id']}/cancel")

    assert (status, body["error"]["code"]) == (422, "carrier_refused"), body
    assert "rejected the refund of 9400100109361133189649" in body["error"]["message"]
    assert api.get(f"/shipments/{shipped['id']}")[1]["status"] == "created"
    assert api.get(f"/orders/{number}")[1]["status"] == "shipped"


# --- a label bought, then lost: voided --------------------------------------------------------


def test_a_fault_after_the_purchase_voids_the_label_and_reserves_the_goods_again(
    api: Api,
    runtime: Runtime,
    easypost: int,
    fake: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = order(api)
    before = state(api, runtime, number)
    easypost_quotes(fake)
    fake.post(BUY, json=a_bought_shipment(usps_rates()[1]))
    refund = fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "submitted"))
    recorded = purchases.mark_recorded

    def connection_lost(purchase: ShipmentPurchase, shipment_id: int) -> None:
        recorded(purchase, shipment_id)  # the shipment and its ledger rows are written …
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(purchases, "mark_recorded", connection_lost)

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )

    assert (status, body["error"]["code"]) == (503, "not_recorded"), body
    assert body["error"]["details"] == {"retryable": True}
    assert f"label {TRACKING_CODE} bought for it voided" in body["error"]["message"]
    assert "the goods are reserved for the order again" in body["error"]["message"]
    # … and rolled back with the transaction; the label was voided through EasyPost.
    assert len(refund.calls) == 1
    after = state(api, runtime, number)
    assert (after["purchases"], after["waybills"]) == (["voided"], [TRACKING_CODE])
    assert {k: v for k, v in after.items() if k not in ("purchases", "waybills")} == {
        k: v for k, v in before.items() if k not in ("purchases", "waybills")
    }
    assert history(runtime, number)[-1] == (
        "label_voided",
        f"ep label {TRACKING_CODE} voided: the shipment could not be recorded (OperationalError)",
    )

    # The goods can ship now.
    monkeypatch.setattr(purchases, "mark_recorded", recorded)
    easypost_quotes(fake)
    fake.post(BUY, json=a_bought_shipment(usps_rates()[1]))
    status, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )
    assert status == 201, shipped
    assert (shipped["tracking_number"], shipped["label"]) == (TRACKING_CODE, LABEL_URL)
    assert state(api, runtime, number)["purchases"] == ["voided", "recorded"]


def test_a_commit_that_fails_after_the_purchase_voids_the_label(
    api: Api, runtime: Runtime, hooked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault at the database's own commit of the recording transaction."""
    from sqlalchemy import event

    number = order(api)
    before = state(api, runtime, number)

    def refuse(session: Any) -> None:
        if any(isinstance(o, Shipment) for o in session.identity_map.values()):
            raise OperationalError("COMMIT", {}, Exception("could not serialize access"))

    event.listen(runtime.sessions, "before_commit", refuse)
    try:
        status, body = api.post(
            f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
        )
    finally:
        event.remove(runtime.sessions, "before_commit", refuse)

    assert (status, body["error"]["code"]) == (503, "not_recorded"), body
    assert Hooked.voided == Hooked.bought and len(Hooked.bought) == 1
    after = state(api, runtime, number)
    assert after["purchases"] == ["voided"]
    assert after["stock"] == before["stock"] and after["ledger"] == before["ledger"]
    assert after["allocations"] == before["allocations"] and after["status"] == "confirmed"


def test_a_void_the_carrier_refuses_after_a_fault_is_asked_again_then_left_to_a_person(
    api: Api,
    runtime: Runtime,
    easypost: int,
    fake: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = order(api)
    easypost_quotes(fake)
    fake.post(BUY, json=a_bought_shipment(usps_rates()[1]))
    fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "rejected"))

    def broken(*args: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(purchases, "mark_recorded", broken)
    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
    )

    assert status == 503, body
    assert (
        "not voided yet (the carrier would not; the hub will try again)"
        in (body["error"]["message"])
    )
    after = state(api, runtime, number)
    assert after["purchases"] == ["voiding"] and after["claimed"] == 0
    assert after["status"] == "confirmed" and after["shipments"] == 0
    with runtime.session() as session:
        purchase = session.scalars(select(ShipmentPurchase)).one()
        # asked again in 5 minutes, backing off
        assert purchase.void_attempts == 1
        assert timedelta(minutes=4) < purchase.due_at - utcnow() <= timedelta(minutes=5)

    # The sweeper asks again when it is due: EasyPost accepts this time.
    runtime.jobs.start_worker(2, sweep=False)
    fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "submitted"))
    _due_now(runtime)
    assert actors.sweep_purchases(runtime) == 1
    runtime.jobs.join()
    assert state(api, runtime, number)["purchases"] == ["voided"]

    # One that keeps being refused is left, after the last attempt, to a person.
    with runtime.transaction() as session:
        session.execute(
            update(ShipmentPurchase).values(
                status="voiding",
                void_attempts=purchases.VOID_ATTEMPTS - 1,
                due_at=utcnow() - timedelta(seconds=1),
            )
        )
    fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "rejected"))
    _due_now(runtime)
    actors.sweep_purchases(runtime)
    runtime.jobs.join()
    with runtime.session() as session:
        purchase = session.scalars(select(ShipmentPurchase)).one()
        assert (purchase.status, purchase.due_at) == ("void_failed", None)
    action, reason = history(runtime, number)[-1]
    assert action == "label_not_voided"
    assert reason.startswith(f"ep label {TRACKING_CODE} was bought but not recorded, and 8")
    assert reason.endswith("void it with the carrier")
    assert actors.sweep_purchases(runtime) == 0  # never asked again


def _due_now(runtime: Runtime) -> None:
    with runtime.transaction() as session:
        session.execute(
            update(ShipmentPurchase)
            .where(ShipmentPurchase.due_at.is_not(None))
            .values(due_at=utcnow() - timedelta(seconds=1))
        )


# --- interrupted purchases --------------------------------------------------------------------


def test_a_process_that_dies_after_buying_leaves_a_label_the_sweeper_voids(
    api: Api,
    runtime: Runtime,
    easypost: int,
    fake: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = order(api)
    before = state(api, runtime, number)
    easypost_quotes(fake)
    fake.post(BUY, json=a_bought_shipment(usps_rates()[1]))

    def dies(*args: Any) -> None:
        raise Died

    record = shipments._record_plan
    monkeypatch.setattr(shipments, "_record_plan", dies)
    with pytest.raises(Died):
        api.post(
            f"/orders/{number}/shipments", {"carrier_account": easypost, "service": "Priority"}
        )
    monkeypatch.setattr(shipments, "_record_plan", record)

    # The label is known and the goods are held for it: nothing else can ship them.
    held = state(api, runtime, number)
    assert (held["purchases"], held["waybills"], held["claimed"]) == (
        ["bought"],
        [TRACKING_CODE],
        2,
    )
    status, body = api.post(f"/orders/{number}/shipments", {})
    assert status == 409 and "a label is being bought" in body["error"]["message"], body
    # Not before it is stale.
    assert actors.sweep_purchases(runtime) == 0

    refund = fake.post(REFUND, json=a_bought_shipment(usps_rates()[1], "refunded"))
    runtime.jobs.start_worker(2, sweep=False)
    _due_now(runtime)
    assert actors.sweep_purchases(runtime) == 1
    runtime.jobs.join()

    assert len(refund.calls) == 1
    after = state(api, runtime, number)
    assert (after["purchases"], after["claimed"]) == (["voided"], 0)
    assert after["allocations"] == before["allocations"] and after["stock"] == before["stock"]
    assert history(runtime, number)[-1] == (
        "label_voided",
        f"ep label {TRACKING_CODE} voided: interrupted before the shipment was recorded",
    )


def test_a_process_that_dies_before_the_carrier_answers_gives_the_goods_back_later(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    number = order(api)
    before = state(api, runtime, number)

    def dies() -> None:
        raise Died

    Hooked.during = dies
    with pytest.raises(Died):
        api.post(f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"})
    Hooked.during = None
    assert state(api, runtime, number)["purchases"] == ["buying"]

    runtime.jobs.start_worker(2, sweep=False)
    _due_now(runtime)
    actors.sweep_purchases(runtime)
    runtime.jobs.join()

    after = state(api, runtime, number)
    assert (after["purchases"], after["claimed"]) == (["released"], 0)
    assert after["allocations"] == before["allocations"]
    action, reason = history(runtime, number)[-1]
    assert action == "label_purchase_interrupted"
    assert reason.endswith(f"If the carrier made a label for {number}, void it with the carrier")
    assert Hooked.voided == []  # no label known, nothing voided
    assert api.post(f"/orders/{number}/shipments", {})[0] == 201


def test_a_purchase_given_up_while_the_carrier_answered_voids_its_own_label(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    """The sweeper released a purchase that looked interrupted; its label then came back."""
    number = order(api)

    def slow() -> None:
        _due_now(runtime)
        with runtime.transaction() as session:
            [purchase_id], lease = purchases.claim_due(session, utcnow())
        assert purchases.settle(runtime, purchase_id, lease) == "released"

    Hooked.during = slow
    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
    )

    assert status == 409 and "given up" in body["error"]["message"], body
    assert Hooked.voided == Hooked.bought and len(Hooked.bought) == 1
    after = state(api, runtime, number)
    assert (after["purchases"], after["shipments"], after["claimed"]) == (["voided"], 0, 0)


# --- claims: never two labels for the same goods ----------------------------------------------


def test_while_a_label_is_bought_the_goods_are_taken_and_a_change_to_the_order_voids_it(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    """Acting from inside the carrier's call also proves no transaction is open then: on
    SQLite a second writer would wait for it, on PostgreSQL for the order's row lock."""
    number = order(api)
    before = state(api, runtime, number)
    seen: dict[str, Any] = {}

    def meanwhile() -> None:
        seen["second"] = api.post(
            f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
        )
        seen["rates"] = api.post("/rates", {"order": number})
        with runtime.transaction() as session:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
            orders.cancel(session, tenant_id, number, actor="customer", reason="changed mind")

    Hooked.during = meanwhile
    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
    )

    second_status, second = seen["second"]
    assert second_status == 409 and "a label is being bought" in second["error"]["message"]
    assert seen["rates"][0] == 409
    assert len(Hooked.bought) == 1  # the second request bought nothing
    assert status == 409, body
    assert body["error"]["message"] == (
        f"order {number} became cancelled while its label was bought; label"
        f" {Hooked.bought[0]} bought for it voided"
    )
    assert Hooked.voided == Hooked.bought
    after = state(api, runtime, number)
    assert (after["status"], after["allocations"], after["shipments"]) == ("cancelled", [], 0)
    assert after["purchases"] == ["voided"]
    # Every reserved unit was released once, by the cancel: nothing is reserved any more.
    assert before["claimed"] == 0 and any(s[3] for s in before["stock"])
    assert all(reserved == 0 for *_, reserved in after["stock"])
    assert sorted(after["ledger"]) == ["release", "release", "reserve", "reserve"]


def test_an_edited_order_voids_the_label_bought_for_its_old_lines(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    number = order(api)

    def shrink() -> None:
        status, body = api.patch(
            f"/orders/{number}", {"lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": "10"}]}
        )
        assert status == 200, body

    Hooked.during = shrink
    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
    )

    assert status == 409, body
    assert (
        "changed while its label was bought (its reserved stock changed)"
        in (body["error"]["message"])
    )
    assert Hooked.voided == Hooked.bought
    after = state(api, runtime, number)
    assert (after["status"], after["claimed"]) == ("confirmed", 0)
    assert after["allocations"] == [("MAIN", "SKU-A", 1)]
    Hooked.during = None
    status, shipped = api.post(f"/orders/{number}/shipments", {})
    assert status == 201 and shipped["items"] == [{"sku": "SKU-A", "quantity": 1}]


def test_a_refusal_of_a_later_part_voids_the_labels_of_the_earlier_ones(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    number = order(api, lines=[{"sku": "SKU-A", "quantity": 25}])  # MAIN 20 + WEST 5
    before = state(api, runtime, number)
    Hooked.refuse = 2

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
    )

    assert (status, body["error"]["code"]) == (422, "carrier_refused"), body
    assert body["error"]["message"] == (
        "carrier account 'hooked-post' (hooked) refused to buy the label: not a deliverable"
        f" postcode; label {Hooked.bought[0]} bought for it voided"
    )
    assert Hooked.voided == Hooked.bought and len(Hooked.bought) == 1
    after = state(api, runtime, number)
    assert after["purchases"] == ["voided", "released"]
    assert {k: after[k] for k in ("status", "allocations", "stock", "ledger", "shipments")} == {
        k: before[k] for k in ("status", "allocations", "stock", "ledger", "shipments")
    }


def test_a_partial_shipment_claims_only_what_it_ships(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    number = order(api)
    seen: dict[str, Any] = {}

    def meanwhile() -> None:
        Hooked.during = None
        seen["rest"] = api.post(
            f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
        )

    Hooked.during = meanwhile
    status, first = api.post(
        f"/orders/{number}/shipments",
        {
            "carrier_account": hooked,
            "service": "standard",
            "lines": [{"sku": "SKU-A", "quantity": 1}],
        },
    )

    assert status == 201, first
    rest_status, rest = seen["rest"]
    assert rest_status == 201, rest
    assert first["items"] == [{"sku": "SKU-A", "quantity": 1}]
    assert sorted((i["sku"], i["quantity"]) for i in rest["items"]) == [("SKU-A", 1), ("SKU-B", 1)]
    assert api.get(f"/orders/{number}")[1]["status"] == "shipped"
    assert state(api, runtime, number)["purchases"] == ["recorded", "recorded"]


# --- allowed services -------------------------------------------------------------------------


def test_a_service_the_account_may_not_use_is_refused_before_any_carrier_is_asked(
    api: Api, runtime: Runtime, hooked: int
) -> None:
    assert api.patch(f"/carrier-accounts/{hooked}", {"services": ["standard"]})[0] == 200
    number = order(api)

    status, body = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "express"}
    )

    assert status == 422, body
    assert body["error"]["message"] == (
        "service: not a service carrier account 'hooked-post' may use (allowed: standard)"
    )
    assert body["error"]["details"] == [
        {"field": "service", "problem": "not allowed for this carrier account"}
    ]
    assert Hooked.bought == [] and state(api, runtime, number)["purchases"] == []
    # The policy picks among the allowed ones only: express is cheaper, but not allowed.
    status, shipped = api.post(f"/orders/{number}/shipments", {})
    assert (status, shipped["service"], shipped["amount"]) == (201, "standard", "5.00"), shipped


# --- reshipping ------------------------------------------------------------------------------


@pytest.fixture
def lost(api: Api, runtime: Runtime, hooked: int) -> dict[str, Any]:
    """A shipment of a shipped order its customer says is lost, with the exception open."""
    number = order(api)
    status, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": hooked, "service": "standard"}
    )
    assert status == 201, shipped
    status, opened = api.post(
        f"/shipments/{shipped['id']}/exceptions", {"kind": "lost", "note": "never came"}
    )
    assert status == 201, opened
    return {"number": number, "shipment": shipped, "exception": opened["id"]}


def test_a_reship_the_carrier_refuses_leaves_the_exception_open_and_stock_free(
    api: Api, runtime: Runtime, lost: dict[str, Any]
) -> None:
    before = state(api, runtime, lost["number"])
    Hooked.refuse = len(Hooked.bought) + 1

    status, body = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"})

    assert (status, body["error"]["code"]) == (422, "carrier_refused"), body
    assert api.get("/exceptions?status=open")[1]["items"][0]["id"] == lost["exception"]
    after = state(api, runtime, lost["number"])
    assert after["stock"] == before["stock"] and after["allocations"] == []
    assert sorted(after["ledger"]) == sorted(
        [*before["ledger"], "reserve", "reserve", "release", "release"]
    )
    # Then it works.
    Hooked.refuse = None
    status, body = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"})
    assert (status, body["resolution"]) == (200, "reship"), body
    replacement = api.get(f"/shipments/{body['replacement_shipment']}")[1]
    assert replacement["replaces"] == lost["shipment"]["id"]


def test_a_parcel_delivered_while_its_replacement_is_bought_voids_the_replacement(
    api: Api, runtime: Runtime, lost: dict[str, Any]
) -> None:
    before = state(api, runtime, lost["number"])

    def turns_up() -> None:
        status, body = api.post(
            f"/shipments/{lost['shipment']['id']}/events", {"status": "delivered"}
        )
        assert status == 201, body
        # meanwhile nobody may resolve it another way
        again = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "close"})
        assert again[0] == 409, again

    Hooked.during = turns_up
    status, body = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"})

    assert status == 409, body
    assert body["error"]["message"].startswith(
        f"delivery exception {lost['exception']} was resolved (close) while its replacement"
        " was bought; the replacement is not sent; label "
    )
    assert Hooked.voided == Hooked.bought[-1:]
    after = state(api, runtime, lost["number"])
    assert after["status"] == "delivered" and after["stock"] == before["stock"]
    with runtime.session() as session:
        found = session.get(DeliveryException, lost["exception"])
        assert (found.status, found.resolution, found.replacement_shipment_id) == (
            "resolved",
            "close",
            None,
        )
    assert after["shipments"] == 1


def test_one_replacement_at_a_time(api: Api, runtime: Runtime, lost: dict[str, Any]) -> None:
    seen: dict[str, Any] = {}

    def twice() -> None:
        Hooked.during = None
        with runtime.transaction() as session:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
            with pytest.raises(HubError, match=r"a replacement for shipment \S+ is being bought"):
                shipments.replace(
                    session, runtime, tenant_id, lost["shipment"]["id"], actor="other"
                )
        seen["again"] = api.post(
            f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"}
        )

    Hooked.during = twice
    status, body = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"})

    assert status == 200, body
    assert seen["again"][0] == 409 and "is being bought" in seen["again"][1]["error"]["message"]
    assert len(Hooked.bought) == 2  # the original and one replacement
