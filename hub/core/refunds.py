"""Refunds: money granted back for a return, then made by the sales channel where it can.

A refund is a grant first, written in the request's transaction under the order's lock
(hub.core.returns.lock), so two refunds at once are counted one after the other:

- only once something came back, and never more than what came back is worth at the order's
  prices (plus the order's shipping, once per order, when asked) less the return's earlier
  refunds — nor more than the order's total less all its refunds ("paid": the hub does not
  hold the money; the channel does). A failed refund no longer counts;
- the ``service`` role may grant up to the tenant's ``[service] refund_limit``; above it an
  operator or admin must;
- an exchange is settled by its replacement order: it is refunded only once that order is
  cancelled.

Then ``push`` (a job, after commit) asks the channel to make it, outside any transaction,
with a key that is the same on every attempt, so a retry after a timeout never pays twice. A
channel without the "refund" capability (or an order from no channel) leaves the refund
"manual": recorded, for someone to make by hand. Refunds never restock: goods came back on
receipt (hub.core.return_receipts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.core import audit, events, orders
from hub.core.adapters import ChannelRefund, RefundedLine
from hub.core.db import utcnow
from hub.core.errors import Conflict, Forbidden, Invalid
from hub.core.http import HttpError
from hub.core.models import Connection, Order, Refund, Return, SkuMapping
from hub.core.money import format_amount
from hub.core.return_views import received_value, refund_view, view
from hub.core.returns import check, lock

if TYPE_CHECKING:
    from hub.runtime import Runtime

# Attempts at pushing one refund to its channel (the push_refund job's retries plus one);
# after the last a refund the channel keeps failing to take is marked failed.
PUSH_ATTEMPTS = 20
LIMITED_ROLE = "service"


@dataclass(frozen=True)
class Ask:
    """What the caller asked: an amount (None: everything refundable), the order's shipping
    too, and why."""

    amount: Decimal | None = None
    include_shipping: bool = False
    reason: str | None = None


def grant(
    session: Session,
    tenant_id: int,
    return_id: int,
    ask: Ask,
    *,
    actor: str,
    role: str,
    limit: Decimal,
    channels: Mapping[str, Any],
) -> Refund:
    """Grant a refund for a return. ``limit`` is the tenant's refund limit for the service
    role; ``channels`` are the channel adapter classes the tenant has (their capabilities
    say whether the refund is pushed or left to be made by hand)."""
    ret, order = lock(session, tenant_id, return_id)
    check(ret, "refund")
    _refuse_exchange(session, ret)
    earlier = list(
        session.scalars(
            select(Refund)
            .where(Refund.order_id == order.id, Refund.status != "failed")
            .order_by(Refund.id)
        )
    )
    shipping = _shipping(order, ret, earlier, ask.include_shipping)
    on_return = sum((r.amount for r in earlier if r.return_id == ret.id), Decimal(0))
    left_here = received_value(ret) + shipping - on_return
    left_on_order = order.total - sum((r.amount for r in earlier), Decimal(0))
    refundable = max(min(left_here, left_on_order), Decimal(0))
    why = (
        f"order {order.number} totals {format_amount(order.total)} and"
        f" {format_amount(order.total - left_on_order)} of it is refunded already"
        if left_on_order < left_here
        else f"what came back on {ret.number} is worth {format_amount(received_value(ret))}"
        + (f" plus {format_amount(shipping)} shipping" if shipping else "")
        + (f", {format_amount(on_return)} of it refunded already" if on_return else "")
    )
    amount = ask.amount
    if amount is None:
        if refundable == 0:
            raise Conflict(
                f"nothing is left to refund on return {ret.number}: {why}",
                {"refundable": "0.00"},
            )
        amount = refundable
    elif amount <= 0:
        raise _amount_problem("must be more than 0")
    elif amount > refundable:
        raise _amount_problem(f"at most {format_amount(refundable)} can be refunded: {why}")
    if role == LIMITED_ROLE and amount > limit:
        raise Forbidden(
            f"a refund of {format_amount(amount)} is above what the service role may grant;"
            " an operator or admin must grant it"
        )
    before = view(session, ret)
    refund = Refund(
        tenant_id=tenant_id,
        return_id=ret.id,
        order_id=order.id,
        amount=amount,
        currency=order.currency,
        shipping_included=ask.include_shipping,
        lines=_lines(session, ret, earlier),
        reason=ask.reason,
        status="pending" if _pushable(session, order, channels) else "manual",
        created_by=actor,
    )
    session.add(refund)
    ret.status = "refunded"
    ret.updated_at = utcnow()
    session.flush()
    orders.record_history(
        session,
        order,
        "refund_granted",
        actor,
        f"{format_amount(amount)} {order.currency} for {ret.number} ({refund.status})",
    )
    audit.record(
        session, tenant_id, actor, "return.refund", "return", ret.number, before, view(session, ret)
    )
    events.emit(session, tenant_id, events.REFUND_CREATED, _payload(refund, ret, order))
    if refund.status == "pending":
        events.send_after_commit(session, "push_refund", refund.id)
    return refund


def _amount_problem(problem: str) -> Invalid:
    return Invalid(f"amount: {problem}", [{"field": "amount", "problem": problem}])


def _refuse_exchange(session: Session, ret: Return) -> None:
    if ret.replacement_order_id is None:
        return
    replacement = session.get(Order, ret.replacement_order_id)
    if replacement is not None and replacement.status != "cancelled":
        raise Conflict(
            f"exchange {ret.number} is settled by its replacement order {replacement.number};"
            " cancel that order first to refund instead",
            {"replacement_order": replacement.number},
        )


def _shipping(order: Order, ret: Return, earlier: list[Refund], include: bool) -> Decimal:
    """The shipping this return's refunds may pay back: the order's, once per order."""
    if include:
        if order.shipping_total <= 0:
            problem = f"order {order.number} charged no shipping"
            raise Invalid(
                f"include_shipping: {problem}",
                [{"field": "include_shipping", "problem": problem}],
            )
        done = next((r for r in earlier if r.shipping_included), None)
        if done is not None:
            raise Conflict(
                f"the shipping of order {order.number} was refunded already (refund {done.id})",
                {"refund": done.id},
            )
        return order.shipping_total
    if any(r.shipping_included and r.return_id == ret.id for r in earlier):
        return order.shipping_total
    return Decimal(0)


def _lines(session: Session, ret: Return, earlier: list[Refund]) -> dict[str, int]:
    """The returned units this refund pays for: those received since the return's earlier
    refunds, by SKU."""
    paid: dict[str, int] = defaultdict(int)
    for refund in earlier:
        if refund.return_id == ret.id:
            for sku, units in (refund.lines or {}).items():
                paid[sku] += units
    out = {}
    for line in ret.lines:
        units = line.received + line.damaged - paid[line.sku]
        if units > 0:
            out[line.sku] = units
    return out


def _pushable(session: Session, order: Order, channels: Mapping[str, Any]) -> bool:
    if order.connection_id is None:
        return False
    plugin = session.scalar(select(Connection.plugin).where(Connection.id == order.connection_id))
    cls = channels.get(plugin) if plugin else None
    return cls is not None and "refund" in cls.capabilities


def _payload(refund: Refund, ret: Return, order: Order) -> dict[str, Any]:
    return {
        "id": refund.id,
        "return": ret.number,
        "order": order.number,
        "amount": format_amount(refund.amount),
        "currency": refund.currency,
        "status": refund.status,
        "error": refund.error,
    }


# --- the channel ---------------------------------------------------------------------------


def unpushed(session: Session, before: datetime) -> list[int]:
    """Refunds granted before ``before`` whose push never started (its job was lost: the
    broker was down, the process died), for the sweeper to queue again."""
    return list(
        session.scalars(
            select(Refund.id)
            .where(Refund.status == "pending", Refund.attempts == 0, Refund.created_at < before)
            .order_by(Refund.id)
            .limit(10_000)
        )
    )


def push(runtime: Runtime, refund_id: int) -> str:
    """The push_refund job. Returns what happened: "pushed", "skipped: …", "manual: …" or
    "failed: …"; a retryable failure is raised (after noting it) so the job is retried,
    until ``PUSH_ATTEMPTS``."""
    with runtime.transaction() as session:
        refund = session.get(Refund, refund_id)
        if refund is None or refund.status != "pending":
            return "skipped: not waiting to be pushed"
        order = session.get(Order, refund.order_id)
        assert order is not None  # a refund goes with its order
        connection = session.get(Connection, order.connection_id) if order.connection_id else None
        try:
            adapter = runtime.channel_adapter(connection) if connection is not None else None
        except Invalid as gone:  # its plugin is no longer installed
            adapter, missing = None, gone.message
        else:
            missing = "the order's sales channel connection is gone"
        if adapter is None or "refund" not in adapter.capabilities:
            reason = missing if adapter is None else f"{adapter.name} takes no refunds"
            _settle(session, refund, "manual", error=reason)
            return f"manual: {reason}"
        refund.attempts += 1
        last = refund.attempts >= PUSH_ATTEMPTS
        request = ChannelRefund(
            key=f"orderhub-refund-{refund.id}",
            amount=refund.amount,
            currency=refund.currency,
            reason=refund.reason,
            shipping_included=refund.shipping_included,
            lines=_channel_lines(session, refund, order.connection_id),
        )
        external_id = order.external_id or ""
    try:
        reference = adapter.push_refund(external_id, request)
    except HttpError as problem:
        again = problem.retryable and not last
        with runtime.transaction() as session:
            refund = session.get(Refund, refund_id)
            assert refund is not None
            if again:
                refund.error = str(problem)[:2000]
            else:
                _settle(session, refund, "failed", error=str(problem))
        if again:
            raise
        return f"failed: {problem}"
    with runtime.transaction() as session:
        refund = session.get(Refund, refund_id)
        assert refund is not None
        _settle(session, refund, "succeeded", external_id=reference)
    return "pushed"


def _channel_lines(
    session: Session, refund: Refund, connection_id: int | None
) -> tuple[RefundedLine, ...]:
    """The units the refund pays for, under the names the channel knows them by."""
    refs = dict(
        session.execute(
            select(SkuMapping.sku, SkuMapping.channel_ref).where(
                SkuMapping.connection_id == connection_id
            )
        ).all()
    )
    return tuple(
        RefundedLine(refs.get(sku, sku), units)
        for sku, units in sorted((refund.lines or {}).items())
    )


def _settle(
    session: Session,
    refund: Refund,
    status: str,
    *,
    external_id: str | None = None,
    error: str | None = None,
) -> None:
    """Record what became of a pushed refund. A failed one stops counting, and a return
    left with no other refund is back to waiting for one."""
    before = {"status": refund.status}
    refund.status = status
    refund.external_id = external_id
    refund.error = error[:2000] if error else None
    refund.settled_at = utcnow()
    ret = session.get(Return, refund.return_id)
    order = session.get(Order, refund.order_id)
    assert ret is not None and order is not None
    if status == "failed" and ret.status == "refunded":
        others = session.scalar(
            select(Refund.id).where(
                Refund.return_id == ret.id, Refund.id != refund.id, Refund.status != "failed"
            )
        )
        if others is None:
            outstanding = sum(line.quantity - line.received - line.damaged for line in ret.lines)
            ret.status = "received" if outstanding == 0 else "partially_received"
    session.flush()
    said = {
        "succeeded": "made by the sales channel",
        "failed": f"refused by the sales channel: {error}",
        "manual": f"to be made by hand: {error}",
    }[status]
    orders.record_history(
        session,
        order,
        "refund_settled",
        "worker",
        f"refund {refund.id} of {format_amount(refund.amount)} {refund.currency}: {said}"[:1000],
    )
    audit.record(
        session,
        refund.tenant_id,
        "worker",
        "refund.settle",
        "refund",
        refund.id,
        before,
        refund_view(refund, ret.number, order.number),
    )
    events.emit(session, refund.tenant_id, events.REFUND_SETTLED, _payload(refund, ret, order))
