"""Which series a series differs from: partners() in one pass equals differs_from() per series."""

from __future__ import annotations

import pandas as pd

from heapseg.charts.intervals import PAIR_COLUMNS, differs_from, partners


def pairs_table(rows: list[tuple]) -> pd.DataFrame:
    """Pairs rows (period, a, b, significant) padded with the other columns of a pairs table."""
    table = pd.DataFrame(rows, columns=["period", "a", "b", "significant"])
    for column in PAIR_COLUMNS:
        if column not in table:
            table[column] = 0.0
    return table


def test_partners_by_period_in_pairs_order():
    table = pairs_table(
        [
            (1, "Paid", "Free", True),
            (1, "Paid", "Trial", True),
            (1, "Free", "Trial", False),
            (2, "Paid", "Free", False),
            (2, "Trial", "Paid", True),
        ]
    )
    found = partners(table, ["period"])
    assert found == {
        ("Paid", 1): "Free, Trial",
        ("Free", 1): "Paid",
        ("Trial", 1): "Paid",
        ("Trial", 2): "Paid",
        ("Paid", 2): "Trial",
    }
    for name in ("Paid", "Free", "Trial"):
        for period in (1, 2):
            assert differs_from(table, name, {"period": period}) == found.get((name, period), "")
    # Without a column: every significant pair, whatever its period.
    assert differs_from(table, "Paid") == "Free, Trial, Trial"
    assert partners(table)[("Free",)] == "Paid"


def test_no_significant_pair_means_no_partner():
    table = pairs_table([(1, "A", "B", False)])
    assert partners(table, ["period"]) == {}
    assert differs_from(table, "A", {"period": 1}) == ""
