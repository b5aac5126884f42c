"""One change of the catalog under its lock: the entries it edits and the history it leaves."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from heapseg.catalog.entries import (
    SegmentEntry,
    _Invalid,
    check_name,
    entry_id,
    load_definition,
    new_id,
    now,
    read_entry,
    timestamp,
)
from heapseg.catalog.history import HistoryLog, HistoryRecord
from heapseg.catalog.jsontext import lone_surrogate
from heapseg.errors import CatalogError, DefinitionError, EditConflictError, NotFoundError
from heapseg.model import Condition, Segment, as_segment

#: What an edit does to a copy of the entry (changed in place); it returns the details of its
#: history record, if any.
Edit = Callable[["Transaction", dict], "dict[str, Any] | None"]


class Transaction:
    """The document read under the lock, and the history records of the changes made to it."""

    def __init__(self, document: dict, user: str, history: HistoryLog, path: Path) -> None:
        self.document = document
        self.user = user
        self.history = history
        self.path = path
        self.records: list[HistoryRecord] = []
        self.when = now()

    @property
    def segments(self) -> list:
        return self.document["segments"]

    def index_of(self, segment_id: str) -> int | None:
        for i, raw in enumerate(self.segments):
            if entry_id(raw) == segment_id:
                return i
        return None

    def name_taken(self, name: str, except_id: str | None = None) -> str | None:
        folded = name.casefold()
        for raw in self.segments:
            if not isinstance(raw, dict) or entry_id(raw) == except_id:
                continue
            other = raw.get("name")
            if isinstance(other, str) and other.strip().casefold() == folded:
                return entry_id(raw) or "?"
        return None

    def check_free(self, name: str, own_id: str | None) -> None:
        taken = self.name_taken(name, except_id=own_id)
        if taken:
            raise CatalogError(
                f"the name {name!r} is already used by segment {taken!r} "
                "(names are unique, ignoring case)"
            )

    def fresh_id(self, name: str) -> str:
        """A new id, never used before: not in the catalog, nor in its history."""
        while True:
            candidate = new_id(name)
            if self.index_of(candidate) is None and not self.history.mentions(candidate):
                return candidate

    def create(self, fields: dict[str, str], segment: Segment, snapshot: dict | None) -> dict:
        """Add a new segment (``fields``: name, description, category, visibility), frozen
        when ``snapshot`` is given; the new entry."""
        self.check_free(fields["name"], None)
        stamp = timestamp(self.when)
        raw = {
            "id": self.fresh_id(fields["name"]),
            "name": fields["name"],
            "description": fields["description"],
            "category": fields["category"],
            "type": "static" if snapshot is not None else "dynamic",
            "visibility": fields["visibility"],
            "owner": self.user,
            "created_at": stamp,
            "updated_at": stamp,
            "revision": 1,
            "definition": segment.to_dict(),
        }
        if snapshot is not None:
            raw["snapshot"] = snapshot
        self.segments.append(raw)
        self.record("create", None, raw)
        return raw

    def duplicate(self, segment_id: str, wanted: str | None) -> dict:
        """Add a copy of a segment, owned by the writer, named ``wanted`` or else
        "Copy of <name>" (numbered when taken); the new entry."""
        original = self.segments[self.locate(segment_id, None)]
        base = wanted or f"Copy of {original['name']}"
        new_name = base
        number = 2
        while wanted is None and self.name_taken(new_name):
            new_name = f"{base} ({number})"
            number += 1
        if wanted is not None and self.name_taken(new_name):
            raise CatalogError(f"the name {new_name!r} is already used")
        stamp = timestamp(self.when)
        raw = copy.deepcopy(original)
        raw.update(
            id=self.fresh_id(new_name),
            name=new_name,
            owner=self.user,
            created_at=stamp,
            updated_at=stamp,
            revision=1,
        )
        self.segments.append(raw)
        self.record("duplicate", None, raw, copied_from=segment_id)
        return raw

    def record(self, action: str, before: dict | None, after: dict | None, **details: Any) -> None:
        source = after if after is not None else before
        assert source is not None
        if after is not None:
            _refuse_invalid_text(before, after)
        revision = source["revision"] if after is not None else source["revision"] + 1
        self.records.append(
            HistoryRecord(
                segment_id=source["id"],
                revision=revision,
                action=action,
                user=self.user,
                at=self.when,
                before=copy.deepcopy(before),
                after=copy.deepcopy(after),
                details=details,
            )
        )

    def locate(self, segment_id: str, expected: int | None) -> int:
        """Index of the entry, after the check that it is still at revision ``expected``.

        Raises
        ------
        NotFoundError
            The segment is gone (the message says who deleted it).
        EditConflictError
            Someone saved another revision since ``expected``.
        """
        index = self.index_of(segment_id)
        if index is None:
            deleted = self.history.deletion(segment_id)
            if deleted is not None:
                raise NotFoundError(
                    f"segment {segment_id!r} was deleted by {deleted.user} at "
                    f"{deleted.at.isoformat()}; nothing was saved"
                )
            raise NotFoundError(f"no segment with id {segment_id!r} in {self.path}")
        raw = self.segments[index]
        current = raw.get("revision")
        if type(current) is not int or current < 1:
            raise CatalogError(
                f"segment {segment_id!r} has no valid revision ({current!r}); fix it in the file"
            )
        if expected is not None and current != expected:
            raise self._conflict(segment_id, raw, expected, current)
        return index

    def edit(self, segment_id: str, expected: int | None, action: str, apply: Edit) -> dict:
        """Change the entry as ``apply`` says, as its next revision; the entry as changed."""
        index = self.locate(segment_id, expected)
        before = self.segments[index]
        after = copy.deepcopy(before)
        details = apply(self, after) or {}
        after["revision"] = before["revision"] + 1
        after["updated_at"] = timestamp(self.when)
        self.segments[index] = after
        self.record(action, before, after, **details)
        return after

    def _conflict(
        self, segment_id: str, raw: dict, expected: int, current: int
    ) -> EditConflictError:
        records = self.history.for_segment(segment_id, current)
        last = records[-1] if records and records[-1].revision == current else None
        who = last.user if last else None
        when = last.at if last else _maybe_time(raw.get("updated_at"))
        name = raw.get("name") if isinstance(raw.get("name"), str) else segment_id
        message = (
            f"segment {name!r} ({segment_id}) was changed by {who or 'someone'} at "
            f"{when.isoformat() if when else 'an unknown time'} (revision {current}) after "
            f"you loaded revision {expected}; nothing was saved. Reload it with "
            f"catalog.get({segment_id!r}) and apply your change again."
        )
        return EditConflictError(
            message,
            segment_id=segment_id,
            changed_by=who,
            changed_at=when,
            expected_revision=expected,
            current_revision=current,
        )


def entry_or_none(raw: dict) -> SegmentEntry | None:
    """The read-only view of an entry just written, or None if it still has problems."""
    return read_entry(raw)[1]


def require(entry: SegmentEntry | None) -> SegmentEntry:
    if entry is None:
        raise CatalogError("the change was saved but the entry still has problems")
    return entry


def _refuse_invalid_text(before: dict | None, after: dict) -> None:
    """New text must be valid Unicode; what the file already held is kept as it is."""
    for key, value in after.items():
        if before is not None and key in before and before[key] == value:
            continue
        bad = lone_surrogate([key, value])
        if bad is not None:
            raise CatalogError(
                f"cannot store text that is not valid Unicode (a lone surrogate in {key}: "
                f"{bad[:40]!r}); nothing was saved"
            )


def _maybe_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# What callers pass, checked before the lock is taken


def as_definition(definition: Any) -> Segment:
    """A definition as the model: from a ``Segment``, a rule, a format-1 dict or its JSON."""
    if isinstance(definition, Condition):
        return as_segment(definition)
    if isinstance(definition, Mapping):
        return load_definition(dict(definition))
    if isinstance(definition, (str, bytes)):
        return as_segment(definition)
    raise DefinitionError(
        "a definition is a heapseg.Segment, a rule or a format-1 dict, "
        f"got {type(definition).__name__}"
    )


def name_field(value: Any) -> str:
    """A valid segment name, stripped."""
    try:
        return check_name(value, path="name")
    except _Invalid as bad:
        raise DefinitionError(bad.message, path=bad.path) from None


def text_field(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise DefinitionError(f"must be a string, got {type(value).__name__}", path=path)
    return value.strip()


def choice_field(value: Any, choices: Sequence[str], path: str) -> str:
    if value not in choices:
        raise DefinitionError(f"must be one of {', '.join(choices)}; got {value!r}", path=path)
    return value
