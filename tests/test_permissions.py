"""Every API route against every kind of caller: no token, a bad token, each role of tenant
acme, and the admin of another tenant.

The table ``SAMPLES`` holds one valid request per route; a route added without a sample
fails ``test_every_route_answers_each_caller_as_its_permission_says``.
"""

from __future__ import annotations

import hmac
import io
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from care_support import deliver
from conftest import ORDER, ROLES, Api
from sqlalchemy import select
from tracking_support import Shipping

from hub import hookimpl
from hub.core import notifications, tracking
from hub.core.adapters import PollPage, StubCarrier, StubChannel, TrackingEvent, TrackingUpdate
from hub.core.auth import ROLES as PERMISSIONS_OF
from hub.core.db import utcnow
from hub.core.models import (
    CareSend,
    DeliveryException,
    Event,
    NotificationDelivery,
    Shipment,
    Tenant,
    Ticket,
    TicketSurvey,
)
from hub.web.api import blueprint
from hub.web.api.framework import ROUTES

blueprint()  # imports the route modules, which fills ROUTES

ACME_PREFIX = "ACME-"
ACME_SKU = "ACME-ONLY"
ACME_WAREHOUSE = "ACMEWH"
ACME_USER = "acme-only-user"
ACME_TOKEN = "acme-only-token"
ACME_EMAIL = "buyer@acme-only.test"
ACME_REFERENCE = "ACME-REF"
ACME_ORDER = {
    **ORDER,
    "lines": [{"sku": "SKU-A", "quantity": 2}, {"sku": "SKU-B", "quantity": 1}],
    "customer": {"email": ACME_EMAIL, "name": "Acme Buyer"},
}
ACME_CONNECTION = "acme-only-shop"
ACME_DELIVERY = "acme-only-delivery"
ACME_TICKET = "acme-only-ticket"
ACME_LOST = "acme-only-lost-parcel"
ACME_CARRIER_ACCOUNT = "acme-only-carrier"
ACME_NOTIFIER = "acme-only-notifier"
ACME_RECIPIENT = "stock@acme-only.test"
PHOTO = b"GIF89a" + b"\x00" * 20  # an image by its first bytes
ACME_REVIEW = "acme-only-review"
ACME_CARE_RULE = "acme-only-rule"
ACME_SURVEY = "acme-only-survey"
GARBAGE_TOKEN = "oh_not-a-token-anyone-was-given"


class StubFeed(StubChannel):
    """A pull channel with nothing new, so the poll route has a connection to accept."""

    name = "stub-feed"
    capabilities = frozenset({"pull"})

    def poll(self, cursor: str | None) -> Iterator[PollPage]:
        yield PollPage([], cursor)


class StubChannels:
    """Makes the Stub channels and carrier available, as a third-party plugin would."""

    @staticmethod
    @hookimpl
    def register_channels() -> list[type]:
        return [StubChannel, StubFeed]

    @staticmethod
    @hookimpl
    def register_carriers() -> list[type]:
        return [StubCarrier]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """Acme numbers its orders ACME-…, so no order number of acme exists in the other tenant
    (which keeps SO-…) and a 404 for the stranger can only come from tenant scoping."""
    path = tmp_path / "config"
    (path / "tenants").mkdir(parents=True)
    # Orders above 1,000 wait for an operator's approval (the approve / reject samples); the
    # admin who creates the samples approves them too, so four eyes is off here. The service
    # role may refund the samples' returns.
    (path / "tenants" / "acme.toml").write_text(
        f'order_number_prefix = "{ACME_PREFIX}"\n'
        "[rules]\nfour_eyes = false\n"
        '[[rules.approval]]\nabove = "1000"\nrole = "operator"\n'
        '[service]\nrefund_limit = "1000"\n'
        f'[[notifiers]]\nname = "{ACME_NOTIFIER}"\nplugin = "log"\nevents = ["stock_low"]\n'
    )
    return path


@dataclass
class Request:
    method: str
    path: str  # below /api/v1
    body: Any = None
    csv: str | None = None
    upload: bytes | None = None  # a multipart 'file' part


class Acme:
    """Records of tenant acme, made through the API with its admin token."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.serial = itertools.count(1)
        self.ok(
            "POST",
            "/products",
            {"sku": ACME_SKU, "name": "Only at Acme", "low_stock_threshold": 100},
        )
        self.ok("POST", "/warehouses", {"code": ACME_WAREHOUSE, "name": "Acme only"})
        self.ok(
            "POST", "/users", {"username": ACME_USER, "password": "password-x", "role": "service"}
        )
        self.ok("POST", f"/users/{ACME_USER}/tokens", {"name": ACME_TOKEN})
        # Plenty of stock, so every order below is confirmed and outbound never runs short;
        # ACME-ONLY stays under its threshold, which opens a low-stock alert.
        self.ok(
            "POST",
            "/stock/inbound",
            {
                "warehouse": "MAIN",
                "reference": ACME_REFERENCE,
                "items": [
                    {"sku": "SKU-A", "quantity": 1000},
                    {"sku": "SKU-B", "quantity": 1000},
                    {"sku": "SKU-C", "quantity": 1000},
                    {"sku": ACME_SKU, "quantity": 5},
                ],
            },
        )
        self.order_number = self.order()
        assert self.order_number.startswith(ACME_PREFIX)
        api.client.application.extensions["orderhub"].plugins.register(StubChannels, "stubs")
        self.connection_id = self.connection(ACME_CONNECTION)
        self.feed_id = self.ok(
            "POST",
            "/connections",
            {"plugin": "stub-feed", "name": "acme-feed", "settings": {"secret": "shh"}},
        )["id"]
        # One delivery waits in the inbox (no worker runs here).
        body = b'{"id": "1", "updated_at": "2026-01-01T00:00:00+00:00", "lines": []}'
        signature = hmac.new(b"shh", body, "sha256").hexdigest()
        response = api.client.post(
            f"/hooks/acme/{self.connection_id}",
            data=body,
            headers={"X-Stub-Signature": signature, "X-Stub-Delivery": ACME_DELIVERY},
        )
        assert response.status_code == 200, response.get_json()
        entries = self.ok("GET", "/inbox")["items"]
        self.inbox_id = entries[0]["id"]
        self.carrier_account_id = self.carrier_account(ACME_CARRIER_ACCOUNT)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, out = self.api.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, out)
        return out

    def order(self) -> str:
        return self.ok("POST", "/orders", ACME_ORDER)["number"]

    def awaiting_approval(self) -> str:
        order = self.ok(
            "POST",
            "/orders",
            {**ACME_ORDER, "lines": [{"sku": "SKU-A", "quantity": 1, "unit_price": "1500.00"}]},
        )
        assert order["status"] == "awaiting_approval", order
        return order["number"]

    def product(self) -> str:
        sku = f"{ACME_PREFIX}P{next(self.serial)}"
        self.ok("POST", "/products", {"sku": sku, "name": "Fresh", "price": "1.00"})
        return sku

    def warehouse(self) -> str:
        code = f"{ACME_PREFIX}W{next(self.serial)}"
        self.ok("POST", "/warehouses", {"code": code, "name": "Fresh"})
        return code

    def user(self) -> str:
        username = f"acme-user-{next(self.serial)}"
        self.ok(
            "POST", "/users", {"username": username, "password": "password-x", "role": "operator"}
        )
        return username

    def token(self) -> int:
        return self.ok("POST", f"/users/{ACME_USER}/tokens", {"name": "to-revoke"})["id"]

    def connection(self, name: str | None = None) -> int:
        body = {
            "plugin": "stub",
            "name": name or self.unique("shop-"),
            "settings": {"secret": "shh"},
        }
        return self.ok("POST", "/connections", body)["id"]

    def shopify_connection(self) -> int:
        """A connection whose plugin offers a test delivery (the stub's does not)."""
        body = {"plugin": "shopify", "name": self.unique("sh-"), "settings": {"secret": "shh"}}
        return self.ok("POST", "/connections", body)["id"]

    def ship(self) -> dict[str, Any]:
        """A fresh shipment of a fresh acme order (its tracking number is acme's alone)."""
        body = {"carrier_account": self.carrier_account_id, "service": "standard"}
        shipped = self.ok("POST", f"/orders/{self.order()}/shipments", body)
        self.tracking_number = shipped["tracking_number"]
        return shipped

    def ret(self) -> dict[str, Any]:
        """A fresh return of one SKU-A of a fresh shipped acme order."""
        body = {
            "order": self.ship()["order"],
            "lines": [{"sku": "SKU-A", "quantity": 1}],
            "reason": "too big",
        }
        made = self.ok("POST", "/returns", body)
        self.return_number = made["number"]
        return made

    def received(self) -> dict[str, Any]:
        """A fresh return whose SKU-A came back."""
        made = self.ret()
        body = {"lines": [{"sku": "SKU-A", "quantity": 1, "condition": "sellable"}]}
        return self.ok("POST", f"/returns/{made['id']}/receive", body)

    def delivery(self) -> int:
        """A fresh delivery waiting in acme's inbox (no worker runs here): its id."""
        key = self.unique("delivery-")
        body = b'{"id": "1", "updated_at": "2026-01-01T00:00:00+00:00", "lines": []}'
        response = self.api.client.post(
            f"/hooks/acme/{self.connection_id}",
            data=body,
            headers={
                "X-Stub-Signature": hmac.new(b"shh", body, "sha256").hexdigest(),
                "X-Stub-Delivery": key,
            },
        )
        assert response.status_code == 200, response.get_json()
        return next(e["id"] for e in self.ok("GET", "/inbox")["items"] if e["delivery_key"] == key)

    def carrier_account(self, name: str | None = None) -> int:
        body = {"plugin": "stub", "name": name or self.unique("carrier-"), "settings": {}}
        return self.ok("POST", "/carrier-accounts", body)["id"]

    def unique(self, stem: str) -> str:
        return f"{stem}{next(self.serial)}"

    def delivered(self) -> str:
        """A fresh acme order, delivered: its lines can be reviewed."""
        number = self.order()
        deliver(self.api.client.application.extensions["orderhub"], number)
        return number

    def review(self, hidden: bool = False) -> int:
        """A fresh review of acme's (its title is acme's alone)."""
        body = {"order": self.delivered(), "sku": "SKU-A", "rating": 5, "title": ACME_REVIEW}
        review_id = int(self.ok("POST", "/reviews", body)["id"])
        if hidden:
            self.ok("POST", f"/reviews/{review_id}/hide", {"reason": "spam"})
        return review_id

    def photo(self) -> str:
        """The path of a photo on a fresh review of acme's."""
        review_id = self.review()
        response = self.api.client.post(
            f"/api/v1/reviews/{review_id}/photos",
            data={"file": (io.BytesIO(PHOTO), "parcel.gif")},
            headers={"Authorization": f"Bearer {self.api.token}"},
            content_type="multipart/form-data")
        assert response.status_code == 201, response.get_json()
        [photo] = response.get_json()["photos"]
        return photo["url"].removeprefix("/api/v1")

    def ticket(self) -> str:
        """A fresh ticket of acme's, about one of its orders (its subject is acme's alone)."""
        body = {"kind": "question", "subject": ACME_TICKET, "body": "Where is it?",
                "order": self.order_number, "customer": {"email": "ann@example.com"}}
        return self.ok("POST", "/tickets", body)["id"]

    def attachment(self) -> str:
        """The path of a file on a fresh ticket of acme's."""
        number = self.ticket()
        response = self.api.client.post(
            f"/api/v1/tickets/{number}/attachments",
            data={"file": (io.BytesIO(b"acme's receipt"), "receipt.txt")},
            headers={"Authorization": f"Bearer {self.api.token}"},
            content_type="multipart/form-data")
        assert response.status_code == 201, response.get_json()
        return f"/tickets/{number}/attachments/{response.get_json()['id']}"


@dataclass
class Sample:
    """How to call a route. ``scope`` says what the other tenant's admin must get:
    'record' — the request names a record of acme → 404;
    'list' — 2xx, and ``marker`` (in acme's answer) is absent from the stranger's;
    'own' — the request acts on the caller's own tenant → 2xx."""

    make: Callable[[Acme], Request]
    scope: str
    marker: Callable[[Acme], str] | None = None


def _csv(a: Acme) -> Request:
    return Request(
        "POST", "/stock/import?kind=inbound", csv="warehouse,sku,quantity\nMAIN,SKU-C,1\n"
    )


def _lost_parcel(a: Acme) -> int:
    """An open delivery exception of acme's: a shipment its carrier reports lost."""
    runtime = a.api.client.application.extensions["orderhub"]
    shipping = Shipping(runtime, a.api)
    shipment_id = shipping.shipment(a.carrier_account_id, a.order())
    with runtime.transaction() as session:
        shipment = session.get(Shipment, shipment_id)
        lost = TrackingEvent("exception", utcnow(), "LOST", ACME_LOST, "lost")
        tracking.apply(session, shipment, TrackingUpdate(shipment.tracking_number, (lost,)), "poll")
        return session.scalar(
            select(DeliveryException.id).where(DeliveryException.shipment_id == shipment_id)
        )


def _failed_notification(a: Acme) -> int:
    """A message of acme's that failed (its notifier's endpoint refused it for good)."""
    runtime = a.api.client.application.extensions["orderhub"]
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        event = Event(tenant_id=tenant_id, name="stock_low", payload={"sku": ACME_SKU})
        session.add(event)
        session.flush()
        failed = NotificationDelivery(
            tenant_id=tenant_id,
            event_id=event.id,
            notifier=ACME_NOTIFIER,
            plugin="log",
            recipient=ACME_RECIPIENT,
            message_id=notifications.new_message_id(),
            status="failed",
            attempts=1,
            last_error="refused",
        )
        session.add(failed)
        session.flush()
        return failed.id


def _care_records(a: Acme) -> None:
    """A care send and an answered survey of acme's, written as the sweep and a customer
    would leave them."""
    runtime = a.api.client.application.extensions["orderhub"]
    number = a.ticket()
    with runtime.transaction() as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))
        ticket = session.scalar(select(Ticket).where(Ticket.tenant_id == tenant_id,
                                                     Ticket.number == number))
        session.add(CareSend(tenant_id=tenant_id, rule=ACME_CARE_RULE, kind="win_back",
                             subject=f"customer:{ticket.customer_id}:{number}",
                             customer_id=ticket.customer_id, status="emitted"))
        session.add(TicketSurvey(tenant_id=tenant_id, ticket_id=ticket.id, rating=5,
                                 comment=ACME_SURVEY))


def _exceptions(a: Acme) -> Request:
    _lost_parcel(a)  # at least one to list
    return Request("GET", "/exceptions?per_page=500&status=open")


def _resolve(a: Acme) -> Request:
    return Request("POST", f"/exceptions/{_lost_parcel(a)}/resolve", {"resolution": "close"})


def _merge(a: Acme) -> Request:
    return Request("POST", "/orders/merge", {"numbers": [a.order(), a.order()]})


SAMPLES: dict[tuple[str, str], Sample] = {
    # orders
    ("POST", "/orders"): Sample(lambda a: Request("POST", "/orders", ORDER), "own"),
    ("GET", "/orders"): Sample(
        lambda a: Request("GET", "/orders?per_page=500"), "list", lambda a: a.order_number
    ),
    ("GET", "/orders/stats"): Sample(lambda a: Request("GET", "/orders/stats"), "own"),
    ("GET", "/orders/<number>"): Sample(
        lambda a: Request("GET", f"/orders/{a.order_number}"), "record"
    ),
    ("PATCH", "/orders/<number>"): Sample(
        lambda a: Request("PATCH", f"/orders/{a.order()}", {"note": "call first"}), "record"
    ),
    ("POST", "/orders/<number>/cancel"): Sample(
        lambda a: Request("POST", f"/orders/{a.order()}/cancel", {"reason": "test"}), "record"
    ),
    ("POST", "/orders/<number>/approve"): Sample(
        lambda a: Request("POST", f"/orders/{a.awaiting_approval()}/approve", {}), "record"
    ),
    ("POST", "/orders/<number>/reject"): Sample(
        lambda a: Request("POST", f"/orders/{a.awaiting_approval()}/reject", {"reason": "test"}),
        "record",
    ),
    ("POST", "/orders/<number>/allocate"): Sample(
        lambda a: Request("POST", f"/orders/{a.order()}/allocate"), "record"
    ),
    ("POST", "/orders/merge"): Sample(_merge, "record"),
    ("POST", "/orders/<number>/split"): Sample(
        lambda a: Request(
            "POST", f"/orders/{a.order()}/split", {"lines": [{"sku": "SKU-A", "quantity": 1}]}
        ),
        "record",
    ),
    ("GET", "/orders/<number>/history"): Sample(
        lambda a: Request("GET", f"/orders/{a.order_number}/history"), "record"
    ),
    # catalogue
    ("GET", "/products"): Sample(
        lambda a: Request("GET", "/products?per_page=500"), "list", lambda a: ACME_SKU
    ),
    ("POST", "/products"): Sample(
        lambda a: Request("POST", "/products", {"sku": a.unique("NEW-"), "name": "New"}), "own"
    ),
    ("GET", "/products/<sku>"): Sample(lambda a: Request("GET", f"/products/{ACME_SKU}"), "record"),
    ("PATCH", "/products/<sku>"): Sample(
        lambda a: Request("PATCH", f"/products/{a.product()}", {"name": "Renamed"}), "record"
    ),
    ("DELETE", "/products/<sku>"): Sample(
        lambda a: Request("DELETE", f"/products/{a.product()}"), "record"
    ),
    ("GET", "/warehouses"): Sample(
        lambda a: Request("GET", "/warehouses?per_page=500"), "list", lambda a: ACME_WAREHOUSE
    ),
    ("POST", "/warehouses"): Sample(
        lambda a: Request("POST", "/warehouses", {"code": a.unique("NEW"), "name": "New"}), "own"
    ),
    ("GET", "/warehouses/<code>"): Sample(
        lambda a: Request("GET", f"/warehouses/{ACME_WAREHOUSE}"), "record"
    ),
    ("PATCH", "/warehouses/<code>"): Sample(
        lambda a: Request("PATCH", f"/warehouses/{a.warehouse()}", {"priority": 7}), "record"
    ),
    ("DELETE", "/warehouses/<code>"): Sample(
        lambda a: Request("DELETE", f"/warehouses/{a.warehouse()}"), "record"
    ),
    # stock
    ("GET", "/stock"): Sample(
        lambda a: Request("GET", "/stock?per_page=500"), "list", lambda a: ACME_SKU
    ),
    ("POST", "/stock/inbound"): Sample(
        lambda a: Request(
            "POST",
            "/stock/inbound",
            {"warehouse": "MAIN", "items": [{"sku": "SKU-C", "quantity": 1}]},
        ),
        "own",
    ),
    ("POST", "/stock/outbound"): Sample(
        lambda a: Request(
            "POST",
            "/stock/outbound",
            {"warehouse": "MAIN", "items": [{"sku": "SKU-C", "quantity": 1}]},
        ),
        "own",
    ),
    ("POST", "/stock/adjust"): Sample(
        lambda a: Request(
            "POST",
            "/stock/adjust",
            {"warehouse": "MAIN", "reason": "recount", "items": [{"sku": "SKU-C", "delta": -1}]},
        ),
        "own",
    ),
    ("POST", "/stock/import"): Sample(_csv, "own"),
    ("GET", "/stock/ledger"): Sample(
        lambda a: Request("GET", f"/stock/ledger?reference={ACME_REFERENCE}"),
        "list",
        lambda a: ACME_SKU,
    ),
    ("GET", "/stock/alerts"): Sample(
        lambda a: Request("GET", "/stock/alerts"), "list", lambda a: ACME_SKU
    ),
    # admin
    ("GET", "/me"): Sample(lambda a: Request("GET", "/me"), "own"),
    ("PATCH", "/me"): Sample(lambda a: Request("PATCH", "/me", {"available": True}), "own"),
    ("GET", "/users"): Sample(lambda a: Request("GET", "/users"), "list", lambda a: ACME_USER),
    ("POST", "/users"): Sample(
        lambda a: Request(
            "POST",
            "/users",
            {"username": a.unique("new-user-"), "password": "password-x", "role": "analyst"},
        ),
        "own",
    ),
    ("PATCH", "/users/<username>"): Sample(
        lambda a: Request("PATCH", f"/users/{a.user()}", {"full_name": "Renamed"}), "record"
    ),
    ("POST", "/users/<username>/tokens"): Sample(
        lambda a: Request("POST", f"/users/{ACME_USER}/tokens", {"name": "ci"}), "record"
    ),
    ("POST", "/users/<username>/tokens/revoke"): Sample(
        lambda a: Request("POST", f"/users/{a.user()}/tokens/revoke"), "record"
    ),
    ("GET", "/tokens"): Sample(lambda a: Request("GET", "/tokens"), "list", lambda a: ACME_TOKEN),
    ("POST", "/tokens/<int:token_id>/revoke"): Sample(
        lambda a: Request("POST", f"/tokens/{a.token()}/revoke"), "record"
    ),
    ("GET", "/audit"): Sample(
        lambda a: Request("GET", f"/audit?entity_id={ACME_SKU}"), "list", lambda a: ACME_SKU
    ),
    ("GET", "/customers"): Sample(
        lambda a: Request("GET", "/customers?per_page=500"), "list", lambda a: ACME_EMAIL
    ),
    ("GET", "/plugins"): Sample(lambda a: Request("GET", "/plugins"), "own"),
    ("POST", "/connections"): Sample(
        lambda a: Request(
            "POST",
            "/connections",
            {"plugin": "stub", "name": a.unique("s-"), "settings": {"secret": "x"}},
        ),
        "own",
    ),
    ("GET", "/connections"): Sample(
        lambda a: Request("GET", "/connections"), "list", lambda a: ACME_CONNECTION
    ),
    ("GET", "/connections/<int:connection_id>"): Sample(
        lambda a: Request("GET", f"/connections/{a.connection_id}"), "record"
    ),
    ("POST", "/connections/<int:connection_id>/pause"): Sample(
        lambda a: Request("POST", f"/connections/{a.connection()}/pause"), "record"
    ),
    ("POST", "/connections/<int:connection_id>/resume"): Sample(
        lambda a: Request("POST", f"/connections/{a.connection()}/resume"), "record"
    ),
    ("POST", "/connections/<int:connection_id>/test"): Sample(
        lambda a: Request("POST", f"/connections/{a.shopify_connection()}/test"), "record"
    ),
    ("POST", "/connections/<int:connection_id>/poll"): Sample(
        lambda a: Request("POST", f"/connections/{a.feed_id}/poll"), "record"
    ),
    ("POST", "/connections/<int:connection_id>/sku-mappings"): Sample(
        lambda a: Request(
            "POST",
            f"/connections/{a.connection_id}/sku-mappings",
            {"channel_ref": a.unique("ref-"), "sku": "SKU-A"},
        ),
        "record",
    ),
    ("GET", "/channels/<plugin>/schema"): Sample(
        lambda a: Request("GET", "/channels/storefront/schema"), "own"
    ),
    ("GET", "/inbox"): Sample(lambda a: Request("GET", "/inbox"), "list", lambda a: ACME_DELIVERY),
    ("POST", "/inbox/<int:entry_id>/replay"): Sample(
        lambda a: Request("POST", f"/inbox/{a.inbox_id}/replay"), "record"
    ),
    ("POST", "/inbox/<int:entry_id>/discard"): Sample(
        lambda a: Request("POST", f"/inbox/{a.delivery()}/discard", {"reason": "a test"}),
        "record",
    ),
    # logistics
    ("POST", "/orders/<number>/shipments"): Sample(
        lambda a: Request(
            "POST",
            f"/orders/{a.order()}/shipments",
            {"carrier_account": a.carrier_account_id, "service": "standard"},
        ),
        "record",
    ),
    ("GET", "/shipments"): Sample(
        lambda a: (a.ship(), Request("GET", "/shipments?per_page=500"))[1],
        "list",
        lambda a: a.tracking_number,
    ),
    ("GET", "/shipments/<int:shipment_id>"): Sample(
        lambda a: Request("GET", f"/shipments/{a.ship()['id']}"), "record"
    ),
    ("GET", "/shipments/<int:shipment_id>/events"): Sample(
        lambda a: Request("GET", f"/shipments/{a.ship()['id']}/events"), "record"
    ),
    ("POST", "/shipments/<int:shipment_id>/cancel"): Sample(
        lambda a: Request("POST", f"/shipments/{a.ship()['id']}/cancel"), "record"
    ),
    ("POST", "/shipments/<int:shipment_id>/events"): Sample(
        lambda a: Request("POST", f"/shipments/{a.ship()['id']}/events", {"status": "in_transit"}),
        "record",
    ),
    ("POST", "/shipments/<int:shipment_id>/track"): Sample(
        lambda a: Request("POST", f"/shipments/{a.ship()['id']}/track"), "record"
    ),
    ("POST", "/shipments/<int:shipment_id>/exceptions"): Sample(
        lambda a: Request(
            "POST",
            f"/shipments/{a.ship()['id']}/exceptions",
            {"kind": "lost", "note": "the customer says it never came"},
        ),
        "record",
    ),
    ("GET", "/carrier-accounts"): Sample(
        lambda a: Request("GET", "/carrier-accounts"), "list", lambda a: ACME_CARRIER_ACCOUNT
    ),
    ("POST", "/carrier-accounts"): Sample(
        lambda a: Request(
            "POST",
            "/carrier-accounts",
            {"plugin": "stub", "name": a.unique("carrier-"), "settings": {"price": "4.00"}},
        ),
        "own",
    ),
    ("GET", "/carrier-accounts/<int:account_id>"): Sample(
        lambda a: Request("GET", f"/carrier-accounts/{a.carrier_account_id}"), "record"
    ),
    ("PATCH", "/carrier-accounts/<int:account_id>"): Sample(
        lambda a: Request("PATCH", f"/carrier-accounts/{a.carrier_account()}", {"enabled": False}),
        "record",
    ),
    ("POST", "/rates"): Sample(
        lambda a: Request("POST", "/rates", {"order": a.order_number}), "record"
    ),
    # tracking
    ("GET", "/exceptions"): Sample(_exceptions, "list", lambda a: ACME_LOST),
    ("POST", "/exceptions/<int:exception_id>/resolve"): Sample(_resolve, "record"),
    ("GET", "/reports/<name>"): Sample(lambda a: Request("GET", "/reports/orders"), "own"),
    # tickets
    ("POST", "/tickets"): Sample(
        lambda a: Request("POST", "/tickets", {"kind": "question", "subject": "Hello?",
                                               "body": "Anyone?",
                                               "customer": {"email": "bo@example.com"}}),
        "own",
    ),
    ("GET", "/tickets"): Sample(
        lambda a: (a.ticket(), Request("GET", "/tickets?per_page=500"))[1],
        "list",
        lambda a: ACME_TICKET,
    ),
    ("GET", "/tickets/<number>"): Sample(
        lambda a: Request("GET", f"/tickets/{a.ticket()}"), "record"
    ),
    ("PATCH", "/tickets/<number>"): Sample(
        lambda a: Request("PATCH", f"/tickets/{a.ticket()}", {"priority": "high"}), "record"
    ),
    ("POST", "/tickets/<number>/attachments"): Sample(
        lambda a: Request("POST", f"/tickets/{a.ticket()}/attachments", upload=b"a receipt"),
        "record",
    ),
    ("GET", "/tickets/<number>/attachments/<int:attachment_id>"): Sample(
        lambda a: Request("GET", a.attachment()), "record"
    ),
    ("POST", "/tickets/<number>/messages"): Sample(
        lambda a: Request("POST", f"/tickets/{a.ticket()}/messages", {"body": "On its way."}),
        "record",
    ),
    # notifications
    ("GET", "/notifications"): Sample(
        lambda a: (_failed_notification(a), Request("GET", "/notifications?status=failed"))[1],
        "list",
        lambda a: ACME_RECIPIENT,
    ),
    ("POST", "/notifications/<int:notification_id>/replay"): Sample(
        lambda a: Request("POST", f"/notifications/{_failed_notification(a)}/replay"), "record"
    ),
    ("GET", "/notifiers"): Sample(
        lambda a: Request("GET", "/notifiers"), "list", lambda a: ACME_NOTIFIER
    ),
    ("POST", "/notifiers/<name>/enable"): Sample(
        lambda a: Request("POST", f"/notifiers/{ACME_NOTIFIER}/enable"), "record"
    ),
    # returns
    ("POST", "/returns"): Sample(
        lambda a: Request(
            "POST",
            "/returns",
            {"order": a.ship()["order"], "lines": [{"sku": "SKU-A", "quantity": 2}], "reason": "x"},
        ),
        "record",
    ),
    ("GET", "/returns"): Sample(
        lambda a: (a.ret(), Request("GET", "/returns?per_page=500"))[1],
        "list",
        lambda a: a.return_number,
    ),
    ("GET", "/returns/<int:return_id>"): Sample(
        lambda a: Request("GET", f"/returns/{a.ret()['id']}"), "record"
    ),
    ("POST", "/returns/<int:return_id>/receive"): Sample(
        lambda a: Request(
            "POST",
            f"/returns/{a.ret()['id']}/receive",
            {"lines": [{"sku": "SKU-A", "quantity": 1, "condition": "damaged"}]},
        ),
        "record",
    ),
    ("POST", "/returns/<int:return_id>/label"): Sample(
        lambda a: Request("POST", f"/returns/{a.ret()['id']}/label", {}), "record"
    ),
    ("POST", "/returns/<int:return_id>/refund"): Sample(
        lambda a: Request("POST", f"/returns/{a.received()['id']}/refund", {}), "record"
    ),
    ("POST", "/returns/<int:return_id>/cancel"): Sample(
        lambda a: Request("POST", f"/returns/{a.ret()['id']}/cancel", {"reason": "x"}), "record"
    ),
    ("POST", "/returns/<int:return_id>/close"): Sample(
        lambda a: Request("POST", f"/returns/{a.received()['id']}/close", {}), "record"
    ),
    # reviews and care
    ("POST", "/reviews"): Sample(
        lambda a: Request("POST", "/reviews", {"order": a.delivered(), "sku": "SKU-B",
                                               "rating": 4}),
        "record",
    ),
    ("GET", "/reviews"): Sample(
        lambda a: (a.review(), Request("GET", "/reviews?per_page=500"))[1],
        "list",
        lambda a: ACME_REVIEW,
    ),
    ("GET", "/reviews/<int:review_id>"): Sample(
        lambda a: Request("GET", f"/reviews/{a.review()}"), "record"
    ),
    ("POST", "/reviews/<int:review_id>/hide"): Sample(
        lambda a: Request("POST", f"/reviews/{a.review()}/hide", {"reason": "off_topic"}),
        "record",
    ),
    ("POST", "/reviews/<int:review_id>/show"): Sample(
        lambda a: Request("POST", f"/reviews/{a.review(hidden=True)}/show"), "record"
    ),
    ("POST", "/reviews/<int:review_id>/reply"): Sample(
        lambda a: Request("POST", f"/reviews/{a.review()}/reply", {"body": "Thank you!"}),
        "record",
    ),
    ("POST", "/reviews/<int:review_id>/photos"): Sample(
        lambda a: Request("POST", f"/reviews/{a.review()}/photos", upload=PHOTO), "record"
    ),
    ("GET", "/reviews/<int:review_id>/photos/<int:photo_id>"): Sample(
        lambda a: Request("GET", a.photo()), "record"
    ),
    ("DELETE", "/reviews/<int:review_id>/photos/<int:photo_id>"): Sample(
        lambda a: Request("DELETE", a.photo()), "record"
    ),
    ("GET", "/products/<sku>/rating"): Sample(
        lambda a: Request("GET", f"/products/{ACME_SKU}/rating"), "record"
    ),
    ("GET", "/care/sends"): Sample(
        lambda a: (_care_records(a), Request("GET", "/care/sends?per_page=500"))[1],
        "list",
        lambda a: ACME_CARE_RULE,
    ),
    ("GET", "/care/surveys"): Sample(
        lambda a: (_care_records(a), Request("GET", "/care/surveys?per_page=500"))[1],
        "list",
        lambda a: ACME_SURVEY,
    ),
}


def send(api: Api, req: Request, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if req.csv is not None:
        kwargs.update(data=req.csv, content_type="text/csv")
    elif req.upload is not None:
        kwargs.update(data={"file": (io.BytesIO(req.upload), "note.txt")},
                      content_type="multipart/form-data")
    elif req.body is not None:
        kwargs["json"] = req.body
    with api.client.open(f"/api/v1{req.path}", method=req.method, **kwargs) as response:
        return response.status_code, response.get_json(silent=True)


def test_every_route_has_a_sample():
    declared = {(r.method, r.rule) for r in ROUTES}
    assert not declared - SAMPLES.keys(), "routes without a sample request in SAMPLES"
    assert not SAMPLES.keys() - declared, "samples for routes that no longer exist"


def test_every_route_answers_each_caller_as_its_permission_says(api: Api):
    acme = Acme(api)
    missing = {(r.method, r.rule) for r in ROUTES} - SAMPLES.keys()
    assert not missing, f"add a sample request for {sorted(missing)}"
    wrong: list[str] = []

    def expect(who: str, req: Request, got: int, want: int, body: Any) -> None:
        if got != want:
            wrong.append(f"{req.method} {req.path} as {who}: {got}, expected {want} ({body})")

    for route in ROUTES:
        sample = SAMPLES[(route.method, route.rule)]
        for who, token in (("no token", None), ("a garbage token", GARBAGE_TOKEN)):
            req = sample.make(acme)
            status, body = send(api, req, token)
            expect(who, req, status, 401, body)
        for role in ROLES:
            req = sample.make(acme)
            status, body = send(api, req, api.tokens[role])
            allowed = route.permission is None or route.permission in PERMISSIONS_OF[role]
            expect(role, req, status, route.status if allowed else 403, body)
            if role == "admin" and sample.marker and sample.marker(acme) not in json.dumps(body):
                wrong.append(
                    f"{req.method} {req.path}: acme's {sample.marker(acme)!r} is not in"
                    " acme's own answer, so the stranger check below proves nothing"
                )
        req = sample.make(acme)
        status, body = send(api, req, api.tokens["stranger"])
        if sample.scope == "record":
            expect("the other tenant's admin", req, status, 404, body)
        else:
            expect("the other tenant's admin", req, status, route.status, body)
        if sample.scope == "list" and sample.marker(acme) in json.dumps(body):
            wrong.append(
                f"{req.method} {req.path}: the other tenant sees acme's {sample.marker(acme)!r}"
            )
    assert not wrong, "\n".join(wrong)


def test_a_deactivated_user_can_no_longer_use_their_token(api: Api):
    status, _ = api.post(
        "/users", {"username": "leaver", "password": "password-x", "role": "operator"}
    )
    assert status == 201
    status, issued = api.post("/users/leaver/tokens", {"name": "laptop"})
    assert status == 201
    token = issued["token"]
    status, me = api.get("/me", token=token)
    assert (status, me["username"]) == (200, "leaver")

    status, user = api.patch("/users/leaver", {"active": False})
    assert (status, user["active"]) == (200, False)
    assert api.get("/me", token=token)[0] == 401
    assert api.get("/orders", token=token)[0] == 401
    # Deactivation revoked the token: reactivating the user does not bring it back.
    assert api.patch("/users/leaver", {"active": True})[0] == 200
    assert api.get("/me", token=token)[0] == 401
    assert api.patch("/users/leaver", {"active": False})[0] == 200
    # A token issued after deactivation does not work either.
    status, issued = api.post("/users/leaver/tokens", {"name": "again"})
    if status == 201:
        assert api.get("/me", token=issued["token"])[0] == 401
    else:
        assert status == 409


SEND_A_TOKEN = "send an API token as 'Authorization: Bearer <token>'"
NOT_VALID = "the API token is not valid (unknown or revoked)"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, SEND_A_TOKEN),
        ("", SEND_A_TOKEN),
        ("Bearer", SEND_A_TOKEN),
        ("Bearer ", SEND_A_TOKEN),
        ("Bearer    ", SEND_A_TOKEN),
        ("Basic YWRtaW46YWRtaW4=", SEND_A_TOKEN),
        ("Token {token}", SEND_A_TOKEN),
        ("Bearer oh_not-a-token", NOT_VALID),
        ("Bearer {token} extra", NOT_VALID),
        ("Bearer {token}x", NOT_VALID),
        ("Bearer " + "a" * 501, NOT_VALID),
        # the scheme is case-insensitive and the token is taken as sent, spaces trimmed
        ("bearer {token}", None),
        ("BEARER  {token} ", None),
    ],
)
def test_the_authorization_header_is_read_exactly(api: Api, header: str | None,
                                                  message: str | None) -> None:
    headers = {} if header is None else {"Authorization": header.format(token=api.token)}
    response = api.client.get("/api/v1/me", headers=headers)
    if message is None:
        assert response.status_code == 200
        assert response.get_json()["username"] == "admin"
        return
    assert response.status_code == 401
    assert response.get_json()["error"] == {"code": "unauthorized", "message": message,
                                            "details": []}
