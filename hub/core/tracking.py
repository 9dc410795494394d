"""Tracking: carriers' scans in, one shipment status out, and the clock that asks carriers.

``apply`` is the only way a shipment's tracking status changes, whatever brought the scans —
a poll, a carrier's push, a person recording what a courier without tracking said
(``record_by_hand``), or the hub itself when a shipment expires. Every scan is stored
once (unique on shipment, time and raw code), and the status is recomputed from all of them,
so scans may arrive in any order and any number of times with the same result:

- scans are taken in time order; each later scan sets the status if it is of the same or a
  higher rank (TRACKING_STATUSES order), or if it is one of the few moves back a carrier makes
  explicitly (``moves``): a failed attempt or an exception is followed by the parcel moving
  on again (picked up, in transit, out for delivery, at a pickup point, another failed
  attempt). Nothing leaves a terminal status (delivered, returned, cancelled, expired);
- only a real change of status (or of its reason) is announced (``shipment_status_changed``)
  and opens a delivery exception where it is one (hub.core.delivery_exceptions); a repeated
  or an older scan changes nothing and tells nobody;
- a delivered shipment delivers its order once every shipment of it that counts — not voided,
  not replaced by a reship — is delivered.

The clock: the sweeper claims due shipments (``next_check_at`` ≤ now) in one UPDATE that moves
``next_check_at`` on by ``LEASE`` — the claim is that value, and every later write names it,
like hub.core.polling's lease — and groups them per carrier account into batches of the
plugin's ``track_batch``. After each check the next one is set by ``next_check``. A carrier
that only pushes is never polled. The same sweep runs ``check_delays``: a shipment with no
scan for a while, or past its estimated or promised date, opens a "delayed" exception; one
with no news for ``expire_after_days`` expires. ``check_now`` asks one shipment's carrier
at once (a person's "check tracking now"), outside any transaction like the sweeper's batches.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, carrier_errors, delivery_exceptions, events, orders, shipments
from hub.core.adapters import (
    TERMINAL_STATUSES,
    TRACKING_STATUSES,
    TrackingEvent,
    TrackingUpdate,
)
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid
from hub.core.models import (
    CarrierAccount,
    DeliveryException,
    Shipment,
    Tenant,
    TrackingEventRecord,
)
from hub.settings import Tracking

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.tracking")

# "created" is a shipment no carrier has scanned yet: below every tracking status.
RANK: dict[str, int] = {"created": -1, **{s: i for i, s in enumerate(TRACKING_STATUSES)}}
# The two interruptions a carrier clears, and what it may clear them with.
INTERRUPTIONS = frozenset({"delivery_failed", "exception"})
RESUMED = frozenset(
    {"picked_up", "in_transit", "out_for_delivery", "available_for_pickup", "delivery_failed"}
)
SOURCES = ("poll", "push", "hub", "manual")
# What a person may record by hand: every status but "cancelled" (voiding goes through the
# shipment's cancel, which gives the goods back) and "expired" (the hub's own conclusion).
BY_HAND = tuple(s for s in TRACKING_STATUSES if s not in ("cancelled", "expired"))
# The statuses a reason goes with (hub.core.adapters.EXCEPTION_REASONS).
WITH_REASON = frozenset({"exception", "delivery_failed"})
# How far ahead of the hub's clock a time recorded by hand may be (a person's clock).
FUTURE_SKEW = timedelta(minutes=5)
# Longer than a batch takes to track (the hub's HTTP client gives up well before); also how
# long a worker that died mid-batch keeps its shipments from being checked again.
LEASE = timedelta(minutes=30)
SWEEP_LIMIT = 5000  # shipments claimed per sweep; the rest wait for the next one
EXPIRED_CODE = "orderhub:expired"
ERROR_LENGTH = 2000  # carrier_accounts.last_track_error
# Column sizes of tracking_events: a carrier's long text is cut, never refused.
_LENGTHS = {"reason": 100, "raw_code": 100, "raw_text": 1000, "location": 200}
_events = TrackingEventRecord.__table__
_shipments = Shipment.__table__


def moves(current: str, new: str) -> bool:
    """Whether a scan of status ``new``, later than the one that set ``current``, sets the
    shipment's status: forward or level in rank, or an interruption cleared — never out of a
    terminal status."""
    if current in TERMINAL_STATUSES:
        return False
    if RANK[new] >= RANK[current]:
        return True
    return current in INTERRUPTIONS and new in RESUMED


class Scan(Protocol):
    """What deciding a status needs of a scan: a stored row or a carrier's TrackingEvent."""

    status: str
    reason: str | None
    raw_text: str | None
    at: datetime


def deciding(scans: Iterable[Scan]) -> Scan | None:
    """The scan the shipment's status comes from: the last, in time order, that ``moves``
    let through (scans at the same time are taken in rank order)."""
    found, status = None, "created"
    for scan in sorted(scans, key=lambda s: (s.at, RANK[s.status])):
        if moves(status, scan.status):
            found, status = scan, scan.status
    return found


# --- applying updates -------------------------------------------------------------------


def apply(
    session: Session,
    shipment: Shipment,
    update: TrackingUpdate,
    source: str,
    *,
    now: datetime | None = None,
    entered_by: str | None = None,
) -> bool:
    """Store an update's new scans and estimate and settle the shipment's status from all its
    scans; True when that is news — the status changed, or became another exception (lost
    after delayed) — which is then announced and opens a delivery exception where it is one.
    A new reason on the same status is kept quietly. The shipment's row is locked first, so a
    push and a poll of the same shipment settle one after the other, each seeing the other's
    scans."""
    if source not in SOURCES:
        raise ValueError(f"unknown tracking source {source!r}")
    now = now or utcnow()
    session.flush()  # what the caller changed on the shipment must survive the refresh
    session.refresh(shipment, with_for_update=True)
    new_scans = _store(session, shipment, update.events, source, now, entered_by)
    if shipment.first_estimated_delivery is None:
        shipment.first_estimated_delivery = shipment.estimated_delivery or update.estimated_delivery
    if update.estimated_delivery is not None:
        shipment.estimated_delivery = update.estimated_delivery
    scans = session.execute(
        select(
            _events.c.status, _events.c.reason, _events.c.raw_text, _events.c.at, _events.c.source
        ).where(_events.c.shipment_id == shipment.id)
    ).all()
    carrier_times = [s.at for s in scans if s.source != "hub"]
    if carrier_times:
        shipment.last_event_at = max(carrier_times)
    number = shipments.order_number(session, shipment)
    for scan in new_scans:  # damage stays news even when a later scan (delivered) decides
        if scan.reason == "damaged":
            delivery_exceptions.open_exception(
                session, shipment, "damaged", _describe(scan), order_number=number, now=now
            )
    decided = deciding(scans)
    if decided is None or shipment.status in TERMINAL_STATUSES:
        return False
    before, reason = shipment.status, decided.reason
    if decided.status != before and not moves(before, decided.status):
        return False  # never back from what was announced, whatever the scans say
    if (decided.status, reason) == (before, shipment.status_reason):
        return False
    kind = delivery_exceptions.kind_of(decided.status, reason)
    news = decided.status != before or kind != delivery_exceptions.kind_of(
        before, shipment.status_reason
    )
    shipment.status, shipment.status_reason = decided.status, reason
    shipment.updated_at = now
    if not news:
        return False  # a new reason on the same status ("sorting", "customs") is no news
    if decided.status == "delivered":
        shipment.delivered_at = decided.at
    if decided.status in TERMINAL_STATUSES:
        shipment.next_check_at = None
    events.emit(
        session,
        shipment.tenant_id,
        events.SHIPMENT_STATUS_CHANGED,
        {
            "number": number,
            "shipment": shipment.id,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "from": before,
            "to": decided.status,
            "reason": reason,
            "at": decided.at.isoformat(),
        },
    )
    if kind is not None:
        delivery_exceptions.open_exception(
            session, shipment, kind, _describe(decided), order_number=number, now=now
        )
    if decided.status == "delivered":
        delivery_exceptions.settle_on_delivery(session, shipment, number)
        _deliver_order(session, shipment, number)
    return True


def _store(
    session: Session,
    shipment: Shipment,
    scans: Iterable[TrackingEvent],
    source: str,
    now: datetime,
    entered_by: str | None = None,
) -> list[Any]:
    """Insert the scans not stored yet (ON CONFLICT DO NOTHING on shipment, time and raw
    code); returns those that were new. A scan with a status outside TRACKING_STATUSES is a
    plugin's mapping bug: logged and left out rather than failing the whole update."""
    rows: dict[tuple[datetime, str], dict[str, Any]] = {}
    for scan in scans:
        if scan.status not in TRACKING_STATUSES:
            logger.warning(
                "%s: tracking status %r of %s is not a normalised status; scan ignored",
                shipment.carrier,
                scan.status,
                shipment.tracking_number,
            )
            continue
        # A time without a zone is taken as UTC (the contract asks plugins for aware times).
        at = scan.at if scan.at.tzinfo else scan.at.replace(tzinfo=UTC)
        row = {
            "tenant_id": shipment.tenant_id,
            "shipment_id": shipment.id,
            "status": scan.status,
            "reason": scan.reason,
            "raw_code": scan.raw_code,
            "raw_text": scan.raw_text or None,
            "location": scan.location,
            "at": at,
            "source": source,
            "received_at": now,
            "entered_by": entered_by,
        }
        for column, length in _LENGTHS.items():
            if row[column] is not None:
                row[column] = row[column][:length]
        rows.setdefault((at, row["raw_code"]), row)
    if not rows:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return list(
        session.execute(
            insert(_events)
            .values(list(rows.values()))
            .on_conflict_do_nothing(index_elements=["shipment_id", "at", "raw_code"])
            .returning(_events.c.status, _events.c.reason, _events.c.raw_text, _events.c.at)
        ).all()
    )


def _describe(scan: Scan) -> str:
    """What a delivery exception says happened: the normalised reason, then the carrier's
    words."""
    parts = [scan.reason or scan.status.replace("_", " "), scan.raw_text]
    return ": ".join(p for p in parts if p)


def _deliver_order(session: Session, shipment: Shipment, number: str) -> None:
    """A shipped order is delivered once every shipment that counts is: voided ones do not,
    nor ones a reship replaced (their replacements count instead)."""
    order = orders.get(session, shipment.tenant_id, number, for_update=True)
    if order.status != "shipped":
        return  # partially shipped: more is to come; delivered or later: nothing to do
    live = session.execute(
        select(Shipment.id, Shipment.status, Shipment.replaces_id).where(
            Shipment.order_id == order.id, Shipment.status != "cancelled"
        )
    ).all()
    replaced = {s.replaces_id for s in live if s.replaces_id is not None}
    if all(s.status == "delivered" for s in live if s.id not in replaced):
        orders.set_status(
            session,
            order,
            "delivered",
            "delivered",
            delivery_exceptions.TRACKER,
            f"every shipment delivered (the last: {shipment.tracking_number})",
        )


# --- the clock ----------------------------------------------------------------------------


def next_check(shipment: Shipment, now: datetime, policy: Tracking) -> datetime | None:
    """When to ask the carrier again: often near delivery, rarely when quiet, never once the
    shipment is terminal (see hub.settings.Tracking for the hours)."""
    if shipment.status in TERMINAL_STATUSES:
        return None
    eta = shipment.estimated_delivery
    today = now.date()
    if shipment.status == "out_for_delivery" or (
        eta is not None and today <= eta <= today + timedelta(days=1)
    ):
        hours = policy.near_delivery_hours
    elif now - (shipment.last_event_at or shipment.created_at) >= timedelta(
        hours=policy.quiet_after_hours
    ):
        hours = policy.quiet_hours
    elif shipment.status in ("created", "info_received"):
        hours = policy.awaiting_scan_hours
    else:
        hours = policy.in_transit_hours
    return now + timedelta(hours=hours)


@dataclass(frozen=True)
class Batch:
    """Shipments of one carrier account claimed together: the claim is ``lease``, the
    ``next_check_at`` they were given, which every later write of the check names."""

    account_id: int
    shipment_ids: list[int]
    lease: datetime


def claim(
    session: Session,
    now: datetime,
    batch_sizes: Mapping[str, int],
    *,
    limit: int = SWEEP_LIMIT,
    due_only: bool = True,
    account_id: int | None = None,
    tenant_id: int | None = None,
) -> list[Batch]:
    """Claim the due shipments of accounts whose plugin tracks (``batch_sizes``: plugin →
    its ``track_batch``), the longest overdue first, in batches per account. One UPDATE
    picks and claims them, so two sweepers at once never claim the same shipment (PostgreSQL
    re-checks ``next_check_at`` against the row the other committed; SQLite has one writer).
    A disabled account's shipments are still tracked: what it already shipped is on its way.
    ``orderhub tracking poll`` narrows the claim to an account or a tenant, and may take every
    live shipment rather than the due ones (``due_only`` False)."""
    if not batch_sizes:
        return []
    accounts = CarrierAccount.__table__
    lease = now + LEASE
    wanted = (
        _shipments.c.next_check_at <= now if due_only else _shipments.c.next_check_at.is_not(None)
    )
    due = (
        select(_shipments.c.id)
        .join(accounts, accounts.c.id == _shipments.c.carrier_account_id)
        .where(wanted, accounts.c.plugin.in_(list(batch_sizes)))
        .order_by(_shipments.c.next_check_at, _shipments.c.id)
        .limit(limit)
    )
    if account_id is not None:
        due = due.where(_shipments.c.carrier_account_id == account_id)
    if tenant_id is not None:
        due = due.where(_shipments.c.tenant_id == tenant_id)
    claimed = session.execute(
        update(_shipments)
        .where(_shipments.c.id.in_(due), wanted)
        # The clock is no change to the shipment: updated_at stays.
        .values(next_check_at=lease, updated_at=_shipments.c.updated_at)
        .returning(_shipments.c.id, _shipments.c.carrier_account_id)
    ).all()
    by_account: dict[int, list[int]] = defaultdict(list)
    for shipment_id, account_id in claimed:
        by_account[account_id].append(shipment_id)
    plugins = dict(
        session.execute(
            select(accounts.c.id, accounts.c.plugin).where(accounts.c.id.in_(list(by_account)))
        ).all()
    )
    batches = []
    for account_id, ids in sorted(by_account.items()):
        size = max(1, batch_sizes[plugins[account_id]])
        ids.sort()
        batches.extend(
            Batch(account_id, ids[i : i + size], lease) for i in range(0, len(ids), size)
        )
    return batches


def held(
    session: Session, account_id: int, shipment_ids: Sequence[int], lease: datetime
) -> dict[int, str]:
    """Of a claimed batch, the shipments still held by that claim (id → tracking number): a
    claim that outlived its lease may have been taken over, and then the newer one checks."""
    return dict(
        session.execute(
            select(Shipment.id, Shipment.tracking_number).where(
                Shipment.id.in_(list(shipment_ids)),
                Shipment.carrier_account_id == account_id,
                Shipment.next_check_at == lease,
            )
        ).all()
    )


def record_poll(
    session: Session,
    account_id: int,
    shipment_ids: Sequence[int],
    lease: datetime,
    updates: Iterable[TrackingUpdate],
    policy: Tracking,
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """Apply what a carrier answered for a claimed batch and set each shipment's next check;
    a shipment whose claim was taken over is left to the newer claim. A tracking number the
    carrier did not answer for counts as no news. Returns {"checked", "changed", "taken"}."""
    now = now or utcnow()
    by_number: dict[str, list[TrackingUpdate]] = defaultdict(list)
    for found in updates:
        by_number[found.tracking_number].append(found)
    counts = {"checked": 0, "changed": 0, "taken": 0}
    for shipment in session.scalars(
        select(Shipment)
        .where(Shipment.id.in_(list(shipment_ids)), Shipment.carrier_account_id == account_id)
        .order_by(Shipment.id)
        .with_for_update()
    ):
        if shipment.next_check_at != lease:
            counts["taken"] += 1
            continue
        changed = False
        for found in by_number.get(shipment.tracking_number, ()):
            changed = apply(session, shipment, found, "poll", now=now) or changed
        shipment.next_check_at = next_check(shipment, now, policy)
        counts["checked"] += 1
        counts["changed"] += changed
    account = session.get(CarrierAccount, account_id)
    if account is not None and account.last_track_error is not None:
        account.last_track_error = account.last_track_error_at = None
    return counts


def record_failure(
    session: Session,
    account_id: int,
    shipment_ids: Sequence[int],
    lease: datetime,
    error: str,
    *,
    retrying: bool,
    policy: Tracking,
    now: datetime | None = None,
) -> None:
    """A batch could not be tracked: say why on the account, for the admin. A retry keeps
    the claim (the job queue tries again, and if it never succeeds the lease runs out and the
    sweeper claims the shipments anew); an error no retry mends (refused credentials) puts
    the next check a quiet interval away rather than asking again on every sweep."""
    now = now or utcnow()
    account = session.get(CarrierAccount, account_id)
    if account is not None:
        account.last_track_error = error[:ERROR_LENGTH]
        account.last_track_error_at = now
    if not retrying:
        session.execute(
            update(_shipments)
            .where(_shipments.c.id.in_(list(shipment_ids)), _shipments.c.next_check_at == lease)
            .values(
                next_check_at=now + timedelta(hours=policy.quiet_hours),
                updated_at=_shipments.c.updated_at,
            )
        )


def record_push(
    session: Session,
    account: CarrierAccount,
    updates: Iterable[TrackingUpdate],
    policy: Tracking,
    *,
    now: datetime | None = None,
) -> dict[str, int]:
    """Apply a verified carrier push to the account's shipments and reschedule their next
    check; a tracking number the account never shipped is acknowledged and ignored (the
    carrier may report parcels sent outside the hub). Returns {"updates", "applied",
    "changed", "unknown"}."""
    now = now or utcnow()
    updates = list(updates)
    counts = {"updates": len(updates), "applied": 0, "changed": 0, "unknown": 0}
    numbers = sorted({u.tracking_number for u in updates})
    found = {
        s.tracking_number: s
        for s in session.scalars(
            select(Shipment)
            .where(
                Shipment.carrier_account_id == account.id,
                Shipment.tracking_number.in_(numbers),
            )
            .order_by(Shipment.id)
            .with_for_update()
        )
    }
    for pushed in updates:
        shipment = found.get(pushed.tracking_number)
        if shipment is None:
            counts["unknown"] += 1
            continue
        counts["applied"] += 1
        counts["changed"] += apply(session, shipment, pushed, "push", now=now)
        shipment.next_check_at = next_check(shipment, now, policy)
    return counts


# --- by hand, and now -----------------------------------------------------------------------


def record_by_hand(
    session: Session,
    shipment: Shipment,
    *,
    status: str,
    at: datetime,
    actor: str,
    location: str | None = None,
    note: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, bool]:
    """Record what a courier without tracking (or a customer) said happened: an event like a
    carrier's scan, by the same rules (``apply``: a repeated or older event is kept but moves
    nothing back, a terminal status is final, a real change is announced and may open a
    delivery exception or deliver the order), marked ``manual`` with who entered it, and
    audited. ``at`` is already in range (hub.core.times); it may not be ahead of the hub's
    clock by more than ``FUTURE_SKEW``. Returns {"stored" (False: the same event was
    recorded before), "changed"}."""
    now = now or utcnow()
    if status not in BY_HAND:
        raise Invalid(f"status must be one of {', '.join(BY_HAND)}")
    if reason is not None and status not in WITH_REASON:
        raise Invalid(
            f"reason: only with status {' or '.join(sorted(WITH_REASON))}",
            [{"field": "reason", "problem": "only with an exception or a failed delivery"}],
        )
    if at > now + FUTURE_SKEW:
        raise Invalid(
            "at: must not be in the future",
            [{"field": "at", "problem": "must not be in the future"}],
        )
    if shipment.status == "cancelled":
        raise Conflict(
            f"shipment {shipment.tracking_number} was voided: nothing of it is on its way",
            {"status": shipment.status},
        )
    code = f"manual:{status}"
    seen = session.scalar(
        select(_events.c.id).where(
            _events.c.shipment_id == shipment.id, _events.c.at == at, _events.c.raw_code == code
        )
    )
    before = shipment.status
    scan = TrackingEvent(status, at, code, note or "", reason, location)
    changed = apply(
        session,
        shipment,
        TrackingUpdate(shipment.tracking_number, (scan,)),
        "manual",
        now=now,
        entered_by=actor,
    )
    audit.record(
        session,
        shipment.tenant_id,
        actor,
        "shipment.tracking_event",
        "shipment",
        shipment.id,
        {"status": before},
        {
            "status": shipment.status,
            "event": {
                "status": status,
                "at": at.isoformat(),
                "reason": reason,
                "location": location,
                "note": note,
            },
        },
    )
    return {"stored": seen is None, "changed": changed}


def check_now(runtime: Runtime, tenant_id: int, shipment_id: int) -> dict[str, Any]:
    """Ask a shipment's carrier for its tracking now and apply the answer, as a scheduled
    check would; the carrier is asked with no transaction open. A carrier without tracking,
    or a shipment whose tracking is final, is a 409; a carrier's failure is answered as
    hub.core.carrier_errors says (and noted on the account, as a poll's would be). Returns
    {"shipment" (its id), "changed"}."""
    with runtime.transaction(tenant_id) as session:
        shipment = shipments.get(session, tenant_id, shipment_id)
        account = session.get(CarrierAccount, shipment.carrier_account_id)
        assert account is not None
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
        number, status = shipment.tracking_number, shipment.status
    cls = runtime.plugins.adapters("carriers").get(account.plugin)
    if cls is None or "tracking" not in cls.capabilities:
        raise Conflict(
            f"carrier account {account.name!r} ({account.plugin}) has no tracking to ask;"
            f" record what the courier says with POST /api/v1/shipments/{shipment_id}/events"
        )
    if status in TERMINAL_STATUSES:
        raise Conflict(f"shipment {number} is {status}: its tracking is final", {"status": status})
    policy = runtime.tenant_settings(slug or "").tracking
    try:
        updates = runtime.carrier_adapter(account).track([number])
    except Exception as exc:
        mapped = carrier_errors.failed(
            exc, account=account.name, plugin=account.plugin, doing="report tracking"
        )
        with runtime.transaction(tenant_id) as session:
            found = session.get(CarrierAccount, account.id)
            if found is not None:
                found.last_track_error = mapped.message[:ERROR_LENGTH]
                found.last_track_error_at = utcnow()
        if mapped is exc:
            raise
        raise mapped from exc
    now = utcnow()
    with runtime.transaction(tenant_id) as session:
        shipment = shipments.get(session, tenant_id, shipment_id)
        changed = False
        for found_update in updates:
            if found_update.tracking_number == number:
                changed = apply(session, shipment, found_update, "poll", now=now) or changed
        shipment.next_check_at = next_check(shipment, now, policy)
        found = session.get(CarrierAccount, account.id)
        if found is not None and found.last_track_error is not None:
            found.last_track_error = found.last_track_error_at = None
    return {"shipment": shipment_id, "changed": changed}


# --- delays and expiry --------------------------------------------------------------------


def check_delays(
    session: Session, now: datetime, policy_for: Callable[[str], Tracking]
) -> dict[str, int]:
    """Open a "delayed" exception on each live shipment with no carrier scan for the tenant's
    ``delayed_after_hours``, or past its estimated or promised delivery date (the whole day
    gone, UTC) — once: not again while one is open, nor after one was resolved until new
    scans come and the shipment is still late. Expire (through ``apply``, as a scan of the
    hub's own) each live shipment with no news for ``expire_after_days``. ``policy_for``
    gives a tenant's (by slug) settings. Returns {"delayed", "expired"}."""
    counts = {"delayed": 0, "expired": 0}
    live = Shipment.status.not_in(TERMINAL_STATUSES)
    tenants = dict(
        session.execute(
            select(Tenant.id, Tenant.slug).where(
                Tenant.id.in_(select(Shipment.tenant_id).where(live).distinct())
            )
        ).all()
    )
    if not tenants:
        return counts
    policies = {tenant_id: policy_for(slug) for tenant_id, slug in tenants.items()}
    soonest = min(
        min(timedelta(hours=p.delayed_after_hours), timedelta(days=p.expire_after_days))
        for p in policies.values()
    )
    today = now.date()
    activity = func.coalesce(Shipment.last_event_at, Shipment.created_at)
    flagged = (
        exists()
        .where(
            DeliveryException.shipment_id == Shipment.id,
            DeliveryException.kind == "delayed",
            or_(DeliveryException.status == "open", DeliveryException.created_at >= activity),
        )
        .label("flagged")
    )
    candidates = session.execute(
        select(Shipment, flagged)
        .where(
            live,
            or_(
                activity < now - soonest,
                Shipment.estimated_delivery < today,
                Shipment.promised_delivery < today,
            ),
        )
        .order_by(Shipment.id)
    ).all()
    for shipment, already in candidates:
        policy = policies[shipment.tenant_id]
        quiet = now - (shipment.last_event_at or shipment.created_at)
        if quiet >= timedelta(days=policy.expire_after_days):
            days = policy.expire_after_days
            text = f"no news from the carrier for {days:g} days"
            expiry = TrackingUpdate(
                shipment.tracking_number, (TrackingEvent("expired", now, EXPIRED_CODE, text),)
            )
            counts["expired"] += apply(session, shipment, expiry, "hub", now=now)
            continue
        if already:
            continue
        why = _lateness(shipment, quiet, today, policy)
        if why is None:
            continue
        opened = delivery_exceptions.open_exception(
            session,
            shipment,
            "delayed",
            why,
            order_number=shipments.order_number(session, shipment),
            now=now,
        )
        counts["delayed"] += opened is not None
    return counts


def _lateness(shipment: Shipment, quiet: timedelta, today: date, policy: Tracking) -> str | None:
    """Why a live shipment counts as delayed, or None when it does not."""
    for due, what in (
        (shipment.promised_delivery, "promised"),
        (shipment.estimated_delivery, "estimated"),
    ):
        if due is not None and due < today:
            return f"past its {what} delivery date {due.isoformat()}"
    if quiet >= timedelta(hours=policy.delayed_after_hours):
        scanned = "scan" if shipment.last_event_at else "scan since the label was made"
        return f"no {scanned} for {quiet.total_seconds() / 3600:.0f} hours"
    return None


# --- reading ------------------------------------------------------------------------------


def timeline(session: Session, shipment: Shipment) -> list[dict[str, Any]]:
    """Every scan of a shipment, oldest first, as the carrier reported it and as the hub
    normalised it (``source``: poll, push, hub for what the hub concluded itself, or manual
    for what a person recorded — ``entered_by`` says who)."""
    rows = session.scalars(
        select(TrackingEventRecord)
        .where(TrackingEventRecord.shipment_id == shipment.id)
        .order_by(TrackingEventRecord.at, TrackingEventRecord.id)
    ).all()
    return [
        {
            "at": r.at.isoformat(),
            "status": r.status,
            "reason": r.reason,
            "raw_code": r.raw_code,
            "raw_text": r.raw_text,
            "location": r.location,
            "source": r.source,
            "entered_by": r.entered_by,
            "received_at": r.received_at.isoformat(),
        }
        for r in rows
    ]
