"""Retention by segment: per-user pandas recomputations from the raw events."""

from __future__ import annotations

import math
from datetime import timedelta

from heapseg.charts import ALL_USERS, retention
from tests.charts.conftest import AS_OF, PAID


def test_retention_matches_pandas(ds, oracle, executed):
    periods, back = 4, 10
    _chart, data = retention(
        ds,
        "Session",
        "Completed Order",
        by={"Paid": PAID},
        include_all=True,
        periods=periods,
        unit="week",
        cohort_last=back,
        return_data=True,
    )
    # One query; at most a retained row and a cohort row per period (0..periods).
    assert len(executed) == 1 and executed[0] <= 2 * (periods + 1)
    events = oracle.upto()
    week = timedelta(weeks=1)
    starts = events[(events["event"] == "Session") & (events["time"] > AS_OF - back * week)]
    cohort = starts.groupby("user_id")["time"].min().rename("t0").to_frame()
    cohort["done"] = [math.floor((AS_OF - t0) / week) - 1 for t0 in cohort["t0"]]
    back_events = events[events["event"] == "Completed Order"].merge(
        cohort, left_on="user_id", right_index=True
    )
    back_events = back_events[back_events["time"] > back_events["t0"]]
    back_events["k"] = [
        math.floor((t - t0) / week)
        for t, t0 in zip(back_events["time"], back_events["t0"], strict=True)
    ]
    for name, members in (("Paid", oracle.members(PAID)), (ALL_USERS, oracle.everyone())):
        mine = cohort[cohort.index.isin(members)]
        got = data[data["segment"] == name].set_index("period")
        for k in range(1, periods + 1):
            eligible = mine[mine["done"] >= k]
            kept = back_events[
                (back_events["k"] == k) & back_events["user_id"].isin(eligible.index)
            ]
            assert got.loc[k, "eligible"] == len(eligible)
            assert got.loc[k, "retained"] == kept["user_id"].nunique()
        assert got["cohort"].iloc[0] == len(mine)
    assert data["retained"].sum() > 0
