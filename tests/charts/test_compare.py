"""Compare: each measure against pandas on the raw tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

from heapseg.charts import ALL_USERS, ChartError, compare
from tests.charts.conftest import AS_OF, BUYERS, PAID, SHOPPERS


@pytest.fixture(scope="module")
def window(oracle):
    events = oracle.upto()
    return events[events["time"] > AS_OF - timedelta(days=30)]


def _row(data, name):
    return data.set_index("segment").loc[name]


def test_share_who_did_an_event(ds, oracle, window):
    data = compare(ds, {"Paid": PAID, "Shoppers": SHOPPERS}, event="Session", return_data=True)[1]
    everyone = oracle.everyone()  # "All users" are the users who had joined at as_of
    doers = set(window[window["event"] == "Session"]["user_id"]) & everyone
    for name, definition in (("Paid", PAID), ("Shoppers", SHOPPERS)):
        members = oracle.members(definition)
        row = _row(data, name)
        assert row["users"] == len(members)
        assert row["did"] == len(members & doers)
        assert row["value"] == pytest.approx(len(members & doers) / len(members))
        assert row["share_of_all"] == pytest.approx(len(members) / len(everyone))
    assert _row(data, ALL_USERS)["value"] == pytest.approx(len(doers) / len(everyone))


def test_per_user_sums_and_averages(ds, oracle, window):
    orders = window[window["event"] == "Completed Order"]
    members = oracle.members(PAID)
    mine = orders[orders["user_id"].isin(members)]
    per_user = compare(
        ds,
        [("Paid", PAID)],
        event="Completed Order",
        measure="sum_per_user",
        property="revenue",
        return_data=True,
    )[1]
    assert _row(per_user, "Paid")["value"] == pytest.approx(mine["revenue"].sum() / len(members))
    avg = compare(
        ds,
        [("Paid", PAID)],
        event="Completed Order",
        measure="avg",
        property="revenue",
        include_all=False,
        return_data=True,
    )[1]
    assert avg["value"].tolist() == [pytest.approx(mine["revenue"].mean())]
    epu = compare(
        ds, [("Paid", PAID)], event="Completed Order", measure="events_per_user", return_data=True
    )[1]
    assert _row(epu, "Paid")["value"] == pytest.approx(len(mine) / len(members))


def test_user_property_average_and_size_share(ds, oracle):
    data = compare(ds, {"Buyers": BUYERS}, property="ltv", return_data=True)[1]
    users = oracle.users.set_index("user_id")
    expected = users.loc[sorted(oracle.members(BUYERS)), "ltv"].mean()
    assert _row(data, "Buyers")["value"] == pytest.approx(expected)
    sizes = compare(ds, {"Buyers": BUYERS}, return_data=True)[1]
    share = len(oracle.members(BUYERS)) / len(oracle.everyone())
    assert _row(sizes, "Buyers")["value"] == pytest.approx(share)


def test_one_query_one_row(ds, executed):
    compare(ds, [PAID, BUYERS, SHOPPERS], event="Completed Order")
    assert executed == [1]


def test_measure_needs_its_event(ds):
    with pytest.raises(ChartError, match="needs event"):
        compare(ds, [PAID], measure="did")
