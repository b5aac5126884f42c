"""What a resolver provides: the protocol behind ``kind: segment`` references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from heapseg.model import Group, StaticMembers

__all__ = ["Resolver"]


@runtime_checkable
class Resolver(Protocol):
    """Anything that turns a saved segment's id into what it selects (a :class:`heapseg.Catalog`).

    ``resolve_segment`` returns a dynamic segment's definition (a model :class:`~heapseg.model.Group`
    or its format-1 dict) or a static segment's frozen members (:class:`~heapseg.model.StaticMembers`),
    and raises :class:`~heapseg.errors.SegmentReferenceError` (or ``KeyError``) for an unknown id.
    """

    def resolve_segment(self, segment_id: str) -> Group | Mapping[str, Any] | StaticMembers:
        """What the segment ``segment_id`` selects."""
        ...
