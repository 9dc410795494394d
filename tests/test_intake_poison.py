"""Poison deliveries: a signed delivery that cannot be parsed or stored ends rejected with its
reason within ``[worker] max_delivery_attempts``, the sweeper never queues it in a loop, and
an admin can discard it for good.

The poisons are sent as Shopify (and WooCommerce) sends them — genuinely signed, through the
webhook route — to the real channel plugins.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import shopify_deliveries
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError

from hub import hookimpl
from hub.core import intake
from hub.core.adapters import ChannelOrder, StubChannel
from hub.core.db import single_statement, utcnow
from hub.core.models import Connection, InboxEntry, Order
from hub.worker import actors

SECRET = "shpss_poison_5e1f"
LINES = (("SKU-A", 1, "10.00"),)
DEEP = 100_000


# --- plugins a third party could ship --------------------------------------------------------


class Crashing(StubChannel):
    """A plugin whose parse fails in a way the hub cannot classify: every attempt fails."""

    name = "crashing"

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        raise RuntimeError("the plugin's cache is corrupt")


class Slow(StubChannel):
    """A plugin whose parse waits until the test lets it go: an attempt kept in flight."""

    name = "slow"
    started = threading.Event()
    release = threading.Event()

    def parse(self, topic: str | None, body: bytes) -> list[ChannelOrder]:
        type(self).started.set()
        assert type(self).release.wait(30), "the test never released the attempt"
        return super().parse(topic, body)


class TestChannels:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel, Crashing, Slow]


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def shopify(api: Any, runtime: Any) -> int:
    status, connection = api.post(
        "/connections", {"plugin": "shopify", "name": "acme-store", "settings": {"secret": SECRET}}
    )
    assert status == 201, connection
    return int(connection["id"])


@pytest.fixture
def stubs(runtime: Any) -> None:
    runtime.plugins.register(TestChannels, "test-channels")


def connect(api: Any, plugin: str, name: str | None = None) -> int:
    body = {"plugin": plugin, "name": name or plugin, "settings": {"secret": SECRET}}
    status, connection = api.post("/connections", body)
    assert status == 201, connection
    return int(connection["id"])


def order_json(order_id: int = 1001, **changes: Any) -> str:
    """A Shopify order as JSON text, with ``changes`` spliced in as raw JSON text (so escapes
    such as ``\\ud800`` reach the hub exactly as a sender wrote them)."""
    payload = shopify_deliveries.order(order_id, LINES)
    for key in changes:
        payload[key] = f"@@{key}@@"
    text = json.dumps(payload, separators=(",", ":"))
    for key, raw in changes.items():
        text = text.replace(json.dumps(f"@@{key}@@"), raw)
    return text


def post_shopify(api: Any, connection_id: int, body: bytes, webhook_id: str) -> Any:
    headers = shopify_deliveries.headers(body, SECRET, webhook_id)
    return api.client.post(f"/hooks/acme/{connection_id}", data=body, headers=headers)


def post_stub(api: Any, connection_id: int, key: str, order_id: str = "1") -> Any:
    body = json.dumps(
        {
            "id": order_id,
            "updated_at": "2026-11-01T10:00:00+00:00",
            "lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": "10.00"}],
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, "sha256").hexdigest()
    return api.client.post(
        f"/hooks/acme/{connection_id}",
        data=body,
        headers={"X-Stub-Signature": signature, "X-Stub-Delivery": key},
    )


def entries(runtime: Any) -> dict[str, InboxEntry]:
    """Inbox entries by delivery key."""
    with runtime.transaction() as session:
        return {e.delivery_key: e for e in session.scalars(select(InboxEntry))}


def entry(runtime: Any, key: str) -> InboxEntry:
    return entries(runtime)[key]


def order_count(runtime: Any) -> int:
    with runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Order)) or 0)


def recorded_sends(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple]]:
    """Every job the hub sends, recorded instead of queued."""
    sent: list[tuple[str, tuple]] = []

    def send(actor: str, *args: Any) -> bool:
        sent.append((actor, args))
        return True

    monkeypatch.setattr(runtime.jobs, "send", send)
    return sent


def run_jobs(runtime: Any, sent: list[tuple[str, tuple]], done: int) -> int:
    """Run the ingest jobs recorded since ``done`` as a worker would (a failed one raises:
    the worker logs it); returns how many ran."""
    for actor, args in sent[done:]:
        if actor == "ingest":
            with contextlib.suppress(Exception):
                actors.ingest(runtime, *args)
    return len(sent)


def age(runtime: Any, **columns: timedelta) -> None:
    """Move inbox timestamps into the past, as if time had gone by."""
    with runtime.transaction() as session:
        session.execute(
            update(InboxEntry).values(
                {getattr(InboxEntry, name): utcnow() - ago for name, ago in columns.items()}
            )
        )


# --- each poison ends rejected with its reason, on its first attempt ---------------------------


NESTED = "[" * DEEP + "]" * DEEP
POISONS = {
    "nested-100k-deep": (
        {"note_attributes": NESTED},
        "nested too deeply",
    ),
    "lone-surrogate": (
        {"shipping_address": '{"name":"Jon \\ud800 Snow","country_code":"US"}'},
        "shopify: draft.consignee.name: contains a lone surrogate",
    ),
    "nul": (
        {"customer": '{"email":"jon@example.com","first_name":"Jon\\u0000"}'},
        "shopify: draft.customer.name: contains a NUL character",
    ),
    "year-10000-after-offset": (
        {"updated_at": '"9999-12-31T23:59:59-14:00"'},
        "shopify: 'updated_at' is not a date-time between 1900-01-01 and 2999-12-31 (UTC)",
    ),
    "year-9999": (
        {"created_at": '"9999-06-01T00:00:00+00:00"'},
        "shopify: 'created_at' is not a date-time between 1900-01-01 and 2999-12-31 (UTC)",
    ),
    "name-longer-than-its-column": (
        {"shipping_address": json.dumps({"name": "J" * 201, "country_code": "US"})},
        "shopify: draft.consignee.name: is longer than 200 characters",
    ),
    "amount-beyond-numeric": (
        {"total_tax": '"1E-20000"'},
        "shopify: tax_total: has more than 4 decimal places",
    ),
}


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
def test_a_signed_poison_delivery_is_rejected_on_its_first_attempt(
    api: Any, runtime: Any, shopify: int, poison: str
) -> None:
    changes, reason = POISONS[poison]
    body = order_json(**changes).encode()
    runtime.jobs.start_worker(1, sweep=False)

    # When Shopify delivers it, the hub acknowledges it (it is stored, raw) ...
    response = post_shopify(api, shopify, body, f"webhook-{poison}")
    assert response.status_code == 200, response.get_data()
    runtime.jobs.join()

    # ... and the entry ends rejected, saying why, after one attempt, with no order made
    _, rejected = api.get("/inbox?status=rejected")
    [listed] = rejected["items"]
    assert reason in listed["reason"]
    assert listed["attempts"] == 1
    assert len(listed["reason"]) < 300  # a reason, not the payload
    assert order_count(runtime) == 0
    # and the sweeper leaves it alone from now on
    assert actors.sweep(runtime, older_than=timedelta(0)) == 0


def test_a_valid_order_next_to_the_poisons_still_becomes_an_order(
    api: Any, runtime: Any, shopify: int
) -> None:
    runtime.jobs.start_worker(1, sweep=False)
    assert post_shopify(api, shopify, order_json(7).encode(), "good").status_code == 200
    runtime.jobs.join()
    assert entry(runtime, "good").status == "processed"
    assert order_count(runtime) == 1


def test_a_body_nested_too_deeply_to_key_is_acknowledged_and_rejected(
    api: Any, runtime: Any
) -> None:
    """WooCommerce keys a delivery by reading its body on the acknowledgement path: a body
    it cannot decode is still answered 200, kept (by its hash) and rejected visibly."""
    status, connection = api.post(
        "/connections",
        {"plugin": "woocommerce", "name": "woo", "settings": {"secret": SECRET}},
    )
    assert status == 201, connection
    runtime.jobs.start_worker(1, sweep=False)
    for body in (NESTED.encode(), b'{"id":7,"date_modified_gmt":"2024-03-01T10:00:00\\u0000"}'):
        signature = base64.b64encode(
            hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
        ).decode()
        response = api.client.post(
            f"/hooks/acme/{connection['id']}",
            data=body,
            headers={
                "X-WC-Webhook-Topic": "order.updated",
                "X-WC-Webhook-Source": "https://shop.example.com/",
                "X-WC-Webhook-Signature": signature,
            },
        )
        assert response.status_code == 200, response.get_data()
    runtime.jobs.join()

    _, rejected = api.get("/inbox?status=rejected")
    nested, nul = sorted(rejected["items"], key=lambda e: e["id"])
    assert nested["reason"] == "woocommerce: the payload is nested too deeply"
    assert nested["delivery_key"].startswith("body-sha256:")  # its key could not be read
    # a NUL read into the key cannot be stored: the key was hashed, the delivery kept
    assert nul["delivery_key"].startswith("sha256:")
    assert rejected["total"] == 2


# --- anything else: counted attempts, then rejected ------------------------------------------


def test_an_unknown_failure_is_retried_then_rejected_at_the_limit(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.max_delivery_attempts = 3
    connection = connect(api, "crashing")
    sent = recorded_sends(runtime, monkeypatch)
    post_stub(api, connection, "d-1")
    [(_, (entry_id,))] = sent

    for attempt in (1, 2):
        with pytest.raises(RuntimeError):  # the job queue retries it
            actors.ingest(runtime, entry_id)
        pending = entry(runtime, "d-1")
        assert (pending.status, pending.attempts, pending.started_at) == ("pending", attempt, None)
        assert pending.reason == (
            f"attempt {attempt} of 3 failed: RuntimeError: the plugin's cache is corrupt;"
            " it will be tried again"
        )
    actors.ingest(runtime, entry_id)  # the last attempt: no exception, nothing to retry
    rejected = entry(runtime, "d-1")
    assert (rejected.status, rejected.attempts) == ("rejected", 3)
    assert rejected.reason == (
        "failed 3 times; the last error: RuntimeError: the plugin's cache is corrupt"
    )
    actors.ingest(runtime, entry_id)  # a late copy of the job does nothing
    assert entry(runtime, "d-1").attempts == 3


def test_the_worker_retries_an_unknown_failure_up_to_the_limit(
    api: Any, runtime: Any, stubs: None
) -> None:
    runtime.settings.max_delivery_attempts = 2
    connection = connect(api, "crashing")
    runtime.jobs.start_worker(1, sweep=False)
    post_stub(api, connection, "d-1")

    deadline = time.monotonic() + 30
    while entry(runtime, "d-1").status == "pending":
        assert time.monotonic() < deadline, entry(runtime, "d-1").reason
        time.sleep(0.1)
    rejected = entry(runtime, "d-1")
    assert (rejected.status, rejected.attempts) == ("rejected", 2)
    assert rejected.reason.startswith("failed 2 times; the last error: RuntimeError")


def test_a_database_error_is_described_without_its_statement_or_values(
    api: Any, runtime: Any, stubs: None
) -> None:
    connect(api, "stub", "secret-shop-name")
    with pytest.raises(SQLAlchemyError) as caught, runtime.transaction() as session:
        session.execute(
            Connection.__table__.insert().values(
                tenant_id=session.scalar(select(Connection.tenant_id)),
                plugin="stub",
                name="secret-shop-name",
                settings={},
                paused=False,
                source="api",
                created_at=utcnow(),
            )
        )
    described = intake.describe(caught.value)
    assert "secret-shop-name" in str(caught.value)  # SQLAlchemy's own message has it ...
    assert "secret-shop-name" not in described  # ... the inbox's does not
    assert "[SQL" not in described and "\n" not in described
    assert described.split(":")[0] in ("UniqueViolation", "IntegrityError")


# --- attempts that die, and attempts in flight -----------------------------------------------


def begin(runtime: Any, entry_id: int) -> int | None:
    """What a worker does first: count the attempt and mark it running."""
    now = utcnow()
    grace = timedelta(seconds=runtime.settings.sweep_grace_seconds)
    with single_statement(runtime.engine) as db:
        return intake.begin_attempt(
            db, entry_id, now, now - grace, runtime.settings.max_delivery_attempts
        )


def test_a_killed_attempt_counts_and_is_picked_up_after_the_grace_period(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recorded_sends(runtime, monkeypatch)
    connection = connect(api, "stub")
    post_stub(api, connection, "d-1")
    [(_, (entry_id,))] = sent
    # Given a worker that began an attempt and was SIGKILLed before it ended
    assert begin(runtime, entry_id) == 1
    age(runtime, enqueued_at=timedelta(hours=1))

    # Then no copy of the job starts beside it, and the sweeper does not queue it ...
    actors.ingest(runtime, entry_id)
    assert entry(runtime, "d-1").attempts == 1
    assert actors.sweep(runtime) == 0
    assert len(sent) == 1
    # ... until the grace period has passed since it began: then it is queued once, and
    # the next attempt (the second) makes the order
    age(runtime, enqueued_at=timedelta(hours=1), started_at=timedelta(seconds=61))
    assert actors.sweep(runtime) == 1
    assert actors.sweep(runtime) == 0
    run_jobs(runtime, sent, 1)
    done = entry(runtime, "d-1")
    assert (done.status, done.attempts, done.started_at) == ("processed", 2, None)
    assert order_count(runtime) == 1


def test_attempts_that_all_die_end_rejected_at_the_limit(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.max_delivery_attempts = 2
    sent = recorded_sends(runtime, monkeypatch)
    connection = connect(api, "stub")
    post_stub(api, connection, "d-1")
    [(_, (entry_id,))] = sent
    for _ in range(2):  # each attempt killed, then picked up after the grace period
        assert begin(runtime, entry_id) is not None
        age(runtime, enqueued_at=timedelta(hours=1), started_at=timedelta(hours=1))

    assert actors.sweep(runtime) == 1
    run_jobs(runtime, sent, 1)
    rejected = entry(runtime, "d-1")
    assert (rejected.status, rejected.attempts) == ("rejected", 2)
    assert rejected.reason.startswith("failed 2 times: the last attempt never ended")
    assert order_count(runtime) == 0
    assert actors.sweep(runtime, older_than=timedelta(0)) == 0


# PostgreSQL only: on SQLite the running attempt holds the database's one write lock, so
# nothing else (the sweep) can even look until it ends.
@pytest.mark.dialect
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_attempt_in_flight_is_not_queued_again_nor_run_twice(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    Slow.started.clear()
    Slow.release.clear()
    sent = recorded_sends(runtime, monkeypatch)
    connection = connect(api, "slow")
    post_stub(api, connection, "d-1")
    [(_, (entry_id,))] = sent
    age(runtime, enqueued_at=timedelta(hours=1))  # queued long ago
    # Given an attempt running (its plugin is slow)
    first = threading.Thread(target=actors.ingest, args=(runtime, entry_id))
    first.start()
    second = threading.Thread(target=actors.ingest, args=(runtime, entry_id))
    try:
        assert Slow.started.wait(10)
        # Then the sweeper does not queue it again
        assert actors.sweep(runtime) == 0
        assert len(sent) == 1
        # and a copy of the job (a retry, say) waits for it instead of starting beside it
        Slow.started.clear()
        second.start()
        second.join(0.5)
    finally:
        Slow.release.set()
        first.join(10)
        if second.is_alive() or second.ident:
            second.join(10)
    assert not Slow.started.is_set()  # the copy never parsed
    done = entry(runtime, "d-1")
    assert (done.status, done.attempts) == ("processed", 1)
    assert order_count(runtime) == 1


def test_a_second_copy_of_the_job_does_not_start_beside_a_running_attempt(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recorded_sends(runtime, monkeypatch)
    connection = connect(api, "stub")
    post_stub(api, connection, "d-1")
    [(_, (entry_id,))] = sent
    assert begin(runtime, entry_id) == 1  # the running attempt
    assert begin(runtime, entry_id) is None  # the copy
    assert entry(runtime, "d-1").attempts == 1


# --- no storm ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_many_sweeps_queue_each_poison_a_bounded_number_of_times(
    api: Any, runtime: Any, shopify: int, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = runtime.settings.max_delivery_attempts
    runtime.settings.sweep_grace_seconds = 0.05
    sent = recorded_sends(runtime, monkeypatch)
    for name, (changes, _) in POISONS.items():
        post_shopify(api, shopify, order_json(**changes).encode(), name)
    post_stub(api, connect(api, "crashing"), "crashing")
    paused = connect(api, "stub", "paused-shop")
    api.post(f"/connections/{paused}/pause")
    post_stub(api, paused, "paused")
    ids = {e.id: key for key, e in entries(runtime).items()}

    # When the worker runs what is queued and the sweeper runs 40 times past its grace
    done = run_jobs(runtime, sent, 0)
    for _ in range(40):
        time.sleep(0.06)
        actors.sweep(runtime)
        done = run_jobs(runtime, sent, done)

    # Then each entry was queued a bounded number of times, not once per sweep
    queued = {key: 0 for key in ids.values()}
    for actor, args in sent:
        if actor == "ingest":
            queued[ids[args[0]]] += 1
    assert {key: queued[key] for key in POISONS} == dict.fromkeys(POISONS, 1)
    assert queued["crashing"] == limit  # the webhook's job, then one per failed attempt
    assert queued["paused"] == 1  # the webhook's; a paused connection's wait for resume
    final = entries(runtime)
    assert {key: e.status for key, e in final.items()} == {
        **dict.fromkeys(POISONS, "rejected"),
        "crashing": "rejected",
        "paused": "pending",
    }
    assert final["crashing"].attempts == limit
    assert final["paused"].attempts == 0


# --- discard -----------------------------------------------------------------------------------


def rejected_entry(api: Any, runtime: Any, shopify: int) -> dict[str, Any]:
    runtime.jobs.start_worker(1, sweep=False)
    post_shopify(api, shopify, order_json(updated_at='"9999-12-31T23:59:59-14:00"').encode(), "p")
    runtime.jobs.join()
    _, rejected = api.get("/inbox?status=rejected")
    [listed] = rejected["items"]
    return listed


def test_an_admin_discards_a_rejected_delivery_for_good_and_it_is_audited(
    api: Any, runtime: Any, shopify: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = rejected_entry(api, runtime, shopify)

    status, discarded = api.post(
        f"/inbox/{listed['id']}/discard", {"reason": "test order from the shop's staging site"}
    )
    assert status == 200, discarded
    assert discarded["status"] == "discarded"
    assert discarded["reason"] == "discarded by admin: test order from the shop's staging site"
    # it stays listed, as discarded
    _, found = api.get("/inbox?status=discarded")
    assert [e["id"] for e in found["items"]] == [listed["id"]]
    # the audit log says who, why, and what it was
    _, audit = api.get(f"/audit?entity_type=inbox&entity_id={listed['id']}&action=inbox.discard")
    [record] = audit["items"]
    assert record["actor"] == "admin"
    assert record["before"] == {"status": "rejected", "reason": listed["reason"]}
    assert record["after"] == {
        "status": "discarded",
        "reason": "test order from the shop's staging site",
    }
    # and it is never processed again: not replayed, not swept, not run
    status, error = api.post(f"/inbox/{listed['id']}/replay")
    assert status == 409 and "discarded" in error["error"]["message"]
    sent = recorded_sends(runtime, monkeypatch)
    assert actors.sweep(runtime, older_than=timedelta(0)) == 0
    actors.ingest(runtime, listed["id"])
    assert entry(runtime, "p").status == "discarded"
    assert sent == []
    status, error = api.post(f"/inbox/{listed['id']}/discard", {"reason": "again"})
    assert status == 409 and "discarded already" in error["error"]["message"]


def test_only_an_admin_may_discard_and_a_reason_is_required(
    api: Any, runtime: Any, shopify: int
) -> None:
    listed = rejected_entry(api, runtime, shopify)
    for role in ("operator", "warehouse", "service", "analyst"):
        status, _ = api.post(
            f"/inbox/{listed['id']}/discard", {"reason": "no"}, token=api.tokens[role]
        )
        assert status == 403, role
    status, _ = api.post(
        f"/inbox/{listed['id']}/discard", {"reason": "no"}, token=api.tokens["stranger"]
    )
    assert status == 404
    for body in ({}, {"reason": ""}, {"reason": "x" * 501}):
        status, error = api.post(f"/inbox/{listed['id']}/discard", body)
        assert status in (400, 422), (body, status)
        assert "reason" in json.dumps(error)
    assert entry(runtime, "p").status == "rejected"


def test_a_pending_delivery_may_be_discarded_unless_an_attempt_is_running(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = recorded_sends(runtime, monkeypatch)
    connection = connect(api, "stub")
    post_stub(api, connection, "running", order_id="1")
    post_stub(api, connection, "waiting", order_id="2")
    running, waiting = (args[0] for _, args in sent)
    begin(runtime, running)

    status, error = api.post(f"/inbox/{running}/discard", {"reason": "dup"})
    assert status == 409 and "being processed now" in error["error"]["message"]
    status, discarded = api.post(f"/inbox/{waiting}/discard", {"reason": "dup"})
    assert status == 200 and discarded["status"] == "discarded"
    run_jobs(runtime, sent, 0)
    assert entry(runtime, "waiting").status == "discarded"
    assert entry(runtime, "running").status == "pending"  # its own attempt decides
    status, error = api.post("/inbox/999999/discard", {"reason": "dup"})
    assert status == 404


def test_a_processed_delivery_cannot_be_discarded(api: Any, runtime: Any, stubs: None) -> None:
    connection = connect(api, "stub")
    runtime.jobs.start_worker(1, sweep=False)
    post_stub(api, connection, "d-1")
    runtime.jobs.join()
    status, error = api.post(f"/inbox/{entry(runtime, 'd-1').id}/discard", {"reason": "oops"})
    assert status == 409 and "processed already" in error["error"]["message"]
    assert order_count(runtime) == 1


def test_a_replay_starts_a_fresh_set_of_attempts(
    api: Any, runtime: Any, stubs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.settings.max_delivery_attempts = 1
    sent = recorded_sends(runtime, monkeypatch)
    post_stub(api, connect(api, "crashing"), "d-1")
    run_jobs(runtime, sent, 0)
    assert (entry(runtime, "d-1").status, entry(runtime, "d-1").attempts) == ("rejected", 1)

    status, _ = api.post(f"/inbox/{entry(runtime, 'd-1').id}/replay")
    assert status == 202
    replayed = entry(runtime, "d-1")
    assert (replayed.status, replayed.attempts, replayed.reason) == ("pending", 0, None)
