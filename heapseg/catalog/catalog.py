"""The Catalog: list, get, save, update, rename, duplicate, delete, history, static segments."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heapseg.catalog import analysis, export_files, references, snapshots
from heapseg.catalog.changes import (
    Edit,
    Transaction,
    as_definition,
    choice_field,
    entry_or_none,
    name_field,
    require,
    text_field,
)
from heapseg.catalog.entries import (
    MAX_DEFINITION_DEPTH,
    TYPES,
    VISIBILITIES,
    EntryProblem,
    SegmentEntry,
    build_entry,
    load_definition,
)
from heapseg.catalog.history import HistoryLog, HistoryRecord
from heapseg.catalog.index import Index, Row, build_index
from heapseg.catalog.locking import DEFAULT_LOCK_TIMEOUT, login
from heapseg.catalog.snapshots import Refresh
from heapseg.catalog.storage import CatalogFile, FileContent, new_document
from heapseg.errors import (
    AmbiguousNameError,
    CatalogError,
    DefinitionError,
    EditConflictError,
    ExportError,
    NotFoundError,
    SegmentReferenceError,
)
from heapseg.model import Segment, StaticMembers

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

    from heapseg.dataset import Dataset


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
        self._index_cache: Index | None = None
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

    def _index(self) -> Index:
        signature = self._file.signature()
        cached = self._index_cache
        if cached is not None and cached.signature == signature:
            return cached
        content = self._file.read_content()
        return self._remember(content.document or new_document(), content)

    def _remember(self, document: dict, content: FileContent) -> Index:
        # Definitions start four levels down in the file: a shallow file needs no walk of
        # each definition, unless it holds numbers too long to convert (kept as text).
        deep = content.depth > MAX_DEFINITION_DEPTH + 3 or content.long_numbers
        index = build_index(document, content.signature, deep, self._index_cache)
        self._index_cache = index
        return index

    def _saw(self, entry: SegmentEntry) -> SegmentEntry:
        """Remember the revision the caller was shown: later edits by id are based on it."""
        self._seen[entry.id] = entry.revision
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
        entries = self._index().entries(self.user, category, type, owner, text, everyone)
        # A listing is the base only of segments not seen before: it never moves a base.
        seen = self._seen
        for entry in entries:
            seen.setdefault(entry.id, entry.revision)
        return entries

    def __iter__(self) -> Iterator[SegmentEntry]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._index().entries(self.user))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return self._index().find(key) is not None

    def categories(self) -> list[str]:
        """The categories in use (sorted, without the empty one)."""
        return sorted(
            {e.category for e in self._index().entries(self.user, everyone=True) if e.category}
        )

    @property
    def problems(self) -> list[EntryProblem]:
        """Entries that cannot be used, each with its id, the key at fault and why."""
        return list(self._index().problems)

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

    def _row(self, key: str | SegmentEntry) -> Row:
        if isinstance(key, SegmentEntry):
            key = key.id
        if not isinstance(key, str):
            raise NotFoundError(f"a segment is named by its id or name (a string), got {key!r}")
        index = self._index()
        row = index.by_id.get(key)  # an id always means its own segment
        if row is not None:
            return row
        ambiguous = index.ambiguity(key)
        if ambiguous:
            raise AmbiguousNameError(f"{ambiguous} (in {self.path})")
        row = index.by_name.get(key.strip().casefold())
        if row is not None:
            return row
        raise NotFoundError(index.not_found(key, self.path, self._history))

    # ------------------------------------------------------------------------------ writing

    @contextmanager
    def _writing(self) -> Iterator[Transaction]:
        with self._file.locked():
            # Always re-read under the lock: what we cached may be stale by now. A file that
            # cannot be parsed raises here, so it is never overwritten.
            content = self._file.read_content()
            document = content.document or new_document()
            tx = Transaction(document, self.user, self._history, self.path)
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

    def _change(
        self, key: str | SegmentEntry, action: str, apply: Edit, revision: int | None
    ) -> SegmentEntry | None:
        segment_id, expected = self._target(key, revision)
        with self._writing() as tx:
            after = tx.edit(segment_id, expected, action, apply)
        return entry_or_none(after)

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
        segment = as_definition(definition)
        fields = {
            "name": name_field(name),
            "description": text_field(description, "description"),
            "category": text_field(category, "category"),
            "visibility": choice_field(visibility, VISIBILITIES, "visibility"),
        }
        snapshot: dict | None = None
        if static:
            if dataset is None:
                raise CatalogError("a static segment needs dataset= to freeze its members")
            snapshot, _ = snapshots.freeze_members(
                self, self.path, segment, fields["name"], dataset, as_of
            )
        with snapshots.removed_unless_saved(self.path, snapshot), self._writing() as tx:
            segment = references.with_ids(tx.segments, segment)
            references.check_references(tx.segments, None, segment)
            raw = tx.create(fields, segment, snapshot)
        return build_entry(raw, segment)

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
        new_definition = None if definition is None else as_definition(definition)
        new_name = None if name is None else name_field(name)
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = text_field(description, "description")
        if category is not None:
            changes["category"] = text_field(category, "category")
        if visibility is not None:
            changes["visibility"] = choice_field(visibility, VISIBILITIES, "visibility")

        def apply(tx: Transaction, raw: dict) -> None:
            if new_definition is not None:
                definition = references.with_ids(tx.segments, new_definition)
                references.check_references(tx.segments, raw["id"], definition)
                raw["definition"] = definition.to_dict()
            if new_name is not None and new_name != raw.get("name"):
                tx.check_free(new_name, raw["id"])
                raw["name"] = new_name
            raw.update(changes)

        return require(self._change(segment, "update", apply, revision))

    def rename(
        self, segment: str | SegmentEntry, name: str, *, revision: int | None = None
    ) -> SegmentEntry | None:
        """Give a segment a new name (unique, ignoring case); its id never changes."""
        new_name = name_field(name)

        def apply(tx: Transaction, raw: dict) -> dict:
            tx.check_free(new_name, raw["id"])
            old = raw.get("name")
            raw["name"] = new_name
            return {"old_name": old}

        return self._change(segment, "rename", apply, revision)

    def move(
        self, segment: str | SegmentEntry, category: str, *, revision: int | None = None
    ) -> SegmentEntry | None:
        """Put a segment in another category ("" for none)."""
        new_category = text_field(category, "category")

        def apply(tx: Transaction, raw: dict) -> dict:
            old = raw.get("category")
            raw["category"] = new_category
            return {"old_category": old}

        return self._change(segment, "move", apply, revision)

    def duplicate(self, segment: str | SegmentEntry, name: str | None = None) -> SegmentEntry:
        """A new segment with the same definition, named "Copy of <name>" unless told otherwise.

        The copy belongs to you; a static segment's copy shares its frozen members.
        """
        source = self._current(segment)
        wanted = None if name is None else name_field(name)
        with self._writing() as tx:
            raw = tx.duplicate(source.id, wanted)
        return require(entry_or_none(raw))

    def delete(
        self, segment: str | SegmentEntry, *, revision: int | None = None, force: bool = False
    ) -> None:
        """Remove a segment (its history stays, its id is never given again).

        Refuses when other segments refer to it, unless ``force=True``.
        """
        segment_id, expected = self._target(segment, revision)
        with self._writing() as tx:
            index = tx.locate(segment_id, expected)
            users = references.referrers(tx.segments, segment_id, index)
            if users and not force:
                raise CatalogError(
                    f"segment {segment_id!r} is used by {', '.join(users)}; "
                    "change those first or delete with force=True"
                )
            before = tx.segments.pop(index)
            tx.record("delete", before, None)

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

        def apply(tx: Transaction, raw: dict) -> dict:
            references.check_references(tx.segments, raw["id"], restored)
            raw["definition"] = restored.to_dict()
            for key in ("description", "category"):
                if isinstance(old.get(key), str):
                    raw[key] = old[key]
            raw["type"] = old.get("type") if old.get("type") in TYPES else "dynamic"
            raw.pop("snapshot", None)
            if snapshot is not None:
                raw["snapshot"] = copy.deepcopy(snapshot)
            return {"restored_from": revision}

        return require(self._change(segment, "restore", apply, based_on))

    # ------------------------------------------------------------------------------ references

    def resolve_segment(self, segment_id: str) -> Segment | StaticMembers:
        """The resolver protocol: what a ``kind: segment`` rule with this id (or, in a definition
        not saved yet, this name: ``in_segment("Paid")``) selects.

        A dynamic segment gives its definition; a static one its frozen members. An id always
        means its own segment; a name is looked up, ignoring case, only when no id matches.

        Raises
        ------
        SegmentReferenceError
            Unknown id or name (the message names the nearest), a name that several segments
            have, or the entry cannot be used (the message says why).
        """
        index = self._index()
        row = index.by_id.get(segment_id)
        if row is None and isinstance(segment_id, str):
            ambiguous = index.ambiguity(segment_id)
            if ambiguous:
                raise SegmentReferenceError(f"{ambiguous} (in {self.path})", chain=(segment_id,))
            row = index.find(segment_id)
        if row is None:
            raise SegmentReferenceError(
                index.not_found(str(segment_id), self.path, self._history), chain=(segment_id,)
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

    def validate(self, dataset: Dataset | None = None) -> list[EntryProblem]:
        """Every problem in the catalog: bad entries, unknown references, reference cycles.

        With ``dataset``, each usable definition is also compiled against it, which reports
        unknown properties and wrong value types (nothing is run on the backend).
        """
        return references.problems(self._index(), self, dataset)

    # ------------------------------------------------------------------------------ static

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
        snapshot, _ = snapshots.freeze_members(
            self, self.path, entry.segment, entry.id, dataset, as_of
        )

        def apply(tx: Transaction, raw: dict) -> dict:
            raw["type"] = "static"
            raw["snapshot"] = snapshot
            return {"count": snapshot["count"]}

        with snapshots.removed_unless_saved(self.path, snapshot):
            return require(self._change(entry.id, "freeze", apply, based_on))

    def unfreeze(self, segment: str | SegmentEntry, *, revision: int | None = None) -> SegmentEntry:
        """Make a static segment dynamic again (re-evaluated at every use).

        Its members file stays beside the catalog: :meth:`restore` of the frozen revision
        brings the frozen members back.
        """

        def apply(tx: Transaction, raw: dict) -> None:
            if raw.get("type") != "static":
                raise CatalogError(f"segment {raw['id']!r} is already dynamic")
            raw["type"] = "dynamic"
            raw.pop("snapshot", None)

        return require(self._change(segment, "unfreeze", apply, revision))

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
        segment_id, based_on = self._target(segment, revision)
        entry = self._current(segment_id)
        if entry.snapshot is None:
            raise CatalogError(f"segment {entry.id!r} is dynamic; freeze it first")
        old_ids = snapshots.read_members(self.path, entry.snapshot.members)
        snapshot, new_ids = snapshots.freeze_members(
            self, self.path, entry.segment, entry.id, dataset, as_of
        )
        entered, left = snapshots.compare(old_ids, new_ids)

        def apply(tx: Transaction, raw: dict) -> dict:
            raw["snapshot"] = snapshot
            return {"entered": len(entered), "left": len(left), "count": snapshot["count"]}

        with snapshots.removed_unless_saved(self.path, snapshot):
            updated = require(self._change(entry.id, "refresh", apply, based_on))
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
        entries = self._index().entries(self.user, category=category)
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


__all__ = ["Catalog", "EditConflictError", "Refresh"]
