"""Shipments: what leaves which warehouse for an order, described for carriers, bought,
recorded with the stock it moves, cancelled before pickup.

An order ships from where its stock is reserved: one shipment per warehouse of its
allocations (an order split across warehouses ships in several parts).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import audit, carriers, events, inventory, orders, rates
from hub.core.adapters import Parcel, Place, Rate, ShipmentRequest, Waybill
from hub.core.db import utcnow
from hub.core.errors import Conflict, IllegalTransition, Invalid, NotFound
from hub.core.http import BusinessError
from hub.core.models import (
    Allocation,
    CarrierAccount,
    Order,
    Product,
    Shipment,
    ShipmentItem,
    Tenant,
    Warehouse,
)
from hub.core.money import format_amount

if TYPE_CHECKING:
    from hub.runtime import Runtime

# The tracker's first look at a new shipment; it sets its own cadence after that.
FIRST_CHECK = timedelta(hours=1)
# A shipment the carrier has not picked up can still be voided.
CANCELLABLE = frozenset({"created", "info_received"})

# A product without a weight still weighs something; carriers refuse zero.
DEFAULT_ITEM_KG = Decimal("0.5")


@dataclass(frozen=True)
class Part:
    """What one warehouse sends of an order: product id → quantity, and how to describe it
    to a carrier."""

    warehouse_id: int
    items: dict[int, int]
    request: ShipmentRequest


def parts_of(session: Session, order: Order, only: dict[int, int] | None = None) -> list[Part]:
    """The order's reserved stock grouped by warehouse (optionally only some products and
    quantities: a partial shipment), each with its ShipmentRequest."""
    by_warehouse: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    wanted = dict(only) if only is not None else None
    for a in session.scalars(
        select(Allocation).where(Allocation.order_id == order.id).order_by(Allocation.id)
    ):
        quantity = a.quantity
        if wanted is not None:
            quantity = min(quantity, wanted.get(a.product_id, 0))
            if quantity <= 0:
                continue
            wanted[a.product_id] -= quantity
        by_warehouse[a.warehouse_id][a.product_id] += quantity
    if wanted is not None and any(q > 0 for q in wanted.values()):
        raise Conflict(f"order {order.number} has less reserved stock than asked to ship")
    if not by_warehouse:
        raise Conflict(f"order {order.number} has no reserved stock to ship")
    return [
        Part(wh, dict(items), request_for(session, order, wh, items))
        for wh, items in sorted(by_warehouse.items())
    ]


def request_for(
    session: Session, order: Order, warehouse_id: int, items: dict[int, int]
) -> ShipmentRequest:
    """One parcel holding the items: their summed weight (a default for unknown weights),
    the largest of each of their dimensions, their value at the order's prices."""
    warehouse = session.get(Warehouse, warehouse_id)
    assert warehouse is not None
    products = {
        p.id: p for p in session.scalars(select(Product).where(Product.id.in_(list(items))))
    }
    prices = {line.product_id: line.unit_price for line in order.lines}
    weight = sum(
        ((products[p].weight_kg or DEFAULT_ITEM_KG) * q for p, q in items.items()), Decimal(0)
    )

    def largest(attr: str) -> Decimal | None:
        sizes = [getattr(products[p], attr) for p in items if getattr(products[p], attr)]
        return max(sizes) if sizes else None

    return ShipmentRequest(
        origin=Place(
            country=warehouse.country or "US",
            postcode=warehouse.postcode,
            city=warehouse.city,
            region=warehouse.region,
            line1=warehouse.address,
            name=warehouse.name,
        ),
        destination=Place(
            country=order.ship_country or "",
            postcode=order.ship_postcode,
            city=order.ship_city,
            region=order.ship_region,
            line1=order.ship_line1,
            line2=order.ship_line2,
            name=order.consignee_name,
            phone=order.consignee_phone,
            email=order.customer.email if order.customer else None,
        ),
        parcels=(Parcel(weight, largest("length_cm"), largest("width_cm"), largest("height_cm")),),
        declared_value=sum((prices.get(p, Decimal(0)) * q for p, q in items.items()), Decimal(0)),
        currency=order.currency,
        reference=order.number,
    )


# --- buying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """The account and rate a part ships with (rate None: buy the named service)."""

    account: CarrierAccount
    service: str
    rate: Rate | None


def ship(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    number: str,
    *,
    actor: str,
    account_id: int | None = None,
    service: str | None = None,
    lines: dict[str, int] | None = None,
) -> list[Shipment]:
    """Ship an order's reserved stock — all of it, or ``lines`` (SKU → quantity) — one
    shipment per warehouse, with the named account and service or the tenant's selection
    policy; the reserved stock becomes shipped (outbound ledger rows), the order becomes
    partially shipped or shipped, and its sales channel is told (after commit)."""
    order = orders.get(session, tenant_id, number, for_update=True)
    orders.refuse_if_channel_fulfils(order, "ship")
    if order.status not in ("confirmed", "partially_shipped"):
        raise IllegalTransition(
            f"cannot ship order {number}: it is {order.status}; only confirmed or partially"
            " shipped orders ship",
            {"status": order.status},
        )
    only = _product_quantities(order, lines) if lines else None
    made = []
    for part in parts_of(session, order, only):
        choice = _choose(session, runtime, tenant_id, part.request, account_id, service)
        adapter = runtime.carrier_adapter(choice.account)
        waybill = adapter.create_shipment(part.request, choice.service, choice.rate)
        made.append(_record(session, order, part, choice, waybill, actor))
    _settle_shipped(session, order, actor)
    audit.record(
        session,
        tenant_id,
        actor,
        "order.ship",
        "order",
        number,
        None,
        {"shipments": [shipment_dict(s) for s in made]},
    )
    _tell_channel(session, order, made)
    return made


def _product_quantities(order: Order, lines: dict[str, int]) -> dict[int, int]:
    ids = {line.sku: line.product_id for line in order.lines}
    unknown = sorted(set(lines) - ids.keys())
    if unknown:
        raise Invalid(f"order {order.number} has no line of {', '.join(unknown)}")
    return {ids[sku]: quantity for sku, quantity in lines.items()}


def _choose(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    request: ShipmentRequest,
    account_id: int | None,
    service: str | None,
) -> Choice:
    if account_id is not None:
        account = carriers.get_account(session, tenant_id, account_id)
        if not account.enabled:
            raise Conflict(f"carrier account {account.name!r} is disabled")
        if service is None:
            raise Invalid("name the service with the carrier account")
        return Choice(account, service, None)
    if service is not None:
        raise Invalid("name the carrier account with the service")
    accounts = session.scalars(
        select(CarrierAccount)
        .where(CarrierAccount.tenant_id == tenant_id, CarrierAccount.enabled.is_(True))
        .order_by(CarrierAccount.id)
    ).all()
    slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    shipping = runtime.tenant_settings(slug or "").shipping
    [quoted] = rates.shop(
        runtime, tenant_id, [request], accounts=accounts, deadline=shipping.deadline_seconds
    )
    pick = rates.choose(
        quoted.rates,
        shipping.policy,
        country=request.destination.country,
        promised=rates.promised_date(shipping, date.today()),
        preferred=shipping.preferred,
        currency=request.currency,
    )
    if pick is None:
        why = "; ".join(f"{e.carrier_account}: {e.error}" for e in quoted.errors)
        raise Conflict(
            f"no carrier account offers a rate to {request.destination.country or 'nowhere'}"
            + (f" ({why})" if why else ""),
            {"errors": [rates.error_view(e) for e in quoted.errors]},
        )
    account = next(a for a in accounts if a.id == pick.carrier_account_id)
    rate = Rate(
        carrier=pick.carrier,
        service=pick.service,
        amount=pick.amount,
        currency=pick.currency,
        estimated_days=pick.estimated_days,
        estimated_delivery=pick.estimated_delivery,
        carrier_ref=pick.carrier_ref,
    )
    return Choice(account, pick.service, rate)


def _record(
    session: Session,
    order: Order,
    part: Part,
    choice: Choice,
    waybill: Waybill,
    actor: str,
    *,
    replaces: Shipment | None = None,
) -> Shipment:
    """The bought shipment's row and items, its stock shipped (``ship`` ledger rows) and its
    history. A first shipment takes the order's allocations; a replacement (``replaces``)
    ships stock its caller has just reserved for it."""
    now = utcnow()
    rate = choice.rate
    shipment = Shipment(
        tenant_id=order.tenant_id,
        order_id=order.id,
        warehouse_id=part.warehouse_id,
        carrier_account_id=choice.account.id,
        carrier=choice.account.plugin,
        service=choice.service,
        tracking_number=waybill.tracking_number,
        label=waybill.label,
        carrier_shipment_id=waybill.carrier_shipment_id,
        amount=waybill.amount if waybill.amount is not None else (rate.amount if rate else None),
        currency=waybill.currency or (rate.currency if rate else None),
        status="created",
        estimated_delivery=waybill.estimated_delivery
        or (rate.estimated_delivery if rate else None),
        promised_delivery=replaces.promised_delivery if replaces else None,
        next_check_at=now + FIRST_CHECK,
        replaces_id=replaces.id if replaces else None,
        created_at=now,
        updated_at=now,
    )
    skus = {line.product_id: line.sku for line in order.lines}
    shipment.items = [
        ShipmentItem(tenant_id=order.tenant_id, product_id=p, sku=skus[p], quantity=q)
        for p, q in sorted(part.items.items())
    ]
    session.add(shipment)
    if replaces is None:
        _take_allocations(session, order, part.warehouse_id, part.items)
    moved = [inventory.Allocated(part.warehouse_id, p, q) for p, q in sorted(part.items.items())]
    inventory.ship(session, order.tenant_id, moved, reference=order.number, actor=actor)
    session.flush()
    what = (
        f"{choice.account.name} {choice.service} {waybill.tracking_number} from"
        f" {_warehouse_code(session, part.warehouse_id)}: "
        + ", ".join(f"{item.quantity} x {item.sku}" for item in shipment.items)
    )
    if replaces is None:
        orders.record_history(session, order, "shipment", actor, what)
    else:
        orders.record_history(
            session, order, "reshipped", actor, f"{what} (replaces {replaces.tracking_number})"
        )
    return shipment


def _warehouse_code(session: Session, warehouse_id: int) -> str:
    warehouse = session.get(Warehouse, warehouse_id)
    return warehouse.code if warehouse else str(warehouse_id)


def _take_allocations(
    session: Session, order: Order, warehouse_id: int, items: dict[int, int]
) -> None:
    left = dict(items)
    for a in session.scalars(
        select(Allocation)
        .where(Allocation.order_id == order.id, Allocation.warehouse_id == warehouse_id)
        .order_by(Allocation.id)
    ):
        take = min(a.quantity, left.get(a.product_id, 0))
        if take == 0:
            continue
        left[a.product_id] -= take
        if take == a.quantity:
            session.delete(a)
        else:
            a.quantity -= take
    session.flush()


def _shipped(session: Session, order: Order) -> dict[int, int]:
    """Product → units on the order's live shipments (voided ones excluded)."""
    out: dict[int, int] = defaultdict(int)
    for product_id, quantity in session.execute(
        select(ShipmentItem.product_id, ShipmentItem.quantity)
        .join(Shipment, Shipment.id == ShipmentItem.shipment_id)
        .where(
            Shipment.order_id == order.id,
            Shipment.status != "cancelled",
            Shipment.replaces_id.is_(None),
        )
    ):
        out[product_id] += quantity
    return out


def _settle_shipped(session: Session, order: Order, actor: str) -> None:
    needs: dict[int, int] = defaultdict(int)
    for line in order.lines:
        needs[line.product_id] += line.quantity
    shipped = _shipped(session, order)
    if not shipped:
        target = "confirmed"
    elif all(shipped.get(p, 0) >= q for p, q in needs.items()):
        target = "shipped"
    else:
        target = "partially_shipped"
    if target != order.status:
        orders.set_status(session, order, target, target, actor, _status_reason(target))


def _status_reason(status: str) -> str:
    return {
        "shipped": "every line has shipped",
        "partially_shipped": "some lines have shipped",
        "confirmed": "its shipment was voided before pickup",
    }[status]


def _tell_channel(session: Session, order: Order, made: list[Shipment]) -> None:
    """The sales channel hears of each shipment after the commit (a job per shipment, retried
    while the channel is unreachable)."""
    if order.connection_id is None:
        return
    session.flush()
    for shipment in made:
        events.send_after_commit(session, "push_fulfilment", shipment.id)


# --- voiding ----------------------------------------------------------------------------


def cancel(
    session: Session, runtime: Runtime, tenant_id: int, shipment_id: int, *, actor: str
) -> Shipment:
    """Void a shipment the carrier has not picked up: the carrier is told first (it may
    refuse: 409 with its reason), then the goods are reserved for the order again."""
    shipment = get(session, tenant_id, shipment_id, for_update=True)
    if shipment.status not in CANCELLABLE:
        raise IllegalTransition(
            f"cannot cancel shipment {shipment.tracking_number}: it is {shipment.status};"
            " only a shipment not yet picked up can be voided",
            {"status": shipment.status},
        )
    account = session.get(CarrierAccount, shipment.carrier_account_id)
    assert account is not None
    adapter = runtime.carrier_adapter(account)
    if "cancel" in adapter.capabilities:
        try:
            adapter.cancel(_waybill(shipment))
        except BusinessError as refused:
            raise Conflict(f"the carrier refused to void it: {refused}") from None
    order = session.get(Order, shipment.order_id)
    assert order is not None
    order = orders.get(session, tenant_id, order.number, for_update=True)
    back = [
        inventory.Allocated(shipment.warehouse_id, i.product_id, i.quantity) for i in shipment.items
    ]
    inventory.unship(session, tenant_id, back, reference=order.number, actor=actor)
    for a in back:
        session.add(
            Allocation(
                tenant_id=tenant_id,
                order_id=order.id,
                warehouse_id=a.warehouse_id,
                product_id=a.product_id,
                quantity=a.quantity,
            )
        )
    shipment.status, shipment.status_reason, shipment.next_check_at = "cancelled", "voided", None
    session.flush()
    orders.record_history(
        session, order, "shipment_voided", actor, f"{shipment.tracking_number} voided"
    )
    if shipment.replaces_id is None:
        _settle_shipped(session, order, actor)
    audit.record(
        session, tenant_id, actor, "shipment.cancel", "shipment", str(shipment.id), None, None
    )
    return shipment


def _waybill(shipment: Shipment) -> Waybill:
    return Waybill(
        tracking_number=shipment.tracking_number,
        label=shipment.label,
        carrier_shipment_id=shipment.carrier_shipment_id,
        amount=shipment.amount,
        currency=shipment.currency,
    )


# --- reshipping ---------------------------------------------------------------------------


def replace(
    session: Session, runtime: Runtime, tenant_id: int, shipment_id: int, *, actor: str
) -> Shipment:
    """A replacement for a shipment that will not arrive (lost, damaged): the same goods
    taken from stock again (reserved and shipped at once: a second outbound movement), with
    the same account and service."""
    original = get(session, tenant_id, shipment_id)
    order = orders.get(session, tenant_id, order_number(session, original), for_update=True)
    needs = {i.product_id: i.quantity for i in original.items}
    skus = {i.product_id: i.sku for i in original.items}
    taken = inventory.take(session, tenant_id, needs, skus=skus)
    inventory.record_reservation(session, tenant_id, taken, reference=order.number, actor=actor)
    by_warehouse: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for a in taken:
        by_warehouse[a.warehouse_id][a.product_id] += a.quantity
    account = session.get(CarrierAccount, original.carrier_account_id)
    assert account is not None
    adapter = runtime.carrier_adapter(account)
    made = []
    for wh, items in sorted(by_warehouse.items()):
        part = Part(wh, dict(items), request_for(session, order, wh, items))
        waybill = adapter.create_shipment(part.request, original.service, None)
        choice = Choice(account, original.service, None)
        made.append(_record(session, order, part, choice, waybill, actor, replaces=original))
    audit.record(
        session,
        tenant_id,
        actor,
        "shipment.reship",
        "shipment",
        str(original.id),
        None,
        {"replacements": [shipment_dict(s) for s in made]},
    )
    _tell_channel(session, order, made)
    return made[0]


# --- reading ------------------------------------------------------------------------------


def get(
    session: Session, tenant_id: int, shipment_id: int, *, for_update: bool = False
) -> Shipment:
    stmt = select(Shipment).where(Shipment.tenant_id == tenant_id, Shipment.id == shipment_id)
    if for_update:
        stmt = stmt.with_for_update()
    shipment = session.scalar(stmt)
    if shipment is None:
        raise NotFound(f"no shipment {shipment_id}")
    return shipment


def order_number(session: Session, shipment: Shipment) -> str:
    """The number of the order a shipment belongs to."""
    number = session.scalar(select(Order.number).where(Order.id == shipment.order_id))
    assert number is not None
    return number


def shipment_dict(shipment: Shipment, order_number: str | None = None) -> dict[str, Any]:
    return {
        "id": shipment.id,
        "order": order_number,
        "carrier_account": shipment.carrier_account_id,
        "carrier": shipment.carrier,
        "service": shipment.service,
        "tracking_number": shipment.tracking_number,
        "label": shipment.label,
        "status": shipment.status,
        "status_reason": shipment.status_reason,
        "amount": format_amount(shipment.amount) if shipment.amount is not None else None,
        "currency": shipment.currency,
        "warehouse_id": shipment.warehouse_id,
        "items": [{"sku": i.sku, "quantity": i.quantity} for i in shipment.items],
        "estimated_delivery": _iso(shipment.estimated_delivery),
        "delivered_at": _iso(shipment.delivered_at),
        "replaces": shipment.replaces_id,
        "channel_fulfilment_id": shipment.channel_fulfilment_id,
        "channel_error": shipment.channel_error,
        "created_at": shipment.created_at.isoformat(),
    }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
