"""Size over time: how many users a segment held at each day/week/month (evaluated at each as_of)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import altair as alt
import ibis
import pandas as pd

from heapseg.as_of import AsOf, resolve_as_of
from heapseg.charts.common import ChartError, pct
from heapseg.charts.drawing import put, unvalidated
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import (
    DEFAULT_PERIODS,
    check_unit,
    naive_utc,
    period_starts,
    stamp,
    utc,
)
from heapseg.charts.queries import predicate, run
from heapseg.charts.request import prepare
from heapseg.charts.segments import ChartSegment
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, title_params
from heapseg.dataset import Dataset
from heapseg.progress import progress
from heapseg.resolver import Resolver
from heapseg.timeunits import shift, step

__all__ = ["size_over_time"]

#: Moments evaluated per backend query (a UNION ALL of one aggregate per moment): a quarter of
#: days is one query, and a longer series does not become one statement the planner chokes on.
BATCH = 100
_STEP_WORDS = {"hour": "hour", "day": "day", "week": "7 days", "month": "month"}


def size_over_time(
    ds: Dataset,
    segments: Any,
    *,
    interval: str = "week",
    last: int | None = None,
    start: Any = None,
    as_of: AsOf = None,
    calendar: bool = False,
    share: bool = False,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """How many users each segment held at a series of moments (one line per segment).

    Each point is the segment evaluated with ``as_of`` at its moment (the last point at
    ``as_of`` itself), so relative windows ("in the last 30 days") move with it. By default the
    moments are equal steps of one ``interval`` counted back from ``as_of`` (``as_of``,
    ``as_of`` - 7 days, ...: every step is a whole week); ``calendar=True`` takes the ends of the
    calendar periods instead (Mondays, the 1st of the month), so its last step, up to ``as_of``,
    is usually a part of a period. All points
    come from one backend query (a UNION ALL of one count per moment; one query per
    :data:`BATCH` moments).

    Parameters
    ----------
    segments
        One or more segments (a list, ``(name, segment)`` pairs, a dict, catalog entries).
    interval, last, start
        The points: ``last`` steps of ``interval`` (``"hour"``, ``"day"``, ``"week"`` of 7 days
        or calendar ``"month"``) up to ``as_of`` (default 12 weeks), or every step back to
        ``start``.
    calendar
        Step through calendar periods (the end of each ISO week / month, the last point at
        ``as_of``) instead of equal steps back from ``as_of``.
    share
        Plot the share of all users instead of the count.

    Returns
    -------
    altair.Chart
        One line per segment; its data has ``at`` (UTC), ``segment``, ``users``, ``total`` and
        ``share``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, did
    >>> ds = heapseg.connect()
    >>> active = did("Session").last(30, "day")
    >>> chart = charts.size_over_time(ds, {"Active": active}, interval="week", last=4)
    >>> chart.data[["at", "segment", "users", "share"]]
                             at segment  users     share
    0 2026-10-11 00:00:00+00:00  Active   3297  0.349037
    1 2026-10-18 00:00:00+00:00  Active   3324  0.345494
    2 2026-10-25 00:00:00+00:00  Active   3425  0.348601
    3 2026-11-01 00:00:00+00:00  Active   3451  0.345100
    """
    unit = check_unit(interval)
    request = prepare(
        ds,
        segments,
        as_of=as_of,
        resolver=resolver,
        fewest=1,
        too_few="size_over_time needs at least one segment",
    )
    when = request.as_of
    moments = _moments(when, unit, last, start, calendar)
    request.check_points(len(moments), "use a coarser interval or fewer periods")

    frame = counts_at(ds, request.segments, moments, request.resolver)
    data = _frame(frame, request.segments)
    chart = _draw(data, request.names, share, colors, unit == "hour")
    heading = title or (
        f"Segment size at the end of each {unit}"
        if calendar
        else f"Segment size every {_STEP_WORDS[unit]}, back from as_of"
    )
    chart = put(
        chart, title=title_params(heading, when, "each point evaluates the segment at that moment")
    )
    source = ChartSource("size_over_time", request, {"unit": unit, "moments": moments})
    return finish(chart, data, return_data, request.note(), source)


def _moments(
    when: datetime, unit: str, last: int | None, start: Any, calendar: bool
) -> list[datetime]:
    """The moments evaluated, oldest first, the last one ``when``."""
    if calendar:
        return [min(step(p, 1, unit), when) for p in period_starts(when, unit, last, start)]
    if start is not None:
        first = resolve_as_of(start)
        if first > when:
            raise ChartError(f"start {stamp(first)} is after as_of {stamp(when)}")
        moments = [when]
        while shift(when, len(moments), unit) >= first:
            moments.append(shift(when, len(moments), unit))
        return moments[::-1]
    n = DEFAULT_PERIODS[unit] if last is None else last
    if n < 1:
        raise ChartError(f"last must be at least 1, got {n}")
    return [shift(when, k, unit) for k in range(n - 1, -1, -1)]


def counts_at(
    ds: Dataset,
    segments: Sequence[ChartSegment],
    moments: list[Any],
    resolver: Resolver | None = None,
) -> pd.DataFrame:
    """Counts of every segment at every moment: one backend query per :data:`BATCH` moments."""
    frames = []
    batches = range(0, len(moments), BATCH)
    # A bar only for several queries: one query needs none, and notebooks stay deterministic.
    with progress("size over time", len(moments) if len(batches) > 1 else None) as work:
        for first in batches:
            frames.append(_batch(ds, segments, moments[first : first + BATCH], resolver))
            work.advance(len(frames[-1]))
    frame = pd.concat(frames, ignore_index=True)
    frame["at"] = naive_utc(frame["at"])
    return frame.sort_values("at", ignore_index=True)


def _batch(
    ds: Dataset, segments: Sequence[ChartSegment], moments: list[Any], resolver: Resolver | None
) -> pd.DataFrame:
    users = ds.users
    parts = [
        users.aggregate(
            at=ibis.literal(moment, type="timestamp"),
            total=users.count(where=ds.population(moment)),
            **{
                f"s{i}": users.count(where=predicate(ds, seg, moment, resolver))
                for i, seg in enumerate(segments)
            },
        )
        for moment in moments
    ]
    return run(ds, ibis.union(*parts))


def _frame(frame: pd.DataFrame, segments: Sequence[ChartSegment]) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "at": utc(frame["at"]),
                "segment": seg.name,
                "users": frame[f"s{i}"].astype("int64"),
                "total": frame["total"].astype("int64"),
            }
        )
        for i, seg in enumerate(segments)
    ]
    data = pd.concat(parts, ignore_index=True)
    data["share"] = [pct(u, t) for u, t in zip(data["users"], data["total"], strict=True)]
    return data


@unvalidated
def _draw(
    data: pd.DataFrame,
    names: list[str],
    share: bool,
    colors: SegmentColors | None,
    hourly: bool,
) -> alt.Chart:
    toggle = legend_toggle()
    # Minutes: the last point (as_of) may fall inside the same day as the one before it.
    time_unit = "utcyearmonthdatehoursminutes"
    y = (
        alt.Y("share:Q", title="Share of all users (%)", axis=alt.Axis(format=".0%"))
        if share
        else alt.Y("users:Q", title="Users in the segment", axis=alt.Axis(format=",d"))
    )
    return (
        alt.Chart(data)
        .mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=16 if len(data) > 200 else 36))
        .encode(
            x=alt.X(
                f"{time_unit}(at):T",
                title="Evaluated at (UTC)",
                axis=alt.Axis(format="%b %d %H:%M" if hourly else "%b %d, %Y"),
            ),
            y=y,
            color=color(names, colors),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip(f"{time_unit}(at):T", title="As of (UTC)", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("share:Q", title="Share of all users", format=".1%"),
            ],
        )
        .add_params(toggle)
        .properties(width=640, height=300)
    )
