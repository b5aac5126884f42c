"""Funnel by segment: conversion through ordered steps within a time limit, one series per segment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
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
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import as_where
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, scope_note, title_params
from heapseg.compile import funnel_times
from heapseg.dataset import Dataset
from heapseg.model import Duration, FunnelRule, FunnelStep, LastWindow
from heapseg.resolver import Resolver

__all__ = ["funnel", "funnel_rule"]


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


def funnel_rule(
    steps: Any,
    within: tuple[int, str] = (7, "day"),
    window: tuple[int, str] = (30, "day"),
    *,
    reached: int | None = None,
    not_reached: int | None = None,
) -> FunnelRule:
    """The funnel rule behind a funnel chart's bars: with ``reached=k``, the users of bar k.

    ``steps``, ``within`` and ``window`` are the chart's (``steps``, ``(within, within_unit)``,
    ``(last, unit)``); chart and rule share one definition
    (:func:`heapseg.compile.funnel_times`), so ``ds.count(rule & segment)`` is the bar's
    ``users``. ``not_reached=k + 1`` gives the users who dropped off after step k.

    Examples
    --------
    >>> from heapseg.charts.funnel import funnel_rule
    >>> rule = funnel_rule(["Session", "Add to Cart", "Completed Order"], reached=2)
    >>> rule.describe()
    'reached step 2 (Add to Cart) of the funnel Session → Add to Cart → Completed Order within 7 days, entering in the last 30 days'
    """
    chosen = tuple(FunnelStep(name, as_where(where)) for name, where in _steps(steps))
    check_unit(within[1])
    check_unit(window[1])
    return FunnelRule(
        chosen, Duration(*within), LastWindow(*window), reached=reached, not_reached=not_reached
    )


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
    most ``within`` after step 1. Computed in the backend; one row per step comes back. The
    users of bar k are the segment's users that the ``funnel`` rule :func:`funnel_rule` with
    ``reached=k`` selects: chart and rule share one definition.

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
        ``step``, ``event``, ``users``, ``conversion`` (of step 1) and ``from_previous``;
        a share of nobody (a series nobody entered, a step after one nobody reached) is null
        and draws no bar. ``entered`` (step-1 users), ``low`` and ``high`` (the 95% Wilson
        interval of ``conversion``, drawn as a line) and ``differs_from`` (the segments whose
        conversion at that step differs significantly, marked "*") come from the
        two-proportion z-tests of every pair of segments at every step after the first (a
        single segment against the rest of the users), Holm-corrected, in
        ``data.attrs["pairs"]``.

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

    rule = funnel_rule(chosen_steps, (within, within_unit), (last, unit))
    query = lambda: _query(request, rule, len(chosen_steps))  # noqa: E731
    row = request.run("funnel", rule.to_json(sort_keys=True), query).iloc[0]

    names = request.names
    keys = [f"s{i}" for i in range(len(request.segments))] + (
        ["all"] if request.include_all else []
    )
    data = _frame(row, names, keys, chosen_steps)
    _test_pairs(data, names, len(request.segments), request.include_all)
    chart = _draw(data, names, chosen_steps, (last, unit), colors)
    return finish(
        put(
            chart,
            title=_title(
                title, chosen_steps, request, (within, within_unit), data.attrs.get("pairs")
            ),
        ),
        data,
        return_data,
        request.note(),
        ChartSource("funnel", request, {"rule": rule, "steps": chosen_steps}),
    )


def _query(request: ChartRequest, rule: FunnelRule, n_steps: int) -> ir.Table:
    """How many users of each series reached each step: one row."""
    reached = funnel_times(rule, request.ds.context(request.as_of))
    joined = reached.join(request.users(), "user_id")
    keys = [(f"s{i}", joined[f"s{i}"]) for i in range(len(request.segments))]
    if request.include_all:
        keys.append(("all", None))
    metrics = {}
    for k in range(n_steps):
        done = joined[f"t{k}"].notnull()
        for key, flag in keys:
            metrics[f"{key}_{k}"] = joined.count(where=done if flag is None else done & flag)
    return joined.aggregate(**metrics)


def _frame(
    row: pd.Series, names: list[str], keys: list[str], steps: list[tuple[str, Any]]
) -> pd.DataFrame:
    records = []
    for name, key in zip(names, keys, strict=True):
        entered = int(row[f"{key}_0"])
        previous = entered
        # Shares of nobody are no shares: null (no bar), not 0%.
        for k, (event, _) in enumerate(steps):
            users = int(row[f"{key}_{k}"])
            records.append(
                {
                    "segment": name,
                    "step": k + 1,
                    "event": event,
                    "label": f"{k + 1}. {event}",
                    "users": users,
                    "conversion": users / entered if entered else None,
                    "from_previous": users / previous if previous else None,
                    **dict(zip(("low", "high"), proportion_bounds(users, entered), strict=True)),
                    "entered": entered,
                }
            )
            previous = users
    types = {"conversion": float, "from_previous": float, "low": float, "high": float}
    return pd.DataFrame(records).astype(types)


def _test_pairs(data: pd.DataFrame, names: list[str], n_segments: int, with_all: bool) -> None:
    """Two-proportion tests of the conversion (of step 1) of every pair of segments at every
    step after the first (one segment: against the rest of the users), Holm over them all:
    ``data.attrs["pairs"]`` and the ``differs_from`` column."""
    rows = []
    # One pass over the columns: filtering the frame per step cost more than the query.
    counts = {
        (name, step): (n, x)
        for name, step, n, x in zip(
            data["segment"], data["step"], data["entered"], data["users"], strict=True
        )
    }
    for step in sorted(set(data["step"]))[1:]:
        groups = [Group(n, counts[n, step][0], x=counts[n, step][1]) for n in names]
        everyone = groups[n_segments] if with_all else None
        pairs = compared(groups[:n_segments], everyone)
        rows += [{"step": step, **test_pair(a, b, "proportion")} for a, b in pairs]
    pairs = holm_pairs(rows, ["step"])
    found = partners(pairs, ["step"])
    data["differs_from"] = [
        found.get((name, step), "")
        for name, step in zip(data["segment"], data["step"], strict=True)
    ]
    data.attrs["pairs"] = pairs


def _title(
    title: str | None,
    steps: list[tuple[str, Any]],
    request: ChartRequest,
    within: tuple[int, str],
    pairs: pd.DataFrame | None = None,
) -> alt.TitleParams:
    heading = title or "Funnel: " + " → ".join(event for event, _ in steps)
    return title_params(
        heading,
        request.as_of,
        f"within {within[0]} {within[1]}{'s' if within[0] != 1 else ''} of step 1",
        scope_note(request.scope),
        "lines: 95% intervals",
        lines=[pairs_note(pairs, at="step", word="step")] if pairs is not None else [],
    )


@unvalidated
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
                alt.Tooltip("low:Q", title="95% interval from", format=".1%"),
                alt.Tooltip("high:Q", title="95% interval to", format=".1%"),
                alt.Tooltip("differs_from:N", title="Differs significantly from"),
            ],
        )
        .add_params(toggle)
    )
    # The 95% interval of each bar, and its label above both, with a "*" when the segment's
    # conversion differs significantly from another one's at that step (named in the subtitle).
    rules = base.mark_rule(color="#333333", strokeWidth=1.2).encode(
        y=alt.Y("low:Q"), y2=alt.Y2("high:Q")
    )
    layers = [bars, rules.transform_filter("datum.step > 1 && isValid(datum.low)")]
    if len(names) <= 4:
        layers.append(
            base.mark_text(dy=-5, fontSize=10, baseline="bottom")
            .transform_filter("isValid(datum.conversion)")
            .transform_calculate(
                top="isValid(datum.high) ? max(datum.high, datum.conversion) : datum.conversion",
                shown="format(datum.conversion, '.0%') + (datum.differs_from ? ' *' : '')",
            )
            .encode(y=alt.Y("top:Q"), text=alt.Text("shown:N"))
        )
    step_width = max(14, 90 // len(names)) * len(names) + 30
    return put(layer(*layers, data=data), width=step_width * len(steps), height=300)
