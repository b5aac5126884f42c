"""Calendar units and their arithmetic: UTC periods, steps of calendar months, truncation."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

__all__ = ["TRUNCATE", "UNITS", "shift", "shifted", "step", "truncate"]

UNITS = ("hour", "day", "week", "month")
#: Each unit's code for ibis' ``truncate`` (weeks start on Monday, as ISO weeks).
TRUNCATE = {"hour": "h", "day": "D", "week": "W", "month": "M"}


def shifted(moment: datetime, amount: int, unit: str) -> datetime | None:
    """``moment - amount·unit``, or None when that lies outside the years 1 to 9999.

    Months are calendar months, the day clamped to the month's end.

    >>> shifted(datetime(2026, 3, 31), 1, "month")
    datetime.datetime(2026, 2, 28, 0, 0)
    >>> shifted(datetime(2026, 3, 31), 10**6, "day") is None
    True
    """
    if unit not in TRUNCATE:
        raise ValueError(f"unknown unit {unit!r}")
    if unit == "month":
        year, month = divmod(moment.year * 12 + (moment.month - 1) - amount, 12)
        if not datetime.min.year <= year <= datetime.max.year:
            return None
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    try:
        return moment - timedelta(**{f"{unit}s": amount})
    except OverflowError:  # the timedelta itself (beyond 10**9 days) or the difference
        return None


def shift(moment: datetime, amount: int, unit: str) -> datetime:
    """``moment - amount·unit``; months are calendar months with the day clamped to the month end.

    A result before 0001-01-01 (after 9999-12-31) is ``datetime.min`` (``datetime.max``): no
    data lies beyond the calendar, so ``in last`` 10**6 days means any time.

    >>> shift(datetime(2026, 3, 31), 1, "month")
    datetime.datetime(2026, 2, 28, 0, 0)
    >>> shift(datetime(2026, 3, 31), 10**6, "day")
    datetime.datetime(1, 1, 1, 0, 0)
    """
    moved = shifted(moment, amount, unit)
    if moved is None:
        return datetime.min if amount > 0 else datetime.max
    return moved


def step(moment: datetime, n: int, unit: str) -> datetime:
    """``moment + n·unit`` (calendar months, the day clamped to the month's end).

    Unlike :func:`shift`, a result outside the calendar is an ``OverflowError``: a chart's
    periods must be real periods.

    >>> step(datetime(2026, 1, 31), 1, "month")
    datetime.datetime(2026, 2, 28, 0, 0)
    >>> step(datetime(2026, 9, 15, 12), -1, "week")
    datetime.datetime(2026, 9, 8, 12, 0)
    """
    moved = shifted(moment, -n, unit)
    if moved is None:
        raise OverflowError(f"{moment} + {n} {unit}s lies outside the calendar")
    return moved


def truncate(moment: datetime, unit: str) -> datetime:
    """The start of the UTC period holding ``moment`` (weeks start on Monday, as ISO weeks).

    >>> truncate(datetime(2026, 9, 17, 12, 30), "week")
    datetime.datetime(2026, 9, 14, 0, 0)
    """
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)
