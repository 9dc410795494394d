"""Channel connections, SKU mappings and the inbox of deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from hub.core import events, intake
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.models import Connection, InboxEntry
from hub.web import webhook_test
from hub.web.api.framework import AfterCommit, Ctx, Param, paginate, route
from hub.web.api.schemas import closed
from hub.web.public_url import PROBLEM, external_url

TAG = "channels"

CONNECTION_CREATE = closed(
    {
        "plugin": {"type": "string", "minLength": 1, "maxLength": 64},
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "settings": {"type": "object"},
    },
    ("plugin", "name", "settings"),
)
DISCARD = closed({"reason": {"type": "string", "minLength": 1, "maxLength": 500}}, ("reason",))
SKU_MAPPING = closed(
    {
        "channel_ref": {"type": "string", "minLength": 1, "maxLength": 100},
        "sku": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    ("channel_ref", "sku"),
)


def _view(
    ctx: Ctx, connection: Connection, stats: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A connection as the API shows it; ``stats`` lets a listing count the inbox once."""
    if stats is None:
        stats = intake.connection_stats(ctx.session, ctx.tenant_id)
    cls = ctx.runtime.plugins.adapters("channels").get(connection.plugin)
    out = intake.connection_view(connection, cls.secret_settings if cls else ())
    out["capabilities"] = sorted(cls.capabilities) if cls else []
    out["webhook_url"] = external_url(f"/hooks/{ctx.principal.tenant_slug}/{connection.id}")
    out["webhook_url_problem"] = None if out["webhook_url"] else PROBLEM
    counts = stats.get(connection.id, {})
    out["backlog"], out["rejected"] = counts.get("pending", 0), counts.get("rejected", 0)
    last = counts.get("last_delivery_at")
    out["last_delivery_at"] = last.isoformat() if last else None
    return out


@route(
    "/connections",
    "POST",
    permission="channels.write",
    tag=TAG,
    status=201,
    summary="Connect a channel plugin with its settings",
    body=CONNECTION_CREATE,
)
def create_connection(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    cls = ctx.runtime.plugins.adapters("channels", ctx.tenant).get(body["plugin"])
    if cls is None:
        raise Invalid(
            f"no channel plugin {body['plugin']!r} is enabled; available: "
            + ", ".join(sorted(ctx.runtime.plugins.adapters("channels", ctx.tenant)))
        )
    connection = intake.create_connection(
        ctx.session,
        ctx.tenant_id,
        cls,
        body["name"],
        body["settings"],
        box=ctx.runtime.secrets,
        actor=ctx.actor,
    )
    return _view(ctx, connection)


@route(
    "/connections/<int:connection_id>/test",
    "POST",
    permission="channels.write",
    tag=TAG,
    summary="Send a test delivery to the connection's own webhook URL (nothing is stored)",
)
def test_connection(ctx: Ctx, connection_id: int) -> AfterCommit:
    """The channel plugin signs a delivery the hub acknowledges and does not store; the hub
    posts it to its public webhook URL, through whatever stands in front of it, and reports
    what came back: reachable and the secret right, or what went wrong."""
    connection = intake.get_connection(ctx.session, ctx.tenant_id, connection_id)
    adapter = ctx.runtime.adapter_for(connection)
    sample = adapter.test_delivery()
    if sample is None:
        raise Invalid(f"the {connection.plugin} plugin offers no test delivery")
    url = external_url(f"/hooks/{ctx.principal.tenant_slug}/{connection.id}")
    if url is None:
        raise Invalid(PROBLEM)
    headers, body = sample
    return AfterCommit(lambda: webhook_test.send(url, headers, body))


@route(
    "/connections",
    permission="channels.read",
    tag=TAG,
    summary="Connections with their last delivery, backlog and rejected deliveries",
)
def list_connections(ctx: Ctx) -> dict[str, Any]:
    found = ctx.session.scalars(
        select(Connection).where(Connection.tenant_id == ctx.tenant_id).order_by(Connection.id)
    ).all()
    stats = intake.connection_stats(ctx.session, ctx.tenant_id)
    return {"items": [_view(ctx, c, stats) for c in found], "total": len(found)}


@route(
    "/connections/<int:connection_id>",
    permission="channels.read",
    tag=TAG,
    summary="Read a connection",
)
def get_connection(ctx: Ctx, connection_id: int) -> dict[str, Any]:
    connection = intake.get_connection(ctx.session, ctx.tenant_id, connection_id)
    return _view(ctx, connection)


@route(
    "/connections/<int:connection_id>/pause",
    "POST",
    permission="channels.write",
    tag=TAG,
    summary="Pause a connection: deliveries are still stored, not processed",
)
def pause_connection(ctx: Ctx, connection_id: int) -> dict[str, Any]:
    connection = intake.set_paused(ctx.session, ctx.tenant_id, connection_id, True, ctx.actor)
    return _view(ctx, connection)


@route(
    "/connections/<int:connection_id>/resume",
    "POST",
    permission="channels.write",
    tag=TAG,
    summary="Resume a connection and process what waited",
)
def resume_connection(ctx: Ctx, connection_id: int) -> dict[str, Any]:
    connection = intake.set_paused(ctx.session, ctx.tenant_id, connection_id, False, ctx.actor)
    waiting = ctx.session.scalars(
        select(InboxEntry.id).where(
            InboxEntry.connection_id == connection_id, InboxEntry.status == "pending"
        )
    ).all()
    for entry_id in waiting:
        events.send_after_commit(ctx.session, "ingest", entry_id)
    return _view(ctx, connection)


@route(
    "/connections/<int:connection_id>/poll",
    "POST",
    permission="channels.write",
    tag=TAG,
    status=202,
    summary="Poll a pull channel now (the worker also polls it on its schedule)",
)
def poll_connection(ctx: Ctx, connection_id: int) -> dict[str, Any]:
    connection = intake.get_connection(ctx.session, ctx.tenant_id, connection_id)
    cls = ctx.runtime.plugins.adapters("channels").get(connection.plugin)
    if cls is None or "pull" not in cls.capabilities:
        raise Conflict(
            f"connection {connection_id} ({connection.plugin}) is not a pull channel: its"
            " orders arrive by webhook, there is nothing to poll"
        )
    if connection.paused:
        raise Conflict(f"connection {connection_id} is paused; resume it to poll")
    events.send_after_commit(ctx.session, "poll_channel", connection_id)
    return {"queued": True}


@route(
    "/connections/<int:connection_id>/sku-mappings",
    "POST",
    permission="channels.write",
    tag=TAG,
    status=201,
    body=SKU_MAPPING,
    summary="Map a channel SKU or product id to one of ours",
)
def add_sku_mapping(ctx: Ctx, connection_id: int, body: dict[str, Any]) -> dict[str, Any]:
    mapping = intake.add_sku_mapping(
        ctx.session, ctx.tenant_id, connection_id, body["channel_ref"], body["sku"], ctx.actor
    )
    return {"connection": connection_id, "channel_ref": mapping.channel_ref, "sku": mapping.sku}


@route(
    "/channels/<plugin>/schema",
    permission=None,
    tag=TAG,
    summary="The JSON Schema of a channel's order format (e.g. storefront)",
)
def channel_schema(ctx: Ctx, plugin: str) -> dict[str, Any]:
    cls = ctx.runtime.plugins.adapters("channels", ctx.tenant).get(plugin)
    if cls is None or cls.payload_schema is None:
        raise NotFound(f"channel {plugin!r} publishes no order format")
    return cls.payload_schema


@route(
    "/inbox",
    permission="channels.read",
    tag=TAG,
    paged=True,
    summary="Channel deliveries, e.g. the rejected ones with their reasons",
    query=(
        Param("status", enum=intake.INBOX_STATUSES),
        Param("connection", "integer", minimum=1),
    ),
)
def list_inbox(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(InboxEntry).where(InboxEntry.tenant_id == ctx.tenant_id)
    if "status" in args:
        stmt = stmt.where(InboxEntry.status == args["status"])
    if "connection" in args:
        stmt = stmt.where(InboxEntry.connection_id == args["connection"])
    return paginate(ctx, stmt, InboxEntry.id.desc(), args, _entry_view)


def _entry_view(e: InboxEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "connection": e.connection_id,
        "delivery_key": e.delivery_key,
        "topic": e.topic,
        "status": e.status,
        "reason": e.reason,
        "attempts": e.attempts,
        "received_at": e.received_at.isoformat(),
        "processed_at": e.processed_at.isoformat() if e.processed_at else None,
    }


@route(
    "/inbox/<int:entry_id>/replay",
    "POST",
    permission="orders.write",
    tag=TAG,
    status=202,
    summary="Process a rejected delivery again (after fixing a SKU mapping, say)",
)
def replay_inbox(ctx: Ctx, entry_id: int) -> dict[str, Any]:
    entry = intake.replay(ctx.session, ctx.tenant_id, entry_id, ctx.actor)
    events.send_after_commit(ctx.session, "ingest", entry.id)
    return {"id": entry.id, "status": entry.status}


@route(
    "/inbox/<int:entry_id>/discard",
    "POST",
    permission="channels.write",
    tag=TAG,
    body=DISCARD,
    summary="Give up on a rejected (or waiting) delivery for good, saying why; it stays listed",
)
def discard_inbox(ctx: Ctx, entry_id: int, body: dict[str, Any]) -> dict[str, Any]:
    grace = timedelta(seconds=ctx.runtime.settings.sweep_grace_seconds)
    entry = intake.discard(
        ctx.session, ctx.tenant_id, entry_id, ctx.actor, body["reason"], utcnow() - grace
    )
    return _entry_view(entry)
