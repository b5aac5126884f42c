"""Size over time against the reference evaluator: each moment, joining and history."""

from __future__ import annotations

from datetime import datetime

from heapseg.charts import size_over_time
from tests.charts.conftest import AS_OF, BUYERS, PAID


def test_size_over_time_evaluates_each_moment(ds, oracle, executed):
    data = size_over_time(ds, {"Buyers": BUYERS}, interval="week", last=3, return_data=True)[1]
    assert executed == [3]  # one row per moment, all from one query
    moments = [datetime(2026, 9, 7), datetime(2026, 9, 14), AS_OF]
    assert list(data["at"].dt.tz_localize(None)) == moments
    assert data["users"].tolist() == [len(oracle.members(BUYERS, m)) for m in moments]
    assert data["users"].nunique() > 1


def test_size_over_time_evaluates_joining_and_history_at_each_moment(ds, oracle):
    data = size_over_time(ds, {"Paid": PAID}, interval="week", last=6, return_data=True)[1]
    moments = list(data["at"].dt.tz_localize(None))
    # Who had joined, and who was on the paid plan, at each moment (from the plan's history).
    assert data["users"].tolist() == [len(oracle.members(PAID, m)) for m in moments]
    assert data["total"].tolist() == [len(oracle.everyone(m)) for m in moments]
    assert data["total"].is_monotonic_increasing and data["total"].nunique() > 1
    today = {"combinator": "and", "rules": PAID["rules"]}
    assert data.attrs.get("note") is None  # the plan has a history: nothing to warn about
    assert data["users"].iloc[0] < len(oracle.members(today))


def test_charts_say_when_property_values_are_todays(sample_path):
    import heapseg

    current = heapseg.connect(sample_path, as_of=AS_OF, user_history=None)
    chart, data = size_over_time(current, {"Paid": PAID}, last=2, return_data=True)
    assert data.attrs["note"] == "subscription_type: values as of today"
    assert "subscription_type: values as of today" in chart.to_dict()["title"]["subtitle"]
    events_only = size_over_time(current, {"Buyers": BUYERS}, last=2, return_data=True)[1]
    assert "note" not in events_only.attrs
