"""orders by tenant, status and creation: the back office's usual search (some statuses over
a stretch of time) reads only the matching orders

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 13:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_tenant_status_created", "orders", ["tenant_id", "status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_orders_tenant_status_created", table_name="orders")
