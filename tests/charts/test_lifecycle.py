"""Lifecycle charts: new / returning / resurrecting / dormant against pandas on the raw events."""

from __future__ import annotations

from datetime import datetime

import ibis
import pandas as pd
import pytest

import heapseg
from heapseg.charts import ALL_USERS, ChartError, lifecycle
from heapseg.timeunits import step
from tests.charts.conftest import AS_OF, PAID
from tests.data_helpers import dataset, events_frame

STATUSES = ["new", "returning", "resurrecting", "dormant"]


def period_start(times: pd.Series, unit: str) -> pd.Series:
    """The UTC period (day, ISO week, month) holding each time, as pandas sees it."""
    day = times.dt.floor("D")
    if unit == "day":
        return day
    if unit == "week":
        return day - pd.to_timedelta(day.dt.weekday, unit="D")
    return times.dt.to_period("M").dt.start_time


def expected(oracle, event, unit, periods, users, rule, as_of=AS_OF) -> dict:
    """{(period, status): users} recomputed from the raw events, user by user."""
    events = oracle.upto(as_of)
    events = events[events["user_id"].isin(users)]
    acts = events if event is None else events[events["event"] == event]
    acts = acts.assign(p=period_start(acts["time"], unit))
    active = acts.groupby("p")["user_id"].agg(set)
    if rule == "first":
        start = period_start(acts.groupby("user_id")["time"].min(), unit)
    else:
        first_any = events.groupby("user_id")["time"].min()
        joined = oracle.users.set_index("user_id")["joined_at"].astype("datetime64[us]")
        moment = joined.reindex(first_any.index).fillna(first_any)
        start = period_start(moment, unit)
    out = {}
    for p in periods:
        now = active.get(pd.Timestamp(p), set())
        before = active.get(pd.Timestamp(step(p, -1, unit)), set())
        new = {u for u in now if start.get(u) == pd.Timestamp(p)}
        out[(p, "new")] = len(new)
        out[(p, "returning")] = len((now - new) & before)
        out[(p, "resurrecting")] = len(now - new - before)
        out[(p, "dormant")] = len(before - now)
    return out


def got(data: pd.DataFrame, name: str) -> dict:
    mine = data[data["segment"] == name]
    return {
        (p.tz_localize(None).to_pydatetime(), s): u
        for p, s, u in zip(mine["period"], mine["status"], mine["users"], strict=True)
    }


@pytest.mark.parametrize(
    ("rule", "event", "unit"),
    [("joined", "Session", "week"), ("first", None, "week"), ("first", "Completed Order", "month")],
)
def test_lifecycle_matches_pandas(ds, oracle, executed, rule, event, unit):
    # Checking a rule's values looks the known values up once per dataset: not the chart's.
    ds.count(PAID)
    executed.clear()
    chart, data = lifecycle(
        ds,
        event,
        by={"Paid": PAID},
        include_all=True,
        interval=unit,
        last=5,
        new=rule,
        return_data=True,
    )
    assert len(executed) == 1 and executed[0] <= 4 * 6  # one query, a row per period and status
    periods = sorted({p.tz_localize(None).to_pydatetime() for p in data["period"]})
    assert len(periods) == 5 and periods[-1] < AS_OF < step(periods[-1], 1, unit)
    for name, users in (("Paid", oracle.members(PAID)), (ALL_USERS, oracle.everyone())):
        assert got(data, name) == expected(oracle, event, unit, periods, users, rule)
    assert (data.loc[data["status"] == "dormant", "value"] <= 0).all()
    assert (data["value"].abs() == data["users"]).all()
    assert data.groupby("status")["users"].sum().gt(0).all()  # every status is exercised
    # as_of is mid-period: the last period is still running.
    assert data.groupby("period")["complete"].first().tolist() == [True] * 4 + [False]
    assert chart.data is data


def tiny():
    users = [{"user_id": u} for u in "abcd"]  # d never does anything
    events = [
        ("a", "2024-03-27 23:59:59.999999", "Session"),
        ("a", "2024-03-28 00:00:00", "Session"),  # exactly a period start
        ("a", "2024-03-31 12:00:00", "Session"),  # exactly as_of
        ("b", "2024-03-20 09:00", "Pageview"),  # b joins (first event) long before
        ("b", "2024-03-29 10:00", "Session"),
        ("c", "2024-03-30 10:00", "Session"),
        ("c", "2024-03-31 12:00:00.000001", "Session"),  # after as_of: ignored
    ]
    return dataset(users, events)


def table(data: pd.DataFrame) -> dict:
    wide = data.pivot(index="period", columns="status", values="users")[STATUSES]
    return {p.strftime("%m-%d"): list(row) for p, row in wide.iterrows()}


def test_boundaries_users_without_events_and_both_new_rules():
    small = tiny()
    as_of = datetime(2024, 3, 31, 12)
    run = lambda **kw: lifecycle(small, "Session", interval="day", last=4, as_of=as_of, **kw).data  # noqa: E731
    #                  new, returning, resurrecting, dormant
    assert table(run()) == {
        "03-28": [0, 1, 0, 0],  # a: 23:59:59.999999 the day before, 00:00 this day
        "03-29": [0, 0, 1, 1],  # b: joined on 03-20, first session now (PostHog: resurrecting)
        "03-30": [1, 0, 0, 1],  # c joined with this session; b gone
        "03-31": [0, 0, 1, 1],  # a back at exactly as_of; c not back yet (day still running)
    }
    assert table(run(new="first"))["03-29"] == [1, 0, 0, 1]  # b's first session ever
    # Any event: b's pageview of 03-20 was activity, so b comes back on 03-29 under both rules.
    anything = lifecycle(small, interval="day", last=4, as_of=as_of, new="first").data
    assert table(anything)["03-29"] == [0, 0, 1, 1]
    assert set(anything["segment"]) == {ALL_USERS}


def test_as_of_at_midnight_counts_the_activity_at_as_of_in_the_last_period():
    small = dataset(
        [{"user_id": "a"}, {"user_id": "b"}],
        [
            ("a", "2024-03-30 08:00", "Session"),
            ("b", "2024-03-30 09:00", "Session"),
            ("b", "2024-03-31 00:00", "Session"),  # exactly as_of, which starts a day
        ],
    )
    data = lifecycle(small, "Session", interval="day", last=2, as_of=datetime(2024, 3, 31)).data
    assert table(data) == {"03-29": [0, 0, 0, 0], "03-30": [2, 0, 0, 0]}
    weekly = lifecycle(
        small, "Session", interval="week", last=1, as_of=datetime(2024, 3, 31, 1)
    ).data
    assert table(weekly) == {"03-25": [2, 0, 0, 0]}  # the ISO week of Monday 2024-03-25


def test_the_running_period_is_drawn_lighter_with_a_note(ds):
    """A period still running at as_of has partial counts: it must not read as a drop."""
    chart = lifecycle(ds, "Session", filter=PAID, interval="week", last=3)
    assert chart.data["complete"].tolist().count(False) == len(STATUSES)
    assert "lighter: the week still running" in chart.title.subtitle
    fill = chart.to_dict()["encoding"]["fillOpacity"]
    assert fill["condition"] == {"test": "datum.complete", "value": 1.0} and fill["value"] < 1
    # as_of at midnight ends whole days: nothing is running, no note.
    whole = lifecycle(ds, "Session", interval="day", last=3, as_of=AS_OF.replace(hour=0))
    assert whole.data["complete"].all()
    assert "still running" not in whole.title.subtitle


def test_segments_filter_and_the_point_limit(ds, oracle, executed):
    with pytest.raises(ChartError, match="points"):
        lifecycle(ds, by=[PAID], interval="hour", last=24 * 60)
    with pytest.raises(ChartError, match="new="):
        lifecycle(ds, new="signup")
    assert executed == []
    data = lifecycle(ds, "Session", filter=PAID, interval="week", last=3, return_data=True)[1]
    periods = sorted({p.tz_localize(None).to_pydatetime() for p in data["period"]})
    name = data["segment"].iloc[0]
    assert got(data, name) == expected(
        oracle, "Session", "week", periods, oracle.members(PAID), "joined"
    )


def test_joined_at_where_set_else_the_first_event():
    con = ibis.duckdb.connect()
    con.create_table(
        "users",
        pd.DataFrame(
            {
                "user_id": ["a", "b", "c"],
                "joined_at": pd.Series(
                    ["2024-03-29 08:00", None, "2024-03-10 00:00"], dtype="datetime64[us]"
                ),
            }
        ),
    )
    con.create_table(
        "events",
        events_frame(
            [
                ("a", "2024-03-29 09:00", "Session"),  # joined that day: new
                ("b", "2024-03-20 09:00", "Pageview"),  # no joined_at: joined with this event
                ("b", "2024-03-29 10:00", "Session"),
                ("c", "2024-03-30 10:00", "Session"),  # joined weeks before
            ]
        ),
    )
    small = heapseg.connect(con)
    data = lifecycle(small, "Session", interval="day", last=3, as_of=datetime(2024, 3, 31, 12)).data
    #                  new, returning, resurrecting, dormant
    assert table(data) == {"03-29": [1, 0, 1, 0], "03-30": [0, 0, 1, 2], "03-31": [0, 0, 0, 1]}
