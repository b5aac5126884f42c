"""Altair charts by segment, aggregated in the backend: trend, compare, sizes, overlap, funnel,
retention, size over time and breakdown.

Run :func:`enable_notebook` first in a notebook so that charts display without internet access.
Every chart function returns an Altair chart whose ``.data`` is the aggregated DataFrame (or
``(chart, data)`` with ``return_data=True``); segments keep one colour across charts
(:data:`colors`).
"""

from __future__ import annotations

from heapseg.charts.breakdowns import breakdown
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
from heapseg.charts.comparisons import compare
from heapseg.charts.display import enable_notebook, save, to_png, to_svg
from heapseg.charts.funnels import funnel
from heapseg.charts.overlaps import overlap
from heapseg.charts.retention_curves import retention
from heapseg.charts.segment_sizes import sizes
from heapseg.charts.size_history import size_over_time
from heapseg.charts.trends import trend

__all__ = [
    "ALL_USERS",
    "MAX_ROWS",
    "REST",
    "ChartError",
    "ChartSegment",
    "SegmentColors",
    "breakdown",
    "colors",
    "compare",
    "enable_notebook",
    "funnel",
    "not_in",
    "overlap",
    "retention",
    "save",
    "size_over_time",
    "sizes",
    "to_png",
    "to_svg",
    "trend",
]
