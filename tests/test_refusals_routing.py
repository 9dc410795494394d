"""Routing under concurrent writers (PostgreSQL): a plan that loses a race to another writer.

Named a refusal test so the mutation run (which takes PostgreSQL only for these) sees it.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ORDER, Api, waits_for_a_lock
from sqlalchemy import text
from test_rules import allocations, config_dir, order, reserved  # noqa: F401 (fixture)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_plan_overtaken_by_another_writer_gives_back_what_it_took_and_plans_again(
    api: Api, runtime: Any
):
    """The plan reads free stock, then reserves each part with a conditional update. Here
    another transaction sends 4 of WEST's 5 SKU-C out between the two: the plan's SKU-A part
    at WEST is already taken, its SKU-C part then finds too little. It must give the SKU-A
    back and plan again from fresh numbers (WEST2, also in the region, now fills the order) —
    never reserve what is not there, never keep half a plan."""
    # A second warehouse in the region, ranked after WEST by priority and after MAIN too:
    # planning again picks it (region first); falling back to the priority path would not.
    second = {"code": "WEST2", "name": "West 2", "country": "US", "region": "west",
              "priority": 30}
    assert api.post("/warehouses", second)[0] == 201
    assert api.post("/stock/inbound", {"warehouse": "WEST2", "items": [
        {"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-C", "quantity": 5}]})[0] == 200
    west = {**ORDER["consignee"]["address"], "region": "west", "city": "Reno"}
    body = order(lines=[{"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-C", "quantity": 5}],
                 consignee={**ORDER["consignee"], "address": west})
    with runtime.engine.connect() as other:
        ids = other.execute(text(
            "SELECT w.tenant_id, w.id, p.id FROM warehouses w JOIN tenants t ON t.id ="
            " w.tenant_id JOIN products p ON p.tenant_id = t.id"
            " WHERE t.slug = 'acme' AND w.code = 'WEST' AND p.sku = 'SKU-C'")).one()
        # The other writer: a dispatch of 4 SKU-C at WEST, with its ledger row, not committed.
        other.execute(text("UPDATE stock_levels SET on_hand = on_hand - 4"
                           " WHERE warehouse_id = :w AND product_id = :p"),
                      {"w": ids[1], "p": ids[2]})
        other.execute(text(
            "INSERT INTO stock_ledger (tenant_id, warehouse_id, product_id, kind, on_hand_delta,"
            " reserved_delta, reference, actor, at) VALUES (:t, :w, :p, 'outbound', -4, 0,"
            " 'race', 'other', now())"), {"t": ids[0], "w": ids[1], "p": ids[2]})
        waited, placing, answer = waits_for_a_lock(runtime.engine,
                                                   lambda: api.post("/orders", body))
        other.commit()
        placing.join(timeout=60)
    assert waited, "the plan did not reach WEST's SKU-C row while the other writer held it"
    status, created = answer[0]
    assert status == 201, created
    assert allocations(api, created["number"]) == [("WEST2", "SKU-A", 2),
                                                   ("WEST2", "SKU-C", 5)]
    assert reserved(runtime, "SKU-A") == {"WEST2": 2}  # none left at WEST
    assert reserved(runtime, "SKU-C") == {"WEST2": 5}
