"""Return (RMA) routes: authorise a return or an exchange, list and read them, receive their
goods, refund, cancel, close."""

from __future__ import annotations

from typing import Any

from hub.core import refunds, return_labels, return_receipts, return_views, returns
from hub.core.models import Return
from hub.core.money import parse_amount
from hub.web.api.framework import MAX_ID, AfterCommit, Ctx, Param, paginate, route
from hub.web.api.schemas import MONEY, QUANTITY, REASON, SKU, closed

TAG = "returns"

_LINES = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "items": closed({"sku": SKU, "quantity": QUANTITY}, ("sku", "quantity")),
}
RETURN_CREATE = closed(
    {
        "order": {"type": "string", "minLength": 1, "maxLength": 32},
        "lines": _LINES,
        "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        "kind": {"enum": list(returns.KINDS)},
        "replacement": {
            **_LINES,
            "description": "an exchange's replacement lines (default: the returned ones)",
        },
    },
    ("order", "lines", "reason"),
)
RECEIVE = closed(
    {
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 500,
            "items": closed(
                {
                    "sku": SKU,
                    "quantity": QUANTITY,
                    "condition": {
                        "enum": list(returns.CONDITIONS),
                        "description": "sellable: back on hand where it shipped from;"
                        " damaged: into the quarantine warehouse, never sold",
                    },
                },
                ("sku", "quantity", "condition"),
            ),
        }
    },
    ("lines",),
)
REFUND = closed(
    {
        "amount": {
            **MONEY,
            "description": "default: everything refundable (what came back is worth, less"
            " earlier refunds)",
        },
        "include_shipping": {"type": "boolean", "description": "add the order's shipping"},
        "reason": {"type": "string", "maxLength": 500},
    }
)

LABEL = closed(
    {
        "carrier_account": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ID,
            "description": "default: the account that delivered the goods",
        },
        "service": {
            "type": "string",
            "minLength": 1,
            "maxLength": 64,
            "description": "default: the service that delivered them",
        },
    }
)


def _policy(ctx: Ctx) -> returns.Policy:
    service = ctx.tenant.service
    return returns.Policy(service.return_window_days, service.quarantine_warehouse)


@route(
    "/returns",
    "POST",
    permission="returns.write",
    summary="Authorise a return (or an exchange) of shipped goods",
    tag=TAG,
    body=RETURN_CREATE,
    status=201,
)
def create_return(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    replacement = body.get("replacement")
    ret = returns.create(
        ctx.session,
        ctx.tenant_id,
        order_number=body["order"],
        lines=[(x["sku"], x["quantity"]) for x in body["lines"]],
        reason=body["reason"],
        kind=body.get("kind", "return"),
        replacement=None
        if replacement is None
        else [(x["sku"], x["quantity"]) for x in replacement],
        actor=ctx.actor,
        policy=_policy(ctx),
        prefix=ctx.tenant.order_number_prefix,
    )
    return return_views.view(ctx.session, ret)


@route(
    "/returns",
    permission="returns.read",
    summary="Find returns",
    tag=TAG,
    query=(
        Param(
            "status",
            description="one status or several separated by commas",
            enum=returns.STATUSES,
            many=True,
        ),
        Param("order", description="the order's number"),
    ),
    paged=True,
)
def list_returns(ctx: Ctx, args: dict[str, Any]) -> dict[str, Any]:
    stmt = returns.query(
        ctx.tenant_id,
        status=args["status"].split(",") if "status" in args else (),
        order=args.get("order"),
    )
    return paginate(ctx, stmt, Return.id.desc(), args, lambda r: return_views.view(ctx.session, r))


@route("/returns/<int:return_id>", permission="returns.read", summary="Read a return", tag=TAG)
def get_return(ctx: Ctx, return_id: int) -> dict[str, Any]:
    return return_views.view(ctx.session, returns.get(ctx.session, ctx.tenant_id, return_id))


@route(
    "/returns/<int:return_id>/receive",
    "POST",
    permission="returns.receive",
    summary="Receive returned goods, each line sellable or damaged",
    tag=TAG,
    body=RECEIVE,
)
def receive_return(ctx: Ctx, return_id: int, body: dict[str, Any]) -> dict[str, Any]:
    ret = return_receipts.receive(
        ctx.session,
        ctx.tenant_id,
        return_id,
        [(x["sku"], x["quantity"], x["condition"]) for x in body["lines"]],
        actor=ctx.actor,
        policy=_policy(ctx),
    )
    return return_views.view(ctx.session, ret)


@route(
    "/returns/<int:return_id>/label",
    "POST",
    permission="returns.write",
    summary="Have a carrier issue a return label (carriers with the return_label capability)",
    tag=TAG,
    body=LABEL,
    status=201,
)
def label_return(ctx: Ctx, return_id: int, body: dict[str, Any]) -> AfterCommit:
    claimed = return_labels.claim(
        ctx.session,
        ctx.runtime,
        ctx.tenant_id,
        return_id,
        actor=ctx.actor,
        account_id=body.get("carrier_account"),
        service=body.get("service"),
    )
    runtime = ctx.runtime
    return AfterCommit(lambda: return_labels.issue(runtime, claimed))


@route(
    "/returns/<int:return_id>/refund",
    "POST",
    permission="refunds.write",
    summary="Refund what came back of a return (all of it, or an amount)",
    tag=TAG,
    body=REFUND,
    status=201,
)
def refund_return(ctx: Ctx, return_id: int, body: dict[str, Any]) -> dict[str, Any]:
    refund = refunds.grant(
        ctx.session,
        ctx.tenant_id,
        return_id,
        refunds.Ask(
            amount=parse_amount(body["amount"], "amount") if "amount" in body else None,
            include_shipping=body.get("include_shipping", False),
            reason=body.get("reason"),
        ),
        actor=ctx.actor,
        role=ctx.principal.role,
        limit=ctx.tenant.service.refund_limit,
        channels=ctx.runtime.plugins.adapters("channels", ctx.tenant),
    )
    ret = ctx.session.get(Return, refund.return_id)
    made = next(r for r in return_views.view(ctx.session, ret)["refunds"] if r["id"] == refund.id)
    return {**made, "return_status": ret.status}


@route(
    "/returns/<int:return_id>/cancel",
    "POST",
    permission="returns.write",
    summary="Cancel a return before anything came back (an exchange's replacement too)",
    tag=TAG,
    body=REASON,
)
def cancel_return(ctx: Ctx, return_id: int, body: dict[str, Any]) -> dict[str, Any]:
    ret = returns.cancel(
        ctx.session, ctx.tenant_id, return_id, actor=ctx.actor, reason=body.get("reason")
    )
    return return_views.view(ctx.session, ret)


@route(
    "/returns/<int:return_id>/close",
    "POST",
    permission="returns.write",
    summary="Close a return: nothing more is to come back or be refunded",
    tag=TAG,
    body=REASON,
)
def close_return(ctx: Ctx, return_id: int, body: dict[str, Any]) -> dict[str, Any]:
    ret = returns.close(
        ctx.session, ctx.tenant_id, return_id, actor=ctx.actor, reason=body.get("reason")
    )
    return return_views.view(ctx.session, ret)
