"""What customers reach without an account (customers are not users): the signed links in
their messages and a product's public reviews. Outside ``/api/v1``: no token, no role.

- ``/care/unsubscribe/<token>``: GET says what the link unsubscribes from; POST does it
  (RFC 8058 one-click: mail clients POST ``List-Unsubscribe=One-Click``; whatever the body,
  it is ignored), idempotent. There is no session or cookie to forge a request with, so no
  CSRF token: the signed link is the whole credential.
- ``/care/review/<token>``: GET lists the order's lines; POST ``{sku, rating, title?,
  body?}`` reviews one (201).
- ``/care/survey/<token>``: GET shows the question; POST ``{rating, comment?}`` answers it,
  once (a second answer is a 409).
- ``/care/review/<token>/photos``: POST a photo (multipart ``file`` and ``sku``) for the
  customer's review of that line (201).
- ``/public/<tenant>/products/<sku>/reviews``: visible reviews, newest first, paged, each
  with its photos' addresses: ``/public/<tenant>/reviews/<id>/photos/<photo id>``.

A token that is forged, expired or names another tenant's record is a 404 that says only
that the link is not valid."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from jsonschema import Draft202012Validator

from hub.core import care, reviews, schema_errors
from hub.core.errors import Invalid
from hub.core.models import Tenant
from hub.web.api.framework import ApiError, file_body
from hub.web.api.reviews import photo_response

if TYPE_CHECKING:
    from hub.runtime import Runtime

bp = Blueprint("public", __name__)

TEXT = {"type": "string", "maxLength": 20_000}
REVIEW = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "rating"],
        "properties": {
            "sku": {"type": "string", "minLength": 1, "maxLength": 64},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "title": {"type": "string", "maxLength": 200},
            "body": TEXT,
        },
    }
)
ANSWER = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["rating"],
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "comment": {"type": "string", "maxLength": 5000},
        },
    }
)


def _runtime() -> Runtime:
    return current_app.extensions["orderhub"]  # type: ignore[no-any-return]


def _secret() -> str:
    return _runtime().settings.secret_key


def _named(out: dict[str, Any]) -> dict[str, Any]:
    """The tenant as its customers know it (its file's ``name``), not its slug."""
    if out.get("tenant"):
        out["tenant"] = _runtime().tenant_settings(out["tenant"]).name
    return out


def _json(validator: Draft202012Validator) -> dict[str, Any]:
    """The body as JSON, checked: 415 for another type, 400 for bad JSON, 422 naming each
    field for a body the schema refuses."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        data = json.loads(request.get_data(cache=False))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    found = schema_errors.problems(validator.iter_errors(data))
    if found:
        raise Invalid(schema_errors.summary(found), found)
    for key, value in data.items():
        if isinstance(value, str) and "\x00" in value:
            raise Invalid(
                f"{key}: contains a NUL character",
                [{"field": key, "problem": "contains a NUL character"}],
            )
    return data  # type: ignore[no-any-return]


# --- unsubscribe ---------------------------------------------------------------------------------


@bp.get("/care/unsubscribe/<token>")
def unsubscribe_page(token: str) -> ResponseReturnValue:
    with _runtime().transaction() as session:
        return _named(care.subscription(session, _secret(), token))


@bp.post("/care/unsubscribe/<token>")
def unsubscribe(token: str) -> ResponseReturnValue:
    source = "one-click" if request.form.get("List-Unsubscribe") == "One-Click" else "link"
    with _runtime().transaction() as session:
        return _named(care.unsubscribe(session, _secret(), token, source))


# --- reviews by link -----------------------------------------------------------------------------


@bp.get("/care/review/<token>")
def review_page(token: str) -> ResponseReturnValue:
    with _runtime().transaction() as session:
        return _named(reviews.link_view(session, reviews.linked_order(session, _secret(), token)))


@bp.post("/care/review/<token>")
def review(token: str) -> ResponseReturnValue:
    runtime = _runtime()
    with runtime.transaction() as session:
        order = reviews.linked_order(session, _secret(), token)  # a bad link before the body
        body = _json(REVIEW)
        slug = session.get_one(Tenant, order.tenant_id).slug
        made = reviews.create(
            session,
            order.tenant_id,
            runtime.tenant_settings(slug),
            reviews.NewReview(
                order.number,
                body["sku"],
                body["rating"],
                body.get("title"),
                body.get("body"),
                source="link",
            ),
            f"customer:{order.customer_id}",
        )
        return reviews.public_view(made, None, slug), 201


@bp.post("/care/review/<token>/photos")
def review_photo(token: str) -> ResponseReturnValue:
    """A photo for the customer's review of one of the order's lines: multipart with the
    ``file`` and the line's ``sku``."""
    runtime = _runtime()
    with runtime.transaction() as session:
        order = reviews.linked_order(session, _secret(), token)  # a bad link before the body
        upload = file_body(runtime)
        sku = request.form.get("sku", "")
        if not sku:
            raise Invalid(
                "say which line's review the photo is for: the form field 'sku'",
                [{"field": "sku", "problem": "is required"}],
            )
        review = reviews.of_line(session, order, sku)
        reviews.add_photo(
            session,
            review,
            runtime.settings.data_dir,
            upload.filename,
            upload.data,
            f"customer:{order.customer_id}",
        )
        slug = session.get_one(Tenant, order.tenant_id).slug
        return reviews.public_view(review, None, slug), 201


# --- the satisfaction survey ---------------------------------------------------------------------


@bp.get("/care/survey/<token>")
def survey_page(token: str) -> ResponseReturnValue:
    with _runtime().transaction() as session:
        return _named(care.survey(session, _secret(), token))


@bp.post("/care/survey/<token>")
def survey_answer(token: str) -> ResponseReturnValue:
    with _runtime().transaction() as session:
        care.survey(session, _secret(), token)  # a bad link is refused before the body is read
        body = _json(ANSWER)
        return care.answer_survey(
            session, _secret(), token, body["rating"], body.get("comment")
        ), 201


# --- public reviews of a product -----------------------------------------------------------------


def _page_arg(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ApiError(
            400,
            "bad_query",
            f"query parameter {name!r} must be an integer from 1 to {maximum}",
            [{"field": name, "problem": f"from 1 to {maximum}"}],
        )
    return int(raw)


@bp.get("/public/<tenant>/reviews/<int:review_id>/photos/<int:photo_id>")
def public_review_photo(tenant: str, review_id: int, photo_id: int) -> ResponseReturnValue:
    """A visible review's photo; a hidden review's, another tenant's or an unknown one are
    the same 404."""
    runtime = _runtime()
    with runtime.session() as session:
        review = reviews.visible(session, tenant, review_id)
        return photo_response(runtime.settings.data_dir, review, photo_id)


@bp.get("/public/<tenant>/products/<sku>/reviews")
def product_reviews(tenant: str, sku: str) -> ResponseReturnValue:
    unknown = sorted(set(request.args) - {"page", "per_page"})
    if unknown:
        raise ApiError(
            400,
            "bad_query",
            f"unknown query parameter(s) {', '.join(unknown)}; allowed: page, per_page",
            [{"field": n, "problem": "is not a known query parameter"} for n in unknown],
        )
    runtime = _runtime()
    page = _page_arg("page", 1, 1_000_000)
    per_page = _page_arg("per_page", 20, min(100, runtime.settings.max_per_page))
    with runtime.session() as session:
        return reviews.public_page(session, tenant, sku, page, per_page)
