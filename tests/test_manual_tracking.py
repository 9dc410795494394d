"""Shipments that a carrier cannot finish: tracking events and delivery exceptions recorded by
hand (a courier with no tracking API, a customer's "my parcel is lost"), "check tracking now"
from the API and the command line, and when the first automatic check comes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from conftest import ORDER, Api
from sqlalchemy import select, update
from test_carrier_easypost import API_KEY, SERVER_ERROR, TRACKERS
from tracking_support import Shipping

from hub import hookimpl
from hub import settings as settings_module
from hub.cli import cli
from hub.core.adapters import StubCarrier
from hub.core.db import utcnow
from hub.core.models import (
    AuditEntry,
    CarrierAccount,
    Event,
    OrderHistory,
    Shipment,
    TrackingEventRecord,
)
from hub.runtime import Runtime
from hub.settings import ConfigError, TenantSettings, Tracking
from plugins.carriers.table_rate import EXAMPLE_SETTINGS


class NoTracking(StubCarrier):
    """A carrier that sells labels but reports nothing."""

    name = "no-tracking"
    capabilities = frozenset({"rating", "shipping", "cancel"})


class NoTrackingCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [NoTracking]


@pytest.fixture
def courier(api: Api) -> int:
    """acme's contract courier: table_rate, no tracking API behind it."""
    status, account = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "courier", "settings": EXAMPLE_SETTINGS},
    )
    assert status == 201, account
    return account["id"]


def ship(api: Api, account: int, service: str = "ground") -> dict[str, Any]:
    status, order = api.post("/orders", ORDER)
    assert status == 201, order
    status, shipped = api.post(
        f"/orders/{order['number']}/shipments", {"carrier_account": account, "service": service}
    )
    assert status == 201, shipped
    return shipped


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def events_named(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    with runtime.session() as session:
        return list(
            session.scalars(select(Event.payload).where(Event.name == name).order_by(Event.id))
        )


# --- tracking events by hand -----------------------------------------------------------------


def test_a_table_rate_shipment_is_delivered_by_events_recorded_by_hand(
    api: Api, runtime: Runtime, courier: int
) -> None:
    shipped = ship(api, courier)
    path = f"/shipments/{shipped['id']}/events"

    steps = [
        ("warehouse", {"status": "picked_up", "at": hours_ago(30), "note": "van 3"}),
        ("service", {"status": "in_transit", "at": hours_ago(20), "location": "Newark depot"}),
        ("warehouse", {"status": "out_for_delivery", "at": hours_ago(2)}),
        ("service", {"status": "delivered", "note": "signed by A. Lee"}),  # now
    ]
    seen = []
    for role, body in steps:
        status, answer = api.post(path, body, token=api.tokens[role])
        assert status == 201, answer
        assert (answer["stored"], answer["changed"]) == (True, True)
        seen.append(answer["shipment"]["status"])

    assert seen == ["picked_up", "in_transit", "out_for_delivery", "delivered"]
    assert api.get(f"/orders/{shipped['order']}")[1]["status"] == "delivered"
    _, timeline = api.get(path)
    assert [
        (e["status"], e["source"], e["entered_by"], e["location"], e["raw_text"])
        for e in timeline["items"]
    ] == [
        ("picked_up", "manual", "warehouse", None, "van 3"),
        ("in_transit", "manual", "service", "Newark depot", None),
        ("out_for_delivery", "manual", "warehouse", None, None),
        ("delivered", "manual", "service", None, "signed by A. Lee"),
    ]
    changes = events_named(runtime, "shipment_status_changed")
    assert [(c["from"], c["to"]) for c in changes] == [
        ("created", "picked_up"),
        ("picked_up", "in_transit"),
        ("in_transit", "out_for_delivery"),
        ("out_for_delivery", "delivered"),
    ]
    assert changes[-1]["tracking_number"] == shipped["tracking_number"]
    with runtime.session() as session:
        shipment = session.get(Shipment, shipped["id"])
        assert shipment.next_check_at is None  # delivered: never checked again
        assert shipment.delivered_at is not None
        audited = session.execute(
            select(AuditEntry.actor, AuditEntry.before, AuditEntry.after)
            .where(AuditEntry.action == "shipment.tracking_event")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a.actor, a.before["status"], a.after["status"]) for a in audited] == [
        ("warehouse", "created", "picked_up"),
        ("service", "picked_up", "in_transit"),
        ("warehouse", "in_transit", "out_for_delivery"),
        ("service", "out_for_delivery", "delivered"),
    ]


def test_a_repeated_or_older_event_is_kept_but_never_moves_the_status_back(
    api: Api, runtime: Runtime, courier: int
) -> None:
    shipped = ship(api, courier)
    path = f"/shipments/{shipped['id']}/events"
    first = {"status": "in_transit", "at": hours_ago(5)}
    assert api.post(path, first)[1]["changed"] is True

    status, again = api.post(path, first)
    assert (status, again["stored"], again["changed"]) == (201, False, False)
    status, older = api.post(path, {"status": "picked_up", "at": hours_ago(8)})
    assert (status, older["stored"], older["changed"]) == (201, True, False)
    assert older["shipment"]["status"] == "in_transit"

    assert api.post(path, {"status": "delivered", "at": hours_ago(1)})[1]["changed"] is True
    status, late = api.post(path, {"status": "out_for_delivery"})  # after delivered, later
    assert (status, late["stored"], late["changed"]) == (201, True, False)
    assert late["shipment"]["status"] == "delivered"
    assert [e["status"] for e in late["items"]] == [
        "picked_up",
        "in_transit",
        "delivered",
        "out_for_delivery",
    ]
    assert len(events_named(runtime, "shipment_status_changed")) == 2


@pytest.mark.parametrize(
    ("at", "problem"),
    [
        ("2999-12-31T23:59:59Z", "at: must not be in the future"),
        ("3000-01-01T00:00:00Z", "at: must be between 1900-01-01 and 2999-12-31 (UTC)"),
        ("1900-01-01T00:30:00+01:00", "at: must be between 1900-01-01 and 2999-12-31 (UTC)"),
        ("last tuesday", "at: must be an ISO 8601 date-time with a time zone"),
        ("2026-03-02T09:30:00", "at: must be an ISO 8601 date-time with a time zone"),
    ],
)
def test_a_time_out_of_bounds_is_refused_naming_the_field_and_never_its_value(
    api: Api, courier: int, at: str, problem: str
) -> None:
    shipped = ship(api, courier)

    status, answer = api.post(
        f"/shipments/{shipped['id']}/events", {"status": "in_transit", "at": at}
    )

    assert status == 422, answer
    assert answer["error"]["message"].startswith(problem), answer
    assert answer["error"]["details"][0]["field"] == "at"
    assert at not in json.dumps(answer)
    assert api.get(f"/shipments/{shipped['id']}")[1]["status"] == "created"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "in_transit", "reason": "lost"}, "reason"),
        ({"status": "cancelled"}, "status"),  # voiding is /cancel, which gives the goods back
        ({"status": "expired"}, "status"),  # the hub's own conclusion
        ({"status": "in_transit", "note": ""}, "note"),
        ({"status": "in_transit", "location": "x" * 201}, "location"),
        ({"at": "2026-03-02T09:30:00Z"}, "status"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field(
    api: Api, courier: int, body: dict[str, Any], field: str
) -> None:
    shipped = ship(api, courier)

    status, answer = api.post(f"/shipments/{shipped['id']}/events", body)

    assert status == 422, answer
    assert answer["error"]["message"].startswith(field), answer
    assert api.get(f"/shipments/{shipped['id']}")[1]["status"] == "created"


def test_events_of_a_voided_or_foreign_shipment_are_refused(api: Api, courier: int) -> None:
    shipped = ship(api, courier)
    path = f"/shipments/{shipped['id']}/events"
    assert api.post(path, {"status": "in_transit"}, token=api.tokens["stranger"])[0] == 404
    assert api.post(path, {"status": "in_transit"}, token=api.tokens["analyst"])[0] == 403
    assert api.post(f"/shipments/{shipped['id']}/cancel")[0] == 200

    status, body = api.post(path, {"status": "in_transit"})

    assert status == 409 and "was voided" in body["error"]["message"], body


def test_an_exception_recorded_by_hand_opens_a_delivery_exception(
    api: Api, runtime: Runtime, courier: int
) -> None:
    shipped = ship(api, courier)

    status, body = api.post(
        f"/shipments/{shipped['id']}/events",
        {"status": "exception", "reason": "damaged", "note": "box crushed at the depot"},
        token=api.tokens["warehouse"],
    )

    assert status == 201, body
    _, found = api.get("/exceptions?status=open")
    assert [(i["kind"], i["reason"]) for i in found["items"]] == [
        ("damaged", "damaged: box crushed at the depot")
    ]
    assert events_named(runtime, "delivery_exception")[0]["kind"] == "damaged"


# --- delivery exceptions by hand -------------------------------------------------------------


def test_a_customer_saying_the_parcel_is_lost_opens_an_exception_by_hand(
    api: Api, runtime: Runtime, courier: int
) -> None:
    shipped = ship(api, courier)
    path = f"/shipments/{shipped['id']}/exceptions"
    note = "customer called: the parcel never came"

    status, opened = api.post(path, {"kind": "lost", "note": note}, token=api.tokens["service"])

    assert status == 201, opened
    assert (opened["kind"], opened["reason"], opened["status"]) == ("lost", note, "open")
    assert opened["shipment"]["tracking_number"] == shipped["tracking_number"]
    _, listed = api.get("/exceptions?status=open&kind=lost")
    assert [i["id"] for i in listed["items"]] == [opened["id"]]
    [announced] = events_named(runtime, "delivery_exception")
    assert {"id": opened["id"], "kind": "lost", "reason": note}.items() <= announced.items()
    with runtime.session() as session:
        actor = session.scalar(
            select(AuditEntry.actor).where(AuditEntry.action == "delivery_exception.open")
        )
        said = session.scalar(
            select(OrderHistory.actor).where(OrderHistory.action == "delivery_exception")
        )
    assert actor == said == "service"

    # One open per shipment and kind.
    status, again = api.post(path, {"kind": "lost", "note": "she called again"})
    assert status == 409 and f"(exception {opened['id']})" in again["error"]["message"]
    assert again["error"]["details"] == {"exception": opened["id"]}
    # The hub's own conclusions are not for people to open; a note is needed.
    assert api.post(path, {"kind": "expired", "note": "x"})[0] == 422
    assert api.post(path, {"kind": "lost"})[0] == 422
    assert api.post(path, {"kind": "lost", "note": "x"}, token=api.tokens["analyst"])[0] == 403

    # The parcel turns up after all: its delivery closes the case.
    api.post(f"/shipments/{shipped['id']}/events", {"status": "delivered"})
    _, closed = api.get("/exceptions?status=resolved")
    assert [(i["id"], i["resolution"]) for i in closed["items"]] == [(opened["id"], "close")]


def test_a_delivered_parcel_can_still_be_reported_damaged_but_a_voided_one_not(
    api: Api, courier: int
) -> None:
    shipped = ship(api, courier)
    api.post(f"/shipments/{shipped['id']}/events", {"status": "delivered"})
    status, body = api.post(
        f"/shipments/{shipped['id']}/exceptions", {"kind": "damaged", "note": "arrived wet"}
    )
    assert status == 201, body

    voided = ship(api, courier)
    assert api.post(f"/shipments/{voided['id']}/cancel")[0] == 200
    status, body = api.post(
        f"/shipments/{voided['id']}/exceptions", {"kind": "lost", "note": "where is it"}
    )
    assert status == 409 and "was voided" in body["error"]["message"]


# --- check tracking now ----------------------------------------------------------------------


def test_check_now_asks_the_carrier_at_once(api: Api, runtime: Runtime, courier: int) -> None:
    shipped = ship(api, courier)
    with runtime.session() as session:
        first_check = session.get(Shipment, shipped["id"]).next_check_at

    status, body = api.post(f"/shipments/{shipped['id']}/track", token=api.tokens["service"])

    assert status == 200, body
    assert (body["changed"], body["shipment"]["status"]) == (True, "info_received")
    assert [(e["status"], e["raw_code"], e["source"]) for e in body["items"]] == [
        ("info_received", "issued", "poll")
    ]
    with runtime.session() as session:
        assert session.get(Shipment, shipped["id"]).next_check_at > first_check
    status, again = api.post(f"/shipments/{shipped['id']}/track")
    assert (status, again["changed"], again["total"]) == (200, False, 1)


def test_check_now_says_why_it_cannot(api: Api, runtime: Runtime, courier: int) -> None:
    runtime.plugins.register(NoTrackingCarriers, "no-tracking-carriers")
    status, account = api.post(
        "/carrier-accounts", {"plugin": "no-tracking", "name": "mute", "settings": {}}
    )
    assert status == 201, account
    mute = ship(api, account["id"], "standard")
    status, body = api.post(f"/shipments/{mute['id']}/track")
    assert status == 409, body
    assert body["error"]["message"] == (
        "carrier account 'mute' (no-tracking) has no tracking to ask; record what the courier"
        f" says with POST /api/v1/shipments/{mute['id']}/events"
    )

    delivered = ship(api, courier)
    api.post(f"/shipments/{delivered['id']}/events", {"status": "delivered"})
    status, body = api.post(f"/shipments/{delivered['id']}/track")
    assert status == 409 and "its tracking is final" in body["error"]["message"]
    assert api.post("/shipments/99999/track")[0] == 404
    assert api.post(f"/shipments/{delivered['id']}/track", token=api.tokens["stranger"])[0] == 404


@pytest.fixture
def fake() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_a_carrier_failing_a_check_now_is_a_retryable_503_noted_on_the_account(
    api: Api, runtime: Runtime, fake: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = runtime.carrier_adapter

    def quick(account: Any, **kw: Any) -> Any:
        adapter = build(account, **kw)
        adapter.http.sleep = lambda seconds: None
        return adapter

    monkeypatch.setattr(runtime, "carrier_adapter", quick)
    status, account = api.post(
        "/carrier-accounts", {"plugin": "easypost", "name": "ep", "settings": {"api_key": API_KEY}}
    )
    assert status == 201, account
    shipment_id = Shipping(runtime, api).shipment(account["id"], next_check_at=None)
    fake.post(TRACKERS, status=503, json=SERVER_ERROR)

    status, body = api.post(f"/shipments/{shipment_id}/track")

    assert (status, body["error"]["code"]) == (503, "carrier_unavailable"), body
    assert body["error"]["details"]["retryable"] is True
    assert "'ep' (easypost) is unavailable" in body["error"]["message"]
    with runtime.session() as session:
        noted = session.get(CarrierAccount, account["id"]).last_track_error
    assert noted == body["error"]["message"]


# --- the command line ------------------------------------------------------------------------


def run(runtime: Runtime, config_dir: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "ORDERHUB_CONFIG_DIR": str(config_dir),
        "ORDERHUB_DATA_DIR": str(tmp_path / "cli-var"),
        "ORDERHUB_DATABASE_URL": runtime.settings.database_url,
        "ORDERHUB_BROKER_URL": "embedded",
        "ORDERHUB_SECRET_KEY": "test",
    }
    result = CliRunner(env=env).invoke(cli, ["tracking", "poll", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_orderhub_tracking_poll_checks_due_shipments_or_one(
    api: Api, runtime: Runtime, courier: int, config_dir: Path, tmp_path: Path
) -> None:
    first, second = ship(api, courier), ship(api, courier)

    code, out = run(runtime, config_dir, tmp_path)
    assert (code, out.strip()) == (
        0,
        "no shipments to check are due (add --all for every live one)",
    )

    with runtime.transaction() as session:
        session.execute(update(Shipment).values(next_check_at=utcnow() - timedelta(minutes=1)))
    code, out = run(runtime, config_dir, tmp_path, "--tenant", "acme")
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "2 checked, 2 changed"
    for shipped in (first, second):
        assert api.get(f"/shipments/{shipped['id']}")[1]["status"] == "info_received"

    code, out = run(runtime, config_dir, tmp_path, "--all", "--account", str(courier))
    assert (code, out.strip().splitlines()[-1]) == (0, "2 checked, 0 changed")

    code, out = run(runtime, config_dir, tmp_path, "--shipment", str(first["id"]))
    assert (code, out.strip()) == (
        0,
        f"shipment {first['id']} ({first['tracking_number']}): info_received (no change)",
    )
    code, out = run(runtime, config_dir, tmp_path, "--shipment", "99999")
    assert code == 1 and "no shipment 99999" in out
    code, out = run(
        runtime, config_dir, tmp_path, "--shipment", str(first["id"]), "--tenant", "other"
    )
    assert code == 1 and f"no shipment {first['id']}" in out
    code, out = run(runtime, config_dir, tmp_path, "--account", "99999")
    assert code == 1 and "no carrier account 99999" in out
    with runtime.session() as session:
        sources = set(session.scalars(select(TrackingEventRecord.source)))
    assert sources == {"poll"}


# --- the first check -------------------------------------------------------------------------


def test_the_first_automatic_check_comes_after_the_tenants_first_check_hours(
    api: Api, runtime: Runtime, courier: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = ship(api, courier)
    monkeypatch.setitem(
        runtime.settings.tenants,
        "acme",
        TenantSettings(slug="acme", name="acme", tracking=Tracking(first_check_hours=6)),
    )
    later = ship(api, courier)

    with runtime.session() as session:
        for shipped, hours in ((default, 1), (later, 6)):
            shipment = session.get(Shipment, shipped["id"])
            assert shipment.next_check_at - shipment.created_at == timedelta(hours=hours)


def test_first_check_hours_is_checked_in_the_tenant_file(config_dir: Path) -> None:
    tenant = config_dir / "tenants" / "acme.toml"
    tenant.write_text("[tracking]\nfirst_check_hours = 0.25\n")
    loaded = settings_module.load({"config_dir": config_dir, "secret_key": "x"})
    assert loaded.tenant("acme").tracking.first_check_hours == 0.25

    tenant.write_text("[tracking]\nfirst_check_hours = 0\n")
    with pytest.raises(ConfigError, match=r"tracking\.first_check_hours"):
        settings_module.load({"config_dir": config_dir, "secret_key": "x"})
