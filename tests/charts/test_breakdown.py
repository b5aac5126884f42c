"""Breakdowns against the reference evaluator and pandas."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest

from heapseg.charts import ALL_USERS, REST, breakdown
from heapseg.charts.breakdown import NOT_SET, OTHER
from tests.charts.conftest import AS_OF, BUYERS, PAID
from tests.data_helpers import dataset


def test_breakdown_of_a_user_property(ds, oracle, executed):
    ds.count(PAID)  # reads what a first count reads once (the join facts, the values of a hint)
    executed.clear()
    data = breakdown(ds, ("Paid", PAID), "country", top=5, return_data=True)[1]
    assert executed == [6]  # top 5 values and the totals row
    users = oracle.users[oracle.users["user_id"].isin(oracle.everyone())]
    inside = users["user_id"].isin(oracle.members(PAID))
    for group, mask in (("Paid", inside), (REST, ~inside)):
        counts = users[mask]["country"].fillna(NOT_SET).value_counts()
        got = data[data["group"] == group].set_index("value")["count"]
        top = [v for v in got.index if v != OTHER]
        assert len(top) == 5
        for value in top:
            assert got[value] == counts.get(value, 0)
        assert got.sum() == mask.sum()
        assert data[data["group"] == group]["share"].sum() == pytest.approx(1.0)


def test_breakdown_of_a_number_puts_every_user_in_a_bin(ds, oracle):
    data = breakdown(ds, ("Paid", PAID), "ltv", bins=4, return_data=True)[1]
    members = oracle.members(PAID)
    paid = data[data["group"] == "Paid"]
    assert paid["count"].sum() == len(members)
    # The first bin starts at the smallest value among all users.
    assert paid["value"].iloc[0].startswith(f"{oracle.users['ltv'].min():,.0f}")


def test_breakdown_of_an_event_property(ds, oracle):
    data = breakdown(
        ds,
        ("Paid", PAID),
        "payment_method",
        event="Completed Order",
        last=90,
        versus="all",
        return_data=True,
    )[1]
    orders = oracle.upto()
    orders = orders[
        (orders["event"] == "Completed Order") & (orders["time"] > AS_OF - timedelta(days=90))
    ]
    everyone = orders["payment_method"].value_counts()
    got = data[data["group"] == "All users"].set_index("value")["count"]
    assert got.to_dict() == everyone.to_dict()
    paid = orders[orders["user_id"].isin(oracle.members(PAID))]["payment_method"].value_counts()
    assert data[data["group"] == "Paid"].set_index("value")["count"].to_dict() == {
        k: paid.get(k, 0) for k in got.index
    }
    assert isinstance(data, pd.DataFrame)


def test_breakdown_of_a_tracked_property_reads_its_values_at_as_of(ds, oracle):
    data = breakdown(ds, ("Buyers", BUYERS), "subscription_type", return_data=True)[1]
    everyone, buyers = oracle.everyone(), oracle.members(BUYERS)
    for plan in ("trial", "free", "paid"):
        rule = {"kind": "user", "field": "subscription_type", "operator": "=", "value": plan}
        on_plan = oracle.members({"combinator": "and", "rules": [rule]})
        got = data.set_index(["group", "value"])["count"]
        assert got[("Buyers", plan)] == len(on_plan & buyers)
        assert got[(REST, plan)] == len(on_plan & (everyone - buyers))


def test_bins_are_honoured_for_a_property_most_users_share_a_value_of(ds, oracle):
    ltv = oracle.users.set_index("user_id")["ltv"]
    assert (ltv == 0).mean() > 0.3  # a heavy point at 0: equal quantiles would collapse
    chart, data = breakdown(ds, ("Buyers", BUYERS), "ltv", bins=5, return_data=True)
    edges = data.attrs["edges"]
    assert len(edges) == 4 and edges == sorted(edges)
    bins = pd.cut(ltv, [-math.inf, *edges, math.inf], right=False, labels=False)
    for group, members in (
        ("Buyers", oracle.members(BUYERS)),
        ("Rest", oracle.everyone() - oracle.members(BUYERS)),
    ):
        counted = bins.loc[sorted(members)].value_counts().reindex(range(5), fill_value=0)
        shown = data[data["group"] == group]["count"].tolist()
        assert shown == counted.tolist()
    assert "bins, not" not in chart.title.subtitle


def test_fewer_bins_than_asked_say_why():
    users = [{"user_id": str(i), "visits": i % 3} for i in range(30)]
    small = dataset(users, [(str(i), "2024-03-01 10:00", "Visit") for i in range(30)])
    visitors = {"combinator": "and", "rules": [{"kind": "event", "event": "Visit"}]}
    chart, data = breakdown(
        small, visitors, "visits", bins=5, versus="all", as_of="2024-03-02", return_data=True
    )
    assert data.attrs["edges"] == [1.0, 2.0]
    assert data[data["group"] == ALL_USERS]["count"].tolist() == [10, 10, 10]
    assert "3 bins, not 5: visits has too few distinct values" in chart.title.subtitle
