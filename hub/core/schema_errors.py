"""JSON Schema failures described by field and rule, never by value.

jsonschema's own messages quote the instance (``'<a secret>' is not of type 'integer'``): a
tenant's settings may hold a secret, a body may hold anything, and an error must never echo
either back. Every place that explains a schema failure to a person (request bodies, plugin
settings, config files) goes through ``problems`` so the wording is the same everywhere and
no value leaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import ValidationError

from hub.core.times import RANGE_TEXT

# How many problems one answer lists, and how long a field path may be when shown.
MAX_PROBLEMS = 20
MAX_FIELD = 200
MAX_KEY = 64


def field_of(error: ValidationError, root: str = "") -> str:
    """``lines[0].sku`` style path of the failing value; ``root`` (or "(body)") for the top."""
    out = root
    for part in error.absolute_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{_key(part)}" if out else _key(part)
    return _cap(out or "(body)", MAX_FIELD)


def rule_of(error: ValidationError) -> str:
    """What the value should have been, from the schema alone."""
    keyword, expected, schema = error.validator, error.validator_value, error.schema
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "must be " + " or ".join(_article(str(k)) for k in kinds)
    if keyword == "enum":
        return "must be one of: " + _cap(", ".join(map(_shown, expected)), 300)
    if keyword == "const":
        return f"must be {_shown(expected)}"
    if keyword == "pattern":
        return f"must match the pattern {_cap(str(expected), 120)}"
    if keyword == "format" and expected == "date-time":
        return f"must be an ISO 8601 date-time with a time zone, {RANGE_TEXT}"
    if keyword == "format" and expected == "date":
        return f"must be a day (YYYY-MM-DD) {RANGE_TEXT}"
    if keyword == "format":
        return f"must be a valid {expected}"
    if keyword == "minLength":
        return f"must be at least {expected} character{_s(expected)} long"
    if keyword == "maxLength":
        return f"must be at most {expected} character{_s(expected)} long"
    if keyword == "minimum":
        return f"must be at least {expected}"
    if keyword == "maximum":
        return f"must be at most {expected}"
    if keyword == "exclusiveMinimum":
        return f"must be greater than {expected}"
    if keyword == "exclusiveMaximum":
        return f"must be less than {expected}"
    if keyword == "multipleOf":
        return f"must be a multiple of {expected}"
    if keyword == "minItems":
        return f"must have at least {expected} item{_s(expected)}"
    if keyword == "maxItems":
        return f"must have at most {expected} item{_s(expected)}"
    if keyword == "uniqueItems":
        return "must not repeat an item"
    if keyword == "minProperties":
        return f"must have at least {expected} field{_s(expected)}"
    if keyword == "maxProperties":
        return f"must have at most {expected} field{_s(expected)}"
    if keyword == "required":
        return "is required"
    if keyword in ("additionalProperties", "unevaluatedProperties"):
        return "is not a known field"
    if keyword == "propertyNames":
        return "has a field name that is not allowed"
    if keyword in ("anyOf", "oneOf"):
        hint = schema.get("description") if isinstance(schema, Mapping) else None
        return f"is not valid: {hint}" if hint else "does not match any of the allowed forms"
    if keyword == "not":
        return "is not allowed here"
    if keyword == "dependentRequired":
        return "needs other fields it depends on"
    return f"breaks the schema rule {keyword!r}"


def problems(
    errors: Iterable[ValidationError], *, root: str = "", limit: int = MAX_PROBLEMS
) -> list[dict[str, str]]:
    """One ``{"field", "problem"}`` per failure (shallowest first, at most ``limit``): a
    missing or unknown field is reported at its own path, so a form can mark it."""
    out: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    ordered = sorted(errors, key=lambda e: (len(e.absolute_path), [str(p) for p in e.path]))
    for error in ordered:
        for entry in _entries(error, root):
            key = (entry["field"], entry["problem"])
            if key in seen:
                continue
            seen.add(key)
            out.append(entry)
            if len(out) >= limit:
                return out
    return out


def summary(
    found: list[dict[str, str]], *, total: int | None = None, at_least: bool = False
) -> str:
    """One line for ``message``: the first problem, and how many more there are (``at
    least`` that many when the search for problems stopped at a cap)."""
    if not found:
        return "the value is not valid"
    first = f"{found[0]['field']}: {found[0]['problem']}"
    more = (total if total is not None else len(found)) - 1
    if more <= 0:
        return first
    return f"{first} (and {'at least ' if at_least else ''}{more} more problem{_s(more)})"


def _entries(error: ValidationError, root: str) -> list[dict[str, str]]:
    where = field_of(error, root)
    keyword, instance = error.validator, error.instance
    if keyword == "required" and isinstance(instance, Mapping):
        missing = [p for p in error.validator_value if p not in instance]
        return [{"field": _join(where, str(p), root), "problem": "is required"} for p in missing]
    if keyword == "dependentRequired" and isinstance(instance, Mapping):
        # One field present needs others: name each missing one, and the field that needs it.
        return [
            {"field": _join(where, str(dep), root), "problem": f"is required with {_key(key)}"}
            for key, deps in error.validator_value.items()
            if key in instance
            for dep in deps
            if dep not in instance
        ] or [{"field": where, "problem": rule_of(error)}]
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(
        instance, Mapping
    ):
        extra = _unknown_keys(error.schema, instance)
        if extra:
            return [
                {"field": _join(where, key, root), "problem": "is not a known field"}
                for key in extra
            ]
    return [{"field": where, "problem": rule_of(error)}]


def _unknown_keys(schema: Any, instance: Mapping[str, Any]) -> list[str]:
    if not isinstance(schema, Mapping):
        return []
    known = set(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    return [
        str(k)
        for k in instance
        if k not in known and not any(re.search(p, str(k)) for p in patterns)
    ]


def _join(where: str, key: str, root: str) -> str:
    base = "" if where == (root or "(body)") and not root else where
    return _cap(f"{base}.{_key(key)}" if base else _key(key), MAX_FIELD)


def _key(part: Any) -> str:
    return _cap(str(part), MAX_KEY)


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: Any) -> str:
    return "null" if value is None else str(value)


def _article(kind: str) -> str:
    names = {"object": "an object", "array": "a list", "null": "null", "integer": "an integer"}
    return names.get(kind, f"a {kind}")


def _s(n: Any) -> str:
    return "" if n == 1 else "s"
