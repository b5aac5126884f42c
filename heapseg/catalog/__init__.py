"""The shared JSON catalog of segments: many analysts, one file, nothing lost."""

from __future__ import annotations

from heapseg.catalog.analysis import Movement
from heapseg.catalog.catalog import Catalog
from heapseg.catalog.entries import EntryProblem, SegmentEntry, Snapshot
from heapseg.catalog.history import HistoryRecord
from heapseg.catalog.snapshots import Refresh
from heapseg.errors import EditConflictError, LockTimeoutError

__all__ = [
    "Catalog",
    "EditConflictError",
    "EntryProblem",
    "HistoryRecord",
    "LockTimeoutError",
    "Movement",
    "Refresh",
    "SegmentEntry",
    "Snapshot",
]
