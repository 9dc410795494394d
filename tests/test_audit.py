"""The audit log: every change leaves an entry (who, what, when, before and after) that admins
read through GET /audit; other roles cannot; and the table refuses UPDATE and DELETE in the
database itself, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ORDER, ROLES, Api
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError


def entries(api: Api, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = api.get(f"/audit?per_page=500{'&' + query if query else ''}")
    assert status == 200, body
    assert body["total"] == len(body["items"])
    return body["items"]


def only(api: Api, **filters: str) -> dict[str, Any]:
    found = entries(api, **filters)
    assert len(found) == 1, found
    return found[0]


def assert_recent(at: str, since: datetime) -> None:
    when = datetime.fromisoformat(at)
    assert when.tzinfo is not None, at
    assert since - timedelta(seconds=1) <= when <= datetime.now(UTC) + timedelta(seconds=1)


# --- orders --------------------------------------------------------------------------------


def test_order_create_modify_cancel_are_audited(api):
    started = datetime.now(UTC)
    operator = api.tokens["operator"]
    status, order = api.post("/orders", ORDER, token=operator)
    assert status == 201, order
    number = order["number"]

    created = only(api, entity_type="order", entity_id=number, action="order.create")
    assert created["actor"] == "operator"
    assert created["before"] is None
    assert created["after"]["number"] == number
    assert created["after"]["status"] == "confirmed"
    assert [(line["sku"], line["quantity"]) for line in created["after"]["lines"]] == [
        ("SKU-A", 2),
        ("SKU-B", 1),
    ]
    assert_recent(created["at"], started)

    status, _ = api.patch(
        f"/orders/{number}",
        {"note": "leave at the door", "lines": [{"sku": "SKU-A", "quantity": 5}]},
    )
    assert status == 200
    modified = only(api, entity_id=number, action="order.modify")
    assert modified["actor"] == "admin"
    assert modified["before"]["note"] is None and modified["after"]["note"] == "leave at the door"
    assert [line["quantity"] for line in modified["before"]["lines"]] == [2, 1]
    assert [line["quantity"] for line in modified["after"]["lines"]] == [5]
    assert modified["before"]["total"] == "45.50" and modified["after"]["total"] == "50.00"

    assert api.post(f"/orders/{number}/cancel", {"reason": "fraud"}, token=operator)[0] == 200
    cancelled = only(api, entity_id=number, action="order.cancel")
    assert cancelled["actor"] == "operator"
    assert (cancelled["before"]["status"], cancelled["after"]["status"]) == (
        "confirmed",
        "cancelled",
    )

    # Newest first, one entry per change, each later than the one before.
    trail = entries(api, entity_type="order", entity_id=number)
    assert [e["action"] for e in trail] == ["order.cancel", "order.modify", "order.create"]
    times = [datetime.fromisoformat(e["at"]) for e in trail]
    assert times == sorted(times, reverse=True)


def test_a_refused_change_leaves_no_entry(api):
    before = entries(api)
    bad = {"lines": [{"sku": "SKU-NOPE", "quantity": 1}]}
    assert api.post("/orders", bad)[0] == 422
    assert api.post("/products", {"sku": "SKU-A", "name": "Duplicate"})[0] == 409
    assert api.delete("/products/SKU-A")[0] == 409
    assert entries(api) == before


# --- catalogue -----------------------------------------------------------------------------


def test_product_and_warehouse_changes_are_audited(api):
    warehouse = api.tokens["warehouse"]
    new = {"sku": "SKU-N", "name": "November", "price": "4.00", "low_stock_threshold": 1}
    assert api.post("/products", new, token=warehouse)[0] == 201
    created = only(api, entity_type="product", entity_id="SKU-N", action="product.create")
    assert created["actor"] == "warehouse"
    assert created["before"] is None
    assert created["after"]["name"] == "November" and created["after"]["price"] == "4.00"

    assert api.patch("/products/SKU-N", {"price": "4.50", "name": "Nova"})[0] == 200
    updated = only(api, entity_id="SKU-N", action="product.update")
    assert updated["actor"] == "admin"
    assert (updated["before"]["price"], updated["after"]["price"]) == ("4.00", "4.50")
    assert (updated["before"]["name"], updated["after"]["name"]) == ("November", "Nova")

    assert api.delete("/products/SKU-N")[0] == 200
    deleted = only(api, entity_id="SKU-N", action="product.delete")
    assert deleted["before"]["name"] == "Nova" and deleted["after"] is None

    assert api.post("/warehouses", {"code": "EAST", "name": "East"})[0] == 201
    assert api.patch("/warehouses/EAST", {"priority": 3})[0] == 200
    trail = entries(api, entity_type="warehouse", entity_id="EAST")
    assert [e["action"] for e in trail] == ["warehouse.update", "warehouse.create"]
    assert (trail[0]["before"]["priority"], trail[0]["after"]["priority"]) == (100, 3)


# --- stock ---------------------------------------------------------------------------------


def test_stock_adjustments_leave_who_what_when_and_why_in_the_ledger(api):
    """Every stock movement is a ledger row keeping the actor, the reason, the time and the
    signed change (and each batch one audit entry, below)."""
    started = datetime.now(UTC)
    status, _ = api.post(
        "/stock/adjust",
        {"warehouse": "MAIN", "reason": "water damage", "items": [{"sku": "SKU-B", "delta": -3}]},
        token=api.tokens["warehouse"],
    )
    assert status == 200
    _, ledger = api.get("/stock/ledger?kind=adjust")
    [entry] = ledger["items"]
    assert (entry["actor"], entry["reason"], entry["sku"], entry["on_hand_delta"]) == (
        "warehouse",
        "water damage",
        "SKU-B",
        -3,
    )
    assert_recent(entry["at"], started)


def test_each_stock_batch_is_one_audit_entry_naming_what_moved_as_written(api):
    inbound = {"warehouse": "MAIN", "reference": "PO-7", "items": [
        {"sku": "SKU-A", "quantity": 3}, {"sku": "SKU-C", "quantity": 2, "warehouse": "WEST"}]}
    assert api.post("/stock/inbound", inbound)[0] == 200
    outbound = {"warehouse": "MAIN", "reference": "RTV-1",
                "items": [{"sku": "SKU-A", "quantity": 1, "reason": "damaged"}]}
    assert api.post("/stock/outbound", outbound, token=api.tokens["warehouse"])[0] == 200
    counted = {"warehouse": "MAIN", "reason": "count", "items": [{"sku": "SKU-B", "quantity": 7}]}
    assert api.post("/stock/adjust", counted)[0] == 200
    _, page = api.get("/audit?entity_type=stock&per_page=50")
    mine = [(e["actor"], e["action"], e["entity_id"], e["before"], e["after"])
            for e in page["items"] if e["actor"] != "seed"]
    assert mine == [
        ("admin", "stock.adjust", "adjust", None, {"reference": None, "reason": "count",
         "movements": [{"warehouse": "MAIN", "sku": "SKU-B", "on_hand_delta": -3,
                        "reason": "count"}]}),
        ("warehouse", "stock.outbound", "RTV-1", None, {"reference": "RTV-1", "reason": None,
         "movements": [{"warehouse": "MAIN", "sku": "SKU-A", "on_hand_delta": -1,
                        "reason": "damaged"}]}),
        ("admin", "stock.inbound", "PO-7", None, {"reference": "PO-7", "reason": None,
         "movements": [{"warehouse": "MAIN", "sku": "SKU-A", "on_hand_delta": 3, "reason": None},
                       {"warehouse": "WEST", "sku": "SKU-C", "on_hand_delta": 2,
                        "reason": None}]}),
    ]


# --- users ---------------------------------------------------------------------------------


def test_user_changes_are_audited_without_secrets(api):
    body = {
        "username": "dana",
        "password": "s3cret-passw0rd",
        "role": "operator",
        "full_name": "Dana Doe",
        "email": "dana@example.com",
    }
    status, user = api.post("/users", body)
    assert status == 201, user
    created = only(api, entity_type="user", entity_id="dana", action="user.create")
    assert created["actor"] == "admin" and created["before"] is None
    assert (
        created["after"]["role"] == "operator" and created["after"]["email"] == "dana@example.com"
    )
    assert "s3cret-passw0rd" not in str(created)
    assert not any("password" in key for key in created["after"])

    assert api.patch("/users/dana", {"role": "analyst"})[0] == 200
    updated = only(api, entity_id="dana", action="user.update")
    assert (updated["before"]["role"], updated["after"]["role"]) == ("operator", "analyst")

    status, issued = api.post("/users/dana/tokens", {"name": "laptop"})
    assert status == 201
    token_entry = only(api, entity_id="dana", action="token.create")
    assert issued["token"] not in str(token_entry)
    assert token_entry["after"]["name"] == "laptop"


# --- who may read it -----------------------------------------------------------------------


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_only_admins_read_the_audit_log(api, role):
    status, body = api.get("/audit", token=api.tokens[role])
    assert status == 403, body
    assert "audit.read" in body["error"]["message"]


def test_admins_see_only_their_own_tenant(api):
    assert api.post("/orders", ORDER)[0] == 201
    ours = entries(api)
    theirs = api.get("/audit?per_page=500", token=api.tokens["stranger"])[1]["items"]
    assert any(e["action"] == "order.create" for e in ours)
    assert not any(e["action"] == "order.create" for e in theirs)
    assert not {e["id"] for e in ours} & {e["id"] for e in theirs}


def test_audit_filters_and_paging(api):
    for n in range(3):
        assert api.patch("/products/SKU-C", {"name": f"Charlie {n}"})[0] == 200
    updates = entries(api, action="product.update", entity_id="SKU-C")
    assert [e["after"]["name"] for e in updates] == ["Charlie 2", "Charlie 1", "Charlie 0"]
    assert entries(api, actor="nobody") == []
    status, page = api.get("/audit?action=product.update&per_page=2&page=2")
    assert status == 200 and page["total"] == 3
    assert [e["after"]["name"] for e in page["items"]] == ["Charlie 0"]


# --- append-only in the database -----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'mallory'",
        "UPDATE audit_log SET after = NULL WHERE action = 'product.update'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'product.update'",
    ],
)
def test_audit_log_refuses_update_and_delete(api, runtime, statement):
    assert api.patch("/products/SKU-A", {"price": "11.00"})[0] == 200
    before = entries(api)
    assert before
    with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text(statement))
    assert entries(api) == before
    with runtime.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    assert count >= len(before)


def test_audit_log_still_accepts_new_entries(api, runtime):
    """The guard is on UPDATE and DELETE only: appending goes on after a refused change."""
    with pytest.raises(DBAPIError), runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    assert api.patch("/products/SKU-A", {"price": "12.00"})[0] == 200
    assert only(api, entity_id="SKU-A", action="product.update")["after"]["price"] == "12.00"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_audit_log_refuses_truncate_on_postgresql(api, runtime):
    """TRUNCATE fires no row trigger: a statement trigger of its own refuses it."""
    assert api.patch("/products/SKU-A", {"price": "11.00"})[0] == 200
    before = entries(api)
    with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))
    assert entries(api) == before
