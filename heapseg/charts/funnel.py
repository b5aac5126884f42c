"""Funnel by segment: conversion through ordered steps within a time limit, one series per segment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import ibis
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError, pct
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import run
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import shift

__all__ = ["funnel"]


def _steps(steps: Any) -> list[tuple[str, Any]]:
    if isinstance(steps, str) or not steps:
        raise ChartError("a funnel needs a list of at least two steps (event names)")
    out = []
    for item in steps:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, Mapping) and "event" in item:
            out.append((item["event"], item.get("where")))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append(item)
        else:
            raise ChartError(
                f"a funnel step is an event name, (name, where) or {{'event': ..., 'where': ...}}; "
                f"got {item!r}"
            )
    if len(out) < 2:
        raise ChartError("a funnel needs at least two steps")
    return out


def _interval(value: int, unit: str) -> Any:
    if unit == "week":
        return ibis.interval(days=7 * value)
    return ibis.interval(**{f"{unit}s": value})


def funnel(
    ds: Dataset,
    steps: Any,
    *,
    by: Any = None,
    filter: Any = None,
    within: int = 7,
    within_unit: str = "day",
    last: int = 30,
    unit: str = "day",
    as_of: AsOf = None,
    include_all: bool | None = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """Conversion through ordered steps within a time limit, one series per segment.

    A user enters with her first step-1 event in the window (``as_of - last·unit < time <=
    as_of``); each next step is her first such event strictly after the previous step and at
    most ``within`` after step 1. Computed in the backend; one row per step comes back.

    Parameters
    ----------
    steps
        Event names, or ``(name, where)`` / ``{"event": name, "where": group}`` for steps with
        event-property conditions.
    by, filter
        Segments for one series each; users to keep (as in :func:`trend`).
    within, within_unit
        The conversion window from step 1 (default 7 days).
    last, unit
        The window in which users enter at step 1 (default 30 days).

    Returns
    -------
    altair.Chart
        Grouped bars, the share of step-1 users reaching each step; its data has ``segment``,
        ``step``, ``event``, ``users``, ``conversion`` (of step 1) and ``from_previous``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> steps = ["Session", "Add to Cart", "Completed Order"]
    >>> chart = charts.funnel(ds, steps, by={"Paid": paid})
    >>> chart.data[["segment", "step", "event", "users", "conversion"]]
      segment  step            event  users  conversion
    0    Paid     1          Session   1236    1.000000
    1    Paid     2      Add to Cart    532    0.430421
    2    Paid     3  Completed Order    220    0.177994
    """
    check_unit(unit)
    check_unit(within_unit)
    chosen_steps = _steps(steps)
    request = prepare(
        ds, by, filter=filter, include_all=include_all, as_of=as_of, resolver=resolver
    )

    reached = _reached(request, chosen_steps, (last, unit), (within, within_unit))
    joined = reached.join(request.users(), "user_id")
    keys = [(f"s{i}", joined[f"s{i}"]) for i in range(len(request.segments))]
    if request.include_all:
        keys.append(("all", None))
    metrics = {}
    for k in range(len(chosen_steps)):
        done = joined[f"t{k}"].notnull()
        for key, flag in keys:
            metrics[f"{key}_{k}"] = joined.count(where=done if flag is None else done & flag)
    row = run(ds, joined.aggregate(**metrics)).iloc[0]

    names = request.names
    data = _frame(row, names, [key for key, _ in keys], chosen_steps)
    chart = _draw(data, names, chosen_steps, (last, unit), colors)
    return finish(
        chart.properties(title=_title(title, chosen_steps, request, (within, within_unit))),
        data,
        return_data,
        request.note(),
    )


def _reached(
    request: ChartRequest,
    steps: list[tuple[str, Any]],
    window: tuple[int, str],
    within: tuple[int, str],
) -> Any:
    """Per user who entered: ``t0`` (step 1) and ``t1, t2, ...`` (NULL once she stopped)."""
    name, where = steps[0]
    first = request.events(after=shift(request.as_of, *window), events=name, where=where)
    reached = first.group_by("user_id").aggregate(t0=first.time.min())
    limit = _interval(*within)
    for k, (name, where) in enumerate(steps[1:], start=1):
        found = request.events(events=name, where=where)
        found = found.select(uid=found.user_id, tk=found.time)
        pairs = reached.join(
            found,
            [
                reached.user_id == found.uid,
                found.tk > reached[f"t{k - 1}"],
                found.tk <= reached.t0 + limit,
            ],
        )
        nxt = pairs.group_by(uid=pairs.user_id).aggregate(**{f"t{k}": pairs.tk.min()})
        joined = reached.left_join(nxt, reached.user_id == nxt.uid)
        reached = joined.select(
            *[joined[col] for col in reached.columns], **{f"t{k}": joined[f"t{k}"]}
        )
    return reached


def _frame(
    row: pd.Series, names: list[str], keys: list[str], steps: list[tuple[str, Any]]
) -> pd.DataFrame:
    records = []
    for name, key in zip(names, keys, strict=True):
        entered = int(row[f"{key}_0"])
        previous = entered
        for k, (event, _) in enumerate(steps):
            users = int(row[f"{key}_{k}"])
            records.append(
                {
                    "segment": name,
                    "step": k + 1,
                    "event": event,
                    "label": f"{k + 1}. {event}",
                    "users": users,
                    "conversion": pct(users, entered),
                    "from_previous": pct(users, previous),
                }
            )
            previous = users
    return pd.DataFrame(records)


def _title(
    title: str | None,
    steps: list[tuple[str, Any]],
    request: ChartRequest,
    within: tuple[int, str],
) -> alt.TitleParams:
    heading = title or "Funnel: " + " → ".join(event for event, _ in steps)
    return title_params(
        heading,
        request.as_of,
        f"within {within[0]} {within[1]}{'s' if within[0] != 1 else ''} of step 1",
        scope_note(request.scope),
    )


def _draw(
    data: pd.DataFrame,
    names: list[str],
    steps: list[tuple[str, Any]],
    window: tuple[int, str],
    colors: SegmentColors | None,
) -> alt.LayerChart:
    labels = [f"{k + 1}. {event}" for k, (event, _) in enumerate(steps)]
    toggle = legend_toggle()
    base = alt.Chart().encode(
        x=alt.X(
            "label:N",
            sort=labels,
            title=f"Step (entering in the last {window[0]} {window[1]}s)",
            axis=alt.Axis(labelAngle=0, labelLimit=200),
        ),
        xOffset=alt.XOffset("segment:N", sort=names),
        y=alt.Y(
            "conversion:Q",
            title="Users reaching the step (% of step 1)",
            axis=alt.Axis(format=".0%"),
            scale=alt.Scale(domain=[0, 1]),
        ),
        opacity=toggled(toggle),
    )
    bars = (
        base.mark_bar(cornerRadiusEnd=2)
        .encode(
            color=color(names, colors),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("label:N", title="Step"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("conversion:Q", title="Of step 1", format=".1%"),
                alt.Tooltip("from_previous:Q", title="Of the previous step", format=".1%"),
            ],
        )
        .add_params(toggle)
    )
    layers = [bars]
    if len(names) <= 4:
        layers.append(
            base.mark_text(dy=-7, fontSize=10).encode(text=alt.Text("conversion:Q", format=".0%"))
        )
    step_width = max(14, 90 // len(names)) * len(names) + 30
    return alt.layer(*layers, data=data).properties(width=step_width * len(steps), height=300)
