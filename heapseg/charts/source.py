"""What a chart was drawn for (its kind, request and settings), kept on the chart it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from heapseg.charts.common import ChartError
from heapseg.charts.request import ChartRequest

__all__ = ["ChartSource", "attach", "source_of"]

#: The attribute that holds a chart's source. Set with ``object.__setattr__``: Altair turns
#: ordinary attributes into Vega-Lite properties, and this one must never reach the spec.
ATTRIBUTE = "_heapseg_source"


@dataclass(frozen=True)
class ChartSource:
    """A drawn chart's origin: enough to turn any of its marks back into a segment.

    ``kind`` is the chart function's name, ``request`` the resolved segments, scope and
    ``as_of``, ``settings`` the chart's own arguments as it used them (event, windows, steps,
    periods, ...; see each chart module's call to :func:`~heapseg.charts.titles.finish`).
    """

    kind: str
    request: ChartRequest
    settings: Mapping[str, Any] = field(default_factory=dict)


def attach(chart: Any, source: ChartSource) -> Any:
    """``chart`` with ``source`` kept on it (not in its Vega-Lite spec)."""
    object.__setattr__(chart, ATTRIBUTE, source)
    return chart


def source_of(chart: Any) -> ChartSource:
    """The source of a chart drawn by heapseg, or a ChartError saying why there is none.

    Accepts the chart, or the ``(chart, data)`` pair of ``return_data=True``.
    """
    if isinstance(chart, tuple) and len(chart) == 2:
        chart = chart[0]
    source = getattr(chart, "__dict__", {}).get(ATTRIBUTE)
    if source is None:
        raise ChartError(
            "this chart does not say what it was drawn for: pass a chart as a heapseg chart "
            "function returned it (a chart changed afterwards, e.g. with .properties(), is a "
            "new Altair object without it)"
        )
    return source
