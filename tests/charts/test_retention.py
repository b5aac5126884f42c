"""Retention by segment: per-user pandas recomputations from the raw events."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from heapseg.charts import ALL_USERS, ChartError, retention
from tests.charts.conftest import AS_OF, BUYERS, PAID, SHOPPERS
from tests.data_helpers import dataset


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


def _expected(oracle, members, unit, periods, back, convention):
    """(eligible, retained) per period with pandas: Session starts, Completed Order returns."""
    events = oracle.upto()
    span = timedelta(days=1) if unit == "day" else timedelta(weeks=1)
    starts = events[(events["event"] == "Session") & (events["time"] > AS_OF - back * span)]
    t0 = starts.groupby("user_id")["time"].min()
    t0 = t0[t0.index.isin(members)]
    if convention == "calendar":
        anchor = t0.dt.floor("D") if unit == "day" else t0.dt.to_period("W-SUN").dt.start_time
    else:
        anchor = t0
    done = ((AS_OF - anchor) // span) - 1
    back_events = events[events["event"] == "Completed Order"]
    back_events = back_events[back_events["user_id"].isin(t0.index)]
    back_events = back_events[back_events["time"] > back_events["user_id"].map(t0)]
    k = (back_events["time"] - back_events["user_id"].map(anchor)) // span
    out = {}
    for period in range(1, periods + 1):
        eligible = set(done[done >= period].index)
        kept = set(back_events[(k == period) & back_events["user_id"].isin(eligible)]["user_id"])
        out[period] = (len(eligible), len(kept))
    return out


@pytest.mark.parametrize("unit", ["day", "week"])
def test_calendar_convention_matches_pandas(ds, oracle, unit):
    periods, back = 4, 9
    data = retention(
        ds,
        "Session",
        "Completed Order",
        by={"Paid": PAID},
        include_all=True,
        periods=periods,
        unit=unit,
        cohort_last=back,
        convention="calendar",
        return_data=True,
    )[1]
    for name, members in (("Paid", oracle.members(PAID)), (ALL_USERS, oracle.everyone())):
        expected = _expected(oracle, members, unit, periods, back, "calendar")
        got = data[data["segment"] == name].set_index("period")
        assert {k: (got.loc[k, "eligible"], got.loc[k, "retained"]) for k in got.index} == expected
    elapsed = retention(
        ds,
        "Session",
        "Completed Order",
        include_all=True,
        periods=periods,
        unit=unit,
        cohort_last=back,
        return_data=True,
    )[1]
    assert elapsed["eligible"].tolist() != data[data["segment"] == ALL_USERS]["eligible"].tolist()
    assert {
        k: (r.eligible, r.retained)
        for k, r in zip(elapsed["period"], elapsed.itertuples(), strict=True)
    } == (_expected(oracle, oracle.everyone(), unit, periods, back, "elapsed"))


def test_the_two_conventions_on_hand_made_events():
    small = dataset(
        [{"user_id": "a"}],
        [
            ("a", "2024-03-01 23:00", "Signup"),
            ("a", "2024-03-02 01:00", "Visit"),  # calendar day 1; 2 hours after: elapsed day 0
            ("a", "2024-03-03 22:30", "Visit"),  # calendar day 2; 47.5 hours: elapsed day 1
        ],
    )
    as_of = "2024-03-10"

    def retained(convention):
        data = retention(
            small,
            "Signup",
            "Visit",
            unit="day",
            periods=3,
            convention=convention,
            as_of=as_of,
            cohort_last=10,
            return_data=True,
        )[1]
        return data["retained"].tolist()

    assert retained("calendar") == [1, 1, 0]
    assert retained("elapsed") == [1, 0, 0]
    with pytest.raises(ChartError, match="convention"):
        retention(small, "Signup", "Visit", unit="day", convention="utc")


def test_rates_have_wilson_intervals_and_holm_corrected_tests(ds, oracle):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    by = {"Paid": PAID, "Buyers": BUYERS, "Shoppers": SHOPPERS}
    periods = 3
    chart, data = retention(
        ds,
        "Session",
        "Completed Order",
        by=by,
        periods=periods,
        unit="week",
        cohort_last=9,
        return_data=True,
    )
    counts = {
        n: _expected(oracle, oracle.members(d), "week", periods, 9, "elapsed")
        for n, d in by.items()
    }
    for row in data.itertuples():
        eligible, kept = counts[row.segment][row.period]
        assert (row.eligible, row.retained) == (eligible, kept)
        if eligible:
            low, high = proportion.proportion_confint(kept, eligible, alpha=0.05, method="wilson")
            assert (row.low, row.high) == pytest.approx((low, high), abs=1e-12)
    pairs = data.attrs["pairs"]
    assert len(pairs) == 3 * periods  # every pair of the three segments in every period
    expected = []
    for row in pairs.itertuples():
        (na, xa), (nb, xb) = counts[row.a][row.period], counts[row.b][row.period]
        expected.append(proportion.proportions_ztest([xa, xb], [na, nb])[1])
    assert pairs["p_value"].tolist() == pytest.approx(expected, rel=1e-9)
    holm = multitest.multipletests(expected, method="holm")[1]
    assert pairs["p_holm"].tolist() == pytest.approx(list(holm), rel=1e-9)
    layers = chart.to_dict()["layer"]
    assert any(
        layer["mark"]["type"] == "rule" and layer["encoding"]["y2"]["field"] == "high"
        for layer in layers
    )


def test_the_subtitle_explains_the_window_and_the_eligible_users(ds):
    chart, data = retention(
        ds,
        "Session",
        "Completed Order",
        filter=("Paid users", PAID),
        periods=6,
        unit="week",
        return_data=True,
    )
    assert set(data["segment"]) == {"Paid users"}  # the filter, not "All users"
    lines = chart.title.subtitle
    assert "cohort_last=10 weeks" in lines[1] and "week N (elapsed)" in lines[1]
    assert "only users in: Paid users" in lines[0]
    first, last = data["eligible"].iloc[0], data["eligible"].iloc[-1]
    assert f"Paid users {first:,} → {last:,}" in lines[2]
    tooltips = {t["field"] for t in chart.to_dict()["layer"][0]["encoding"]["tooltip"]}
    assert {"cohort", "eligible", "retained", "low", "high"} <= tooltips
    calendar = retention(ds, "Session", periods=2, unit="day", convention="calendar")
    assert "day N (UTC calendar)" in calendar.title.subtitle[1]
