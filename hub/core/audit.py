"""The append-only audit log: who changed what, when, and what it looked like before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from hub.core.db import utcnow
from hub.core.models import AuditEntry

# Built once, Core rather than the ORM bulk path: this runs on every change, the order hot
# path included.
_INSERT = insert(AuditEntry.__table__)


def record(
    session: Session,
    tenant_id: int,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.execute(
        _INSERT,
        [
            {
                "tenant_id": tenant_id,
                "at": utcnow(),
                "actor": actor,
                "action": action,
                "entity_type": entity_type,
                "entity_id": str(entity_id),
                "before": before,
                "after": after,
            }
        ],
    )
