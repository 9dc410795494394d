"""Reviews: moderating what customers wrote. The list with the API's filters, one review with
its photos, hiding it (for a stated reason, never for being negative), showing it again and
the shop's one public reply."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core.errors import HubError
from hub.web.admin import api, field_errors, page

PAGE_SIZES = ("25", "50", "100", "250")
HIDE_REASONS: dict[str, Any] = {
    "spam": _l("Spam or advertising"),
    "abuse": _l("Abusive or offensive"),
    "personal_data": _l("Shows personal data"),
    "off_topic": _l("Not about the product"),
}
FILTERS = ("sku", "order", "rating", "hidden", "page", "per_page")


@page("/reviews", "reviews.read")
def reviews() -> ResponseReturnValue:
    args = {k: v.strip() for k, v in request.args.items() if k in FILTERS and v.strip()}
    query = MultiDict(args)
    query.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_reviews", query=query)
    except HubError as exc:
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    return render_template(
        "admin/reviews.html",
        found=found,
        errors=errors,
        args=args,
        page_sizes=PAGE_SIZES,
        reasons=HIDE_REASONS,
    ), 400 if errors else 200


def _review_page(
    review_id: int, errors: dict[str, dict[str, str]] | None = None, status: int = 200
) -> ResponseReturnValue:
    return render_template(
        "admin/review_detail.html",
        review=api("get_review", review_id=review_id),
        reasons=HIDE_REASONS,
        errors=errors or {},
        form=request.form,
    ), status


@page("/reviews/<int:review_id>", "reviews.read")
def review(review_id: int) -> ResponseReturnValue:
    return _review_page(review_id)


@page("/reviews/<int:review_id>/photos/<int:photo_id>", "reviews.read")
def review_photo_file(review_id: int, photo_id: int) -> ResponseReturnValue:
    """The photo itself, for the page's <img> (the API's address needs a bearer token)."""
    return api("review_photo", review_id=review_id, photo_id=photo_id)


def _act(review_id: int, action: str, body: Any, done: str) -> ResponseReturnValue:
    try:
        api(f"{action}_review", review_id=review_id, body=body)
    except HubError as exc:
        return _review_page(review_id, {action: field_errors(exc)}, exc.status)
    flash(done)
    return redirect(url_for("admin.review", review_id=review_id))


@page("/reviews/<int:review_id>/hide", "reviews.moderate", methods=("POST",))
def review_hide(review_id: int) -> ResponseReturnValue:
    reason = request.form.get("reason", "")
    return _act(
        review_id,
        "hide",
        {"reason": reason},
        _(
            "Review %(id)s is hidden (%(reason)s): the shop's pages no longer show it.",
            id=review_id,
            reason=HIDE_REASONS.get(reason, reason),
        ),
    )


@page("/reviews/<int:review_id>/show", "reviews.moderate", methods=("POST",))
def review_show(review_id: int) -> ResponseReturnValue:
    return _act(review_id, "show", None, _("Review %(id)s is shown again.", id=review_id))


@page("/reviews/<int:review_id>/reply", "reviews.moderate", methods=("POST",))
def review_reply(review_id: int) -> ResponseReturnValue:
    body = request.form.get("body", "").strip()
    return _act(
        review_id,
        "reply",
        {"body": body},
        _("Your reply to review %(id)s is published.", id=review_id),
    )
