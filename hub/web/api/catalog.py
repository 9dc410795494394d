"""Product and warehouse routes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.core import catalog
from hub.core.models import Product, Warehouse
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, paginate, route

TAG = "catalog"


@route(
    "/products",
    permission="catalog.read",
    summary="List products",
    tag=TAG,
    paged=True,
    query=(
        Param("q", description="SKU or name contains"),
        Param("category"),
        Param("brand"),
        Param("active", "boolean"),
    ),
)
def list_products(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(Product).where(Product.tenant_id == ctx.tenant_id)
    if args.get("q"):
        pattern = f"%{args['q']}%"
        stmt = stmt.where(Product.sku.ilike(pattern) | Product.name.ilike(pattern))
    for key in ("category", "brand", "active"):
        if key in args:
            stmt = stmt.where(getattr(Product, key) == args[key])
    return paginate(ctx, stmt, Product.sku, args, catalog.product_dict)


@route(
    "/products",
    "POST",
    permission="catalog.write",
    summary="Create a product",
    tag=TAG,
    body=schemas.PRODUCT_CREATE,
    status=201,
)
def create_product(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    product = catalog.create_product(
        ctx.session, ctx.tenant_id, body, ctx.actor, currency=ctx.tenant.currency
    )
    return catalog.product_dict(product)


@route("/products/<sku>", permission="catalog.read", summary="Read a product", tag=TAG)
def get_product(ctx: Ctx, sku: str) -> dict[str, Any]:
    return catalog.product_dict(catalog.get_product(ctx.session, ctx.tenant_id, sku))


@route(
    "/products/<sku>",
    "PATCH",
    permission="catalog.write",
    summary="Change a product",
    tag=TAG,
    body=schemas.PRODUCT_UPDATE,
)
def update_product(ctx: Ctx, sku: str, body: dict[str, Any]) -> dict[str, Any]:
    return catalog.product_dict(
        catalog.update_product(ctx.session, ctx.tenant_id, sku, body, ctx.actor)
    )


@route(
    "/products/<sku>",
    "DELETE",
    permission="catalog.write",
    tag=TAG,
    summary="Delete a product that has no orders or stock",
)
def delete_product(ctx: Ctx, sku: str) -> dict[str, Any]:
    catalog.delete_product(ctx.session, ctx.tenant_id, sku, ctx.actor)
    return {"deleted": sku}


@route("/warehouses", permission="catalog.read", summary="List warehouses", tag=TAG, paged=True)
def list_warehouses(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = select(Warehouse).where(Warehouse.tenant_id == ctx.tenant_id)
    return paginate(ctx, stmt, Warehouse.priority, args, catalog.warehouse_dict)


@route(
    "/warehouses",
    "POST",
    permission="catalog.write",
    summary="Create a warehouse",
    tag=TAG,
    body=schemas.WAREHOUSE_CREATE,
    status=201,
)
def create_warehouse(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    return catalog.warehouse_dict(
        catalog.create_warehouse(ctx.session, ctx.tenant_id, body, ctx.actor)
    )


@route("/warehouses/<code>", permission="catalog.read", summary="Read a warehouse", tag=TAG)
def get_warehouse(ctx: Ctx, code: str) -> dict[str, Any]:
    return catalog.warehouse_dict(catalog.get_warehouse(ctx.session, ctx.tenant_id, code))


@route(
    "/warehouses/<code>",
    "PATCH",
    permission="catalog.write",
    summary="Change a warehouse",
    tag=TAG,
    body=schemas.WAREHOUSE_UPDATE,
)
def update_warehouse(ctx: Ctx, code: str, body: dict[str, Any]) -> dict[str, Any]:
    return catalog.warehouse_dict(
        catalog.update_warehouse(ctx.session, ctx.tenant_id, code, body, ctx.actor)
    )


@route(
    "/warehouses/<code>",
    "DELETE",
    permission="catalog.write",
    tag=TAG,
    summary="Delete a warehouse that never held stock",
)
def delete_warehouse(ctx: Ctx, code: str) -> dict[str, Any]:
    catalog.delete_warehouse(ctx.session, ctx.tenant_id, code, ctx.actor)
    return {"deleted": code}
