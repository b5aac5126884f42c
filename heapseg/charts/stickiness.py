"""Stickiness: users by the number of days they were active in a week or a month, per segment."""

from __future__ import annotations

from itertools import accumulate
from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError, pct
from heapseg.charts.drawing import put, unvalidated
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import period_starts, stamp
from heapseg.charts.queries import events_key, timestamp
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE

__all__ = ["stickiness"]

WINDOWS = {"week": 7, "month": 30}
MEASURES = ("users", "share")


def stickiness(
    ds: Dataset,
    event: str | None = None,
    *,
    by: Any = None,
    filter: Any = None,
    where: Any = None,
    window: str | int = "week",
    measure: str = "share",
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """How many days of a week or a month users were active: bars for 1, 2, ... N days.

    A user's **active days** are the distinct UTC calendar days of the window on which she did
    ``event`` (any event when ``None``) matching ``where``, identity merges applied. The window
    is the last N UTC days up to ``as_of``: 7 for ``"week"``, 30 for ``"month"``, or N for a
    number; it ends with the day holding ``as_of`` (the day before when ``as_of`` is a
    midnight, whose events at exactly ``as_of`` count on that last day), so with ``as_of`` in
    mid-day the last day is only counted up to ``as_of``. Only
    users active at least one day are counted: the bars of a segment add up to its active users
    in the window. One backend query: the days per user, counted per number of days and segment.

    Parameters
    ----------
    event, where
        What counts as activity (as in :func:`~heapseg.charts.trend`).
    by, filter
        Segments for one series each (membership at ``as_of``); only the users of ``filter``.
    window
        ``"week"`` (7 days), ``"month"`` (30 days) or a number of days (1 to 366).
    measure
        ``"share"`` (of the segment's active users, the default) or ``"users"``.
    as_of, include_all, resolver, colors, title, return_data
        As in :func:`~heapseg.charts.trend`.

    Returns
    -------
    altair.Chart
        Grouped bars; its data has one row per ``segment`` and ``days`` (1..N): ``users`` (who
        were active exactly that many days), ``share`` (of the segment's ``active`` users),
        ``at_least`` (the share active that many days or more) and ``active``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts
    >>> ds = heapseg.connect()
    >>> paid = heapseg.user.subscription_type == "paid"
    >>> chart = charts.stickiness(ds, "Session", by={"Paid": paid})
    >>> chart.data[["segment", "days", "users", "share"]]
      segment  days  users     share
    0    Paid     1    355  0.625000
    1    Paid     2    127  0.223592
    2    Paid     3     47  0.082746
    3    Paid     4     30  0.052817
    4    Paid     5      6  0.010563
    5    Paid     6      2  0.003521
    6    Paid     7      1  0.001761
    """
    days = _days(window)
    if measure not in MEASURES:
        raise ChartError(f"unknown measure {measure!r}; valid: {', '.join(MEASURES)}")
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )
    request.check_points(days, "use a shorter window")
    starts = period_starts(request.as_of, "day", days)
    settings = (starts[0], starts[-1], events_key(event, where))
    frame = request.run("stickiness", settings, lambda: _query(request, starts, event, where))
    data = _frame(frame, request, days)
    chart = _draw(data, request.names, measure, colors)
    what = event or "any event"
    heading = title or f"Stickiness: days with {what} in the last {days} days"
    window_note = f"{stamp(starts[0])} to {stamp(starts[-1])} (UTC days)"
    chart = put(
        chart, title=title_params(heading, request.as_of, window_note, scope_note(request.scope))
    )
    settings = {"event": event, "where": where, "days": days, "starts": starts}
    source = ChartSource("stickiness", request, settings)
    return finish(chart, data, return_data, request.note(), source)


def _days(window: str | int) -> int:
    if isinstance(window, str):
        if window not in WINDOWS:
            raise ChartError(
                f"unknown window {window!r}; valid: 'week', 'month' or a number of days"
            )
        return WINDOWS[window]
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 366:
        raise ChartError(
            f"window must be 'week', 'month' or a number of days from 1 to 366, got {window!r}"
        )
    return window


def _query(request: ChartRequest, starts: list, event: str | None, where: Any) -> ir.Table:
    acts = request.events(since=starts[0], events=event, where=where)
    # An event at exactly as_of, when as_of is a midnight, counts on the window's last day
    # (see period_starts), as every chart counts the events at as_of.
    day = ibis.least(acts.time.truncate(TRUNCATE["day"]), timestamp(request.ds, starts[-1]))
    per_user = acts.group_by("user_id").aggregate(days=day.nunique())
    joined = per_user.join(request.users(), "user_id")
    metrics = {f"n_s{i}": joined.count(where=joined[f"s{i}"]) for i in range(len(request.segments))}
    metrics["n_all"] = joined.count()
    return joined.group_by("days").aggregate(**metrics)


def _frame(frame: pd.DataFrame, request: ChartRequest, days: int) -> pd.DataFrame:
    keys = [f"n_s{i}" for i in range(len(request.segments))]
    keys += ["n_all"] if request.include_all else []
    found = frame["days"].tolist()
    columns: dict[str, list] = {
        name: [] for name in ("segment", "days", "users", "share", "at_least", "active")
    }
    for name, key in zip(request.names, keys, strict=True):
        counts = dict(zip(found, frame[key].tolist(), strict=True))
        per_day = [int(counts.get(k, 0)) for k in range(1, days + 1)]
        active = sum(per_day)
        # Users active k days or more: the sums of the counts from k on.
        at_least = list(accumulate(reversed(per_day)))[::-1]
        columns["segment"] += [name] * days
        columns["days"] += range(1, days + 1)
        columns["users"] += per_day
        columns["share"] += [pct(users, active) for users in per_day]
        columns["at_least"] += [pct(more, active) for more in at_least]
        columns["active"] += [active] * days
    return pd.DataFrame(columns)


@unvalidated
def _draw(
    data: pd.DataFrame, names: list[str], measure: str, colors: SegmentColors | None
) -> alt.Chart:
    toggle = legend_toggle()
    y = (
        alt.Y("share:Q", title="Share of active users", axis=alt.Axis(format=".0%"))
        if measure == "share"
        else alt.Y("users:Q", title="Users", axis=alt.Axis(format="d"))
    )
    n_days = int(data["days"].max())
    chart = (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            x=alt.X("days:O", title="Days active in the window", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("segment:N", sort=list(names)),
            y=y,
            color=color(names, colors),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("days:O", title="Days active"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("share:Q", title="Of active users", format=".1%"),
                alt.Tooltip("at_least:Q", title="Active this many days or more", format=".1%"),
                alt.Tooltip("active:Q", title="Active users", format=",d"),
            ],
        )
        .add_params(toggle)
    )
    return put(chart, width=max(320, n_days * (12 * len(names) + 14)), height=280)
