"""operations and accounts: usernames unique whatever their case, token expiry, worker
heartbeats, and an audit log that refuses TRUNCATE on PostgreSQL

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("username_key", sa.String(length=255), nullable=True))
    _fill_username_keys()
    # Batch mode: SQLite rebuilds the (small) users table to make the key NOT NULL and unique.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(255), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_users_tenant_id_username_key"), ["tenant_id", "username_key"]
        )
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))
    op.create_table(
        "worker_heartbeats",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("queues", sa.String(length=1000), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # TRUNCATE fires no row triggers: a statement trigger of its own refuses it.
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
            " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def _fill_username_keys() -> None:
    """The key is Python's casefold() (the same on both databases, unlike lower()). Users that
    differ only in case stop the upgrade, naming them, rather than one of them being lost."""
    users = sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("tenant_id", sa.Integer()),
        sa.column("username", sa.String()),
        sa.column("username_key", sa.String()),
    )
    db = op.get_bind()
    seen: dict[tuple[int, str], str] = {}
    for user_id, tenant_id, username in db.execute(
        sa.select(users.c.id, users.c.tenant_id, users.c.username).order_by(users.c.id)
    ):
        key = username.casefold()
        if (tenant_id, key) in seen:
            raise RuntimeError(
                f"users {seen[tenant_id, key]!r} and {username!r} of tenant id {tenant_id}"
                " differ only in case: change one of the two usernames before upgrading"
            )
        seen[tenant_id, key] = username
        db.execute(users.update().where(users.c.id == user_id).values(username_key=key))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.drop_table("worker_heartbeats")
    op.drop_column("api_tokens", "expires_at")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_tenant_id_username_key"), type_="unique")
        batch_op.drop_column("username_key")
