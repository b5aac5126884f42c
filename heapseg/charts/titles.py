"""How every chart ends: a title with its as_of and notes, common axes, the data attached."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd

from heapseg.charts.common import check_points
from heapseg.charts.drawing import unvalidated
from heapseg.charts.periods import stamp
from heapseg.charts.segments import ChartSegment
from heapseg.charts.source import ChartSource, attach

__all__ = ["finish", "scope_note", "title_params"]


@unvalidated
def title_params(
    text: str, as_of: datetime, *details: str, lines: Sequence[str] = ()
) -> alt.TitleParams:
    """A title saying what is shown; the subtitle gives the as_of (UTC) and the details
    (empty ones are left out), then ``lines`` each on a line of its own (longer explanations
    that would run off the chart on one line)."""
    first = " · ".join([f"as of {stamp(as_of)} UTC", *[d for d in details if d]])
    more = [line for line in lines if line]
    subtitle: str | list[str] = [first, *more] if more else first
    return alt.TitleParams(text=text, subtitle=subtitle, anchor="start", fontSize=15)


def scope_note(filter: ChartSegment | None) -> str:
    """The subtitle's note on a ``filter=``."""
    return f"only users in: {filter.name}" if filter is not None else ""


@unvalidated
def finish(
    chart: Any,
    data: pd.DataFrame,
    return_data: bool,
    note: str = "",
    source: ChartSource | None = None,
) -> Any:
    """The chart, or ``(chart, data)`` when asked for; ``chart.data`` is ``data`` either way.

    ``note`` (e.g. :meth:`ChartRequest.note <heapseg.charts.request.ChartRequest.note>`) ends
    the subtitle and is kept in ``data.attrs["note"]``. ``source`` (what the chart was drawn
    for) stays on the chart, so that :func:`heapseg.charts.segment_of` can turn its marks
    into segments.
    """
    check_points(len(data), "narrow the window or use a coarser interval")
    if note:
        heading = chart.title
        if isinstance(heading, alt.TitleParams) and isinstance(heading.subtitle, list):
            heading.subtitle = [" · ".join((heading.subtitle[0], note)), *heading.subtitle[1:]]
        elif isinstance(heading, alt.TitleParams):
            heading.subtitle = " · ".join(p for p in (heading.subtitle, note) if p)
        data.attrs["note"] = note
    # Set in place: configure_axis() and configure_view() would each copy the whole chart.
    if chart.config is alt.Undefined:
        chart.config = alt.Config()
    chart.config["axis"] = alt.AxisConfig(labelFontSize=11, titleFontSize=12)
    chart.config["view"] = alt.ViewConfig(stroke=None)
    if source is not None:
        attach(chart, source)
    return (chart, data) if return_data else chart
