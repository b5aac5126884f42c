"""From a chart's mark to a segment: the users behind a bar, point or cell, as a format-1 definition.

Every chart function keeps what it was drawn for on the chart it returns (see
:mod:`heapseg.charts.source`); :func:`mark_segment` reads it back and writes the users of one
mark as a dynamic segment: a definition in segment format 1 that :meth:`Dataset.count
<heapseg.dataset.Dataset.count>` counts, the builder edits and the catalog saves. Evaluated at
the chart's ``as_of``, its count is the number of users the mark shows.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from heapseg.charts.common import REST, ChartError
from heapseg.charts.queries import as_where
from heapseg.charts.segments import ChartSegment
from heapseg.charts.source import ChartSource, source_of
from heapseg.errors import DefinitionError
from heapseg.model import MAX_EVENT_RULES, Condition, Group, PropertyRule
from heapseg.resolver import Resolver
from heapseg.timeunits import shift, step, truncate

__all__ = ["MARK_KEYS", "MarkSegment", "mark_segment", "marks", "segment_of"]

#: The data fields that name one mark of each chart kind (the keywords of :func:`segment_of`).
MARK_KEYS: dict[str, tuple[str, ...]] = {
    "trend": ("segment", "period"),
    "compare": ("segment",),
    "sizes": ("segment",),
    "overlap": ("a", "b"),
    "funnel": ("segment", "step"),
    "retention": ("segment", "period"),
    "size_over_time": ("segment", "at"),
    "breakdown": ("group", "value"),
    "stickiness": ("segment", "days"),
    "paths": ("segment", "step", "event"),
    "lifecycle": ("segment", "period", "status"),
}
#: Keywords that pick a part of a mark: a funnel bar's drop-off, a compare bar's users who did
#: the event.
_OPTIONS: dict[str, tuple[str, ...]] = {"funnel": ("dropped",), "compare": ("did",)}
# Breakdown's labels for unset values and for the values after the top ones (see breakdown.py).
_NOT_SET = "(not set)"
_OTHER = "(other values)"
# A range window's end is exclusive; one microsecond after as_of keeps the events at as_of.
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class MarkSegment:
    """The users behind one mark of a chart, as a segment.

    Attributes
    ----------
    name
        A readable name (``"Paid · 2. Add to Cart"``), e.g. for saving it.
    segment
        The definition (segment format 1): the mark's series, the chart's filter and what the
        mark counts, e.g. a funnel rule or an event rule with an absolute window.
    as_of
        The moment at which the segment holds exactly the mark's users: the chart's ``as_of``,
        or for a size-over-time point the moment of that point.
    shown
        The number of users the mark shows (``None`` when the mark shows something else, e.g.
        events: the segment then holds the users who did them).
    resolver
        How the segment's references to saved segments resolve.
    static
        True when the mark stands for users at a past moment (a size-over-time point): save it
        frozen at ``as_of`` (:meth:`save` does) rather than as a dynamic segment.
    """

    name: str
    segment: Group
    as_of: datetime
    shown: int | None = None
    resolver: Resolver | None = None
    static: bool = False

    def count(self, ds: Any) -> int:
        """The segment's count on ``ds`` at :attr:`as_of`: the number the mark shows."""
        return ds.count(self.segment, as_of=self.as_of, resolver=self.resolver)

    def save(self, catalog: Any, name: str | None = None, *, dataset: Any = None, **fields: Any):
        """Save it in ``catalog``: a dynamic segment, or frozen at :attr:`as_of` when
        :attr:`static` (then ``dataset`` is needed to compute the members)."""
        if self.static:
            return catalog.save(
                self.segment,
                name or self.name,
                static=True,
                dataset=dataset,
                as_of=self.as_of,
                **fields,
            )
        return catalog.save(self.segment, name or self.name, **fields)


def segment_of(chart: Any, **keys: Any) -> Group:
    """The users behind one mark of a heapseg chart, as a segment definition.

    The mark is named by its data fields (the keys of :data:`MARK_KEYS`): ``segment=`` and
    ``period=`` for a trend point, ``segment=`` and ``step=`` for a funnel bar, ``group=`` and
    ``value=`` for a breakdown bar, ``a=`` and ``b=`` for an overlap cell, ``segment=`` for a
    compare or sizes bar, ``segment=`` and ``at=`` for a size-over-time point. Evaluated at the
    chart's ``as_of``, its count is the number of users the mark shows:

    - **breakdown** bar: the chart's segment (or the rest) and the property's value
      (``is not set`` for "(not set)", the bin's bounds for numbers, the month for dates, none
      of the shown values for "(other values)"); for an event property, the users with such
      an event in the chart's window (the bar counts events, the segment their users);
    - **compare** / **sizes** bar: that segment (``did=True``: those who did the compared
      event in the window, the ``did`` of the bar);
    - **overlap** cell: in A and in B;
    - **trend** point: the line's segment (and the chart's filter) and the users who did the
      event (with the chart's ``where``) in that period, as an absolute ``from``/``to`` window
      that ends at ``as_of`` for the period still running; with ``measure="users"`` its count
      is the point's value, otherwise the point counts events (or sums) of these users;
    - **funnel** bar: a ``funnel`` rule, ``reached: step`` (``dropped=True``: reached the
      step but not the next one, the drop-off);
    - **lifecycle** bar: the panel's segment and its status in that period, from event
      rules with absolute windows: active in the period (``now``) or the one before
      (``then``), and new (joined in the period: ``joined_at``, else her first event of any
      name; or, with ``new="first"``, no activity before it): new is ``now`` and new,
      returning ``now``, not new and ``then``, resurrecting ``now``, not new and not ``then``,
      dormant ``then`` and not ``now``;
    - **stickiness** bar: a count of distinct UTC days (``= days``) of the event in the
      chart's days (an event at an as_of that is a midnight counts on the day before, as in
      the chart); refused for any event (``event=None``: a count of days is per event name);
    - **paths** bar: refused: the k-th event after the anchor has no rule in format 1 (a
      ``then`` allows events in between);
    - **size over time** point: the segment itself; its users at that point are those at the
      point's moment (:func:`mark_segment` gives it as ``as_of``, to count or freeze at);
    - **retention** point, ``convention="calendar"``: one branch per start day (ISO week)
      ``d`` whose day ``d + k`` has passed, ORed: the first start event in the cohort window
      falls on ``d`` (a start event that day, none before it in the window) and the return
      event on ``d + k``, as absolute windows; with the default ``"elapsed"`` convention it is
      refused with a :class:`ChartError`: period k counts the users who came back between
      ``t0 + k`` and ``t0 + k + 1`` units after *their own* first start event ``t0``, and
      format 1 measures windows from ``as_of`` or between fixed dates (a ``then`` only bounds
      a follow-up from above), so no definition selects exactly these users.

    Parameters
    ----------
    chart
        A chart as a heapseg chart function returned it (or its ``(chart, data)`` pair).
    keys
        The mark's data fields; ``dropped=True`` for a funnel bar's drop-off, ``did=True`` for
        a compare bar's users who did the event.

    Returns
    -------
    heapseg.model.Group
        The definition; :func:`mark_segment` gives it with a name, the ``as_of`` it holds at
        and the number shown.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> chart = charts.funnel(ds, ["Session", "Add to Cart"], by={"Paid": paid})
    >>> chart.data[["segment", "step", "users"]]
      segment  step  users
    0    Paid     1   1236
    1    Paid     2    532
    >>> dropped = charts.segment_of(chart, segment="Paid", step=1, dropped=True)
    >>> ds.count(dropped)
    704
    """
    return mark_segment(chart, **keys).segment


def mark_segment(chart: Any, **keys: Any) -> MarkSegment:
    """:func:`segment_of` with a name, the moment it holds at and the number shown."""
    source = source_of(chart)
    kind = source.kind
    if kind not in _BUILDERS:
        raise ChartError(f"marks of a {kind} chart do not turn into segments yet")
    wanted = MARK_KEYS[kind]
    allowed = (*wanted, *_OPTIONS.get(kind, ()))
    unknown = sorted(set(keys) - set(allowed))
    missing = [k for k in wanted if k not in keys]
    if unknown or missing:
        problem = f"unknown {', '.join(unknown)}" if unknown else f"missing {', '.join(missing)}"
        raise ChartError(
            f"a mark of a {kind} chart is named by {', '.join(wanted)}"
            + (f" (optionally {', '.join(_OPTIONS[kind])})" if kind in _OPTIONS else "")
            + f": {problem}"
        )
    data = chart[1] if isinstance(chart, tuple) else chart.data
    return _BUILDERS[kind](source, data, keys)


def marks(chart: Any) -> list[dict[str, Any]]:
    """The keys of every mark of a chart (its data rows' :data:`MARK_KEYS`), in order."""
    source = source_of(chart)
    data = chart[1] if isinstance(chart, tuple) else chart.data
    fields = list(MARK_KEYS[source.kind])
    if source.kind == "sizes":
        data = data[data["users"].notna()]
    return [dict(zip(fields, row, strict=True)) for row in data[fields].itertuples(index=False)]


# ------------------------------------------------------------------------------ helpers


def _series(source: ChartSource, name: Any) -> ChartSegment | None:
    """The chart segment named ``name`` (None for "All users")."""
    request = source.request
    if request.include_all and name == request.names[-1]:  # every user in scope
        return None
    for seg in request.segments:
        if seg.name == name:
            return seg
    raise ChartError(f"the chart has no series {name!r}; it has: {', '.join(request.names)}")


def _combine(*parts: Condition | None) -> Group:
    """The parts with AND, nested ``and`` groups spliced in: one flat list reads (and edits in
    the builder) better than groups in groups."""
    rules: list[Condition] = []
    for part in parts:
        if isinstance(part, Group) and part.combinator == "and" and not part.negate:
            rules.extend(part.rules)
        elif part is not None:
            rules.append(part)
    return Group("and", tuple(rules))


def _resolver(source: ChartSource, *segments: ChartSegment | None) -> Resolver | None:
    for seg in (*segments, source.request.scope):
        if seg is not None and seg.resolver is not None:
            return seg.resolver
    return source.request.resolver


def _scope(source: ChartSource) -> Group | None:
    scope = source.request.scope
    return scope.segment if scope is not None else None


def _row(data: pd.DataFrame, **match: Any) -> pd.Series:
    mask = pd.Series(True, index=data.index)
    for column, value in match.items():
        mask &= data[column] == value
    found = data[mask]
    if found.empty:
        shown = ", ".join(f"{k}={v!r}" for k, v in match.items())
        raise ChartError(f"the chart has no mark {shown}")
    return found.iloc[0]


def _moment(value: Any, what: str) -> datetime:
    """A mark's time as naive UTC: a datetime, an ISO string, a pandas Timestamp or Vega's
    epoch milliseconds."""
    if isinstance(value, bool):
        raise ChartError(f"{what} must be a moment, got {value!r}")
    if isinstance(value, (int, float)):
        stamp = pd.Timestamp(value, unit="ms", tz="UTC")
    else:
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError) as exc:
            raise ChartError(f"{what} must be a moment, got {value!r}") from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _whole(value: Any, most: int, what: str) -> int:
    """A mark's number (a step, a period, days) from 1 to ``most``: an integer of any kind
    (Python, NumPy, or a whole float as JSON may bring it)."""
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if number and math.isfinite(value) and value == int(value) and 1 <= int(value) <= most:
        return int(value)
    raise ChartError(f"{what} must be a whole number from 1 to {most}, got {value!r}")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _one_of(moment: datetime, moments: Sequence[datetime], what: str) -> datetime:
    for candidate in moments:
        if candidate == moment:
            return candidate
    raise ChartError(f"the chart has no {what} at {_iso(moment)}")


def _did(event: str | None, window: dict, where: Group | None, ds: Any) -> Group:
    """Did ``event`` (any event when None) in ``window`` with ``where``, as a group."""
    names = [event] if event is not None else ds.event_names()
    rules = []
    for name in names:
        rule: dict[str, Any] = {"kind": "event", "event": name, "window": window}
        if where is not None and (where.rules or where.negate):
            rule["where"] = where.to_dict()
        rules.append(rule)
    try:
        return Group.from_dict({"combinator": "or" if event is None else "and", "rules": rules})
    except DefinitionError as exc:
        raise ChartError(f"these users cannot be written as a segment: {exc}") from exc


# ------------------------------------------------------------------------------ by kind


def _trend(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    seg = _series(source, keys["segment"])
    unit = settings["unit"]
    period = _one_of(_moment(keys["period"], "period"), settings["periods"], "period")
    # The last period ends at as_of, which it includes (the events at as_of count there).
    last = period == settings["periods"][-1]
    end = request.as_of + _TICK if last else step(period, 1, unit)
    window = {"from": _iso(period), "to": _iso(end)}
    did = _did(settings["event"], window, as_where(settings["where"]), request.ds)
    row = _row(data, segment=keys["segment"], period=pd.Timestamp(period, tz="UTC"))
    shown = int(row["value"]) if settings["measure"] == "users" else None
    return MarkSegment(
        f"{keys['segment']} · {settings['event'] or 'any event'} in {unit} of {_iso(period)}",
        _combine(_scope(source), seg.segment if seg else None, did),
        request.as_of,
        shown,
        _resolver(source, seg),
    )


def _compare(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    seg = _series(source, keys["segment"])
    row = _row(data, segment=keys["segment"])
    name, did, shown = str(keys["segment"]), None, int(row["users"])
    if keys.get("did"):
        if settings["event"] is None:
            raise ChartError("did=True needs a chart of an event (compare(..., event=...))")
        last, unit = settings["window"]
        window = {"last": last, "unit": unit}
        did = _did(settings["event"], window, as_where(settings["where"]), request.ds)
        name, shown = f"{name} · did {settings['event']}", int(row["did"])
    return MarkSegment(
        name,
        _combine(_scope(source), seg.segment if seg else None, did),
        request.as_of,
        shown,
        _resolver(source, seg),
    )


def _sizes(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    seg = _series(source, keys["segment"])
    row = _row(data, segment=keys["segment"])
    if pd.isna(row["users"]):
        raise ChartError(f"{keys['segment']!r} could not be counted: {row['problem']}")
    return MarkSegment(
        str(keys["segment"]),
        _combine(seg.segment if seg else None),
        source.request.as_of,
        int(row["users"]),
        _resolver(source, seg),
    )


def _overlap(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    a, b = _series(source, keys["a"]), _series(source, keys["b"])
    row = _row(data, a=keys["a"], b=keys["b"])
    same = keys["a"] == keys["b"]
    return MarkSegment(
        str(keys["a"]) if same else f"{keys['a']} and {keys['b']}",
        _combine(a.segment if a else None, None if same or b is None else b.segment),
        source.request.as_of,
        int(row["both"]),
        _resolver(source, a, b),
    )


def _funnel(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    seg = _series(source, keys["segment"])
    steps = settings["steps"]
    k = _whole(keys["step"], len(steps), "step")
    row = _row(data, segment=keys["segment"], step=k)
    shown = int(row["users"])
    name = f"{keys['segment']} · reached {k}. {steps[k - 1][0]}"
    # The chart's own funnel rule (one definition for bars and segments), cut at this bar.
    rule = replace(settings["rule"], reached=k)
    if keys.get("dropped"):
        if k == len(steps):
            raise ChartError("the last step has no drop-off: nobody could go further")
        rule = replace(rule, not_reached=k + 1)
        shown -= int(_row(data, segment=keys["segment"], step=k + 1)["users"])
        name = f"{keys['segment']} · dropped off after {k}. {steps[k - 1][0]}"
    return MarkSegment(
        name,
        _combine(_scope(source), seg.segment if seg else None, rule),
        request.as_of,
        shown,
        _resolver(source, seg),
    )


def _retention(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    unit = settings["unit"]
    if settings.get("convention", "elapsed") != "calendar":
        raise ChartError(
            f"a retention point cannot be a segment: {unit} k counts the users who came back "
            f"between k and k + 1 {unit}s after their own first start event (and only those "
            f"for whom that {unit} has passed), while segment format 1 measures windows from "
            "as_of or between fixed dates, and a 'then' bounds the return only from above; no "
            "definition selects exactly these users (with convention='calendar' it can)"
        )
    seg = _series(source, keys["segment"])
    k = _whole(keys["period"], settings["periods"], "period")
    row = _row(data, segment=keys["segment"], period=k)
    cohort = _calendar_cohorts(settings, request.as_of, k)
    needed = sum(len(branch["rules"]) for branch in cohort)
    if needed > MAX_EVENT_RULES:  # say what to change, not which rule went over
        raise ChartError(
            f"this retention point cannot be written as a segment: its {len(cohort)} start "
            f"{unit}s need {needed} event rules, more than the {MAX_EVENT_RULES} a definition "
            f"may hold; draw the chart with a shorter cohort_last (at most about "
            f"{MAX_EVENT_RULES // 3} {unit}s)"
        )
    try:
        # No start day whose day k has passed: nobody (an empty group would be everybody).
        returned = Group.from_dict({"combinator": "or", "rules": cohort, "not": not cohort})
    except DefinitionError as exc:
        raise ChartError(f"this retention point cannot be written as a segment: {exc}") from exc
    start, back = settings["events"]
    return MarkSegment(
        f"{keys['segment']} · did {back} on {unit} {k} after {start}",
        _combine(_scope(source), seg.segment if seg else None, returned),
        request.as_of,
        int(row["retained"]),
        _resolver(source, seg),
    )


def _calendar_cohorts(settings: Mapping[str, Any], as_of: datetime, k: int) -> list[dict]:
    """Per start day (ISO week) ``d`` whose day (week) ``d + k`` has passed at ``as_of``: the
    users whose first start event in the cohort window falls in ``d`` and who did the return
    event in ``d + k`` (after the start, since k >= 1)."""
    unit = settings["unit"]
    start_event, return_event = settings["events"]
    # The cohort window is as_of - back < time <= as_of; a range window's 'from' is inclusive.
    opens = shift(as_of, settings["cohort_last"], unit) + _TICK
    cohorts = []
    day = truncate(opens, unit)
    while step(day, k + 1, unit) <= as_of:
        first = max(day, opens)
        rules = [
            _event(start_event, first, step(day, 1, unit)),
            _event(return_event, step(day, k, unit), step(day, k + 1, unit)),
        ]
        if first > opens:  # no start event in the window before this day
            rules.insert(1, {**_event(start_event, opens, first), "did": False})
        cohorts.append({"combinator": "and", "rules": rules})
        day = step(day, 1, unit)
    return cohorts


def _event(name: str, start: datetime, end: datetime, where: Group | None = None) -> dict[str, Any]:
    rule = {"kind": "event", "event": name, "window": {"from": _iso(start), "to": _iso(end)}}
    if where is not None and (where.rules or where.negate):
        rule["where"] = where.to_dict()
    return rule


def _size_over_time(
    source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]
) -> MarkSegment:
    seg = _series(source, keys["segment"])
    moment = _one_of(_moment(keys["at"], "at"), source.settings["moments"], "point")
    row = _row(data, segment=keys["segment"], at=pd.Timestamp(moment, tz="UTC"))
    return MarkSegment(
        f"{keys['segment']} as of {_iso(moment)}",
        _combine(seg.segment if seg else None),
        moment,
        int(row["users"]),
        _resolver(source, seg),
        static=True,
    )


def _breakdown(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    seg = request.segments[0]
    group, value = keys["group"], keys["value"]
    row = _row(data, group=group, value=value)
    if group == seg.name:
        who: Group | None = seg.segment
    elif group == settings["other"]:
        who = Group("and", (seg.segment,), negate=True) if group == REST else None
    else:
        raise ChartError(f"the chart has no group {group!r}; it has: {seg.name}, {group}")
    labels = list(dict.fromkeys(data["value"]))
    kind = "user" if settings["kind"] == "user" else "event_property"
    condition = _value_condition(kind, settings, labels, value)
    if settings["kind"] == "user":
        what, shown = condition, int(row["count"])
    else:
        last, unit = settings["window"]
        chart_where = as_where(settings["where"])
        where = _combine(*([chart_where] if chart_where is not None else []), condition)
        what, shown = _did(settings["event"], {"last": last, "unit": unit}, where, request.ds), None
    return MarkSegment(
        f"{group} · {settings['property']}: {value}",
        _combine(who, what),
        request.as_of,
        shown,
        _resolver(source, seg),
    )


def _value_condition(kind: str, settings: Mapping[str, Any], labels: list, value: Any) -> Group:
    """The property condition of one breakdown bar (``labels``: every bar's value, in order)."""
    prop, dtype, edges = settings["property"], settings["dtype"], settings["edges"]

    def rule(operator: str, operand: Any = None) -> PropertyRule:
        return PropertyRule(kind, prop, operator, operand)

    if value == _NOT_SET:
        return Group("and", (rule("is not set"),))
    if value == _OTHER:
        # The values after the top ones: unset ones too, unless "(not set)" has its own bar.
        shown = [_value_condition(kind, settings, labels, v) for v in labels if v != _OTHER]
        return Group("or", tuple(shown), negate=True)
    if value not in labels:
        raise ChartError(f"the chart has no bar for {prop} {value!r}")
    if edges is not None:
        i = labels.index(value)
        parts = [rule("is set")]
        if i > 0:
            parts.append(rule(">=", edges[i - 1]))
        if i < len(edges):
            parts.append(rule("<", edges[i]))
        return Group("and", tuple(parts))
    if dtype.is_temporal():
        start = datetime.strptime(str(value), "%Y-%m")
        end = step(start, 1, "month")
        as_text = (lambda m: m.date().isoformat()) if dtype.is_date() else _iso
        return Group("and", (rule(">=", as_text(start)), rule("<", as_text(end))))
    if dtype.is_boolean():
        return Group("and", (rule("=", str(value).lower() in ("true", "t", "1")),))
    return Group("and", (rule("=", value),))


def _stickiness(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    if settings["event"] is None:
        raise ChartError(
            "a stickiness bar of any event cannot be a segment: its days are counted across "
            "every event name, and a format-1 count of days is per event name (pass event=)"
        )
    seg = _series(source, keys["segment"])
    n = _whole(keys["days"], settings["days"], "days")
    row = _row(data, segment=keys["segment"], days=n)
    first, last, as_of = settings["starts"][0], settings["starts"][-1], request.as_of
    where = as_where(settings["where"])

    def days(count: int, start: datetime, end: datetime) -> dict[str, Any]:
        rule = _event(settings["event"], start, end, where)
        return {**rule, "count": {"operator": "=", "value": count, "unit": "day"}}

    def did(start: datetime, end: datetime, done: bool = True) -> dict[str, Any]:
        return {**_event(settings["event"], start, end, where), "did": done}

    if step(last, 1, "day") > as_of:  # as_of inside the last day: its UTC days as they are
        rules: list[dict[str, Any]] = [days(n, first, as_of + _TICK)]
    else:
        # as_of is a midnight: an event at exactly as_of counts on the last day (the day
        # before), so it adds a day only for a user with no other event on that day.
        at_as_of = (as_of, as_of + _TICK)
        rules = [
            {
                "combinator": "or",
                "rules": [
                    {
                        "combinator": "and",
                        "rules": [
                            days(n, first, as_of),
                            {
                                "combinator": "or",
                                "rules": [did(*at_as_of, done=False), did(last, as_of)],
                            },
                        ],
                    },
                    {
                        "combinator": "and",
                        "rules": [
                            days(n - 1, first, as_of),
                            did(*at_as_of),
                            did(last, as_of, done=False),
                        ],
                    },
                ],
            }
        ]
    active = Group.from_dict({"combinator": "and", "rules": rules})
    return MarkSegment(
        f"{keys['segment']} · {settings['event']} on {n} of {settings['days']} days",
        _combine(_scope(source), seg.segment if seg else None, active),
        as_of,
        int(row["users"]),
        _resolver(source, seg),
    )


def _lifecycle(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    settings, request = source.settings, source.request
    seg = _series(source, keys["segment"])
    unit, periods, status = settings["unit"], settings["periods"], keys["status"]
    period = _one_of(_moment(keys["period"], "period"), periods, "period")
    row = _row(data, segment=keys["segment"], period=pd.Timestamp(period, tz="UTC"), status=status)
    where = as_where(settings["where"])
    before = step(period, -1, unit)
    # The last period holds as_of itself (an activity at exactly as_of counts there).
    end = request.as_of + _TICK if period == periods[-1] else step(period, 1, unit)
    now = _did(settings["event"], {"from": _iso(period), "to": _iso(end)}, where, request.ds)
    then = _did(settings["event"], {"from": _iso(before), "to": _iso(period)}, where, request.ds)
    if settings["new"] == "first":  # her first activity ever is in this period
        new = _not(_did(settings["event"], {"to": _iso(period)}, where, request.ds))
    else:
        new = _joined_in(request, period, step(period, 1, unit))
    parts = {
        "new": (now, new),
        "returning": (now, _not(new), then),
        "resurrecting": (now, _not(new), _not(then)),
        "dormant": (then, _not(now)),
    }
    if status not in parts:
        raise ChartError(f"status must be one of {', '.join(parts)}, got {status!r}")
    return MarkSegment(
        f"{keys['segment']} · {status} in the {unit} of {_iso(period)}",
        _combine(_scope(source), seg.segment if seg else None, *parts[status]),
        request.as_of,
        int(row["users"]),
        _resolver(source, seg),
    )


def _not(group: Group) -> Group:
    return Group("and", (group,), negate=True)


def _joined_in(request: Any, start: datetime, end: datetime) -> Group:
    """Joined in ``[start, end)``: her ``joined_at``, else her first event of any name."""
    ds = request.ds
    joined_at = Group(
        "and",
        (PropertyRule("user", "joined_at", ">=", _iso(start)),
         PropertyRule("user", "joined_at", "<", _iso(end))),
    )  # fmt: skip
    if ds.joined_at_everywhere():
        return joined_at
    first = _combine(
        _did(None, {"from": _iso(start), "to": _iso(end)}, None, ds),
        _not(_did(None, {"to": _iso(start)}, None, ds)),
    )
    if "joined_at" not in ds.users.columns:
        return first
    unset = Group("and", (PropertyRule("user", "joined_at", "is not set"), first))
    return Group("or", (joined_at, unset))


def _paths(source: ChartSource, data: pd.DataFrame, keys: Mapping[str, Any]) -> MarkSegment:
    raise ChartError(
        "a paths bar cannot be a segment: step k is the k-th event just after (or before) each "
        "user's first anchor event, counting every event in between, and segment format 1 has "
        "no rule for 'the next event' (a 'then' allows any events in between)"
    )


_BUILDERS = {
    "trend": _trend,
    "compare": _compare,
    "sizes": _sizes,
    "overlap": _overlap,
    "funnel": _funnel,
    "retention": _retention,
    "size_over_time": _size_over_time,
    "breakdown": _breakdown,
    "stickiness": _stickiness,
    "paths": _paths,
    "lifecycle": _lifecycle,
}
