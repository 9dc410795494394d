"""Reports as a merchant reads them: orders and sales by day, week, month, channel, status,
warehouse and category; customers by place, new and returning; the product ranking; returns
by reason; the service desk per agent; carriers — every amount per currency, days cut in the
tenant's own time zone (acme is in Shanghai here), the same figures whether they come from the
raw rows or the day rollups, and the rollups following every later change."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ORDER, Api, config_with_acme
from sqlalchemy import func, select, update
from test_returns import carrier, delivered, made, receive  # noqa: F401 (carrier: fixture)

from hub.core import report_rollups
from hub.core.models import (
    Order,
    ReportOrderDay,
    ReportProductMonth,
    ReportRefresh,
    Tenant,
    Ticket,
    User,
)
from hub.runtime import Runtime
from hub.worker import actors

ZONE = "Asia/Shanghai"  # UTC+8, no daylight saving: a day starts at 16:00 UTC the day before


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return config_with_acme(tmp_path, f'[calendar]\ntimezone = "{ZONE}"\n')


def utc(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def acme_id(runtime: Runtime) -> int:
    with runtime.session() as session:
        return session.scalar(select(Tenant.id).where(Tenant.slug == "acme"))


def order_at(
    api: Api,
    runtime: Runtime,
    at: datetime,
    *,
    currency: str = "USD",
    channel: str = "web",
    email: str = "ann@example.com",
    region: str = "NJ",
    country: str = "US",
    lines: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An order placed through the API, then moved back to ``at`` (its history as a shop
    would have it); the move counts as a change, as any later edit of an order does."""
    consignee = {**ORDER["consignee"]}
    consignee["address"] = {**consignee["address"], "region": region, "country": country}
    body = {
        **ORDER,
        "currency": currency,
        "channel": channel,
        "customer": {"email": email, "name": email.split("@")[0]},
        "consignee": consignee,
    }
    if lines is not None:
        body["lines"] = lines
    status, made_order = api.post("/orders", body)
    assert status == 201, made_order
    with runtime.transaction() as session:
        session.execute(
            update(Order)
            .where(Order.number == made_order["number"], Order.tenant_id == acme_id(runtime))
            .values(created_at=at)
        )
    return made_order


def report(api: Api, name: str, query: str = "", **kw: Any) -> dict[str, Any]:
    status, answer = api.get(f"/reports/{name}?{query}", **kw)
    assert status == 200, answer
    return answer


def build(runtime: Runtime) -> None:
    """What the worker's sweep does: build (then refresh) the rollups of every tenant."""
    assert actors.sweep_reports(runtime) >= 0
    with runtime.session() as session:
        assert session.get(ReportRefresh, acme_id(runtime)).timezone == ZONE


def rollup_rows(runtime: Runtime) -> int:
    with runtime.session() as session:
        return session.scalar(
            select(func.count()).where(ReportOrderDay.tenant_id == acme_id(runtime))
        )


MARCH = "from=2026-03-01&to=2026-03-31"
TWO_A = [{"sku": "SKU-A", "quantity": 2, "unit_price": "10.00"}]  # 20.00
ONE_B = [{"sku": "SKU-B", "quantity": 1, "unit_price": "25.50"}]  # 25.50
ONE_C = [{"sku": "SKU-C", "quantity": 3, "unit_price": "4.00"}]  # 12.00


@pytest.fixture
def march(api: Api, runtime: Runtime) -> dict[str, dict[str, Any]]:
    """Four March orders of acme and one of the stranger tenant. In Shanghai time:
    a: Mon 2 Mar, web, USD 20; b: Mon 2 Mar (23:30 local), amazon, USD 25.50;
    c: Tue 3 Mar (00:30 local, still the 2nd in UTC), web, EUR 12; d: Tue 10 Mar, web, USD
    45.50, cancelled."""
    orders = {
        "a": order_at(api, runtime, utc(2, 2), lines=TWO_A),
        "b": order_at(api, runtime, datetime(2026, 3, 2, 15, 30, tzinfo=UTC), channel="amazon",
                      email="bob@example.com", region="CA", lines=ONE_B),
        "c": order_at(api, runtime, datetime(2026, 3, 2, 16, 30, tzinfo=UTC), currency="EUR",
                      email="cy@example.com", region="CA", lines=ONE_C),
        "d": order_at(api, runtime, utc(10, 4), email="bob@example.com"),
    }
    status, _ = api.post(f"/orders/{orders['d']['number']}/cancel", {"reason": "test"})
    assert status == 200
    status, _ = api.post("/orders", ORDER, token=api.tokens["stranger"])
    assert status == 201
    return orders


def test_orders_by_day_week_month_channel_and_status_keep_currencies_apart(
    api: Api, runtime: Runtime, march: dict[str, Any]
) -> None:
    by_day = report(api, "orders", f"{MARCH}&by=day")
    assert by_day["timezone"] == ZONE
    # the month starts at midnight in Shanghai: 16:00 UTC on the last day of February
    assert by_day["from"] == "2026-02-28T16:00:00+00:00"
    assert by_day["to"] == "2026-03-31T16:00:00+00:00"
    assert by_day["rows"] == [
        {"day": "2026-03-02", "currency": "USD", "orders": 2, "amount": "45.50"},
        {"day": "2026-03-03", "currency": "EUR", "orders": 1, "amount": "12.00"},
        {"day": "2026-03-10", "currency": "USD", "orders": 1, "amount": "45.50"},
    ]
    assert by_day["totals"] == [
        {"currency": "EUR", "orders": 1, "amount": "12.00"},
        {"currency": "USD", "orders": 3, "amount": "91.00"},
    ]
    weeks = report(api, "orders", f"{MARCH}&by=week")["rows"]
    assert [(r["week"], r["currency"], r["orders"]) for r in weeks] == [
        ("2026-03-02", "EUR", 1), ("2026-03-02", "USD", 2), ("2026-03-09", "USD", 1)
    ]
    months = report(api, "orders", f"{MARCH}&by=month")["rows"]
    assert [(r["month"], r["currency"], r["orders"]) for r in months] == [
        ("2026-03-01", "EUR", 1), ("2026-03-01", "USD", 3)
    ]
    channels = report(api, "orders", f"{MARCH}&by=channel")["rows"]
    assert [(r["channel"], r["currency"], r["orders"], r["amount"]) for r in channels] == [
        ("amazon", "USD", 1, "25.50"), ("web", "EUR", 1, "12.00"), ("web", "USD", 2, "65.50")
    ]
    statuses = {(r["status"], r["currency"]): r["orders"]
                for r in report(api, "orders", f"{MARCH}&by=status")["rows"]}
    assert statuses[("cancelled", "USD")] == 1
    assert sum(statuses.values()) == 4


def test_categories_and_warehouses_leave_cancelled_orders_out(
    api: Api, runtime: Runtime, march: dict[str, Any]
) -> None:
    categories = report(api, "orders", f"{MARCH}&by=category")["rows"]
    assert categories == [
        {"category": "tools", "currency": "USD", "lines": 2, "units": 3, "amount": "45.50"},
        {"category": "toys", "currency": "EUR", "lines": 1, "units": 3, "amount": "12.00"},
    ]
    warehouses = report(api, "orders", f"{MARCH}&by=warehouse")["rows"]
    # every unit is reserved at MAIN (the first warehouse); the cancelled order holds none
    assert warehouses == [
        {"warehouse": "MAIN", "name": "Main", "currency": "EUR", "orders": 1, "units": 3,
         "amount": "12.00"},
        {"warehouse": "MAIN", "name": "Main", "currency": "USD", "orders": 2, "units": 3,
         "amount": "45.50"},
    ]


def test_rollups_answer_exactly_what_the_raw_rows_do_and_follow_later_changes(
    api: Api, runtime: Runtime, march: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = [
        ("orders", f"{MARCH}&by={by}")
        for by in ("day", "week", "channel", "status", "category", "warehouse")
    ] + [
        ("sales", f"{MARCH}&interval=week"),
        ("customers", MARCH),
        ("products", MARCH),
        # edges inside days: from 14:00 UTC on the 2nd (22:00 local) to 1:00 UTC on the 3rd
        ("orders", "from=2026-03-02T14:00:00Z&to=2026-03-03T01:00:00Z"),
        ("orders", "from=2026-03-02T16:00:00Z&to=2026-03-10T16:00:00Z&by=channel"),
    ]
    raw = [report(api, name, query) for name, query in queries]
    assert rollup_rows(runtime) == 0
    build(runtime)
    assert rollup_rows(runtime) > 0
    assert [report(api, name, query) for name, query in queries] == raw
    edge = report(api, "orders", "from=2026-03-02T14:00:00Z&to=2026-03-03T01:00:00Z")
    # b (15:30 UTC) and c (16:30 UTC) are in; a (02:00 UTC) is not
    assert [(r["day"], r["currency"], r["orders"]) for r in edge["rows"]] == [
        ("2026-03-02", "USD", 1), ("2026-03-03", "EUR", 1)
    ]
    # a week-old order is cancelled and another one comes in on an old day: the next report
    # (rollups built) shows both, with no sweep in between
    status, _ = api.post(f"/orders/{march['a']['number']}/cancel", {"reason": "late"})
    assert status == 200
    order_at(api, runtime, utc(20, 2), currency="EUR", lines=ONE_C)
    statuses = {(r["status"], r["currency"]): r["orders"]
                for r in report(api, "orders", f"{MARCH}&by=status")["rows"]}
    assert statuses[("cancelled", "USD")] == 2
    days = report(api, "orders", f"{MARCH}&by=day")["rows"]
    assert {"day": "2026-03-20", "currency": "EUR", "orders": 1, "amount": "12.00"} in days
    ranking = report(api, "products", MARCH)["rows"]
    assert [(r["currency"], r["sku"], r["units"]) for r in ranking if r["currency"] == "EUR"] == [
        ("EUR", "SKU-C", 6)
    ]
    assert "SKU-A" not in [r["sku"] for r in ranking]  # a, its only order, was cancelled

    # the reports summed the changed days raw; the rollups hold them once the sweep ran
    def stored_on_the_20th() -> int | None:
        with runtime.session() as session:
            return session.scalar(
                select(func.sum(ReportOrderDay.orders)).where(
                    ReportOrderDay.tenant_id == acme_id(runtime),
                    ReportOrderDay.day == datetime(2026, 3, 20).date(),
                )
            )

    assert stored_on_the_20th() is None
    build(runtime)
    assert stored_on_the_20th() == 1
    # Ten minutes on (the refresh's and the reports' look-backs have passed), no day is
    # "changed" any more and the whole past month is read from its month rows: a tampered
    # row shows through.
    monkeypatch.setattr(report_rollups, "REPORT_OVERLAP", timedelta(0))
    monkeypatch.setattr(report_rollups, "OVERLAP", timedelta(0))
    with runtime.transaction() as session:
        session.execute(
            update(ReportProductMonth)
            .where(ReportProductMonth.tenant_id == acme_id(runtime),
                   ReportProductMonth.currency == "EUR")
            .values(units=ReportProductMonth.units + 100)
        )
    [eur] = [r for r in report(api, "products", MARCH)["rows"] if r["currency"] == "EUR"]
    assert eur["units"] == 106
    def eur_units() -> int:
        [eur] = [r for r in report(api, "products", MARCH)["rows"] if r["currency"] == "EUR"]
        return int(eur["units"])

    build(runtime)  # nothing changed: the refresh leaves the month alone
    assert eur_units() == 106
    with runtime.transaction() as session:  # `orderhub reports refresh --rebuild`
        report_rollups.refresh(session, acme_id(runtime), ZONE, rebuild=True)
    assert eur_units() == 6
    # March is a whole past month: the ranking reads its month rows, rebuilt for the change
    with runtime.session() as session:
        months = session.scalars(
            select(ReportProductMonth.month).where(
                ReportProductMonth.tenant_id == acme_id(runtime)
            ).distinct()
        ).all()
    assert datetime(2026, 3, 1).date() in months
    assert report(api, "products", MARCH)["rows"] == ranking
    assert report(api, "orders", f"{MARCH}&by=day")["rows"] == days


def test_a_new_time_zone_rebuilds_the_days(api: Api, runtime: Runtime, march: Any) -> None:
    build(runtime)
    with runtime.transaction() as session:
        days = report_rollups.refresh(session, acme_id(runtime), "UTC")
    assert days > 0  # every day again, cut at UTC midnight
    with runtime.session() as session:
        stored = dict(
            session.execute(
                select(ReportOrderDay.day, func.sum(ReportOrderDay.orders))
                .where(ReportOrderDay.tenant_id == acme_id(runtime))
                .group_by(ReportOrderDay.day)
            ).all()
        )
    # c (16:30 UTC on the 2nd) is on the 2nd in UTC
    assert stored[datetime(2026, 3, 2).date()] == 3


def test_sales_leave_cancelled_orders_out_and_take_refunds_off(
    api: Api, runtime: Runtime, carrier: int  # noqa: F811
) -> None:
    number = delivered(api, carrier, order={**ORDER, "lines": TWO_A})
    ret = made(api, number, ("SKU-A", 1))
    assert receive(api, ret, ("SKU-A", 1, "sellable"))[0] == 200
    status, refund = api.post(f"/returns/{ret['id']}/refund", {})
    assert status in (200, 201), refund
    cancelled = api.post("/orders", ORDER)[1]["number"]
    assert api.post(f"/orders/{cancelled}/cancel", {"reason": "x"})[0] == 200
    sales = report(api, "sales", "interval=month")
    [total] = sales["totals"]
    assert total["currency"] == "USD"
    assert (total["orders"], total["units"], total["gross"]) == (1, 2, "20.00")
    assert (total["refunds"], total["refunded"], total["net"]) == (1, "10.00", "10.00")
    assert total["average_order"] == "20.00"
    assert sum(r["orders"] for r in sales["rows"]) == 1


def test_customers_by_place_new_and_returning(api: Api, runtime: Runtime) -> None:
    order_at(api, runtime, utc(10, month=2), email="ann@example.com", region="NJ")
    order_at(api, runtime, utc(2), email="ann@example.com", region="NJ")
    order_at(api, runtime, utc(3), email="bob@example.com", region="CA")
    order_at(api, runtime, utc(4), email="bob@example.com", region="CA")
    order_at(api, runtime, utc(5), email="cy@example.com", region="CA", country="CA")
    answer = report(api, "customers", MARCH)
    assert answer["totals"] == [
        {"customers": 3, "new_customers": 2, "returning_customers": 1, "orders": 4}
    ]
    assert answer["rows"] == [
        {"country": "US", "region": "CA", "customers": 1, "new_customers": 1,
         "returning_customers": 0, "orders": 2},
        {"country": "CA", "region": "CA", "customers": 1, "new_customers": 1,
         "returning_customers": 0, "orders": 1},
        {"country": "US", "region": "NJ", "customers": 1, "new_customers": 0,
         "returning_customers": 1, "orders": 1},
    ]
    build(runtime)
    assert report(api, "customers", MARCH) == answer


def test_products_are_ranked_by_units_or_amount_within_a_currency(
    api: Api, runtime: Runtime, march: Any
) -> None:
    order_at(api, runtime, utc(4), lines=[{"sku": "SKU-C", "quantity": 5,
                                          "unit_price": "1.00"}])
    by_units = report(api, "products", MARCH)["rows"]
    assert [(r["currency"], r["rank"], r["sku"], r["units"], r["amount"]) for r in by_units] == [
        ("EUR", 1, "SKU-C", 3, "12.00"),
        ("USD", 1, "SKU-C", 5, "5.00"),
        ("USD", 2, "SKU-A", 2, "20.00"),
        ("USD", 3, "SKU-B", 1, "25.50"),  # d's lines are not there: it was cancelled
    ]
    by_amount = report(api, "products", f"{MARCH}&sort=amount&limit=2")["rows"]
    assert [(r["currency"], r["sku"]) for r in by_amount] == [
        ("EUR", "SKU-C"), ("USD", "SKU-B"), ("USD", "SKU-A")
    ]
    assert by_amount[1]["name"] == "Bravo" and by_amount[1]["category"] == "tools"


def test_returns_by_reason_with_their_refunds(
    api: Api, runtime: Runtime, carrier: int  # noqa: F811
) -> None:
    first = delivered(api, carrier, order={**ORDER, "lines": TWO_A})
    second = delivered(api, carrier)
    small = made(api, first, ("SKU-A", 2))
    assert receive(api, small, ("SKU-A", 1, "sellable"), ("SKU-A", 1, "damaged"))[0] == 200
    assert api.post(f"/returns/{small['id']}/refund", {"amount": "15.00"})[0] in (200, 201)
    made(api, second, ("SKU-B", 1), reason="damaged")
    answer = report(api, "returns")
    assert answer["rows"] == [
        {"reason": "damaged", "currency": "USD", "returns": 1, "exchanges": 0, "units": 1,
         "received": 0, "damaged": 0, "refunds": 0, "refunded": "0.00"},
        {"reason": "too small", "currency": "USD", "returns": 1, "exchanges": 0, "units": 2,
         "received": 2, "damaged": 1, "refunds": 1, "refunded": "15.00"},
    ]
    assert answer["totals"][0]["refunded"] == "15.00"


def test_tickets_per_agent_first_reply_resolution_and_sla(api: Api, runtime: Runtime) -> None:
    def ticket(subject: str) -> str:
        status, made_ticket = api.post("/tickets", {
            "kind": "question", "subject": subject, "body": "?",
            "customer": {"email": "ann@example.com", "name": "Ann"}})
        assert status == 201, made_ticket
        return made_ticket["id"]  # its number

    ids = [ticket(f"T{n}") for n in range(3)]
    now = datetime.now(UTC)
    acme = acme_id(runtime)
    with runtime.transaction() as session:
        agent = session.scalar(select(User.id).where(User.username == "service",
                                                     User.tenant_id == acme))
        values: list[dict[str, Any]] = [
            # replied in 2 h and resolved in 10 h, both within the SLA
            {"first_replied_at": now + timedelta(hours=2), "resolved_at": now + timedelta(hours=10),
             "status": "resolved"},
            # replied late (4 h, breached), not resolved yet
            {"first_replied_at": now + timedelta(hours=4),
             "first_reply_breached_at": now + timedelta(hours=3)},
            # nothing yet: judged for neither
            {},
        ]
        for ticket_id, more in zip(ids, values, strict=True):
            session.execute(update(Ticket)
                            .where(Ticket.number == ticket_id,
                                   Ticket.tenant_id == acme)
                            .values(assignee_id=agent, created_at=now, **more))
    answer = report(api, "tickets", f"to={(now + timedelta(days=1)).isoformat()}".replace(
        "+", "%2B"))
    assert answer["totals"] == [{"tickets": 3, "open": 2, "resolved": 1}]
    [row] = [a for a in answer["agents"] if a["agent"] == "service"]
    assert row == {
        "agent": "service", "tickets": 3, "first_replies": 2,
        "average_first_reply_hours": 3.0, "resolved": 1, "average_resolution_hours": 10.0,
        "first_reply_sla_judged": 2, "first_reply_sla_met": 1, "first_reply_sla_rate": 0.5,
        "resolution_sla_judged": 1, "resolution_sla_met": 1, "resolution_sla_rate": 1.0,
    }
    assert answer["volume"] == [
        {"kind": "question", "category": None, "tickets": 3, "open": 2, "resolved": 1}
    ]


def test_csv_is_one_table_with_a_header_and_no_formula(api: Api, runtime: Runtime) -> None:
    order_at(api, runtime, utc(2), channel="=HYPERLINK(\"x\")", lines=TWO_A)
    response = api.client.get(
        f"/api/v1/reports/orders?{MARCH}&by=channel&format=csv",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="orders-rows.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [["channel", "currency", "orders", "amount"],
                    ["'=HYPERLINK(\"x\")", "USD", "1", "20.00"]]
    totals = api.client.get(
        f"/api/v1/reports/orders?{MARCH}&format=csv&table=totals",
        headers={"Authorization": f"Bearer {api.token}"},
    ).get_data(as_text=True)
    assert totals.splitlines() == ["currency,orders,amount", "USD,1,20.00"]


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/reports/profits", 404, "no report 'profits'; there are: orders, sales"),
        ("/reports/orders?by=colour", 400, "must be one of: day, week, month"),
        ("/reports/products?by=day", 422, "the products report takes no 'by'"),
        ("/reports/orders?table=totals", 422, "'table' goes with format=csv"),
        ("/reports/orders?format=csv&table=nope", 422, "has the tables: rows, totals"),
        ("/reports/orders?from=2026-03-02&to=2026-03-01", 422, "'from' must be before 'to'"),
        ("/reports/products?limit=0", 400, "must be at least 1"),
        ("/reports/products?limit=1001", 400, "must be at most 1000"),
        ("/reports/sales?interval=hour", 400, "must be one of: day, week, month"),
        ("/reports/orders?format=xml", 400, "must be one of: json, csv"),
    ],
)
def test_bad_report_requests_are_refused_saying_why(
    api: Api, path: str, status: int, words: str
) -> None:
    got, answer = api.get(path)
    assert got == status, answer
    assert words in str(answer)


@pytest.mark.parametrize("name", ["orders", "sales", "customers", "products", "returns",
                                  "tickets", "carriers"])
def test_every_report_is_the_analysts_and_not_the_warehouses(api: Api, name: str) -> None:
    assert api.get(f"/reports/{name}", token=api.tokens["analyst"])[0] == 200
    status, answer = api.get(f"/reports/{name}", token=api.tokens["warehouse"])
    assert status == 403 and "reports.read" in answer["error"]["message"]


def test_a_tenant_sees_only_its_own_figures(api: Api, runtime: Runtime, march: Any) -> None:
    build(runtime)
    stranger = report(api, "orders", "", token=api.tokens["stranger"])
    assert [t["orders"] for t in stranger["totals"]] == [1]
    assert report(api, "customers", MARCH, token=api.tokens["stranger"])["rows"] == []
