"""Tenants (merchants), their users and API tokens, and per-tenant counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, validates

from hub.core.db import Base, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantScoped:
    """Mixin for every row that belongs to one merchant; queries are filtered on it centrally.

    No index of its own: every table's lookups lead with the tenant in a composite index (or
    go through a parent row), and each extra index is written on every insert.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


def username_key(username: str) -> str:
    """What makes two usernames the same person: "Ann" and "ann" are one user."""
    return username.casefold()


class User(TenantScoped, Base):
    """A username is shown as it was written; its case-folded key is unique per tenant, so
    nobody can add "Ann" beside "ann", and lookups by name ignore case."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("tenant_id", "username_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    # casefold() may lengthen a name (ß → ss), hence more room than the username has.
    username_key: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Service agents: whether tickets may be assigned to them now, the ticket categories they
    # handle (assignment by skill), and when they were last given one (round robin).
    available: Mapped[bool] = mapped_column(default=True)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_assigned_at: Mapped[datetime | None]

    @validates("username")
    def _keep_key(self, _key: str, value: str) -> str:
        self.username_key = username_key(value)
        return value


class ApiToken(TenantScoped, Base):
    """Only a SHA-256 of the token is kept: tokens are long random strings, so a slow hash adds
    nothing but latency on every request."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # None: valid until revoked. Checked on every request (the principal cache included).
    expires_at: Mapped[datetime | None]


class Counter(TenantScoped, Base):
    """Per-tenant sequences (order numbers): incremented with UPDATE … RETURNING, never max()+1."""

    __tablename__ = "counters"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    value: Mapped[int] = mapped_column(default=0)
