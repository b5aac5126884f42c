"""heapseg: define user segments and analyse by them, in a notebook, on your own warehouse."""

from __future__ import annotations

from heapseg.catalog import Catalog
from heapseg.compile import UnknownEventWarning
from heapseg.dataset import Dataset, DatasetSchema, SegmentView, connect
from heapseg.errors import (
    AmbiguousNameError,
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
from heapseg.fluent import (
    account,
    did,
    did_not,
    event_prop,
    funnel,
    in_segment,
    not_in_segment,
    user,
)
from heapseg.hints import UnknownValueWarning
from heapseg.model import Group, Segment, StaticMembers, as_segment

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The widgets pull in ipywidgets; load them only when asked for.
    if name in ("SegmentBuilder", "CatalogBrowser"):
        from heapseg import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'heapseg' has no attribute {name!r}")


__all__ = [
    "AmbiguousNameError",
    "Catalog",
    "CatalogBrowser",
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
    "SegmentBuilder",
    "SegmentReferenceError",
    "SegmentView",
    "StaticMembers",
    "UnknownEventWarning",
    "UnknownValueWarning",
    "__version__",
    "account",
    "as_segment",
    "connect",
    "did",
    "did_not",
    "event_prop",
    "funnel",
    "in_segment",
    "not_in_segment",
    "user",
]
