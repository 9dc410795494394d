"""Returns (RMA) and exchanges: authorise, cancel, close (receiving is
hub.core.return_receipts, refunding hub.core.refunds) — and what an order shipped.

What a return obeys (each refusal says why, names the SKU and the line, and carries a code in
``details``: not_returnable, return_period_ended, not_shipped, already_returned):

- only goods the hub shipped: an order partially shipped, shipped, delivered or closed, and
  not one its sales channel fulfils from its own stock;
- within the tenant's window, ``[service] return_window_days`` (default 30) days from the day
  the last of the order's shipments was delivered (day 0); an order not delivered yet is
  within it;
- never more units of a SKU than were shipped less those on the order's other returns (a
  cancelled return holds none, a closed one only what came back);
- goods come back in one of ``CONDITIONS``, never more than was asked back
  (hub.core.return_receipts);
- an exchange is a return plus a replacement order, made by the order service like any
  order (so it reserves stock, or waits as a backorder, the normal way): channel "exchange",
  its parent the original order, its lines priced 0 — the customer paid for them already.

Locking: the order's row (FOR UPDATE) serialises everything that counts its units or its
money — authorising, receiving, refunding (hub.core.refunds) — so two requests never both
take the same units; the return's own row is read after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload

from hub.core import audit, events, orders
from hub.core.db import utcnow
from hub.core.errors import Conflict, IllegalTransition, Invalid, NotFound, line_problem
from hub.core.models import Order, Return, ReturnLine, Shipment
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from hub.core.return_views import view

STATUSES = ("authorised", "partially_received", "received", "refunded", "closed", "cancelled")
KINDS = ("return", "exchange")
CONDITIONS = ("sellable", "damaged")
# The statuses each action starts from. "refunded" may still receive: a parcel that comes
# back after the first refund is taken in (and refunded in turn), never turned away.
ACTIONS: dict[str, frozenset[str]] = {
    "receive": frozenset({"authorised", "partially_received", "refunded"}),
    "refund": frozenset({"partially_received", "received", "refunded"}),
    "cancel": frozenset({"authorised"}),
    "close": frozenset({"partially_received", "received", "refunded"}),
}
RETURNABLE = frozenset({"partially_shipped", "shipped", "delivered", "closed"})
EXCHANGE_CHANNEL = "exchange"
UNIT = Decimal("0.0001")


# --- reading -------------------------------------------------------------------------------


def get(session: Session, tenant_id: int, return_id: int) -> Return:
    found = session.scalar(
        select(Return)
        .where(Return.tenant_id == tenant_id, Return.id == return_id)
        .options(selectinload(Return.lines))
    )
    if found is None:
        raise NotFound(f"no return {return_id}")
    return found


def lock(session: Session, tenant_id: int, return_id: int) -> tuple[Return, Order]:
    """The return and its order, the order's row locked first (see the module's note), both
    read fresh under the lock."""
    order_id = session.scalar(
        select(Return.order_id).where(Return.tenant_id == tenant_id, Return.id == return_id)
    )
    if order_id is None:
        raise NotFound(f"no return {return_id}")
    order = session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    ret = session.scalar(
        select(Return)
        .where(Return.id == return_id)
        .options(selectinload(Return.lines))
        .with_for_update(of=Return)
        .execution_options(populate_existing=True)
    )
    assert order is not None and ret is not None
    return ret, order


def query(tenant_id: int, *, status: Iterable[str] = (), order: str | None = None) -> Select[Any]:
    """A tenant's returns, for listing: optionally in some statuses, of one order."""
    stmt = select(Return).where(Return.tenant_id == tenant_id).options(selectinload(Return.lines))
    statuses = list(status)
    if statuses:
        stmt = stmt.where(Return.status.in_(statuses))
    if order is not None:
        stmt = stmt.join(Order, Order.id == Return.order_id).where(Order.number == order)
    return stmt


# --- what an order shipped and has out on returns ------------------------------------------


def counted_shipments(session: Session, order: Order) -> list[Shipment]:
    """Shipments whose goods reached (or are on their way to) the customer: not voided, and
    not replaced by a reship (the reship's goods count instead)."""
    live = list(
        session.scalars(
            select(Shipment)
            .where(Shipment.order_id == order.id, Shipment.status != "cancelled")
            .options(selectinload(Shipment.items))
            .order_by(Shipment.id)
        )
    )
    replaced = {s.replaces_id for s in live if s.replaces_id is not None}
    return [s for s in live if s.id not in replaced]


def shipped_units(session: Session, order: Order) -> dict[int, dict[int, int]]:
    """Product id → warehouse id → units the order shipped from there."""
    out: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for shipment in counted_shipments(session, order):
        for item in shipment.items:
            out[item.product_id][shipment.warehouse_id] += item.quantity
    return out


def delivered_on(session: Session, order: Order) -> date | None:
    """The day the last of the order's shipments was delivered (UTC); None while any has
    not been (the window has not started)."""
    shipments = counted_shipments(session, order)
    if not shipments or any(s.delivered_at is None for s in shipments):
        return None
    return max(s.delivered_at for s in shipments if s.delivered_at is not None).date()


def _on_returns(session: Session, order_id: int) -> tuple[dict[int, int], dict[int, list[str]]]:
    """Units of each product the order's returns hold (a cancelled one none, a closed one
    what came back), and the numbers of those returns."""
    held: dict[int, int] = defaultdict(int)
    numbers: dict[int, list[str]] = defaultdict(list)
    rows = session.execute(
        select(Return.number, Return.status, ReturnLine)
        .join(ReturnLine, ReturnLine.return_id == Return.id)
        .where(Return.order_id == order_id, Return.status != "cancelled")
        .order_by(Return.id)
    ).all()
    for number, status, line in rows:
        units = line.received + line.damaged if status == "closed" else line.quantity
        if units:
            held[line.product_id] += units
            numbers[line.product_id].append(number)
    return held, numbers


# --- authorising ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What the tenant's settings say about returns (its ``[service]`` table)."""

    window_days: int = 30
    quarantine_warehouse: str = "QUARANTINE"


def create(
    session: Session,
    tenant_id: int,
    *,
    order_number: str,
    lines: Sequence[tuple[str, int]],
    reason: str,
    actor: str,
    kind: str = "return",
    replacement: Sequence[tuple[str, int]] | None = None,
    policy: Policy = Policy(),
    prefix: str = "SO-",
    today: date | None = None,
) -> Return:
    """Authorise a return of ``lines`` ((sku, quantity) pairs) of a shipped order, or an
    exchange: the same plus a replacement order of ``replacement`` (default: the same SKUs
    and quantities). ``prefix`` numbers the replacement order like the tenant's others."""
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}")
    if replacement is not None and kind != "exchange":
        raise Invalid(
            "replacement: only an exchange has replacement lines",
            [{"field": "replacement", "problem": "only with kind exchange"}],
        )
    order = orders.get(session, tenant_id, order_number, for_update=True)
    if order.fulfilled_by_channel:
        raise Conflict(
            f"order {order.number} was fulfilled by its sales channel ({order.channel}) from"
            " its own stock: its returns go back to the channel",
            {"reason": "not_returnable"},
        )
    if order.status not in RETURNABLE:
        raise Conflict(
            f"order {order.number} is {order.status}: only goods that shipped can be returned",
            {"reason": "not_shipped", "status": order.status},
        )
    window_ends = _check_window(session, order, policy, today or utcnow().date())
    asked = _check_lines(session, order, lines)
    count = session.scalar(select(func.count()).where(Return.order_id == order.id)) or 0
    ret = Return(
        tenant_id=tenant_id,
        number=f"{order.number}-R{count + 1}",
        order_id=order.id,
        kind=kind,
        status="authorised",
        reason=reason,
        window_ends_on=window_ends,
        created_by=actor,
        lines=[
            ReturnLine(
                tenant_id=tenant_id,
                product_id=product_id,
                sku=sku,
                quantity=quantity,
                received=0,
                damaged=0,
                unit_price=_unit_price(order, product_id),
            )
            for sku, product_id, quantity in asked
        ],
    )
    session.add(ret)
    session.flush()
    if kind == "exchange":
        wanted = replacement if replacement is not None else [(s, q) for s, _, q in asked]
        ret.replacement_order_id = _replacement(session, order, ret, wanted, actor, prefix)
    described = ", ".join(f"{q} {s}" for s, _, q in asked)
    orders.record_history(session, order, f"{kind}_authorised", actor, f"{ret.number}: {described}")
    after = view(session, ret)
    audit.record(session, tenant_id, actor, "return.create", "return", ret.number, None, after)
    events.emit(
        session,
        tenant_id,
        events.RETURN_CREATED,
        {
            "id": ret.id,
            "number": ret.number,
            "order": order.number,
            "kind": kind,
            "status": ret.status,
            "replacement_order": after["replacement_order"],
            "lines": [{"sku": s, "quantity": q} for s, _, q in asked],
        },
    )
    return ret


def _check_window(session: Session, order: Order, policy: Policy, today: date) -> date | None:
    """The last day of the order's return window (None: not delivered, not started yet);
    refused once it has passed."""
    delivered = delivered_on(session, order)
    if delivered is None:
        return None
    ends = delivered + timedelta(days=policy.window_days)
    if today > ends:
        raise Conflict(
            f"the return window of order {order.number} has ended: delivered on"
            f" {delivered.isoformat()}, returns are taken for {policy.window_days} days (until"
            f" {ends.isoformat()})",
            {"reason": "return_period_ended", "delivered_on": delivered.isoformat()},
        )
    return ends


def _check_lines(
    session: Session, order: Order, lines: Sequence[tuple[str, int]]
) -> list[tuple[str, int, int]]:
    """(sku, product id, quantity) of each line, once each SKU is known to be on the order,
    shipped, and not already on its other returns."""
    on_order = {line.sku: line.product_id for line in order.lines}
    shipped = shipped_units(session, order)
    held, numbers = _on_returns(session, order.id)
    seen: set[str] = set()
    out = []
    for i, (sku, quantity) in enumerate(lines, start=1):
        if sku in seen:
            raise line_problem(i, f"{sku} is listed twice; give each SKU once", sku=sku)
        seen.add(sku)
        if sku not in on_order:
            raise line_problem(i, f"{sku} is not on order {order.number}", sku=sku)
        product_id = on_order[sku]
        sent = sum(shipped.get(product_id, {}).values())
        if sent == 0:
            raise line_problem(
                i,
                f"no {sku} of order {order.number} has shipped",
                Conflict,
                sku=sku,
                reason="not_shipped",
            )
        if quantity > sent:
            raise line_problem(i, f"{sku}: {sent} shipped, so {quantity} cannot come back", sku=sku)
        left = sent - held.get(product_id, 0)
        if quantity > left:
            raise line_problem(
                i,
                f"{sku}: {held[product_id]} of the {sent} shipped are on return"
                f" {', '.join(numbers[product_id])} already; at most {left} more can be"
                " returned",
                Conflict,
                sku=sku,
                reason="already_returned",
            )
        out.append((sku, product_id, quantity))
    return out


def _unit_price(order: Order, product_id: int) -> Decimal:
    """The product's price on the order: its lines' average, should it be on several."""
    mine = [line for line in order.lines if line.product_id == product_id]
    units = sum(line.quantity for line in mine)
    return (sum((line.line_total for line in mine), Decimal(0)) / units).quantize(UNIT)


def _replacement(
    session: Session,
    order: Order,
    ret: Return,
    wanted: Sequence[tuple[str, int]],
    actor: str,
    prefix: str,
) -> int:
    """Make the exchange's replacement order through the order service and link it."""
    known = orders.products_by_sku(session, order.tenant_id, {sku for sku, _ in wanted})
    for i, (sku, _) in enumerate(wanted, start=1):
        if sku not in known or not known[sku].active:
            problem = f"replacement line {i}: {sku} is not a product for sale"
            raise Invalid(problem, [{"field": f"replacement[{i - 1}]", "problem": problem}])
    customer = order.customer
    draft = OrderDraft(
        lines=[LineItem(sku=sku, quantity=q, unit_price=Decimal(0)) for sku, q in wanted],
        consignee=Consignee(
            name=order.consignee_name,
            phone=order.consignee_phone,
            address=Address(
                line1=order.ship_line1,
                line2=order.ship_line2,
                city=order.ship_city,
                region=order.ship_region,
                postcode=order.ship_postcode,
                country=order.ship_country,
            ),
        ),
        customer=None
        if customer is None
        else CustomerInfo(email=customer.email, name=customer.name, phone=customer.phone),
        currency=order.currency,
        channel=EXCHANGE_CHANNEL,
        note=f"replacement for exchange {ret.number} of order {order.number}",
        shipping_method=order.shipping_method,
        paid_at=order.paid_at,
    )
    made = orders.create(session, order.tenant_id, draft, actor=actor, prefix=prefix)
    session.execute(
        update(Order)
        .where(Order.id == made.id)
        .values(parent_number=order.number)
        .execution_options(synchronize_session=False)
    )
    orders.record_history(
        session, order, "exchange_replacement", actor, f"{ret.number}: replaced by {made.number}"
    )
    return int(made.id)


# --- ending --------------------------------------------------------------------------------


def check(ret: Return, action: str) -> None:
    """Refuse an action the return's status does not allow, saying why in its words."""
    if ret.status in ACTIONS[action]:
        if action == "receive" and all(
            line.received + line.damaged == line.quantity for line in ret.lines
        ):
            raise IllegalTransition(
                f"return {ret.number}: every unit asked back has been received",
                {"status": ret.status, "action": action},
            )
        return
    if ret.status in ("closed", "cancelled"):
        why = f"it is {ret.status}"
    elif action == "receive":
        why = "every unit asked back has been received"
    elif action == "refund":
        why = "nothing of it has come back yet; refund once goods are received"
    elif action == "cancel":
        why = "goods have come back (close it instead)"
    else:
        why = "nothing of it has come back (cancel it instead)"
    raise IllegalTransition(
        f"cannot {action} return {ret.number}: {why}", {"status": ret.status, "action": action}
    )


def cancel(
    session: Session, tenant_id: int, return_id: int, *, actor: str, reason: str | None = None
) -> Return:
    """Before anything came back (and so before any refund). An exchange's replacement
    order is cancelled with it, which it can be only until it ships."""
    ret, order = lock(session, tenant_id, return_id)
    check(ret, "cancel")
    before = view(session, ret)
    if ret.replacement_order_id is not None:
        replacement = session.get(Order, ret.replacement_order_id)
        if replacement is not None and replacement.status != "cancelled":
            if replacement.status not in orders.OPEN_STATUSES:
                raise IllegalTransition(
                    f"cannot cancel exchange {ret.number}: its replacement order"
                    f" {replacement.number} is {replacement.status}",
                    {"status": ret.status, "replacement_status": replacement.status},
                )
            orders.cancel(
                session,
                tenant_id,
                replacement.number,
                actor=actor,
                reason=f"exchange {ret.number} cancelled",
            )
    return _end(session, ret, order, "cancelled", actor, reason, before)


def close(
    session: Session, tenant_id: int, return_id: int, *, actor: str, reason: str | None = None
) -> Return:
    """Nothing more is to happen (the rest is not coming, the refund is settled). Units it
    asked back but never got are free for another return."""
    ret, order = lock(session, tenant_id, return_id)
    check(ret, "close")
    return _end(session, ret, order, "closed", actor, reason, view(session, ret))


def _end(
    session: Session,
    ret: Return,
    order: Order,
    status: str,
    actor: str,
    reason: str | None,
    before: dict[str, Any],
) -> Return:
    ret.status = status
    ret.note = reason
    ret.ended_at = ret.updated_at = utcnow()
    session.flush()
    said = f"{ret.number}: {reason}" if reason else ret.number
    orders.record_history(session, order, f"return_{status}", actor, said)
    action = "cancel" if status == "cancelled" else "close"
    after = view(session, ret)
    audit.record(
        session, ret.tenant_id, actor, f"return.{action}", "return", ret.number, before, after
    )
    name = events.RETURN_CANCELLED if status == "cancelled" else events.RETURN_CLOSED
    events.emit(
        session,
        ret.tenant_id,
        name,
        {"id": ret.id, "number": ret.number, "order": order.number, "reason": reason},
    )
    return ret
