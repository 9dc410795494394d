"""Users, roles, permissions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub.core import audit, times
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound, TokenExpired
from hub.core.models import ApiToken, Tenant, User
from hub.core.models.tenancy import username_key

PERMISSIONS = frozenset(
    {
        "orders.read",
        "orders.write",
        "orders.approve",
        "catalog.read",
        "catalog.write",
        "stock.read",
        "stock.write",
        "customers.read",
        "reports.read",
        "users.read",
        "users.write",
        "audit.read",
        "plugins.read",
        "channels.read",
        "channels.write",
        "shipping.read",
        "shipping.write",
        # Configuring carrier accounts (settings, secrets, base URLs): admins only.
        "carriers.write",
        "tracking.write",
        "tickets.read",
        "tickets.write",
        # Messages about events: their state and errors; replaying them, enabling a notifier.
        "notifications.read",
        "notifications.write",
        # Returns: read them; create, cancel and close them; receive their goods; refund.
        "returns.read",
        "returns.write",
        "returns.receive",
        "refunds.write",
        # Product reviews: read them, take one for a customer, hide / show / reply.
        "reviews.read",
        "reviews.write",
        "reviews.moderate",
        # What the care rules sent or skipped, and the surveys customers answered.
        "care.read",
    }
)

_READ = {"orders.read", "catalog.read", "stock.read", "customers.read"}
_RETURNS = {"returns.read", "returns.write", "returns.receive", "refunds.write"}
# The service desk's review and care work (operators and admins do it too).
_REVIEWS = {"reviews.read", "reviews.write", "reviews.moderate", "care.read"}

ROLES: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "operator": frozenset(
        _READ
        | {
            "orders.write",
            "orders.approve",
            "reports.read",
            "channels.read",
            "shipping.read",
            "shipping.write",
            "tracking.write",
            "tickets.read",
            "tickets.write",
            "notifications.read",
            "notifications.write",
            *_RETURNS,
        }
        | _REVIEWS
    ),
    # The dock receives returned parcels; deciding on returns and money is not theirs.
    "warehouse": frozenset(
        _READ
        | {
            "stock.write",
            "catalog.write",
            "shipping.read",
            "shipping.write",
            "tracking.write",
            "returns.read",
            "returns.receive",
        }
    ),
    # tracking.write: record tracking events and delivery exceptions by hand, check now.
    # tickets: the service desk's own work; refunds.write up to the tenant's [service]
    # refund_limit (hub.core.refunds); reviews and care: moderating reviews and reading what
    # care rules sent.
    "service": frozenset(
        _READ
        | {"shipping.read", "tracking.write", "tickets.read", "tickets.write", *_RETURNS}
        | _REVIEWS
    ),
    "analyst": frozenset(
        _READ
        | {
            "reports.read",
            "channels.read",
            "shipping.read",
            "tickets.read",
            "returns.read",
            "reviews.read",
            "care.read",
        }
    ),
}

TOKEN_PREFIX = "oh_"
# Werkzeug's memory-hard default. Test suites may swap in a cheap method, as Django's do.
PASSWORD_METHOD = "scrypt"


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved once per request from the bearer token."""

    tenant_id: int
    tenant_slug: str
    user_id: int
    username: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in ROLES[self.role]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return role


def get_tenant(session: Session, slug: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def create_user(
    session: Session,
    tenant_id: int,
    username: str,
    password: str,
    role: str,
    actor: str,
    **contact: str | None,
) -> User:
    check_role(role)
    user = User(tenant_id=tenant_id, username=username, role=role, **contact)
    set_password(user, password)
    existing = find_user(session, tenant_id, username)
    if existing is not None:
        same = "" if existing.username == username else f" as {existing.username!r}"
        raise Conflict(
            f"user {username!r} already exists{same} (usernames are unique whatever their case)"
        )
    session.add(user)
    session.flush()
    audit.record(session, tenant_id, actor, "user.create", "user", username, None, user_view(user))
    return user


def find_user(session: Session, tenant_id: int, username: str) -> User | None:
    """The tenant's user of that name, whatever its case ("ANN" finds "ann")."""
    return session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.username_key == username_key(username))
    )


def user_view(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "full_name": user.full_name,
        "email": user.email,
        "phone": user.phone,
        "address": user.address,
        "active": user.active,
        "available": user.available,
        "skills": list(user.skills or []),
    }


def check_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters")
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)


def create_token(
    session: Session,
    user: User,
    actor: str,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Returns the token once; only its hash is stored. ``expires_at`` (aware, in the future)
    ends it by itself; without one it lasts until revoked."""
    return issue_token(session, user, actor, name, expires_at)[0]


# A token is at most this many days away from its end (ten years: "never" has no expiry).
MAX_TOKEN_DAYS = 3650


def token_expiry(
    expires_at: str | None = None, expires_in_days: int | None = None
) -> datetime | None:
    """When a new token ends: an ISO date (that day's start, UTC) or date-time (UTC without
    an offset), or a number of days from now; neither means "until revoked"."""
    if expires_at is not None and expires_in_days is not None:
        raise Invalid("give expires_at or expires_in_days, not both")
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
            raise Invalid(f"expires_in_days must be between 1 and {MAX_TOKEN_DAYS}")
        return utcnow() + timedelta(days=expires_in_days)
    if expires_at is None:
        return None
    try:
        when = times.parse_instant(expires_at, assume_utc=True)
    except ValueError:
        raise Invalid(
            "expires_at must be an ISO date (2027-01-31) or date-time (2027-01-31T12:00:00Z)"
        ) from None
    if when <= utcnow():
        raise Invalid("expires_at must be in the future")
    if when > utcnow() + timedelta(days=MAX_TOKEN_DAYS):
        raise Invalid(f"expires_at must be within {MAX_TOKEN_DAYS} days")
    return when


def issue_token(
    session: Session,
    user: User,
    actor: str,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """``create_token``, also giving the stored row (its id, for listing and revoking)."""
    if not user.active:
        raise Conflict(f"user {user.username!r} is deactivated; reactivate it first")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at must be in the future")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        tenant_id=user.tenant_id,
        user_id=user.id,
        token_hash=hash_token(token),
        prefix=token[:10],
        name=name,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        user.tenant_id,
        actor,
        "token.create",
        "user",
        user.username,
        None,
        {
            "id": row.id,
            "prefix": token[:10],
            "name": name,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, row


def token_view(token: ApiToken, username: str) -> dict[str, object]:
    """A token as admins see it: never the secret nor its hash, only the short prefix that
    tells tokens apart."""
    now = utcnow()
    if token.revoked_at is not None:
        state = "revoked"
    elif token.expires_at is not None and token.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": token.id,
        "name": token.name,
        "user": username,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "state": state,
    }


def list_tokens(
    session: Session, tenant_id: int, username: str | None = None, *, include_ended: bool = False
) -> list[dict[str, object]]:
    """The tenant's tokens, newest first: the live ones, or with ``include_ended`` also the
    revoked and expired ones."""
    stmt = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.tenant_id == tenant_id)
        .order_by(ApiToken.id.desc())
    )
    if username is not None:
        stmt = stmt.where(User.username_key == username_key(username))
    if not include_ended:
        stmt = stmt.where(
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at.is_(None) | (ApiToken.expires_at > utcnow()),
        )
    return [token_view(t, name) for t, name in session.execute(stmt).all()]


def revoke_token(session: Session, tenant_id: int, token_id: int, actor: str) -> dict[str, object]:
    """Revoke one token, at once for this process and within PRINCIPAL_TTL for others.
    Revoking a revoked token changes nothing and records nothing."""
    found = session.execute(
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.tenant_id == tenant_id, ApiToken.id == token_id)
    ).first()
    if found is None:
        raise NotFound(f"no token {token_id}")
    token, username = found
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        forget_principals()
        audit.record(
            session,
            tenant_id,
            actor,
            "token.revoke",
            "user",
            username,
            None,
            {"id": token.id, "prefix": token.prefix, "name": token.name},
        )
    return token_view(token, username)


# Every API request authenticates; a short-lived in-process cache saves that query on the hot
# path. Changes made in this process (revoke, deactivate, new role) clear it at once; another
# process sees them within PRINCIPAL_TTL seconds. Expiry is checked on every request.
PRINCIPAL_TTL = 5.0
_principals: dict[str, tuple[float, Principal, datetime | None]] = {}
_principals_lock = threading.Lock()

_users, _tokens, _tenants = User.__table__, ApiToken.__table__, Tenant.__table__
_AUTHENTICATE = (
    select(
        _users.c.tenant_id,
        _tenants.c.slug,
        _users.c.id,
        _users.c.username,
        _users.c.role,
        _tokens.c.expires_at,
    )
    .select_from(
        _tokens.join(_users, _users.c.id == _tokens.c.user_id).join(
            _tenants, _tenants.c.id == _users.c.tenant_id
        )
    )
    .where(
        _tokens.c.token_hash == bindparam("token_hash"),
        _tokens.c.revoked_at.is_(None),
        _users.c.active.is_(True),
    )
)


def authenticate(session: Session, token: str) -> Principal | None:
    """The caller a token names, or None for an unknown or revoked one; an expired token
    raises TokenExpired so the caller learns why (it was valid: saying so reveals nothing)."""
    key = hash_token(token)
    now = time.monotonic()
    cached = _principals.get(key)
    if cached is not None and cached[0] > now:
        principal, expires_at = cached[1], cached[2]
    else:
        row = session.execute(_AUTHENTICATE, {"token_hash": key}).first()
        if row is None:
            return None
        principal, expires_at = Principal(*row[:5]), row.expires_at
        with _principals_lock:
            if len(_principals) > 10_000:
                _principals.clear()
            _principals[key] = (now + PRINCIPAL_TTL, principal, expires_at)
    if expires_at is not None:
        # Core select: SQLite hands back a naive UTC datetime.
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
        if expires_at <= utcnow():
            raise TokenExpired(
                f"the API token expired at {expires_at.isoformat(timespec='seconds')};"
                " ask an admin for a new one"
            )
    return principal


def forget_principals() -> None:
    """Drop cached authentications after a change to users or tokens."""
    with _principals_lock:
        _principals.clear()


def revoke_tokens(session: Session, user: User, actor: str) -> int:
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for t in tokens:
        t.revoked_at = utcnow()
    forget_principals()
    audit.record(
        session,
        user.tenant_id,
        actor,
        "token.revoke",
        "user",
        user.username,
        None,
        {"revoked": len(tokens)},
    )
    return len(tokens)
