"""Reading stock: balances with filters, the ledger of a SKU, and open low-stock alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from hub.core.inventory import available_units
from hub.core.models import Product, StockLedger, StockLevel, Warehouse


def balances(
    session: Session,
    tenant_id: int,
    *,
    sku: str | None = None,
    name: str | None = None,
    category: str | None = None,
    brand: str | None = None,
    warehouse: str | None = None,
    low_only: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    stmt: Select[Any] = (
        select(
            Product.sku,
            Product.name,
            Product.category,
            Product.brand,
            Product.low_stock_threshold,
            Product.low_stock_since,
            Warehouse.code,
            StockLevel.on_hand,
            StockLevel.reserved,
            available_units.label("available"),
        )
        .join(Product, Product.id == StockLevel.product_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(StockLevel.tenant_id == tenant_id)
    )
    if sku:
        stmt = stmt.where(Product.sku == sku)
    if name:
        stmt = stmt.where(Product.name.ilike(f"%{name}%"))
    if category:
        stmt = stmt.where(Product.category == category)
    if brand:
        stmt = stmt.where(Product.brand == brand)
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse)
    if low_only:
        stmt = stmt.where(Product.low_stock_since.is_not(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(
        stmt.order_by(Product.sku, Warehouse.priority, Warehouse.code)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    items = [
        {
            "sku": r.sku,
            "name": r.name,
            "category": r.category,
            "brand": r.brand,
            "warehouse": r.code,
            "on_hand": r.on_hand,
            "reserved": r.reserved,
            "available": r.available,
            "low_stock_threshold": r.low_stock_threshold,
            "low": r.low_stock_since is not None,
        }
        for r in rows
    ]
    return items, int(total or 0)


def ledger(
    session: Session,
    tenant_id: int,
    *,
    sku: str | None = None,
    warehouse: str | None = None,
    kind: str | None = None,
    reference: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    stmt: Select[Any] = (
        select(StockLedger, Product.sku, Warehouse.code)
        .join(Product, Product.id == StockLedger.product_id)
        .join(Warehouse, Warehouse.id == StockLedger.warehouse_id)
        .where(StockLedger.tenant_id == tenant_id)
    )
    if sku:
        stmt = stmt.where(Product.sku == sku)
    if warehouse:
        stmt = stmt.where(Warehouse.code == warehouse)
    if kind:
        stmt = stmt.where(StockLedger.kind == kind)
    if reference:
        stmt = stmt.where(StockLedger.reference == reference)
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.execute(
        stmt.order_by(StockLedger.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    items = [
        {
            "id": e.id,
            "at": e.at.isoformat(),
            "sku": s,
            "warehouse": w,
            "kind": e.kind,
            "on_hand_delta": e.on_hand_delta,
            "reserved_delta": e.reserved_delta,
            "reason": e.reason,
            "reference": e.reference,
            "actor": e.actor,
        }
        for e, s, w in rows
    ]
    return items, int(total or 0)


def alerts(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            Product.sku,
            Product.name,
            Product.low_stock_threshold,
            Product.low_stock_since,
            func.coalesce(func.sum(available_units), 0),
        )
        .outerjoin(StockLevel, StockLevel.product_id == Product.id)
        .outerjoin(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .where(Product.tenant_id == tenant_id, Product.low_stock_since.is_not(None))
        .group_by(
            Product.id,
            Product.sku,
            Product.name,
            Product.low_stock_threshold,
            Product.low_stock_since,
        )
        .order_by(Product.low_stock_since)
    ).all()
    return [
        {"sku": s, "name": n, "threshold": t, "since": since.isoformat(), "available": int(a)}
        for s, n, t, since, a in rows
    ]
