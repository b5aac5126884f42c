"""Segment format 1 as typed, immutable objects: parsing, validation, JSON out, plain English."""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any, ClassVar, NamedTuple

from heapseg.errors import DefinitionError
from heapseg.timeunits import UNITS

__all__ = [
    "AGGREGATE_FUNCTIONS",
    "COUNT_OPERATORS",
    "MAX_DEPTH",
    "PROPERTY_OPERATORS",
    "UNITS",
    "Aggregate",
    "Comparison",
    "Duration",
    "EventRule",
    "FunnelRule",
    "FunnelStep",
    "Group",
    "LastWindow",
    "PropertyRule",
    "RangeWindow",
    "Segment",
    "SegmentRule",
    "StaticMembers",
    "Then",
    "check_references",
    "parse_contains_pattern",
    "references_problem",
]

COUNT_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "between")
AGGREGATE_FUNCTIONS = ("sum", "avg", "min", "max", "count_distinct")
SCALAR_OPERATORS = ("=", "!=")
LIST_OPERATORS = ("in", "not in")
ORDER_OPERATORS = ("<", "<=", ">", ">=")
RANGE_OPERATORS = ("between", "not between")
TEXT_OPERATORS = ("contains", "not contains", "begins with", "ends with")
SET_OPERATORS = ("is set", "is not set")
RELATIVE_OPERATORS = ("in last", "more than ago")
PROPERTY_OPERATORS = (
    SCALAR_OPERATORS
    + LIST_OPERATORS
    + ORDER_OPERATORS
    + RANGE_OPERATORS
    + TEXT_OPERATORS
    + SET_OPERATORS
    + RELATIVE_OPERATORS
)
COMPARISONS = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# A negative operator selects exactly the complement of its positive twin (unset values included).
NEGATED_TWIN = {
    "!=": "=",
    "not in": "in",
    "not between": "between",
    "not contains": "contains",
    "is not set": "is set",
}
# Limits on a definition's size. No analyst comes near them; beyond them the SQL tools recurse
# past Python's stack (sqlglot fails near 65 levels of negated groups) or DuckDB plans for
# minutes (150 event rules), so a crafted or generated definition is refused with its path.
#: Groups nested below the definition's own group (a ``where`` counts as a level); counted
#: through segment references too when a definition is compiled.
MAX_DEPTH = 32
#: Rules and groups in one definition, those of ``where`` groups included.
MAX_RULES = 1000
#: Event rules in one definition: each one is a subquery of the segment's query.
MAX_EVENT_RULES = 100
#: Alternatives (``|``) and parts (``+``) of one ``contains`` pattern, all alternatives together.
MAX_PATTERN_PARTS = 1000
#: The longest ``then.within`` in each unit: a century, an interval every engine can hold.
MAX_WITHIN = {"hour": 876_600, "day": 36_525, "week": 5_218, "month": 1_200}
#: Whole numbers in a definition fit in 64 bits, as the engines' integers do.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_EARLIEST, _LATEST = "0001-01-01", "9999-12-31"

Scalar = str | int | float | bool


def _err(path: str, message: str) -> DefinitionError:
    return DefinitionError(message, path)


def _brief(value: Any) -> str:
    """``repr(value)`` short enough for a message (and for an integer of thousands of digits)."""
    try:
        text = repr(value)
    except ValueError:  # Python refuses to print integers of more than 4300 digits
        return f"<an integer of {value.bit_length()} bits>" if isinstance(value, int) else "<?>"
    return text if len(text) <= 80 else f"{text[:60]}...{text[-12:]} ({len(text)} characters)"


def _check_text(text: str, path: str) -> None:
    """Refuse text that no database takes: a NUL ends SQL strings, a lone surrogate is no UTF-8."""
    if text.isascii() and "\x00" not in text:  # the common case, checked at C speed
        return
    if "\x00" in text:
        raise _err(path, "contains a NUL character (\\x00), which databases do not accept in text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _err(
            path, "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode text"
        ) from None


def _check_int64(value: Any, path: str) -> None:
    """Whole numbers must fit in 64 bits: larger ones overflow every engine's integer type."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not (INT64_MIN <= value <= INT64_MAX)
    ):
        raise _err(
            path,
            f"{_brief(value)} does not fit in a 64-bit integer "
            f"(whole numbers lie between {INT64_MIN} and {INT64_MAX})",
        )


def _items(value: Any, path: str) -> list[tuple[Any, str]]:
    """A rule's value with its path, or the items of a list value with theirs."""
    if isinstance(value, list):
        return [(item, _join(path, i)) for i, item in enumerate(value)]
    return [(value, path)]


def _check_value(value: Any, path: str) -> None:
    """What every string and number of a rule's value must satisfy, whatever its operator."""
    if isinstance(value, str):
        _check_text(value, path)
    _check_int64(value, path)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _check_keys(data: Mapping, allowed: Iterable[str], path: str, what: str) -> None:
    if isinstance(allowed, (set, frozenset)) and data.keys() <= allowed:
        return
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _err(
            path,
            f"unknown key {_brief(unknown[0])} in {what}; valid keys: {', '.join(sorted(allowed))}",
        )


def _require_mapping(data: Any, path: str, what: str) -> Mapping:
    if type(data) is dict:  # what JSON gives: no abstract-class check needed
        return data
    if not isinstance(data, Mapping):
        raise _err(path, f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def _require_str(data: Mapping, key: str, path: str) -> str:
    if key not in data:
        raise _err(path, f"missing required key {_brief(key)}")
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise _err(_join(path, key), f"must be a non-empty string, got {_brief(value)}")
    _check_text(value, _join(path, key))
    return value


def _optional_bool(data: Mapping, key: str, default: bool, path: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _err(_join(path, key), f"must be true or false, got {_brief(value)}")
    return value


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def parse_iso_timestamp(text: str, path: str, *, clamp: bool = False) -> datetime:
    """An ISO-8601 date or timestamp as a naive UTC datetime (zone offsets are converted).

    An instant before 0001-01-01 or after 9999-12-31 UTC (``0001-01-01T00:00+14:00``) cannot be
    represented: it is an error, or with ``clamp`` (window bounds, where it means "no bound")
    ``datetime.min`` / ``datetime.max``.
    """
    if not isinstance(text, str):
        raise _err(path, f"must be an ISO-8601 date or timestamp string, got {_brief(text)}")
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _err(path, f"{_brief(text)} is not an ISO-8601 date or timestamp") from None
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:
        if clamp:
            return datetime.min if value.year == 1 else datetime.max
        raise _err(
            path,
            f"{_brief(text)} lies outside the timestamps heapseg can represent "
            f"({_EARLIEST} to {_LATEST} UTC)",
        ) from None


# ---------------------------------------------------------------------------- contains patterns


def parse_contains_pattern(pattern: str, path: str = "") -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Split a ``contains`` pattern into alternatives of parts of literal pieces.

    ``|`` separates alternatives, ``+`` joins parts that must all be contained, ``*`` inside a part
    matches any run of characters; ``\\|``, ``\\+``, ``\\*`` and ``\\\\`` stand for the characters.
    The result is ``alternatives -> parts -> pieces`` (pieces of a part are separated by ``*``).
    A pattern has at most :data:`MAX_PATTERN_PARTS` parts, all alternatives together.

    >>> parse_contains_pattern("gmail.com|a*b+c")
    ((('gmail.com',),), (('a', 'b'), ('c',)))
    """
    if not isinstance(pattern, str):
        raise _err(path, f"a contains pattern must be a string, got {_brief(pattern)}")
    if pattern and not any(ch in pattern for ch in "|+*\\"):  # most patterns: one literal
        return (((pattern,),),)
    alternatives: list[tuple[tuple[str, ...], ...]] = []
    parts: list[tuple[str, ...]] = []
    pieces: list[str] = []
    buf: list[str] = []
    i = 0
    total = 0  # parts so far, all alternatives together

    def end_part() -> None:
        nonlocal total
        pieces.append("".join(buf))
        buf.clear()
        parts.append(tuple(pieces))
        pieces.clear()
        total += 1
        if total > MAX_PATTERN_PARTS:
            raise _err(
                path,
                f"the pattern has more than {MAX_PATTERN_PARTS} alternatives and parts "
                "(heapseg.model.MAX_PATTERN_PARTS); test long lists of exact values with 'in'",
            )

    def end_alternative() -> None:
        end_part()
        if all(not "".join(p) for p in parts):
            raise _err(path, f"pattern {_brief(pattern)} has an empty alternative")
        alternatives.append(tuple(parts))
        parts.clear()

    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "|+*\\":
            buf.append(pattern[i + 1])
            i += 2
            continue
        if ch == "|":
            end_alternative()
        elif ch == "+":
            end_part()
        elif ch == "*":
            pieces.append("".join(buf))
            buf.clear()
        else:
            buf.append(ch)
        i += 1
    end_alternative()
    return tuple(alternatives)


# ---------------------------------------------------------------------------- conditions


class Condition:
    """What rules and groups share: combination with ``&``, ``|`` and ``~``."""

    def __and__(self, other: Condition) -> Group:
        return _combine("and", self, other)

    def __or__(self, other: Condition) -> Group:
        return _combine("or", self, other)

    def __invert__(self) -> Condition:
        return Group("and", (self,), negate=True)

    def _model(self) -> Condition:
        """The plain model object (fluent builders hand over their rule)."""
        return self

    def describe(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_dict(self) -> dict:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_json(self, **kwargs: Any) -> str:
        """The definition as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    def _repr_html_(self) -> str:
        from html import escape

        return f"<div class='heapseg-segment'><b>Segment</b>: {escape(self.describe())}</div>"


def _combine(combinator: str, left: Condition, right: Condition) -> Group:
    if not isinstance(right, Condition):
        return NotImplemented  # type: ignore[return-value]
    items: list[Condition] = []
    for side in (left._model(), right._model()):
        if isinstance(side, Group) and side.combinator == combinator and not side.negate:
            items.extend(side.rules)
        else:
            items.append(side)
    return Group(combinator, tuple(items))


@dataclass(frozen=True)
class PropertyRule(Condition):
    """A condition on a user, account or event property (``kind`` says which)."""

    kind: str
    field: str
    operator: str
    value: Any = None
    unit: str | None = None

    KINDS: ClassVar[tuple[str, ...]] = ("user", "account", "event_property")

    def __invert__(self) -> Condition:
        for negative, positive in NEGATED_TWIN.items():
            if self.operator == positive:
                return replace(self, operator=negative)
            if self.operator == negative:
                return replace(self, operator=positive)
        return super().__invert__()

    @property
    def values(self) -> tuple:
        """The value as a tuple (lists) or a 1-tuple (scalars)."""
        return self.value if isinstance(self.value, tuple) else (self.value,)

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "") -> PropertyRule:
        kind = data.get("kind")
        allowed = {"kind", "field", "operator", "value", "unit"}
        _check_keys(data, allowed, path, f"a {kind} rule")
        fld = _require_str(data, "field", path)
        operator = data.get("operator")
        if operator not in PROPERTY_OPERATORS:
            raise _err(
                _join(path, "operator"),
                f"unknown operator {_brief(operator)}; valid: {', '.join(PROPERTY_OPERATORS)}",
            )
        value = data.get("value")
        unit = data.get("unit")
        vpath = _join(path, "value")
        for item, item_path in _items(value, vpath):
            _check_value(item, item_path)
        if operator in SCALAR_OPERATORS:
            if not _is_scalar(value):
                raise _err(
                    vpath,
                    f"{_brief(operator)} needs one string, number or boolean, got {_brief(value)}",
                )
        elif operator in LIST_OPERATORS:
            if not isinstance(value, list) or not value:
                raise _err(
                    vpath,
                    f"{_brief(operator)} needs a non-empty list of values, got {_brief(value)}",
                )
            for i, item in enumerate(value):
                if not _is_scalar(item):
                    raise _err(
                        _join(vpath, i), f"must be a string, number or boolean, got {_brief(item)}"
                    )
        elif operator in ORDER_OPERATORS:
            if not (_is_number(value) or isinstance(value, str)):
                raise _err(
                    vpath,
                    f"{_brief(operator)} needs a number or an ISO date/timestamp, got {_brief(value)}",
                )
        elif operator in RANGE_OPERATORS:
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(_is_number(v) or isinstance(v, str) for v in value)
            ):
                raise _err(vpath, f"{_brief(operator)} needs [low, high], got {_brief(value)}")
        elif operator in TEXT_OPERATORS:
            if not isinstance(value, str) or value == "":
                raise _err(
                    vpath, f"{_brief(operator)} needs a non-empty string, got {_brief(value)}"
                )
            if operator in ("contains", "not contains"):
                parse_contains_pattern(value, vpath)
        elif operator in SET_OPERATORS:
            if value is not None:
                raise _err(vpath, f"{_brief(operator)} takes no value, got {_brief(value)}")
        elif operator in RELATIVE_OPERATORS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _err(
                    vpath, f"{_brief(operator)} needs a whole number >= 0, got {_brief(value)}"
                )
            if unit not in UNITS:
                raise _err(_join(path, "unit"), f"{_brief(operator)} needs a unit, one of {UNITS}")
        if unit is not None and operator not in RELATIVE_OPERATORS:
            raise _err(_join(path, "unit"), "'unit' only goes with 'in last' / 'more than ago'")
        return cls(str(kind), fld, operator, _freeze(value), unit)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": self.kind, "field": self.field, "operator": self.operator}
        if self.operator not in SET_OPERATORS:
            out["value"] = _thaw(self.value)
        if self.unit is not None:
            out["unit"] = self.unit
        return out

    def describe(self) -> str:
        prefix = "account " if self.kind == "account" else ""
        name = f"{prefix}{self.field}"
        op = self.operator
        if op in SET_OPERATORS:
            return f"{name} {op}"
        if op in LIST_OPERATORS:
            return f"{name} {op} ({', '.join(_show(v) for v in self.value)})"
        if op in RANGE_OPERATORS:
            low, high = self.value
            return f"{name} {op} {_show(low)} and {_show(high)}"
        if op == "in last":
            return f"{name} in the last {_amount(self.value, self.unit)}"
        if op == "more than ago":
            return f"{name} more than {_amount(self.value, self.unit)} ago"
        return f"{name} {op} {_show(self.value)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _amount(n: int, unit: str | None) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


@dataclass(frozen=True)
class Comparison:
    """A number compared with an operator: ``count`` of an event rule, or ``aggregate``'s test."""

    operator: str
    value: Any
    unit: str | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str, *, allow_unit: bool) -> Comparison:
        data = _require_mapping(data, path, "a count")
        _check_keys(
            data,
            {"operator", "value", "unit"} if allow_unit else {"operator", "value"},
            path,
            "a count",
        )
        operator = data.get("operator")
        if operator not in COUNT_OPERATORS:
            raise _err(
                _join(path, "operator"),
                f"unknown operator {_brief(operator)}; valid: {', '.join(COUNT_OPERATORS)}",
            )
        value = _comparison_value(data.get("value"), operator, _join(path, "value"), allow_unit)
        unit = data.get("unit")
        if unit is not None and unit not in UNITS:
            raise _err(
                _join(path, "unit"), f"unknown unit {_brief(unit)}; valid: {', '.join(UNITS)}"
            )
        return cls(operator, value, unit)

    def test(self, value: Any) -> Any:
        """The comparison applied to ``value``: a Python number or an ibis numeric expression."""
        if self.operator == "between":
            low, high = self.value
            return (value >= low) & (value <= high)
        return COMPARISONS[self.operator](value, self.value)

    def holds(self, number: float) -> bool:
        """Whether ``number`` satisfies the comparison (used to decide if a count of 0 takes part)."""
        return bool(self.test(number))

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"operator": self.operator, "value": _thaw(self.value)}
        if self.unit is not None:
            out["unit"] = self.unit
        return out

    def phrase(self, noun: str) -> str:
        """``more than 5 times`` / ``between 2 and 4 times``."""
        op, v = self.operator, self.value
        if op == "between":
            return f"between {_show(v[0])} and {_show(v[1])} {noun}s"
        words = {
            "=": "exactly",
            "!=": "not exactly",
            "<": "fewer than",
            "<=": "at most",
            ">": "more than",
            ">=": "at least",
        }[op]
        plural = noun if v == 1 and op in ("=", "!=", "<=", ">=") else f"{noun}s"
        return f"{words} {_show(v)} {plural}"


def _comparison_value(value: Any, operator: str, path: str, whole: bool) -> Any:
    def check(v: Any, p: str) -> None:
        _check_int64(v, p)
        if not _is_number(v):
            raise _err(p, f"must be a number, got {_brief(v)}")
        if whole and (not isinstance(v, int) or v < 0):
            raise _err(p, f"a count must be a whole number >= 0, got {_brief(v)}")

    if operator == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _err(path, f"'between' needs [low, high], got {_brief(value)}")
        check(value[0], _join(path, 0))
        check(value[1], _join(path, 1))
        return tuple(value)
    check(value, path)
    return value


@dataclass(frozen=True)
class Aggregate:
    """``fn`` of an event property over the matching events, compared with a number."""

    fn: str
    field: str
    comparison: Comparison

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Aggregate:
        data = _require_mapping(data, path, "an aggregate")
        _check_keys(data, {"fn", "field", "operator", "value"}, path, "an aggregate")
        fn = data.get("fn")
        if fn not in AGGREGATE_FUNCTIONS:
            raise _err(
                _join(path, "fn"),
                f"unknown function {_brief(fn)}; valid: {', '.join(AGGREGATE_FUNCTIONS)}",
            )
        fld = _require_str(data, "field", path)
        comparison = Comparison.from_dict(
            {"operator": data.get("operator"), "value": data.get("value")}, path, allow_unit=False
        )
        return cls(fn, fld, comparison)

    def to_dict(self) -> dict:
        return {"fn": self.fn, "field": self.field, **self.comparison.to_dict()}

    def describe(self) -> str:
        op, v = self.comparison.operator, self.comparison.value
        shown = (
            f"between {_show(v[0])} and {_show(v[1])}" if op == "between" else f"{op} {_show(v)}"
        )
        return f"{self.fn.replace('_', ' ')} of {self.field} {shown}"


@dataclass(frozen=True)
class Duration:
    """An amount of time: ``{"value": 1, "unit": "day"}``, at most a century (:data:`MAX_WITHIN`)."""

    value: int
    unit: str

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Duration:
        data = _require_mapping(data, path, "a duration")
        _check_keys(data, {"value", "unit"}, path, "a duration")
        value = data.get("value")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _err(_join(path, "value"), f"must be a whole number >= 0, got {_brief(value)}")
        unit = data.get("unit")
        if unit not in UNITS:
            raise _err(
                _join(path, "unit"), f"unknown unit {_brief(unit)}; valid: {', '.join(UNITS)}"
            )
        if value > MAX_WITHIN[unit]:
            # Longer intervals overflow the engines' interval types, and mean "any time later".
            raise _err(
                _join(path, "value"),
                f"{_brief(value)} {unit}s is more than 100 years (at most {MAX_WITHIN[unit]}); "
                "leave 'within' out for any time later",
            )
        return cls(value, unit)

    def to_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class LastWindow:
    """``as_of - (last+offset)·unit < time <= as_of - offset·unit``."""

    last: int
    unit: str
    offset: int = 0
    _given_offset: bool = field(default=False, compare=False, repr=False)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"last": self.last, "unit": self.unit}
        if self.offset or self._given_offset:
            out["offset"] = self.offset
        return out

    def describe(self) -> str:
        if not self.offset:
            return f"in the last {_amount(self.last, self.unit)}"
        # As an analyst says it: the last 2 weeks ending 1 week ago are 1 to 3 weeks ago.
        return f"between {self.offset} and {self.offset + self.last} {self.unit}s ago"


@dataclass(frozen=True)
class RangeWindow:
    """``start <= time < end``, either bound optional, always cut at ``as_of``."""

    start: str | None = None
    end: str | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The bounds as naive UTC datetimes (``datetime.min``/``max`` beyond the representable)."""
        return (
            parse_iso_timestamp(self.start, "window.from", clamp=True) if self.start else None,
            parse_iso_timestamp(self.end, "window.to", clamp=True) if self.end else None,
        )

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.start is not None:
            out["from"] = self.start
        if self.end is not None:
            out["to"] = self.end
        return out

    def describe(self) -> str:
        if self.start and self.end:
            return f"from {self.start} to before {self.end}"
        if self.start:
            return f"since {self.start}"
        return f"before {self.end}"


Window = LastWindow | RangeWindow


def _parse_window(data: Any, path: str) -> Window:
    data = _require_mapping(data, path, "a window")
    if "last" in data:
        _check_keys(data, {"last", "unit", "offset"}, path, "a window")
        last = data["last"]
        _check_int64(last, _join(path, "last"))
        if not isinstance(last, int) or isinstance(last, bool) or last <= 0:
            raise _err(_join(path, "last"), f"must be a whole number > 0, got {_brief(last)}")
        unit = data.get("unit")
        if unit not in UNITS:
            raise _err(
                _join(path, "unit"), f"unknown unit {_brief(unit)}; valid: {', '.join(UNITS)}"
            )
        offset = data.get("offset", 0)
        _check_int64(offset, _join(path, "offset"))
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _err(_join(path, "offset"), f"must be a whole number >= 0, got {_brief(offset)}")
        return LastWindow(last, unit, offset, _given_offset="offset" in data)
    if "from" in data or "to" in data:
        _check_keys(data, {"from", "to"}, path, "a window")
        start, end = data.get("from"), data.get("to")
        # A bound beyond year 1 or 9999 in UTC means no bound: no data lies out there.
        lo = (
            parse_iso_timestamp(start, _join(path, "from"), clamp=True)
            if start is not None
            else None
        )
        hi = parse_iso_timestamp(end, _join(path, "to"), clamp=True) if end is not None else None
        if lo is not None and hi is not None and lo >= hi:
            raise _err(path, f"'from' ({start}) must be before 'to' ({end})")
        return RangeWindow(start, end)
    raise _err(path, "a window needs either 'last' and 'unit', or 'from' and/or 'to'")


@dataclass(frozen=True)
class Then:
    """The second step of a sequence: an event strictly later than the first, within a limit."""

    event: str
    within: Duration | None = None
    where: Group | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str, depth: int) -> Then:
        data = _require_mapping(data, path, "'then'")
        _check_keys(data, {"event", "within", "where"}, path, "'then'")
        event = _require_str(data, "event", path)
        within = (
            Duration.from_dict(data["within"], _join(path, "within"))
            if data.get("within") is not None
            else None
        )
        where = (
            Group.from_dict(data["where"], _join(path, "where"), depth + 1, event_properties=True)
            if data.get("where") is not None
            else None
        )
        return cls(event, within, where)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"event": self.event}
        if self.within is not None:
            out["within"] = self.within.to_dict()
        if self.where is not None:
            out["where"] = self.where.to_dict()
        return out


@dataclass(frozen=True)
class EventRule(Condition):
    """What the user did: an event, counted or aggregated over a window, filtered by ``where``."""

    event: str
    did: bool = True
    count: Comparison | None = None
    aggregate: Aggregate | None = None
    window: Window | None = None
    where: Group | None = None
    first_time: bool = False
    then: Then | None = None
    _given_first_time: bool = field(default=False, compare=False, repr=False)
    _given_did: bool = field(default=True, compare=False, repr=False)

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"kind", "event", "did", "count", "aggregate", "window", "where", "first_time", "then"}
    )

    def __post_init__(self) -> None:
        if not self.did and (self.count or self.aggregate or self.first_time):
            raise DefinitionError(
                "'count', 'aggregate' and 'first_time' are not allowed with did: false"
            )
        if self.then and (self.count or self.aggregate):
            raise DefinitionError("'count' and 'aggregate' are not allowed with 'then'")
        if self.then and self.first_time:
            raise DefinitionError("'first_time' cannot be combined with 'then'")

    def __invert__(self) -> Condition:
        if self.count is None and self.aggregate is None and not self.first_time:
            return replace(self, did=not self.did)
        return super().__invert__()

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "", depth: int = 0) -> EventRule:
        _check_keys(data, cls.KEYS, path, "an event rule")
        event = _require_str(data, "event", path)
        did = _optional_bool(data, "did", True, path)
        first_time = _optional_bool(data, "first_time", False, path)
        count = (
            Comparison.from_dict(data["count"], _join(path, "count"), allow_unit=True)
            if data.get("count") is not None
            else None
        )
        aggregate = (
            Aggregate.from_dict(data["aggregate"], _join(path, "aggregate"))
            if data.get("aggregate") is not None
            else None
        )
        window = (
            _parse_window(data["window"], _join(path, "window"))
            if data.get("window") is not None
            else None
        )
        where = (
            Group.from_dict(data["where"], _join(path, "where"), depth + 1, event_properties=True)
            if data.get("where") is not None
            else None
        )
        then = (
            Then.from_dict(data["then"], _join(path, "then"), depth + 1)
            if data.get("then") is not None
            else None
        )
        try:
            return cls(
                event,
                did,
                count,
                aggregate,
                window,
                where,
                first_time,
                then,
                _given_first_time="first_time" in data,
                _given_did="did" in data,
            )
        except DefinitionError as exc:
            raise _err(path, exc.reason) from None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": "event", "event": self.event}
        if not self.did or self._given_did:
            out["did"] = self.did
        if self.count is not None:
            out["count"] = self.count.to_dict()
        if self.aggregate is not None:
            out["aggregate"] = self.aggregate.to_dict()
        if self.window is not None:
            out["window"] = self.window.to_dict()
        if self.where is not None:
            out["where"] = self.where.to_dict()
        if self.first_time or self._given_first_time:
            out["first_time"] = self.first_time
        if self.then is not None:
            out["then"] = self.then.to_dict()
        return out

    def describe(self) -> str:
        text = f"did {self.event}" if self.did else f"did not do {self.event}"
        if self.first_time:
            text += " for the first time"
        if self.where is not None and self.where.rules:
            text += f" where {self.where.describe(top=False)}"
        if self.then is not None:
            text += f" followed by {self.then.event}"
            if self.then.where is not None and self.then.where.rules:
                text += f" where {self.then.where.describe(top=False)}"
            if self.then.within is not None:
                text += f" within {_amount(self.then.within.value, self.then.within.unit)}"
        if self.count is not None:
            noun = f"different {self.count.unit}" if self.count.unit else "time"
            text += f" {'on ' if self.count.unit else ''}{self.count.phrase(noun)}"
        if self.aggregate is not None:
            text += f" with {self.aggregate.describe()}"
        if self.window is not None:
            text += f" {self.window.describe()}"
        return text


@dataclass(frozen=True)
class FunnelStep:
    """One step of a funnel: an event name and, optionally, a ``where`` on its properties."""

    event: str
    where: Group | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str, depth: int) -> FunnelStep:
        data = _require_mapping(data, path, "a funnel step")
        _check_keys(data, {"event", "where"}, path, "a funnel step")
        event = _require_str(data, "event", path)
        where = (
            Group.from_dict(data["where"], _join(path, "where"), depth + 1, event_properties=True)
            if data.get("where") is not None
            else None
        )
        return cls(event, where)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"event": self.event}
        if self.where is not None:
            out["where"] = self.where.to_dict()
        return out

    def describe(self) -> str:
        if self.where is None or not self.where.rules:
            return self.event
        return f"{self.event} (where {self.where.describe(top=False)})"


@dataclass(frozen=True)
class FunnelRule(Condition):
    """How far the user got through ordered steps: the rule behind a funnel chart's bars.

    The user enters at her first step-1 event inside ``window`` (and not after ``as_of``);
    step k is reached when events of steps 2..k follow, each strictly later than the one
    before, all at most ``within`` after the entry. ``reached`` (default: the last step)
    selects who reached that step; ``not_reached`` also requires that they did not reach a
    later one ("dropped off after step 2": ``reached=2, not_reached=3``). A funnel of n steps
    counts as n event rules towards :data:`MAX_EVENT_RULES`.

    Examples
    --------
    >>> rule = FunnelRule.from_dict({"kind": "funnel",
    ...     "steps": [{"event": "Session"}, {"event": "Add to Cart"}, {"event": "Completed Order"}],
    ...     "within": {"value": 7, "unit": "day"}, "reached": 2, "not_reached": 3})
    >>> rule.describe()
    'reached step 2 (Add to Cart) but not step 3 (Completed Order) of the funnel Session → Add to Cart → Completed Order within 7 days'
    """

    steps: tuple[FunnelStep, ...]
    within: Duration | None = None
    window: Window | None = None
    #: The step the user reached, from 1; None when built means the last step.
    reached: int = None  # type: ignore[assignment]
    not_reached: int | None = None
    _given_reached: bool = field(default=False, compare=False, repr=False)

    KEYS: ClassVar[frozenset[str]] = frozenset(
        {"kind", "steps", "within", "window", "reached", "not_reached"}
    )

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        for step in steps:
            if not isinstance(step, FunnelStep):
                raise DefinitionError(f"a funnel's steps are FunnelSteps, got {_brief(step)}")
        object.__setattr__(self, "steps", steps)
        n = len(steps)
        if n < 2:
            raise DefinitionError(f"a funnel needs at least two steps, got {n}")
        if self.reached is None:
            object.__setattr__(self, "reached", n)
        problem = _funnel_step_problem(self.reached, 1, n, "reached")
        if problem:
            raise DefinitionError(problem)
        if self.not_reached is not None:
            problem = _funnel_step_problem(self.not_reached, self.reached + 1, n, "not_reached")
            if problem:
                raise DefinitionError(problem)

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "", depth: int = 0) -> FunnelRule:
        _check_keys(data, cls.KEYS, path, "a funnel rule")
        if "steps" not in data:
            raise _err(path, "missing required key 'steps'")
        raw_steps = data["steps"]
        spath = _join(path, "steps")
        if not isinstance(raw_steps, list):
            raise _err(spath, f"must be a list of steps, got {type(raw_steps).__name__}")
        if len(raw_steps) < 2:
            raise _err(spath, f"a funnel needs at least two steps, got {len(raw_steps)}")
        if len(raw_steps) > MAX_EVENT_RULES:
            raise _err(
                spath,
                f"a funnel has at most {MAX_EVENT_RULES} steps, got {len(raw_steps)} (each step "
                "counts as an event rule: heapseg.model.MAX_EVENT_RULES)",
            )
        steps = tuple(
            FunnelStep.from_dict(item, _join(spath, i), depth) for i, item in enumerate(raw_steps)
        )
        n = len(steps)
        reached = data.get("reached", n)
        problem = _funnel_step_problem(reached, 1, n, "reached")
        if problem:
            raise _err(_join(path, "reached"), problem)
        not_reached = data.get("not_reached")
        if not_reached is not None:
            problem = _funnel_step_problem(not_reached, reached + 1, n, "not_reached")
            if problem:
                raise _err(_join(path, "not_reached"), problem)
        within = (
            Duration.from_dict(data["within"], _join(path, "within"))
            if data.get("within") is not None
            else None
        )
        window = (
            _parse_window(data["window"], _join(path, "window"))
            if data.get("window") is not None
            else None
        )
        return cls(steps, within, window, reached, not_reached, _given_reached="reached" in data)

    @property
    def needed(self) -> int:
        """How many steps, from the first, decide the rule: up to ``not_reached`` or ``reached``."""
        return self.not_reached if self.not_reached is not None else self.reached

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": "funnel", "steps": [s.to_dict() for s in self.steps]}
        if self.within is not None:
            out["within"] = self.within.to_dict()
        if self.window is not None:
            out["window"] = self.window.to_dict()
        if self.reached != len(self.steps) or self._given_reached:
            out["reached"] = self.reached
        if self.not_reached is not None:
            out["not_reached"] = self.not_reached
        return out

    def describe(self) -> str:
        k, m = self.reached, self.not_reached
        funnel = "the funnel " + " → ".join(step.describe() for step in self.steps)
        if self.within is not None:
            funnel += f" within {_amount(self.within.value, self.within.unit)}"
        missed = f"step {m} ({self.steps[m - 1].event})" if m is not None else ""
        if k == len(self.steps):
            text = f"completed {funnel}"
        elif k == 1:
            text = f"entered {funnel}" + (f" but did not reach {missed}" if missed else "")
        else:
            text = f"reached step {k} ({self.steps[k - 1].event})"
            text += f" but not {missed} of {funnel}" if missed else f" of {funnel}"
        if self.window is not None:
            text += f", entering {self.window.describe()}"
        return text


def _funnel_step_problem(value: Any, low: int, high: int, key: str) -> str:
    """What is wrong with a funnel's ``reached`` / ``not_reached`` step number ("": nothing)."""
    if key == "reached":
        what = f"'reached' must be a step of the funnel, a whole number from {low} to {high}"
    elif low > high:
        return f"'not_reached' must be a step after 'reached' ({low - 1}), the funnel's last step"
    else:
        what = (
            f"'not_reached' must be a step after 'reached' ({low - 1}), "
            f"a whole number from {low} to {high}"
        )
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        return f"{what}, got {_brief(value)}"
    return ""


@dataclass(frozen=True)
class SegmentRule(Condition):
    """Membership of another saved segment, resolved through the catalog."""

    id: str
    member: bool = True
    _given_in: bool = field(default=False, compare=False, repr=False)

    def __invert__(self) -> Condition:
        return SegmentRule(self.id, not self.member, _given_in=True)

    @classmethod
    def from_dict(cls, data: Mapping, path: str = "") -> SegmentRule:
        _check_keys(data, {"kind", "id", "in"}, path, "a segment rule")
        return cls(
            _require_str(data, "id", path),
            _optional_bool(data, "in", True, path),
            _given_in="in" in data,
        )

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": "segment", "id": self.id}
        if not self.member or self._given_in:
            out["in"] = self.member
        return out

    def describe(self) -> str:
        return f"{'in' if self.member else 'not in'} segment {self.id}"


Rule = PropertyRule | EventRule | FunnelRule | SegmentRule


@dataclass(frozen=True)
class Group(Condition):
    """Rules and nested groups combined with ``and`` / ``or``; ``negate`` is format 1's ``not``.

    A segment's definition is one group; an empty group selects every user. Groups are
    refused (:class:`DefinitionError`) beyond the limits no analyst comes near, whether parsed
    or built with ``&``, ``|`` and ``~``: :data:`MAX_DEPTH` levels of nesting, :data:`MAX_RULES`
    rules and groups, :data:`MAX_EVENT_RULES` event rules; compiling applies them again with
    segment references followed (:func:`references_problem`).

    Examples
    --------
    >>> seg = Group.from_dict({"combinator": "and", "rules": [
    ...     {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}]})
    >>> seg.describe()
    'subscription_type = paid'
    """

    combinator: str = "and"
    rules: tuple[Condition, ...] = ()
    negate: bool = False
    _given_not: bool = field(default=False, compare=False, repr=False)
    #: Nesting and size, from the items' own (kept, so that building is linear, not quadratic).
    _shape: _Shape = field(default=None, init=False, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.combinator not in ("and", "or"):
            raise DefinitionError(
                f"combinator must be 'and' or 'or', got {_brief(self.combinator)}"
            )
        for item in self.rules:
            if not isinstance(item, Condition):
                raise DefinitionError(f"a group holds rules and groups, got {_brief(item)}")
        object.__setattr__(self, "rules", tuple(item._model() for item in self.rules))
        shape = _group_shape(self.rules)
        problem = _limit_problem(shape)
        if problem:
            raise DefinitionError(problem)
        object.__setattr__(self, "_shape", shape)

    @property
    def nesting(self) -> int:
        """Levels of groups below this one (a ``where`` counts as a level); at most MAX_DEPTH."""
        return self._shape.height - 1

    def __invert__(self) -> Group:
        return Group(self.combinator, self.rules, not self.negate)

    @classmethod
    def from_dict(
        cls,
        data: Any,
        path: str = "",
        depth: int = 0,
        *,
        event_properties: bool = False,
    ) -> Group:
        """Parse and validate a format-1 group (a dict, or a JSON string).

        Raises
        ------
        DefinitionError
            With ``.path`` naming the offending part, e.g. ``rules[1].count.operator``.
        """
        if isinstance(data, (str, bytes)):
            data = _loads(data)
        if depth > MAX_DEPTH:
            raise _err(path, f"groups are nested more than {MAX_DEPTH} levels deep")
        data = _require_mapping(data, path, "a group")
        _check_keys(data, {"combinator", "not", "rules"}, path, "a group")
        combinator = data.get("combinator", "and")
        if combinator not in ("and", "or"):
            raise _err(
                _join(path, "combinator"), f"must be 'and' or 'or', got {_brief(combinator)}"
            )
        negate = _optional_bool(data, "not", False, path)
        raw_rules = data.get("rules", [])
        if not isinstance(raw_rules, list):
            raise _err(_join(path, "rules"), f"must be a list, got {type(raw_rules).__name__}")
        rules: list[Condition] = []
        height = size = event_rules = 0
        rules_path = _join(path, "rules")
        for i, item in enumerate(raw_rules):
            item_path = f"{rules_path}[{i}]"
            rule = _parse_item(item, item_path, depth, event_properties)
            # Checked item by item: the error names the rule that crosses a limit.
            more_height, more, more_events = _shape_of(rule)
            size, event_rules = size + more, event_rules + more_events
            if size > MAX_RULES or event_rules > MAX_EVENT_RULES:
                raise _err(item_path, _limit_problem(_Shape(1, 1 + size, event_rules)))
            height = max(height, more_height)
            rules.append(rule)
        if cls is Group:
            # Everything __post_init__ checks was checked above, item by item, and the group's
            # shape measured on the way: skip the second pass (catalogs parse thousands of
            # definitions at every load).
            shape = _Shape(height + 1, size + 1, event_rules)
            return _checked_group(combinator, tuple(rules), negate, "not" in data, path, shape)
        try:
            return cls(combinator, tuple(rules), negate, _given_not="not" in data)
        except DefinitionError as exc:
            raise _err(path, exc.reason) from None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"combinator": self.combinator}
        if self.negate or self._given_not:
            out["not"] = self.negate
        out["rules"] = [rule.to_dict() for rule in self.rules]
        return out

    def describe(self, top: bool = True) -> str:
        """Plain English: ``subscription_type = trial AND did Session ...``."""
        if not self.rules:
            text = "all users" if top else "anything"
            return f"NOT ({text})" if self.negate else text
        parts = []
        for rule in self.rules:
            piece = rule.describe(top=False) if isinstance(rule, Group) else rule.describe()
            if isinstance(rule, Group) and len(rule.rules) > 1 and not rule.negate:
                piece = f"({piece})"
            parts.append(piece)
        text = f" {self.combinator.upper()} ".join(parts)
        if self.negate:
            return f"NOT ({text})"
        return text

    def walk(self) -> Iterable[Condition]:
        """Every rule and group below this one, depth first (this group included)."""
        stack: list[Condition] = [self]
        while stack:
            item = stack.pop()
            yield item
            if isinstance(item, Group):
                stack.extend(reversed(item.rules))

    def referenced_segments(self) -> list[str]:
        """Ids of the segments this definition refers to (directly)."""
        return [r.id for r in self.walk() if isinstance(r, SegmentRule)]


Segment = Group


class _Shape(NamedTuple):
    """What the size limits look at."""

    height: int  # groups on the longest way down, this one included; a ``where`` is a group
    size: int  # rules and groups, this one included
    event_rules: int


def _checked_group(
    combinator: str,
    rules: tuple[Condition, ...],
    negate: bool,
    given_not: bool,
    path: str,
    shape: _Shape | None = None,
) -> Group:
    """A Group of parsed items that ``Group.from_dict`` has checked (combinator, items),
    built without ``__post_init__`` checking them again; only its limits are checked here
    (``shape``: the items' ``_group_shape``, when the caller measured it)."""
    if shape is None:
        shape = _group_shape(rules)
    problem = _limit_problem(shape)
    if problem:
        raise _err(path, problem)
    group = object.__new__(Group)
    # A frozen dataclass keeps its fields in its __dict__: filled in one step.
    group.__dict__.update(
        combinator=combinator, rules=rules, negate=negate, _given_not=given_not, _shape=shape
    )
    return group


def _add(a: _Shape, b: _Shape) -> _Shape:
    return _Shape(max(a.height, b.height), a.size + b.size, a.event_rules + b.event_rules)


def _shape_of(item: Condition) -> _Shape:
    if isinstance(item, Group):
        return item._shape
    if isinstance(item, EventRule):
        if item.where is None and item.then is None:
            return _EVENT_RULE_SHAPE
        # from_dict counts a then.where one level deeper than a where: so does this.
        wheres = [(item.where, 0), (item.then.where if item.then else None, 1)]
        shape = _Shape(0, 1, 1)
        for where, extra in wheres:
            if where is not None:
                inner = where._shape
                shape = _add(shape, _Shape(inner.height + extra, inner.size, 0))
        return shape
    if isinstance(item, FunnelRule):
        # Each step is a subquery, as an event rule is; its where nests as an event rule's.
        shape = _Shape(0, 1, len(item.steps))
        for step in item.steps:
            if step.where is not None:
                inner = step.where._shape
                shape = _add(shape, _Shape(inner.height, inner.size, 0))
        return shape
    return _Shape(0, 1, 0)


_EVENT_RULE_SHAPE = _Shape(0, 1, 1)


def _group_shape(items: Iterable[Condition]) -> _Shape:
    # Plain integers: every group of every catalog entry is measured as it is built.
    height = size = event_rules = 0
    for item in items:
        if isinstance(item, Group):
            h, s, e = item._shape
        elif isinstance(item, EventRule) and item.where is None and item.then is None:
            h, s, e = 0, 1, 1
        elif isinstance(item, (EventRule, FunnelRule)):
            h, s, e = _shape_of(item)
        else:
            h, s, e = 0, 1, 0
        height = max(height, h)
        size += s
        event_rules += e
    return _Shape(height + 1, size + 1, event_rules)


def _limit_problem(shape: _Shape, through: str = "") -> str:
    """What a definition of this shape exceeds (``""``: nothing)."""
    if shape.height - 1 > MAX_DEPTH:
        return f"groups are nested more than {MAX_DEPTH} levels deep{through}"
    if shape.size - 1 > MAX_RULES:
        return (
            f"the definition has more than {MAX_RULES} rules and groups{through} "
            "(heapseg.model.MAX_RULES)"
        )
    if shape.event_rules > MAX_EVENT_RULES:
        return (
            f"the definition has more than {MAX_EVENT_RULES} event rules{through} "
            "(heapseg.model.MAX_EVENT_RULES)"
        )
    return ""


def _loads(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise DefinitionError(f"the definition is nested too deeply (limit {MAX_DEPTH})") from None
    except ValueError as exc:
        raise DefinitionError(f"the definition is not valid JSON: {exc}") from None


def _parse_item(item: Any, path: str, depth: int, event_properties: bool) -> Condition:
    item = _require_mapping(item, path, "a rule or group")
    if "kind" not in item:
        if "rules" in item or "combinator" in item:
            return Group.from_dict(item, path, depth + 1, event_properties=event_properties)
        raise _err(path, "a rule needs a 'kind' (or 'rules' for a nested group)")
    kind = item["kind"]
    if event_properties:
        if kind != "event_property":
            raise _err(
                _join(path, "kind"),
                f"'where' holds only event_property rules and groups, got {_brief(kind)}",
            )
        return PropertyRule.from_dict(item, path)
    if kind in ("user", "account"):
        return PropertyRule.from_dict(item, path)
    if kind == "event":
        return EventRule.from_dict(item, path, depth)
    if kind == "funnel":
        return FunnelRule.from_dict(item, path, depth)
    if kind == "segment":
        return SegmentRule.from_dict(item, path)
    valid = "user, account, event, funnel, segment"
    raise _err(_join(path, "kind"), f"unknown rule kind {_brief(kind)}; valid: {valid}")


# ---------------------------------------------------------------------------- references and limits

#: What a referenced id stands for when checking limits: its definition, or None (a static
#: segment, an unknown id) for a rule that adds nothing below it.
DefinitionOf = Callable[[str], "Group | None"]


def references_problem(
    segment: Group,
    definition_of: DefinitionOf,
    *,
    nesting: int = 0,
    segment_id: str | None = None,
) -> str:
    """What ``segment`` exceeds with the segments it refers to written in place ("": nothing).

    The limits of one definition (:data:`MAX_DEPTH` levels, :data:`MAX_RULES` rules and groups,
    :data:`MAX_EVENT_RULES` event rules) hold for what compiling it builds, references followed:
    a chain of 300 references nests 300 groups, and each segment referring twice to the next
    doubles the query. ``nesting`` is the number of groups around ``segment`` (a referenced
    segment is checked where it stands). Reference cycles and unknown ids add nothing here:
    they are errors of their own.
    """
    if not nesting and not segment.referenced_segments():
        # Nothing to write in place: the definition's own limits were checked when it was built.
        return ""
    shape, chain = _inlined(segment, definition_of)
    if segment_id is not None:
        chain = (segment_id, *chain)
    through = f" through segment references ({_chain_text(chain)})" if chain else ""
    return _limit_problem(shape._replace(height=shape.height + nesting), through)


def check_references(
    segment: Group,
    definition_of: DefinitionOf,
    *,
    nesting: int = 0,
    segment_id: str | None = None,
    path: str = "",
) -> None:
    """Raise :class:`DefinitionError` (at ``path``) for what :func:`references_problem` finds."""
    problem = references_problem(segment, definition_of, nesting=nesting, segment_id=segment_id)
    if problem:
        raise _err(path, problem)


def _chain_text(chain: tuple[str, ...]) -> str:
    if len(chain) <= 6:
        return " -> ".join(chain)
    return f"{' -> '.join(chain[:3])} -> ... -> {' -> '.join(chain[-2:])}, {len(chain)} segments"


def _inlined(segment: Group, definition_of: DefinitionOf) -> tuple[_Shape, tuple[str, ...]]:
    """The shape of ``segment`` with its references written in place, and the chain of ids down
    to its deepest group. The reference graph is walked without recursion (chains may be long);
    each definition is asked for once."""
    groups: dict[str, Group | None] = {}
    done: dict[str, tuple[_Shape, tuple[str, ...]]] = {}
    active: set[str] = set()
    stack: list[tuple[str, list[str]]] = []

    def enter(sid: str) -> None:
        if sid not in groups:
            groups[sid] = definition_of(sid)
        group = groups[sid]
        active.add(sid)
        stack.append((sid, list(dict.fromkeys(group.referenced_segments())) if group else []))

    for first in dict.fromkeys(segment.referenced_segments()):
        if first not in done:
            enter(first)
        while stack:
            sid, pending = stack[-1]
            while pending and (pending[-1] in done or pending[-1] in active):
                pending.pop()  # known already, or a cycle (reported elsewhere)
            if pending:
                enter(pending.pop())
                continue
            stack.pop()
            active.discard(sid)
            group = groups[sid]
            done[sid] = _with_references(group, done) if group is not None else (_RULE, ())
    return _with_references(segment, done)


_RULE = _Shape(0, 1, 0)


def _with_references(
    item: Condition, done: Mapping[str, tuple[_Shape, tuple[str, ...]]]
) -> tuple[_Shape, tuple[str, ...]]:
    """The shape of ``item`` with the references in ``done`` in place (recursion: groups are
    at most MAX_DEPTH deep)."""
    if isinstance(item, SegmentRule):
        if item.id not in done:
            return _RULE, ()
        shape, chain = done[item.id]
        return shape, (item.id, *chain)
    if not isinstance(item, Group):
        return _shape_of(item), ()
    inside, deepest = _Shape(0, 0, 0), ()
    for child in item.rules:
        shape, chain = _with_references(child, done)
        if shape.height > inside.height:
            deepest = chain
        inside = _add(inside, shape)
    return _Shape(inside.height + 1, inside.size + 1, inside.event_rules), deepest


def as_segment(value: Any) -> Group:
    """Accept a Group, a rule (wrapped into an ``and`` group), a format-1 dict or JSON string."""
    if isinstance(value, Group):
        return value
    if isinstance(value, Condition):
        return Group("and", (value._model(),))
    if isinstance(value, (Mapping, str, bytes)):
        return Group.from_dict(value)
    raise DefinitionError(
        f"expected a segment (heapseg.Segment, a rule, or a format-1 dict), got {type(value).__name__}"
    )


@dataclass(frozen=True)
class StaticMembers:
    """The frozen members of a static segment, as handed over by a resolver."""

    user_ids: Any
    as_of: datetime | date | None = None
