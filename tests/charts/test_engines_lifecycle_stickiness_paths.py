"""Lifecycle, stickiness and paths on DuckDB, PostgreSQL and Spark: the chart test sample loaded
into each engine gives exactly the ``.data`` of the DuckDB file the other chart tests use."""

from __future__ import annotations

import pandas as pd

import heapseg
from heapseg import charts
from tests.charts.conftest import AS_OF, BUYERS, PAID

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


def _tables(oracle) -> dict[str, pd.DataFrame]:
    return {
        "users": oracle.users,
        "events": oracle.raw_events,
        "accounts": oracle.accounts,
        "user_migrations": oracle.migrations,
        "user_history": oracle.user_history,
        "account_history": oracle.account_history,
    }


def _plain(data: pd.DataFrame) -> pd.DataFrame:
    """The frame with engine-neutral types (periods as naive UTC, numbers as Python's)."""
    out = data.copy()
    if "period" in out:
        out["period"] = out["period"].dt.tz_convert("UTC").dt.tz_localize(None)
    return out.reset_index(drop=True)


def test_each_engine_draws_the_same_numbers(ds, oracle, load_tables, backend_name):
    con = load_tables(_tables(oracle))
    engine = heapseg.connect(
        con,
        user_migrations="user_migrations",
        user_history="user_history",
        account_history="account_history",
        as_of=AS_OF,
    )
    for name, draw in CHARTS.items():
        want, got = _plain(draw(ds).data), _plain(draw(engine).data)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=f"{name} on {backend_name}")
        assert want["users"].sum() > 0, name
