"""The web admin's service pages as the team uses them: returns received, refunded, cancelled
and closed from their page, reviews hidden, shown and answered, failed notifications
replayed, and a SKU mapping that lets a rejected delivery through; with refusals shown,
other roles and other shops kept out, and forged forms refused."""

from __future__ import annotations

import hmac
import io
import json
import struct
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from care_support import delivered_order
from conftest import ORDER, Api
from sqlalchemy import select
from test_web_system import well_formed
from web_support import Web, text

from hub import hookimpl
from hub.core import notifications
from hub.core.adapters import StubCarrier, StubChannel
from hub.core.db import utcnow
from hub.core.models import Event, NotificationDelivery, Tenant
from hub.runtime import Runtime

SECRET = "web-shop-secret"


class StubPlugins:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]

    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


@pytest.fixture
def stubs(runtime: Runtime) -> Runtime:
    runtime.plugins.register(StubPlugins, "web-service-stubs")
    return runtime


# --- returns ----------------------------------------------------------------------------------


def carrier(api: Api, token: str | None = None) -> int:
    status, account = api.post(
        "/carrier-accounts", {"plugin": "stub", "name": "stub-post", "settings": {}}, token=token
    )
    assert status == 201, account
    return int(account["id"])


def returned(
    api: Api, *, token: str | None = None, lines: tuple[tuple[str, int], ...] = (("SKU-A", 2),)
) -> dict[str, Any]:
    """A return of a delivered order (ORDER: 2 SKU-A at 10.00, 1 SKU-B at 25.50)."""
    account = carrier(api, token)
    status, order = api.post("/orders", ORDER, token=token)
    assert status == 201, order
    status, shipment = api.post(
        f"/orders/{order['number']}/shipments",
        {"carrier_account": account, "service": "standard"},
        token=token,
    )
    assert status == 201, shipment
    at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    status, event = api.post(
        f"/shipments/{shipment['id']}/events", {"status": "delivered", "at": at}, token=token
    )
    assert status == 201, event
    status, ret = api.post(
        "/returns",
        {
            "order": order["number"],
            "reason": "too small",
            "lines": [{"sku": s, "quantity": q} for s, q in lines],
        },
        token=token,
    )
    assert status == 201, ret
    return ret


def the_return(api: Api, ret: dict[str, Any]) -> dict[str, Any]:
    status, found = api.get(f"/returns/{ret['id']}")
    assert status == 200, found
    return found


def test_a_return_is_received_refunded_and_closed_from_its_page(
    web: Web, api: Api, stubs: Runtime
) -> None:
    ret = returned(api)
    web.login("operator")
    listing = text(web.get("/admin/returns"))
    assert ret["number"] in listing and "1 return" in listing
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert 'id="f-sellable_0"' in page and 'id="refund"' not in page  # nothing came back yet
    well_formed(listing)
    well_formed(page)

    response = web.post(
        f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "sellable_0": "1", "damaged_0": "1"}
    )
    assert response.status_code == 302
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert "2 unit(s) received" in page
    now = the_return(api, ret)
    assert now["status"] == "received"
    assert [(r["quantity"], r["condition"], r["warehouse"]) for r in now["receipts"]] == [
        (1, "sellable", "MAIN"),
        (1, "damaged", "QUARANTINE"),
    ]

    assert 'id="refund"' in page and 'id="close"' in page and 'id="cancel"' not in page
    well_formed(page)
    response = web.post(
        f"/admin/returns/{ret['id']}/refund", {"amount": "15.00", "refund_reason": "goodwill"}
    )
    assert response.status_code == 302
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert "pay it back by hand" in page  # an order from no channel is refunded by hand
    now = the_return(api, ret)
    assert (now["status"], now["refunded"]) == ("refunded", "15.00")
    assert now["refunds"][0]["reason"] == "goodwill"

    response = web.post(f"/admin/returns/{ret['id']}/close", {"close_reason": "all settled"})
    assert response.status_code == 302
    now = the_return(api, ret)
    assert (now["status"], now["note"]) == ("closed", "all settled")
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert "is closed" in page and 'id="close"' not in page and 'id="f-sellable_0"' not in page


def test_return_refusals_are_shown_by_their_fields(web: Web, api: Api, stubs: Runtime) -> None:
    ret = returned(api)
    web.login("operator")
    # More than was asked back
    response = web.post(f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "sellable_0": "3"})
    assert response.status_code == 422
    html = text(response)
    assert 'id="f-sellable_0-err"' in html and "2 were asked back; 3 cannot come" in html
    assert 'value="3"' in html  # what was typed stays
    # Nothing entered, or not a number
    response = web.post(f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A"})
    assert response.status_code == 400 and "Enter how many units" in text(response)
    response = web.post(f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "damaged_0": "two"})
    assert response.status_code == 400 and 'id="f-damaged_0-err"' in text(response)
    # A refund before anything came back, and one above what came back
    response = web.post(f"/admin/returns/{ret['id']}/refund", {})
    assert response.status_code == 409
    assert "nothing of it has come back yet" in text(response)
    web.post(f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "sellable_0": "1"})
    response = web.post(f"/admin/returns/{ret['id']}/refund", {"amount": "99.00"})
    assert response.status_code == 422
    assert 'id="f-amount-err"' in text(response) and "at most 10.00" in text(response)
    # Cancelling once goods came back
    response = web.post(f"/admin/returns/{ret['id']}/cancel", {"cancel_reason": "oops"})
    assert response.status_code == 409
    assert "goods have come back (close it instead)" in text(response)
    now = the_return(api, ret)
    assert (now["status"], now["refunded"]) == ("partially_received", "0.00")


def test_an_authorised_return_is_cancelled_and_labelled_from_its_page(
    web: Web, api: Api, stubs: Runtime
) -> None:
    ret = returned(api)
    web.login("service")
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert 'id="label"' in page and 'id="cancel"' in page
    well_formed(page)
    response = web.post(f"/admin/returns/{ret['id']}/label", {})
    assert response.status_code == 302
    labelled = the_return(api, ret)["label"]
    assert labelled["status"] == "issued"
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert labelled["tracking_number"] in page and 'id="label"' not in page
    again = web.post(f"/admin/returns/{ret['id']}/label", {})
    assert again.status_code == 409 and "has a label already" in text(again)

    response = web.post(f"/admin/returns/{ret['id']}/cancel", {"cancel_reason": "changed mind"})
    assert response.status_code == 302
    assert the_return(api, ret)["status"] == "cancelled"


def test_the_warehouse_receives_returns_but_may_not_refund(
    web: Web, api: Api, stubs: Runtime
) -> None:
    ret = returned(api)
    web.login("warehouse")
    assert 'href="/admin/returns"' in text(web.get("/admin/"))
    page = text(web.get(f"/admin/returns/{ret['id']}"))
    assert 'id="f-sellable_0"' in page and 'id="cancel"' not in page
    web.post(f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "sellable_0": "2"})
    assert the_return(api, ret)["status"] == "received"
    assert 'id="refund"' not in text(web.get(f"/admin/returns/{ret['id']}"))
    assert api.post(f"/returns/{ret['id']}/refund", {}, token=api.tokens["warehouse"])[0] == 403
    response = web.post(f"/admin/returns/{ret['id']}/refund", {})
    assert response.status_code == 403 and "refunds.write" in text(response)
    assert web.post(f"/admin/returns/{ret['id']}/close", {}).status_code == 403
    assert the_return(api, ret)["status"] == "received"


def test_returns_are_filtered_and_another_shops_never_show(
    web: Web, api: Api, stubs: Runtime
) -> None:
    ours = returned(api)
    theirs = returned(api, token=api.tokens["stranger"])
    assert theirs["number"] == ours["number"]  # numbers repeat across shops
    web.login("admin")
    listing = text(web.get("/admin/returns"))
    assert listing.count(f">{ours['number']}</a>") == 1 and "1 return" in listing
    assert web.get(f"/admin/returns/{theirs['id']}").status_code == 404
    response = web.post(f"/admin/returns/{theirs['id']}/cancel", {})
    assert response.status_code == 404
    assert the_return(api, ours)["status"] == "authorised"
    assert api.get(f"/returns/{theirs['id']}", token=api.tokens["stranger"])[1]["status"] == (
        "authorised"
    )

    assert ours["number"] in text(web.get("/admin/returns?status=authorised"))
    assert "0 returns" in text(web.get("/admin/returns?status=received&status=closed"))
    assert "0 returns" in text(web.get("/admin/returns?order=SO-NOPE"))
    bad = web.get("/admin/returns?status=lost")
    assert bad.status_code == 400 and 'id="f-status-err"' in text(bad)


def test_a_return_action_without_its_csrf_token_is_refused(
    web: Web, api: Api, stubs: Runtime
) -> None:
    ret = returned(api)
    web.login("operator")
    response = web.post(f"/admin/returns/{ret['id']}/cancel", {}, csrf=False)
    assert response.status_code == 400
    response = web.post(
        f"/admin/returns/{ret['id']}/receive", {"sku": "SKU-A", "sellable_0": "2"}, csrf=False
    )
    assert response.status_code == 400
    assert the_return(api, ret)["status"] == "authorised"


# --- reviews ----------------------------------------------------------------------------------


def reviewed(
    api: Api, runtime: Runtime, rating: int = 2, *, token: str | None = None, slug: str = "acme"
) -> dict[str, Any]:
    number, _ = delivered_order(runtime, api, token=token, slug=slug)
    status, made = api.post(
        "/reviews",
        {
            "order": number,
            "sku": "SKU-A",
            "rating": rating,
            "title": "Meh",
            "body": "Broke after a week.",
        },
        token=token,
    )
    assert status == 201, made
    return made


def the_review(api: Api, review: dict[str, Any]) -> dict[str, Any]:
    status, found = api.get(f"/reviews/{review['id']}")
    assert status == 200, found
    return found


def test_a_review_is_hidden_shown_and_answered_from_its_page(
    web: Web, api: Api, runtime: Runtime
) -> None:
    review = reviewed(api, runtime)
    web.login("service")
    listing = text(web.get("/admin/reviews"))
    assert f'href="/admin/reviews/{review["id"]}"' in listing and "Broke after a week." in listing
    page = text(web.get(f"/admin/reviews/{review['id']}"))
    assert 'id="hide"' in page and 'id="reply"' in page
    well_formed(listing)
    well_formed(page)

    response = web.post(f"/admin/reviews/{review['id']}/hide", {"reason": "off_topic"})
    assert response.status_code == 302
    now = the_review(api, review)
    assert (now["hidden"], now["hidden_reason"]) == (True, "off_topic")
    page = text(web.get(f"/admin/reviews/{review['id']}"))
    assert "is hidden" in page and "Not about the product" in page and 'id="hide"' not in page
    assert api.get("/reviews?hidden=true")[1]["total"] == 1
    assert f'href="/admin/reviews/{review["id"]}"' in text(web.get("/admin/reviews?hidden=true"))
    assert "0 reviews" in text(web.get("/admin/reviews?hidden=false"))

    response = web.post(f"/admin/reviews/{review['id']}/show")
    assert response.status_code == 302
    assert the_review(api, review)["hidden"] is False

    response = web.post(
        f"/admin/reviews/{review['id']}/reply", {"body": "Sorry to hear it: we sent a replacement."}
    )
    assert response.status_code == 302
    assert the_review(api, review)["reply"]["body"] == "Sorry to hear it: we sent a replacement."
    page = text(web.get(f"/admin/reviews/{review['id']}"))
    assert 'id="reply-shown"' in page and 'id="reply"' not in page


def png() -> bytes:
    """A real one-pixel grey PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def test_a_reviews_photos_show_on_its_page(web: Web, api: Api, runtime: Runtime) -> None:
    review = reviewed(api, runtime)
    response = api.client.post(
        f"/api/v1/reviews/{review['id']}/photos",
        data={"file": (io.BytesIO(png()), "box.png")},
        headers={"Authorization": f"Bearer {api.token}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201, response.get_json()
    [photo] = response.get_json()["photos"]
    web.login("analyst")
    src = f"/admin/reviews/{review['id']}/photos/{photo['id']}"
    page = text(web.get(f"/admin/reviews/{review['id']}"))
    assert f'<img src="{src}" alt="Photo box.png"' in page
    shown = web.client.get(src)  # an image: the page helper would read it as text
    assert (shown.status_code, shown.mimetype, shown.data) == (200, "image/png", png())
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert web.get(f"/admin/reviews/{review['id']}/photos/{photo['id'] + 1}").status_code == 404
    web.post("/admin/logout")
    assert web.client.get(src).status_code == 302  # signed out: no photo either


def test_review_refusals_are_shown_by_their_fields(web: Web, api: Api, runtime: Runtime) -> None:
    review = reviewed(api, runtime)
    web.login("operator")
    response = web.post(f"/admin/reviews/{review['id']}/hide", {"reason": ""})
    assert response.status_code == 422 and 'id="f-reason-err"' in text(response)
    response = web.post(f"/admin/reviews/{review['id']}/reply", {"body": "  "})
    assert response.status_code == 422 and 'id="f-body-err"' in text(response)
    response = web.post(f"/admin/reviews/{review['id']}/show")
    assert response.status_code == 409 and "is shown already" in text(response)
    web.post(f"/admin/reviews/{review['id']}/reply", {"body": "Thanks!"})
    again = web.post(f"/admin/reviews/{review['id']}/reply", {"body": "And again"})
    assert again.status_code == 409 and "has a reply already" in text(again)
    assert the_review(api, review)["reply"]["body"] == "Thanks!"
    bad = web.get("/admin/reviews?rating=9")
    assert bad.status_code == 400 and 'id="f-rating-err"' in text(bad)


def test_a_reader_sees_reviews_but_may_not_moderate_them(
    web: Web, api: Api, runtime: Runtime
) -> None:
    review = reviewed(api, runtime)
    web.login("analyst")
    page = text(web.get(f"/admin/reviews/{review['id']}"))
    assert "Broke after a week." in page and 'id="hide"' not in page and 'id="reply"' not in page
    assert (
        api.post(f"/reviews/{review['id']}/hide", {"reason": "spam"}, token=api.tokens["analyst"])[
            0
        ]
        == 403
    )
    response = web.post(f"/admin/reviews/{review['id']}/hide", {"reason": "spam"})
    assert response.status_code == 403 and "reviews.moderate" in text(response)
    assert the_review(api, review)["hidden"] is False
    web.login("warehouse")
    assert web.get("/admin/reviews").status_code == 403


def test_another_shops_reviews_never_show(web: Web, api: Api, runtime: Runtime) -> None:
    ours = reviewed(api, runtime, rating=5)
    theirs = reviewed(api, runtime, rating=1, token=api.tokens["stranger"], slug="other")
    web.login("admin")
    listing = text(web.get("/admin/reviews"))
    assert "1 review" in listing and f'href="/admin/reviews/{ours["id"]}"' in listing
    assert f'href="/admin/reviews/{theirs["id"]}"' not in listing
    assert web.get(f"/admin/reviews/{theirs['id']}").status_code == 404
    assert web.post(f"/admin/reviews/{theirs['id']}/hide", {"reason": "spam"}).status_code == 404
    status, still = api.get(f"/reviews/{theirs['id']}", token=api.tokens["stranger"])
    assert (status, still["hidden"]) == (200, False)


def test_a_review_action_without_its_csrf_token_is_refused(
    web: Web, api: Api, runtime: Runtime
) -> None:
    review = reviewed(api, runtime)
    web.login("service")
    response = web.post(f"/admin/reviews/{review['id']}/hide", {"reason": "spam"}, csrf=False)
    assert response.status_code == 400
    assert the_review(api, review)["hidden"] is False


# --- notifications ----------------------------------------------------------------------------


def message(runtime: Runtime, status: str, slug: str = "acme") -> int:
    """A stock_low message of the shop's to a partner webhook, in ``status``."""
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
        event = Event(
            tenant_id=tenant_id,
            name="stock_low",
            payload={"sku": "SKU-A", "available": 1, "threshold": 5},
            dispatched_at=utcnow(),
        )
        session.add(event)
        session.flush()
        row = NotificationDelivery(
            tenant_id=tenant_id,
            event_id=event.id,
            notifier="partner",
            plugin="webhook",
            message_id=notifications.new_message_id(),
            status=status,
            attempts=3,
            last_error="HTTP 503 from https://partner.example/hook",
        )
        session.add(row)
        session.flush()
        return int(row.id)


def test_a_failed_notification_is_listed_and_replayed(web: Web, api: Api, runtime: Runtime) -> None:
    failed = message(runtime, "failed")
    sent = message(runtime, "sent")
    theirs = message(runtime, "failed", slug="other")
    web.login("operator")
    listing = text(web.get("/admin/notifications"))
    assert f"#{failed}<" in listing and "HTTP 503" in listing
    well_formed(listing)
    assert f"#{sent}<" not in listing and f"#{theirs}<" not in listing  # failed ones, ours
    assert f"#{sent}<" in text(web.get("/admin/notifications?status="))
    assert f"#{theirs}<" not in text(web.get("/admin/notifications?status="))

    response = web.post(f"/admin/notifications/{failed}/replay", {"status": "failed"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/notifications?status=failed"
    page = text(web.get(response.headers["Location"]))
    assert "queued again" in page and f"#{failed}<" not in page
    status, found = api.get("/notifications?status=pending")
    assert status == 200
    assert [(n["id"], n["replays"]) for n in found["items"]] == [(failed, 1)]

    # Only a failed message is replayed; another shop's is none of ours
    again = web.post(f"/admin/notifications/{failed}/replay")
    assert "only a failed notification can be replayed" in text(web.get(again.headers["Location"]))
    other = web.post(f"/admin/notifications/{theirs}/replay")
    assert 'class="flash flash-error"' in text(web.get(other.headers["Location"]))
    status, their_list = api.get("/notifications?status=failed", token=api.tokens["stranger"])
    assert [n["id"] for n in their_list["items"]] == [theirs]


def test_notifications_need_their_permissions(web: Web, api: Api, runtime: Runtime) -> None:
    failed = message(runtime, "failed")
    web.login("analyst")
    assert api.get("/notifications", token=api.tokens["analyst"])[0] == 403
    assert web.get("/admin/notifications").status_code == 403
    assert web.post(f"/admin/notifications/{failed}/replay").status_code == 403
    web.login("operator")
    assert web.post(f"/admin/notifications/{failed}/replay", csrf=False).status_code == 400
    status, found = api.get("/notifications?status=failed")
    assert status == 200 and [n["id"] for n in found["items"]] == [failed]


# --- SKU mappings -----------------------------------------------------------------------------


def shop(api: Api, runtime: Runtime) -> dict[str, Any]:
    status, connection = api.post(
        "/connections", {"plugin": "stub", "name": "web-shop", "settings": {"secret": SECRET}}
    )
    assert status == 201, connection
    return connection


def deliver(api: Api, connection: dict[str, Any], sku: str, key: str) -> None:
    body = json.dumps(
        {
            "id": "1001",
            "updated_at": "2026-11-01T10:00:00+00:00",
            "name": "Ann Lee",
            "country": "US",
            "lines": [{"sku": sku, "quantity": 1, "unit_price": "10.00"}],
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, "sha256").hexdigest()
    response = api.client.post(
        f"/hooks/acme/{connection['id']}",
        data=body,
        headers={"X-Stub-Signature": signature, "X-Stub-Delivery": key},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_sku_mapping_added_on_the_connection_page_lets_a_rejected_delivery_through(
    web: Web, api: Api, stubs: Runtime
) -> None:
    connection = shop(api, stubs)
    stubs.jobs.start_worker(2, sweep=False)
    deliver(api, connection, "CHANNEL-A", "d-unknown")
    stubs.jobs.join()
    [entry] = api.get("/inbox?status=rejected")[1]["items"]
    assert "unknown SKU 'CHANNEL-A'" in entry["reason"]

    web.login("admin")
    page = text(web.get(f"/admin/integrations/connections/{connection['id']}"))
    assert 'id="sku-mappings"' in page and 'id="f-channel_ref"' in page
    well_formed(page)
    response = web.post(
        f"/admin/integrations/connections/{connection['id']}/sku-mappings",
        {"channel_ref": "CHANNEL-A", "sku": "SKU-A"},
    )
    assert response.status_code == 302
    page = text(web.get(response.headers["Location"]))
    assert "CHANNEL-A" in page and "Replay" in page
    status, audit = api.get(f"/audit?action=sku_mapping.set&entity_id={connection['id']}")
    assert status == 200 and audit["total"] == 1

    response = web.post(
        f"/admin/integrations/inbox/{entry['id']}/replay", {"connection": connection["id"]}
    )
    assert response.status_code == 302
    stubs.jobs.join()
    assert api.get("/inbox?status=rejected")[1]["total"] == 0
    status, orders = api.get("/orders?channel=stub")
    assert status == 200 and orders["total"] == 1
    assert [line["sku"] for line in orders["items"][0]["lines"]] == ["SKU-A"]


def test_a_refused_sku_mapping_is_shown_by_its_field(web: Web, api: Api, stubs: Runtime) -> None:
    connection = shop(api, stubs)
    web.login("admin")
    path = f"/admin/integrations/connections/{connection['id']}/sku-mappings"
    response = web.post(path, {"channel_ref": "CHANNEL-A", "sku": "NO-SUCH-SKU"})
    assert response.status_code == 422
    html = text(response)
    assert 'id="f-sku-err"' in html and "unknown SKU" in html and 'value="CHANNEL-A"' in html
    response = web.post(path, {"channel_ref": "", "sku": "SKU-A"})
    assert response.status_code == 422 and 'id="f-channel_ref-err"' in text(response)
    assert api.get(f"/audit?action=sku_mapping.set&entity_id={connection['id']}")[1]["total"] == 0


def test_sku_mappings_need_channels_write_and_the_shops_own_connection(
    web: Web, api: Api, stubs: Runtime
) -> None:
    connection = shop(api, stubs)
    status, theirs = api.post(
        "/connections",
        {"plugin": "stub", "name": "their-shop", "settings": {"secret": SECRET}},
        token=api.tokens["stranger"],
    )
    assert status == 201, theirs
    web.login("operator")  # reads channels, may not change them
    page = text(web.get(f"/admin/integrations/connections/{connection['id']}"))
    assert 'id="sku-mappings"' not in page
    response = web.post(
        f"/admin/integrations/connections/{connection['id']}/sku-mappings",
        {"channel_ref": "CHANNEL-A", "sku": "SKU-A"},
    )
    assert response.status_code == 403 and "channels.write" in text(response)
    web.login("admin")
    response = web.post(
        f"/admin/integrations/connections/{theirs['id']}/sku-mappings",
        {"channel_ref": "CHANNEL-A", "sku": "SKU-A"},
    )
    assert response.status_code == 404
    response = web.post(
        f"/admin/integrations/connections/{connection['id']}/sku-mappings",
        {"channel_ref": "CHANNEL-A", "sku": "SKU-A"},
        csrf=False,
    )
    assert response.status_code == 400
    assert api.get("/audit?action=sku_mapping.set")[1]["total"] == 0
    assert api.get("/audit?action=sku_mapping.set", token=api.tokens["stranger"])[1]["total"] == 0
