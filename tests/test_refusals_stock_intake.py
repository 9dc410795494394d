"""Tests that refuse: each one fails when a plausible bug is planted in stock or intake.

- shrinking an order line releases only the difference, from where it was reserved (the
  ledger rows are asserted one by one, not only the balances they add up to);
- ``orderhub stock verify`` reports a reserved balance that drifts, not only on-hand;
- an inbox entry that was processed (or discarded) is never replayed, a rejected one is;
- a webhook URL naming one tenant and another tenant's connection is a 404 that stores
  nothing;
- the inbox's and the shipments' states against what a user can do to them through the API.
"""

from __future__ import annotations

import hmac
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ORDER, Api
from sqlalchemy import func, select, update

from hub import hookimpl
from hub.cli import cli
from hub.core import intake, inventory
from hub.core.adapters import TERMINAL_STATUSES, StubCarrier, StubChannel
from hub.core.db import utcnow
from hub.core.models import InboxEntry, Order, Product, StockLevel, Tenant, Warehouse
from hub.runtime import Runtime
from hub.worker import actors

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
SECRET = "refusal-stub-secret-3c1d"


def ledger(api: Api, reference: str) -> list[tuple[str, str, str, int, int]]:
    """The order's stock ledger, oldest first: (kind, warehouse, sku, on-hand, reserved)."""
    status, page = api.get(f"/stock/ledger?reference={reference}&per_page=100")
    assert status == 200, page
    assert page["total"] == len(page["items"])
    return [
        (e["kind"], e["warehouse"], e["sku"], e["on_hand_delta"], e["reserved_delta"])
        for e in reversed(page["items"])
    ]


def balances(api: Api, sku: str) -> dict[str, tuple[int, int]]:
    _, page = api.get(f"/stock?sku={sku}")
    return {i["warehouse"]: (i["on_hand"], i["reserved"]) for i in page["items"]}


def one_line(sku: str, quantity: int) -> dict[str, Any]:
    return {**ORDER, "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}]}


# --- 1. shrinking a line ---------------------------------------------------------------------


@SQLITE
def test_shrinking_a_line_releases_only_the_difference_where_it_was_reserved(api: Api) -> None:
    status, order = api.post("/orders", one_line("SKU-A", 5))
    assert status == 201 and order["status"] == "confirmed", order
    number = order["number"]
    assert ledger(api, number) == [("reserve", "MAIN", "SKU-A", 0, 5)]

    status, changed = api.patch(
        f"/orders/{number}", {"lines": [{"sku": "SKU-A", "quantity": 3, "unit_price": "10.00"}]}
    )

    assert status == 200, changed
    assert changed["status"] == "confirmed"
    # One release of the two no longer needed, nothing released and reserved again.
    assert ledger(api, number) == [
        ("reserve", "MAIN", "SKU-A", 0, 5),
        ("release", "MAIN", "SKU-A", 0, -2),
    ]
    _, page = api.get(f"/stock/ledger?reference={number}&kind=release")
    assert [e["actor"] for e in page["items"]] == ["admin"]
    assert api.get(f"/orders/{number}")[1]["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 3}
    ]
    assert balances(api, "SKU-A") == {"MAIN": (20, 3), "WEST": (10, 0)}


@SQLITE
def test_shrinking_a_line_split_over_warehouses_keeps_each_warehouse_s_part(api: Api) -> None:
    # 25 of SKU-A: all 20 at MAIN and 5 at WEST.
    status, order = api.post("/orders", one_line("SKU-A", 25))
    assert status == 201 and order["status"] == "confirmed", order
    number = order["number"]
    reserved = ledger(api, number)
    assert sorted(reserved) == [
        ("reserve", "MAIN", "SKU-A", 0, 20),
        ("reserve", "WEST", "SKU-A", 0, 5),
    ]

    status, changed = api.patch(
        f"/orders/{number}", {"lines": [{"sku": "SKU-A", "quantity": 22, "unit_price": "10.00"}]}
    )

    assert status == 200, changed
    # Three come back from one warehouse; the rest stays where it was.
    after = ledger(api, number)
    assert after[: len(reserved)] == reserved
    [released] = after[len(reserved) :]
    assert released[:3] == ("release", "WEST", "SKU-A") and released[3:] == (0, -3)
    assert api.get(f"/orders/{number}")[1]["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 20},
        {"warehouse": "WEST", "sku": "SKU-A", "quantity": 2},
    ]
    assert balances(api, "SKU-A") == {"MAIN": (20, 20), "WEST": (10, 2)}


# --- 2. drift --------------------------------------------------------------------------------


def _level_ids(runtime: Runtime, code: str, sku: str) -> tuple[int, int, int]:
    with runtime.transaction() as session:
        tenant_id, warehouse_id, product_id = session.execute(
            select(Tenant.id, Warehouse.id, Product.id)
            .join(Warehouse, Warehouse.tenant_id == Tenant.id)
            .join(Product, Product.tenant_id == Tenant.id)
            .where(Tenant.slug == "acme", Warehouse.code == code, Product.sku == sku)
        ).one()
    return tenant_id, warehouse_id, product_id


def _shift(runtime: Runtime, warehouse_id: int, product_id: int, column: str, by: int) -> None:
    """Change one balance behind the ledger's back, as a bad script or a restore would."""
    level = StockLevel.__table__
    with runtime.engine.begin() as conn:
        conn.execute(
            update(level)
            .where(level.c.warehouse_id == warehouse_id, level.c.product_id == product_id)
            .values({column: level.c[column] + by})
        )


@pytest.mark.parametrize("column", ["reserved", "on_hand"])
def test_stock_verify_reports_a_balance_that_drifts_from_the_ledger(
    api: Api, runtime: Runtime, db_url: str, config_dir: Path, tmp_path: Path, column: str
) -> None:
    status, order = api.post("/orders", one_line("SKU-A", 4))
    assert status == 201 and order["status"] == "confirmed", order
    tenant_id, warehouse_id, product_id = _level_ids(runtime, "MAIN", "SKU-A")
    env = {
        "ORDERHUB_DATABASE_URL": db_url,
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "cli-var"),
        "ORDERHUB_BROKER_URL": "embedded",
    }
    result = CliRunner(env=env).invoke(cli, ["stock", "verify"], catch_exceptions=False)
    assert result.exit_code == 0 and "no drift" in result.output, result.output

    _shift(runtime, warehouse_id, product_id, column, 3)
    try:
        with runtime.transaction() as session:
            drifts = inventory.verify(session)
        on_hand, reserved = (20, 7) if column == "reserved" else (23, 4)
        assert drifts == [
            inventory.Drift(tenant_id, warehouse_id, product_id, on_hand, 20, reserved, 4)
        ]
        result = CliRunner(env=env).invoke(cli, ["stock", "verify"], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert (
            f"DRIFT tenant={tenant_id} warehouse={warehouse_id} product={product_id}:"
            f" on_hand {on_hand} vs ledger 20, reserved {reserved} vs ledger 4"
        ) in result.output
        assert "1 balances drift from the ledger" in result.output
    finally:
        _shift(runtime, warehouse_id, product_id, column, -3)  # the app fixture checks too


# --- intake: the Stub channel ----------------------------------------------------------------


class StubChannels:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


def connect(api: Api, runtime: Runtime, token: str | None = None) -> dict[str, Any]:
    if runtime.plugins.pm.get_plugin("refusal-stubs") is None:
        runtime.plugins.register(StubChannels, "refusal-stubs")
    status, connection = api.post(
        "/connections",
        {"plugin": "stub", "name": "web-shop", "settings": {"secret": SECRET}},
        token=token,
    )
    assert status == 201, connection
    return connection


def delivery(order_id: str = "1001", sku: str = "SKU-A") -> bytes:
    return json.dumps(
        {
            "id": order_id,
            "updated_at": "2026-11-01T10:00:00+00:00",
            "name": "Ann Lee",
            "country": "US",
            "lines": [{"sku": sku, "quantity": 2, "unit_price": "10.00"}],
        }
    ).encode()


def post_hook(api: Api, slug: str, connection_id: int, body: bytes, key: str) -> Any:
    signature = hmac.new(SECRET.encode(), body, "sha256").hexdigest()
    return api.client.post(
        f"/hooks/{slug}/{connection_id}",
        data=body,
        headers={"X-Stub-Signature": signature, "X-Stub-Delivery": key},
    )


def inbox_count(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return session.scalar(select(func.count()).select_from(InboxEntry)) or 0


def channel_orders(runtime: Runtime) -> list[tuple[str, str | None]]:
    with runtime.transaction() as session:
        return [
            (t, e)
            for t, e in session.execute(
                select(Tenant.slug, Order.external_id)
                .join(Tenant, Tenant.id == Order.tenant_id)
                .where(Order.channel == "stub")
                .order_by(Order.id)
            )
        ]


def entry_status(api: Api, entry_id: int) -> str:
    _, page = api.get("/inbox")
    return next(e["status"] for e in page["items"] if e["id"] == entry_id)


# --- 3. replaying ----------------------------------------------------------------------------


@SQLITE
def test_a_processed_entry_is_never_replayed_a_rejected_one_is(api: Api, runtime: Runtime) -> None:
    shop = connect(api, runtime)
    runtime.jobs.start_worker(1, sweep=False)
    assert post_hook(api, "acme", shop["id"], delivery("1001"), "d-ok").status_code == 200
    assert post_hook(api, "acme", shop["id"], delivery("1002", "NOPE"), "d-bad").status_code == 200
    runtime.jobs.join()
    _, page = api.get("/inbox")
    by_key = {e["delivery_key"]: e for e in page["items"]}
    processed, rejected = by_key["d-ok"], by_key["d-bad"]
    assert (processed["status"], rejected["status"]) == ("processed", "rejected")
    assert channel_orders(runtime) == [("acme", "1001")]

    status, error = api.post(f"/inbox/{processed['id']}/replay")
    runtime.jobs.join()

    assert status == 409, error
    assert f"inbox entry {processed['id']} was processed already" in error["error"]["message"]
    assert entry_status(api, processed["id"]) == "processed"
    assert channel_orders(runtime) == [("acme", "1001")]
    assert len(ledger(api, api.get("/orders?channel=stub")[1]["items"][0]["number"])) == 1

    # The rejected one may be replayed (after a fix: here, a mapping of its SKU).
    status, _ = api.post(
        f"/connections/{shop['id']}/sku-mappings", {"channel_ref": "NOPE", "sku": "SKU-B"}
    )
    assert status == 201
    status, replayed = api.post(f"/inbox/{rejected['id']}/replay")
    runtime.jobs.join()
    assert (status, replayed["status"]) == (202, "pending")
    assert entry_status(api, rejected["id"]) == "processed"
    assert channel_orders(runtime) == [("acme", "1001"), ("acme", "1002")]


# --- 4. another tenant's connection -----------------------------------------------------------


@SQLITE
def test_a_webhook_url_naming_another_tenant_s_connection_is_404_and_stores_nothing(
    api: Api, runtime: Runtime
) -> None:
    mine = connect(api, runtime)
    theirs = connect(api, runtime, token=api.tokens["stranger"])
    runtime.jobs.start_worker(1, sweep=False)

    # Signed with the connection's own secret: only the URL's pairing is wrong.
    for slug, connection_id in (("other", mine["id"]), ("acme", theirs["id"])):
        response = post_hook(api, slug, connection_id, delivery(), f"d-{slug}")
        assert response.status_code == 404, (slug, connection_id, response.get_data())
        assert response.get_json()["error"]["code"] == "not_found"
    runtime.jobs.join()

    assert inbox_count(runtime) == 0
    for token in (None, api.tokens["stranger"]):
        assert api.get("/inbox", token=token)[1]["total"] == 0
    assert channel_orders(runtime) == []
    # The right pairings work, so the 404s were about the pairing.
    assert post_hook(api, "acme", mine["id"], delivery(), "d-mine").status_code == 200
    assert post_hook(api, "other", theirs["id"], delivery(), "d-theirs").status_code == 200
    runtime.jobs.join()
    assert sorted(channel_orders(runtime)) == [("acme", "1001"), ("other", "1001")]
    # Still refused once the right pairings have been looked up (and cached).
    for slug, connection_id in (("other", mine["id"]), ("acme", theirs["id"])):
        response = post_hook(api, slug, connection_id, delivery("1002"), f"d-{slug}-again")
        assert response.status_code == 404, (slug, connection_id, response.get_data())
    assert inbox_count(runtime) == 2


# --- 5a. the inbox's states ------------------------------------------------------------------

# State → (what the worker's "process" leaves, replay's status, discard's status).
INBOX_STATES = {
    "pending": ("processed", 202, 200),
    "processing": ("pending", 202, 409),  # an attempt started a moment ago and may be running
    "processed": ("processed", 409, 409),
    "rejected": ("rejected", 202, 200),
    "discarded": ("discarded", 409, 409),
}


def _entry_in(api: Api, runtime: Runtime, state: str) -> int:
    """A stored delivery (no worker runs, so it waits) put in ``state``."""
    shop = connect(api, runtime)
    assert post_hook(api, "acme", shop["id"], delivery(), "d-1").status_code == 200
    with runtime.transaction() as session:
        entry = session.scalars(select(InboxEntry)).one()
        if state == "processing":
            entry.started_at = utcnow()
        elif state != "pending":
            entry.status, entry.reason = state, None if state == "processed" else "why"
            entry.processed_at = utcnow() - timedelta(minutes=1)
        return entry.id


@SQLITE
@pytest.mark.parametrize("state", list(INBOX_STATES))
@pytest.mark.parametrize("action", ["process", "replay", "discard"])
def test_inbox_states_against_what_can_be_done_to_them(
    api: Api, runtime: Runtime, state: str, action: str
) -> None:
    entry_id = _entry_in(api, runtime, state)
    shown = "pending" if state == "processing" else state
    assert entry_status(api, entry_id) == shown
    left_by_process, replay_status, discard_status = INBOX_STATES[state]

    if action == "process":
        if state not in ("pending", "processing"):
            # The ingest step itself leaves a finished entry alone, whoever calls it.
            with runtime.transaction() as session:
                left = intake.ingest(
                    session, entry_id, runtime.adapter_for, prefix_for=lambda slug: "SO-"
                )
            assert left == state
        actors.ingest(runtime, entry_id)
        assert entry_status(api, entry_id) == left_by_process
        made = [("acme", "1001")] if left_by_process == "processed" and state == "pending" else []
        assert channel_orders(runtime) == made
        return
    if action == "replay":
        status, body = api.post(f"/inbox/{entry_id}/replay")
        expected, after = replay_status, "pending"
    else:
        status, body = api.post(f"/inbox/{entry_id}/discard", {"reason": "test"})
        expected, after = discard_status, "discarded"
    assert status == expected, body
    if status >= 400:
        assert body["error"]["code"] == "conflict", body
        assert entry_status(api, entry_id) == shown  # nothing changed
    else:
        assert entry_status(api, entry_id) == after
    assert channel_orders(runtime) == []


# --- 5b. the shipments' states ---------------------------------------------------------------


class StubCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]


def _shipment_in(api: Api, runtime: Runtime, state: str) -> tuple[dict[str, Any], str]:
    """A stub-carrier shipment of a new order, brought to ``state`` as a user would."""
    runtime.plugins.register(StubCarriers, "refusal-carriers")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}
    )
    assert status == 201, account
    status, order = api.post("/orders", ORDER)
    assert status == 201 and order["status"] == "confirmed", order
    status, shipped = api.post(f"/orders/{order['number']}/shipments", {})
    assert status == 201, shipped
    sid = shipped["id"]
    if state == "cancelled":
        assert api.post(f"/shipments/{sid}/cancel")[0] == 200
    elif state != "created":
        status, body = api.post(f"/shipments/{sid}/events", {"status": state})
        assert status == 201, body
    assert api.get(f"/shipments/{sid}")[1]["status"] == state
    return shipped, order["number"]


# State → what each action answers: void (POST .../cancel), a tracking event by hand, "check
# tracking now", and a reship (an exception opened by hand, then resolved by reshipping).
SHIPMENT_STATES = {
    "created": {"void": 200, "event": 201, "track": 200, "reship": 200},
    "in_transit": {"void": 409, "event": 201, "track": 200, "reship": 200},
    "delivered": {"void": 409, "event": 201, "track": 409, "reship": 200},
    "returned_to_sender": {"void": 409, "event": 201, "track": 409, "reship": 200},
    "cancelled": {"void": 409, "event": 409, "track": 409, "reship": 409},
}


@SQLITE
@pytest.mark.parametrize("state", list(SHIPMENT_STATES))
@pytest.mark.parametrize("action", ["void", "event", "track", "reship"])
def test_shipment_states_against_what_can_be_done_to_them(
    api: Api, runtime: Runtime, state: str, action: str
) -> None:
    shipped, number = _shipment_in(api, runtime, state)
    sid = shipped["id"]
    before = ledger(api, number)
    expected = SHIPMENT_STATES[state][action]

    if action == "void":
        status, body = api.post(f"/shipments/{sid}/cancel")
    elif action == "event":
        status, body = api.post(f"/shipments/{sid}/events", {"status": "delivered"})
    elif action == "track":
        status, body = api.post(f"/shipments/{sid}/track")
    else:
        status, body = api.post(
            f"/shipments/{sid}/exceptions", {"kind": "lost", "note": "never came"}
        )
        if status == 201:
            status, body = api.post(f"/exceptions/{body['id']}/resolve", {"resolution": "reship"})

    assert status == expected, body
    now = api.get(f"/shipments/{sid}")[1]["status"]
    if status >= 400:
        assert body["error"]["code"] in ("conflict", "illegal_transition"), body
        assert now == state
        assert ledger(api, number) == before  # no stock moved
        return
    if action == "void":
        assert now == "cancelled"
        assert ledger(api, number)[len(before) :] == [
            ("unship", "MAIN", "SKU-A", 2, 2),
            ("unship", "MAIN", "SKU-B", 1, 1),
        ]
    elif action == "event":
        # A terminal status is final: the event is kept, the status does not move.
        assert now == (state if state in TERMINAL_STATUSES else "delivered")
        assert ledger(api, number) == before
    elif action == "track":
        assert now == state and ledger(api, number) == before
    else:
        assert body["status"] == "resolved", body
        _, listed = api.get(f"/shipments?order={number}")
        assert sorted(s["replaces"] or 0 for s in listed["items"]) == [0, sid]
        assert sorted(ledger(api, number)[len(before) :]) == [
            ("reserve", "MAIN", "SKU-A", 0, 2),
            ("reserve", "MAIN", "SKU-B", 0, 1),
            ("ship", "MAIN", "SKU-A", -2, -2),
            ("ship", "MAIN", "SKU-B", -1, -1),
        ]


# --- stock movements: every line checked, on its boundaries, within the tenant ---------------


def _import(api: Api, kind: str, *rows: str) -> tuple[int, Any]:
    csv = "warehouse,sku,quantity\n" + "".join(r + "\n" for r in rows)
    response = api.client.post(
        f"/api/v1/stock/import?kind={kind}&reference=refusal", data=csv.encode(),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "text/csv"},
    )
    return response.status_code, response.get_json()


@SQLITE
@pytest.mark.parametrize(
    ("kind", "row", "refusal"),
    [
        ("inbound", "MAIN,SKU-A,1", None),
        ("inbound", "MAIN,SKU-A,0", "line 3: quantity must be at least 1"),
        ("inbound", "MAIN,SKU-A,-1", "line 3: quantity must be at least 1"),
        ("inbound", "MAIN,SKU-A,1000000", None),
        ("inbound", "MAIN,SKU-A,1000001", "line 3: quantity must be a whole number up to 1000000"),
        ("inbound", ",SKU-A,1", "line 3: no warehouse given"),
        ("inbound", "NOWHERE,SKU-A,1", "line 3: unknown warehouse 'NOWHERE'"),
        ("inbound", "MAIN,NO-SUCH,1", "line 3: unknown SKU 'NO-SUCH'"),
        # the other tenant's warehouse and product are no more known than invented ones
        ("inbound", "THEIRS,SKU-A,1", "line 3: unknown warehouse 'THEIRS'"),
        ("inbound", "MAIN,THEIR-SKU,1", "line 3: unknown SKU 'THEIR-SKU'"),
        ("outbound", "MAIN,SKU-A,0", "line 3: quantity must be at least 1"),
        ("adjust", "MAIN,SKU-A,-5", None),
        # within the range, so refused by the stock, not the check: 409, naming the line
        ("adjust", "MAIN,SKU-A,-1000000", "line 3: on-hand of SKU-A at MAIN cannot go to -999980"),
        ("adjust", "MAIN,SKU-A,-1000001", "line 3: quantity must be a whole number up to 1000000"),
    ],
)
def test_every_stock_line_is_checked_and_the_first_bad_one_named(
    api: Api, kind: str, row: str, refusal: str | None
) -> None:
    assert api.post("/warehouses", {"code": "THEIRS", "name": "Theirs"},
                    token=api.tokens["stranger"])[0] == 201
    assert api.post("/products", {"sku": "THEIR-SKU", "name": "Theirs"},
                    token=api.tokens["stranger"])[0] == 201
    before = balances(api, "SKU-A")
    status, body = _import(api, kind, "WEST,SKU-A,1", row)  # a good line first
    if refusal is None:
        assert status == 200, body
        assert body == {"rows": 2, "kind": kind}
        return
    assert status == (409 if "cannot go to" in refusal else 422), body
    assert body["error"]["message"].startswith(refusal), body
    problem = body["error"]["message"].removeprefix("line 3: ")
    assert body["error"]["details"] == [{"field": "line 3", "line": 3, "problem": problem}]
    assert balances(api, "SKU-A") == before  # all or nothing: the good line did not move
    assert ledger(api, "refusal") == []


@SQLITE
@pytest.mark.parametrize("state", list(INBOX_STATES))
def test_recording_a_rejection_touches_only_a_pending_entry(
    api: Api, runtime: Runtime, state: str
) -> None:
    """A copy of the job may have finished the entry between the attempt and the rejection:
    only an entry still waiting (or being worked) is marked rejected."""
    entry_id = _entry_in(api, runtime, state)
    with runtime.transaction() as session:
        recorded = intake.reject(session, entry_id, "unknown SKU 'X'")
    with runtime.session() as session:
        entry = session.get(InboxEntry, entry_id)
        assert entry is not None
        if state in ("pending", "processing"):
            assert recorded is True
            assert (entry.status, entry.reason) == ("rejected", "unknown SKU 'X'")
        else:
            assert recorded is False
            assert entry.status == state and entry.reason != "unknown SKU 'X'"


@SQLITE
@pytest.mark.parametrize(("attempt", "final"), [(1, False), (4, False), (5, True), (6, True)])
def test_a_failed_attempt_is_recorded_on_its_own_entry_only(
    api: Api, runtime: Runtime, attempt: int, final: bool
) -> None:
    """Before the last allowed attempt the entry waits again (queued anew, no longer running);
    the last one rejects it. A finished entry, or another one, is never touched."""
    entry_id = _entry_in(api, runtime, "processing")
    with runtime.session() as session:
        connection = session.get(InboxEntry, entry_id).connection_id  # type: ignore[union-attr]
    assert post_hook(api, "acme", connection, delivery("1002"), "d-2").status_code == 200
    with runtime.transaction() as session:
        other = session.scalars(select(InboxEntry).where(InboxEntry.id != entry_id)).one()
        before = (other.status, other.reason, other.enqueued_at, other.processed_at)
        answer = intake.fail_attempt(session, entry_id, attempt, 5, ValueError("no SKU\nmore"))
    assert answer is final
    with runtime.session() as session:
        entry = session.get(InboxEntry, entry_id)
        assert entry is not None and entry.started_at is None
        if final:
            assert (entry.status, entry.reason) == (
                "rejected", f"failed {attempt} times; the last error: ValueError: no SKU")
            assert entry.processed_at is not None
        else:
            assert (entry.status, entry.reason) == (
                "pending", f"attempt {attempt} of 5 failed: ValueError: no SKU; it will be"
                " tried again")
            assert entry.processed_at is None and entry.enqueued_at is not None
        again = session.get(InboxEntry, other.id)
        assert again is not None
        assert (again.status, again.reason, again.enqueued_at, again.processed_at) == before


@SQLITE
@pytest.mark.parametrize("state", ["processed", "rejected", "discarded"])
def test_a_late_failure_never_touches_a_finished_entry(
    api: Api, runtime: Runtime, state: str
) -> None:
    """A copy of the job finished the entry while this attempt failed: nothing changes."""
    entry_id = _entry_in(api, runtime, state)
    with runtime.session() as session:
        entry = session.get(InboxEntry, entry_id)
        assert entry is not None
        before = (entry.status, entry.reason, entry.processed_at, entry.enqueued_at)
    with runtime.transaction() as session:
        intake.fail_attempt(session, entry_id, 5, 5, ValueError("late"))
        intake.mark_unqueued(session, [entry_id])
    with runtime.session() as session:
        entry = session.get(InboxEntry, entry_id)
        assert entry is not None
        assert (entry.status, entry.reason, entry.processed_at, entry.enqueued_at) == before


@SQLITE
def test_only_the_entries_the_broker_refused_are_marked_unqueued(
    api: Api, runtime: Runtime
) -> None:
    entry_id = _entry_in(api, runtime, "pending")
    with runtime.session() as session:
        connection = session.get(InboxEntry, entry_id).connection_id  # type: ignore[union-attr]
    assert post_hook(api, "acme", connection, delivery("1002"), "d-2").status_code == 200
    with runtime.transaction() as session:
        for entry in session.scalars(select(InboxEntry)):
            entry.enqueued_at = utcnow()
        intake.mark_unqueued(session, [entry_id])
    with runtime.session() as session:
        queued = {e.id: e.enqueued_at is not None for e in session.scalars(select(InboxEntry))}
    assert queued[entry_id] is False
    assert [q for i, q in queued.items() if i != entry_id] == [True]


@SQLITE
def test_a_sweep_claims_the_oldest_due_entries_up_to_its_limit_and_none_of_a_paused_shop(
    api: Api, runtime: Runtime
) -> None:
    """Never queued (the broker refused them) makes an entry due; the claim takes the oldest
    first, no more than asked, and leaves a paused connection's entries for its resume."""
    shop = connect(api, runtime)
    status, paused = api.post(
        "/connections", {"plugin": "stub", "name": "outlet", "settings": {"secret": SECRET}}
    )
    assert status == 201, paused
    for key, number in (("d-1", "1001"), ("d-2", "1002"), ("d-3", "1003")):
        assert post_hook(api, "acme", shop["id"], delivery(number), key).status_code == 200
    assert post_hook(api, "acme", paused["id"], delivery("2001"), "p-1").status_code == 200
    assert api.post(f"/connections/{paused['id']}/pause")[0] == 200
    cutoff = utcnow() - timedelta(minutes=5)
    with runtime.transaction() as session:
        session.execute(update(InboxEntry).values(enqueued_at=None))
        # The sweep's grace period is exclusive: queued (or started) exactly at the cutoff
        # is not due yet; a microsecond earlier is.
        session.execute(update(InboxEntry).where(InboxEntry.delivery_key.in_(
            [intake._stored_key("d-3")])).values(enqueued_at=cutoff))
        session.execute(update(InboxEntry).where(InboxEntry.delivery_key.in_(
            [intake._stored_key("d-2")])).values(started_at=cutoff,
                                                 enqueued_at=cutoff - timedelta(microseconds=1)))
        ids = list(session.scalars(
            select(InboxEntry.id).where(InboxEntry.connection_id == shop["id"])
            .order_by(InboxEntry.id)))

    with runtime.transaction() as session:
        assert intake.claim_unqueued(session, cutoff, limit=1) == ids[:1]
    with runtime.transaction() as session:
        assert intake.claim_unqueued(session, cutoff, limit=10) == []  # d-2, d-3: at the cutoff
        later = cutoff + timedelta(microseconds=1)
        assert intake.claim_unqueued(session, later, limit=1) == ids[1:2]
    with runtime.transaction() as session:
        # The claimed ones were stamped as queued just now: only the third is still due.
        assert intake.claim_unqueued(session, later, limit=10) == ids[2:]
    with runtime.transaction() as session:
        assert intake.claim_unqueued(session, later) == []
        unqueued = session.scalars(
            select(InboxEntry.connection_id).where(InboxEntry.enqueued_at.is_(None))).all()
    assert unqueued == [paused["id"]]


@SQLITE
def test_growing_a_line_reserves_the_difference_under_the_order_s_number_and_its_user(
    api: Api,
) -> None:
    status, order = api.post("/orders", one_line("SKU-A", 3))
    assert status == 201 and order["status"] == "confirmed", order
    number = order["number"]

    status, changed = api.patch(
        f"/orders/{number}", {"lines": [{"sku": "SKU-A", "quantity": 5, "unit_price": "10.00"}]}
    )

    assert status == 200 and changed["status"] == "confirmed", changed
    assert ledger(api, number) == [
        ("reserve", "MAIN", "SKU-A", 0, 3),
        ("reserve", "MAIN", "SKU-A", 0, 2),
    ]
    _, page = api.get(f"/stock/ledger?reference={number}&kind=reserve")
    assert [e["actor"] for e in page["items"]] == ["admin", "admin"]


@SQLITE
def test_shrinking_a_line_that_was_low_closes_the_alert(api: Api) -> None:
    """SKU-A: 30 on hand, threshold 5. Taking 26 leaves 4 (an alert); giving 6 back leaves
    10, and the release checks the tenant's stock again."""
    status, order = api.post("/orders", one_line("SKU-A", 26))
    assert status == 201, order
    assert [a["sku"] for a in api.get("/stock/alerts")[1]["items"]] == ["SKU-A"]
    status, _ = api.patch(f"/orders/{order['number']}",
                          {"lines": [{"sku": "SKU-A", "quantity": 20, "unit_price": "10.00"}]})
    assert status == 200
    assert api.get("/stock/alerts")[1]["items"] == []
