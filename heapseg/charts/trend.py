"""Trend: an event per hour/day/week/month, one line per segment, aggregated in the backend."""

from __future__ import annotations

from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError
from heapseg.charts.drawing import layer, put, unvalidated
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import TIME_UNITS, check_unit, naive_utc, period_starts, utc
from heapseg.charts.queries import events_key, numeric_property, timestamp
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE, step

__all__ = ["trend"]

MEASURES = ("events", "users", "sum", "avg")


def trend(
    ds: Dataset,
    event: str | None = None,
    *,
    by: Any = None,
    filter: Any = None,
    where: Any = None,
    measure: str = "events",
    property: str | None = None,
    interval: str = "day",
    last: int | None = None,
    start: Any = None,
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """How often an event happens per period, one line per segment.

    One backend query flags every user with every segment, joins the flags to the period's
    events and returns one row per period; only those rows reach Altair.

    Parameters
    ----------
    ds
        The dataset.
    event
        The event's name; ``None`` counts every event.
    by
        Segments to draw one line each for: a segment, a list, ``(name, segment)`` pairs, a dict
        of name -> segment, catalog entries or names (with a catalog resolver).
    filter
        Only the users in this segment (``~segment`` or :func:`not_in` for those not in it).
    where
        Event-property conditions: a format-1 group of ``event_property`` rules, or a rule such as
        ``heapseg.event_prop("path").contains("/pricing")``.
    measure
        ``"events"`` (count), ``"users"`` (unique users doing it), ``"sum"`` or ``"avg"`` of the
        numeric event ``property``.
    interval
        ``"hour"``, ``"day"``, ``"week"`` (ISO weeks, Monday) or ``"month"``; periods are UTC.
    last, start
        The window: ``last=N`` is N whole periods ending with the one that holds ``as_of``
        (default 48 hours, 30 days, 12 weeks or 12 months), or every period from ``start``.
        When ``as_of`` falls inside a period, that period is the last one, still running
        (``complete`` is False, drawn dashed). When ``as_of`` is exactly the start of a period
        (midnight for days), nothing of the new period has happened yet: the last period is the
        whole one that ends at ``as_of``, and it also counts the events at exactly ``as_of``
        (as every chart and rule does).
    as_of
        Events after it are ignored and segments are evaluated at it (default: the dataset's).
    include_all
        Add an "All users" line (default: only when ``by`` is not given).
    colors
        The colour registry (default: the session's :data:`heapseg.charts.colors`).
    return_data
        Return ``(chart, data)`` instead of the chart; ``chart.data`` holds the same frame.

    Returns
    -------
    altair.Chart
        A layered line chart; its data has ``period`` (UTC), ``segment``, ``value`` and
        ``complete`` (False for the period still running at ``as_of``).

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts
    >>> ds = heapseg.connect()
    >>> paid = heapseg.user.subscription_type == "paid"
    >>> chart = charts.trend(ds, "Session", by={"Paid": paid, "Not paid": ~paid},
    ...                      interval="week", last=4)
    >>> chart.data
                         period   segment  value  complete
    0 2026-10-05 00:00:00+00:00      Paid   1140      True
    1 2026-10-12 00:00:00+00:00      Paid   1107      True
    2 2026-10-19 00:00:00+00:00      Paid   1134      True
    3 2026-10-26 00:00:00+00:00      Paid    860     False
    4 2026-10-05 00:00:00+00:00  Not paid   1909      True
    5 2026-10-12 00:00:00+00:00  Not paid   1935      True
    6 2026-10-19 00:00:00+00:00  Not paid   2049      True
    7 2026-10-26 00:00:00+00:00  Not paid   1983     False
    """
    unit = check_unit(interval)
    if measure not in MEASURES:
        raise ChartError(f"unknown measure {measure!r}; valid: {', '.join(MEASURES)}")
    if measure in ("sum", "avg"):
        numeric_property(ds, property, measure)
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    periods = period_starts(request.as_of, unit, last, start)
    request.check_points(len(periods), f"use a coarser interval than {unit!r} or a shorter window")

    settings = (unit, periods[0], periods[-1], events_key(event, where), measure, property)
    frame = request.run(
        "trend", settings, lambda: _query(request, unit, periods, event, where, measure, property)
    )
    frame["period"] = naive_utc(frame["period"])
    frame = frame.set_index("period").reindex(periods)
    data = _long(frame, request, measure, unit)
    chart = _draw(data, request, unit, measure, property, event, colors, title, len(periods))
    settings = {"event": event, "where": where, "measure": measure, "unit": unit}
    source = ChartSource("trend", request, {**settings, "periods": periods})
    return finish(chart, data, return_data, request.note(), source)


def _query(
    request: ChartRequest,
    unit: str,
    periods: list,
    event: str | None,
    where: Any,
    measure: str,
    prop: str | None,
) -> ir.Table:
    # No end but as_of itself (inclusive): the events at exactly as_of, when as_of starts a
    # period, belong to the last period shown (see period_starts), not to one left out.
    events = request.events(
        since=periods[0],
        events=event,
        where=where,
        columns=[prop] if measure in ("sum", "avg") else [],
    )
    joined = events.join(request.users(), "user_id")

    def metric(condition: Any) -> Any:
        if measure == "events":
            return joined.count(where=condition)
        if measure == "users":
            return joined.user_id.nunique(where=condition)
        column = joined[prop]
        return column.sum(where=condition) if measure == "sum" else column.mean(where=condition)

    metrics = {f"m{i}": metric(joined[f"s{i}"]) for i in range(len(request.segments))}
    metrics["m_all"] = metric(None)
    last = timestamp(request.ds, periods[-1])
    period = ibis.least(joined.time.truncate(TRUNCATE[unit]), last)
    return joined.group_by(period=period).aggregate(**metrics)


def _long(frame: pd.DataFrame, request: ChartRequest, measure: str, unit: str) -> pd.DataFrame:
    columns = [(s.name, f"m{i}") for i, s in enumerate(request.segments)]
    if request.include_all:
        columns.append((request.all_name, "m_all"))
    # The same periods for every series: worked out once.
    periods = utc(pd.Series(frame.index, dtype="datetime64[us]"))
    complete = [step(p, 1, unit) <= request.as_of for p in frame.index]
    parts = []
    for name, column in columns:
        values = frame[column]
        # A period without events is a real zero, except for an average (there is none).
        values = values.astype("Float64") if measure == "avg" else values.fillna(0)
        if measure in ("events", "users"):
            values = values.astype("int64")
        parts.append(
            pd.DataFrame(
                {
                    "period": periods,
                    "segment": name,
                    "value": values.to_numpy(),
                    "complete": complete,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _labels(measure: str, prop: str | None, event: str | None, unit: str) -> tuple[str, str]:
    what = event or "All events"
    return {
        "events": (f"{what}: events per {unit}", "Events (count)"),
        "users": (f"{what}: unique users per {unit}", "Users (unique)"),
        "sum": (f"{what}: sum of {prop} per {unit}", f"Sum of {prop}"),
        "avg": (f"{what}: average {prop} per {unit}", f"Average {prop} per event"),
    }[measure]


@unvalidated
def _draw(
    data: pd.DataFrame,
    request: ChartRequest,
    unit: str,
    measure: str,
    prop: str | None,
    event: str | None,
    colors: SegmentColors | None,
    title: str | None,
    n_periods: int,
) -> alt.LayerChart:
    names = request.names
    heading, y_title = _labels(measure, prop, event, unit)
    if request.segments:
        heading += " by segment"
    time_unit = TIME_UNITS[unit]
    period_title = {"week": "Week starting (UTC)"}.get(unit, f"{unit.capitalize()} (UTC)")
    value_format = ",.0f" if measure in ("events", "users") else ",.2f"
    toggle = legend_toggle()
    base = alt.Chart().encode(
        x=alt.X(f"{time_unit}(period):T", title=period_title),
        y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=value_format.replace(".0f", "d"))),
        color=color(names, colors),
        opacity=toggled(toggle),
        tooltip=[
            alt.Tooltip("segment:N", title="Segment"),
            alt.Tooltip(f"{time_unit}(period):T", title=period_title),
            alt.Tooltip("value:Q", title=y_title, format=value_format),
            alt.Tooltip("complete:N", title="Complete period"),
        ],
    )
    size = 16 if n_periods > 60 else 36
    running = _running(data)
    solid = base.transform_filter("datum.complete") if running is not None else base
    layers = [
        solid.mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=size)).add_params(toggle)
    ]
    if running is not None:
        # The period still running at as_of reads as a drop when drawn like the others: a dashed
        # segment from the last complete period to a hollow point, and a word in the subtitle.
        tail = base.transform_filter(f"time(datum.period) >= {running}")
        layers.append(tail.mark_line(strokeWidth=2, strokeDash=[5, 4]))
        hollow = base.transform_filter("!datum.complete")
        layers.append(hollow.mark_point(size=size, filled=False, fill="white", opacity=1))
    unfinished = f"dashed: the {unit} still running at as_of" if running is not None else ""
    return put(
        layer(*layers, data=data),
        width=640,
        height=300,
        title=title_params(
            title or heading,
            request.as_of,
            scope_note(request.scope),
            "segment membership at that date" if request.segments else "",
            unfinished,
        ),
    )


def _running(data: pd.DataFrame) -> float | None:
    """Where the dashed tail starts (epoch milliseconds): the last complete period, or the
    running one when none is complete; None when every period is complete."""
    if bool(data["complete"].all()):
        return None
    done = data.loc[data["complete"], "period"]
    start = done.max() if len(done) else data["period"].min()
    return start.timestamp() * 1000
