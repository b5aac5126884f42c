"""Overlap: pairwise counts and Jaccard against the reference members."""

from __future__ import annotations

import itertools

import pytest

from heapseg.charts import ChartError, overlap
from tests.charts.conftest import BUYERS, PAID, SHOPPERS


def test_pairs_match_the_reference_sets(ds, oracle, executed):
    segments = {"Paid": PAID, "Buyers": BUYERS, "Shoppers": SHOPPERS}
    _chart, data = overlap(ds, segments, return_data=True)
    assert executed == [1]
    assert len(data) == 9
    cells = data.set_index(["a", "b"])
    for (a, da), (b, db) in itertools.product(segments.items(), repeat=2):
        sa, sb = oracle.members(da), oracle.members(db)
        cell = cells.loc[(a, b)]
        assert cell["both"] == len(sa & sb)
        assert cell["either"] == len(sa | sb)
        assert cell["jaccard"] == pytest.approx(len(sa & sb) / len(sa | sb))
        assert cell["share_of_a"] == pytest.approx(len(sa & sb) / len(sa))
    # Buyers did order, shoppers never did: the reference agrees they never meet.
    assert cells.loc[("Buyers", "Shoppers"), "both"] == 0


def test_needs_two_segments(ds):
    with pytest.raises(ChartError, match="two"):
        overlap(ds, [PAID])
