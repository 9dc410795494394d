"""Label purchases: the record of buying a label, kept so that a carrier is never called inside
a database transaction and a label bought is never lost.

A carrier's label cannot be rolled back by the database, so buying one goes: record the
intent and commit; call the carrier with no transaction open; record the result — and void
what was bought when the result cannot be recorded (hub.core.shipments.buy runs the steps).

- **The intent** is one ``shipment_purchases`` row per part (``buying``), committed with a
  claim on the goods: the order's allocations it will ship name it (``purchase_id``). Another
  shipping request sees them taken, so two requests never buy two labels for the same goods,
  while the stock stays reserved for the order (a cancel or an edit of the order meanwhile
  still finds it, and the recording step then sees the claim broken). A reship claims fresh
  stock it has just reserved.
- **The waybill** the carrier sold is saved on the row as soon as it is known (``bought``), in
  a short transaction of its own, so that from then on it can be voided even if the process
  dies.
- **Recording** makes the shipment from it (``recorded``) in one transaction — or, when that
  fails, the purchase gives the goods back and its label is voided (``voiding`` → ``voided``).
  A void the carrier refuses or cannot take now is asked again with backoff by the sweeper,
  ``VOID_ATTEMPTS`` times, then left ``void_failed`` with a line in the order's history for a
  person. A purchase the carrier refused (nothing bought) ends ``released``.
- **Interrupted** purchases — the process died between the steps — are the sweeper's once
  ``due_at`` passes (``STALE`` after they began): one still ``buying`` gives its goods back
  (``released``: the carrier's answer was never heard; the history says to check the carrier
  account for a label); one ``bought`` is voided as above.

Whoever moves a purchase on holds its row lock and checks its status first, so the request and
the sweeper never both act on one: the sweeper claims due rows by moving ``due_at`` to a lease
and writes only while it still holds that lease (like hub.core.tracking's claims).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from hub.core import carrier_errors, inventory, orders
from hub.core.adapters import Waybill
from hub.core.db import utcnow
from hub.core.errors import Conflict
from hub.core.models import Allocation, CarrierAccount, Order, ShipmentPurchase

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.purchases")

# A purchase still buying after this was interrupted: far longer than a quote and a buy take
# (deadlines and HTTP timeouts stop both within minutes).
STALE = timedelta(minutes=30)
# The sweeper's hold on a purchase while it voids its label.
LEASE = timedelta(minutes=10)
VOID_ATTEMPTS = 8
FIRST_VOID_RETRY = timedelta(minutes=5)
LONGEST_VOID_RETRY = timedelta(hours=12)
PENDING = frozenset({"buying", "bought"})
ERROR_LENGTH = 2000
SWEEP_LIMIT = 500
# The actor named on what the sweeper does.
SWEEPER = "sweeper"


# --- the intent ---------------------------------------------------------------------------


def open_purchase(
    session: Session,
    order: Order,
    warehouse_id: int,
    items: dict[int, int],
    *,
    kind: str,
    actor: str,
    account_id: int | None = None,
    service: str | None = None,
    replaces_id: int | None = None,
    exception_id: int | None = None,
    now: datetime | None = None,
) -> ShipmentPurchase:
    """Record the intent to buy a label for ``items`` (product id → quantity) leaving
    ``warehouse_id``, and claim the goods: for a shipment the order's unclaimed allocations
    there (split where only part of one is taken); for a reship, allocations made here for
    stock its caller has just reserved. The caller holds the order's lock."""
    now = now or utcnow()
    purchase = ShipmentPurchase(
        tenant_id=order.tenant_id,
        order_id=order.id,
        warehouse_id=warehouse_id,
        kind=kind,
        replaces_id=replaces_id,
        exception_id=exception_id,
        carrier_account_id=account_id,
        service=service,
        items={str(p): q for p, q in sorted(items.items())},
        status="buying",
        due_at=now + STALE,
        actor=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(purchase)
    session.flush()
    if kind == "reship":
        for product_id, quantity in sorted(items.items()):
            session.add(_claimed(order, warehouse_id, product_id, quantity, purchase.id))
    else:
        _claim(session, order, warehouse_id, items, purchase.id)
    session.flush()
    return purchase


def _claimed(
    order: Order, warehouse_id: int, product_id: int, quantity: int, purchase_id: int
) -> Allocation:
    return Allocation(
        tenant_id=order.tenant_id,
        order_id=order.id,
        warehouse_id=warehouse_id,
        product_id=product_id,
        quantity=quantity,
        purchase_id=purchase_id,
    )


def _claim(
    session: Session, order: Order, warehouse_id: int, items: dict[int, int], purchase_id: int
) -> None:
    left = dict(items)
    for a in session.scalars(
        select(Allocation)
        .where(
            Allocation.order_id == order.id,
            Allocation.warehouse_id == warehouse_id,
            Allocation.purchase_id.is_(None),
        )
        .order_by(Allocation.id)
    ):
        take = min(a.quantity, left.get(a.product_id, 0))
        if take == 0:
            continue
        left[a.product_id] -= take
        if take == a.quantity:
            a.purchase_id = purchase_id
        else:
            a.quantity -= take
            session.add(_claimed(order, warehouse_id, a.product_id, take, purchase_id))
    if any(q > 0 for q in left.values()):
        raise Conflict(f"order {order.number} has less unclaimed reserved stock than its parts")


def items_of(purchase: ShipmentPurchase) -> dict[int, int]:
    return {int(p): q for p, q in purchase.items.items()}


def pending(session: Session, **where: int) -> ShipmentPurchase | None:
    """A purchase of those (column = value) still under way, if any."""
    stmt = select(ShipmentPurchase).where(ShipmentPurchase.status.in_(PENDING))
    for column, value in where.items():
        stmt = stmt.where(getattr(ShipmentPurchase, column) == value)
    return session.scalars(stmt.limit(1)).first()


def lock(session: Session, purchase_id: int) -> ShipmentPurchase:
    found = session.scalar(
        select(ShipmentPurchase).where(ShipmentPurchase.id == purchase_id).with_for_update()
    )
    assert found is not None, purchase_id
    return found


# --- the result -----------------------------------------------------------------------------


def save_waybill(
    session: Session, purchase_id: int, account_id: int, service: str, waybill: Waybill
) -> bool:
    """Keep what the carrier sold on the purchase; False when the purchase is no longer
    buying (the sweeper gave it up meanwhile), and the caller must void the label itself."""
    purchase = lock(session, purchase_id)
    if purchase.status != "buying":
        return False
    purchase.status = "bought"
    purchase.carrier_account_id, purchase.service = account_id, service
    purchase.waybill = waybill_json(waybill)
    return True


def broken_claim(session: Session, purchase: ShipmentPurchase, order: Order) -> str | None:
    """Why the goods claimed for a purchase are no longer what its label was bought for — the
    order was cancelled, edited, split or merged meanwhile — or None when they are."""
    held: dict[int, int] = defaultdict(int)
    for order_id, warehouse_id, product_id, quantity in session.execute(
        select(
            Allocation.order_id, Allocation.warehouse_id, Allocation.product_id, Allocation.quantity
        ).where(Allocation.purchase_id == purchase.id)
    ):
        if order_id != order.id or warehouse_id != purchase.warehouse_id:
            return "its reserved stock moved to another order"
        held[product_id] += quantity
    if dict(held) != items_of(purchase):
        return "its reserved stock changed"
    return None


def take_claimed(session: Session, purchase: ShipmentPurchase) -> None:
    """The claimed allocations leave the order: their stock ships (the caller writes it)."""
    session.execute(delete(Allocation).where(Allocation.purchase_id == purchase.id))


def mark_recorded(purchase: ShipmentPurchase, shipment_id: int) -> None:
    purchase.status, purchase.shipment_id, purchase.due_at = "recorded", shipment_id, None


def release_goods(session: Session, purchase: ShipmentPurchase, actor: str) -> None:
    """The goods a purchase claimed are free again: a shipment's go back to the order (the
    claim is lifted wherever they are now); a reship's fresh stock is released."""
    if purchase.kind != "reship":
        session.execute(
            update(Allocation)
            .where(Allocation.purchase_id == purchase.id)
            .values(purchase_id=None)
            .execution_options(synchronize_session=False)
        )
        return
    claimed = session.scalars(
        select(Allocation).where(Allocation.purchase_id == purchase.id).order_by(Allocation.id)
    ).all()
    if not claimed:
        return
    number = session.scalar(select(Order.number).where(Order.id == purchase.order_id)) or ""
    inventory.release(
        session,
        purchase.tenant_id,
        [inventory.Allocated(a.warehouse_id, a.product_id, a.quantity) for a in claimed],
        reference=number,
        actor=actor,
    )
    take_claimed(session, purchase)
    inventory.check_low_stock(session, purchase.tenant_id, {a.product_id for a in claimed})


def end_unbought(session: Session, purchase: ShipmentPurchase, error: str, actor: str) -> None:
    """Nothing was bought (the carrier refused, or was never asked): the goods are free."""
    release_goods(session, purchase, actor)
    purchase.status, purchase.due_at = "released", None
    purchase.error = error[:ERROR_LENGTH]


def start_void(
    session: Session,
    purchase: ShipmentPurchase,
    waybill: Waybill,
    account_id: int,
    error: str,
    actor: str,
    *,
    now: datetime | None = None,
) -> datetime:
    """A bought label that will not be recorded: the goods are free again (unless they were
    already), and the label is to be voided by whoever holds the returned lease."""
    now = now or utcnow()
    if purchase.status in PENDING:
        release_goods(session, purchase, actor)
    purchase.status = "voiding"
    purchase.waybill = purchase.waybill or waybill_json(waybill)
    purchase.carrier_account_id = purchase.carrier_account_id or account_id
    purchase.error = error[:ERROR_LENGTH]
    purchase.due_at = now + LEASE
    return purchase.due_at


def end_void(
    session: Session,
    purchase_id: int,
    lease: datetime,
    failure: str | None,
    *,
    actor: str = SWEEPER,
    now: datetime | None = None,
) -> str | None:
    """Record how a void went, if the lease still holds: ``voided``; or asked again later
    (backing off) until ``VOID_ATTEMPTS``, then ``void_failed`` for a person. Returns the new
    status (None: the lease was lost)."""
    now = now or utcnow()
    purchase = lock(session, purchase_id)
    if purchase.status != "voiding" or purchase.due_at != lease:
        return None
    waybill = waybill_from(purchase.waybill)
    order = session.get(Order, purchase.order_id)
    account = session.get(CarrierAccount, purchase.carrier_account_id)
    label = f"{account.name if account else 'the carrier'} label {waybill.tracking_number}"
    purchase.void_attempts += 1
    if failure is None:
        purchase.status, purchase.due_at = "voided", None
        if order is not None:
            orders.record_history(
                session, order, "label_voided", actor, f"{label} voided: {purchase.error}"[:1000]
            )
        return purchase.status
    purchase.error = f"void failed: {failure}"[:ERROR_LENGTH]
    if purchase.void_attempts >= VOID_ATTEMPTS:
        purchase.status, purchase.due_at = "void_failed", None
        if order is not None:
            orders.record_history(
                session,
                order,
                "label_not_voided",
                actor,
                f"{label} was bought but not recorded, and {purchase.void_attempts} attempts to"
                f" void it failed ({failure}): void it with the carrier"[:1000],
            )
        return purchase.status
    delay = min(FIRST_VOID_RETRY * 2 ** (purchase.void_attempts - 1), LONGEST_VOID_RETRY)
    purchase.due_at = now + delay
    return purchase.status


def void(runtime: Runtime, account: CarrierAccount, waybill: Waybill) -> str | None:
    """Ask the carrier to void a label, outside any transaction; None when it is void (or the
    carrier has no void: an unused label costs nothing there), else why not."""
    try:
        adapter = runtime.carrier_adapter(account)
        if "cancel" in adapter.capabilities:
            adapter.cancel(waybill)
    except Exception as exc:  # every failure is recorded and asked again later
        mapped = carrier_errors.failed(
            exc, account=account.name, plugin=account.plugin, doing="void the label"
        )
        return mapped.message
    return None


# --- the sweeper ----------------------------------------------------------------------------


def claim_due(
    session: Session, now: datetime, *, limit: int = SWEEP_LIMIT
) -> tuple[list[int], datetime]:
    """Claim the purchases due a look (interrupted, or a void to try again) in one UPDATE that
    moves ``due_at`` to a lease; two sweepers never claim the same one."""
    table = ShipmentPurchase.__table__
    lease = now + LEASE
    due = (
        select(table.c.id)
        .where(table.c.due_at <= now)
        .order_by(table.c.due_at, table.c.id)
        .limit(limit)
    )
    ids = session.scalars(
        update(table)
        .where(table.c.id.in_(due), table.c.due_at <= now)
        .values(due_at=lease)
        .returning(table.c.id)
    ).all()
    return sorted(ids), lease


def settle(runtime: Runtime, purchase_id: int, lease: str | datetime) -> str:
    """Finish a purchase the sweeper claimed: one interrupted while buying gives its goods
    back; one interrupted after buying, or whose void failed before, is voided (again).
    Returns what became of it."""
    claim = datetime.fromisoformat(lease) if isinstance(lease, str) else lease
    with runtime.transaction() as session:
        purchase = session.scalar(
            select(ShipmentPurchase).where(ShipmentPurchase.id == purchase_id).with_for_update()
        )
        if purchase is None or purchase.due_at != claim:
            return "taken"
        order = session.get(Order, purchase.order_id)
        if purchase.status == "buying":
            end_unbought(
                session,
                purchase,
                "interrupted before the carrier's answer was recorded",
                SWEEPER,
            )
            if order is not None:
                orders.record_history(
                    session,
                    order,
                    "label_purchase_interrupted",
                    SWEEPER,
                    f"a label purchase begun {purchase.created_at:%Y-%m-%d %H:%M} UTC by"
                    f" {purchase.actor} was interrupted before the carrier's answer was"
                    f" recorded; its goods are reserved for the order again. If the carrier"
                    f" made a label for {order.number}, void it with the carrier",
                )
            return "released"
        if purchase.status == "bought":
            start_void(
                session,
                purchase,
                waybill_from(purchase.waybill),
                purchase.carrier_account_id or 0,
                "interrupted before the shipment was recorded",
                SWEEPER,
            )
            purchase.due_at = claim  # the sweeper's lease goes on
        if purchase.status != "voiding":
            return purchase.status
        account = session.get(CarrierAccount, purchase.carrier_account_id)
        waybill = waybill_from(purchase.waybill)
    assert account is not None
    failure = void(runtime, account, waybill)
    with runtime.transaction() as session:
        return end_void(session, purchase_id, claim, failure) or "taken"


# --- waybills as stored ---------------------------------------------------------------------


def waybill_json(waybill: Waybill) -> dict[str, Any]:
    return {
        "tracking_number": waybill.tracking_number,
        "label": waybill.label,
        "carrier_shipment_id": waybill.carrier_shipment_id,
        "amount": str(waybill.amount) if waybill.amount is not None else None,
        "currency": waybill.currency,
        "estimated_delivery": (
            waybill.estimated_delivery.isoformat() if waybill.estimated_delivery else None
        ),
    }


def waybill_from(data: dict[str, Any] | None) -> Waybill:
    assert data is not None
    return Waybill(
        tracking_number=data["tracking_number"],
        label=data.get("label"),
        carrier_shipment_id=data.get("carrier_shipment_id"),
        amount=Decimal(data["amount"]) if data.get("amount") is not None else None,
        currency=data.get("currency"),
        estimated_delivery=(
            date.fromisoformat(data["estimated_delivery"])
            if data.get("estimated_delivery")
            else None
        ),
    )


@dataclass(frozen=True)
class Outcome:
    """What became of the labels of a shipping request that failed, for its answer."""

    voided: tuple[str, ...] = ()
    retrying: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()

    def text(self) -> str:
        parts = []
        for numbers, what in (
            (self.voided, "voided"),
            (self.retrying, "not voided yet (the carrier would not; the hub will try again)"),
            (self.lost, "not voided: void it with the carrier"),
        ):
            if numbers:
                parts.append(f"label {', '.join(numbers)} bought for it {what}")
        return "; ".join(parts)
