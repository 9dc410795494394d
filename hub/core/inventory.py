"""Stock: reserve, release, receive, dispatch, adjust, ship — every change with its ledger row in
the same transaction — plus low-stock alerts and the balance check.

A reservation is a conditional UPDATE (``… WHERE on_hand - reserved >= :qty``) and products are
always taken in ascending id order, warehouses in priority order, so concurrent orders can
neither oversell nor deadlock. The CHECK constraints on ``stock_levels`` back this up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, events
from hub.core import rules as rules_mod
from hub.core.db import utcnow
from hub.core.errors import Conflict, InsufficientStock, Invalid, line_problem
from hub.core.models import Product, StockLedger, StockLevel, Warehouse

MAX_QUANTITY = 1_000_000

# A warehouse of this kind holds returned goods that may not be sold (hub.core.quarantine).
# It is never active, so no reservation takes from it; and what it holds never counts as
# available (low-stock alerts, stock listings): ``available_units`` says so, for queries that
# join the level's warehouse.
QUARANTINE = "quarantine"
available_units = case(
    (Warehouse.kind == QUARANTINE, 0), else_=StockLevel.on_hand - StockLevel.reserved
)


@dataclass(frozen=True)
class Allocated:
    warehouse_id: int
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Movement:
    """One row of a batch: inbound, outbound or adjustment."""

    warehouse_id: int
    product_id: int
    quantity: int
    reason: str | None = None


_NO_SYNC = {"synchronize_session": False}


def reserve(
    session: Session,
    tenant_id: int,
    needs: Mapping[int, int],
    *,
    reference: str,
    actor: str,
    skus: Mapping[int, str],
    thresholds: Mapping[int, int] | None = None,
) -> list[Allocated]:
    """Reserve every product in ``needs`` (product id → quantity) with its ledger rows."""
    taken = take(session, tenant_id, needs, skus=skus, thresholds=thresholds)
    record_reservation(session, tenant_id, taken, reference=reference, actor=actor)
    return taken


@dataclass(frozen=True)
class Destination:
    """Where an order goes and the tenant's rules, for routing by plan."""

    rules: rules_mod.Rules
    country: str | None
    region: str | None


def take(
    session: Session,
    tenant_id: int,
    needs: Mapping[int, int],
    *,
    skus: Mapping[int, str],
    thresholds: Mapping[int, int] | None = None,
    destination: Destination | None = None,
) -> list[Allocated]:
    """Move stock from available to reserved, all or nothing, without the ledger rows (the
    caller writes them with ``record_reservation`` once it knows the reference).

    On a shortage whatever was taken is handed back and InsufficientStock names every short
    SKU; no savepoint is needed. ``thresholds`` (product id → low-stock threshold) lets the
    low-stock check skip products whose warehouse still holds plenty after the reservation.
    A ``destination`` whose rules route by region or stock is planned as a whole order
    (``_take_planned``); otherwise each product comes from the warehouses in priority order.
    """
    if destination is not None and destination.rules.routes_by_plan:
        planned = _take_planned(session, tenant_id, needs, destination)
        if planned is not None:
            check_low_stock(session, tenant_id, set(needs))
            return planned
    taken: list[Allocated] = []
    shortages = []
    maybe_low = set()
    for product_id in sorted(needs):
        quantity = needs[product_id]
        got, available, left = _reserve_one(session, tenant_id, product_id, quantity)
        taken.extend(got)
        if sum(a.quantity for a in got) < quantity:
            shortages.append(
                {"sku": skus[product_id], "requested": quantity, "available": available}
            )
        elif thresholds is None or left is None or left < thresholds.get(product_id, 0):
            maybe_low.add(product_id)
    if shortages:
        _hand_back(session, taken)
        raise InsufficientStock(
            "not enough stock: "
            + ", ".join(
                f"{s['sku']} needs {s['requested']}, {s['available']} available" for s in shortages
            ),
            {"shortages": shortages},
        )
    check_low_stock(session, tenant_id, maybe_low)
    return taken


def _take_planned(
    session: Session, tenant_id: int, needs: Mapping[int, int], destination: Destination
) -> list[Allocated] | None:
    """Route the whole order: rank the warehouses by the tenant's routing order, take it from
    the best one that can fill it all, else split it across the best ones. The updates run in
    (product, warehouse) order like every other reservation, each still conditional, so a
    race only makes the plan fail: it is then planned again from fresh numbers, and after a
    few lost races the caller falls back to the priority path. None means "fall back"."""
    sites = [
        rules_mod.Site(*row)
        for row in session.execute(
            select(Warehouse.id, Warehouse.priority, Warehouse.country, Warehouse.region).where(
                Warehouse.tenant_id == tenant_id, Warehouse.active.is_(True)
            )
        )
    ]
    for _attempt in range(3):
        free: dict[int, dict[int, int]] = {}
        for wh, product, units in session.execute(
            select(StockLevel.warehouse_id, StockLevel.product_id, _free_units).where(
                StockLevel.tenant_id == tenant_id, StockLevel.product_id.in_(list(needs))
            )
        ):
            free.setdefault(wh, {})[product] = units
        ranked = rules_mod.rank_warehouses(
            sites,
            free,
            needs,
            destination.rules,
            ship_country=destination.country,
            ship_region=destination.region,
        )
        routed = rules_mod.plan(ranked, free, needs)
        if routed is None:
            return None  # short: the priority path names every short SKU
        taken: list[Allocated] = []
        steps = sorted((p, wh, q) for p, parts in routed.items() for wh, q in parts)
        for product, wh, quantity in steps:
            done = session.execute(
                update(StockLevel)
                .where(
                    StockLevel.warehouse_id == wh,
                    StockLevel.product_id == product,
                    _free_units >= quantity,
                )
                .values(reserved=StockLevel.reserved + quantity)
                .execution_options(**_NO_SYNC)
            ).rowcount
            if not done:
                _hand_back(session, taken)
                break
            taken.append(Allocated(wh, product, quantity))
        else:
            return taken
    return None


_free_units = StockLevel.on_hand - StockLevel.reserved


def record_reservation(
    session: Session, tenant_id: int, taken: Sequence[Allocated], *, reference: str, actor: str
) -> None:
    _ledger(session, tenant_id, "reserve", taken, reference, actor, reserved_sign=1)


def _hand_back(session: Session, taken: Sequence[Allocated]) -> None:
    for a in taken:
        session.execute(
            update(StockLevel)
            .where(StockLevel.warehouse_id == a.warehouse_id, StockLevel.product_id == a.product_id)
            .values(reserved=StockLevel.reserved - a.quantity)
            .execution_options(**_NO_SYNC)
        )


_INSERT_LEDGER = insert(StockLedger.__table__)
_levels, _warehouses = StockLevel.__table__, Warehouse.__table__
_free = _levels.c.on_hand - _levels.c.reserved
# The fast path, one round trip: the first warehouse (by priority) that can fill the whole
# line takes it. Built once; it runs for every line of every order.
_FAST_RESERVE = (
    update(_levels)
    .where(
        _levels.c.id
        == select(_levels.c.id)
        .join(_warehouses, _warehouses.c.id == _levels.c.warehouse_id)
        .where(
            _levels.c.tenant_id == bindparam("b_tenant"),
            _levels.c.product_id == bindparam("b_product"),
            _warehouses.c.active.is_(True),
            _free >= bindparam("b_quantity"),
        )
        .order_by(_warehouses.c.priority, _warehouses.c.id)
        .limit(1)
        .scalar_subquery(),
        _free >= bindparam("b_quantity"),
    )
    .values(reserved=_levels.c.reserved + bindparam("b_quantity"))
    .returning(_levels.c.warehouse_id, _free)
)


def _reserve_one(
    session: Session, tenant_id: int, product_id: int, quantity: int
) -> tuple[list[Allocated], int, int | None]:
    """What was reserved; how much was available when it fell short; and, on the fast path,
    what is left free in the warehouse it came from (a lower bound of what is left overall)."""
    hit = session.execute(
        _FAST_RESERVE, {"b_tenant": tenant_id, "b_product": product_id, "b_quantity": quantity}
    ).first()
    if hit is not None:
        return [Allocated(hit[0], product_id, quantity)], quantity, hit[1]
    available = StockLevel.on_hand - StockLevel.reserved
    # No single warehouse can: take what each has, in priority order.
    taken: list[Allocated] = []
    remaining = quantity
    for _attempt in range(5):
        rows = session.execute(
            select(StockLevel.id, StockLevel.warehouse_id, available)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.product_id == product_id,
                Warehouse.active.is_(True),
                available > 0,
            )
            .order_by(Warehouse.priority, Warehouse.id)
        ).all()
        free_total = sum(r[2] for r in rows)
        if free_total < remaining:
            return taken, free_total + quantity - remaining, None
        raced = False
        for level_id, wh_id, free in rows:
            take = min(free, remaining)
            done = session.execute(
                update(StockLevel)
                .where(StockLevel.id == level_id, available >= take)
                .values(reserved=StockLevel.reserved + take)
                .execution_options(**_NO_SYNC)
            ).rowcount
            if not done:
                raced = True
                break
            taken.append(Allocated(wh_id, product_id, take))
            remaining -= take
            if remaining == 0:
                return taken, quantity, None
        if not raced:
            return taken, quantity - remaining, None
    return taken, quantity - remaining, None


def release(
    session: Session,
    tenant_id: int,
    allocations: Sequence[Allocated],
    *,
    reference: str,
    actor: str,
) -> None:
    """Reserved stock goes back to available (a cancelled or shrunk order)."""
    _out_of_reserved(session, tenant_id, allocations, leaves_warehouse=False)
    _ledger(session, tenant_id, "release", allocations, reference, actor, reserved_sign=-1)


def ship(
    session: Session,
    tenant_id: int,
    allocations: Sequence[Allocated],
    *,
    reference: str,
    actor: str,
) -> None:
    """Reserved stock leaves the warehouse: both on-hand and reserved go down."""
    _out_of_reserved(session, tenant_id, allocations, leaves_warehouse=True)
    _ledger(
        session, tenant_id, "ship", allocations, reference, actor, reserved_sign=-1, on_hand_sign=-1
    )


def unship(
    session: Session,
    tenant_id: int,
    allocations: Sequence[Allocated],
    *,
    reference: str,
    actor: str,
) -> None:
    """A shipment voided before pickup: the goods never left, so they are on hand and
    reserved for the order again (the reverse of ``ship``)."""
    for a in sorted(allocations, key=lambda a: (a.product_id, a.warehouse_id)):
        session.execute(
            update(StockLevel)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.warehouse_id == a.warehouse_id,
                StockLevel.product_id == a.product_id,
            )
            .values(
                on_hand=StockLevel.on_hand + a.quantity, reserved=StockLevel.reserved + a.quantity
            )
            .execution_options(**_NO_SYNC)
        )
    _ledger(
        session, tenant_id, "unship", allocations, reference, actor, reserved_sign=1, on_hand_sign=1
    )


def _out_of_reserved(
    session: Session, tenant_id: int, allocations: Sequence[Allocated], *, leaves_warehouse: bool
) -> None:
    for a in sorted(allocations, key=lambda a: (a.product_id, a.warehouse_id)):
        values = {"reserved": StockLevel.reserved - a.quantity}
        if leaves_warehouse:
            values["on_hand"] = StockLevel.on_hand - a.quantity
        done = session.execute(
            update(StockLevel)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.warehouse_id == a.warehouse_id,
                StockLevel.product_id == a.product_id,
                StockLevel.reserved >= a.quantity,
            )
            .values(values)
            .execution_options(**_NO_SYNC)
        ).rowcount
        if not done:
            raise Conflict(f"{a.quantity} of product {a.product_id} is not reserved there")


def receive(
    session: Session,
    tenant_id: int,
    movements: Sequence[Movement],
    *,
    reference: str | None,
    actor: str,
    kind: str = "inbound",
) -> None:
    """Inbound: on-hand goes up, creating the balance row on first receipt. ``kind`` names
    the ledger rows: "inbound", or what brought the goods in ("return", "quarantine")."""
    _ensure_levels(session, tenant_id, {(m.warehouse_id, m.product_id) for m in movements})
    for m in movements:
        session.execute(
            update(StockLevel)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.warehouse_id == m.warehouse_id,
                StockLevel.product_id == m.product_id,
            )
            .values(on_hand=StockLevel.on_hand + m.quantity, updated_at=utcnow())
            .execution_options(**_NO_SYNC)
        )
    _ledger_movements(session, tenant_id, kind, movements, reference, actor, sign=1)
    check_low_stock(session, tenant_id, {m.product_id for m in movements})


def dispatch(
    session: Session,
    tenant_id: int,
    movements: Sequence[Movement],
    *,
    reference: str | None,
    actor: str,
    line_numbers: Sequence[int] | None = None,
) -> None:
    """Outbound outside an order (damaged, samples, transfers out): only free stock may leave."""
    for index, m in enumerate(movements):
        done = session.execute(
            update(StockLevel)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.warehouse_id == m.warehouse_id,
                StockLevel.product_id == m.product_id,
                StockLevel.on_hand - StockLevel.reserved >= m.quantity,
            )
            .values(on_hand=StockLevel.on_hand - m.quantity, updated_at=utcnow())
            .execution_options(**_NO_SYNC)
        ).rowcount
        if not done:
            where = _describe(session, m)
            line = line_numbers[index] if line_numbers else index + 1
            raise line_problem(
                line,
                f"not enough free stock of {where} to send out {m.quantity}",
                InsufficientStock,
            )
    _ledger_movements(session, tenant_id, "outbound", movements, reference, actor, sign=-1)
    check_low_stock(session, tenant_id, {m.product_id for m in movements})


def adjust(
    session: Session,
    tenant_id: int,
    counts: Sequence[Movement],
    *,
    reason: str,
    actor: str,
    absolute: bool,
    line_numbers: Sequence[int] | None = None,
) -> list[int]:
    """Stock-take (``absolute``: quantity is the counted on-hand) or a signed correction.

    On-hand may never fall below what is reserved for orders; returns the deltas applied.
    """
    if not reason.strip():
        raise Invalid("an adjustment needs a reason")
    _ensure_levels(session, tenant_id, {(m.warehouse_id, m.product_id) for m in counts})
    deltas = []
    rows = []
    for index, m in enumerate(counts):
        level = session.execute(
            select(StockLevel.id, StockLevel.on_hand, StockLevel.reserved)
            .where(
                StockLevel.tenant_id == tenant_id,
                StockLevel.warehouse_id == m.warehouse_id,
                StockLevel.product_id == m.product_id,
            )
            .with_for_update()
        ).one()
        new_on_hand = m.quantity if absolute else level.on_hand + m.quantity
        line = line_numbers[index] if line_numbers else index + 1
        if new_on_hand < level.reserved:
            raise line_problem(
                line,
                f"on-hand of {_describe(session, m)} cannot go to {new_on_hand}:"
                f" {level.reserved} are reserved for orders",
                Conflict,
            )
        delta = new_on_hand - level.on_hand
        deltas.append(delta)
        session.execute(
            update(StockLevel)
            .where(StockLevel.id == level.id)
            .values(on_hand=new_on_hand, updated_at=utcnow())
            .execution_options(**_NO_SYNC)
        )
        rows.append(Movement(m.warehouse_id, m.product_id, delta, m.reason or reason))
    _ledger_movements(session, tenant_id, "adjust", rows, None, actor, sign=1, reason=reason)
    check_low_stock(session, tenant_id, {m.product_id for m in counts})
    return deltas


def check_low_stock(session: Session, tenant_id: int, product_ids: Iterable[int]) -> None:
    """Raise an alert once when available falls below the threshold; clear it on replenishment."""
    ids = sorted(set(product_ids))
    if not ids:
        return
    rows = session.execute(
        select(
            Product.id,
            Product.sku,
            Product.low_stock_threshold,
            Product.low_stock_since,
            func.coalesce(func.sum(available_units), 0),
        )
        .outerjoin(StockLevel, StockLevel.product_id == Product.id)
        .outerjoin(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(Product.tenant_id == tenant_id, Product.id.in_(ids), Product.low_stock_threshold > 0)
        .group_by(Product.id, Product.sku, Product.low_stock_threshold, Product.low_stock_since)
    ).all()
    for pid, sku, threshold, since, available in rows:
        payload = {"sku": sku, "available": int(available), "threshold": threshold}
        if available < threshold and since is None:
            flipped = session.execute(
                update(Product)
                .where(Product.id == pid, Product.low_stock_since.is_(None))
                .values(low_stock_since=utcnow())
                .execution_options(**_NO_SYNC)
            ).rowcount
            if flipped:
                events.emit(session, tenant_id, events.STOCK_LOW, payload)
        elif available >= threshold and since is not None:
            flipped = session.execute(
                update(Product)
                .where(Product.id == pid, Product.low_stock_since.is_not(None))
                .values(low_stock_since=None)
                .execution_options(**_NO_SYNC)
            ).rowcount
            if flipped:
                events.emit(session, tenant_id, events.STOCK_REPLENISHED, payload)


@dataclass(frozen=True)
class Drift:
    tenant_id: int
    warehouse_id: int
    product_id: int
    on_hand: int
    ledger_on_hand: int
    reserved: int
    ledger_reserved: int


def verify(session: Session) -> list[Drift]:
    """Recompute every balance from the ledger; any difference is drift."""
    sums = (
        select(
            StockLedger.tenant_id,
            StockLedger.warehouse_id,
            StockLedger.product_id,
            func.sum(StockLedger.on_hand_delta).label("on_hand"),
            func.sum(StockLedger.reserved_delta).label("reserved"),
        )
        .group_by(StockLedger.tenant_id, StockLedger.warehouse_id, StockLedger.product_id)
        .subquery()
    )
    key = and_(
        sums.c.warehouse_id == StockLevel.warehouse_id, sums.c.product_id == StockLevel.product_id
    )
    drifts = []
    for level, l_on_hand, l_reserved in session.execute(
        select(StockLevel, sums.c.on_hand, sums.c.reserved).outerjoin(sums, key)
    ):
        l_on_hand, l_reserved = int(l_on_hand or 0), int(l_reserved or 0)
        if (level.on_hand, level.reserved) != (l_on_hand, l_reserved):
            drifts.append(
                Drift(
                    level.tenant_id,
                    level.warehouse_id,
                    level.product_id,
                    level.on_hand,
                    l_on_hand,
                    level.reserved,
                    l_reserved,
                )
            )
    orphans = select(sums).where(
        ~select(StockLevel.id).where(key).exists(),
        (sums.c.on_hand != 0) | (sums.c.reserved != 0),
    )
    for row in session.execute(orphans):
        drifts.append(
            Drift(
                row.tenant_id,
                row.warehouse_id,
                row.product_id,
                0,
                int(row.on_hand),
                0,
                int(row.reserved),
            )
        )
    return drifts


def resolve_movements(
    session: Session,
    tenant_id: int,
    rows: Sequence[Mapping[str, Any]],
    default_warehouse: str | None,
    line_numbers: Sequence[int] | None = None,
    *,
    minimum: int = 1,
) -> list[Movement]:
    """Turn ``[{"warehouse", "sku", "quantity", "reason"?}]`` into ids, naming the bad line.

    ``minimum`` is 1 for movements, 0 for stock counts and ``-MAX_QUANTITY`` for corrections.
    """
    codes = {r.get("warehouse") or default_warehouse for r in rows}
    skus = {r["sku"] for r in rows}
    warehouses = dict(
        session.execute(
            select(Warehouse.code, Warehouse.id).where(
                Warehouse.tenant_id == tenant_id, Warehouse.code.in_([c for c in codes if c])
            )
        ).all()
    )
    products = dict(
        session.execute(
            select(Product.sku, Product.id).where(
                Product.tenant_id == tenant_id, Product.sku.in_(skus)
            )
        ).all()
    )
    out = []
    for index, r in enumerate(rows):
        line = line_numbers[index] if line_numbers else index + 1
        code = r.get("warehouse") or default_warehouse
        if not code:
            raise line_problem(line, "no warehouse given")
        if code not in warehouses:
            raise line_problem(line, f"unknown warehouse {code!r}")
        if r["sku"] not in products:
            raise line_problem(line, f"unknown SKU {r['sku']!r}")
        qty = r["quantity"]
        if not isinstance(qty, int) or isinstance(qty, bool) or abs(qty) > MAX_QUANTITY:
            raise line_problem(line, f"quantity must be a whole number up to {MAX_QUANTITY}")
        if qty < minimum:
            raise line_problem(line, f"quantity must be at least {minimum}")
        out.append(Movement(warehouses[code], products[r["sku"]], qty, r.get("reason")))
    return out


def _describe(session: Session, m: Movement) -> str:
    sku = session.scalar(select(Product.sku).where(Product.id == m.product_id))
    code = session.scalar(select(Warehouse.code).where(Warehouse.id == m.warehouse_id))
    return f"{sku} at {code}"


def _ensure_levels(session: Session, tenant_id: int, keys: set[tuple[int, int]]) -> None:
    if not keys:
        return
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        ins(StockLevel)
        .values(
            [
                {
                    "tenant_id": tenant_id,
                    "warehouse_id": w,
                    "product_id": p,
                    "on_hand": 0,
                    "reserved": 0,
                    "updated_at": utcnow(),
                }
                for w, p in sorted(keys)
            ]
        )
        .on_conflict_do_nothing(index_elements=["warehouse_id", "product_id"])
    )


def _ledger(
    session: Session,
    tenant_id: int,
    kind: str,
    allocations: Sequence[Allocated],
    reference: str | None,
    actor: str,
    *,
    reserved_sign: int = 0,
    on_hand_sign: int = 0,
) -> None:
    if not allocations:
        return
    now = utcnow()
    session.execute(
        _INSERT_LEDGER,
        [
            {
                "tenant_id": tenant_id,
                "warehouse_id": a.warehouse_id,
                "product_id": a.product_id,
                "kind": kind,
                "on_hand_delta": on_hand_sign * a.quantity,
                "reserved_delta": reserved_sign * a.quantity,
                "reference": reference,
                "actor": actor,
                "at": now,
            }
            for a in allocations
        ],
    )


def _ledger_movements(
    session: Session,
    tenant_id: int,
    kind: str,
    movements: Sequence[Movement],
    reference: str | None,
    actor: str,
    *,
    sign: int,
    reason: str | None = None,
) -> None:
    now = utcnow()
    rows = [
        {
            "tenant_id": tenant_id,
            "warehouse_id": m.warehouse_id,
            "product_id": m.product_id,
            "kind": kind,
            "on_hand_delta": sign * m.quantity,
            "reserved_delta": 0,
            "reason": m.reason or reason,
            "reference": reference,
            "actor": actor,
            "at": now,
        }
        for m in movements
        if m.quantity
    ]
    if rows:
        session.execute(_INSERT_LEDGER, rows)
        _audit_batch(session, tenant_id, kind, rows, reference, reason, actor)


def _audit_batch(
    session: Session,
    tenant_id: int,
    kind: str,
    rows: list[dict[str, Any]],
    reference: str | None,
    reason: str | None,
    actor: str,
) -> None:
    """One audit entry per batch, naming SKUs and warehouses as the user wrote them."""
    skus = dict(
        session.execute(
            select(Product.id, Product.sku).where(Product.id.in_({r["product_id"] for r in rows}))
        ).all()
    )
    codes = dict(
        session.execute(
            select(Warehouse.id, Warehouse.code).where(
                Warehouse.id.in_({r["warehouse_id"] for r in rows})
            )
        ).all()
    )
    movements = [
        {
            "warehouse": codes[r["warehouse_id"]],
            "sku": skus[r["product_id"]],
            "on_hand_delta": r["on_hand_delta"],
            "reason": r["reason"],
        }
        for r in rows
    ]
    audit.record(
        session,
        tenant_id,
        actor,
        f"stock.{kind}",
        "stock",
        reference or kind,
        None,
        {"reference": reference, "reason": reason, "movements": movements},
    )
