"""What the tracking and delivery-exception tests share: carriers that track (the Stub, one
with small batches, one that takes signed pushes), and shipments made straight in the
database — an order made through the API, a carrier account row, a shipment row with the
order's lines — so these tests do not depend on buying labels."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from conftest import ORDER, Api
from sqlalchemy import select

from hub import hookimpl
from hub.core import orders
from hub.core.adapters import (
    InboundRequest,
    PayloadError,
    StubCarrier,
    TrackingEvent,
    TrackingUpdate,
)
from hub.core.models import (
    Allocation,
    CarrierAccount,
    Order,
    Shipment,
    ShipmentItem,
    Tenant,
)
from hub.runtime import Runtime

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday morning
PUSH_SECRET = "push-secret"


def scan(
    status: str, hour: float, *, reason: str | None = None, code: str | None = None, text: str = ""
) -> TrackingEvent:
    """A scan ``hour`` hours after T0; its raw code defaults to the status (in upper case)."""
    return TrackingEvent(
        status, T0 + timedelta(hours=hour), code or status.upper(), text, reason, "Memphis, TN"
    )


class SmallBatches(StubCarrier):
    """The Stub carrier taking two tracking numbers per call."""

    name = "stub-small"
    track_batch = 2


class PushCarrier(StubCarrier):
    """Tracks like the Stub and takes pushes: ``{"updates": [{"tracking_number",
    "estimated_delivery"?, "events": [{"status", "at", "code", "text"?, "reason"?}]}]}``,
    signed with HMAC-SHA256 of the body in ``X-Track-Signature`` (the ``secret`` setting)."""

    name = "stub-push"
    capabilities = StubCarrier.capabilities | {"tracking_push"}
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"secret": {"type": "string"}},
        "required": ["secret"],
    }

    def verify_push(self, request: InboundRequest) -> bool:
        expected = hmac.new(self.settings["secret"].encode(), request.body, "sha256").hexdigest()
        return hmac.compare_digest(request.header("X-Track-Signature"), expected)

    def parse_push(self, request: InboundRequest) -> list[TrackingUpdate]:
        try:
            return [
                TrackingUpdate(
                    u["tracking_number"],
                    tuple(
                        TrackingEvent(
                            e["status"],
                            datetime.fromisoformat(e["at"]),
                            e["code"],
                            e.get("text", ""),
                            e.get("reason"),
                        )
                        for e in u["events"]
                    ),
                    date.fromisoformat(u["estimated_delivery"])
                    if u.get("estimated_delivery")
                    else None,
                )
                for u in json.loads(request.body)["updates"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"not a stub push: {exc}") from None


def signed(body: dict[str, Any], secret: str = PUSH_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Track-Signature": signature, "Content-Type": "application/json"}


class TrackingCarriers:
    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier, SmallBatches, PushCarrier]


_numbers = itertools.count(1)


class Shipping:
    """Carrier accounts and shipments of one tenant, made straight in the database."""

    def __init__(self, runtime: Runtime, api: Api, tenant: str = "acme") -> None:
        self.runtime, self.api, self.tenant = runtime, api, tenant
        if runtime.plugins.pm.get_plugin("tracking-carriers") is None:
            runtime.plugins.register(TrackingCarriers, "tracking-carriers")

    def tenant_id(self) -> int:
        with self.runtime.transaction() as session:
            found = session.scalar(select(Tenant.id).where(Tenant.slug == self.tenant))
            assert found is not None
            return found

    def account(self, plugin: str = "stub", name: str | None = None) -> int:
        settings = {"secret": PUSH_SECRET} if plugin == "stub-push" else {}
        tenant_id = self.tenant_id()
        with self.runtime.transaction() as session:
            account = CarrierAccount(
                tenant_id=tenant_id,
                plugin=plugin,
                name=name or f"{plugin}-{next(_numbers)}",
                settings=settings,
                services=None,
                enabled=True,
                source="api",
            )
            session.add(account)
            session.flush()
            return account.id

    def order(self, token: str | None = None) -> str:
        status, order = self.api.post("/orders", ORDER, token=token)
        assert status == 201, order
        assert order["status"] == "confirmed", order
        return order["number"]

    def shipment(
        self,
        account_id: int,
        number: str | None = None,
        *,
        created_at: datetime = T0,
        next_check_at: datetime | None = T0,
        estimated: date | None = None,
        promised: date | None = None,
        tracking_number: str | None = None,
    ) -> int:
        """A shipment of all the order's lines (a new order unless ``number``); the order
        becomes shipped, as buying the label would make it."""
        number = number or self.order()
        with self.runtime.transaction() as session:
            account = session.get(CarrierAccount, account_id)
            assert account is not None
            order = session.scalar(
                select(Order).where(Order.tenant_id == account.tenant_id, Order.number == number)
            )
            assert order is not None
            warehouse_id = session.scalar(
                select(Allocation.warehouse_id).where(Allocation.order_id == order.id).limit(1)
            )
            shipment = Shipment(
                tenant_id=order.tenant_id,
                order_id=order.id,
                warehouse_id=warehouse_id,
                carrier_account_id=account.id,
                carrier=account.plugin,
                service="standard",
                tracking_number=tracking_number or f"TRK{next(_numbers):06d}",
                status="created",
                estimated_delivery=estimated,
                promised_delivery=promised,
                next_check_at=next_check_at,
                created_at=created_at,
                updated_at=created_at,
                items=[
                    ShipmentItem(
                        tenant_id=order.tenant_id,
                        product_id=line.product_id,
                        sku=line.sku,
                        quantity=line.quantity,
                    )
                    for line in order.lines
                ],
            )
            session.add(shipment)
            if order.status == "confirmed":
                orders.set_status(session, order, "shipped", "shipped", "test", "test shipment")
            session.flush()
            return shipment.id

    def get(self, shipment_id: int) -> Shipment:
        with self.runtime.transaction() as session:
            found = session.get(Shipment, shipment_id)
            assert found is not None
            return found

    def order_status(self, shipment_id: int) -> str:
        with self.runtime.transaction() as session:
            return session.scalar(
                select(Order.status)
                .join(Shipment, Shipment.order_id == Order.id)
                .where(Shipment.id == shipment_id)
            )
