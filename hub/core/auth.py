"""Users, roles, permissions and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub.core import audit
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.models import ApiToken, Tenant, User

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
    }
)

_READ = {"orders.read", "catalog.read", "stock.read", "customers.read"}

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
        }
    ),
    "warehouse": frozenset(
        _READ
        | {"stock.write", "catalog.write", "shipping.read", "shipping.write", "tracking.write"}
    ),
    # tracking.write: record tracking events and delivery exceptions by hand, check now.
    "service": frozenset(_READ | {"shipping.read", "tracking.write"}),
    "analyst": frozenset(_READ | {"reports.read", "channels.read", "shipping.read"}),
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
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters")
    existing = session.scalar(
        select(User).where(User.tenant_id == tenant_id, User.username == username)
    )
    if existing is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        tenant_id=tenant_id,
        username=username,
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
        role=role,
        **contact,
    )
    session.add(user)
    session.flush()
    audit.record(session, tenant_id, actor, "user.create", "user", username, None, user_view(user))
    return user


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
    }


def check_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters")
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)


def create_token(session: Session, user: User, actor: str, name: str | None = None) -> str:
    """Returns the token once; only its hash is stored."""
    if not user.active:
        raise Conflict(f"user {user.username!r} is deactivated; reactivate it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            tenant_id=user.tenant_id,
            user_id=user.id,
            token_hash=hash_token(token),
            prefix=token[:10],
            name=name,
        )
    )
    session.flush()
    audit.record(
        session,
        user.tenant_id,
        actor,
        "token.create",
        "user",
        user.username,
        None,
        {"prefix": token[:10], "name": name},
    )
    return token


# Every API request authenticates; a short-lived in-process cache saves that query on the hot
# path. Changes made in this process (revoke, deactivate, new role) clear it at once; another
# process sees them within PRINCIPAL_TTL seconds.
PRINCIPAL_TTL = 5.0
_principals: dict[str, tuple[float, Principal]] = {}
_principals_lock = threading.Lock()

_users, _tokens, _tenants = User.__table__, ApiToken.__table__, Tenant.__table__
_AUTHENTICATE = (
    select(_users.c.tenant_id, _tenants.c.slug, _users.c.id, _users.c.username, _users.c.role)
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
    key = hash_token(token)
    now = time.monotonic()
    cached = _principals.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = session.execute(_AUTHENTICATE, {"token_hash": key}).first()
    if row is None:
        return None
    principal = Principal(*row)
    with _principals_lock:
        if len(_principals) > 10_000:
            _principals.clear()
        _principals[key] = (now + PRINCIPAL_TTL, principal)
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
