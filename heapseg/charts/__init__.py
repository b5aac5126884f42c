"""Altair charts by segment, aggregated in the backend: trend, compare, sizes, overlap, funnel,
retention, size over time, breakdown, lifecycle, stickiness and paths.

Run :func:`enable_notebook` first in a notebook so that charts display without internet access.
Every chart function returns an Altair chart whose ``.data`` is the aggregated DataFrame (or
``(chart, data)`` with ``return_data=True``); segments keep one colour across charts
(:data:`colors`).

Each chart kind is a module named like its function (``heapseg/charts/trend.py`` holds
:func:`trend`); they share one setup step (:mod:`heapseg.charts.request`), the backend queries
(:mod:`~heapseg.charts.queries`), the segments (:mod:`~heapseg.charts.segments`), the colours
(:mod:`~heapseg.charts.palette`), the periods (:mod:`~heapseg.charts.periods`) and the titles
(:mod:`~heapseg.charts.titles`). Every chart keeps what it was drawn for
(:mod:`~heapseg.charts.source`), so that :func:`segment_of` turns any of its marks into the
segment of its users (:mod:`~heapseg.charts.selection`).
"""

from __future__ import annotations

from heapseg.charts.breakdown import breakdown
from heapseg.charts.common import ALL_USERS, MAX_ROWS, REST, ChartError
from heapseg.charts.compare import compare
from heapseg.charts.display import enable_notebook, save, to_png, to_svg
from heapseg.charts.funnel import funnel, funnel_rule
from heapseg.charts.lifecycle import lifecycle
from heapseg.charts.overlap import overlap
from heapseg.charts.palette import SegmentColors, colors
from heapseg.charts.paths import paths
from heapseg.charts.retention import retention
from heapseg.charts.segments import ChartSegment, not_in
from heapseg.charts.selection import MarkSegment, mark_segment, marks, segment_of
from heapseg.charts.size_over_time import size_over_time
from heapseg.charts.sizes import sizes
from heapseg.charts.stickiness import stickiness
from heapseg.charts.trend import trend

__all__ = [
    "ALL_USERS",
    "MAX_ROWS",
    "REST",
    "ChartError",
    "ChartSegment",
    "MarkSegment",
    "SegmentColors",
    "breakdown",
    "colors",
    "compare",
    "enable_notebook",
    "funnel",
    "funnel_rule",
    "lifecycle",
    "mark_segment",
    "marks",
    "not_in",
    "overlap",
    "paths",
    "retention",
    "save",
    "segment_of",
    "size_over_time",
    "sizes",
    "stickiness",
    "to_png",
    "to_svg",
    "trend",
]
