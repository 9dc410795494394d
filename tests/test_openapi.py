"""The OpenAPI document matches the routes the app serves, and requests generated from it
(schemathesis, through the WSGI app) never make the server fail."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import schemathesis
from conftest import ORDER, Api
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from plugins.carriers import table_rate

DOC = "/api/v1/openapi.json"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Per operation and database (about 70 operations on 2 databases keep the suite under ten
# minutes); raise it (ORDERHUB_FUZZ_EXAMPLES=500) for a longer hunt.
EXAMPLES = int(os.environ.get("ORDERHUB_FUZZ_EXAMPLES", "12"))


def served_operations(app: Flask) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule == DOC:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        out |= {(method, path) for method in (rule.methods or set()) - IGNORED_METHODS}
    return out


def test_the_document_is_public_and_lists_exactly_the_served_routes(
    app: Flask, client: FlaskClient
):
    response = client.get(DOC)  # no token
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")

    documented = {
        (method.upper(), path) for path, operations in doc["paths"].items() for method in operations
    }
    served = served_operations(app)
    assert len(served) > 30  # the API's routes are all registered
    assert sorted(served - documented) == [], "served but not documented"
    assert sorted(documented - served) == [], "documented but not served"


@pytest.mark.slow
def test_generated_requests_never_get_a_server_error(app: Flask, api: Api):
    """Schemathesis generates requests from the document. Most path values, SKUs in lines
    and items, warehouse codes and merged order numbers are swapped for ones that exist, so
    requests reach the services instead of stopping at a 404 or an unknown SKU."""
    numbers = [api.post("/orders", ORDER)[1]["number"] for _ in range(3)]
    status, account = api.post(
        "/carrier-accounts",
        {"plugin": "table_rate", "name": "fuzz-rates", "settings": table_rate.EXAMPLE_SETTINGS},
    )
    assert status == 201, account
    shipped = api.post(
        f"/orders/{api.post('/orders', ORDER)[1]['number']}/shipments",
        {"carrier_account": account["id"], "service": "ground"},
    )[1]
    status, returned = api.post(
        "/returns",
        {"order": shipped["order"], "lines": [{"sku": "SKU-A", "quantity": 2}], "reason": "fuzz"},
    )
    assert status == 201, returned
    path_values = {
        "number": numbers,
        "return_id": [returned["id"]],
        "sku": ["SKU-A", "SKU-B", "SKU-C"],
        "code": ["MAIN", "WEST"],
        "username": ["operator", "analyst"],
        "account_id": [account["id"]],
        "shipment_id": [shipped["id"]],
        "connection_id": [
            api.post(
                "/connections",
                {"plugin": "shopify", "name": "fuzz", "settings": {"secret": "fuzz-secret"}},
            )[1]["id"]
        ],
    }
    schema = schemathesis.openapi.from_wsgi(DOC, app)
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    # Reads and creations first: PATCH and DELETE deactivate and remove what the rest use.
    operations.sort(key=lambda op: ["GET", "POST", "PATCH", "DELETE"].index(op.method.upper()))

    def existing(generated: Any, real: list[str], data: st.DataObject) -> Any:
        return data.draw(st.sampled_from([generated, *real, *real]))

    def steer(value: Any, data: st.DataObject, in_list: bool = False) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "warehouse" and isinstance(item, str):
                    out[key] = existing(item, ["MAIN", "WEST"], data)
                elif key == "sku" and in_list and isinstance(item, str):
                    out[key] = existing(item, ["SKU-A", "SKU-B", "SKU-C"], data)
                elif key == "numbers" and data.draw(st.booleans()):
                    out[key] = data.draw(st.lists(st.sampled_from(numbers), min_size=2))
                else:
                    out[key] = steer(item, data, in_list)
            return out
        if isinstance(value, list):
            return [steer(item, data, True) for item in value]
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            # JSON Schema counts 3.0 as an integer; the API does not (reported), so send 3.
            return int(value)
        return value

    csv_rows = st.lists(
        st.tuples(
            st.sampled_from(["MAIN", "WEST", "NOPE", ""]),
            st.sampled_from(["SKU-A", "SKU-B", "SKU-C", "NOPE", ""]),
            st.one_of(st.integers(-5, 50).map(str), st.sampled_from(["", "x", "1.5"])),
            st.sampled_from(["", "recount", '"quoted, reason"']),
        ),
        max_size=4,
    ).map(
        lambda rows: "warehouse,sku,quantity,reason\n" + "".join(",".join(r) + "\n" for r in rows)
    )

    def fuzz(strategy: st.SearchStrategy[schemathesis.Case], examples: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, data=st.data())
        def run(case: schemathesis.Case, data: st.DataObject) -> None:
            for name, value in (case.path_parameters or {}).items():
                if name in path_values:
                    case.path_parameters[name] = existing(value, path_values[name], data)
            if isinstance(case.body, dict | list):
                case.body = steer(case.body, data)
            elif case.media_type == "text/csv" and data.draw(st.booleans()):
                case.body = data.draw(csv_rows)
            response = case.call(headers=headers)
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

        run()

    for operation in operations:
        # Valid requests, then fewer that break the schema (wrong types, missing fields …).
        fuzz(operation.as_strategy(), EXAMPLES)
        fuzz(
            operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
            EXAMPLES // 2,
        )


# Raw query values of every kind, right and wrong, for the agreement test below.
QUERY_SAMPLES = (
    "1", "0", "-1", "500", "501", "1000000", "1000001", "2147483647", "2.5", "nan", "abc", "",
    "true", "false", "TRUE", "yes", "2026-03-02", "2026-03-02T08:00:00Z", "2026-03-02T08:00:00",
    "2026-13-02", "19.99", "19.99999", "1234567890123.5", "x" * 500, "x" * 501,
)


def _typed(kind: str, raw: str) -> Any:
    """The JSON value a client following the document would mean by ``raw``."""
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean" and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    return raw


def test_every_query_parameter_s_schema_accepts_exactly_what_the_api_accepts(
    client: FlaskClient,
):
    """A client generated from the document sends what the document allows; the API must
    take exactly that. Each documented query parameter's schema is checked against the
    parameter's own parsing, on values of every kind and on every enum value and list."""
    from jsonschema import Draft202012Validator

    from hub.web.api.framework import FORMATS, MAX_ID, ROUTES, ApiError

    doc = client.get(DOC).get_json()
    checked = 0
    for route in ROUTES:
        path = "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.rule)
        documented = {
            p["name"]: p["schema"]
            for p in doc["paths"][path][route.method.lower()].get("parameters", [])
            if p["in"] == "query"
        }
        assert set(documented) == {p.name for p in route.query}, path
        for param in route.query:
            kind = {"date-time": "string", "decimal": "string"}.get(param.type, param.type)
            assert documented[param.name].get("type") == kind, (path, param.name)
            validator = Draft202012Validator(documented[param.name], format_checker=FORMATS)
            samples = list(QUERY_SAMPLES)
            if param.enum:
                samples += [*param.enum, ",".join(param.enum), param.enum[0] + ",",
                            param.enum[0] + ",nope", "nope"]
            for raw in samples:
                try:
                    parsed = param.parse(raw)
                    accepted = True
                except ApiError:  # a refusal; anything else raised is a bug and fails here
                    accepted = False
                typed = _typed(param.type, raw)
                if param.type == "integer" and isinstance(typed, int) and abs(typed) > MAX_ID:
                    continue  # beyond any id: the document leaves it to the 400
                said = validator.is_valid(typed)
                assert said is accepted, (path, param.name, raw[:40], said)
                if accepted and param.type == "date-time" and len(raw) == 10 and param.end:
                    assert parsed.isoformat() == "2026-03-03T00:00:00+00:00"  # the whole day
                checked += 1
    assert checked > 1000
