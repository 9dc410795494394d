"""Review routes for staff and integrations: take a customer's review of a delivered line,
find and read reviews, hide / show them and give the one public reply, a product's rating;
and what the care rules sent and the surveys customers answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response
from sqlalchemy import func, select

from hub.core import care, reviews
from hub.core.care_rules import KINDS as CARE_KINDS
from hub.core.models import CareSend, Customer, Review, TicketSurvey
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, Upload, paginate, route
from hub.web.stored_files import stored_file

TAG = "reviews"

REVIEW_CREATE = schemas.closed(
    {
        "order": {
            "type": "string",
            "minLength": 1,
            "maxLength": 32,
            "description": "the order's number",
        },
        "sku": schemas.SKU,
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "title": {"type": "string", "maxLength": 200},
        "body": {"type": "string", "maxLength": 20_000},
    },
    ("order", "sku", "rating"),
)
HIDE = schemas.closed(
    {
        "reason": {
            "enum": list(reviews.HIDE_REASONS),
            "description": "why it is hidden; a review is never hidden for being negative",
        }
    },
    ("reason",),
)
REPLY = schemas.closed({"body": {"type": "string", "minLength": 1, "maxLength": 5000}}, ("body",))


@route(
    "/reviews",
    "POST",
    permission="reviews.write",
    tag=TAG,
    status=201,
    summary="Take a customer's review of a delivered order line",
    body=REVIEW_CREATE,
)
def create_review(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    new = reviews.NewReview(
        body["order"],
        body["sku"],
        body["rating"],
        body.get("title"),
        body.get("body"),
        source="api",
    )
    review = reviews.create(ctx.session, ctx.tenant_id, ctx.tenant, new, ctx.actor)
    return reviews.view(ctx.session, review)


@route(
    "/reviews",
    permission="reviews.read",
    tag=TAG,
    summary="Find reviews",
    query=(
        Param("sku"),
        Param("order", description="order number"),
        Param("rating", "integer", minimum=1, maximum=5),
        Param("hidden", "boolean"),
    ),
    paged=True,
)
def list_reviews(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    filters = {k: v for k, v in args.items() if k not in ("page", "per_page")}
    stmt = reviews.search(ctx.tenant_id, **filters)
    return paginate(ctx, stmt, Review.id.desc(), args, lambda r: reviews.view(ctx.session, r))


@route("/reviews/<int:review_id>", permission="reviews.read", tag=TAG, summary="Read a review")
def get_review(ctx: Ctx, review_id: int) -> dict[str, Any]:
    return reviews.view(ctx.session, reviews.get(ctx.session, ctx.tenant_id, review_id))


@route(
    "/reviews/<int:review_id>/hide",
    "POST",
    permission="reviews.moderate",
    tag=TAG,
    summary="Hide a review (spam, abuse, personal data, off topic)",
    body=HIDE,
)
def hide_review(ctx: Ctx, review_id: int, body: dict[str, Any]) -> dict[str, Any]:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id, lock=True)
    return reviews.view(ctx.session, reviews.hide(ctx.session, review, body["reason"], ctx.actor))


@route(
    "/reviews/<int:review_id>/show",
    "POST",
    permission="reviews.moderate",
    tag=TAG,
    summary="Show a hidden review again",
)
def show_review(ctx: Ctx, review_id: int) -> dict[str, Any]:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id, lock=True)
    return reviews.view(ctx.session, reviews.show(ctx.session, review, ctx.actor))


@route(
    "/reviews/<int:review_id>/reply",
    "POST",
    permission="reviews.moderate",
    tag=TAG,
    summary="Give a review its one public reply",
    body=REPLY,
)
def reply_review(ctx: Ctx, review_id: int, body: dict[str, Any]) -> dict[str, Any]:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id, lock=True)
    return reviews.view(ctx.session, reviews.reply(ctx.session, review, body["body"], ctx.actor))


@route(
    "/reviews/<int:review_id>/photos",
    "POST",
    permission="reviews.write",
    tag=TAG,
    status=201,
    body={},
    body_kind="file",
    summary="Add a photo (JPEG, PNG, GIF or WebP; at most 5) to a review",
)
def add_review_photo(ctx: Ctx, review_id: int, body: Upload) -> dict[str, Any]:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id, lock=True)
    reviews.add_photo(
        ctx.session, review, ctx.runtime.settings.data_dir, body.filename, body.data, ctx.actor
    )
    return reviews.view(ctx.session, review)


@route(
    "/reviews/<int:review_id>/photos/<int:photo_id>",
    permission="reviews.read",
    tag=TAG,
    summary="See a review's photo",
)
def review_photo(ctx: Ctx, review_id: int, photo_id: int) -> Response:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id)
    return photo_response(ctx.runtime.settings.data_dir, review, photo_id)


@route(
    "/reviews/<int:review_id>/photos/<int:photo_id>",
    "DELETE",
    permission="reviews.moderate",
    tag=TAG,
    summary="Take a photo off a review",
)
def remove_review_photo(ctx: Ctx, review_id: int, photo_id: int) -> dict[str, Any]:
    review = reviews.get(ctx.session, ctx.tenant_id, review_id, lock=True)
    reviews.remove_photo(ctx.session, review, photo_id, ctx.actor)
    return reviews.view(ctx.session, review)


def photo_response(data_dir: Path, review: Review, photo_id: int) -> Response:
    photo = reviews.photo_of(review, photo_id)
    return stored_file(
        data_dir,
        review.tenant_id,
        photo.sha256,
        photo.content_type,
        photo.filename,
        inline=True,
        missing=f"the file of photo {photo_id} is missing from the hub's storage",
    )


@route(
    "/products/<sku>/rating",
    permission="reviews.read",
    tag=TAG,
    summary="A product's average rating and review count (visible reviews)",
)
def product_rating(ctx: Ctx, sku: str) -> dict[str, Any]:
    item = reviews.product(ctx.session, ctx.tenant_id, sku)
    return {"sku": item.sku, **reviews.rating(ctx.session, ctx.tenant_id, item.id)}


@route(
    "/care/sends",
    permission="care.read",
    tag="care",
    summary="What the care rules sent or skipped",
    query=(
        Param("rule"),
        Param("kind", enum=CARE_KINDS),
        Param("status", enum=("emitted", "skipped")),
        Param("customer", description="customer e-mail"),
    ),
    paged=True,
)
def list_care_sends(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(CareSend).where(CareSend.tenant_id == ctx.tenant_id)
    for key in ("rule", "kind", "status"):
        if key in args:
            stmt = stmt.where(getattr(CareSend, key) == args[key])
    if "customer" in args:
        stmt = stmt.join(Customer, Customer.id == CareSend.customer_id).where(
            func.lower(Customer.email) == args["customer"].strip().lower()
        )
    return paginate(ctx, stmt, CareSend.id.desc(), args, care.send_view)


@route(
    "/care/surveys",
    permission="care.read",
    tag="care",
    paged=True,
    summary="Satisfaction surveys customers answered",
    query=(Param("rating", "integer", minimum=1, maximum=5),),
)
def list_surveys(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(TicketSurvey).where(TicketSurvey.tenant_id == ctx.tenant_id)
    if "rating" in args:
        stmt = stmt.where(TicketSurvey.rating == args["rating"])
    return paginate(
        ctx, stmt, TicketSurvey.id.desc(), args, lambda s: care.survey_view(ctx.session, s)
    )
