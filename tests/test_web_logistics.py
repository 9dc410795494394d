"""The web admin's Logistics pages: shipments and their tracking, the exceptions queue, the
rate-quote tool and carrier accounts, each checked against what the API says."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ORDER, Api, watch_secret
from web_support import Web, text

from plugins.carriers.table_rate import EXAMPLE_SETTINGS

PARCEL = {
    "mode": "parcel",
    "from": "MAIN",
    "destination.country": "US",
    "destination.postcode": "07101",
    "parcels.0.weight_kg": "2",
}


@pytest.fixture
def courier(api: Api) -> dict[str, Any]:
    """acme's contract courier: the table_rate carrier with the example rate card."""
    status, account = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "courier", "settings": EXAMPLE_SETTINGS},
    )
    assert status == 201, account
    return account


def ship(api: Api, token: str | None = None) -> dict[str, Any]:
    status, order = api.post("/orders", ORDER, token=token)
    assert status == 201, order
    status, shipped = api.post(f"/orders/{order['number']}/shipments", {}, token=token)
    assert status == 201, shipped
    return shipped


@pytest.fixture
def shipment(api: Api, courier: dict[str, Any]) -> dict[str, Any]:
    return ship(api)


def hours_ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def between(html: str, start: str, end: str) -> str:
    """The part of the page from ``start`` to the next ``end``."""
    at = html.index(start)
    return html[at : html.index(end, at)]


# --- shipments -------------------------------------------------------------------------------


def test_a_shipments_page_shows_its_tracking_newest_first(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    for body in (
        {"status": "picked_up", "at": hours_ago(5), "location": "Depot East"},
        {"status": "in_transit", "at": hours_ago(2), "location": "Newark NJ", "note": "At hub"},
    ):
        assert api.post(f"/shipments/{sid}/events", body)[0] == 201
    web.login("warehouse")

    response = web.get(f"/admin/shipments/{sid}")

    assert response.status_code == 200
    timeline = between(text(response), 'id="tracking"', "</ol>")
    assert timeline.index("In transit") < timeline.index("Picked up")  # newest first
    assert "Newark NJ" in timeline and "At hub" in timeline and "Depot East" in timeline
    assert "recorded by hand" in timeline and "(admin)" in timeline


def test_the_list_shows_shipments_and_filters_them_as_the_api_does(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    web.login("operator")
    html = text(web.get("/admin/shipments"))
    assert shipment["tracking_number"] in html and "1 shipment" in html
    assert f'href="/admin/shipments/{shipment["id"]}"' in html

    html = text(web.get("/admin/shipments?status_pick=delivered&status_pick=in_transit"))
    assert api.get("/shipments?status=delivered,in_transit")[1]["total"] == 0
    assert shipment["tracking_number"] not in html and "No shipments match" in html


def test_a_bad_filter_is_shown_next_to_its_field(web: Web, shipment: dict[str, Any]) -> None:
    web.login("operator")
    response = web.get("/admin/shipments?created_from=soon")
    assert response.status_code == 400
    assert 'id="f-created_from-err"' in text(response)


def test_without_a_carrier_the_empty_list_says_what_to_do(web: Web) -> None:
    web.login("operator")
    html = text(web.get("/admin/shipments"))
    assert "no carrier account to ship with" in html
    assert 'href="/admin/carriers"' in html


def test_recording_an_event_from_the_page_reaches_the_api(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    web.login("service")
    web.get(f"/admin/shipments/{sid}")

    response = web.post(
        f"/admin/shipments/{sid}/events",
        {"status": "in_transit", "location": "Depot 4", "note": "collected", "at": ""},
    )

    assert response.status_code == 302
    _, events = api.get(f"/shipments/{sid}/events")
    assert [(e["status"], e["location"], e["raw_text"]) for e in events["items"]] == [
        ("in_transit", "Depot 4", "collected")
    ]
    assert "the shipment is now In transit" in text(web.get(f"/admin/shipments/{sid}"))


def test_a_time_the_api_refuses_is_shown_next_to_its_field(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    web.login("operator")
    web.get(f"/admin/shipments/{sid}")
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    response = web.post(
        f"/admin/shipments/{sid}/events",
        {"status": "delivered", "at": later, "location": "Porch"},
    )

    assert response.status_code == 400
    html = text(response)
    assert 'id="f-at-err"' in html and 'value="Porch"' in html  # the form is kept
    assert api.get(f"/shipments/{sid}/events")[1]["total"] == 0


def test_void_and_check_tracking_from_the_page(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    web.login("operator")
    html = text(web.get(f"/admin/shipments/{sid}"))
    assert "Void shipment" in html and "Check tracking now" in html

    assert web.post(f"/admin/shipments/{sid}/track").status_code == 302
    assert "Tracking checked" in text(web.get(f"/admin/shipments/{sid}"))

    assert web.post(f"/admin/shipments/{sid}/cancel").status_code == 302
    assert api.get(f"/shipments/{sid}")[1]["status"] == "cancelled"
    html = text(web.get(f"/admin/shipments/{sid}"))
    assert "Shipment voided" in html and "Void shipment" not in html


def test_actions_are_offered_only_to_roles_that_may_do_them(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    web.login("analyst")  # shipping.read only
    html = text(web.get(f"/admin/shipments/{sid}"))
    assert "Record a tracking event" not in html and "Void shipment" not in html
    assert "Check tracking now</button>" not in html
    api_status, _ = api.post(f"/shipments/{sid}/cancel", token=api.tokens["analyst"])
    page = web.post(f"/admin/shipments/{sid}/cancel")
    assert api_status == page.status_code == 403
    assert "shipping.write" in text(page)
    assert api.get(f"/shipments/{sid}")[1]["status"] == "created"


def test_another_shops_shipments_never_show(web: Web, api: Api, courier: dict[str, Any]) -> None:
    status, _ = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "theirs", "settings": EXAMPLE_SETTINGS},
        token=api.tokens["stranger"],
    )
    assert status == 201
    theirs = ship(api, api.tokens["stranger"])
    ours = ship(api)
    assert theirs["id"] != ours["id"]
    web.login("admin")

    html = text(web.get("/admin/shipments"))
    assert ours["tracking_number"] in html and theirs["tracking_number"] not in html
    assert web.get(f"/admin/shipments/{theirs['id']}").status_code == 404
    searched = text(web.get(f"/admin/shipments?tracking_number={theirs['tracking_number']}"))
    assert "0 shipments" in searched and f"{theirs['tracking_number']}</a>" not in searched
    assert "theirs" not in text(web.get("/admin/carriers"))


def test_a_post_without_the_csrf_token_is_refused(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    sid = shipment["id"]
    web.login("operator")
    assert web.post(f"/admin/shipments/{sid}/cancel", csrf=False).status_code == 400
    refused = web.post(f"/admin/shipments/{sid}/events", {"status": "delivered"}, csrf=False)
    assert refused.status_code == 400
    assert api.get(f"/shipments/{sid}")[1]["status"] == "created"


# --- delivery exceptions ---------------------------------------------------------------------


def test_resolving_an_exception_moves_it_out_of_the_open_queue(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    status, opened = api.post(
        f"/shipments/{shipment['id']}/exceptions", {"kind": "damaged", "note": "box crushed"}
    )
    assert status == 201, opened
    web.login("operator")
    queue = text(web.get("/admin/exceptions"))
    assert f'id="exception-{opened["id"]}"' in queue and "box crushed" in queue

    response = web.post(
        f"/admin/exceptions/{opened['id']}/resolve",
        {"resolution": "close", "note": "customer keeps it", "next": "/admin/exceptions"},
    )

    assert response.status_code == 302 and response.headers["Location"] == "/admin/exceptions"
    assert api.get("/exceptions?status=open")[1]["total"] == 0
    _, resolved = api.get("/exceptions?status=resolved")
    assert [(x["id"], x["resolution"]) for x in resolved["items"]] == [(opened["id"], "close")]
    queue = text(web.get("/admin/exceptions"))
    assert f'id="exception-{opened["id"]}"' not in queue and "resolved: Close" in queue
    assert f'id="exception-{opened["id"]}"' in text(web.get("/admin/exceptions?status=resolved"))


def test_a_customer_contact_is_noted_and_stays_open(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    _, opened = api.post(
        f"/shipments/{shipment['id']}/exceptions", {"kind": "lost", "note": "never came"}
    )
    web.login("operator")
    web.get("/admin/exceptions")
    web.post(f"/admin/exceptions/{opened['id']}/resolve", {"resolution": "contact"})
    assert "was not resolved" in text(web.get("/admin/exceptions"))  # a contact needs a note

    web.post(
        f"/admin/exceptions/{opened['id']}/resolve",
        {"resolution": "contact", "note": "will wait two more days"},
    )

    _, still = api.get("/exceptions?status=open")
    assert [(x["id"], x["note"]) for x in still["items"]] == [
        (opened["id"], "will wait two more days")
    ]


def test_an_exception_opened_on_a_shipments_page_joins_the_queue(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    web.login("service")
    web.get(f"/admin/shipments/{shipment['id']}")
    blank = web.post(f"/admin/shipments/{shipment['id']}/exceptions", {"exception.kind": "lost"})
    assert blank.status_code == 400 and 'id="f-exception-note-err"' in text(blank)

    response = web.post(
        f"/admin/shipments/{shipment['id']}/exceptions",
        {"exception.kind": "lost", "exception.note": "customer called"},
    )

    assert response.status_code == 302
    _, found = api.get("/exceptions?status=open&kind=lost")
    assert [x["reason"] for x in found["items"]] == ["customer called"]


def test_resolving_needs_shipping_write_as_on_the_api(
    web: Web, api: Api, shipment: dict[str, Any]
) -> None:
    _, opened = api.post(
        f"/shipments/{shipment['id']}/exceptions", {"kind": "delayed", "note": "late"}
    )
    web.login("service")  # may open exceptions, may not resolve them
    assert "Resolve by" not in text(web.get("/admin/exceptions"))
    api_status, _ = api.post(
        f"/exceptions/{opened['id']}/resolve", {"resolution": "close"}, token=api.tokens["service"]
    )
    page = web.post(f"/admin/exceptions/{opened['id']}/resolve", {"resolution": "close"})
    assert api_status == page.status_code == 403
    assert (
        web.post(
            f"/admin/exceptions/{opened['id']}/resolve", {"resolution": "close"}, csrf=False
        ).status_code
        == 403
    )  # the permission is checked before the token
    assert api.get("/exceptions?status=open")[1]["total"] == 1


def test_an_empty_queue_says_so(web: Web) -> None:
    web.login("operator")
    assert "nothing is waiting for you" in text(web.get("/admin/exceptions"))


# --- rate quotes -----------------------------------------------------------------------------


def test_the_quote_tool_shows_the_carriers_quote_with_the_best_marked(
    web: Web, api: Api, courier: dict[str, Any]
) -> None:
    web.login("analyst")  # quoting needs only shipping.read
    web.get("/admin/rates")

    response = web.post("/admin/rates", PARCEL)

    assert response.status_code == 200
    status, answer = api.post(
        "/rates",
        {
            "origin": {"country": "US"},
            "destination": {"country": "US", "postcode": "07101"},
            "parcels": [{"weight_kg": "2"}],
        },
    )
    assert status == 200 and answer["selected"]["amount"] == "9.90"
    table = between(text(response), 'id="quotes-1"', "</table>")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) == len(answer["rates"]) == 2
    best = [r for r in rows if "Best" in r]
    assert len(best) == 1 and "$9.90" in best[0] and "ground" in best[0]
    assert "Contract courier" in best[0] and "courier" in best[0]
    assert "$21.50" in table


def test_an_order_is_quoted_per_warehouse(web: Web, api: Api, courier: dict[str, Any]) -> None:
    _, order = api.post("/orders", ORDER)
    web.login("operator")
    web.get("/admin/rates")

    html = text(web.post("/admin/rates", {"mode": "order", "order": order["number"]}))

    assert "From MAIN" in html and "2 \N{MULTIPLICATION SIGN} SKU-A" in html and "Best" in html
    missing = web.post("/admin/rates", {"mode": "order", "order": "SO-404404"})
    assert missing.status_code == 400 and 'id="f-order-err"' in text(missing)


def test_a_bad_parcel_is_shown_next_to_its_field(web: Web, courier: dict[str, Any]) -> None:
    web.login("operator")
    web.get("/admin/rates")

    response = web.post(
        "/admin/rates",
        {**PARCEL, "parcels.0.weight_kg": "", "parcels.2.weight_kg": "heavy"},
    )

    assert response.status_code == 400
    html = text(response)
    assert 'id="f-parcels-2-weight_kg-err"' in html  # the API's parcels[0] is the third row
    assert 'value="heavy"' in html


def test_with_no_carrier_the_quote_tool_says_what_to_do(web: Web) -> None:
    web.login("operator")
    html = text(web.get("/admin/rates"))
    assert "Add one under Carrier accounts first" in html


# --- carrier accounts ------------------------------------------------------------------------


def test_a_carrier_account_is_created_from_the_generated_form(web: Web, api: Api) -> None:
    web.login("admin")
    form = text(web.get("/admin/carriers/new/table_rate"))
    for name in ("settings.currency", "settings.zones", "settings.services", "settings.surcharges"):
        assert f'name="{name}"' in form
    assert '<textarea id="f-settings-zones"' in form and '<label for="f-settings-zones"' in form

    response = web.post(
        "/admin/carriers/new/table_rate",
        {
            "name": "contract",
            "enabled": "on",
            "settings.currency": "USD",
            "settings.carrier_name": "Contract courier",
            "settings.zones": json.dumps(EXAMPLE_SETTINGS["zones"]),
            "settings.services": json.dumps(EXAMPLE_SETTINGS["services"]),
            "settings.volumetric_divisor": "5000",
        },
    )

    assert response.status_code == 302
    _, accounts = api.get("/carrier-accounts")
    [made] = accounts["items"]
    assert (made["name"], made["plugin"], made["enabled"]) == ("contract", "table_rate", True)
    assert made["settings"]["volumetric_divisor"] == 5000
    assert made["settings"]["zones"] == EXAMPLE_SETTINGS["zones"]
    assert response.headers["Location"] == f"/admin/carriers/{made['id']}"
    page = text(web.get(response.headers["Location"]))
    assert "Carrier account contract added." in page and "Ground" in page


def test_a_bad_setting_is_shown_next_to_its_field(web: Web, api: Api) -> None:
    web.login("admin")
    web.get("/admin/carriers/new/table_rate")
    zones = [{"code": "no spaces allowed", "countries": ["US"]}]

    response = web.post(
        "/admin/carriers/new/table_rate",
        {
            "name": "contract",
            "settings.currency": "usd",
            "settings.zones": json.dumps(zones),
            "settings.services": json.dumps(EXAMPLE_SETTINGS["services"]),
        },
    )

    assert response.status_code == 400
    html = text(response)
    error = between(html, 'id="f-settings-currency-err"', "</p>")
    assert "must match the pattern" in error
    assert 'aria-describedby="f-settings-currency-err"' in html
    assert 'value="usd"' in html and 'value="contract"' in html  # what was typed stays
    assert api.get("/carrier-accounts")[1]["total"] == 0

    response = web.post(
        "/admin/carriers/new/table_rate",
        {
            "name": "contract",
            "settings.currency": "USD",
            "settings.zones": json.dumps(zones),
            "settings.services": "[not json",
        },
    )
    html = text(response)
    assert 'id="f-settings-services-err"' in html and "must be JSON" in html

    response = web.post(
        "/admin/carriers/new/table_rate",
        {
            "name": "contract",
            "settings.currency": "USD",
            "settings.zones": json.dumps(zones),
            "settings.services": json.dumps(EXAMPLE_SETTINGS["services"]),
        },
    )
    assert response.status_code == 400
    assert "zones[0].code" in between(text(response), 'id="f-settings-zones-err"', "</p>")


def test_a_secret_is_never_echoed_back(web: Web, api: Api) -> None:
    secret = "ep-live-canary-7d1e4f0b9a"
    watch_secret(secret)  # any answer or log line holding it fails this test
    web.login("admin")
    form = text(web.get("/admin/carriers/new/easypost"))
    assert 'name="settings.api_key" type="password" value=""' in form

    refused = web.post(
        "/admin/carriers/new/easypost",
        {"name": "ep", "settings.api_key": secret, "settings.api_base": "http://plain.example"},
    )
    assert refused.status_code == 400
    assert 'name="settings.api_key" type="password" value=""' in text(refused)
    assert 'id="f-settings-api_base-err"' in text(refused)

    made = web.post("/admin/carriers/new/easypost", {"name": "ep", "settings.api_key": secret})
    assert made.status_code == 302
    page = text(web.get(made.headers["Location"]))
    assert "set (never shown)" in page
    assert "ep" in text(web.get("/admin/carriers"))


def test_an_account_is_switched_off_and_its_services_limited(
    web: Web, api: Api, courier: dict[str, Any]
) -> None:
    web.login("admin")
    page = text(web.get(f"/admin/carriers/{courier['id']}"))
    assert 'name="services" value="ground" checked' in page

    response = web.post(f"/admin/carriers/{courier['id']}/edit", {"services": ["express"]})

    assert response.status_code == 302
    _, account = api.get(f"/carrier-accounts/{courier['id']}")
    assert account["enabled"] is False and account["allowed_services"] == ["express"]

    web.post(
        f"/admin/carriers/{courier['id']}/edit",
        {"enabled": "on", "services": ["ground", "express"]},
    )
    _, account = api.get(f"/carrier-accounts/{courier['id']}")
    assert account["enabled"] is True and account["allowed_services"] is None

    none = web.post(f"/admin/carriers/{courier['id']}/edit", {"enabled": "on"})
    assert none.status_code == 400 and 'id="f-services-err"' in text(none)


def test_carrier_accounts_need_carriers_write_as_on_the_api(
    web: Web, api: Api, courier: dict[str, Any]
) -> None:
    web.login("operator")
    listing = text(web.get("/admin/carriers"))
    assert "courier" in listing and "Add a carrier account" not in listing
    assert "Switched on" not in text(web.get(f"/admin/carriers/{courier['id']}"))
    api_status, _ = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "x", "settings": EXAMPLE_SETTINGS},
        token=api.tokens["operator"],
    )
    page = web.get("/admin/carriers/new/table_rate")
    assert api_status == page.status_code == 403 and "carriers.write" in text(page)
    assert web.post(f"/admin/carriers/{courier['id']}/edit", {}).status_code == 403
    assert api.get(f"/carrier-accounts/{courier['id']}")[1]["enabled"] is True


def test_the_pages_in_chinese(web: Web, shipment: dict[str, Any]) -> None:
    web.login("operator")
    html = text(web.get(f"/admin/shipments/{shipment['id']}?lang=zh-CN"))
    assert 'lang="zh-Hans"' in html
    assert "记录跟踪事件" in html and "Record a tracking event" not in html
    assert "运费报价" in text(web.get("/admin/rates"))


def test_carrier_settings_change_from_the_generated_form(web: Web, api: Api) -> None:
    """A carrier account's settings are edited in the form made from the plugin's schema,
    prefilled with what is stored; a refused value sits by its field and changes nothing."""
    import html as html_module
    import json

    from plugins.carriers.table_rate import EXAMPLE_SETTINGS

    status, account = api.post("/carrier-accounts", {"plugin": "table_rate", "name": "cards",
                                                     "settings": EXAMPLE_SETTINGS})
    assert status == 201, account
    path = f"/admin/carriers/{account['id']}"
    web.login("admin")
    page = text(web.get(path))
    assert "Change the settings" in page
    zones = re.search(r'name="settings.zones"[^>]*>([^<]*)</textarea>', page)
    assert zones and json.loads(html_module.unescape(zones[1])) == EXAMPLE_SETTINGS["zones"]
    form = {"settings.currency": "USD", "settings.carrier_name": "Depot courier",
            "settings.zones": json.dumps(EXAMPLE_SETTINGS["zones"]),
            "settings.services": json.dumps(EXAMPLE_SETTINGS["services"])}
    refused = web.post(f"{path}/settings", {**form, "settings.zones": "[not json"})
    assert refused.status_code == 400 and 'id="f-settings-zones-err"' in text(refused)
    assert api.get(f"/carrier-accounts/{account['id']}")[1]["settings"]["carrier_name"] == (
        EXAMPLE_SETTINGS["carrier_name"])
    saved = web.post(f"{path}/settings", form)
    assert saved.status_code == 302, text(saved)[:2000]
    assert api.get(f"/carrier-accounts/{account['id']}")[1]["settings"]["carrier_name"] == (
        "Depot courier")
    web.login("operator")
    assert web.post(f"{path}/settings", form).status_code == 403
