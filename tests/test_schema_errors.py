"""Schema failures are explained by field and rule; the failing value is never repeated."""

from __future__ import annotations

from jsonschema import Draft202012Validator

from hub.core import schema_errors

SECRET = "s3cr3t-value-that-must-not-leak"
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["partner_id", "mode"],
    "properties": {
        "partner_id": {"type": "integer", "maximum": 10},
        "mode": {"enum": ["live", "test"]},
        "name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
        "lines": {
            "type": "array",
            "items": {"type": "object", "required": ["sku"], "properties": {"sku": {}}},
        },
    },
}


def explain(instance: object, **kw: object) -> list[dict[str, str]]:
    return schema_errors.problems(Draft202012Validator(SCHEMA).iter_errors(instance), **kw)


def test_every_problem_is_listed_by_field_without_the_value() -> None:
    found = explain({"partner_id": SECRET, "name": SECRET, "extra": SECRET, "lines": [{}]})
    assert {"field": "partner_id", "problem": "must be an integer"} in found
    assert {"field": "mode", "problem": "is required"} in found
    assert {"field": "extra", "problem": "is not a known field"} in found
    assert {"field": "lines[0].sku", "problem": "is required"} in found
    assert {"field": "name", "problem": "must be at most 3 characters long"} in found
    assert {"field": "name", "problem": "must match the pattern ^[a-z]+$"} in found
    assert SECRET not in repr(found)
    assert SECRET not in schema_errors.summary(found)


def test_enum_and_bounds_name_the_rule() -> None:
    found = explain({"partner_id": 11, "mode": SECRET}, root="settings")
    assert {"field": "settings.partner_id", "problem": "must be at most 10"} in found
    assert {"field": "settings.mode", "problem": "must be one of: live, test"} in found


def test_the_summary_counts_the_rest_and_the_list_is_capped() -> None:
    found = explain({"partner_id": "x", "name": 5, "extra": 1}, limit=2)
    assert len(found) == 2
    assert schema_errors.summary(found, total=3).endswith("(and 2 more problems)")
    assert schema_errors.summary([]) == "the value is not valid"
