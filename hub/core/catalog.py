"""Products and warehouses: the catalogue that orders and stock refer to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from hub.core import audit
from hub.core.errors import Conflict, NotFound
from hub.core.inventory import QUARANTINE, check_low_stock
from hub.core.models import Allocation, OrderLine, Product, StockLedger, StockLevel, Warehouse
from hub.core.money import format_amount, parse_amount

_PRODUCT_MONEY = ("price", "market_price", "weight_kg", "length_cm", "width_cm", "height_cm")


def product_dict(p: Product) -> dict[str, Any]:
    return {
        "sku": p.sku,
        "name": p.name,
        "category": p.category,
        "brand": p.brand,
        "price": format_amount(p.price),
        "market_price": format_amount(p.market_price),
        "currency": p.currency,
        "weight_kg": format_amount(p.weight_kg),
        "length_cm": format_amount(p.length_cm),
        "width_cm": format_amount(p.width_cm),
        "height_cm": format_amount(p.height_cm),
        "low_stock_threshold": p.low_stock_threshold,
        "low_stock_since": p.low_stock_since.isoformat() if p.low_stock_since else None,
        "active": p.active,
    }


def warehouse_dict(w: Warehouse) -> dict[str, Any]:
    return {
        "code": w.code,
        "name": w.name,
        "region": w.region,
        "country": w.country,
        "city": w.city,
        "address": w.address,
        "postcode": w.postcode,
        "priority": w.priority,
        "active": w.active,
        "kind": w.kind,
    }


def get_product(session: Session, tenant_id: int, sku: str) -> Product:
    p = session.scalar(select(Product).where(Product.tenant_id == tenant_id, Product.sku == sku))
    if p is None:
        raise NotFound(f"no product with SKU {sku!r}")
    return p


def get_warehouse(session: Session, tenant_id: int, code: str) -> Warehouse:
    w = session.scalar(
        select(Warehouse).where(Warehouse.tenant_id == tenant_id, Warehouse.code == code)
    )
    if w is None:
        raise NotFound(f"no warehouse {code!r}")
    return w


def create_product(
    session: Session, tenant_id: int, data: dict[str, Any], actor: str, *, currency: str
) -> Product:
    """``currency`` is the tenant's (its settings' ``currency``): what a product whose data
    names none is priced in, so a euro shop's products are not silently in dollars."""
    if session.scalar(
        select(Product.id).where(Product.tenant_id == tenant_id, Product.sku == data["sku"])
    ):
        raise Conflict(f"a product with SKU {data['sku']!r} already exists")
    product = Product(tenant_id=tenant_id, **{"currency": currency, **_product_values(data)})
    session.add(product)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "product.create",
        "product",
        product.sku,
        None,
        product_dict(product),
    )
    return product


def update_product(
    session: Session, tenant_id: int, sku: str, data: dict[str, Any], actor: str
) -> Product:
    product = get_product(session, tenant_id, sku)
    before = product_dict(product)
    for key, value in _product_values(data).items():
        setattr(product, key, value)
    session.flush()
    if "low_stock_threshold" in data:
        check_low_stock(session, tenant_id, [product.id])
    audit.record(
        session, tenant_id, actor, "product.update", "product", sku, before, product_dict(product)
    )
    return product


def delete_product(session: Session, tenant_id: int, sku: str, actor: str) -> None:
    product = get_product(session, tenant_id, sku)
    in_use = session.scalar(
        select(
            exists().where(OrderLine.product_id == product.id)
            | exists().where(StockLevel.product_id == product.id, StockLevel.on_hand > 0)
        )
    )
    if in_use:
        raise Conflict(
            f"product {sku!r} has orders or stock; deactivate it instead (PATCH active=false)"
        )
    before = product_dict(product)
    session.execute(StockLevel.__table__.delete().where(StockLevel.product_id == product.id))
    session.delete(product)
    audit.record(session, tenant_id, actor, "product.delete", "product", sku, before, None)


def create_warehouse(
    session: Session, tenant_id: int, data: dict[str, Any], actor: str
) -> Warehouse:
    if session.scalar(
        select(Warehouse.id).where(Warehouse.tenant_id == tenant_id, Warehouse.code == data["code"])
    ):
        raise Conflict(f"a warehouse with code {data['code']!r} already exists")
    warehouse = Warehouse(tenant_id=tenant_id, **_warehouse_values(data))
    session.add(warehouse)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "warehouse.create",
        "warehouse",
        warehouse.code,
        None,
        warehouse_dict(warehouse),
    )
    return warehouse


def update_warehouse(
    session: Session, tenant_id: int, code: str, data: dict[str, Any], actor: str
) -> Warehouse:
    warehouse = get_warehouse(session, tenant_id, code)
    if warehouse.kind == QUARANTINE and data.get("active"):
        raise Conflict(
            f"warehouse {code!r} holds returned goods in quarantine: it is never active, so"
            " nothing is sold from it (move sellable goods out with an outbound and an inbound)"
        )
    before = warehouse_dict(warehouse)
    for key, value in _warehouse_values(data).items():
        setattr(warehouse, key, value)
    session.flush()
    audit.record(
        session,
        tenant_id,
        actor,
        "warehouse.update",
        "warehouse",
        code,
        before,
        warehouse_dict(warehouse),
    )
    return warehouse


def delete_warehouse(session: Session, tenant_id: int, code: str, actor: str) -> None:
    warehouse = get_warehouse(session, tenant_id, code)
    if session.scalar(
        select(
            exists().where(
                StockLevel.warehouse_id == warehouse.id,
                (StockLevel.on_hand > 0) | (StockLevel.reserved > 0),
            )
        )
    ):
        raise Conflict(
            f"warehouse {code!r} still holds stock; move it out or deactivate the"
            " warehouse (PATCH active=false)"
        )
    if session.scalar(
        select(
            exists().where(StockLedger.warehouse_id == warehouse.id)
            | exists().where(Allocation.warehouse_id == warehouse.id)
        )
    ):
        raise Conflict(
            f"warehouse {code!r} has stock history; deactivate it instead (PATCH active=false)"
        )
    before = warehouse_dict(warehouse)
    session.execute(StockLevel.__table__.delete().where(StockLevel.warehouse_id == warehouse.id))
    session.delete(warehouse)
    audit.record(session, tenant_id, actor, "warehouse.delete", "warehouse", code, before, None)


def _product_values(data: dict[str, Any]) -> dict[str, Any]:
    values = dict(data)
    for key in _PRODUCT_MONEY:
        if key in values and values[key] is not None:
            values[key] = parse_amount(values[key], key)
    return values


def _warehouse_values(data: dict[str, Any]) -> dict[str, Any]:
    values = dict(data)
    if values.get("country"):
        values["country"] = values["country"].upper()
    return values
