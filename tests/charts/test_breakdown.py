"""Breakdowns against the reference evaluator and pandas."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from heapseg.charts import REST, breakdown
from heapseg.charts.breakdown import NOT_SET, OTHER
from tests.charts.conftest import AS_OF, BUYERS, PAID


def test_breakdown_of_a_user_property(ds, oracle, executed):
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
