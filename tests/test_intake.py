"""Channel intake through the webhook route, the inbox and the ingest job (with the Stub
channel; the real channels have their own tests of their formats)."""

from __future__ import annotations

import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from hub import create_app, hookimpl
from hub.core.adapters import StubChannel
from hub.core.models import InboxEntry, Order
from hub.worker import actors

SECRET = "shh-secret"


class StubChannels:
    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel]


@pytest.fixture
def shop(api, runtime):
    """A connected Stub channel, and the in-process worker running."""
    runtime.plugins.register(StubChannels, "stubs")
    status, connection = api.post(
        "/connections", {"plugin": "stub", "name": "web-shop", "settings": {"secret": SECRET}}
    )
    assert status == 201, connection
    runtime.jobs.start_worker(2, sweep=False)
    return connection


def delivery(order_id="1001", updated="2026-11-01T10:00:00+00:00", lines=None, **extra):
    body = {
        "id": order_id,
        "updated_at": updated,
        "name": "Ann Lee",
        "country": "US",
        "lines": lines or [{"sku": "SKU-A", "quantity": 2, "unit_price": "10.00"}],
        **extra,
    }
    return json.dumps(body).encode()


def post(api, connection, body, key, secret=SECRET):
    signature = hmac.new(secret.encode(), body, "sha256").hexdigest()
    return api.client.post(
        f"/hooks/acme/{connection['id']}",
        data=body,
        headers={"X-Stub-Signature": signature, "X-Stub-Delivery": key},
    )


def channel_orders(runtime):
    with runtime.transaction() as session:
        return session.scalars(
            select(Order).where(Order.channel == "stub").options(selectinload(Order.lines))
        ).all()


def test_connection_hides_its_secret_and_has_a_webhook_url(api, shop):
    assert shop["webhook_url"].endswith(f"/hooks/acme/{shop['id']}")
    assert shop["settings"] == {"secret": "********"}
    _, listed = api.get("/connections")
    assert [c["name"] for c in listed["items"]] == ["web-shop"]
    assert SECRET not in json.dumps(listed)


def test_bad_settings_are_refused_naming_the_field(api, runtime):
    runtime.plugins.register(StubChannels, "stubs")
    status, error = api.post("/connections", {"plugin": "stub", "name": "x", "settings": {}})
    assert status == 422
    assert "secret" in error["error"]["message"]
    status, error = api.post("/connections", {"plugin": "nope", "name": "x", "settings": {}})
    assert status == 422 and "no channel plugin 'nope'" in error["error"]["message"]


def test_a_delivery_becomes_one_order_with_reserved_stock(api, runtime, shop):
    response = post(api, shop, delivery(), "d-1")
    assert response.status_code == 200
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert order.external_id == "1001"
    assert order.status == "confirmed"
    _, listed = api.get(f"/connections/{shop['id']}")
    assert listed["last_delivery_at"] is not None and listed["backlog"] == 0
    _, stock = api.get("/stock?sku=SKU-A&warehouse=MAIN")
    assert stock["items"][0]["reserved"] == 2


def test_the_same_delivery_five_times_at_once_makes_one_order(api, runtime, shop):
    body = delivery()
    with ThreadPoolExecutor(5) as pool:
        codes = list(pool.map(lambda _: post(api, shop, body, "same").status_code, range(5)))
    runtime.jobs.join()

    assert codes == [200] * 5
    assert len(channel_orders(runtime)) == 1
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 1


def test_a_forged_signature_is_401_and_leaves_no_row(api, runtime, shop):
    response = post(api, shop, delivery(), "forged", secret="wrong")
    assert response.status_code == 401
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEntry)) == 0
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_an_unknown_sku_is_rejected_then_replayed_after_mapping(api, runtime, shop):
    body = delivery(lines=[{"sku": "CHANNEL-A", "quantity": 1, "unit_price": "10.00"}])
    post(api, shop, body, "d-unknown")
    runtime.jobs.join()

    _, rejected = api.get("/inbox?status=rejected")
    [entry] = rejected["items"]
    assert "unknown SKU 'CHANNEL-A'" in entry["reason"]
    assert channel_orders(runtime) == []

    status, _ = api.post(
        f"/connections/{shop['id']}/sku-mappings", {"channel_ref": "CHANNEL-A", "sku": "SKU-A"}
    )
    assert status == 201
    status, _ = api.post(f"/inbox/{entry['id']}/replay")
    assert status == 202
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert [(line.sku, line.quantity) for line in order.lines] == [("SKU-A", 1)]
    _, still = api.get("/inbox?status=rejected")
    assert still["total"] == 0


def test_updates_apply_in_event_time_order_and_a_cancellation_releases_stock(api, runtime, shop):
    post(api, shop, delivery(updated="2026-11-01T10:00:00+00:00"), "v1")
    runtime.jobs.join()
    newer = [{"sku": "SKU-A", "quantity": 5, "unit_price": "10.00"}]
    post(api, shop, delivery(updated="2026-11-01T12:00:00+00:00", lines=newer), "v3")
    runtime.jobs.join()
    older = [{"sku": "SKU-C", "quantity": 1, "unit_price": "3.99"}]
    post(api, shop, delivery(updated="2026-11-01T11:00:00+00:00", lines=older), "v2")
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert [(line.sku, line.quantity) for line in order.lines] == [("SKU-A", 5)]

    post(api, shop, delivery(updated="2026-11-01T13:00:00+00:00", cancelled=True), "v4")
    runtime.jobs.join()
    [order] = channel_orders(runtime)
    assert order.status == "cancelled"
    _, stock = api.get("/stock?sku=SKU-A")
    assert sum(i["reserved"] for i in stock["items"]) == 0


def test_a_corrected_address_alone_is_applied_and_an_older_one_is_not(api, runtime, shop):
    post(api, shop, delivery(updated="2026-11-01T10:00:00+00:00", name="Ann Lee"), "a1")
    runtime.jobs.join()
    post(api, shop, delivery(updated="2026-11-01T12:00:00+00:00", name="Ann Lee-Smith"), "a3")
    runtime.jobs.join()
    post(api, shop, delivery(updated="2026-11-01T11:00:00+00:00", name="A. Lee"), "a2")
    runtime.jobs.join()

    [order] = channel_orders(runtime)
    assert order.consignee_name == "Ann Lee-Smith"
    _, history = api.get(f"/orders/{order.number}/history")
    changed = [h["details"] for h in history["items"] if h["action"] == "modified"]
    assert changed == [{"fields": ["consignee"]}]


def test_with_the_broker_down_deliveries_are_acknowledged_and_swept_later(
    api, runtime, shop, db_url, config_dir, tmp_path
):
    # Given a web process whose broker is unreachable
    down = create_app(
        {
            "database_url": db_url,
            "broker_url": "redis://127.0.0.1:1/0",
            "config_dir": config_dir,
            "data_dir": tmp_path / "v2",
            "secret_key": "test",
        }
    )
    down_runtime = down.extensions["orderhub"]
    down_runtime.plugins.register(StubChannels, "stubs")
    try:
        signature = hmac.new(SECRET.encode(), delivery(), "sha256").hexdigest()
        response = down.test_client().post(
            f"/hooks/acme/{shop['id']}",
            data=delivery(),
            headers={"X-Stub-Signature": signature, "X-Stub-Delivery": "while-down"},
        )
        # Then the channel is told we have it, and it waits in the inbox
        assert response.status_code == 200
        _, pending = api.get("/inbox?status=pending")
        assert pending["total"] == 1
    finally:
        down_runtime.close()
    # When the sweeper of a working process runs, the delivery becomes an order
    assert actors.sweep(runtime, older_than=timedelta(0)) >= 1
    runtime.jobs.join()
    assert len(channel_orders(runtime)) == 1


def test_a_paused_connection_stores_but_waits(api, runtime, shop):
    api.post(f"/connections/{shop['id']}/pause")
    post(api, shop, delivery(), "while-paused")
    runtime.jobs.join()
    assert channel_orders(runtime) == []
    _, listed = api.get(f"/connections/{shop['id']}")
    assert listed["paused"] is True and listed["backlog"] == 1

    api.post(f"/connections/{shop['id']}/resume")
    runtime.jobs.join()
    assert len(channel_orders(runtime)) == 1


def test_the_storefront_format_is_published(api):
    status, schema = api.get("/channels/storefront/schema")
    assert status == 200
    assert {"id", "updated_at", "lines"} <= set(schema["required"])
    status, error = api.get("/channels/shopify/schema")
    assert status == 404 and "publishes no order format" in error["error"]["message"]


def test_long_delivery_keys_are_kept_apart_not_truncated(api, runtime, shop):
    stem = "k" * 250
    assert post(api, shop, delivery(order_id="1"), stem + "A").status_code == 200
    assert post(api, shop, delivery(order_id="2"), stem + "B").status_code == 200
    duplicate = post(api, shop, delivery(order_id="1"), stem + "A")
    runtime.jobs.join()

    assert duplicate.get_json()["duplicate"] is True
    assert sorted(o.external_id for o in channel_orders(runtime)) == ["1", "2"]
