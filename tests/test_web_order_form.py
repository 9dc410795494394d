"""Creating, changing, merging and splitting orders from the web admin."""

from __future__ import annotations

from typing import Any

from conftest import ORDER, Api
from web_support import Web, text

CONTACT = {
    "customer.email": "mei@example.com", "customer.name": "Mei Wong",
    "consignee.name": "Mei Wong", "consignee.phone": "+1 555 0111",
    "consignee.address.line1": "5 Elm St", "consignee.address.city": "Newark",
    "consignee.address.region": "NJ", "consignee.address.postcode": "07102",
    "consignee.address.country": "us",
}


def test_search_and_add_a_product_then_create_the_order(web: Web, api: Api) -> None:
    web.login("operator")
    page = web.post("/admin/orders/new", {**CONTACT, "product_q": "Bravo", "action": "search"})
    html = text(page)
    assert page.status_code == 200 and 'value="add:SKU-B"' in html
    assert 'value="mei@example.com"' in html  # what was typed is kept
    added = text(web.post("/admin/orders/new", {**CONTACT, "product_q": "Bravo",
                                                "action": "add:SKU-B"}))
    assert 'name="lines[0].sku" type="text" value="SKU-B"' in added
    response = web.post("/admin/orders/new", {
        **CONTACT, "lines[0].sku": "SKU-B", "lines[0].quantity": "2",
        "lines[0].unit_price": "", "lines[2].sku": "SKU-A", "lines[2].quantity": "1",
        "action": "save"})
    assert response.status_code == 302, text(response)[:2000]
    number = response.headers["Location"].rsplit("/", 1)[1]
    _, order = api.get(f"/orders/{number}")
    lines = [(line["sku"], line["quantity"]) for line in order["lines"]]
    assert lines == [("SKU-B", 2), ("SKU-A", 1)]
    assert order["consignee"]["address"]["country"] == "US"
    assert order["customer"]["email"] == "mei@example.com" and order["created_by"] == "operator"


def test_a_refused_line_is_marked_on_its_own_row(web: Web) -> None:
    web.login("operator")
    response = web.post("/admin/orders/new", {
        **CONTACT, "lines[0].sku": "SKU-A", "lines[0].quantity": "1",
        "lines[3].sku": "SKU-A", "lines[3].quantity": "0", "action": "save"})
    assert response.status_code == 400
    html = text(response)
    assert 'id="f-lines-3-quantity-err"' in html  # the fourth row, as typed
    assert 'id="f-lines-0-quantity-err"' not in html


def test_an_order_without_lines_is_refused_and_nothing_is_made(web: Web, api: Api) -> None:
    web.login("operator")
    response = web.post("/admin/orders/new", {**CONTACT, "action": "save"})
    assert response.status_code == 400 and "lines" in text(response)
    assert api.get("/orders")[1]["total"] == 0


def test_change_an_orders_lines_and_address(web: Web, api: Api) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("operator")
    number = order["number"]
    form = text(web.get(f"/admin/orders/{number}/edit"))
    assert 'value="SKU-A"' in form and 'value="1 Main St"' in form
    response = web.post(f"/admin/orders/{number}/edit", {
        **CONTACT, "lines[0].sku": "SKU-A", "lines[0].quantity": "3",
        "lines[0].unit_price": "10.00", "action": "save"})
    assert response.status_code == 302, text(response)[:2000]
    _, changed = api.get(f"/orders/{number}")
    assert [(line["sku"], line["quantity"]) for line in changed["lines"]] == [("SKU-A", 3)]
    assert changed["consignee"]["address"]["line1"] == "5 Elm St"


def test_merge_a_selection_into_one_order(web: Web, api: Api) -> None:
    _, first = api.post("/orders", ORDER)
    _, second = api.post("/orders", ORDER)
    web.login("operator")
    response = web.post("/admin/orders/bulk", {"action": "merge",
                                               "numbers": [first["number"], second["number"]]})
    assert response.status_code == 302
    merged = response.headers["Location"].rsplit("/", 1)[1]
    _, order = api.get(f"/orders/{merged}")
    assert sum(line["quantity"] for line in order["lines"]) == 6


def test_split_off_part_of_an_order(web: Web, api: Api) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("operator")
    number = order["number"]
    assert "Split off part of this order" in text(web.get(f"/admin/orders/{number}"))
    response = web.post(f"/admin/orders/{number}/split", {"split.SKU-A": "1", "split.SKU-B": ""})
    assert response.status_code == 302
    child = response.headers["Location"].rsplit("/", 1)[1]
    assert child != number
    _, part = api.get(f"/orders/{child}")
    assert [(line["sku"], line["quantity"]) for line in part["lines"]] == [("SKU-A", 1)]
    refused = web.post(f"/admin/orders/{number}/split", {"split.SKU-A": "lots"})
    assert "whole numbers" in text(web.get(refused.headers["Location"]))


def test_roles_that_may_not_write_orders_get_403(web: Web, api: Api) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("analyst")
    assert web.get("/admin/orders/new").status_code == 403
    assert web.post(f"/admin/orders/{order['number']}/split", {"split.SKU-A": "1"}
                    ).status_code == 403
    assert "New order" not in text(web.get("/admin/orders"))


def test_the_pager_keeps_every_ticked_status(web: Web, api: Api) -> Any:
    for _ in range(3):
        api.post("/orders", ORDER)
    web.login("operator")
    html = text(web.get("/admin/orders?status_pick=confirmed&status_pick=held&per_page=1"))
    assert "status_pick=confirmed&amp;status_pick=held&amp;per_page=1&amp;page=2" in html
