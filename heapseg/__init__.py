"""heapseg: define user segments and analyse by them, in a notebook, on your own warehouse."""

from __future__ import annotations

from heapseg.builder import account, did, did_not, event_prop, in_segment, not_in_segment, user
from heapseg.compile import UnknownEventWarning
from heapseg.dataset import Dataset, DatasetSchema, SegmentView, connect
from heapseg.errors import (
    CatalogError,
    CatalogFormatError,
    ConflictError,
    DataError,
    DefinitionError,
    HeapsegError,
    NotFoundError,
    SchemaError,
    SegmentReferenceError,
)
from heapseg.model import Group, Segment, StaticMembers, as_segment

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "CatalogFormatError",
    "ConflictError",
    "DataError",
    "Dataset",
    "DatasetSchema",
    "DefinitionError",
    "Group",
    "HeapsegError",
    "NotFoundError",
    "SchemaError",
    "Segment",
    "SegmentReferenceError",
    "SegmentView",
    "StaticMembers",
    "UnknownEventWarning",
    "__version__",
    "account",
    "as_segment",
    "connect",
    "did",
    "did_not",
    "event_prop",
    "in_segment",
    "not_in_segment",
    "user",
]
