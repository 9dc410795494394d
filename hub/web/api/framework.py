"""How an API route is declared: its permission, body schema and query parameters live beside
the view, so authentication, validation, the transaction and the OpenAPI document all come
from one declaration and cannot drift apart."""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import fastjsonschema
from flask import Blueprint, current_app, request
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from hub.core import auth, schema_errors, times
from hub.core.errors import HubError, line_problem
from hub.runtime import Runtime
from hub.settings import TenantSettings
from hub.web.errors import MAX_DETAILS

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Ids and integer parameters beyond this are no record of ours: ids are 32-bit integer
# columns, and PostgreSQL refuses to compare them with anything larger.
MAX_ID = 2**31 - 1


class ApiError(HubError):
    """An error raised by the HTTP layer itself (auth, malformed request …)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.status, self.code = status, code


# Query texts beyond this are no filter of ours; a decimal is what a Money column holds.
MAX_QUERY_TEXT = 500
DECIMAL_PATTERN = r"^\d{1,12}(\.\d{1,4})?$"
# JSON numbers further from 1 than this (in powers of ten) are no amount, quantity or id of
# ours, and Python's decimal context would overflow on them (``1E+999999999``).
MAX_EXPONENT = 30
# Schema failures collected from one body, at most: enough to show every problem a person
# fixes in one go, without walking a huge bad body to its end.
MAX_ERRORS = 200


@dataclass(frozen=True)
class Param:
    """A query parameter. A ``date-time`` takes an instant with its offset or a plain day
    (``2026-01-02``): the start of that day in UTC, or with ``end`` (an exclusive upper
    bound) the start of the next, so the whole day is in. With ``many`` the value is a
    comma-separated list, each item one of ``enum``."""

    name: str
    type: str = "string"  # string | integer | boolean | date-time | decimal
    description: str = ""
    enum: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    end: bool = False
    many: bool = False

    def schema(self) -> dict[str, Any]:
        if self.type == "date-time":
            s: dict[str, Any] = {
                "type": "string",
                "anyOf": [{"format": "date-time"}, {"format": "date"}],
            }
        elif self.type == "decimal":
            s = {"type": "string", "pattern": DECIMAL_PATTERN}
        elif self.type == "string":
            s = {"type": "string", "maxLength": MAX_QUERY_TEXT}
        else:
            s = {"type": self.type}
        if self.enum and self.many:
            one = "|".join(re.escape(e) for e in self.enum)
            s["pattern"] = f"^({one})(,({one}))*$"
        elif self.enum:
            s["enum"] = list(self.enum)
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s

    def refuse(self, rule: str) -> ApiError:
        return ApiError(
            400,
            "bad_query",
            f"query parameter {self.name!r} {rule}",
            [{"field": self.name, "problem": rule}],
        )

    def parse(self, raw: str) -> Any:
        try:
            value = self._convert(raw)
        except times.OutOfRange as exc:
            raise self.refuse(str(exc)) from None
        except (ValueError, InvalidOperation):  # Decimal("x") raises the latter
            raise self.refuse(f"must be {_KINDS[self.type]}") from None
        if self.enum:
            items = value.split(",") if self.many else [value]
            if any(item not in self.enum for item in items):
                raise self.refuse(
                    ("must list items from: " if self.many else "must be one of: ")
                    + ", ".join(self.enum)
                )
        if self.minimum is not None and value < self.minimum:
            raise self.refuse(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise self.refuse(f"must be at most {self.maximum}")
        if self.type == "integer" and abs(value) > MAX_ID:
            raise self.refuse("is too large")
        return value

    def _convert(self, raw: str) -> Any:
        if self.type == "integer":
            return int(raw)
        if self.type == "decimal":
            if not re.fullmatch(DECIMAL_PATTERN, raw):
                raise ValueError  # parse() words the refusal
            return Decimal(raw)
        if self.type == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError  # parse() words the refusal
            return raw.lower() in ("true", "1")
        if self.type == "date-time":
            if len(raw) == 10:
                start = times.day_start(times.parse_day(raw))
                return start + timedelta(days=1) if self.end else start
            return times.parse_instant(raw)
        if len(raw) > MAX_QUERY_TEXT:
            raise ValueError  # parse() words the refusal
        return raw


_KINDS = {
    "integer": "an integer",
    "decimal": "a decimal such as 19.99 (at most 12 digits and 4 decimals)",
    "boolean": "a boolean (true or false)",
    "date-time": "an ISO 8601 date-time with a time zone (2026-03-02T08:00:00Z) or a day"
    " (2026-03-02)",
    "string": f"at most {MAX_QUERY_TEXT} characters long",
}


PAGING = (
    Param("page", "integer", "page number, from 1", minimum=1, maximum=1_000_000),
    Param("per_page", "integer", "items per page", minimum=1, maximum=500),
)


@dataclass
class Route:
    rule: str
    method: str
    endpoint: str
    permission: str | None
    summary: str
    tag: str
    body: dict[str, Any] | None
    query: tuple[Param, ...]
    status: int
    list_response: bool
    body_kind: str = "json"
    validator: Draft202012Validator | None = field(default=None, repr=False)
    # The same schema compiled to Python by fastjsonschema: ~30x quicker on valid bodies,
    # which is nearly all of them; jsonschema explains the rest.
    fast_check: Callable[[Any], Any] | None = field(default=None, repr=False)
    # The view itself, so the web admin's pages run the very same code (see ``invoke``).
    fn: Callable[..., Any] | None = field(default=None, repr=False)


ROUTES: list[Route] = []
BY_ENDPOINT: dict[str, Route] = {}


@dataclass(frozen=True)
class AfterCommit:
    """What a view returns when the rest of its work needs no database (asking carriers for
    rates): ``run`` is called after the request's transaction has ended, so slow outside calls
    hold neither SQLite's write lock nor a pooled PostgreSQL connection. Its result is the
    response body."""

    run: Callable[[], Any]


@dataclass
class Ctx:
    """What a view gets: who is calling, their tenant's settings and the open session."""

    principal: auth.Principal
    session: Any
    runtime: Runtime
    tenant: TenantSettings
    # The query as it was written (a view may need to know that "2026-12-01" was a plain
    # day), whether it came with an HTTP request or from a page through ``invoke``.
    raw_query: MultiDict[str, str] = field(default_factory=MultiDict)

    @property
    def actor(self) -> str:
        return self.principal.username

    @property
    def tenant_id(self) -> int:
        return self.principal.tenant_id


def route(
    rule: str,
    method: str = "GET",
    *,
    permission: str | None,
    summary: str,
    tag: str,
    body: dict[str, Any] | None = None,
    query: tuple[Param, ...] = (),
    status: int = 200,
    paged: bool = False,
    body_kind: str = "json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:  # pragma: no mutate block
    """Declares a view. ``body_kind`` "csv" takes text/csv or a multipart ``file`` part, up
    to the upload limit, and gives the view the decoded text. Runs once, at import; what each
    request does is ``_serve``. (Not mutated by tools/mutation.py: mutmut switches a mutant
    on per test run, after the import that ran this — a mutant here could never be seen.)"""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        json_body = body if body is not None and body_kind == "json" else None
        spec = Route(
            rule,
            method,
            fn.__name__,
            permission,
            summary,
            tag,
            body,
            tuple(query) + (PAGING if paged else ()),
            status,
            paged,
            body_kind,
            Draft202012Validator(json_body, format_checker=FORMATS) if json_body else None,
            fastjsonschema.compile(json_body, formats=FAST_FORMATS) if json_body else None,
            fn,
        )
        ROUTES.append(spec)
        BY_ENDPOINT[fn.__name__] = spec

        @functools.wraps(fn)
        def view(**path: Any) -> Any:
            return _serve(spec, fn, path)

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorate


def _serve(spec: Route, fn: Callable[..., Any], path: dict[str, Any]) -> Any:
    """One request to a declared route, in the order that keeps strangers cheap: who is
    calling first (a stranger's request costs one token lookup, never the parsing or
    validation of what it sent), then the permission, the path, the query and the body, and
    only then the transaction the view runs in. A function of its own rather than inside
    ``route``'s closure, so that what every request does is code that runs per request."""
    runtime: Runtime = current_app.extensions["orderhub"]
    principal = _authenticate(runtime)
    check_permission(spec, principal)
    _check_path(path)
    args = parse_query(spec, request.args)
    payload = _parse_body(spec, runtime) if spec.body is not None else None
    return _run(spec, fn, runtime, principal, path, args, payload, request.args), spec.status


def invoke(
    endpoint: str,
    principal: auth.Principal,
    path: dict[str, Any] | None = None,
    query: MultiDict[str, str] | dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """An API route's view run for a signed-in page rather than an HTTP call: the same
    permission, the same query and body checks and the same transaction, so a page can never
    do what the API would refuse. Raises ApiError as the API would answer."""
    spec = BY_ENDPOINT[endpoint]
    assert spec.fn is not None
    runtime: Runtime = current_app.extensions["orderhub"]
    check_permission(spec, principal)
    path = dict(path or {})
    _check_path(path)
    given = (
        query
        if isinstance(query, MultiDict)
        else MultiDict({k: v for k, v in (query or {}).items() if v not in (None, "")})
    )
    args = parse_query(spec, given)
    if spec.body is not None and spec.body_kind == "json":
        body = check_body(spec, body if body is not None else {})
    elif spec.body_kind in ("csv", "file") and body is None:
        # An upload page passes no body: the view reads the page's own multipart ``file``
        # part, with the same limits and checks as the API.
        body = _parse_body(spec, runtime)
    return _run(spec, spec.fn, runtime, principal, path, args, body, given)


def check_permission(spec: Route, principal: auth.Principal) -> None:
    if spec.permission and not principal.can(spec.permission):
        raise ApiError(
            403,
            "forbidden",
            f"role {principal.role!r} may not "
            f"{spec.summary[0].lower() + spec.summary[1:]}"
            f" (needs {spec.permission})",
        )


def _check_path(path: dict[str, Any]) -> None:
    for name, value in path.items():
        if isinstance(value, int) and not 0 < value <= MAX_ID:
            raise ApiError(404, "not_found", f"no record with {name} {value}")
        if isinstance(value, str) and _bad_text(value):
            raise ApiError(400, "bad_path", f"path segment {name!r} {_bad_text(value)}")


def _run(
    spec: Route,
    fn: Callable[..., Any],
    runtime: Runtime,
    principal: auth.Principal,
    path: dict[str, Any],
    args: dict[str, Any],
    payload: Any,
    raw_query: MultiDict[str, str],
) -> Any:
    with runtime.transaction() as session:
        session.info["orderhub.tenant_id"] = principal.tenant_id
        tenant = runtime.tenant_settings(principal.tenant_slug)
        ctx = Ctx(principal, session, runtime, tenant, raw_query)
        kwargs: dict[str, Any] = dict(path)
        if spec.body is not None:
            kwargs["body"] = payload
        if spec.query:
            kwargs["args"] = args
        result = fn(ctx, **kwargs)
    if isinstance(result, AfterCommit):
        result = result.run()
    return result


def _authenticate(runtime: Runtime) -> auth.Principal:
    """The caller, from a short read of its own (usually none: principals are cached), so no
    transaction is open while the request's body is read and checked."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    if len(token) > 500 or _bad_text(token):  # no token of ours; not worth a query
        principal = None
    else:
        with runtime.session() as session:
            principal = auth.authenticate(session, token.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "the API token is not valid (unknown or revoked)")
    return principal


def parse_query(spec: Route, given: MultiDict[str, str]) -> dict[str, Any]:
    known = {p.name: p for p in spec.query}
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ApiError(
            400,
            "bad_query",
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: {allowed}",
            [{"field": name, "problem": "is not a known query parameter"} for name in unknown],
        )
    out: dict[str, Any] = {}
    for name, values in given.lists():
        if len(values) > 1:
            raise known[name].refuse("is given more than once")
        if _bad_text(values[0]):
            raise known[name].refuse(str(_bad_text(values[0])))
        out[name] = known[name].parse(values[0])
    return out


def _parse_body(spec: Route, runtime: Runtime) -> Any:
    if spec.body_kind == "csv":
        return _csv_body(runtime)
    if spec.body_kind == "file":
        return file_body(runtime)
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=False)  # read once, here: no copy kept for later
    try:
        data = json.loads(raw, parse_float=_number, parse_int=_integer, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    return check_body(spec, data)


def check_body(spec: Route, data: Any) -> Any:
    """The body checked against the route's schema: 422 naming each field it refuses."""
    assert spec.validator is not None and spec.fast_check is not None
    unusable = list(itertools.islice(_unusable(data), MAX_DETAILS))
    try:
        spec.fast_check(data)
        errors: list[Any] = []
    except fastjsonschema.JsonSchemaException:
        errors = list(itertools.islice(spec.validator.iter_errors(data), MAX_ERRORS))
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    if errors or unusable:
        marked = {entry["field"] for entry in unusable}
        found = unusable + [
            p for p in schema_errors.problems(errors, limit=MAX_ERRORS) if p["field"] not in marked
        ]
        # Looking stops at a cap (a huge body would cost a long search): past it the count
        # in the message is a floor, and says so.
        cut = len(unusable) == MAX_DETAILS or len(errors) == MAX_ERRORS
        raise ApiError(
            422,
            "validation_failed",
            schema_errors.summary(found, at_least=cut),
            found[:MAX_DETAILS],
        )
    return data


@dataclass(frozen=True)
class Upload:
    """A file sent as the ``file`` part of a multipart form: its bytes and the name the
    sender gave it (what it claims to be is not kept: the content says what it is)."""

    filename: str
    data: bytes


def file_body(runtime: Runtime) -> Upload:
    """The ``file`` part of a multipart request, at most the upload limit (413 above it)."""
    request.max_content_length = runtime.settings.max_attachment_bytes + 64 * 1024
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is None:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with a 'file' part")
    data = upload.read(runtime.settings.max_attachment_bytes + 1)
    if len(data) > runtime.settings.max_attachment_bytes:
        raise ApiError(
            413,
            "too_large",
            f"the file is larger than {runtime.settings.max_attachment_bytes} bytes",
        )
    return Upload(upload.filename or "", data)


def _csv_body(runtime: Runtime) -> str:
    """A CSV upload as text: text/csv, or the ``file`` part of a multipart form."""
    request.max_content_length = runtime.settings.max_upload_bytes
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is not None:
        raw = upload.read()
    elif request.mimetype in ("text/csv", "text/plain"):
        raw = request.get_data()
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send text/csv, or multipart/form-data with a 'file' part",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise line_problem(line, "is not UTF-8 text") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise line_problem(text.count("\n", 0, nul) + 1, "contains a NUL character")
    return text


def _bad_text(value: str) -> str | None:
    """Why a text cannot be stored (a NUL, or a lone surrogate from a JSON \\ud800 escape),
    which the database would reject with an error of its own."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate"
    return None


class _OutOfScale(Decimal):
    """A JSON number no field of ours can hold (``1E+999999999``), kept so that the field
    holding it is named in the answer rather than failing the whole body as malformed."""


def _unusable(data: Any) -> Iterator[dict[str, str]]:
    """Strings that cannot be stored and numbers out of scale, with where they are; a loop,
    not recursion, since the body may be nested as deep as the JSON parser allows."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        problem = None
        if isinstance(value, str):
            problem = _bad_text(value)
        elif isinstance(value, _OutOfScale):
            problem = "is not a number the hub can use (too large or too precise)"
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                name = f"{where}.{key[:64]}" if where else key[:64]
                if _bad_text(key):
                    yield {"field": name, "problem": f"names a field that {_bad_text(key)}"}
                stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
        if problem:
            yield {"field": where or "(body)", "problem": problem}


def _number(text: str) -> int | Decimal:
    """JSON numbers with a point are Decimals, never floats; ``3.0`` is the integer 3, as
    JSON Schema (and the OpenAPI document) says it is."""
    value = Decimal(text)
    if not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        return _OutOfScale(text)
    if value == value.to_integral_value() and abs(value) < 10**18:
        return int(value)
    return value


def _integer(text: str) -> int | Decimal:
    """An integer; one of thousands of digits is no value of ours (and Python refuses to
    convert it), so it is named as out of scale."""
    if len(text.lstrip("-")) - 1 > MAX_EXPONENT:
        return _OutOfScale(text)
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_instant(value: object) -> bool:
    if isinstance(value, str):
        times.parse_instant(value)  # ValueError (OutOfRange) when it is not one in range
    return True


def _check_day(value: object) -> bool:
    if isinstance(value, str):
        times.parse_day(value)
    return True


# Formats the hub checks itself, so both validators agree and an instant out of the sane range
# (hub.core.times) is a validation error naming its field, not a row no one can read back.
FORMATS = FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_check_instant)
FORMATS.checks("date", raises=ValueError)(_check_day)


def _passes(check: Callable[[object], bool], value: object) -> bool:
    """fastjsonschema's side of a format: False where jsonschema's checker raises."""
    try:
        return check(value)
    except ValueError:
        return False


FAST_FORMATS = {
    "date-time": functools.partial(_passes, _check_instant),
    "date": functools.partial(_passes, _check_day),
}


def paginate(
    ctx: Ctx,
    stmt: Any,
    order: Any,
    args: dict[str, Any],
    view: Callable[[Any], Any],
    *,
    rows: bool = False,
) -> dict[str, Any]:
    """The one list shape: ``{"items", "total", "page", "per_page"}``. ``view`` gets each
    entity, or each whole row when ``rows`` (a select of several columns)."""
    page = args.get("page", 1)
    per_page = min(args.get("per_page", 50), ctx.runtime.settings.max_per_page)
    total = ctx.session.scalar(select(func.count()).select_from(stmt.subquery()))
    paged = stmt.order_by(order).limit(per_page).offset((page - 1) * per_page)
    found = ctx.session.execute(paged).all() if rows else ctx.session.scalars(paged).all()
    return {"items": [view(r) for r in found], "total": total, "page": page, "per_page": per_page}
