"""Chart geometry: readable axes, bars in proportion, and SVG a parser accepts."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from hub.web.ui import charts


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1.0), (-3, 1.0), (0.3, 0.5), (1, 1.0), (1.01, 2.0), (2, 2.0), (3, 5.0), (5, 5.0),
     (7, 10.0), (10, 10.0), (11, 20.0), (380, 500.0), (5000, 5000.0)],
)
def test_nice_ceiling(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == ceiling


def test_counts_get_whole_ticks() -> None:
    chart = charts.bars([("Mon", 1), ("Tue", 0)])
    assert [t.value for t in chart.ticks] == [0, 1, 2, 3, 4]
    chart = charts.bars([("a", 5)])
    assert [t.value for t in chart.ticks] == [0, 2, 4, 6, 8]
    chart = charts.bars([("a", 37)])
    assert [t.value for t in chart.ticks] == [0, 10, 20, 30, 40]


def test_money_may_have_fractional_steps_and_bars_are_in_proportion() -> None:
    chart = charts.bars([("USD", "0.80"), ("EUR", "0.40")])
    assert [t.value for t in chart.ticks] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    high, low = chart.bars
    assert high.height == pytest.approx(2 * low.height, abs=0.2)
    assert high.y + high.height == low.y + low.height == chart.baseline


def test_no_rows_and_negative_values_draw_nothing_below_the_baseline() -> None:
    assert charts.bars([]).bars == []
    [bar] = charts.bars([("refunds", -5)]).bars
    assert bar.height == 0


def test_the_dashboard_chart_is_valid_svg(web, api) -> None:  # type: ignore[no-untyped-def]
    from conftest import ORDER
    from web_support import text

    api.post("/orders", ORDER)
    web.login("operator")
    html = text(web.get("/admin/"))
    start = html.index('<svg viewBox')
    svg = html[start:html.index("</svg>", start) + 6]
    svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title") is not None and root.find(f"{ns}desc") is not None
    assert len(root.findall(f"{ns}rect")) == 1
