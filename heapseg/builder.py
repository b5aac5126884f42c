"""Deprecated name of :mod:`heapseg.fluent` (the fluent API), kept so that old imports work; it
clashed with the segment builder widget, :mod:`heapseg.widgets.builder`."""

from __future__ import annotations

import warnings

from heapseg.fluent import (
    EventBuilder,
    Property,
    account,
    did,
    did_not,
    event_prop,
    in_segment,
    not_in_segment,
    user,
)

__all__ = [
    "EventBuilder",
    "Property",
    "account",
    "did",
    "did_not",
    "event_prop",
    "in_segment",
    "not_in_segment",
    "user",
]

warnings.warn(
    "heapseg.builder is now heapseg.fluent (the names are the same, and heapseg itself exports "
    "user, did, ...); import from there",
    DeprecationWarning,
    stacklevel=2,
)
