"""pull channels: poll state and connection source

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:12:40.318215
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only ADD COLUMN: on SQLite anything more makes batch mode rebuild the table, and
    # dropping the old connections table would cascade into the inbox and SKU mappings.
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=10), server_default="api", nullable=False)
        )
        batch_op.add_column(sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("poll_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_poll_error", sa.String(length=2000), nullable=True))
        batch_op.add_column(
            sa.Column("last_poll_error_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    # Not batch mode, for the same reason: SQLite (3.35+) drops a column in place.
    for column in (
        "last_poll_error_at",
        "last_poll_error",
        "poll_started_at",
        "last_polled_at",
        "source",
    ):
        op.drop_column("connections", column)
