"""Who am I, users and their tokens, the audit log, customers and plugins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.core import audit as audit_log
from hub.core import auth, ticket_assignment
from hub.core.errors import Conflict, NotFound
from hub.core.models import AuditEntry, Customer, User
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, paginate, route


@route(
    "/me", permission=None, summary="The caller: user, role, tenant and permissions", tag="admin"
)
def me(ctx: Ctx) -> dict[str, Any]:
    return _me_view(ctx)


def _me_view(ctx: Ctx) -> dict[str, Any]:
    p = ctx.principal
    user = ctx.session.get(User, p.user_id)
    return {
        "username": p.username,
        "role": p.role,
        "tenant": p.tenant_slug,
        "permissions": sorted(auth.ROLES[p.role]),
        "available": user.available if user is not None else None,
    }


@route(
    "/me",
    "PATCH",
    permission=None,
    summary="Mark yourself available for tickets or away (your open tickets are handed over)",
    tag="admin",
    body=schemas.closed({"available": {"type": "boolean"}}, ("available",)),
)
def update_me(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    """An agent going to lunch need not ask an admin: availability is the one thing of their
    own record a user changes themselves."""
    user = ctx.session.get(User, ctx.principal.user_id)
    if user is None:  # a token whose user was removed meanwhile
        raise NotFound("your user is not there any more")
    before = user.available
    user.available = body["available"]
    ctx.session.flush()
    if before and not user.available:
        ticket_assignment.hand_over(ctx.session, user, ctx.tenant.tickets, ctx.actor)
    if before != user.available:
        audit_log.record(
            ctx.session,
            ctx.tenant_id,
            ctx.actor,
            "user.availability",
            "user",
            user.username,
            {"available": before},
            {"available": user.available},
        )
    return _me_view(ctx)


@route("/users", permission="users.read", summary="List users", tag="admin")
def list_users(ctx: Ctx) -> dict[str, Any]:
    users = ctx.session.scalars(
        select(User).where(User.tenant_id == ctx.tenant_id).order_by(User.username)
    ).all()
    return {"items": [auth.user_view(u) for u in users], "total": len(users)}


@route(
    "/users",
    "POST",
    permission="users.write",
    summary="Create a user",
    tag="admin",
    body=schemas.USER_CREATE,
    status=201,
)
def create_user(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    contact = {k: body.get(k) for k in ("full_name", "email", "phone", "address")}
    user = auth.create_user(
        ctx.session,
        ctx.tenant_id,
        body["username"],
        body["password"],
        body["role"],
        ctx.actor,
        **contact,
    )
    return auth.user_view(user)


@route(
    "/users/<username>",
    "PATCH",
    permission="users.write",
    tag="admin",
    summary="Change a user's role, contact, password or active flag",
    body=schemas.USER_UPDATE,
)
def update_user(ctx: Ctx, username: str, body: dict[str, Any]) -> dict[str, Any]:
    user = _user(ctx, username)
    if user.id == ctx.principal.user_id and (
        body.get("active") is False or body.get("role", "admin") != "admin"
    ):
        raise Conflict("you cannot demote or deactivate yourself")
    before = auth.user_view(user)
    for key in ("role", "full_name", "email", "phone", "address", "active", "available", "skills"):
        if key in body:
            setattr(user, key, body[key])
    if "password" in body:
        auth.set_password(user, body["password"])
    if body.get("active") is False:
        auth.revoke_tokens(ctx.session, user, ctx.actor)
    if body.get("active") is False or body.get("available") is False:
        ctx.session.flush()
        ticket_assignment.hand_over(ctx.session, user, ctx.tenant.tickets, ctx.actor)
    auth.forget_principals()  # a new role or a deactivation applies to the next request
    ctx.session.flush()
    audit_log.record(
        ctx.session,
        ctx.tenant_id,
        ctx.actor,
        "user.update",
        "user",
        username,
        before,
        auth.user_view(user) | ({"password_changed": True} if "password" in body else {}),
    )
    return auth.user_view(user)


@route(
    "/users/<username>/tokens",
    "POST",
    permission="users.write",
    tag="admin",
    summary="Issue an API token for a user (shown once)",
    body=schemas.TOKEN_CREATE,
    status=201,
)
def create_token(ctx: Ctx, username: str, body: dict[str, Any]) -> dict[str, Any]:
    user = _user(ctx, username)
    expires_at = auth.token_expiry(body.get("expires_at"), body.get("expires_in_days"))
    token, row = auth.issue_token(ctx.session, user, ctx.actor, body.get("name"), expires_at)
    return {"token": token, **auth.token_view(row, user.username)}


@route(
    "/tokens",
    permission="users.read",
    tag="admin",
    summary="List API tokens (never their secrets): live ones, or all with include_ended",
    query=(
        Param("user", description="only this user's tokens"),
        Param("include_ended", "boolean", description="also revoked and expired tokens"),
    ),
)
def list_tokens(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    items = auth.list_tokens(
        ctx.session,
        ctx.tenant_id,
        args.get("user"),
        include_ended=bool(args.get("include_ended")),
    )
    return {"items": items, "total": len(items)}


@route(
    "/tokens/<int:token_id>/revoke",
    "POST",
    permission="users.write",
    tag="admin",
    summary="Revoke one API token",
)
def revoke_token(ctx: Ctx, token_id: int) -> dict[str, Any]:
    return auth.revoke_token(ctx.session, ctx.tenant_id, token_id, ctx.actor)


@route(
    "/users/<username>/tokens/revoke",
    "POST",
    permission="users.write",
    tag="admin",
    summary="Revoke every API token of a user",
)
def revoke_tokens(ctx: Ctx, username: str) -> dict[str, Any]:
    return {"revoked": auth.revoke_tokens(ctx.session, _user(ctx, username), ctx.actor)}


@route(
    "/audit",
    permission="audit.read",
    summary="The audit log, newest first",
    tag="admin",
    paged=True,
    query=(Param("entity_type"), Param("entity_id"), Param("actor"), Param("action")),
)
def list_audit(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(AuditEntry).where(AuditEntry.tenant_id == ctx.tenant_id)
    for key in ("entity_type", "entity_id", "actor", "action"):
        if key in args:
            stmt = stmt.where(getattr(AuditEntry, key) == args[key])
    return paginate(
        ctx,
        stmt,
        AuditEntry.id.desc(),
        args,
        lambda e: {
            "id": e.id,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "before": e.before,
            "after": e.after,
        },
    )


@route(
    "/customers",
    permission="customers.read",
    summary="Find customers",
    tag="admin",
    paged=True,
    query=(Param("q", description="name, e-mail or phone contains"),),
)
def list_customers(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(Customer).where(Customer.tenant_id == ctx.tenant_id)
    if args.get("q"):
        pattern = f"%{args['q']}%"
        stmt = stmt.where(
            Customer.name.ilike(pattern)
            | Customer.email.ilike(pattern)
            | Customer.phone.ilike(pattern)
        )
    return paginate(
        ctx,
        stmt,
        Customer.id,
        args,
        lambda c: {
            "id": c.id,
            "email": c.email,
            "name": c.name,
            "phone": c.phone,
            "language": c.language,
            "birthday": c.birthday.isoformat() if c.birthday else None,
            "vip": c.vip,
        },
    )


@route(
    "/plugins",
    permission=None,
    tag="admin",
    summary="Installed channels, carriers and notifiers with their settings schemas",
)
def list_plugins(ctx: Ctx) -> dict[str, Any]:
    """Every user may learn what can be set up and how (secret settings are marked
    ``x-secret``); which plugin modules loaded from where, and what failed to load, are the
    operator's details, shown to roles that may read plugins (admins)."""
    return ctx.runtime.plugins.catalogue(ctx.tenant, host_details=ctx.principal.can("plugins.read"))


def _user(ctx: Ctx, username: str) -> User:
    user = auth.find_user(ctx.session, ctx.tenant_id, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user
