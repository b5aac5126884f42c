"""Lifecycle: per period, the active users split into new, returning and resurrecting, and the
dormant ones below zero, one panel per segment."""

from __future__ import annotations

from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError
from heapseg.charts.drawing import put, unvalidated
from heapseg.charts.palette import toggled
from heapseg.charts.periods import (
    TIME_UNITS,
    check_unit,
    index_of,
    period_index,
    period_starts,
    utc,
)
from heapseg.charts.queries import events_key
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE, step

__all__ = ["lifecycle"]

STATUSES = ("new", "returning", "resurrecting", "dormant")
#: Fixed colours: a status means the same thing in every panel, whatever the segment.
STATUS_COLORS = ("#4c78a8", "#54a24b", "#b279a2", "#e45756")
#: Fill opacity of the bars of the period still running at as_of (its counts are partial).
RUNNING_OPACITY = 0.4
NEW_RULES = ("joined", "first")


def lifecycle(
    ds: Dataset,
    event: str | None = None,
    *,
    by: Any = None,
    filter: Any = None,
    where: Any = None,
    interval: str = "week",
    last: int | None = None,
    start: Any = None,
    new: str = "joined",
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """Per period, the active users split into new, returning and resurrecting, and the users
    who went dormant, as stacked bars (dormant below zero), one panel per segment.

    A user is **active** in a period when she has an *activity*: an event named ``event`` (any
    event when ``None``) matching ``where``, at or before ``as_of``, identity merges applied.
    Periods are UTC hours, days, ISO weeks (Monday) or months. Each user active in a period is in
    exactly one of the first three statuses, as PostHog defines them:

    - **new**: she joined in this period (``new="joined"``, the default, PostHog's rule: her
      ``users.joined_at``, else her first event of any name, lies in the period); with
      ``new="first"``, this period holds her first activity ever;
    - **returning**: not new, and active in the previous period too;
    - **resurrecting**: not new, and not active in the previous period. With ``new="first"`` she
      was active some period before (she came back); with ``new="joined"`` she may also be
      active for the first time after the period she joined in (as PostHog counts her).

    **dormant** (drawn below zero): active in the previous period, not in this one. The period
    holding ``as_of`` is still running (``complete`` is ``False``; its bars are drawn lighter and
    the subtitle says so): its dormant users are those not back *yet*. When ``as_of`` is exactly the start of a period, the last period is the
    whole one ending at ``as_of`` and an activity at exactly ``as_of`` counts in it. One backend query: the users' distinct active periods (all their history up
    to ``as_of``, so that "first" and "before" are exact), each compared with the previous and
    next ones by a window function, counted per period, status and segment.

    Parameters
    ----------
    ds
        The dataset.
    event, where
        What counts as activity: an event name (``None``: any event) and event-property
        conditions (as in :func:`~heapseg.charts.trend`).
    by, filter
        Segments for one panel each (membership at ``as_of``); only the users of ``filter``.
    interval, last, start
        ``"hour"``, ``"day"``, ``"week"`` or ``"month"``; the ``last`` periods up to ``as_of``
        (default 48 hours, 30 days, 12 weeks or 12 months), or every period from ``start``.
    new
        ``"joined"`` (joined in the period) or ``"first"`` (first activity in the period).
    as_of, include_all, resolver, title, return_data
        As in :func:`~heapseg.charts.trend` (an "All users" panel by default when ``by`` is
        not given).

    Returns
    -------
    altair.FacetChart | altair.Chart
        Its data has one row per ``period`` (UTC), ``segment`` and ``status``: ``users`` (a
        count, never negative), ``value`` (``users``, negated for dormant: what the bar shows)
        and ``complete``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts
    >>> ds = heapseg.connect()
    >>> paid = heapseg.user.subscription_type == "paid"
    >>> chart = charts.lifecycle(ds, "Session", by={"Paid": paid}, interval="month", last=2)
    >>> chart.data[["period", "status", "users", "value"]]
                         period        status  users  value
    0 2026-09-01 00:00:00+00:00           new    212    212
    1 2026-09-01 00:00:00+00:00     returning    865    865
    2 2026-09-01 00:00:00+00:00  resurrecting    191    191
    3 2026-09-01 00:00:00+00:00       dormant    324   -324
    4 2026-10-01 00:00:00+00:00           new    107    107
    5 2026-10-01 00:00:00+00:00     returning    931    931
    6 2026-10-01 00:00:00+00:00  resurrecting    213    213
    7 2026-10-01 00:00:00+00:00       dormant    334   -334
    """
    unit = check_unit(interval)
    if new not in NEW_RULES:
        raise ChartError(f"unknown new={new!r}; valid: {', '.join(NEW_RULES)}")
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    periods = period_starts(request.as_of, unit, last, start)
    request.check_points(
        len(periods) * len(STATUSES), f"use a coarser interval than {unit!r} or a shorter window"
    )
    settings = (unit, periods[0], periods[-1], events_key(event, where), new)
    query = lambda: _query(request, unit, periods, event, where, new)  # noqa: E731
    frame = request.run("lifecycle", settings, query)
    data = _frame(frame, request, unit, periods)
    chart = _draw(data, request.names, unit)
    what = event or "any event"
    heading = title or f"Lifecycle of users doing {what}, per {unit}"
    rule = "new: joined in the period" if new == "joined" else "new: first activity"
    running = "" if data.empty or data["complete"].all() else f"lighter: the {unit} still running"
    chart = put(
        chart, title=title_params(heading, request.as_of, rule, scope_note(request.scope), running)
    )
    settings = {"event": event, "where": where, "unit": unit, "periods": periods, "new": new}
    source = ChartSource("lifecycle", request, settings)
    return finish(chart, data, return_data, request.note(), source)


def _joined_index(request: ChartRequest, unit: str) -> Any:
    """``user_id`` and ``joined``: the number of the period each user joined in (her
    ``joined_at``, else her first event of any name)."""
    users = request.ds.users
    if request.ds.joined_at_everywhere():
        # No first event is needed (and no scan of every event): joined_at decides for all.
        moment = users.joined_at
        both = users.select(
            "user_id", moment=moment.cast("timestamp") if moment.type().is_date() else moment
        )
    else:
        everything = request.events()
        firsts = everything.group_by("user_id").aggregate(first=everything.time.min())
        if "joined_at" in users.columns:
            joined_at = users.joined_at.cast(firsts.first.type())
            users = users.select("user_id", joined_at=joined_at)
            both = users.left_join(firsts, users.user_id == firsts.user_id)
            moment = ibis.coalesce(both.joined_at, both.first)
            both = both.select(user_id=both.user_id, moment=moment)
        else:
            both = firsts.select("user_id", moment=firsts.first)
    both = both.filter(both.moment.notnull())
    start = both.moment.truncate(TRUNCATE[unit])
    return both.select("user_id", joined=period_index(start, unit))


def _query(
    request: ChartRequest,
    unit: str,
    periods: list,
    event: str | None,
    where: Any,
    new: str,
) -> ir.Table:
    low, high = index_of(periods[0], unit), index_of(periods[-1], unit)
    acts = request.events(events=event, where=where)
    # An activity at exactly as_of, when as_of starts a period, belongs to the last period
    # shown (see period_starts), as every chart counts the events at as_of.
    number = ibis.least(period_index(acts.time.truncate(TRUNCATE[unit]), unit), high)
    active = acts.select("user_id", idx=number).distinct()
    order = ibis.window(group_by="user_id", order_by="idx")
    active = active.mutate(prev=active.idx.lag().over(order), next=active.idx.lead().over(order))

    shown = active.filter(active.idx.between(low, high))
    if new == "joined":
        joined = _joined_index(request, unit)
        shown = shown.left_join(joined, shown.user_id == joined.user_id)
        is_new = ibis.coalesce(shown.joined == shown.idx, False)
    else:
        is_new = shown.prev.isnull()
    status = ibis.cases(
        (is_new, "new"),
        (ibis.coalesce(shown.prev == shown.idx - 1, False), "returning"),
        else_="resurrecting",
    )
    statuses = shown.select(user_id=shown.user_id, idx=shown.idx, status=status)
    gone = active.filter(
        active.next.isnull() | (active.next != active.idx + 1),
        (active.idx + 1).between(low, high),
    )
    dormant = gone.select("user_id", idx=gone.idx + 1, status=ibis.literal("dormant"))
    rows = ibis.union(statuses, dormant)
    joined_rows = rows.join(request.users(), "user_id")
    metrics = {
        f"n_s{i}": joined_rows.count(where=joined_rows[f"s{i}"])
        for i in range(len(request.segments))
    }
    metrics["n_all"] = joined_rows.count()
    return joined_rows.group_by(["idx", "status"]).aggregate(**metrics)


def _frame(frame: pd.DataFrame, request: ChartRequest, unit: str, periods: list) -> pd.DataFrame:
    keys = [f"n_s{i}" for i in range(len(request.segments))]
    keys += ["n_all"] if request.include_all else []
    counts = {
        key: dict(zip(zip(frame["idx"], frame["status"], strict=True), frame[key], strict=True))
        for key in keys
    }
    records = []
    for name, key in zip(request.names, keys, strict=True):
        for start in periods:
            idx = index_of(start, unit)
            for status in STATUSES:
                users = int(counts[key].get((idx, status), 0))
                records.append(
                    {
                        "period": start,
                        "segment": name,
                        "status": status,
                        "users": users,
                        "value": -users if status == "dormant" else users,
                        "complete": step(start, 1, unit) <= request.as_of,
                    }
                )
    data = pd.DataFrame(records)
    data["period"] = utc(pd.Series(data["period"], dtype="datetime64[us]"))
    return data


@unvalidated
def _draw(data: pd.DataFrame, names: list[str], unit: str) -> Any:
    time_unit = TIME_UNITS[unit]
    period_title = {"week": "Week starting (UTC)"}.get(unit, f"{unit.capitalize()} (UTC)")
    toggle = alt.selection_point(fields=["status"], bind="legend", name="legend_toggle")
    bars = (
        alt.Chart(data)
        .transform_calculate(order=f"indexof({list(STATUSES)!r}, datum.status)")
        .mark_bar()
        .encode(
            x=alt.X(f"{time_unit}(period):O", title=period_title, axis=alt.Axis(labelAngle=-40)),
            y=alt.Y("value:Q", title="Users (dormant below zero)", axis=alt.Axis(format="d")),
            color=alt.Color(
                "status:N",
                scale=alt.Scale(domain=list(STATUSES), range=list(STATUS_COLORS)),
                sort=list(STATUSES),
                title="Status",
                legend=alt.Legend(orient="bottom", symbolType="square"),
            ),
            order=alt.Order("order:Q"),
            opacity=toggled(toggle, 0.15),
            # The period still running at as_of reads as a drop when drawn like the others.
            fillOpacity=alt.FillOpacityValue(
                RUNNING_OPACITY, condition={"test": "datum.complete", "value": 1.0}
            ),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip(f"{time_unit}(period):T", title=period_title),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("complete:N", title="Complete period"),
            ],
        )
        .add_params(toggle)
        .properties(width=max(240, 26 * data["period"].nunique()), height=220)
    )
    if len(names) == 1:
        return bars
    return bars.facet(row=alt.Row("segment:N", sort=list(names), title=None))
