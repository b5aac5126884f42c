"""One chart request: the moment, the segments and the users a chart is drawn for, resolved once."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from heapseg.as_of import AsOf
from heapseg.charts.common import ALL_USERS, ChartError, check_points
from heapseg.charts.queries import flagged_users, run, scoped_events
from heapseg.charts.segments import ChartSegment, chart_segments, one_segment
from heapseg.dataset import Dataset
from heapseg.resolver import Resolver

__all__ = ["NOTHING_TO_DRAW", "ChartRequest", "prepare"]

NOTHING_TO_DRAW = "nothing to draw: give by= segments or include_all=True"


@dataclass(frozen=True)
class ChartRequest:
    """What a chart is drawn for, as :func:`prepare` resolved it from the chart's arguments.

    ``segments`` are the chart's series (the flags ``s0, s1, ...`` of :meth:`users`), ``scope``
    the only users it counts (its ``filter=``), ``include_all`` whether it adds an "All users"
    series. Every segment is evaluated at ``as_of``, with ``resolver`` for references.
    """

    ds: Dataset
    as_of: datetime
    resolver: Resolver | None
    segments: tuple[ChartSegment, ...]
    scope: ChartSegment | None = None
    include_all: bool = False

    @property
    def all_name(self) -> str:
        """The name of the series of every user in scope: "All users", or the ``filter=``
        segment's name when the chart is filtered (a line of paid users is not "All users")."""
        if self.scope is None:
            return ALL_USERS
        taken = {s.name for s in self.segments}
        return self.scope.name if self.scope.name not in taken else f"{self.scope.name} (all)"

    @property
    def names(self) -> list[str]:
        """The series' names in order: the segments', then :attr:`all_name` when included."""
        return [s.name for s in self.segments] + ([self.all_name] if self.include_all else [])

    def check_points(self, per_series: int, hint: str) -> None:
        """Refuse, before any query, ``per_series`` points per series beyond the chart limit."""
        check_points(per_series * len(self.names), hint)

    def users(self, columns: Sequence[str] = ()) -> ir.Table:
        """The users in scope who had joined at ``as_of``, flagged with every segment (see
        :func:`~heapseg.charts.queries.flagged_users`), with the user property ``columns``."""
        return flagged_users(self.ds, self.segments, self.as_of, self.resolver, self.scope, columns)

    def events(self, **scope: Any) -> ir.Table:
        """The events up to ``as_of`` (see :func:`~heapseg.charts.queries.scoped_events`)."""
        return scoped_events(self.ds, self.as_of, **scope)

    @cached_property
    def key(self) -> Hashable | None:
        """What the chart's query depends on besides its own settings: the moment, the
        definitions (as JSON: frozen dataclasses hash ``True`` like ``1``), the scope and "All
        users". None when a definition refers to saved segments, which the catalog may change."""
        described = [*self.segments, *([self.scope] if self.scope is not None else [])]
        if any(seg.segment.referenced_segments() for seg in described):
            return None
        return (
            self.as_of,
            tuple(seg.segment.to_json(sort_keys=True) for seg in self.segments),
            None if self.scope is None else self.scope.segment.to_json(sort_keys=True),
            self.include_all,
        )

    def run(self, kind: str, settings: Hashable, build: Callable[[], ir.Expr]) -> pd.DataFrame:
        """Run the chart's one query: ``build()``, built once per request and ``settings`` (see
        :meth:`~heapseg.dataset.Dataset.reuse`), so drawing a chart again runs its SQL at once.

        ``settings`` must hold every argument of the chart that ``build`` reads.
        """
        if self.key is None:
            return run(self.ds, build())
        return run(self.ds, self.ds.reuse(("chart", kind, self.key, settings), build))

    def note(self, *properties: str) -> str:
        """The subtitle's word on property values: said when the segments, the scope or the
        user ``properties`` the chart breaks down by read properties that have no history."""
        described = [*self.segments, *([self.scope] if self.scope is not None else [])]
        return self.ds.properties_note([s.segment for s in described], properties)


def prepare(
    ds: Dataset,
    segments: Any = None,
    *,
    filter: Any = None,
    include_all: bool | None = False,
    as_of: AsOf = None,
    resolver: Resolver | None = None,
    category: str | None = None,
    fewest: int = 0,
    too_few: str = "",
) -> ChartRequest:
    """The request every chart starts from; nothing runs on the backend.

    Parameters
    ----------
    segments
        The chart's ``by=`` / ``segments=`` (anything :func:`chart_segments` takes).
    filter
        Only the users in this segment (anything :func:`one_segment` takes).
    include_all
        Add an "All users" series; ``None``: only when no segments are given.
    as_of, resolver
        The moment (default: the dataset's, else now) and how references resolve (default: the
        dataset's resolver).
    category
        With a catalog as ``segments``: only its segments of this category.
    fewest, too_few
        The fewest segments the chart needs, and the error's message when there are fewer.
    """
    when = ds.resolve_as_of(as_of)
    res = resolver if resolver is not None else ds.resolver
    chosen = tuple(chart_segments(segments, res, category))
    if len(chosen) < fewest:
        raise ChartError(too_few)
    scope = one_segment(filter, res) if filter is not None else None
    with_all = not chosen if include_all is None else include_all
    request = ChartRequest(ds, when, res, chosen, scope, with_all)
    if not request.names:
        raise ChartError(NOTHING_TO_DRAW)
    return request
