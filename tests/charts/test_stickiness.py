"""Stickiness charts: users by active days in a window, against pandas on the raw events."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from heapseg.charts import ALL_USERS, ChartError, stickiness
from tests.charts.conftest import BUYERS, PAID
from tests.data_helpers import dataset


def expected(oracle, event, first_day, users, days) -> list[int]:
    """Users active exactly 1..days distinct UTC days from first_day up to as_of."""
    events = oracle.upto()
    events = events[(events["time"] >= first_day) & events["user_id"].isin(users)]
    if event is not None:
        events = events[events["event"] == event]
    per_user = events.groupby("user_id")["time"].agg(lambda t: t.dt.floor("D").nunique())
    return [int((per_user == k).sum()) for k in range(1, days + 1)]


@pytest.mark.parametrize(
    ("event", "window", "days"), [("Session", "week", 7), (None, "month", 30), ("Pageview", 10, 10)]
)
def test_stickiness_matches_pandas(ds, oracle, executed, event, window, days):
    # Checking a rule's values looks the known values up once per dataset: not the chart's.
    ds.count(PAID), ds.count(BUYERS)
    executed.clear()
    chart, data = stickiness(
        ds,
        event,
        by={"Paid": PAID, "Buyers": BUYERS},
        include_all=True,
        window=window,
        return_data=True,
    )
    assert len(executed) == 1 and executed[0] <= days
    # The window ends with the day holding as_of (mid-day: that day up to as_of).
    first_day = datetime(2026, 9, 15) - timedelta(days=days - 1)
    for name, users in (
        ("Paid", oracle.members(PAID)),
        ("Buyers", oracle.members(BUYERS)),
        (ALL_USERS, oracle.everyone()),
    ):
        mine = data[data["segment"] == name]
        counts = expected(oracle, event, first_day, users, days)
        assert mine["days"].tolist() == list(range(1, days + 1))
        assert mine["users"].tolist() == counts
        assert mine["active"].iloc[0] == sum(counts) > 0
        assert mine["share"].sum() == pytest.approx(1.0)
        assert mine["at_least"].iloc[0] == pytest.approx(1.0)
        assert mine["at_least"].iloc[1] == pytest.approx(1 - counts[0] / sum(counts))
    assert chart.data is data


def test_day_boundaries_as_of_and_users_without_events():
    small = dataset(
        [{"user_id": u} for u in "abcd"],  # d has no events: in no bar
        [
            ("a", "2024-03-23 23:59:59.999999", "Session"),  # the day before the window
            ("a", "2024-03-24 00:00:00", "Session"),  # the window's first instant
            ("a", "2024-03-24 23:59:59", "Session"),  # same day: still 1 day
            ("a", "2024-03-31 00:00:00", "Session"),  # exactly as_of (a midnight): the last day
            ("b", "2024-03-30 23:59:59.999999", "Session"),
            ("b", "2024-03-31 00:00:00.000001", "Session"),  # after as_of: ignored
            ("c", "2024-03-28 12:00", "Pageview"),  # another event
        ],
    )
    data = stickiness(small, "Session", window="week", as_of=datetime(2024, 3, 31)).data
    # The 7 days 03-24 .. 03-30 end at as_of; a: 03-24 and (at as_of) 03-30 -> 2 days.
    assert data["users"].tolist() == [1, 1, 0, 0, 0, 0, 0]
    users = stickiness(small, window=3, measure="users", as_of=datetime(2024, 3, 31)).data
    assert users["users"].tolist() == [3, 0, 0]  # 03-28 .. 03-30: a (at as_of), b, c once each
    assert users["active"].iloc[0] == 3


def test_bad_windows_and_measures(ds, executed):
    for window in ("fortnight", 0, 400, 2.5, True):
        with pytest.raises(ChartError, match="window"):
            stickiness(ds, window=window)
    with pytest.raises(ChartError, match="measure"):
        stickiness(ds, measure="events")
    with pytest.raises(ChartError, match="points"):
        stickiness(ds, by=[PAID] * 20, window=366)
    assert executed == []
