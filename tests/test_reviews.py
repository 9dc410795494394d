"""Product reviews: once per delivered order line, refused for a line not delivered yet or
another tenant's order, verified buyer never taken from input, moderation as a table of
state by action, exact Decimal ratings over visible reviews, a public listing without hidden
reviews or e-mail addresses, a low rating opening a complaint, and reviews through the signed
link of a review request."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from care_support import delivered_order, order_id, placed_order, sweep, tenant_id
from conftest import HUB_SECRET_KEY, ORDER, PUBLIC_URL, Api
from sqlalchemy import select
from tracking_support import Shipping

from hub.core import care, care_links
from hub.core.adapters import Recipient
from hub.core.care_rules import care_rules_from
from hub.core.models import Order, Shipment, ShipmentItem
from hub.runtime import Runtime

ACME = """
name = "Acme Store"

[[care.rules]]
name = "ask-for-review"
kind = "review_request"
days = 7
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    (path / "tenants" / "acme.toml").write_text(ACME)
    return path


def review(api: Api, number: str, sku: str = "SKU-A", rating: int = 5, *,
           token: str | None = None, **more: Any) -> tuple[int, Any]:
    return api.post("/reviews", {"order": number, "sku": sku, "rating": rating, **more},
                    token=token)


# --- taking a review ---------------------------------------------------------------------------


def test_a_delivered_line_is_reviewed_once_as_a_verified_buyer(
    api: Api, runtime: Runtime
) -> None:
    number, _ = delivered_order(runtime, api)
    status, made = review(api, number, rating=4, title="Solid", body="Does the job.",
                          token=api.tokens["service"])
    assert status == 201, made
    assert {k: made[k] for k in ("sku", "order", "rating", "title", "body", "verified_buyer",
                                 "source", "hidden", "reply", "ticket", "created_by")} == {
        "sku": "SKU-A", "order": number, "rating": 4, "title": "Solid", "body": "Does the job.",
        "verified_buyer": True, "source": "api", "hidden": False, "reply": None,
        "ticket": None, "created_by": "service"}
    assert made["customer"] == {"email": "ann@example.com", "name": "Ann Lee"}
    status, again = review(api, number, rating=1)
    assert status == 409
    assert again["error"]["message"] == f"SKU-A on order {number} is reviewed already"
    assert review(api, number, "SKU-B")[0] == 201  # the other line is its own
    status, body = api.get(f"/reviews/{made['id']}")
    assert (status, body["rating"]) == (200, 4)
    status, entries = api.get(f"/audit?action=review.create&entity_id={made['id']}")
    assert len(entries["items"]) == 1


def test_a_line_not_delivered_yet_is_refused(api: Api, runtime: Runtime) -> None:
    number = placed_order(api)
    status, body = review(api, number)
    assert status == 409
    assert body["error"]["message"] == (
        f"SKU-A on order {number} is not delivered yet: only delivered goods can be reviewed")
    shipping = Shipping(runtime, api)
    shipping.shipment(shipping.account(), number)  # shipped, not delivered
    assert review(api, number)[0] == 409


def test_a_delivered_parcel_makes_its_lines_reviewable(api: Api, runtime: Runtime) -> None:
    """One parcel of two delivered: its SKU can be reviewed, the other not yet."""
    number = placed_order(api)
    shipping = Shipping(runtime, api)
    shipment_id = shipping.shipment(shipping.account(), number)
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        shipment.status = "delivered"
        for item in list(shipment.items):
            if item.sku == "SKU-B":
                session.delete(item)
        session.flush()
        assert [i.sku for i in session.scalars(select(ShipmentItem).where(
            ShipmentItem.shipment_id == shipment_id))] == ["SKU-A"]
    assert review(api, number, "SKU-A")[0] == 201
    assert review(api, number, "SKU-B")[0] == 409


def test_another_tenants_order_is_no_order(api: Api, runtime: Runtime) -> None:
    number, _ = delivered_order(runtime, api)
    status, body = review(api, number, token=api.tokens["stranger"])
    assert status == 404
    assert body["error"]["message"] == f"no order {number!r}"
    other, _ = delivered_order(runtime, api, token=api.tokens["stranger"], slug="other")
    assert other == number  # the same number in the other tenant …
    assert review(api, other, token=api.tokens["stranger"])[0] == 201  # … is its own order
    assert review(api, number)[0] == 201  # and acme's line is still unreviewed


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"rating": 0}, 422, "rating"),
        ({"rating": 6}, 422, "rating"),
        ({"rating": 4.5}, 422, "rating"),
        ({"sku": "SKU-C"}, 422, "sku"),
        ({"order": "SO-999999"}, 404, None),
        ({"verified_buyer": False}, 422, "verified_buyer"),
        ({"title": "x" * 201}, 422, "title"),
    ],
)
def test_bad_reviews_are_refused_naming_the_field(
    api: Api, runtime: Runtime, change: dict[str, Any], status: int, field: str | None
) -> None:
    number, _ = delivered_order(runtime, api)
    got, body = api.post("/reviews", {"order": number, "sku": "SKU-A", "rating": 5, **change})
    assert got == status, body
    if field:
        assert field in {d["field"] for d in body["error"]["details"]}
    assert api.get("/reviews")[1]["total"] == 0


@pytest.mark.parametrize("rating", [1, 2])
def test_a_low_rating_is_taken_and_opens_a_complaint(
    api: Api, runtime: Runtime, rating: int
) -> None:
    number, _ = delivered_order(runtime, api)
    status, made = review(api, number, rating=rating, title="Broke", body="After a day.")
    assert status == 201, made
    assert made["hidden"] is False  # never refused nor hidden for being negative
    assert made["ticket"] is not None
    status, ticket = api.get(f"/tickets/{made['ticket']}")
    assert status == 200
    assert (ticket["kind"], ticket["order"], ticket["source"]) == ("complaint", number, "review")
    assert ticket["customer"]["email"] == "ann@example.com"
    assert ticket["lines"] == [{"sku": "SKU-A", "quantity": 1}]
    assert ticket["messages"][0]["body"] == "Broke\n\nAfter a day."
    assert ticket["priority"] == ("high" if rating == 1 else "normal")


def test_a_rating_above_the_threshold_opens_nothing(api: Api, runtime: Runtime) -> None:
    number, _ = delivered_order(runtime, api)
    status, made = review(api, number, rating=3)
    assert (status, made["ticket"]) == (201, None)
    assert api.get("/tickets")[1]["total"] == 0


@pytest.mark.parametrize(("below", "rating", "opens"), [(3, 3, True), (3, 4, False),
                                                        (0, 1, False)])
def test_the_tenant_sets_the_threshold(
    api: Api, runtime: Runtime, config_dir: Path, below: int, rating: int, opens: bool
) -> None:
    runtime.settings.tenants["acme"].care = care_rules_from(None, {"ticket_below": below})
    number, _ = delivered_order(runtime, api)
    status, made = review(api, number, rating=rating)
    assert status == 201
    assert (made["ticket"] is not None) is opens


def test_a_customer_without_an_email_gets_no_ticket(api: Api, runtime: Runtime) -> None:
    number, _ = delivered_order(runtime, api, {**ORDER, "customer": {"name": "Walk-in"}})
    status, made = review(api, number, rating=1)
    assert (status, made["ticket"], made["customer"]) == (
        201, None, {"email": None, "name": "Walk-in"})


# --- moderation --------------------------------------------------------------------------------


def _made(api: Api, runtime: Runtime, hidden: bool = False, replied: bool = False) -> int:
    number, _ = delivered_order(runtime, api)
    review_id = review(api, number, rating=4)[1]["id"]
    if hidden:
        assert api.post(f"/reviews/{review_id}/hide", {"reason": "spam"})[0] == 200
    if replied:
        assert api.post(f"/reviews/{review_id}/reply", {"body": "Thanks!"})[0] == 200
    return review_id


@pytest.mark.parametrize(
    ("state", "action", "status", "after"),
    [
        ("visible", "hide", 200, {"hidden": True, "hidden_reason": "off_topic"}),
        ("visible", "show", 409, {"hidden": False, "hidden_reason": None}),
        ("hidden", "hide", 409, {"hidden": True, "hidden_reason": "spam"}),
        ("hidden", "show", 200, {"hidden": False, "hidden_reason": None}),
        ("visible", "reply", 200, {"reply": "We are glad!"}),
        ("replied", "reply", 409, {"reply": "Thanks!"}),
        ("hidden", "reply", 200, {"reply": "We are glad!"}),
    ],
)
def test_moderation_by_state_and_action(
    api: Api, runtime: Runtime, state: str, action: str, status: int, after: dict[str, Any]
) -> None:
    review_id = _made(api, runtime, hidden=state == "hidden", replied=state == "replied")
    body = {"hide": {"reason": "off_topic"}, "show": None, "reply": {"body": "We are glad!"}}
    got, answer = api.post(f"/reviews/{review_id}/{action}", body[action],
                           token=api.tokens["service"])
    assert got == status, answer
    _, shown = api.get(f"/reviews/{review_id}")
    for key, value in after.items():
        got_value = shown[key]["body"] if key == "reply" else shown[key]
        assert got_value == value, key
    if action == "reply" and status == 200:
        assert shown["reply"]["by"] == "service"


@pytest.mark.parametrize("reason", ["negative", "bad rating", ""])
def test_a_review_is_never_hidden_for_being_negative(
    api: Api, runtime: Runtime, reason: str
) -> None:
    review_id = _made(api, runtime)
    status, body = api.post(f"/reviews/{review_id}/hide", {"reason": reason})
    assert status == 422
    assert body["error"]["details"][0]["field"] == "reason"


def test_moderation_names_only_this_tenants_reviews(api: Api, runtime: Runtime) -> None:
    review_id = _made(api, runtime)
    stranger = api.tokens["stranger"]
    assert api.post(f"/reviews/{review_id}/hide", {"reason": "spam"}, token=stranger)[0] == 404
    assert api.get(f"/reviews/{review_id}", token=stranger)[0] == 404
    assert api.post("/reviews/999999/show")[0] == 404


# --- ratings and the public listing ------------------------------------------------------------


def test_the_rating_is_exact_and_counts_visible_reviews_only(
    api: Api, runtime: Runtime
) -> None:
    ids = []
    for rating in (5, 4, 4):
        number, _ = delivered_order(runtime, api)
        ids.append(review(api, number, rating=rating)[1]["id"])
    status, rated = api.get("/products/SKU-A/rating", token=api.tokens["analyst"])
    assert status == 200
    assert rated == {"sku": "SKU-A", "average": "4.33", "count": 3,
                     "stars": {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1}}
    api.post(f"/reviews/{ids[1]}/hide", {"reason": "spam"})
    assert api.get("/products/SKU-A/rating")[1]["average"] == "4.50"
    assert api.get("/products/SKU-A/rating")[1]["count"] == 2
    api.post(f"/reviews/{ids[0]}/hide", {"reason": "abuse"})
    api.post(f"/reviews/{ids[2]}/hide", {"reason": "abuse"})
    assert api.get("/products/SKU-A/rating")[1] == {
        "sku": "SKU-A", "average": None, "count": 0,
        "stars": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}}
    assert api.get("/products/SKU-C/rating")[1]["count"] == 0
    assert api.get("/products/NOPE/rating")[0] == 404


def test_two_thirds_round_half_up(api: Api, runtime: Runtime) -> None:
    for rating in (1, 2, 2):  # 5/3 = 1.666…
        number, _ = delivered_order(runtime, api)
        assert review(api, number, rating=rating)[0] == 201
    assert api.get("/products/SKU-A/rating")[1]["average"] == "1.67"


def test_the_public_listing_shows_visible_reviews_without_email(
    api: Api, runtime: Runtime
) -> None:
    hidden = _made(api, runtime)
    api.post(f"/reviews/{hidden}/hide", {"reason": "personal_data"})
    shown = []
    for i in range(3):
        number, _ = delivered_order(runtime, api, {**ORDER, "customer": {
            "email": f"buyer{i}@example.com", "name": f"Mary Ann Smith{i}"}})
        shown.append(review(api, number, rating=5, title=f"Great {i}")[1]["id"])
    api.post(f"/reviews/{shown[0]}/reply", {"body": "Thank you!"})

    response = api.client.get("/public/acme/products/SKU-A/reviews?per_page=2")  # no token
    assert response.status_code == 200
    page = response.get_json()
    text = response.get_data(as_text=True)
    assert "@" not in text and "Ann" not in text
    assert page["product"] == {"sku": "SKU-A", "name": "Alpha"}
    assert page["rating"]["count"] == 3 and page["rating"]["average"] == "5.00"
    assert (page["total"], page["page"], page["per_page"]) == (3, 1, 2)
    assert [r["id"] for r in page["items"]] == [shown[2], shown[1]]  # newest first
    assert page["items"][0] == {
        "id": shown[2], "rating": 5, "title": "Great 2", "body": None, "verified_buyer": True,
        "author": "Mary S.", "reply": None, "photos": [],
        "created_at": page["items"][0]["created_at"]}
    second = api.client.get("/public/acme/products/SKU-A/reviews?page=2&per_page=2").get_json()
    assert [r["id"] for r in second["items"]] == [shown[0]]
    assert second["items"][0]["reply"]["body"] == "Thank you!"
    assert "by" not in second["items"][0]["reply"]  # staff names stay inside
    assert hidden not in {r["id"] for r in page["items"] + second["items"]}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/public/acme/products/NOPE/reviews", 404),
        ("/public/nobody/products/SKU-A/reviews", 404),
        ("/public/acme/products/SKU-A/reviews?page=0", 400),
        ("/public/acme/products/SKU-A/reviews?per_page=101", 400),
        ("/public/acme/products/SKU-A/reviews?per_page=x", 400),
        ("/public/acme/products/SKU-A/reviews?sort=rating", 400),
        ("/public/acme/products/SKU-A/reviews?per_page=100", 200),
    ],
)
def test_the_public_listing_refuses_what_it_does_not_know(
    api: Api, path: str, status: int
) -> None:
    assert api.client.get(path).status_code == status


def test_another_tenants_product_is_not_listed_under_acme(api: Api, runtime: Runtime) -> None:
    number, _ = delivered_order(runtime, api, token=api.tokens["stranger"], slug="other")
    assert review(api, number, token=api.tokens["stranger"])[0] == 201
    acme = api.client.get("/public/acme/products/SKU-A/reviews").get_json()
    other = api.client.get("/public/other/products/SKU-A/reviews").get_json()
    assert (acme["total"], other["total"]) == (0, 1)


def test_the_list_filters(api: Api, runtime: Runtime) -> None:
    number, _ = delivered_order(runtime, api)
    review(api, number, "SKU-A", 5)
    low = review(api, number, "SKU-B", 2)[1]["id"]
    api.post(f"/reviews/{low}/hide", {"reason": "spam"})
    assert [r["id"] for r in api.get("/reviews?rating=2")[1]["items"]] == [low]
    assert [r["sku"] for r in api.get("/reviews?hidden=false")[1]["items"]] == ["SKU-A"]
    assert api.get(f"/reviews?order={number}&sku=SKU-B")[1]["total"] == 1
    assert api.get("/reviews?rating=6")[0] == 400
    assert api.get("/reviews", token=api.tokens["stranger"])[1]["total"] == 0


# --- the signed link of a review request -------------------------------------------------------


def _review_link(api: Api, runtime: Runtime) -> tuple[str, str]:
    number, at = delivered_order(runtime, api)
    sweep(runtime, at + timedelta(days=7))
    acme = tenant_id(runtime)
    with runtime.transaction() as session:
        payload = {"number": number, "customer_id": session.scalar(
            select(Order.customer_id).where(Order.number == number, Order.tenant_id == acme))}
        links = care.message_links(session, PUBLIC_URL, HUB_SECRET_KEY, acme, "review_request",
                                   payload, Recipient("ann@example.com", None, "en"))
    assert links["review_url"] is not None
    return number, links["review_url"].removeprefix(PUBLIC_URL)


def test_a_customer_reviews_through_the_link_in_the_review_request(
    api: Api, runtime: Runtime
) -> None:
    number, path = _review_link(api, runtime)
    page = api.client.get(path)
    assert page.status_code == 200
    assert page.get_json() == {"tenant": "Acme Store", "order": number, "lines": [
        {"sku": "SKU-A", "name": "Alpha", "reviewed": False, "delivered": True},
        {"sku": "SKU-B", "name": "Bravo", "reviewed": False, "delivered": True}]}
    made = api.client.post(path, json={"sku": "SKU-B", "rating": 5, "title": "Love it"})
    assert made.status_code == 201, made.get_json()
    shown = made.get_json()
    assert (shown["rating"], shown["verified_buyer"], shown["author"]) == (5, True, None)
    assert "customer" not in shown
    assert api.client.post(path, json={"sku": "SKU-B", "rating": 1}).status_code == 409
    assert api.client.get(path).get_json()["lines"][1]["reviewed"] is True
    [listed] = api.get("/reviews")[1]["items"]
    assert (listed["source"], listed["created_by"]) == ("link", listed["created_by"])
    assert listed["created_by"].startswith("customer:")


@pytest.mark.parametrize(
    ("body", "status"),
    [({"sku": "SKU-A", "rating": 0}, 422), ({"sku": "SKU-A"}, 422),
     ({"sku": "SKU-A", "rating": 5, "verified_buyer": False}, 422),
     ({"sku": "SKU-Z", "rating": 5}, 422)],
)
def test_a_bad_review_by_link_is_refused(
    api: Api, runtime: Runtime, body: dict[str, Any], status: int
) -> None:
    _, path = _review_link(api, runtime)
    assert api.client.post(path, json=body).status_code == status


def test_a_review_link_for_another_customers_order_is_refused(
    api: Api, runtime: Runtime
) -> None:
    number, _ = delivered_order(runtime, api)
    other_number, _ = delivered_order(runtime, api, {**ORDER, "customer": {
        "email": "bo@example.com"}})
    acme = tenant_id(runtime)
    with runtime.transaction() as session:
        ann = session.scalar(select(Order.customer_id).where(Order.number == number,
                                                             Order.tenant_id == acme))
    forged = care_links.sign(HUB_SECRET_KEY, "review",
                             {"t": acme, "o": order_id(runtime, other_number), "c": ann})
    assert api.client.get(f"/care/review/{forged}").status_code == 404
    foreign = care_links.sign(HUB_SECRET_KEY, "review",
                              {"t": tenant_id(runtime, "other"),
                               "o": order_id(runtime, number), "c": ann})
    assert api.client.post(f"/care/review/{foreign}",
                           json={"sku": "SKU-A", "rating": 5}).status_code == 404
    assert api.get("/reviews")[1]["total"] == 0



# --- photos --------------------------------------------------------------------------------------


def png(width: int = 1) -> bytes:
    """A real PNG image, width x 1 grey pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\x80" * width)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def upload(api: Api, path: str, data: bytes, name: str = "parcel.png", *,
           token: str | None = None, **form: str) -> tuple[int, Any]:
    response = api.client.post(
        path if path.startswith("/care/") else f"/api/v1{path}",
        data={"file": (io.BytesIO(data), name), **form},
        headers={} if path.startswith("/care/") else
        {"Authorization": f"Bearer {token or api.token}"},
        content_type="multipart/form-data",
    )
    return response.status_code, response.get_json(silent=True)


def test_a_photo_goes_with_its_review_and_is_public_while_the_review_is(
    api: Api, runtime: Runtime
) -> None:
    number, _ = delivered_order(runtime, api)
    review_id = review(api, number)[1]["id"]
    status, shown = upload(api, f"/reviews/{review_id}/photos", png(), "../../etc/box.png",
                           token=api.tokens["service"])
    assert status == 201, shown
    [photo] = shown["photos"]
    assert (photo["filename"], photo["content_type"], photo["size"]) == (
        "box.png", "image/png", len(png()))
    assert photo["url"] == f"/api/v1/reviews/{review_id}/photos/{photo['id']}"
    staff = api.client.get(photo["url"], headers={"Authorization": f"Bearer {api.token}"})
    assert staff.status_code == 200 and staff.data == png()
    assert staff.headers["Content-Type"] == "image/png"
    assert staff.headers["Content-Disposition"].startswith("inline")
    assert staff.headers["X-Content-Type-Options"] == "nosniff"
    [listed] = api.client.get("/public/acme/products/SKU-A/reviews").get_json()["items"]
    [public] = listed["photos"]
    assert public["url"] == f"/public/acme/reviews/{review_id}/photos/{photo['id']}"
    seen = api.client.get(public["url"])  # no token
    assert (seen.status_code, seen.data, seen.mimetype) == (200, png(), "image/png")
    assert seen.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert api.client.get(f"/public/other/reviews/{review_id}/photos/{photo['id']}"
                          ).status_code == 404
    assert api.client.get(f"/public/acme/reviews/{review_id}/photos/{photo['id'] + 1}"
                          ).status_code == 404
    # hidden review: its photos are nobody's business but the staff's
    assert api.post(f"/reviews/{review_id}/hide", {"reason": "personal_data"})[0] == 200
    assert api.client.get(public["url"]).status_code == 404
    assert api.client.get(photo["url"], headers={"Authorization": f"Bearer {api.token}"}
                          ).status_code == 200
    assert api.post(f"/reviews/{review_id}/show")[0] == 200
    assert api.client.get(public["url"]).status_code == 200
    # a moderator takes it off
    assert api.delete(f"/reviews/{review_id}/photos/{photo['id']}",
                      token=api.tokens["service"])[1]["photos"] == []
    assert api.client.get(public["url"]).status_code == 404
    actions = [e["action"] for e in api.get(f"/audit?entity_id={review_id}")[1]["items"]]
    assert "review.photo" in actions and "review.photo_removed" in actions


@pytest.mark.parametrize(
    ("data", "name", "status", "words"),
    [
        (b"<html><script>alert(1)</script></html>", "cat.jpg", 422,
         "must be a JPEG, PNG, GIF or WebP image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "receipt.pdf", 422,
         "must be a JPEG, PNG, GIF or WebP image"),
        (b"GIF89a" + b"\x00" * 20, "a.gif", 201, ""),
    ],
)
def test_only_images_are_photos(
    api: Api, runtime: Runtime, data: bytes, name: str, status: int, words: str
) -> None:
    number, _ = delivered_order(runtime, api)
    review_id = review(api, number)[1]["id"]
    got, body = upload(api, f"/reviews/{review_id}/photos", data, name)
    assert got == status, body
    assert words in str(body)


def test_a_review_takes_five_photos_and_only_its_own_tenants_staff_add_them(
    api: Api, runtime: Runtime
) -> None:
    number, _ = delivered_order(runtime, api)
    review_id = review(api, number)[1]["id"]
    for width in range(1, 6):
        assert upload(api, f"/reviews/{review_id}/photos", png(width))[0] == 201
    status, body = upload(api, f"/reviews/{review_id}/photos", png(9))
    assert status == 409 and body["error"]["message"] == (
        f"review {review_id} has 5 photos already")
    assert upload(api, f"/reviews/{review_id}/photos", png(),
                  token=api.tokens["warehouse"])[0] == 403
    assert upload(api, f"/reviews/{review_id}/photos", png(),
                  token=api.tokens["stranger"])[0] == 404
    no_file = api.client.post(f"/api/v1/reviews/{review_id}/photos", json={},
                              headers={"Authorization": f"Bearer {api.token}"})
    assert no_file.status_code == 415
    assert api.delete(f"/reviews/{review_id}/photos/1", token=api.tokens["analyst"])[0] == 403


def test_a_customer_adds_a_photo_through_the_review_link(api: Api, runtime: Runtime) -> None:
    _, path = _review_link(api, runtime)
    status, body = upload(api, f"{path}/photos", png(), sku="SKU-A")
    assert status == 404 and "review the line first" in body["error"]["message"]
    assert api.client.post(path, json={"sku": "SKU-A", "rating": 4}).status_code == 201
    status, body = upload(api, f"{path}/photos", png())
    assert status == 422 and "'sku'" in body["error"]["message"]
    status, shown = upload(api, f"{path}/photos", png(), sku="SKU-A")
    assert status == 201, shown
    assert "customer" not in shown
    [photo] = shown["photos"]
    assert api.client.get(photo["url"]).data == png()
    assert upload(api, "/care/review/not-a-token/photos", png(), sku="SKU-A")[0] == 404
