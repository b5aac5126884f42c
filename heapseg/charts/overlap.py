"""Overlap: how segments relate, pairwise overlap counts and Jaccard index as a heatmap."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import altair as alt
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ChartError, pct
from heapseg.charts.drawing import layer, put, unvalidated
from heapseg.charts.request import ChartRequest, prepare
from heapseg.charts.segments import ChartSegment
from heapseg.charts.source import ChartSource
from heapseg.charts.titles import finish, title_params
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver

__all__ = ["overlap"]

#: Pairs counted in one query grow with the square of the segments: beyond this, read the
#: heatmap in parts.
MAX_SEGMENTS = 30


def overlap(
    ds: Dataset,
    segments: Any,
    *,
    as_of: AsOf = None,
    resolver: Resolver | None = None,
    title: str | None = None,
    return_data: bool = False,
) -> Any:
    """Pairwise overlap of segments: a heatmap of the Jaccard index with the exact counts.

    One backend query counts every segment and every pair.

    Parameters
    ----------
    segments
        Two or more segments (a list, ``(name, segment)`` pairs, a dict, catalog entries).

    Returns
    -------
    altair.LayerChart
        Cells coloured by Jaccard (``both / either``), labelled with the users in both; its
        data has one row per ordered pair: ``a``, ``b``, ``a_users``, ``b_users``, ``both``,
        ``either``, ``jaccard`` and ``share_of_a`` (the part of ``a`` that is also in ``b``).

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, did, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> buyers = did("Completed Order").last(90, "day")
    >>> chart = charts.overlap(ds, {"Paid": paid, "Buyers": buyers})
    >>> chart.data[["a", "b", "both", "jaccard"]]
            a       b  both   jaccard
    0    Paid    Paid  2643  1.000000
    1    Paid  Buyers   641  0.174564
    2  Buyers    Paid   641  0.174564
    3  Buyers  Buyers  1670  1.000000
    """
    request = prepare(
        ds,
        segments,
        as_of=as_of,
        resolver=resolver,
        fewest=2,
        too_few="overlap needs at least two segments",
    )
    chosen = request.segments
    if len(chosen) > MAX_SEGMENTS:
        raise ChartError(f"overlap shows at most {MAX_SEGMENTS} segments, got {len(chosen)}")

    row = request.run("overlap", (), lambda: _query(request)).iloc[0]
    data = _frame(row, chosen)
    chart = _draw(data, request.names, request.as_of, title)
    return finish(chart, data, return_data, request.note(), ChartSource("overlap", request))


def _query(request: ChartRequest) -> ir.Table:
    """How many users are in each pair of segments (and in each alone): one row."""
    users = request.users()
    n = len(request.segments)
    metrics = {
        f"p{i}_{j}": users.count(where=users[f"s{i}"] & users[f"s{j}"])
        for i in range(n)
        for j in range(i, n)
    }
    return users.aggregate(**metrics)


def _frame(row: pd.Series, chosen: tuple[ChartSegment, ...]) -> pd.DataFrame:
    def both(i: int, j: int) -> int:
        return int(row[f"p{min(i, j)}_{max(i, j)}"])

    records = []
    for i, a in enumerate(chosen):
        for j, b in enumerate(chosen):
            a_users, b_users, shared = both(i, i), both(j, j), both(i, j)
            either = a_users + b_users - shared
            records.append(
                {
                    "a": a.name,
                    "b": b.name,
                    "a_users": a_users,
                    "b_users": b_users,
                    "both": shared,
                    "either": either,
                    "jaccard": pct(shared, either),
                    "share_of_a": pct(shared, a_users),
                }
            )
    return pd.DataFrame(records)


@unvalidated
def _draw(
    data: pd.DataFrame, names: list[str], when: datetime, title: str | None
) -> alt.LayerChart:
    side = max(48, min(90, 560 // len(names)))
    base = alt.Chart().encode(
        x=alt.X("b:N", sort=names, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=200)),
        y=alt.Y("a:N", sort=names, title=None, axis=alt.Axis(labelLimit=240)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color(
            "jaccard:Q",
            title="Jaccard",
            scale=alt.Scale(scheme="blues", domain=[0, 1]),
            legend=alt.Legend(format=".0%", orient="right", gradientLength=160),
        ),
        tooltip=[
            alt.Tooltip("a:N", title="Segment A"),
            alt.Tooltip("b:N", title="Segment B"),
            alt.Tooltip("a_users:Q", title="Users in A", format=",d"),
            alt.Tooltip("b_users:Q", title="Users in B", format=",d"),
            alt.Tooltip("both:Q", title="Users in both", format=",d"),
            alt.Tooltip("either:Q", title="Users in either", format=",d"),
            alt.Tooltip("jaccard:Q", title="Jaccard (both / either)", format=".1%"),
            alt.Tooltip("share_of_a:Q", title="Share of A also in B", format=".1%"),
        ],
    )
    labels = base.mark_text(fontSize=11).encode(
        text=alt.Text("both:Q", format=",d"),
        # The channel object itself: a plain condition would be looked up in the whole schema.
        color=alt.ColorValue(
            **alt.when(alt.datum.jaccard > 0.5)
            .then(alt.value("white"))
            .otherwise(alt.value("#1a1a1a"))
        ),
    )
    return put(
        layer(cells, labels, data=data),
        width=alt.Step(side),
        height=alt.Step(side),
        title=title_params(
            title or "Segment overlap: users in both (colour: Jaccard index)",
            when,
            "hover a cell for sizes and shares",
        ),
    )
