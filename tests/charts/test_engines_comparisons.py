"""Intervals, tests and the fixed time rules on DuckDB, PostgreSQL and Spark: the chart test
sample loaded into each engine gives the ``.data`` (and the pairs tested) of the DuckDB file
the other chart tests use, so the backend's counts, sums and sums of squares agree."""

from __future__ import annotations

import pandas as pd

from heapseg import charts
from tests.charts.conftest import BUYERS, PAID, SHOPPERS, plain

BY = {"Paid": PAID, "Buyers": BUYERS, "Shoppers": SHOPPERS}
STEPS = ["Session", "Add to Cart", "Completed Order"]

CHARTS = {
    "compare-did": lambda ds: charts.compare(ds, BY, event="Add to Cart"),
    "compare-events": lambda ds: charts.compare(
        ds, BY, event="Completed Order", measure="events_per_user"
    ),
    "compare-sum": lambda ds: charts.compare(
        ds, {"Paid": PAID}, event="Completed Order", measure="sum_per_user", property="revenue"
    ),
    "compare-avg": lambda ds: charts.compare(
        ds, BY, event="Completed Order", measure="avg", property="revenue"
    ),
    "compare-user-avg": lambda ds: charts.compare(ds, BY, property="ltv"),
    "retention": lambda ds: charts.retention(
        ds, "Session", "Completed Order", by=BY, periods=3, cohort_last=8
    ),
    "retention-calendar": lambda ds: charts.retention(
        ds,
        "Session",
        by={"Paid": PAID},
        include_all=True,
        periods=4,
        unit="day",
        convention="calendar",
    ),
    "funnel": lambda ds: charts.funnel(ds, STEPS, by=BY),
    "trend-at-midnight": lambda ds: charts.trend(
        ds, "Session", by={"Paid": PAID}, last=3, as_of="2026-09-15"
    ),
    "size-over-time": lambda ds: charts.size_over_time(ds, {"Buyers": BUYERS}, last=3),
    "breakdown-bins": lambda ds: charts.breakdown(ds, BUYERS, "ltv", bins=5),
}


def test_each_engine_gives_the_same_intervals_and_tests(ds, engine, backend_name):
    for name, draw in CHARTS.items():
        want, got = draw(ds).data, draw(engine).data
        where = f"{name} on {backend_name}"
        pd.testing.assert_frame_equal(
            plain(got), plain(want), check_dtype=False, rtol=1e-9, obj=where
        )
        if "pairs" in want.attrs:
            pd.testing.assert_frame_equal(
                got.attrs["pairs"], want.attrs["pairs"], check_dtype=False, rtol=1e-7, obj=where
            )
        assert got.attrs.get("edges") == want.attrs.get("edges"), where
