"""Tracking: carriers' scans settle a shipment's status — every status, in any order, any
number of times, never backwards — deliver the order with its last shipment, set the next
check by how close delivery is, come in batches per carrier account from the sweeper, and
arrive as signed pushes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import Api
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from tracking_support import T0, PushCarrier, Shipping, scan, signed

from hub import hookimpl
from hub import settings as settings_module
from hub.core import tracking
from hub.core.adapters import (
    TERMINAL_STATUSES,
    TRACKING_STATUSES,
    StubCarrier,
    TrackingEvent,
    TrackingUpdate,
)
from hub.core.db import utcnow
from hub.core.http import AuthError, Unavailable
from hub.core.models import (
    CarrierAccount,
    DeliveryException,
    Event,
    Order,
    OrderHistory,
    Shipment,
    TrackingEventRecord,
)
from hub.runtime import Runtime
from hub.settings import ConfigError, Tracking
from hub.worker import actors


@pytest.fixture
def shipping(runtime: Runtime, api: Api) -> Shipping:
    return Shipping(runtime, api)


@pytest.fixture(autouse=True)
def _no_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StubCarrier, "scans", {})


def apply_to(
    runtime: Runtime,
    shipment_id: int,
    *scans: TrackingEvent,
    source: str = "poll",
    estimate: date | None = None,
) -> bool:
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        update_ = TrackingUpdate(shipment.tracking_number, scans, estimate)
        return tracking.apply(session, shipment, update_, source, now=T0 + timedelta(days=1))


def announced(runtime: Runtime, shipment_id: int) -> list[tuple[str, str]]:
    """The status changes announced for a shipment, in order."""
    with runtime.session() as session:
        payloads = session.scalars(
            select(Event.payload).where(Event.name == "shipment_status_changed").order_by(Event.id)
        ).all()
    return [(p["from"], p["to"]) for p in payloads if p["shipment"] == shipment_id]


def open_kinds(runtime: Runtime, shipment_id: int) -> set[str]:
    with runtime.session() as session:
        return set(
            session.scalars(
                select(DeliveryException.kind).where(
                    DeliveryException.shipment_id == shipment_id,
                    DeliveryException.status == "open",
                )
            )
        )


# --- applying scans -----------------------------------------------------------------------

KIND_OF = {
    "delivery_failed": "failed_attempt",
    "exception": "lost",
    "returned_to_sender": "returned",
    "expired": "expired",
}


@pytest.mark.parametrize("status", TRACKING_STATUSES)
def test_each_status_is_applied_and_announced(
    shipping: Shipping, runtime: Runtime, status: str
) -> None:
    account = shipping.account()
    shipment_id = shipping.shipment(account)
    reason = "lost" if status == "exception" else None

    assert apply_to(runtime, shipment_id, scan(status, 1, reason=reason, text="scanned"))

    shipment = shipping.get(shipment_id)
    assert (shipment.status, shipment.status_reason) == (status, reason)
    assert shipment.last_event_at == T0 + timedelta(hours=1)
    # terminal statuses stop the checks
    assert (shipment.next_check_at is None) == (status in TERMINAL_STATUSES)
    assert shipment.delivered_at == (T0 + timedelta(hours=1) if status == "delivered" else None)
    assert announced(runtime, shipment_id) == [("created", status)]
    assert open_kinds(runtime, shipment_id) == ({KIND_OF[status]} if status in KIND_OF else set())
    assert shipping.order_status(shipment_id) == (
        "delivered" if status == "delivered" else "shipped"
    )


Arrival = list[tuple[Any, ...]]  # (status, hour) or (status, hour, reason), as they arrive

SEQUENCES = [
    pytest.param(
        [("in_transit", 2), ("picked_up", 1)],
        "in_transit",
        [("created", "in_transit")],
        id="an older scan arrives late",
    ),
    pytest.param(
        [("delivered", 5), ("out_for_delivery", 4), ("in_transit", 3)],
        "delivered",
        [("created", "delivered")],
        id="delivery first, the journey after",
    ),
    pytest.param(
        [("out_for_delivery", 3), ("in_transit", 4)],
        "out_for_delivery",
        [("created", "out_for_delivery")],
        id="a later scan of lower rank",
    ),
    pytest.param(
        [("out_for_delivery", 3), ("delivery_failed", 4), ("out_for_delivery", 20)],
        "out_for_delivery",
        [
            ("created", "out_for_delivery"),
            ("out_for_delivery", "delivery_failed"),
            ("delivery_failed", "out_for_delivery"),
        ],
        id="a failed attempt, then out again",
    ),
    pytest.param(
        [("in_transit", 1), ("exception", 2, "weather"), ("in_transit", 3)],
        "in_transit",
        [("created", "in_transit"), ("in_transit", "exception"), ("exception", "in_transit")],
        id="an exception clears",
    ),
    pytest.param(
        [("delivered", 3), ("exception", 4, "lost"), ("returned_to_sender", 5)],
        "delivered",
        [("created", "delivered")],
        id="nothing leaves a terminal status",
    ),
    pytest.param(
        [("in_transit", 1), ("delivery_failed", 3), ("out_for_delivery", 2)],
        "delivery_failed",
        [("created", "in_transit"), ("in_transit", "delivery_failed")],
        id="a late older scan does not undo a failure",
    ),
    pytest.param(
        [("available_for_pickup", 3), ("out_for_delivery", 4)],
        "available_for_pickup",
        [("created", "available_for_pickup")],
        id="no move back the carrier did not state",
    ),
]


def _scans(arrival: Arrival) -> list[TrackingEvent]:
    return [scan(s[0], s[1], reason=s[2] if len(s) > 2 else None) for s in arrival]


@pytest.mark.parametrize(("arrival", "final", "changes"), SEQUENCES)
def test_scans_one_at_a_time_never_roll_back(
    shipping: Shipping, runtime: Runtime, arrival: Arrival, final: str, changes: list[Any]
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    told = [apply_to(runtime, shipment_id, s) for s in _scans(arrival)]
    assert shipping.get(shipment_id).status == final
    assert announced(runtime, shipment_id) == changes
    assert sum(told) == len(changes)  # apply() says True exactly when it announced


# With two terminal scans, the one that arrives first wins: nothing leaves a terminal status.
ORDER_FREE = [p for p in SEQUENCES if p.id != "nothing leaves a terminal status"]


@pytest.mark.parametrize(("arrival", "final", "changes"), ORDER_FREE)
def test_the_order_scans_arrive_in_does_not_matter(
    shipping: Shipping, runtime: Runtime, arrival: Arrival, final: str, changes: list[Any]
) -> None:
    account, number = shipping.account(), shipping.order()
    del changes  # what is announced on the way differs; where it ends does not
    for order in itertools.permutations(_scans(arrival)):
        shipment_id = shipping.shipment(account, number)
        for s in order:
            apply_to(runtime, shipment_id, s)
        assert shipping.get(shipment_id).status == final, order
    # all at once, too
    shipment_id = shipping.shipment(account, number)
    apply_to(runtime, shipment_id, *_scans(arrival))
    assert shipping.get(shipment_id).status == final


def test_a_repeated_update_stores_nothing_and_tells_nobody(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    scans = (scan("picked_up", 1), scan("in_transit", 2))
    assert apply_to(runtime, shipment_id, *scans) is True
    assert apply_to(runtime, shipment_id, *scans) is False
    assert apply_to(runtime, shipment_id, *reversed(scans), scans[0], source="push") is False
    with runtime.session() as session:
        stored = session.scalar(
            select(func.count()).where(TrackingEventRecord.shipment_id == shipment_id)
        )
    assert stored == 2
    assert announced(runtime, shipment_id) == [("created", "in_transit")]


def test_the_latest_estimate_is_kept_and_the_first_remembered(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account(), estimated=date(2026, 3, 5))
    apply_to(runtime, shipment_id, scan("in_transit", 1), estimate=date(2026, 3, 6))
    apply_to(runtime, shipment_id, scan("in_transit", 9))  # no estimate: the last one stays
    shipment = shipping.get(shipment_id)
    assert shipment.estimated_delivery == date(2026, 3, 6)
    assert shipment.first_estimated_delivery == date(2026, 3, 5)


def test_a_new_reason_is_news_only_when_it_is_another_exception(
    shipping: Shipping, runtime: Runtime
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    apply_to(runtime, shipment_id, scan("exception", 1, reason="weather"))
    assert apply_to(runtime, shipment_id, scan("exception", 2, reason="lost")) is True
    assert apply_to(runtime, shipment_id, scan("in_transit", 3, reason="sorting")) is True
    assert apply_to(runtime, shipment_id, scan("in_transit", 4, reason="customs")) is False
    assert shipping.get(shipment_id).status_reason == "customs"
    assert announced(runtime, shipment_id) == [
        ("created", "exception"),
        ("exception", "exception"),
        ("exception", "in_transit"),
    ]
    assert open_kinds(runtime, shipment_id) == {"exception", "lost"}


def test_a_scan_with_an_unknown_status_is_left_out(
    shipping: Shipping, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    shipment_id = shipping.shipment(shipping.account())
    bad = TrackingEvent("in_transitt", T0, "IT")
    assert apply_to(runtime, shipment_id, bad, scan("picked_up", 1)) is True
    assert shipping.get(shipment_id).status == "picked_up"
    assert "tracking status 'in_transitt' of" in caplog.text


def test_the_order_is_delivered_with_its_last_shipment(
    shipping: Shipping, runtime: Runtime
) -> None:
    account, number = shipping.account(), shipping.order()
    first = shipping.shipment(account, number)
    second = shipping.shipment(account, number)
    voided = shipping.shipment(account, number)
    with runtime.transaction() as session:
        session.execute(update(Shipment).where(Shipment.id == voided).values(status="cancelled"))

    apply_to(runtime, first, scan("delivered", 5))
    assert shipping.order_status(first) == "shipped"

    apply_to(runtime, second, scan("delivered", 7))
    assert shipping.order_status(first) == "delivered"
    with runtime.session() as session:
        history = session.execute(
            select(OrderHistory.from_status, OrderHistory.to_status, OrderHistory.reason)
            .join(Order, Order.id == OrderHistory.order_id)
            .where(Order.number == number, OrderHistory.to_status == "delivered")
        ).all()
    tracking_number = shipping.get(second).tracking_number
    assert history == [
        ("shipped", "delivered", f"every shipment delivered (the last: {tracking_number})")
    ]


def test_timeline_lists_every_scan_oldest_first(shipping: Shipping, runtime: Runtime) -> None:
    shipment_id = shipping.shipment(shipping.account())
    apply_to(runtime, shipment_id, scan("in_transit", 5, text="Departed"))
    apply_to(runtime, shipment_id, scan("picked_up", 1, text="Picked up"), source="push")
    with runtime.session() as session:
        shipment = session.get(Shipment, shipment_id)
        assert shipment is not None
        items = tracking.timeline(session, shipment)
    assert [(i["status"], i["raw_text"], i["source"]) for i in items] == [
        ("picked_up", "Picked up", "push"),
        ("in_transit", "Departed", "poll"),
    ]
    assert items[0]["at"] == (T0 + timedelta(hours=1)).isoformat()
    assert items[0]["raw_code"] == "PICKED_UP"
    assert items[0]["location"] == "Memphis, TN"


# --- the cadence --------------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=T0.tzinfo)


@pytest.mark.parametrize(
    ("status", "eta_days", "quiet_hours", "hours"),
    [
        ("out_for_delivery", None, 1, 1),
        ("in_transit", 0, 2, 1),  # due today
        ("in_transit", 1, 2, 1),  # due tomorrow
        ("in_transit", 3, 2, 6),
        ("in_transit", -1, 2, 6),  # late: no faster than moving
        ("picked_up", None, 2, 6),
        ("exception", None, 2, 6),
        ("info_received", None, 5, 12),
        ("created", None, 2, 12),
        ("in_transit", None, 50, 24),  # no news for two days: back off
        ("created", None, 72, 24),
        ("out_for_delivery", None, 72, 1),  # near delivery wins over quiet
        ("delivered", None, 1, None),
        ("expired", None, 1, None),
    ],
)
def test_the_next_check_follows_how_close_delivery_is(
    status: str, eta_days: int | None, quiet_hours: int, hours: int | None
) -> None:
    last = NOW - timedelta(hours=quiet_hours)
    shipment = Shipment(
        status=status,
        created_at=last,
        last_event_at=None if status == "created" else last,
        estimated_delivery=None if eta_days is None else NOW.date() + timedelta(days=eta_days),
    )
    expected = None if hours is None else NOW + timedelta(hours=hours)
    assert tracking.next_check(shipment, NOW, Tracking()) == expected


def test_a_tenant_tunes_the_cadence(config_dir: Path) -> None:
    (config_dir / "tenants" / "acme.toml").write_text(
        "[tracking]\nin_transit_hours = 3\nnear_delivery_hours = 0.5\nquiet_after_hours = 96\n"
    )
    policy = settings_module.load({"config_dir": config_dir, "secret_key": "x"}).tenant("acme")
    shipment = Shipment(
        status="in_transit", created_at=NOW, last_event_at=NOW - timedelta(hours=60)
    )
    assert tracking.next_check(shipment, NOW, policy.tracking) == NOW + timedelta(hours=3)
    shipment.status = "out_for_delivery"
    assert tracking.next_check(shipment, NOW, policy.tracking) == NOW + timedelta(minutes=30)

    (config_dir / "tenants" / "acme.toml").write_text("[tracking]\ndelayed_after = 3\n")
    with pytest.raises(ConfigError, match="tracking: unknown key"):
        settings_module.load({"config_dir": config_dir, "secret_key": "x"})


# --- the sweeper and the track job --------------------------------------------------------


@pytest.fixture
def sent(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What the sweeper enqueues (nothing runs)."""
    jobs: list[tuple[Any, ...]] = []
    monkeypatch.setattr(runtime.jobs, "send", lambda actor, *args: jobs.append((actor, *args)))
    return jobs


@pytest.fixture
def track_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The tracking numbers of each track() call the Stub carriers get."""
    calls: list[list[str]] = []
    original = StubCarrier.track

    def track(self: StubCarrier, numbers: list[str]) -> list[TrackingUpdate]:
        calls.append(list(numbers))
        return original(self, numbers)

    monkeypatch.setattr(StubCarrier, "track", track)
    return calls


def batches(sent: list[tuple[Any, ...]]) -> list[tuple[int, list[int], str]]:
    return [tuple(args) for actor, *args in sent if actor == "track_shipments"]  # type: ignore[misc]


def test_the_sweeper_claims_due_shipments_in_batches_per_account(
    shipping: Shipping,
    runtime: Runtime,
    sent: list[tuple[Any, ...]],
    track_calls: list[list[str]],
) -> None:
    now = utcnow()
    small, stub, pushed = shipping.account("stub-small"), shipping.account(), shipping.account()
    number = shipping.order()
    due = {"created_at": now - timedelta(hours=2), "next_check_at": now - timedelta(minutes=1)}
    in_small = [shipping.shipment(small, number, **due) for _ in range(5)]
    in_stub = [shipping.shipment(stub, number, **due) for _ in range(3)]
    shipping.shipment(stub, number, created_at=now, next_check_at=now + timedelta(hours=1))
    shipping.shipment(pushed, number, created_at=now, next_check_at=None)  # terminal
    moving = shipping.get(in_stub[0])
    StubCarrier.scans[moving.tracking_number] = [
        TrackingEvent("in_transit", now - timedelta(minutes=30), "IT")
    ]

    assert actors.sweep_tracking(runtime) == 4
    found = batches(sent)
    assert [(a, ids) for a, ids, _ in found] == [
        (small, in_small[:2]),
        (small, in_small[2:4]),
        (small, in_small[4:]),
        (stub, in_stub),
    ]
    # claimed: the next sweep finds nothing due
    assert actors.sweep_tracking(runtime) == 0

    for account_id, ids, lease in found:
        actors.track_shipments(runtime, account_id, ids, lease)
    numbers = {i: shipping.get(i).tracking_number for i in in_small + in_stub}
    assert track_calls == [
        [numbers[i] for i in in_small[:2]],
        [numbers[i] for i in in_small[2:4]],
        [numbers[i] for i in in_small[4:]],
        [numbers[i] for i in in_stub],
    ]
    # each shipment's next check follows its state: moving 6 h, no scan yet 12 h
    after = {i: shipping.get(i) for i in in_small + in_stub}
    assert after[in_stub[0]].status == "in_transit"
    for shipment_id, shipment in after.items():
        hours = 6 if shipment_id == in_stub[0] else 12
        assert shipment.next_check_at is not None
        wait = shipment.next_check_at - now
        assert timedelta(hours=hours) <= wait < timedelta(hours=hours, minutes=1), shipment_id


def test_a_batch_whose_claim_was_taken_over_does_nothing(
    shipping: Shipping, runtime: Runtime, sent: list[tuple[Any, ...]], track_calls: list[Any]
) -> None:
    now = utcnow()
    shipment_id = shipping.shipment(
        shipping.account(), created_at=now, next_check_at=now - timedelta(minutes=1)
    )
    actors.sweep_tracking(runtime)
    [(account_id, ids, first)] = batches(sent)
    # The job waits in the queue past its lease; a later sweep claims the shipment anew.
    with runtime.transaction() as session:
        [again] = tracking.claim(session, now + tracking.LEASE + timedelta(minutes=1), {"stub": 50})
    assert again.shipment_ids == [shipment_id]

    result = actors.track_shipments(runtime, account_id, ids, first)
    assert result == {"checked": 0, "skipped": "the claim was taken over"}
    assert track_calls == []
    result = actors.track_shipments(runtime, account_id, ids, again.lease.isoformat())
    assert result == {"checked": 1, "changed": 0, "taken": 0}


def test_two_sweepers_at_once_never_claim_the_same_shipment(
    shipping: Shipping, runtime: Runtime
) -> None:
    now = utcnow()
    account, number = shipping.account(), shipping.order()
    due = {"created_at": now, "next_check_at": now - timedelta(minutes=1)}
    ids = [shipping.shipment(account, number, **due) for _ in range(20)]
    start = threading.Barrier(2)

    def sweeper() -> list[int]:
        start.wait()
        with runtime.transaction() as session:
            claimed = tracking.claim(session, now, {"stub": 50})
            time.sleep(0.2)  # the claim is not committed yet while the other one tries
        return [i for batch in claimed for i in batch.shipment_ids]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: sweeper(), range(2))
    assert not set(first) & set(second)
    assert sorted(first + second) == ids


class Flaky(StubCarrier):
    name = "stub-flaky"
    failure: ClassVar[Exception | None] = None

    def track(self, tracking_numbers: list[str]) -> list[TrackingUpdate]:
        if self.failure is not None:
            raise self.failure
        return super().track(tracking_numbers)


class FlakyCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [Flaky]


@pytest.fixture
def flaky(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Flaky]]:
    runtime.plugins.register(FlakyCarriers, "flaky")
    monkeypatch.setattr(Flaky, "failure", None)
    yield Flaky


def test_tracking_errors_are_recorded_and_only_the_passing_ones_retried(
    shipping: Shipping, runtime: Runtime, sent: list[tuple[Any, ...]], flaky: type[Flaky]
) -> None:
    now = utcnow()
    account_id = shipping.account("stub-flaky")
    shipment_id = shipping.shipment(
        account_id, created_at=now, next_check_at=now - timedelta(minutes=1)
    )
    actors.sweep_tracking(runtime)
    [(_, ids, lease)] = batches(sent)

    def last_error() -> str | None:
        with runtime.session() as session:
            account = session.get(CarrierAccount, account_id)
            assert account is not None
            return account.last_track_error

    # The carrier is down: recorded, raised for Dramatiq to retry, the claim kept for it.
    flaky.failure = Unavailable("the carrier answered 503")
    with pytest.raises(Unavailable):
        actors.track_shipments(runtime, account_id, ids, lease)
    assert last_error() == "Unavailable: the carrier answered 503"
    assert shipping.get(shipment_id).next_check_at == datetime.fromisoformat(lease)

    # The retry works: the error is cleared.
    flaky.failure = None
    assert actors.track_shipments(runtime, account_id, ids, lease)["checked"] == 1
    assert last_error() is None

    # Refused credentials: recorded, not retried, asked again only after a quiet interval.
    with runtime.transaction() as session:
        session.execute(
            update(Shipment)
            .where(Shipment.id == shipment_id)
            .values(next_check_at=utcnow() - timedelta(minutes=1))
        )
    sent.clear()
    actors.sweep_tracking(runtime)
    [(_, ids, lease)] = batches(sent)
    flaky.failure = AuthError("the carrier refused the API key")
    result = actors.track_shipments(runtime, account_id, ids, lease)
    assert result["error"] == "AuthError: the carrier refused the API key"
    assert last_error() == "AuthError: the carrier refused the API key"
    wait = shipping.get(shipment_id).next_check_at - utcnow()  # type: ignore[operator]
    assert timedelta(hours=23, minutes=59) < wait <= timedelta(hours=24)


# --- pushes -------------------------------------------------------------------------------


def push_body(tracking_number: str, *scans: tuple[str, datetime]) -> dict[str, Any]:
    return {
        "updates": [
            {
                "tracking_number": tracking_number,
                "estimated_delivery": utcnow().date().isoformat(),
                "events": [
                    {"status": s, "at": at.isoformat(), "code": s.upper(), "text": s}
                    for s, at in scans
                ],
            },
            {"tracking_number": "NOT-OURS", "events": []},
        ]
    }


def stored_scans(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.session() as session:
        rows = session.execute(
            select(TrackingEventRecord.status, TrackingEventRecord.source).order_by(
                TrackingEventRecord.at
            )
        )
        return [(status, source) for status, source in rows]


def test_a_signed_push_is_applied(
    shipping: Shipping, runtime: Runtime, client: FlaskClient
) -> None:
    now = utcnow()
    account_id = shipping.account("stub-push")
    shipment_id = shipping.shipment(account_id, created_at=now - timedelta(days=1))
    tracking_number = shipping.get(shipment_id).tracking_number
    raw, headers = signed(
        push_body(
            tracking_number,
            ("in_transit", now - timedelta(hours=5)),
            ("out_for_delivery", now - timedelta(hours=1)),
        )
    )

    response = client.post(f"/carrier-hooks/acme/{account_id}", data=raw, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"updates": 2, "applied": 1, "changed": 1, "unknown": 1}
    shipment = shipping.get(shipment_id)
    assert shipment.status == "out_for_delivery"
    assert shipment.estimated_delivery == now.date()
    assert shipment.next_check_at is not None  # near delivery: checked again within the hour
    assert timedelta(0) < shipment.next_check_at - now <= timedelta(hours=1, minutes=1)
    assert stored_scans(runtime) == [("in_transit", "push"), ("out_for_delivery", "push")]

    # The carrier sends it again: acknowledged, nothing new.
    response = client.post(f"/carrier-hooks/acme/{account_id}", data=raw, headers=headers)
    assert response.get_json() == {"updates": 2, "applied": 1, "changed": 0, "unknown": 1}
    assert len(stored_scans(runtime)) == 2
    assert announced(runtime, shipment_id) == [("created", "out_for_delivery")]


def test_a_forged_push_is_refused_and_changes_nothing(
    shipping: Shipping, runtime: Runtime, client: FlaskClient
) -> None:
    account_id = shipping.account("stub-push")
    shipment_id = shipping.shipment(account_id)
    before = shipping.get(shipment_id)
    raw, headers = signed(
        push_body(before.tracking_number, ("delivered", utcnow())), secret="guessed"
    )
    response = client.post(f"/carrier-hooks/acme/{account_id}", data=raw, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "bad_signature"
    after = shipping.get(shipment_id)
    assert (after.status, after.next_check_at) == ("created", before.next_check_at)
    assert stored_scans(runtime) == []
    assert shipping.order_status(shipment_id) == "shipped"


def test_a_push_must_reach_an_account_that_takes_them(
    shipping: Shipping, client: FlaskClient
) -> None:
    pushing, polled = shipping.account("stub-push"), shipping.account("stub")
    raw, headers = signed({"updates": []})
    for path in (
        f"/carrier-hooks/other/{pushing}",  # another tenant's address
        f"/carrier-hooks/acme/{polled}",  # a carrier without pushes
        "/carrier-hooks/acme/99999",
        f"/carrier-hooks/acme/{2**31}",
    ):
        response = client.post(path, data=raw, headers=headers)
        assert response.status_code == 404, path
    raw, headers = signed({"updates": [{"tracking_number": "X"}]})
    response = client.post(f"/carrier-hooks/acme/{pushing}", data=raw, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_payload"


def test_push_carrier_declares_what_it_implements() -> None:
    assert "tracking_push" in PushCarrier.capabilities


# Every (status, scan) pair: which later scans set a shipment's status. Written out by hand
# from what a carrier's journey allows, not derived from the code's ranks.
_AFTER_PICKUP = {"in_transit", "out_for_delivery", "available_for_pickup", "delivery_failed",
                 "exception", "returned_to_sender", "delivered", "cancelled", "expired"}
_AT_THE_DOOR = {"out_for_delivery", "available_for_pickup", "delivery_failed", "exception",
                "returned_to_sender", "delivered", "cancelled", "expired"}
_RESUMES = {"picked_up", "in_transit", "out_for_delivery", "available_for_pickup",
            "delivery_failed", "exception", "returned_to_sender", "delivered", "cancelled",
            "expired"}
MOVES_TO: dict[str, set[str]] = {
    "created": set(TRACKING_STATUSES),
    "info_received": set(TRACKING_STATUSES),
    "picked_up": {"picked_up"} | _AFTER_PICKUP,
    "in_transit": _AFTER_PICKUP,
    "out_for_delivery": _AT_THE_DOOR,
    "available_for_pickup": _AT_THE_DOOR - {"out_for_delivery"},
    # another trip out after a failed attempt, or the exception cleared; never back to
    # "info_received"
    "delivery_failed": _RESUMES,
    "exception": _RESUMES,
    "returned_to_sender": set(),
    "delivered": set(),
    "cancelled": set(),
    "expired": set(),
}


def test_the_tracking_table_names_every_status() -> None:
    assert set(MOVES_TO) == {"created", *TRACKING_STATUSES}


@pytest.mark.parametrize("current", list(MOVES_TO))
@pytest.mark.parametrize("scan", TRACKING_STATUSES)
def test_every_later_scan_in_every_status_moves_it_or_not(current: str, scan: str) -> None:
    assert tracking.moves(current, scan) is (scan in MOVES_TO[current])
