"""A fixed list of extreme inputs sent to every write route and every date or number filter,
on both databases: nothing may answer 500, and afterwards every read route still answers.

The routes and one valid request for each come from the permission table (``SAMPLES``), so a
new route is covered as soon as it has its sample. Each extreme replaces one field of that
valid request at a time, as raw JSON text, so even what ``json.dumps`` cannot write (a lone
surrogate escape, ``1E+999999999``, 100,000 levels of nesting) reaches the hub.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Api
from test_permissions import SAMPLES, Acme, Request, config_dir  # noqa: F401  (the fixture)

from hub.web.api.framework import ROUTES

pytestmark = pytest.mark.slow

MARK = "__extreme__"
DEEP = "[" * 100_000 + "]" * 100_000
# One JSON value each, as raw text.
VALUES = [
    '"9999-12-31T23:59:59-14:00"',
    '"9999-12-31T23:59:59+14:00"',
    '"0001-01-01T00:00:00+14:00"',
    '"0001-01-01T00:00:00-14:00"',
    '"2999-12-31T09:59:59-14:00"',  # the last second in range: may be stored
    '"1900-01-01T13:59:59+14:00"',  # before the first second in UTC
    '"9999-12-31"',
    "1E+999999999",
    "-1E+999999999",
    "1E-999999999",
    '"a\\u0000b"',
    '"\\ud800"',
    '"' + "x" * 100_000 + '"',
    "1" * 5000,
]
# Whole bodies.
BODIES = [DEEP, '{"a":' * 50_000 + "1" + "}" * 50_000, '"\\ud800"', "1E+999999999", '"\\u0000"']
CSV_BODIES = [
    b"warehouse,sku,quantity\nMAIN,SKU-A,1E+999999999\n",
    b"warehouse,sku,quantity\nMAIN,SKU-A,99999999999999999999999\n",
    b"warehouse,sku,quantity\nMAIN,SKU\x00A,1\n",
    b"warehouse,sku,quantity\nMAIN,\xed\xa0\x80,1\n",  # a surrogate, encoded
    b"warehouse,sku,quantity,reason\nMAIN," + b"x" * 100_000 + b",1," + b"y" * 100_000 + b"\n",
]
QUERY_VALUES = {
    "date-time": [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31",
        "0001-01-01",
        "2999-12-31T23:59:59Z",
    ],
    "decimal": ["1E+999999999", "NaN", "Infinity", "9" * 5000, "999999999999.9999"],
    "integer": ["1E+999999999", "9" * 5000, "-99999999999999999999", "NaN"],
    "string": ["\x00", "x" * 10_000],
}


def _send(api: Api, method: str, path: str, data: bytes | str, content_type: str) -> int:
    response = api.client.open(
        f"/api/v1{path}",
        method=method,
        data=data,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": content_type},
    )
    return response.status_code


def _variants(body: Any, schema: dict[str, Any] | None) -> list[str]:
    """The body as JSON text, with each of its fields, each field its schema declares, and
    the fields of its first nested object or list item, holding each extreme value in turn."""
    if not isinstance(body, dict):
        return []
    declared = (schema or {}).get("properties", {})
    places: list[tuple[dict[str, Any], str]] = [(body, key) for key in {**declared, **body}]
    for value in body.values():
        inner = value[0] if isinstance(value, list) and value else value
        if isinstance(inner, dict):
            places += [(inner, key) for key in inner]
    out = []
    for holder, key in places:
        saved = holder.get(key, MARK)
        holder[key] = MARK
        text = json.dumps(body)
        if saved is MARK:
            del holder[key]
        else:
            holder[key] = saved
        out += [text.replace(f'"{MARK}"', value) for value in VALUES]
    return out


def test_extreme_input_never_breaks_the_hub(api: Api):
    acme = Acme(api)
    broken: list[str] = []

    def check(status: int, what: str) -> None:
        if status >= 500:
            broken.append(f"{status}: {what[:200]}")

    # Writes: every route, one field at a time, then whole bodies.
    for route in ROUTES:
        if route.method == "GET":
            continue
        req: Request = SAMPLES[(route.method, route.rule)].make(acme)
        if req.csv is not None:
            for data in CSV_BODIES:
                check(_send(api, req.method, req.path, data, "text/csv"), f"{req.path} {data!r}")
            continue
        for text in _variants(req.body, route.body) + (BODIES if route.body else []):
            check(_send(api, req.method, req.path, text, "application/json"), f"{req.path} {text}")

    # Reads: every date and number filter (and text ones) with each extreme value.
    for route in ROUTES:
        if route.method != "GET":
            continue
        req = SAMPLES[(route.method, route.rule)].make(acme)
        base = req.path.split("?")[0]
        for param in route.query:
            for value in QUERY_VALUES.get(param.type, []):
                path = f"{base}?{param.name}={quote(value)}"
                check(api.client.get(f"/api/v1{path}", headers=_auth(api)).status_code, path)

    # Afterwards, whatever was stored, every read route answers.
    for route in ROUTES:
        if route.method == "GET":
            req = SAMPLES[(route.method, route.rule)].make(acme)
            status, body = api.get(req.path)
            check(status, f"afterwards {req.path}: {body}")
    assert not broken, "\n".join(broken)


def _auth(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}"}
