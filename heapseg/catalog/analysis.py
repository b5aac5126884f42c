"""Saved segments against a dataset: counts, members, movement, overview, export (all in ibis)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heapseg.catalog.entries import EntryProblem, SegmentEntry, now
from heapseg.errors import DataError, DefinitionError, HeapsegError, SchemaError, backend_errors

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd
    import pyarrow as pa

    from heapseg.dataset import Dataset
    from heapseg.model import Segment
    from heapseg.resolver import Resolver

#: Segments counted per backend query by ``overview``: one query for a usual catalog, while a
#: catalog of thousands does not turn into one SQL statement the planner chokes on.
OVERVIEW_BATCH = 200
EXPORT_FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class Movement:
    """Who came into and who left a segment between ``start`` and ``end``.

    Attributes
    ----------
    before, after
        Members at ``start`` and at ``end``.
    new
        Users in at ``end`` who had not joined yet at ``start``.
    entered
        Users in at ``end`` who were users but not members at ``start``.
    left
        Members at ``start`` who are not at ``end``.
    new_users, entered_users, left_users
        Their ids, when asked for with ``users=True`` (else empty).

    ``after == before + new + entered - left``.
    """

    segment_id: str
    start: datetime
    end: datetime
    before: int
    after: int
    entered: int
    left: int
    new: int = 0
    entered_users: list = field(default_factory=list)
    left_users: list = field(default_factory=list)
    new_users: list = field(default_factory=list)

    @property
    def stayed(self) -> int:
        return self.before - self.left


def reference(entry: SegmentEntry) -> dict[str, Any]:
    """A definition selecting exactly a saved segment, resolved through the catalog.

    Going through the reference (rather than the entry's own definition) makes a static
    segment give its frozen members, and puts the segment's id at the start of any cycle
    the engine reports.
    """
    return {"combinator": "and", "rules": [{"kind": "segment", "id": entry.id}]}


def as_of_moment(as_of: Any, dataset: Dataset) -> datetime:
    """``as_of`` as an aware datetime (what snapshots record): the dataset's default, else now.

    An aware ``as_of`` keeps its zone, so a snapshot records the offset it was taken in.
    """
    if as_of is None and dataset.default_as_of is None:
        return now()
    if isinstance(as_of, datetime) and as_of.tzinfo is not None:
        return as_of
    return dataset.resolve_as_of(as_of).replace(tzinfo=timezone.utc)


def member_ids(resolver: Resolver, dataset: Dataset, segment: Segment, as_of: datetime) -> pa.Array:
    """The ``user_id``s of a definition at ``as_of``, sorted (what a freeze writes)."""
    expr = (
        dataset.members(segment, as_of, properties=["user_id"], resolver=resolver)
        .select("user_id")
        .order_by("user_id")
    )
    with backend_errors("computing the members failed on the backend"):
        table = expr.to_pyarrow()
    return table.column("user_id").combine_chunks()


def count(resolver: Resolver, dataset: Dataset, entry: SegmentEntry, as_of: Any) -> int:
    return dataset.count(reference(entry), as_of, resolver=resolver)


def members(
    resolver: Resolver,
    dataset: Dataset,
    entry: SegmentEntry,
    as_of: Any,
    properties: Sequence[str] | None,
) -> ir.Table:
    return dataset.members(reference(entry), as_of, properties, resolver=resolver)


def sql(resolver: Resolver, dataset: Dataset, entry: SegmentEntry, as_of: Any) -> str:
    """SQL that runs as it is in the warehouse: frozen members are written out as a list."""
    import ibis

    expr = dataset.members(reference(entry), as_of, resolver=_InlineStatic(resolver))
    return str(ibis.to_sql(expr, dialect=dataset.backend.name))


class _InlineStatic:
    """A resolver that turns frozen members into ``user_id in [...]``.

    The engine joins frozen members as an in-memory table, which is right for running a query
    but leaves SQL that names a temporary table; as a literal list the SQL can be pasted.
    """

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    def resolve_segment(self, segment_id: str) -> Any:
        from heapseg.model import Group, StaticMembers

        target = self.resolver.resolve_segment(segment_id)
        if not isinstance(target, StaticMembers):
            return target
        ids = target.user_ids.to_pylist()
        if not ids:
            return Group.from_dict({"combinator": "and", "not": True, "rules": []})
        rule = {"kind": "user", "field": "user_id", "operator": "in", "value": ids}
        return Group.from_dict({"combinator": "and", "rules": [rule]})


def movement(
    resolver: Resolver,
    dataset: Dataset,
    entry: SegmentEntry,
    start: Any,
    end: Any,
    *,
    users: bool,
) -> Movement:
    """Counts (and ids on request) of who was new, entered and left, as one aggregate query."""
    import ibis

    t0 = as_of_moment(start, dataset)
    t1 = as_of_moment(end, dataset)
    # A static segment's reference is frozen and would never move: follow its definition.
    segment = entry.segment if entry.is_static else reference(entry)
    table = dataset.users

    def flag(expr: Any) -> Any:
        return ibis.coalesce(expr, ibis.literal(False))

    was = flag(dataset.flag(segment, as_of=t0, resolver=resolver))
    now_in = flag(dataset.flag(segment, as_of=t1, resolver=resolver))
    joined = flag(dataset.population(t0))
    changes = {"new": now_in & ~joined, "entered": now_in & ~was & joined, "left": was & ~now_in}
    metrics: dict[str, Any] = {
        "before": table.count(where=was),
        "after": table.count(where=now_in),
        **{name: table.count(where=cond) for name, cond in changes.items()},
    }
    if users:
        for name, cond in changes.items():
            metrics[f"{name}_users"] = table.user_id.collect(where=cond, order_by=table.user_id)
    with backend_errors("the movement query failed on the backend"):
        result = table.aggregate(**metrics).execute()
    row = result.iloc[0]
    return Movement(
        segment_id=entry.id,
        start=t0,
        end=t1,
        before=int(row["before"]),
        after=int(row["after"]),
        entered=int(row["entered"]),
        left=int(row["left"]),
        new=int(row["new"]),
        entered_users=_ids(row["entered_users"]) if users else [],
        left_users=_ids(row["left_users"]) if users else [],
        new_users=_ids(row["new_users"]) if users else [],
    )


def _ids(values: Any) -> list:
    if values is None:
        return []
    return [v.item() if hasattr(v, "item") else v for v in values]


def compile_error(resolver: Resolver, dataset: Dataset, entry: SegmentEntry) -> HeapsegError | None:
    """Why the entry cannot be evaluated on this dataset (compiled only, nothing runs)."""
    try:
        dataset.predicate(reference(entry), resolver=resolver)
    except (DefinitionError, SchemaError, DataError, HeapsegError) as exc:
        return exc
    return None


def compile_problem(
    resolver: Resolver, dataset: Dataset, entry: SegmentEntry, index: int
) -> list[EntryProblem]:
    error = compile_error(resolver, dataset, entry)
    if error is None:
        return []
    return [
        EntryProblem(entry.id, index, getattr(error, "path", "") or "definition", _reason(error))
    ]


def _reason(error: HeapsegError) -> str:
    return getattr(error, "reason", None) or str(error)


def overview(
    resolver: Resolver, dataset: Dataset, entries: Sequence[SegmentEntry], as_of: Any
) -> pd.DataFrame:
    """Count and share for each entry; entries that do not compile get a ``problem`` instead."""
    import pandas as pd

    moment = as_of_moment(as_of, dataset)
    problems: dict[str, str] = {}
    good: list[SegmentEntry] = []
    for entry in entries:
        error = compile_error(resolver, dataset, entry)
        if error is None:
            good.append(entry)
        else:
            problems[entry.id] = str(error)
    counts: dict[str, int] = {}
    total: int | None = None
    for start in range(0, len(good), OVERVIEW_BATCH):
        batch = good[start : start + OVERVIEW_BATCH]
        result = dataset.counts({e.id: reference(e) for e in batch}, moment, resolver=resolver)
        total = result.pop("__total__")
        counts.update(result)
    if total is None:
        total = dataset.total_users(moment)
    rows = [
        {
            "id": e.id,
            "name": e.name,
            "category": e.category,
            "type": e.type,
            "owner": e.owner,
            "count": counts.get(e.id),
            "share": (counts[e.id] / total if total else 0.0) if e.id in counts else None,
            "problem": problems.get(e.id),
        }
        for e in entries
    ]
    frame = pd.DataFrame(
        rows, columns=["id", "name", "category", "type", "owner", "count", "share", "problem"]
    )
    frame["count"] = frame["count"].astype("Int64")
    frame["share"] = frame["share"].astype("Float64")
    frame.attrs.update(as_of=moment.isoformat(), total_users=total)
    return frame


def export(
    resolver: Resolver,
    dataset: Dataset,
    entry: SegmentEntry,
    path: str | os.PathLike[str],
    properties: Sequence[str] | None,
    as_of: Any,
) -> Path:
    """Write members to CSV or Parquet (told by the extension), streamed by the backend."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise DataError(
            f"cannot export to {target.name!r}: the file name must end in .csv or .parquet"
        )
    columns = list(properties) if properties is not None else None
    expr = members(resolver, dataset, entry, as_of, columns).order_by("user_id")
    # Written next to the target, then renamed: a failed export leaves no half file behind.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    try:
        with backend_errors(f"exporting {entry.id!r} to {target} failed"):
            if suffix == ".csv":
                expr.to_csv(tmp)
            else:
                expr.to_parquet(tmp)
            os.replace(tmp, target)
    except Exception:
        _unlink(tmp)
        raise
    return target


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
