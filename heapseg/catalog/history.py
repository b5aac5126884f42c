"""The history of every saved change, kept in a JSON-lines file beside the catalog.

Why a sidecar rather than a key inside each entry: the catalog stays small and easy to read
and diff (a busy segment would otherwise carry every past definition), the history of a
deleted segment survives its deletion, and appending a line is cheap.

How it stays consistent with the catalog without a second lock: records are appended (and
flushed to disk) while the catalog's lock is held, just *before* the catalog file is replaced.
A writer killed between the two leaves a record for a revision that never landed; readers
drop records whose revision is above the segment's current one, and when a revision number
appears twice the later record wins (it is the one that landed).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from heapseg.catalog.files import fsync_dir, open_regular, read_regular
from heapseg.catalog.jsontext import loads, to_json
from heapseg.errors import CatalogError

_WHAT = "catalog history"


@dataclass(frozen=True)
class HistoryRecord:
    """One saved change of one segment.

    Attributes
    ----------
    segment_id, revision
        The segment and the revision this change produced (for a delete: the revision it
        would have had).
    action
        ``create``, ``update``, ``rename``, ``move``, ``duplicate``, ``delete``,
        ``restore``, ``freeze``, ``unfreeze`` or ``refresh``.
    user, at
        Who saved it, and when (with the writer's UTC offset).
    before, after
        The whole entry before and after the change (None before a create, after a delete).
    details
        Extra facts: ``restored_from`` for a restore, ``entered``/``left`` for a refresh.
    """

    segment_id: str
    revision: int
    action: str
    user: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def definition_before(self) -> dict[str, Any] | None:
        return None if self.before is None else self.before.get("definition")

    @property
    def definition_after(self) -> dict[str, Any] | None:
        return None if self.after is None else self.after.get("definition")

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "revision": self.revision,
            "action": self.action,
            "user": self.user,
            "at": self.at.isoformat(),
            "before": self.before,
            "after": self.after,
            "details": self.details,
        }


class HistoryLog:
    """Append-only log of changes; one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bad_lines = 0

    def append(self, records: list[HistoryRecord]) -> None:
        """Append and flush records; call only while holding the catalog's lock.

        Raises
        ------
        CatalogError
            The file is a link, a FIFO..., or cannot be written (disk full, permissions);
            the message names it. The catalog itself is written only after this succeeded.
        """
        if not records:
            return
        data = "".join(to_json(r.to_dict()) + "\n" for r in records)
        created = not self.path.exists()
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, _WHAT)
        except FileNotFoundError:
            raise CatalogError(f"cannot create {self.path}: its folder does not exist") from None
        try:
            # A writer killed mid-append leaves a line without its newline; start a fresh line
            # so the damage stays confined to that one record.
            size = os.fstat(fd).st_size
            if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                data = "\n" + data
            _write_all(fd, data.encode("utf-8"))
            os.fsync(fd)
            if created:
                fsync_dir(self.path.parent)
        except OSError as exc:
            raise CatalogError(
                f"cannot append to the {_WHAT} {self.path}: {exc.strerror or exc}; nothing was "
                "saved, the catalog is unchanged"
            ) from None
        finally:
            os.close(fd)

    def _read(self) -> bytes | None:
        try:
            return read_regular(self.path, _WHAT)[0]
        except FileNotFoundError:
            return None

    def records(self) -> list[HistoryRecord]:
        """Every readable record in file order; unreadable lines are counted in ``bad_lines``."""
        data = self._read()
        if data is None:
            return []
        text = data.decode("utf-8", errors="replace")
        out: list[HistoryRecord] = []
        bad = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            record = _record(line)
            if record is None:
                bad += 1
            else:
                out.append(record)
        self.bad_lines = bad
        return out

    def for_segment(self, segment_id: str, current_revision: int | None) -> list[HistoryRecord]:
        """The segment's changes, oldest first, reconciled with the catalog.

        ``current_revision`` is the revision in the catalog now (None if the segment is
        gone); records above it belong to saves that never landed.
        """
        by_revision: dict[int, HistoryRecord] = {}
        for record in self.records():
            if record.segment_id != segment_id:
                continue
            by_revision[record.revision] = record  # the later record of a revision landed
        revisions = sorted(by_revision)
        if current_revision is not None:
            revisions = [r for r in revisions if r <= current_revision]
        elif revisions and by_revision[revisions[-1]].action != "delete":
            # Gone from the catalog without a delete record: its last records never landed.
            revisions = [r for r in revisions if by_revision[r].action == "delete"]
        return [by_revision[r] for r in revisions]

    def deletion(self, segment_id: str) -> HistoryRecord | None:
        """The record of the segment's delete, when deleting it was its last change."""
        records = self.for_segment(segment_id, None)
        return records[-1] if records and records[-1].action == "delete" else None

    def mentions(self, segment_id: str) -> bool:
        """Whether the id ever appeared in the history (ids are never reused)."""
        needle = json.dumps(segment_id, ensure_ascii=False).encode("utf-8")
        try:
            fd = open_regular(self.path, os.O_RDONLY, _WHAT)
        except FileNotFoundError:
            return False
        try:
            if os.fstat(fd).st_size == 0:
                return False
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as data:
                return data.find(needle) != -1
        except OSError as exc:
            raise CatalogError(f"cannot read the {_WHAT} {self.path}: {exc.strerror}") from None
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    # os.write may write less than asked (a signal, a nearly full disk): finish the job.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _record(line: str) -> HistoryRecord | None:
    try:
        data = loads(line)
        at = datetime.fromisoformat(data["at"])
    except (ValueError, KeyError, TypeError):
        return None
    with contextlib.suppress(KeyError, TypeError, ValueError):
        segment_id, revision = data["segment_id"], data["revision"]
        before, after = data.get("before"), data.get("after")
        ok = (
            isinstance(segment_id, str)
            and type(revision) is int
            and isinstance(data.get("action"), str)
            and isinstance(data.get("user"), str)
            and isinstance(before, (dict, type(None)))
            and isinstance(after, (dict, type(None)))
        )
        if ok:
            details = data.get("details")
            return HistoryRecord(
                segment_id=segment_id,
                revision=revision,
                action=data["action"],
                user=data["user"],
                at=at,
                before=before,
                after=after,
                details=details if isinstance(details, dict) else {},
            )
    return None
