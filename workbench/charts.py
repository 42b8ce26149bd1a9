"""Charts as server-rendered SVG (no script, no CDN: the strict CSP holds). This module only does
the geometry — nice ticks, scaling, bars and points placed in a viewBox; templates draw them with
CSS classes (`.series-0` … `.series-7`, `.bar-danger`, …) so light and dark themes both read
well, and every chart comes with its numbers as a table (the text alternative).

Used by the playground (scatter: cost against time or rating) and the Usage dashboard (columns
per day, horizontal bars per model, a share bar). Labels are formatted by the caller."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

WIDTH, HEIGHT = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 72, 18, 30, 42
SERIES = 8  # colours in the stylesheet (.series-0 … .series-7)


@dataclass(frozen=True)
class Tick:
    at: float  # pixels
    label: str


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


def seconds_label(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value / 1000:g} s" if value >= 1000 else f"{value:.0f} ms"


def count_label(value: float) -> str:
    """1,234 · 12.5k · 3.2M: axis ticks and bar ends stay short."""
    value = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:,.0f}" if value == int(value) else f"{value:.3g}"


def percent_label(value: float) -> str:
    return f"{value:.0f} %" if value >= 10 or value == 0 else f"{value:.1f} %"


# --- Scatter (the playground) -------------------------------------------------------------------


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


# --- Columns (one per category, stacked series) ---------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One piece of a column: `value` of series `css` (a class: "series-2", "bar-danger")."""

    css: str
    value: float
    title: str  # the tooltip: what and how much


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True)
class Columns:
    rects: list[Rect]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    y_label: str
    legend: list[tuple[str, str]]  # (css, label)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM
    empty: bool = False


def columns(
    categories: list[str],
    stacks: list[list[Segment]],
    *,
    y_label: str,
    y_format: Callable[[float], str],
    legend: list[tuple[str, str]] | None = None,
    labels: int = 8,
    width: int = WIDTH,
    height: int = HEIGHT,
    left: int = LEFT,
) -> Columns:
    """A column per category (a day), its segments stacked bottom-up. At most `labels`
    category labels are written under the axis (every n-th) so 30 days stay legible."""
    totals = [sum(max(s.value, 0.0) for s in stack) for stack in stacks]
    if not categories or not any(totals):
        return Columns([], [], [], y_label, legend or [], empty=True)
    y_ticks = nice_ticks(0, max(totals))
    top_value = y_ticks[-1] or 1.0
    plot_w, plot_h = width - left - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(categories)
    bar_w = round(max(min(slot * 0.72, 48.0), 1.0), 1)
    rects = []
    for index, stack in enumerate(stacks):
        x = round(left + index * slot + (slot - bar_w) / 2, 1)
        base = 0.0
        for segment in stack:
            if segment.value <= 0:
                continue
            y_low = TOP + plot_h - base / top_value * plot_h
            base += segment.value
            y_high = TOP + plot_h - base / top_value * plot_h
            tall = max(round(y_low - y_high, 1), 0.6)  # a tiny value stays visible
            rects.append(Rect(x, round(y_low - tall, 1), bar_w, tall, segment.css, segment.title))
    every = max(1, math.ceil(len(categories) / labels))
    x_ticks = [
        Tick(round(left + (i + 0.5) * slot, 1), label)
        for i, label in enumerate(categories)
        if i % every == 0
    ]
    return Columns(
        rects,
        x_ticks,
        [Tick(round(TOP + plot_h - t / top_value * plot_h, 1), y_format(t)) for t in y_ticks],
        y_label,
        legend or [],
        width=width,
        height=height,
        left=left,
        plot_right=width - RIGHT,
        plot_bottom=height - BOTTOM,
    )


# --- Horizontal bars (one per item: models) --------------------------------------------------------

BAR_H, BAR_GAP, LABEL_W, BARS_W, VALUE_W = 20, 8, 150, 380, 64


@dataclass(frozen=True)
class HBar:
    label: str  # shown (shortened)
    full_label: str  # the tooltip
    value_label: str
    y: float
    w: float
    css: str
    text_y: float = 0.0  # the middle of the bar, for its label and value
    value_x: float = 0.0  # where the value is written, just past the bar


@dataclass(frozen=True)
class HBars:
    bars: list[HBar]
    width: int = BARS_W
    height: int = 0
    label_w: int = LABEL_W
    bar_h: int = BAR_H
    empty: bool = False


def hbars(items: list[tuple[str, float, str, str]], *, max_label: int = 21) -> HBars:
    """Items are (label, value, value label, css), drawn in the order given, longest bar the
    full plot width; labels longer than `max_label` characters are shortened (the tooltip and
    the table keep them whole)."""
    items = [item for item in items if item[1] is not None]
    if not items or not any(value > 0 for _, value, _, _ in items):
        return HBars([], empty=True)
    largest = max(value for _, value, _, _ in items) or 1.0
    span = BARS_W - LABEL_W - VALUE_W
    bars = []
    for index, (label, value, value_label, css) in enumerate(items):
        short = label if len(label) <= max_label else label[: max_label - 1] + "…"
        width = round(max(value, 0.0) / largest * span, 1)
        y = index * (BAR_H + BAR_GAP) + 4
        width = max(width, 0.6)
        bars.append(
            HBar(
                short,
                label,
                value_label,
                y,
                width,
                css,
                text_y=y + BAR_H / 2,
                value_x=round(LABEL_W + width + 6, 1),
            )
        )
    return HBars(bars, height=len(bars) * (BAR_H + BAR_GAP) + 4)


# --- A share bar (parts of one whole: providers) ----------------------------------------------------

SHARE_W, SHARE_H = 560, 28


@dataclass(frozen=True)
class Part:
    label: str
    value: float
    percent: float
    x: float
    w: float
    css: str


@dataclass(frozen=True)
class Share:
    parts: list[Part]
    width: int = SHARE_W
    height: int = SHARE_H
    empty: bool = False


def share(items: list[tuple[str, float, str]]) -> Share:
    """Items are (label, value, css); one bar split in proportion (negative values are 0)."""
    total = sum(max(value, 0.0) for _, value, _ in items)
    if total <= 0:
        return Share([], empty=True)
    parts, x = [], 0.0
    for label, value, css in items:
        value = max(value, 0.0)
        width = value / total * SHARE_W
        parts.append(
            Part(label, value, round(value / total * 100, 1), round(x, 1), round(width, 1), css)
        )
        x += width
    return Share(parts)
