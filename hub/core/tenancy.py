"""Tenants and their number sequences."""

from __future__ import annotations

import re

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit
from hub.core.errors import Conflict, Invalid
from hub.core.models import Counter, Tenant

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def create_tenant(
    session: Session, slug: str, name: str | None = None, *, actor: str = "cli"
) -> Tenant:
    if not SLUG.match(slug):
        raise Invalid(f"tenant slug {slug!r} must be lower-case letters, digits and dashes")
    if session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name or slug)
    session.add(tenant)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # A sequence hands out numbers without holding a row lock until commit, so concurrent
        # order creations for one tenant do not queue behind each other.
        session.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {_sequence(tenant.id, 'order')}"))
    else:
        session.execute(insert(Counter).values(tenant_id=tenant.id, name="order", value=0))
    audit.record(
        session,
        tenant.id,
        actor,
        "tenant.create",
        "tenant",
        slug,
        None,
        {"slug": slug, "name": tenant.name},
    )
    return tenant


_NEXTVAL = text("SELECT nextval(CAST(:seq AS regclass))")


def next_value(session: Session, tenant_id: int, name: str) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(_NEXTVAL, {"seq": _sequence(tenant_id, name)}).scalar_one()
    return _bump(session, tenant_id, name)


def next_count(session: Session, tenant_id: int, name: str) -> int:
    """The next number of a low-volume per-tenant sequence (tickets, returns), on a counter row
    made at first use: no tenant needs creating again for a new kind of number. The row stays
    locked until commit, which only numbers of the same kind wait for."""
    dialect = session.get_bind().dialect.name
    make = (pg_insert if dialect == "postgresql" else sqlite_insert)(Counter)
    session.execute(
        make.values(tenant_id=tenant_id, name=name, value=0).on_conflict_do_nothing(
            index_elements=["tenant_id", "name"]
        )
    )
    return _bump(session, tenant_id, name)


def _bump(session: Session, tenant_id: int, name: str) -> int:
    """Add one to a counter row and read it back, in one statement (never max() + 1)."""
    return session.execute(
        update(Counter)
        .where(Counter.tenant_id == tenant_id, Counter.name == name)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def sequence_name(tenant_id: int, name: str) -> str:
    """PostgreSQL only: the sequence behind ``next_value``."""
    return f"orderhub_{name}_seq_{int(tenant_id)}"


_sequence = sequence_name

# Order numbers: the tenant's prefix and at least this many digits ("SO-000042").
NUMBER_DIGITS = 6


def order_number(session: Session, tenant_id: int, prefix: str) -> str:
    return f"{prefix}{next_value(session, tenant_id, 'order'):0{NUMBER_DIGITS}d}"
