"""Channel intake through the webhook route, the inbox and the ingest job (with the Stub
channel; the real channels have their own tests of their formats)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from conftest import HUB_SECRET_KEY
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from hub import create_app, hookimpl
from hub import runtime as hub_runtime
from hub.core import intake
from hub.core.adapters import StubChannel
from hub.core.db import utcnow
from hub.core.models import Connection, InboxEntry, Order
from hub.worker import actors

SECRET = "shh-secret"


class StubChannels:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


@pytest.fixture
def shop(api, runtime):
    """A connected Stub channel, and the in-process worker running."""
    runtime.plugins.register(StubChannels, "stubs")
    status, connection = api.post(
        "/connections", {"plugin": "stub", "name": "web-shop", "settings": {"secret": SECRET}}
    )
    assert status == 201, connection
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def delivery(order_id="1001", updated="2026-11-01T10:00:00+00:00", lines=None, **extra):
    body = {
        "id": order_id,
        "updated_at": updated,
        "name": "Ann Lee",
        "country": "US",
        "lines": lines or [{"sku": "SKU-A", "quantity": 2, "unit_price": "10.00"}],
        **extra,
    }
    return json.dumps(body).encode()


def post(api, connection, body, key, secret=SECRET):
    signature = hmac.new(secret.encode(), body, "sha256").hexdigest()
    return api.client.post(
        f"/hooks/acme/{connection['id']}",
        data=body,
        headers={"X-Stub-Signature": signature, "X-Stub-Delivery": key},
    )


def channel_orders(runtime):
    with runtime.transaction() as session:
        return session.scalars(
            select(Order).where(Order.channel == "stub").options(selectinload(Order.lines))
        ).all()


def test_connection_hides_its_secret_and_has_a_webhook_url(api, shop):
    assert shop["webhook_url"].endswith(f"/hooks/acme/{shop['id']}")
    assert shop["settings"] == {"secret": "********"}
    _, listed = api.get("/connections")
    assert [c["name"] for c in listed["items"]] == ["web-shop"]
    assert SECRET not in json.dumps(listed)


def test_bad_settings_are_refused_naming_the_field(api, runtime):
    runtime.plugins.register(StubChannels, "stubs")
    status, error = api.post("/connections", {"plugin": "stub", "name": "x", "settings": {}})
    assert status == 422
    assert "secret" in error["error"]["message"]
    status, error = api.post("/connections", {"plugin": "nope", "name": "x", "settings": {}})
    assert status == 422 and "no channel plugin 'nope'" in error["error"]["message"]


def test_a_delivery_becomes_one_order_with_reserved_stock(api, runtime, shop):
    response = post(api, shop, delivery(), "d-1")
    assert response.status_code == 200
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert order.external_id == "1001"
    assert order.status == "confirmed"
    _, listed = api.get(f"/connections/{shop['id']}")
    assert listed["last_delivery_at"] is not None and listed["backlog"] == 0
    _, stock = api.get("/stock?sku=SKU-A&warehouse=MAIN")
    assert stock["items"][0]["reserved"] == 2


def test_the_same_delivery_five_times_at_once_makes_one_order(api, runtime, shop):
    body = delivery()
    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(lambda _: post(api, shop, body, "same").status_code, range(5)))
    runtime.jobs.join()

    assert codes == [200] * 5
    assert len(channel_orders(runtime)) == 1
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_forged_signature_is_401_and_leaves_no_row(api, runtime, shop):
    response = post(api, shop, delivery(), "forged", secret="wrong")
    assert response.status_code == 401
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 0
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_an_unknown_sku_is_rejected_then_replayed_after_mapping(api, runtime, shop):
    body = delivery(lines=[{"sku": "CHANNEL-A", "quantity": 1, "unit_price": "10.00"}])
    post(api, shop, body, "d-unknown")
    runtime.jobs.join()

    _, rejected = api.get("/inbox?status=rejected")
    [entry] = rejected["items"]
    assert "unknown SKU 'CHANNEL-A'" in entry["reason"]
    assert channel_orders(runtime) == []

    status, _ = api.post(
        f"/connections/{shop['id']}/sku-mappings", {"channel_ref": "CHANNEL-A", "sku": "SKU-A"}
    )
    assert status == 201
    status, _ = api.post(f"/inbox/{entry['id']}/replay")
    assert status == 202
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert [(line.sku, line.quantity) for line in order.lines] == [("SKU-A", 1)]
    _, still = api.get("/inbox?status=rejected")
    assert still["total"] == 0


def test_updates_apply_in_event_time_order_and_a_cancellation_releases_stock(api, runtime, shop):
    post(api, shop, delivery(updated="2026-11-01T10:00:00+00:00"), "v1")
    runtime.jobs.join()
    newer = [{"sku": "SKU-A", "quantity": 5, "unit_price": "10.00"}]
    post(api, shop, delivery(updated="2026-11-01T12:00:00+00:00", lines=newer), "v3")
    runtime.jobs.join()
    older = [{"sku": "SKU-C", "quantity": 1, "unit_price": "3.99"}]
    post(api, shop, delivery(updated="2026-11-01T11:00:00+00:00", lines=older), "v2")
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert [(line.sku, line.quantity) for line in order.lines] == [("SKU-A", 5)]

    post(api, shop, delivery(updated="2026-11-01T13:00:00+00:00", cancelled=True), "v4")
    runtime.jobs.join()
    [order] = channel_orders(runtime)
    assert order.status == "cancelled"
    _, stock = api.get("/stock?sku=SKU-A")
    assert sum(i["reserved"] for i in stock["items"]) == 0


def test_a_corrected_address_alone_is_applied_and_an_older_one_is_not(api, runtime, shop):
    post(api, shop, delivery(updated="2026-11-01T10:00:00+00:00", name="Ann Lee"), "a1")
    runtime.jobs.join()
    post(api, shop, delivery(updated="2026-11-01T12:00:00+00:00", name="Ann Lee-Smith"), "a3")
    runtime.jobs.join()
    post(api, shop, delivery(updated="2026-11-01T11:00:00+00:00", name="A. Lee"), "a2")
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert order.consignee_name == "Ann Lee-Smith"
    _, history = api.get(f"/orders/{order.number}/history")
    changed = [h["details"] for h in history["items"] if h["action"] == "modified"]
    assert changed == [{"fields": ["consignee"]}]


def test_with_the_broker_down_deliveries_are_acknowledged_and_swept_later(
    api, runtime, shop, db_url, config_dir, tmp_path
):
    # Given a web process whose broker is unreachable
    down = create_app(
        {
            "database_url": db_url,
            "broker_url": "redis://127.0.0.1:1/0",
            "config_dir": config_dir,
            "data_dir": tmp_path / "v2",
            "secret_key": HUB_SECRET_KEY,
        }
    )
    down_runtime = down.extensions["orderhub"]
    down_runtime.plugins.register(StubChannels, "stubs")
    try:
        signature = hmac.new(SECRET.encode(), delivery(), "sha256").hexdigest()
        response = down.test_client().post(
            f"/hooks/acme/{shop['id']}",
            data=delivery(),
            headers={"X-Stub-Signature": signature, "X-Stub-Delivery": "while-down"},
        )
        # Then the channel is told we have it, and it waits in the inbox
        assert response.status_code == 200
        _, pending = api.get("/inbox?status=pending")
        assert pending["total"] == 1
    finally:
        down_runtime.close()
    # When the sweeper of a working process runs, the delivery becomes an order
    assert actors.sweep(runtime, older_than=timedelta(0)) >= 1
    runtime.jobs.join()
    assert len(channel_orders(runtime)) == 1


def test_a_paused_connection_stores_but_waits(api, runtime, shop):
    api.post(f"/connections/{shop['id']}/pause")
    post(api, shop, delivery(), "while-paused")
    runtime.jobs.join()
    assert channel_orders(runtime) == []
    _, listed = api.get(f"/connections/{shop['id']}")
    assert listed["paused"] is True and listed["backlog"] == 1

    api.post(f"/connections/{shop['id']}/resume")
    runtime.jobs.join()
    assert len(channel_orders(runtime)) == 1


def test_the_storefront_format_is_published(api):
    status, schema = api.get("/channels/storefront/schema")
    assert status == 200
    assert {"id", "updated_at", "lines"} <= set(schema["required"])
    status, error = api.get("/channels/shopify/schema")
    assert status == 404 and "publishes no order format" in error["error"]["message"]


def test_long_delivery_keys_are_kept_apart_not_truncated(api, runtime, shop):
    stem = "k" * 250
    assert post(api, shop, delivery(order_id="1"), stem + "A").status_code == 200
    assert post(api, shop, delivery(order_id="2"), stem + "B").status_code == 200
    duplicate = post(api, shop, delivery(order_id="1"), stem + "A")
    runtime.jobs.join()

    assert duplicate.get_json()["duplicate"] is True
    assert sorted(o.external_id for o in channel_orders(runtime)) == ["1", "2"]


@pytest.mark.parametrize(
    ("key", "kept"),
    [
        ("k" * 200, True),  # exactly the column's length
        ("k" * 201, False),
        ("订单-2026-0001", True),  # any text the column holds is kept as sent
        ("é" * 200, True),  # the length is in characters, not bytes
        ("a\ud800b", False),  # a lone surrogate the database cannot store
        ("a\x00b", False),
    ],
)
def test_a_delivery_key_is_stored_as_sent_or_hashed_never_cut(key: str, kept: bool):
    stored = intake._stored_key(key)
    if kept:
        assert stored == key
    else:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        assert stored == "sha256:" + digest
        assert len(stored) <= intake.KEY_LENGTH


# --- acknowledgement and sweeper under load and failure ----------------------------------------


def recorded_sends(runtime, monkeypatch):
    """Every job the hub sends, recorded instead of queued: (actor, args) pairs."""
    sent = []

    def send(actor, *args):
        sent.append((actor, args))
        return True

    monkeypatch.setattr(runtime.jobs, "send", send)
    return sent


def ingests(sent):
    return [args[0] for actor, args in sent if actor == "ingest"]


def entry_ids(runtime):
    with runtime.transaction() as session:
        return list(session.scalars(select(InboxEntry.id).order_by(InboxEntry.id)))


def test_a_recently_queued_delivery_is_not_queued_again_by_the_sweeper(
    api, runtime, shop, monkeypatch
):
    sent = recorded_sends(runtime, monkeypatch)
    assert post(api, shop, delivery(), "d-1").status_code == 200
    [entry_id] = ingests(sent)

    # A job queued just now may simply not have run yet (a backlog is draining)
    actors.sweep(runtime)
    assert ingests(sent) == [entry_id]
    # Past the grace period (a setting) it is queued again, and stamped: once per period
    runtime.settings.sweep_grace_seconds = 0.2
    time.sleep(0.3)
    actors.sweep(runtime)
    actors.sweep(runtime)
    assert ingests(sent) == [entry_id, entry_id]


def test_two_sweeps_at_once_queue_each_delivery_once(api, runtime, shop, monkeypatch):
    sent = recorded_sends(runtime, monkeypatch)
    for i in range(30):
        assert post(api, shop, delivery(order_id=str(i)), f"d-{i}").status_code == 200
    with runtime.transaction() as session:
        session.execute(update(InboxEntry).values(enqueued_at=utcnow() - timedelta(hours=1)))
    del sent[:]

    # Given every worker process's sweeper running at the same moment
    start = threading.Barrier(2)

    def sweep():
        start.wait()
        return actors.sweep(runtime)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: sweep(), range(2)))

    # Then each stored delivery is queued once, by one of them
    assert sorted(ingests(sent)) == entry_ids(runtime)


# PostgreSQL only: SQLite runs one writer at a time, so a second claim waits for the first.
@pytest.mark.dialect
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_claim_in_progress_is_skipped_by_another_sweep(api, runtime, shop, monkeypatch):
    recorded_sends(runtime, monkeypatch)
    for i in range(3):
        post(api, shop, delivery(order_id=str(i)), f"d-{i}")
    cutoff = utcnow() + timedelta(seconds=1)  # everything stored is due
    with runtime.transaction() as first:
        claimed = intake.claim_unqueued(first, cutoff)
        with runtime.transaction() as second:
            assert intake.claim_unqueued(second, cutoff) == []  # locked rows are skipped
    assert claimed == entry_ids(runtime)
    with runtime.transaction() as second:
        assert intake.claim_unqueued(second, utcnow() - timedelta(seconds=1)) == []


class HungServer:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_hung_broker_does_not_hold_the_acknowledgement(
    api, runtime, shop, db_url, config_dir, tmp_path
):
    hung = HungServer()
    down = create_app(
        {
            "database_url": db_url,
            "broker_url": f"redis://127.0.0.1:{hung.port}/0",
            "config_dir": config_dir,
            "data_dir": tmp_path / "v2",
            "secret_key": HUB_SECRET_KEY,
        }
    )
    down_runtime = down.extensions["orderhub"]
    down_runtime.plugins.register(StubChannels, "stubs")
    try:
        signature = hmac.new(SECRET.encode(), delivery(), "sha256").hexdigest()
        started = time.monotonic()
        response = down.test_client().post(
            f"/hooks/acme/{shop['id']}",
            data=delivery(),
            headers={"X-Stub-Signature": signature, "X-Stub-Delivery": "while-hung"},
        )
        took = time.monotonic() - started
        # Then the channel has its answer after the client's 1 s timeout, not redis-py's 5 s
        assert response.status_code == 200
        assert took < 2.0, took
        assert hung.held, "the hook never reached the hung broker"
    finally:
        down_runtime.close()
        hung.close()
    # The delivery is marked as never queued, so the next sweep queues it, grace or not
    with runtime.transaction() as session:
        [entry] = session.scalars(select(InboxEntry)).all()
        assert entry.status == "pending" and entry.enqueued_at is None
    assert actors.sweep(runtime) == 1
    runtime.jobs.join()
    assert len(channel_orders(runtime)) == 1


def test_a_delivery_that_fails_half_way_leaves_nothing_but_its_rejection(api, runtime, shop):
    # The stock is reserved before the total is found too large: all of it must roll back
    huge = [{"sku": "SKU-A", "quantity": 2, "unit_price": "600000000000.00"}]
    post(api, shop, delivery(lines=huge), "too-large")
    runtime.jobs.join()

    _, rejected = api.get("/inbox?status=rejected")
    [entry] = rejected["items"]
    assert "too large" in entry["reason"]
    assert channel_orders(runtime) == []
    _, stock = api.get("/stock?sku=SKU-A")
    assert sum(i["reserved"] for i in stock["items"]) == 0
    with runtime.transaction() as session:
        assert session.get(InboxEntry, entry["id"]).attempts == 1


def test_a_changed_secret_is_used_once_the_lookup_is_refreshed(api, runtime, shop, monkeypatch):
    monkeypatch.setattr(hub_runtime, "CONNECTION_TTL", 0.0)  # every lookup has expired
    assert post(api, shop, delivery(order_id="1"), "d-1").status_code == 200
    # When another process (``orderhub channels sync``) changes the connection's secret
    with runtime.transaction() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == shop["id"])
            .values(settings=runtime.secrets.seal({"secret": "rotated"}, ("secret",)))
        )

    # Then the adapter is built again with it
    assert post(api, shop, delivery(order_id="2"), "d-2").status_code == 401
    assert post(api, shop, delivery(order_id="2"), "d-2", secret="rotated").status_code == 200


@pytest.mark.parametrize(
    ("sent", "changed"),
    [
        ([("A", 2, "10.00"), ("B", 1, "3.00")], False),
        ([("B", 1, "3.00"), ("A", 2, "10.00")], False),  # the order of lines does not count
        ([("A", 2, "10.00"), ("B", 1, "3.50")], True),  # a price does
        ([("A", 3, "10.00"), ("B", 1, "3.00")], True),
        ([("A", 2, "10.00")], True),
        # unpriced (an Amazon order still Pending): only SKUs and quantities are compared
        ([("A", 2, None), ("B", 1, None)], False),
        ([("B", 1, None), ("A", 2, None)], False),
        ([("A", 2, None), ("B", 2, None)], True),
        ([("A", 2, None), ("C", 1, None)], True),
        ([("A", 2, "99.00"), ("B", 1, None)], False),
    ],
)
def test_a_channel_update_changes_lines_only_when_they_differ(sent, changed):
    from decimal import Decimal

    from hub.core.models import OrderLine
    from hub.core.normalised import LineItem

    stored = Order(lines=[OrderLine(sku="A", quantity=2, unit_price=Decimal("10.00")),
                          OrderLine(sku="B", quantity=1, unit_price=Decimal("3.00"))])
    lines = [LineItem(sku, qty, Decimal(price) if price else None) for sku, qty, price in sent]
    assert intake._lines_changed(stored, lines) is changed


def test_an_error_is_described_by_its_kind_and_first_line_never_its_statement():
    import sqlite3

    from sqlalchemy.exc import IntegrityError, InvalidRequestError

    assert intake.describe(ValueError("no SKU 'X'\nTraceback: …")) == "ValueError: no SKU 'X'"
    assert intake.describe(ValueError("")) == "ValueError"
    assert intake.describe(ValueError("\n")) == "ValueError"
    assert intake.describe(ValueError("x" * 200)) == "ValueError: " + "x" * 200
    assert intake.describe(ValueError("x" * 201)) == "ValueError: " + "x" * 199 + "…"
    wrapped = IntegrityError("INSERT INTO orders VALUES (?)", ("secret-parameter",),
                             sqlite3.IntegrityError("UNIQUE constraint failed: orders.number"))
    assert intake.describe(wrapped) == (
        "IntegrityError: UNIQUE constraint failed: orders.number")
    assert intake.describe(InvalidRequestError("no session")) == (
        "InvalidRequestError: no session")
