"""notifications: one message per (event, notifier, recipient) with a stable message id, the
provider's id, the next attempt's time and replays; notifiers a destination disabled; the
customer's language

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("language", sa.String(length=35), nullable=True))
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recipient", sa.String(length=254), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("recipient_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("language", sa.String(length=35), nullable=True))
        batch_op.add_column(sa.Column("message_id", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("round_start", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("replays", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("provider_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    # Messages made before this revision get an id from their row's (both databases cast the
    # integer for ||).
    op.execute("UPDATE notification_deliveries SET message_id = 'msg_' || id")
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.String(40), nullable=False)
        batch_op.drop_constraint(
            batch_op.f("uq_notification_deliveries_event_id_notifier"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_notification_deliveries_event_id_notifier_recipient"),
            ["event_id", "notifier", "recipient"],
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_notification_deliveries_message_id"), ["message_id"]
        )
        batch_op.create_index(
            "ix_notification_deliveries_tenant_status", ["tenant_id", "status"], unique=False
        )
    op.create_table(
        "notifier_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notifier_states_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifier_states")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_notifier_states_tenant_id_name")),
    )


def downgrade() -> None:
    op.drop_table("notifier_states")
    # Messages to several recipients of one (event, notifier) cannot all stay under the old
    # key: the first is kept.
    op.execute(
        "DELETE FROM notification_deliveries WHERE id NOT IN (SELECT min(id) FROM"
        " notification_deliveries GROUP BY event_id, notifier)"
    )
    with op.batch_alter_table("notification_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_deliveries_tenant_status")
        batch_op.drop_constraint(
            batch_op.f("uq_notification_deliveries_message_id"), type_="unique"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_notification_deliveries_event_id_notifier_recipient"), type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_notification_deliveries_event_id_notifier"), ["event_id", "notifier"]
        )
        for column in (
            "next_attempt_at",
            "provider_id",
            "replays",
            "round_start",
            "message_id",
            "language",
            "recipient_name",
            "recipient",
        ):
            batch_op.drop_column(column)
    op.drop_column("customers", "language")
