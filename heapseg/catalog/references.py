"""References between saved segments, checked on every save, and the catalog's validation."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from heapseg.catalog.analysis import compile_problem
from heapseg.catalog.entries import EntryProblem, entry_id
from heapseg.catalog.index import Index
from heapseg.errors import SegmentReferenceError
from heapseg.model import Segment, references_problem

if TYPE_CHECKING:
    from heapseg.dataset import Dataset
    from heapseg.resolver import Resolver


def references_of(raw: Any) -> set[str]:
    """Ids a raw entry refers to, found without trusting (or recursing into) its definition."""
    found: set[str] = set()
    if not isinstance(raw, dict):
        return found
    stack = [raw.get("definition")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("kind") == "segment" and isinstance(node.get("id"), str):
                found.add(node["id"])
            stack.extend(node.get("rules", []) if isinstance(node.get("rules"), list) else [])
        elif isinstance(node, list):
            stack.extend(node)
    return found


def referrers(segments: Sequence[Any], segment_id: str, own_index: int) -> list[str]:
    """The entries that refer to ``segment_id`` (by id, else by position), but its own."""
    return [
        entry_id(raw) or f"segments[{i}]"
        for i, raw in enumerate(segments)
        if i != own_index and segment_id in references_of(raw)
    ]


def find_cycle(start: str, refs_of: Callable[[str], Iterable[str]]) -> tuple[str, ...] | None:
    """The chain of ids of a reference cycle through ``start`` (start ... start), if any."""
    stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
    visited: set[str] = set()
    while stack:
        node, chain = stack.pop()
        for ref in sorted(refs_of(node)):
            if ref == start:
                return (*chain, start)
            if ref not in visited:
                visited.add(ref)
                stack.append((ref, (*chain, ref)))
    return None


class BrokenReference(NamedTuple):
    """A definition's references gone wrong: an id not in the catalog, or a cycle."""

    unknown: str | None  # the first id referred to that no entry has
    cycle: tuple[str, ...]  # else the cycle through the segment: its id ... its id


def broken_reference(
    segment_id: str | None,
    refs: Sequence[str],
    known: Collection[str],
    refs_of: Callable[[str], Iterable[str]],
) -> BrokenReference | None:
    """The one rule for references, on save and in :func:`problems`.

    ``refs`` are the ids the segment's definition refers to, ``known`` every id in the
    catalog, ``refs_of`` the ids another segment refers to. A new segment (``segment_id``
    None) cannot be part of a cycle: nothing refers to it yet.
    """
    for ref in refs:
        if ref not in known:
            return BrokenReference(ref, ())
    if segment_id is None:
        return None
    cycle = find_cycle(segment_id, lambda sid: refs if sid == segment_id else refs_of(sid))
    return BrokenReference(None, cycle) if cycle else None


def with_ids(segments: Sequence[Any], segment: Segment) -> Segment:
    """``segment`` with every reference that names a segment (``in_segment("Paid")``) turned
    into that segment's id: saved definitions refer by id, which a rename never changes.

    An id always stays as it is; a name (ignoring case) becomes the id of the one entry that
    has it. A key that is neither stays, for :func:`check_references` to refuse.
    """
    refs = segment.referenced_segments()
    if not refs:  # most definitions: nothing to look up among the catalog's entries
        return segment
    ids = {entry_id(raw) for raw in segments}
    if all(ref in ids for ref in refs):
        return segment
    by_name: dict[str, list[str]] = {}
    for raw in segments:
        name, sid = (raw.get("name"), entry_id(raw)) if isinstance(raw, dict) else (None, None)
        if isinstance(name, str) and sid:
            by_name.setdefault(name.strip().casefold(), []).append(sid)
    renames = {}
    for ref in refs:
        found = by_name.get(ref.strip().casefold(), [])
        if ref not in ids and len(found) > 1:
            raise SegmentReferenceError(
                f"{len(found)} segments are named {ref!r} ({', '.join(map(repr, found))}): "
                "refer to one by its id; nothing was saved",
                chain=(ref,),
            )
        if ref not in ids and found:
            renames[ref] = found[0]
    if not renames:
        return segment
    return Segment.from_dict(_renamed(segment.to_dict(), renames))


def _renamed(node: Any, renames: dict[str, str]) -> Any:
    """A format-1 fragment with the ids of its segment rules replaced through ``renames``."""
    if isinstance(node, list):
        return [_renamed(item, renames) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _renamed(value, renames) for key, value in node.items()}
    if node.get("kind") == "segment" and node.get("id") in renames:
        out["id"] = renames[node["id"]]
    return out


def check_references(segments: Sequence[Any], own_id: str | None, segment: Segment) -> None:
    """Refuse a definition, about to be saved, that refers to an unknown segment or back to itself.

    Raises
    ------
    SegmentReferenceError
        With the chain of ids: ``(own id, unknown id)``, or the cycle.
    """
    refs = segment.referenced_segments()
    if not refs:  # refers to nothing: nothing unknown, no cycle through it
        return
    definitions = {sid: raw for raw in segments if (sid := entry_id(raw))}
    broken = broken_reference(
        own_id,
        refs,
        definitions,
        lambda sid: references_of(definitions.get(sid)),
    )
    if broken is None:
        return
    if broken.unknown is not None:
        names = [raw["name"] for raw in segments if isinstance(raw, dict) and "name" in raw]
        close = difflib.get_close_matches(
            broken.unknown, [n for n in names if isinstance(n, str)], n=3, cutoff=0.6
        )
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise SegmentReferenceError(
            f"the definition refers to segment {broken.unknown!r}, which is not in the catalog"
            + hint,
            chain=(*((own_id,) if own_id else ()), broken.unknown),
        )
    raise SegmentReferenceError(
        f"segment reference cycle: {' -> '.join(broken.cycle)}; nothing was saved",
        chain=broken.cycle,
    )


def problems(index: Index, resolver: Resolver, dataset: Dataset | None) -> list[EntryProblem]:
    """Every problem in the catalog: bad entries, unknown references, reference cycles, size.

    With ``dataset``, each usable definition is also compiled against it (through
    ``resolver``), which reports unknown properties and wrong value types.
    """
    found = list(index.problems)
    usable = {row.id: row.entry for row in index.rows if row.entry is not None}

    def refs_of(sid: str) -> Iterable[str]:
        if sid in usable:
            return usable[sid].segment.referenced_segments()
        return references_of(index.by_id[sid].raw if sid in index.by_id else None)

    def expanded(sid: str) -> Segment | None:  # a static segment adds only its members
        entry = usable.get(sid)
        return None if entry is None or entry.is_static else entry.segment

    for row in index.rows:
        entry = row.entry
        if entry is None:
            continue
        refs = entry.segment.referenced_segments()
        broken = broken_reference(entry.id, refs, index.by_id, refs_of)
        if broken is not None and broken.unknown is not None:
            message = f"refers to unknown segment {broken.unknown!r}"
        elif broken is not None:
            message = f"segment reference cycle: {' -> '.join(broken.cycle)}"
        elif refs:
            # The size limits, references followed (the definition's own were checked when
            # it was read).
            message = references_problem(entry.segment, expanded, segment_id=entry.id)
        else:
            message = ""
        if message:
            found.append(EntryProblem(entry.id, row.index, "definition", message))
        elif dataset is not None:
            found.extend(compile_problem(resolver, dataset, entry, row.index))
    return found
