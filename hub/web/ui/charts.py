"""Chart geometry for server-drawn SVG: no chart library, no script, no network.

The numbers here become ``<rect>`` and ``<polyline>`` in ``ui/charts.html``; every chart also
carries its data as a table, so a screen reader or a keyboard user gets the same figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

WIDTH = 640
HEIGHT = 240
LEFT = 56  # room for the value axis's labels
BOTTOM = 40  # room for the category labels
TOP = 12


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    value: float
    y: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    points: str  # a polyline's points, for line charts
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value``: axis ends people
    can read."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def bars(rows: list[tuple[str, Any]]) -> Chart:
    """A bar per (label, value); values may be Decimal strings as the API gives them."""
    values = [float(Decimal(str(v or 0))) for _, v in rows]
    # Four steps of a readable size (1, 2 or 5 times a power of ten); whole steps for counts,
    # so an axis of orders never reads 0.25.
    step = nice_ceiling(max(values, default=0) / 4)
    if all(v == int(v) for v in values):
        step = max(step, 1.0)
    top = step * 4
    plot_h = HEIGHT - BOTTOM - TOP
    plot_w = WIDTH - LEFT - 8
    slot = plot_w / max(len(rows), 1)
    out = []
    for i, ((label, _), value) in enumerate(zip(rows, values, strict=True)):
        h = plot_h * max(value, 0) / top
        out.append(
            Bar(
                str(label),
                value,
                round(LEFT + i * slot + slot * 0.15, 1),
                round(HEIGHT - BOTTOM - h, 1),
                round(slot * 0.7, 1),
                round(h, 1),
            )
        )
    ticks = [Tick(top * k / 4, round(HEIGHT - BOTTOM - plot_h * k / 4, 1)) for k in range(5)]
    points = " ".join(f"{b.x + b.width / 2},{b.y}" for b in out)
    return Chart(out, ticks, points)
