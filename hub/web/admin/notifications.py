"""Notifications: the messages the hub sent or tried to send, failed ones first, replaying one
that failed, and the notifiers (enabling one its destination had disabled)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from hub.core import notifications as messages
from hub.core.errors import HubError
from hub.core.events import EVENT_NAMES
from hub.web.admin import api, field_errors, page

PAGE_SIZES = ("25", "50", "100", "250")
LABELS: dict[str, Any] = {
    "pending": _l("Waiting to be sent"),
    "retrying": _l("Retrying"),
    "sent": _l("Sent"),
    "failed": _l("Failed"),
    "skipped": _l("Skipped"),
}
TONES = {"pending": "", "retrying": "warn", "sent": "ok", "failed": "bad", "skipped": ""}
FILTERS = ("status", "notifier", "event", "page", "per_page")


@page("/notifications", "notifications.read")
def notifications() -> ResponseReturnValue:
    """Failed messages unless another status is asked for (``status=`` empty: every one)."""
    args = {k: v.strip() for k, v in request.args.items() if k in FILTERS}
    args.setdefault("status", "failed")
    query = MultiDict({k: v for k, v in args.items() if v})
    query.setdefault("per_page", "50")
    errors: dict[str, str] = {}
    try:
        found = api("list_notifications", query=query)
    except HubError as exc:
        errors, found = field_errors(exc), {"items": [], "total": 0, "page": 1, "per_page": 50}
    notifiers = api("list_notifiers")["items"]
    names = [n["name"] for n in notifiers]
    if args.get("notifier") and args["notifier"] not in names:
        names.append(args["notifier"])  # one the settings no longer name still has messages
    return render_template(
        "admin/notifications.html",
        found=found,
        errors=errors,
        args=args,
        notifiers=notifiers,
        names=names,
        statuses=[(s, LABELS.get(s, s)) for s in messages.STATUSES],
        events=EVENT_NAMES,
        labels=LABELS,
        tones=TONES,
        page_sizes=PAGE_SIZES,
    ), 400 if errors else 200


def _back() -> ResponseReturnValue:
    """To the list the form was posted from (its filters), else the failed ones."""
    args = {k: v for k, v in request.form.items() if k in FILTERS}
    return redirect(url_for("admin.notifications", **args))


@page("/notifications/<int:notification_id>/replay", "notifications.write", methods=("POST",))
def notification_replay(notification_id: int) -> ResponseReturnValue:
    try:
        api("replay_notification", notification_id=notification_id)
    except HubError as exc:
        flash(exc.message, "error")
    else:
        flash(
            _(
                "Message %(id)s is queued again, with a fresh round of retries.",
                id=notification_id,
            )
        )
    return _back()


@page("/notifiers/<name>/enable", "notifications.write", methods=("POST",))
def notifier_enable(name: str) -> ResponseReturnValue:
    try:
        api("enable_notifier", name=name)
    except HubError as exc:
        flash(exc.message, "error")
    else:
        flash(
            _(
                "Notifier %(name)s is in use again. Replay its failed messages below.",
                name=name,
            )
        )
    return _back()
