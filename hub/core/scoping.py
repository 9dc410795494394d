"""Tenant scope applied once, centrally: a session opened for a tenant sees only that tenant's
rows, whatever query a service writes. Services still name the tenant explicitly; this is the
second lock on the door."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from hub.core.models import TenantScoped

TENANT_KEY = "orderhub.tenant_id"


def install(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "do_orm_execute", _scope)


def _scope(state: ORMExecuteState) -> None:
    tenant_id = state.session.info.get(TENANT_KEY)
    if tenant_id is None or state.is_column_load or state.is_relationship_load:
        return
    if not state.is_orm_statement:  # Core statements on tables name their tenant themselves
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TenantScoped, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
            )
        )
