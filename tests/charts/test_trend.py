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
    assert set(data["segment"]) == {"not in subscription_type = paid"}  # the filter, not all users
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


def _sessions_at_hours(hours: list[str]) -> heapseg.Dataset:
    users = [{"user_id": "a", "plan": "paid"}, {"user_id": "b", "plan": "free"}]
    return dataset(users, [("a" if i % 2 else "b", h, "Session") for i, h in enumerate(hours)])


def test_events_at_exactly_as_of_count_when_as_of_starts_a_period():
    # 16 Sessions in [10:00, 12:00], 2 of them at exactly 12:00 (as_of), 1 after it.
    hours = ["2026-06-30 10:00"] * 5 + ["2026-06-30 11:30"] * 9 + ["2026-06-30 12:00"] * 2
    small = _sessions_at_hours([*hours, "2026-06-30 12:00:01", "2026-06-30 09:59"])
    data = trend(
        small, "Session", interval="hour", last=2, as_of="2026-06-30T12:00:00Z", return_data=True
    )[1]
    raw = pd.Series(
        pd.to_datetime([*hours, "2026-06-30 12:00:01", "2026-06-30 09:59"], format="ISO8601")
    )
    in_window = raw[(raw >= "2026-06-30 10:00") & (raw <= "2026-06-30 12:00")]
    assert data["value"].sum() == len(in_window) == 16
    # Two whole hours end at as_of; the last one also holds the events at as_of.
    assert data["period"].dt.strftime("%H:%M").tolist() == ["10:00", "11:00"]
    assert data["value"].tolist() == [5, 11]
    assert data["complete"].tolist() == [True, True]


def test_daily_trend_at_midnight_keeps_the_as_of_instant():
    small = _sessions_at_hours(
        ["2026-06-29 00:00", "2026-06-29 23:59", "2026-06-30 00:00", "2026-06-30 00:00:01"]
    )
    data = trend(small, "Session", last=2, as_of="2026-06-30", return_data=True)[1]
    assert data["period"].dt.strftime("%m-%d").tolist() == ["06-28", "06-29"]
    assert data["value"].tolist() == [0, 3]


def test_as_of_inside_a_period_ends_with_the_running_period():
    small = _sessions_at_hours(["2026-06-30 10:00", "2026-06-30 12:00", "2026-06-30 12:30"])
    data = trend(
        small, "Session", interval="hour", last=2, as_of="2026-06-30 12:10", return_data=True
    )[1]
    assert data["period"].dt.strftime("%H:%M").tolist() == ["11:00", "12:00"]
    assert data["value"].tolist() == [0, 1]
    assert data["complete"].tolist() == [True, False]


def _layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def test_the_running_period_is_drawn_dashed_with_a_note(ds):
    chart = trend(ds, "Session", by={"Paid": PAID}, interval="week", last=4)
    # AS_OF is a Tuesday at noon: its week is still running.
    assert chart.data["complete"].tolist() == [True, True, True, False]
    layers = _layers(chart)
    dashed = [layer for layer in layers if layer["mark"].get("strokeDash")]
    assert len(dashed) == 1
    last_complete = chart.data.loc[chart.data["complete"], "period"].max()
    assert str(int(last_complete.timestamp() * 1000)) in dashed[0]["transform"][0]["filter"]
    assert {"filter": "datum.complete"} in layers[0]["transform"]
    assert "dashed: the week still running at as_of" in chart.title.subtitle
    svg = heapseg.charts.to_svg(chart)
    assert svg.count("stroke-dasharray") == 1  # one dashed segment per series


def test_complete_periods_only_draw_no_dashes(ds):
    chart = trend(ds, "Session", last=3, as_of="2026-09-15")
    assert chart.data["complete"].all()
    assert not any(layer["mark"].get("strokeDash") for layer in _layers(chart))
    assert "dashed" not in chart.title.subtitle


def test_a_filtered_line_is_labelled_with_the_filter(ds, oracle):
    data = trend(ds, "Session", filter=("Paid users", PAID), last=3, return_data=True)[1]
    assert set(data["segment"]) == {"Paid users"}
    days = pd.date_range(end="2026-09-15", periods=3, freq="D")
    sessions = oracle.upto()
    sessions = sessions[(sessions["event"] == "Session") & (sessions["time"] >= days[0])]
    assert data["value"].tolist() == _expected(sessions, days, oracle.members(PAID), "events")
    unnamed = trend(ds, "Session", filter=PAID, last=3, return_data=True)[1]
    assert set(unnamed["segment"]) == {"subscription_type = paid"}
    same_name = trend(
        ds,
        "Session",
        by={"Paid users": BUYERS},
        filter=("Paid users", PAID),
        include_all=True,
        last=3,
        return_data=True,
    )[1]
    assert list(dict.fromkeys(same_name["segment"])) == ["Paid users", "Paid users (all)"]
