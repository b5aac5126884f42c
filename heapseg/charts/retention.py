"""Retention by segment: of users who did a start event, the share who came back N days/weeks later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError
from heapseg.charts.drawing import layer, put, unvalidated
from heapseg.charts.intervals import (
    Group,
    compared,
    holm_pairs,
    pairs_note,
    partners,
    proportion_bounds,
    test_pair,
)
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit, stamp
from heapseg.charts.queries import timestamp
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE, shift

__all__ = ["retention"]

_SECONDS = {"day": 86_400, "week": 7 * 86_400}
CONVENTIONS = ("elapsed", "calendar")


def retention(
    ds: Dataset,
    start_event: str,
    return_event: str | None = None,
    *,
    by: Any = None,
    filter: Any = None,
    periods: int = 8,
    unit: str = "week",
    convention: str = "elapsed",
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
    cohort_last·unit < time <= as_of``). Her period N (1..``periods``) is, by ``convention``:

    - ``"elapsed"`` (the default): ``[start + N·unit, start + (N+1)·unit)``, 24-hour days or
      7-day weeks counted from the moment of her start event;
    - ``"calendar"``: the UTC calendar day ``d0 + N`` (or the ISO week, from Monday, N weeks
      after her start's), where ``d0`` is the day (week) of her start event.

    She is retained in period N when she did ``return_event`` in it (after her start). Period N
    counts only the users for whom it has fully elapsed by ``as_of`` (the *eligible* users), so
    late starters never pull a curve down; the eligible users are fewer for later periods, and
    each rate has a 95% Wilson interval. One backend query; at most two rows per period come
    back.

    Parameters
    ----------
    start_event, return_event
        Event names; the return event defaults to the start event.
    by, filter
        Segments for one curve each (membership at ``as_of``); users to keep.
    periods, unit
        How many periods after the start, of ``"day"`` or ``"week"``.
    convention
        ``"elapsed"`` (exact 24-hour days and 7-day weeks counted from each user's start) or
        ``"calendar"`` (UTC calendar days / ISO weeks after the start's), as above.
    cohort_last
        The cohort window in units before ``as_of`` (default ``periods + 4``).

    Returns
    -------
    altair.Chart
        One line per segment with its 95% intervals; its data has ``segment``, ``period``,
        ``cohort`` (users who started), ``eligible`` (users whose period N has elapsed),
        ``retained``, ``rate``, ``low`` and ``high`` (the Wilson interval) and ``differs_from``
        (the segments whose rate in that period differs significantly, after Holm's correction
        over every pair and period shown). ``data.attrs["pairs"]`` holds the two-proportion
        z-tests (a single segment is tested against the rest of the users).

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
    if convention not in CONVENTIONS:
        raise ChartError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    if periods < 1:
        raise ChartError(f"periods must be at least 1, got {periods}")
    back = cohort_last if cohort_last is not None else periods + 4
    returning = return_event or start_event
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    request.check_points(periods, "ask for fewer periods")

    span = (periods, unit, back)
    query = lambda: _query(request, (start_event, returning), span, convention)  # noqa: E731
    frame = request.run("retention", ((start_event, returning), span, convention), query)
    names = request.names
    data = _frame(frame, names, len(request.segments), request.include_all, periods)
    chart = _draw(data, names, unit, colors)
    heading = title or f"Retention: {returning} N {unit}s after {start_event}"
    chart = put(
        chart,
        title=title_params(
            heading,
            request.as_of,
            scope_note(request.scope),
            "lines: 95% intervals",
            lines=[
                *_window(data, start_event, (periods, unit, back), convention, request.as_of),
                pairs_note(data.attrs["pairs"], at="period", word=unit),
            ],
        ),
    )
    settings = {"events": (start_event, returning), "periods": periods, "unit": unit}
    source = ChartSource(
        "retention", request, {**settings, "cohort_last": back, "convention": convention}
    )
    return finish(chart, data, return_data, request.note(), source)


def _query(
    request: ChartRequest,
    events: tuple[str, str],
    span: tuple[int, str, int],
    convention: str = "elapsed",
) -> ir.Table:
    ds, when = request.ds, request.as_of
    periods, unit, back = span
    seconds = _SECONDS[unit]
    starts = request.events(after=shift(when, back, unit), events=events[0])
    cohort = starts.group_by("user_id").aggregate(t0=starts.time.min())
    cohort = cohort.join(request.users(), "user_id")
    # Periods are counted from the start event itself, or from the start of its UTC day (ISO
    # week): whole periods from an aligned anchor are then calendar days (weeks).
    if convention == "calendar":
        cohort = cohort.mutate(anchor=cohort.t0.truncate(TRUNCATE[unit]))
    else:
        cohort = cohort.mutate(anchor=cohort.t0)
    # The last period that has fully elapsed for each user (-1 when not even period 0 has).
    since = timestamp(ds, when).epoch_seconds() - cohort.anchor.epoch_seconds()
    elapsed = (since / seconds).floor()
    cohort = cohort.mutate(done=(elapsed - 1).cast("int64"))

    back_events = request.events(events=events[1])
    back_events = back_events.select(uid=back_events.user_id, t=back_events.time)
    pairs = cohort.join(back_events, [cohort.user_id == back_events.uid, back_events.t > cohort.t0])
    pairs = pairs.mutate(
        k=((pairs.t.epoch_seconds() - pairs.anchor.epoch_seconds()) / seconds).floor().cast("int64")
    )
    pairs = pairs.filter(pairs.k >= 1, pairs.k <= periods, pairs.k <= pairs.done)
    flags = [f"s{i}" for i in range(len(request.segments))]
    retained = pairs.select("user_id", "k", *flags).distinct()

    def counts(table: Any, kind: str) -> Any:
        metrics = {f"n_{flag}": table.count(where=table[flag]) for flag in flags}
        metrics["n_all"] = table.count()
        return table.group_by("k").aggregate(kind=ibis.literal(kind), **metrics)

    clipped = cohort.mutate(k=ibis.least(cohort.done, periods))
    return ibis.union(counts(retained, "retained"), counts(clipped, "cohort"))


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
            low, high = proportion_bounds(back, eligible)
            records.append(
                {
                    "segment": name,
                    "period": k,
                    "cohort": total,
                    "eligible": eligible,
                    "retained": back,
                    "rate": back / eligible if eligible else float("nan"),
                    "low": low,
                    "high": high,
                }
            )
    data = pd.DataFrame(records)
    pairs = _pairs(data, names[:n_segments], names[-1] if with_all else None, periods)
    found = partners(pairs, ["period"])
    data["differs_from"] = [
        found.get((name, k), "") for name, k in zip(data["segment"], data["period"], strict=True)
    ]
    data.attrs["pairs"] = pairs
    return data


def _pairs(
    data: pd.DataFrame, segments: list[str], everyone: str | None, periods: int
) -> pd.DataFrame:
    """Two-proportion tests of the rates of every pair of segments in every period (one
    segment: against the rest of the users), Holm over them all."""
    rows = []
    # One pass over the columns: filtering the frame per period cost more than the query.
    counts = {
        (name, k): (n, x)
        for name, k, n, x in zip(
            data["segment"], data["period"], data["eligible"], data["retained"], strict=True
        )
    }
    for k in range(1, periods + 1):
        groups = [Group(n, counts[n, k][0], x=counts[n, k][1]) for n in segments]
        every = None
        if everyone is not None:
            every = Group(everyone, counts[everyone, k][0], x=counts[everyone, k][1])
        rows += [{"period": k, **test_pair(a, b, "proportion")} for a, b in compared(groups, every)]
    return holm_pairs(rows, ["period"])


def _window(
    data: pd.DataFrame,
    start_event: str,
    span: tuple[int, str, int],
    convention: str,
    as_of: datetime,
) -> list[str]:
    """The subtitle's explanation of who counts: the cohort window, the convention and the
    eligible users (who fall from period to period)."""
    periods, unit, back = span
    since = stamp(shift(as_of, back, unit))
    kind = "UTC calendar" if convention == "calendar" else "elapsed"
    shown = data.groupby("segment", sort=False)["eligible"]
    first, last = shown.first(), shown.last()
    if len(first) <= 3:
        counts = ", ".join(f"{n} {first[n]:,} → {last[n]:,}" for n in first.index)
        eligible = f"eligible from {unit} 1 to {periods}: {counts}"
    else:
        eligible = f"fewest eligible at a point: {int(data['eligible'].min()):,}"
    return [
        f"cohort: first {start_event} after {since} (cohort_last={back} {unit}s); {unit} N "
        f"({kind}) counts only the users whose {unit} N has ended",
        eligible,
    ]


@unvalidated
def _draw(
    data: pd.DataFrame, names: list[str], unit: str, colors: SegmentColors | None
) -> alt.LayerChart:
    toggle = legend_toggle()
    label = unit.capitalize()
    base = alt.Chart().encode(
        x=alt.X("period:O", title=f"{label}s after the start event", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("rate:Q", title="Users who came back (%)", axis=alt.Axis(format=".0%")),
        color=color(names, colors),
        opacity=toggled(toggle),
    )
    line = base.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=40)).encode(
        tooltip=[
            alt.Tooltip("segment:N", title="Segment"),
            alt.Tooltip("period:O", title=label),
            alt.Tooltip("rate:Q", title="Came back", format=".1%"),
            alt.Tooltip("low:Q", title="95% interval from", format=".1%"),
            alt.Tooltip("high:Q", title="95% interval to", format=".1%"),
            alt.Tooltip("retained:Q", title="Users who came back", format=",d"),
            alt.Tooltip("eligible:Q", title=f"Users with {unit} N elapsed", format=",d"),
            alt.Tooltip("cohort:Q", title="Cohort size", format=",d"),
            alt.Tooltip("differs_from:N", title="Differs significantly from"),
        ]
    )
    # The 95% interval of each point, and a "*" over the points whose rate differs
    # significantly from another segment's in that period (named in the subtitle).
    rules = base.mark_rule(strokeWidth=1.5).encode(y=alt.Y("low:Q"), y2=alt.Y2("high:Q"))
    marks = (
        base.transform_filter("datum.differs_from != ''")
        .mark_text(text="*", fontSize=16, fontWeight="bold", dy=-4, baseline="bottom")
        .encode(y=alt.Y("high:Q"))
    )
    return put(layer(line.add_params(toggle), rules, marks, data=data), width=560, height=300)
