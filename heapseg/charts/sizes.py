"""Segment sizes: a catalog's segments (or a list) with count and share of all users, by category."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

import altair as alt
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import pct
from heapseg.charts.drawing import layer, put, unvalidated
from heapseg.charts.palette import SegmentColors, color
from heapseg.charts.queries import predicate, run
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.segments import ChartSegment
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, title_params
from heapseg.dataset import Dataset
from heapseg.errors import HeapsegError
from heapseg.resolver import Resolver

__all__ = ["sizes"]

#: Segments counted per backend query: one query for a usual catalog, while thousands of
#: segments do not become one statement the planner chokes on.
BATCH = 200
NO_CATEGORY = "(no category)"


def sizes(
    ds: Dataset,
    segments: Any,
    *,
    category: str | None = None,
    as_of: AsOf = None,
    resolver: Resolver | None = None,
    colors: SegmentColors | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """How many users each segment holds, and their share of all users, grouped by category.

    Parameters
    ----------
    segments
        A :class:`heapseg.catalog.Catalog` (its listed segments), or segments as elsewhere
        (a list, ``(name, segment)`` pairs, a dict, catalog entries).
    category
        With a catalog: only this category.

    Returns
    -------
    altair.FacetChart
        One row of bars per category; its data has ``segment``, ``category``, ``users``,
        ``share`` and ``problem`` (why a segment could not be counted; it is left out).

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> catalog = heapseg.Catalog("team-segments.json")
    >>> _ = catalog.save(user.subscription_type == "paid", "Paid", category="Plans")
    >>> _ = catalog.save(user.subscription_type == "trial", "Trial", category="Plans")
    >>> chart = charts.sizes(ds, catalog)
    >>> chart.data[["segment", "category", "users", "share"]]
      segment category  users   share
    0    Paid    Plans   2643  0.2643
    1   Trial    Plans    130   0.013
    """
    request = prepare(
        ds,
        segments,
        as_of=as_of,
        resolver=resolver,
        category=category,
        fewest=1,
        too_few="no segments to show",
    )
    request.check_points(1, "show one category at a time (category=)")
    chosen = request.segments

    counts, problems, total = _count(request)
    data = pd.DataFrame(
        {
            "segment": [s.name for s in chosen],
            "category": [s.category or NO_CATEGORY for s in chosen],
            "users": pd.array([counts.get(s.name) for s in chosen], dtype="Int64"),
            "share": pd.array(
                [pct(counts[s.name], total) if s.name in counts else None for s in chosen],
                dtype="Float64",
            ),
            "problem": [problems.get(s.name) for s in chosen],
        }
    )
    if problems:
        warnings.warn(
            "left out (cannot be counted): " + "; ".join(f"{n}: {p}" for n, p in problems.items()),
            stacklevel=2,
        )
    data.attrs.update(total_users=total, as_of=request.as_of.isoformat())
    chart = _draw(data, total, request.as_of, colors, title)
    return finish(chart, data, return_data, request.note(), ChartSource("sizes", request))


def _count(request: ChartRequest) -> tuple[dict[str, int], dict[str, str], int]:
    ds, when = request.ds, request.as_of
    problems: dict[str, str] = {}
    good: list[tuple[ChartSegment, Any]] = []
    for seg in request.segments:
        try:
            good.append((seg, predicate(ds, seg, when, request.resolver)))
        except HeapsegError as exc:
            problems[seg.name] = str(exc)
    users = ds.users
    counts: dict[str, int] = {}
    total = None
    for start in range(0, max(len(good), 1), BATCH):
        batch = good[start : start + BATCH]
        metrics = {f"s{i}": users.count(where=pred) for i, (_, pred) in enumerate(batch)}
        row = run(
            ds, users.aggregate(__total__=users.count(where=ds.population(when)), **metrics)
        ).iloc[0]
        total = int(row["__total__"])
        counts.update({seg.name: int(row[f"s{i}"]) for i, (seg, _) in enumerate(batch)})
    return counts, problems, int(total or 0)


@unvalidated
def _draw(
    data: pd.DataFrame,
    total: int,
    when: datetime,
    colors: SegmentColors | None,
    title: str | None,
) -> alt.FacetChart:
    shown = data[data["users"].notna()]
    names = list(shown["segment"])
    order = list(shown.sort_values(["users", "segment"], ascending=[False, True])["segment"])
    y = alt.Y("segment:N", sort=order, title=None, axis=alt.Axis(labelLimit=320))
    bars = (
        alt.Chart()
        .mark_bar(cornerRadiusEnd=2, height={"band": 0.7})
        .encode(
            x=alt.X("users:Q", title="Users in the segment", axis=alt.Axis(format=",d")),
            y=y,
            color=color(names, colors, legend=False),
            tooltip=[
                alt.Tooltip("segment:N", title="Segment"),
                alt.Tooltip("category:N", title="Category"),
                alt.Tooltip("users:Q", title="Users", format=",d"),
                alt.Tooltip("share:Q", title="Share of all users", format=".1%"),
            ],
        )
    )
    text = (
        alt.Chart()
        .mark_text(align="left", dx=4, fontSize=11)
        .transform_calculate(
            text="format(datum.users, ',') + '  (' + format(datum.share, '.1%') + ')'"
        )
        .encode(x=alt.X("users:Q"), y=y, text=alt.Text("text:N"))
    )
    # Set in place where Altair's methods would copy the whole chart each time.
    # The data goes to the facet: moving it there from the layer would copy the layer.
    layered = put(
        layer(bars, text),
        transform=[alt.FilterTransform(filter="isValid(datum.users)")],
        width=520,
        height=alt.Step(26),
    )
    faceted = layered.facet(
        data=data,
        row=alt.Row(
            "category:N",
            title=None,
            header=alt.Header(
                labelAngle=0,
                labelAlign="left",
                labelAnchor="start",
                labelOrient="top",
                labelFontSize=13,
                labelFontWeight="bold",
            ),
        ),
    )
    return put(
        faceted,
        resolve=alt.Resolve(scale=alt.ScaleResolveMap(y="independent")),
        title=title_params(title or "Segment sizes", when, f"{total:,} users in all, by category"),
    )
