"""What charts ask the backend: segment flags per user, the events in scope, and running them."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from heapseg.charts.common import ChartError
from heapseg.charts.segments import ChartSegment
from heapseg.compile import compile_where
from heapseg.dataset import Dataset
from heapseg.model import Condition, Group, PropertyRule, as_segment
from heapseg.resolver import Resolver

__all__ = [
    "as_where",
    "event_filter",
    "events_key",
    "flagged_users",
    "numeric_property",
    "predicate",
    "run",
    "scoped_events",
    "timestamp",
]


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


def events_key(events: str | Sequence[str] | None, where: Any) -> Hashable:
    """Event names and an event-property filter as a key (see ChartRequest.run): the filter as
    JSON, since frozen dataclasses hash ``True`` like ``1``."""
    group = as_where(where)
    names = events if isinstance(events, str) or events is None else tuple(events)
    return (names, None if group is None else group.to_json(sort_keys=True))


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
    only its users are kept. Built once per definitions and arguments (see
    :meth:`~heapseg.dataset.Dataset.reuse`), unless a definition refers to saved segments, which
    the catalog may have changed since.
    """
    described = [*segments, *([filter] if filter is not None else [])]
    if any(seg.segment.referenced_segments() for seg in described):
        return _flagged_users(ds, segments, as_of, resolver, filter, columns)
    key = (
        "flagged_users",
        # JSON, not the objects: frozen dataclasses hash True like 1 and 1 like 1.0.
        tuple(seg.segment.to_json(sort_keys=True) for seg in segments),
        None if filter is None else filter.segment.to_json(sort_keys=True),
        as_of,
        tuple(columns),
    )
    build = lambda: _flagged_users(ds, segments, as_of, resolver, filter, columns)  # noqa: E731
    return ds.reuse(key, build)


def _flagged_users(
    ds: Dataset,
    segments: Sequence[ChartSegment],
    as_of: datetime,
    resolver: Resolver | None,
    filter: ChartSegment | None,
    columns: Sequence[str],
) -> ir.Table:
    users = ds.users
    selection: dict[str, Any] = {"user_id": users.user_id}
    selection.update({c: users[c] for c in columns if c != "user_id"})
    twins = {}
    for i, seg in enumerate(segments):
        twin = _complement(seg, segments[:i])
        if twin is None:
            selection[f"s{i}"] = predicate(ds, seg, as_of, resolver)
        else:
            twins[f"s{i}"] = f"s{twin}"
    keep = ds.population(as_of)
    if filter is not None:
        keep = predicate(ds, filter, as_of, resolver)  # joining included
    table = users.select(**selection, _keep=keep)
    table = table.filter(table._keep).drop("_keep")
    if twins:
        # In / not in a segment: the second flag negates the first's column (the rows are the
        # joined users, among whom that is the complement) instead of a second pass over the
        # events.
        names = ["user_id", *(c for c in columns if c != "user_id")]
        flags = {f"s{i}": table[twins.get(f"s{i}", f"s{i}")] for i in range(len(segments))}
        flags = {k: ~v if k in twins else v for k, v in flags.items()}
        table = table.select(*names, **flags)
    return ds.values_at(table, as_of)


def _complement(seg: ChartSegment, earlier: Sequence[ChartSegment]) -> int | None:
    """The index of an earlier segment whose complement ``seg`` is (same resolver), if any."""
    mine = seg.segment
    for i, other in enumerate(earlier):
        if other.resolver is not seg.resolver:
            continue
        theirs = other.segment
        if mine in (~theirs, Group("and", (theirs,), negate=True)) or theirs in (
            ~mine,
            Group("and", (mine,), negate=True),
        ):
            return i
    return None


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
    rows a chart looks at). Built once per arguments (see :meth:`~heapseg.dataset.Dataset.reuse`).
    """
    group = as_where(where)
    names = events if isinstance(events, str) or events is None else tuple(events)
    key = (
        "scoped_events",
        (as_of, since, after, before),
        names,
        None if group is None else group.to_json(sort_keys=True),
        tuple(columns),
    )
    build = lambda: _scoped_events(ds, as_of, since, after, before, events, group, columns)  # noqa: E731
    return ds.reuse(key, build)


def _scoped_events(
    ds: Dataset,
    as_of: datetime,
    since: datetime | None,
    after: datetime | None,
    before: datetime | None,
    events: str | Sequence[str] | None,
    group: Group | None,
    columns: Sequence[str],
) -> ir.Table:
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
