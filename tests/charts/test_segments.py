"""The ways to pass segments to a chart: models, dicts, pairs, entries, names and catalogs."""

from __future__ import annotations

from datetime import datetime

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.charts import ChartError, not_in
from heapseg.charts.segments import chart_segments
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
