"""Compare: one metric side by side for segments, with each segment's size and share of all users."""

from __future__ import annotations

from typing import Any

import altair as alt
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ALL_USERS, ChartError, pct
from heapseg.charts.drawing import layer, put, unvalidated
from heapseg.charts.intervals import (
    Group,
    compared,
    holm_pairs,
    mean_bounds,
    pairs_note,
    partners,
    proportion_bounds,
    test_pair,
)
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import events_key, numeric_property
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import shift

__all__ = ["compare"]

MEASURES = ("share", "did", "events_per_user", "sum_per_user", "avg", "user_avg")
_PERCENT = ("share", "did")


def compare(
    ds: Dataset,
    segments: Any,
    *,
    event: str | None = None,
    measure: str | None = None,
    property: str | None = None,
    where: Any = None,
    last: int = 30,
    unit: str = "day",
    as_of: AsOf = None,
    include_all: bool = True,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """A metric side by side for segments (bars), each labelled with its size and share.

    Everything is computed in one backend query that returns one row.

    Parameters
    ----------
    segments
        The segments to compare (one, a list, ``(name, segment)`` pairs, a dict, catalog entries).
    event, where
        The event the metric is about, with optional event-property conditions.
    measure
        ``"did"``: share of the segment's users who did ``event`` in the window (default with an
        event); ``"events_per_user"``; ``"sum_per_user"`` / ``"avg"`` (per event) of the numeric
        event ``property``; ``"user_avg"``: average of the user ``property`` (default with a
        property and no event); ``"share"``: the segment's share of all users (default otherwise).
    last, unit
        The window of the event metrics: ``as_of - last·unit < time <= as_of`` (default 30 days).
    include_all
        Add an "All users" bar as the baseline.

    Returns
    -------
    altair.Chart
        Bars; its data has one row per bar: ``segment``, ``users`` (the segment's size at
        ``as_of``), ``share_of_all`` (its share of all users), ``value`` (the bar) and the parts
        ``value`` is computed from: ``did`` (the segment's users who did ``event`` in the
        window; ``"did"`` is ``did / users``), ``events`` (their events in the window;
        ``"events_per_user"`` is ``events / users``), ``total`` (the sum of ``property``
        over those events, or over the users for ``"user_avg"``; ``"sum_per_user"`` is
        ``total / users``) and ``valued`` (how many of those events, or users, have a value of
        ``property``; ``"avg"`` and ``"user_avg"`` are ``total / valued``). ``low`` and
        ``high`` are the bar's 95% interval (Wilson for ``"share"`` and ``"did"``, t for the
        means, from ``squares``: the sum of squares of what is averaged), drawn as a line;
        ``differs_from`` names the segments whose value differs significantly from this one
        (marked "*"). ``data.attrs["pairs"]`` holds the tests: every pair of segments (a
        single segment with "All users": against the rest), a two-proportion z-test for
        ``"did"``, Welch's t-test for means, Holm-corrected over the pairs (``p_holm``,
        ``significant``); segment sizes (``"share"``) are not tested.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> trial = user.subscription_type == "trial"
    >>> chart = charts.compare(ds, {"Paid": paid, "Trial": trial}, event="Completed Order")
    >>> chart.data[["segment", "users", "did", "value"]]
         segment  users  did     value
    0       Paid   2643  323  0.122210
    1      Trial    130   21  0.161538
    2  All users  10000  851  0.085100
    """
    check_unit(unit)
    measure = measure or ("did" if event else "user_avg" if property else "share")
    if measure not in MEASURES:
        raise ChartError(f"unknown measure {measure!r}; valid: {', '.join(MEASURES)}")
    if measure in ("did", "events_per_user", "sum_per_user", "avg") and event is None:
        raise ChartError(f"measure={measure!r} needs event=")
    if measure in ("sum_per_user", "avg"):
        numeric_property(ds, property, measure)
    if measure == "user_avg":
        _user_numeric(ds, property)
    request = prepare(
        ds,
        segments,
        include_all=include_all,
        as_of=as_of,
        resolver=resolver,
        fewest=1,
        too_few="compare needs at least one segment",
    )

    key = (events_key(event, where), measure, property, (last, unit))
    query = lambda: _query(request, event, where, measure, property, (last, unit))  # noqa: E731
    row = request.run("compare", key, query).iloc[0]
    data = _frame(row, request, measure)
    chart = _draw(data, request, measure, property, event, (last, unit), colors, title)
    settings = {"event": event, "where": where, "measure": measure, "window": (last, unit)}
    return finish(
        chart, data, return_data, request.note(), ChartSource("compare", request, settings)
    )


def _user_numeric(ds: Dataset, name: str | None) -> None:
    props = ds.schema.user_properties
    if name is None or name not in props:
        known = ", ".join(k for k, v in props.items() if v.is_numeric())
        raise ChartError(f"measure='user_avg' needs property= one of: {known}")
    if not props[name].is_numeric():
        raise ChartError(f"user property {name!r} is {props[name]}, not a number")


def _query(
    request: ChartRequest,
    event: str | None,
    where: Any,
    measure: str,
    prop: str | None,
    window: tuple[int, str],
) -> ir.Table:
    user_columns = [prop] if measure == "user_avg" and prop else []
    users = request.users(columns=user_columns)
    flags = {f"s{i}": users[f"s{i}"] for i in range(len(request.segments))}
    flags["all"] = None
    metrics: dict[str, Any] = {}
    if event is None:
        for key, flag in flags.items():
            metrics[f"{key}_users"] = users.count(where=flag)
            if measure == "user_avg":
                value = users[prop].cast("float64")
                metrics[f"{key}_value"] = value.mean(where=flag)
                metrics[f"{key}_total"] = value.sum(where=flag)
                metrics[f"{key}_valued"] = value.count(where=flag)
                metrics[f"{key}_squares"] = (value * value).sum(where=flag)
        return users.aggregate(**metrics)

    wanted = [prop] if prop is not None and measure in ("sum_per_user", "avg") else []
    events = request.events(
        after=shift(request.as_of, window[0], window[1]),
        events=event,
        where=where,
        columns=wanted,
    )
    per_user = {"n": events.count()}
    if wanted:
        value = events[prop].cast("float64")
        per_user.update(total=value.sum(), valued=value.count(), squares=(value * value).sum())
    done = events.group_by("user_id").aggregate(**per_user)
    joined = users.left_join(done, users.user_id == done.user_id)
    for key, flag in flags.items():
        cond = joined[key] if flag is not None else None
        metrics[f"{key}_users"] = joined.count(where=cond)
        did = joined.n.notnull() if cond is None else cond & joined.n.notnull()
        metrics[f"{key}_did"] = joined.count(where=did)
        metrics[f"{key}_events"] = joined.n.sum(where=cond)
        if "total" in per_user:
            metrics[f"{key}_total"] = joined.total.sum(where=cond)
            metrics[f"{key}_valued"] = joined.valued.sum(where=cond)
        # Sums of squares of what is averaged, for the intervals and Welch's tests: per user
        # (events, or the property's sum; users without any count as 0), or per event.
        squared = None
        if measure == "events_per_user":
            squared = joined.n * joined.n
        elif measure == "sum_per_user":
            squared = joined.total * joined.total
        elif measure == "avg":
            squared = joined.squares
        if squared is not None:
            metrics[f"{key}_squares"] = squared.cast("float64").sum(where=cond)
    return joined.aggregate(**metrics)


def _number(value: Any) -> float:
    return 0.0 if value is None or pd.isna(value) else float(value)


def _frame(row: pd.Series, request: ChartRequest, measure: str) -> pd.DataFrame:
    keys = [(s.name, f"s{i}") for i, s in enumerate(request.segments)]
    if request.include_all:
        keys.append((ALL_USERS, "all"))
    total = int(row["all_users"])
    records, groups = [], []
    for name, key in keys:
        users = int(row[f"{key}_users"])
        did = int(_number(row.get(f"{key}_did")))
        events = _number(row.get(f"{key}_events"))
        amount = _number(row.get(f"{key}_total"))
        valued = _number(row.get(f"{key}_valued"))
        squares = _number(row.get(f"{key}_squares"))
        value = {
            "share": pct(users, total),
            "did": pct(did, users),
            "events_per_user": pct(events, users),
            "sum_per_user": pct(amount, users),
            "avg": amount / valued if valued else float("nan"),
            "user_avg": _number(row.get(f"{key}_value")) if users else float("nan"),
        }[measure]
        group = _group(measure, name, users, total, did, events, amount, valued, squares)
        groups.append(group)
        if measure in _PERCENT:
            low, high = proportion_bounds(group.x, group.n)
        else:
            low, high = mean_bounds(group.n, group.total, group.squares)
        records.append(
            {
                "segment": name,
                "users": users,
                "share_of_all": pct(users, total),
                "value": value,
                "low": low,
                "high": high,
                "did": did,
                "events": int(events),
                "total": amount,
                "valued": int(valued),
                "squares": squares,
            }
        )
    data = pd.DataFrame(records)
    data["label"] = [
        f"{r.segment} · {r.users:,} users ({r.share_of_all:.1%})" for r in data.itertuples()
    ]
    pairs = _pairs(groups, request, measure)
    found = partners(pairs)
    data["differs_from"] = [found.get((name,), "") for name, _ in keys]
    data.attrs["pairs"] = pairs
    return data


def _group(
    measure: str,
    name: str,
    users: int,
    total: int,
    did: int,
    events: float,
    amount: float,
    valued: float,
    squares: float,
) -> Group:
    """What the interval and the tests of ``measure`` are computed from."""
    if measure == "share":
        return Group(name, total, x=users)
    if measure == "did":
        return Group(name, users, x=did)
    if measure == "events_per_user":
        return Group(name, users, total=events, squares=squares)
    if measure == "sum_per_user":
        return Group(name, users, total=amount, squares=squares)
    return Group(name, valued, total=amount, squares=squares)  # avg, user_avg


def _pairs(groups: list[Group], request: ChartRequest, measure: str) -> pd.DataFrame:
    """Every pair of segments tested (one segment: against the rest), Holm over them all.

    Segment sizes (``"share"``) are not tested: they are parts of one population, not two
    samples."""
    if measure == "share":
        return holm_pairs([])
    named = groups[: len(request.segments)]
    everyone = groups[-1] if request.include_all else None
    kind = "proportion" if measure == "did" else "mean"
    return holm_pairs([test_pair(a, b, kind) for a, b in compared(named, everyone)])


def _labels(
    measure: str, prop: str | None, event: str | None, window: tuple[int, str]
) -> tuple[str, str]:
    span = f"in the last {window[0]} {window[1]}{'s' if window[0] != 1 else ''}"
    return {
        "share": ("Segment sizes", "Share of all users (%)"),
        "did": (f"Who did {event} {span}", f"Users who did {event} (% of the segment)"),
        "events_per_user": (f"{event} per user {span}", f"{event} events per user"),
        "sum_per_user": (f"{prop} of {event} per user {span}", f"Sum of {prop} per user"),
        "avg": (f"Average {prop} of {event} {span}", f"Average {prop} per {event} event"),
        "user_avg": (f"Average {prop} by segment", f"Average {prop} per user"),
    }[measure]


@unvalidated
def _draw(
    data: pd.DataFrame,
    request: ChartRequest,
    measure: str,
    prop: str | None,
    event: str | None,
    window: tuple[int, str],
    colors: SegmentColors | None,
    title: str | None,
) -> alt.LayerChart:
    heading, x_title = _labels(measure, prop, event, window)
    value_format = ".1%" if measure in _PERCENT else ",.2f"
    y = alt.Y("label:N", sort=list(data["label"]), title=None, axis=alt.Axis(labelLimit=360))
    toggle = legend_toggle()
    bars = (
        alt.Chart()
        .mark_bar(cornerRadiusEnd=2, height={"band": 0.7})
        .encode(
            x=alt.X(
                "value:Q",
                title=x_title,
                axis=alt.Axis(format=".0%" if measure in _PERCENT else ",.2~f"),
            ),
            y=y,
            color=color(request.names, colors),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("share_of_all:Q", title="Share of all users", format=".1%"),
                alt.Tooltip("value:Q", title=x_title, format=value_format),
                alt.Tooltip("low:Q", title="95% interval from", format=value_format),
                alt.Tooltip("high:Q", title="95% interval to", format=value_format),
                alt.Tooltip("differs_from:N", title="Differs significantly from"),
            ],
        )
        .add_params(toggle)
    )
    # The 95% interval as a rule across the bar's end; the value's label right of both, with a
    # "*" when the segment differs significantly from another one (named in the subtitle).
    rules = (
        alt.Chart()
        .mark_rule(color="#333333", strokeWidth=1.5)
        .encode(x=alt.X("low:Q"), x2=alt.X2("high:Q"), y=y, opacity=toggled(toggle))
    )
    text = (
        alt.Chart()
        .transform_calculate(
            at="isValid(datum.high) && isFinite(datum.high) ? max(datum.high, datum.value)"
            " : datum.value",
            shown=f"format(datum.value, '{value_format}') + (datum.differs_from ? ' *' : '')",
        )
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x=alt.X("at:Q"), y=y, text=alt.Text("shown:N"), opacity=toggled(toggle))
    )
    pairs = data.attrs.get("pairs")
    tested = pairs_note(pairs) if pairs is not None else ""
    marked = f"* {tested}" if tested.startswith("significant") else tested
    return put(
        layer(bars, rules, text, data=data),
        width=560,
        height=alt.Step(34),
        title=title_params(
            title or heading,
            request.as_of,
            "segment membership at that date",
            "lines: 95% intervals",
            lines=[marked],
        ),
    )
