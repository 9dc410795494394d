"""Delivery exceptions: opened once from what the carrier says and from the delay check,
settled by a delivery where that answers them, resolved through the API (reship, refund,
close, contact) with the order's history and the audit log telling the story; and the
carrier performance report."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from conftest import Api
from sqlalchemy import func, select, update
from tracking_support import T0, Shipping, scan

from hub.core import delivery_exceptions, tracking
from hub.core.adapters import TrackingEvent, TrackingUpdate
from hub.core.models import (
    AuditEntry,
    DeliveryException,
    Event,
    OrderHistory,
    Shipment,
    StockLedger,
)
from hub.runtime import Runtime
from hub.settings import Tracking
from hub.worker import actors


@pytest.fixture
def shipping(runtime: Runtime, api: Api) -> Shipping:
    return Shipping(runtime, api)


def apply_to(
    runtime: Runtime, shipment_id: int, *scans: TrackingEvent, estimate: date | None = None
) -> bool:
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        found = TrackingUpdate(shipment.tracking_number, scans, estimate)
        return tracking.apply(session, shipment, found, "poll", now=T0 + timedelta(days=1))


def exceptions(runtime: Runtime, shipment_id: int | None = None) -> list[tuple[str, str, str]]:
    """(kind, status, reason) of the exceptions, oldest first."""
    with runtime.session() as session:
        stmt = select(
            DeliveryException.kind, DeliveryException.status, DeliveryException.reason
        ).order_by(DeliveryException.id)
        if shipment_id is not None:
            stmt = stmt.where(DeliveryException.shipment_id == shipment_id)
        return [(k, s, r) for k, s, r in session.execute(stmt)]


def history(runtime: Runtime, shipment_id: int) -> list[tuple[str, str | None]]:
    with runtime.session() as session:
        order_id = select(Shipment.order_id).where(Shipment.id == shipment_id).scalar_subquery()
        return [
            (action, reason)
            for action, reason in session.execute(
                select(OrderHistory.action, OrderHistory.reason)
                .where(OrderHistory.order_id == order_id)
                .order_by(OrderHistory.id)
            )
        ]


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        ("exception", "lost", "lost"),
        ("exception", "damaged", "damaged"),
        ("exception", "delayed", "delayed"),
        ("exception", "customs", "exception"),
        ("exception", None, "exception"),
        ("delivery_failed", None, "failed_attempt"),
        ("delivery_failed", "refused", "refused"),
        ("returned_to_sender", None, "returned"),
        ("returned_to_sender", "refused", "refused"),
        ("expired", None, "expired"),
        ("in_transit", "lost", None),
        ("delivered", None, None),
    ],
)
def test_which_statuses_are_exceptions(status: str, reason: str | None, kind: str | None) -> None:
    assert delivery_exceptions.kind_of(status, reason) == kind


def test_an_exception_opens_once_and_is_announced_and_audited(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    apply_to(runtime, shipment_id, scan("exception", 1, reason="lost", text="Not found at hub"))
    apply_to(runtime, shipment_id, scan("exception", 2, reason="lost", text="Still missing"))
    apply_to(runtime, shipment_id, scan("delivery_failed", 3))

    assert exceptions(runtime, shipment_id) == [
        ("lost", "open", "lost: Not found at hub"),
        ("failed_attempt", "open", "delivery failed"),
    ]
    tracking_number = shipping.get(shipment_id).tracking_number
    with runtime.session() as session:
        payloads = session.scalars(
            select(Event.payload).where(Event.name == "delivery_exception").order_by(Event.id)
        ).all()
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_type == "delivery_exception")
        ).all()
    assert [(p["kind"], p["tracking_number"], p["shipment"]) for p in payloads] == [
        ("lost", tracking_number, shipment_id),
        ("failed_attempt", tracking_number, shipment_id),
    ]
    assert audited == ["delivery_exception.open", "delivery_exception.open"]
    assert ("delivery_exception", f"lost ({tracking_number}): lost: Not found at hub") in history(
        runtime, shipment_id
    )


def test_a_delivery_settles_what_it_answers_and_leaves_damage_open(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    apply_to(runtime, shipment_id, scan("exception", 1, reason="lost"))
    # In one update: the parcel turns up damaged and is delivered.
    apply_to(
        runtime,
        shipment_id,
        scan("exception", 5, reason="damaged", text="Box crushed"),
        scan("delivered", 9),
    )
    assert [(k, s) for k, s, _ in exceptions(runtime, shipment_id)] == [
        ("lost", "resolved"),
        ("damaged", "open"),
    ]
    with runtime.session() as session:
        lost = session.scalar(select(DeliveryException).where(DeliveryException.kind == "lost"))
        assert lost is not None
        assert (lost.resolution, lost.note, lost.resolved_by) == ("close", "delivered", "tracking")


# --- the delay check ----------------------------------------------------------------------

NOW = T0 + timedelta(days=40)


def test_the_delay_check_opens_delayed_and_expires_stale_shipments(
    shipping: Shipping, runtime: Runtime
) -> None:
    account, number = shipping.account(), shipping.order()
    make = lambda **kw: shipping.shipment(  # noqa: E731
        account, number, created_at=NOW - timedelta(days=5), **kw
    )
    quiet = make()
    apply_to(runtime, quiet, scan("in_transit", 40 * 24 - 80))  # 80 hours before NOW
    late = make(estimated=NOW.date() - timedelta(days=1))
    apply_to(runtime, late, scan("in_transit", 40 * 24 - 10))
    promised = make(promised=NOW.date() - timedelta(days=1), estimated=NOW.date())
    apply_to(runtime, promised, scan("in_transit", 40 * 24 - 10))
    fine = make(estimated=NOW.date() + timedelta(days=1))
    apply_to(runtime, fine, scan("in_transit", 40 * 24 - 10))
    delivered = make(estimated=NOW.date() - timedelta(days=3))
    apply_to(runtime, delivered, scan("delivered", 40 * 24 - 100))
    stale = shipping.shipment(account, number, created_at=NOW - timedelta(days=35))
    apply_to(runtime, stale, scan("in_transit", 40 * 24 - 31 * 24))  # 31 days before NOW

    def check(now: datetime = NOW) -> dict[str, int]:
        with runtime.transaction() as session:
            return tracking.check_delays(session, now, lambda slug: Tracking())

    assert check() == {"delayed": 3, "expired": 1}
    assert exceptions(runtime, quiet) == [("delayed", "open", "no scan for 80 hours")]
    assert exceptions(runtime, late) == [
        ("delayed", "open", f"past its estimated delivery date {NOW.date() - timedelta(days=1)}")
    ]
    assert exceptions(runtime, promised) == [
        ("delayed", "open", f"past its promised delivery date {NOW.date() - timedelta(days=1)}")
    ]
    assert exceptions(runtime, fine) == exceptions(runtime, delivered) == []
    expired = shipping.get(stale)
    assert (expired.status, expired.next_check_at) == ("expired", None)
    assert exceptions(runtime, stale) == [
        ("expired", "open", "expired: no news from the carrier for 30 days")
    ]
    with runtime.session() as session:
        changes = session.scalars(
            select(Event.payload).where(Event.name == "shipment_status_changed")
        ).all()
        assert {"from": "in_transit", "to": "expired"}.items() <= changes[-1].items()
        timeline = tracking.timeline(session, expired)
    assert (timeline[-1]["status"], timeline[-1]["source"]) == ("expired", "hub")

    # Running again opens nothing new.
    assert check(NOW + timedelta(minutes=1)) == {"delayed": 0, "expired": 0}

    # Resolved, it stays resolved while nothing new happens ...
    with runtime.transaction() as session:
        [found] = session.scalars(
            select(DeliveryException).where(DeliveryException.shipment_id == quiet)
        ).all()
        delivery_exceptions.resolve(session, runtime, found.tenant_id, found.id, "close", actor="t")
    assert check(NOW + timedelta(hours=1)) == {"delayed": 0, "expired": 0}
    # ... until a new scan comes and the shipment goes quiet again.
    apply_to(runtime, quiet, scan("in_transit", 40 * 24 + 2))
    # (by then the one due "tomorrow" is late too)
    assert check(NOW + timedelta(hours=80)) == {"delayed": 2, "expired": 0}
    assert [s for _, s, _ in exceptions(runtime, quiet)] == ["resolved", "open"]


def test_a_tenant_sets_when_a_shipment_counts_as_delayed(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account(), created_at=NOW - timedelta(hours=30))
    policies = {"acme": Tracking(delayed_after_hours=24)}

    with runtime.transaction() as session:
        counts = tracking.check_delays(session, NOW, lambda slug: policies.get(slug, Tracking()))
    assert counts == {"delayed": 1, "expired": 0}
    assert exceptions(runtime, shipment_id) == [
        ("delayed", "open", "no scan since the label was made for 30 hours")
    ]


# --- resolving through the API ------------------------------------------------------------


@pytest.fixture
def lost(shipping: Shipping, runtime: Runtime) -> dict[str, Any]:
    """A lost shipment of a shipped order, with its open exception."""
    shipment_id = shipping.shipment(shipping.account())
    apply_to(runtime, shipment_id, scan("in_transit", 1), scan("exception", 30, reason="lost"))
    with runtime.session() as session:
        exception_id = session.scalar(
            select(DeliveryException.id).where(DeliveryException.shipment_id == shipment_id)
        )
    return {"shipment": shipment_id, "exception": exception_id}


def test_listing_filters_by_status_and_kind(
    api: Api, shipping: Shipping, runtime: Runtime, lost: dict[str, Any]
) -> None:
    other = shipping.shipment(shipping.account())
    apply_to(runtime, other, scan("delivery_failed", 3))
    status, body = api.get("/exceptions?status=open&kind=lost")
    assert status == 200
    assert [(i["id"], i["kind"], i["shipment"]["id"]) for i in body["items"]] == [
        (lost["exception"], "lost", lost["shipment"])
    ]
    status, body = api.get("/exceptions?status=open")
    assert [i["kind"] for i in body["items"]] == ["failed_attempt", "lost"]  # newest first
    assert api.get("/exceptions?status=resolved")[1]["total"] == 0
    assert api.get("/exceptions?kind=stolen")[0] == 400
    # another tenant sees none of it
    assert api.get("/exceptions", token=api.tokens["stranger"])[1]["total"] == 0


def test_close_and_refund_resolve_it_with_the_story_in_the_history(
    api: Api, shipping: Shipping, runtime: Runtime, lost: dict[str, Any]
) -> None:
    path = f"/exceptions/{lost['exception']}/resolve"
    status, body = api.post(path, {"resolution": "refund", "note": "refunded via the shop"})
    assert status == 200, body
    assert (body["status"], body["resolution"], body["resolved_by"]) == (
        "resolved",
        "refund",
        "admin",
    )
    tracking_number = shipping.get(lost["shipment"]).tracking_number
    assert history(runtime, lost["shipment"])[-1] == (
        "refund",
        f"lost delivery of {tracking_number}: refund the customer (refunded via the shop)",
    )
    with runtime.session() as session:
        audited = session.scalar(
            select(AuditEntry).where(AuditEntry.action == "delivery_exception.refund")
        )
        assert audited is not None
        assert (audited.actor, audited.before["status"], audited.after["status"]) == (
            "admin",
            "open",
            "resolved",
        )

    status, body = api.post(path, {"resolution": "close"})
    assert status == 409
    assert body["error"]["details"] == {"status": "resolved", "resolution": "refund"}


def test_contact_records_the_note_and_keeps_it_open(
    api: Api, runtime: Runtime, lost: dict[str, Any]
) -> None:
    path = f"/exceptions/{lost['exception']}/resolve"
    assert api.post(path, {"resolution": "contact"})[0] == 422
    status, body = api.post(path, {"resolution": "contact", "note": "customer will wait a week"})
    assert status == 200
    assert (body["status"], body["resolution"], body["note"]) == (
        "open",
        None,
        "customer will wait a week",
    )
    action, reason = history(runtime, lost["shipment"])[-1]
    assert action == "customer_contacted"
    assert reason is not None and reason.endswith(": customer will wait a week")
    status, body = api.post(path, {"resolution": "close", "note": "arrived after all"})
    assert (status, body["status"], body["resolution"]) == (200, "resolved", "close")


def test_reship_sends_a_replacement_that_delivers_the_order(
    api: Api, shipping: Shipping, runtime: Runtime, lost: dict[str, Any]
) -> None:
    with runtime.session() as session:
        before = session.scalar(select(func.count()).select_from(StockLedger))
    status, body = api.post(f"/exceptions/{lost['exception']}/resolve", {"resolution": "reship"})
    assert status == 200, body
    assert (body["status"], body["resolution"]) == ("resolved", "reship")
    replacement_id = body["replacement_shipment"]
    replacement = shipping.get(replacement_id)
    assert replacement.replaces_id == lost["shipment"]
    assert replacement.tracking_number.startswith("STUB")
    with runtime.session() as session:
        moved = session.scalar(select(func.count()).select_from(StockLedger))
    assert moved is not None and before is not None and moved > before  # its own stock movement

    # The lost parcel never arrives; its replacement does, and the order is delivered.
    apply_to(runtime, replacement_id, scan("delivered", 60))
    assert shipping.order_status(lost["shipment"]) == "delivered"


def test_an_unknown_or_foreign_exception_is_not_found(api: Api, lost: dict[str, Any]) -> None:
    path = f"/exceptions/{lost['exception']}/resolve"
    assert api.post(path, {"resolution": "close"}, token=api.tokens["stranger"])[0] == 404
    assert api.post("/exceptions/99999/resolve", {"resolution": "close"})[0] == 404
    assert api.post(path, {"resolution": "lose"})[0] == 422


# --- carrier performance ------------------------------------------------------------------


def day(d: int, hour: int = 10) -> datetime:
    """A time on day ``d`` of March 2026."""
    return datetime(2026, 3, d, hour, tzinfo=T0.tzinfo)


def test_carrier_performance_report(api: Api, shipping: Shipping, runtime: Runtime) -> None:
    fast, spare = shipping.account("stub", "fast"), shipping.account("stub", "spare")
    slow = shipping.account("stub-small", "slow")
    number = shipping.order()

    def delivered(account: int, picked: datetime | None, at: datetime, **kw: Any) -> int:
        shipment_id = shipping.shipment(account, number, created_at=T0, **kw)
        scans = [scan("info_received", 0)]
        if picked is not None:
            scans.append(TrackingEvent("picked_up", picked, "PU"))
        apply_to(runtime, shipment_id, *scans, TrackingEvent("delivered", at, "DL"))
        return shipment_id

    # fast: on time (2 days), late (3 days), one lost, one voided (left out)
    delivered(fast, day(2), day(4), promised=date(2026, 3, 4))
    delivered(fast, day(2), day(5), promised=date(2026, 3, 3))
    lost = shipping.shipment(fast, number, created_at=T0)
    apply_to(runtime, lost, scan("exception", 5, reason="lost"))
    voided = shipping.shipment(fast, number, created_at=T0)
    with runtime.transaction() as session:
        session.execute(update(Shipment).where(Shipment.id == voided).values(status="cancelled"))
    # spare (same carrier): on time, 1 day
    delivered(spare, day(2, 8), day(3, 8), promised=date(2026, 3, 10))
    # slow: late against the first estimate even though a later one moved it (5 days), and
    # one with no date to judge by and only a delivery scan (1 day from its creation)
    slipping = shipping.shipment(slow, number, created_at=T0, estimated=date(2026, 3, 6))
    apply_to(runtime, slipping, scan("picked_up", 0), estimate=date(2026, 3, 8))
    apply_to(runtime, slipping, TrackingEvent("delivered", day(7, 8), "DL"))
    delivered(slow, None, day(3, 8))
    # created outside the period
    shipping.shipment(fast, number, created_at=datetime(2026, 4, 2, tzinfo=T0.tzinfo))

    status, report = api.get("/reports/carriers?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z")
    assert status == 200, report
    by_name = {a["name"]: a for a in report["accounts"]}
    assert by_name["fast"] == {
        "account": fast,
        "name": "fast",
        "carrier": "stub",
        "shipments": 3,
        "delivered": 2,
        "on_time": 1,
        "on_time_rate": 0.5,
        "average_transit_days": 2.5,
        "exception_rate": 0.3333,
    }
    assert by_name["spare"]["on_time_rate"] == 1.0
    assert by_name["spare"]["average_transit_days"] == 1.0
    assert by_name["slow"] == {
        "account": slow,
        "name": "slow",
        "carrier": "stub-small",
        "shipments": 2,
        "delivered": 2,
        "on_time": 0,
        "on_time_rate": 0.0,
        "average_transit_days": 3.0,
        "exception_rate": 0.0,
    }
    assert report["carriers"] == [
        {
            "carrier": "stub",
            "shipments": 4,
            "delivered": 3,
            "on_time": 2,
            "on_time_rate": 0.6667,
            "average_transit_days": 2.0,
            "exception_rate": 0.25,
        },
        {k: v for k, v in by_name["slow"].items() if k not in ("account", "name")},
    ]
    # the same figures from the day rollups the worker builds
    actors.sweep_reports(runtime)
    assert api.get("/reports/carriers?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z") == (
        200,
        report,
    )
    # a period with nothing in it
    status, empty = api.get("/reports/carriers?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z")
    assert (status, empty["accounts"], empty["carriers"]) == (200, [], [])
    assert api.get("/reports/carriers?from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z")[0] == 422
    assert api.get("/reports/carriers?to=0001-01-01T00:00:00%2B01:00")[0] == 400
    assert api.get("/reports/carriers", token=api.tokens["warehouse"])[0] == 403
