"""The web admin's Reports: the same figures as the API, charts per currency whose SVG and
data table agree, and the CSV download."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from babel.numbers import format_currency
from conftest import ORDER, Api
from web_support import Web, text

EURO_ORDER = {
    **ORDER,
    "currency": "EUR",
    "lines": [{"sku": "SKU-C", "quantity": 4, "unit_price": "3.99"}],
}


class Tables(HTMLParser):
    """Each table's rows of cell texts, by the table's id (tables without one are skipped)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id"):
            self._table = dict(attrs)["id"]
            self.found[self._table] = []
        elif self._table and tag == "tr":
            self.found[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif self._table and tag in ("td", "th") and self._cell is not None:
            self.found[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def money(amount: str, currency: str) -> str:
    return format_currency(Decimal(amount), currency, locale="en")


@pytest.fixture
def period(api: Api) -> dict[str, str]:
    """The last week in acme's calendar, as plain days (the API reads them in its zone)."""
    zone = api.get("/reports/sales")[1]["timezone"]
    today = datetime.now(ZoneInfo(zone)).date()
    return {"from": (today - timedelta(days=6)).isoformat(), "to": today.isoformat()}


@pytest.fixture
def sold(api: Api) -> None:
    """Two orders in dollars and one in euros for acme; a big one for the other shop."""
    for body in (ORDER, ORDER, EURO_ORDER):
        assert api.post("/orders", body)[0] == 201
    big = {**ORDER, "lines": [{"sku": "SKU-A", "quantity": 9, "unit_price": "777.00"}]}
    assert api.post("/orders", big, token=api.tokens["stranger"])[0] == 201


def query(period: dict[str, str], **more: str) -> str:
    return "&".join(f"{k}={v}" for k, v in {**period, **more}.items())


def figure(html: str, chart_id: str) -> str:
    at = html.index(f'id="{chart_id}"')
    return html[at : html.index("</figure>", at)]


def test_the_sales_report_shows_the_same_numbers_as_the_api(
    web: Web, api: Api, period: dict[str, str], sold: None
) -> None:
    _, report = api.get(f"/reports/sales?{query(period)}")
    web.login("analyst")

    response = web.get(f"/admin/reports/sales?{query(period)}")

    assert response.status_code == 200
    tables = Tables(text(response)).found
    shown = tables["data-rows"][1:]
    assert len(shown) == len(report["rows"]) == 2  # one day, two currencies
    for row, cells in zip(report["rows"], shown, strict=True):
        assert cells[:4] == [row["day"], row["currency"], str(row["orders"]), str(row["units"])]
        assert money(row["gross"], row["currency"]) in cells
        assert money(row["net"], row["currency"]) in cells
    totals = {cells[0]: cells for cells in tables["data-totals"][1:]}
    for t in report["totals"]:
        assert money(t["gross"], t["currency"]) in totals[t["currency"]]
    assert totals["USD"][1] == "2" and money("91.00", "USD") in totals["USD"]
    assert money("6993.00", "USD") not in text(response)  # another shop's order


def test_money_is_charted_per_currency_and_counts_are_added_up(
    web: Web, period: dict[str, str], sold: None
) -> None:
    web.login("operator")
    html = text(web.get(f"/admin/reports/sales?{query(period)}"))

    dollars = figure(html, "chart-rows-gross-USD")
    euros = figure(html, "chart-rows-gross-EUR")
    assert money("91.00", "USD") in dollars and "€" not in dollars
    assert money("15.96", "EUR") in euros and "$" not in euros
    assert "106.96" not in html  # dollars and euros are never added together
    orders = figure(html, "chart-rows-orders")
    assert ": 3</title>" in orders  # three orders that day, whatever their currency


def test_the_chart_svg_parses_and_its_data_table_holds_the_same_values(
    web: Web, period: dict[str, str], sold: None
) -> None:
    web.login("analyst")
    html = text(web.get(f"/admin/reports/orders?{query(period, by='status')}"))

    for chart_id in ("chart-rows-orders", "chart-rows-amount-USD", "chart-rows-amount-EUR"):
        part = figure(html, chart_id)
        svg = ET.fromstring(part[part.index("<svg") : part.index("</svg>") + len("</svg>")])
        bars = [rect.findtext("title") for rect in svg.iter("rect")]
        data = re.findall(
            r'<th scope="row">([^<]*)</th><td class="num">([^<]*)</td>',
            part[part.index("<table") :],
        )
        assert bars and bars == [f"{label}: {value}" for label, value in data], chart_id
        heights = [float(rect.get("height") or 0) for rect in svg.iter("rect")]
        assert all(h > 0 for h in heights)
    assert "Confirmed: 3" in html and f"Confirmed: {money('91.00', 'USD')}" in html


def test_every_report_opens_with_a_table_and_its_options(
    web: Web, api: Api, period: dict[str, str], sold: None
) -> None:
    web.login("admin")
    for name in ("orders", "sales", "customers", "products", "returns", "tickets", "carriers"):
        response = web.get(f"/admin/reports/{name}?{query(period)}")
        assert response.status_code == 200, name
        html = text(response)
        assert "Download CSV" in html and ("<table" in html or "Pick a longer period" in html)
    html = text(web.get(f"/admin/reports/products?{query(period, sort='amount', limit='1')}"))
    _, ranked = api.get(f"/reports/products?{query(period, sort='amount', limit='1')}")
    rows = Tables(html).found["data-rows"][1:]
    assert [r[0] for r in rows] == [r["sku"] for r in ranked["rows"]] == ["SKU-C", "SKU-B"]
    assert 'id="f-sort"' in html and 'id="f-by"' not in html
    assert 'id="f-by"' in text(web.get(f"/admin/reports/orders?{query(period)}"))


def test_csv_download_answers_the_apis_csv(
    web: Web, api: Api, period: dict[str, str], sold: None
) -> None:
    web.login("analyst")
    page = text(web.get(f"/admin/reports/sales?{query(period)}"))
    link = re.search(r'<a class="btn" href="([^"]+)" download>', page)
    assert link is not None

    response = web.get(link.group(1).replace("&amp;", "&"))

    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition == (f'attachment; filename="sales_rows_{period["from"]}_{period["to"]}.csv"')
    from_api = api.client.get(
        f"/api/v1/reports/sales?{query(period, format='csv')}",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert text(response) == text(from_api)
    assert text(response).startswith("day,currency,orders")

    totals = web.get(f"/admin/reports/sales/csv?{query(period, table='totals')}")
    assert totals.mimetype == "text/csv" and text(totals).startswith("currency,")


def test_a_missing_period_is_filled_in_and_a_bad_one_shown_by_its_field(
    web: Web, period: dict[str, str]
) -> None:
    web.login("operator")
    response = web.get("/admin/reports/orders?by=channel")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert f"to={period['to']}" in location and "by=channel" in location

    bad = web.get(f"/admin/reports/sales?from=soon&to={period['to']}")
    assert bad.status_code == 400 and 'id="f-from-err"' in text(bad)
    backwards = web.get(f"/admin/reports/sales?from={period['to']}&to={period['from']}")
    assert backwards.status_code == 400 and "before" in text(backwards)
    assert web.get(f"/admin/reports/nonsense?{query(period)}").status_code == 404


def test_an_empty_period_says_what_to_do(web: Web, period: dict[str, str]) -> None:
    web.login("operator")
    html = text(web.get(f"/admin/reports/returns?{query(period)}"))
    assert "Pick a longer period" in html
    assert "No data for this period yet." in html


def test_a_role_without_reports_read_gets_403_as_on_the_api(
    web: Web, api: Api, period: dict[str, str]
) -> None:
    web.login("warehouse")
    api_status, _ = api.get(f"/reports/sales?{query(period)}", token=api.tokens["warehouse"])
    assert api_status == 403
    for path in (
        "/admin/reports",
        f"/admin/reports/sales?{query(period)}",
        f"/admin/reports/sales/csv?{query(period)}",
    ):
        page = web.get(path)
        assert page.status_code == 403, path
        assert "reports.read" in text(page)
    assert 'href="/admin/reports"' not in text(web.get("/admin/"))


def test_the_index_lists_every_report(web: Web) -> None:
    web.login("analyst")
    html = text(web.get("/admin/reports"))
    for name in ("orders", "sales", "customers", "products", "returns", "tickets", "carriers"):
        assert f'href="/admin/reports/{name}"' in html


def test_reports_in_chinese(web: Web, period: dict[str, str], sold: None) -> None:
    web.login("analyst")
    html = text(web.get(f"/admin/reports/sales?{query(period)}&lang=zh-CN"))
    assert 'lang="zh-Hans"' in html
    assert "下载 CSV" in html and "Download CSV" not in html
    assert "报表" in text(web.get("/admin/reports"))
