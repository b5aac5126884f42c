"""Trend charts: numbers against pandas on the raw tables, windows, filters and guards."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

import heapseg
from heapseg.charts import ALL_USERS, ChartError, not_in, trend
from tests.charts.conftest import AS_OF, BUYERS, PAID
from tests.data_helpers import dataset


def _expected(events: pd.DataFrame, days: pd.DatetimeIndex, users: set | None, fn: str) -> list:
    if users is not None:
        events = events[events["user_id"].isin(users)]
    per_day = events.groupby(events["time"].dt.floor("D"))
    values = per_day.size() if fn == "events" else per_day["user_id"].nunique()
    return [int(values.get(day, 0)) for day in days]


def _series(data: pd.DataFrame, name: str) -> list:
    return data[data["segment"] == name]["value"].tolist()


@pytest.mark.parametrize("measure", ["events", "users"])
def test_daily_trend_by_segments_matches_pandas(ds, oracle, measure):
    chart, data = trend(
        ds,
        "Session",
        by={"Paid": PAID, "Buyers": BUYERS},
        include_all=True,
        measure=measure,
        return_data=True,
    )
    days = pd.date_range(end="2026-09-15", periods=30, freq="D")
    sessions = oracle.upto()
    sessions = sessions[(sessions["event"] == "Session") & (sessions["time"] >= days[0])]
    assert _series(data, "Paid") == _expected(sessions, days, oracle.members(PAID), measure)
    assert _series(data, "Buyers") == _expected(sessions, days, oracle.members(BUYERS), measure)
    everyone = oracle.everyone()  # users who had joined at as_of
    assert _series(data, ALL_USERS) == _expected(sessions, days, everyone, measure)
    assert chart.data is data
    assert list(data["period"].drop_duplicates().dt.tz_localize(None)) == list(days)
    # as_of is mid-day: the last day is still running, and events after as_of were left out.
    assert data.groupby("period")["complete"].first().tolist() == [True] * 29 + [False]
    assert (oracle.events["time"] > AS_OF).any()


def test_weekly_sum_with_where_and_filter(ds, oracle):
    where = {
        "kind": "event_property",
        "field": "payment_method",
        "operator": "=",
        "value": "paypal",
    }
    data = trend(
        ds,
        "Completed Order",
        filter=not_in(PAID),
        where=where,
        measure="sum",
        property="revenue",
        interval="week",
        last=6,
        return_data=True,
    )[1]
    weeks = pd.date_range(end="2026-09-14", periods=6, freq="W-MON")
    orders = oracle.upto()
    orders = orders[
        (orders["event"] == "Completed Order")
        & (orders["payment_method"] == "paypal")
        & ~orders["user_id"].isin(oracle.members(PAID))
        & (orders["time"] >= weeks[0])
    ]
    sums = orders.groupby(orders["time"].dt.to_period("W-SUN").dt.start_time)["revenue"].sum()
    expected = [round(float(sums.get(w, 0.0)), 6) for w in weeks]
    assert [round(v, 6) for v in data["value"]] == expected
    assert set(data["segment"]) == {ALL_USERS}
    assert sum(expected) > 0


def test_model_objects_and_tilde_filter_give_the_same_numbers(ds):
    paid = heapseg.user.subscription_type == "paid"
    by_model = trend(ds, "Session", filter=~paid, last=7, return_data=True)[1]
    by_dict = trend(ds, "Session", filter=not_in(PAID), last=7, return_data=True)[1]
    assert by_model["value"].tolist() == by_dict["value"].tolist()


def test_events_of_unknown_users_and_after_as_of_are_ignored():
    small = dataset(
        [{"user_id": "a", "plan": "paid"}, {"user_id": "b", "plan": "free"}],
        [
            ("a", "2024-03-30 10:00", "Session"),
            ("a", "2024-03-31 11:00", "Session"),
            ("b", "2024-03-31 11:59", "Session"),
            ("a", "2024-03-31 12:30", "Session"),  # after as_of
            ("ghost", "2024-03-31 09:00", "Session"),  # no such user
            ("anon", "2024-03-30 08:00", "Session"),  # merged into b
        ],
        migrations=[("anon", "b")],
    )
    paid = {
        "combinator": "and",
        "rules": [{"kind": "user", "field": "plan", "operator": "=", "value": "paid"}],
    }
    data = trend(
        small,
        "Session",
        by=[("Paid", paid)],
        include_all=True,
        last=2,
        as_of=datetime(2024, 3, 31, 12),
        return_data=True,
    )[1]
    table = data.pivot(index="period", columns="segment", values="value")
    assert table["Paid"].tolist() == [1, 1]
    assert table[ALL_USERS].tolist() == [2, 2]


def test_too_many_points_is_refused_before_any_query(ds, executed):
    with pytest.raises(ChartError, match="points"):
        trend(ds, "Session", by=[PAID, BUYERS], interval="hour", last=24 * 365)
    assert executed == []


def test_bad_arguments_are_reported(ds):
    with pytest.raises(ChartError, match="interval"):
        trend(ds, "Session", interval="fortnight")
    with pytest.raises(ChartError, match="property"):
        trend(ds, "Completed Order", measure="sum")
    with pytest.raises(ChartError, match="numeric"):
        trend(ds, "Completed Order", measure="sum", property="payment_method")
