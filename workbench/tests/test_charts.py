"""The charts' geometry (workbench/charts.py): what is drawn stays inside the plot and in
proportion, nothing is drawn for nothing, long labels are shortened (the tables keep them)."""

from __future__ import annotations

import itertools

import pytest

from workbench import charts


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 0.0042), (0, 937), (0, 12_345_678), (3, 3)])
def test_nice_ticks_cover_the_range_in_round_steps(low, high):
    ticks = charts.nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and len(ticks) <= 7
    steps = {round(b - a, 12) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_stacked_columns_stay_in_the_plot_and_in_proportion():
    stacks = [
        [charts.Segment("series-0", 3, "a"), charts.Segment("series-1", 1, "b")],
        [charts.Segment("series-0", 2, "c")],
        [],
    ]
    chart = charts.columns(["d1", "d2", "d3"], stacks, y_label="Cost", y_format=str)
    assert not chart.empty and len(chart.rects) == 3
    for rect in chart.rects:
        assert chart.top <= rect.y and rect.y + rect.h <= chart.plot_bottom + 0.1
        assert chart.left <= rect.x and rect.x + rect.w <= chart.plot_right
    first, second, other = chart.rects
    assert first.h == pytest.approx(3 * second.h, rel=0.01)  # 3 vs 1, stacked
    assert second.y + second.h == pytest.approx(first.y, abs=0.2)  # on top of it
    assert other.h == pytest.approx(2 * second.h, rel=0.01)


def test_columns_with_nothing_to_show_are_empty():
    assert charts.columns(["d1"], [[charts.Segment("s", 0, "")]], y_label="", y_format=str).empty
    assert charts.columns([], [], y_label="", y_format=str).empty


def test_horizontal_bars_scale_to_the_largest_and_shorten_long_labels():
    chart = charts.hbars(
        [("a-very-long-model-name-indeed-v2", 10.0, "10", "x"), ("short", 5.0, "5", "x")]
    )
    big, small = chart.bars
    assert big.w == pytest.approx(2 * small.w, rel=0.01)
    assert big.label.endswith("…") and len(big.label) <= 21
    assert big.full_label == "a-very-long-model-name-indeed-v2"
    assert big.value_x > chart.label_w + big.w
    assert charts.hbars([("m", 0.0, "0", "x")]).empty


def test_a_share_bar_splits_the_whole_width_and_ignores_negative_parts():
    chart = charts.share([("a", 3.0, "s0"), ("b", 1.0, "s1"), ("c", -2.0, "s2")])
    assert [p.percent for p in chart.parts] == [75.0, 25.0, 0.0]
    assert sum(p.w for p in chart.parts) == pytest.approx(chart.width, abs=0.2)
    assert charts.share([("a", 0.0, "s0")]).empty
