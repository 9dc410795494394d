"""Shipments: what leaves which warehouse for an order, described for carriers, bought,
recorded with the stock it moves, cancelled before pickup.

An order ships from where its stock is reserved: one shipment per warehouse of its
allocations (an order split across warehouses ships in several parts).

No carrier is called inside a database transaction. Shipping and reshipping are two steps:
``ship`` / ``replace`` run in the caller's transaction and claim the goods (hub.core.purchases)
— returning a ``Plan`` — and, once that has committed, ``buy`` chooses and buys the labels and
records the shipments in transactions of its own, voiding what it bought when they cannot be
recorded. Voiding is two steps too: ``cancel`` checks in the caller's transaction, and ``void``
tells the carrier, then records it. The web edge runs the second step after the request's
transaction (``AfterCommit``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hub.core import audit, carrier_errors, carriers, events, inventory, orders, purchases, rates
from hub.core.adapters import TRACKING_STATUSES, Parcel, Place, Rate, ShipmentRequest, Waybill
from hub.core.db import utcnow
from hub.core.errors import Conflict, HubError, IllegalTransition, Invalid, NotFound
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
from hub.settings import Shipping

if TYPE_CHECKING:
    from hub.runtime import Runtime

logger = logging.getLogger("orderhub.shipments")

# Orders in these statuses have stock left to ship.
# "created" until the carrier's first scan, then a normalised tracking status.
STATUSES = ("created", *TRACKING_STATUSES)
SHIPPABLE = frozenset({"confirmed", "partially_shipped"})
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
    quantities: a partial shipment), each with its ShipmentRequest. Stock a label is being
    bought for (claimed by a purchase) is not there to take."""
    by_warehouse: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    wanted = dict(only) if only is not None else None
    claimed = 0
    for a in session.scalars(
        select(Allocation).where(Allocation.order_id == order.id).order_by(Allocation.id)
    ):
        if a.purchase_id is not None:
            claimed += a.quantity
            continue
        quantity = a.quantity
        if wanted is not None:
            quantity = min(quantity, wanted.get(a.product_id, 0))
            if quantity <= 0:
                continue
            wanted[a.product_id] -= quantity
        by_warehouse[a.warehouse_id][a.product_id] += quantity
    busy = " (a label is being bought for some of it; try again in a moment)" if claimed else ""
    if wanted is not None and any(q > 0 for q in wanted.values()):
        raise Conflict(f"order {order.number} has less reserved stock than asked to ship{busy}")
    if not by_warehouse:
        if claimed:
            raise Conflict(
                f"order {order.number} is being shipped: a label is being bought for its"
                " reserved stock; try again in a moment"
            )
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


@dataclass(frozen=True)
class Planned:
    """One part of a plan: its purchase (which holds the claim on its goods) and what to ask
    the carrier for."""

    purchase_id: int
    warehouse_id: int
    items: dict[int, int]
    request: ShipmentRequest


@dataclass(frozen=True)
class Plan:
    """A shipment or reship whose goods are claimed, ready to ``buy`` once the transaction
    that claimed them has committed. Holds everything buying needs, read beforehand: no
    database session is open while a carrier is asked."""

    tenant_id: int
    number: str
    actor: str
    kind: str  # ship | reship
    parts: tuple[Planned, ...]
    # The named account (a reship's is the original's); None: the tenant's policy picks.
    account: CarrierAccount | None
    service: str | None
    accounts: tuple[CarrierAccount, ...]
    shipping: Shipping
    first_check: timedelta
    replaces_id: int | None = None
    # Run in the recording transaction with the new shipments (a reship resolving its
    # delivery exception); raising there voids the labels like any other failure.
    on_recorded: Callable[[Session, list[Shipment]], None] | None = field(
        default=None, compare=False
    )


class NotRecorded(HubError):
    """Labels were bought but the database would not record them; they were voided."""

    status = 503
    code = "not_recorded"


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
) -> Plan:
    """Claim an order's reserved stock for shipping — all of it, or ``lines`` (SKU →
    quantity) — one part per warehouse, with the named account and service or the tenant's
    selection policy. Everything a request can get wrong is refused here, before any carrier
    is asked. ``buy`` (after commit) buys the labels: the reserved stock becomes shipped
    (outbound ledger rows), the order partially shipped or shipped, and its sales channel is
    told."""
    order = orders.get(session, tenant_id, number, for_update=True)
    orders.refuse_if_channel_fulfils(order, "ship")
    if order.status not in SHIPPABLE:
        raise IllegalTransition(
            f"cannot ship order {number}: it is {order.status}; only confirmed or partially"
            " shipped orders ship",
            {"status": order.status},
        )
    only = _product_quantities(order, lines) if lines else None
    account = _named_account(session, runtime, tenant_id, account_id, service)
    accounts: tuple[CarrierAccount, ...] = ()
    if account is None:
        accounts = tuple(
            session.scalars(
                select(CarrierAccount)
                .where(CarrierAccount.tenant_id == tenant_id, CarrierAccount.enabled.is_(True))
                .order_by(CarrierAccount.id)
            )
        )
    planned = []
    for part in parts_of(session, order, only):
        purchase = purchases.open_purchase(
            session,
            order,
            part.warehouse_id,
            part.items,
            kind="ship",
            actor=actor,
            account_id=account.id if account else None,
            service=service,
        )
        planned.append(Planned(purchase.id, part.warehouse_id, part.items, part.request))
    return _plan(session, runtime, order, actor, "ship", planned, account, service, accounts)


def _plan(
    session: Session,
    runtime: Runtime,
    order: Order,
    actor: str,
    kind: str,
    planned: Sequence[Planned],
    account: CarrierAccount | None,
    service: str | None,
    accounts: tuple[CarrierAccount, ...] = (),
    replaces_id: int | None = None,
) -> Plan:
    slug = session.scalar(select(Tenant.slug).where(Tenant.id == order.tenant_id))
    tenant = runtime.tenant_settings(slug or "")
    return Plan(
        tenant_id=order.tenant_id,
        number=order.number,
        actor=actor,
        kind=kind,
        parts=tuple(planned),
        account=account,
        service=service,
        accounts=accounts,
        shipping=tenant.shipping,
        first_check=timedelta(hours=tenant.tracking.first_check_hours),
        replaces_id=replaces_id,
    )


def _product_quantities(order: Order, lines: dict[str, int]) -> dict[int, int]:
    ids = {line.sku: line.product_id for line in order.lines}
    unknown = sorted(set(lines) - ids.keys())
    if unknown:
        raise Invalid(f"order {order.number} has no line of {', '.join(unknown)}")
    return {ids[sku]: quantity for sku, quantity in lines.items()}


def _named_account(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    account_id: int | None,
    service: str | None,
) -> CarrierAccount | None:
    if account_id is None:
        if service is not None:
            raise Invalid("name the carrier account with the service")
        return None
    account = carriers.get_account(session, tenant_id, account_id)
    if not account.enabled:
        raise Conflict(f"carrier account {account.name!r} is disabled")
    if service is None:
        raise Invalid("name the service with the carrier account")
    check_service(runtime, account, service)
    return account


def check_service(runtime: Runtime, account: CarrierAccount, service: str) -> None:
    """Refuse, before any carrier is asked, a service the account may not use (its allowed
    ``services``) or an account whose carrier cannot buy labels."""
    cls = runtime.plugins.adapters("carriers").get(account.plugin)
    if cls is not None and "shipping" not in cls.capabilities:
        raise Invalid(
            f"carrier_account: {account.name!r} ({account.plugin}) cannot buy labels",
            [{"field": "carrier_account", "problem": "its carrier cannot buy labels"}],
        )
    allowed = carriers.allowed_services(account)
    if allowed is not None and service not in allowed:
        raise Invalid(
            f"service: not a service carrier account {account.name!r} may use (allowed:"
            f" {', '.join(sorted(allowed))})",
            [{"field": "service", "problem": "not allowed for this carrier account"}],
        )


@dataclass
class _Bought:
    choice: Choice
    waybill: Waybill
    saved: bool = False


def buy(runtime: Runtime, plan: Plan) -> list[int]:
    """Buy each part's label and record the shipments: the carrier is asked with no
    transaction open, each waybill is kept on its purchase as soon as it is known, and all
    are recorded in one transaction. Whatever fails on the way — a carrier's refusal, the
    order changed meanwhile, the database — the goods are given back and every label bought
    is voided before the error is raised (its message says what became of them). Returns
    the new shipments' ids."""
    bought: dict[int, _Bought] = {}
    try:
        for part in plan.parts:
            choice = _choose(runtime, plan, part.request)
            waybill = _create(runtime, choice, part.request)
            got = bought[part.purchase_id] = _Bought(choice, waybill)
            with runtime.transaction(plan.tenant_id) as session:
                got.saved = purchases.save_waybill(
                    session, part.purchase_id, choice.account.id, choice.service, waybill
                )
            if not got.saved:
                raise Conflict(
                    f"buying the label for order {plan.number} took so long that it was given"
                    " up; try again"
                )
        with runtime.transaction(plan.tenant_id) as session:
            made = _record_plan(session, plan, bought)
            session.flush()
            return [s.id for s in made]
    except Exception as exc:
        outcome = _undo(runtime, plan, bought, _why(exc))
        answer = _answer(exc, outcome, plan)
        if answer is exc:
            raise
        raise answer from exc


def _choose(runtime: Runtime, plan: Plan, request: ShipmentRequest) -> Choice:
    """The named account and service, or the rate the tenant's policy picks from a quote of
    every enabled account (asked now, outside any transaction)."""
    if plan.account is not None:
        assert plan.service is not None
        return Choice(plan.account, plan.service, None)
    shipping = plan.shipping
    [quoted] = rates.shop(
        runtime,
        plan.tenant_id,
        [request],
        accounts=plan.accounts,
        deadline=shipping.deadline_seconds,
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
    account = next(a for a in plan.accounts if a.id == pick.carrier_account_id)
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


def _create(runtime: Runtime, choice: Choice, request: ShipmentRequest) -> Waybill:
    try:
        adapter = runtime.carrier_adapter(choice.account)
        return adapter.create_shipment(request, choice.service, choice.rate)
    except Exception as exc:
        mapped = carrier_errors.failed(
            exc, account=choice.account.name, plugin=choice.account.plugin, doing="buy the label"
        )
        if mapped is exc:
            raise
        raise mapped from exc


def _record_plan(session: Session, plan: Plan, bought: dict[int, _Bought]) -> list[Shipment]:
    """The recording transaction: each purchase still holding its claim becomes a shipment;
    one whose goods changed meanwhile (the order cancelled, edited, split or merged) stops
    it all."""
    # The shipment replaced first, then the order: the order a tracking update takes them in
    # (it may settle the delivery exception this reship resolves).
    replaces = (
        get(session, plan.tenant_id, plan.replaces_id, for_update=True)
        if plan.replaces_id
        else None
    )
    order = orders.get(session, plan.tenant_id, plan.number, for_update=True)
    if plan.kind == "ship" and order.status not in SHIPPABLE:
        raise Conflict(
            f"order {plan.number} became {order.status} while its label was bought",
            {"status": order.status},
        )
    made = []
    for part in plan.parts:
        got = bought[part.purchase_id]
        purchase = purchases.lock(session, part.purchase_id)
        if purchase.status != "bought":
            raise Conflict(
                f"buying the label for order {plan.number} took so long that it was given up;"
                " try again"
            )
        broken = purchases.broken_claim(session, purchase, order)
        if broken is not None:
            raise Conflict(f"order {plan.number} changed while its label was bought ({broken})")
        purchases.take_claimed(session, purchase)
        shipment = _record(
            session,
            order,
            Part(part.warehouse_id, part.items, part.request),
            got.choice,
            got.waybill,
            plan.actor,
            first_check=plan.first_check,
            replaces=replaces,
        )
        purchases.mark_recorded(purchase, shipment.id)
        made.append(shipment)
    if plan.kind == "ship":
        _settle_shipped(session, order, plan.actor)
        audit.record(
            session,
            plan.tenant_id,
            plan.actor,
            "order.ship",
            "order",
            plan.number,
            None,
            {"shipments": [shipment_dict(s) for s in made]},
        )
    else:
        assert replaces is not None
        audit.record(
            session,
            plan.tenant_id,
            plan.actor,
            "shipment.reship",
            "shipment",
            str(replaces.id),
            None,
            {"replacements": [shipment_dict(s) for s in made]},
        )
    if plan.on_recorded is not None:
        plan.on_recorded(session, made)
    _tell_channel(session, order, made)
    return made


def _why(exc: Exception) -> str:
    if isinstance(exc, HubError):
        return exc.message
    return f"the shipment could not be recorded ({type(exc).__name__})"


def _undo(runtime: Runtime, plan: Plan, bought: dict[int, _Bought], why: str) -> purchases.Outcome:
    """After a failure: give the goods of every purchase this request still holds back, and
    void each label bought. A purchase the sweeper took over meanwhile is left to it, unless
    this request alone knows its label (bought after the sweeper gave the purchase up)."""
    voids: list[tuple[int | None, datetime | None, _Bought]] = []
    try:
        with runtime.transaction(plan.tenant_id) as session:
            for part in plan.parts:
                purchase = purchases.lock(session, part.purchase_id)
                got = bought.get(part.purchase_id)
                ours = purchase.status in purchases.PENDING
                if ours and got is None:
                    purchases.end_unbought(session, purchase, why, plan.actor)
                elif got is not None and (ours or purchase.waybill is None):
                    lease = purchases.start_void(
                        session, purchase, got.waybill, got.choice.account.id, why, plan.actor
                    )
                    voids.append((purchase.id, lease, got))
    except Exception:
        logger.exception(
            "could not release the purchases of order %s; the sweeper will", plan.number
        )
        voids = [(None, None, got) for got in bought.values() if not got.saved]
    voided, retrying, lost = [], [], []
    for purchase_id, lease, got in voids:
        failure = purchases.void(runtime, got.choice.account, got.waybill)
        number = got.waybill.tracking_number
        if purchase_id is None or lease is None:
            if failure is not None:
                logger.error(
                    "label %s of carrier account %s was bought for order %s but neither"
                    " recorded nor voided (%s): void it with the carrier",
                    number,
                    got.choice.account.name,
                    plan.number,
                    failure,
                )
            (lost if failure else voided).append(number)
            continue
        try:
            with runtime.transaction(plan.tenant_id) as session:
                purchases.end_void(session, purchase_id, lease, failure, actor=plan.actor)
        except Exception:
            logger.exception("could not record the void of label %s", number)
        (retrying if failure else voided).append(number)
    return purchases.Outcome(tuple(voided), tuple(retrying), tuple(lost))


def _answer(exc: Exception, outcome: purchases.Outcome, plan: Plan) -> Exception:
    """The error a failed ``buy`` raises: a refusal keeps its status and says what became of
    the labels; a database failure is a retryable 503 (logged); a bug stays a bug."""
    said = outcome.text()
    if isinstance(exc, HubError):
        if said:
            exc.message = f"{exc.message}; {said}"
            exc.args = (exc.message,)
        return exc
    if isinstance(exc, DBAPIError):
        logger.error("the shipment of order %s could not be recorded", plan.number, exc_info=exc)
        return NotRecorded(
            f"the shipment of order {plan.number} could not be recorded (the database failed:"
            f" {type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__});"
            f" {said or 'no label was bought'}; the goods are reserved for the order again."
            " Try again",
            {"retryable": True},
        )
    return exc


def _record(
    session: Session,
    order: Order,
    part: Part,
    choice: Choice,
    waybill: Waybill,
    actor: str,
    *,
    first_check: timedelta,
    replaces: Shipment | None = None,
) -> Shipment:
    """The bought shipment's row and items, its stock shipped (``ship`` ledger rows) and its
    history. Its caller has taken the claimed allocations the stock ships from."""
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
        next_check_at=now + first_check,
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


@dataclass(frozen=True)
class Void:
    """A shipment checked for voiding, with what telling its carrier needs."""

    tenant_id: int
    shipment_id: int
    actor: str
    account: CarrierAccount
    waybill: Waybill


def cancel(
    session: Session, runtime: Runtime, tenant_id: int, shipment_id: int, *, actor: str
) -> Void:
    """Check that a shipment may be voided (the carrier has not picked it up); ``void``
    (after commit) tells the carrier and gives the goods back."""
    shipment = get(session, tenant_id, shipment_id)
    _check_cancellable(shipment)
    account = session.get(CarrierAccount, shipment.carrier_account_id)
    assert account is not None
    return Void(tenant_id, shipment.id, actor, account, _waybill(shipment))


def _check_cancellable(shipment: Shipment) -> None:
    if shipment.status not in CANCELLABLE:
        raise IllegalTransition(
            f"cannot cancel shipment {shipment.tracking_number}: it is {shipment.status};"
            " only a shipment not yet picked up can be voided",
            {"status": shipment.status},
        )


def void(runtime: Runtime, plan: Void) -> int:
    """Tell the carrier first, with no transaction open (it may refuse: a 422 with its
    reason, and nothing changes), then reserve the goods for the order again. A void another
    request recorded meanwhile is answered as it is."""
    try:
        adapter = runtime.carrier_adapter(plan.account)
        if "cancel" in adapter.capabilities:
            adapter.cancel(plan.waybill)
    except Exception as exc:
        mapped = carrier_errors.failed(
            exc, account=plan.account.name, plugin=plan.account.plugin, doing="void the label"
        )
        if mapped is exc:
            raise
        raise mapped from exc
    with runtime.transaction(plan.tenant_id) as session:
        _record_void(session, plan)
    return plan.shipment_id


def _record_void(session: Session, plan: Void) -> None:
    tenant_id, actor = plan.tenant_id, plan.actor
    shipment = get(session, tenant_id, plan.shipment_id, for_update=True)
    if shipment.status == "cancelled":
        return
    order = orders.get(session, tenant_id, order_number(session, shipment), for_update=True)
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
    was = shipment.status
    shipment.status, shipment.status_reason, shipment.next_check_at = "cancelled", "voided", None
    session.flush()
    late = "" if was in CANCELLABLE else f" (the carrier voided it although it was {was})"
    orders.record_history(
        session, order, "shipment_voided", actor, f"{shipment.tracking_number} voided{late}"
    )
    if shipment.replaces_id is None:
        _settle_shipped(session, order, actor)
    audit.record(
        session, tenant_id, actor, "shipment.cancel", "shipment", str(shipment.id), None, None
    )


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
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    shipment_id: int,
    *,
    actor: str,
    exception_id: int | None = None,
) -> Plan:
    """Plan a replacement for a shipment that will not arrive (lost, damaged): the same goods
    taken from stock again (reserved now, shipped when ``buy`` records the label: a second
    outbound movement), with the same account and service."""
    original = get(session, tenant_id, shipment_id)
    if original.status == "cancelled":
        raise Conflict(
            f"shipment {original.tracking_number} was voided: its goods never left, so there"
            " is nothing to replace"
        )
    order = orders.get(session, tenant_id, order_number(session, original), for_update=True)
    if purchases.pending(session, replaces_id=original.id) is not None:
        raise Conflict(
            f"a replacement for shipment {original.tracking_number} is being bought; try again"
            " in a moment"
        )
    account = session.get(CarrierAccount, original.carrier_account_id)
    assert account is not None
    check_service(runtime, account, original.service)
    needs = {i.product_id: i.quantity for i in original.items}
    skus = {i.product_id: i.sku for i in original.items}
    taken = inventory.take(session, tenant_id, needs, skus=skus)
    inventory.record_reservation(session, tenant_id, taken, reference=order.number, actor=actor)
    by_warehouse: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for a in taken:
        by_warehouse[a.warehouse_id][a.product_id] += a.quantity
    planned = []
    for wh, items in sorted(by_warehouse.items()):
        purchase = purchases.open_purchase(
            session,
            order,
            wh,
            dict(items),
            kind="reship",
            actor=actor,
            account_id=account.id,
            service=original.service,
            replaces_id=original.id,
            exception_id=exception_id,
        )
        request = request_for(session, order, wh, items)
        planned.append(Planned(purchase.id, wh, dict(items), request))
    return _plan(
        session,
        runtime,
        order,
        actor,
        "reship",
        planned,
        account,
        original.service,
        replaces_id=original.id,
    )


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


def views(runtime: Runtime, tenant_id: int, shipment_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The shipments as the API shows them, read in a short session of their own (after the
    transactions that made them)."""
    with runtime.session(tenant_id) as session:
        rows = session.execute(
            select(Shipment, Order.number)
            .join(Order, Order.id == Shipment.order_id)
            .where(Shipment.tenant_id == tenant_id, Shipment.id.in_(list(shipment_ids)))
            .order_by(Shipment.id)
        ).all()
        return [shipment_dict(shipment, number) for shipment, number in rows]


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
