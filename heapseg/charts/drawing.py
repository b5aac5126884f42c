"""Building Altair charts cheaply: without validating each piece as it is made.

Altair checks every schema object against the Vega-Lite schema when it is created (its "debug
mode") and every ``.properties()`` value when it is set. For a chart that is only a few marks,
that costs tens of milliseconds per chart: as much as a backend query at 100k users. heapseg's
charts are built from fixed code whose specs are pinned by tests (tests/charts/test_specs.py),
so they are built with these checks off; the whole spec is still validated once, when the
chart is shown or saved (``to_dict()`` validates by default).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import altair as alt
from altair.utils import schemapi

__all__ = ["layer", "lean", "put", "unvalidated"]

F = TypeVar("F", bound=Callable[..., Any])

# Keys a channel reads even when unset: "type" in its keys means the channel needs a type.
_KEPT = frozenset({"type", "shorthand"})
# Chart-level objects: Altair reads their unset properties as attributes (chart.params).
_CHARTS = (alt.Chart, alt.LayerChart, alt.FacetChart, alt.HConcatChart, alt.VConcatChart)

_lock = threading.Lock()
# How many threads are building a chart now, and the debug mode to restore after the last one:
# Altair's own debug_mode() restores the mode it found, which overlapping threads would get
# wrong (the second one would turn the checks off for good).
_state = {"depth": 0, "saved": True}


@contextmanager
def _checks_off() -> Iterator[None]:
    with _lock:
        if _state["depth"] == 0:
            _state["saved"] = schemapi.DEBUG_MODE
            schemapi.DEBUG_MODE = False
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                schemapi.DEBUG_MODE = _state["saved"]


def unvalidated(fn: F) -> F:
    """Run ``fn`` (a function that builds a chart) with Altair's checks at creation off."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _checks_off():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def put(chart: Any, **properties: Any) -> Any:
    """``chart`` with top-level ``properties`` set in place: ``chart.properties(...)`` without
    its copy of the whole chart and its check of each value. Only for a chart the caller has
    just built and nobody else holds."""
    for name, value in properties.items():
        setattr(chart, name, value)
    return chart


def lean(obj: Any) -> Any:
    """``obj`` with the unset properties of its marks and encodings dropped, in place.

    Altair's mark and channel methods store every property they accept, mostly unset, and
    layering a chart deep-copies it several times: a bar chart's few settings come with
    hundreds of unset ones. Unset properties never reach the spec, and a chart read back with
    ``from_dict`` holds none either; the chart objects themselves keep theirs. (A copy
    brings the unset properties back, so this only makes Altair's first copy cheaper.)
    """
    if isinstance(obj, _CHARTS):
        for value in obj._kwds.values():
            lean(value)
    elif isinstance(obj, schemapi.SchemaBase):
        kwds = obj._kwds
        for key in [k for k, v in kwds.items() if v is alt.Undefined and k not in _KEPT]:
            del kwds[key]
        for value in kwds.values():
            lean(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            lean(value)
    elif isinstance(obj, dict):
        for value in obj.values():
            lean(value)
    return obj


def layer(*charts: Any, **kwargs: Any) -> alt.LayerChart:
    """``alt.layer`` of :func:`lean` charts, cheaper to copy while Altair combines them."""
    return alt.layer(*(lean(chart) for chart in charts), **kwargs)
