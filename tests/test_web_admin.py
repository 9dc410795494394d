"""The web admin's sign-in, guards and core pages, through the test client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import ORDER, Api
from flask.testing import FlaskClient
from web_support import Web, text


def test_pages_need_a_signed_in_user(web: Web) -> None:
    response = web.get("/admin/orders?status=held")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=/admin/orders")


def test_login_form_has_the_fields_outside_checks_use(web: Web) -> None:
    html = text(web.get("/admin/login"))
    for name in ('name="username"', 'name="password"', 'name="csrf_token"', 'type="hidden"'):
        assert name in html


def test_sign_in_lands_on_the_page_asked_for(web: Web) -> None:
    web.get("/admin/login")
    response = web.post("/admin/login?next=/admin/orders",
                        {"username": "operator", "password": "password-operator",
                         "tenant": "acme"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/orders"
    assert web.get("/admin/orders").status_code == 200


def test_next_never_leaves_the_admin(web: Web) -> None:
    web.get("/admin/login")
    for target in ("https://evil.example/", "//evil.example/admin/", "/api/v1/orders"):
        response = web.post(f"/admin/login?next={target}",
                            {"username": "admin", "password": "password-admin",
                             "tenant": "acme"})
        assert response.headers["Location"] == "/admin/", target
        web.get("/admin/login")


def test_wrong_password_is_refused_without_saying_which_part(web: Web) -> None:
    web.get("/admin/login")
    wrong = web.post("/admin/login", {"username": "admin", "password": "nope-nope",
                                      "tenant": "acme"})
    unknown = web.post("/admin/login", {"username": "nobody", "password": "nope-nope",
                                        "tenant": "acme"})
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or password is not right." in text(wrong)
    assert "The username or password is not right." in text(unknown)
    assert web.get("/admin/").status_code == 302


def test_a_name_in_several_shops_needs_the_shop(web: Web) -> None:
    web.get("/admin/login")
    response = web.post("/admin/login", {"username": "admin", "password": "password-admin"})
    assert response.status_code == 400
    assert "several shops" in text(response)


def test_a_name_in_one_shop_needs_no_shop(web: Web, api: Api) -> None:
    status, _ = api.post("/users", {"username": "mei", "password": "password-mei",
                                    "role": "operator"})
    assert status == 201
    web.get("/admin/login")
    assert web.post("/admin/login", {"username": "MEI", "password": "password-mei"}
                    ).status_code == 302
    assert "acme" in text(web.get("/admin/"))


def test_the_shop_field_picks_among_same_names(web: Web) -> None:
    web.get("/admin/login")
    response = web.post("/admin/login", {"username": "admin", "password": "password-admin",
                                         "tenant": "other"})
    assert response.status_code == 302
    assert "other" in text(web.get("/admin/"))


def test_sign_in_without_the_csrf_token_is_refused(web: Web) -> None:
    web.get("/admin/login")
    response = web.post("/admin/login", {"username": "admin", "password": "password-admin",
                                         "tenant": "acme"}, csrf=False)
    assert response.status_code == 400
    assert "security token" in text(response)
    assert web.get("/admin/").status_code == 302


def test_failed_sign_ins_are_limited_per_name(web: Web) -> None:
    web.get("/admin/login")
    for _ in range(8):
        assert web.post("/admin/login", {"username": "admin", "password": "wrong-one!",
                                         "tenant": "acme"}).status_code == 401
    blocked = web.post("/admin/login", {"username": "admin", "password": "password-admin",
                                        "tenant": "acme"})
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in text(blocked)
    # another name is not blocked by this one's failures
    assert web.post("/admin/login", {"username": "operator", "password": "password-operator",
                                     "tenant": "acme"}).status_code == 302


def test_a_form_without_its_csrf_token_is_refused(web: Web, api: Api) -> None:
    web.login("admin")
    status, order = api.post("/orders", {**ORDER, "note": "x"})
    assert status == 201
    response = web.post(f"/admin/orders/{order['number']}/cancel", {"reason": "test"},
                        csrf=False)
    assert response.status_code == 400
    assert api.get(f"/orders/{order['number']}")[1]["status"] == "confirmed"


def test_sign_out_ends_the_session(web: Web) -> None:
    web.login("admin")
    assert web.post("/admin/logout").status_code == 302
    assert web.get("/admin/").status_code == 302


def test_a_role_without_the_permission_gets_403_as_on_the_api(web: Web, api: Api) -> None:
    web.login("warehouse")
    api_status, _ = api.get("/users", token=api.tokens["warehouse"])
    page = web.get("/admin/users")
    assert api_status == 403 and page.status_code == 403
    assert "users.read" in text(page)
    assert 'href="/admin/users"' not in text(web.get("/admin/"))  # not offered either


def test_one_shop_never_sees_another_shops_orders(web: Web, api: Api) -> None:
    status, theirs = api.post("/orders", ORDER, token=api.tokens["stranger"])
    assert status == 201
    web.login("admin")
    assert web.get(f"/admin/orders/{theirs['number']}").status_code == 404
    status, ours = api.post("/orders", ORDER)
    listing = text(web.get("/admin/orders"))
    assert ours["number"] in listing
    # numbers repeat across shops; the listing holds exactly our one order
    assert listing.count(f'value="{ours["number"]}"') == 1
    assert "1 order" in listing


def test_the_order_list_filters_as_the_api_does(web: Web, api: Api) -> None:
    api.post("/orders", ORDER)
    other = {**ORDER, "lines": [{"sku": "SKU-C", "quantity": 1, "unit_price": "3.99"}],
             "customer": {"email": "bo@example.com", "name": "Bo Chen"}}
    status, bo = api.post("/orders", other)
    assert status == 201
    web.login("operator")
    html = text(web.get("/admin/orders?sku=SKU-C"))
    assert bo["number"] in html and "1 order" in html
    html = text(web.get("/admin/orders?amount_min=40"))
    assert bo["number"] not in html and "1 order" in html


def test_a_bad_filter_is_shown_next_to_its_field(web: Web) -> None:
    web.login("operator")
    response = web.get("/admin/orders?amount_min=lots")
    assert response.status_code == 400
    html = text(response)
    assert 'id="f-amount_min-err"' in html and 'aria-invalid="true"' in html


def test_order_page_shows_one_timeline(web: Web, api: Api) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("operator")
    html = text(web.get(f"/admin/orders/{order['number']}"))
    assert 'id="timeline"' in html
    assert "stock reserved" in html and "Ann Lee" in html


def test_ship_with_the_best_rate_from_the_order_page(web: Web, api: Api) -> None:
    """Without a carrier account the refusal is shown; with a rate card the page ships."""
    from plugins.carriers.table_rate import EXAMPLE_SETTINGS

    _, order = api.post("/orders", ORDER)
    number = order["number"]
    web.login("operator")
    refused = web.post(f"/admin/orders/{number}/ship")
    assert "ship refused" in text(web.get(refused.headers["Location"]))
    assert api.get(f"/shipments?order={number}")[1]["total"] == 0
    status, _ = api.post("/carrier-accounts", {"plugin": "table_rate", "name": "cards",
                                               "settings": EXAMPLE_SETTINGS})
    assert status == 201
    assert web.post(f"/admin/orders/{number}/ship").status_code == 302
    _, shipments = api.get(f"/shipments?order={number}")
    assert shipments["total"] == 1
    assert shipments["items"][0]["tracking_number"] in text(web.get(f"/admin/orders/{number}"))


def test_bulk_action_names_every_refusal(web: Web, api: Api) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("admin")
    response = web.post("/admin/orders/bulk", {"action": "approve",
                                               "numbers": [order["number"], "SO-999999"]})
    html = text(response)
    assert response.status_code == 200
    assert "SO-999999" in html and order["number"] in html


def test_chinese_interface_from_the_browser_language(web: Web) -> None:
    for header in ("zh-CN", "zh", "zh-Hans", "en-US;q=0.5, zh-CN"):
        html = text(web.get("/admin/login", headers={"Accept-Language": header}))
        assert 'lang="zh-Hans"' in html, header
        assert "登录" in html, header
    html = text(web.get("/admin/login", headers={"Accept-Language": "en-US,zh;q=0.5"}))
    assert 'lang="en"' in html and "Sign in" in html


def test_password_change_signs_other_devices_out(web: Web, client: FlaskClient,
                                                 app: Any) -> None:
    web.login("admin")
    elsewhere = Web(app.test_client())
    elsewhere.login("admin")
    response = web.post("/admin/account", {"current_password": "password-admin",
                                           "new_password": "a-new-password",
                                           "confirm_password": "a-new-password"})
    assert response.status_code == 302
    assert web.get("/admin/").status_code == 200  # this device stays in
    assert elsewhere.get("/admin/").status_code == 302  # the other is out
    again = Web(app.test_client())
    again.login("admin", "a-new-password")


def test_password_change_refusals_sit_by_their_fields(web: Web) -> None:
    web.login("admin")
    response = web.post("/admin/account", {"current_password": "wrong", "new_password": "x",
                                           "confirm_password": "x"})
    assert response.status_code == 400 and 'id="f-current_password-err"' in text(response)
    response = web.post("/admin/account", {"current_password": "password-admin",
                                           "new_password": "short", "confirm_password": "short"})
    assert 'id="f-new_password-err"' in text(response)


def test_pages_carry_a_strict_content_security_policy(web: Web) -> None:
    response = web.get("/admin/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    html = text(response)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and 'src="//' not in html and "style=" not in html


def test_every_asset_is_served_locally(web: Web) -> None:
    html = text(web.get("/admin/login"))
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert len(urls) == 3  # icon, stylesheet, script
    for url in urls:
        with web.client.get(url) as response:
            assert response.status_code == 200, url


def test_a_saved_view_restores_its_filters_for_its_owner_only(web: Web, app: Any) -> None:
    web.login("operator")
    response = web.post("/admin/views/orders", {"name": "Big ones",
                                                "query": "amount_min=100&page=3&status=held"})
    assert response.status_code == 302
    html = text(web.get("/admin/orders"))
    assert 'href="/admin/orders?amount_min=100&amp;status=held"' in html  # no page kept
    again = web.post("/admin/views/orders", {"name": "Big ones", "query": "amount_min=5"})
    assert "exists already" in text(web.get(again.headers["Location"]))
    other = Web(app.test_client())
    other.login("admin")
    assert "Big ones" not in text(other.get("/admin/orders"))


def test_a_shared_view_is_offered_to_everyone_and_needs_a_writer(web: Web, app: Any) -> None:
    web.login("analyst")
    web.post("/admin/views/orders", {"name": "Team", "query": "sku=SKU-A", "shared": "on"})
    assert "Team" not in text(web.get("/admin/orders"))  # an analyst may not share
    writer = Web(app.test_client())
    writer.login("operator")
    writer.post("/admin/views/orders", {"name": "Team", "query": "sku=SKU-A", "shared": "on"})
    assert "Team" in text(web.get("/admin/orders"))
    view_id = re.search(r'/admin/views/(\d+)/delete', text(writer.get("/admin/orders")))
    assert view_id
    assert "not yours" in text(web.get(web.post(f"/admin/views/{view_id[1]}/delete")
                                       .headers["Location"]))
    writer.post(f"/admin/views/{view_id[1]}/delete")
    assert "Team" not in text(web.get("/admin/orders"))


@pytest.mark.redis
def test_failed_sign_ins_are_counted_across_servers_in_redis(
    redis_url: str, postgres_url: str, config_dir: Any, tmp_path: Any
) -> None:
    """Two servers on one Redis broker share the count, so spreading guesses over the
    servers behind a load balancer does not help."""
    from conftest import HUB_SECRET_KEY, REDIS_NAMESPACE, reset_postgres, seed_tenant

    from hub.app import create_app

    reset_postgres(postgres_url)
    settings = {"database_url": postgres_url, "broker_url": redis_url,
                "broker_namespace": REDIS_NAMESPACE, "config_dir": config_dir,
                "secret_key": HUB_SECRET_KEY}
    first = create_app({**settings, "data_dir": tmp_path / "a"})
    second = create_app({**settings, "data_dir": tmp_path / "b"})
    try:
        seed_tenant(first.extensions["orderhub"], "acme")
        one, two = Web(first.test_client()), Web(second.test_client())
        one.get("/admin/login")
        two.get("/admin/login")
        for web in (one, two) * 4:
            assert web.post("/admin/login", {"username": "admin", "password": "wrong-guess",
                                             "tenant": "acme"}).status_code == 401
        assert two.post("/admin/login", {"username": "admin", "password": "password-admin",
                                         "tenant": "acme"}).status_code == 429
    finally:
        first.extensions["orderhub"].close()
        second.extensions["orderhub"].close()


def test_an_order_action_needs_its_own_routes_permission(web: Web, api: Api) -> None:
    """One page stands for approve, reject, cancel and ship: each asks for the permission of
    its own API route, and a role without it gets 403 and changes nothing."""
    _, order = api.post("/orders", ORDER)
    number = order["number"]
    web.login("analyst")
    for action in ("approve", "reject", "cancel", "ship"):
        response = web.post(f"/admin/orders/{number}/{action}", {"reason": "x"})
        assert response.status_code == 403, action
    assert api.get(f"/orders/{number}")[1]["status"] == "confirmed"
    web.login("warehouse")
    status, _ = api.post(f"/orders/{number}/cancel", {}, token=api.tokens["warehouse"])
    assert web.post(f"/admin/orders/{number}/cancel").status_code == status
