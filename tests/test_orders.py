"""Orders through the API: create, find, modify, cancel, split, merge, allocate, history, stats."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from conftest import ORDER
from sqlalchemy import select, text, update

from hub.core import tenancy
from hub.core.models import Counter, Tenant


def order(**changes):
    body = copy.deepcopy(ORDER)
    body.update(changes)
    return body


def stock_of(api, sku):
    status, body = api.get(f"/stock?sku={sku}")
    assert status == 200
    return {i["warehouse"]: (i["on_hand"], i["reserved"]) for i in body["items"]}


def test_create_reserves_stock_and_returns_the_order(api):
    status, created = api.post("/orders", order(shipping_total="4.95", tax_total="2.10"))

    assert status == 201, created
    assert created["number"] == "SO-000001"
    assert created["status"] == "confirmed"
    assert created["subtotal"] == "45.50"
    assert created["total"] == "52.55"
    assert created["consignee"]["address"]["city"] == "Newark"
    assert created["customer"]["email"] == "ann@example.com"
    assert [(line["sku"], line["quantity"]) for line in created["lines"]] == [
        ("SKU-A", 2),
        ("SKU-B", 1),
    ]
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 2), "WEST": (10, 0)}
    assert stock_of(api, "SKU-B") == {"MAIN": (10, 1)}

    status, fetched = api.get(f"/orders/{created['number']}")
    assert status == 200
    assert fetched["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 2},
        {"warehouse": "MAIN", "sku": "SKU-B", "quantity": 1},
    ]


def test_unit_price_defaults_to_the_product_price(api):
    status, created = api.post("/orders", order(lines=[{"sku": "SKU-C", "quantity": 3}]))
    assert status == 201
    assert created["lines"][0]["unit_price"] == "3.99"
    assert created["total"] == "11.97"


def test_a_line_no_single_warehouse_can_fill_is_split_across_warehouses(api):
    # Given MAIN holds 20 of SKU-A and WEST 10
    status, created = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 25}]))

    assert status == 201
    assert created["status"] == "confirmed"
    _, fetched = api.get(f"/orders/{created['number']}")
    assert fetched["allocations"] == [
        {"warehouse": "MAIN", "sku": "SKU-A", "quantity": 20},
        {"warehouse": "WEST", "sku": "SKU-A", "quantity": 5},
    ]
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 20), "WEST": (10, 5)}


def test_short_stock_holds_the_order_as_a_backorder_until_stock_arrives(api):
    status, held = api.post(
        "/orders", order(lines=[{"sku": "SKU-A", "quantity": 40}, {"sku": "SKU-B", "quantity": 1}])
    )

    assert status == 201
    assert held["status"] == "held"
    assert held["type"] == "backorder"
    assert "SKU-A needs 40, 30 available" in held["hold_reason"]
    # Nothing is reserved for a held order: not even the line that could be filled.
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 0), "WEST": (10, 0)}
    assert stock_of(api, "SKU-B") == {"MAIN": (10, 0)}

    status, still = api.post(f"/orders/{held['number']}/allocate")
    assert status == 200 and still["status"] == "held"

    api.post("/stock/inbound", {"warehouse": "WEST", "items": [{"sku": "SKU-A", "quantity": 15}]})
    status, confirmed = api.post(f"/orders/{held['number']}/allocate")
    assert status == 200
    assert confirmed["status"] == "confirmed"
    assert confirmed["type"] == "normal"
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 20), "WEST": (25, 20)}


def test_find_orders_by_text_status_channel_sku_dates_and_amount(api):
    _, first = api.post("/orders", order())
    _, second = api.post(
        "/orders",
        order(
            lines=[{"sku": "SKU-C", "quantity": 1}],
            channel="web",
            external_name="#1001",
            consignee={
                "name": "Bob Stone",
                "phone": "+44 20 7946 0000",
                "address": {
                    "line1": "2 High St",
                    "city": "London",
                    "postcode": "N1",
                    "country": "GB",
                },
            },
            customer={"email": "bob@example.org", "name": "Bob Stone"},
        ),
    )
    api.post(f"/orders/{second['number']}/cancel", {"reason": "customer asked"})

    def numbers(query):
        status, body = api.get(f"/orders?{query}")
        assert status == 200, body
        return [o["number"] for o in body["items"]], body["total"]

    assert numbers("q=ann") == ([first["number"]], 1)
    assert numbers("q=BOB%40example") == ([second["number"]], 1)
    assert numbers("q=7946") == ([second["number"]], 1)
    assert numbers(f"q={quote('#1001')}") == ([second["number"]], 1)
    assert numbers(f"q={first['number']}") == ([first["number"]], 1)
    assert numbers("status=cancelled") == ([second["number"]], 1)
    assert numbers("status=confirmed,cancelled&sort=number") == (
        [first["number"], second["number"]],
        2,
    )
    assert numbers("channel=web") == ([second["number"]], 1)
    assert numbers("sku=SKU-B") == ([first["number"]], 1)
    assert numbers("amount_min=40&amount_max=50") == ([first["number"]], 1)
    soon = quote((datetime.now(UTC) + timedelta(hours=1)).isoformat())
    past = quote((datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assert numbers(f"created_from={soon}") == ([], 0)
    assert numbers(f"created_from={past}&created_to={soon}&sort=-total")[1] == 2
    page, total = numbers("per_page=1&page=2&sort=number")
    assert (page, total) == ([second["number"]], 2)


def test_modify_replaces_lines_and_re_reserves_stock(api):
    _, created = api.post("/orders", order())
    number = created["number"]

    status, changed = api.patch(
        f"/orders/{number}",
        {
            "lines": [{"sku": "SKU-A", "quantity": 5}, {"sku": "SKU-C", "quantity": 1}],
            "consignee": {
                "name": "Ann Lee-Smith",
                "phone": "+1 555 0199",
                "address": {"line1": "9 Elm St", "city": "Trenton", "country": "us"},
            },
        },
    )

    assert status == 200, changed
    assert [(line["sku"], line["quantity"]) for line in changed["lines"]] == [
        ("SKU-A", 5),
        ("SKU-C", 1),
    ]
    assert changed["subtotal"] == "53.99"
    assert changed["consignee"]["address"] == {
        "line1": "9 Elm St",
        "line2": None,
        "city": "Trenton",
        "region": None,
        "postcode": None,
        "country": "US",
    }
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 5), "WEST": (10, 0)}
    assert stock_of(api, "SKU-B") == {"MAIN": (10, 0)}
    assert stock_of(api, "SKU-C") == {"MAIN": (5, 1), "WEST": (5, 0)}


def test_modify_beyond_stock_holds_the_order(api):
    _, created = api.post("/orders", order())
    status, changed = api.patch(
        f"/orders/{created['number']}", {"lines": [{"sku": "SKU-B", "quantity": 11}]}
    )
    assert status == 200
    assert changed["status"] == "held"
    assert "SKU-B needs" in changed["hold_reason"]


def test_cancel_releases_stock_and_cannot_be_repeated(api):
    _, created = api.post("/orders", order())
    number = created["number"]

    status, cancelled = api.post(f"/orders/{number}/cancel", {"reason": "fraud check"})
    assert status == 200
    assert cancelled["status"] == "cancelled"
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 0), "WEST": (10, 0)}

    status, error = api.post(f"/orders/{number}/cancel", {})
    assert status == 409
    assert error["error"]["code"] == "illegal_transition"
    assert "it is cancelled" in error["error"]["message"]
    status, error = api.patch(f"/orders/{number}", {"note": "too late"})
    assert status == 409


def test_split_moves_lines_and_their_reservation_to_a_new_order(api):
    _, created = api.post(
        "/orders", order(lines=[{"sku": "SKU-A", "quantity": 3}, {"sku": "SKU-B", "quantity": 2}])
    )
    number = created["number"]

    status, child = api.post(
        f"/orders/{number}/split",
        {"lines": [{"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-B", "quantity": 2}]},
    )

    assert status == 201, child
    assert child["parent_number"] == number
    assert child["status"] == "confirmed"
    assert [(line["sku"], line["quantity"]) for line in child["lines"]] == [
        ("SKU-A", 1),
        ("SKU-B", 2),
    ]
    _, parent = api.get(f"/orders/{number}")
    assert [(line["sku"], line["quantity"]) for line in parent["lines"]] == [("SKU-A", 2)]
    assert parent["total"] == "20.00"
    assert child["total"] == "61.00"
    assert parent["allocations"] == [{"warehouse": "MAIN", "sku": "SKU-A", "quantity": 2}]
    # Reserved stock is handed over, not released and taken again.
    assert stock_of(api, "SKU-A") == {"MAIN": (20, 3), "WEST": (10, 0)}
    _, ledger = api.get("/stock/ledger?sku=SKU-A&kind=release")
    assert ledger["total"] == 0

    status, error = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-A", "quantity": 2}]}
    )
    assert status == 422
    assert "at least one line" in error["error"]["message"]
    status, error = api.post(
        f"/orders/{number}/split", {"lines": [{"sku": "SKU-C", "quantity": 1}]}
    )
    assert status == 422


def test_merge_folds_orders_of_one_customer_and_address_into_the_first(api):
    _, first = api.post("/orders", order(lines=[{"sku": "SKU-A", "quantity": 1}]))
    _, second = api.post(
        "/orders", order(lines=[{"sku": "SKU-C", "quantity": 2}], shipping_total="5.00")
    )

    status, merged = api.post("/orders/merge", {"numbers": [first["number"], second["number"]]})

    assert status == 200, merged
    assert merged["number"] == first["number"]
    assert [(line["sku"], line["quantity"]) for line in merged["lines"]] == [
        ("SKU-A", 1),
        ("SKU-C", 2),
    ]
    assert merged["total"] == "22.98"
    _, gone = api.get(f"/orders/{second['number']}")
    assert gone["status"] == "cancelled"
    assert gone["merged_into"] == first["number"]
    assert gone["allocations"] == []
    _, kept = api.get(f"/orders/{first['number']}")
    assert {(a["sku"], a["quantity"]) for a in kept["allocations"]} == {("SKU-A", 1), ("SKU-C", 2)}
    assert stock_of(api, "SKU-C") == {"MAIN": (5, 2), "WEST": (5, 0)}


def test_merge_refuses_other_addresses_and_shipped_or_cancelled_orders(api):
    _, first = api.post("/orders", order())
    _, elsewhere = api.post(
        "/orders",
        order(
            consignee={
                "name": "Ann Lee",
                "address": {"line1": "5 Other Rd", "city": "Newark", "country": "US"},
            }
        ),
    )
    status, error = api.post("/orders/merge", {"numbers": [first["number"], elsewhere["number"]]})
    assert status == 422
    assert "another address" in error["error"]["message"]

    api.post(f"/orders/{elsewhere['number']}/cancel", {})
    status, error = api.post("/orders/merge", {"numbers": [first["number"], elsewhere["number"]]})
    assert status == 409


def test_history_records_every_transition_with_its_reason(api):
    _, created = api.post("/orders", order())
    number = created["number"]
    api.patch(f"/orders/{number}", {"note": "gift wrap"})
    api.post(f"/orders/{number}/cancel", {"reason": "customer asked"})

    status, history = api.get(f"/orders/{number}/history")

    assert status == 200
    steps = [(h["action"], h["from"], h["to"]) for h in history["items"]]
    assert steps == [
        ("created", None, "new"),
        ("classified", "new", "new"),
        ("reserved", "new", "confirmed"),
        ("modified", "confirmed", "confirmed"),
        ("cancelled", "confirmed", "cancelled"),
    ]
    assert history["items"][-1]["reason"] == "customer asked"
    assert {h["actor"] for h in history["items"]} == {"admin"}


def test_statistics_count_and_sum_by_day_status_and_channel(api):
    api.post("/orders", order())
    api.post("/orders", order(channel="web"))
    _, third = api.post("/orders", order(channel="web"))
    api.post(f"/orders/{third['number']}/cancel", {})

    status, stats = api.get("/orders/stats")

    assert status == 200
    assert stats["total"] == [{"currency": "USD", "count": 3, "amount": "136.50"}]
    today = datetime.now(UTC).date().isoformat()
    assert stats["by_day"] == [{"key": today, "currency": "USD", "count": 3, "amount": "136.50"}]
    assert {(s["key"], s["count"]) for s in stats["by_status"]} == {
        ("confirmed", 2),
        ("cancelled", 1),
    }
    assert {(s["key"], s["count"]) for s in stats["by_channel"]} == {("api", 1), ("web", 2)}


def test_order_numbers_are_per_tenant(api):
    _, mine = api.post("/orders", order())
    _, theirs = api.post("/orders", order(), token=api.tokens["stranger"])
    assert mine["number"] == theirs["number"] == "SO-000001"
    status, _ = api.get(f"/orders/{mine['number']}", token=api.tokens["stranger"])
    assert status == 200  # their own SO-000001, not ours
    _, listed = api.get("/orders", token=api.tokens["stranger"])
    assert listed["total"] == 1


def test_order_numbers_grow_past_six_digits(api, runtime):
    # Given a tenant whose millionth order is next
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT setval(CAST(:s AS regclass), 999999)"),
                {"s": tenancy.sequence_name(tenant_id, "order")},
            )
        else:
            session.execute(
                update(Counter).where(Counter.tenant_id == tenant_id).values(value=999999)
            )

    _, created = api.post("/orders", order())
    _, split_off = api.post(f"/orders/{created['number']}/split",
                            {"lines": [{"sku": "SKU-B", "quantity": 1}]})

    assert created["number"] == "SO-1000000"
    assert split_off["number"] == "SO-1000001"
    _, history = api.get(f"/orders/{created['number']}/history")
    assert history["total"] >= 2


def test_modify_with_an_empty_customer_says_what_is_missing(api):
    _, created = api.post("/orders", order())
    number = created["number"]
    for customer in ({}, {"name": ""}):
        status, body = api.patch(f"/orders/{number}", {"customer": customer})
        assert status == 422, body
        assert "email, a name or a phone" in body["error"]["message"]
    status, changed = api.patch(f"/orders/{number}", {"customer": {"name": "Ann Lee"}})
    assert status == 200
    assert changed["customer"]["name"] == "Ann Lee"


def test_search_texts_match_literally_even_with_like_wildcards(api):
    """``%``, ``_`` and ``\\`` in a filter are characters to find, not patterns (on both
    databases, which escape differently)."""
    names = ["Ann_Lee", "AnnXLee", "100% Cotton", "100 Cotton", "C:\\Shop", "C:Shop"]
    by_name = {}
    for name in names:
        status, created = api.post("/orders", order(
            consignee={**ORDER["consignee"], "name": name},
            customer={"email": f"{len(by_name)}@example.com", "name": name},
        ))
        assert status == 201, created
        by_name[name] = created["number"]

    def found(param, text):
        status, body = api.get(f"/orders?{param}={quote(text)}")
        assert status == 200, body
        return sorted(o["number"] for o in body["items"])

    for param in ("consignee", "customer", "q"):
        assert found(param, "n_L") == [by_name["Ann_Lee"]], param
        assert found(param, "0%") == [by_name["100% Cotton"]], param
        assert found(param, ":\\S") == [by_name["C:\\Shop"]], param
        assert found(param, "%") == [by_name["100% Cotton"]], param
        assert found(param, "_") == [by_name["Ann_Lee"]], param


def test_every_order_filter_on_its_boundaries(api):
    """``…from`` and ``amount_…`` bounds include the order sitting on them, ``…to`` bounds
    exclude it; each text filter looks only where it says."""
    _, ann = api.post("/orders", order(paid_at="2026-03-02T08:00:00+00:00"))
    _, bob = api.post("/orders", order(
        consignee={**ORDER["consignee"], "name": "Bob Stone", "phone": "+44 20 7946 0000"},
        customer={"email": "zed@example.org", "name": "Zed Park", "phone": "+1 555 0142"},
        lines=[{"sku": "SKU-C", "quantity": 1, "unit_price": "3.99"}],
    ))
    at = api.get(f"/orders/{ann['number']}")[1]["created_at"]
    after = (datetime.fromisoformat(at) + timedelta(microseconds=1)).isoformat()

    def found(query):
        status, body = api.get(f"/orders?{query}&sort=number")
        assert status == 200, body
        return [o["number"] for o in body["items"]]

    a, b = ann["number"], bob["number"]
    assert a in found(f"created_from={quote(at)}")
    assert a not in found(f"created_to={quote(at)}")
    assert a in found(f"created_to={quote(after)}")
    assert a not in found(f"created_from={quote(after)}")
    assert found("paid_from=2026-03-02T08:00:00Z") == [a]
    assert found("paid_to=2026-03-02T08:00:00Z") == []
    assert found("paid_to=2026-03-02T08:00:01Z") == [a]
    assert found("paid_from=2026-03-02&paid_to=2026-03-02") == [a]  # the whole day
    assert found(f"amount_min={ann['total']}") == [a]
    assert found(f"amount_max={ann['total']}") == [a, b]
    assert found(f"amount_max={bob['total']}") == [b]
    assert found(f"amount_min={bob['total']}&amount_max={bob['total']}") == [b]
    assert found("amount_min=45.51") == []  # one cent above Ann's 45.50
    assert found(f"number={a}") == [a] and found(f"number={a[:-1]}") == []
    assert found("consignee=stone") == [b] and found("consignee=7946") == []
    assert found("phone=7946") == [b] and found("phone=stone") == []
    assert found("customer=zed%40") == [b] and found("customer=0142") == [b]
    assert found("customer=stone") == []  # the consignee is not the customer
    assert found("q=0142") == [b] and found("q=park") == [b]
    assert found("fulfilled_by=hub") == [a, b] and found("fulfilled_by=channel") == []


def test_a_search_counts_up_to_the_cap_and_says_when_there_are_more(api, monkeypatch):
    from hub.core import order_queries

    monkeypatch.setattr(order_queries, "COUNT_CAP", 2)
    numbers = [api.post("/orders", ORDER)[1]["number"] for _ in range(3)]
    status, page = api.get("/orders?per_page=1")
    assert status == 200
    assert (page["total"], page["total_capped"]) == (2, True)
    assert [o["number"] for o in page["items"]] == [numbers[-1]]  # newest first
    # the pages go on past the count
    assert api.get("/orders?per_page=1&page=3")[1]["items"][0]["number"] == numbers[0]
    exact = api.get(f"/orders?number={numbers[0]}")[1]
    assert (exact["total"], exact["total_capped"]) == (1, False)
