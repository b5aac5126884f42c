"""Retention by segment: of users who did a start event, the share who came back N days/weeks later."""

from __future__ import annotations

from typing import Any

import altair as alt
import ibis
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import run, timestamp
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import shift

__all__ = ["retention"]

_SECONDS = {"day": 86_400, "week": 7 * 86_400}


def retention(
    ds: Dataset,
    start_event: str,
    return_event: str | None = None,
    *,
    by: Any = None,
    filter: Any = None,
    periods: int = 8,
    unit: str = "week",
    cohort_last: int | None = None,
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """Of the users who did ``start_event``, the share who did ``return_event`` N periods later.

    A user's start is her first ``start_event`` in the cohort window (``as_of -
    cohort_last·unit < time <= as_of``). She is retained in period N (1..``periods``) when she
    did ``return_event`` in ``[start + N·unit, start + (N+1)·unit)``. Period N counts only the
    users for whom it has fully elapsed by ``as_of``, so late starters never pull a curve down.
    One backend query; at most two rows per period come back.

    Parameters
    ----------
    start_event, return_event
        Event names; the return event defaults to the start event.
    by, filter
        Segments for one curve each (membership at ``as_of``); users to keep.
    periods, unit
        How many periods after the start, of ``"day"`` or ``"week"`` (exact 24-hour days and
        7-day weeks counted from each user's start).
    cohort_last
        The cohort window in units before ``as_of`` (default ``periods + 4``).

    Returns
    -------
    altair.Chart
        One line per segment; its data has ``segment``, ``period``, ``eligible`` (users whose
        period N has elapsed), ``retained`` and ``rate``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> chart = charts.retention(ds, "Created Account", "Session", by={"Paid": paid}, periods=3)
    >>> chart.data[["segment", "period", "eligible", "retained", "rate"]]
      segment  period  eligible  retained      rate
    0    Paid       1       213        85  0.399061
    1    Paid       2       186        56  0.301075
    2    Paid       3       145        57  0.393103
    """
    check_unit(unit, ("day", "week"))
    if periods < 1:
        raise ChartError(f"periods must be at least 1, got {periods}")
    back = cohort_last if cohort_last is not None else periods + 4
    returning = return_event or start_event
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    request.check_points(periods, "ask for fewer periods")

    frame = _aggregate(request, (start_event, returning), (periods, unit, back))
    names = request.names
    data = _frame(frame, names, len(request.segments), request.include_all, periods)
    chart = _draw(data, names, unit, colors)
    cohort = f"cohort: did {start_event} in the last {back} {unit}s"
    heading = title or f"Retention: {returning} N {unit}s after {start_event}"
    chart = chart.properties(
        title=title_params(heading, request.as_of, cohort, scope_note(request.scope))
    )
    settings = {"events": (start_event, returning), "periods": periods, "unit": unit}
    source = ChartSource("retention", request, {**settings, "cohort_last": back})
    return finish(chart, data, return_data, request.note(), source)


def _aggregate(
    request: ChartRequest, events: tuple[str, str], span: tuple[int, str, int]
) -> pd.DataFrame:
    ds, when = request.ds, request.as_of
    periods, unit, back = span
    seconds = _SECONDS[unit]
    starts = request.events(after=shift(when, back, unit), events=events[0])
    cohort = starts.group_by("user_id").aggregate(t0=starts.time.min())
    cohort = cohort.join(request.users(), "user_id")
    # The last period that has fully elapsed for each user (-1 when not even period 0 has).
    elapsed = ((timestamp(ds, when).epoch_seconds() - cohort.t0.epoch_seconds()) / seconds).floor()
    cohort = cohort.mutate(done=(elapsed - 1).cast("int64"))

    back_events = request.events(events=events[1])
    back_events = back_events.select(uid=back_events.user_id, t=back_events.time)
    pairs = cohort.join(back_events, [cohort.user_id == back_events.uid, back_events.t > cohort.t0])
    pairs = pairs.mutate(
        k=((pairs.t.epoch_seconds() - pairs.t0.epoch_seconds()) / seconds).floor().cast("int64")
    )
    pairs = pairs.filter(pairs.k >= 1, pairs.k <= periods, pairs.k <= pairs.done)
    flags = [f"s{i}" for i in range(len(request.segments))]
    retained = pairs.select("user_id", "k", *flags).distinct()

    def counts(table: Any, kind: str) -> Any:
        metrics = {f"n_{flag}": table.count(where=table[flag]) for flag in flags}
        metrics["n_all"] = table.count()
        return table.group_by("k").aggregate(kind=ibis.literal(kind), **metrics)

    clipped = cohort.mutate(k=ibis.least(cohort.done, periods))
    expr = ibis.union(counts(retained, "retained"), counts(clipped, "cohort"))
    return run(ds, expr)


def _frame(
    frame: pd.DataFrame, names: list[str], n_segments: int, with_all: bool, periods: int
) -> pd.DataFrame:
    keys = [f"n_s{i}" for i in range(n_segments)] + (["n_all"] if with_all else [])
    retained = frame[frame["kind"] == "retained"].set_index("k")
    cohort = frame[frame["kind"] == "cohort"].set_index("k")
    records = []
    for name, key in zip(names, keys, strict=True):
        by_done = cohort[key] if key in cohort else pd.Series(dtype="int64")
        total = int(by_done.sum())
        for k in range(1, periods + 1):
            # Users whose last elapsed period is k or later have a complete period k.
            eligible = int(by_done[by_done.index >= k].sum())
            back = int(retained[key].get(k, 0)) if key in retained else 0
            records.append(
                {
                    "segment": name,
                    "period": k,
                    "cohort": total,
                    "eligible": eligible,
                    "retained": back,
                    "rate": back / eligible if eligible else float("nan"),
                }
            )
    return pd.DataFrame(records)


def _draw(
    data: pd.DataFrame, names: list[str], unit: str, colors: SegmentColors | None
) -> alt.Chart:
    toggle = legend_toggle()
    label = unit.capitalize()
    return (
        alt.Chart(data)
        .mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=40))
        .encode(
            x=alt.X(
                "period:O", title=f"{label}s after the start event", axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("rate:Q", title="Users who came back (%)", axis=alt.Axis(format=".0%")),
            color=color(names, colors),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("period:O", title=label),
                alt.Tooltip("rate:Q", title="Came back", format=".1%"),
                alt.Tooltip("retained:Q", title="Users who came back", format=",d"),
                alt.Tooltip("eligible:Q", title=f"Users with {unit} N elapsed", format=",d"),
                alt.Tooltip("cohort:Q", title="Cohort size", format=",d"),
            ],
        )
        .add_params(toggle)
        .properties(width=560, height=300)
    )
