"""The segments a chart shows: every way to pass them, turned into named definitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from heapseg.charts.common import ChartError
from heapseg.model import Group, as_segment
from heapseg.resolver import Resolver

__all__ = ["ChartSegment", "chart_segments", "not_in", "one_segment"]


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


def _is_catalog(value: Any) -> bool:
    """Whether ``value`` is a catalog (it lists segments and resolves references to them)."""
    return hasattr(value, "list") and hasattr(value, "resolve_segment")


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


def chart_segments(
    items: Any, resolver: Resolver | None = None, category: str | None = None
) -> list[ChartSegment]:
    """Every segment of a ``by=`` / ``segments=`` argument, with unique display names.

    Accepts one segment, a list of them, ``(name, segment)`` pairs, a dict of name -> segment,
    catalog entries, or a catalog (all its listed segments, or those of ``category``).
    """
    if items is None:
        return []
    if _is_catalog(items):
        found = [one_segment(e, items) for e in items.list(category=category)]
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
