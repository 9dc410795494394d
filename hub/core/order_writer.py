"""Writing a new order's rows: the order, its lines, its allocations and their ledger rows, its
first history, its audit entry and its event.

On PostgreSQL all of it goes in one statement (data-modifying CTEs fed by arrays), because
this runs for every order a channel sends and each round trip costs CPU on both sides; other
databases get one statement per table. Both take the same rows, computed once by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from hub.core import events
from hub.core.inventory import Allocated
from hub.core.models import (
    Allocation,
    AuditEntry,
    Event,
    Order,
    OrderHistory,
    OrderLine,
    StockLedger,
)
from hub.core.tenancy import NUMBER_DIGITS, order_number, sequence_name


@dataclass
class NewOrder:
    tenant_id: int
    actor: str
    now: datetime
    prefix: str  # of the order number, which the writer allocates
    order: dict[str, Any]  # orders columns, without id; its number is filled in
    lines: list[dict[str, Any]]  # order_lines columns, without ids
    taken: list[Allocated]  # reserved stock: allocations and "reserve" ledger rows
    history: list[dict[str, Any]]  # action, from_status, to_status, reason
    audit_after: dict[str, Any]
    event: dict[str, Any]  # events row from events.prepare
    event_live: bool


def write(session: Session, new: NewOrder) -> tuple[int, str]:
    """Allocate the order number, insert every row; returns the order id and number."""
    if session.get_bind().dialect.name == "postgresql":
        return _write_postgresql(session, new)
    return _write_each(session, new)


def _write_each(session: Session, new: NewOrder) -> tuple[int, str]:
    t = new.tenant_id
    number = order_number(session, t, new.prefix)
    for row in (new.order, new.audit_after, new.event["payload"]):
        row["number"] = number
    order_id = session.execute(_INSERT_ORDER, [new.order]).scalar_one()
    if new.lines:  # a channel order may arrive with none (it is held as incomplete)
        session.execute(
            _INSERT_LINES, [{"tenant_id": t, "order_id": order_id, **x} for x in new.lines]
        )
    if new.taken:
        session.execute(
            _INSERT_ALLOCATIONS,
            [
                {
                    "tenant_id": t,
                    "order_id": order_id,
                    "warehouse_id": a.warehouse_id,
                    "product_id": a.product_id,
                    "quantity": a.quantity,
                }
                for a in new.taken
            ],
        )
        session.execute(
            _INSERT_LEDGER,
            [
                {
                    "tenant_id": t,
                    "warehouse_id": a.warehouse_id,
                    "product_id": a.product_id,
                    "kind": "reserve",
                    "on_hand_delta": 0,
                    "reserved_delta": a.quantity,
                    "reason": None,
                    "reference": new.order["number"],
                    "actor": new.actor,
                    "at": new.now,
                }
                for a in new.taken
            ],
        )
    session.execute(
        _INSERT_HISTORY,
        [
            {
                "tenant_id": t,
                "order_id": order_id,
                "actor": new.actor,
                "details": None,
                "at": new.now,
                **h,
            }
            for h in new.history
        ],
    )
    session.execute(
        _INSERT_AUDIT,
        [
            {
                "tenant_id": t,
                "at": new.now,
                "actor": new.actor,
                "action": "order.create",
                "entity_type": "order",
                "entity_id": new.order["number"],
                "before": None,
                "after": new.audit_after,
            }
        ],
    )
    event_id = session.execute(_INSERT_EVENT, [new.event]).scalar_one()
    if new.event_live:
        events.remember(session, event_id)
    return order_id, number


def _write_postgresql(session: Session, new: NewOrder) -> tuple[int, str]:
    # Rows travel as JSON documents (json_populate_record[set]): few parameters, so psycopg
    # caches the converted query and PostgreSQL keeps it prepared.
    params = {
        "tenant_id": new.tenant_id,
        "prefix": new.prefix,
        "sequence": sequence_name(new.tenant_id, "order"),
        "actor": new.actor,
        "now": new.now,
        "order": _json(new.order),
        "lines": _json([{"tenant_id": new.tenant_id, **x} for x in new.lines]),
        "a_warehouse": [a.warehouse_id for a in new.taken],
        "a_product": [a.product_id for a in new.taken],
        "a_quantity": [a.quantity for a in new.taken],
        "history": _json(new.history),
        "audit_after": _json(new.audit_after),
        "e_name": new.event["name"],
        "e_payload": _json(new.event["payload"]),
        "e_dispatched_at": new.event["dispatched_at"],
    }
    order_id, number, event_id = session.execute(_PG_WRITE, params).one()
    if new.event_live:
        events.remember(session, event_id)
    return order_id, number


def _json(value: Any) -> str:
    return json.dumps(value, default=_plain)


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_INSERT_ORDER = insert(Order.__table__).returning(Order.__table__.c.id)
_INSERT_LINES = insert(OrderLine.__table__)
_INSERT_ALLOCATIONS = insert(Allocation.__table__)
_INSERT_LEDGER = insert(StockLedger.__table__)
_INSERT_HISTORY = insert(OrderHistory.__table__)
_INSERT_AUDIT = insert(AuditEntry.__table__)
_INSERT_EVENT = insert(Event.__table__).returning(Event.__table__.c.id)

_ORDER_COLUMNS = ", ".join(c.name for c in Order.__table__.columns if c.name != "id")
_LINE_COLUMNS = "tenant_id, line_no, product_id, sku, name, quantity, unit_price, line_total"
_UNNEST_TAKEN = (
    "unnest(CAST(:a_warehouse AS int[]), CAST(:a_product AS int[]), CAST(:a_quantity AS int[]))"
    " AS x(w, p, q)"
)

# Every column but the id and the number, which the statement makes from the sequence.
_NUMBER_COLUMNS = ", ".join(
    c.name for c in Order.__table__.columns if c.name not in ("id", "number")
)

_PG_WRITE = text(
    f"""
WITH n AS (
  SELECT CAST(nextval(CAST(:sequence AS regclass)) AS text) AS v
), o AS (
  INSERT INTO orders (number, {_NUMBER_COLUMNS})
  SELECT :prefix || lpad(n.v, greatest({NUMBER_DIGITS}, length(n.v)), '0'), {_NUMBER_COLUMNS}
  FROM n, json_populate_record(NULL::orders, CAST(:order AS json))
  RETURNING id, number
), l AS (
  INSERT INTO order_lines (order_id, {_LINE_COLUMNS})
  SELECT o.id, {_LINE_COLUMNS.replace(", ", ", r.").replace("tenant_id", "r.tenant_id", 1)}
  FROM o, json_populate_recordset(NULL::order_lines, CAST(:lines AS json)) AS r
), a AS (
  INSERT INTO allocations (tenant_id, order_id, warehouse_id, product_id, quantity)
  SELECT :tenant_id, o.id, x.w, x.p, x.q FROM o, {_UNNEST_TAKEN}
), g AS (
  INSERT INTO stock_ledger (tenant_id, warehouse_id, product_id, kind, on_hand_delta,
                            reserved_delta, reason, reference, actor, at)
  SELECT :tenant_id, x.w, x.p, 'reserve', 0, x.q, NULL, o.number, :actor, :now
  FROM o, {_UNNEST_TAKEN}
), h AS (
  INSERT INTO order_history (tenant_id, order_id, action, from_status, to_status, reason,
                             actor, details, at)
  SELECT :tenant_id, o.id, r.action, r.from_status, r.to_status, r.reason, :actor, NULL, :now
  FROM o, json_populate_recordset(NULL::order_history, CAST(:history AS json)) AS r
), au AS (
  INSERT INTO audit_log (tenant_id, at, actor, action, entity_type, entity_id, before, after)
  SELECT :tenant_id, :now, :actor, 'order.create', 'order', o.number, NULL,
         CAST(jsonb_set(CAST(:audit_after AS jsonb), '{{number}}', to_jsonb(o.number)) AS json)
  FROM o
), e AS (
  INSERT INTO events (tenant_id, name, payload, created_at, dispatched_at)
  SELECT :tenant_id, :e_name,
         CAST(jsonb_set(CAST(:e_payload AS jsonb), '{{number}}', to_jsonb(o.number)) AS json),
         :now, :e_dispatched_at
  FROM o
  RETURNING id
)
SELECT o.id, o.number, e.id FROM o, e
"""
)
