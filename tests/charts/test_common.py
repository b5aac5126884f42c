"""Shared chart machinery: the ways to pass segments, colours and periods."""

from __future__ import annotations

from datetime import datetime

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.charts import ChartError, SegmentColors, not_in, trend
from heapseg.charts.common import NEUTRAL, chart_segments, period_starts
from tests.charts.conftest import BUYERS, PAID


def test_every_way_of_naming_segments(tmp_path):
    cat = Catalog(tmp_path / "c.json", user="ana")
    entry = cat.save(PAID, "Paid users", category="Plans")
    model = heapseg.user.country == "DE"
    found = chart_segments(
        [model, PAID, ("Buyers", BUYERS), entry, "Paid users", not_in(entry)], resolver=cat
    )
    assert [s.name for s in found] == [
        "country = DE",
        found[1].name,
        "Buyers",
        "Paid users",
        "Paid users (2)",
        "not in Paid users",
    ]
    assert found[3].category == "Plans" and found[3].segment == found[4].segment
    assert found[5].segment.negate
    assert [s.name for s in chart_segments({"A": PAID, "B": BUYERS})] == ["A", "B"]
    assert [s.name for s in chart_segments(cat)] == ["Paid users"]
    assert len(chart_segments(PAID)) == 1 and len(chart_segments(("Paid", PAID))) == 1


def test_a_name_needs_a_catalog():
    with pytest.raises(ChartError, match="resolver"):
        chart_segments(["Paid users"])


def test_static_catalog_segment_uses_its_frozen_members(ds, oracle, tmp_path):
    cat = Catalog(tmp_path / "c.json", user="ana")
    entry = cat.save(PAID, "Paid", category="Plans")
    cat.freeze(entry, ds, as_of=datetime(2026, 9, 1))
    frozen = cat.get("Paid")
    assert frozen.is_static
    with pytest.raises(ChartError, match="resolver"):
        chart_segments([frozen])
    data = heapseg.charts.compare(ds, [frozen], resolver=cat, return_data=True)[1]
    assert data.set_index("segment").loc["Paid", "users"] == len(cat.static_members(frozen))


def test_colours_are_stable_and_neutral_for_everybody():
    palette = SegmentColors(["#111111", "#222222"])
    assert palette["a"] == "#111111" and palette["b"] == "#222222" and palette["a"] == "#111111"
    assert palette["c"] == "#111111"  # past the end the palette repeats
    assert palette["All users"] == NEUTRAL["All users"] and palette["Rest"] == NEUTRAL["Rest"]
    palette.set("a", "red")
    assert palette["a"] == "red"
    palette.reset()
    assert palette.assigned() == {}


def test_periods_end_with_the_one_holding_as_of():
    mid = datetime(2026, 9, 15, 12)
    assert period_starts(mid, "day", 2) == [datetime(2026, 9, 14), datetime(2026, 9, 15)]
    midnight = datetime(2026, 9, 15)
    assert period_starts(midnight, "day", 2) == [datetime(2026, 9, 13), datetime(2026, 9, 14)]
    assert period_starts(mid, "week", 1) == [datetime(2026, 9, 14)]  # ISO weeks start Monday
    assert period_starts(mid, "month", None, start="2026-07-20") == [
        datetime(2026, 7, 1),
        datetime(2026, 8, 1),
        datetime(2026, 9, 1),
    ]
    with pytest.raises(ChartError):
        period_starts(mid, "day", 0)


def test_chart_with_nothing_to_draw_is_an_error(ds):
    with pytest.raises(ChartError, match="nothing to draw"):
        trend(ds, "Session", include_all=False)
