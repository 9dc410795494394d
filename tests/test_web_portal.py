"""The customer portal: finding an order, following it, asking for help, reviewing."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ORDER, Api
from flask import Flask
from flask.testing import FlaskClient
from web_support import Web, text

pytestmark = pytest.mark.usefixtures("api")


@pytest.fixture
def order(api: Api) -> dict[str, Any]:
    status, made = api.post("/orders", ORDER)
    assert status == 201
    return made


@pytest.fixture
def visitor(app: Flask) -> Web:
    return Web(app.test_client())


def find(visitor: Web, number: str, contact: str, shop: str = "acme") -> Any:
    visitor.get(f"/portal/{shop}/")
    return visitor.post(f"/portal/{shop}/lookup", {"number": number, "contact": contact})


def test_the_portal_of_an_unknown_shop_is_a_404(visitor: Web) -> None:
    response = visitor.get("/portal/nosuchshop/")
    assert response.status_code == 404
    assert "no shop at this address" in text(response)


def test_an_order_is_found_by_number_and_email_whatever_their_case(
    visitor: Web, order: dict[str, Any]
) -> None:
    response = find(visitor, order["number"].lower(), "  ANN@Example.com ")
    assert response.status_code == 302
    page = text(visitor.get(response.headers["Location"]))
    assert order["number"] in page and "Alpha" in page
    assert 'id="milestones"' in page


def test_an_order_is_found_by_phone_with_or_without_spacing(
    visitor: Web, order: dict[str, Any]
) -> None:
    assert find(visitor, order["number"], "+1 (555) 0100").status_code == 302
    assert find(Web(visitor.client.application.test_client()), order["number"],
                "15550100").status_code == 302


def test_a_wrong_contact_and_an_unknown_order_answer_the_same(
    visitor: Web, order: dict[str, Any]
) -> None:
    wrong = find(visitor, order["number"], "bob@example.com")
    unknown = find(visitor, "SO-999999", "ann@example.com")
    short = find(visitor, order["number"], "0100")  # a few digits are not a phone
    assert wrong.status_code == unknown.status_code == short.status_code == 404
    message = "We found no order with that number and that e-mail or phone."
    assert message in text(wrong) and message in text(unknown)
    assert visitor.get(f"/portal/acme/orders/{order['number']}").status_code == 404


def test_lookups_are_limited_per_order_number(visitor: Web, order: dict[str, Any]) -> None:
    for _ in range(5):
        assert find(visitor, order["number"], "guess@example.com").status_code == 404
    blocked = find(visitor, order["number"], "ann@example.com")
    assert blocked.status_code == 429


def test_a_grant_is_for_its_shop_only(visitor: Web, order: dict[str, Any], api: Api) -> None:
    _, theirs = api.post("/orders", ORDER, token=api.tokens["stranger"])
    assert find(visitor, order["number"], "ann@example.com").status_code == 302
    # the other shop's order has the same number and the same customer e-mail, but this
    # visitor proved nothing there
    assert visitor.get(f"/portal/other/orders/{theirs['number']}").status_code == 404


def test_the_page_shows_city_and_postcode_never_the_street(
    visitor: Web, order: dict[str, Any]
) -> None:
    find(visitor, order["number"], "ann@example.com")
    page = text(visitor.get(f"/portal/acme/orders/{order['number']}"))
    assert "Newark" in page and "07101" in page
    assert "1 Main St" not in page and "+1 555 0100" not in page


def test_tracking_events_show_in_plain_words(
    visitor: Web, order: dict[str, Any], api: Api
) -> None:
    _set_up_carrier(api)
    status, shipment = api.post(f"/orders/{order['number']}/shipments", {})
    assert status == 201, shipment
    api.post(f"/shipments/{shipment['id']}/events",
             {"status": "out_for_delivery", "location": "Newark"})
    find(visitor, order["number"], "ann@example.com")
    page = text(visitor.get(f"/portal/acme/orders/{order['number']}"))
    assert "Out for delivery" in page and shipment["tracking_number"] in page
    assert 'aria-current="step">Out for delivery' in page


def test_a_return_request_becomes_a_ticket_and_replies_come_back(
    visitor: Web, order: dict[str, Any], api: Api
) -> None:
    find(visitor, order["number"], "ann@example.com")
    number = order["number"]
    response = visitor.post(f"/portal/acme/orders/{number}/help", {
        "kind": "return", "qty.SKU-A": "1", "subject": "Too big", "body": "Please take it back",
    })
    assert response.status_code == 302, text(response)[:3000]
    ticket_no = response.headers["Location"].rsplit("/", 1)[1]
    status, ticket = api.get(f"/tickets/{ticket_no}")
    assert status == 200
    assert ticket["kind"] == "return" and ticket["order"] == number
    assert ticket["customer"]["email"] == "ann@example.com"
    assert ticket["lines"][0]["sku"] == "SKU-A" and ticket["lines"][0]["quantity"] == 1
    api.post(f"/tickets/{ticket_no}/messages", {"body": "Label is on its way"})
    api.post(f"/tickets/{ticket_no}/messages", {"body": "staff only", "internal": True})
    page = text(visitor.get(f"/portal/acme/tickets/{ticket_no}"))
    assert "Label is on its way" in page
    assert "staff only" not in page
    assert visitor.post(f"/portal/acme/tickets/{ticket_no}", {"body": "Thanks!"}
                        ).status_code == 302
    _, ticket = api.get(f"/tickets/{ticket_no}")
    assert ticket["messages"][-1]["body"] == "Thanks!"
    assert ticket["messages"][-1]["author_kind"] == "customer"


def test_a_request_needs_a_subject_and_a_sane_quantity(
    visitor: Web, order: dict[str, Any]
) -> None:
    find(visitor, order["number"], "ann@example.com")
    response = visitor.post(f"/portal/acme/orders/{order['number']}/help", {
        "kind": "return", "qty.SKU-A": "9", "subject": "", "body": "x"})
    assert response.status_code == 400
    page = text(response)
    assert 'id="f-subject-err"' in page and 'id="f-qty-SKU-A-err"' in page


def test_a_visitor_cannot_reach_another_orders_ticket(
    visitor: Web, order: dict[str, Any], api: Api
) -> None:
    other = {**ORDER, "customer": {"email": "bo@example.com", "name": "Bo"}}
    _, second = api.post("/orders", other)
    status, ticket = api.post("/tickets", {"kind": "question", "subject": "Hi", "body": "?",
                                           "order": second["number"],
                                           "customer": {"email": "bo@example.com"}})
    assert status == 201
    find(visitor, order["number"], "ann@example.com")
    assert visitor.get(f"/portal/acme/tickets/{ticket['number']}").status_code == 404
    assert visitor.get(f"/portal/acme/orders/{second['number']}/help").status_code == 404


def test_portal_forms_need_their_csrf_token(visitor: Web, order: dict[str, Any]) -> None:
    visitor.get("/portal/acme/")
    response = visitor.post("/portal/acme/lookup", {"number": order["number"],
                                                    "contact": "ann@example.com"}, csrf=False)
    assert response.status_code == 400


def test_a_staff_session_is_no_portal_grant_and_back(
    web: Web, visitor: Web, order: dict[str, Any]
) -> None:
    web.login("admin")
    assert web.get(f"/portal/acme/orders/{order['number']}").status_code == 404
    find(visitor, order["number"], "ann@example.com")
    assert visitor.get("/admin/").status_code == 302


def test_leaving_forgets_the_orders(visitor: Web, order: dict[str, Any]) -> None:
    find(visitor, order["number"], "ann@example.com")
    visitor.get(f"/portal/acme/orders/{order['number']}")
    assert visitor.post("/portal/acme/signout").status_code == 302
    assert visitor.get(f"/portal/acme/orders/{order['number']}").status_code == 404


def test_the_shop_title_and_logo_come_from_its_settings(
    app: Flask, client: FlaskClient, tmp_path: Any
) -> None:
    runtime = app.extensions["orderhub"]
    config = runtime.settings.config_dir
    (config / "logos").mkdir()
    (config / "logos" / "acme.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    from hub.settings import TenantSettings

    acme = runtime.settings.tenants["acme"] = TenantSettings(slug="acme", name="acme")
    acme.portal = {"title": "ACME Outdoor", "logo": "acme.svg"}
    page = text(client.get("/portal/acme/"))
    assert "ACME Outdoor" in page and 'src="/portal/acme/logo"' in page
    with client.get("/portal/acme/logo") as response:
        assert response.status_code == 200
    acme.portal = {"logo": "../hub.toml"}
    assert client.get("/portal/acme/logo").status_code == 404


def _set_up_carrier(api: Api) -> None:
    """A rate card (the built-in table-rate carrier): no outside account needed."""
    from plugins.carriers.table_rate import EXAMPLE_SETTINGS

    status, body = api.post("/carrier-accounts", {"plugin": "table_rate", "name": "cards",
                                                  "settings": EXAMPLE_SETTINGS})
    assert status == 201, body


def _sent_links(runtime: Any) -> list[str]:
    from sqlalchemy import select

    from hub.core.models import Event

    with runtime.session() as session:
        rows = session.scalars(select(Event.payload).where(Event.name == "portal_link")
                               .order_by(Event.id)).all()
    return [r["url"] for r in rows]


def test_a_one_time_link_signs_the_customer_in_to_all_their_orders(
    visitor: Web, order: dict[str, Any], api: Api, app: Flask
) -> None:
    runtime = app.extensions["orderhub"]
    _, second = api.post("/orders", ORDER)
    visitor.get("/portal/acme/")
    response = visitor.post("/portal/acme/link", {"email": "Ann@Example.com"})
    assert response.status_code == 200 and 'id="link-sent"' in text(response)
    [url] = _sent_links(runtime)
    assert url.startswith("http://localhost/portal/acme/signin/")
    path = url.removeprefix("http://localhost")
    # a mail scanner's GET does not use it up
    for _ in range(2):
        assert "Continue" in text(visitor.get(path))
    assert visitor.post(path).status_code == 302
    home = text(visitor.get("/portal/acme/"))
    assert order["number"] in home and second["number"] in home
    assert visitor.get(f"/portal/acme/orders/{second['number']}").status_code == 200
    # once only, and not in another browser either
    stranger = Web(app.test_client())
    stranger.get("/portal/acme/")
    assert stranger.post(path).status_code == 404
    assert stranger.get(path).status_code == 404


def test_asking_for_a_link_says_the_same_for_an_unknown_address(
    visitor: Web, order: dict[str, Any], app: Flask
) -> None:
    visitor.get("/portal/acme/")
    known = visitor.post("/portal/acme/link", {"email": "ann@example.com"})
    unknown = visitor.post("/portal/acme/link", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert text(known) == text(unknown)
    assert len(_sent_links(app.extensions["orderhub"])) == 1


def test_an_expired_link_is_refused(visitor: Web, order: dict[str, Any], app: Flask) -> None:
    from sqlalchemy import update

    from hub.core.db import utcnow
    from hub.core.models import PortalLink

    runtime = app.extensions["orderhub"]
    visitor.get("/portal/acme/")
    visitor.post("/portal/acme/link", {"email": "ann@example.com"})
    [url] = _sent_links(runtime)
    with runtime.transaction() as session:
        session.execute(update(PortalLink).values(expires_at=utcnow()))
    response = visitor.post(url.removeprefix("http://localhost"))
    assert response.status_code == 404 and "not valid any more" in text(response)


def test_a_link_of_one_shop_is_nothing_in_another(
    visitor: Web, order: dict[str, Any], app: Flask
) -> None:
    visitor.get("/portal/acme/")
    visitor.post("/portal/acme/link", {"email": "ann@example.com"})
    [url] = _sent_links(app.extensions["orderhub"])
    token = url.rsplit("/", 1)[1]
    visitor.get("/portal/other/")
    assert visitor.post(f"/portal/other/signin/{token}").status_code == 404


def test_link_requests_are_limited(visitor: Web, order: dict[str, Any]) -> None:
    visitor.get("/portal/acme/")
    answers = [visitor.post("/portal/acme/link", {"email": "ann@example.com"}).status_code
               for _ in range(4)]
    assert answers == [200, 200, 200, 429]
