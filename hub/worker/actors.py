"""Small idempotent jobs. Each takes ids, opens its own transaction, and declares its retries.

Running one twice does nothing the second time: dispatch checks ``dispatched_at``, a message
is unique per (event, notifier, recipient) and carries its status.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dramatiq.errors import Retry
from sqlalchemy import select

from hub.core import (
    care,
    fulfilment,
    intake,
    notifications,
    polling,
    purchases,
    refunds,
    report_rollups,
    ticket_assignment,
    ticket_sla,
    tickets,
    tracking,
)
from hub.core.db import single_statement, utcnow
from hub.core.errors import Invalid
from hub.core.http import HttpError
from hub.core.models import CarrierAccount, Connection, Event, Tenant, Ticket
from hub.core.scoping import TENANT_KEY

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.worker")

# Dramatiq's own retries of send_notification, for failures outside an attempt (the database
# is down): the hub schedules the retries of a failed attempt itself ([worker]
# notification_retry_seconds), with Retry(delay=…), within this many.
NOTIFY_RETRIES = 100
CURSOR_LENGTH = 200  # connections.cursor


def dispatch_event(runtime: Runtime, event_id: int) -> None:
    """Fan an event out: the event hook on every enabled plugin, then one message per
    (notifier, recipient) of the tenant's routes (hub.core.notifications.fan_out)."""
    with runtime.transaction() as session:
        ev = session.scalar(select(Event).where(Event.id == event_id).with_for_update())
        if ev is None or ev.dispatched_at is not None:
            return
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == ev.tenant_id))
        tenant = runtime.tenant_settings(slug)
        runtime.plugins.announce(ev.name, tenant, ev.payload)
        kinds = {
            n["name"]: getattr(runtime.plugins.notifier(n["plugin"], tenant), "addressed", None)
            for n in tenant.notifiers
        }
        new_deliveries = notifications.fan_out(session, ev, tenant, kinds.__getitem__)
        ev.dispatched_at = utcnow()
    for delivery_id in new_deliveries:
        runtime.jobs.send("send_notification", delivery_id)


def send_notification(runtime: Runtime, delivery_id: int) -> None:
    """One attempt at one message (hub.core.notifications.deliver). A failed attempt that may
    mend is retried after the wait the hub chose and wrote on the message."""
    attempt = notifications.deliver(runtime, delivery_id)
    if attempt is not None and attempt.retry_in is not None:
        raise Retry(
            f"notification {delivery_id} failed; will retry in {attempt.retry_in:.1f} s",
            delay=int(attempt.retry_in * 1000),
        )


def ingest(runtime: Runtime, entry_id: int) -> None:
    """Turn one stored channel delivery into orders (or a rejected inbox entry).

    The attempt is counted and marked running first, in a statement of its own, so an
    attempt that crashes or is killed still counts and no copy of the job (a retry, a
    sweep) starts beside it. A delivery that fails half-way through being applied is rolled
    back whole, then recorded as rejected in a transaction of its own (no savepoint on the
    way that succeeds). Anything else raised is a failed attempt: recorded, and retried by
    the job queue until ``[worker] max_delivery_attempts``, when the entry is rejected with
    the last error — a poison message never loops."""
    limit = runtime.settings.max_delivery_attempts
    now = utcnow()
    stale = now - timedelta(seconds=runtime.settings.sweep_grace_seconds)
    with single_statement(runtime.engine) as db:
        attempt = intake.begin_attempt(db, entry_id, now, stale, limit)
    if attempt is None:
        return
    try:
        with runtime.transaction() as session:
            intake.ingest(
                session,
                entry_id,
                runtime.adapter_for,
                # Tenant settings are fixed for the process's life: no query for the prefix.
                prefix_for=lambda slug: runtime.tenant_settings(slug).order_number_prefix,
            )
    except intake.Rejected as rejected:
        with runtime.transaction() as session:
            intake.reject(session, rejected.entry_id, rejected.reason)
    except Exception as exc:
        try:
            with runtime.transaction() as session:
                final = intake.fail_attempt(session, entry_id, attempt, limit, exc)
        except Exception as unrecorded:  # the database itself is failing: retry, unrecorded
            logger.warning("inbox entry %s: could not record its failure: %s", entry_id, unrecorded)
            raise exc from None
        if not final:
            raise
        logger.warning(
            "inbox entry %s rejected after %s attempts: %s", entry_id, attempt, intake.describe(exc)
        )


class _LeaseLost(Exception):
    """Another poller took over a lease this one held too long; it stops writing."""


def poll_channel(runtime: Runtime, connection_id: int, scheduled: bool = False) -> dict[str, Any]:
    """Fetch what a pull channel has new since the connection's cursor into the inbox.

    Each page is committed as it comes (its ingest jobs sent after the commit); the cursor is
    saved only after the last page, so a poll that stops half-way keeps what it stored and is
    repeated from the old cursor, its repeats landing as duplicates. One poll per connection
    at a time (a lease, see hub.core.polling). A ``scheduled`` poll (from the sweeper) runs
    only when the connection is due, so a poll queued twice during a backlog runs once.

    HTTP errors are recorded on the connection for the admin; the retryable ones are raised
    again so Dramatiq retries, the others (refused credentials, say) wait for a person.
    Returns {"stored", "duplicates", "cursor", "entries" (new inbox ids), "skipped", "error"}.
    """
    result: dict[str, Any] = {
        "stored": 0,
        "duplicates": 0,
        "cursor": None,
        "entries": [],
        "skipped": None,
        "error": None,
    }
    with runtime.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is None:
            result["skipped"] = f"no connection {connection_id}"
            return result
        result["cursor"] = connection.cursor
        cls = runtime.plugins.adapters("channels").get(connection.plugin)
        if cls is None or "pull" not in cls.capabilities:
            result["skipped"] = f"{connection.plugin!r} is not a pull channel"
            return result
        every = cls.poll_seconds if scheduled else None
        lease = polling.claim(session, connection_id, utcnow(), every=every)
        if lease is None:
            if connection.paused:
                result["skipped"] = "the connection is paused"
            elif scheduled:
                result["skipped"] = "not due, or being polled"
            else:
                result["skipped"] = "another poll of this connection is running"
            return result
    cursor = connection.cursor
    try:
        adapter = runtime.channel_adapter(connection)
        if scheduled and not adapter.polls():
            # Counted as polled, so the sweeper does not ask again every sweep.
            with runtime.transaction() as session:
                polling.finish(session, connection_id, lease, cursor)
            result["skipped"] = "this connection is not set up for polling"
            return result
        for page in adapter.poll(cursor):
            with runtime.transaction() as session:
                held = polling.renew(session, connection_id, lease)
                if held is None:
                    raise _LeaseLost
                lease = held
                ids = intake.store_pulled(session, connection, page.deliveries)
            for entry_id in ids:
                runtime.jobs.send("ingest", entry_id)
            result["entries"].extend(ids)
            result["stored"] += len(ids)
            result["duplicates"] += len(page.deliveries) - len(ids)
            if page.cursor is not None:
                cursor = page.cursor
        if cursor is not None and len(cursor) > CURSOR_LENGTH:
            raise ValueError(
                f"the {connection.plugin} plugin returned a cursor longer than"
                f" {CURSOR_LENGTH} characters"
            )
        with runtime.transaction() as session:
            if not polling.finish(session, connection_id, lease, cursor):
                raise _LeaseLost
    except _LeaseLost:
        logger.warning("poll of connection %s outlived its lease; another took over", connection_id)
        result["skipped"] = "another poll took over"
        return result
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        with runtime.transaction() as session:
            polling.fail(session, connection_id, lease, result["error"])
        # Settings the plugin refuses, or a refused login, will not mend by retrying.
        if isinstance(exc, Invalid) or (isinstance(exc, HttpError) and not exc.retryable):
            logger.warning("poll of connection %s failed: %s", connection_id, result["error"])
            return result
        raise
    result["cursor"] = cursor
    return result


def sweep(runtime: Runtime, older_than: timedelta | None = None) -> int:
    """Re-enqueue what never ran (broker down, process died): event fan-outs, and channel
    deliveries never queued or last queued longer ago than ``older_than`` (the
    ``sweep_grace_seconds`` setting by default). Deliveries are claimed in one statement
    (intake.claim_unqueued), so the sweepers of several worker processes never queue one
    twice; those the broker refuses are marked for the next sweep. Also the clock of pull
    channels: every connection due for a poll (see polling.due) gets a scheduled
    poll_channel; and refunds granted but never pushed to their channel (refunds.unpushed:
    pushing one twice is safe, the channel gets the same key)."""
    if older_than is None:
        older_than = timedelta(seconds=runtime.settings.sweep_grace_seconds)
    cutoff = utcnow() - older_than
    every = {
        name: cls.poll_seconds
        for name, cls in runtime.plugins.adapters("channels").items()
        if "pull" in cls.capabilities
    }
    with runtime.transaction() as session:
        polls = polling.due(session, utcnow(), every)
    for connection_id in polls:
        runtime.jobs.send("poll_channel", connection_id, True)
    with runtime.transaction() as session:
        entries = intake.claim_unqueued(session, cutoff)
    for i, entry_id in enumerate(entries):
        if not runtime.jobs.send("ingest", entry_id):
            # The broker is down (or hangs): the rest would fail the same way, one timeout
            # each. Leave them all to the next sweep.
            with runtime.transaction() as session:
                intake.mark_unqueued(session, entries[i:])
            break
    with runtime.transaction() as session:
        ids = list(
            session.scalars(
                select(Event.id)
                .where(Event.dispatched_at.is_(None), Event.created_at < cutoff)
                .order_by(Event.id)
                .limit(10_000)
            )
        )
        pending = notifications.due(session, cutoff)
    for event_id in ids:
        runtime.jobs.send("dispatch_event", event_id)
    for delivery_id in pending:
        runtime.jobs.send("send_notification", delivery_id)
    with runtime.transaction() as session:
        unpushed = refunds.unpushed(session, cutoff)
    for refund_id in unpushed:
        runtime.jobs.send("push_refund", refund_id)
    # Kept up here but not counted as work found: a refresh rebuilds the last minutes' days
    # every time, with nothing left undone.
    if _due(runtime, "reports", REPORTS_EVERY):
        sweep_reports(runtime)
    return (
        len(ids)
        + len(pending)
        + len(unpushed)
        + len(entries)
        + len(polls)
        + sweep_tracking(runtime)
        + sweep_purchases(runtime)
        + sweep_tickets(runtime)
        + (sweep_care(runtime) if _due(runtime, "care", CARE_EVERY) else 0)
    )


def sweep_tickets(runtime: Runtime) -> int:
    """The service desks' clock: per tenant with active tickets, hand the queue to agents who
    became available, then warn of near SLA deadlines and mark (and escalate) passed ones.
    Each tenant in its own transaction, under its own rules. Returns what changed."""
    with runtime.transaction() as session:
        tenants = session.execute(
            select(Tenant.id, Tenant.slug)
            .where(Tenant.id.in_(select(Ticket.tenant_id).where(Ticket.status.in_(tickets.ACTIVE))))
            .order_by(Tenant.id)
        ).all()
    done = 0
    for tenant_id, slug in tenants:
        rules = runtime.tenant_settings(slug).tickets
        with runtime.transaction() as session:
            session.info[TENANT_KEY] = tenant_id
            done += ticket_assignment.assign_waiting(session, tenant_id, rules, "sweep")
            done += sum(ticket_sla.check(session, tenant_id, rules).values())
    return done


# The care rules look over whole tables (a tenant's orders, per customer, for win-backs): the
# periodic sweep runs them at most this often; a message is then at most this late.
CARE_EVERY = 300.0
# The reports' rollups are refreshed at most this often by the sweep (a report refreshes them
# itself too, so this only keeps that refresh small).
REPORTS_EVERY = 60.0
_swept: weakref.WeakKeyDictionary[Runtime, dict[str, float]] = weakref.WeakKeyDictionary()


def _due(runtime: Runtime, job: str, every: float) -> bool:
    """Whether a periodic part of the sweep is due in this process (and mark it run)."""
    now = time.monotonic()
    runs = _swept.setdefault(runtime, {})
    last = runs.get(job)
    if last is not None and now - last < every:
        return False
    runs[job] = now
    return True


def sweep_reports(runtime: Runtime) -> int:
    """Fold the latest changes into every tenant's report rollups (building them the first
    time), each tenant in its own transaction. Returns the days rebuilt."""
    with runtime.transaction() as session:
        tenants = session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.id)).all()
    done = 0
    for tenant_id, slug in tenants:
        zone = runtime.tenant_settings(slug).tickets.calendar.timezone
        with runtime.transaction() as session:
            session.info[TENANT_KEY] = tenant_id
            done += report_rollups.refresh(session, tenant_id, zone)
    return done


def sweep_care(runtime: Runtime, now: datetime | None = None) -> int:
    """The care rules' clock: per tenant whose file has care rules, fire each rule for the
    subjects due (hub.core.care.sweep), each tenant in its own transaction. A rule fires at
    most once per subject however many sweeps run, one after another or at once. Returns the
    sends recorded (emitted or skipped)."""
    configured = {slug: t.care for slug, t in runtime.settings.tenants.items() if t.care.active()}
    if not configured:
        return 0
    with runtime.transaction() as session:
        tenants = session.execute(
            select(Tenant.id, Tenant.slug).where(Tenant.slug.in_(configured)).order_by(Tenant.id)
        ).all()
    done = 0
    for tenant_id, slug in tenants:
        with runtime.transaction() as session:
            session.info[TENANT_KEY] = tenant_id
            counts = care.sweep(session, tenant_id, configured[slug], now)
        done += counts["emitted"] + counts["skipped"]
    return done


def sweep_purchases(runtime: Runtime) -> int:
    """Label purchases due a look (hub.core.purchases): interrupted between buying and
    recording, or a label whose void failed before and is asked again. Each is claimed (a
    lease) and settled by a ``settle_purchase`` job; one the broker refuses keeps its claim
    until the lease runs out, then a later sweep claims it again. Returns the jobs sent."""
    with runtime.transaction() as session:
        ids, lease = purchases.claim_due(session, utcnow())
    for purchase_id in ids:
        runtime.jobs.send("settle_purchase", purchase_id, lease.isoformat())
    return len(ids)


def settle_purchase(runtime: Runtime, purchase_id: int, lease: str) -> str:
    """Finish a purchase the sweeper claimed: give back the goods of one interrupted before
    its label was known, void the label of one interrupted after (hub.core.purchases.settle).
    A void the carrier refuses is recorded and asked again later by the sweeper, not by a
    retry of this job."""
    return purchases.settle(runtime, purchase_id, lease)


def sweep_tracking(runtime: Runtime) -> int:
    """The tracker's clock, run by every sweep: claim the shipments due a check in batches
    per carrier account (a track_shipments job each; see hub.core.tracking.claim), then open
    delayed exceptions and expire shipments with no news (tracking.check_delays). Returns the
    batches enqueued. A batch the broker refuses keeps its claim until the lease runs out,
    then a later sweep claims it again."""
    sizes = {
        name: cls.track_batch
        for name, cls in runtime.plugins.adapters("carriers").items()
        if "tracking" in cls.capabilities
    }
    with runtime.transaction() as session:
        batches = tracking.claim(session, utcnow(), sizes)
    for batch in batches:
        runtime.jobs.send(
            "track_shipments", batch.account_id, batch.shipment_ids, batch.lease.isoformat()
        )
    with runtime.transaction() as session:
        tracking.check_delays(
            session, utcnow(), lambda slug: runtime.tenant_settings(slug).tracking
        )
    return len(batches)


def track_shipments(
    runtime: Runtime, account_id: int, shipment_ids: list[int], lease: str
) -> dict[str, Any]:
    """Ask a carrier about one batch the sweeper claimed, apply what it says, and set each
    shipment's next check (hub.core.tracking). Idempotent: scans are stored once, and a batch
    whose claim was taken over (it waited in the queue past its lease) does nothing. The
    carrier is called outside any transaction. Errors are recorded on the carrier account;
    the ones a retry may mend are raised again so Dramatiq retries, the others (refused
    credentials) wait a quiet interval for a person."""
    claim = datetime.fromisoformat(lease)
    with runtime.transaction() as session:
        account = session.get(CarrierAccount, account_id)
        if account is None:
            return {"checked": 0, "skipped": f"no carrier account {account_id}"}
        numbers = tracking.held(session, account_id, shipment_ids, claim)
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == account.tenant_id))
    if not numbers or slug is None:
        return {"checked": 0, "skipped": "the claim was taken over"}
    policy = runtime.tenant_settings(slug).tracking
    try:
        updates = runtime.carrier_adapter(account).track(sorted(numbers.values()))
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        mends = not (isinstance(exc, Invalid) or (isinstance(exc, HttpError) and not exc.retryable))
        with runtime.transaction() as session:
            tracking.record_failure(
                session, account_id, list(numbers), claim, error, retrying=mends, policy=policy
            )
        if mends:
            raise
        logger.warning("tracking for carrier account %s failed: %s", account_id, error)
        return {"checked": 0, "error": error}
    with runtime.transaction() as session:
        return tracking.record_poll(session, account_id, list(numbers), claim, updates, policy)


def push_fulfilment(runtime: Runtime, shipment_id: int) -> str:
    """Tell the order's sales channel about a shipment (hub.core.fulfilment)."""
    return fulfilment.push(runtime, shipment_id)


def push_refund(runtime: Runtime, refund_id: int) -> str:
    """Have the order's sales channel make a granted refund (hub.core.refunds)."""
    return refunds.push(runtime, refund_id)


ACTORS: dict[str, tuple[Callable[..., object], dict[str, Any]]] = {
    "track_shipments": (
        track_shipments,
        # Few retries, within the claim's lease: after it the sweeper claims the batch again.
        {"max_retries": 3, "min_backoff": 10_000, "max_backoff": 300_000, "queue_name": "track"},
    ),
    "settle_purchase": (
        settle_purchase,
        # A failure (the database) keeps the lease; the sweeper claims it again after it.
        {"max_retries": 2, "min_backoff": 10_000, "max_backoff": 60_000, "queue_name": "track"},
    ),
    "push_fulfilment": (
        push_fulfilment,
        # The channel may be down for a while: back off up to an hour, for about a day.
        {"max_retries": 30, "min_backoff": 5000, "max_backoff": 3_600_000},
    ),
    "push_refund": (
        push_refund,
        # Like fulfilments; after the last attempt the refund is marked failed.
        {"max_retries": refunds.PUSH_ATTEMPTS - 1, "min_backoff": 5000, "max_backoff": 3_600_000},
    ),
    "ingest": (
        ingest,
        {"max_retries": 20, "min_backoff": 500, "max_backoff": 300_000, "queue_name": "intake"},
    ),
    "poll_channel": (
        poll_channel,
        {
            # Few retries: the sweeper polls a due connection again anyway.
            "max_retries": 5,
            "min_backoff": 5000,
            "max_backoff": 300_000,
            "queue_name": "poll",
            # A rate-limited poll (Amazon: one page a minute) outlasts Dramatiq's 10 minutes.
            "time_limit": 3_600_000,
        },
    ),
    "dispatch_event": (
        dispatch_event,
        {"max_retries": 20, "min_backoff": 1000, "max_backoff": 300_000, "queue_name": "events"},
    ),
    "send_notification": (
        send_notification,
        {
            "max_retries": NOTIFY_RETRIES,
            "min_backoff": 2000,
            "max_backoff": 600_000,
            "queue_name": "notify",
        },
    ),
}
