"""Delivery exceptions: a shipment that went wrong on its way — delayed, lost, damaged,
refused, a failed delivery attempt, returned to sender, expired — kept open until a person
resolves it.

The tracker (hub.core.tracking) opens them: from the status a carrier's scans settle on, and
from its delay check. At most one exception per shipment and kind is open at a time, and the
database enforces it (a partial unique index), so a repeated "lost" scan or a delay check
running again on another worker opens nothing new. An opening is audited, written in the
order's history and announced (the ``delivery_exception`` hook, notifiers).

People open them too (``open_by_hand``: the customer says the parcel is lost, or arrived
damaged), for any kind but "expired", which only the tracker concludes.

Resolutions: ``reship`` sends the goods again (``start_reship``, hub.core.shipments.replace:
new stock movement, new label, bought after the request's transaction like any label) and
links the replacement — the exception is resolved in the transaction that records it, so a
replacement whose label could not be bought leaves the exception open; ``refund`` and
``close`` resolve it, a refund being recorded in the order's history for whoever pays it back
(OrderHub has no payments); ``contact`` records what was agreed with the customer and leaves
the exception open, because talking to the customer settles nothing by itself — the parcel is
still late or lost until a reship, a refund, a close or the delivery itself. Each is audited
and written in the order's history.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, events, orders, purchases, shipments
from hub.core.db import utcnow
from hub.core.errors import Conflict, Invalid, NotFound
from hub.core.models import DeliveryException, Order, Shipment

if TYPE_CHECKING:
    from hub.runtime import Runtime

KINDS = (
    "delayed",
    "lost",
    "damaged",
    "refused",
    "failed_attempt",
    "returned",
    "expired",
    "exception",
)
# What a person may open by hand: every kind but expiry, which the tracker concludes.
BY_HAND = tuple(k for k in KINDS if k != "expired")
RESOLUTIONS = ("reship", "refund", "close", "contact")
# What a delivered parcel settles by itself: it was late, it was not lost after all, a failed
# attempt was followed by a good one. Damage, a refusal or a return still needs a person.
SETTLED_BY_DELIVERY = frozenset({"delayed", "lost", "failed_attempt", "exception"})
# The actor named on what the hub opens or settles itself.
TRACKER = "tracking"
REASON_LENGTH = 500  # delivery_exceptions.reason
NOTE_LENGTH = 1000  # delivery_exceptions.note
HISTORY_LENGTH = 1000  # order_history.reason
# The kinds a carrier's reason names outright, whatever status it comes with.
_NAMED = frozenset({"lost", "damaged", "refused"})
_BY_STATUS = {
    "delivery_failed": "failed_attempt",
    "returned_to_sender": "returned",
    "expired": "expired",
}


def kind_of(status: str, reason: str | None) -> str | None:
    """The exception a tracking status (with its reason) amounts to, or None when it is no
    exception: a failed attempt, a return, an expiry, an exception with its known reason (an
    unknown or missing reason is the generic "exception")."""
    if status not in ("exception", *_BY_STATUS):
        return None
    if reason in _NAMED:
        return reason
    if status == "exception":
        return reason if reason in KINDS else "exception"
    return _BY_STATUS[status]


def open_exception(
    session: Session,
    shipment: Shipment,
    kind: str,
    reason: str,
    *,
    order_number: str,
    now: datetime | None = None,
    actor: str = TRACKER,
) -> DeliveryException | None:
    """Open an exception of ``kind`` on a shipment unless one is open already (then None):
    audited, written in the order's history and announced. ``now`` is when the tracker
    noticed (the delay check compares it with the shipment's last scan); ``actor`` who
    opened it (the tracker, or a person)."""
    table = DeliveryException.__table__
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    reason = reason[:REASON_LENGTH]
    new_id = session.execute(
        insert(table)
        .values(
            tenant_id=shipment.tenant_id,
            shipment_id=shipment.id,
            kind=kind,
            reason=reason,
            status="open",
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["shipment_id", "kind"], index_where=text("status = 'open'")
        )
        .returning(table.c.id)
    ).scalar()
    if new_id is None:
        return None
    found = session.get(DeliveryException, new_id)
    assert found is not None
    view = exception_dict(found, shipment, order_number)
    audit.record(
        session,
        shipment.tenant_id,
        actor,
        "delivery_exception.open",
        "delivery_exception",
        new_id,
        None,
        view,
    )
    _history(
        session,
        shipment,
        "delivery_exception",
        actor,
        f"{kind} ({shipment.tracking_number}): {reason}",
    )
    events.emit(
        session,
        shipment.tenant_id,
        events.DELIVERY_EXCEPTION,
        {
            "id": new_id,
            "number": order_number,
            "shipment": shipment.id,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "kind": kind,
            "reason": reason,
        },
    )
    return found


def open_by_hand(
    session: Session, tenant_id: int, shipment_id: int, kind: str, note: str, *, actor: str
) -> DeliveryException:
    """A person opens an exception ("the customer says the parcel is lost"): any kind but
    expiry, on any shipment that was not voided (a delivered parcel can still have arrived
    damaged, or not at all). One open per shipment and kind, as for the tracker's."""
    if kind not in BY_HAND:
        raise Invalid(f"kind must be one of {', '.join(BY_HAND)}")
    shipment = shipments.get(session, tenant_id, shipment_id, for_update=True)
    if shipment.status == "cancelled":
        raise Conflict(
            f"shipment {shipment.tracking_number} was voided: nothing of it is on its way",
            {"status": shipment.status},
        )
    opened = open_exception(
        session,
        shipment,
        kind,
        note,
        order_number=shipments.order_number(session, shipment),
        actor=actor,
    )
    if opened is None:
        existing = session.scalar(
            select(DeliveryException.id).where(
                DeliveryException.shipment_id == shipment.id,
                DeliveryException.kind == kind,
                DeliveryException.status == "open",
            )
        )
        raise Conflict(
            f"a {kind} exception is already open on shipment {shipment.tracking_number}"
            f" (exception {existing})",
            {"exception": existing},
        )
    return opened


def settle_on_delivery(session: Session, shipment: Shipment, order_number: str) -> list[int]:
    """Close the shipment's open exceptions that its delivery answers (SETTLED_BY_DELIVERY),
    so the open list holds only what still needs a person. Returns their ids."""
    settled = session.scalars(
        select(DeliveryException)
        .where(
            DeliveryException.shipment_id == shipment.id,
            DeliveryException.status == "open",
            DeliveryException.kind.in_(SETTLED_BY_DELIVERY),
        )
        .order_by(DeliveryException.id)
        .with_for_update()
    ).all()
    for found in settled:
        _resolve(session, found, shipment, order_number, "close", "delivered", TRACKER)
    return [found.id for found in settled]


def resolve(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    exception_id: int,
    resolution: str,
    *,
    note: str | None = None,
    actor: str,
) -> DeliveryException:
    """Resolve an open exception by ``refund``, ``close`` or ``contact`` (see the module's
    docstring for what each does; ``reship`` is ``start_reship``); ``contact`` needs a note
    and leaves it open."""
    if resolution not in RESOLUTIONS or resolution == "reship":
        raise Invalid(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    found = _open(session, tenant_id, exception_id)
    shipment = session.get(Shipment, found.shipment_id)
    assert shipment is not None
    number = shipments.order_number(session, shipment)
    if resolution == "contact":
        if not note:
            raise Invalid("say in 'note' what was agreed with the customer")
        before = exception_dict(found, shipment, number)
        found.note = note[:NOTE_LENGTH]
        audit.record(
            session,
            tenant_id,
            actor,
            "delivery_exception.contact",
            "delivery_exception",
            found.id,
            before,
            exception_dict(found, shipment, number),
        )
        _history(
            session,
            shipment,
            "customer_contacted",
            actor,
            f"about the {found.kind} delivery of {shipment.tracking_number}: {note}",
        )
        return found
    _resolve(session, found, shipment, number, resolution, note, actor)
    return found


def start_reship(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    exception_id: int,
    *,
    note: str | None = None,
    actor: str,
) -> shipments.Plan:
    """Resolve an open exception by sending the goods again: the replacement's stock is
    reserved here; ``shipments.buy`` (after commit) buys its label and, in the transaction
    that records it, resolves the exception — unless it was resolved meanwhile (the lost
    parcel was delivered after all), in which case the replacement's label is voided."""
    found = _open(session, tenant_id, exception_id)
    plan = shipments.replace(
        session, runtime, tenant_id, found.shipment_id, actor=actor, exception_id=found.id
    )
    resolved = functools.partial(_reshipped, exception_id=found.id, note=note, actor=actor)
    return dataclasses.replace(plan, on_recorded=resolved)


def _reshipped(
    session: Session,
    made: list[Shipment],
    *,
    exception_id: int,
    note: str | None,
    actor: str,
) -> None:
    found = session.scalar(
        select(DeliveryException).where(DeliveryException.id == exception_id).with_for_update()
    )
    assert found is not None
    if found.status != "open":
        raise Conflict(
            f"delivery exception {exception_id} was resolved ({found.resolution}) while its"
            " replacement was bought; the replacement is not sent",
            {"status": found.status, "resolution": found.resolution},
        )
    shipment = session.get(Shipment, found.shipment_id)
    assert shipment is not None
    found.replacement_shipment_id = made[0].id
    number = shipments.order_number(session, shipment)
    _resolve(session, found, shipment, number, "reship", note, actor)


def _open(session: Session, tenant_id: int, exception_id: int) -> DeliveryException:
    """The exception, locked, if it is open and no replacement is being bought for it."""
    found = get(session, tenant_id, exception_id, for_update=True)
    if found.status != "open":
        raise Conflict(
            f"delivery exception {exception_id} was already resolved ({found.resolution})",
            {"status": found.status, "resolution": found.resolution},
        )
    if purchases.pending(session, exception_id=found.id) is not None:
        raise Conflict(
            f"a replacement is being bought for delivery exception {exception_id}; try again"
            " in a moment",
            {"status": found.status},
        )
    return found


def _resolve(
    session: Session,
    found: DeliveryException,
    shipment: Shipment,
    number: str,
    resolution: str,
    note: str | None,
    actor: str,
) -> None:
    before = exception_dict(found, shipment, number)
    found.status, found.resolution = "resolved", resolution
    found.resolved_at, found.resolved_by = utcnow(), actor
    if note:
        found.note = note[:NOTE_LENGTH]
    audit.record(
        session,
        shipment.tenant_id,
        actor,
        f"delivery_exception.{resolution}",
        "delivery_exception",
        found.id,
        before,
        exception_dict(found, shipment, number),
    )
    what = {
        "reship": "reshipped",
        "refund": "refund the customer",
        "close": "closed",
    }[resolution]
    _history(
        session,
        shipment,
        "refund" if resolution == "refund" else "delivery_exception_resolved",
        actor,
        f"{found.kind} delivery of {shipment.tracking_number}: {what}"
        + (f" ({note})" if note else ""),
    )


def get(
    session: Session, tenant_id: int, exception_id: int, *, for_update: bool = False
) -> DeliveryException:
    stmt = select(DeliveryException).where(
        DeliveryException.tenant_id == tenant_id, DeliveryException.id == exception_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"no delivery exception {exception_id}")
    return found


def find(
    tenant_id: int, *, status: str | None = None, kind: str | None = None
) -> Select[tuple[DeliveryException, Shipment, str]]:
    """A tenant's exceptions with their shipment and order number, for a paged listing."""
    stmt = (
        select(DeliveryException, Shipment, Order.number)
        .join(Shipment, Shipment.id == DeliveryException.shipment_id)
        .join(Order, Order.id == Shipment.order_id)
        .where(DeliveryException.tenant_id == tenant_id)
    )
    if status is not None:
        stmt = stmt.where(DeliveryException.status == status)
    if kind is not None:
        stmt = stmt.where(DeliveryException.kind == kind)
    return stmt


def exception_dict(found: DeliveryException, shipment: Shipment, number: str) -> dict[str, Any]:
    return {
        "id": found.id,
        "kind": found.kind,
        "reason": found.reason,
        "status": found.status,
        "order": number,
        "shipment": {
            "id": shipment.id,
            "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number,
            "status": shipment.status,
        },
        "resolution": found.resolution,
        "note": found.note,
        "replacement_shipment": found.replacement_shipment_id,
        "created_at": found.created_at.isoformat(),
        "resolved_at": found.resolved_at.isoformat() if found.resolved_at else None,
        "resolved_by": found.resolved_by,
    }


def _history(session: Session, shipment: Shipment, action: str, actor: str, reason: str) -> None:
    order = session.get(Order, shipment.order_id)
    assert order is not None
    orders.record_history(session, order, action, actor, reason[:HISTORY_LENGTH])
