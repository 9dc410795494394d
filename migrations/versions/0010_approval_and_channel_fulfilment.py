"""approvals that hold: who created an order, the total each approval was given for; orders
fulfilled by the channel; other charges (fees)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode): SQLite would otherwise rebuild the orders table.
    op.add_column(
        "orders",
        sa.Column(
            "fees_total",
            sa.Numeric(precision=18, scale=4),
            server_default=sa.text("0"),
            nullable=False,
        ),
    )
    op.add_column(
        "orders",
        sa.Column("fulfilled_by_channel", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("orders", sa.Column("created_by", sa.String(length=100), nullable=True))
    # Who created the orders already there: the actor of their "created" history row.
    op.execute(
        "UPDATE orders SET created_by = (SELECT h.actor FROM order_history h"
        " WHERE h.order_id = orders.id AND h.action = 'created' ORDER BY h.id LIMIT 1)"
    )
    _stamp_approvals()


def _stamp_approvals() -> None:
    """Approvals given before this revision hold for the order's total as it is now (each
    approval now records the total it was given for; a larger total asks again)."""
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer()),
        sa.column("total", sa.Numeric(18, 4)),
        sa.column("decisions", sa.JSON()),
    )
    db = op.get_bind()
    rows = db.execute(
        sa.select(orders.c.id, orders.c.total, orders.c.decisions).where(
            orders.c.decisions.is_not(None)
        )
    ).all()
    for order_id, total, decisions in rows:
        given = (decisions or {}).get("approvals") or []
        if not given or all("total" in g for g in given):
            continue
        stamped = [{"total": str(total), **g} for g in given]
        db.execute(
            orders.update()
            .where(orders.c.id == order_id)
            .values(decisions={**decisions, "approvals": stamped})
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("fulfilled_by_channel")
        batch_op.drop_column("fees_total")
