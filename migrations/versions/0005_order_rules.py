"""order rules: decisions, channel hold, shipping method, work-queue key

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode): SQLite would otherwise rebuild the orders table.
    op.add_column("orders", sa.Column("shipping_method", sa.String(length=100), nullable=True))
    op.add_column("orders", sa.Column("channel_hold", sa.String(length=500), nullable=True))
    op.add_column("orders", sa.Column("decisions", sa.JSON(), nullable=True))
    op.add_column("orders", sa.Column("queue_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_orders_tenant_status", table_name="orders")
    op.create_index(
        "ix_orders_tenant_status", "orders", ["tenant_id", "status", "queue_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_orders_tenant_status", table_name="orders")
    op.create_index("ix_orders_tenant_status", "orders", ["tenant_id", "status"], unique=False)
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("queue_at")
        batch_op.drop_column("decisions")
        batch_op.drop_column("channel_hold")
        batch_op.drop_column("shipping_method")
