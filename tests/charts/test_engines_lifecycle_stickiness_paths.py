"""Lifecycle, stickiness and paths on DuckDB, PostgreSQL and Spark: the chart test sample loaded
into each engine gives exactly the ``.data`` of the DuckDB file the other chart tests use."""

from __future__ import annotations

import pandas as pd

from heapseg import charts
from tests.charts.conftest import BUYERS, PAID, plain

BY = {"Paid": PAID, "Buyers": BUYERS}
WHERE = {"kind": "event_property", "field": "quantity", "operator": ">", "value": 1}

CHARTS = {
    "lifecycle": lambda ds: charts.lifecycle(
        ds, "Session", by=BY, include_all=True, interval="week", last=5
    ),
    "lifecycle-first-month": lambda ds: charts.lifecycle(
        ds, by=BY, interval="month", last=3, new="first"
    ),
    "stickiness": lambda ds: charts.stickiness(ds, "Session", by=BY, include_all=True),
    "paths": lambda ds: charts.paths(
        ds, "Add to Cart", by=BY, include_all=True, steps=2, top=4, where=WHERE
    ),
}


def test_each_engine_draws_the_same_numbers(ds, engine, backend_name):
    for name, draw in CHARTS.items():
        want, got = plain(draw(ds).data), plain(draw(engine).data)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=f"{name} on {backend_name}")
        assert want["users"].sum() > 0, name
