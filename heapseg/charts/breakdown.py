"""Breakdown: the distribution of a user or event property within a segment versus the rest."""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import ibis
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ALL_USERS, REST, ChartError, pct
from heapseg.charts.drawing import put, unvalidated
from heapseg.charts.palette import SegmentColors, color, legend_toggle, toggled
from heapseg.charts.periods import check_unit
from heapseg.charts.queries import run
from heapseg.charts.request import prepare
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE, shift

__all__ = ["breakdown"]

NOT_SET = "(not set)"
OTHER = "(other values)"


def breakdown(
    ds: Dataset,
    segment: Any,
    property: str,
    *,
    kind: str | None = None,
    event: str | None = None,
    where: Any = None,
    last: int = 30,
    unit: str = "day",
    versus: str = "rest",
    top: int = 10,
    bins: int = 10,
    as_of: AsOf = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """How a property is distributed within a segment, next to the rest of the users.

    Counted in the backend: users for a user property, events (of ``event``, in the window)
    for an event property. Text and boolean values show the ``top`` most common (the others
    summed up), in one query; numbers fall into ``bins`` bins with quantile edges (one
    query for the edges, one for the counts; ``data.attrs["edges"]``: bin i holds
    ``edges[i - 1] <= value < edges[i]``), fewer only when the property has too few distinct
    values, which the subtitle then says; dates and timestamps by month.

    Parameters
    ----------
    segment
        The segment (model, dict, entry, ``(name, segment)``).
    property
        A user property, or an event property (``kind="event"`` when both exist).
    event, where, last, unit
        For an event property: which events, with what event-property conditions, in which
        window (``as_of - last·unit < time <= as_of``, default 30 days).
    versus
        ``"rest"`` (users not in the segment) or ``"all"`` (every user).

    Returns
    -------
    altair.Chart
        Grouped bars of the share of each value within each group; its data has ``value``,
        ``group``, ``count``, ``share`` and ``order``.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> chart = charts.breakdown(ds, paid, "country", top=3)
    >>> chart.data[["group", "value", "count", "share"]]
                          group           value  count     share
    0  subscription_type = paid              US    965  0.365115
    1  subscription_type = paid              GB    204  0.077185
    2  subscription_type = paid              DE    206  0.077942
    3  subscription_type = paid  (other values)   1268  0.479758
    4                      Rest              US   2499  0.339676
    5                      Rest              GB    604  0.082099
    6                      Rest              DE    592  0.080468
    7                      Rest  (other values)   3662  0.497757
    """
    if versus not in ("rest", "all"):
        raise ChartError(f"versus must be 'rest' or 'all', got {versus!r}")
    if top < 1 or bins < 1:
        raise ChartError("top and bins must be at least 1")
    request = prepare(ds, [segment], as_of=as_of, resolver=resolver)
    when, seg = request.as_of, request.segments[0]
    kind = _kind(ds, property, kind)
    other = REST if versus == "rest" else ALL_USERS
    if other == seg.name:
        raise ChartError(f"the segment's name {seg.name!r} is the comparison group's name")

    if kind == "user":
        table = request.users(columns=[property])
    else:
        check_unit(unit)
        events = request.events(
            after=shift(when, last, unit), events=event, where=where, columns=[property]
        )
        table = events.join(request.users(), "user_id")
    column = table[property]
    dtype = column.type()
    if dtype.is_numeric() and not dtype.is_boolean():
        frame = _numeric(ds, table, column, versus, bins)
    else:
        frame = _categories(ds, table, column, versus, top)
    data = _long(frame, seg.name, other)
    asked = ""
    if "edges" in frame.attrs:
        data.attrs["edges"] = frame.attrs["edges"]
        drawn = len(frame.attrs["edges"]) + 1
        if drawn < bins:
            asked = (
                f"{drawn} bins, not {bins}: {property} has too few distinct values to split "
                "further (bins hold about equal numbers of rows)"
            )
    names = [seg.name, other]
    counted = "users" if kind == "user" else f"{event or 'all'} events"
    heading = title or f"{property} in {seg.name} vs {other.lower()}"
    window = "" if kind == "user" else f"last {last} {unit}s"
    chart = put(
        _draw(data, names, property, counted, colors),
        title=title_params(heading, when, f"share of {counted} per value", window, asked),
    )
    note = request.note(*([property] if kind == "user" else []))
    settings = {
        "property": property,
        "kind": kind,
        "event": event,
        "where": where,
        "window": (last, unit),
        "versus": versus,
        "other": other,
        "dtype": dtype,
        "edges": frame.attrs.get("edges"),
    }
    return finish(chart, data, return_data, note, ChartSource("breakdown", request, settings))


def _kind(ds: Dataset, name: str, kind: str | None) -> str:
    schema = ds.schema
    if kind not in (None, "user", "event"):
        raise ChartError(f"kind must be 'user' or 'event', got {kind!r}")
    if kind in (None, "user") and name in schema.user_properties:
        return "user"
    if kind in (None, "event") and name in schema.event_properties:
        return "event"
    known = sorted(schema.user_properties) + sorted(schema.event_properties)
    raise ChartError(f"unknown property {name!r}; known: {', '.join(known)}")


def _counts(table: Any, versus: str) -> dict[str, Any]:
    outside = ~table.s0 if versus == "rest" else None
    return {"n_in": table.count(where=table.s0), "n_out": table.count(where=outside)}


def _categories(ds: Dataset, table: Any, column: Any, versus: str, top: int) -> pd.DataFrame:
    dtype = column.type()
    if dtype.is_temporal():
        key = column.cast("timestamp").truncate(TRUNCATE["month"]).strftime("%Y-%m")
    else:
        key = column.cast("string")
        if dtype.is_string():
            # Unset means NULL or empty, as in segment rules.
            key = ibis.ifelse(key == "", ibis.null("string"), key)
    keyed = table.mutate(key=key)
    grouped = keyed.group_by("key").aggregate(**_counts(keyed, versus))
    ranked = grouped.order_by([ibis.desc(grouped.n_in + grouped.n_out), grouped.key]).limit(top)
    values = ranked.select(
        kind=ibis.literal("value"), key=ranked.key, n_in=ranked.n_in, n_out=ranked.n_out
    )
    totals = table.aggregate(**_counts(table, versus))
    totals = totals.select(
        kind=ibis.literal("total"), key=ibis.null("string"), n_in=totals.n_in, n_out=totals.n_out
    )
    frame = run(ds, ibis.union(values, totals))
    rows = frame[frame["kind"] == "value"]
    rows = rows.assign(total=rows["n_in"] + rows["n_out"]).sort_values(
        ["total", "key"], ascending=[False, True], na_position="last"
    )
    total = frame[frame["kind"] == "total"].iloc[0]
    out = pd.DataFrame(
        {
            "value": [NOT_SET if pd.isna(k) else str(k) for k in rows["key"]],
            "n_in": rows["n_in"].astype("int64").to_numpy(),
            "n_out": rows["n_out"].astype("int64").to_numpy(),
        }
    )
    if dtype.is_temporal():
        out = out.sort_values("value", ignore_index=True)
    rest_in = int(total["n_in"]) - int(out["n_in"].sum())
    rest_out = int(total["n_out"]) - int(out["n_out"].sum())
    if rest_in or rest_out:
        out.loc[len(out)] = [OTHER, rest_in, rest_out]
    return out


def _numeric(ds: Dataset, table: Any, column: Any, versus: str, bins: int) -> pd.DataFrame:
    # Bins hold about equal numbers of all the rows (quantile edges, rounded to two significant
    # digits): equal-width bins put nearly everyone into the first bin of a skewed property.
    # A finer grid of quantiles than the bins lets a value that many rows share (0 for most
    # users' lifetime value) fill one bin while the other values still share the rest.
    grid = bins * max(1, min(4, 60 // bins))
    quantiles = {f"q{i}": column.quantile(i / grid) for i in range(grid + 1)}
    row = run(ds, table.aggregate(**quantiles)).iloc[0]
    found = [(i / grid, float(row[f"q{i}"])) for i in range(grid + 1) if not pd.isna(row[f"q{i}"])]
    raw = [value for _, value in found]
    edges = _edges(found, bins)
    key = ibis.literal(0)
    for edge in edges:
        key = key + ibis.ifelse(column >= edge, 1, 0)
    keyed = table.mutate(key=ibis.ifelse(column.isnull(), ibis.null("int64"), key.cast("int64")))
    grouped = keyed.group_by("key").aggregate(**_counts(keyed, versus))
    frame = run(ds, grouped).set_index("key")
    lows = [raw[0] if raw else 0.0, *edges]
    highs = [*edges, raw[-1] if raw else 0.0]
    labels = [
        f"{_num(lo)} – {_num(hi)}" if hi > lo else _num(lo)
        for lo, hi in zip(lows, highs, strict=True)
    ]
    counts = frame.reindex([*range(len(labels))], fill_value=0)
    out = pd.DataFrame(
        {
            "value": labels,
            "n_in": counts["n_in"].astype("int64").to_numpy(),
            "n_out": counts["n_out"].astype("int64").to_numpy(),
        }
    )
    unset = frame[frame.index.isna()]
    if len(unset):
        out.loc[len(out)] = [NOT_SET, int(unset["n_in"].iloc[0]), int(unset["n_out"].iloc[0])]
    out.attrs["edges"] = edges  # bin i holds edges[i - 1] <= value < edges[i]
    return out


def _edges(quantiles: list[tuple[float, float]], bins: int) -> list[float]:
    """Up to ``bins - 1`` rounded edges among the ``(p, value)`` quantiles, each chosen so that
    the bins left share the rows left as equally as the quantiles allow."""
    if not quantiles:
        return []
    lowest = _round(quantiles[0][1])
    below: dict[float, float] = {}  # edge -> about the share of rows below it
    for p, value in quantiles[1:-1]:
        edge = _round(value)
        if edge > lowest and edge not in below:
            below[edge] = p
    candidates = sorted(below.items())
    chosen: list[float] = []
    share = 0.0
    while len(chosen) < bins - 1 and candidates:
        left = bins - len(chosen)
        target = share + (1 - share) / left
        # Leave enough candidates after this edge for the edges still to come.
        room = max(1, len(candidates) - (left - 2))
        pick = min(range(room), key=lambda i: abs(candidates[i][1] - target))
        edge, share = candidates[pick]
        chosen.append(edge)
        candidates = candidates[pick + 1 :]
    return chosen


def _round(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, 1 - math.floor(math.log10(abs(x))))


def _num(x: float) -> str:
    if x == int(x) or abs(x) >= 100:
        return f"{x:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:,.{digits}f}"


def _long(frame: pd.DataFrame, name: str, other: str) -> pd.DataFrame:
    total_in, total_out = int(frame["n_in"].sum()), int(frame["n_out"].sum())
    order = list(range(len(frame)))
    inside = pd.DataFrame(
        {
            "value": frame["value"],
            "group": name,
            "count": frame["n_in"],
            "share": [pct(n, total_in) for n in frame["n_in"]],
            "order": order,
        }
    )
    outside = pd.DataFrame(
        {
            "value": frame["value"],
            "group": other,
            "count": frame["n_out"],
            "share": [pct(n, total_out) for n in frame["n_out"]],
            "order": order,
        }
    )
    return pd.concat([inside, outside], ignore_index=True)


@unvalidated
def _draw(
    data: pd.DataFrame,
    names: list[str],
    prop: str,
    counted: str,
    colors: SegmentColors | None,
) -> alt.Chart:
    values = list(dict.fromkeys(data["value"]))
    toggle = legend_toggle("group")
    return (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            y=alt.Y("value:N", sort=values, title=prop, axis=alt.Axis(labelLimit=240)),
            yOffset=alt.YOffset("group:N", sort=names),
            x=alt.X(
                "share:Q", title=f"Share of the group's {counted} (%)", axis=alt.Axis(format=".0%")
            ),
            color=color(names, colors, title="Group", field="group"),
            opacity=toggled(toggle),
            tooltip=[
                alt.Tooltip("value:N", title=prop),
                alt.Tooltip("group:N", title="Group"),
                alt.Tooltip("count:Q", title=counted.capitalize(), format=",d"),
                alt.Tooltip("share:Q", title="Share of the group", format=".1%"),
            ],
        )
        .add_params(toggle)
        .properties(width=520, height=alt.Step(12))
    )
