"""report rollups: per tenant and local day, orders by channel/status, by ship-to place (with
new customers), by product (and per past month), by warehouse, and shipments per carrier
account; the refresh state per tenant; indexes for changed rows, a customer's first order,
returns and tickets by creation

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:53:46.691974
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_carrier_days",
        sa.Column("carrier_account_id", sa.Integer(), nullable=False),
        sa.Column("shipments", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("transit_days", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("exceptions", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_carrier_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "carrier_account_id", name=op.f("pk_report_carrier_days")
        ),
    )
    op.create_table(
        "report_order_days",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_order_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "channel", "status", "currency", name=op.f("pk_report_order_days")
        ),
    )
    op.create_table(
        "report_place_days",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("new_customers", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_place_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "country", "region", "currency", name=op.f("pk_report_place_days")
        ),
    )
    op.create_table(
        "report_product_days",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_product_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "product_id", "currency", name=op.f("pk_report_product_days")
        ),
    )
    op.create_table(
        "report_product_months",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_product_months_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "month", "product_id", "currency", name=op.f("pk_report_product_months")
        ),
    )
    op.create_table(
        "report_refresh",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("scanned_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("months_to", sa.Date(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_refresh_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_report_refresh")),
    )
    op.create_table(
        "report_warehouse_days",
        sa.Column("warehouse_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_warehouse_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "warehouse_id", "currency", name=op.f("pk_report_warehouse_days")
        ),
    )
    op.drop_index(op.f("ix_orders_customer_id"), table_name="orders")
    op.create_index(
        "ix_orders_customer_created", "orders", ["customer_id", "created_at"], unique=False
    )
    op.create_index("ix_orders_tenant_updated", "orders", ["tenant_id", "updated_at"], unique=False)
    op.create_index(
        "ix_returns_tenant_created", "returns", ["tenant_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_shipments_tenant_updated", "shipments", ["tenant_id", "updated_at"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_orders_tenant_created", table_name="orders")
        op.create_index(
            "ix_orders_tenant_created",
            "orders",
            ["tenant_id", "created_at"],
            postgresql_include=["customer_id", "ship_country", "ship_region"],
        )
    op.create_index(
        "ix_tickets_tenant_created", "tickets", ["tenant_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_tenant_created", table_name="tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_orders_tenant_created", table_name="orders")
        op.create_index("ix_orders_tenant_created", "orders", ["tenant_id", "created_at"])
    op.drop_index("ix_shipments_tenant_updated", table_name="shipments")
    op.drop_index("ix_returns_tenant_created", table_name="returns")
    op.drop_index("ix_orders_tenant_updated", table_name="orders")
    op.drop_index("ix_orders_customer_created", table_name="orders")
    op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"], unique=False)
    op.drop_table("report_warehouse_days")
    op.drop_table("report_refresh")
    op.drop_table("report_product_months")
    op.drop_table("report_product_days")
    op.drop_table("report_place_days")
    op.drop_table("report_order_days")
    op.drop_table("report_carrier_days")
