"""What the web pages keep: staff's saved order views, and customers' one-time portal links."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class SavedView(TenantScoped, Base):
    """A named query string of a list page: the user's own (``user_id``) or, with no user,
    shared with the whole shop. The URL is the state, so a view is nothing but its query."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("tenant_id", "page", "owner_key", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # "u<id>" or "shared": a unique key that NULL user ids would not give on every database.
    owner_key: Mapped[str] = mapped_column(String(24))
    name: Mapped[str] = mapped_column(String(60))
    query: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PortalLink(TenantScoped, Base):
    """A one-time sign-in link to the customer portal. Only a SHA-256 of its random token is
    kept; it is used up by the POST of its confirmation page (mail scanners GET every link,
    so a GET never spends it) and expires on its own."""

    __tablename__ = "portal_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
