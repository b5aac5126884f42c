"""The Catalog: list, get, save, update, rename, duplicate, delete, history, static segments."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heapseg.catalog import analysis, export_files, snapshots
from heapseg.catalog.entries import (
    MAX_DEFINITION_DEPTH,
    TYPES,
    VISIBILITIES,
    EntryProblem,
    SegmentEntry,
    _Invalid,
    build_entry,
    check_metadata,
    check_name,
    entry_id,
    load_definition,
    new_id,
    now,
    timestamp,
)
from heapseg.catalog.history import HistoryLog, HistoryRecord
from heapseg.catalog.jsontext import lone_surrogate
from heapseg.catalog.locking import DEFAULT_LOCK_TIMEOUT, login
from heapseg.catalog.storage import CatalogFile, FileContent, new_document
from heapseg.errors import (
    CatalogError,
    DefinitionError,
    EditConflictError,
    ExportError,
    NotFoundError,
    SegmentReferenceError,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd
    import pyarrow as pa

    from heapseg.dataset import Dataset
    from heapseg.model import Segment, StaticMembers


@dataclass(frozen=True)
class Refresh:
    """What refreshing a static segment changed.

    Attributes
    ----------
    entered, left
        How many users joined and left the frozen members.
    entered_users, left_users
        Their ids (empty lists unless asked for with ``users=True``).
    """

    entry: SegmentEntry
    before: int
    after: int
    entered: int
    left: int
    entered_users: list = field(default_factory=list)
    left_users: list = field(default_factory=list)


@dataclass
class _Row:
    index: int
    raw: Any
    id: str | None
    entry: SegmentEntry | None  # None when the entry has any problem
    problems: list[EntryProblem]
    own: list[tuple[str, str]]  # problems of the entry on its own (not duplicates)
    checked: SegmentEntry | None  # the entry if it is fine on its own


@dataclass
class _State:
    signature: Any
    rows: list[_Row]
    by_id: dict[str, _Row]
    by_name: dict[str, _Row]
    problems: list[EntryProblem]
    extra_keys: list[str]


class _Transaction:
    """The document read under the lock, and the history records of the changes made to it."""

    def __init__(self, document: dict, user: str) -> None:
        self.document = document
        self.user = user
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


class Catalog:
    """A shared JSON catalog of segments (catalog format 1), safe for many writers at once.

    Every write takes an exclusive lock on ``<catalog>.lock``, re-reads the file, applies the
    change and replaces the file atomically, so two analysts saving at the same moment both
    find their segments in it. Editing a segment that someone else changed since you loaded
    it raises :class:`EditConflictError` (a ``ConflictError``) instead of overwriting.

    What "since you loaded it" means: an edit is based on the entry you pass in, or on
    ``revision=``, or else on the revision this ``Catalog`` object last showed you for that
    segment: the one :meth:`get` returned, the one your own last save of it wrote, or, for a
    segment you have only seen listed, the revision :meth:`list` first showed. Re-reading the
    file (``len``, ``in``, :meth:`list` again, counts, exports) never moves that base, so a
    change someone saved after you looked is a conflict, not silently overwritten. Call
    :meth:`get` again to take the current revision as the base. An edit by id of a segment
    this object never showed you is based on the revision in the file at that moment.

    Parameters
    ----------
    path
        The catalog file. It need not exist yet: the first save creates it. A symbolic link
        is followed once, here: the catalog is the file it points to (saved in place of
        it, with the lock, history and snapshots beside it), so the link and the shared
        file never split.
    user
        Who is writing (recorded as owner and in the history); defaults to the OS login.
    lock_timeout
        Seconds to wait for another writer before giving up with ``LockTimeoutError``.

    Examples
    --------
    >>> import heapseg
    >>> cat = heapseg.Catalog("team-segments.json")
    >>> entry = cat.save(heapseg.did("Session").times() > 5, "Engaged", category="Engagement")
    >>> entry.id
    'seg-engaged-...'
    >>> cat.get("engaged").revision
    1
    >>> cat.count("engaged", heapseg.connect())
    3959
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        user: str | None = None,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._file = CatalogFile(path, lock_timeout)
        self.path = self._file.path
        self.user = user if user is not None else login()
        if not isinstance(self.user, str) or not self.user.strip():
            raise CatalogError("user must be a non-empty string (who is writing)")
        self._history = HistoryLog(self.path.with_name(self.path.name + ".history.jsonl"))
        self._state_cache: _State | None = None
        # The revision of each segment as this instance last read it: edits are checked
        # against it, so that a change made by someone else in between is a conflict.
        self._seen: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r}, user={self.user!r})"

    @property
    def history_path(self) -> Path:
        """The JSON-lines file that keeps every saved change."""
        return self._history.path

    @property
    def snapshots_path(self) -> Path:
        """The folder that keeps the frozen members of static segments."""
        return snapshots.snapshot_dir(self.path)

    # ------------------------------------------------------------------------------ reading

    def _state(self) -> _State:
        signature = self._file.signature()
        cached = self._state_cache
        if cached is not None and cached.signature == signature:
            return cached
        content = self._file.read_content()
        return self._remember(content.document or new_document(), content)

    def _remember(self, document: dict, content: FileContent) -> _State:
        # Definitions start four levels down in the file: a shallow file needs no walk of
        # each definition, unless it holds numbers too long to convert (kept as text).
        deep = content.depth > MAX_DEFINITION_DEPTH + 3 or content.long_numbers
        state = _build_state(document, content.signature, deep, self._state_cache)
        self._state_cache = state
        return state

    def _saw(self, entry: SegmentEntry) -> SegmentEntry:
        """Remember the revision the caller was shown: later edits by id are based on it."""
        self._seen[entry.id] = entry.revision
        return entry

    def _listed(self, entry: SegmentEntry) -> SegmentEntry:
        """A listing is the base only of segments not seen before: it never moves a base."""
        self._seen.setdefault(entry.id, entry.revision)
        return entry

    def list(
        self,
        category: str | None = None,
        type: str | None = None,
        owner: str | None = None,
        text: str | None = None,
        *,
        everyone: bool = False,
    ) -> list[SegmentEntry]:
        """The usable segments: shared ones and your personal ones, in file order.

        Entries with problems are left out here; see :attr:`problems`. Listing a segment
        for the first time makes the listed revision the base of your edits by id; listing
        it again does not move that base (see the class docstring).

        Parameters
        ----------
        category, type, owner
            Keep only segments with this category (ignoring case), type
            (``dynamic``/``static``) or owner.
        text
            Keep segments whose id, name, description or category contains it (ignoring case).
        everyone
            Include other people's personal segments too.
        """
        entries = self._entries(category, type, owner, text, everyone)
        return [self._listed(entry) for entry in entries]

    def _entries(
        self,
        category: str | None = None,
        type: str | None = None,
        owner: str | None = None,
        text: str | None = None,
        everyone: bool = False,
    ) -> list[SegmentEntry]:
        """What :meth:`list` returns, without counting as shown to the caller."""
        needle = text.casefold() if text else None
        out = []
        for row in self._state().rows:
            entry = row.entry
            if entry is None:
                continue
            if entry.visibility == "personal" and entry.owner != self.user and not everyone:
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

    def __iter__(self) -> Iterator[SegmentEntry]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        state = self._state()
        return key in state.by_id or key.strip().casefold() in state.by_name

    def categories(self) -> list[str]:
        """The categories in use (sorted, without the empty one)."""
        return sorted({e.category for e in self._entries(everyone=True) if e.category})

    @property
    def problems(self) -> list[EntryProblem]:
        """Entries that cannot be used, each with its id, the key at fault and why."""
        return list(self._state().problems)

    def get(self, key: str | SegmentEntry) -> SegmentEntry:
        """A segment by id, or by name (ignoring case).

        The revision returned becomes the base of your next edits of it by id.

        Raises
        ------
        NotFoundError
            No such segment (the message suggests close names).
        DefinitionError
            The entry exists but has problems (the message says which).
        """
        return self._saw(self._current(key.id if isinstance(key, SegmentEntry) else key))

    def _current(self, key: str | SegmentEntry) -> SegmentEntry:
        """The entry as the file has it now, without counting as "seen" by the caller.

        For reads that use a segment (counts, exports...): they do not move the base of edits.
        """
        row = self._row(key)
        if row.entry is None:
            raise DefinitionError(
                f"segment {row.id!r} cannot be used: " + "; ".join(str(p) for p in row.problems),
                path=row.problems[0].path if row.problems else "",
            )
        return row.entry

    def _row(self, key: str | SegmentEntry) -> _Row:
        if isinstance(key, SegmentEntry):
            key = key.id
        if not isinstance(key, str):
            raise NotFoundError(f"a segment is named by its id or name (a string), got {key!r}")
        state = self._state()
        row = state.by_id.get(key) or state.by_name.get(key.strip().casefold())
        if row is not None:
            return row
        raise NotFoundError(self._not_found_message(key, state))

    def _not_found_message(self, key: str, state: _State) -> str:
        message = f"no segment with id or name {key!r} in {self.path}"
        deleted = self._history.for_segment(key, None)
        if deleted and deleted[-1].action == "delete":
            last = deleted[-1]
            return f"segment {key!r} was deleted by {last.user} at {last.at.isoformat()}"
        names = [row.entry.name for row in state.rows if row.entry is not None]
        close = difflib.get_close_matches(key, names + list(state.by_id), n=3, cutoff=0.6)
        if close:
            message += f"; did you mean {', '.join(repr(c) for c in close)}?"
        return message

    # ------------------------------------------------------------------------------ writing

    @contextmanager
    def _writing(self) -> Iterator[_Transaction]:
        with self._file.locked():
            # Always re-read under the lock: what we cached may be stale by now. A file that
            # cannot be parsed raises here, so it is never overwritten.
            content = self._file.read_content()
            tx = _Transaction(content.document or new_document(), self.user)
            yield tx
            if tx.records:
                data = self._file.encode(tx.document)
                self._file.check_writable()
                self._history.append(tx.records)
                signature = self._file.write(data)
                # What we just wrote is the catalog now: no need to read it back.
                self._remember(tx.document, content._replace(signature=signature))
        for record in tx.records:
            if record.after is not None:
                self._seen[record.segment_id] = record.revision
            else:
                self._seen.pop(record.segment_id, None)

    def _target(self, key: str | SegmentEntry, revision: int | None) -> tuple[str, int | None]:
        """The id to change and the revision the change is based on."""
        if isinstance(key, SegmentEntry):
            return key.id, revision if revision is not None else key.revision
        row = self._row(key)
        if row.id is None:
            raise CatalogError(f"segments[{row.index}] has no usable id; fix it in the file")
        if revision is not None:
            return row.id, revision
        seen = self._seen.get(row.id)
        if seen is not None:
            return row.id, seen
        # Never shown to this caller: based on the revision just read, so that a change
        # landing between this read and the lock is still a conflict.
        current = row.raw.get("revision") if isinstance(row.raw, dict) else None
        return row.id, current if type(current) is int else None

    def _locate(self, tx: _Transaction, segment_id: str, expected: int | None) -> int:
        """Index of the entry under the lock, after the revision check."""
        index = tx.index_of(segment_id)
        if index is None:
            deleted = self._history.for_segment(segment_id, None)
            if deleted and deleted[-1].action == "delete":
                last = deleted[-1]
                raise NotFoundError(
                    f"segment {segment_id!r} was deleted by {last.user} at "
                    f"{last.at.isoformat()}; nothing was saved"
                )
            raise NotFoundError(f"no segment with id {segment_id!r} in {self.path}")
        raw = tx.segments[index]
        current = raw.get("revision")
        if type(current) is not int or current < 1:
            raise CatalogError(
                f"segment {segment_id!r} has no valid revision ({current!r}); fix it in the file"
            )
        if expected is not None and current != expected:
            raise self._conflict(segment_id, raw, expected, current)
        return index

    def _conflict(
        self, segment_id: str, raw: dict, expected: int, current: int
    ) -> EditConflictError:
        records = self._history.for_segment(segment_id, current)
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

    def _change(
        self,
        key: str | SegmentEntry,
        action: str,
        apply: Callable[[_Transaction, dict], dict[str, Any] | None],
        revision: int | None,
    ) -> SegmentEntry | None:
        segment_id, expected = self._target(key, revision)
        with self._writing() as tx:
            index = self._locate(tx, segment_id, expected)
            before = tx.segments[index]
            after = copy.deepcopy(before)
            details = apply(tx, after) or {}
            after["revision"] = before["revision"] + 1
            after["updated_at"] = timestamp(tx.when)
            tx.segments[index] = after
            tx.record(action, before, after, **details)
        return self._entry_or_none(after)

    def _entry_or_none(self, raw: dict) -> SegmentEntry | None:
        if check_metadata(raw):
            return None
        try:
            return build_entry(raw, load_definition(raw["definition"]))
        except DefinitionError:
            return None

    def save(
        self,
        definition: Any,
        name: str,
        *,
        description: str = "",
        category: str = "",
        visibility: str = "shared",
        static: bool = False,
        dataset: Dataset | None = None,
        as_of: Any = None,
    ) -> SegmentEntry:
        """Save a new segment; its id (``seg-<slug>-<random>``) is new and never reused.

        Parameters
        ----------
        definition
            A ``heapseg.Segment``, a rule (``did("Session")``) or a format-1 dict.
        name
            Unique in the catalog, ignoring case.
        static
            Freeze the members now (needs ``dataset``; ``as_of`` defaults to now): the
            segment then always returns exactly those users.

        Raises
        ------
        DefinitionError
            The definition or a field is not valid; nothing is saved.
        SegmentReferenceError
            The definition refers to an unknown segment.
        CatalogError
            The name is taken, or the file cannot be written.
        """
        segment = _as_definition(definition)
        fields = {
            "name": _field(check_name, name, "name"),
            "description": _text(description, "description"),
            "category": _text(category, "category"),
            "visibility": _choice(visibility, VISIBILITIES, "visibility"),
        }
        snapshot: dict | None = None
        if static:
            if dataset is None:
                raise CatalogError("a static segment needs dataset= to freeze its members")
            snapshot, _ = self._freeze_members(segment, fields["name"], dataset, as_of)
        try:
            with self._writing() as tx:
                self._check_references(tx, None, segment)
                _check_free(tx, fields["name"], None)
                stamp = timestamp(tx.when)
                raw = {
                    "id": self._fresh_id(tx, fields["name"]),
                    "name": fields["name"],
                    "description": fields["description"],
                    "category": fields["category"],
                    "type": "static" if static else "dynamic",
                    "visibility": fields["visibility"],
                    "owner": self.user,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "revision": 1,
                    "definition": segment.to_dict(),
                }
                if snapshot is not None:
                    raw["snapshot"] = snapshot
                tx.segments.append(raw)
                tx.record("create", None, raw)
        except BaseException:
            if snapshot is not None:
                snapshots.remove_members(self.path, snapshot["members"])
            raise
        return build_entry(raw, segment)

    def _fresh_id(self, tx: _Transaction, name: str) -> str:
        while True:
            candidate = new_id(name)
            if tx.index_of(candidate) is None and not self._history.mentions(candidate):
                return candidate

    def update(
        self,
        segment: str | SegmentEntry,
        definition: Any = None,
        *,
        name: str | None = None,
        description: str | None = None,
        category: str | None = None,
        visibility: str | None = None,
        revision: int | None = None,
    ) -> SegmentEntry:
        """Change a segment's definition and/or name, description, category, visibility.

        Everything given changes together, as one new revision. The change is based on the
        revision you loaded: the entry passed in, or ``revision=``, or else the revision this
        catalog object last showed you (:meth:`get`, your own last save of it, or the first
        :meth:`list` that showed it; re-reading the file never moves it; see the class
        docstring). If someone saved the segment in between,
        :class:`EditConflictError` says who and when, and nothing is written.
        A static segment keeps its frozen members until :meth:`refresh`.
        """
        new_definition = None if definition is None else _as_definition(definition)
        new_name = None if name is None else _field(check_name, name, "name")
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = _text(description, "description")
        if category is not None:
            changes["category"] = _text(category, "category")
        if visibility is not None:
            changes["visibility"] = _choice(visibility, VISIBILITIES, "visibility")

        def apply(tx: _Transaction, raw: dict) -> None:
            if new_definition is not None:
                self._check_references(tx, raw["id"], new_definition)
                raw["definition"] = new_definition.to_dict()
            if new_name is not None and new_name != raw.get("name"):
                _check_free(tx, new_name, raw["id"])
                raw["name"] = new_name
            raw.update(changes)

        return self._require(self._change(segment, "update", apply, revision))

    def rename(
        self, segment: str | SegmentEntry, name: str, *, revision: int | None = None
    ) -> SegmentEntry | None:
        """Give a segment a new name (unique, ignoring case); its id never changes."""
        new_name = _field(check_name, name, "name")

        def apply(tx: _Transaction, raw: dict) -> dict:
            _check_free(tx, new_name, raw["id"])
            old = raw.get("name")
            raw["name"] = new_name
            return {"old_name": old}

        return self._change(segment, "rename", apply, revision)

    def move(
        self, segment: str | SegmentEntry, category: str, *, revision: int | None = None
    ) -> SegmentEntry | None:
        """Put a segment in another category ("" for none)."""
        new_category = _text(category, "category")

        def apply(tx: _Transaction, raw: dict) -> dict:
            old = raw.get("category")
            raw["category"] = new_category
            return {"old_category": old}

        return self._change(segment, "move", apply, revision)

    def duplicate(self, segment: str | SegmentEntry, name: str | None = None) -> SegmentEntry:
        """A new segment with the same definition, named "Copy of <name>" unless told otherwise.

        The copy belongs to you; a static segment's copy shares its frozen members.
        """
        source = self._current(segment)
        wanted = None if name is None else _field(check_name, name, "name")
        with self._writing() as tx:
            index = self._locate(tx, source.id, None)
            original = tx.segments[index]
            base = wanted or f"Copy of {original['name']}"
            new_name = base
            number = 2
            while wanted is None and tx.name_taken(new_name):
                new_name = f"{base} ({number})"
                number += 1
            if wanted is not None and tx.name_taken(new_name):
                raise CatalogError(f"the name {new_name!r} is already used")
            stamp = timestamp(tx.when)
            raw = copy.deepcopy(original)
            raw.update(
                id=self._fresh_id(tx, new_name),
                name=new_name,
                owner=self.user,
                created_at=stamp,
                updated_at=stamp,
                revision=1,
            )
            tx.segments.append(raw)
            tx.record("duplicate", None, raw, copied_from=source.id)
        return self._require(self._entry_or_none(raw))

    def delete(
        self, segment: str | SegmentEntry, *, revision: int | None = None, force: bool = False
    ) -> None:
        """Remove a segment (its history stays, its id is never given again).

        Refuses when other segments refer to it, unless ``force=True``.
        """
        segment_id, expected = self._target(segment, revision)
        with self._writing() as tx:
            index = self._locate(tx, segment_id, expected)
            users = [
                entry_id(raw) or f"segments[{i}]"
                for i, raw in enumerate(tx.segments)
                if i != index and segment_id in _references(raw)
            ]
            if users and not force:
                raise CatalogError(
                    f"segment {segment_id!r} is used by {', '.join(users)}; "
                    "change those first or delete with force=True"
                )
            before = tx.segments.pop(index)
            tx.record("delete", before, None)

    def _require(self, entry: SegmentEntry | None) -> SegmentEntry:
        if entry is None:
            raise CatalogError("the change was saved but the entry still has problems")
        return entry

    # ------------------------------------------------------------------------------ history

    def history(self, segment: str | SegmentEntry) -> list[HistoryRecord]:
        """Every saved change of a segment, oldest first (deleted segments too, by id)."""
        key = segment.id if isinstance(segment, SegmentEntry) else segment
        try:
            row = self._row(key)
        except NotFoundError:
            records = self._history.for_segment(key, None)
            if records:
                return records
            raise
        current = row.raw.get("revision") if isinstance(row.raw, dict) else None
        return self._history.for_segment(row.id or key, current if type(current) is int else None)

    def restore(
        self, segment: str | SegmentEntry, revision: int, *, based_on: int | None = None
    ) -> SegmentEntry:
        """Bring back the definition, description, category and type of an earlier revision.

        The restore is itself a new revision (nothing in the history is lost); the name stays.
        """
        records = self.history(segment)
        found = [r for r in records if r.revision == revision and r.after is not None]
        if not found:
            known = ", ".join(str(r.revision) for r in records if r.after is not None)
            raise NotFoundError(
                f"segment {segment if isinstance(segment, str) else segment.id!r} has no "
                f"revision {revision}; known revisions: {known or 'none'}"
            )
        old = found[-1].after
        assert old is not None
        restored = load_definition(old.get("definition"))
        snapshot = old.get("snapshot") if old.get("type") == "static" else None
        if snapshot is not None:
            snapshots.read_members(self.path, snapshot.get("members"))  # still there?

        def apply(tx: _Transaction, raw: dict) -> dict:
            self._check_references(tx, raw["id"], restored)
            raw["definition"] = restored.to_dict()
            for key in ("description", "category"):
                if isinstance(old.get(key), str):
                    raw[key] = old[key]
            raw["type"] = old.get("type") if old.get("type") in TYPES else "dynamic"
            raw.pop("snapshot", None)
            if snapshot is not None:
                raw["snapshot"] = copy.deepcopy(snapshot)
            return {"restored_from": revision}

        return self._require(self._change(segment, "restore", apply, based_on))

    # ------------------------------------------------------------------------------ references

    def resolve_segment(self, segment_id: str) -> Segment | StaticMembers:
        """The resolver protocol: what a ``kind: segment`` rule with this id selects.

        A dynamic segment gives its definition; a static one its frozen members.

        Raises
        ------
        SegmentReferenceError
            Unknown id, or the entry cannot be used (the message says why).
        """
        from heapseg.model import StaticMembers

        state = self._state()
        row = state.by_id.get(segment_id)
        if row is None:
            raise SegmentReferenceError(
                f"unknown segment id {segment_id!r} in {self.path}", chain=(segment_id,)
            )
        if row.entry is None:
            raise SegmentReferenceError(
                f"segment {segment_id!r} cannot be used: "
                + "; ".join(str(p) for p in row.problems),
                chain=(segment_id,),
            )
        entry = row.entry
        if entry.snapshot is None:
            return entry.segment
        return StaticMembers(
            snapshots.read_members(self.path, entry.snapshot.members), entry.snapshot.as_of
        )

    def _check_references(self, tx: _Transaction, own_id: str | None, segment: Segment) -> None:
        """Refuse a definition that refers to an unknown segment or back to itself."""
        definitions = {entry_id(raw): raw for raw in tx.segments if entry_id(raw)}
        for ref in segment.referenced_segments():
            if ref not in definitions:
                raise SegmentReferenceError(
                    f"the definition refers to segment {ref!r}, which is not in the catalog",
                    chain=(*((own_id,) if own_id else ()), ref),
                )
        if own_id is None:
            return
        chain = _find_cycle(
            own_id,
            lambda sid: (
                segment.referenced_segments()
                if sid == own_id
                else list(_references(definitions.get(sid)))
            ),
        )
        if chain:
            raise SegmentReferenceError(
                f"segment reference cycle: {' -> '.join(chain)}; nothing was saved", chain=chain
            )

    def validate(self, dataset: Dataset | None = None) -> list[EntryProblem]:
        """Every problem in the catalog: bad entries, unknown references, reference cycles.

        With ``dataset``, each usable definition is also compiled against it, which reports
        unknown properties and wrong value types (nothing is run on the backend).
        """
        from heapseg.model import references_problem

        state = self._state()
        problems = list(state.problems)
        usable = {row.id: row.entry for row in state.rows if row.entry is not None}
        known = set(state.by_id)
        for row in state.rows:
            entry = row.entry
            if entry is None:
                continue
            refs = entry.segment.referenced_segments()
            missing = [r for r in refs if r not in known]
            if missing:
                problems.append(
                    EntryProblem(
                        entry.id,
                        row.index,
                        "definition",
                        f"refers to unknown segment {missing[0]!r}",
                    )
                )
                continue
            chain = _find_cycle(
                entry.id,
                lambda sid: (
                    usable[sid].segment.referenced_segments()
                    if sid in usable
                    else list(_references(state.by_id[sid].raw if sid in state.by_id else None))
                ),
            )
            if chain:
                problems.append(
                    EntryProblem(
                        entry.id,
                        row.index,
                        "definition",
                        f"segment reference cycle: {' -> '.join(chain)}",
                    )
                )
                continue
            # The size limits, references followed (a static segment adds only its members).
            too_big = references_problem(
                entry.segment,
                lambda sid: (
                    None
                    if usable.get(sid) is None or usable[sid].is_static
                    else usable[sid].segment
                ),
                segment_id=entry.id,
            )
            if too_big:
                problems.append(EntryProblem(entry.id, row.index, "definition", too_big))
                continue
            if dataset is not None:
                problems.extend(analysis.compile_problem(self, dataset, entry, row.index))
        return problems

    # ------------------------------------------------------------------------------ static

    def _freeze_members(
        self, segment: Segment, label: str, dataset: Dataset, as_of: Any
    ) -> tuple[dict[str, Any], pa.Array]:
        """Compute and write the members; the catalog entry is changed by the caller."""
        moment = analysis.as_of_moment(as_of, dataset)
        ids = analysis.member_ids(self, dataset, segment, moment)
        relative = snapshots.write_members(self.path, label, moment, ids)
        return {"as_of": moment.isoformat(), "count": len(ids), "members": relative}, ids

    def freeze(
        self,
        segment: str | SegmentEntry,
        dataset: Dataset,
        as_of: Any = None,
        *,
        revision: int | None = None,
    ) -> SegmentEntry:
        """Make a segment static: its members at ``as_of`` are written beside the catalog.

        From then on the segment (and every reference to it) gives exactly those users, on
        any backend, until :meth:`refresh`.
        """
        segment_id, based_on = self._target(segment, revision)
        entry = self._current(segment_id)
        snapshot, _ = self._freeze_members(entry.segment, entry.id, dataset, as_of)

        def apply(tx: _Transaction, raw: dict) -> dict:
            raw["type"] = "static"
            raw["snapshot"] = snapshot
            return {"count": snapshot["count"]}

        try:
            return self._require(self._change(entry.id, "freeze", apply, based_on))
        except BaseException:
            snapshots.remove_members(self.path, snapshot["members"])
            raise

    def unfreeze(self, segment: str | SegmentEntry, *, revision: int | None = None) -> SegmentEntry:
        """Make a static segment dynamic again (re-evaluated at every use).

        Its members file stays beside the catalog: :meth:`restore` of the frozen revision
        brings the frozen members back.
        """

        def apply(tx: _Transaction, raw: dict) -> None:
            if raw.get("type") != "static":
                raise CatalogError(f"segment {raw['id']!r} is already dynamic")
            raw["type"] = "dynamic"
            raw.pop("snapshot", None)

        return self._require(self._change(segment, "unfreeze", apply, revision))

    def refresh(
        self,
        segment: str | SegmentEntry,
        dataset: Dataset,
        as_of: Any = None,
        *,
        users: bool = False,
        revision: int | None = None,
    ) -> Refresh:
        """Re-freeze a static segment at ``as_of`` and report who entered and who left."""
        import pyarrow.compute as pc

        segment_id, based_on = self._target(segment, revision)
        entry = self._current(segment_id)
        if entry.snapshot is None:
            raise CatalogError(f"segment {entry.id!r} is dynamic; freeze it first")
        old_ids = snapshots.read_members(self.path, entry.snapshot.members)
        snapshot, new_ids = self._freeze_members(entry.segment, entry.id, dataset, as_of)
        if old_ids.type != new_ids.type:
            old_ids = old_ids.cast(new_ids.type)
        entered = new_ids.filter(pc.invert(pc.is_in(new_ids, value_set=old_ids)))
        left = old_ids.filter(pc.invert(pc.is_in(old_ids, value_set=new_ids)))

        def apply(tx: _Transaction, raw: dict) -> dict:
            raw["snapshot"] = snapshot
            return {"entered": len(entered), "left": len(left), "count": snapshot["count"]}

        try:
            updated = self._require(self._change(entry.id, "refresh", apply, based_on))
        except BaseException:
            snapshots.remove_members(self.path, snapshot["members"])
            raise
        return Refresh(
            entry=updated,
            before=len(old_ids),
            after=len(new_ids),
            entered=len(entered),
            left=len(left),
            entered_users=entered.to_pylist() if users else [],
            left_users=left.to_pylist() if users else [],
        )

    def static_members(self, segment: str | SegmentEntry) -> list:
        """The frozen user ids of a static segment."""
        entry = self._current(segment)
        if entry.snapshot is None:
            raise CatalogError(f"segment {entry.id!r} is dynamic: it has no frozen members")
        return snapshots.read_members(self.path, entry.snapshot.members).to_pylist()

    # ------------------------------------------------------------------------------ data

    def count(self, segment: str | SegmentEntry, dataset: Dataset, as_of: Any = None) -> int:
        """How many users are in a saved segment (static: its frozen members still in users)."""
        return analysis.count(self, dataset, self._current(segment), as_of)

    def members(
        self,
        segment: str | SegmentEntry,
        dataset: Dataset,
        as_of: Any = None,
        properties: Sequence[str] | None = None,
    ) -> ir.Table:
        """The members of a saved segment as a lazy ibis table (``user_id`` + properties)."""
        return analysis.members(self, dataset, self._current(segment), as_of, properties)

    def sql(self, segment: str | SegmentEntry, dataset: Dataset, as_of: Any = None) -> str:
        """The SQL that selects a saved segment's members on the dataset's backend."""
        return analysis.sql(self, dataset, self._current(segment), as_of)

    def movement(
        self,
        segment: str | SegmentEntry,
        dataset: Dataset,
        start: Any,
        end: Any = None,
        *,
        users: bool = False,
    ) -> analysis.Movement:
        """Who entered and who left a segment between two moments, in one backend query.

        A static segment is evaluated by its definition here (its members are frozen).
        """
        return analysis.movement(self, dataset, self._current(segment), start, end, users=users)

    def overview(
        self, dataset: Dataset, as_of: Any = None, category: str | None = None
    ) -> pd.DataFrame:
        """Count and share of all users for every listed segment, in one backend query."""
        entries = self._entries(category=category)
        return analysis.overview(self, dataset, entries, as_of)

    def export(
        self,
        segment: str | SegmentEntry,
        dataset: Dataset,
        path: str | os.PathLike[str],
        properties: Sequence[str] | None = None,
        as_of: Any = None,
        *,
        overwrite: bool = True,
    ) -> Path:
        """Write the members (``user_id`` + ``properties``) to a ``.csv`` or ``.parquet`` file.

        The file is written beside its target and renamed into place: a failed or
        interrupted export leaves neither a half file nor temporary files behind.

        Raises
        ------
        ExportError
            The folder is missing or not writable, the target is a folder, it exists and
            ``overwrite`` is false, or the disk filled up; nothing was written.
        """
        target = Path(path)
        export_files.check_target(target, overwrite)
        entry = self._current(segment)
        try:
            with export_files.no_leftovers(target):
                return analysis.export(self, dataset, entry, target, properties, as_of)
        except OSError as exc:
            raise ExportError(f"cannot export to {target}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------------ helpers


def _build_state(document: dict, signature: Any, deep: bool, previous: _State | None) -> _State:
    """Check every entry; entries equal to the previous load's are not checked again.

    After someone's save only the entries that changed are validated, so reloading a team
    catalog of thousands of segments costs little more than parsing it.
    """
    rows: list[_Row] = []
    by_id: dict[str, _Row] = {}
    by_name: dict[str, _Row] = {}
    problems: list[EntryProblem] = []
    before = previous.by_id if previous is not None else {}
    for index, raw in enumerate(document["segments"]):
        sid = entry_id(raw)
        old = before.get(sid) if sid is not None else None
        if old is not None and old.raw == raw:
            own, entry = old.own, old.checked
        else:
            own, entry = _check_entry(raw, deep)
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
        row = _Row(index, raw, sid, entry if not found else None, found, own, entry)
        rows.append(row)
        problems.extend(found)
        if sid is not None and sid not in by_id:
            by_id[sid] = row
        if row.entry is not None and folded:
            by_name[folded] = row
    extra = [k for k in document if k not in ("format", "version", "segments")]
    return _State(signature, rows, by_id, by_name, problems, extra)


def _check_entry(raw: Any, deep: bool) -> tuple[list[tuple[str, str]], SegmentEntry | None]:
    """Problems of one entry on its own (metadata, definition), or its read-only view."""
    own = check_metadata(raw)
    if own:
        return own, None
    try:
        return [], build_entry(raw, load_definition(raw["definition"], check_depth=deep))
    except DefinitionError as exc:
        return [(exc.path, exc.reason)], None


def _references(raw: Any) -> set[str]:
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


def _find_cycle(start: str, refs_of: Callable[[str], Sequence[str] | set[str]]) -> tuple | None:
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


def _check_free(tx: _Transaction, name: str, own_id: str | None) -> None:
    taken = tx.name_taken(name, except_id=own_id)
    if taken:
        raise CatalogError(
            f"the name {name!r} is already used by segment {taken!r} "
            "(names are unique, ignoring case)"
        )


def _as_definition(definition: Any) -> Segment:
    from heapseg.model import Condition, as_segment

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


def _field(check: Callable[..., str], value: Any, path: str) -> str:
    try:
        return check(value, path=path)
    except _Invalid as bad:
        raise DefinitionError(bad.message, path=bad.path) from None


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise DefinitionError(f"must be a string, got {type(value).__name__}", path=path)
    return value.strip()


def _choice(value: Any, choices: Sequence[str], path: str) -> str:
    if value not in choices:
        raise DefinitionError(f"must be one of {', '.join(choices)}; got {value!r}", path=path)
    return value


def _maybe_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


__all__ = ["Catalog", "EditConflictError", "Refresh"]
