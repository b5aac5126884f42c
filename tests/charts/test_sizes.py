"""Segment sizes: a catalog's segments by category, counts against the reference."""

from __future__ import annotations

import pandas as pd
import pytest

from heapseg.catalog import Catalog
from heapseg.charts import sizes
from tests.charts.conftest import BUYERS, PAID, SHOPPERS


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "team.json", user="ana")
    cat.save(PAID, "Paid", category="Plans")
    cat.save(BUYERS, "Buyers", category="Commerce")
    cat.save(SHOPPERS, "Window shoppers", category="Commerce")
    return cat


def test_catalog_sizes_by_category(ds, oracle, catalog, executed):
    chart, data = sizes(ds, catalog, return_data=True)
    assert executed == [1]
    rows = data.set_index("segment")
    total = len(oracle.everyone())
    for name, definition, category in (
        ("Paid", PAID, "Plans"),
        ("Buyers", BUYERS, "Commerce"),
        ("Window shoppers", SHOPPERS, "Commerce"),
    ):
        assert rows.loc[name, "users"] == len(oracle.members(definition))
        assert rows.loc[name, "share"] == pytest.approx(len(oracle.members(definition)) / total)
        assert rows.loc[name, "category"] == category
    assert chart.to_dict()["facet"]["row"]["field"] == "category"


def test_one_category_and_a_broken_segment(ds, catalog):
    only = sizes(ds, catalog, category="plans", return_data=True)[1]
    assert only["segment"].tolist() == ["Paid"]
    broken = {
        "combinator": "and",
        "rules": [{"kind": "user", "field": "no_such_column", "operator": "=", "value": "x"}],
    }
    with pytest.warns(UserWarning, match="no_such_column"):
        data = sizes(ds, {"Paid": PAID, "Broken": broken}, return_data=True)[1]
    rows = data.set_index("segment")
    assert rows.loc["Broken", "problem"] and pd.isna(rows.loc["Broken", "users"])
    assert rows.loc["Paid", "users"] > 0
