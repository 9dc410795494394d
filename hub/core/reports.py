"""Reports for a period: order statistics (count and amount by day, by status and by
channel) and carrier performance."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, case, cast, exists, func, select
from sqlalchemy.orm import Session

from hub.core.models import (
    CarrierAccount,
    DeliveryException,
    Order,
    Shipment,
    TrackingEventRecord,
)
from hub.core.money import format_amount


def order_stats(session: Session, tenant_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Amounts are summed per currency: adding euros to dollars would be a lie."""
    period = (Order.tenant_id == tenant_id, Order.created_at >= start, Order.created_at < end)
    if session.get_bind().dialect.name == "postgresql":
        day = func.to_char(func.timezone("UTC", Order.created_at), "YYYY-MM-DD")
    else:
        day = func.substr(Order.created_at, 1, 10)

    def grouped(key: Any) -> list[dict[str, Any]]:
        rows = session.execute(
            select(key.label("key"), Order.currency, func.count(), func.sum(Order.total))
            .where(*period)
            .group_by(key, Order.currency)
            .order_by(key, Order.currency)
        ).all()
        return [
            {"key": k, "currency": cur, "count": n, "amount": format_amount(Decimal(amount))}
            for k, cur, n, amount in rows
        ]

    totals = session.execute(
        select(Order.currency, func.count(), func.sum(Order.total))
        .where(*period)
        .group_by(Order.currency)
        .order_by(Order.currency)
    ).all()
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "total": [
            {"currency": cur, "count": n, "amount": format_amount(Decimal(amount))}
            for cur, n, amount in totals
        ],
        "by_day": grouped(day),
        "by_status": grouped(Order.status),
        "by_channel": grouped(Order.channel),
    }


def carrier_performance(
    session: Session, tenant_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """Per carrier account, and per carrier over its accounts, for the shipments created in
    [start, end) — voided ones left out, they never travelled: how many, how many delivered,
    the on-time rate (of the delivered ones with a date to judge by: delivered on or before
    the promised date, else the carrier's first estimate — a later estimate would excuse the
    carrier's own delay), the average transit in days (from the first scan of the parcel on
    its way — "info received" is only the label's data, and a lone "delivered" scan says
    nothing of when it left — or, without one, from the shipment's creation, to delivery)
    and the share of shipments that had a delivery exception."""
    dialect = session.get_bind().dialect.name
    first_scan = (
        select(
            TrackingEventRecord.shipment_id,
            func.min(TrackingEventRecord.at).label("at"),
        )
        .where(
            TrackingEventRecord.tenant_id == tenant_id,
            TrackingEventRecord.status.not_in(("info_received", "delivered")),
            TrackingEventRecord.source != "hub",
        )
        .group_by(TrackingEventRecord.shipment_id)
        .subquery()
    )
    began = func.coalesce(first_scan.c.at, Shipment.created_at)
    due = func.coalesce(
        Shipment.promised_delivery, Shipment.first_estimated_delivery, Shipment.estimated_delivery
    )
    if dialect == "postgresql":
        delivered_on = cast(func.timezone("UTC", Shipment.delivered_at), Date)
        transit = func.extract("epoch", Shipment.delivered_at - began) / 86400
    else:  # SQLite keeps times as UTC text and dates as YYYY-MM-DD
        delivered_on = func.substr(Shipment.delivered_at, 1, 10)
        transit = func.julianday(Shipment.delivered_at) - func.julianday(began)
    delivered = Shipment.status == "delivered"
    had_exception = exists().where(DeliveryException.shipment_id == Shipment.id)
    rows = session.execute(
        select(
            CarrierAccount.id,
            CarrierAccount.name,
            CarrierAccount.plugin,
            func.count(),
            func.count().filter(delivered),
            func.count().filter(delivered, due.is_not(None)),
            func.count().filter(delivered, due.is_not(None), delivered_on <= due),
            func.coalesce(func.sum(case((delivered, transit))), 0),
            func.count().filter(had_exception),
        )
        .join(CarrierAccount, CarrierAccount.id == Shipment.carrier_account_id)
        .outerjoin(first_scan, first_scan.c.shipment_id == Shipment.id)
        .where(
            Shipment.tenant_id == tenant_id,
            Shipment.created_at >= start,
            Shipment.created_at < end,
            Shipment.status != "cancelled",
        )
        .group_by(CarrierAccount.id, CarrierAccount.name, CarrierAccount.plugin)
        .order_by(CarrierAccount.plugin, CarrierAccount.name)
    ).all()
    accounts = []
    carriers: dict[str, list[Any]] = {}
    for account_id, name, plugin, *counts in rows:
        accounts.append({"account": account_id, "name": name, **_performance(plugin, *counts)})
        sums = carriers.setdefault(plugin, [0] * len(counts))
        for i, value in enumerate(counts):
            sums[i] += value
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "accounts": accounts,
        "carriers": [_performance(plugin, *sums) for plugin, sums in carriers.items()],
    }


def _performance(
    carrier: str,
    shipments: int,
    delivered: int,
    judged: int,
    on_time: int,
    transit_days: Any,
    exceptions: int,
) -> dict[str, Any]:
    return {
        "carrier": carrier,
        "shipments": shipments,
        "delivered": delivered,
        "on_time": on_time,
        "on_time_rate": round(on_time / judged, 4) if judged else None,
        "average_transit_days": round(float(transit_days) / delivered, 2) if delivered else None,
        "exception_rate": round(exceptions / shipments, 4) if shipments else None,
    }
