"""Product reviews: a customer rates a delivered order line's product (1-5, a title, a text),
once per line.

- ``verified_buyer`` is the hub's finding — the line was delivered — never the reviewer's
  word. Only delivered lines can be reviewed at all, so every review the hub takes this way
  is verified; the flag is kept for reviews that may come from elsewhere later.
- Moderation hides a review for a reason from a fixed list (spam, abuse, personal data,
  off topic) and shows it again; "negative" is no reason, and a low rating is never refused:
  it opens a complaint ticket instead (at or below the tenant's ``[reviews] ticket_below``).
- Staff give at most one public reply.
- A product's average and count are computed from its visible reviews on every read, in
  Decimal, so they are exact and never drift from the reviews themselves.
Every change is in the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from hub.core import attachments, audit, care_links, events, tickets
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.models import (
    Customer,
    Order,
    OrderLine,
    Product,
    Review,
    ReviewPhoto,
    Shipment,
    ShipmentItem,
    Tenant,
    Ticket,
)

if TYPE_CHECKING:
    from hub.settings import TenantSettings

HIDE_REASONS = ("spam", "abuse", "personal_data", "off_topic")
SOURCES = ("api", "link")
DELIVERED_ORDER = ("delivered", "closed")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class NewReview:
    order_number: str
    sku: str
    rating: int
    title: str | None = None
    body: str | None = None
    source: str = "api"


def create(
    session: Session, tenant_id: int, tenant: TenantSettings, new: NewReview, actor: str
) -> Review:
    """The review of the first delivered, not yet reviewed line of ``sku`` on the order. An
    order of another tenant is no order (404); a line not delivered yet, or reviewed already,
    is a 409."""
    if not 1 <= new.rating <= 5:
        raise Invalid(
            "rating must be from 1 to 5", [{"field": "rating", "problem": "must be from 1 to 5"}]
        )
    order = session.scalar(
        select(Order).where(Order.tenant_id == tenant_id, Order.number == new.order_number)
    )
    if order is None:
        raise NotFound(f"no order {new.order_number!r}")
    lines = list(
        session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == order.id, OrderLine.sku == new.sku)
            .order_by(OrderLine.line_no)
        )
    )
    if not lines:
        raise Invalid(
            f"order {order.number} has no line of SKU {new.sku!r}",
            [{"field": "sku", "problem": f"not on order {order.number}"}],
        )
    delivered = [line for line in lines if line_delivered(session, order, line)]
    if not delivered:
        raise Conflict(
            f"{new.sku} on order {order.number} is not delivered yet: only delivered"
            " goods can be reviewed"
        )
    reviewed = set(
        session.scalars(
            select(Review.order_line_id).where(Review.order_line_id.in_([x.id for x in lines]))
        )
    )
    line = next((x for x in delivered if x.id not in reviewed), None)
    if line is None:
        raise Conflict(f"{new.sku} on order {order.number} is reviewed already")
    now = utcnow()
    review = Review(
        tenant_id=tenant_id,
        order_id=order.id,
        order_line_id=line.id,
        product_id=line.product_id,
        sku=line.sku,
        customer_id=order.customer_id,
        rating=new.rating,
        title=new.title or None,
        body=new.body or None,
        verified_buyer=line_delivered(session, order, line),  # the hub's finding, not input
        source=new.source,
        created_by=actor,
        hidden=False,
        created_at=now,
        updated_at=now,
    )
    session.add(review)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "review.create",
        "review",
        review.id,
        None,
        {"order": order.number, "sku": line.sku, "rating": new.rating, "source": new.source},
    )
    events.emit(
        session,
        tenant_id,
        events.REVIEW_CREATED,
        {
            "id": review.id,
            "sku": line.sku,
            "rating": new.rating,
            "number": order.number,
            "verified_buyer": review.verified_buyer,
            "title": review.title,
        },
    )
    if new.rating <= tenant.care.review_ticket_below:
        review.ticket_id = _complaint(session, tenant_id, tenant, order, review, actor)
    return review


def line_delivered(session: Session, order: Order, line: OrderLine) -> bool:
    """The goods of this line reached the customer: the whole order is delivered (or closed
    since), or a delivered parcel of the order carried its product."""
    if order.status in DELIVERED_ORDER:
        return True
    return bool(
        session.scalar(
            select(
                exists().where(
                    Shipment.order_id == order.id,
                    Shipment.status == "delivered",
                    ShipmentItem.shipment_id == Shipment.id,
                    ShipmentItem.product_id == line.product_id,
                )
            )
        )
    )


def _complaint(
    session: Session,
    tenant_id: int,
    tenant: TenantSettings,
    order: Order,
    review: Review,
    actor: str,
) -> int | None:
    """A complaint ticket about the line, so someone calls the unhappy customer back. Needs
    the customer's e-mail (a ticket's customer is known by it); without one, none."""
    email = session.scalar(select(Customer.email).where(Customer.id == order.customer_id))
    if not email:
        return None
    text = "\n\n".join(x for x in (review.title, review.body) if x) or "(no text)"
    ticket = tickets.create(
        session,
        tenant_id,
        tenant.tickets,
        tickets.NewTicket(
            kind="complaint",
            subject=f"Review of {review.sku} on order {order.number}: {review.rating}/5"[:200],
            body=text,
            customer_email=email,
            order_number=order.number,
            lines=((review.sku, 1),),
            priority="high" if review.rating == 1 else "normal",
            source="review",
        ),
        actor,
    )
    return ticket.id


def get(session: Session, tenant_id: int, review_id: int, *, lock: bool = False) -> Review:
    query = select(Review).where(Review.tenant_id == tenant_id, Review.id == review_id)
    if lock:
        query = query.with_for_update()
    review = session.scalar(query)
    if review is None:
        raise NotFound(f"no review {review_id}")
    return review


# --- moderation ---------------------------------------------------------------------------------


def hide(session: Session, review: Review, reason: str, actor: str) -> Review:
    if reason not in HIDE_REASONS:
        problem = f"must be one of: {', '.join(HIDE_REASONS)}"
        raise Invalid(f"reason {problem}", [{"field": "reason", "problem": problem}])
    if review.hidden:
        raise Conflict(f"review {review.id} is hidden already ({review.hidden_reason})")
    review.hidden, review.hidden_reason, review.updated_at = True, reason, utcnow()
    audit.record(
        session,
        review.tenant_id,
        actor,
        "review.hide",
        "review",
        review.id,
        {"hidden": False},
        {"hidden": True, "reason": reason},
    )
    return review


def show(session: Session, review: Review, actor: str) -> Review:
    if not review.hidden:
        raise Conflict(f"review {review.id} is shown already")
    before = {"hidden": True, "reason": review.hidden_reason}
    review.hidden, review.hidden_reason, review.updated_at = False, None, utcnow()
    audit.record(
        session,
        review.tenant_id,
        actor,
        "review.show",
        "review",
        review.id,
        before,
        {"hidden": False},
    )
    return review


def reply(session: Session, review: Review, body: str, actor: str) -> Review:
    """The shop's one public answer."""
    if review.reply is not None:
        raise Conflict(f"review {review.id} has a reply already: one per review")
    now = utcnow()
    review.reply, review.replied_by, review.replied_at, review.updated_at = body, actor, now, now
    audit.record(
        session, review.tenant_id, actor, "review.reply", "review", review.id, None, {"reply": body}
    )
    return review


# --- photos -------------------------------------------------------------------------------------

PHOTO_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_PHOTOS = 5


def add_photo(
    session: Session, review: Review, data_dir: Path, filename: str, data: bytes, actor: str
) -> ReviewPhoto:
    """Keep a photo with the review: an image by its content (hub.core.attachments), at most
    MAX_PHOTOS per review."""
    content_type = attachments.kind_of(data)
    if content_type not in PHOTO_TYPES:
        problem = "must be a JPEG, PNG, GIF or WebP image"
        raise Invalid(f"a review photo {problem}", [{"field": "file", "problem": problem}])
    if len(review.photos) >= MAX_PHOTOS:
        raise Conflict(f"review {review.id} has {MAX_PHOTOS} photos already")
    photo = ReviewPhoto(
        review_id=review.id,
        **attachments.kept(data_dir, review.tenant_id, filename, data, content_type, actor),
    )
    review.photos.append(photo)
    review.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        review.tenant_id,
        actor,
        "review.photo",
        "review",
        review.id,
        None,
        {
            "photo": photo.id,
            "filename": photo.filename,
            "size": photo.size,
            "sha256": photo.sha256,
        },
    )
    return photo


def photo_of(review: Review, photo_id: int) -> ReviewPhoto:
    for photo in review.photos:
        if photo.id == photo_id:
            return photo
    raise NotFound(f"review {review.id} has no photo {photo_id}")


def remove_photo(session: Session, review: Review, photo_id: int, actor: str) -> None:
    """Take a photo off a review (moderation); the file stays while another row names it."""
    photo = photo_of(review, photo_id)
    review.photos.remove(photo)
    review.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        review.tenant_id,
        actor,
        "review.photo_removed",
        "review",
        review.id,
        {"photo": photo.id, "filename": photo.filename, "sha256": photo.sha256},
        None,
    )


def of_line(session: Session, order: Order, sku: str) -> Review:
    """The review of the order's line of this SKU."""
    review = session.scalar(
        select(Review).where(Review.order_id == order.id, Review.sku == sku).order_by(Review.id)
    )
    if review is None:
        raise NotFound(f"no review of {sku!r} on this order yet: review the line first")
    return review


def visible(session: Session, slug: str, review_id: int) -> Review:
    """A review anyone may see: of this tenant, not hidden."""
    review = session.scalar(
        select(Review)
        .join(Tenant, Tenant.id == Review.tenant_id)
        .where(Tenant.slug == slug, Review.id == review_id, Review.hidden.is_(False))
    )
    if review is None:
        raise NotFound("no such review")
    return review


def _photos(review: Review, base: str) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "filename": p.filename,
            "content_type": p.content_type,
            "size": p.size,
            "url": f"{base}/{p.id}",
        }
        for p in review.photos
    ]


# --- reading ------------------------------------------------------------------------------------


def search(
    tenant_id: int,
    *,
    sku: str | None = None,
    order: str | None = None,
    rating: int | None = None,
    hidden: bool | None = None,
) -> Select[tuple[Review]]:
    query = select(Review).where(Review.tenant_id == tenant_id)
    if sku is not None:
        query = query.where(Review.sku == sku)
    if order is not None:
        query = query.join(Order, Order.id == Review.order_id).where(Order.number == order)
    if rating is not None:
        query = query.where(Review.rating == rating)
    if hidden is not None:
        query = query.where(Review.hidden.is_(hidden))
    return query


def view(session: Session, review: Review) -> dict[str, Any]:
    """What staff see: everything, the customer included."""
    order_number = session.scalar(select(Order.number).where(Order.id == review.order_id))
    customer = session.get(Customer, review.customer_id) if review.customer_id else None
    ticket = (
        session.scalar(select(Ticket.number).where(Ticket.id == review.ticket_id))
        if review.ticket_id
        else None
    )
    return {
        "id": review.id,
        "sku": review.sku,
        "order": order_number,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "verified_buyer": review.verified_buyer,
        "source": review.source,
        "hidden": review.hidden,
        "hidden_reason": review.hidden_reason,
        "reply": _reply(review, staff=True),
        "customer": {"email": customer.email, "name": customer.name} if customer else None,
        "ticket": ticket,
        "photos": _photos(review, f"/api/v1/reviews/{review.id}/photos"),
        "created_by": review.created_by,
        "created_at": review.created_at.isoformat(),
        "updated_at": review.updated_at.isoformat(),
    }


def public_view(review: Review, author: str | None, slug: str) -> dict[str, Any]:
    """What anyone may see: no e-mail address, no order, the author as "Ann L.", the
    photos at their public addresses."""
    return {
        "id": review.id,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "verified_buyer": review.verified_buyer,
        "author": author,
        "reply": _reply(review, staff=False),
        "photos": _photos(review, f"/public/{slug}/reviews/{review.id}/photos"),
        "created_at": review.created_at.isoformat(),
    }


def _reply(review: Review, *, staff: bool) -> dict[str, Any] | None:
    if review.reply is None:
        return None
    out: dict[str, Any] = {"body": review.reply, "at": _iso(review.replied_at)}
    if staff:
        out["by"] = review.replied_by
    return out


def display_name(name: str | None) -> str | None:
    """A reviewer as the public sees them: first name and the initial of the last."""
    words = (name or "").split()
    if not words:
        return None
    return words[0] if len(words) == 1 else f"{words[0]} {words[-1][0]}."


def rating(session: Session, tenant_id: int, product_id: int) -> dict[str, Any]:
    """Average (Decimal, two places, half up), count and per-star counts over the product's
    visible reviews; the average is None while there are none."""
    stars = dict(
        session.execute(
            select(Review.rating, func.count())
            .where(
                Review.tenant_id == tenant_id,
                Review.product_id == product_id,
                Review.hidden.is_(False),
            )
            .group_by(Review.rating)
        ).all()
    )
    count = sum(stars.values())
    total = sum(star * n for star, n in stars.items())
    average = (Decimal(total) / Decimal(count)).quantize(CENT, ROUND_HALF_UP) if count else None
    return {
        "average": average,
        "count": count,
        "stars": {str(star): stars.get(star, 0) for star in range(1, 6)},
    }


def product(session: Session, tenant_id: int, sku: str) -> Product:
    found = session.scalar(
        select(Product).where(Product.tenant_id == tenant_id, Product.sku == sku)
    )
    if found is None:
        raise NotFound(f"no product {sku!r}")
    return found


def public_page(session: Session, slug: str, sku: str, page: int, per_page: int) -> dict[str, Any]:
    """A product's visible reviews for anyone, newest first, with its rating. An unknown
    tenant and an unknown product are the same 404."""
    tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise NotFound(f"no product {sku!r}")
    item = product(session, tenant_id, sku)
    visible = (
        select(Review, Customer.name)
        .outerjoin(Customer, Customer.id == Review.customer_id)
        .where(
            Review.tenant_id == tenant_id, Review.product_id == item.id, Review.hidden.is_(False)
        )
    )
    total = session.scalar(select(func.count()).select_from(visible.subquery()))
    rows = session.execute(
        visible.order_by(Review.created_at.desc(), Review.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return {
        "product": {"sku": item.sku, "name": item.name},
        "rating": rating(session, tenant_id, item.id),
        "items": [public_view(r, display_name(name), slug) for r, name in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


# --- the review link in a review request -------------------------------------------------------


def linked_order(session: Session, secret_key: str, token: str) -> Order:
    """The order a review link is for; LinkInvalid unless it is the token's tenant's and
    still its customer's."""
    data = care_links.read(secret_key, "review", token)
    order = session.scalar(
        select(Order).where(Order.tenant_id == data["t"], Order.id == data.get("o"))
    )
    if order is None or order.customer_id is None or order.customer_id != data.get("c"):
        raise care_links.LinkInvalid
    return order


def link_view(session: Session, order: Order) -> dict[str, Any]:
    """What a review link opens: the order's lines, and which can still be reviewed."""
    reviewed = set(session.scalars(select(Review.order_line_id).where(Review.order_id == order.id)))
    lines = session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_no)
    ).all()
    return {
        "tenant": session.scalar(select(Tenant.slug).where(Tenant.id == order.tenant_id)),
        "order": order.number,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "reviewed": line.id in reviewed,
                "delivered": line_delivered(session, order, line),
            }
            for line in lines
        ],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None
