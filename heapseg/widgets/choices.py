"""What the widgets offer, read from the data: property names and types, operators, values, events."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import ibis.expr.datatypes as dt

from heapseg.as_of import AsOf
from heapseg.errors import HeapsegError
from heapseg.model import UNITS

__all__ = [
    "AGGREGATE_LABELS",
    "DataChoices",
    "operators_for",
    "value_kind",
]

#: How many distinct values a picker offers; a property with no more than this is "low cardinality"
#: and its pickers offer exactly its values.
VALUE_LIMIT = 50

AGGREGATE_LABELS = {
    "sum": "sum",
    "avg": "average",
    "min": "minimum",
    "max": "maximum",
    "count_distinct": "distinct values",
}
UNIT_LABELS = {unit: f"{unit}s" for unit in UNITS}

_STRING_OPERATORS = (
    "=",
    "!=",
    "in",
    "not in",
    "contains",
    "not contains",
    "begins with",
    "ends with",
    "is set",
    "is not set",
)
_NUMBER_OPERATORS = (
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "between",
    "not between",
    "in",
    "not in",
    "is set",
    "is not set",
)
_BOOLEAN_OPERATORS = ("=", "!=", "is set", "is not set")
_DATE_OPERATORS = (
    "in last",
    "more than ago",
    ">=",
    ">",
    "<=",
    "<",
    "between",
    "not between",
    "=",
    "!=",
    "is set",
    "is not set",
)
_TIMESTAMP_OPERATORS = tuple(op for op in _DATE_OPERATORS if op not in ("=", "!="))


def type_family(dtype: dt.DataType | None) -> str:
    """``string``, ``integer``, ``float``, ``boolean``, ``date``, ``timestamp`` or ``other``."""
    if dtype is None:
        return "other"
    if dtype.is_string():
        return "string"
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "float"
    if dtype.is_date():
        return "date"
    if dtype.is_timestamp():
        return "timestamp"
    return "other"


def operators_for(dtype: dt.DataType | None) -> tuple[str, ...]:
    """The property operators that make sense for a column of this type (most useful first)."""
    return {
        "string": _STRING_OPERATORS,
        "integer": _NUMBER_OPERATORS,
        "float": _NUMBER_OPERATORS,
        "boolean": _BOOLEAN_OPERATORS,
        "date": _DATE_OPERATORS,
        "timestamp": _TIMESTAMP_OPERATORS,
    }.get(type_family(dtype), ("is set", "is not set"))


def value_kind(operator: str) -> str:
    """What shape of value an operator takes: ``none``, ``scalar``, ``list``, ``pair``,
    ``text`` (a pattern or prefix) or ``relative`` (N and a unit)."""
    if operator in ("is set", "is not set"):
        return "none"
    if operator in ("in", "not in"):
        return "list"
    if operator in ("between", "not between"):
        return "pair"
    if operator in ("contains", "not contains", "begins with", "ends with"):
        return "text"
    if operator in ("in last", "more than ago"):
        return "relative"
    return "scalar"


class DataChoices:
    """Names, types and values a dataset offers to pickers, fetched once and cached.

    Schema and event names come from the dataset; distinct values are fetched on first use
    per property (one small aggregate query each). Segment choices come from the catalog.

    Parameters
    ----------
    dataset
        The :class:`heapseg.Dataset` the builder works on.
    catalog
        The :class:`heapseg.catalog.Catalog` whose segments ``segment`` rules may name.
    """

    def __init__(self, dataset: Any, catalog: Any = None, as_of: AsOf = None) -> None:
        self.dataset = dataset
        self.catalog = catalog
        #: Pickers offer the values that user and account properties had at this moment.
        self.as_of = as_of
        self._schema = dataset.schema
        self._events: list[str] | None = None
        self._values: dict[tuple[str, str, Any], list] = {}
        self._lock = threading.Lock()

    @property
    def has_accounts(self) -> bool:
        return self.dataset.accounts is not None

    def properties(self, kind: str) -> dict[str, dt.DataType]:
        """Property names and types of ``user``, ``account`` or ``event_property``."""
        if kind == "account" and not self.has_accounts:
            return {}
        return dict(self._schema.properties(kind))

    def dtype(self, kind: str, field: str) -> dt.DataType | None:
        return self.properties(kind).get(field)

    def numeric_event_properties(self) -> list[str]:
        return [k for k, v in self.properties("event_property").items() if v.is_numeric()]

    def event_names(self) -> list[str]:
        """Event names in the data, most frequent first."""
        with self._lock:
            if self._events is None:
                self._events = list(self.dataset.event_names())
            return list(self._events)

    def values(self, kind: str, field: str) -> tuple[list, bool]:
        """The most common values of a property and whether that is all of them.

        Fetches one more than :data:`VALUE_LIMIT` to tell a low-cardinality property (a list that
        is complete) from one whose values are only suggestions.
        """
        key = (kind, field, self.as_of if kind != "event_property" else None)
        with self._lock:
            cached = self._values.get(key)
        if cached is None:
            try:
                cached = list(
                    self.dataset.distinct_values(
                        kind, field, limit=VALUE_LIMIT + 1, as_of=self.as_of
                    )
                )
            except HeapsegError:
                cached = []
            with self._lock:
                self._values[key] = cached
        return cached[:VALUE_LIMIT], len(cached) <= VALUE_LIMIT

    def segments(self, exclude: str | None = None) -> list[tuple[str, str]]:
        """``(label, id)`` of the catalog's usable segments, for ``segment`` rules."""
        if self.catalog is None:
            return []
        return [(e.name, e.id) for e in self.catalog.list() if e.id != exclude]

    def aggregate_fields(self, fn: str) -> list[str]:
        """Event properties ``fn`` can aggregate (any for ``count_distinct``, numbers otherwise)."""
        if fn == "count_distinct":
            return list(self.properties("event_property"))
        return self.numeric_event_properties()


def with_current(options: Sequence[Any], current: Any) -> list[Any]:
    """``options`` plus ``current`` when it is missing, so a loaded definition is shown as it is."""
    out = list(options)
    pairs = bool(out) and all(isinstance(o, tuple) for o in out)
    values = [o[1] for o in out] if pairs else out
    if current is None or current == "" or current in values:
        return out
    out.append((str(current), current) if pairs else current)
    return out


def set_options(dropdown: Any, options: Sequence[Any], value: Any = None) -> None:
    """Give a Dropdown new options and select ``value`` (added when missing), else the first.

    ipywidgets selects the first option whenever the options change, which would silently
    replace what the analyst (or a loaded definition) chose.
    """
    options = with_current(options, value)
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if list(dropdown.options) != list(options):
        dropdown.options = options
    if value in values:
        dropdown.value = value
    elif values and dropdown.value not in values:
        dropdown.value = values[0]
