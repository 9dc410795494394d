"""ticket messages from e-mail keep the e-mail's Message-ID, unique per tenant

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_messages") as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=250), nullable=True))
    op.create_index(
        "uq_ticket_messages_external",
        "ticket_messages",
        ["tenant_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
        sqlite_where=sa.text("external_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_ticket_messages_external", table_name="ticket_messages")
    with op.batch_alter_table("ticket_messages") as batch_op:
        batch_op.drop_column("external_id")
