"""Segment sizes: a catalog's segments (or a list) with count and share of all users, by category."""

from __future__ import annotations

import warnings
from typing import Any

import altair as alt
import pandas as pd

from heapseg.charts import common as c
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
    as_of: Any = None,
    resolver: Resolver | None = None,
    colors: c.SegmentColors | None = None,
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
    >>> heapseg.charts.sizes(ds, heapseg.Catalog("team.json"))  # doctest: +SKIP
    """
    when = c.chart_as_of(ds, as_of)
    res = resolver if resolver is not None else ds.resolver
    if hasattr(segments, "list") and hasattr(segments, "resolve_segment"):
        chosen = [c.one_segment(e, segments) for e in segments.list(category=category)]
    else:
        chosen = c.chart_segments(segments, res)
    if not chosen:
        raise c.ChartError("no segments to show")
    c.check_points(len(chosen), "show one category at a time (category=)")

    counts, problems, total = _count(ds, when, chosen, res)
    data = pd.DataFrame(
        {
            "segment": [s.name for s in chosen],
            "category": [s.category or NO_CATEGORY for s in chosen],
            "users": pd.array([counts.get(s.name) for s in chosen], dtype="Int64"),
            "share": pd.array(
                [c.pct(counts[s.name], total) if s.name in counts else None for s in chosen],
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
    data.attrs.update(total_users=total, as_of=when.isoformat())
    chart = _draw(data, total, when, colors, title)
    return c.finish(chart, data, return_data, c.values_note(ds, chosen))


def _count(
    ds: Dataset, when: Any, chosen: list[c.ChartSegment], res: Resolver | None
) -> tuple[dict[str, int], dict[str, str], int]:
    problems: dict[str, str] = {}
    good: list[tuple[c.ChartSegment, Any]] = []
    for seg in chosen:
        try:
            good.append((seg, c.predicate(ds, seg, when, res)))
        except HeapsegError as exc:
            problems[seg.name] = str(exc)
    users = ds.users
    counts: dict[str, int] = {}
    total = None
    for start in range(0, max(len(good), 1), BATCH):
        batch = good[start : start + BATCH]
        metrics = {f"s{i}": users.count(where=pred) for i, (_, pred) in enumerate(batch)}
        row = c.run(
            ds, users.aggregate(__total__=users.count(where=ds.population(when)), **metrics)
        ).iloc[0]
        total = int(row["__total__"])
        counts.update({seg.name: int(row[f"s{i}"]) for i, (seg, _) in enumerate(batch)})
    return counts, problems, int(total or 0)


def _draw(
    data: pd.DataFrame,
    total: int,
    when: Any,
    colors: c.SegmentColors | None,
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
            color=c.color(names, colors, legend=False),
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
        .encode(x="users:Q", y=y, text="text:N")
    )
    return (
        alt.layer(bars, text, data=data)
        .transform_filter("isValid(datum.users)")
        .properties(width=520, height=alt.Step(26))
        .facet(
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
            )
        )
        .resolve_scale(y="independent")
        .properties(
            title=c.title(title or "Segment sizes", when, f"{total:,} users in all, by category")
        )
    )
