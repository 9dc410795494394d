"""Notifications: every message the hub sent or tried to send, with its state, replaying a
failed one, and the tenant's notifiers (enabling one its destination had disabled)."""

from __future__ import annotations

from typing import Any

from hub.core import events, notifications
from hub.core.events import EVENT_NAMES
from hub.core.models import NotificationDelivery
from hub.web.api.framework import Ctx, Param, paginate, route

TAG = "notifications"


@route(
    "/notifications",
    permission="notifications.read",
    tag=TAG,
    summary="Messages about events, newest first: state, attempts, last error, recipient",
    query=(
        Param("status", enum=notifications.STATUSES),
        Param("notifier", description="the notifier's name in the tenant file"),
        Param("event", enum=EVENT_NAMES),
    ),
    paged=True,
)
def list_notifications(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = notifications.find(
        ctx.tenant_id,
        status=args.get("status"),
        notifier=args.get("notifier"),
        event=args.get("event"),
    )
    return paginate(
        ctx,
        stmt,
        NotificationDelivery.id.desc(),
        args,
        lambda row: notifications.delivery_dict(*row),
        rows=True,
    )


@route(
    "/notifications/<int:notification_id>/replay",
    "POST",
    permission="notifications.write",
    tag=TAG,
    status=202,
    summary="Send a failed message again, with a fresh round of retries",
)
def replay_notification(ctx: Ctx, notification_id: int) -> dict[str, Any]:
    view = notifications.replay(ctx.session, ctx.tenant_id, notification_id, ctx.actor)
    events.send_after_commit(ctx.session, "send_notification", notification_id)
    return view


@route(
    "/notifiers",
    permission="notifications.read",
    tag=TAG,
    summary="The tenant's notifiers: plugin, events heard, and whether one is disabled",
)
def list_notifiers(ctx: Ctx) -> dict[str, Any]:
    items = _notifiers(ctx)
    return {"items": items, "total": len(items)}


@route(
    "/notifiers/<name>/enable",
    "POST",
    permission="notifications.write",
    tag=TAG,
    summary="Use a notifier again that its destination had disabled (a webhook's 410)",
)
def enable_notifier(ctx: Ctx, name: str) -> dict[str, Any]:
    notifications.enable(ctx.session, ctx.tenant_id, ctx.tenant, name, ctx.actor)
    return next(item for item in _notifiers(ctx) if item["name"] == name)


def _notifiers(ctx: Ctx) -> list[dict[str, Any]]:
    catalogue = ctx.runtime.plugins.adapters("notifiers")
    return notifications.notifiers(
        ctx.session,
        ctx.tenant_id,
        ctx.tenant,
        lambda plugin: getattr(catalogue.get(plugin), "title", "") or "",
    )
