"""Helpers for the care and review tests: delivered orders, a tenant's care sweep at a chosen
moment, the events and sends it left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conftest import ORDER, Api
from sqlalchemy import func, select

from hub.core import care, orders
from hub.core.care_rules import CareRules, care_rules_from
from hub.core.models import CareSend, Event, Order, OrderHistory, Tenant
from hub.runtime import Runtime


def tenant_id(runtime: Runtime, slug: str = "acme") -> int:
    with runtime.transaction() as session:
        found = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
        assert found is not None
        return found


def delivered_order(
    runtime: Runtime, api: Api, body: dict[str, Any] | None = None, *, token: str | None = None,
    slug: str = "acme",
) -> tuple[str, datetime]:
    """A new order of ``slug`` (through the API), shipped and delivered; its number and the
    moment it became delivered."""
    number = placed_order(api, body, token=token)
    return number, deliver(runtime, number, slug)


def placed_order(api: Api, body: dict[str, Any] | None = None, *, token: str | None = None) -> str:
    status, order = api.post("/orders", body or ORDER, token=token)
    assert status == 201 and order["status"] == "confirmed", order
    return str(order["number"])


def deliver(runtime: Runtime, number: str, slug: str = "acme") -> datetime:
    tenant = tenant_id(runtime, slug)
    with runtime.transaction() as session:
        order = orders.get(session, tenant, number, for_update=True)
        if order.status == "confirmed":
            orders.set_status(session, order, "shipped", "shipped", "test", "test shipment")
        orders.set_status(session, order, "delivered", "delivered", "test", "test delivery")
        session.flush()
        return session.scalar(
            select(func.max(OrderHistory.at)).where(
                OrderHistory.order_id == order.id, OrderHistory.to_status == "delivered"
            )
        )


def rules(*entries: dict[str, Any], ticket_below: int | None = None) -> CareRules:
    reviews = {} if ticket_below is None else {"ticket_below": ticket_below}
    return care_rules_from({"rules": list(entries)}, reviews)


def sweep(
    runtime: Runtime, now: datetime, found: CareRules | None = None, slug: str = "acme"
) -> dict[str, int]:
    """One care sweep of the tenant at ``now``, committed (its events enqueued after)."""
    chosen = found if found is not None else runtime.tenant_settings(slug).care
    with runtime.transaction() as session:
        return care.sweep(session, tenant_id(runtime, slug), chosen, now)


def emitted(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    with runtime.transaction() as session:
        return [
            e.payload
            for e in session.scalars(select(Event).where(Event.name == name).order_by(Event.id))
        ]


def sends(runtime: Runtime) -> list[tuple[str, str, str, str | None]]:
    """(rule, subject, status, reason) of every care send, oldest first."""
    with runtime.transaction() as session:
        return [
            (s.rule, s.subject, s.status, s.reason)
            for s in session.scalars(select(CareSend).order_by(CareSend.id))
        ]


def order_id(runtime: Runtime, number: str, slug: str = "acme") -> int:
    with runtime.transaction() as session:
        found = session.scalar(select(Order.id).where(
            Order.tenant_id == tenant_id(runtime, slug), Order.number == number))
        assert found is not None
        return found
