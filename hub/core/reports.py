"""Order statistics for a period: count and amount by day, by status and by channel."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.core.models import Order
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
