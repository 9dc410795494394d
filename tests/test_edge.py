"""Input at the edges: instants far from now, numbers no field can hold, texts too long or not
text at all, strangers sending large bodies, filters with values that do not exist; and the
headers every answer carries.

Each refusal must be a 4xx naming the field, and nothing accepted may make a later read fail.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import ORDER, Api
from sqlalchemy import text

from hub.core import times
from hub.core.models import Order
from hub.web.api import blueprint
from hub.web.api.framework import ROUTES
from hub.web.errors import error_body

blueprint()  # imports the route modules, which fills ROUTES

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
POSTGRES = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
EDGES = [
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "1899-12-31T23:59:59Z",
    "3000-01-01T00:00:00Z",
]


def raw(
    api: Api,
    method: str,
    path: str,
    data: bytes | str,
    content_type: str | None,
    token: str | None = "admin",
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {api.tokens[token]}"} if token else {}
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.open(f"/api/v1{path}", method=method, data=data, headers=headers)
    return response.status_code, response.get_json(silent=True), dict(response.headers)


def fields_of(body: dict[str, Any]) -> list[str]:
    return [d["field"] for d in body["error"]["details"]]


# --- instants ------------------------------------------------------------------------------


def test_a_paid_at_outside_the_sane_range_is_refused_naming_it(api: Api):
    for instant in EDGES:
        status, body = api.post("/orders", {**ORDER, "paid_at": instant})
        assert status == 422, body
        assert fields_of(body) == ["paid_at"]
        assert "1900-01-01 and 2999-12-31" in body["error"]["message"]
        assert instant not in json.dumps(body)
    assert api.get("/orders")[1]["total"] == 0


@SQLITE
@pytest.mark.parametrize(
    "written", ["2026-02-30T00:00:00Z", "yesterday", "2026-03-02T08:00:00", "3000-01-01T00:00:00Z"]
)
def test_a_date_time_the_schema_refuses_is_explained_once_in_the_schema_s_words(
    api: Api, written: str
):
    """Both validators (the fast one and the one that explains) check the format the same
    way, so a bad date-time is one problem, said as the schema says it."""
    status, body = api.post("/orders", {**ORDER, "paid_at": written})
    rule = ("must be an ISO 8601 date-time with a time zone, between 1900-01-01 and 2999-12-31"
            " (UTC)")
    assert status == 422, body
    assert body["error"]["message"] == f"paid_at: {rule}"
    assert body["error"]["details"] == [{"field": "paid_at", "problem": rule}]


def test_the_ends_of_the_range_are_kept_and_read_back_on_both_databases(api: Api):
    """The control: the last second of 2999 in UTC is accepted (here written at -14:00) and
    every read shows it; a second later is refused."""
    status, order = api.post("/orders", {**ORDER, "paid_at": "2999-12-31T09:59:59-14:00"})
    assert status == 201, order
    assert order["paid_at"].startswith("2999-12-31T23:59:59")
    status, body = api.post("/orders", {**ORDER, "paid_at": "2999-12-31T10:00:00-14:00"})
    assert (status, fields_of(body)) == (422, ["paid_at"])
    status, body = api.post("/orders", {**ORDER, "paid_at": "1900-01-01T00:00:00Z"})
    assert status == 201, body
    assert api.get(f"/orders/{order['number']}")[0] == 200
    assert api.get("/orders?paid_from=2999-12-31")[1]["total"] == 1


@POSTGRES
def test_instants_postgresql_keeps_but_python_cannot_hold_never_break_a_read(api, runtime):
    """Rows written before the range was enforced (or by hand): year 10000, infinity, BC.
    Every read that shows them answers, with the value pulled to the nearest end."""
    numbers = [api.post("/orders", ORDER)[1]["number"] for _ in range(3)]
    stored = ["10000-01-01 09:59:59+00", "infinity", "0001-01-01 00:00:00+00 BC"]
    with runtime.engine.begin() as conn:
        for number, value in zip(numbers, stored, strict=True):
            conn.execute(
                text("UPDATE orders SET paid_at = :v, created_at = :v WHERE number = :n"),
                {"v": value, "n": number},
            )
            conn.execute(
                text(
                    "UPDATE order_history SET at = :v WHERE order_id ="
                    " (SELECT id FROM orders WHERE number = :n)"
                ),
                {"v": value, "n": number},
            )
    status, listing = api.get("/orders?per_page=500")
    assert status == 200, listing
    shown = {o["number"]: o["paid_at"] for o in listing["items"]}
    assert shown[numbers[0]].startswith("2999-12-31T23:59:59")
    assert shown[numbers[1]].startswith("2999-12-31T23:59:59")
    assert shown[numbers[2]].startswith("1900-01-01T00:00:00")
    for number in numbers:
        assert api.get(f"/orders/{number}")[0] == 200
        status, history = api.get(f"/orders/{number}/history")
        assert status == 200 and history["items"], history
    assert api.get("/orders/stats?from=1900-01-01&to=2999-12-31")[0] == 200
    assert api.get("/orders?created_from=2999-12-31")[1]["total"] == 2


@SQLITE
def test_query_instants_outside_the_range_are_400_naming_the_parameter(api: Api):
    for path, name in (
        ("/orders?created_from={}", "created_from"),
        ("/orders?paid_to={}", "paid_to"),
        ("/orders/stats?from={}", "from"),
        ("/shipments?created_to={}", "created_to"),
        ("/reports/carriers?to={}", "to"),
    ):
        for instant in (*EDGES, "0001-01-01", "9999-12-31"):
            status, body = api.get(path.format(instant.replace("+", "%2B")))
            assert status == 400, (path, instant, body)
            assert fields_of(body) == [name]
            assert "1900-01-01 and 2999-12-31" in body["error"]["message"]


# --- days in filters -----------------------------------------------------------------------


@SQLITE
def test_a_day_in_a_filter_is_that_whole_day_in_utc(api: Api, runtime):
    number = api.post("/orders", ORDER)[1]["number"]
    with runtime.transaction() as session:
        order = session.query(Order).filter_by(number=number).one()
        order.created_at = datetime(2026, 1, 2, 23, 59, 59, tzinfo=UTC)

    def found(query: str) -> bool:
        status, body = api.get(f"/orders?{query}")
        assert status == 200, body
        return number in [o["number"] for o in body["items"]]

    assert found("created_from=2026-01-02&created_to=2026-01-02")
    assert found("created_to=2026-01-02")  # up to the end of that day
    assert not found("created_to=2026-01-01")
    assert found("created_from=2026-01-02")  # from the start of that day
    assert not found("created_from=2026-01-03")
    assert not found("created_to=2026-01-02T23:59:59Z")  # an instant stays exclusive
    for bad in ("2026-02-30", "2026-1-2", "20260102"):
        status, body = api.get(f"/orders?created_from={bad}")
        assert (status, fields_of(body)) == (400, ["created_from"]), body


# --- numbers and texts ---------------------------------------------------------------------

HUGE = "1E+999999999"


@SQLITE
def test_numbers_no_field_can_hold_are_422_naming_the_field(api: Api):
    order = json.dumps({**ORDER, "shipping_total": "@"}).replace('"@"', HUGE)
    cases = [
        ("/orders", order, "shipping_total"),
        (
            "/orders",
            json.dumps(ORDER).replace('"quantity": 2', f'"quantity": {HUGE}'),
            "lines[0].quantity",
        ),
        ("/orders", json.dumps(ORDER).replace('"10.00"', "-1E-999999999"), "lines[0].unit_price"),
        ("/products", f'{{"sku": "N1", "name": "n", "price": {HUGE}}}', "price"),
        (
            "/stock/inbound",
            f'{{"items": [{{"sku": "SKU-A", "quantity": {HUGE}}}]}}',
            "items[0].quantity",
        ),
        (
            "/rates",
            '{"origin": {"country": "US"}, "destination": {"country": "US"},'
            f' "parcels": [{{"weight_kg": {HUGE}}}]}}',
            "parcels[0].weight_kg",
        ),
    ]
    for path, data, field in cases:
        status, body, _ = raw(api, "POST", path, data, "application/json")
        assert status == 422, (path, body)
        assert field in fields_of(body), (path, body)
    for constant in ("NaN", "Infinity", "-Infinity"):
        data = json.dumps(ORDER).replace('"10.00"', constant)
        status, body, _ = raw(api, "POST", "/orders", data, "application/json")
        assert status == 400 and constant in body["error"]["message"], body
    for query in (f"amount_min={HUGE}", "amount_max=NaN", "amount_min=Infinity", "amount_min=1e5"):
        status, body = api.get(f"/orders?{query}")
        assert status == 400 and fields_of(body) == [query.split("=")[0]], (query, body)
    assert api.get("/orders?amount_min=10.5&amount_max=999999999999.9999")[0] == 200


@SQLITE
def test_a_nul_in_a_csv_import_is_422_naming_its_line(api: Api):
    csv = "warehouse,sku,quantity\nMAIN,SKU-A,1\nMAIN,SKU\x00-B,1\n"
    status, body, _ = raw(api, "POST", "/stock/import?kind=inbound", csv, "text/csv")
    assert status == 422, body
    assert body["error"]["code"] == "validation_failed"
    assert body["error"]["message"] == "line 3: contains a NUL character"
    assert body["error"]["details"] == [
        {"field": "line 3", "problem": "contains a NUL character", "line": 3}]
    status, body, _ = raw(api, "POST", "/stock/import", b"sku\n\xff\n", "text/csv")
    assert (status, body["error"]["message"]) == (422, "line 2: is not UTF-8 text")
    assert body["error"]["details"] == [
        {"field": "line 2", "problem": "is not UTF-8 text", "line": 2}]
    assert api.get("/stock/ledger?reference=x")[0] == 200  # nothing moved, nothing broke


def _strings(schema: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """Every string-typed subschema of a body schema, with where it is."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "string" or (isinstance(kind, list) and "string" in kind):
            found.append((where, schema))
        for key, value in schema.items():
            found += _strings(value, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += _strings(value, f"{where}[{i}]")
    return found


def test_every_text_a_body_takes_has_a_length_limit():
    bounded = ("maxLength", "enum", "const", "format")
    unbounded = [
        f"{r.method} {r.rule}: {where}"
        for r in ROUTES
        if r.body_kind == "json" and r.body
        for where, s in _strings(r.body, "")
        if not any(k in s for k in bounded)
        # A pattern anchored at both ends with no open repetition is bounded too.
        and not (s.get("pattern", "").endswith("$") and not any(c in s["pattern"] for c in "*+"))
    ]
    assert not unbounded, unbounded


@SQLITE
def test_over_long_free_text_is_422_naming_the_field(api: Api):
    number = api.post("/orders", ORDER)[1]["number"]
    for method, path, body, field in (
        ("POST", f"/orders/{number}/cancel", {"reason": "r" * 501}, "reason"),
        ("PATCH", f"/orders/{number}", {"note": "n" * 1001}, "note"),
        (
            "POST",
            "/stock/adjust",
            {"reason": "x" * 501, "items": [{"sku": "SKU-A", "delta": 1}]},
            "reason",
        ),
    ):
        status, answer = api.call(method, path, body)
        assert (status, fields_of(answer)) == (422, [field]), answer
        assert len(json.dumps(answer)) < 1000
    status, body = api.get(f"/orders?q={'q' * 501}")
    assert (status, fields_of(body)) == (400, ["q"])


# --- authentication before parsing; the size of an answer ----------------------------------


def _big_bad_rates() -> str:
    """~700 KB of shipments, each wrong in several ways."""
    bad = {"origin": {"country": "USA", "zip": "x" * 20}, "destination": 1, "parcels": []}
    return json.dumps({"shipments": [bad] * 7000})


@SQLITE
def test_a_stranger_is_turned_away_before_the_body_is_read(api: Api):
    data = _big_bad_rates()
    assert len(data) > 600_000
    status, body, _ = raw(api, "POST", "/rates", data, "application/json", token=None)
    assert status == 401 and len(json.dumps(body)) < 500, body
    # Not even read: a body that is no JSON at all is still a 401, not a 400.
    status, body, _ = raw(api, "POST", "/rates", data[:-1], "application/json", token=None)
    assert status == 401, body
    status, body, _ = raw(api, "POST", "/rates", data, "text/plain", token=None)
    assert status == 401  # before the content type, too
    status, body, _ = raw(api, "POST", "/orders", data, "application/json", token="analyst")
    assert status == 403, body
    # The CSV upload too: who is calling comes before the kind of body.
    status, body, _ = raw(api, "POST", "/stock/import", "a,b\n\x00", "image/png", token=None)
    assert status == 401
    status, body, _ = raw(api, "POST", "/stock/import", "a,b\n\x00", "text/csv", "analyst")
    assert status == 403


@SQLITE
def test_a_huge_invalid_body_gets_a_short_answer_listing_its_problems(api: Api):
    status, body, _ = raw(api, "POST", "/rates", _big_bad_rates(), "application/json")
    assert status == 422
    error = body["error"]
    assert len(error["message"]) <= 500
    assert 1 < len(error["details"]) <= 50
    assert all(set(d) == {"field", "problem"} for d in error["details"])
    assert len(json.dumps(body)) < 20_000


@SQLITE
def test_every_problem_of_a_body_is_listed_with_its_field(api: Api):
    body = {
        **ORDER,
        "priority": "high",
        "colour": "red",
        "note": "x" * 1001,
        "lines": [{"sku": "SKU-A", "quantity": 0}, {"quantity": 1}],
    }
    status, answer = api.post("/orders", body)
    assert status == 422
    assert sorted(fields_of(answer)) == sorted(
        ["colour", "priority", "note", "lines[0].quantity", "lines[1].sku"]
    )
    assert "(and 4 more problems)" in answer["error"]["message"]


@SQLITE
def test_details_are_never_null(api: Api):
    for status, body in (
        api.get("/orders/NOPE"),
        api.get("/orders", token="not-a-token"),
        api.post("/orders/NOPE/allocate"),
    ):
        assert status in (401, 404), body
        assert body["error"]["details"] == [], body
    response = api.client.get("/api/v1/no-such-route")
    assert response.get_json()["error"]["details"] == []


# --- enum filters --------------------------------------------------------------------------


@SQLITE
def test_an_unknown_value_of_an_enum_filter_is_400_listing_the_allowed_ones(api: Api):
    for path, name, allowed in (
        ("/orders?status=bogus", "status", "awaiting_approval"),
        ("/orders?status=new,bogus", "status", "confirmed"),
        ("/orders?fulfilled_by=robot", "fulfilled_by", "channel"),
        ("/orders?sort=colour", "sort", "-created_at"),
        ("/shipments?status=bogus", "status", "out_for_delivery"),
        ("/inbox?status=bogus", "status", "rejected"),
        ("/exceptions?status=bogus", "status", "resolved"),
        ("/exceptions?kind=bogus", "kind", "lost"),
        ("/stock/ledger?kind=theft", "kind", "adjust"),
    ):
        status, body = api.get(path)
        assert status == 400, (path, body)
        assert fields_of(body) == [name]
        assert allowed in body["error"]["message"], body
    for path in ("/orders?status=new,confirmed", "/shipments?status=created,in_transit"):
        assert api.get(path)[0] == 200


def test_every_enum_like_filter_declares_its_values():
    """status, kind, sort and fulfilled_by filters name what they take, so the OpenAPI
    document shows it and an unknown value is refused rather than matching nothing."""
    loose = [
        f"{r.rule}?{p.name}"
        for r in ROUTES
        for p in r.query
        if p.name in ("status", "kind", "sort", "fulfilled_by") and not p.enum
    ]
    assert not loose, loose


# --- headers -------------------------------------------------------------------------------

SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@SQLITE
def test_every_answer_carries_the_security_headers(api: Api):
    token = {"Authorization": f"Bearer {api.token}"}
    answers = {
        "an API route": api.client.get("/api/v1/me", headers=token),
        "a 401": api.client.get("/api/v1/orders"),
        "a 404": api.client.get("/api/v1/orders/NOPE", headers=token),
        "an unknown path": api.client.get("/nowhere"),
        "a webhook answer": api.client.post("/hooks/acme/999999", data=b"{}"),
        "readyz": api.client.get("/readyz"),
    }
    for what, response in answers.items():
        for name, value in SECURITY.items():
            assert response.headers.get(name) == value, (what, name, response.status_code)
    assert answers["an API route"].status_code == 200
    assert answers["a 401"].status_code == 401
    assert answers["readyz"].status_code in (200, 503)  # 503: no worker has reported yet


def test_clamp_pulls_any_instant_into_the_range():
    west = timezone(timedelta(hours=-14))
    assert times.clamp(datetime(9999, 12, 31, 23, 59, 59, tzinfo=west)) == times.LATEST
    assert times.clamp(datetime(9999, 12, 31, 23, 0, tzinfo=UTC)) == times.LATEST
    assert times.clamp(datetime(1, 1, 1)) == times.EARLIEST
    now = datetime.now(UTC)
    assert times.clamp(now.astimezone(west)) == now


@SQLITE
def test_an_error_answer_is_capped_whatever_it_was_given(app):
    with app.test_request_context():
        details = [{"field": "f" * 1000, "problem": "p"}] * 100
        error = error_body(422, "validation_failed", "m" * 10_000, details).get_json()["error"]
        nested = error_body(400, "bad", "short", {"a": {"b": {"c": {"d": {"e": 1}}}}})
    assert len(error["message"]) == 500 and error["message"].endswith("…")
    assert len(error["details"]) == 50
    assert all(len(d["field"]) == 300 for d in error["details"])
    assert nested.get_json()["error"]["details"] == {"a": {"b": {"c": {"d": {}}}}}
