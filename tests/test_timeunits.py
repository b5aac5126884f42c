"""Calendar units: stepping by calendar months, truncating to UTC periods, the calendar's ends."""

from __future__ import annotations

from datetime import datetime

import pytest

from heapseg import compile, model
from heapseg.timeunits import TRUNCATE, UNITS, shift, shifted, step, truncate


def test_one_table_of_units_for_the_model_the_compiler_and_the_charts():
    assert UNITS == ("hour", "day", "week", "month")
    assert set(TRUNCATE) == set(UNITS)
    assert model.UNITS is UNITS
    assert compile.shift is shift  # kept where the compiler's callers import it


@pytest.mark.parametrize(
    ("moment", "n", "unit", "expected"),
    [
        (datetime(2026, 1, 31, 8), 1, "month", datetime(2026, 2, 28, 8)),
        (datetime(2024, 3, 31), -1, "month", datetime(2024, 2, 29)),
        (datetime(2026, 12, 15), 1, "month", datetime(2027, 1, 15)),
        (datetime(2026, 1, 15), -13, "month", datetime(2024, 12, 15)),
        (datetime(2026, 9, 15, 12), -2, "week", datetime(2026, 9, 1, 12)),
        (datetime(2026, 9, 15, 23), 2, "hour", datetime(2026, 9, 16, 1)),
        (datetime(2026, 3, 1), -1, "day", datetime(2026, 2, 28)),
    ],
)
def test_step_moves_by_calendar_units(moment, n, unit, expected):
    assert step(moment, n, unit) == expected
    assert shift(moment, -n, unit) == expected


def test_shift_clamps_at_the_calendar_ends_and_step_refuses_them():
    assert shift(datetime(2026, 3, 31), 10**6, "day") == datetime.min
    assert shift(datetime(2026, 3, 31), -(10**6), "month") == datetime.max
    assert shift(datetime(2026, 3, 31), 10**12, "week") == datetime.min
    assert shifted(datetime(2026, 3, 31), 10**6, "day") is None
    with pytest.raises(OverflowError):
        step(datetime(2026, 3, 31), -(10**6), "day")
    with pytest.raises(OverflowError):
        step(datetime(9999, 12, 1), 1, "month")
    with pytest.raises(ValueError, match="fortnight"):
        shift(datetime(2026, 3, 31), 1, "fortnight")


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("hour", datetime(2026, 9, 17, 12)),
        ("day", datetime(2026, 9, 17)),
        ("week", datetime(2026, 9, 14)),  # ISO weeks start on Monday
        ("month", datetime(2026, 9, 1)),
    ],
)
def test_truncate_to_the_start_of_the_period(unit, expected):
    assert truncate(datetime(2026, 9, 17, 12, 30, 5, 7), unit) == expected
    assert truncate(expected, unit) == expected
