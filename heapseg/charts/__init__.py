"""Altair charts by segment, aggregated in the backend: trend, compare, sizes, overlap, ..."""

from __future__ import annotations

from heapseg.charts.common import (
    ALL_USERS,
    MAX_ROWS,
    REST,
    ChartError,
    ChartSegment,
    SegmentColors,
    colors,
    not_in,
)
from heapseg.charts.trends import trend

__all__ = [
    "ALL_USERS",
    "MAX_ROWS",
    "REST",
    "ChartError",
    "ChartSegment",
    "SegmentColors",
    "colors",
    "not_in",
    "trend",
]
