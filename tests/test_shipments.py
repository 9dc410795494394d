"""Shipping orders: one shipment per warehouse, stock from reserved to shipped (outbound ledger
rows), the order's status, voiding before pickup, reshipping, and the sales channel told."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
import shopify_deliveries as shopify
from conftest import ORDER, Api
from sqlalchemy import select

from hub import hookimpl
from hub.core import shipments
from hub.core.adapters import StubCarrier, TrackingEvent, TrackingUpdate
from hub.core.models import Shipment, Tenant
from hub.core.tracking import apply as apply_tracking


class StubCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]


@pytest.fixture
def carrier(api: Api, runtime: Any) -> dict[str, Any]:
    """acme's one carrier account: the Stub carrier (flat 5.00 per parcel, 3 days)."""
    runtime.plugins.register(StubCarriers, "stub-carriers")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}
    )
    assert status == 201, account
    return account


def order(api: Api, **changes: Any) -> str:
    status, created = api.post("/orders", {**ORDER, **changes})
    assert status == 201, created
    return created["number"]


def stock(api: Api, sku: str) -> dict[str, tuple[int, int]]:
    _, found = api.get(f"/stock?sku={sku}")
    return {i["warehouse"]: (i["on_hand"], i["reserved"]) for i in found["items"]}


def ledger(api: Api, number: str) -> list[tuple[str, str, int, int]]:
    _, rows = api.get(f"/stock/ledger?reference={number}&per_page=100")
    return sorted(
        (r["kind"], r["sku"], r["on_hand_delta"], r["reserved_delta"]) for r in rows["items"]
    )


def test_shipping_a_whole_order_moves_reserved_stock_out(api: Api, carrier: dict[str, Any]):
    number = order(api)
    before = stock(api, "SKU-A")

    status, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": carrier["id"], "service": "standard"}
    )

    assert status == 201, shipped
    assert shipped["tracking_number"].startswith("STUB") and shipped["id"] > 0
    assert shipped["status"] == "created"
    assert sorted((i["sku"], i["quantity"]) for i in shipped["items"]) == [
        ("SKU-A", 2),
        ("SKU-B", 1),
    ]
    assert api.get(f"/orders/{number}")[1]["status"] == "shipped"
    assert api.get(f"/orders/{number}")[1]["allocations"] == []
    on_hand, reserved = before["MAIN"]
    assert stock(api, "SKU-A")["MAIN"] == (on_hand - 2, reserved - 2)
    assert ("ship", "SKU-A", -2, -2) in ledger(api, number)
    assert ("ship", "SKU-B", -1, -1) in ledger(api, number)


def test_an_empty_body_ships_with_the_tenants_policy(api: Api, carrier: dict[str, Any]):
    number = order(api)

    status, shipped = api.post(f"/orders/{number}/shipments", {})

    assert status == 201, shipped
    assert (shipped["carrier"], shipped["service"], shipped["amount"]) == (
        "stub",
        "standard",
        "5.00",
    )


def test_partial_shipments_then_the_rest(api: Api, carrier: dict[str, Any]):
    number = order(api)
    body = {"carrier_account": carrier["id"], "service": "standard"}

    status, first = api.post(
        f"/orders/{number}/shipments", {**body, "lines": [{"sku": "SKU-A", "quantity": 1}]}
    )
    assert status == 201, first
    assert api.get(f"/orders/{number}")[1]["status"] == "partially_shipped"

    status, rest = api.post(f"/orders/{number}/shipments", body)
    assert status == 201, rest
    assert sorted((i["sku"], i["quantity"]) for i in rest["items"]) == [
        ("SKU-A", 1),
        ("SKU-B", 1),
    ]
    assert api.get(f"/orders/{number}")[1]["status"] == "shipped"
    status, again = api.post(f"/orders/{number}/shipments", body)
    assert status == 409, again


def test_an_order_split_across_warehouses_ships_from_each(api: Api, carrier: dict[str, Any]):
    number = order(api, lines=[{"sku": "SKU-A", "quantity": 25}])

    status, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": carrier["id"], "service": "standard"}
    )

    assert status == 201, shipped
    parts = sorted((s["warehouse_id"], s["items"][0]["quantity"]) for s in shipped["shipments"])
    assert [q for _, q in parts] == [20, 5]
    assert len({s["tracking_number"] for s in shipped["shipments"]}) == 2


def test_shipping_refuses_orders_that_cannot_ship(api: Api, carrier: dict[str, Any]):
    held = order(api, lines=[{"sku": "SKU-B", "quantity": 99}])
    status, body = api.post(f"/orders/{held}/shipments", {})
    assert status == 409 and "held" in body["error"]["message"]

    number = order(api)
    status, body = api.post(f"/orders/{number}/shipments", {"service": "standard"})
    assert status == 422, body
    status, body = api.post(
        f"/orders/{number}/shipments",
        {
            "carrier_account": carrier["id"],
            "service": "standard",
            "lines": [{"sku": "SKU-C", "quantity": 1}],
        },
    )
    assert status == 422 and "no line of SKU-C" in body["error"]["message"]


def test_voiding_before_pickup_reserves_the_goods_again(api: Api, carrier: dict[str, Any]):
    number = order(api)
    before = stock(api, "SKU-A")
    _, shipped = api.post(f"/orders/{number}/shipments", {})

    status, voided = api.post(f"/shipments/{shipped['id']}/cancel")

    assert (status, voided["status"]) == (200, "cancelled")
    assert stock(api, "SKU-A") == before
    assert ("unship", "SKU-A", 2, 2) in ledger(api, number)
    got = api.get(f"/orders/{number}")[1]
    assert got["status"] == "confirmed"
    assert sorted((a["sku"], a["quantity"]) for a in got["allocations"]) == [
        ("SKU-A", 2),
        ("SKU-B", 1),
    ]
    # It can ship again.
    assert api.post(f"/orders/{number}/shipments", {})[0] == 201


def test_a_picked_up_shipment_cannot_be_voided(api: Api, runtime: Any, carrier: dict[str, Any]):
    number = order(api)
    _, shipped = api.post(f"/orders/{number}/shipments", {})
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipped["id"])
        apply_tracking(
            session,
            shipment,
            TrackingUpdate(
                shipped["tracking_number"],
                (TrackingEvent("picked_up", _now(), "PU", "Picked up"),),
            ),
            "poll",
        )

    status, body = api.post(f"/shipments/{shipped['id']}/cancel")

    assert status == 409 and "picked_up" in body["error"]["message"]


def test_a_reship_is_a_new_shipment_with_a_second_outbound_movement(
    api: Api, runtime: Any, carrier: dict[str, Any]
):
    number = order(api)
    _, shipped = api.post(f"/orders/{number}/shipments", {})
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        plan = shipments.replace(session, runtime, tenant_id, shipped["id"], actor="operator")
    [new_id] = shipments.buy(runtime, plan)

    _, got = api.get(f"/shipments/{new_id}")
    assert got["replaces"] == shipped["id"]
    assert got["tracking_number"] != shipped["tracking_number"]
    moves = [row for row in ledger(api, number) if row[0] == "ship" and row[1] == "SKU-A"]
    assert moves == [("ship", "SKU-A", -2, -2), ("ship", "SKU-A", -2, -2)]


def test_shipments_are_found_by_tracking_number_order_and_carrier(
    api: Api, carrier: dict[str, Any]
):
    first = order(api)
    second = order(api)
    _, a = api.post(f"/orders/{first}/shipments", {})
    api.post(f"/orders/{second}/shipments", {})

    _, found = api.get(f"/shipments?tracking_number={a['tracking_number']}")
    assert [s["order"] for s in found["items"]] == [first]
    _, by_order = api.get(f"/shipments?order={second}")
    assert [s["order"] for s in by_order["items"]] == [second]
    _, by_carrier = api.get("/shipments?carrier=stub&status=created")
    assert by_carrier["total"] == 2
    assert api.get("/shipments?tracking_number=nothing")[1]["total"] == 0
    assert api.get(f"/shipments/{a['id']}", token=api.tokens["stranger"])[0] == 404


def test_the_timeline_lists_every_scan_oldest_first(
    api: Api, runtime: Any, carrier: dict[str, Any]
):
    number = order(api)
    _, shipped = api.post(f"/orders/{number}/shipments", {})
    later, earlier = _now(), _now(hours=-5)
    with runtime.transaction() as session:
        apply_tracking(
            session,
            session.get(Shipment, shipped["id"]),
            TrackingUpdate(
                shipped["tracking_number"],
                (
                    TrackingEvent("in_transit", later, "IT", "Departed facility", location="Reno"),
                    TrackingEvent("picked_up", earlier, "PU", "Picked up"),
                ),
            ),
            "poll",
        )

    status, timeline = api.get(f"/shipments/{shipped['id']}/events")

    assert status == 200
    assert [(e["status"], e["raw_code"]) for e in timeline["items"]] == [
        ("picked_up", "PU"),
        ("in_transit", "IT"),
    ]


# --- the channel is told ---------------------------------------------------------------------

ADMIN = f"https://{shopify.SHOP}/admin/api/2026-01"
SHOPIFY_ID = 5_700_000_000_123


@pytest.fixture
def shopify_shop(api: Api, runtime: Any) -> dict[str, Any]:
    status, connection = api.post(
        "/connections",
        {
            "plugin": "shopify",
            "name": "acme-shopify",
            "settings": {
                "secret": "shpss_test",
                "shop_domain": shopify.SHOP,
                "access_token": "shpat_test_token",
                "api_version": "2026-01",
            },
        },
    )
    assert status == 201, connection
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def test_shipping_a_shopify_order_tells_shopify_the_tracking_number(
    api: Api, runtime: Any, carrier: dict[str, Any], shopify_shop: dict[str, Any]
):
    body, headers = shopify.delivery(SHOPIFY_ID, [("SKU-A", 2, "10.00")], "shpss_test")
    response = api.client.post(f"/hooks/acme/{shopify_shop['id']}", data=body, headers=headers)
    assert response.status_code == 200
    runtime.jobs.join()
    [number] = [o["number"] for o in api.get("/orders?channel=shopify")[1]["items"]]

    with responses.RequestsMock() as shop:
        shop.get(
            f"{ADMIN}/orders/{SHOPIFY_ID}/fulfillment_orders.json",
            json={"fulfillment_orders": [_fulfillment_order()]},
        )
        made = shop.post(
            f"{ADMIN}/fulfillments.json",
            status=201,
            json={"fulfillment": {"id": 255858046, "status": "success"}},
        )
        status, shipped = api.post(f"/orders/{number}/shipments", {})
        assert status == 201, shipped
        runtime.jobs.join()

    sent = json.loads(made.calls[0].request.body)["fulfillment"]
    assert sent["tracking_info"]["number"] == shipped["tracking_number"]
    assert sent["tracking_info"]["company"] == "stub-post"
    _, got = api.get(f"/shipments/{shipped['id']}")
    assert (got["channel_fulfilment_id"], got["channel_error"]) == ("255858046", None)
    history = api.get(f"/orders/{number}/history")[1]["items"]
    assert any(h["action"] == "channel_fulfilment" for h in history)


def _fulfillment_order() -> dict[str, Any]:
    return {
        "id": 1046000818,
        "order_id": SHOPIFY_ID,
        "assigned_location_id": 24826418,
        "status": "open",
        "request_status": "unsubmitted",
        "supported_actions": ["create_fulfillment"],
        "line_items": [
            {
                "id": 1058737510,
                "fulfillment_order_id": 1046000818,
                "quantity": 2,
                "line_item_id": SHOPIFY_ID * 100,
                "variant_id": 44_000_000_000_000,
                "fulfillable_quantity": 2,
            }
        ],
    }


def _now(hours: float = 0) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


# --- end to end: shipped, tracked to the door -------------------------------------------------

STAGES = ("info_received", "in_transit", "out_for_delivery", "delivered")


@pytest.fixture
def trackers(api: Api, runtime: Any) -> dict[str, int]:
    """acme's accounts with the polled Stub carrier and a carrier that pushes (signed)."""
    from tracking_support import PUSH_SECRET, TrackingCarriers

    runtime.plugins.register(TrackingCarriers, "tracking-carriers")
    runtime.jobs.start_worker(2, sweep=False)
    StubCarrier.scans.clear()
    ids = {}
    for plugin, settings in (("stub", {}), ("stub-push", {"secret": PUSH_SECRET})):
        status, account = api.post(
            "/carrier-accounts", {"plugin": plugin, "name": f"e2e-{plugin}", "settings": settings}
        )
        assert status == 201, account
        ids[plugin] = account["id"]
    yield ids
    StubCarrier.scans.clear()


def _scans(upto: int) -> list[TrackingEvent]:
    """The carrier's scans so far (each poll repeats the earlier ones, as carriers do)."""
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    return [
        TrackingEvent(status, start + timedelta(hours=i), status.upper(), status.replace("_", " "))
        for i, status in enumerate(STAGES[: upto + 1])
    ]


def test_an_order_is_shipped_and_tracked_to_delivered_by_polling(
    api: Api, runtime: Any, trackers: dict[str, int]
):
    from hub.worker import actors

    number = order(api)
    _, shipped = api.post(
        f"/orders/{number}/shipments", {"carrier_account": trackers["stub"], "service": "standard"}
    )
    seen = []
    for stage in range(len(STAGES)):
        StubCarrier.scans[shipped["tracking_number"]] = _scans(stage)
        with runtime.transaction() as session:  # due now, whatever the cadence said
            session.get(Shipment, shipped["id"]).next_check_at = _now(hours=-1)
        actors.sweep_tracking(runtime)
        runtime.jobs.join()
        seen.append(api.get(f"/shipments/{shipped['id']}")[1]["status"])

    assert seen == list(STAGES)
    assert api.get(f"/orders/{number}")[1]["status"] == "delivered"
    assert ("ship", "SKU-A", -2, -2) in ledger(api, number)
    timeline = api.get(f"/shipments/{shipped['id']}/events")[1]["items"]
    assert [e["raw_code"] for e in timeline] == [s.upper() for s in STAGES]
    with runtime.transaction() as session:  # delivered: never checked again
        assert session.get(Shipment, shipped["id"]).next_check_at is None


def test_an_order_is_tracked_to_delivered_by_verified_pushes(
    api: Api, runtime: Any, trackers: dict[str, int]
):
    from tracking_support import signed

    number = order(api)
    _, shipped = api.post(
        f"/orders/{number}/shipments",
        {"carrier_account": trackers["stub-push"], "service": "standard"},
    )
    url = f"/carrier-hooks/acme/{trackers['stub-push']}"
    events = [
        {"status": e.status, "at": e.at.isoformat(), "code": e.raw_code}
        for e in _scans(len(STAGES) - 1)
    ]
    forged, headers = signed({"updates": []}, secret="wrong")
    assert api.client.post(url, data=forged, headers=headers).status_code == 401

    seen = []
    for event in events:
        body, headers = signed(
            {"updates": [{"tracking_number": shipped["tracking_number"], "events": [event]}]}
        )
        assert api.client.post(url, data=body, headers=headers).status_code == 200
        seen.append(api.get(f"/shipments/{shipped['id']}")[1]["status"])
    # An old scan arriving late changes nothing.
    body, headers = signed(
        {"updates": [{"tracking_number": shipped["tracking_number"], "events": events[:1]}]}
    )
    assert api.client.post(url, data=body, headers=headers).status_code == 200

    assert seen == list(STAGES)
    assert api.get(f"/shipments/{shipped['id']}")[1]["status"] == "delivered"
    assert api.get(f"/orders/{number}")[1]["status"] == "delivered"
