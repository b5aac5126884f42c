"""Funnel by segment: per-user pandas recomputations from the raw events."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from heapseg.charts import ALL_USERS, ChartError, funnel
from heapseg.charts.funnel import funnel_rule
from tests.charts.conftest import AS_OF, BUYERS, PAID, SHOPPERS

STEPS = ["Session", "Add to Cart", "Completed Order"]


def _funnel_by_user(events: pd.DataFrame) -> pd.DataFrame:
    """t0, t1, t2 per user, step by step, from the raw events (plain pandas)."""
    first = events[(events["event"] == STEPS[0]) & (events["time"] > AS_OF - timedelta(days=30))]
    reached = first.groupby("user_id")["time"].min().rename("t0").to_frame()
    previous = reached["t0"]
    for k, name in enumerate(STEPS[1:], start=1):
        later = events[events["event"] == name].merge(
            reached[["t0"]].assign(prev=previous), left_on="user_id", right_index=True
        )
        later = later[
            (later["time"] > later["prev"]) & (later["time"] <= later["t0"] + timedelta(days=7))
        ]
        reached[f"t{k}"] = later.groupby("user_id")["time"].min()
        previous = reached[f"t{k}"]
    return reached


def test_funnel_matches_pandas(ds, oracle, executed):
    _chart, data = funnel(ds, STEPS, by={"Paid": PAID}, include_all=True, return_data=True)
    assert executed == [1]
    reached = _funnel_by_user(oracle.upto())
    paid = reached[reached.index.isin(oracle.members(PAID))]
    everyone = reached[reached.index.isin(oracle.everyone())]
    for name, frame in (("Paid", paid), (ALL_USERS, everyone)):
        got = data[data["segment"] == name].sort_values("step")
        expected = [int(frame[f"t{k}"].notna().sum()) for k in range(len(STEPS))]
        assert got["users"].tolist() == expected
        assert got["conversion"].tolist() == pytest.approx([n / expected[0] for n in expected])
        assert got["from_previous"].iloc[2] == pytest.approx(expected[2] / expected[1])
    assert data["users"].iloc[1] > 0


def test_funnel_needs_two_steps(ds):
    with pytest.raises(ChartError, match="two steps"):
        funnel(ds, ["Session"])


def test_each_bar_is_the_count_of_its_funnel_rule(ds, oracle):
    """Bar k of a series is the number of the series' users the rule ``reached: k`` selects
    (on the engine and on the reference), and the drop-off ``reached: k, not_reached: k + 1``
    is the difference of two bars."""
    big_order = {"kind": "event_property", "field": "revenue", "operator": ">", "value": 40}
    steps = ["Session", "Add to Cart", ("Completed Order", big_order)]
    by = {"Paid": PAID, "Buyers": BUYERS}
    _chart, data = funnel(
        ds, steps, by=by, include_all=True, within=36, within_unit="hour", return_data=True
    )
    for name, segment in [*by.items(), (ALL_USERS, None)]:
        bars = data[data["segment"] == name].sort_values("step")["users"].tolist()
        definitions = {}
        for k in range(1, len(steps) + 1):
            ends = [(f"reached{k}", None)] + ([(f"dropped{k}", k + 1)] if k < len(steps) else [])
            for key, not_reached in ends:
                rule = funnel_rule(steps, (36, "hour"), reached=k, not_reached=not_reached)
                rules = [rule.to_dict()] + ([segment] if segment is not None else [])
                definitions[key] = {"combinator": "and", "rules": rules}
        counts = ds.counts(definitions)
        for k in range(1, len(steps) + 1):
            assert counts[f"reached{k}"] == bars[k - 1]
            assert len(oracle.members(definitions[f"reached{k}"])) == bars[k - 1]
            if k < len(steps):
                assert counts[f"dropped{k}"] == bars[k - 1] - bars[k]
        assert bars[0] > bars[-1] > 0


def test_a_series_nobody_entered_has_no_shares(ds):
    nobody = {
        "combinator": "and",
        "rules": [{"kind": "user", "field": "subscription_type", "operator": "=", "value": "none"}],
    }
    chart, data = funnel(ds, STEPS, by={"Nobody": nobody, "Paid": PAID}, return_data=True)
    empty = data[data["segment"] == "Nobody"]
    assert empty["users"].tolist() == [0, 0, 0]
    assert empty["conversion"].isna().all() and empty["from_previous"].isna().all()
    paid = data[data["segment"] == "Paid"]
    assert paid["conversion"].notna().all() and paid["conversion"].iloc[0] == 1.0
    # null in the chart's data, so no bar and no "0%" label are drawn
    values = next(iter(chart.to_dict()["datasets"].values()))
    assert [v["conversion"] for v in values if v["segment"] == "Nobody"] == [None] * 3
    layers = chart.to_dict()["layer"]
    assert any("isValid(datum.conversion)" in str(layer.get("transform")) for layer in layers)


def test_a_step_after_one_nobody_reached_has_no_share_of_the_previous(ds):
    steps = ["Session", "Completed Order", "Completed Order", "Completed Order", "Session"]
    _chart, data = funnel(ds, steps, within=1, within_unit="hour", return_data=True)
    users = data["users"].tolist()
    assert users[0] > 0 and 0 in users
    nobody_before = [i for i in range(1, len(users)) if users[i - 1] == 0]
    assert nobody_before
    for i in nobody_before:
        assert pd.isna(data["from_previous"].iloc[i])
        assert data["conversion"].iloc[i] == 0.0  # of step 1, which has users: a true 0%


def test_conversions_have_wilson_intervals_and_holm_corrected_tests(ds, oracle):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    by = {"Paid": PAID, "Buyers": BUYERS, "Shoppers": SHOPPERS}
    chart, data = funnel(ds, STEPS, by=by, return_data=True)
    reached = _funnel_by_user(oracle.upto())
    counts = {}
    for name, definition in by.items():
        mine = reached[reached.index.isin(oracle.members(definition))]
        counts[name] = [int(mine[f"t{k}"].notna().sum()) for k in range(len(STEPS))]
    for row in data.itertuples():
        users, entered = counts[row.segment][row.step - 1], counts[row.segment][0]
        assert (row.users, row.entered) == (users, entered)
        low, high = proportion.proportion_confint(users, entered, alpha=0.05, method="wilson")
        assert (row.low, row.high) == pytest.approx((low, high), abs=1e-12)
    pairs = data.attrs["pairs"]
    assert pairs["step"].tolist() == [2, 2, 2, 3, 3, 3]  # step 1 is 100% for every series
    expected = []
    for row in pairs.itertuples():
        a, b = counts[row.a], counts[row.b]
        expected.append(
            proportion.proportions_ztest([a[row.step - 1], b[row.step - 1]], [a[0], b[0]])[1]
        )
    assert pairs["p_value"].tolist() == pytest.approx(expected, rel=1e-9)
    holm = multitest.multipletests(expected, method="holm")[1]
    assert pairs["p_holm"].tolist() == pytest.approx(list(holm), rel=1e-9)
    for row in data.itertuples():
        at_step = pairs[(pairs["step"] == row.step) & pairs["significant"]]
        other = [
            b if a == row.segment else a
            for a, b in zip(at_step["a"], at_step["b"], strict=True)
            if row.segment in (a, b)
        ]
        assert row.differs_from == ", ".join(other)
    layers = chart.to_dict()["layer"]
    rules = [layer for layer in layers if layer["mark"]["type"] == "rule"]
    assert rules and rules[0]["encoding"]["y2"]["field"] == "high"
    assert "95% intervals" in chart.title.subtitle[0] and "Holm" in chart.title.subtitle[1]


def test_one_segment_is_tested_against_the_rest_of_the_users(ds, oracle):
    proportion = pytest.importorskip("statsmodels.stats.proportion")
    data = funnel(ds, STEPS[:2], by={"Paid": PAID}, include_all=True, return_data=True)[1]
    reached = _funnel_by_user(oracle.upto())
    members, everyone = oracle.members(PAID), oracle.everyone()
    groups = [reached[reached.index.isin(m)] for m in (members, everyone - members)]
    x = [int(g["t1"].notna().sum()) for g in groups]
    n = [int(g["t0"].notna().sum()) for g in groups]
    pairs = data.attrs["pairs"]
    assert (pairs["a"].tolist(), pairs["b"].tolist()) == (["Paid"], ["Rest"])
    assert pairs["p_value"].tolist() == pytest.approx([proportion.proportions_ztest(x, n)[1]])
