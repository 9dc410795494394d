"""Products, warehouses and stock through the HTTP API: balances and their filters, inbound,
outbound, adjustments, CSV import, the ledger, low-stock alerts, and a drift check at the end.

The seeded tenant (see conftest) has MAIN (priority 10) and WEST (priority 20) with
SKU-A 20/10, SKU-B 10/-, SKU-C 5/5; thresholds A=5, B=0, C=2.
"""

from __future__ import annotations

import io
import random

import pytest
from conftest import ORDER, Api
from sqlalchemy import select

from hub.core import catalog, inventory
from hub.core.models import Event, Tenant


def balances(api: Api, query: str = "") -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, warehouse) → (on_hand, reserved) for every balance row, following the pages."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    page = 1
    while True:
        status, body = api.get(f"/stock?per_page=500&page={page}{'&' + query if query else ''}")
        assert status == 200, body
        for i in body["items"]:
            assert i["available"] == i["on_hand"] - i["reserved"]
            out[(i["sku"], i["warehouse"])] = (i["on_hand"], i["reserved"])
        if page * 500 >= body["total"]:
            return out
        page += 1


def post_csv(api: Api, text: str, query: str = "", *, multipart: bool = False):
    headers = {"Authorization": f"Bearer {api.token}"}
    url = f"/api/v1/stock/import{'?' + query if query else ''}"
    if multipart:
        response = api.client.post(
            url,
            headers=headers,
            data={"file": (io.BytesIO(text.encode()), "stock.csv")},
            content_type="multipart/form-data",
        )
    else:
        response = api.client.post(
            url, headers=headers, data=text.encode(), content_type="text/csv"
        )
    return response.status_code, response.get_json(silent=True)


def events_named(runtime, name: str, sku: str) -> int:
    with runtime.transaction() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        rows = session.scalars(
            select(Event).where(Event.tenant_id == acme, Event.name == name)
        ).all()
        return sum(1 for e in rows if e.payload.get("sku") == sku)


def assert_no_drift(runtime) -> None:
    with runtime.transaction() as session:
        assert inventory.verify(session) == []


# --- products ------------------------------------------------------------------------------


def test_product_create_read_update(api):
    new = {
        "sku": "SKU-N",
        "name": "November",
        "category": "garden",
        "brand": "Nord",
        "price": "12.34",
        "low_stock_threshold": 3,
    }
    status, product = api.post("/products", new)
    assert status == 201, product
    assert {k: product[k] for k in new} == new
    assert product["active"] is True

    status, product = api.get("/products/SKU-N")
    assert status == 200 and product["name"] == "November" and product["price"] == "12.34"

    status, error = api.post("/products", dict(new, name="Other"))
    assert status == 409, error
    assert "SKU-N" in error["error"]["message"]

    status, product = api.patch("/products/SKU-N", {"name": "Nova", "price": "15"})
    assert status == 200, product
    assert product["name"] == "Nova" and product["price"] == "15.00"
    assert api.get("/products/SKU-N")[1]["name"] == "Nova"
    assert api.get("/products/SKU-N")[1]["brand"] == "Nord"  # untouched fields stay

    status, listed = api.get("/products?category=garden")
    assert status == 200 and [p["sku"] for p in listed["items"]] == ["SKU-N"]
    assert listed["total"] == 1


def test_product_delete_only_when_unused(api):
    status, error = api.delete("/products/SKU-A")  # has stock
    assert status == 409, error
    assert "SKU-A" in error["error"]["message"]
    assert api.get("/products/SKU-A")[0] == 200

    # Ordered but never stocked: the order line keeps it.
    assert api.post("/products", {"sku": "SKU-O", "name": "Ordered", "price": "1.00"})[0] == 201
    status, order = api.post("/orders", {"lines": [{"sku": "SKU-O", "quantity": 1}]})
    assert status == 201 and order["status"] == "held", order
    status, error = api.delete("/products/SKU-O")
    assert status == 409, error

    assert api.post("/products", {"sku": "SKU-U", "name": "Unused"})[0] == 201
    status, body = api.delete("/products/SKU-U")
    assert status == 200, body
    status, error = api.get("/products/SKU-U")
    assert status == 404 and "SKU-U" in error["error"]["message"]


def test_product_is_invisible_to_other_tenants(api):
    status, _ = api.get("/products/SKU-A", token=api.tokens["stranger"])
    assert status == 200  # the stranger has its own SKU-A …
    api.post("/products", {"sku": "ONLY-ACME", "name": "Mine"})
    status, _ = api.get("/products/ONLY-ACME", token=api.tokens["stranger"])
    assert status == 404  # … but not ours


# --- warehouses ----------------------------------------------------------------------------


def test_warehouse_crud(api):
    status, listed = api.get("/warehouses")
    assert status == 200
    assert [w["code"] for w in listed["items"]] == ["MAIN", "WEST"]

    new = {"code": "EAST", "name": "East", "region": "east", "country": "us", "priority": 5}
    status, wh = api.post("/warehouses", new)
    assert status == 201, wh
    assert wh["code"] == "EAST" and wh["country"] == "US"
    status, error = api.post("/warehouses", new)
    assert status == 409 and "EAST" in error["error"]["message"]

    status, wh = api.patch("/warehouses/EAST", {"name": "East coast", "priority": 30})
    assert status == 200 and wh["name"] == "East coast"
    assert [w["code"] for w in api.get("/warehouses")[1]["items"]] == ["MAIN", "WEST", "EAST"]

    status, error = api.delete("/warehouses/MAIN")
    assert status == 409 and "MAIN" in error["error"]["message"]
    assert api.delete("/warehouses/EAST")[0] == 200
    assert api.get("/warehouses/EAST")[0] == 404
    assert [w["code"] for w in api.get("/warehouses")[1]["items"]] == ["MAIN", "WEST"]


# --- querying balances ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"SKU-A@MAIN", "SKU-A@WEST", "SKU-B@MAIN", "SKU-C@MAIN", "SKU-C@WEST"}),
        ("sku=SKU-A", {"SKU-A@MAIN", "SKU-A@WEST"}),
        ("name=charl", {"SKU-C@MAIN", "SKU-C@WEST"}),
        ("category=tools", {"SKU-A@MAIN", "SKU-A@WEST", "SKU-B@MAIN"}),
        ("brand=Acme", {"SKU-A@MAIN", "SKU-A@WEST", "SKU-C@MAIN", "SKU-C@WEST"}),
        ("warehouse=WEST", {"SKU-A@WEST", "SKU-C@WEST"}),
        ("brand=Acme&warehouse=MAIN", {"SKU-A@MAIN", "SKU-C@MAIN"}),
        ("low_only=true", set()),
        ("sku=NOPE", set()),
    ],
)
def test_stock_filters(api, query, expected):
    status, body = api.get(f"/stock?{query}")
    assert status == 200, body
    assert {f"{i['sku']}@{i['warehouse']}" for i in body["items"]} == expected
    assert body["total"] == len(expected)


def test_stock_paging(api):
    seen = []
    for page in (1, 2, 3):
        status, body = api.get(f"/stock?per_page=2&page={page}")
        assert status == 200 and body["total"] == 5 and body["page"] == page
        seen += [(i["sku"], i["warehouse"]) for i in body["items"]]
    assert seen == [
        ("SKU-A", "MAIN"),
        ("SKU-A", "WEST"),
        ("SKU-B", "MAIN"),
        ("SKU-C", "MAIN"),
        ("SKU-C", "WEST"),
    ]
    status, body = api.get("/stock?per_page=2&page=4")
    assert status == 200 and body["items"] == [] and body["total"] == 5


# --- movements -----------------------------------------------------------------------------


def test_inbound_raises_on_hand(api):
    status, body = api.post(
        "/stock/inbound",
        {
            "warehouse": "WEST",
            "reference": "PO-1",
            "items": [
                {"sku": "SKU-B", "quantity": 7},  # first stock of B at WEST
                {"sku": "SKU-A", "quantity": 3},
                {"sku": "SKU-A", "quantity": 4, "warehouse": "MAIN"},
            ],
        },
    )
    assert status == 200 and body == {"received": 3}, body
    after = balances(api)
    assert after[("SKU-B", "WEST")] == (7, 0)
    assert after[("SKU-A", "WEST")] == (13, 0)
    assert after[("SKU-A", "MAIN")] == (24, 0)

    status, error = api.post("/stock/inbound", {"items": [{"sku": "SKU-A", "quantity": 1}]})
    assert status == 422 and "warehouse" in error["error"]["message"]


def test_outbound_takes_only_free_stock(api):
    status, order = api.post("/orders", ORDER)  # reserves A 2 and B 1 at MAIN
    assert status == 201 and order["status"] == "confirmed", order
    assert balances(api)[("SKU-B", "MAIN")] == (10, 1)

    status, error = api.post(
        "/stock/outbound",
        {
            "warehouse": "MAIN",
            "items": [{"sku": "SKU-C", "quantity": 1}, {"sku": "SKU-B", "quantity": 10}],
        },
    )
    assert status == 409, error
    message = error["error"]["message"]
    assert "line 2" in message and "SKU-B" in message and "MAIN" in message
    assert [(d["field"], d["line"]) for d in error["error"]["details"]] == [("line 2", 2)]
    assert balances(api)[("SKU-C", "MAIN")] == (5, 0)  # line 1 rolled back too

    status, body = api.post(
        "/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-B", "quantity": 9}]}
    )
    assert status == 200 and body == {"dispatched": 1}, body
    assert balances(api)[("SKU-B", "MAIN")] == (1, 1)
    assert_no_drift(api.client.application.extensions["orderhub"])


@pytest.mark.parametrize(
    ("bad_row", "status", "words"),
    [
        ({"sku": "SKU-A", "quantity": 999}, 409, ["line 3", "SKU-A"]),
        ({"sku": "SKU-ZZZ", "quantity": 1}, 422, ["line 3", "SKU-ZZZ"]),
        ({"sku": "SKU-A", "quantity": 1, "warehouse": "NOWHERE"}, 422, ["line 3", "NOWHERE"]),
        ({"sku": "SKU-B", "quantity": 1, "warehouse": "WEST"}, 409, ["line 3", "SKU-B at WEST"]),
    ],
)
def test_outbound_is_all_or_nothing(api, bad_row, status, words):
    before = balances(api)
    got, error = api.post(
        "/stock/outbound",
        {
            "warehouse": "MAIN",
            "items": [{"sku": "SKU-A", "quantity": 5}, {"sku": "SKU-C", "quantity": 2}, bad_row],
        },
    )
    assert got == status, error
    for word in words:
        assert word in error["error"]["message"]
    assert balances(api) == before
    assert api.get("/stock/ledger?kind=outbound")[1]["total"] == 0


def test_adjust_counted_and_delta(api):
    status, body = api.post(
        "/stock/adjust",
        {
            "warehouse": "MAIN",
            "reason": "stock-take",
            "items": [{"sku": "SKU-C", "quantity": 3}, {"sku": "SKU-B", "quantity": 10}],
        },
    )
    assert status == 200 and body == {"adjusted": 2}, body
    status, body = api.post(
        "/stock/adjust",
        {
            "reason": "found in the back",
            "items": [
                {"sku": "SKU-C", "delta": 4, "warehouse": "WEST"},
                {"sku": "SKU-A", "delta": -6, "warehouse": "MAIN"},
            ],
        },
    )
    assert status == 200, body
    after = balances(api)
    assert after[("SKU-C", "MAIN")] == (3, 0)
    assert after[("SKU-C", "WEST")] == (9, 0)
    assert after[("SKU-A", "MAIN")] == (14, 0)
    assert after[("SKU-B", "MAIN")] == (10, 0)

    _, ledger = api.get("/stock/ledger?kind=adjust")
    deltas = {
        (e["sku"], e["warehouse"]): (e["on_hand_delta"], e["reason"]) for e in ledger["items"]
    }
    # The count of B matched the books: nothing to record.
    assert deltas == {
        ("SKU-C", "MAIN"): (-2, "stock-take"),
        ("SKU-C", "WEST"): (4, "found in the back"),
        ("SKU-A", "MAIN"): (-6, "found in the back"),
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 1}]}, "reason"),
        ({"warehouse": "MAIN", "reason": "", "items": [{"sku": "SKU-A", "quantity": 1}]}, "reason"),
        (
            {"warehouse": "MAIN", "reason": "   ", "items": [{"sku": "SKU-A", "quantity": 1}]},
            "reason",
        ),
        ({"warehouse": "MAIN", "reason": "x", "items": [{"sku": "SKU-A"}]}, "items[0]"),
        (
            {
                "warehouse": "MAIN",
                "reason": "x",
                "items": [{"sku": "SKU-A", "quantity": 1, "delta": 1}],
            },
            "items[0]",
        ),
        (
            {"warehouse": "MAIN", "reason": "x", "items": [{"sku": "SKU-A", "quantity": -1}]},
            "items[0].quantity",
        ),
    ],
)
def test_adjust_rejects_bad_requests(api, body, field):
    before = balances(api)
    status, error = api.post("/stock/adjust", body)
    assert status == 422, error
    assert field in error["error"]["message"]
    assert balances(api) == before


def test_adjust_cannot_go_below_reserved(api):
    assert api.post("/orders", ORDER)[0] == 201  # A 2 reserved at MAIN
    for item in ({"sku": "SKU-A", "quantity": 1}, {"sku": "SKU-A", "delta": -19}):
        status, error = api.post(
            "/stock/adjust", {"warehouse": "MAIN", "reason": "broken", "items": [item]}
        )
        assert status == 409, error
        assert "2 are reserved" in error["error"]["message"]
        assert "SKU-A at MAIN" in error["error"]["message"]
    status, _ = api.post(
        "/stock/adjust",
        {"warehouse": "MAIN", "reason": "broken", "items": [{"sku": "SKU-A", "quantity": 2}]},
    )
    assert status == 200
    assert balances(api)[("SKU-A", "MAIN")] == (2, 2)


def test_adjust_names_the_line_of_the_request(api):
    """Counted rows and delta rows may be mixed; an error names the row as it was sent."""
    assert api.post("/orders", ORDER)[0] == 201  # A 2 reserved at MAIN
    status, error = api.post(
        "/stock/adjust",
        {
            "warehouse": "MAIN",
            "reason": "count",
            "items": [
                {"sku": "SKU-C", "delta": 1},
                {"sku": "SKU-B", "quantity": 4},
                {"sku": "SKU-A", "quantity": 0},
            ],
        },
    )
    assert status == 409, error
    assert "line 3" in error["error"]["message"]
    assert [(d["field"], d["line"]) for d in error["error"]["details"]] == [("line 3", 3)]


# --- CSV import ----------------------------------------------------------------------------


@pytest.fixture
def many_products(api, runtime) -> list[str]:
    """400 more products (made directly: the API path is covered above)."""
    skus = [f"BULK-{n:04d}" for n in range(400)]
    with runtime.transaction() as session:
        acme = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        session.info["orderhub.tenant_id"] = acme
        for sku in skus:
            catalog.create_product(
                session,
                acme,
                {"sku": sku, "name": f"Bulk {sku}", "category": "bulk"},
                "test",
                currency="USD",
            )
    return skus


@pytest.mark.parametrize("multipart", [False, True], ids=["text-csv", "multipart"])
def test_csv_import_applies_every_row(api, runtime, many_products, multipart):
    rng = random.Random(7)
    expected: dict[tuple[str, str], int] = {}
    lines = ["warehouse,sku,quantity,reason"]
    for _ in range(3000):
        wh, sku, qty = rng.choice(["MAIN", "WEST"]), rng.choice(many_products), rng.randint(1, 50)
        expected[(sku, wh)] = expected.get((sku, wh), 0) + qty
        lines.append(f"{wh},{sku},{qty},delivery")
    status, body = post_csv(api, "\n".join(lines) + "\n", "reference=BULK-IN", multipart=multipart)
    assert status == 200, body
    assert body == {"rows": 3000, "kind": "inbound"}

    got = balances(api, "category=bulk")
    assert {k: v[0] for k, v in got.items()} == expected
    assert api.get("/stock/ledger?reference=BULK-IN")[1]["total"] == 3000
    assert_no_drift(runtime)


def test_csv_import_with_a_bad_line_applies_nothing(api, many_products):
    before = balances(api)
    rows = [f"MAIN,{many_products[n % 400]},5" for n in range(2500)]
    rows[1999] = "MAIN,BULK-0001,five"  # line 2001, counting the header as line 1
    status, error = post_csv(api, "warehouse,sku,quantity\n" + "\n".join(rows))
    assert status == 422, error
    assert "line 2001" in error["error"]["message"] and "five" in error["error"]["message"]
    assert error["error"]["details"] == [{"field": "line 2001", "line": 2001,
                                          "problem": "quantity 'five' is not a whole number"}]

    rows[1999] = "MAIN,NOT-A-SKU,5"
    status, error = post_csv(api, "warehouse,sku,quantity\n" + "\n".join(rows))
    assert status == 422, error
    assert "line 2001" in error["error"]["message"] and "NOT-A-SKU" in error["error"]["message"]
    assert balances(api) == before
    assert api.get("/stock/ledger?kind=inbound")[1]["total"] == 5  # only the seed


def test_csv_outbound_failing_late_rolls_back_earlier_chunks(api):
    # 1,201 rows over three chunks of 500: the last one cannot be filled.
    api.post("/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 1180}]})
    before = balances(api)
    rows = ["MAIN,SKU-A,1"] * 1200  # MAIN has exactly 1,200 …
    rows.append("WEST,SKU-B,1")  # … and WEST has no SKU-B at all: line 1202
    status, error = post_csv(api, "warehouse,sku,quantity\n" + "\n".join(rows), "kind=outbound")
    assert status == 409, error
    assert "line 1202" in error["error"]["message"]
    assert balances(api) == before

    status, body = post_csv(api, "warehouse,sku,quantity\n" + "\n".join(rows[:-1]), "kind=outbound")
    assert status == 200 and body["rows"] == 1200
    assert balances(api)[("SKU-A", "MAIN")] == (0, 0)


def test_csv_import_rejects_a_bad_header_and_wrong_media(api):
    status, error = post_csv(api, "where,what,how many\nMAIN,SKU-A,1\n")
    assert status == 422 and "line 1" in error["error"]["message"]
    assert "warehouse" in error["error"]["message"]
    status, error = api.post("/stock/import", {"rows": []})  # JSON is not a CSV
    assert status == 415, error


# --- ledger --------------------------------------------------------------------------------


def test_ledger_shows_every_movement(api, runtime):
    api.post("/stock/inbound", {"warehouse": "WEST", "items": [{"sku": "SKU-C", "quantity": 6}]})
    api.post("/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-C", "quantity": 1}]})
    api.post(
        "/stock/adjust",
        {"warehouse": "MAIN", "reason": "count", "items": [{"sku": "SKU-C", "quantity": 3}]},
    )
    status, order = api.post("/orders", {"lines": [{"sku": "SKU-C", "quantity": 2}]})
    assert status == 201 and order["status"] == "confirmed"
    assert api.post(f"/orders/{order['number']}/cancel", {"reason": "changed mind"})[0] == 200

    status, ledger = api.get("/stock/ledger?sku=SKU-C")
    assert status == 200
    got = [
        (e["kind"], e["warehouse"], e["on_hand_delta"], e["reserved_delta"])
        for e in reversed(ledger["items"])
    ]
    assert got == [
        ("inbound", "MAIN", 5, 0),  # seed
        ("inbound", "WEST", 5, 0),  # seed
        ("inbound", "WEST", 6, 0),
        ("outbound", "MAIN", -1, 0),
        ("adjust", "MAIN", -1, 0),
        ("reserve", "MAIN", 0, 2),
        ("release", "MAIN", 0, -2),
    ]
    assert ledger["total"] == 7
    assert {e["sku"] for e in ledger["items"]} == {"SKU-C"}
    assert ledger["items"][0]["reference"] == order["number"]
    assert ledger["items"][0]["actor"] == "admin"
    # The ledger adds up to the balances.
    sums: dict[str, int] = {}
    for e in ledger["items"]:
        sums[e["warehouse"]] = sums.get(e["warehouse"], 0) + e["on_hand_delta"]
    assert sums == {"MAIN": 3, "WEST": 11}
    assert balances(api, "sku=SKU-C") == {("SKU-C", "MAIN"): (3, 0), ("SKU-C", "WEST"): (11, 0)}
    assert_no_drift(runtime)


# --- low-stock alerts ----------------------------------------------------------------------


def test_low_stock_alert_raised_once_and_cleared(api, runtime):
    assert api.get("/stock/alerts")[1] == {"items": [], "total": 0}
    # A: 30 available, threshold 5. Down to 5 is not yet low …
    api.post(
        "/stock/outbound",
        {
            "items": [
                {"sku": "SKU-A", "quantity": 20, "warehouse": "MAIN"},
                {"sku": "SKU-A", "quantity": 5, "warehouse": "WEST"},
            ]
        },
    )
    assert api.get("/stock/alerts")[1]["total"] == 0
    # … an order taking one more is.
    status, order = api.post("/orders", {"lines": [{"sku": "SKU-A", "quantity": 1}]})
    assert status == 201 and order["status"] == "confirmed"
    status, alerts = api.get("/stock/alerts")
    assert status == 200 and alerts["total"] == 1
    alert = alerts["items"][0]
    assert (alert["sku"], alert["available"], alert["threshold"]) == ("SKU-A", 4, 5)
    assert events_named(runtime, "stock_low", "SKU-A") == 1
    assert {i["sku"] for i in api.get("/stock?low_only=true")[1]["items"]} == {"SKU-A"}
    assert api.get("/products/SKU-A")[1]["low_stock_since"] is not None

    # Further drops keep the one alert and write no new event.
    api.post("/orders", {"lines": [{"sku": "SKU-A", "quantity": 1}]})
    api.post("/stock/outbound", {"warehouse": "WEST", "items": [{"sku": "SKU-A", "quantity": 2}]})
    alerts = api.get("/stock/alerts")[1]
    assert alerts["total"] == 1 and alerts["items"][0]["available"] == 1
    assert events_named(runtime, "stock_low", "SKU-A") == 1
    assert events_named(runtime, "stock_replenished", "SKU-A") == 0

    # Replenished: cleared, announced once.
    api.post("/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 10}]})
    assert api.get("/stock/alerts")[1]["total"] == 0
    assert api.get("/stock?low_only=true")[1]["total"] == 0
    assert api.get("/products/SKU-A")[1]["low_stock_since"] is None
    assert events_named(runtime, "stock_replenished", "SKU-A") == 1
    api.post("/stock/inbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 1}]})
    assert events_named(runtime, "stock_replenished", "SKU-A") == 1

    # A new fall below the threshold is a new alert.
    api.post("/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 9}]})
    assert [a["sku"] for a in api.get("/stock/alerts")[1]["items"]] == ["SKU-A"]
    assert events_named(runtime, "stock_low", "SKU-A") == 2

    # Products without a threshold never alert; the other tenant sees nothing of ours.
    api.post("/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-B", "quantity": 10}]})
    assert events_named(runtime, "stock_low", "SKU-B") == 0
    assert api.get("/stock/alerts", token=api.tokens["stranger"])[1]["total"] == 0
    assert_no_drift(runtime)


def test_raising_the_threshold_raises_an_alert(api, runtime):
    status, _ = api.patch("/products/SKU-C", {"low_stock_threshold": 11})
    assert status == 200
    alerts = api.get("/stock/alerts")[1]["items"]
    assert [(a["sku"], a["available"], a["threshold"]) for a in alerts] == [("SKU-C", 10, 11)]
    assert events_named(runtime, "stock_low", "SKU-C") == 1


# --- the books balance ---------------------------------------------------------------------


def test_no_drift_after_a_mixed_workload(api, runtime):
    numbers = []
    for n in range(6):
        status, order = api.post(
            "/orders",
            {"lines": [{"sku": "SKU-A", "quantity": 3 + n}, {"sku": "SKU-C", "quantity": 1}]},
        )
        assert status == 201, order
        numbers.append(order["number"])
    api.patch(f"/orders/{numbers[0]}", {"lines": [{"sku": "SKU-A", "quantity": 1}]})
    api.post(f"/orders/{numbers[1]}/cancel", {})
    api.post("/stock/inbound", {"warehouse": "WEST", "items": [{"sku": "SKU-A", "quantity": 40}]})
    assert api.get(f"/orders/{numbers[-1]}")[1]["status"] == "held"  # 33 wanted, 30 on hand
    api.post(f"/orders/{numbers[-1]}/allocate")
    api.post("/stock/outbound", {"warehouse": "MAIN", "items": [{"sku": "SKU-B", "quantity": 4}]})
    api.post(
        "/stock/adjust",
        {"reason": "count", "warehouse": "WEST", "items": [{"sku": "SKU-C", "delta": -1}]},
    )
    post_csv(api, "warehouse,sku,quantity\nMAIN,SKU-B,3\nWEST,SKU-C,2\n", "kind=adjust&reason=x")
    assert api.get(f"/orders/{numbers[-1]}")[1]["status"] == "confirmed"
    assert api.get("/stock/ledger?kind=adjust")[1]["total"] == 3
    assert_no_drift(runtime)
    for (sku, wh), (have, reserved) in balances(api).items():
        assert 0 <= reserved <= have, (sku, wh)
