"""Paths charts: the events right after and before an anchor event, ranked, against pandas."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from heapseg.charts import ALL_USERS, ChartError, paths
from tests.charts.conftest import AS_OF, PAID
from tests.data_helpers import dataset


def numbered(events: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
    """Each event's step from its user's anchor (the first row of ``anchors`` in the order)."""
    events = events.sort_values(["user_id", "time", "event"], kind="stable")
    events = events.assign(n=events.groupby("user_id").cumcount())
    keys = events.reset_index().merge(anchors[["user_id", "time", "event"]])
    first = keys.groupby("user_id")["n"].min().rename("a")
    events = events.join(first, on="user_id", how="inner")
    return events.assign(step=events["n"] - events["a"])


def expected(oracle, event, users, steps, top, where=None, days=30) -> tuple[int, dict]:
    """(anchored users, {step: [(event, users), ...] ranked}) from the raw events."""
    events = oracle.upto()
    events = events[(events["time"] > AS_OF - timedelta(days=days)) & events["user_id"].isin(users)]
    anchors = events[events["event"] == event]
    if where is not None:
        anchors = anchors[where(anchors)]
    rows = numbered(events, anchors)
    ranked = {}
    for k in [*range(-steps, 0), *range(1, steps + 1)]:
        at = rows[rows["step"] == k].groupby("event")["user_id"].nunique().reset_index()
        at = at.sort_values(["user_id", "event"], ascending=[False, True]).head(top)
        ranked[k] = list(zip(at["event"], at["user_id"], strict=True))
    return int((rows["step"] == 0).sum()), ranked


def ranked(data: pd.DataFrame, name: str) -> tuple[int, dict]:
    mine = data[data["segment"] == name]
    out = {}
    for k, rows in mine.groupby("step"):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        out[k] = list(zip(rows["event"], rows["users"], strict=True))
    return int(mine["anchored"].iloc[0]), out


def test_paths_match_pandas(ds, oracle, executed):
    # Checking a rule's values looks the known values up once per dataset: not the chart's.
    ds.count(PAID)
    executed.clear()
    chart, data = paths(
        ds, "Add to Cart", by={"Paid": PAID}, include_all=True, steps=3, top=4, return_data=True
    )
    assert len(executed) == 1 and executed[0] <= 200
    for name, users in (("Paid", oracle.members(PAID)), (ALL_USERS, oracle.everyone())):
        anchored, want = expected(oracle, "Add to Cart", users, 3, 4)
        assert ranked(data, name) == (anchored, want)
        mine = data[data["segment"] == name]
        assert (mine["share"] == mine["users"] / anchored).all()
    assert sorted(set(data["step"])) == [-3, -2, -1, 1, 2, 3]
    assert chart.data is data


def test_direction_and_where(ds, oracle):
    where = {"kind": "event_property", "field": "quantity", "operator": ">", "value": 1}
    data = paths(ds, "Add to Cart", where=where, direction="next", steps=2, top=3).data
    anchored, want = expected(
        oracle, "Add to Cart", oracle.everyone(), 2, 3, where=lambda e: e["quantity"] > 1
    )
    assert ranked(data, ALL_USERS) == (anchored, {1: want[1], 2: want[2]})
    before = paths(
        ds, "Completed Order", direction="previous", steps=1, top=2, last=2, unit="week"
    ).data
    anchored, want = expected(oracle, "Completed Order", oracle.everyone(), 1, 2, days=14)
    assert ranked(before, ALL_USERS) == (anchored, {-1: want[-1]})


def test_ties_same_instants_and_window_edges():
    at = "2024-03-31 10:00"
    small = dataset(
        [{"user_id": u} for u in "abcde"],
        [
            ("a", "2024-03-31 09:00", "Add to Cart"),
            ("a", "2024-03-31 09:05", "Zebra"),
            ("a", "2024-03-31 11:00", "Add to Cart"),  # not a's anchor: her first one is
            ("b", "2024-03-31 09:00", "Add to Cart"),
            ("b", "2024-03-31 09:05", "Apple"),
            # Same instant as the anchor: ordered by name, Aardvark before, Alpha and Beta after.
            ("c", at, "Beta"),
            ("c", at, "Add to Cart"),
            ("c", at, "Alpha"),
            ("c", at, "Aardvark"),
            # d's only Add to Cart is at as_of - 1 day, just outside the window: no anchor.
            ("d", "2024-03-30 11:59:59", "Search"),
            ("d", "2024-03-30 12:00:00", "Add to Cart"),
            ("d", "2024-03-30 13:00", "Apple"),
            ("e", "2024-03-31 12:00:00.000001", "Add to Cart"),  # after as_of
        ],
    )
    data = paths(small, "Add to Cart", steps=2, top=3, last=1, as_of=datetime(2024, 3, 31, 12)).data
    table = {
        k: list(zip(rows["event"], rows["users"], strict=True)) for k, rows in data.groupby("step")
    }
    assert table == {
        -1: [("Aardvark", 1)],
        # Apple, Alpha and Zebra tie with 1 user each: by name.
        1: [("Alpha", 1), ("Apple", 1), ("Zebra", 1)],
        2: [("Add to Cart", 1), ("Beta", 1)],
    }
    assert data["anchored"].iloc[0] == 3


def test_bad_arguments_and_the_point_limit(ds, executed):
    with pytest.raises(ChartError, match="direction"):
        paths(ds, "Session", direction="sideways")
    for name, value in (("steps", 0), ("steps", 11), ("top", 0), ("top", 2.0)):
        with pytest.raises(ChartError, match=name):
            paths(ds, "Session", **{name: value})
    with pytest.raises(ChartError, match="points"):
        paths(ds, "Session", by=[PAID] * 9, steps=10, top=50)
    assert executed == []
