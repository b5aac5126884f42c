"""The periods of a time chart: the window that ends with as_of."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from heapseg.charts import ChartError
from heapseg.charts.periods import check_unit, naive_utc, period_starts, stamp, utc


def test_periods_end_with_the_one_holding_as_of():
    mid = datetime(2026, 9, 15, 12)
    assert period_starts(mid, "day", 2) == [datetime(2026, 9, 14), datetime(2026, 9, 15)]
    midnight = datetime(2026, 9, 15)
    assert period_starts(midnight, "day", 2) == [datetime(2026, 9, 13), datetime(2026, 9, 14)]
    assert period_starts(mid, "week", 1) == [datetime(2026, 9, 14)]  # ISO weeks start Monday
    assert period_starts(mid, "month", None, start="2026-07-20") == [
        datetime(2026, 7, 1),
        datetime(2026, 8, 1),
        datetime(2026, 9, 1),
    ]
    with pytest.raises(ChartError):
        period_starts(mid, "day", 0)


def test_intervals_are_checked_against_the_chart_s_units():
    assert check_unit("week") == "week"
    with pytest.raises(ChartError, match="unknown interval 'month'; valid: day, week"):
        check_unit("month", ("day", "week"))


def test_stamps_and_zones_are_utc():
    assert stamp(datetime(2026, 11, 1)) == "2026-11-01"
    assert stamp(datetime(2026, 11, 1, 14, 30)) == "2026-11-01 14:30"
    aware = pd.Series(pd.to_datetime(["2026-11-01 15:30"]).tz_localize("Europe/Berlin"))
    naive = naive_utc(aware)
    assert naive.tolist() == [pd.Timestamp("2026-11-01 14:30")]
    assert str(utc(naive).dt.tz) == "UTC"
    assert utc(datetime(2026, 11, 1)) == pd.Timestamp("2026-11-01", tz="UTC")
