"""Orders: create, modify, cancel, merge, split, allocate, and the state machine they obey.

Services take a session and never commit; the edge owns the transaction. Stock moves through
``hub.core.inventory`` only, so every reservation has its ledger row.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from hub.core import audit, events, inventory, order_writer
from hub.core import rules as rules_mod
from hub.core.db import utcnow
from hub.core.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InsufficientStock,
    Invalid,
    NotFound,
    line_problem,
)
from hub.core.models import (
    Allocation,
    Customer,
    Order,
    OrderHistory,
    OrderLine,
    Product,
    Warehouse,
)
from hub.core.money import MAX_AMOUNT, format_amount, parse_amount
from hub.core.normalised import Address, Consignee, CustomerInfo, LineItem, OrderDraft
from hub.core.tenancy import order_number

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"held", "awaiting_approval", "confirmed", "cancelled"}),
    "held": frozenset({"held", "awaiting_approval", "confirmed", "cancelled"}),
    "awaiting_approval": frozenset({"held", "confirmed", "cancelled"}),
    "confirmed": frozenset(
        {"held", "awaiting_approval", "partially_shipped", "shipped", "cancelled"}
    ),
    # Back to partially shipped / confirmed only when a shipment is voided before pickup.
    "partially_shipped": frozenset({"shipped", "confirmed"}),
    "shipped": frozenset({"delivered", "returned", "partially_shipped", "confirmed"}),
    "delivered": frozenset({"closed", "returned"}),
    "returned": frozenset({"closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}
STATUSES = tuple(TRANSITIONS)
# Until something has left a warehouse, the order is still ours to change.
OPEN_STATUSES = frozenset({"new", "held", "awaiting_approval", "confirmed"})
MAX_LINES = 500
MAX_LINE_QUANTITY = 10_000
# Session info key: a callable (session, tenant id) → the tenant's Rules; the runtime sets it.
RULES_KEY = "orderhub.rules"
DEFAULT_RULES = rules_mod.Rules()
# modify(): "leave the channel's hold as it is".
KEEP = object()


def rules_for(session: Session, tenant_id: int) -> rules_mod.Rules:
    lookup = session.info.get(RULES_KEY)
    return lookup(session, tenant_id) if lookup else DEFAULT_RULES


# --- creation ------------------------------------------------------------------------------


def create(
    session: Session,
    tenant_id: int,
    draft: OrderDraft,
    *,
    actor: str,
    prefix: str = "SO-",
    connection_id: int | None = None,
    external_updated_at: datetime | None = None,
    channel_hold: str | None = None,
    allow_empty: bool = False,
    products: Mapping[str, Any] | None = None,
) -> Any:
    """The hot path of intake, in SQLAlchemy Core: on PostgreSQL five round trips (products,
    customer, one reservation per product, then every row in one statement), no savepoint, no
    ORM unit of work. Returns a read-only view of the new order that ``order_dict`` accepts.
    ``products``: the ``products_by_sku`` rows of (at least) the draft's SKUs, when the caller
    has read them already (intake does, to map a channel's SKUs), so they are not read twice.

    The tenant's rules decide the rest (``hub.core.rules``): review, classes, priority,
    approval and routing, each written in the history with its reason. A channel order may
    arrive with no lines (``allow_empty``): it is kept, held as incomplete. An order the
    channel fulfils from its own stock (``draft.fulfilled_by_channel``) reserves nothing."""
    rules = rules_for(session, tenant_id)
    products = _products_for(
        session, tenant_id, draft.lines, allow_empty=allow_empty, known=products
    )
    lines = _priced_lines(draft.lines, products)
    customer = upsert_customer(session, tenant_id, draft.customer)
    needs: dict[int, int] = defaultdict(int)
    for line in lines:
        needs[line["product_id"]] += line["quantity"]
    short = None
    taken: Sequence[inventory.Allocated] = []
    try:
        if not draft.fulfilled_by_channel:
            taken = inventory.take(
                session,
                tenant_id,
                needs,
                skus={p.id: p.sku for p in products.values()},
                thresholds={p.id: p.low_stock_threshold for p in products.values()},
                destination=inventory.Destination(
                    rules, _upper(draft.consignee.address.country), draft.consignee.address.region
                ),
            )
    except InsufficientStock as shortage:
        taken, short = [], shortage.message
    now = utcnow()
    subtotal = sum((line["line_total"] for line in lines), Decimal(0))
    total = _total(
        subtotal, draft.shipping_total, draft.tax_total, draft.discount_total, draft.fees_total
    )
    address = draft.consignee.address
    facts = rules_mod.Facts(
        total=total,
        line_count=len(lines),
        skus=[line["sku"] for line in lines],
        channel=draft.channel,
        ship_line1=address.line1,
        ship_city=address.city,
        ship_country=_upper(address.country),
        email=(customer.email if customer else None),
        phone=draft.consignee.phone or (customer.phone if customer else None),
        vip=bool(customer and customer.vip),
        shipping_method=draft.shipping_method,
    )
    decided = _decide(
        facts,
        rules,
        draft.priority,
        short=short,
        channel_hold=channel_hold,
        channel_fulfils=draft.fulfilled_by_channel,
    )
    created_at = draft.created_at or now
    values = {
        "tenant_id": tenant_id,
        "number": None,  # the writer allocates it in the same round trip as the inserts
        "channel": draft.channel,
        "external_id": draft.external_id,
        "external_name": draft.external_name,
        "status": decided.outcome.status,
        "order_type": decided.classes[0],
        "hold_reason": decided.outcome.reason if decided.outcome.status == "held" else None,
        "priority": decided.score,
        "customer_id": customer.id if customer else None,
        "currency": draft.currency,
        "subtotal": subtotal,
        "shipping_total": draft.shipping_total,
        "tax_total": draft.tax_total,
        "discount_total": draft.discount_total,
        "fees_total": draft.fees_total,
        "total": total,
        "note": draft.note,
        "shipping_method": draft.shipping_method,
        "channel_hold": channel_hold,
        "fulfilled_by_channel": draft.fulfilled_by_channel,
        "created_by": actor,
        "decisions": decided.record,
        "queue_at": rules_mod.queue_at(created_at, decided.score, rules),
        "created_at": created_at,
        "paid_at": draft.paid_at,
        "updated_at": now,
        "parent_number": None,
        "merged_into": None,
        "connection_id": connection_id,
        "external_updated_at": external_updated_at,
        **_consignee_columns(draft.consignee),
    }
    history = [
        {"action": "created", "from_status": None, "to_status": "new", "reason": None},
        *(
            {"action": action, "from_status": "new", "to_status": "new", "reason": reason}
            for action, reason in decided.notes
        ),
    ]
    routed = _routing_note(session, taken, rules)
    if routed:
        history.append(
            {"action": "routed", "from_status": "new", "to_status": "new", "reason": routed}
        )
    history.append(
        {
            "action": decided.outcome.action,
            "from_status": "new",
            "to_status": decided.outcome.status,
            "reason": decided.outcome.reason,
        }
    )
    view = SimpleNamespace(
        customer=customer, lines=[SimpleNamespace(**line) for line in lines], **values
    )
    event, live = events.prepare(
        session, tenant_id, events.ORDER_CREATED, {"number": None, "status": values["status"]}
    )
    view.id, view.number = order_writer.write(
        session,
        order_writer.NewOrder(
            tenant_id=tenant_id,
            actor=actor,
            now=now,
            prefix=prefix,
            order=values,
            lines=lines,
            taken=taken,
            history=history,
            audit_after=order_dict(view),
            event=event,
            event_live=live,
        ),
    )
    return view


def upsert_customer(session: Session, tenant_id: int, info: CustomerInfo | None) -> Any:
    """One customer per e-mail within a tenant, in one statement that is safe against two
    orders racing to create it. Returns a row with id, email, name, phone and language, or None. A
    language the order states replaces the one on record (the customer's latest choice)."""
    if info is None or not (info.email or info.name or info.phone):
        return None
    email = info.email.strip().lower() if info.email else None
    values = {
        "tenant_id": tenant_id,
        "email": email,
        "name": info.name,
        "phone": info.phone,
        "language": info.language,
        "birthday": info.birthday,
        "vip": False,
        "created_at": utcnow(),
    }
    if email is None:
        return session.execute(_INSERT_CUSTOMER, [values]).one()
    return session.execute(_upsert_customer(session.get_bind().dialect.name), values).one()


_customers = Customer.__table__
_CUSTOMER_COLUMNS = (
    _customers.c.id,
    _customers.c.email,
    _customers.c.name,
    _customers.c.phone,
    _customers.c.language,
    _customers.c.vip,
)
_INSERT_CUSTOMER = insert(_customers).returning(*_CUSTOMER_COLUMNS)
_INSERT_ALLOCATIONS = insert(Allocation.__table__)


@functools.cache
def _upsert_customer(dialect: str) -> Any:
    """Built once per dialect: the statement runs for every order."""
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(_customers)
    # Keep what we know; fill in a name or phone the customer record did not have yet.
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "email"],
        set_={
            "name": func.coalesce(_customers.c.name, stmt.excluded.name),
            "phone": func.coalesce(_customers.c.phone, stmt.excluded.phone),
            "language": func.coalesce(stmt.excluded.language, _customers.c.language),
            "birthday": func.coalesce(stmt.excluded.birthday, _customers.c.birthday),
        },
    ).returning(*_CUSTOMER_COLUMNS)


def _insert_allocations(
    session: Session, tenant_id: int, order_id: int, taken: Sequence[inventory.Allocated]
) -> None:
    session.execute(
        _INSERT_ALLOCATIONS,
        [
            {
                "tenant_id": tenant_id,
                "order_id": order_id,
                "warehouse_id": a.warehouse_id,
                "product_id": a.product_id,
                "quantity": a.quantity,
            }
            for a in taken
        ],
    )


# --- reading -------------------------------------------------------------------------------


def get(session: Session, tenant_id: int, number: str, *, for_update: bool = False) -> Order:
    stmt = (
        select(Order)
        .where(Order.tenant_id == tenant_id, Order.number == number)
        .options(selectinload(Order.lines))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Order)
    order = session.scalar(stmt)
    if order is None:
        raise NotFound(f"no order {number!r}")
    return order


def allocations_of(session: Session, order: Order) -> list[Allocation]:
    return list(
        session.scalars(
            select(Allocation).where(Allocation.order_id == order.id).order_by(Allocation.id)
        )
    )


def allocation_rows(session: Session, order: Order) -> list[dict[str, Any]]:
    """Where the order's stock is reserved: warehouse code, SKU and quantity."""
    rows = session.execute(
        select(Warehouse.code, Product.sku, Allocation.quantity)
        .join(Warehouse, Warehouse.id == Allocation.warehouse_id)
        .join(Product, Product.id == Allocation.product_id)
        .where(Allocation.order_id == order.id)
        .order_by(Product.sku, Warehouse.code)
    ).all()
    return [{"warehouse": w, "sku": s, "quantity": q} for w, s, q in rows]


def history_of(session: Session, order: Order) -> list[OrderHistory]:
    return list(
        session.scalars(
            select(OrderHistory).where(OrderHistory.order_id == order.id).order_by(OrderHistory.id)
        )
    )


def order_dict(order: Order) -> dict[str, Any]:
    """The one JSON shape of an order: API answers, audit snapshots and events all use it."""
    customer = order.customer
    return {
        "number": order.number,
        "status": order.status,
        "type": order.order_type,
        "priority": order.priority,
        "hold_reason": order.hold_reason,
        "classes": (order.decisions or {}).get("classes", [order.order_type]),
        "approval": _approval_view(order),
        "shipping_method": order.shipping_method,
        "channel_hold": order.channel_hold,
        "fulfilled_by_channel": order.fulfilled_by_channel,
        "channel": order.channel,
        "external_id": order.external_id,
        "external_name": order.external_name,
        "currency": order.currency,
        "subtotal": format_amount(order.subtotal),
        "shipping_total": format_amount(order.shipping_total),
        "tax_total": format_amount(order.tax_total),
        "discount_total": format_amount(order.discount_total),
        "fees_total": format_amount(order.fees_total),
        "total": format_amount(order.total),
        "customer": None
        if customer is None
        else {
            "id": customer.id,
            "email": customer.email,
            "name": customer.name,
            "phone": customer.phone,
            "language": customer.language,
        },
        "consignee": {
            "name": order.consignee_name,
            "phone": order.consignee_phone,
            "address": {
                "line1": order.ship_line1,
                "line2": order.ship_line2,
                "city": order.ship_city,
                "region": order.ship_region,
                "postcode": order.ship_postcode,
                "country": order.ship_country,
            },
        },
        "lines": [
            {
                "line_no": line.line_no,
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "unit_price": format_amount(line.unit_price),
                "line_total": format_amount(line.line_total),
            }
            for line in order.lines
        ],
        "note": order.note,
        "parent_number": order.parent_number,
        "merged_into": order.merged_into,
        "created_by": order.created_by,
        "created_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "updated_at": order.updated_at.isoformat() if order.updated_at else None,
    }


def _approval_view(order: Order) -> dict[str, Any] | None:
    """The levels the order needs, the approvals given (each with who gave it and for which
    total), the amount the levels were decided on (``decided_on``: more than the order's own
    total for a part split from a larger whole), and who may not approve it (``not_by``:
    with the four-eyes rule, whoever created it or changed its lines or charges; those who
    gave a level may not give another)."""
    decisions = order.decisions or {}
    levels = decisions.get("approval")
    if not levels:
        return None
    given = decisions.get("approvals", [])
    four_eyes = decisions.get("four_eyes", True)
    return {
        "levels": levels,
        "approvals": given,
        "next_role": levels[len(given)]["role"] if len(given) < len(levels) else None,
        "decided_on": decisions.get("approval_basis", format_amount(order.total)),
        "four_eyes": four_eyes,
        "not_by": _authors(order) if four_eyes else [],
    }


def _authors(order: Order) -> list[str]:
    """Who made the order what it is: its creator and whoever changed its lines or charges
    (or merged other orders into it) since. None of them may approve it with four eyes."""
    amended = (order.decisions or {}).get("amended_by", [])
    return [a for a in dict.fromkeys([order.created_by, *amended]) if a]


def _amended_by(order: Order, actor: str) -> None:
    """Record that ``actor`` changed what the order is worth (see ``_authors``)."""
    decisions = order.decisions or {"base_priority": order.priority}
    if any(rules_mod.same_person(actor, a) for a in _authors(order)):
        return
    order.decisions = {**decisions, "amended_by": [*decisions.get("amended_by", []), actor]}


# --- changes -------------------------------------------------------------------------------


def modify(
    session: Session,
    tenant_id: int,
    number: str,
    *,
    actor: str,
    lines: Sequence[LineItem] | None = None,
    consignee: Consignee | None = None,
    customer: CustomerInfo | None = None,
    note: str | None = None,
    priority: int | None = None,
    shipping_method: str | None = None,
    channel_hold: Any = KEEP,
    charges: tuple[Decimal, Decimal, Decimal, Decimal] | None = None,
) -> Order:
    """Change an open order; the rules then decide its status again (a completed address
    releases an incomplete hold, a larger total may need approval, …). ``charges``:
    shipping, tax, discount and fees totals. Whoever changes the lines or charges counts as
    one of the order's authors for the four-eyes rule."""
    order = get(session, tenant_id, number, for_update=True)
    _require_open(order, "modify")
    before = order_dict(order)
    if lines is not None or charges is not None:
        _amended_by(order, actor)
    if channel_hold is not KEEP:
        order.channel_hold = channel_hold
    if shipping_method is not None:
        order.shipping_method = shipping_method
    if charges is not None:
        # Shipping, tax and discount as the channel restates them (an Amazon order priced
        # once payment is confirmed).
        (order.shipping_total, order.tax_total, order.discount_total, order.fees_total) = charges
        _recompute_totals(order)
    if consignee is not None:
        for key, value in _consignee_columns(consignee).items():
            setattr(order, key, value)
    if customer is not None:
        row = upsert_customer(session, tenant_id, customer)
        if row is None:
            raise Invalid("customer: give at least an email, a name or a phone")
        order.customer_id = row.id
    if note is not None:
        order.note = note
    if priority is not None:
        order.decisions = {**(order.decisions or {}), "base_priority": priority}
    if lines is not None:
        products = _products_for(session, tenant_id, lines)
        priced = _priced_lines(lines, products)
        order.lines.clear()
        session.flush()
        order.lines.extend(OrderLine(tenant_id=tenant_id, **line) for line in priced)
        _recompute_totals(order)
        session.flush()
        _release_excess(session, order, actor)
    if customer is not None:
        session.flush()
        session.refresh(order, ["customer"])
    _allocate_missing(session, order, actor)
    order.updated_at = utcnow()
    session.flush()
    session.refresh(order, ["customer"])
    _history(
        session,
        order,
        "modified",
        order.status,
        order.status,
        actor,
        details={
            "fields": sorted(
                k
                for k, v in {
                    "lines": lines,
                    "consignee": consignee,
                    "customer": customer,
                    "note": note,
                    "priority": priority,
                    "shipping_method": shipping_method,
                    "channel_hold": None if channel_hold is KEEP else True,
                    "charges": charges,
                }.items()
                if v is not None
            )
        },
    )
    audit.record(
        session, tenant_id, actor, "order.modify", "order", number, before, order_dict(order)
    )
    events.emit(session, tenant_id, events.ORDER_UPDATED, {"number": number})
    return order


def cancel(
    session: Session, tenant_id: int, number: str, *, actor: str, reason: str | None = None
) -> Order:
    order = get(session, tenant_id, number, for_update=True)
    before = order_dict(order)
    _check_transition(order, "cancelled", "cancel")
    _release_all(session, order, actor)
    set_status(session, order, "cancelled", "cancelled", actor, reason or "cancelled")
    audit.record(
        session, tenant_id, actor, "order.cancel", "order", number, before, order_dict(order)
    )
    return order


def allocate(session: Session, tenant_id: int, number: str, *, actor: str) -> Order:
    """Try again to reserve what a held (backorder) order is missing."""
    order = get(session, tenant_id, number, for_update=True)
    _require_open(order, "allocate")
    before = order_dict(order)
    _allocate_missing(session, order, actor)
    audit.record(
        session, tenant_id, actor, "order.allocate", "order", number, before, order_dict(order)
    )
    return order


def merge(session: Session, tenant_id: int, numbers: Sequence[str], *, actor: str) -> Order:
    """Fold orders into the first one: same customer, same address, nothing shipped yet."""
    unique = list(dict.fromkeys(numbers))
    if len(unique) < 2:
        raise Invalid("merge needs at least two different order numbers")
    orders = [get(session, tenant_id, n, for_update=True) for n in sorted(unique)]
    by_number = {o.number: o for o in orders}
    target, sources = by_number[unique[0]], [by_number[n] for n in unique[1:]]
    for o in orders:
        _require_open(o, "merge")
        refuse_if_channel_fulfils(o, "merge")
    for o in sources:
        if o.customer_id != target.customer_id:
            raise Invalid(f"{o.number} belongs to another customer than {target.number}")
        if _address_key(o) != _address_key(target):
            raise Invalid(f"{o.number} ships to another address than {target.number}")
        if o.currency != target.currency:
            raise Invalid(f"{o.number} is in {o.currency}, {target.number} in {target.currency}")
    before = order_dict(target)
    # The merged order needs at least what each part was decided to need, and everyone who
    # made a part is one of its authors (four eyes), as is whoever merged them.
    _amended_by(target, actor)
    for source in sources:
        for author in _authors(source):
            _amended_by(target, author)
    _raise_floor(target, *(_floor(s) for s in sources))
    next_no = max((line.line_no for line in target.lines), default=0)
    for source in sources:
        source_before = order_dict(source)
        for line in list(source.lines):
            next_no += 1
            source.lines.remove(line)
            line.line_no = next_no
            target.lines.append(line)
        session.execute(
            update(Allocation)
            .where(Allocation.order_id == source.id)
            .values(order_id=target.id)
            .execution_options(synchronize_session=False)
        )
        for field in ("shipping_total", "tax_total", "discount_total", "fees_total"):
            setattr(target, field, getattr(target, field) + getattr(source, field))
        source.merged_into = target.number
        source.subtotal = source.total = Decimal(0)
        set_status(session, source, "cancelled", "merged", actor, f"merged into {target.number}")
        audit.record(
            session,
            tenant_id,
            actor,
            "order.merge",
            "order",
            source.number,
            source_before,
            order_dict(source),
        )
    _recompute_totals(target)
    session.flush()
    _allocate_missing(session, target, actor)
    _history(
        session,
        target,
        "merged",
        target.status,
        target.status,
        actor,
        reason="merged " + ", ".join(s.number for s in sources),
    )
    audit.record(
        session, tenant_id, actor, "order.merge", "order", target.number, before, order_dict(target)
    )
    events.emit(session, tenant_id, events.ORDER_UPDATED, {"number": target.number})
    return target


def split(
    session: Session,
    tenant_id: int,
    number: str,
    take: Sequence[tuple[str, int]],
    *,
    actor: str,
    prefix: str = "SO-",
) -> Order:
    """Move the given (sku, quantity) pairs into a new order, with the stock reserved for them.

    Both parts keep the approval requirement decided on the whole (its total is their
    ``approval_floor``) and the approvals given for it, which still hold for the smaller
    parts; so splitting never lowers the approval an order needs."""
    order = get(session, tenant_id, number, for_update=True)
    _require_open(order, "split")
    refuse_if_channel_fulfils(order, "split")
    if not take:
        raise Invalid("split needs at least one line")
    before = order_dict(order)
    wanted: dict[str, int] = defaultdict(int)
    for sku, quantity in take:
        if quantity <= 0:
            raise Invalid(f"split quantity for {sku!r} must be positive")
        wanted[sku] += quantity
    on_order: dict[str, int] = defaultdict(int)
    for line in order.lines:
        on_order[line.sku] += line.quantity
    for sku, quantity in wanted.items():
        if on_order.get(sku, 0) < quantity:
            raise Invalid(
                f"{number} has {on_order.get(sku, 0)} of {sku!r}, cannot split off {quantity}"
            )
    if all(on_order[sku] == wanted.get(sku, 0) for sku in on_order):
        raise Invalid("a split must leave at least one line on the original order")

    _raise_floor(order, order.total)
    decisions = order.decisions or {"base_priority": order.priority}
    child_number = order_number(session, tenant_id, prefix)
    child = Order(
        tenant_id=tenant_id,
        number=child_number,
        channel=order.channel,
        external_id=order.external_id,
        external_name=order.external_name,
        status="new",
        order_type=order.order_type,
        priority=order.priority,
        customer_id=order.customer_id,
        currency=order.currency,
        subtotal=Decimal(0),
        shipping_total=Decimal(0),
        tax_total=Decimal(0),
        discount_total=Decimal(0),
        fees_total=Decimal(0),
        total=Decimal(0),
        note=order.note,
        parent_number=order.number,
        created_by=order.created_by,
        decisions={
            key: decisions[key]
            for key in ("base_priority", "approvals", "approval_floor", "amended_by")
            if key in decisions
        },
        created_at=order.created_at,
        paid_at=order.paid_at,
        **{k: getattr(order, k) for k in _CONSIGNEE_COLUMNS},
    )
    remaining = dict(wanted)
    moved_products: dict[int, int] = defaultdict(int)
    for line in list(order.lines):
        need = remaining.get(line.sku, 0)
        if not need:
            continue
        moved = min(need, line.quantity)
        remaining[line.sku] = need - moved
        moved_products[line.product_id] += moved
        child.lines.append(
            OrderLine(
                tenant_id=tenant_id,
                line_no=len(child.lines) + 1,
                product_id=line.product_id,
                sku=line.sku,
                name=line.name,
                quantity=moved,
                unit_price=line.unit_price,
                line_total=line.unit_price * moved,
            )
        )
        if moved == line.quantity:
            order.lines.remove(line)
        else:
            line.quantity -= moved
            line.line_total = line.unit_price * line.quantity
    for i, line in enumerate(order.lines, start=1):
        line.line_no = i
    session.add(child)
    _recompute_totals(order)
    _recompute_totals(child)
    session.flush()
    _history(
        session,
        child,
        "created",
        None,
        "new",
        actor,
        reason=f"split from {order.number}",
        details={
            "approval_floor": decisions.get("approval_floor"),
            "approvals": len(decisions.get("approvals", [])),
        },
    )
    _move_allocations(session, order, child, moved_products)
    _allocate_missing(session, child, actor)
    _allocate_missing(session, order, actor)
    _history(
        session,
        order,
        "split",
        order.status,
        order.status,
        actor,
        reason=f"split into {child_number}",
    )
    audit.record(
        session, tenant_id, actor, "order.split", "order", number, before, order_dict(order)
    )
    audit.record(
        session, tenant_id, actor, "order.create", "order", child_number, None, order_dict(child)
    )
    events.emit(
        session, tenant_id, events.ORDER_CREATED, {"number": child_number, "status": child.status}
    )
    return child


def set_status(
    session: Session, order: Order, to: str, action: str, actor: str, reason: str | None = None
) -> None:
    """The only way an order's status changes: checked, recorded and announced."""
    _check_transition(order, to, action)
    before = order.status
    order.status = to
    order.hold_reason = reason if to == "held" else None
    order.updated_at = utcnow()
    _history(session, order, action, before, to, actor, reason=reason)
    if before != to:
        events.emit(
            session,
            order.tenant_id,
            events.ORDER_STATUS_CHANGED,
            {"number": order.number, "from": before, "to": to, "reason": reason},
        )


# --- rules: review, classification, priority, approval ----------------------------------


@dataclass(frozen=True)
class Decided:
    outcome: rules_mod.Outcome
    classes: list[str]
    score: int
    record: dict[str, Any]  # the orders.decisions column
    notes: list[tuple[str, str]]  # history (action, reason) before the outcome


# What the decisions record carries from one decision to the next (set by split, merge and
# modify rather than decided from the order's facts).
_CARRIED = ("approval_floor", "amended_by")


def _decide(
    facts: rules_mod.Facts,
    rules: rules_mod.Rules,
    base_priority: int,
    *,
    short: str | None,
    channel_hold: str | None,
    approvals: Sequence[dict[str, Any]] = (),
    carried: Mapping[str, Any] | None = None,
    channel_fulfils: bool = False,
) -> Decided:
    """``channel_fulfils``: the channel ships it from its own stock, so nothing the hub
    checks before shipping (a complete address, approval) applies; only the channel's hold."""
    carried = {k: v for k, v in (carried or {}).items() if k in _CARRIED}
    classes = rules_mod.classify(facts, rules, backorder=short is not None)
    score, parts = rules_mod.priority(facts, rules, base_priority)
    floor = carried.get("approval_floor")
    basis = max(facts.total, Decimal(floor)) if floor is not None else facts.total
    levels = [] if channel_fulfils else rules_mod.approvals_needed(basis, rules)
    # Approvals already given stand for the levels they were given for.
    left = levels[len(approvals) :]
    outcome = rules_mod.outcome(
        channel_hold=channel_hold,
        incomplete=None if channel_fulfils else rules_mod.review(facts, rules),
        short=short,
        approvals_left=left,
        levels=len(levels),
        total=facts.total,
        decided_on=basis,
    )
    if channel_fulfils and outcome.status == "confirmed":
        outcome = rules_mod.Outcome(
            "confirmed", "confirmed", "fulfilled by the sales channel from its own stock"
        )
    notes = [("classified", "classes: " + ", ".join(classes))]
    if parts:
        notes.append(("prioritised", f"score {score}: " + ", ".join(parts)))
    record = {
        "base_priority": base_priority,
        "classes": classes,
        "priority": parts,
        "approval": [{"above": str(x.above), "role": x.role} for x in levels],
        "approvals": list(approvals),
        "approval_basis": format_amount(basis),
        "four_eyes": rules.four_eyes,
        **carried,
    }
    return Decided(outcome, classes, score, record, notes)


def _facts(order: Order) -> rules_mod.Facts:
    customer = order.customer
    return rules_mod.Facts(
        total=order.total,
        line_count=len(order.lines),
        skus=[line.sku for line in order.lines],
        channel=order.channel,
        ship_line1=order.ship_line1,
        ship_city=order.ship_city,
        ship_country=order.ship_country,
        email=customer.email if customer else None,
        phone=order.consignee_phone or (customer.phone if customer else None),
        vip=bool(customer and customer.vip),
        shipping_method=order.shipping_method,
    )


def _settle(session: Session, order: Order, actor: str, *, short: str | None) -> None:
    """Decide an open order's status again after anything about it changed (lines, address,
    stock, the channel's hold, an approval): the same rules as at creation."""
    if order.status not in OPEN_STATUSES:
        return
    rules = rules_for(session, order.tenant_id)
    # Orders from before the rules: their priority is their base.
    decisions = order.decisions or {"base_priority": order.priority}
    decided = _decide(
        _facts(order),
        rules,
        decisions.get("base_priority", 0),
        short=short,
        channel_hold=order.channel_hold,
        approvals=_approvals_holding(session, order, decisions.get("approvals", ()), actor),
        carried=decisions,
        channel_fulfils=order.fulfilled_by_channel,
    )
    if decided.record != decisions:
        for action, reason in decided.notes:
            key = _NOTE_KEYS[action]
            if decisions.get(key) != decided.record[key]:
                _history(session, order, action, order.status, order.status, actor, reason=reason)
        order.decisions = decided.record
    order.order_type = decided.classes[0]
    if order.priority != decided.score:
        order.priority = decided.score
        order.queue_at = rules_mod.queue_at(order.created_at, decided.score, rules)
    outcome = decided.outcome
    if outcome.status != order.status or (
        outcome.status == "held" and order.hold_reason != outcome.reason
    ):
        set_status(session, order, outcome.status, outcome.action, actor, outcome.reason)


_NOTE_KEYS = {"classified": "classes", "prioritised": "priority"}


def _approvals_holding(
    session: Session, order: Order, given: Sequence[dict[str, Any]], actor: str
) -> Sequence[dict[str, Any]]:
    """An approval holds for the total it was given for and anything less (a part split off
    the approved whole, a line taken away). Once the total is above it, the approvals given
    no longer count — all of them, since each level was given knowing the ones before — and
    that is written in the history."""
    if not given:
        return given
    approved_for = min(Decimal(g.get("total", order.total)) for g in given)
    if order.total <= approved_for:
        return given
    _history(
        session,
        order,
        "approvals_cleared",
        order.status,
        order.status,
        actor,
        reason=f"total {format_amount(order.total)} is above the {format_amount(approved_for)}"
        " the approvals were given for: they no longer count",
    )
    return []


def _floor(order: Order) -> Decimal | None:
    floor = (order.decisions or {}).get("approval_floor")
    return Decimal(floor) if floor is not None else None


def _raise_floor(order: Order, *amounts: Decimal | None) -> None:
    """The amount this order's approval is decided on at least: the largest whole it was
    part of (split parts and merged orders keep what was decided on the whole)."""
    floor = max((a for a in (_floor(order), *amounts) if a is not None), default=None)
    if floor is None or floor == _floor(order):
        return
    decisions = order.decisions or {"base_priority": order.priority}
    order.decisions = {**decisions, "approval_floor": format_amount(floor)}


def refuse_if_channel_fulfils(order: Order, action: str) -> None:
    """The hub ships nothing of an order its sales channel fulfils from its own stock."""
    if order.fulfilled_by_channel:
        raise Conflict(
            f"cannot {action} order {order.number}: its sales channel ({order.channel}) fulfils"
            " it from its own stock; the hub only records it",
            {"fulfilled_by_channel": True},
        )


# How far an order the channel fulfils has gone; it only ever moves forward.
_CHANNEL_SHIPPING = {"confirmed": 0, "partially_shipped": 1, "shipped": 2}


def follow_channel_shipping(
    session: Session,
    tenant_id: int,
    number: str,
    shipped: str,
    *,
    actor: str,
    channel_status: str | None = None,
) -> None:
    """An order its channel fulfils takes the shipping status the channel reports
    ("partially_shipped" or "shipped"); an order the hub ships is never moved this way."""
    order = get(session, tenant_id, number, for_update=True)
    if not order.fulfilled_by_channel or shipped not in _CHANNEL_SHIPPING:
        return
    if order.status not in _CHANNEL_SHIPPING or (
        _CHANNEL_SHIPPING[shipped] <= _CHANNEL_SHIPPING[order.status]
    ):
        return  # held (the channel's own hold), cancelled, or already this far
    before = order_dict(order)
    said = f" ({channel_status})" if channel_status else ""
    set_status(
        session,
        order,
        shipped,
        "shipped_by_channel",
        actor,
        f"the sales channel reports it {shipped.replace('_', ' ')}{said} from its own stock",
    )
    audit.record(
        session, tenant_id, actor, "order.ship", "order", number, before, order_dict(order)
    )


def _routing_note(session: Session, taken: Sequence[inventory.Allocated], rules: Any) -> str | None:
    """Say where the stock came from when it matters: a split, or a routed order."""
    warehouses = sorted({a.warehouse_id for a in taken})
    if len(warehouses) < 2 and not (warehouses and rules.routes_by_plan):
        return None
    codes = dict(
        session.execute(
            select(Warehouse.id, Warehouse.code).where(Warehouse.id.in_(warehouses))
        ).all()
    )
    names = ", ".join(codes[w] for w in warehouses)
    how = "by " + ", ".join(rules.routing)
    if len(warehouses) > 1:
        return f"split across {names}: no single warehouse could fill it ({how})"
    return f"from {names} ({how})"


def approve(
    session: Session, tenant_id: int, number: str, *, actor: str, role: str, note: str | None
) -> Order:
    """Give the next approval level; the last one confirms the order. With the tenant's
    four-eyes rule (on unless ``[rules] four_eyes = false``) the order's authors — its
    creator, whoever changed its lines or charges — may not approve it, and one person gives
    at most one level of it. The approval records the total it is given for: a larger total
    later asks again."""
    order = get(session, tenant_id, number, for_update=True)
    level, levels, given = _pending_level(order, "approve")
    if not rules_mod.may_approve(role, level["role"]):
        raise Forbidden(
            f"order {number} needs approval by an {level['role']} at level"
            f" {len(given) + 1} of {len(levels)}; you are {_article(role)} {role}"
        )
    refusal = rules_mod.four_eyes_refusal(
        actor,
        authors=_authors(order),
        approvers=[g["actor"] for g in given],
        rules=rules_for(session, tenant_id),
    )
    if refusal == "author":
        raise Forbidden(
            f"you created order {number} or changed its lines or charges; with four-eyes"
            " approval someone else must approve it"
        )
    if refusal == "approver":
        raise Conflict(
            f"you approved order {number} at an earlier level; level {len(given) + 1}"
            " needs a different approver"
        )
    before = order_dict(order)
    approval = {
        "level": len(given) + 1,
        "role": role,
        "actor": actor,
        "at": utcnow().isoformat(),
        "note": note,
        "total": format_amount(order.total),
    }
    order.decisions = {**(order.decisions or {}), "approvals": [*given, approval]}
    reason = (
        f"level {approval['level']} of {len(levels)} approved by {actor} ({role})"
        f" for a total of {approval['total']}"
    )
    _history(
        session,
        order,
        "approved",
        order.status,
        order.status,
        actor,
        reason=f"{reason}: {note}" if note else reason,
    )
    _settle(session, order, actor, short=None)
    audit.record(
        session, tenant_id, actor, "order.approve", "order", number, before, order_dict(order)
    )
    return order


def reject(
    session: Session, tenant_id: int, number: str, *, actor: str, role: str, reason: str
) -> Order:
    """Refuse an order awaiting approval: it is cancelled and its stock released."""
    order = get(session, tenant_id, number, for_update=True)
    level, levels, given = _pending_level(order, "reject")
    if not rules_mod.may_approve(role, level["role"]):
        raise Forbidden(
            f"order {number} is at approval level {len(given) + 1} of {len(levels)}, which"
            f" needs an {level['role']}; you are {_article(role)} {role}"
        )
    before = order_dict(order)
    _release_all(session, order, actor)
    set_status(session, order, "cancelled", "rejected", actor, f"rejected by {actor}: {reason}")
    audit.record(
        session, tenant_id, actor, "order.reject", "order", number, before, order_dict(order)
    )
    return order


def _pending_level(
    order: Order, action: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    if order.status != "awaiting_approval":
        raise IllegalTransition(
            f"cannot {action} order {order.number}: it is {order.status}; only orders"
            " awaiting approval can be approved or rejected",
            {"status": order.status},
        )
    decisions = order.decisions or {}
    levels, given = decisions.get("approval", []), decisions.get("approvals", [])
    return levels[len(given)], levels, given


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


# --- internals -----------------------------------------------------------------------------

_CONSIGNEE_COLUMNS = (
    "consignee_name",
    "consignee_phone",
    "ship_line1",
    "ship_line2",
    "ship_city",
    "ship_region",
    "ship_postcode",
    "ship_country",
)


def _consignee_columns(c: Consignee) -> dict[str, Any]:
    a = c.address
    country = a.country.upper() if a.country else None
    values = (c.name, c.phone, a.line1, a.line2, a.city, a.region, a.postcode, country)
    return dict(zip(_CONSIGNEE_COLUMNS, values, strict=True))


def consignee_differs(order: Order, consignee: Consignee) -> bool:
    """Does a restated consignee change anything stored (a channel's address correction)?"""
    wanted = _consignee_columns(consignee)
    return any((getattr(order, k) or None) != (v or None) for k, v in wanted.items())


def _address_key(o: Order) -> tuple[Any, ...]:
    return tuple((getattr(o, k) or "").strip().lower() for k in _CONSIGNEE_COLUMNS[2:])


def _check_transition(order: Order, to: str, action: str) -> None:
    if to not in TRANSITIONS[order.status]:
        raise IllegalTransition(
            f"order {order.number} cannot become {to} ({action}): it is {order.status}"
            f" (from {order.status} it may go to "
            f"{', '.join(sorted(TRANSITIONS[order.status])) or 'nothing'})",
            {"status": order.status, "wanted": to},
        )


def _require_open(order: Order, action: str) -> None:
    if order.status not in OPEN_STATUSES:
        raise IllegalTransition(
            f"cannot {action} order {order.number}: it is {order.status};"
            " orders can be changed only until they ship",
            {"status": order.status},
        )


_products = Product.__table__
_PRODUCTS_BY_SKU = select(
    _products.c.id,
    _products.c.sku,
    _products.c.name,
    _products.c.price,
    _products.c.low_stock_threshold,
    _products.c.active,
).where(
    _products.c.tenant_id == bindparam("b_tenant"),
    _products.c.sku.in_(bindparam("b_skus", expanding=True)),
)


def products_by_sku(session: Session, tenant_id: int, skus: Iterable[str]) -> dict[str, Any]:
    """The tenant's products among ``skus``, by SKU, with what ``create`` prices and checks
    lines by (id, sku, name, price, low_stock_threshold, active)."""
    return {
        p.sku: p
        for p in session.execute(_PRODUCTS_BY_SKU, {"b_tenant": tenant_id, "b_skus": list(skus)})
    }


def _products_for(
    session: Session,
    tenant_id: int,
    lines: Sequence[LineItem],
    *,
    allow_empty: bool = False,
    known: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if not lines:
        if allow_empty:
            return {}
        raise Invalid("an order needs at least one line")
    if len(lines) > MAX_LINES:
        raise Invalid(f"an order may have at most {MAX_LINES} lines")
    skus = {line.sku for line in lines}
    if known is None:
        products = products_by_sku(session, tenant_id, skus)
    else:
        products = {sku: known[sku] for sku in skus if sku in known}
    for i, line in enumerate(lines, start=1):
        if line.sku not in products:
            raise line_problem(i, f"unknown SKU {line.sku!r}", sku=line.sku)
        if not products[line.sku].active:
            raise line_problem(i, f"SKU {line.sku!r} is not for sale", sku=line.sku)
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            raise line_problem(i, f"quantity must be between 1 and {MAX_LINE_QUANTITY}")
    return products


def _priced_lines(lines: Sequence[LineItem], products: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, line in enumerate(lines, start=1):
        product = products[line.sku]
        if line.unit_price is None:
            if product.price is None:
                raise Invalid(f"line {i}: no unit_price given and {line.sku!r} has no price")
            unit = product.price
        else:
            unit = parse_amount(line.unit_price, f"line {i} unit_price")
        out.append(
            {
                "line_no": i,
                "product_id": product.id,
                "sku": line.sku,
                "name": line.name or product.name,
                "quantity": line.quantity,
                "unit_price": unit,
                "line_total": unit * line.quantity,
            }
        )
    return out


def _total(
    subtotal: Decimal,
    shipping: Decimal,
    tax: Decimal,
    discount: Decimal,
    fees: Decimal = Decimal(0),
) -> Decimal:
    total = subtotal + shipping + tax + fees - discount
    if total < 0:
        raise Invalid("the discount is larger than the order")
    # Lines are at most the subtotal; anything larger would overflow the amount columns.
    if max(subtotal, total) >= MAX_AMOUNT:
        raise Invalid(f"the order total is too large (limit {MAX_AMOUNT - 1})")
    return total


def _recompute_totals(order: Order) -> None:
    order.subtotal = sum((line.line_total for line in order.lines), Decimal(0))
    order.total = _total(
        order.subtotal,
        order.shipping_total,
        order.tax_total,
        order.discount_total,
        order.fees_total,
    )


def _needs(order: Order) -> dict[int, int]:
    needs: dict[int, int] = defaultdict(int)
    for line in order.lines:
        needs[line.product_id] += line.quantity
    return needs


def _allocated(session: Session, order: Order) -> dict[int, int]:
    have: dict[int, int] = defaultdict(int)
    for product_id, quantity in session.execute(
        select(Allocation.product_id, Allocation.quantity).where(Allocation.order_id == order.id)
    ):
        have[product_id] += quantity
    return have


def _allocate_missing(session: Session, order: Order, actor: str) -> None:
    """Reserve whatever the lines need beyond what is already allocated — all of it or none —
    then confirm the order, or hold it as a backorder saying what is short. An order the
    channel fulfils reserves nothing."""
    if order.fulfilled_by_channel:
        _settle(session, order, actor, short=None)
        return
    have = _allocated(session, order)
    missing = {p: q - have.get(p, 0) for p, q in _needs(order).items() if q > have.get(p, 0)}
    if missing:
        try:
            taken = inventory.reserve(
                session,
                order.tenant_id,
                missing,
                reference=order.number,
                actor=actor,
                skus={line.product_id: line.sku for line in order.lines},
            )
        except InsufficientStock as short:
            _settle(session, order, actor, short=short.message)
            return
        _insert_allocations(session, order.tenant_id, order.id, taken)
    _settle(session, order, actor, short=None)


def _release_excess(session: Session, order: Order, actor: str) -> None:
    needs = _needs(order)
    allocations = allocations_of(session, order)
    by_product: dict[int, list[Allocation]] = defaultdict(list)
    for a in allocations:
        by_product[a.product_id].append(a)
    freed: list[inventory.Allocated] = []
    for product_id, rows in by_product.items():
        excess = sum(a.quantity for a in rows) - needs.get(product_id, 0)
        for a in reversed(rows):
            if excess <= 0:
                break
            give = min(excess, a.quantity)
            freed.append(inventory.Allocated(a.warehouse_id, product_id, give))
            excess -= give
            if give == a.quantity:
                session.delete(a)
            else:
                a.quantity -= give
    if freed:
        inventory.release(session, order.tenant_id, freed, reference=order.number, actor=actor)
        inventory.check_low_stock(session, order.tenant_id, {a.product_id for a in freed})


def _release_all(session: Session, order: Order, actor: str) -> None:
    allocations = allocations_of(session, order)
    if not allocations:
        return
    inventory.release(
        session,
        order.tenant_id,
        [inventory.Allocated(a.warehouse_id, a.product_id, a.quantity) for a in allocations],
        reference=order.number,
        actor=actor,
    )
    session.execute(delete(Allocation).where(Allocation.order_id == order.id))
    inventory.check_low_stock(session, order.tenant_id, {a.product_id for a in allocations})


def _move_allocations(
    session: Session, source: Order, target: Order, quantities: dict[int, int]
) -> None:
    """Hand reserved stock from one order to another without touching the balances."""
    for a in allocations_of(session, source):
        want = quantities.get(a.product_id, 0)
        if not want:
            continue
        moved = min(want, a.quantity)
        quantities[a.product_id] = want - moved
        if moved == a.quantity:
            a.order_id = target.id
        else:
            a.quantity -= moved
            session.add(
                Allocation(
                    tenant_id=a.tenant_id,
                    order_id=target.id,
                    warehouse_id=a.warehouse_id,
                    product_id=a.product_id,
                    quantity=moved,
                )
            )
    session.flush()


def record_history(session: Session, order: Order, action: str, actor: str, reason: str) -> None:
    """A note in the order's history that does not change its status (a shipment bought, a
    delivery exception resolved …)."""
    _history(session, order, action, order.status, order.status, actor, reason=reason)


def _history(
    session: Session,
    order: Order,
    action: str,
    from_status: str | None,
    to_status: str | None,
    actor: str,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(OrderHistory),
        [
            {
                "tenant_id": order.tenant_id,
                "order_id": order.id,
                "action": action,
                "from_status": from_status,
                "to_status": to_status,
                "reason": reason,
                "actor": actor,
                "details": details,
                "at": utcnow(),
            }
        ],
    )


def draft_lines(raw: Iterable[dict[str, Any]]) -> list[LineItem]:
    return [
        LineItem(
            sku=r["sku"], quantity=r["quantity"], unit_price=r.get("unit_price"), name=r.get("name")
        )
        for r in raw
    ]


def consignee_from(raw: dict[str, Any]) -> Consignee:
    return Consignee(
        name=raw.get("name"), phone=raw.get("phone"), address=Address(**(raw.get("address") or {}))
    )


def customer_from(raw: dict[str, Any] | None) -> CustomerInfo | None:
    """The customer of an API body (schema-checked: a birthday is a valid day)."""
    if raw is None:
        return None
    birthday = raw.get("birthday")
    return CustomerInfo(**{**raw, "birthday": date.fromisoformat(birthday) if birthday else None})
