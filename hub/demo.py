"""Demo data for ``orderhub init --demo``: a tenant to try every route with, made through the
same services as real data (so the ledger, audit log and alerts are real too).

The demo tenant's settings (rules, shipping, tracking) ship inside the package as
``hub/demo_tenant.toml``, so a pip-installed hub with no ``config/`` folder gets the same demo
as a clone: ``init --demo`` copies the file to ``<config dir>/tenants/demo.toml`` when absent.
A clone's ``config/tenants/demo.toml`` is that same file (a test keeps them equal).
"""

from __future__ import annotations

import secrets
from importlib import resources
from pathlib import Path

from sqlalchemy import select

from hub.core import auth, carriers, catalog, inventory, tenancy
from hub.core.models import Tenant, User
from hub.runtime import Runtime
from plugins.carriers.table_rate import EXAMPLE_SETTINGS, TableRate

PRODUCTS = [
    {
        "sku": "TSHIRT-BLK-M",
        "name": "T-shirt black M",
        "category": "apparel",
        "brand": "Acme",
        "price": "19.90",
        "market_price": "24.90",
        "weight_kg": "0.2",
        "low_stock_threshold": 10,
    },
    {
        "sku": "TSHIRT-WHT-M",
        "name": "T-shirt white M",
        "category": "apparel",
        "brand": "Acme",
        "price": "19.90",
        "market_price": "24.90",
        "weight_kg": "0.2",
        "low_stock_threshold": 10,
    },
    {
        "sku": "MUG-LOGO",
        "name": "Mug with logo",
        "category": "home",
        "brand": "Acme",
        "price": "9.50",
        "weight_kg": "0.4",
        "length_cm": "12",
        "width_cm": "9",
        "height_cm": "10",
        "low_stock_threshold": 5,
    },
    {
        "sku": "HOODIE-GRY-L",
        "name": "Hoodie grey L",
        "category": "apparel",
        "brand": "Northwind",
        "price": "49.00",
        "market_price": "59.00",
        "weight_kg": "0.6",
        "low_stock_threshold": 3,
    },
    {
        "sku": "CAP-RED",
        "name": "Cap red",
        "category": "accessories",
        "brand": "Northwind",
        "price": "15.00",
        "weight_kg": "0.1",
        "low_stock_threshold": 0,
    },
]
WAREHOUSES = [
    {
        "code": "MAIN",
        "name": "Main warehouse",
        "region": "NJ",  # regions are what addresses carry (US state codes): routing matches them
        "country": "US",
        "city": "Newark",
        "priority": 10,
    },
    {
        "code": "WEST",
        "name": "West coast hub",
        "region": "NV",
        "country": "US",
        "city": "Reno",
        "priority": 20,
    },
]
STOCK = {
    "MAIN": {"TSHIRT-BLK-M": 100, "TSHIRT-WHT-M": 60, "MUG-LOGO": 40, "HOODIE-GRY-L": 8},
    "WEST": {"TSHIRT-BLK-M": 50, "MUG-LOGO": 25, "HOODIE-GRY-L": 4, "CAP-RED": 30},
}


TENANT_FILE = "demo_tenant.toml"


def tenant_settings_text() -> str:
    """The demo tenant's settings file as the package ships it."""
    return resources.files("hub").joinpath(TENANT_FILE).read_text(encoding="utf-8")


def install_tenant_file(config_dir: Path) -> Path | None:
    """Write the demo tenant's settings to ``config_dir/tenants/demo.toml`` unless a file is
    there: an operator's file is never overwritten. Returns the path written, or None."""
    path = config_dir / "tenants" / "demo.toml"
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as f:  # "x": never over a file made meanwhile
        f.write(tenant_settings_text())
    return path


def load_demo(runtime: Runtime) -> tuple[str, str]:
    """Create the demo tenant once; every call returns a fresh admin token and sets (and
    returns) a fresh password for the web admin. Products are in the demo tenant's
    configured currency."""
    currency = runtime.tenant_settings("demo").currency
    with runtime.transaction() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        if tenant is None:
            tenant = tenancy.create_tenant(session, "demo", "Demo Store")
            session.info["orderhub.tenant_id"] = tenant.id
            for p in PRODUCTS:
                catalog.create_product(session, tenant.id, p, "demo", currency=currency)
            for w in WAREHOUSES:
                catalog.create_warehouse(session, tenant.id, w, "demo")
            for code, skus in STOCK.items():
                rows = [{"sku": sku, "quantity": qty} for sku, qty in skus.items()]
                moves = inventory.resolve_movements(session, tenant.id, rows, code)
                inventory.receive(session, tenant.id, moves, reference="demo", actor="demo")
            # A rate card needs no outside account, so the demo can quote and ship at once.
            carriers.create_account(
                session,
                tenant.id,
                TableRate,
                "table-rate",
                EXAMPLE_SETTINGS,
                box=runtime.secrets,
                actor="demo",
            )
            auth.create_user(
                session,
                tenant.id,
                "admin",
                secrets.token_urlsafe(12),
                "admin",
                "demo",
                full_name="Demo admin",
                email="admin@demo.example",
            )
        session.info["orderhub.tenant_id"] = tenant.id
        admin = session.scalar(
            select(User).where(User.tenant_id == tenant.id, User.username == "admin")
        )
        assert admin is not None
        password = secrets.token_urlsafe(12)
        auth.set_password(admin, password)
        return auth.create_token(session, admin, "demo", "init --demo"), password
