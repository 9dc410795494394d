"""The web admin's Inventory pages: stock per warehouse, alerts, the ledger, and the forms that
move stock (adjust, receive, send out, a CSV import), checked through the API they run on."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from conftest import ORDER, Api
from web_support import Web, text
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

ROW = re.compile(r'<th scope="row"[^>]*>(?:<a [^>]*>)?([^<]+)<')


def rows(html: str) -> list[str]:
    """The row headers of the page's tables (the SKU of each balance row)."""
    return ROW.findall(html)


def balance(api: Api, sku: str, warehouse: str, token: str | None = None) -> dict[str, Any]:
    status, body = api.get(f"/stock?sku={sku}&warehouse={warehouse}", token=token)
    assert status == 200, body
    assert len(body["items"]) == 1, body
    return body["items"][0]


def all_balances(api: Api, token: str | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    status, body = api.get("/stock?per_page=500", token=token)
    assert status == 200, body
    return {(i["sku"], i["warehouse"]): (i["on_hand"], i["reserved"]) for i in body["items"]}


def error_of(html: str, field: str) -> str:
    """The problem shown right after the form field ``field``."""
    found = re.search(rf'<p class="error" id="f-{re.escape(field)}-err">([^<]*)</p>', html)
    assert found, f"no error next to {field}"
    return found.group(1)


def upload(web: Web, csv: str | bytes, *, csrf: bool = True, **form: str) -> Any:
    raw = csv.encode() if isinstance(csv, str) else csv
    data: dict[str, Any] = {"file": (io.BytesIO(raw), "stock.csv"), **form}
    return web.post("/admin/stock/import", data, csrf=csrf, content_type="multipart/form-data")


# --- reading --------------------------------------------------------------------------------


def test_stock_page_lists_every_balance_and_filters_narrow_it(web: Web) -> None:
    web.login("analyst")
    html = text(web.get("/admin/stock"))
    assert rows(html) == ["SKU-A", "SKU-A", "SKU-B", "SKU-C", "SKU-C"]
    assert "5 balances" in html
    assert rows(text(web.get("/admin/stock?warehouse=WEST"))) == ["SKU-A", "SKU-C"]
    assert rows(text(web.get("/admin/stock?category=toys"))) == ["SKU-C", "SKU-C"]
    assert rows(text(web.get("/admin/stock?brand=Bolt"))) == ["SKU-B"]
    assert rows(text(web.get("/admin/stock?name=alph"))) == ["SKU-A", "SKU-A"]
    assert rows(text(web.get("/admin/stock?sku=SKU-C&warehouse=MAIN"))) == ["SKU-C"]
    # Blank fields of a submitted filter form are no filter.
    blank = "/admin/stock?sku=&name=&category=&brand=&warehouse=&per_page=50"
    assert len(rows(text(web.get(blank)))) == 5


def test_stock_page_pages_through_the_balances(web: Web) -> None:
    web.login("warehouse")
    first = text(web.get("/admin/stock?per_page=2"))
    assert rows(first) == ["SKU-A", "SKU-A"]
    assert "Page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    last = text(web.get("/admin/stock?per_page=2&page=3"))
    assert rows(last) == ["SKU-C"] and 'rel="prev"' in last and 'rel="next"' not in last
    # The next page keeps the filters.
    filtered = text(web.get("/admin/stock?warehouse=MAIN&per_page=1"))
    link = re.search(r'href="([^"]+)" rel="next"', filtered)
    assert link and set(link.group(1).split("?")[1].split("&amp;")) == {
        "warehouse=MAIN",
        "per_page=1",
        "page=2",
    }


def test_stock_page_says_what_to_do_when_nothing_matches(web: Web) -> None:
    web.login("warehouse")
    html = text(web.get("/admin/stock?sku=NOPE"))
    assert rows(html) == [] and "No stock matches these filters" in html
    assert "Clear filters" in html


def test_a_filter_the_api_refuses_is_named_next_to_its_field(web: Web) -> None:
    web.login("warehouse")
    response = web.get("/admin/stock?low_only=maybe")
    assert response.status_code == 400
    assert "boolean" in error_of(text(response), "low_only")
    response = web.get("/admin/stock?per_page=5000")
    assert response.status_code == 400
    assert "at most 500" in error_of(text(response), "per_page")


def test_low_stock_alerts_and_the_low_only_filter(web: Web, api: Api) -> None:
    web.login("warehouse")
    assert "No open low-stock alerts" in text(web.get("/admin/stock/alerts"))
    # SKU-C alerts below 2 available: take 9 of its 10 away.
    for code, qty in (("MAIN", 5), ("WEST", 4)):
        status, body = api.post(
            "/stock/outbound", {"warehouse": code, "items": [{"sku": "SKU-C", "quantity": qty}]}
        )
        assert status == 200, body
    alerts = text(web.get("/admin/stock/alerts"))
    assert rows(alerts) == ["SKU-C"] and "1 open alert" in alerts
    # The dashboard links here with low_only=true.
    dashboard = text(web.get("/admin/"))
    assert "/admin/stock?low_only=true" in dashboard
    low = text(web.get("/admin/stock?low_only=true"))
    assert rows(low) == ["SKU-C", "SKU-C"] and "checked" in low
    assert ">low<" in low


def test_ledger_lists_movements_with_filters_and_paging(web: Web, api: Api) -> None:
    api.post(
        "/stock/inbound",
        {"warehouse": "WEST", "reference": "PO-7", "items": [{"sku": "SKU-B", "quantity": 4}]},
    )
    web.login("analyst")
    html = text(web.get("/admin/stock/ledger"))
    assert "6 movements" in html  # five seed receipts and this one
    only = text(web.get("/admin/stock/ledger?reference=PO-7"))
    assert "1 movement" in only and "+4" in only and "Goods received" in only
    assert "1 movement" in text(web.get("/admin/stock/ledger?sku=SKU-B&warehouse=WEST"))
    assert "No movement matches" in text(web.get("/admin/stock/ledger?kind=adjust"))
    paged = text(web.get("/admin/stock/ledger?per_page=4&page=2"))
    assert "Page 2 of 2" in paged and paged.count("<tr>") == 1 + 2  # the header and two
    response = web.get("/admin/stock/ledger?kind=teleport")
    assert response.status_code == 400 and "must be one of" in error_of(text(response), "kind")


# --- adjusting ------------------------------------------------------------------------------


def test_an_adjustment_changes_the_balance(web: Web, api: Api) -> None:
    web.login("warehouse")
    form = text(web.get("/admin/stock/adjust?sku=SKU-A&warehouse=MAIN"))
    assert 'value="SKU-A"' in form and 'id="balance"' in form  # the balance it is about
    response = web.post(
        "/admin/stock/adjust",
        {
            "warehouse": "MAIN",
            "sku": "SKU-A",
            "mode": "count",
            "quantity": "7",
            "reason": "stock-take",
        },
    )
    assert response.status_code == 302, text(response)[:2000]
    assert balance(api, "SKU-A", "MAIN")["on_hand"] == 7
    page = text(web.get(response.headers["Location"]))
    assert "Stock of SKU-A at MAIN adjusted." in page

    response = web.post(
        "/admin/stock/adjust",
        {
            "warehouse": "MAIN",
            "sku": "SKU-A",
            "mode": "delta",
            "quantity": "-2",
            "reason": "damaged",
        },
    )
    assert response.status_code == 302
    assert balance(api, "SKU-A", "MAIN")["on_hand"] == 5
    ledger = api.get("/stock/ledger?kind=adjust&sku=SKU-A")[1]["items"]
    assert [(e["on_hand_delta"], e["reason"], e["actor"]) for e in ledger] == [
        (-2, "damaged", "warehouse"),
        (-13, "stock-take", "warehouse"),
    ]


@pytest.mark.parametrize(
    ("form", "field", "problem"),
    [
        ({"sku": "NOPE"}, "sku", "unknown SKU 'NOPE'"),
        ({"warehouse": "MOON"}, "warehouse", "unknown warehouse 'MOON'"),
        ({"warehouse": ""}, "warehouse", "no warehouse given"),
        ({"quantity": "ten"}, "quantity", "whole number"),
        ({"quantity": "-1"}, "quantity", "at least 0"),
        ({"quantity": "2000000"}, "quantity", "at most 1000000"),
        ({"reason": ""}, "reason", "Say why"),
        ({"sku": "has space"}, "sku", "must match the pattern"),
    ],
)
def test_a_refused_adjustment_names_its_field_and_changes_nothing(
    web: Web, api: Api, form: dict[str, str], field: str, problem: str
) -> None:
    web.login("warehouse")
    before = all_balances(api)
    data = {
        "warehouse": "MAIN",
        "sku": "SKU-A",
        "mode": "count",
        "quantity": "3",
        "reason": "count",
        **form,
    }
    response = web.post("/admin/stock/adjust", data)
    assert response.status_code == 400
    html = text(response)
    assert problem in error_of(html, field).replace("&#39;", "'")
    assert 'role="alert"' in html  # the summary above the form links to the field
    assert all_balances(api) == before


def test_an_adjustment_below_what_orders_reserved_is_refused(web: Web, api: Api) -> None:
    status, order = api.post("/orders", ORDER)
    assert status == 201 and order["status"] == "confirmed", order
    reserved = balance(api, "SKU-A", "MAIN")["reserved"]
    assert reserved == 2
    web.login("warehouse")
    response = web.post(
        "/admin/stock/adjust",
        {
            "warehouse": "MAIN",
            "sku": "SKU-A",
            "mode": "count",
            "quantity": "1",
            "reason": "count",
        },
    )
    assert response.status_code == 400
    assert "reserved for orders" in error_of(text(response), "quantity")
    assert balance(api, "SKU-A", "MAIN")["on_hand"] == 20


# --- receiving and sending out --------------------------------------------------------------


def test_receiving_goods_adds_every_line(web: Web, api: Api) -> None:
    web.login("warehouse")
    assert 'value="SKU-C"' in text(web.get("/admin/stock/inbound?sku=SKU-C"))
    response = web.post(
        "/admin/stock/inbound",
        {
            "warehouse": "WEST",
            "reference": "DN-100",
            "reason": "supplier",
            "sku_1": "SKU-A",
            "quantity_1": "3",
            "sku_3": "SKU-B",
            "quantity_3": "2",
        },
    )
    assert response.status_code == 302, text(response)[:2000]
    assert balance(api, "SKU-A", "WEST")["on_hand"] == 13
    assert balance(api, "SKU-B", "WEST")["on_hand"] == 2
    entries = api.get("/stock/ledger?reference=DN-100")[1]["items"]
    assert {(e["sku"], e["kind"], e["on_hand_delta"], e["reason"]) for e in entries} == {
        ("SKU-A", "inbound", 3, "supplier"),
        ("SKU-B", "inbound", 2, "supplier"),
    }
    assert "Received 2 line(s) into WEST." in text(web.get(response.headers["Location"]))


def test_sending_out_more_than_is_free_names_the_line_and_moves_nothing(web: Web, api: Api) -> None:
    web.login("warehouse")
    before = all_balances(api)
    response = web.post(
        "/admin/stock/outbound",
        {
            "warehouse": "MAIN",
            "sku_1": "SKU-A",
            "quantity_1": "1",
            "sku_4": "SKU-C",
            "quantity_4": "50",
        },
    )
    assert response.status_code == 400
    html = text(response)
    assert "not enough free stock of SKU-C at MAIN" in error_of(html, "quantity_4")
    assert "f-quantity_1-err" not in html
    assert all_balances(api) == before

    response = web.post(
        "/admin/stock/outbound",
        {
            "warehouse": "MAIN",
            "sku_1": "SKU-A",
            "quantity_1": "1",
            "sku_2": "GHOST",
            "quantity_2": "1",
        },
    )
    assert response.status_code == 400 and "GHOST" in error_of(text(response), "sku_2")
    response = web.post("/admin/stock/outbound", {"warehouse": "MAIN", "sku_1": "SKU-A"})
    assert response.status_code == 400 and "whole number" in error_of(text(response), "quantity_1")
    response = web.post("/admin/stock/outbound", {"warehouse": "MAIN"})
    assert response.status_code == 400 and "at least one SKU" in error_of(text(response), "sku_1")
    assert all_balances(api) == before

    response = web.post(
        "/admin/stock/outbound",
        {
            "warehouse": "MAIN",
            "sku_1": "SKU-C",
            "quantity_1": "5",
        },
    )
    assert response.status_code == 302
    assert balance(api, "SKU-C", "MAIN")["on_hand"] == 0


# --- CSV import ------------------------------------------------------------------------------


def test_the_import_form_uploads_a_file_with_progress(web: Web) -> None:
    web.login("warehouse")
    html = text(web.get("/admin/stock/import"))
    assert 'enctype="multipart/form-data"' in html and 'name="file"' in html
    assert 'type="file"' in html and 'data-progress="import-progress"' in html
    assert '<progress id="import-progress"' in html
    for name in ("kind", "reference", "reason"):
        assert f'name="{name}"' in html and f'for="f-{name}"' in html


def test_a_csv_with_a_bad_line_names_it_and_changes_nothing(web: Web, api: Api) -> None:
    web.login("warehouse")
    before = all_balances(api)
    ledger_before = api.get("/stock/ledger")[1]["total"]
    csv = "warehouse,sku,quantity\nMAIN,SKU-A,5\nWEST,SKU-B,2\nMAIN,SKU-C,five\n"
    response = upload(web, csv, kind="inbound", reference="BAD-1")
    assert response.status_code == 400
    html = text(response)
    assert re.search(
        r'<th scope="row" class="num">4</th><td>quantity &#39;five&#39; is not a '
        r"whole number</td>",
        html,
    ), html
    assert "Nothing was imported" in error_of(html, "file")

    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-A,5\nMAIN,NOT-A-SKU,1\n")
    assert response.status_code == 400
    assert re.search(
        r'<th scope="row" class="num">3</th><td>unknown SKU &#39;NOT-A-SKU&#39;', text(response)
    )

    response = upload(web, "where,what\nMAIN,SKU-A\n")
    assert response.status_code == 400
    assert re.search(r'<th scope="row" class="num">1</th><td>the header must name', text(response))
    assert all_balances(api) == before
    assert api.get("/stock/ledger")[1]["total"] == ledger_before


def test_sending_out_more_than_a_csv_can_names_its_line(web: Web, api: Api) -> None:
    web.login("warehouse")
    before = all_balances(api)
    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-A,20\nWEST,SKU-B,1\n", kind="outbound")
    assert response.status_code == 400
    assert re.search(r'<th scope="row" class="num">3</th><td>not enough free stock', text(response))
    assert all_balances(api) == before


def test_a_good_csv_applies_and_sums_up_what_changed(web: Web, api: Api) -> None:
    web.login("warehouse")
    csv = (
        "warehouse,sku,quantity,reason\r\nMAIN,SKU-A,5,delivery\r\nWEST,SKU-B,2,\r\n"
        "MAIN,SKU-A,1,\r\n"
    )
    response = upload(web, "\ufeff" + csv, kind="inbound", reference="DEL-9")
    assert response.status_code == 200, text(response)[:3000]
    html = text(response)
    assert "3 lines applied." in html
    assert re.search(r'SKU-A</a></th><td class="num">\+6</td>', html)
    assert re.search(r'SKU-B</a></th><td class="num">\+2</td>', html)
    assert balance(api, "SKU-A", "MAIN")["on_hand"] == 26
    assert balance(api, "SKU-B", "WEST")["on_hand"] == 2
    assert api.get("/stock/ledger?reference=DEL-9")[1]["total"] == 3

    response = upload(
        web,
        "warehouse,sku,quantity\nMAIN,SKU-A,-6\nWEST,SKU-C,1\n",
        kind="adjust",
        reason="recount",
    )
    assert response.status_code == 200, text(response)[:3000]
    assert re.search(r'SKU-A</a></th><td class="num">-6</td>', text(response))
    assert balance(api, "SKU-A", "MAIN")["on_hand"] == 20
    entries = api.get("/stock/ledger?kind=adjust&sku=SKU-C")[1]["items"]
    assert [(e["on_hand_delta"], e["reason"]) for e in entries] == [(1, "recount")]

    response = upload(web, "warehouse,sku,quantity\nWEST,SKU-C,5\n", kind="outbound")
    assert response.status_code == 200
    assert balance(api, "SKU-C", "WEST")["on_hand"] == 1


def test_an_import_needs_a_file_and_a_known_kind(web: Web, api: Api) -> None:
    web.login("warehouse")
    before = all_balances(api)
    response = web.post(
        "/admin/stock/import",
        {"kind": "inbound", "file": (io.BytesIO(b""), "")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "Choose a CSV file" in error_of(text(response), "file")
    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-A,1\n", kind="teleport")
    assert response.status_code == 400 and "must be one of" in error_of(text(response), "kind")
    response = upload(web, "warehouse,sku,quantity\n")
    assert response.status_code == 400 and "no rows" in error_of(text(response), "file")
    response = upload(web, b"warehouse,sku,quantity\nMAIN,SKU-\xff,1\n")
    assert response.status_code == 400 and "not UTF-8" in text(response)
    assert all_balances(api) == before


def test_an_import_takes_a_file_larger_than_a_form(web: Web, api: Api, app: Any) -> None:
    settings = app.extensions["orderhub"].settings
    padding = ",,\n" * (settings.max_body_bytes // 3 + 1000)  # blank lines are skipped
    csv = "warehouse,sku,quantity\nMAIN,SKU-B,4\n" + padding
    assert settings.max_body_bytes < len(csv) < settings.max_upload_bytes
    web.login("warehouse")
    # Encoded in memory: the test client would spool a body this large to a temporary file
    # it never closes.
    boundary, body = encode_multipart(
        MultiDict(
            {
                "csrf_token": web.token,
                "kind": "inbound",
                "file": FileStorage(io.BytesIO(csv.encode()), "stock.csv"),
            }
        )
    )
    response = web.client.post(
        "/admin/stock/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 200, text(response)[:2000]
    assert balance(api, "SKU-B", "MAIN")["on_hand"] == 14


# --- who may --------------------------------------------------------------------------------

WRITES = [
    (
        "/admin/stock/adjust",
        "/stock/adjust",
        {"warehouse": "MAIN", "sku": "SKU-A", "mode": "count", "quantity": "1", "reason": "x"},
        {"warehouse": "MAIN", "reason": "x", "items": [{"sku": "SKU-A", "quantity": 1}]},
    ),
    (
        "/admin/stock/inbound",
        "/stock/inbound",
        {"warehouse": "MAIN", "sku_1": "SKU-A", "quantity_1": "1"},
        {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 1}]},
    ),
    (
        "/admin/stock/outbound",
        "/stock/outbound",
        {"warehouse": "MAIN", "sku_1": "SKU-A", "quantity_1": "1"},
        {"warehouse": "MAIN", "items": [{"sku": "SKU-A", "quantity": 1}]},
    ),
]


@pytest.mark.parametrize("role", ["operator", "service", "analyst"])
def test_a_role_without_stock_write_is_refused_as_the_api_refuses_it(
    web: Web, api: Api, role: str
) -> None:
    before = all_balances(api)
    web.login(role)
    stock = text(web.get("/admin/stock"))
    assert "SKU-A" in stock and "/admin/stock/adjust" not in stock
    assert "/admin/stock/import" not in stock
    for page, route, form, body in WRITES:
        status, _ = api.post(route, body, token=api.tokens[role])
        assert status == 403
        assert web.get(page).status_code == 403
        response = web.post(page, form)
        assert response.status_code == 403, page
        assert "stock.write" in text(response)
    status, _ = api.call(
        "POST",
        "/stock/import",
        None,
        token=api.tokens[role],
        data="warehouse,sku,quantity\nMAIN,SKU-A,1\n",
        content_type="text/csv",
    )
    assert status == 403
    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-A,1\n")
    assert response.status_code == 403 and "stock.write" in text(response)
    assert all_balances(api) == before


def test_signed_out_pages_go_to_the_sign_in(web: Web) -> None:
    for path in ("/admin/stock", "/admin/stock/ledger", "/admin/stock/import"):
        response = web.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_a_post_without_its_csrf_token_is_refused(web: Web, api: Api) -> None:
    web.login("warehouse")
    before = all_balances(api)
    for page, _route, form, _body in WRITES:
        response = web.post(page, form, csrf=False)
        assert response.status_code == 400, page
        assert "security token" in text(response)
    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-A,1\n", csrf=False)
    assert response.status_code == 400 and "security token" in text(response)
    assert all_balances(api) == before


def test_another_shops_stock_never_shows(web: Web, api: Api) -> None:
    stranger = api.tokens["stranger"]
    status, body = api.post(
        "/products",
        {"sku": "SKU-OTHER", "name": "Secret gadget", "price": "1.00", "low_stock_threshold": 50},
        token=stranger,
    )
    assert status == 201, body
    status, body = api.post(
        "/stock/inbound",
        {
            "warehouse": "MAIN",
            "reference": "OTHER-REF",
            "items": [{"sku": "SKU-OTHER", "quantity": 7}, {"sku": "SKU-A", "quantity": 900}],
        },
        token=stranger,
    )
    assert status == 200, body
    theirs = all_balances(api, token=stranger)

    web.login("warehouse")
    for path in (
        "/admin/stock",
        "/admin/stock?per_page=250",
        "/admin/stock/alerts",
        "/admin/stock/ledger",
        "/admin/stock/ledger?per_page=250",
    ):
        html = text(web.get(path))
        assert "SKU-OTHER" not in html and "Secret gadget" not in html, path
        assert "OTHER-REF" not in html, path
    assert "No stock matches" in text(web.get("/admin/stock?sku=SKU-OTHER"))
    assert "No movement matches" in text(web.get("/admin/stock/ledger?reference=OTHER-REF"))

    response = web.post(
        "/admin/stock/adjust",
        {
            "warehouse": "MAIN",
            "sku": "SKU-OTHER",
            "mode": "count",
            "quantity": "0",
            "reason": "mine now",
        },
    )
    assert response.status_code == 400 and "unknown SKU" in error_of(text(response), "sku")
    response = upload(web, "warehouse,sku,quantity\nMAIN,SKU-OTHER,1\n", kind="outbound")
    assert response.status_code == 400
    assert all_balances(api, token=stranger) == theirs


def test_the_pages_read_in_chinese(web: Web) -> None:
    web.login("warehouse")
    html = text(web.get("/admin/stock?lang=zh-CN"))
    assert 'lang="zh-Hans"' in html and "库存" in html
    assert "Receive goods" not in html and "Clear filters" not in html
    html = text(web.get("/admin/stock/import"))
    assert "Upload and apply" not in html and "CSV" in html
