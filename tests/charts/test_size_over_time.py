"""Size over time against the reference evaluator: each moment, joining and history."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from heapseg.charts import ChartError, size_over_time
from tests.charts.conftest import AS_OF, BUYERS, PAID


def test_size_over_time_evaluates_each_moment(ds, oracle, executed):
    data = size_over_time(
        ds, {"Buyers": BUYERS}, interval="week", last=3, calendar=True, return_data=True
    )[1]
    assert executed == [3]  # one row per moment, all from one query
    # Calendar steps: the ends of ISO weeks (Mondays), then as_of (a Tuesday at noon).
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


def test_equal_steps_back_from_as_of_are_the_default(ds, oracle):
    data = size_over_time(ds, {"Buyers": BUYERS}, interval="week", last=3, return_data=True)[1]
    moments = [AS_OF - timedelta(days=14), AS_OF - timedelta(days=7), AS_OF]
    assert list(data["at"].dt.tz_localize(None)) == moments
    assert data["users"].tolist() == [len(oracle.members(BUYERS, m)) for m in moments]
    assert data["total"].tolist() == [len(oracle.everyone(m)) for m in moments]
    chart = size_over_time(ds, {"Buyers": BUYERS}, interval="week", last=3)
    assert chart.to_dict()["title"]["text"] == "Segment size every 7 days, back from as_of"


def test_equal_steps_by_month_and_back_to_a_start(ds):
    def moments(**kwargs):
        data = size_over_time(ds, {"Paid": PAID}, return_data=True, **kwargs)[1]
        return list(data["at"].dt.tz_localize(None))

    # Calendar months back from the 31st: the day is clamped to the month's end.
    assert moments(interval="month", last=3, as_of="2026-07-31") == [
        datetime(2026, 5, 31),
        datetime(2026, 6, 30),
        datetime(2026, 7, 31),
    ]
    assert moments(interval="day", start="2026-09-12 12:00") == [
        datetime(2026, 9, d, 12) for d in (12, 13, 14, 15)
    ]
    assert moments(interval="day", start="2026-09-12 12:01") == [
        datetime(2026, 9, d, 12) for d in (13, 14, 15)
    ]
    with pytest.raises(ChartError, match="after as_of"):
        size_over_time(ds, {"Paid": PAID}, start="2026-10-01")
    with pytest.raises(ChartError, match="at least 1"):
        size_over_time(ds, {"Paid": PAID}, last=0)
