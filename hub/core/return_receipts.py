"""Receiving returned goods: each unit in a condition, with its ledger rows in the same
transaction.

"sellable" units go back on hand in the warehouse they shipped from (ledger kind "return");
"damaged" ones into the tenant's quarantine warehouse (ledger kind "quarantine": on hand,
never available; hub.core.quarantine). A receipt records both the warehouse a unit shipped
from and where it went, so units that shipped from several warehouses come back to each no
more than it sent. Never more comes back than was asked: the return line's CHECK constraint
says so too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import audit, events, inventory, orders, quarantine
from hub.core.db import utcnow
from hub.core.errors import Conflict, line_problem
from hub.core.models import Order, Return, ReturnLine, ReturnReceipt, Warehouse
from hub.core.return_views import view
from hub.core.returns import CONDITIONS, Policy, check, lock, shipped_units


def receive(
    session: Session,
    tenant_id: int,
    return_id: int,
    lines: Sequence[tuple[str, int, str]],
    *,
    actor: str,
    policy: Policy = Policy(),  # noqa: B008 - frozen, never changed
) -> Return:
    """Take back ``lines`` ((sku, quantity, condition) triples) with their ledger rows:
    sellable units to the warehouse they shipped from, damaged ones to the quarantine."""
    ret, order = lock(session, tenant_id, return_id)
    check(ret, "receive")
    by_sku = {line.sku: line for line in ret.lines}
    incoming: dict[str, int] = defaultdict(int)
    for i, (sku, quantity, condition) in enumerate(lines, start=1):
        if condition not in CONDITIONS:
            raise line_problem(i, f"condition must be one of {', '.join(CONDITIONS)}")
        line = by_sku.get(sku)
        if line is None:
            raise line_problem(i, f"{sku} is not on return {ret.number}", sku=sku)
        incoming[sku] += quantity
        if incoming[sku] > line.quantity:
            raise line_problem(
                i, f"{sku}: {line.quantity} were asked back; {incoming[sku]} cannot come", sku=sku
            )
        left = line.quantity - line.received - line.damaged
        if incoming[sku] > left:
            raise line_problem(
                i,
                f"{sku}: {line.quantity - left} of the {line.quantity} asked back came already;"
                f" at most {left} more can be received",
                Conflict,
                sku=sku,
            )
    before = view(session, ret)
    origins = _room_by_origin(session, order)
    bins: dict[str, list[inventory.Movement]] = {"return": [], "quarantine": []}
    holding: Warehouse | None = None
    note = f"return {ret.number}"
    for sku, quantity, condition in lines:
        line = by_sku[sku]
        if not origins.get(line.product_id):
            raise Conflict(f"no shipment of order {order.number} carries {sku} any more")
        if condition == "damaged" and holding is None:
            holding = quarantine.warehouse(session, tenant_id, policy.quarantine_warehouse, actor)
        for origin, units in _take_origins(origins[line.product_id], quantity):
            if condition == "sellable":
                to, kind = origin, "return"
            else:
                assert holding is not None
                to, kind = holding.id, "quarantine"
            bins[kind].append(
                inventory.Movement(to, line.product_id, units, f"{note}: {condition}")
            )
            session.add(
                ReturnReceipt(
                    tenant_id=tenant_id,
                    line_id=line.id,
                    condition=condition,
                    quantity=units,
                    origin_id=origin,
                    warehouse_id=to,
                    actor=actor,
                )
            )
        if condition == "sellable":
            line.received += quantity
        else:
            line.damaged += quantity
    for kind, movements in bins.items():
        if movements:
            inventory.receive(
                session, tenant_id, movements, reference=ret.number, actor=actor, kind=kind
            )
    now = utcnow()
    outstanding = sum(line.quantity - line.received - line.damaged for line in ret.lines)
    ret.status = "received" if outstanding == 0 else "partially_received"
    ret.received_at = ret.received_at or now
    ret.updated_at = now
    session.flush()
    described = ", ".join(f"{q} {s} {c}" for s, q, c in lines)
    orders.record_history(session, order, "return_received", actor, f"{ret.number}: {described}")
    audit.record(
        session,
        tenant_id,
        actor,
        "return.receive",
        "return",
        ret.number,
        before,
        view(session, ret),
    )
    events.emit(
        session,
        tenant_id,
        events.RETURN_RECEIVED,
        {
            "id": ret.id,
            "number": ret.number,
            "order": order.number,
            "status": ret.status,
            "lines": [{"sku": s, "quantity": q, "condition": c} for s, q, c in lines],
        },
    )
    return ret


def _room_by_origin(session: Session, order: Order) -> dict[int, dict[int, int]]:
    """Product id → warehouse id → units shipped from there that have not come back yet."""
    room = shipped_units(session, order)
    for product_id, origin, units in session.execute(
        select(ReturnLine.product_id, ReturnReceipt.origin_id, ReturnReceipt.quantity)
        .join(ReturnLine, ReturnLine.id == ReturnReceipt.line_id)
        .join(Return, Return.id == ReturnLine.return_id)
        .where(Return.order_id == order.id)
    ):
        room[product_id][origin] -= units
    return room


def _take_origins(room: dict[int, int], quantity: int) -> list[tuple[int, int]]:
    """Which warehouses units come back to: where most of them are still out, first. Units
    received never exceed units shipped (see ``_check_lines``), so there is always room."""
    taken = []
    for origin in sorted(room, key=lambda w: (-room[w], w)):
        if quantity == 0:
            break
        units = min(room[origin], quantity)
        if units > 0:
            taken.append((origin, units))
            room[origin] -= units
            quantity -= units
    if quantity:  # shipments voided after the return was made: back to where most went
        origin = max(room, key=lambda w: (room[w], -w))
        taken.append((origin, quantity))
    return taken
