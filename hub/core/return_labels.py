"""Return labels: a label the customer sends goods back with, issued by a carrier whose plugin
can (capability "return_label") — by default the carrier account and service that delivered
them, to the warehouse they shipped from.

Two steps, like buying a shipment's label (hub.core.shipments): ``claim`` checks the return
and marks it in the caller's transaction, so two requests never buy two labels; ``issue``
asks the carrier with no transaction open and records the label, or gives the claim back when
the carrier fails. A claim a crash left behind may be taken again after ``CLAIM_MINUTES``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from hub.core import audit, carrier_errors, carriers, events, orders, shipments
from hub.core.adapters import ShipmentRequest
from hub.core.db import utcnow
from hub.core.errors import Conflict, IllegalTransition
from hub.core.models import CarrierAccount, Order, Return
from hub.core.money import format_amount
from hub.core.return_views import view
from hub.core.returns import counted_shipments, lock

if TYPE_CHECKING:
    from hub.runtime import Runtime

CLAIM_MINUTES = 10
CAPABILITY = "return_label"


@dataclass(frozen=True)
class Claim:
    """What ``issue`` needs once the request's transaction has ended."""

    tenant_id: int
    return_id: int
    account_id: int
    service: str
    request: ShipmentRequest
    actor: str


def claim(
    session: Session,
    runtime: Runtime,
    tenant_id: int,
    return_id: int,
    *,
    actor: str,
    account_id: int | None = None,
    service: str | None = None,
) -> Claim:
    """Check that the return still expects goods and has no label, choose the carrier
    account (named, or the one that delivered them), describe the parcel, and mark the
    return as having a label requested."""
    ret, order = lock(session, tenant_id, return_id)
    outstanding: dict[int, int] = defaultdict(int)
    for line in ret.lines:
        outstanding[line.product_id] += line.quantity - line.received - line.damaged
    if ret.status in ("closed", "cancelled") or not any(outstanding.values()):
        raise IllegalTransition(
            f"return {ret.number} expects no more goods: it needs no label",
            {"status": ret.status},
        )
    _refuse_second(ret)
    shipment = _delivering_shipment(session, order, outstanding)
    account = (
        carriers.get_account(session, tenant_id, account_id)
        if account_id is not None
        else session.get(CarrierAccount, shipment.carrier_account_id)
    )
    assert account is not None
    cls = runtime.plugins.adapters("carriers").get(account.plugin)
    if cls is None or CAPABILITY not in cls.capabilities or not account.enabled:
        raise Conflict(
            f"carrier account {account.name!r} ({account.plugin}) cannot issue return labels"
            + ("" if account.enabled else ": it is disabled")
            + "; name another carrier_account, or send the customer your own label",
            {"reason": "no_return_labels", "carrier_account": account.id},
        )
    outward = shipments.request_for(
        session, order, shipment.warehouse_id, {p: q for p, q in outstanding.items() if q > 0}
    )
    request = dataclasses.replace(
        outward, origin=outward.destination, destination=outward.origin, reference=ret.number
    )
    ret.label = {"status": "requested", "requested_at": utcnow().isoformat(), "by": actor}
    return Claim(tenant_id, ret.id, account.id, service or shipment.service, request, actor)


def _refuse_second(ret: Return) -> None:
    label = ret.label or {}
    if label.get("status") == "issued":
        raise Conflict(
            f"return {ret.number} has a label already: {label.get('tracking_number')}",
            {"label": label},
        )
    if label.get("status") == "requested":
        since = datetime.fromisoformat(label["requested_at"])
        if utcnow() - since < timedelta(minutes=CLAIM_MINUTES):
            raise Conflict(
                f"a label for return {ret.number} is being requested; try again in a moment"
            )


def _delivering_shipment(session: Session, order: Order, outstanding: dict[int, int]) -> Any:
    """The shipment that carried most of the units still to come back."""
    found = counted_shipments(session, order)
    if not found:
        raise Conflict(f"no shipment of order {order.number} is left to send a label back for")

    def carried(shipment: Any) -> int:
        return sum(min(i.quantity, outstanding.get(i.product_id, 0)) for i in shipment.items)

    return max(found, key=lambda s: (carried(s), -s.id))


def issue(runtime: Runtime, claimed: Claim) -> dict[str, Any]:
    """Ask the carrier for the label and record it (or give the claim back and raise the
    carrier's failure as the API answers it). Returns the return's view."""
    with runtime.transaction(claimed.tenant_id) as session:
        account = session.get(CarrierAccount, claimed.account_id)
        assert account is not None
        name, plugin = account.name, account.plugin
        adapter = runtime.carrier_adapter(account)
    try:
        waybill = adapter.create_return_label(claimed.request, claimed.service)
    except Exception as exc:
        with runtime.transaction(claimed.tenant_id) as session:
            ret = session.get(Return, claimed.return_id)
            if ret is not None and (ret.label or {}).get("status") == "requested":
                ret.label = None
        raise carrier_errors.failed(
            exc, account=name, plugin=plugin, doing="issue the return label"
        ) from exc
    with runtime.transaction(claimed.tenant_id) as session:
        ret = session.get(Return, claimed.return_id)
        order = session.get(Order, ret.order_id) if ret is not None else None
        assert ret is not None and order is not None
        before = view(session, ret)
        ret.label = {
            "status": "issued",
            "carrier": plugin,
            "carrier_account": name,
            "service": claimed.service,
            "tracking_number": waybill.tracking_number,
            "url": waybill.label,
            "carrier_shipment_id": waybill.carrier_shipment_id,
            "amount": format_amount(waybill.amount),
            "currency": waybill.currency,
            "issued_at": utcnow().isoformat(),
        }
        session.flush()
        orders.record_history(
            session,
            order,
            "return_label",
            claimed.actor,
            f"{ret.number}: {name} label {waybill.tracking_number}",
        )
        after = view(session, ret)
        audit.record(
            session,
            claimed.tenant_id,
            claimed.actor,
            "return.label",
            "return",
            ret.number,
            before,
            after,
        )
        events.emit(
            session,
            claimed.tenant_id,
            events.RETURN_LABEL_ISSUED,
            {
                "id": ret.id,
                "number": ret.number,
                "order": order.number,
                "carrier": plugin,
                "tracking_number": waybill.tracking_number,
            },
        )
        return after
