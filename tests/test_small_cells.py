"""The overview's small-cell rule (engine/overview.py), once for the API, the CSV and the charts; no app needed."""
from __future__ import annotations

from engine import overview


def test_it_reads_the_threshold_from_the_region_with_5_as_the_default():
    assert overview.threshold_of(None) == overview.threshold_of({}) == 5
    assert overview.threshold_of({"small_cell_threshold": 3}) == 3
    assert overview.threshold_of({"small_cell_threshold": None}) == 5
    assert overview.threshold_of({"small_cell_threshold": -2}) == 1


def test_it_shows_counts_of_1_to_4_as_less_than_5():
    assert [overview.shown(n, 5) for n in (0, 1, 4, 5, 12)] == ["0", "< 5", "< 5", "5", "12"]
    assert overview.cell(3, 5) == {"count": None, "display": "< 5"}
    assert overview.cell(3, 5, protected=False) == {"count": 3, "display": "3"}
    assert overview.cell(0, 5) == {"count": 0, "display": "0"}


def test_a_total_with_hidden_parts_is_a_range():
    assert overview.bounded([6, 1, 3, 0], 5) == (8, "8–14")
    assert overview.bounded([1], 5) == (1, "< 5")
    assert overview.bounded([6, 7], 5) == (13, "13")
    assert overview.bounded([], 5) == (0, "0")


def test_the_charts_use_the_same_rule():
    from web import svg

    assert svg.threshold() == 5  # outside an app: the default
    assert svg.shown(2) == overview.shown(2, 5) and svg.bounded([6, 1]) == overview.bounded([6, 1], 5)


def test_a_small_count_is_drawn_as_a_marker_not_as_a_bar():
    import re

    from web import svg

    chart = str(svg.hbar_chart([("Meander", 2), ("Gelre", 40)], "t", "d", "c"))
    widths = [float(w) for w in re.findall(r'<rect x="200" y="\d+" width="([\d.]+)"', chart)]
    assert widths == [svg.MARKER, 250.0] and "&lt; 5" in chart and 'fill="url(#c-hatch)"' in chart
    columns = str(svg.column_chart(["jan"], [("Aios", "s0", [3])], "t", "d", "k"))
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="url\(#k-hatch\)"', columns)]
    assert heights == [svg.MARKER]
