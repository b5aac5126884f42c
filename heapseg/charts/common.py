"""What every chart shares: named segments, stable colours, titles, periods and backend queries."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from html import escape
from typing import Any

import altair as alt
import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf, resolve_as_of
from heapseg.compile import compile_where
from heapseg.dataset import Dataset
from heapseg.errors import HeapsegError
from heapseg.model import Condition, Group, PropertyRule, as_segment
from heapseg.resolver import Resolver

__all__ = [
    "ALL_USERS",
    "MAX_ROWS",
    "REST",
    "ChartError",
    "ChartSegment",
    "SegmentColors",
    "colors",
    "not_in",
]

#: The most rows a chart sends to Vega-Lite: Altair's own limit, and far more points than a
#: reader can tell apart. A finer interval or a longer window is refused before any query runs.
MAX_ROWS = 5000
ALL_USERS = "All users"
REST = "Rest"

# Tableau's and Vega's categorical colours without their greys: greys mean "everybody else".
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#b279a2",
    "#eeca3b",
    "#72b7b2",
    "#9d755d",
    "#ff9da6",
    "#1f3b73",
    "#a0522d",
    "#2ca02c",
    "#d62728",
    "#8c564b",
    "#17becf",
    "#bcbd22",
)
NEUTRAL = {ALL_USERS: "#595959", REST: "#b3b3b3"}

UNITS = ("hour", "day", "week", "month")
TRUNCATE = {"hour": "h", "day": "D", "week": "W", "month": "M"}
# Vega-Lite time units that format periods in UTC, whatever the reader's browser zone.
TIME_UNITS = {
    "hour": "utcyearmonthdatehours",
    "day": "utcyearmonthdate",
    "week": "utcyearmonthdate",
    "month": "utcyearmonth",
}
DEFAULT_PERIODS = {"hour": 48, "day": 30, "week": 12, "month": 12}


class ChartError(HeapsegError):
    """A chart cannot be drawn as asked (bad argument, too many points)."""


# ---------------------------------------------------------------------------- colours


class SegmentColors:
    """One colour per segment name, kept for the whole notebook session.

    The first chart that shows a segment gives it the next free colour of the palette; every
    later chart shows it in the same colour. ``"All users"`` and ``"Rest"`` are grey.

    Examples
    --------
    >>> palette = SegmentColors()
    >>> palette["Paid"] == palette["Paid"]
    True
    >>> palette.set("Churn risk", "#d62728")
    >>> palette["Churn risk"]
    '#d62728'
    """

    def __init__(
        self, palette: Sequence[str] = PALETTE, neutral: Mapping[str, str] | None = None
    ) -> None:
        if not palette:
            raise ChartError("a palette needs at least one colour")
        self.palette = tuple(palette)
        self.neutral = dict(NEUTRAL if neutral is None else neutral)
        self._assigned: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name in self.neutral:
            return self.neutral[name]
        if name not in self._assigned:
            used = set(self._assigned.values())
            free = [c for c in self.palette if c not in used]
            # Past the palette's end colours repeat, in the same order as the first time.
            self._assigned[name] = (
                free[0] if free else self.palette[len(self._assigned) % len(self.palette)]
            )
        return self._assigned[name]

    def set(self, name: str, color: str) -> None:
        """Give ``name`` a colour of your choice (any CSS colour)."""
        self._assigned[name] = color

    def reset(self) -> None:
        """Forget every assignment (the next charts start the palette again)."""
        self._assigned.clear()

    def assigned(self) -> dict[str, str]:
        """The colours given so far, by segment name."""
        return dict(self._assigned)

    def scale(self, names: Iterable[str]) -> alt.Scale:
        """An Altair colour scale that maps each name to its colour."""
        names = list(names)
        return alt.Scale(domain=names, range=[self[n] for n in names])

    def _repr_html_(self) -> str:
        swatches = "".join(
            f"<span style='display:inline-block;margin-right:1em'>"
            f"<span style='display:inline-block;width:1em;height:1em;background:{c};"
            f"vertical-align:middle'></span> {escape(n)}</span>"
            for n, c in {**self._assigned, **self.neutral}.items()
        )
        return f"<div class='heapseg-colors'>{swatches}</div>"

    def __repr__(self) -> str:
        return f"SegmentColors({self._assigned!r})"


#: The session's registry: every chart uses it unless given ``colors=``.
colors = SegmentColors()


# ---------------------------------------------------------------------------- segments


@dataclass(frozen=True)
class ChartSegment:
    """A segment as a chart shows it: a display name, its definition and how to resolve it."""

    name: str
    segment: Group
    resolver: Resolver | None = None
    category: str | None = None


@dataclass(frozen=True)
class _Outside:
    item: Any


def not_in(segment: Any) -> Any:
    """The users *not* in ``segment``, for ``filter=``; works for dicts and catalog entries too.

    Model objects can also be negated with ``~segment``.
    """
    return _Outside(segment)


_GROUP_KEYS = {"combinator", "rules", "not"}


def _is_definition(value: Mapping) -> bool:
    return bool(value) and set(value) <= _GROUP_KEYS


def _is_entry(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("id", "name", "category", "segment", "definition"))


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _entry_segment(entry: Any, resolver: Resolver | None) -> tuple[Group, Any]:
    if not getattr(entry, "is_static", False):
        return entry.segment, resolver
    if resolver is None or not hasattr(resolver, "resolve_segment"):
        raise ChartError(
            f"the static segment {entry.name!r} is defined by its frozen members, which only its "
            "catalog can give: pass resolver=catalog (or connect(..., resolver=catalog))"
        )
    reference = {"combinator": "and", "rules": [{"kind": "segment", "id": entry.id}]}
    return as_segment(reference), resolver


def one_segment(
    item: Any, resolver: Resolver | None = None, name: str | None = None
) -> ChartSegment:
    """Turn what a user passes (model, dict, entry, catalog name, ``(name, seg)``) into one."""
    if isinstance(item, ChartSegment):
        return replace(item, name=name) if name else item
    if isinstance(item, _Outside):
        inner = one_segment(item.item, resolver)
        return ChartSegment(
            name or f"not in {inner.name}",
            Group("and", (inner.segment,), negate=True),
            inner.resolver,
            inner.category,
        )
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return one_segment(item[1], resolver, name or item[0])
    if _is_entry(item):
        segment, used = _entry_segment(item, resolver)
        return ChartSegment(name or item.name, segment, used, item.category or None)
    if hasattr(item, "definition") and hasattr(item, "dataset"):  # a heapseg SegmentView
        item = item.definition
    if isinstance(item, str) and not item.lstrip().startswith("{"):
        if resolver is None or not hasattr(resolver, "get"):
            raise ChartError(
                f"{item!r} is not a segment definition; to name a saved segment, pass "
                "resolver=catalog (or connect(..., resolver=catalog))"
            )
        return one_segment(resolver.get(item), resolver, name)
    segment = as_segment(item)
    return ChartSegment(name or _short(segment.describe()), segment, resolver)


def chart_segments(items: Any, resolver: Resolver | None = None) -> list[ChartSegment]:
    """Every segment of a ``by=`` / ``segments=`` argument, with unique display names.

    Accepts one segment, a list of them, ``(name, segment)`` pairs, a dict of name -> segment,
    catalog entries, or a catalog (all its listed segments).
    """
    if items is None:
        return []
    if hasattr(items, "list") and hasattr(items, "resolve_segment"):  # a Catalog
        found = [one_segment(e, items) for e in items.list()]
    elif isinstance(items, Mapping) and not _is_definition(items):
        found = [one_segment(seg, resolver, str(name)) for name, seg in items.items()]
    elif isinstance(items, list) or (
        isinstance(items, tuple) and not (len(items) == 2 and isinstance(items[0], str))
    ):
        found = [one_segment(seg, resolver) for seg in items]
    else:
        found = [one_segment(items, resolver)]
    seen: dict[str, int] = {}
    unique = []
    for seg in found:
        seen[seg.name] = seen.get(seg.name, 0) + 1
        count = seen[seg.name]
        unique.append(seg if count == 1 else replace(seg, name=f"{seg.name} ({count})"))
    return unique


def as_where(where: Any) -> Group | None:
    """An event-property filter: a format-1 group of ``event_property`` rules, or a rule."""
    if where is None:
        return None
    if isinstance(where, Group):
        return where
    if isinstance(where, PropertyRule):
        return Group("and", (where,))
    if isinstance(where, Condition):
        return as_segment(where)
    if isinstance(where, Mapping) and "kind" in where:
        where = {"combinator": "and", "rules": [where]}
    return Group.from_dict(where, "where", event_properties=True)


# ---------------------------------------------------------------------------- time


def check_unit(unit: str, allowed: Sequence[str] = UNITS) -> str:
    """``unit`` when it is one of ``allowed``, else a ChartError naming the valid ones."""
    if unit not in allowed:
        raise ChartError(f"unknown interval {unit!r}; valid: {', '.join(allowed)}")
    return unit


def truncate(moment: datetime, unit: str) -> datetime:
    """The start of the UTC period holding ``moment`` (weeks start on Monday, as ISO weeks)."""
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def step(moment: datetime, n: int, unit: str) -> datetime:
    """``moment + n·unit`` (calendar months, the day clamped to the month's end)."""
    if unit == "hour":
        return moment + timedelta(hours=n)
    if unit == "day":
        return moment + timedelta(days=n)
    if unit == "week":
        return moment + timedelta(weeks=n)
    index = moment.year * 12 + moment.month - 1 + n
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def period_starts(
    as_of: datetime, unit: str, last: int | None, start: Any = None
) -> list[datetime]:
    """The periods a time chart shows, oldest first, ending with the one ``as_of`` falls in.

    When ``as_of`` is exactly the start of a period, that period (which holds nothing yet) is
    left out, so a chart at midnight ends with the whole last day.
    """
    end = truncate(as_of, unit)
    if end == as_of:
        end = step(end, -1, unit)
    if start is not None:
        first = truncate(resolve_as_of(start), unit)
        if first > end:
            raise ChartError(f"start {stamp(first)} is not before as_of {stamp(as_of)}")
    else:
        n = DEFAULT_PERIODS[unit] if last is None else last
        if n < 1:
            raise ChartError(f"last must be at least 1, got {n}")
        first = step(end, -(n - 1), unit)
    starts = [first]
    while starts[-1] < end:
        starts.append(step(first, len(starts), unit))
    return starts


def utc(values: Any) -> Any:
    """Naive UTC datetimes (a Series or a scalar) made zone-aware, so that Vega never reads
    them in the browser's local zone."""
    if isinstance(values, pd.Series):
        return pd.to_datetime(values).dt.tz_localize("UTC")
    return pd.Timestamp(values).tz_localize("UTC")


def stamp(moment: datetime) -> str:
    """``2026-11-01`` at midnight, else ``2026-11-01 14:30`` (UTC)."""
    if moment == truncate(moment, "day"):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------- backend


def timestamp(ds: Dataset, moment: datetime) -> ir.Value:
    """A literal comparable with ``events.time`` (zone-aware or not)."""
    return ds.context(moment).timestamp(moment)


def predicate(
    ds: Dataset, seg: ChartSegment, as_of: datetime, resolver: Resolver | None
) -> ir.BooleanValue:
    """The segment as a non-NULL boolean over ``ds.users`` (NULL means "not in it")."""
    expr = ds.predicate(seg.segment, as_of, seg.resolver if seg.resolver is not None else resolver)
    return ibis.coalesce(expr, ibis.literal(False))


def flagged_users(
    ds: Dataset,
    segments: Sequence[ChartSegment],
    as_of: datetime,
    resolver: Resolver | None = None,
    filter: ChartSegment | None = None,
    columns: Sequence[str] = (),
) -> ir.Table:
    """``user_id``, one boolean column ``s0, s1, ...`` per segment and ``columns``, in one pass.

    Only the users who had joined at ``as_of`` (all users, the rest, every share), with the
    property ``columns`` at ``as_of``. Every segment is evaluated at ``as_of``. With ``filter``,
    only its users are kept.
    """
    users = ds.users
    selection: dict[str, Any] = {"user_id": users.user_id}
    selection.update({c: users[c] for c in columns if c != "user_id"})
    selection.update({f"s{i}": predicate(ds, s, as_of, resolver) for i, s in enumerate(segments)})
    keep = ds.population(as_of)
    if filter is not None:
        keep = predicate(ds, filter, as_of, resolver)  # joining included
    table = users.select(**selection, _keep=keep)
    table = table.filter(table._keep).drop("_keep")
    return ds.values_at(table, as_of)


def scoped_events(
    ds: Dataset,
    as_of: datetime,
    *,
    since: datetime | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    events: str | Sequence[str] | None = None,
    where: Any = None,
    columns: Sequence[str] = (),
) -> ir.Table:
    """``user_id``, ``time`` and ``columns`` of the events up to ``as_of``: of some names, at or
    after ``since`` / strictly after ``after``, before ``before``, matching an event-property
    ``where``, with merged identities applied (after the filters, so the merge joins only the
    rows a chart looks at)."""
    table = ds.raw_events
    conditions = [table.time <= timestamp(ds, as_of)]
    if since is not None:
        conditions.append(table.time >= timestamp(ds, since))
    if after is not None:
        conditions.append(table.time > timestamp(ds, after))
    if before is not None:
        conditions.append(table.time < timestamp(ds, before))
    if isinstance(events, str):
        conditions.append(table.event == events)
    elif events is not None:
        conditions.append(table.event.isin(list(events)))
    group = as_where(where)
    if group is not None and (group.rules or group.negate):
        conditions.append(event_filter(ds, table, group, as_of))
    merged = ds.context(as_of).attribute(table.filter(*conditions), *columns)
    # A view, so that later joins start a new join rather than extend the merge's.
    return merged.view()


def event_filter(ds: Dataset, table: ir.Table, where: Group, as_of: datetime) -> ir.BooleanValue:
    """An event-property group as a boolean over ``table`` (the compiler's own reading)."""
    return compile_where(table, where, ds.context(as_of))


def run(ds: Dataset, expr: ir.Expr) -> pd.DataFrame:
    """Run an aggregate on the backend; only its (small) result comes back."""
    return ds.execute(expr)


def check_points(n: int, hint: str) -> None:
    """Refuse, before anything runs, a chart that would send more than ``MAX_ROWS`` rows."""
    if n > MAX_ROWS:
        raise ChartError(f"this chart would have {n:,} points (at most {MAX_ROWS:,}): {hint}")


# ---------------------------------------------------------------------------- chart parts


def color(
    names: Sequence[str],
    palette: SegmentColors | None,
    title: str = "Segment",
    legend: bool = True,
    field: str = "segment",
) -> alt.Color:
    """Colour by ``field`` with each name's session colour; the legend lists names in order."""
    scale = (palette or colors).scale(names)
    return alt.Color(
        f"{field}:N",
        scale=scale,
        sort=list(names),
        title=title,
        legend=alt.Legend(
            orient="bottom", columns=min(len(names), 3), labelLimit=280, symbolType="square"
        )
        if legend
        else None,
    )


def legend_toggle(field: str = "segment") -> alt.Parameter:
    """Clicking a legend entry highlights that series; shift-click adds others."""
    return alt.selection_point(fields=[field], bind="legend", name="legend_toggle")


def toggled(selection: alt.Parameter, dim: float = 0.12) -> Any:
    """Full opacity for the selected series (all when none is selected), faint for the others."""
    return alt.when(selection).then(alt.value(1.0)).otherwise(alt.value(dim))


def title(text: str, as_of: datetime, *details: str) -> alt.TitleParams:
    """A title saying what is shown; the subtitle gives the as_of (UTC) and the details
    (empty ones are left out)."""
    subtitle = " · ".join([f"as of {stamp(as_of)} UTC", *[d for d in details if d]])
    return alt.TitleParams(text=text, subtitle=subtitle, anchor="start", fontSize=15)


def finish(chart: Any, data: pd.DataFrame, return_data: bool, note: str = "") -> Any:
    """The chart, or ``(chart, data)`` when asked for; ``chart.data`` is ``data`` either way.

    ``note`` (e.g. :func:`values_note`) ends the subtitle and is kept in ``data.attrs["note"]``.
    """
    check_points(len(data), "narrow the window or use a coarser interval")
    if note:
        heading = chart.title
        if isinstance(heading, alt.TitleParams):
            heading.subtitle = " · ".join(p for p in (heading.subtitle, note) if p)
        data.attrs["note"] = note
    chart = chart.configure_axis(labelFontSize=11, titleFontSize=12).configure_view(stroke=None)
    return (chart, data) if return_data else chart


def scope_note(filter: ChartSegment | None) -> str:
    """The subtitle's note on a ``filter=``."""
    return f"only users in: {filter.name}" if filter is not None else ""


def pct(part: float, whole: float) -> float:
    """``part / whole``, 0 when ``whole`` is 0."""
    return float(part) / float(whole) if whole else 0.0


def chart_as_of(ds: Dataset, as_of: AsOf) -> datetime:
    """The moment a chart is drawn for: ``as_of``, else the dataset's default, else now (UTC)."""
    return ds.resolve_as_of(as_of)


def values_note(ds: Dataset, segments: Sequence[ChartSegment], *properties: str) -> str:
    """The subtitle's word on property values: said when the chart's segments (or the user
    ``properties`` it breaks down by) read properties that have no history."""
    return ds.properties_note([s.segment for s in segments], properties)


def naive_utc(values: pd.Series) -> pd.Series:
    """Backend timestamps as naive UTC (zone-aware columns come back zone-aware)."""
    values = pd.to_datetime(values)
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.astype("datetime64[us]")


def numeric_property(ds: Dataset, name: str | None, measure: str) -> str:
    """Check that ``name`` is a numeric event property (for sums and averages)."""
    if name is None:
        raise ChartError(f"measure={measure!r} needs property= (a numeric event property)")
    props = ds.schema.event_properties
    if name not in props:
        raise ChartError(
            f"unknown event property {name!r}; known: {', '.join(sorted(props)) or 'none'}"
        )
    if not props[name].is_numeric():
        raise ChartError(f"measure={measure!r} needs a numeric property; {name!r} is {props[name]}")
    return name
