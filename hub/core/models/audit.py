"""The audit log: append-only (the migration adds triggers that refuse UPDATE and DELETE)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.core.db import Base, utcnow
from hub.core.models.tenancy import TenantScoped


class AuditEntry(TenantScoped, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "tenant_id", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
