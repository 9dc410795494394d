"""Every page of the web admin and the portal in a real browser, in English and Chinese, at
1280 and 390 px: it answers 200, logs no console error, never scrolls sideways on a phone,
and its screenshots are kept (test-artifacts/screenshots/). Plus a CSV stock import with one
bad line, as a warehouse clerk does it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
import shopify_deliveries as shopify
from browser_support import Tab, _tab, sign_in
from conftest import ORDER, Api, seed_tenant
from flask import Flask

from hub.runtime import Runtime

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]
SECRET = "shpss_pages_0123456789abcdef"


@pytest.fixture
def records(app: Flask, runtime: Runtime, live: str) -> dict[str, Any]:
    """A shop with something on every page: orders, a shipment with tracking, a ticket, a
    return, a review, a connection with a delivery, a carrier account."""
    from plugins.carriers.table_rate import EXAMPLE_SETTINGS

    runtime.jobs.start_worker(2, sweep=False)
    tokens = seed_tenant(runtime, "acme")
    api = Api(app.test_client(), tokens["admin"], tokens)
    _, account = api.post("/carrier-accounts", {"plugin": "table_rate", "name": "cards",
                                                "settings": EXAMPLE_SETTINGS})
    _, order = api.post("/orders", ORDER)
    api.post("/orders", {**ORDER, "lines": [{"sku": "SKU-C", "quantity": 1,
                                             "unit_price": "3.99"}]})
    _, shipment = api.post(f"/orders/{order['number']}/shipments", {})
    api.post(f"/shipments/{shipment['id']}/events", {"status": "delivered"})
    _, ticket = api.post("/tickets", {"kind": "question", "subject": "Where is it?",
                                      "body": "Hello", "order": order["number"],
                                      "customer": {"email": "ann@example.com"}})
    _, ret = api.post("/returns", {"order": order["number"], "reason": "too small",
                                   "lines": [{"sku": "SKU-A", "quantity": 1}]})
    api.post("/reviews", {"order": order["number"], "sku": "SKU-A", "rating": 4,
                          "title": "Good"})
    _, connection = api.post("/connections", {"plugin": "shopify", "name": "Shop",
                                              "settings": {"secret": SECRET}})
    body, headers = shopify.delivery(99, [("SKU-A", 1, "10.00")], SECRET)
    requests.post(f"{live}/hooks/acme/{connection['id']}", data=body, headers=headers,
                  timeout=10)
    return {"order": order["number"], "shipment": shipment["id"], "ticket": ticket["number"],
            "return": ret.get("id"), "connection": connection["id"], "account": account["id"],
            "api": api}


def admin_pages(r: dict[str, Any]) -> list[tuple[str, str]]:
    n = r["order"]
    pages = [
        ("dashboard", "/admin/"), ("orders", "/admin/orders"), ("order", f"/admin/orders/{n}"),
        ("order-new", "/admin/orders/new"), ("order-edit", f"/admin/orders/{n}/edit"),
        ("packing", f"/admin/orders/packing?numbers={n}"),
        ("stock", "/admin/stock"), ("stock-alerts", "/admin/stock/alerts"),
        ("stock-ledger", "/admin/stock/ledger"), ("stock-adjust", "/admin/stock/adjust"),
        ("stock-inbound", "/admin/stock/inbound"), ("stock-outbound", "/admin/stock/outbound"),
        ("stock-import", "/admin/stock/import"),
        ("shipments", "/admin/shipments"), ("shipment", f"/admin/shipments/{r['shipment']}"),
        ("exceptions", "/admin/exceptions"), ("rates", "/admin/rates"),
        ("carriers", "/admin/carriers"), ("carrier", f"/admin/carriers/{r['account']}"),
        ("carrier-new", "/admin/carriers/new/table_rate"),
        ("tickets", "/admin/tickets"), ("ticket", f"/admin/tickets/{r['ticket']}"),
        ("returns", "/admin/returns"), ("reviews", "/admin/reviews"),
        ("reports", "/admin/reports"), ("report-sales", "/admin/reports/sales"),
        ("report-orders", "/admin/reports/orders"),
        ("integrations", "/admin/integrations"),
        ("connect", "/admin/integrations/connect/shopify"),
        ("connection", f"/admin/integrations/connections/{r['connection']}"),
        ("notifications", "/admin/notifications"), ("users", "/admin/users"),
        ("user", "/admin/users/admin"), ("tokens", "/admin/tokens"), ("audit", "/admin/audit"),
        ("account", "/admin/account"),
    ]
    if r["return"]:
        pages.append(("return", f"/admin/returns/{r['return']}"))
    return pages


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_admin_page(browser: Any, live: str, records: dict[str, Any], lang: str) -> None:
    for t in _tab(browser, live, lang):
        sign_in(t, "admin")
        for name, path in admin_pages(records):
            response = t.go(path)
            assert response.status == 200, f"{path}: {response.status}"
            if lang == "zh":
                assert t.page.get_attribute("html", "lang") == "zh-Hans", path
            t.shoot(f"admin-{name}")
            assert not t.errors, f"{path}: {t.errors[:3]}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_portal_page(browser: Any, live: str, records: dict[str, Any], lang: str) -> None:
    for t in _tab(browser, live, lang):
        t.go("/portal/acme/")
        t.shoot("portal-home")
        t.page.fill("#f-number", records["order"])
        t.page.fill("#f-contact", "ann@example.com")
        t.page.click("main form[action$='/lookup'] button[type=submit]")
        t.page.wait_for_selector("#milestones")
        t.shoot("portal-order")
        for name, path in [
            ("portal-help", f"/portal/acme/orders/{records['order']}/help?kind=complaint"),
            ("portal-ticket", f"/portal/acme/tickets/{records['ticket']}"),
            ("portal-reviews", "/portal/acme/products/SKU-A/reviews"),
        ]:
            assert t.go(path).status == 200, path
            t.shoot(name)
        t.go("/portal/acme/")
        t.page.fill("#f-email", "ann@example.com")
        t.page.click("main form[action$='/link'] button[type=submit]")
        t.page.wait_for_selector("#link-sent")
        t.shoot("portal-link-sent")
        assert not t.errors, t.errors[:3]


def test_a_csv_stock_import_with_one_bad_line(
    tab: Tab, records: dict[str, Any], tmp_path: Path
) -> None:
    api: Api = records["api"]
    before = api.get("/stock?sku=SKU-C")[1]["items"]
    bad = tmp_path / "delivery.csv"
    bad.write_text("warehouse,sku,quantity\nMAIN,SKU-A,5\nMAIN,SKU-C,five\n")
    sign_in(tab, "warehouse")
    tab.go("/admin/stock/import")
    tab.page.set_input_files("#f-file", str(bad))
    tab.page.select_option("#f-kind", "inbound")
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_selector("text=five")
    row = tab.page.text_content("main table")
    assert "3" in row and "five" in row  # line 3 named, with its problem
    tab.shoot("stock-import-refused")
    assert api.get("/stock?sku=SKU-C")[1]["items"] == before  # nothing applied

    good = tmp_path / "fixed.csv"
    good.write_text("warehouse,sku,quantity\nMAIN,SKU-A,5\nMAIN,SKU-C,5\n")
    tab.go("/admin/stock/import")
    tab.page.set_input_files("#f-file", str(good))
    tab.page.select_option("#f-kind", "inbound")
    tab.page.click("main form button[type=submit]")
    deadline = time.monotonic() + 10
    while api.get("/stock?sku=SKU-C&warehouse=MAIN")[1]["items"][0]["on_hand"] == 5:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    tab.shoot("stock-import-done")
