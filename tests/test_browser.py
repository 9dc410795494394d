"""The web admin and the portal in a real browser: a merchant's day from connecting Shopify to
answering the customer's return request, a stock import with a bad line, a two-level approval,
and the Chinese interface. Every page is screenshotted at 1280 and 390 px."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
import shopify_deliveries as shopify
from browser_support import NARROW, Tab, new_tab, sign_in
from conftest import ORDER, Api, config_with_acme, seed_tenant
from flask import Flask

from hub.runtime import Runtime

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

ACME = """
name = "Acme Outdoor"
[[rules.approval]]
above = "500"
role = "operator"
[[rules.approval]]
above = "2000"
role = "admin"
"""
SECRET = "shpss_0123456789abcdef0123456789abcdef"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return config_with_acme(tmp_path, ACME)


@pytest.fixture
def shop(app: Flask, runtime: Runtime) -> Api:
    """acme (users named after their roles) with a rate-card carrier, and a stranger shop."""
    from plugins.carriers.table_rate import EXAMPLE_SETTINGS

    runtime.jobs.start_worker(2, sweep=False)  # as `orderhub serve` runs it
    tokens = seed_tenant(runtime, "acme")
    tokens["stranger"] = seed_tenant(runtime, "other")["admin"]
    api = Api(app.test_client(), tokens["admin"], tokens)
    status, body = api.post("/carrier-accounts", {"plugin": "table_rate", "name": "cards",
                                                  "settings": EXAMPLE_SETTINGS})
    assert status == 201, body
    return api


def test_a_merchants_day_from_shopify_to_an_answered_return(
    tab: Tab, browser: Any, live: str, shop: Api, runtime: Runtime
) -> None:
    page = sign_in_and_shoot(tab)
    # connect Shopify from a form made from its settings schema
    page.click("text=Integrations")
    tab.shoot("integrations")
    page.click("a[aria-label='Connect shopify']")
    tab.shoot("connect-shopify")
    page.fill("#f-name", "Acme on Shopify")
    page.fill("#f-settings-secret", SECRET)
    page.fill("#f-settings-shop_domain", shopify.SHOP)
    page.click("main form button[type=submit]")
    assert page.query_selector("#webhook-url"), page.text_content("main")[:1500]
    webhook = page.text_content("#webhook-url").strip()
    assert webhook.startswith("http://localhost/hooks/acme/")
    tab.shoot("connected")
    assert SECRET not in page.content()

    # Shopify posts a signed order to that webhook
    path = webhook.removeprefix("http://localhost")
    body, headers = shopify.delivery(4711, [("SKU-A", 2, "10.00")], SECRET)
    answer = requests.post(live + path, data=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    wait_for(lambda: shop.get("/orders?q=buyer-4711@example.com")[1]["total"] == 1)

    # the order is in the list, and a filter finds it
    tab.go("/admin/orders")
    page.wait_for_selector("text=#4711")
    tab.shoot("orders")
    page.fill("#f-q", "buyer-4711@example.com")
    page.click("form[role=search] button[type=submit]")
    assert "1 order" in page.text_content("main")
    page.click("table a >> nth=0")
    number = page.text_content("h1").split()[1]
    tab.shoot("order")

    # ship it with the best rate
    page.click("text=Ship with the best rate")
    page.wait_for_selector("text=Shipments")
    tracking = page.text_content("table >> nth=1").split()[5]
    _, shipments = shop.get(f"/shipments?order={number}")
    shipment = shipments["items"][0]
    assert shipment["tracking_number"] in page.content()
    shop.post(f"/shipments/{shipment['id']}/events", {"status": "in_transit",
                                                       "location": "Newark", "note": "Departed"})
    assert tracking

    # the customer follows it in the portal and asks for a return
    customer = new_tab(browser, live, viewport=NARROW)
    customer.go("/portal/acme/")
    assert "Acme Outdoor" in customer.page.content()
    customer.shoot("portal-home")
    customer.page.fill("#f-number", number)
    customer.page.fill("#f-contact", "buyer-4711@example.com")
    customer.page.click("text=Show my order")
    customer.page.wait_for_selector("#tracking")
    assert "On its way" in customer.page.text_content("#tracking")
    assert "Newark" in customer.page.text_content("#tracking")
    customer.shoot("portal-order")
    customer.page.click("text=Return or exchange")
    customer.page.fill("#f-qty-SKU-A", "1")
    customer.page.fill("#f-subject", "Wrong size")
    customer.page.fill("#f-body", "Too small, please exchange it for a larger one.")
    customer.shoot("portal-request")
    customer.page.click("text=Send request")
    customer.page.wait_for_selector("#messages")
    ticket = customer.page.text_content("h1").split(":")[0].strip()
    customer.shoot("portal-ticket")

    # the agent finds it assigned to them and answers
    agent = new_tab(browser, live)
    sign_in(agent, "service")
    agent.page.click("nav.side >> text=Service")
    agent.page.click("text=Mine")
    agent.page.wait_for_selector(f"text={ticket}")
    agent.shoot("tickets-mine")
    agent.page.click(f"text={ticket}")
    assert agent.page.text_content("#ticket-assignee").strip() == "service"
    agent.page.fill("#f-body", "We are sending a return label today.")
    agent.page.click("text=Send")
    agent.page.wait_for_selector("text=Your reply is sent.")
    agent.shoot("ticket")

    customer.page.reload()
    assert "We are sending a return label today." in customer.page.text_content("#messages")
    assert not customer.errors and not agent.errors, customer.errors + agent.errors


def test_a_high_value_order_needs_two_approvals(
    tab: Tab, browser: Any, live: str, shop: Api
) -> None:
    status, _ = shop.post("/users", {"username": "clerk", "password": "password-clerk",
                                         "role": "operator"})
    assert status == 201
    status, token = shop.post("/users/clerk/tokens", {"name": "t"})
    assert status == 201, token
    big = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 10, "unit_price": "250.00"}]}
    status, order = shop.post("/orders", big, token=token["token"])
    assert status == 201 and order["status"] == "awaiting_approval", order
    number = order["number"]

    sign_in(tab, "operator")
    tab.go("/admin/orders?status=awaiting_approval")
    tab.page.click(f"text={number}")
    tab.shoot("order-approval")
    tab.page.click("main form button:has-text('Approve')")
    tab.page.wait_for_selector("text=Done: approve")
    assert shop.get(f"/orders/{number}")[1]["status"] == "awaiting_approval"

    admin = new_tab(browser, live)
    sign_in(admin, "admin")
    admin.go(f"/admin/orders/{number}")
    admin.page.click("main form button:has-text('Approve')")
    admin.page.wait_for_selector("text=Done: approve")
    assert shop.get(f"/orders/{number}")[1]["status"] == "confirmed"
    assert not admin.errors


def test_the_order_list_in_chinese(tab_zh: Tab, shop: Api) -> None:
    shop.post("/orders", ORDER)
    sign_in(tab_zh, "operator")
    tab_zh.go("/admin/orders")
    assert tab_zh.page.get_attribute("html", "lang") == "zh-Hans"
    assert "订单" in tab_zh.page.text_content("h1")
    assert "筛选" in tab_zh.page.text_content("main")
    tab_zh.shoot("orders")
    tab_zh.go("/admin/")
    tab_zh.shoot("dashboard")


def test_a_role_without_the_permission_gets_403_in_the_browser(tab: Tab, shop: Api) -> None:
    sign_in(tab, "warehouse")
    response = tab.go("/admin/users")
    assert response.status == 403
    assert "users.read" in tab.page.text_content("main")


def wait_for(check: Any, seconds: float = 20) -> None:
    """The worker takes the delivery in the background: wait until ``check`` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def sign_in_and_shoot(tab: Tab) -> Any:
    tab.go("/admin/login")
    tab.shoot("login")
    tab.page.fill("#f-username", "admin")
    tab.page.fill("#f-password", "password-admin")
    tab.page.fill("#f-tenant", "acme")
    tab.page.click("main form button[type=submit]")
    tab.page.wait_for_url("**/admin/")
    tab.shoot("dashboard")
    return tab.page
