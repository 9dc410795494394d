"""Seed a migrated hub database with a large shop's history, in SQL, for bench/reports.py.

Why SQL and not the API: a million orders through the hub would take hours and measure
intake, not reports. The rows are shaped like the hub's own (same tables, statuses, money
columns, customers, shipments with promised and delivered dates, tickets with SLA deadlines,
returns with refunds) so the report queries meet what a real shop's database holds, and a
second tenant's rows sit in the same tables so that tenant scoping is part of the work.

Everything is derived from ``random()`` after ``setseed``: the same arguments give the same
database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import psycopg

CHANNELS = ("shopify", "woocommerce", "amazon", "web", "app", "api")
# country, region: many regions in a few countries, as a shop shipping worldwide sees.
PLACES = (
    ("US", "CA"), ("US", "NY"), ("US", "TX"), ("US", "FL"), ("US", "WA"), ("US", "IL"),
    ("CN", "Guangdong"), ("CN", "Shanghai"), ("CN", "Beijing"), ("CN", "Zhejiang"),
    ("DE", "Bayern"), ("DE", "Berlin"), ("DE", "Hessen"), ("FR", "Île-de-France"),
    ("GB", "England"), ("GB", "Scotland"), ("JP", "Tokyo"), ("JP", "Osaka"),
    ("CA", "ON"), ("CA", "BC"), ("AU", "NSW"), ("AU", "VIC"), ("BR", "SP"), ("IN", "MH"),
)  # fmt: skip
# (status, share): most of a shop's history is delivered or closed.
STATUSES = (
    ("delivered", 0.58), ("closed", 0.12), ("shipped", 0.08), ("confirmed", 0.07),
    ("cancelled", 0.06), ("returned", 0.03), ("partially_shipped", 0.02), ("new", 0.02),
    ("held", 0.01), ("awaiting_approval", 0.01),
)  # fmt: skip
SHIPPED = ("delivered", "closed", "shipped", "returned", "partially_shipped")
DELIVERED = ("delivered", "closed", "returned")
REASONS = ("damaged", "wrong item", "too small", "too large", "not as described", "changed mind")
TICKET_KINDS = ("question", "complaint", "return", "refund", "exchange", "repair")
CATEGORIES = ("shipping", "product", "payment", "account", None)
PRIORITIES = ("low", "normal", "high", "urgent")


def _status_case() -> str:
    """A CASE over r (uniform in [0, 1)) picking a status by its share."""
    parts, edge = [], 0.0
    for status, share in STATUSES:
        edge += share
        parts.append(f"WHEN r < {edge:.4f} THEN '{status}'")
    return "CASE " + " ".join(parts) + " ELSE 'delivered' END"


def _pick(values: tuple[str | None, ...], expr: str) -> str:
    """SQL choosing one of ``values`` by the integer ``expr``."""
    items = ", ".join("NULL" if v is None else "'" + v.replace("'", "''") + "'" for v in values)
    return f"(ARRAY[{items}]::text[])[1 + ({expr}) % {len(values)}]"


def seed(
    url: str,
    tenant_slug: str,
    orders: int,
    *,
    days: int = 730,
    customers: int = 200_000,
    products: int = 5_000,
    tickets: int = 60_000,
    returns: int = 25_000,
    agents: int = 12,
    seed_value: float = 0.42,
    say: Callable[[str], None] = print,
) -> dict[str, int]:
    """Write the history of ``tenant_slug`` (created when missing); return the row counts."""
    countries = _pick(tuple(p[0] for p in PLACES), "pl")
    regions = _pick(tuple(p[1] for p in PLACES), "pl")
    steps: list[tuple[str, str]] = [
        (
            "tenant",
            """INSERT INTO tenants (slug, name, created_at)
               VALUES (%(slug)s, %(slug)s, now()) ON CONFLICT (slug) DO NOTHING""",
        ),
        (
            "warehouses",
            """INSERT INTO warehouses (tenant_id, code, name, country, priority, active,
                   created_at, kind)
               SELECT %(t)s, 'BENCH' || g, 'Bench warehouse ' || g, 'US', 10 + g, true,
                   now(), 'stock'
               FROM generate_series(1, 4) g""",
        ),
        (
            "carrier accounts",
            """INSERT INTO carrier_accounts (tenant_id, plugin, name, settings, enabled,
                   source, created_at)
               SELECT %(t)s, (ARRAY['ups', 'fedex', 'sf_express'])[g], 'bench-' || g,
                   '{}'::json, true, 'api', now()
               FROM generate_series(1, 3) g""",
        ),
        (
            "agents",
            """INSERT INTO users (tenant_id, username, username_key, password_hash, role,
                   active, created_at, available, skills)
               SELECT %(t)s, 'agent' || g, 'agent' || g, '!', 'service', true, now(), true,
                   '[]'::json
               FROM generate_series(1, %(agents)s) g""",
        ),
        (
            "products",
            """INSERT INTO products (tenant_id, sku, name, category, brand, price, currency,
                   low_stock_threshold, active, created_at, updated_at)
               SELECT %(t)s, 'BENCH-' || lpad(g::text, 6, '0'), 'Bench product ' || g,
                   'Category ' || (g % 40), 'Brand ' || (g % 30), 5 + g % 200, 'USD', 5, true,
                   now(), now()
               FROM generate_series(1, %(products)s) g""",
        ),
        (
            "customers",
            """INSERT INTO customers (tenant_id, email, name, vip, created_at)
               SELECT %(t)s, 'c' || g || '@' || %(slug)s || '.example', 'Customer ' || g,
                   false, now() - make_interval(days => %(days)s + 30)
               FROM generate_series(1, %(customers)s) g""",
        ),
        (
            "orders",
            f"""INSERT INTO orders (tenant_id, number, channel, status, order_type, priority,
                   customer_id, currency, subtotal, shipping_total, tax_total, discount_total,
                   fees_total, total, consignee_name, ship_city, ship_region, ship_country,
                   created_at, paid_at, updated_at, queue_at, fulfilled_by_channel, created_by)
               SELECT %(t)s, %(prefix)s || g, ch, st, 'normal', 0, c0 + cu, cur, s, sh, 0, 0,
                   0, s + sh, 'Customer ' || cu, 'City', {regions}, {countries}, at, at, at,
                   at, false, 'bench'
               FROM (
                   SELECT g, r, cu, at, {_status_case()} AS st,
                       -- a customer ships to one place, now and then (a gift) elsewhere
                       CASE WHEN r3 < 0.9 THEN cu % {len(PLACES)}
                            ELSE (r3 * 1000000)::int % {len(PLACES)} END AS pl,
                       {_pick(CHANNELS, "cu + g")} AS ch,
                       CASE WHEN r2 < 0.85 THEN 'USD' WHEN r2 < 0.95 THEN 'EUR'
                            ELSE 'CNY' END AS cur,
                       (SELECT sum((1 + (g + n) % 3) * (5 + ((g * 31 + n * 17) %% %(products)s
                            + 1) %% 200)) FROM generate_series(1, 1 + g %% 3) n) AS s,
                       CASE WHEN g %% 4 = 0 THEN 0 ELSE 4.99 END AS sh
                   FROM (
                       SELECT g, random() AS r, random() AS r2, random() AS r3,
                           -- skewed: a fifth of the customers place most of the orders
                           CASE WHEN random() < 0.6
                                THEN (random() * (%(customers)s / 5 - 1))::int
                                ELSE (random() * (%(customers)s - 1))::int END AS cu,
                           now() - make_interval(secs => (%(orders)s - g)::float8
                               / %(orders)s * %(days)s * 86400 + random() * 60) AS at
                       FROM generate_series(1, %(orders)s) g
                   ) raw
               ) picked
               CROSS JOIN (SELECT min(id) AS c0 FROM customers WHERE tenant_id = %(t)s) c""",
        ),
        (
            "order lines",
            """INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, sku, name,
                   quantity, unit_price, line_total)
               SELECT %(t)s, o.id, n, p.id, p.sku, p.name, 1 + (g + n) % 3, p.price,
                   (1 + (g + n) % 3) * p.price
               FROM (SELECT id, substr(number, length(%(prefix)s) + 1)::int AS g FROM orders
                     WHERE tenant_id = %(t)s AND number LIKE %(prefix)s || '%%') o
               CROSS JOIN LATERAL generate_series(1, 1 + o.g % 3) n
               JOIN products p ON p.tenant_id = %(t)s
                   AND p.sku = 'BENCH-' || lpad(((o.g * 31 + n * 17) % %(products)s + 1)::text,
                       6, '0')""",
        ),
        (
            "shipments",
            f"""INSERT INTO shipments (tenant_id, order_id, warehouse_id, carrier_account_id,
                   carrier, service, tracking_number, amount, currency, status,
                   promised_delivery, first_estimated_delivery, estimated_delivery,
                   delivered_at, created_at, updated_at)
               SELECT %(t)s, o.id, w.ids[1 + o.id % array_length(w.ids, 1)], a.id, a.plugin,
                   'standard', 'BT' || o.id, 6.5, 'USD',
                   CASE WHEN o.status IN {DELIVERED} THEN 'delivered' ELSE 'in_transit' END,
                   (o.created_at + interval '4 days')::date,
                   (o.created_at + interval '4 days')::date,
                   (o.created_at + interval '4 days')::date,
                   CASE WHEN o.status IN {DELIVERED} THEN o.created_at
                       + make_interval(hours => 30 + (o.id * 37) % (24 * 5)) END,
                   o.created_at + interval '6 hours', o.created_at + interval '6 hours'
               FROM orders o
               CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM warehouses
                           WHERE tenant_id = %(t)s) w
               JOIN carrier_accounts a ON a.tenant_id = %(t)s
                   AND a.name = 'bench-' || (1 + o.id % 3)
               WHERE o.tenant_id = %(t)s AND o.status IN {SHIPPED}""",
        ),
        (
            "shipment items",
            """INSERT INTO shipment_items (tenant_id, shipment_id, product_id, sku, quantity)
               SELECT %(t)s, s.id, l.product_id, l.sku, l.quantity
               FROM shipments s JOIN order_lines l ON l.order_id = s.order_id
               WHERE s.tenant_id = %(t)s""",
        ),
        (
            "delivery exceptions",
            """INSERT INTO delivery_exceptions (tenant_id, shipment_id, kind, reason, status,
                   created_at)
               SELECT %(t)s, s.id, (ARRAY['delayed', 'lost', 'damaged'])[1 + s.id % 3],
                   'bench', CASE WHEN s.status = 'delivered' THEN 'resolved' ELSE 'open' END,
                   s.created_at + interval '2 days'
               FROM shipments s WHERE s.tenant_id = %(t)s AND s.id % 50 = 0""",
        ),
        (
            "tickets",
            f"""INSERT INTO tickets (tenant_id, number, kind, subject, status, priority,
                   category, source, order_id, customer_id, assignee_id, created_by,
                   created_at, updated_at, first_replied_at, resolved_at, closed_at,
                   first_reply_due, resolution_due, first_reply_warned, resolution_warned,
                   first_reply_breached_at, resolution_breached_at)
               SELECT %(t)s, 'BT' || k, {_pick(TICKET_KINDS, "k")}, 'Bench ticket',
                   CASE WHEN k % 10 = 0 THEN 'open' ELSE 'closed' END,
                   {_pick(PRIORITIES, "k / 7")}, {_pick(CATEGORIES, "k / 3")}, 'api', o.id,
                   o.customer_id, u.ids[1 + k % array_length(u.ids, 1)], 'bench',
                   o.created_at + interval '5 days', o.created_at + interval '5 days',
                   CASE WHEN k % 10 <> 0 THEN o.created_at + interval '5 days'
                       + make_interval(mins => 10 + (k * 13) % 600) END,
                   CASE WHEN k % 10 <> 0 THEN o.created_at + interval '5 days'
                       + make_interval(hours => 2 + (k * 7) % 70) END,
                   CASE WHEN k % 10 <> 0 THEN o.created_at + interval '8 days' END,
                   o.created_at + interval '5 days 4 hours',
                   o.created_at + interval '7 days', true, true,
                   -- past deadlines are breached (and were warned of) as the sweep left them
                   CASE WHEN (k * 13) % 600 > 230 OR k % 10 = 0 THEN o.created_at
                       + interval '5 days 4 hours' END,
                   CASE WHEN (k * 7) % 70 > 46 OR k % 10 = 0 THEN o.created_at
                       + interval '7 days' END
               FROM (SELECT k, %(order0)s + (k * 16661) %% %(orders)s AS oid
                     FROM generate_series(1, %(tickets)s) k) picked
               JOIN orders o ON o.id = picked.oid
               CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM users
                           WHERE tenant_id = %(t)s AND role = 'service') u""",
        ),
        (
            "returns",
            f"""INSERT INTO returns (tenant_id, number, order_id, kind, status, reason,
                   created_by, created_at, updated_at, received_at, ended_at)
               SELECT %(t)s, 'BR' || o.id, o.id,
                   CASE WHEN (o.id / 7) % 5 = 0 THEN 'exchange' ELSE 'return' END,
                   'refunded', {_pick(REASONS, "o.id / 7")}, 'bench',
                   s.delivered_at + interval '3 days', s.delivered_at + interval '9 days',
                   s.delivered_at + interval '8 days', s.delivered_at + interval '9 days'
               FROM orders o JOIN shipments s ON s.order_id = o.id
               WHERE o.tenant_id = %(t)s AND s.delivered_at IS NOT NULL
                   AND o.id %% (%(orders)s / %(returns)s) = 0""",
        ),
        (
            "return lines",
            """INSERT INTO return_lines (tenant_id, return_id, product_id, sku, quantity,
                   received, damaged, unit_price)
               SELECT %(t)s, r.id, l.product_id, l.sku, l.quantity, l.quantity, 0, l.unit_price
               FROM returns r JOIN order_lines l ON l.order_id = r.order_id AND l.line_no = 1
               WHERE r.tenant_id = %(t)s""",
        ),
        (
            "refunds",
            """INSERT INTO refunds (tenant_id, return_id, order_id, amount, currency,
                   shipping_included, status, attempts, created_by, created_at, settled_at)
               SELECT %(t)s, r.id, r.order_id, rl.quantity * rl.unit_price, o.currency,
                   false, 'succeeded', 1, 'bench', r.ended_at, r.ended_at
               FROM returns r JOIN return_lines rl ON rl.return_id = r.id
               JOIN orders o ON o.id = r.order_id
               WHERE r.tenant_id = %(t)s AND r.kind = 'return'""",
        ),
    ]
    params: dict[str, object] = {
        "slug": tenant_slug,
        "orders": orders,
        "days": days,
        "customers": customers,
        "products": products,
        "tickets": tickets,
        "returns": returns,
        "agents": agents,
        "prefix": f"{tenant_slug[:6].upper()}-",
    }
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(%s)", (seed_value,))
        for name, sql in steps:
            if name != "tenant" and "t" not in params:
                params["t"] = conn.execute(
                    "SELECT id FROM tenants WHERE slug = %s", (tenant_slug,)
                ).fetchone()[0]
            if name == "tickets":
                params["order0"] = conn.execute(
                    "SELECT min(id) FROM orders WHERE tenant_id = %s", (params["t"],)
                ).fetchone()[0]
            started = time.perf_counter()
            # one spelling of SQL's modulo in the texts above; psycopg wants it doubled
            sql = re.sub(r"%(?!\()", "%%", sql.replace("%%", "%"))
            counts[name] = conn.execute(sql, params).rowcount
            # the next steps join what this one wrote: let the planner know its size
            table = sql.split("INSERT INTO ", 1)[1].split(None, 1)[0]
            conn.execute(f"ANALYZE {table}")
            say(
                f"  {tenant_slug}: {name}: {counts[name]:,} rows in "
                f"{time.perf_counter() - started:.1f} s"
            )
    return counts
