"""Scatter charts as server-rendered SVG (no script, no CDN: the strict CSP holds). This module
only does the geometry — nice ticks, scaling, one colour series per model; the template draws
it with CSS classes so light and dark themes both read well, and a table beside it is the text
alternative."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 18, 30, 42
SERIES = 8  # colours in the stylesheet (.series-0 … .series-7)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the model, shown in the legend and the tooltip
    detail: str  # the tooltip's second line
    series: int = 0
    current: bool = True  # the run on screen (others are its history, drawn fainter)
    px: float = 0.0
    py: float = 0.0


@dataclass(frozen=True)
class Tick:
    at: float  # pixels
    label: str


@dataclass(frozen=True)
class Scatter:
    points: list[Point]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_label: str
    y_label: str
    legend: list[tuple[int, str]]  # (series, label)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.points

    @property
    def has_past(self) -> bool:
        return any(not p.current for p in self.points)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 × a power of ten apart)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.001:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def scatter(
    points: list[Point],
    *,
    x_label: str,
    y_label: str,
    x_format: Callable[[float], str],
    y_format: Callable[[float], str],
    x_from_zero: bool = True,
    y_from_zero: bool = True,
) -> Scatter:
    """Place the points: ticks start at zero by default so distances compare honestly."""
    if not points:
        return Scatter([], [], [], x_label, y_label, [])
    xs, ys = [p.x for p in points], [p.y for p in points]
    x_ticks = nice_ticks(0 if x_from_zero else min(xs), max(xs))
    y_ticks = nice_ticks(0 if y_from_zero else min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return round(LEFT + (x - x0) / ((x1 - x0) or 1) * plot_w, 1)

    def py(y: float) -> float:
        return round(TOP + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h, 1)

    placed = [
        Point(**{**p.__dict__, "px": px(p.x), "py": py(p.y)})
        # History first, so the current run's points are drawn on top.
        for p in sorted(points, key=lambda p: p.current)
    ]
    legend = sorted({(p.series, p.label) for p in points})
    return Scatter(
        placed,
        [Tick(px(t), x_format(t)) for t in x_ticks],
        [Tick(py(t), y_format(t)) for t in y_ticks],
        x_label,
        y_label,
        legend,
    )


def usd_label(value: float) -> str:
    """Chart labels in the one money format (billing.money)."""
    from decimal import Decimal

    from billing import money

    return money.usd(Decimal(repr(value)))


def seconds_label(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:.0f} ms"
