"""Rate shopping: every enabled rating account quotes every shipment at once; a failing or
slow carrier costs only its own rates (its error comes back typed, within the deadline);
identical shipments are quoted once; the tenant's policy selects a rate."""

from __future__ import annotations

import http.server
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
import responses
from conftest import ORDER, Api, allow_outbound, config_with_acme

from hub import hookimpl
from hub.core import rates
from hub.core.adapters import (
    CarrierAdapter,
    Parcel,
    PayloadError,
    Place,
    Rate,
    Service,
    ShipmentRequest,
    StubCarrier,
)
from hub.core.errors import Invalid
from hub.core.http import HttpError
from hub.core.rates import QuotedRate, choose, working_days_after
from hub.runtime import Runtime

FASTPOST = "https://api.fastpost.test/v2/rates"
PARCELLY = "https://parcelly.test/quotes"


# --- two HTTP carriers, as plugins would write them -------------------------------------------


class FastPost(CarrierAdapter):
    """Prices by total weight: one POST answers every service."""

    name = "fastpost"
    capabilities = frozenset({"rating"})
    secret_settings = ("api_key",)
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"api_key": {"type": "string"}, "url": {"type": "string"}},
        "required": ["api_key"],
        "additionalProperties": False,
    }

    def services(self) -> list[Service]:
        return [Service("ground", "Ground", 4), Service("express", "Express", 1)]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        kg = sum((p.weight_kg for p in request.parcels), Decimal(0))
        body = self.http.json(
            "POST",
            self.settings.get("url", FASTPOST),
            json={"to": request.destination.country, "kg": str(kg)},
            headers={"Authorization": f"Bearer {self.settings['api_key']}"},
        )
        return [
            Rate("FastPost", r["service"], Decimal(r["price"]), "USD", r["days"])
            for r in body["rates"]
        ]


class Parcelly(CarrierAdapter):
    """Another shape: totals with currencies and delivery dates."""

    name = "parcelly"
    capabilities = frozenset({"rating"})
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"url": {"type": "string"}},
        "additionalProperties": False,
    }

    def services(self) -> list[Service]:
        return [Service("economy", "Economy", 6), Service("priority", "Priority", 2)]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        body = self.http.json("POST", self.settings.get("url", PARCELLY), json={"country": "x"})
        return [
            Rate(
                "Parcelly",
                q["code"],
                Decimal(q["total"]["amount"]),
                q["total"]["currency"],
                q["transit"],
            )
            for q in body["quotes"]
        ]


class Carriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier, FastPost, Parcelly]


FASTPOST_ANSWER = {
    "rates": [
        {"service": "ground", "price": "7.00", "days": 4},
        {"service": "express", "price": "12.00", "days": 1},
    ]
}
PARCELLY_ANSWER = {
    "quotes": [
        {"code": "economy", "total": {"amount": "4.50", "currency": "USD"}, "transit": 6},
        {"code": "priority", "total": {"amount": "9.00", "currency": "USD"}, "transit": 2},
    ]
}
SHIPMENT = {
    "origin": {"country": "US", "postcode": "07101"},
    "destination": {"country": "US", "postcode": "94103", "city": "San Francisco"},
    "parcels": [{"weight_kg": "1.2", "length_cm": 20, "width_cm": 15, "height_cm": 10}],
}


@pytest.fixture
def acme_toml() -> str:
    """Acme's tenant file; a test parametrizes it to set ``[shipping]``."""
    return ""


@pytest.fixture
def config_dir(tmp_path: Path, acme_toml: str) -> Path:
    return config_with_acme(tmp_path, acme_toml)


@pytest.fixture
def carriers(api: Api, runtime: Runtime) -> dict[str, int]:
    """Acme with three accounts: the stub (5.00, 3 days) and the two HTTP carriers."""
    runtime.plugins.register(Carriers, "test-carriers")
    ids = {}
    for plugin, name, settings in (
        ("stub", "stub", {"price": "5.00"}),
        ("fastpost", "fast-post", {"api_key": "fp-secret"}),
        ("parcelly", "parcelly", {}),
    ):
        status, made = api.post(
            "/carrier-accounts", {"plugin": plugin, "name": name, "settings": settings}
        )
        assert status == 201, made
        ids[name] = made["id"]
    return ids


@pytest.fixture
def carrier_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(FASTPOST, json=FASTPOST_ANSWER)
        mock.post(PARCELLY, json=PARCELLY_ANSWER)
        yield mock


def calls_to(mock: responses.RequestsMock, url: str) -> int:
    return sum(1 for call in mock.calls if call.request.url == url)


def offered(answer: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(r["carrier_account"], r["service"], r["amount"]) for r in answer["rates"]]


# --- quoting ---------------------------------------------------------------------------------


def test_one_shipment_is_quoted_by_every_carrier_cheapest_first(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    status, answer = api.post("/rates", SHIPMENT)

    assert status == 200, answer
    assert offered(answer) == [
        ("parcelly", "economy", "4.50"),
        ("stub", "standard", "5.00"),
        ("fast-post", "ground", "7.00"),
        ("parcelly", "priority", "9.00"),
        ("fast-post", "express", "12.00"),
    ]
    assert answer["errors"] == []
    assert answer["policy"] == "cheapest"
    assert answer["selected"]["carrier_account"] == "parcelly"
    express = answer["rates"][-1]
    assert express["carrier"] == "FastPost" and express["currency"] == "USD"
    assert express["carrier_account_id"] == carriers["fast-post"]
    assert express["estimated_days"] == 1
    assert express["estimated_delivery"] == working_days_after(date.today(), 1).isoformat()
    # The account's key went to the carrier, from the sealed settings.
    [sent] = [c for c in carrier_api.calls if c.request.url == FASTPOST]
    assert sent.request.headers["Authorization"] == "Bearer fp-secret"
    assert json.loads(sent.request.body) == {"to": "US", "kg": "1.2"}


def test_a_batch_quotes_each_distinct_shipment_once(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    heavier = {**SHIPMENT, "parcels": [{"weight_kg": "3"}], "reference": "B"}
    # The same shipment written differently (case, spaces, 1.20 for 1.2) is the same one.
    same = {
        **SHIPMENT,
        "destination": {"country": "us", "postcode": " 94103", "city": "SAN  FRANCISCO"},
        "parcels": [{"weight_kg": 1.20, "length_cm": "20.0", "width_cm": 15, "height_cm": 10}],
        "reference": "C",
    }

    status, answer = api.post("/rates", {"shipments": [SHIPMENT, heavier, same]})

    assert status == 200, answer
    assert (answer["quoted"], answer["distinct"]) == (3, 2)
    assert [r["index"] for r in answer["results"]] == [0, 1, 2]
    assert [r["reference"] for r in answer["results"]] == [None, "B", "C"]
    for result in answer["results"]:
        assert len(result["rates"]) == 5 and result["errors"] == []
    assert calls_to(carrier_api, FASTPOST) == 2
    assert calls_to(carrier_api, PARCELLY) == 2


def test_a_second_identical_quote_is_answered_from_the_cache(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    first = api.post("/rates", SHIPMENT)
    second = api.post("/rates", SHIPMENT)

    assert first == second
    assert calls_to(carrier_api, FASTPOST) == 1
    # Another parcel is another shipment.
    api.post("/rates", {**SHIPMENT, "parcels": [{"weight_kg": "1.3"}]})
    assert calls_to(carrier_api, FASTPOST) == 2


def raise_read_timeout(request: Any) -> Any:
    raise requests.exceptions.ReadTimeout("read timed out")


SENT = "parcelly:account:{id}: POST https://parcelly.test/quotes → "
NOT_REPEATED = "; not retried: the server may have processed the POST"


class Raiser(CarrierAdapter):
    """Fails the way its ``fails`` setting says, as a plugin's own code may."""

    name = "raiser"
    capabilities = frozenset({"rating"})
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"fails": {"enum": ["payload", "http", "bug"]}},
        "additionalProperties": False,
    }

    def services(self) -> list[Service]:
        return [Service("std", "Standard", 3)]

    def quote(self, request: ShipmentRequest) -> list[Rate]:
        fails = self.settings["fails"]
        if fails == "payload":
            raise PayloadError("the answer lists no rates")
        if fails == "http":
            raise HttpError("the carrier is closed for the holidays")
        return [Rate("Raiser", "std", Decimal({}["price"]), "USD", 3)]


@pytest.mark.parametrize(
    ("fails", "kind", "message"),
    [
        ("payload", "parse", "the answer lists no rates"),
        # An HttpError of no known kind: the server's trouble, told as the plugin put it.
        ("http", "unavailable", "the carrier is closed for the holidays"),
        ("bug", "internal", "the raiser plugin failed (KeyError); it was logged"),
    ],
)
def test_a_plugin_s_own_error_is_typed_and_only_a_bug_is_logged_with_its_trace(
    api: Api,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    fails: str,
    kind: str,
    message: str,
) -> None:
    runtime.plugins.register(RaiserPlugin, "raiser")
    status, account = api.post(
        "/carrier-accounts",
        {"plugin": "raiser", "name": "odd-post", "settings": {"fails": fails}},
    )
    assert status == 201, account

    with caplog.at_level(logging.ERROR, logger="hub.core.rates"):
        status, quoted = api.post("/rates", SHIPMENT)

    assert status == 200, quoted
    assert quoted["rates"] == [] and quoted["selected"] is None
    assert quoted["errors"] == [
        {
            "carrier_account_id": account["id"],
            "carrier_account": "odd-post",
            "carrier": "raiser",
            "type": kind,
            "retryable": False,
            "error": message,
        }
    ]
    logged = [r for r in caplog.records if r.name == "hub.core.rates"]
    if fails == "bug":
        [record] = logged
        assert record.getMessage() == "carrier account odd-post (raiser) failed to quote"
        assert record.exc_info is not None and record.exc_info[0] is KeyError
    else:
        assert logged == []


class RaiserPlugin:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [Raiser]


@pytest.mark.parametrize(
    ("answer", "kind", "retryable", "message"),
    [
        ({"status": 500}, "unavailable", True,
         SENT + "500 Internal Server Error (server trouble)" + NOT_REPEATED),
        ({"status": 401}, "auth", False, SENT + "401 Unauthorized (credentials refused)"),
        ({"status": 429, "headers": {"Retry-After": "0"}}, "rate_limit", True,
         SENT + "429 Too Many Requests (rate limited); gave up after 4 attempts"),
        ({"status": 422, "json": {"error": "no service to AQ"}}, "business", False,
         SENT + "422 Unprocessable Entity (request rejected)"),
        ({"status": 200, "body": "<html>maintenance</html>"}, "parse", False,
         SENT + "200 OK but the body is not JSON"),
        ({"status": 200, "json": {"quotes": "none"}}, "internal", False,
         "the parcelly plugin failed (TypeError); it was logged"),
        ({"callback": raise_read_timeout}, "timeout", True,
         SENT + "no answer within 5 s (read timeout)" + NOT_REPEATED),
    ],
    ids=["500", "401", "429", "422", "not json", "plugin bug", "read timeout"],
)
def test_a_failing_carrier_costs_only_its_own_rates_with_a_typed_error(
    api: Api,
    carriers: dict[str, int],
    answer: dict[str, Any],
    kind: str,
    retryable: bool,
    message: str,
) -> None:
    with responses.RequestsMock() as mock:
        mock.post(FASTPOST, json=FASTPOST_ANSWER)
        if "callback" in answer:
            mock.add_callback("POST", PARCELLY, callback=answer["callback"])
        else:
            mock.post(PARCELLY, **answer)

        status, quoted = api.post("/rates", SHIPMENT)

    assert status == 200, quoted
    assert {r["carrier_account"] for r in quoted["rates"]} == {"stub", "fast-post"}
    [error] = quoted["errors"]
    assert error["carrier_account"] == "parcelly" and error["carrier"] == "parcelly"
    assert error["carrier_account_id"] == carriers["parcelly"]
    assert (error["type"], error["retryable"]) == (kind, retryable)
    assert error["error"] == message.format(id=carriers["parcelly"])
    assert quoted["selected"]["carrier_account"] == "stub"


def test_an_open_circuit_is_reported_as_such(
    api: Api, runtime: Runtime, carriers: dict[str, int]
) -> None:
    with responses.RequestsMock() as mock:
        mock.post(FASTPOST, json=FASTPOST_ANSWER)
        mock.post(PARCELLY, status=500)
        # Five server failures in a row (each shipment distinct, so none is cached) ...
        for grams in range(1, 6):
            parcels = [{"weight_kg": f"0.{grams}"}]
            _, quoted = api.post("/rates", {**SHIPMENT, "parcels": parcels})
            assert [e["type"] for e in quoted["errors"]] == ["unavailable"]
        calls = calls_to(mock, PARCELLY)
        # ... open the account's circuit: the next quote is not even sent.
        _, quoted = api.post("/rates", SHIPMENT)
        assert calls_to(mock, PARCELLY) == calls
    [error] = quoted["errors"]
    assert (error["type"], error["retryable"]) == ("circuit_open", True)
    assert len(quoted["rates"]) == 3


def test_disabled_accounts_and_disallowed_services_are_not_offered(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    assert api.patch(f"/carrier-accounts/{carriers['parcelly']}", {"enabled": False})[0] == 200
    assert (
        api.patch(f"/carrier-accounts/{carriers['fast-post']}", {"services": ["express"]})[0] == 200
    )

    _, answer = api.post("/rates", SHIPMENT)

    assert offered(answer) == [("stub", "standard", "5.00"), ("fast-post", "express", "12.00")]
    assert calls_to(carrier_api, PARCELLY) == 0


def test_an_order_is_quoted_per_warehouse_part(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    # SKU-B is only at MAIN and SKU-C runs out there: the order ships from two warehouses.
    body = {
        **ORDER,
        "lines": [
            {"sku": "SKU-B", "quantity": 1, "unit_price": "25.50"},
            {"sku": "SKU-C", "quantity": 7, "unit_price": "3.99"},
        ],
    }
    status, order = api.post("/orders", body)
    assert status == 201 and order["status"] == "confirmed", order

    status, answer = api.post("/rates", {"order": order["number"]})

    assert status == 200, answer
    assert answer["order"] == order["number"]
    assert [p["warehouse"] for p in answer["parts"]] == ["MAIN", "WEST"]
    assert answer["parts"][0]["items"] == [
        {"sku": "SKU-B", "quantity": 1},
        {"sku": "SKU-C", "quantity": 5},
    ]
    assert answer["parts"][1]["items"] == [{"sku": "SKU-C", "quantity": 2}]
    for part in answer["parts"]:
        assert len(part["rates"]) == 5 and part["selected"] is not None
    # Another tenant's order number is nobody's.
    status, _ = api.post("/rates", {"order": order["number"]}, token=api.tokens["stranger"])
    assert status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SHIPMENT, "parcels": []}, "parcels"),
        ({**SHIPMENT, "parcels": [{"weight_kg": "0"}]}, "parcels[0].weight_kg"),
        (
            {"shipments": [{**SHIPMENT, "destination": {}}]},
            "shipments[0].destination.country",
        ),
        ({**SHIPMENT, "promised": "2026-02-30"}, "promised"),
        ({**SHIPMENT, "order": "SO-1"}, "(body)"),
        ({"shipments": []}, "shipments"),
        ({k: v for k, v in SHIPMENT.items() if k != "origin"}, "(body)"),
    ],
    ids=[
        "no parcel",
        "zero weight",
        "no country",
        "impossible date",
        "two forms",
        "empty batch",
        "no origin",
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    api: Api, carriers: dict[str, int], body: dict[str, Any], field: str
) -> None:
    status, error = api.post("/rates", body)

    assert status == 422, error
    assert error["error"]["message"].startswith(f"{field}:"), error


# --- the deadline, against a carrier that hangs -------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    release: threading.Event


class _Handler(http.server.BaseHTTPRequestHandler):
    """``/slow`` hangs until the test ends (at most 10 s); anything else answers at once."""

    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/slow":
            self.server.release.wait(10)
        answer = PARCELLY_ANSWER if self.path == "/parcelly" else FASTPOST_ANSWER
        body = json.dumps(answer).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client stopped waiting
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_server(config_dir: Path) -> Iterator[str]:
    """The fake on 127.0.0.1 over http, which the operator allows in hub.toml (the hub calls
    nothing else but public https hosts); set up before the app that reads hub.toml."""
    server = _Server(("127.0.0.1", 0), _Handler)
    allow_outbound(config_dir, f"127.0.0.1:{server.server_address[1]}")
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


ONE_SECOND = pytest.mark.parametrize(
    "acme_toml", ["[shipping]\ndeadline_seconds = 1\n"], ids=["deadline 1 s"]
)


@pytest.fixture
def slow_tenant(local_server: str, api: Api, runtime: Runtime) -> str:
    """Acme with the stub, a carrier that answers at once and one that hangs. Tests ask for
    it before ``api``, so the local server is allowed in hub.toml before the app starts."""
    runtime.plugins.register(Carriers, "test-carriers")
    for plugin, name, settings in (
        ("stub", "stub", {}),
        ("fastpost", "quick", {"api_key": "k", "url": f"{local_server}/fast"}),
        ("parcelly", "hung", {"url": f"{local_server}/slow"}),
    ):
        body = {"plugin": plugin, "name": name, "settings": settings}
        assert api.post("/carrier-accounts", body)[0] == 201
    return local_server


@ONE_SECOND
def test_a_hanging_carrier_does_not_hold_the_answer_past_the_deadline(
    slow_tenant: str, api: Api
) -> None:
    started = time.monotonic()
    status, answer = api.post("/rates", SHIPMENT)
    took = time.monotonic() - started

    assert status == 200, answer
    assert took < 1 + 0.75, f"took {took:.2f} s with a 1 s deadline"
    assert {r["carrier_account"] for r in answer["rates"]} == {"stub", "quick"}
    [error] = answer["errors"]
    assert error["carrier_account"] == "hung"
    assert (error["type"], error["retryable"]) == ("timeout", True)


@ONE_SECOND
def test_a_batch_stops_asking_a_carrier_that_keeps_hanging(
    slow_tenant: str, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two calls at a time: the hung account spends two deadlines, then is not asked again.
    monkeypatch.setattr(rates, "POOL_SIZE", 2)
    batch = [{**SHIPMENT, "parcels": [{"weight_kg": str(kg)}]} for kg in range(1, 11)]

    started = time.monotonic()
    status, answer = api.post("/rates", {"shipments": batch})
    took = time.monotonic() - started

    assert status == 200
    errors = [e for r in answer["results"] for e in r["errors"]]
    assert len(errors) == 10 and {e["type"] for e in errors} == {"timeout"}
    assert sum(e["error"].startswith("not asked") for e in errors) >= 5
    assert all(len(r["rates"]) == 3 for r in answer["results"])
    assert took < 4 * 1 + 1, f"took {took:.2f} s"


# --- choosing --------------------------------------------------------------------------------

TODAY = date(2026, 11, 25)  # a Wednesday


def rate(
    account: str, amount: str, days: int | None, currency: str = "USD", service: str = "std"
) -> QuotedRate:
    delivery = working_days_after(TODAY, days) if days is not None else None
    return QuotedRate(1, account, account, service, Decimal(amount), currency, days, delivery)


RATES = [
    rate("ups", "9.00", 2),
    rate("dhl", "6.00", 5),
    rate("post", "4.00", 8),
    rate("courier", "15.00", 1),
    rate("mystery", "3.00", None),
]


def pick(policy: str, promised: date | None = None, **kw: Any) -> str | None:
    kw.setdefault("country", "US")
    kw.setdefault("preferred", {})
    chosen = choose(RATES, policy, promised=promised, **kw)
    return chosen.carrier_account if chosen else None


def test_cheapest_takes_the_lowest_amount() -> None:
    assert pick("cheapest") == "mystery"
    # An equal price goes to the quicker one, so the choice never depends on answer order.
    tie = [rate("slow", "5.00", 6), rate("quick", "5.00", 2)]
    assert choose(tie, "cheapest", country="US", promised=None, preferred={}) == tie[1]


def test_fastest_takes_the_earliest_delivery_and_unknown_estimates_last() -> None:
    assert pick("fastest") == "courier"
    unknown = [rate("mystery", "1.00", None), rate("post", "4.00", 8)]
    assert choose(unknown, "fastest", country="US", promised=None, preferred={}) == unknown[1]


def test_cheapest_on_time_takes_the_cheapest_that_keeps_the_promise() -> None:
    assert pick("cheapest_on_time", working_days_after(TODAY, 5)) == "dhl"
    assert pick("cheapest_on_time", working_days_after(TODAY, 2)) == "ups"
    # Nobody can make it: the least late.
    assert pick("cheapest_on_time", TODAY) == "courier"
    # No promise: the cheapest.
    assert pick("cheapest_on_time") == "mystery"


def test_the_preferred_account_of_the_destination_goes_first() -> None:
    preferred = {"DE": "dhl", "*": "post"}
    assert pick("cheapest", country="DE", preferred=preferred) == "dhl"
    assert pick("fastest", country="de", preferred=preferred) == "dhl"
    assert pick("cheapest", country="FR", preferred=preferred) == "post"  # "*": the rest
    assert pick("cheapest", country="FR", preferred={"DE": "dhl"}) == "mystery"
    # Preferred, but it offers no rate here: the policy over everyone.
    assert pick("fastest", country="DE", preferred={"DE": "fedex"}) == "courier"
    # Preferred, but late while another account is on time: the promise wins.
    promised = working_days_after(TODAY, 2)
    assert pick("cheapest_on_time", promised, country="DE", preferred=preferred) == "ups"
    # Preferred and on time: preferred, even if not the cheapest on time.
    promised = working_days_after(TODAY, 5)
    assert pick("cheapest_on_time", promised, country="FR", preferred={"FR": "ups"}) == "ups"


def test_amounts_in_other_currencies_are_not_compared_with_the_shipments() -> None:
    mixed = [rate("yen", "900", 3, "JPY"), rate("usd", "12.00", 3)]
    chosen = choose(mixed, "cheapest", country="US", promised=None, preferred={}, currency="USD")
    assert chosen == mixed[1]
    only_yen = mixed[:1]
    assert choose(only_yen, "cheapest", country="US", promised=None, preferred={}, currency="USD")


def test_no_rate_chooses_nothing_and_an_unknown_policy_is_refused() -> None:
    assert choose([], "cheapest", country="US", promised=None, preferred={}) is None
    with pytest.raises(Invalid, match="unknown shipping policy 'random'"):
        choose(RATES, "random", country="US", promised=None, preferred={})


def test_working_days_skip_weekends() -> None:
    friday = date(2026, 11, 27)
    assert working_days_after(friday, 1) == date(2026, 11, 30)
    assert working_days_after(friday, 0) == friday
    assert working_days_after(TODAY, 3) == TODAY + timedelta(days=5)


@pytest.mark.parametrize(
    "acme_toml",
    [
        '[shipping]\npolicy = "cheapest_on_time"\npromise_days = 3\n'
        'preferred = { DE = "fast-post" }\n'
    ],
    ids=["cheapest on time in 3 days"],
)
def test_the_tenant_policy_selects_and_a_request_may_carry_its_promise(
    api: Api, carriers: dict[str, int], carrier_api: responses.RequestsMock
) -> None:
    _, answer = api.post("/rates", SHIPMENT)
    assert answer["policy"] == "cheapest_on_time"
    assert answer["promised"] == working_days_after(date.today(), 3).isoformat()
    assert answer["selected"]["carrier_account"] == "stub"  # 5.00 in 3 days
    promised = working_days_after(date.today(), 2).isoformat()
    _, answer = api.post("/rates", {**SHIPMENT, "promised": promised})
    assert (answer["selected"]["carrier_account"], answer["selected"]["service"]) == (
        "parcelly",
        "priority",
    )
    to_germany = {**SHIPMENT, "destination": {"country": "DE", "postcode": "10115"}}
    _, answer = api.post("/rates", to_germany)
    assert answer["selected"]["carrier_account"] == "fast-post"


# --- the request key ---------------------------------------------------------------------------


def request(**changes: Any) -> ShipmentRequest:
    base: dict[str, Any] = {
        "origin": Place("US", "07101"),
        "destination": Place("DE", "10115", city="Berlin", name="Ann"),
        "parcels": (Parcel(Decimal("1.50")),),
        "reference": "SO-1",
    }
    return ShipmentRequest(**{**base, **changes})


def test_the_request_key_ignores_what_does_not_price_a_shipment() -> None:
    key = rates.request_key(request())
    assert rates.request_key(request(reference="SO-2")) == key
    assert rates.request_key(request(parcels=(Parcel(Decimal("1.5")),))) == key
    assert (
        rates.request_key(request(destination=Place("de", "10115 ", city="BERLIN", name="Bo")))
        == key
    )
    assert rates.request_key(request(parcels=(Parcel(Decimal("1.6")),))) != key
    assert rates.request_key(request(destination=Place("DE", "10117", city="Berlin"))) != key


# --- the built-in carriers together --------------------------------------------------------------


def test_table_rate_easypost_and_ups_quote_one_shipment_together(api: Api) -> None:
    """The real plugins, each answered as its own tests record its carrier's API."""
    easypost = pytest.importorskip("test_carrier_easypost", reason="no EasyPost plugin tests")
    ups = pytest.importorskip("test_carrier_ups", reason="no UPS plugin tests")
    table_rate = pytest.importorskip("plugins.carriers.table_rate")
    for plugin, settings in (
        ("table_rate", table_rate.EXAMPLE_SETTINGS),
        ("easypost", easypost.settings()),
        ("ups", ups.settings()),
    ):
        body = {"plugin": plugin, "name": plugin.replace("_", "-"), "settings": settings}
        status, made = api.post("/carrier-accounts", body)
        assert status == 201, made
    shipment = {
        "origin": {
            "country": "US",
            "postcode": "94104",
            "city": "San Francisco",
            "region": "CA",
            "line1": "417 Montgomery Street",
            "name": "OrderHub Warehouse",
        },
        "destination": {
            "country": "US",
            "postcode": "90277",
            "city": "Redondo Beach",
            "region": "CA",
            "line1": "179 N Harbor Dr",
            "name": "Dr. Steve Brule",
        },
        "parcels": [{"weight_kg": "1.5", "length_cm": 30, "width_cm": 20, "height_cm": 10}],
        "declared_value": "59.90",
    }
    with responses.RequestsMock() as mock:
        mock.post(easypost.SHIPMENTS, json=easypost.a_shipment(easypost.usps_rates()))
        mock.post(ups.TOKEN_URL, json=ups.token_answer())
        mock.post(
            ups.SHOP_URL,
            json=ups.rate_response(ups.rated("03", "14.84"), ups.rated("02", "27.62", days="2")),
        )

        status, answer = api.post("/rates", shipment)

    assert status == 200, answer
    assert answer["errors"] == []
    by_account = {(r["carrier_account"], r["service"]): r["amount"] for r in answer["rates"]}
    assert by_account == {
        ("table-rate", "ground"): "12.40",
        ("table-rate", "express"): "27.00",
        ("easypost", "Express"): "49.60",
        ("easypost", "Priority"): "7.33",
        ("easypost", "GroundAdvantage"): "6.79",
        ("ups", "ground"): "14.84",
        ("ups", "2nd_day_air"): "27.62",
    }
    amounts = [Decimal(r["amount"]) for r in answer["rates"]]
    assert amounts == sorted(amounts)
    assert answer["selected"]["carrier_account"] == "easypost"
    assert answer["selected"]["service"] == "GroundAdvantage"


def test_an_easypost_rate_without_a_currency_is_noted_and_the_others_still_quote(
    api: Api,
) -> None:
    easypost = pytest.importorskip("test_carrier_easypost", reason="no EasyPost plugin tests")
    body = {"plugin": "easypost", "name": "easypost", "settings": easypost.settings()}
    status, made = api.post("/carrier-accounts", body)
    assert status == 201, made
    listed = easypost.usps_rates()
    listed[0]["currency"] = None
    with responses.RequestsMock() as mock:
        mock.post(easypost.SHIPMENTS, json=easypost.a_shipment(listed))

        status, answer = api.post("/rates", SHIPMENT)

    assert status == 200, answer
    assert offered(answer) == [
        ("easypost", "GroundAdvantage", "6.79"),
        ("easypost", "Priority", "7.33"),
    ]
    [note] = answer["errors"]
    assert (note["carrier_account"], note["type"], note["retryable"]) == (
        "easypost",
        "parse",
        False,
    )
    assert note["error"] == "easypost: rates[0] (USPS Express) left out: it has no currency"
    assert answer["selected"]["service"] == "GroundAdvantage"


def test_a_process_forked_after_quoting_quotes_with_a_pool_of_its_own() -> None:
    """A server that quoted before forking its workers (or any fork after a quote) must not
    hand the child a pool whose threads stayed in the parent: its quotes would never run."""
    assert rates._executor().submit(lambda: 1).result(timeout=10) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: quote, and say whether it ran
        try:
            ran = rates._executor().submit(lambda: 42).result(timeout=10) == 42
        except BaseException:
            ran = False
        os._exit(0 if ran else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
