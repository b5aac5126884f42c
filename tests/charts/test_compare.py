"""Compare: each measure against pandas on the raw tables."""

from __future__ import annotations

from datetime import timedelta

import pytest

import heapseg
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


# ---------------------------------------------------------------- intervals and tests

scipy_stats = pytest.importorskip("scipy.stats")
proportion = pytest.importorskip("statsmodels.stats.proportion")
multitest = pytest.importorskip("statsmodels.stats.multitest")


def _per_user(oracle, members, values):
    """One value per member (0 for members without any), as pandas sees them."""
    return values.reindex(sorted(members), fill_value=0).astype(float).to_numpy()


def test_did_shows_wilson_intervals_and_holm_corrected_z_tests(ds, oracle, window):
    segments = {"Paid": PAID, "Shoppers": SHOPPERS, "Buyers": BUYERS}
    data = compare(ds, segments, event="Add to Cart", return_data=True)[1]
    doers = set(window[window["event"] == "Add to Cart"]["user_id"])
    counts = {
        n: (len(oracle.members(d) & doers), len(oracle.members(d))) for n, d in segments.items()
    }
    everyone = oracle.everyone()
    counts[ALL_USERS] = (len(everyone & doers), len(everyone))
    for name, (x, n) in counts.items():
        row = _row(data, name)
        low, high = proportion.proportion_confint(x, n, alpha=0.05, method="wilson")
        assert (row["low"], row["high"]) == pytest.approx((low, high), abs=1e-12)
    pairs = data.attrs["pairs"]
    assert list(zip(pairs["a"], pairs["b"], strict=True)) == [
        ("Paid", "Shoppers"),
        ("Paid", "Buyers"),
        ("Shoppers", "Buyers"),
    ]
    expected = [
        proportion.proportions_ztest([counts[a][0], counts[b][0]], [counts[a][1], counts[b][1]])[1]
        for a, b in zip(pairs["a"], pairs["b"], strict=True)
    ]
    assert pairs["p_value"].tolist() == pytest.approx(expected, rel=1e-9)
    holm = multitest.multipletests(expected, method="holm")[1]
    assert pairs["p_holm"].tolist() == pytest.approx(list(holm), rel=1e-9)
    assert pairs["significant"].tolist() == [bool(p < 0.05) for p in holm]
    for name in segments:
        other = [
            b if a == name else a
            for a, b, sig in pairs[["a", "b", "significant"]].values
            if sig and name in (a, b)
        ]
        assert _row(data, name)["differs_from"] == ", ".join(other)
    assert pairs["significant"].any()  # the sample's segments do differ; the note says which


@pytest.mark.parametrize("measure", ["events_per_user", "sum_per_user"])
def test_per_user_means_have_t_intervals_and_welch_tests(ds, oracle, window, measure):
    orders = window[window["event"] == "Completed Order"]
    per_user = orders.groupby("user_id")["revenue"]
    values = per_user.size() if measure == "events_per_user" else per_user.sum()
    data = compare(
        ds,
        {"Paid": PAID, "Buyers": BUYERS},
        event="Completed Order",
        measure=measure,
        property="revenue" if measure == "sum_per_user" else None,
        return_data=True,
    )[1]
    arrays = {
        n: _per_user(oracle, oracle.members(d), values)
        for n, d in (("Paid", PAID), ("Buyers", BUYERS))
    }
    for name, array in arrays.items():
        row = _row(data, name)
        assert row["squares"] == pytest.approx((array**2).sum(), rel=1e-9)
        expected = scipy_stats.t.interval(
            0.95, len(array) - 1, loc=array.mean(), scale=scipy_stats.sem(array)
        )
        assert (row["low"], row["high"]) == pytest.approx(expected, rel=1e-9)
    welch = scipy_stats.ttest_ind(arrays["Paid"], arrays["Buyers"], equal_var=False)
    pairs = data.attrs["pairs"]
    assert pairs["test"].tolist() == ["Welch t"]
    assert pairs["p_value"].tolist() == pytest.approx([welch.pvalue], rel=1e-7)
    assert pairs["statistic"].tolist() == pytest.approx([welch.statistic], rel=1e-9)


def test_one_segment_is_tested_against_the_rest(ds, oracle, window):
    orders = window[window["event"] == "Completed Order"]
    values = orders.groupby("user_id")["revenue"].sum()
    members = oracle.members(PAID)
    data = compare(
        ds,
        {"Paid": PAID},
        event="Completed Order",
        measure="sum_per_user",
        property="revenue",
        return_data=True,
    )[1]
    rest = oracle.everyone() - members
    welch = scipy_stats.ttest_ind(
        _per_user(oracle, members, values), _per_user(oracle, rest, values), equal_var=False
    )
    pairs = data.attrs["pairs"]
    assert (pairs["a"].tolist(), pairs["b"].tolist()) == (["Paid"], ["Rest"])
    assert pairs["p_value"].tolist() == pytest.approx([welch.pvalue], rel=1e-7)


def test_averages_per_event_and_per_user_property(ds, oracle, window):
    orders = window[window["event"] == "Completed Order"]
    data = compare(
        ds,
        {"Paid": PAID, "Shoppers": SHOPPERS},
        event="Completed Order",
        measure="avg",
        property="revenue",
        return_data=True,
    )[1]
    revenue = {
        n: orders[orders["user_id"].isin(oracle.members(d))]["revenue"].dropna().to_numpy()
        for n, d in (("Paid", PAID), ("Shoppers", SHOPPERS))
    }
    row = _row(data, "Paid")
    assert row["valued"] == len(revenue["Paid"])
    assert row["squares"] == pytest.approx((revenue["Paid"] ** 2).sum())
    expected = scipy_stats.t.interval(
        0.95,
        len(revenue["Paid"]) - 1,
        loc=revenue["Paid"].mean(),
        scale=scipy_stats.sem(revenue["Paid"]),
    )
    assert (row["low"], row["high"]) == pytest.approx(expected, rel=1e-9)
    users = oracle.users.set_index("user_id")["ltv"]
    ltv = compare(ds, {"Paid": PAID, "Buyers": BUYERS}, property="ltv", return_data=True)[1]
    arrays = [users.loc[sorted(oracle.members(d))].dropna().to_numpy() for d in (PAID, BUYERS)]
    welch = scipy_stats.ttest_ind(*arrays, equal_var=False)
    assert ltv.attrs["pairs"]["p_value"].tolist() == pytest.approx([welch.pvalue], rel=1e-7)
    assert _row(ltv, "Buyers")["valued"] == len(arrays[1])


def test_sizes_have_intervals_but_no_tests(ds, oracle):
    data = compare(ds, {"Paid": PAID, "Buyers": BUYERS}, return_data=True)[1]
    n, everyone = len(oracle.members(PAID)), len(oracle.everyone())
    low, high = proportion.proportion_confint(n, everyone, alpha=0.05, method="wilson")
    assert (_row(data, "Paid")["low"], _row(data, "Paid")["high"]) == pytest.approx((low, high))
    assert data.attrs["pairs"].empty
    assert (data["differs_from"] == "").all()


def test_the_chart_draws_the_intervals_and_names_significant_differences(ds):
    chart = compare(ds, {"Paid": PAID, "Shoppers": SHOPPERS, "Buyers": BUYERS}, event="Add to Cart")
    layers = chart.to_dict()["layer"]
    rules = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    assert rules and rules[0]["encoding"]["x"]["field"] == "low"
    assert rules[0]["encoding"]["x2"]["field"] == "high"
    pairs = chart.data.attrs["pairs"]
    first = pairs[pairs["significant"]].iloc[0]
    first_line, tests = chart.title.subtitle
    assert f"{first['a']} vs {first['b']}" in tests and tests.startswith("* significant")
    assert "95% intervals" in first_line
    svg = heapseg.charts.to_svg(chart)
    marked = chart.data[chart.data["differs_from"] != ""]
    assert svg.count(" *</text>") == len(marked) > 0
