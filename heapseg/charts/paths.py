"""Paths: the events users do most often just after and just before an event, step by step, per
segment, as a ranked table and bars."""

from __future__ import annotations

from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError, pct
from heapseg.charts.drawing import put, unvalidated
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import as_where, events_key
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import shift

__all__ = ["paths"]

DIRECTIONS = ("both", "next", "previous")


def paths(
    ds: Dataset,
    event: str,
    *,
    by: Any = None,
    filter: Any = None,
    where: Any = None,
    steps: int = 3,
    direction: str = "both",
    top: int = 5,
    last: int = 30,
    unit: str = "day",
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """The events users do most often right after and right before ``event``, step by step.

    Only the events of the window count (``as_of - last·unit < time <= as_of``, identity merges
    applied). Each user's events are put in order by time, then by name (so events at the same
    instant have one order on every engine). Her **anchor** is her first ``event`` in the
    window that matches ``where``; step +k is the k-th event after it in that order, step -k the
    k-th before it (any event name, ``event`` itself included). Users without an anchor are
    not counted; a user whose path ends sooner has no event at the later steps.

    For each segment and step, the ``top`` events by users are kept, ranked by users, ties by
    event name (A before B): a ranked table in ``.data`` and one panel of bars per step. Each
    user counts once per step. One backend query: the window's events numbered per user by a
    window function, the steps around each anchor, counted per step, event and segment.

    Parameters
    ----------
    event, where
        The anchor event and event-property conditions on it.
    by, filter
        Segments for one series each (membership at ``as_of``); only the users of ``filter``.
    steps
        How many steps after and before (1 to 10).
    direction
        ``"both"``, ``"next"`` (after the anchor only) or ``"previous"``.
    top
        How many events to keep per step and segment (1 to 50).
    last, unit
        The window (default 30 days).
    as_of, include_all, resolver, colors, title, return_data
        As in :func:`~heapseg.charts.trend`.

    Returns
    -------
    altair.FacetChart
        One panel per step; its data (the ranked table) has ``segment``, ``step`` (-N..-1,
        1..N), ``rank`` (1 is the most common), ``event``, ``users`` and ``share`` (of the
        segment's ``anchored`` users) and ``label`` (``"2 before"``, ``"1 after"``).

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts
    >>> ds = heapseg.connect()
    >>> paid = heapseg.user.subscription_type == "paid"
    >>> chart = charts.paths(ds, "Add to Cart", by={"Paid": paid}, steps=1, top=2)
    >>> chart.data[["segment", "step", "rank", "event", "users", "share"]]
      segment  step  rank        event  users     share
    0    Paid    -1     1     Pageview    536  0.767908
    1    Paid    -1     2   Search Bar     64  0.091691
    2    Paid     1     1     Pageview    426  0.610315
    3    Paid     1     2  Add to Cart     96  0.137536
    """
    check_unit(unit)
    if direction not in DIRECTIONS:
        raise ChartError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    for name, value, high in (("steps", steps, 10), ("top", top, 50)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ChartError(f"{name} must be a whole number from 1 to {high}, got {value!r}")
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    offsets = _offsets(steps, direction)
    request.check_points(len(offsets) * top, "ask for fewer steps or a smaller top")
    settings = (events_key(event, where), min(*offsets, 0), max(*offsets, 0), (last, unit))
    query = lambda: _query(request, event, where, offsets, (last, unit))  # noqa: E731
    frame = request.run("paths", settings, query)
    data = _ranked(frame, request, offsets, top)
    chart = _draw(data, request.names, offsets, colors)
    heading = title or f"Paths around {event}: the most common events step by step"
    window = f"first {event} of the last {last} {unit}{'s' if last != 1 else ''}"
    chart = put(
        chart, title=title_params(heading, request.as_of, window, scope_note(request.scope))
    )
    settings = {
        "event": event,
        "where": where,
        "offsets": offsets,
        "top": top,
        "window": (last, unit),
    }
    source = ChartSource("paths", request, settings)
    return finish(chart, data, return_data, request.note(), source)


def _offsets(steps: int, direction: str) -> list[int]:
    before = list(range(-steps, 0)) if direction in ("both", "previous") else []
    after = list(range(1, steps + 1)) if direction in ("both", "next") else []
    return before + after


def _query(
    request: ChartRequest,
    event: str,
    where: Any,
    offsets: list[int],
    window: tuple[int, str],
) -> ir.Table:
    since = shift(request.as_of, *window)
    events = request.events(after=since, columns=["event"])
    order = ibis.window(group_by="user_id", order_by=[events.time, events.event])
    group = as_where(where)
    if group is None or not (group.rules or group.negate):
        numbered = events.select("user_id", "event", n=ibis.row_number().over(order))
        firsts = numbered.filter(numbered.event == event)
        anchors = firsts.group_by(uid=firsts.user_id).aggregate(a=firsts.n.min())
    else:
        # The numbered rows no longer carry event properties: the anchor is the first numbered
        # row at the (time, name) of the user's first matching event.
        numbered = events.select("user_id", "event", "time", n=ibis.row_number().over(order))
        matching = request.events(after=since, events=event, where=where)
        found = matching.group_by(uid=matching.user_id).aggregate(t=matching.time.min())
        hits = numbered.join(
            found,
            [numbered.user_id == found.uid, numbered.time == found.t, numbered.event == event],
        )
        anchors = hits.group_by(uid=hits.user_id).aggregate(a=hits.n.min())
    pairs = numbered.join(anchors, numbered.user_id == anchors.uid)
    pairs = pairs.mutate(step=pairs.n - pairs.a)
    low, high = min(*offsets, 0), max(*offsets, 0)
    pairs = pairs.filter(pairs.step.between(low, high)).select("user_id", "event", "step")
    joined = pairs.join(request.users(), "user_id")
    metrics = {f"n_s{i}": joined.count(where=joined[f"s{i}"]) for i in range(len(request.segments))}
    metrics["n_all"] = joined.count()
    return joined.group_by(["step", "event"]).aggregate(**metrics)


def _ranked(
    frame: pd.DataFrame, request: ChartRequest, offsets: list[int], top: int
) -> pd.DataFrame:
    keys = [f"n_s{i}" for i in range(len(request.segments))]
    keys += ["n_all"] if request.include_all else []
    rows = frame[["step", "event", *keys]].itertuples(index=False, name=None)
    found = [(int(step), str(event), [int(n) for n in counts]) for step, event, *counts in rows]
    records = []
    for i, name in enumerate(request.names):
        anchored = sum(counts[i] for step, _, counts in found if step == 0)
        for step in offsets:
            at = [(event, counts[i]) for s, event, counts in found if s == step and counts[i] > 0]
            at.sort(key=lambda pair: (-pair[1], pair[0]))  # most users first, ties by name
            for rank, (event, users) in enumerate(at[:top], start=1):
                records.append(
                    {
                        "segment": name,
                        "step": step,
                        "rank": rank,
                        "event": event,
                        "users": users,
                        "share": pct(users, anchored),
                        "anchored": anchored,
                        "label": _label(step),
                    }
                )
    columns = ["segment", "step", "rank", "event", "users", "share", "anchored", "label"]
    return pd.DataFrame(records, columns=columns)


def _label(step: int) -> str:
    return f"{step} after" if step > 0 else f"{-step} before"


@unvalidated
def _draw(
    data: pd.DataFrame, names: list[str], offsets: list[int], colors: SegmentColors | None
) -> alt.FacetChart:
    toggle = legend_toggle()
    bars = (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            y=alt.Y(
                "event:N",
                sort=alt.EncodingSortField("users", op="sum", order="descending"),
                title=None,
            ),
            yOffset=alt.YOffset("segment:N", sort=list(names)),
            x=alt.X("share:Q", title="Share of anchored users", axis=alt.Axis(format=".0%")),
            color=color(names, colors),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("label:N", title="Step"),
                alt.Tooltip("rank:Q", title="Rank"),
                alt.Tooltip("event:N", title="Event"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("share:Q", title="Of anchored users", format=".1%"),
            ],
        )
        .add_params(toggle)
        .properties(width=170, height=alt.Step(9 * len(names) + 6))
    )
    order = [_label(s) for s in offsets]
    return bars.facet(
        column=alt.Column("label:N", sort=order, title="Steps from the anchor event")
    ).resolve_scale(y="independent")
