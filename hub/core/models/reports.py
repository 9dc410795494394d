"""Day rollups that reports read instead of the raw tables (hub.core.report_rollups).

A large shop's year is half a million orders and a million lines: summed from the raw rows,
a product ranking or a carrier scorecard takes seconds. These tables hold the same sums per
tenant and *local* day (the tenant's calendar time zone), so a year is a few thousand rows.
They are a cache, never a record: the refresh rebuilds any day whose rows changed, and a
report adds the partial days at the period's edges from the raw rows.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base


class _Day:
    """The key every rollup starts with: whose, which local day, which currency."""

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    day: Mapped[date]


class ReportRefresh(Base):
    """Per tenant: the time zone its days are cut in, and the change time up to which every
    changed row has been folded in (``scanned_to``); a changed zone rebuilds everything."""

    __tablename__ = "report_refresh"

    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    timezone: Mapped[str] = mapped_column(String(64))
    scanned_to: Mapped[datetime | None]
    # Months before this one (its first day) are summed in the month rollups too.
    months_to: Mapped[date | None]
    refreshed_at: Mapped[datetime | None]


class ReportOrderDay(_Day, Base):
    """Orders created that day by channel, status and currency."""

    __tablename__ = "report_order_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day", "channel", "status", "currency"),)

    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(24))
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    amount: Mapped[Decimal]
    units: Mapped[int]


class ReportPlaceDay(_Day, Base):
    """Orders created that day by ship-to country and region; ``new_customers``: customers
    whose first order ever was one of them (counted where that first order went)."""

    __tablename__ = "report_place_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day", "country", "region", "currency"),)

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    amount: Mapped[Decimal]
    new_customers: Mapped[int]


class ReportProductDay(_Day, Base):
    """Order lines of the orders created that day, by product (cancelled orders left out:
    a ranking of what sold)."""

    __tablename__ = "report_product_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day", "product_id", "currency"),)

    product_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    units: Mapped[int]
    amount: Mapped[Decimal]


class ReportProductMonth(Base):
    """The product rollup summed per whole past month: a year of a large catalogue is then
    twelve rows per product rather than one per product and day."""

    __tablename__ = "report_product_months"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "month", "product_id", "currency"),)

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    month: Mapped[date]  # its first day
    product_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    units: Mapped[int]
    amount: Mapped[Decimal]


class ReportWarehouseDay(_Day, Base):
    """Units of the orders created that day by the warehouse that shipped them or holds them
    reserved, valued at the order line's unit price."""

    __tablename__ = "report_warehouse_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day", "warehouse_id", "currency"),)

    warehouse_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    units: Mapped[int]
    amount: Mapped[Decimal]


class ReportCarrierDay(_Day, Base):
    """Shipments created that day per carrier account (voided ones left out): the counts
    hub.core.reports.carrier_performance turns into rates."""

    __tablename__ = "report_carrier_days"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day", "carrier_account_id"),)

    carrier_account_id: Mapped[int]
    shipments: Mapped[int]
    delivered: Mapped[int]
    judged: Mapped[int]
    on_time: Mapped[int]
    transit_days: Mapped[Decimal]
    exceptions: Mapped[int]
