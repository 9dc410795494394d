"""Messages about events: the fan-out of an event into one message per (notifier, recipient),
each attempt at sending one, and what the API shows and replays.

Guarantees:
- A retried fan-out tells nobody twice: a message is unique per (event, notifier, recipient).
- Each message has one id for all its attempts (``message_id``), the receiver's
  de-duplication key; the provider's own id is kept when it gives one.
- A failure is never lost: it is retried with growing, jittered waits (``[worker]
  notification_retry_seconds``) whose next time is on the row; what cannot mend (a refused
  recipient, a destination that may not be called) fails at once; a failed message stays
  listed with its last error and can be replayed.
- Error texts kept on a message never hold a secret of the notifier's settings.
- A notifier whose destination said it is gone (a webhook's 410) is disabled for the tenant;
  its messages fail at once, saying so, until an admin enables it again.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, care, notification_context, notification_routes
from hub.core.adapters import Gone, Message, Notifier, Recipient, TryLater, Undeliverable
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.http import HttpClient, HttpError
from hub.core.models import Event, NotificationDelivery, NotifierState, Tenant

if TYPE_CHECKING:
    from hub.runtime import Runtime
    from hub.settings import TenantSettings

logger = logging.getLogger("orderhub.notify")

STATUSES = ("pending", "retrying", "sent", "failed", "skipped")
ERROR_LENGTH = 1000
# The longest a destination's Retry-After may push the next attempt out.
MAX_RETRY_AFTER = 3600.0
# A job that comes this much before its message's next attempt is a stray copy: it waits.
EARLY = timedelta(seconds=2)
HIDDEN = "********"


# --- fan-out --------------------------------------------------------------------------------


def fan_out(
    session: Session,
    event: Event,
    tenant: TenantSettings,
    addressed: Callable[[str], str | None],
) -> list[int]:
    """One message per (notifier, recipient) of every route that takes the event; returns the
    ids of the new ones to send. ``addressed(notifier name)`` is the kind of address that
    notifier delivers to (None: it takes no recipients). A recipient kind that finds nobody
    (the customer has no e-mail address) is recorded as a skipped message with the reason."""
    plugins = {n["name"]: n["plugin"] for n in tenant.notifiers}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    new: list[int] = []
    for route in tenant.notifications.routes_for(event.name, event.payload):
        kind = addressed(route.notifier)
        if kind is None or not route.to:
            found: list[Recipient | tuple[str, str]] = [Recipient("", None, "")]
        else:
            found = notification_routes.resolve(
                session, event.tenant_id, route, event.payload, kind, tenant.notifications.language
            )
        for recipient in found:
            row: dict[str, Any] = {
                "tenant_id": event.tenant_id,
                "event_id": event.id,
                "notifier": route.notifier,
                "plugin": plugins[route.notifier],
                "message_id": new_message_id(),
                "status": "pending",
                "attempts": 0,
                "created_at": utcnow(),
            }
            if isinstance(recipient, Recipient):
                row.update(
                    recipient=_key(recipient.address, kind),
                    recipient_name=recipient.name,
                    language=recipient.language or None,
                )
            else:
                row.update(recipient=recipient[0], status="skipped", last_error=recipient[1])
            made = session.execute(
                insert(NotificationDelivery)
                .values(**row)
                .on_conflict_do_nothing(index_elements=["event_id", "notifier", "recipient"])
                .returning(NotificationDelivery.id, NotificationDelivery.status)
            ).first()
            if made is not None and made.status == "pending":
                new.append(made.id)
    return new


def new_message_id() -> str:
    """A message's id, as Standard Webhooks shapes them: ``msg_`` and 32 hex digits."""
    return f"msg_{uuid.uuid4().hex}"


def _key(address: str, kind: str | None) -> str:
    # E-mail addresses are one recipient whatever their case (as the customers table has them).
    address = address.strip()
    return address.lower() if kind == "email" else address


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one attempt did: the message's status after it, and for a retry its wait."""

    status: str
    retry_in: float | None = None


def deliver(runtime: Runtime, delivery_id: int) -> Attempt | None:
    """Try to send one message; None when there is nothing to do (sent, failed, skipped, gone,
    or a stray job that came before the message's next attempt is due). The row is locked for
    the attempt, so two jobs for one message never send it twice."""
    with runtime.transaction() as session:
        row = session.execute(
            select(NotificationDelivery, Event, Tenant.slug)
            .join(Event, Event.id == NotificationDelivery.event_id)
            .join(Tenant, Tenant.id == NotificationDelivery.tenant_id)
            .where(NotificationDelivery.id == delivery_id)
            .with_for_update(of=NotificationDelivery)
        ).first()
        if row is None:
            return None
        delivery, event, slug = row
        if delivery.status not in ("pending", "retrying"):
            return None
        now = utcnow()
        if (
            delivery.status == "retrying"
            and delivery.next_attempt_at is not None
            and delivery.next_attempt_at - EARLY > now
        ):
            return None
        tenant = runtime.tenant_settings(slug)
        unwanted = care.suppressed(session, delivery.tenant_id, event.name, event.payload)
        if unwanted is not None:
            delivery.status, delivery.last_error = "skipped", unwanted
            delivery.next_attempt_at = None
            return Attempt("skipped")
        delivery.attempts += 1
        delivery.next_attempt_at = None
        cfg = next((n for n in tenant.notifiers if n["name"] == delivery.notifier), None)
        cls = runtime.plugins.notifier(delivery.plugin, tenant)
        if cfg is None or cls is None:
            return _fail(
                delivery, f"notifier {delivery.notifier!r} ({delivery.plugin}) unavailable"
            )
        disabled = session.scalar(
            select(NotifierState).where(
                NotifierState.tenant_id == delivery.tenant_id,
                NotifierState.name == delivery.notifier,
            )
        )
        if disabled is not None:
            return _fail(
                delivery,
                f"notifier {delivery.notifier!r} is disabled since"
                f" {disabled.disabled_at:%Y-%m-%d %H:%M} UTC ({disabled.reason}); enable it,"
                " then replay this message",
            )
        recipient = (
            Recipient(delivery.recipient, delivery.recipient_name, delivery.language or "")
            if delivery.recipient
            else None
        )
        if recipient is not None and not recipient.language:
            recipient = Recipient(recipient.address, recipient.name, tenant.notifications.language)
        message = Message(
            tenant=slug,
            event=event.name,
            subject=notification_context.subject(event.name, event.payload),
            data=dict(event.payload),
            id=delivery.message_id,
            recipient=recipient,
            context=notification_context.build(
                session,
                delivery.tenant_id,
                tenant,
                event.name,
                event.payload,
                event.created_at,
                recipient,
            ),
            occurred_at=event.created_at,
        )
        message.context.update(
            care.message_links(
                session,
                runtime.settings.public_url,
                runtime.settings.secret_key,
                delivery.tenant_id,
                event.name,
                event.payload,
                recipient,
            )
        )
        secrets: list[str] = []
        try:
            notifier = build(runtime, cls, slug, cfg)
            secrets = [
                str(notifier.settings[name])
                for name in cls.secret_settings
                if notifier.settings.get(name)
            ]
            provider_id = notifier.send(message)
        except Gone as gone:
            reason = _scrub(_describe(gone), secrets)
            _disable(session, delivery, reason)
            return _fail(delivery, reason)
        except (Undeliverable, Invalid) as refused:
            return _fail(delivery, _scrub(_describe(refused), secrets))
        except HttpError as err:
            if not err.retryable:
                return _fail(delivery, _scrub(_describe(err), secrets))
            return _retry(runtime, delivery, _scrub(_describe(err), secrets), err)
        except Exception as exc:
            return _retry(runtime, delivery, _scrub(_describe(exc), secrets), exc)
        delivery.status, delivery.sent_at = "sent", utcnow()
        delivery.provider_id = provider_id[:255] if provider_id else None
        return Attempt("sent")


def build(runtime: Runtime, cls: type[Notifier], slug: str, cfg: Mapping[str, Any]) -> Notifier:
    """A configured notifier: its settings' references resolved, checked against its schema,
    and an HTTP client of its own (its own circuit breaker: one tenant's dead endpoint never
    stops another's)."""
    opened = runtime.secrets.open(cfg.get("settings", {}), references=True)
    cls.validate_settings(opened)
    return cls(opened, http=HttpClient(f"{cls.name}:notifier:{slug}:{cfg['name']}"))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, Undeliverable | TryLater | HttpError | Invalid):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, HIDDEN)
    return text[:ERROR_LENGTH]


def _fail(delivery: NotificationDelivery, error: str) -> Attempt:
    delivery.status, delivery.last_error = "failed", error[:ERROR_LENGTH]
    logger.warning("notification %s failed: %s", delivery.id, delivery.last_error)
    return Attempt("failed")


def _retry(
    runtime: Runtime, delivery: NotificationDelivery, error: str, exc: BaseException
) -> Attempt:
    """Schedule the next attempt, or fail the message when its retries are spent."""
    delivery.last_error = error[:ERROR_LENGTH]
    schedule = runtime.settings.notification_retry_seconds
    done = delivery.attempts - delivery.round_start
    if done > len(schedule):
        delivery.status = "failed"
        logger.warning("notification %s failed after %s attempts: %s", delivery.id, done, error)
        return Attempt("failed")
    wait = schedule[done - 1] * random.uniform(0.8, 1.2)
    advised = getattr(exc, "retry_after", None)
    if isinstance(advised, int | float) and advised > wait:
        wait = min(float(advised), MAX_RETRY_AFTER)
    delivery.status = "retrying"
    delivery.next_attempt_at = utcnow() + timedelta(seconds=wait)
    logger.info(
        "notification %s: attempt %s failed (%s); next in %.0f s", delivery.id, done, error, wait
    )
    return Attempt("retrying", wait)


def _disable(session: Session, delivery: NotificationDelivery, reason: str) -> None:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(NotifierState)
        .values(
            tenant_id=delivery.tenant_id,
            name=delivery.notifier,
            disabled_at=utcnow(),
            reason=reason[:ERROR_LENGTH],
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
    )
    audit.record(
        session,
        delivery.tenant_id,
        "worker",
        "notifier.disable",
        "notifier",
        delivery.notifier,
        None,
        {"reason": reason[:ERROR_LENGTH]},
    )


def due(session: Session, cutoff: datetime, limit: int = 10_000) -> list[int]:
    """Messages whose job never ran: pending since before ``cutoff``, or retrying with an
    attempt due before it (the broker lost the delayed job). For the sweeper."""
    return list(
        session.scalars(
            select(NotificationDelivery.id)
            .where(
                (
                    (NotificationDelivery.status == "pending")
                    & (NotificationDelivery.created_at < cutoff)
                )
                | (
                    (NotificationDelivery.status == "retrying")
                    & (NotificationDelivery.next_attempt_at < cutoff)
                )
            )
            .limit(limit)
        )
    )


# --- what the API shows and does --------------------------------------------------------------


def find(
    tenant_id: int,
    *,
    status: str | None = None,
    notifier: str | None = None,
    event: str | None = None,
) -> Select[tuple[NotificationDelivery, Event]]:
    stmt = (
        select(NotificationDelivery, Event)
        .join(Event, Event.id == NotificationDelivery.event_id)
        .where(NotificationDelivery.tenant_id == tenant_id)
    )
    if status is not None:
        stmt = stmt.where(NotificationDelivery.status == status)
    if notifier is not None:
        stmt = stmt.where(NotificationDelivery.notifier == notifier)
    if event is not None:
        stmt = stmt.where(Event.name == event)
    return stmt


def delivery_dict(delivery: NotificationDelivery, event: Event) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "message_id": delivery.message_id,
        "event": {"id": event.id, "name": event.name, "payload": event.payload},
        "notifier": delivery.notifier,
        "plugin": delivery.plugin,
        "recipient": delivery.recipient or None,
        "recipient_name": delivery.recipient_name,
        "language": delivery.language,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "replays": delivery.replays,
        "last_error": delivery.last_error,
        "provider_id": delivery.provider_id,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "created_at": _iso(delivery.created_at),
        "sent_at": _iso(delivery.sent_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def get(session: Session, tenant_id: int, delivery_id: int) -> tuple[NotificationDelivery, Event]:
    row = session.execute(
        find(tenant_id)
        .where(NotificationDelivery.id == delivery_id)
        .with_for_update(of=NotificationDelivery)
    ).first()
    if row is None:
        raise NotFound(f"no notification {delivery_id}")
    return row[0], row[1]


def replay(session: Session, tenant_id: int, delivery_id: int, actor: str) -> dict[str, Any]:
    """Queue a failed message again, with a fresh round of retries; the same message id, so
    a receiver that did get an earlier attempt can tell. The caller sends the job after
    commit."""
    delivery, event = get(session, tenant_id, delivery_id)
    if delivery.status != "failed":
        raise Conflict(
            f"notification {delivery_id} is {delivery.status}: only a failed notification can"
            " be replayed"
        )
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status = "pending"
    delivery.round_start = delivery.attempts
    delivery.replays += 1
    delivery.next_attempt_at = None
    audit.record(
        session,
        tenant_id,
        actor,
        "notification.replay",
        "notification",
        delivery.id,
        before,
        {"status": "pending", "replays": delivery.replays},
    )
    return delivery_dict(delivery, event)


# --- notifiers, as configured and as their destinations left them ------------------------------


def notifiers(
    session: Session, tenant_id: int, tenant: TenantSettings, describe: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The tenant's configured notifiers: plugin, what they hear, whether one is disabled."""
    states = {
        s.name: s
        for s in session.scalars(select(NotifierState).where(NotifierState.tenant_id == tenant_id))
    }
    out = []
    for cfg in tenant.notifiers:
        routes = [r for r in tenant.notifications.routes if r.notifier == cfg["name"]]
        heard = sorted({e for r in routes if r.events for e in r.events})
        state = states.get(cfg["name"])
        out.append(
            {
                "name": cfg["name"],
                "plugin": cfg["plugin"],
                "description": describe(cfg["plugin"]),
                "events": None if any(r.events is None for r in routes) else heard,
                "routes": len(routes),
                "disabled": state is not None,
                "disabled_at": _iso(state.disabled_at) if state else None,
                "disabled_reason": state.reason if state else None,
            }
        )
    return out


def enable(session: Session, tenant_id: int, tenant: TenantSettings, name: str, actor: str) -> bool:
    """Use a disabled notifier again (its failed messages can then be replayed). True when it
    was disabled; enabling an enabled one changes nothing."""
    if not any(n["name"] == name for n in tenant.notifiers):
        raise NotFound(f"no notifier {name!r}")
    state = session.scalar(
        select(NotifierState).where(
            NotifierState.tenant_id == tenant_id, NotifierState.name == name
        )
    )
    if state is None:
        return False
    session.execute(delete(NotifierState).where(NotifierState.id == state.id))
    audit.record(
        session,
        tenant_id,
        actor,
        "notifier.enable",
        "notifier",
        name,
        {"disabled_at": state.disabled_at.isoformat(), "reason": state.reason},
        None,
    )
    return True
