"""Bad input of every kind gets a 4xx with ``{"error": {"code", "message", "details"}}`` and a
message that names what is wrong; never a 500, and never a change to the data."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import ORDER, Api


def raw(api: Api, method: str, path: str, data: bytes | str, content_type: str | None):
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = api.client.open(f"/api/v1{path}", method=method, data=data, headers=headers)
    return response.status_code, response.get_json(silent=True)


def error_of(status: int, body: Any, expected: int) -> dict[str, Any]:
    assert status == expected, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    return error


def order_with(**changes: Any) -> dict[str, Any]:
    """ORDER with its first line changed (``line_*``) or top-level fields set."""
    body = copy.deepcopy(ORDER)
    for key, value in changes.items():
        if key.startswith("line_"):
            body["lines"][0][key[5:]] = value
        else:
            body[key] = value
    return body


@pytest.fixture
def no_orders(api):
    """Asserts after the test that no bad request created an order."""
    yield
    status, body = api.get("/orders")
    assert status == 200 and body["total"] == 0, body


# --- the body as a whole -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ('{"lines": [', ["not valid JSON"]),
        ("{'lines': []}", ["not valid JSON"]),
        ("", ["not valid JSON"]),
        ('{"lines": [{"sku": "SKU-A", "quantity": NaN}]}', ["NaN"]),
        ('{"lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": Infinity}]}', ["Infinity"]),
        ('{"lines": [{"sku": "SKU-A", "quantity": 1}], "tax_total": -Infinity}', ["Infinity"]),
        (b'{"note": "\xff\xfe"}', ["not valid JSON"]),
    ],
    ids=["truncated", "single-quotes", "empty", "nan", "infinity", "minus-infinity", "not-utf8"],
)
def test_malformed_json_is_400(api, no_orders, data, words):
    error = error_of(*raw(api, "POST", "/orders", data, "application/json"), 400)
    assert error["code"] == "malformed_json"
    for word in words:
        assert word in error["message"]


def test_deeply_nested_json_is_rejected_not_crashed(api, no_orders):
    data = '{"lines": ' + "[" * 100_000 + "]" * 100_000 + "}"
    status, body = raw(api, "POST", "/orders", data, "application/json")
    assert 400 <= status < 500, body
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type_is_415(api, no_orders, content_type):
    data = json.dumps(ORDER)
    error = error_of(*raw(api, "POST", "/orders", data, content_type), 415)
    assert "application/json" in error["message"]


def test_empty_body_on_post_orders(api, no_orders):
    error = error_of(*raw(api, "POST", "/orders", "", None), 415)
    assert "application/json" in error["message"]
    error = error_of(*raw(api, "POST", "/orders", "", "application/json"), 400)
    assert "JSON" in error["message"]
    error = error_of(*api.post("/orders", {}), 422)
    assert error["message"] == "lines: is required"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([ORDER], ["(body)", "must be an object"]),
        ("an order", ["(body)", "must be an object"]),
        (42, ["(body)", "must be an object"]),
        (None, ["(body)", "must be an object"]),
    ],
    ids=["array", "string", "number", "null"],
)
def test_body_must_be_an_object(api, no_orders, body, words):
    data = json.dumps(body)
    error = error_of(*raw(api, "POST", "/orders", data, "application/json"), 422)
    for word in words:
        assert word in error["message"]


def test_oversized_body_is_413(api, no_orders):
    body = order_with(note="x" * 100)
    body["lines"] = [{"sku": "SKU-A", "quantity": 1, "name": "n" * 300}] * 4000  # ~1.3 MB
    error = error_of(*raw(api, "POST", "/orders", json.dumps(body), "application/json"), 413)
    assert "too large" in error["message"]


# --- fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (order_with(line_quantity="two"), "lines[0].quantity", ["must be an integer"]),
        (order_with(line_quantity=1.5), "lines[0].quantity", ["must be an integer"]),
        (order_with(line_quantity=True), "lines[0].quantity", ["must be an integer"]),
        (order_with(line_sku=17), "lines[0].sku", ["must be a string"]),
        (order_with(lines={"sku": "SKU-A"}), "lines", ["must be a list"]),
        (order_with(lines=[]), "lines", ["must have at least 1 item"]),
        (order_with(priority="high"), "priority", ["must be an integer"]),
        (order_with(consignee="Ann"), "consignee", ["must be an object"]),
        (order_with(customer={"email": "not-an-address"}), "customer.email", ["email"]),
        (order_with(currency="euro"), "currency", ["must match the pattern"]),
        (order_with(line_colour="red"), "lines[0].colour", ["is not a known field"]),
        (order_with(colour="red"), "colour", ["is not a known field"]),
        (order_with(consignee={"address": {"zip": "1"}}), "consignee.address.zip", ["known"]),
        ({"lines": [{"quantity": 1}]}, "lines[0].sku", ["is required"]),
    ],
    ids=lambda v: None if isinstance(v, dict | list) else str(v)[:30],
)
def test_schema_errors_name_the_field(api, no_orders, body, field, words):
    error = error_of(*api.post("/orders", body), 422)
    assert error["code"] == "validation_failed"
    assert error["message"].startswith(f"{field}:"), error["message"]
    for word in words:
        assert word in error["message"]
    assert error["details"][0]["field"] == field


def test_every_schema_error_is_listed(api, no_orders):
    body = order_with(line_quantity=0, priority="high", colour="red")
    error = error_of(*api.post("/orders", body), 422)
    fields = {d["field"] for d in error["details"]}
    assert fields == {"colour", "priority", "lines[0].quantity"}


@pytest.mark.parametrize(
    ("quantity", "words"),
    [
        (0, ["lines[0].quantity", "must be at least 1"]),
        (-3, ["lines[0].quantity", "must be at least 1"]),
        (10_001, ["lines[0].quantity", "must be at most 10000"]),
        (10**30, ["lines[0].quantity", "must be at most"]),
        (10**400, ["lines[0].quantity", "too large"]),
    ],
)
def test_quantities_out_of_range(api, no_orders, quantity, words):
    data = json.dumps(order_with(line_quantity=quantity))
    error = error_of(*raw(api, "POST", "/orders", data, "application/json"), 422)
    for word in words:
        assert word in error["message"]


def test_unknown_sku_names_the_sku_and_line(api, no_orders):
    body = copy.deepcopy(ORDER)
    body["lines"].append({"sku": "SKU-NOPE", "quantity": 1, "unit_price": "1.00"})
    error = error_of(*api.post("/orders", body), 422)
    assert "line 3" in error["message"] and "SKU-NOPE" in error["message"]
    assert error["details"] == [{"field": "line 3", "problem": "unknown SKU 'SKU-NOPE'",
                                 "line": 3, "sku": "SKU-NOPE"}]


def test_stock_of_an_unknown_sku_is_refused_without_moving_anything(api):
    _, before = api.get("/stock")
    error = error_of(
        *api.post(
            "/stock/inbound",
            {
                "warehouse": "MAIN",
                "items": [{"sku": "SKU-A", "quantity": 5}, {"sku": "GHOST", "quantity": 5}],
            },
        ),
        422,
    )
    assert "line 2" in error["message"] and "GHOST" in error["message"]
    assert api.get("/stock")[1] == before


# --- money ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        # JSON numbers are read as decimals, so a long fraction is refused, not rounded.
        (
            '{"lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": 10.000000000000000001}]}',
            ["unit_price", "4 decimal places"],
        ),
        (
            '{"lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": 0.30000000000000004}]}',
            ["unit_price", "4 decimal places"],
        ),
        (order_with(line_unit_price="10.12345"), ["lines[0].unit_price"]),
        (order_with(line_unit_price=10.12345), ["unit_price", "4 decimal places"]),
        (order_with(line_unit_price="-1.00"), ["lines[0].unit_price"]),
        (order_with(line_unit_price=-1), ["lines[0].unit_price"]),
        (order_with(shipping_total=-0.5), ["shipping_total"]),
        (order_with(tax_total="1,50"), ["tax_total"]),
        (order_with(discount_total="ten"), ["discount_total"]),
        (order_with(line_unit_price="1e3"), ["lines[0].unit_price"]),
        (order_with(line_unit_price=10**13), ["lines[0].unit_price"]),
        (order_with(line_unit_price="9999999999999"), ["lines[0].unit_price"]),
        (order_with(discount_total="1000.00"), ["discount", "larger than the order"]),
    ],
    ids=[
        "long-fraction",
        "float-artifact",
        "5-places-string",
        "5-places-number",
        "negative-string",
        "negative-number",
        "negative-shipping",
        "comma",
        "word",
        "exponent",
        "huge-number",
        "huge-string",
        "discount-too-big",
    ],
)
def test_bad_money(api, no_orders, body, words):
    data = body if isinstance(body, str) else json.dumps(body)
    error = error_of(*raw(api, "POST", "/orders", data, "application/json"), 422)
    for word in words:
        assert word in error["message"]


def test_product_money_is_checked_too(api):
    error = error_of(*api.post("/products", {"sku": "P1", "name": "P", "price": 1.23456}), 422)
    assert "price" in error["message"] and "4 decimal places" in error["message"]
    error = error_of(*api.patch("/products/SKU-A", {"price": "-2"}), 422)
    assert "price" in error["message"]
    assert api.get("/products/SKU-A")[1]["price"] == "10.00"
    assert api.get("/products/P1")[0] == 404


def test_exact_decimal_money_is_kept_exactly(api):
    """The control for the money cases above: four places, as a string or a JSON number."""
    data = json.dumps(order_with(line_unit_price="0.1234")).replace(
        '"SKU-B", "quantity": 1, "unit_price": "25.50"', '"SKU-B", "quantity": 3, "unit_price": 0.1'
    )
    status, order = raw(api, "POST", "/orders", data, "application/json")
    assert status == 201, order
    assert [line["unit_price"] for line in order["lines"]] == ["0.1234", "0.10"]
    assert order["subtotal"] == "0.5468"


# --- text the database would refuse --------------------------------------------------------


def test_nul_character_in_text_is_422(api, no_orders):
    error = error_of(*api.post("/orders", order_with(note="a\u0000b")), 422)
    assert "note" in error["message"]


# --- query strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("colour=red", ["unknown query parameter", "colour"]),
        ("status=new&Status=new", ["Status"]),
        ("created_from=yesterday", ["created_from", "date-time"]),
        ("created_to=2024-13-01T00:00:00Z", ["created_to"]),
        ("paid_from=2024-01-01T10:00:00", ["paid_from", "time zone"]),
        ("page=0", ["page", "at least 1"]),
        ("page=-2", ["page", "at least 1"]),
        ("page=two", ["page", "integer"]),
        ("page=1.5", ["page", "integer"]),
        ("page=99999999999", ["page", "at most"]),
        ("per_page=0", ["per_page"]),
        ("per_page=100000", ["per_page", "at most"]),
        ("page=1&page=2", ["page", "more than once"]),
        ("amount_min=lots", ["amount_min"]),
        ("amount_min=NaN", ["amount_min"]),
        ("sort=colour", ["sort", "must be one of"]),
    ],
)
def test_bad_query_is_400(api, query, words):
    error = error_of(*api.get(f"/orders?{query}"), 400)
    assert error["code"] == "bad_query"
    for word in words:
        assert word in error["message"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/stock?low_only=maybe", ["low_only", "boolean"]),
        ("/stock/ledger?kind=theft", ["kind", "must be one of"]),
        ("/products?active=yes", ["active"]),
        ("/orders/stats?from=2024-02-30T00:00:00Z", ["from"]),
        ("/audit?page=0", ["page"]),
        ("/stock/alerts?sku=SKU-A", ["sku", "allowed: none"]),
    ],
)
def test_bad_query_elsewhere_is_400(api, path, words):
    error = error_of(*api.get(path), 400)
    for word in words:
        assert word in error["message"]


def test_stats_range_must_be_ordered(api):
    error = error_of(
        *api.get("/orders/stats?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z"), 422
    )
    assert "'from' must be before 'to'" in error["message"]


# --- things that do not exist, and transitions that cannot happen ---------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/orders/SO-999999", None),
        ("PATCH", "/orders/SO-999999", {"note": "x"}),
        ("POST", "/orders/SO-999999/cancel", {}),
        ("POST", "/orders/SO-999999/allocate", None),
        ("GET", "/orders/SO-999999/history", None),
    ],
)
def test_unknown_order_is_404(api, method, path, body):
    error = error_of(*api.call(method, path, body), 404)
    assert "SO-999999" in error["message"]


def test_other_tenants_order_is_404(api):
    status, order = api.post("/orders", ORDER)
    assert status == 201
    error = error_of(*api.get(f"/orders/{order['number']}", token=api.tokens["stranger"]), 404)
    assert order["number"] in error["message"]


def test_unknown_route_and_method(api):
    error_of(*api.get("/nothing-here"), 404)
    status, body = api.call("PUT", "/orders")
    error = error_of(status, body, 405)
    assert error["code"] == "method_not_allowed"


def test_cancelling_twice_is_409_with_the_reason(api):
    status, order = api.post("/orders", ORDER)
    assert status == 201
    number = order["number"]
    assert api.post(f"/orders/{number}/cancel", {"reason": "customer asked"})[0] == 200
    error = error_of(*api.post(f"/orders/{number}/cancel", {}), 409)
    assert error["code"] == "illegal_transition"
    assert number in error["message"] and "it is cancelled" in error["message"]
    assert error["details"] == {"status": "cancelled", "wanted": "cancelled"}
    error = error_of(*api.patch(f"/orders/{number}", {"note": "too late"}), 409)
    assert "cancelled" in error["message"]
    # Stock released once, not twice.
    _, stock = api.get("/stock?sku=SKU-A&warehouse=MAIN")
    assert stock["items"][0]["reserved"] == 0


# --- who may ask ---------------------------------------------------------------------------


def test_missing_or_bad_token_is_401(api):
    response = api.client.get("/api/v1/orders")
    error = error_of(response.status_code, response.get_json(), 401)
    assert "Bearer" in error["message"]
    error = error_of(*api.get("/orders", token="oh_not-a-real-token"), 401)
    assert "not valid" in error["message"]


def test_forbidden_names_the_permission(api):
    error = error_of(*api.post("/orders", ORDER, token=api.tokens["analyst"]), 403)
    assert "analyst" in error["message"] and "orders.write" in error["message"]


@pytest.mark.parametrize(
    ("path", "field", "problem"),
    [
        ("/orders?page=0", "page", "must be at least 1"),
        ("/orders?page=1000001", "page", "must be at most 1000000"),
        ("/orders?page=two", "page", "must be an integer"),
        ("/orders?page=1&page=2", "page", "is given more than once"),
        ("/orders?per_page=501", "per_page", "must be at most 500"),
        ("/orders?amount_min=1.23456", "amount_min",
         "must be a decimal such as 19.99 (at most 12 digits and 4 decimals)"),
        ("/orders?created_from=2026-13-01", "created_from",
         "must be an ISO 8601 date-time with a time zone (2026-03-02T08:00:00Z) or a day"
         " (2026-03-02)"),
        ("/orders?q=" + "x" * 501, "q", "must be at most 500 characters long"),
        ("/orders?q=a%00b", "q", "contains a NUL character"),
        ("/orders?status=new,nope", "status", "must list items from: "),
        ("/orders?sort=colour", "sort", "must be one of: "),
        ("/stock?low_only=maybe", "low_only", "must be a boolean (true or false)"),
        ("/inbox?connection=2147483648", "connection", "is too large"),
    ],
)
def test_each_query_refusal_names_its_parameter_and_rule(api, path, field, problem):
    error = error_of(*api.get(path), 400)
    assert error["code"] == "bad_query"
    assert error["message"].startswith(f"query parameter {field!r} {problem}")
    (detail,) = error["details"]
    assert detail["field"] == field and detail["problem"].startswith(problem)
    assert detail["problem"] == error["message"].removeprefix(f"query parameter {field!r} ")


def test_unknown_query_parameters_are_each_named_with_what_is_allowed(api):
    error = error_of(*api.get("/stock/alerts?sku=SKU-A&colour=red"), 400)
    assert error["message"] == "unknown query parameter(s) colour, sku; allowed: none"
    assert error["details"] == [
        {"field": "colour", "problem": "is not a known query parameter"},
        {"field": "sku", "problem": "is not a known query parameter"},
    ]
    error = error_of(*api.get("/audit?colour=red"), 400)
    assert error["message"].startswith(
        "unknown query parameter(s) colour; allowed: action, actor, entity_id, entity_type")


def test_json_numbers_are_read_as_integers_or_decimals_within_scale():
    from decimal import Decimal

    from hub.web.api import framework

    out_of_scale = framework._OutOfScale
    assert framework._number("3.0") == 3 and type(framework._number("3.0")) is int
    assert framework._number("3.50") == Decimal("3.50")
    assert type(framework._number("999999999999999999.0")) is int  # 18 digits
    assert framework._number("1000000000000000000.0") == Decimal("1E+18")
    assert type(framework._number("1000000000000000000.0")) is Decimal
    assert framework._number("1E+30") == Decimal("1E+30")
    assert not isinstance(framework._number("1E+30"), out_of_scale)
    assert isinstance(framework._number("1E+31"), out_of_scale)
    assert framework._number("1E-30") == Decimal("1E-30")
    assert not isinstance(framework._number("1E-30"), out_of_scale)
    assert isinstance(framework._number("1E-31"), out_of_scale)
    assert framework._integer("1" + "0" * 30) == 10**30
    assert framework._integer("-1" + "0" * 30) == -(10**30)
    assert isinstance(framework._integer("1" + "0" * 31), out_of_scale)
    with pytest.raises(ValueError, match=r"^NaN is not a number JSON allows$"):
        framework._no_constant("NaN")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_415(api, content_type):
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.post("/api/v1/orders", data=b'{"lines": []}', headers=headers)
    assert response.status_code == 415
    assert response.get_json()["error"] == {
        "code": "unsupported_media_type", "message": "send the body as application/json",
        "details": []}


def test_an_integer_written_with_more_digits_than_any_field_holds_is_named(api):
    body = json.dumps(ORDER).replace('"quantity": 2', '"quantity": 1' + "0" * 40)
    response = api.client.post("/api/v1/orders", data=body, headers={
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0] == {
        "field": "lines[0].quantity",
        "problem": "is not a number the hub can use (too large or too precise)"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"lines": [', "the body is not valid JSON: Expecting value: line 1 column 12 (char 11)"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is nested too deeply"),
    ],
)
def test_a_body_that_cannot_be_read_is_400_malformed_json(api, body, message):
    response = api.client.post("/api/v1/orders", data=body, headers={
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"] == {"code": "malformed_json", "message": message,
                                            "details": []}


def test_a_lone_surrogate_in_a_body_is_named_with_its_field(api):
    body = json.dumps({**ORDER, "note": "@"}).replace('"@"', '"a\\ud800b"')
    response = api.client.post("/api/v1/orders", data=body, headers={
        "Authorization": f"Bearer {api.token}", "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [
        {"field": "note", "problem": "contains a lone UTF-16 surrogate"}]


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False),
     ("0", False), ("yes", None), ("", None), ("2", None)],
)
def test_a_boolean_query_parameter_takes_true_false_1_and_0(raw, value):
    from hub.web.api.framework import ApiError, Param

    flag = Param("low_only", "boolean")
    if value is None:
        with pytest.raises(ApiError, match="must be a boolean"):
            flag.parse(raw)
    else:
        assert flag.parse(raw) is value


def test_a_body_too_deep_for_a_uniqueness_check_is_400_not_500(api, no_orders):
    """The parser takes 900 levels; comparing two such lists for ``uniqueItems`` recurses
    past Python's limit inside the schema check, which must still answer as for the parser."""
    deep = "[" * 900 + "]" * 900
    data = '{"plugin": "stub", "name": "deep", "settings": {}, "services": [' + deep + ","
    data += deep + "]}"
    status, body = raw(api, "POST", "/carrier-accounts", data, "application/json")
    assert (status, body) == (400, {"error": {
        "code": "malformed_json", "message": "the body is nested too deeply", "details": []}})
    assert api.get("/carrier-accounts")[1]["items"] == []


@pytest.mark.parametrize(("count", "said"), [(49, "49 more problems"),
                                              (50, "at least 50 more problems"),
                                              (60, "at least 50 more problems")])
def test_the_message_counts_the_problems_and_says_when_it_stopped_counting(
    api, no_orders, count, said
):
    """Texts the database cannot store are looked for up to the details' cap (50); a count
    that reached it is a floor, and the message says so. ``tags`` is no field of an order:
    one problem more, after them."""
    body = order_with(tags=["\x00"] * count)
    status, answer = raw(api, "POST", "/orders", json.dumps(body), "application/json")
    error = error_of(status, answer, 422)
    assert error["message"] == f"tags[0]: contains a NUL character (and {said})"
    assert len(error["details"]) == min(count + 1, 50)
