"""The fluent Python way to write a segment: ``user.plan == "paid"``, ``did("Session").times() > 5``.

Every expression builds the same immutable model objects that format-1 JSON parses into, and
combines with ``&`` (and), ``|`` (or) and ``~`` (not).

>>> from heapseg import user, did, did_not
>>> seg = (did("Session").times() > 5) & did_not("Completed Order")
>>> seg.describe()
'did Session more than 5 times AND did not do Completed Order'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from heapseg.errors import DefinitionError
from heapseg.model import (
    Aggregate,
    Comparison,
    Condition,
    Duration,
    EventRule,
    FunnelRule,
    FunnelStep,
    Group,
    LastWindow,
    PropertyRule,
    RangeWindow,
    SegmentRule,
    Then,
    as_segment,
)

__all__ = [
    "Property",
    "account",
    "did",
    "did_not",
    "event_prop",
    "funnel",
    "in_segment",
    "not_in_segment",
    "user",
]


class Property:
    """A property of a user, an account or an event, on which comparisons build rules."""

    __hash__ = None  # type: ignore[assignment]  # == builds a rule, so no hashing

    def __init__(self, kind: str, name: str) -> None:
        self._kind = kind
        self._name = name

    def _rule(self, operator: str, value: Any = None, unit: str | None = None) -> PropertyRule:
        if isinstance(value, (list, tuple, set, frozenset)):
            value = list(value)
        raw: dict[str, Any] = {"kind": self._kind, "field": self._name, "operator": operator}
        if value is not None:
            raw["value"] = value
        if unit is not None:
            raw["unit"] = unit
        return PropertyRule.from_dict(raw, self._name)

    def __eq__(self, value: Any) -> PropertyRule:  # type: ignore[override]
        return self._rule("=", value)

    def __ne__(self, value: Any) -> PropertyRule:  # type: ignore[override]
        return self._rule("!=", value)

    def __lt__(self, value: Any) -> PropertyRule:
        return self._rule("<", value)

    def __le__(self, value: Any) -> PropertyRule:
        return self._rule("<=", value)

    def __gt__(self, value: Any) -> PropertyRule:
        return self._rule(">", value)

    def __ge__(self, value: Any) -> PropertyRule:
        return self._rule(">=", value)

    def isin(self, values: Any) -> PropertyRule:
        """One of ``values``."""
        return self._rule("in", values)

    def not_in(self, values: Any) -> PropertyRule:
        """None of ``values`` (unset values included)."""
        return self._rule("not in", values)

    def between(self, low: Any, high: Any) -> PropertyRule:
        """``low <= value <= high``."""
        return self._rule("between", [low, high])

    def not_between(self, low: Any, high: Any) -> PropertyRule:
        """Outside ``[low, high]`` or unset."""
        return self._rule("not between", [low, high])

    def contains(self, pattern: str) -> PropertyRule:
        """Case-insensitive substring match with the ``| + *`` pattern language."""
        return self._rule("contains", pattern)

    def not_contains(self, pattern: str) -> PropertyRule:
        """The complement of :meth:`contains` (unset values included)."""
        return self._rule("not contains", pattern)

    def begins_with(self, prefix: str) -> PropertyRule:
        """Case-insensitive prefix."""
        return self._rule("begins with", prefix)

    def ends_with(self, suffix: str) -> PropertyRule:
        """Case-insensitive suffix."""
        return self._rule("ends with", suffix)

    def is_set(self) -> PropertyRule:
        """Not NULL (and, for strings, not empty)."""
        return self._rule("is set")

    def is_not_set(self) -> PropertyRule:
        """NULL or empty."""
        return self._rule("is not set")

    def in_last(self, amount: int, unit: str) -> PropertyRule:
        """A date or timestamp within the last ``amount`` ``unit``s before ``as_of``."""
        return self._rule("in last", amount, unit)

    def more_than_ago(self, amount: int, unit: str) -> PropertyRule:
        """A date or timestamp before ``as_of - amount·unit``."""
        return self._rule("more than ago", amount, unit)

    def __repr__(self) -> str:
        return f"<{self._kind} property {self._name!r}>"


class _Properties:
    """``user.country`` or ``user["signup date"]``: a namespace of properties of one kind."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def __getattr__(self, name: str) -> Property:
        if name.startswith("__"):
            raise AttributeError(name)
        return Property(self._kind, name)

    def __getitem__(self, name: str) -> Property:
        return Property(self._kind, name)


user = _Properties("user")
"""User properties, as attributes or items: ``user.country == "US"``, ``user["signup date"]``."""
account = _Properties("account")
"""Account properties (users' ``account_id``): ``account.tier.isin(["gold", "platinum"])``."""
_event_properties = _Properties("event_property")


def event_prop(name: str) -> Property:
    """An event property, for :meth:`EventBuilder.where`: ``event_prop("path").contains("/pricing")``."""
    return Property("event_property", name)


class _Measure:
    """``did(...).times()`` or ``did(...).sum("revenue")``: compare it to finish the rule."""

    def __init__(self, rule: EventRule, make: Any) -> None:
        self._rule = rule
        self._make = make

    def _compare(self, operator: str, value: Any) -> EventBuilder:
        return EventBuilder(self._make(operator, value))

    def __eq__(self, value: Any) -> EventBuilder:  # type: ignore[override]
        return self._compare("=", value)

    def __ne__(self, value: Any) -> EventBuilder:  # type: ignore[override]
        return self._compare("!=", value)

    def __lt__(self, value: Any) -> EventBuilder:
        return self._compare("<", value)

    def __le__(self, value: Any) -> EventBuilder:
        return self._compare("<=", value)

    def __gt__(self, value: Any) -> EventBuilder:
        return self._compare(">", value)

    def __ge__(self, value: Any) -> EventBuilder:
        return self._compare(">=", value)

    def between(self, low: float, high: float) -> EventBuilder:
        """``low <= measure <= high``."""
        return self._compare("between", [low, high])

    __hash__ = None  # type: ignore[assignment]


class EventBuilder(Condition):
    """An event rule under construction; every refinement returns a new builder.

    It stands wherever a rule does (``&``, ``|``, ``~``, ``ds.count``); ``.rule`` is the model.
    """

    def __init__(self, rule: EventRule) -> None:
        self.rule = rule

    def _model(self) -> EventRule:
        return self.rule

    def _with(self, **changes: Any) -> EventBuilder:
        merged = replace(self.rule, **changes)
        # Re-parse so that the combination is validated exactly like JSON input.
        return EventBuilder(EventRule.from_dict(merged.to_dict(), self.rule.event))

    def to_dict(self) -> dict:
        return self.rule.to_dict()

    def describe(self) -> str:
        return self.rule.describe()

    def __invert__(self) -> Condition:
        return ~self.rule

    def __eq__(self, other: object) -> bool:
        return self.rule == (other.rule if isinstance(other, EventBuilder) else other)

    def __hash__(self) -> int:
        return hash(self.rule)

    def __repr__(self) -> str:
        return f"did({self.rule.event!r}) -> {self.rule.describe()!r}"

    def times(self) -> _Measure:
        """The number of matching events: ``did("Session").times() > 5``."""
        return _Measure(
            self.rule,
            lambda op, v: (
                self._with(
                    count=Comparison.from_dict(
                        {"operator": op, "value": v}, "count", allow_unit=True
                    )
                ).rule
            ),
        )

    def distinct(self, unit: str) -> _Measure:
        """Distinct calendar periods with a matching event: ``did("Session").distinct("day") >= 3``."""
        return _Measure(
            self.rule,
            lambda op, v: (
                self._with(
                    count=Comparison.from_dict(
                        {"operator": op, "value": v, "unit": unit}, "count", allow_unit=True
                    )
                ).rule
            ),
        )

    def _aggregate(self, fn: str, field: str) -> _Measure:
        return _Measure(
            self.rule,
            lambda op, v: (
                self._with(
                    aggregate=Aggregate.from_dict(
                        {"fn": fn, "field": field, "operator": op, "value": v}, "aggregate"
                    )
                ).rule
            ),
        )

    def sum(self, field: str) -> _Measure:
        """Sum of an event property over the matching events."""
        return self._aggregate("sum", field)

    def avg(self, field: str) -> _Measure:
        """Average of an event property over the matching events."""
        return self._aggregate("avg", field)

    def min(self, field: str) -> _Measure:
        """Minimum of an event property over the matching events."""
        return self._aggregate("min", field)

    def max(self, field: str) -> _Measure:
        """Maximum of an event property over the matching events."""
        return self._aggregate("max", field)

    def count_distinct(self, field: str) -> _Measure:
        """Number of distinct values of an event property over the matching events."""
        return self._aggregate("count_distinct", field)

    def last(self, amount: int, unit: str, offset: int = 0) -> EventBuilder:
        """Only events in the last ``amount`` ``unit``s (ending ``offset`` units before as_of)."""
        return self._with(window=LastWindow(amount, unit, offset))

    def between_dates(self, start: str | None = None, end: str | None = None) -> EventBuilder:
        """Only events with ``start <= time < end`` (ISO-8601; either bound optional)."""
        return self._with(window=RangeWindow(start, end))

    def where(self, *conditions: Condition) -> EventBuilder:
        """Only events whose properties satisfy all ``conditions`` (built with :func:`event_prop`)."""
        return self._with(where=_where_group(conditions))

    def first_time(self) -> EventBuilder:
        """The user's first ever such event lies in the window ("started doing")."""
        return self._with(first_time=True)

    def then(
        self,
        event: str,
        within: tuple[int, str] | None = None,
        where: Condition | None = None,
    ) -> EventBuilder:
        """A sequence: a matching event followed by ``event`` strictly later, within ``within``."""
        return self._with(
            then=Then(
                event,
                Duration(*within) if within is not None else None,
                _where_group((where,)) if where is not None else None,
            )
        )


def _where_group(conditions: tuple[Condition, ...]) -> Group:
    group = as_segment(conditions[0]) if len(conditions) == 1 else Group("and", tuple(conditions))
    return Group.from_dict(group.to_dict(), "where", event_properties=True)


def did(event: str) -> EventBuilder:
    """Users who did ``event`` (refine with ``.times()``, ``.last()``, ``.where()`` ...)."""
    return EventBuilder(EventRule.from_dict({"kind": "event", "event": event, "did": True}))


def did_not(event: str) -> EventBuilder:
    """Users with no such event (refine with ``.last()`` and ``.where()``)."""
    return EventBuilder(EventRule.from_dict({"kind": "event", "event": event, "did": False}))


def _segment_key(segment: Any) -> Any:
    """A saved segment's id from its catalog entry, or the id or name given as it is."""
    return segment.id if hasattr(segment, "id") and hasattr(segment, "revision") else segment


def in_segment(segment: Any) -> SegmentRule:
    """Members of another saved segment: its id, its name or its catalog entry.

    A name is looked up (ignoring case) by the catalog that resolves the rule (``connect(...,
    resolver=catalog)``); saving the definition in the catalog stores the id, so a later
    rename changes nothing. An unknown or ambiguous name is a short
    :class:`~heapseg.errors.SegmentReferenceError` naming the nearest names.

    Examples
    --------
    >>> import heapseg
    >>> catalog = heapseg.Catalog("team-segments.json")
    >>> _ = catalog.save(heapseg.user.country == "US", "US users")
    >>> ds = heapseg.connect(resolver=catalog)
    >>> ds.count(in_segment("US users") & heapseg.did("Completed Order"))
    1129
    """
    return SegmentRule.from_dict({"kind": "segment", "id": _segment_key(segment)})


def not_in_segment(segment: Any) -> SegmentRule:
    """Users who are not members of another saved segment (its id, name or catalog entry)."""
    return SegmentRule.from_dict({"kind": "segment", "id": _segment_key(segment), "in": False})


def funnel(
    steps: Sequence[Any],
    *,
    within: tuple[int, str] | None = None,
    last: tuple[int, str] | tuple[int, str, int] | None = None,
    between_dates: tuple[str | None, str | None] | None = None,
    reached: int | None = None,
    not_reached: int | None = None,
) -> FunnelRule:
    """Users who got through ordered steps, as a funnel chart counts them.

    The user enters at her first step-1 event in the window (``last`` or ``between_dates``;
    default: any time up to as_of); each later step is an event strictly after the previous
    one, all at most ``within`` after the entry. ``reached`` (default: the last step) picks who
    reached that step; ``not_reached`` also requires that they did not reach a later one.

    Parameters
    ----------
    steps
        Event names, ``(name, condition)`` pairs with a condition on event properties
        (built with :func:`event_prop`, or format-1 JSON), or format-1 steps
        ``{"event": ..., "where": ...}``.
    within
        ``(amount, unit)`` from the entry; omitted: no deadline.
    last, between_dates
        The entry window: ``(amount, unit)`` or ``(amount, unit, offset)``; or ISO-8601
        ``(start, end)`` with ``start <= time < end``, either one None.
    reached, not_reached
        Step numbers from 1.

    Examples
    --------
    >>> from heapseg import funnel
    >>> dropped = funnel(["Session", "Add to Cart", "Completed Order"], within=(7, "day"),
    ...                  last=(30, "day"), reached=2, not_reached=3)
    >>> dropped.to_dict()["reached"], dropped.to_dict()["not_reached"]
    (2, 3)
    """
    if isinstance(steps, (str, Mapping)):
        steps = [steps]
    raw: dict[str, Any] = {"kind": "funnel", "steps": [_funnel_step(step) for step in steps]}
    if within is not None:
        raw["within"] = {"value": within[0], "unit": within[1]}
    if last is not None and between_dates is not None:
        raise DefinitionError("give the entry window as last= or as between_dates=, not both")
    if last is not None:
        raw["window"] = LastWindow(*last).to_dict()
    if between_dates is not None:
        raw["window"] = RangeWindow(*between_dates).to_dict()
    if reached is not None:
        raw["reached"] = reached
    if not_reached is not None:
        raw["not_reached"] = not_reached
    return FunnelRule.from_dict(raw, "funnel")


def _funnel_step(step: Any) -> Any:
    """A format-1 funnel step from what :func:`funnel` takes (other things: for its error)."""
    if isinstance(step, str):
        return {"event": step}
    if isinstance(step, FunnelStep):
        return step.to_dict()
    if isinstance(step, tuple) and len(step) == 2:
        name, where = step
        if isinstance(where, Condition):
            return {"event": name, "where": _where_group((where,)).to_dict()}
        if isinstance(where, Mapping) and "kind" in where:
            return {"event": name, "where": {"combinator": "and", "rules": [where]}}
        return {"event": name, "where": where}
    return step
