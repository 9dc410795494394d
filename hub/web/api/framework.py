"""How an API route is declared: its permission, body schema and query parameters live beside
the view, so authentication, validation, the transaction and the OpenAPI document all come
from one declaration and cannot drift apart."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import fastjsonschema
from flask import Blueprint, current_app, request
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select

from hub.core import auth
from hub.core.errors import HubError
from hub.runtime import Runtime
from hub.settings import TenantSettings

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Ids and integer parameters beyond this are no record of ours: ids are 32-bit integer
# columns, and PostgreSQL refuses to compare them with anything larger.
MAX_ID = 2**31 - 1


class ApiError(HubError):
    """An error raised by the HTTP layer itself (auth, malformed request …)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.status, self.code = status, code


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"  # string | integer | number | boolean | date-time | decimal
    description: str = ""
    enum: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None

    def schema(self) -> dict[str, Any]:
        if self.type == "date-time":
            s: dict[str, Any] = {"type": "string", "format": "date-time"}
        elif self.type == "decimal":
            s = {"type": "string", "pattern": r"^\d{1,12}(\.\d{1,4})?$"}
        else:
            s = {"type": self.type}
        if self.enum:
            s["enum"] = list(self.enum)
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return s

    def parse(self, raw: str) -> Any:
        try:
            if self.type == "integer":
                value: Any = int(raw)
            elif self.type == "number":
                value = float(raw)
            elif self.type == "decimal":
                value = Decimal(raw)
                if not value.is_finite():
                    raise ValueError(raw)
            elif self.type == "boolean":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1")
            elif self.type == "date-time":
                value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                if value.tzinfo is None:
                    raise ValueError("no time zone")
            else:
                value = raw
        except (ValueError, InvalidOperation):  # Decimal("x") raises the latter
            raise ApiError(
                400,
                "bad_query",
                f"query parameter {self.name!r}: {raw!r} is not a"
                f" valid {self.type}" + (" with a time zone" if self.type == "date-time" else ""),
            ) from None
        if self.enum and value not in self.enum:
            raise ApiError(
                400,
                "bad_query",
                f"query parameter {self.name!r} must be one of " + ", ".join(self.enum),
            )
        if self.minimum is not None and value < self.minimum:
            raise ApiError(
                400, "bad_query", f"query parameter {self.name!r} must be at least {self.minimum}"
            )
        if self.maximum is not None and value > self.maximum:
            raise ApiError(
                400, "bad_query", f"query parameter {self.name!r} must be at most {self.maximum}"
            )
        if self.type == "integer" and abs(value) > MAX_ID:
            raise ApiError(400, "bad_query", f"query parameter {self.name!r} is too large")
        return value


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


ROUTES: list[Route] = []


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
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
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
            Draft202012Validator(body, format_checker=FormatChecker()) if body else None,
            fastjsonschema.compile(body) if body else None,
        )
        ROUTES.append(spec)

        @functools.wraps(fn)
        def view(**path: Any) -> Any:
            runtime: Runtime = current_app.extensions["orderhub"]
            for name, value in path.items():
                if isinstance(value, int) and not 0 < value <= MAX_ID:
                    raise ApiError(404, "not_found", f"no record with {name} {value}")
                if isinstance(value, str) and _bad_text(value):
                    raise ApiError(400, "bad_path", f"path segment {name!r} {_bad_text(value)}")
            args = _parse_query(spec)
            payload = _parse_body(spec) if spec.body is not None else None
            with runtime.transaction() as session:
                principal = _authenticate(session)
                if spec.permission and not principal.can(spec.permission):
                    raise ApiError(
                        403,
                        "forbidden",
                        f"role {principal.role!r} may not "
                        f"{spec.summary[0].lower() + spec.summary[1:]}"
                        f" (needs {spec.permission})",
                    )
                session.info["orderhub.tenant_id"] = principal.tenant_id
                ctx = Ctx(
                    principal, session, runtime, runtime.tenant_settings(principal.tenant_slug)
                )
                kwargs: dict[str, Any] = dict(path)
                if spec.body is not None:
                    kwargs["body"] = payload
                if spec.query:
                    kwargs["args"] = args
                result = fn(ctx, **kwargs)
            if isinstance(result, AfterCommit):
                result = result.run()
            return result, spec.status

        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorate


def _authenticate(session: Any) -> auth.Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    principal = auth.authenticate(session, token.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "the API token is not valid (unknown or revoked)")
    return principal


def _parse_query(spec: Route) -> dict[str, Any]:
    known = {p.name: p for p in spec.query}
    unknown = sorted(set(request.args) - set(known))
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ApiError(
            400, "bad_query", f"unknown query parameter(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    out: dict[str, Any] = {}
    for name, values in request.args.lists():
        if len(values) > 1:
            raise ApiError(400, "bad_query", f"query parameter {name!r} given more than once")
        if _bad_text(values[0]):
            raise ApiError(400, "bad_query", f"query parameter {name!r} {_bad_text(values[0])}")
        out[name] = known[name].parse(values[0])
    return out


def _parse_body(spec: Route) -> Any:
    if spec.body_kind != "json":
        return None
    if not request.mimetype or request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw, parse_float=_number, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    assert spec.validator is not None and spec.fast_check is not None
    try:
        spec.fast_check(data)
        errors = []
    except fastjsonschema.JsonSchemaException:
        errors = sorted(
            spec.validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str, e.path)))
        )
    if errors:
        raise ApiError(
            422,
            "validation_failed",
            _describe(errors[0]),
            [{"field": _path(e), "problem": e.message} for e in errors[:20]],
        )
    bad = _first_bad_text(data, "")
    if bad:
        where, problem = bad
        raise ApiError(
            422,
            "validation_failed",
            f"{where or '(body)'}: {problem}",
            [{"field": where or "(body)", "problem": problem}],
        )
    return data


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


def _first_bad_text(data: Any, where: str) -> tuple[str, str] | None:
    """The first string in a parsed JSON body that cannot be stored, with where it is."""
    if isinstance(data, str):
        problem = _bad_text(data)
        return (where, problem) if problem else None
    if isinstance(data, dict):
        items: Any = ((f"{where}.{k}" if where else k, v) for k, v in data.items())
    elif isinstance(data, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(data))
    else:
        return None
    for at, value in items:
        found = _first_bad_text(value, at)
        if found:
            return found
    return None


def _number(text: str) -> int | Decimal:
    """JSON numbers with a point are Decimals, never floats; ``3.0`` is the integer 3, as
    JSON Schema (and the OpenAPI document) says it is."""
    value = Decimal(text)
    if value == value.to_integral_value() and abs(value) < 10**18:
        return int(value)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _path(error: Any) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(body)"


def _describe(error: Any) -> str:
    where = _path(error)
    if error.validator == "additionalProperties":
        return f"{where}: unknown field ({error.message})"
    if error.validator in ("anyOf", "oneOf"):
        hint = error.schema.get("description") if isinstance(error.schema, dict) else None
        if hint:
            return f"{where}: {error.instance!r} is not valid: {hint}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


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
