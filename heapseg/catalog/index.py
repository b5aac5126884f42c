"""The catalog as read: every entry checked once, found by id and by name."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heapseg.catalog.entries import (
    EntryProblem,
    SegmentEntry,
    build_entry,
    check_entry,
    entry_id,
)
from heapseg.catalog.history import HistoryLog
from heapseg.catalog.jsontext import collection_paused


@dataclass
class Row:
    """One item of the file's ``segments`` list, checked."""

    index: int
    raw: Any
    id: str | None
    entry: SegmentEntry | None  # None when the entry has any problem
    problems: list[EntryProblem]
    own: list[tuple[str, str]]  # problems of the entry on its own (not duplicates)
    checked: SegmentEntry | None  # the entry if it is fine on its own


@dataclass
class Index:
    """One version of the file (``signature``): its entries checked, by id and by name."""

    signature: Any
    rows: list[Row]
    by_id: dict[str, Row]
    by_name: dict[str, Row]  # usable entries, by name folded (stripped, ignoring case)
    problems: list[EntryProblem]
    # Every row with a string name, usable or not, by name folded: the first row, and the
    # full list only for names more than one row has (a hand-edited file may do that).
    first_named: dict[str, Row] = field(default_factory=dict)
    all_named: dict[str, list[Row]] = field(default_factory=dict)

    def find(self, key: str) -> Row | None:
        """The row of a segment by id, or by name ignoring case."""
        return self.by_id.get(key) or self.by_name.get(key.strip().casefold())

    def namesakes(self, key: str) -> list[Row]:
        """Every row whose name is ``key`` ignoring case, usable or not (a file edited by hand
        may give two segments one name; the index keeps the first)."""
        folded = key.strip().casefold()
        rows = self.all_named.get(folded)
        if rows is not None:
            return list(rows)
        row = self.first_named.get(folded)
        return [row] if row is not None else []

    def ambiguity(self, key: str) -> str | None:
        """Why ``key``, which is no segment's id, names more than one segment; None if it
        names one or none."""
        if not self.all_named or key in self.by_id:  # no name shared; an id means its segment
            return None
        found = self.namesakes(key)
        if len(found) < 2:
            return None
        ids = ", ".join(repr(row.id) if row.id else f"segments[{row.index}]" for row in found)
        return f"{len(found)} segments are named {key!r} ({ids}): name one by its id"

    def nearest(self, key: str) -> list[str]:
        """Up to three names and ids that come close to ``key`` (for "did you mean")."""
        names = [row.entry.name for row in self.rows if row.entry is not None]
        return difflib.get_close_matches(key, names + list(self.by_id), n=3, cutoff=0.6)

    def entries(
        self,
        user: str,
        category: str | None = None,
        type: str | None = None,
        owner: str | None = None,
        text: str | None = None,
        everyone: bool = False,
    ) -> list[SegmentEntry]:
        """The usable entries ``user`` may list, filtered as ``Catalog.list`` describes."""
        needle = text.casefold() if text else None
        out = []
        for row in self.rows:
            entry = row.entry
            if entry is None:
                continue
            if entry.visibility == "personal" and entry.owner != user and not everyone:
                continue
            if category is not None and entry.category.casefold() != category.casefold():
                continue
            if type is not None and entry.type != type:
                continue
            if owner is not None and entry.owner != owner:
                continue
            if needle is not None and not any(
                needle in value.casefold()
                for value in (entry.id, entry.name, entry.description, entry.category)
            ):
                continue
            out.append(entry)
        return out

    def not_found(self, key: str, path: Path, history: HistoryLog) -> str:
        """Why ``key`` names no segment: who deleted it, or which names come close."""
        deleted = history.deletion(key)
        if deleted is not None:
            return f"segment {key!r} was deleted by {deleted.user} at {deleted.at.isoformat()}"
        message = f"no segment with id or name {key!r} in {path}"
        close = self.nearest(key)
        if close:
            message += f"; did you mean {', '.join(repr(c) for c in close)}?"
        return message


def build_index(document: dict, signature: Any, deep: bool, previous: Index | None) -> Index:
    """Check every entry; entries equal to the previous load's are not checked again.

    After someone's save only the entries that changed are validated, so reloading a team
    catalog of thousands of segments costs little more than parsing it. ``deep``: some value
    in the file may be nested too deeply or be a number too long to read, so definitions are
    walked for them.
    """
    with collection_paused():  # many objects built, all kept (see collection_paused)
        return _build_index(document, signature, deep, previous)


def _build_index(document: dict, signature: Any, deep: bool, previous: Index | None) -> Index:
    rows: list[Row] = []
    by_id: dict[str, Row] = {}
    by_name: dict[str, Row] = {}
    first_named: dict[str, Row] = {}
    all_named: dict[str, list[Row]] = {}
    problems: list[EntryProblem] = []
    before = previous.by_id if previous is not None else {}
    checked = []
    for raw in document["segments"]:
        sid = entry_id(raw)
        old = before.get(sid) if sid is not None else None
        if old is not None and old.raw == raw:
            checked.append((raw, sid, old.own, old.checked, None))
        else:
            own, parts = check_entry(raw, check_depth=deep)
            checked.append((raw, sid, own, None, parts))
    # The objects that stay are made here, together: made one by one between the many
    # objects of each definition, they lie scattered in memory, and walking them (every
    # listing does) takes a third longer.
    for index, (raw, sid, own, entry, parts) in enumerate(checked):
        if parts is not None:
            entry = build_entry(raw, *parts)
        found = [EntryProblem(sid, index, path, message) for path, message in own]
        if sid is not None and sid in by_id:
            found.append(
                EntryProblem(
                    sid,
                    index,
                    "id",
                    f"is used by segments[{by_id[sid].index}] too (ids are unique)",
                )
            )
        name = raw.get("name") if isinstance(raw, dict) else None
        folded = name.strip().casefold() if isinstance(name, str) else None
        if folded and folded in by_name:
            found.append(
                EntryProblem(
                    sid,
                    index,
                    "name",
                    f"{name!r} is already the name of segment {by_name[folded].id!r} "
                    "(names are unique, ignoring case)",
                )
            )
        row = Row(index, raw, sid, entry if not found else None, found, own, entry)
        rows.append(row)
        problems.extend(found)
        if sid is not None and sid not in by_id:
            by_id[sid] = row
        if row.entry is not None and folded:
            by_name[folded] = row
        if folded is not None:
            if folded not in first_named:
                first_named[folded] = row
            elif folded in all_named:
                all_named[folded].append(row)
            else:
                all_named[folded] = [first_named[folded], row]
    return Index(signature, rows, by_id, by_name, problems, first_named, all_named)
