"""Segment model -> one ibis boolean expression over the users table.

Every rule becomes a predicate on ``users``: property rules are column tests, behaviour rules are
``user_id IN (subquery over events)``, so a whole segment is a single query that any SQL engine
runs as semi/anti joins. Relative windows become absolute UTC timestamps here, in Python, which
keeps calendar-month arithmetic identical on every backend.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from heapseg.compiled import structure_key
from heapseg.errors import HeapsegError, SchemaError, SegmentReferenceError
from heapseg.hints import DataHintWarning, check_value, outside_stacklevel
from heapseg.identity import merge_identities
from heapseg.model import (
    COMPARISONS,
    NEGATED_TWIN,
    Aggregate,
    Comparison,
    Condition,
    EventRule,
    FunnelRule,
    Group,
    LastWindow,
    PropertyRule,
    RangeWindow,
    SegmentRule,
    StaticMembers,
    as_segment,
    check_references,
    parse_contains_pattern,
    parse_iso_timestamp,
)
from heapseg.point_in_time import PropertyHistory
from heapseg.resolver import Resolver
from heapseg.timeunits import TRUNCATE, shift, shifted

__all__ = [
    "CompileContext",
    "UnknownEventWarning",
    "compile_segment",
    "compile_split",
    "compile_where",
    "funnel_times",
    "joined_flags",
    "shift",
    "warn_unknown_events",
]

_REGEX_SPECIAL = set(".^$*+?{}[]\\|()")


class UnknownEventWarning(DataHintWarning):
    """A rule names an event the data has never seen (allowed: nobody did it yet)."""


@dataclass(frozen=True)
class CompileContext:
    """What the compiler needs: the dataset's normalised tables, ``as_of`` and a resolver."""

    users: ir.Table
    events: ir.Table
    accounts: ir.Table | None
    as_of: datetime
    resolver: Resolver | None = None
    known_events: Callable[[], set[str]] | None = None
    #: ``(kind, field)`` -> the property's distinct values (None: too many to check), to warn
    #: about values the data does not hold; None: no check.
    known_values: Callable[[str, str], Sequence[Any] | None] | None = None
    chain: tuple[str, ...] = field(default=())
    #: ``(_from, _to)`` pairs of merged identities (:func:`~heapseg.identity.identity_moves`);
    #: ``events`` then holds the raw user ids.
    migrations: ir.Table | None = None
    #: Who had joined at ``as_of`` (a boolean over ``users``); None: every user, always.
    joined: ir.BooleanValue | None = None
    #: Where user / account properties have a history, their values at ``as_of`` come from it.
    user_history: PropertyHistory | None = None
    account_history: PropertyHistory | None = None
    #: ``(kind, other name) -> property``: names a rule may give a property besides its own,
    #: such as a JSON key's long name (``("user", "properties.plan") -> "plan"``).
    aliases: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def attribute(self, events: ir.Table, *columns: str) -> ir.Table:
        """Filtered events, slimmed to what a rule needs, with merged identities applied.

        Merging after the filters keeps the join to the rows a rule actually looks at.
        """
        slim = events.select(*dict.fromkeys(("user_id", "time", *columns)))
        if self.migrations is None:
            return slim
        # Slim before joining: ibis builds a join over 3 columns far faster than over the whole
        # events table.
        return merge_identities(slim, self.migrations)

    def ids(self, events: ir.Table) -> ir.Table:
        """``user_id`` of the users with some of the filtered ``events`` (not one row each).

        The raw ids are made distinct before merged identities are applied, so the identity
        join reads one row per id, not one per event (an anti join of "possible churn" on
        100,000 users: 13% faster on DuckDB).
        """
        distinct = events.select("user_id").distinct()
        if self.migrations is None:
            return distinct
        return merge_identities(distinct, self.migrations)

    def timestamp(self, value: datetime, dtype: dt.DataType | None = None) -> ir.Value:
        """A literal that compares correctly with a timestamp column (zone-aware or not)."""
        dtype = dtype if dtype is not None else self.events.time.type()
        if getattr(dtype, "timezone", None):
            return ibis.literal(value.replace(tzinfo=timezone.utc), type=dtype)
        return ibis.literal(value, type=dt.Timestamp())


def compile_segment(segment: Any, ctx: CompileContext) -> ir.BooleanValue:
    """Compile a segment (model object or format-1 dict) to a boolean expression over ``users``.

    Examples
    --------
    >>> import heapseg
    >>> ds = heapseg.connect()
    >>> paid = heapseg.user.subscription_type == "paid"
    >>> ds.users.filter(compile_segment(paid, ds.context())).count().execute()
    2643
    """
    expr = _group(as_segment(segment), ctx, "")
    # Users who had not joined are in no segment. One conjunction at the top suffices: every
    # complement inside (did: false, not, in: false) is taken over all users, and intersecting
    # with the joined users makes it the complement among them.
    return expr if ctx.joined is None else ctx.joined & expr


def compile_split(segment: Any, ctx: CompileContext) -> tuple[ir.BooleanValue, list[ir.Table]]:
    """The segment as a boolean over ``users`` and tables of ids to anti-join ``users`` with.

    In a top-level ``and``, each plain ``did: false`` rule (no count, aggregate or sequence)
    becomes the table of its events' ``user_id`` instead of ``NOT COALESCE(user_id IN (...),
    FALSE)``: DuckDB, PostgreSQL and Spark run ``users ANTI JOIN ids`` faster. The users in the
    segment are those who pass the boolean and have no id in any of the tables (joining is in
    the boolean, as in :func:`compile_segment`).
    """
    group = as_segment(segment)
    if group.combinator != "and" or group.negate:
        return compile_segment(group, ctx), []
    parts: list[ir.BooleanValue] = []
    excluded: list[ir.Table] = []
    for i, rule in enumerate(group.rules):
        path = _path("rules", i)
        if _plain_did_not(rule):
            excluded.append(_rule_ids(rule, ctx, path))
        else:
            parts.append(_item(rule, ctx, path))
    expr = _all(parts)
    return (expr if ctx.joined is None else ctx.joined & expr), excluded


def _plain_did_not(rule: Condition) -> bool:
    return (
        isinstance(rule, EventRule)
        and not rule.did
        and rule.then is None
        and rule.count is None
        and rule.aggregate is None
        and not rule.first_time
    )


def warn_unknown_events(segment: Any, ctx: CompileContext) -> None:
    """Warn, as compiling does, about events the data has never seen (for reused queries).

    Referenced segments are not followed: a query that uses them is never reused.
    """
    _warn_unknown_events(as_segment(segment), ctx, "")


def _warn_unknown_events(group: Group, ctx: CompileContext, path: str) -> None:
    for i, rule in enumerate(group.rules):
        rpath = _path(_path(path, "rules"), i)
        if isinstance(rule, Group):
            _warn_unknown_events(rule, ctx, rpath)
        elif isinstance(rule, EventRule):
            _check_event(rule.event, ctx, _path(rpath, "event"))
            if rule.then is not None:
                _check_event(rule.then.event, ctx, _path(rpath, "then.event"))
            _check_values(rule.where, ctx, _path(rpath, "where"), "event")
        elif isinstance(rule, PropertyRule):
            _check_value(rule, ctx, rpath, rule.kind)
        elif isinstance(rule, FunnelRule):
            _check_funnel_events(rule, ctx, rpath)


def compile_where(events: ir.Table, where: Group, ctx: CompileContext) -> ir.BooleanValue:
    """An event-property group (a rule's ``where``) as a boolean over an events table."""
    return _event_group(events, where, ctx, "where")


def joined_flags(
    users: ir.Table,
    conditions: Mapping[str, ir.BooleanValue],
    dialect: str,
    *,
    filtering: bool = False,
) -> tuple[ir.Table, dict[str, ir.BooleanValue]]:
    """``users`` left-joined once with each distinct ``IN (subquery)`` of ``conditions``, and
    the conditions over that table, each such test become "the joined key is set".

    For PostgreSQL. It runs ``user_id IN (subquery)`` as a join only at the top of a ``WHERE``;
    inside an aggregate's ``FILTER`` (a query of several counts), an ``OR`` or a ``NOT`` it is a
    SubPlan, hashed only when PostgreSQL expects the ids to fit in ``work_mem`` and otherwise
    scanned once per user: with the default 4 MB, the builder's query over 100,000 users ran
    for over ten minutes. A left join with the subquery's distinct ids is a hash join whatever
    their number (spilling in batches), and an ``IS NOT NULL`` (``IS NULL``) test of it at the
    top of a ``WHERE`` becomes a plain (anti) join. Subqueries that compile to the same SQL
    (the same rule in several counts) are joined once; ids grouped by user are not made
    distinct again. ``filtering``: the conditions filter ``users`` (a ``WHERE``), so an ``IN``
    test that is a term of their top ``AND`` stays (PostgreSQL makes it a semi join itself)
    unless the same test is a flag elsewhere.

    The answers are those of the ``IN`` tests: where an ``IN`` would be NULL (a NULL among
    the ids, or a NULL needle) the flag is false, and format 1 treats NULL as false everywhere
    (every complement coalesces NULL to false first, see ``_negate``).
    """
    keys: dict[str, str] = {}
    flags: dict[ops.InSubquery, str] = {}
    joins: list[tuple[ir.Value, ir.Table]] = []
    base = users.op()
    for condition in conditions.values():
        terms = _terms(condition.op()) if filtering else [condition.op()]
        found = [
            node
            for term in terms
            if not (filtering and isinstance(term, ops.InSubquery))
            # Only the tests on users' own rows: a subquery's insides are left as they are.
            for node in term.find(ops.InSubquery, filter=ops.Value)
        ]
        for node in found:
            if node in flags or node.needle.relations != frozenset({base}):
                continue
            rel = node.rel.to_expr()
            # The same rule compiled twice differs in its joins' identifiers only.
            key = structure_key(rel) or ibis.to_sql(rel, dialect=dialect)
            if key not in keys:
                keys[key] = f"_flag{len(keys)}"
                column = node.rel.schema.names[0]
                ids = rel.select(**{keys[key]: rel[column]})
                # Ids grouped by user already are distinct; a DISTINCT would also hide their
                # number from PostgreSQL's estimates.
                joins.append(
                    (node.needle.to_expr(), ids if _unique(node.rel, column) else ids.distinct())
                )
            flags[node] = keys[key]
    if not joins:
        return users, dict(conditions)
    joined = users
    for needle, ids in joins:
        joined = joined.left_join(ids, needle == ids[ids.columns[0]])
    wide = joined.select(*users.columns, *(ids.columns[0] for _, ids in joins))
    target = wide.op()

    def swap(node: ops.Node, changed: dict | None) -> ops.Node:
        if node in flags:
            return ops.NotNull(ops.Field(target, flags[node]))
        if isinstance(node, ops.Field) and node.rel == base:
            return ops.Field(target, node.name)
        return node.__recreate__(changed) if changed else node

    return wide, {
        name: condition.op().replace(swap, filter=ops.Value).to_expr()
        for name, condition in conditions.items()
    }


def _unique(rel: ops.Relation, column: str) -> bool:
    """Whether ``column`` of ``rel`` is the only key of a ``GROUP BY`` below, passed through
    projections and filters (so each value is there once)."""
    while True:
        if isinstance(rel, ops.Aggregate):
            return list(rel.groups) == [column]
        if isinstance(rel, ops.Filter):
            rel = rel.parent
        elif isinstance(rel, ops.Project):
            value = rel.values[column]
            if not (isinstance(value, ops.Field) and value.rel == rel.parent):
                return False
            rel, column = rel.parent, value.name
        else:
            return False


def _terms(node: ops.Node) -> list[ops.Node]:
    """The terms of a conjunction (``a AND (b AND c)``: a, b, c); a single term otherwise."""
    if isinstance(node, ops.And):
        return [*_terms(node.left), *_terms(node.right)]
    return [node]


# ---------------------------------------------------------------------------- boolean helpers


def _negate(expr: ir.BooleanValue) -> ir.BooleanValue:
    # NULL means "the condition does not hold" everywhere in format 1, so a complement must
    # turn NULL into false first (NOT NULL would be NULL and drop the unset users).
    return ~ibis.coalesce(expr, ibis.literal(False))


def _all(exprs: Sequence[ir.BooleanValue]) -> ir.BooleanValue:
    return _balanced(exprs, lambda a, b: a & b) if exprs else ibis.literal(True)


def _any(exprs: Sequence[ir.BooleanValue]) -> ir.BooleanValue:
    return _balanced(exprs, lambda a, b: a | b) if exprs else ibis.literal(False)


def _balanced(
    exprs: Sequence[ir.BooleanValue],
    combine: Callable[[ir.BooleanValue, ir.BooleanValue], ir.BooleanValue],
) -> ir.BooleanValue:
    """``exprs`` combined pairwise, level by level: a tree of depth log2(n).

    A left-deep chain of a thousand ANDs (what ``reduce`` builds) makes ibis and sqlglot recurse
    past Python's stack; a balanced tree of the same terms is ten levels deep.
    """
    level = list(exprs)
    while len(level) > 1:
        pairs = [combine(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = pairs + level[2 * len(pairs) :]
    return level[0]


def _path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


# ---------------------------------------------------------------------------- groups and rules


def _group(group: Group, ctx: CompileContext, path: str) -> ir.BooleanValue:
    parts = [_item(rule, ctx, _path(_path(path, "rules"), i)) for i, rule in enumerate(group.rules)]
    if not parts:
        expr = ibis.literal(True)
    else:
        expr = _all(parts) if group.combinator == "and" else _any(parts)
    return _negate(expr) if group.negate else expr


def _item(rule: Condition, ctx: CompileContext, path: str) -> ir.BooleanValue:
    if isinstance(rule, Group):
        return _group(rule, ctx, path)
    if isinstance(rule, PropertyRule):
        if rule.kind == "account":
            return _account_rule(_named(rule, "account", ctx), ctx, path)
        return _user_rule(_named(rule, "user", ctx), ctx, path)
    if isinstance(rule, EventRule):
        if ctx.aliases and rule.aggregate is not None:
            name = ctx.aliases.get(("event", rule.aggregate.field), rule.aggregate.field)
            rule = replace(rule, aggregate=replace(rule.aggregate, field=name))
        return _event_rule(rule, ctx, path)
    if isinstance(rule, FunnelRule):
        return _funnel_rule(rule, ctx, path)
    if isinstance(rule, SegmentRule):
        return _segment_rule(rule, ctx, path)
    raise HeapsegError(f"{path}: cannot compile {type(rule).__name__}")


def _named(rule: PropertyRule, kind: str, ctx: CompileContext) -> PropertyRule:
    """The rule on the property's own name where it gives another (``ctx.aliases``)."""
    name = ctx.aliases.get((kind, rule.field)) if ctx.aliases else None
    return rule if name is None else replace(rule, field=name)


def _positive_twin(rule: PropertyRule) -> tuple[PropertyRule, bool]:
    """The rule with a negative operator turned positive, and whether it was negative."""
    if rule.operator in NEGATED_TWIN:
        return replace(rule, operator=NEGATED_TWIN[rule.operator]), True
    return rule, False


def _with_history(history: PropertyHistory | None, field: str) -> PropertyHistory | None:
    return history if history is not None and field in history.tracked else None


def _user_rule(rule: PropertyRule, ctx: CompileContext, path: str) -> ir.BooleanValue:
    history = _with_history(ctx.user_history, rule.field)
    if history is None:
        return _property(ctx.users, rule, ctx, path, "user")
    # A tracked property's value at as_of lives in the history: test it there and come back with
    # the ids. Users without a value at as_of are absent, so a negative operator, as the
    # complement of its positive twin, selects them (unset values included, as everywhere).
    positive, negated = _positive_twin(rule)
    state = history.state_at(ctx.as_of, [rule.field], ctx.timestamp)
    matched = state.filter(_property(state, positive, ctx, path, "user")).user_id
    expr = ctx.users.user_id.isin(matched)
    return _negate(expr) if negated else expr


def _account_rule(rule: PropertyRule, ctx: CompileContext, path: str) -> ir.BooleanValue:
    if ctx.accounts is None:
        raise SchemaError("this dataset has no accounts table", path)
    if "account_id" not in ctx.users.columns:
        raise SchemaError("the users table has no account_id column to link accounts", path)
    positive, negated = _positive_twin(rule)
    accounts = ctx.accounts
    history = _with_history(ctx.account_history, rule.field)
    if history is None:
        matched = accounts.filter(_property(accounts, positive, ctx, path, "account")).account_id
    else:
        state = history.state_at(ctx.as_of, [rule.field], ctx.timestamp)
        # The accounts table says which accounts exist, as users says who does.
        state = state.filter(state.account_id.isin(accounts.account_id))
        matched = state.filter(_property(state, positive, ctx, path, "account")).account_id
    moves = _with_history(ctx.user_history, "account_id")
    if moves is None:
        expr = ctx.users.account_id.isin(matched)
    else:
        # The user's account at as_of is the one their history gives.
        links = moves.state_at(ctx.as_of, ["account_id"], ctx.timestamp)
        expr = ctx.users.user_id.isin(links.filter(links.account_id.isin(matched)).user_id)
    # A user whose account_id matches no account has every account property unset.
    return _negate(expr) if negated else expr


# ---------------------------------------------------------------------------- properties


def _column(table: ir.Table, name: str, kind: str, path: str) -> ir.Column:
    if name in table.columns:
        return table[name]
    known = [c for c in table.columns if c not in ("user_id", "time", "event")] or table.columns
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise SchemaError(
        f"unknown {kind} property {name!r}{hint} (known: {', '.join(sorted(known))})",
        _path(path, "field"),
    )


def _property(
    table: ir.Table, rule: PropertyRule, ctx: CompileContext, path: str, kind: str
) -> ir.BooleanValue:
    col = _column(table, rule.field, kind, path)
    _check_value(rule, ctx, path, kind)
    positive, negated = _positive_twin(rule)
    expr = _positive_property(col, positive, ctx, path)
    return _negate(expr) if negated else expr


def _check_value(rule: PropertyRule, ctx: CompileContext, path: str, kind: str) -> None:
    """Warn about a value the data does not hold (:mod:`heapseg.hints`); kind ``event`` for
    event properties."""
    if ctx.known_values is None:
        return
    table = {"user": ctx.users, "account": ctx.accounts, "event": ctx.events}.get(kind)
    if table is None or rule.field not in table.columns:
        return
    check_value(rule, kind, table[rule.field].type().is_string(), ctx.known_values, path)


def _check_values(where: Group | None, ctx: CompileContext, path: str, kind: str) -> None:
    """:func:`_check_value` for every rule of a ``where`` group, nested groups included."""
    for i, rule in enumerate(where.rules if where is not None else ()):
        rpath = _path(_path(path, "rules"), i)
        if isinstance(rule, Group):
            _check_values(rule, ctx, rpath, kind)
        elif isinstance(rule, PropertyRule):
            _check_value(rule, ctx, rpath, kind)


def _type_error(rule: PropertyRule, col: ir.Column, path: str, expected: str) -> SchemaError:
    return SchemaError(
        f"operator {rule.operator!r} on {rule.field!r} needs {expected}, "
        f"but the column's type is {col.type()}",
        _path(path, "operator"),
    )


def _positive_property(
    col: ir.Column, rule: PropertyRule, ctx: CompileContext, path: str
) -> ir.BooleanValue:
    dtype = col.type()
    op = rule.operator
    if op == "is set":
        return col.notnull() & (col != "") if dtype.is_string() else col.notnull()
    if op in ("=", "in"):
        values = [_literal(v, col, rule, path) for v in rule.values]
        if dtype.is_string():
            # An empty string is unset, and a comparison with an unset value is false.
            values = [v for v in values if v != ""]
        if not values:
            return ibis.literal(False)
        return col == values[0] if len(values) == 1 else col.isin(values)
    if op in ("<", "<=", ">", ">=", "between"):
        if not (dtype.is_numeric() or dtype.is_temporal()):
            raise _type_error(rule, col, path, "a number, date or timestamp column")
        if op == "between":
            low, high = (_literal(v, col, rule, path) for v in rule.value)
            return (col >= low) & (col <= high)
        value = _literal(rule.value, col, rule, path)
        return COMPARISONS[op](col, value)
    if op in ("contains", "begins with", "ends with"):
        if not dtype.is_string():
            raise _type_error(rule, col, path, "a string column")
        lowered = col.lower()
        if op == "begins with":
            return lowered.startswith(rule.value.lower())
        if op == "ends with":
            return lowered.endswith(rule.value.lower())
        return _contains(lowered, rule.value, _path(path, "value"))
    if op in ("in last", "more than ago"):
        if not (dtype.is_date() or dtype.is_timestamp()):
            raise _type_error(rule, col, path, "a date or timestamp column")
        start = shift(ctx.as_of, rule.value, rule.unit)
        if dtype.is_date():
            # A date stands for its midnight: compare whole days with the instants' bounds.
            first_day = _ceil_date(start)
            if op == "in last":
                return (col >= first_day) & (col <= ctx.as_of.date())
            return col < first_day
        low, high = ctx.timestamp(start, dtype), ctx.timestamp(ctx.as_of, dtype)
        return (col >= low) & (col <= high) if op == "in last" else col < low
    raise SchemaError(f"unsupported operator {op!r}", _path(path, "operator"))


def _ceil_date(moment: datetime) -> date:
    day = moment.date()
    return day if moment.time() == time(0) else day + timedelta(days=1)


def _literal(value: Any, col: ir.Column, rule: PropertyRule, path: str) -> Any:
    """Check ``value`` against the column's type and turn it into something ibis compares."""
    dtype = col.type()
    vpath = _path(path, "value")

    def mismatch(expected: str) -> SchemaError:
        return SchemaError(
            f"{rule.field!r} is a {dtype} column: the value {value!r} is not {expected}", vpath
        )

    if dtype.is_string():
        if not isinstance(value, str):
            raise mismatch("a string")
        return value
    if dtype.is_boolean():
        if not isinstance(value, bool):
            raise mismatch("true or false")
        return value
    if dtype.is_numeric():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise mismatch("a number")
        return value
    if dtype.is_date():
        if not isinstance(value, str):
            raise mismatch("an ISO date string")
        moment = parse_iso_timestamp(value, vpath)
        if moment.time() != time(0):
            raise mismatch("a date without a time of day")
        return moment.date()
    if dtype.is_timestamp():
        if not isinstance(value, str):
            raise mismatch("an ISO timestamp string")
        tz_dtype = dtype if getattr(dtype, "timezone", None) else None
        moment = parse_iso_timestamp(value, vpath)
        return moment.replace(tzinfo=timezone.utc) if tz_dtype else moment
    raise SchemaError(f"{rule.field!r} has type {dtype}, which rules cannot test", vpath)


def _regex_escape(text: str) -> str:
    # Escape only the metacharacters: RE2, Java and PostgreSQL all read "\x" of punctuation as
    # the character, but not every engine accepts Python's escapes of spaces or '#'.
    return "".join(f"\\{ch}" if ch in _REGEX_SPECIAL else ch for ch in text)


def _contains(lowered: ir.StringValue, pattern: str, path: str) -> ir.BooleanValue:
    alternatives = []
    for alternative in parse_contains_pattern(pattern, path):
        parts = []
        for pieces in alternative:
            if len(pieces) == 1:
                if pieces[0]:
                    parts.append(lowered.contains(pieces[0].lower()))
                continue
            regex = ".*".join(_regex_escape(p.lower()) for p in pieces)
            parts.append(lowered.re_search(f"(?s){regex}"))
        # A part that is only "*" or empty matches anything (of a set value).
        alternatives.append(_all(parts) if parts else lowered.notnull())
    return _any(alternatives)


# ---------------------------------------------------------------------------- time


def _window_filter(
    column: ir.TimestampValue, window: Any, ctx: CompileContext
) -> ir.BooleanValue | None:
    if window is None:
        return None
    if isinstance(window, LastWindow):
        high = shifted(ctx.as_of, window.offset, window.unit)
        if high is None:  # the window ends before year 1: no event lies in it
            return ibis.literal(False)
        below = column <= ctx.timestamp(high)
        low = shifted(ctx.as_of, window.last + window.offset, window.unit)
        # A start before year 1 is no bound at all (datetime.min would drop events at it).
        return below if low is None else (column > ctx.timestamp(low)) & below
    if isinstance(window, RangeWindow):
        start, end = window.bounds()
        conditions = []
        if start is not None:
            conditions.append(column >= ctx.timestamp(start))
        if end is not None:
            conditions.append(column < ctx.timestamp(end))
        return _all(conditions)
    raise HeapsegError(f"unknown window {window!r}")


# ---------------------------------------------------------------------------- events


def _rule_events(
    ctx: CompileContext, event: str, where: Group | None, path: str, *extra: ir.BooleanValue
) -> ir.Table:
    """The events named ``event`` up to ``as_of`` that pass ``where`` and ``extra``.

    One filter with every condition: each separate ibis relation costs build and compile time,
    which on small data is as long as the query itself.
    """
    events = ctx.events
    conditions = [events.time <= ctx.timestamp(ctx.as_of), events.event == event]
    if where is not None and (where.rules or where.negate):
        conditions.append(_event_group(events, where, ctx, path))
    return events.filter(*conditions, *extra)


def _check_event(name: str, ctx: CompileContext, path: str) -> None:
    if ctx.known_events is None:
        return
    known = ctx.known_events()
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        warnings.warn(
            f"{path}: the data has no event named {name!r} yet{hint}",
            UnknownEventWarning,
            stacklevel=outside_stacklevel(),
        )


def _event_group(events: ir.Table, group: Group, ctx: CompileContext, path: str) -> ir.BooleanValue:
    parts = []
    for i, rule in enumerate(group.rules):
        rpath = _path(_path(path, "rules"), i)
        if isinstance(rule, Group):
            parts.append(_event_group(events, rule, ctx, rpath))
        else:
            parts.append(_property(events, _named(rule, "event", ctx), ctx, rpath, "event"))
    expr = (
        (_all(parts) if group.combinator == "and" else _any(parts)) if parts else ibis.literal(True)
    )
    return _negate(expr) if group.negate else expr


def _users_with(ctx: CompileContext, ids: ir.Column) -> ir.BooleanValue:
    return ctx.users.user_id.isin(ids)


def _rule_ids(rule: EventRule, ctx: CompileContext, path: str) -> ir.Table:
    """``user_id`` of the users who did a plain rule's event (no count, aggregate, first time or
    sequence) in its window."""
    _check_event(rule.event, ctx, _path(path, "event"))
    window = _window_filter(ctx.events.time, rule.window, ctx)
    in_window = _rule_events(
        ctx, rule.event, rule.where, _path(path, "where"), *(() if window is None else (window,))
    )
    return ctx.ids(in_window)


def _event_rule(rule: EventRule, ctx: CompileContext, path: str) -> ir.BooleanValue:
    _check_event(rule.event, ctx, _path(path, "event"))
    where_path = _path(path, "where")
    fields = (rule.aggregate.field,) if rule.aggregate is not None else ()
    if rule.aggregate is not None:
        _column(ctx.events, rule.aggregate.field, "event", _path(path, "aggregate"))
    if rule.first_time and rule.count is None and rule.aggregate is None:
        # Only the first-ever test applies (the model refuses first_time with did: false or
        # then): don't build the in-window relation at all.
        return _first_time_condition(
            _rule_events(ctx, rule.event, rule.where, where_path), rule, ctx
        )
    window = _window_filter(ctx.events.time, rule.window, ctx)
    in_window = _rule_events(
        ctx, rule.event, rule.where, where_path, *(() if window is None else (window,))
    )
    if rule.then is not None:
        expr = _sequence(ctx.attribute(in_window, *fields), rule, ctx, path)
        return expr if rule.did else _negate(expr)
    if not rule.did:
        return _negate(_users_with(ctx, ctx.ids(in_window).user_id))

    conditions = []
    if rule.first_time:
        named = _rule_events(ctx, rule.event, rule.where, where_path)
        conditions.append(_first_time_condition(named, rule, ctx))
    if rule.count is not None:
        conditions.append(_count_condition(in_window, rule.count, ctx))
    if rule.aggregate is not None:
        matching = ctx.attribute(in_window, *fields)
        conditions.append(_aggregate_condition(matching, rule.aggregate, ctx, path))
    if not conditions:
        conditions.append(_users_with(ctx, ctx.ids(in_window).user_id))
    return _all(conditions)


def _per_user(
    events: ir.Table,
    ctx: CompileContext,
    name: str,
    reduce: Callable[[ir.Table], ir.Scalar],
    combine: Callable[[ir.Column], ir.Scalar],
) -> ir.Table:
    """``(user_id, name)``: ``reduce`` of each user's ``events`` (raw events, filtered).

    Reduced per raw id first, then merged identities are applied and ``combine`` joins the
    values of ids merged into one user (a sum of counts, a min of mins): the identity join
    then reads one row per id, not one per event ("Window shoppers" on a million users:
    0.76x the time of joining every Session).
    """
    per_id = events.group_by("user_id").aggregate(**{name: reduce(events)})
    if ctx.migrations is None:
        return per_id
    merged = merge_identities(per_id, ctx.migrations)
    return merged.group_by("user_id").aggregate(**{name: combine(merged[name])})


def _first_time_condition(named: ir.Table, rule: EventRule, ctx: CompileContext) -> ir.BooleanValue:
    # "Started doing": the first ever matching event (any time) lies inside the window.
    firsts = _per_user(named, ctx, "first_at", lambda t: t.time.min(), lambda c: c.min())
    in_window = _window_filter(firsts.first_at, rule.window, ctx)
    if in_window is not None:
        firsts = firsts.filter(in_window)
    return _users_with(ctx, firsts.user_id)


def _count_condition(
    in_window: ir.Table, comparison: Comparison, ctx: CompileContext
) -> ir.BooleanValue:
    if comparison.unit is not None:
        # Distinct periods do not add up over merged ids: merged first.
        matching = ctx.attribute(in_window)
        amount = matching.time.truncate(TRUNCATE[comparison.unit]).nunique()
        per_user = matching.group_by("user_id").aggregate(n=amount)
    else:
        per_user = _per_user(in_window, ctx, "n", lambda t: t.count(), lambda c: c.sum())
    if comparison.holds(0):
        # Users without matching events have a count of 0 and pass: select everyone but those
        # whose (non-zero) count fails, so the query never enumerates the zero-count users.
        failing = per_user.filter(_negate(comparison.test(per_user.n)))
        return _negate(_users_with(ctx, failing.filter(failing.user_id.notnull()).user_id))
    return _users_with(ctx, per_user.filter(comparison.test(per_user.n)).user_id)


def _aggregate_condition(
    matching: ir.Table, aggregate: Aggregate, ctx: CompileContext, path: str
) -> ir.BooleanValue:
    apath = _path(path, "aggregate")
    col = _column(matching, aggregate.field, "event", apath)
    if aggregate.fn != "count_distinct" and not col.type().is_numeric():
        raise SchemaError(
            f"{aggregate.fn} of {aggregate.field!r} needs a number column, "
            f"but the column's type is {col.type()}",
            _path(apath, "fn"),
        )
    method = {"sum": "sum", "avg": "mean", "min": "min", "max": "max", "count_distinct": "nunique"}
    value = getattr(col, method[aggregate.fn])()
    per_user = matching.group_by("user_id").aggregate(v=value)
    # A user with no matching event (or only NULLs) has no value: matches no comparison.
    return _users_with(ctx, per_user.filter(aggregate.comparison.test(per_user.v)).user_id)


def _sequence(
    matching: ir.Table, rule: EventRule, ctx: CompileContext, path: str
) -> ir.BooleanValue:
    then = rule.then
    assert then is not None
    _check_event(then.event, ctx, _path(path, "then.event"))
    seconds = ctx.attribute(_rule_events(ctx, then.event, then.where, _path(path, "then.where")))
    first = matching.select(first_user=matching.user_id, first_time=matching.time)
    second = seconds.select(second_user=seconds.user_id, second_time=seconds.time)
    predicates = [
        first.first_user == second.second_user,
        second.second_time > first.first_time,
    ]
    if then.within is not None:
        predicates.append(
            second.second_time <= first.first_time + _interval(then.within.value, then.within.unit)
        )
    pairs = first.join(second, predicates).select("first_user")
    return _users_with(ctx, pairs.first_user)


def _interval(value: int, unit: str) -> ir.IntervalScalar:
    if unit == "week":
        return ibis.interval(days=7 * value)
    return ibis.interval(**{f"{unit}s": value})


# ---------------------------------------------------------------------------- funnels


def funnel_times(
    rule: FunnelRule, ctx: CompileContext, path: str = "", steps: int | None = None
) -> ir.Table:
    """Per user who entered the funnel: ``user_id``, ``t0`` and ``t1, t2, ...`` (NULL once she
    stopped), the one definition behind funnel rules and the funnel chart's bars.

    ``t0`` is her first step-1 event inside the rule's window (none after ``as_of``); ``tk`` is
    her first step-(k+1) event strictly after ``t(k-1)`` and at most ``within`` after ``t0``.
    Taking the earliest event at each step finds a chain whenever one exists: an earlier ``tk``
    leaves every later event available to the next step. ``steps`` keeps only the first ones
    (the rule needs no step after ``not_reached``).
    """
    count = len(rule.steps) if steps is None else steps
    step_path = _path(path, "steps")
    first = rule.steps[0]
    window = _window_filter(ctx.events.time, rule.window, ctx)
    entries = _rule_events(
        ctx,
        first.event,
        first.where,
        _path(_path(step_path, 0), "where"),
        *(() if window is None else (window,)),
    )
    entries = ctx.attribute(entries)
    times = entries.group_by("user_id").aggregate(t0=entries.time.min())
    limit = None if rule.within is None else _interval(rule.within.value, rule.within.unit)
    for k in range(1, count):
        step = rule.steps[k]
        found = ctx.attribute(
            _rule_events(ctx, step.event, step.where, _path(_path(step_path, k), "where"))
        )
        found = found.select(uid=found.user_id, tk=found.time)
        predicates = [times.user_id == found.uid, found.tk > times[f"t{k - 1}"]]
        if limit is not None:
            predicates.append(found.tk <= times.t0 + limit)
        pairs = times.join(found, predicates)
        nxt = pairs.group_by(uid=pairs.user_id).aggregate(**{f"t{k}": pairs.tk.min()})
        joined = times.left_join(nxt, times.user_id == nxt.uid)
        times = joined.select(*[joined[c] for c in times.columns], **{f"t{k}": joined[f"t{k}"]})
    return times


def _check_funnel_events(rule: FunnelRule, ctx: CompileContext, path: str) -> None:
    for i, step in enumerate(rule.steps):
        _check_event(step.event, ctx, _path(_path(_path(path, "steps"), i), "event"))


def _funnel_rule(rule: FunnelRule, ctx: CompileContext, path: str) -> ir.BooleanValue:
    _check_funnel_events(rule, ctx, path)
    times = funnel_times(rule, ctx, path, rule.needed)
    reached = times[f"t{rule.reached - 1}"].notnull()
    if rule.not_reached is not None:
        reached &= times[f"t{rule.not_reached - 1}"].isnull()
    return _users_with(ctx, times.filter(reached).user_id)


# ---------------------------------------------------------------------------- segment references


def _segment_rule(rule: SegmentRule, ctx: CompileContext, path: str) -> ir.BooleanValue:
    if rule.id in ctx.chain:
        chain = (*ctx.chain, rule.id)
        raise SegmentReferenceError(
            f"{path}: segment reference cycle: {' -> '.join(chain)}", chain=chain
        )
    if ctx.resolver is None:
        raise SegmentReferenceError(
            f"{path}: segment {rule.id!r} is referenced but no catalog was given to resolve it "
            "(connect(..., resolver=catalog) or pass resolver=)",
            chain=(*ctx.chain, rule.id),
        )
    try:
        target = ctx.resolver.resolve_segment(rule.id)
    except SegmentReferenceError:
        raise
    except (KeyError, LookupError) as exc:
        raise SegmentReferenceError(
            f"{path}: unknown segment id {rule.id!r}", chain=(*ctx.chain, rule.id)
        ) from exc
    if isinstance(target, StaticMembers):
        expr = ctx.users.user_id.isin(_static_ids(target, ctx))
    else:
        definition = as_segment(target)
        if not ctx.chain:
            # The first reference checks all below it, references followed, against the limits
            # of one definition: a chain of 300 would recurse past Python's stack before.
            check_references(
                definition,
                _definitions(ctx.resolver, rule.id, definition),
                nesting=path.count("rules["),  # the groups around this rule (no ids in it yet)
                segment_id=rule.id,
                path=path,
            )
        inner = replace(ctx, chain=(*ctx.chain, rule.id))
        expr = _group(definition, inner, f"{path}<{rule.id}>")
    return expr if rule.member else _negate(expr)


def _definitions(resolver: Resolver, known_id: str, known: Group) -> Callable[[str], Group | None]:
    """Referenced definitions by id, for the limits: None for a static segment or an id that
    does not resolve (compiling reports that where it stands)."""

    def definition_of(segment_id: str) -> Group | None:
        if segment_id == known_id:
            return known
        try:
            target = resolver.resolve_segment(segment_id)
            return None if isinstance(target, StaticMembers) else as_segment(target)
        except (HeapsegError, LookupError):
            return None

    return definition_of


def _static_ids(members: StaticMembers, ctx: CompileContext) -> ir.Column:
    ids = members.user_ids
    if isinstance(ids, ir.Table):
        return ids.user_id.cast(ctx.users.user_id.type())
    if isinstance(ids, ir.Column):
        return ids.cast(ctx.users.user_id.type()).name("user_id")
    import pyarrow as pa

    id_type = ctx.users.user_id.type()
    try:
        array = pa.array(list(ids) if not isinstance(ids, pa.Array) else ids)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise SegmentReferenceError(
            f"the frozen members of a static segment are not one kind of id ({exc})",
            chain=ctx.chain,
        ) from exc
    if len(array) == 0:
        array = pa.array([], type=id_type.to_pyarrow())
    table = ibis.memtable(pa.table({"user_id": array}))
    return table.user_id.cast(id_type)
