"""The periods of a time chart: its window, how Vega-Lite shows them, and UTC stamps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import resolve_as_of
from heapseg.charts.common import ChartError
from heapseg.timeunits import UNITS, step, truncate

__all__ = [
    "DEFAULT_PERIODS",
    "TIME_UNITS",
    "check_unit",
    "index_of",
    "naive_utc",
    "period_index",
    "period_starts",
    "stamp",
    "utc",
]

# Vega-Lite time units that format periods in UTC, whatever the reader's browser zone.
TIME_UNITS = {
    "hour": "utcyearmonthdatehours",
    "day": "utcyearmonthdate",
    "week": "utcyearmonthdate",
    "month": "utcyearmonth",
}
DEFAULT_PERIODS = {"hour": 48, "day": 30, "week": 12, "month": 12}
# Seconds per numbered period; weeks are numbered by their Monday (1970-01-05 is week 0).
_SECONDS = {"hour": 3600, "day": 86_400, "week": 7 * 86_400}
_EPOCH = datetime(1970, 1, 1)


def check_unit(unit: str, allowed: Sequence[str] = UNITS) -> str:
    """``unit`` when it is one of ``allowed``, else a ChartError naming the valid ones."""
    if unit not in allowed:
        raise ChartError(f"unknown interval {unit!r}; valid: {', '.join(allowed)}")
    return unit


def period_starts(
    as_of: datetime, unit: str, last: int | None, start: Any = None
) -> list[datetime]:
    """The periods a time chart shows, oldest first, ending with the one ``as_of`` falls in.

    When ``as_of`` is exactly the start of a period, that period (which holds nothing yet) is
    left out, so a chart at midnight ends with the whole last day.
    """
    end = truncate(as_of, unit)
    if end == as_of:
        end = step(end, -1, unit)
    if start is not None:
        first = truncate(resolve_as_of(start), unit)
        if first > end:
            raise ChartError(f"start {stamp(first)} is not before as_of {stamp(as_of)}")
    else:
        n = DEFAULT_PERIODS[unit] if last is None else last
        if n < 1:
            raise ChartError(f"last must be at least 1, got {n}")
        first = step(end, -(n - 1), unit)
    starts = [first]
    while starts[-1] < end:
        starts.append(step(first, len(starts), unit))
    return starts


def period_index(start: ir.TimestampValue, unit: str) -> ir.IntegerValue:
    """The number of a period from its start (a truncated timestamp): consecutive periods have
    consecutive numbers, on every engine (months by year and month, the rest by epoch seconds)."""
    if unit == "month":
        return (start.year() * 12 + start.month() - 1).cast("int64")
    return (start.epoch_seconds() / _SECONDS[unit]).floor().cast("int64")


def index_of(start: datetime, unit: str) -> int:
    """:func:`period_index` of a period start in Python."""
    if unit == "month":
        return start.year * 12 + start.month - 1
    return int((start - _EPOCH).total_seconds() // _SECONDS[unit])


def utc(values: Any) -> Any:
    """Naive UTC datetimes (a Series or a scalar) made zone-aware, so that Vega never reads
    them in the browser's local zone."""
    if isinstance(values, pd.Series):
        return pd.to_datetime(values).dt.tz_localize("UTC")
    return pd.Timestamp(values).tz_localize("UTC")


def stamp(moment: datetime) -> str:
    """``2026-11-01`` at midnight, else ``2026-11-01 14:30`` (UTC)."""
    if moment == truncate(moment, "day"):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M}"


def naive_utc(values: pd.Series) -> pd.Series:
    """Backend timestamps as naive UTC (zone-aware columns come back zone-aware)."""
    values = pd.to_datetime(values)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]")
