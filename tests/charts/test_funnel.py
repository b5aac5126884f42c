"""Funnel by segment: per-user pandas recomputations from the raw events."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from heapseg.charts import ALL_USERS, ChartError, funnel
from tests.charts.conftest import AS_OF, PAID

STEPS = ["Session", "Add to Cart", "Completed Order"]


def _funnel_by_user(events: pd.DataFrame) -> pd.DataFrame:
    """t0, t1, t2 per user, step by step, from the raw events (plain pandas)."""
    first = events[(events["event"] == STEPS[0]) & (events["time"] > AS_OF - timedelta(days=30))]
    reached = first.groupby("user_id")["time"].min().rename("t0").to_frame()
    previous = reached["t0"]
    for k, name in enumerate(STEPS[1:], start=1):
        later = events[events["event"] == name].merge(
            reached[["t0"]].assign(prev=previous), left_on="user_id", right_index=True
        )
        later = later[
            (later["time"] > later["prev"]) & (later["time"] <= later["t0"] + timedelta(days=7))
        ]
        reached[f"t{k}"] = later.groupby("user_id")["time"].min()
        previous = reached[f"t{k}"]
    return reached


def test_funnel_matches_pandas(ds, oracle, executed):
    _chart, data = funnel(ds, STEPS, by={"Paid": PAID}, include_all=True, return_data=True)
    assert executed == [1]
    reached = _funnel_by_user(oracle.upto())
    paid = reached[reached.index.isin(oracle.members(PAID))]
    everyone = reached[reached.index.isin(oracle.everyone())]
    for name, frame in (("Paid", paid), (ALL_USERS, everyone)):
        got = data[data["segment"] == name].sort_values("step")
        expected = [int(frame[f"t{k}"].notna().sum()) for k in range(len(STEPS))]
        assert got["users"].tolist() == expected
        assert got["conversion"].tolist() == pytest.approx([n / expected[0] for n in expected])
        assert got["from_previous"].iloc[2] == pytest.approx(expected[2] / expected[1])
    assert data["users"].iloc[1] > 0


def test_funnel_needs_two_steps(ds):
    with pytest.raises(ChartError, match="two steps"):
        funnel(ds, ["Session"])
