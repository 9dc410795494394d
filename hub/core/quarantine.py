"""The quarantine warehouse: where damaged returned goods are booked, on hand but never sold.

One per tenant, named by its ``[service] quarantine_warehouse`` setting and made on first use:
inactive (reservations take only from active warehouses) and of kind "quarantine", so it can
never be activated and what it holds never counts as available (hub.core.inventory). Goods
leave it by the ordinary stock movements: an outbound to scrap them; an outbound from here
and an inbound elsewhere once they are fit to sell again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from hub.core import audit, catalog
from hub.core.db import utcnow
from hub.core.errors import Conflict
from hub.core.inventory import QUARANTINE
from hub.core.models import Warehouse

NAME = "Returns quarantine"
# After every warehouse a tenant may name (priorities go up to 10,000).
PRIORITY = 10_000


def warehouse(session: Session, tenant_id: int, code: str, actor: str) -> Warehouse:
    """The tenant's quarantine warehouse, made now if it does not exist yet (two receipts
    making it at once make it once: the second finds the first's)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    made = session.execute(
        insert(Warehouse)
        .values(
            tenant_id=tenant_id,
            code=code,
            name=NAME,
            priority=PRIORITY,
            active=False,
            kind=QUARANTINE,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "code"])
        .returning(Warehouse.id)
    ).scalar()
    found = session.scalar(
        select(Warehouse).where(Warehouse.tenant_id == tenant_id, Warehouse.code == code)
    )
    assert found is not None
    if made is not None:
        audit.record(
            session,
            tenant_id,
            actor,
            "warehouse.create",
            "warehouse",
            code,
            None,
            catalog.warehouse_dict(found),
        )
    if found.kind != QUARANTINE:
        raise Conflict(
            "the tenant's quarantine warehouse ([service] quarantine_warehouse) is a warehouse"
            " of sellable stock; damaged goods cannot go there: name another code"
        )
    return found
