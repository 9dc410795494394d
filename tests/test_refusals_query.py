"""Tests that refuse: query parameters, each kind at its boundary, with the exact words a
caller reads. Plain units, no database: ``Param`` is what every list route parses with."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hub.web.api.framework import MAX_QUERY_TEXT, ApiError, Param


def refusal(param: Param, raw: str) -> tuple[int, str, str, list[dict[str, str]]]:
    with pytest.raises(ApiError) as caught:
        param.parse(raw)
    error = caught.value
    return error.status, error.code, error.message, error.details


def test_a_text_may_be_as_long_as_the_limit_and_not_a_character_longer() -> None:
    sku = Param("sku")
    assert sku.parse("x" * MAX_QUERY_TEXT) == "x" * MAX_QUERY_TEXT
    problem = f"must be at most {MAX_QUERY_TEXT} characters long"
    assert refusal(sku, "x" * (MAX_QUERY_TEXT + 1)) == (
        400, "bad_query", f"query parameter 'sku' {problem}", [{"field": "sku", "problem": problem}]
    )


def test_a_day_starts_a_range_at_its_midnight_and_ends_it_at_the_next() -> None:
    assert Param("created_from", "date-time").parse("2026-03-02") == datetime(
        2026, 3, 2, tzinfo=UTC
    )
    # An upper bound is exclusive: the whole of 2 March is in.
    assert Param("created_to", "date-time", end=True).parse("2026-03-02") == datetime(
        2026, 3, 3, tzinfo=UTC
    )
    # An instant is taken as it is, whichever end it bounds.
    assert Param("created_to", "date-time", end=True).parse("2026-03-02T08:00:00+01:00") == (
        datetime(2026, 3, 2, 7, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("param", "raw", "problem"),
    [
        (Param("page", "integer"), "two", "must be an integer"),
        (Param("low_only", "boolean"), "yes", "must be a boolean (true or false)"),
        (Param("amount_min", "decimal"), "1.23456",
         "must be a decimal such as 19.99 (at most 12 digits and 4 decimals)"),
        (Param("from", "date-time"), "yesterday",
         "must be an ISO 8601 date-time with a time zone (2026-03-02T08:00:00Z) or a day"
         " (2026-03-02)"),
        (Param("sort", enum=("number", "-number")), "total", "must be one of: number, -number"),
        (Param("status", enum=("new", "held"), many=True), "new,lost",
         "must list items from: new, held"),
        (Param("per_page", "integer", minimum=1, maximum=500), "0", "must be at least 1"),
        (Param("per_page", "integer", minimum=1, maximum=500), "501", "must be at most 500"),
    ],
)
def test_each_kind_of_parameter_says_what_it_must_be(param: Param, raw: str, problem: str) -> None:
    assert refusal(param, raw) == (
        400, "bad_query", f"query parameter {param.name!r} {problem}",
        [{"field": param.name, "problem": problem}],
    )


def test_the_values_at_each_bound_are_taken() -> None:
    per_page = Param("per_page", "integer", minimum=1, maximum=500)
    assert (per_page.parse("1"), per_page.parse("500")) == (1, 500)
    assert Param("amount_min", "decimal").parse("999999999999.9999") == Decimal(
        "999999999999.9999"
    )
    assert Param("status", enum=("new", "held"), many=True).parse("new,held") == "new,held"
    flag = Param("low_only", "boolean")
    assert [flag.parse(v) for v in ("true", "TRUE", "1", "false", "False", "0")] == [
        True, True, True, False, False, False
    ]
