"""Connecting a marketplace from the web admin, and the test delivery to its webhook URL."""

from __future__ import annotations

from typing import Any

from conftest import Api
from flask import Flask
from web_support import Web, text

from hub.runtime import Runtime

SECRET = "shpss_test_0123456789abcdef"


def connect(web: Web, **settings: str) -> Any:
    web.get("/admin/integrations/connect/shopify")
    form = {"name": "Acme on Shopify", **{f"settings.{k}": v for k, v in settings.items()}}
    return web.post("/admin/integrations/connect/shopify", form)


def test_connect_shows_the_webhook_url_and_never_the_secret(web: Web, api: Api) -> None:
    web.login("admin")
    page = connect(web, secret=SECRET, shop_domain="acme-store.myshopify.com")
    html = text(page)
    assert page.status_code == 200 and 'id="webhook-url"' in html
    assert SECRET not in html
    _, listed = api.get("/connections")
    [made] = listed["items"]
    assert made["plugin"] == "shopify" and made["settings"]["secret"] != SECRET


def test_a_required_secret_left_blank_is_made_and_shown_once(web: Web, api: Api) -> None:
    web.login("admin")
    html = text(connect(web))
    assert "shown only now" in html
    _, listed = api.get("/connections")
    connection_id = listed["items"][0]["id"]
    assert "shown only now" not in text(web.get(
        f"/admin/integrations/connections/{connection_id}"))


def test_a_bad_setting_is_shown_by_its_field(web: Web, api: Api) -> None:
    web.login("admin")
    page = connect(web, secret=SECRET, shop_domain="acme.example.com")
    assert page.status_code == 400
    assert 'id="f-settings-shop_domain-err"' in text(page)
    assert api.get("/connections")[1]["total"] == 0


def test_connecting_needs_channels_write(web: Web) -> None:
    web.login("operator")
    assert web.get("/admin/integrations/connect/shopify").status_code == 403


def _connection(api: Api) -> int:
    status, made = api.post("/connections", {"plugin": "shopify", "name": "Shop",
                                             "settings": {"secret": SECRET}})
    assert status == 201, made
    return int(made["id"])


def test_the_test_delivery_reaches_the_hub_and_stores_nothing(
    api: Api, app: Flask, runtime: Runtime, live: str
) -> None:
    connection_id = _connection(api)
    runtime.settings.public_url = live
    status, result = api.post(f"/connections/{connection_id}/test")
    assert status == 200, result
    assert result["ok"] is True and result["status"] == 200
    assert result["url"] == f"{live}/hooks/acme/{connection_id}"
    assert api.get("/inbox")[1]["total"] == 0 and api.get("/orders")[1]["total"] == 0


def test_an_unreachable_webhook_url_is_reported(api: Api, runtime: Runtime) -> None:
    connection_id = _connection(api)
    runtime.settings.public_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    status, result = api.post(f"/connections/{connection_id}/test")
    assert status == 200 and result["ok"] is False
    assert "could not reach" in result["message"]


def test_the_page_button_says_what_came_back(web: Web, api: Api, runtime: Runtime,
                                             live: str) -> None:
    connection_id = _connection(api)
    runtime.settings.public_url = live
    web.login("admin")
    page = f"/admin/integrations/connections/{connection_id}"
    assert "Send a test delivery" in text(web.get(page))
    response = web.post(f"{page}/test")
    assert "the address is reachable and the secret is right" in text(
        web.get(response.headers["Location"]))
    runtime.settings.public_url = "http://127.0.0.1:9"
    response = web.post(f"{page}/test")
    assert "could not reach" in text(web.get(response.headers["Location"]))


def test_a_plugin_without_a_test_says_so(api: Api) -> None:
    status, made = api.post("/connections", {"plugin": "woocommerce", "name": "Woo",
                                             "settings": {"secret": SECRET}})
    assert status == 201, made
    status, error = api.post(f"/connections/{made['id']}/test")
    assert status == 422 and "offers no test delivery" in error["error"]["message"]


def test_testing_needs_channels_write(api: Api) -> None:
    connection_id = _connection(api)
    status, _ = api.post(f"/connections/{connection_id}/test", token=api.tokens["operator"])
    assert status == 403
