"""orders by tenant, status and creation: the back office's usual search (some statuses over
a stretch of time) reads only the matching orders; customers by trigrams of their e-mail,
name and phone (pg_trgm), so "contains" finds the few without reading every customer

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 13:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


SEARCHED = ("email", "name", "phone")


def upgrade() -> None:
    op.create_index(
        "ix_orders_tenant_status_created", "orders", ["tenant_id", "status", "created_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # A trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_customers_search",
        "customers",
        list(SEARCHED),
        postgresql_using="gin",
        postgresql_ops=dict.fromkeys(SEARCHED, "gin_trgm_ops"),
        sqlite_where=sa.text("0"),
    )


def downgrade() -> None:
    op.drop_index("ix_customers_search", table_name="customers")
    op.drop_index("ix_orders_tenant_status_created", table_name="orders")
