"""The Usage dashboard's charts, from figures already read (no queries here): geometry from
`workbench.charts`, labels in the one money format. Each chart carries the rows of its text
alternative (the table under it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from billing import money
from billing.usage_figures import UsageFigures
from workbench import charts

TOP_MODELS = 8
PROVIDER_SERIES = charts.SERIES - 1  # the last colour is "other providers"


@dataclass(frozen=True)
class Chart:
    key: str  # DOM ids: chart-<key>
    title: str
    description: str  # the SVG's <desc>: what it shows and what stands out
    kind: str  # columns | hbars | share
    geometry: object
    headers: list[str]
    rows: list[list[str]]
    note: str = ""  # a line under the chart (what it leaves out)

    @property
    def empty(self) -> bool:
        return self.geometry.empty


def _columns(*args, **kwargs) -> charts.Columns:
    # Narrower than the playground's: two charts side by side, and legible on a phone.
    return charts.columns(*args, width=480, height=280, left=62, **kwargs)


def _day_label(day: date, days: int) -> str:
    return f"{day:%b} {day.day}" if days > 1 else "Today"


def _providers_series(figures: UsageFigures) -> dict[str, tuple[str, str]]:
    """Preset → (css class, label): the costliest providers get their own colour."""
    series = {}
    for index, (preset, label, _, _) in enumerate(figures.providers):
        if index < PROVIDER_SERIES:
            series[preset] = (f"series-{index}", label)
        else:
            series[preset] = (f"series-{PROVIDER_SERIES}", "Other providers")
    return series


def _spend_per_day(figures: UsageFigures) -> Chart:
    series = _providers_series(figures)
    categories, stacks, rows = [], [], []
    for day in figures.days:
        label = _day_label(day.day, len(figures.days))
        categories.append(label)
        merged: dict[str, float] = {}
        for preset, cost in day.cost_by_preset.items():
            css, name = series.get(preset, (f"series-{PROVIDER_SERIES}", preset))
            merged[(css, name)] = merged.get((css, name), 0.0) + float(cost)
        stacks.append(
            [
                charts.Segment(css, value, f"{label} · {name}: {money.chart_usd(value)}")
                for (css, name), value in sorted(merged.items())
            ]
        )
        rows.append(
            [f"{day.day:%Y-%m-%d}", money.total_label(day.cost, unpriced=day.unpriced_calls)]
        )
    legend = sorted({series[preset] for preset, _, cost, _ in figures.providers if cost > 0})
    geometry = _columns(
        categories, stacks, y_label="Cost (USD)", y_format=money.chart_usd, legend=legend
    )
    costliest = max(figures.days, key=lambda d: d.cost, default=None)
    peak = (
        f" The costliest day was {costliest.day:%b} {costliest.day.day} at "
        f"{money.usd(costliest.cost)}."
        if costliest and costliest.cost
        else ""
    )
    return Chart(
        "spend",
        "Spend per day, by provider",
        f"Daily cost over {len(figures.days)} days, each day's column split by provider.{peak}",
        "columns",
        geometry,
        ["Day", "Cost"],
        rows,
    )


def _provider_share(figures: UsageFigures) -> Chart:
    series = _providers_series(figures)
    priced = [p for p in figures.providers if p[2] > 0]
    geometry = charts.share(
        [(label, float(cost), series[preset][0]) for preset, label, cost, _ in priced]
    )
    percents = {part.label: part.percent for part in geometry.parts}
    rows = [
        [
            label,
            money.usd(cost) if cost else "—",
            f"{percents[label]:g} %" if label in percents else "—",
            f"{calls:,}",
        ]
        for _, label, cost, calls in figures.providers
    ]
    left_out = [label for _, label, cost, _ in figures.providers if cost <= 0]
    lead = geometry.parts[0] if geometry.parts else None
    description = f"{lead.label} is {lead.percent:g} % of the spend." if lead else "No spend."
    if left_out:
        description += f" Not in the bar (no cost: local or unpriced): {', '.join(left_out)}."
    return Chart(
        "share",
        "Share of spend by provider",
        description,
        "share",
        geometry,
        ["Provider", "Cost", "Share", "Calls"],
        rows,
        note=f"No cost (local or unpriced): {', '.join(left_out)}." if left_out else "",
    )


def _top_models(figures: UsageFigures) -> Chart:
    top = [m for m in figures.models if m.cost > 0][:TOP_MODELS]
    geometry = charts.hbars(
        [(m.model, float(m.cost), money.chart_usd(float(m.cost)), "bar-accent") for m in top]
    )
    return Chart(
        "models",
        f"Top {len(top)} models by cost" if top else "Top models by cost",
        "The costliest models of the period, longest bar first.",
        "hbars",
        geometry,
        ["Model", "Provider", "Cost"],
        [[m.model, m.provider, m.cost_label] for m in top],
    )


def _requests_per_day(figures: UsageFigures) -> Chart:
    categories, stacks, rows = [], [], []
    for day in figures.days:
        label = _day_label(day.day, len(figures.days))
        categories.append(label)
        good = day.calls - day.errors
        stacks.append(
            [
                charts.Segment("series-0", good, f"{label}: {good:,} calls without error"),
                charts.Segment("bar-danger", day.errors, f"{label}: {day.errors:,} errors"),
            ]
        )
        rows.append([f"{day.day:%Y-%m-%d}", f"{day.calls:,}", f"{day.errors:,}"])
    return Chart(
        "requests",
        "Requests per day",
        f"{figures.totals.calls:,} calls in the period, errors stacked on top in red.",
        "columns",
        _columns(
            categories,
            stacks,
            y_label="Calls",
            y_format=charts.count_label,
            legend=[("series-0", "Calls"), ("bar-danger", "Errors")],
        ),
        ["Day", "Calls", "Errors"],
        rows,
    )


def _tokens_per_day(figures: UsageFigures) -> Chart:
    categories, stacks, rows = [], [], []
    for day in figures.days:
        label = _day_label(day.day, len(figures.days))
        categories.append(label)
        stacks.append(
            [
                charts.Segment("series-5", day.input_tokens, f"{label}: {day.input_tokens:,} in"),
                charts.Segment(
                    "series-1", day.output_tokens, f"{label}: {day.output_tokens:,} out"
                ),
            ]
        )
        rows.append([f"{day.day:%Y-%m-%d}", f"{day.input_tokens:,}", f"{day.output_tokens:,}"])
    return Chart(
        "tokens",
        "Tokens per day",
        f"{figures.totals.input_tokens:,} tokens in and {figures.totals.output_tokens:,} out.",
        "columns",
        _columns(
            categories,
            stacks,
            y_label="Tokens",
            y_format=charts.count_label,
            legend=[("series-5", "Input"), ("series-1", "Output")],
        ),
        ["Day", "Input tokens", "Output tokens"],
        rows,
    )


def _ttft(figures: UsageFigures) -> Chart:
    measured = sorted(
        (m for m in figures.models if m.avg_ttft_ms is not None), key=lambda m: m.avg_ttft_ms
    )[:TOP_MODELS]
    return Chart(
        "ttft",
        "Time to first token per model",
        "Average time to the first token, fastest first (shorter is better).",
        "hbars",
        charts.hbars(
            [
                (m.model, m.avg_ttft_ms, charts.seconds_label(m.avg_ttft_ms), "series-4")
                for m in measured
            ]
        ),
        ["Model", "Average TTFT", "Calls measured"],
        [[m.model, charts.seconds_label(m.avg_ttft_ms), f"{m.ttft_count:,}"] for m in measured],
    )


def _throughput(figures: UsageFigures) -> Chart:
    measured = sorted(
        (m for m in figures.models if m.tokens_per_second is not None),
        key=lambda m: -m.tokens_per_second,
    )[:TOP_MODELS]
    return Chart(
        "tps",
        "Output tokens per second per model",
        "Output tokens over the time spent generating them, fastest first (longer is better).",
        "hbars",
        charts.hbars(
            [
                (m.model, m.tokens_per_second, f"{m.tokens_per_second:.0f}/s", "series-2")
                for m in measured
            ]
        ),
        ["Model", "Tokens/s", "Output tokens measured"],
        [[m.model, f"{m.tokens_per_second:.1f}", f"{m.gen_output_tokens:,}"] for m in measured],
    )


def _error_rate(figures: UsageFigures) -> Chart:
    categories, stacks, rows = [], [], []
    for day in figures.days:
        label = _day_label(day.day, len(figures.days))
        categories.append(label)
        rate = day.error_rate
        value = rate or 0.0
        stacks.append(
            [charts.Segment("bar-danger", value, f"{label}: {charts.percent_label(value)} errors")]
        )
        rows.append(
            [
                f"{day.day:%Y-%m-%d}",
                "—" if rate is None else charts.percent_label(rate),
                f"{day.errors:,}",
            ]
        )
    overall = figures.totals.error_rate
    return Chart(
        "errors",
        "Error rate per day",
        "Share of calls that ended in an error"
        + (f"; {charts.percent_label(overall)} over the period." if overall is not None else "."),
        "columns",
        _columns(categories, stacks, y_label="Errors (% of calls)", y_format=charts.percent_label),
        ["Day", "Error rate", "Errors"],
        rows,
    )


def usage_charts(*, figures: UsageFigures) -> list[Chart]:
    return [
        _spend_per_day(figures),
        _provider_share(figures),
        _top_models(figures),
        _requests_per_day(figures),
        _tokens_per_day(figures),
        _ttft(figures),
        _throughput(figures),
        _error_rate(figures),
    ]
