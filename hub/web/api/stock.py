"""Stock routes: balances, inbound, outbound, adjustments, CSV import, ledger and alerts."""

from __future__ import annotations

from typing import Any

from hub.core import inventory, stock_import, stock_queries
from hub.web.api import schemas
from hub.web.api.framework import Ctx, Param, route

TAG = "stock"


@route(
    "/stock",
    permission="stock.read",
    summary="Stock balances per warehouse and SKU",
    tag=TAG,
    paged=True,
    query=(
        Param("sku"),
        Param("name", description="product name contains"),
        Param("category"),
        Param("brand"),
        Param("warehouse", description="code"),
        Param("low_only", "boolean", "only SKUs with an open low-stock alert"),
    ),
)
def list_stock(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    per_page = min(args.pop("per_page", 50), ctx.runtime.settings.max_per_page)
    items, total = stock_queries.balances(ctx.session, ctx.tenant_id, per_page=per_page, **args)
    return {"items": items, "total": total, "page": args.get("page", 1), "per_page": per_page}


@route(
    "/stock/inbound",
    "POST",
    permission="stock.write",
    summary="Receive stock (a batch)",
    tag=TAG,
    body=schemas.STOCK_MOVE,
)
def inbound(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    moves = inventory.resolve_movements(
        ctx.session, ctx.tenant_id, body["items"], body.get("warehouse")
    )
    inventory.receive(
        ctx.session, ctx.tenant_id, moves, reference=body.get("reference"), actor=ctx.actor
    )
    return {"received": len(moves)}


@route(
    "/stock/outbound",
    "POST",
    permission="stock.write",
    tag=TAG,
    body=schemas.STOCK_MOVE,
    summary="Send free stock out of a warehouse (a batch, all or nothing)",
)
def outbound(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    moves = inventory.resolve_movements(
        ctx.session, ctx.tenant_id, body["items"], body.get("warehouse")
    )
    inventory.dispatch(
        ctx.session, ctx.tenant_id, moves, reference=body.get("reference"), actor=ctx.actor
    )
    return {"dispatched": len(moves)}


@route(
    "/stock/adjust",
    "POST",
    permission="stock.write",
    tag=TAG,
    body=schemas.STOCK_ADJUST,
    summary="Adjust stock with a reason: counted quantity or a signed delta",
)
def adjust(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    # Errors name the line as sent, though counts and deltas are applied as two groups.
    numbered = list(enumerate(body["items"], start=1))
    counted = [(n, i) for n, i in numbered if "quantity" in i]
    deltas = [(n, dict(i, quantity=i["delta"])) for n, i in numbered if "delta" in i]
    applied = 0
    for group, absolute in ((counted, True), (deltas, False)):
        if not group:
            continue
        lines = [n for n, _ in group]
        moves = inventory.resolve_movements(
            ctx.session,
            ctx.tenant_id,
            [i for _, i in group],
            body.get("warehouse"),
            lines,
            minimum=0 if absolute else -inventory.MAX_QUANTITY,
        )
        inventory.adjust(
            ctx.session,
            ctx.tenant_id,
            moves,
            reason=body["reason"],
            actor=ctx.actor,
            absolute=absolute,
            line_numbers=lines,
        )
        applied += len(moves)
    return {"adjusted": applied}


@route(
    "/stock/import",
    "POST",
    permission="stock.write",
    tag=TAG,
    body={},
    body_kind="csv",
    summary="Move stock from a CSV file (warehouse,sku,quantity[,reason]); all or nothing",
    query=(Param("kind", enum=stock_import.KINDS), Param("reference"), Param("reason")),
)
def import_csv(ctx: Ctx, body: str, args: dict[str, Any]) -> dict[str, Any]:
    moved = stock_import.apply(
        ctx.session,
        ctx.tenant_id,
        body,
        kind=args.get("kind", "inbound"),
        actor=ctx.actor,
        reference=args.get("reference"),
        reason=args.get("reason"),
    )
    return {"rows": moved, "kind": args.get("kind", "inbound")}


@route(
    "/stock/ledger",
    permission="stock.read",
    summary="The stock ledger",
    tag=TAG,
    paged=True,
    query=(
        Param("sku"),
        Param("warehouse"),
        Param(
            "kind",
            enum=("inbound", "outbound", "adjust", "reserve", "release", "ship", "unship"),
        ),
        Param("reference"),
    ),
)
def ledger(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    per_page = min(args.pop("per_page", 50), ctx.runtime.settings.max_per_page)
    items, total = stock_queries.ledger(ctx.session, ctx.tenant_id, per_page=per_page, **args)
    return {"items": items, "total": total, "page": args.get("page", 1), "per_page": per_page}


@route("/stock/alerts", permission="stock.read", summary="Open low-stock alerts", tag=TAG)
def alerts(ctx: Ctx) -> dict[str, Any]:
    items = stock_queries.alerts(ctx.session, ctx.tenant_id)
    return {"items": items, "total": len(items)}
