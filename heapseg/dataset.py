"""Datasets: ibis tables bound to the data model, and segment evaluation (count, members, sql)."""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

from heapseg.as_of import AsOf, resolve_as_of
from heapseg.checks import (
    check_columns,
    check_duckdb_file,
    check_user_ids,
    duckdb_open_error,
    parquet_files,
    parquet_view_sql,
)
from heapseg.compile import (
    CompileContext,
    compile_segment,
    compile_split,
    joined_flags,
    warn_unknown_events,
)
from heapseg.compiled import duckdb_frame, structure_key
from heapseg.errors import DataError, HeapsegError, backend_errors
from heapseg.frames import arrow_to_pandas
from heapseg.hints import VALUE_CHECK_LIMIT
from heapseg.identity import identity_moves, merge_identities
from heapseg.json_properties import (
    MATERIALIZING,
    SHARED_DATABASE,
    JsonProperty,
    check_json_spec,
    expand_json,
    long_names,
    materialize,
)
from heapseg.model import Group, PropertyRule, as_segment
from heapseg.point_in_time import PropertyHistory, joined_by
from heapseg.presets import Preset, get_preset
from heapseg.progress import progress
from heapseg.resolver import Resolver
from heapseg.sampling import BUCKETS, Estimate, check_fraction, estimate, in_sample

__all__ = ["Dataset", "DatasetSchema", "Estimate", "SegmentView", "connect", "resolve_as_of"]

REQUIRED = {
    "users": ("user_id",),
    "events": ("user_id", "time", "event"),
    "accounts": ("account_id",),
    "user_migrations": ("from_user_id", "to_user_id"),
    "user_history": ("user_id",),
    "account_history": ("account_id",),
}
_AUTO = "auto"
_SQL_CACHE_SIZE = 256
#: Compile contexts kept per dataset (one per moment, resolver and setting asked for).
_CONTEXTS_KEPT = 32
#: Expressions kept by Dataset.reuse.
_BUILT_KEPT = 64
#: Numbers the temporary tables of each dataset's samples apart (datasets may share a connection).
_SAMPLE_TABLES = itertools.count(1)


@dataclass(frozen=True)
class DatasetSchema:
    """Property names and types, by kind: what rules may test."""

    user_properties: dict[str, dt.DataType]
    account_properties: dict[str, dt.DataType]
    event_properties: dict[str, dt.DataType]

    def properties(self, kind: str) -> dict[str, dt.DataType]:
        """The properties of ``kind`` (``user``, ``account`` or ``event_property``/``event``)."""
        return {
            "user": self.user_properties,
            "account": self.account_properties,
            "event": self.event_properties,
            "event_property": self.event_properties,
        }[kind]


class Dataset:
    """Users, events and (optionally) accounts on one ibis backend, ready for segments.

    Build one with :func:`heapseg.connect`. Every method runs one backend query and brings back
    only small results; ``members`` stays lazy.

    Every evaluation happens at a moment ``as_of``: events after it are ignored, users who had
    not joined by then are in no segment and not in the total (``joining``), and properties with
    a history table take their value at ``as_of`` (``user_history``, ``account_history``).

    Examples
    --------
    >>> import heapseg
    >>> ds = heapseg.connect()  # the bundled sample: 10,000 users, as of 2026-11-01
    >>> ds.count({"combinator": "and", "rules": [
    ...     {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}]})
    2643
    >>> ds.count(heapseg.user.subscription_type == "paid")  # the same segment in Python
    2643
    """

    def __init__(
        self,
        backend: Any,
        users: ir.Table,
        events: ir.Table,
        accounts: ir.Table | None = None,
        migrations: ir.Table | None = None,
        *,
        user_history: PropertyHistory | None = None,
        account_history: PropertyHistory | None = None,
        joining: bool = True,
        resolver: Resolver | None = None,
        name: str = "dataset",
        default_as_of: AsOf = None,
        _opener: Callable[[], Dataset] | None = None,
    ) -> None:
        self.backend = backend
        self.name = name
        self.resolver = resolver
        self.default_as_of = default_as_of
        self.users = users
        self.accounts = accounts
        self.migrations = migrations
        self.user_history = user_history
        self.account_history = account_history
        #: Users count from when they joined (``users.joined_at``, else their first event);
        #: False: every users row is a user at every ``as_of``.
        self.joining = joining
        #: Facts about the data that let the join test skip work (see :meth:`_joined`).
        self._join_facts: tuple[bool, datetime | None] | None = None
        self.raw_events = events
        self._moves = identity_moves(migrations, events) if migrations is not None else None
        self.events = merge_identities(events, self._moves) if self._moves is not None else events
        self._event_names: list[str] | None = None
        #: String properties' distinct values by (kind, field), for hints (see known_values).
        self._known: dict[tuple[str, str], list[str] | None] = {}
        #: Warn about event names and property values the data has never seen (a UI that shows
        #: them itself turns this off on its worker's dataset rather than filtering warnings
        #: process-wide).
        self.check_events = True
        self._lock = threading.Lock()
        self._opener = _opener
        #: How the tables were made from the source: the preset (if any), the SQL of each view
        #: and the JSON keys read as properties (see :meth:`describe_mapping`).
        self.preset: Preset | None = None
        self.json_properties: dict[str, list[JsonProperty]] = {}
        self._view_sql: dict[str, str] = {}
        #: When the events' JSON keys are read: ``"per query"`` or ``"once"`` (at connect, into
        #: a table; see :func:`heapseg.connect`).
        self.json_events = "per query"
        #: What fills the tables of extracted JSON keys again (see :meth:`refresh`).
        self._refills: list[Callable[[], None]] = []
        #: Those tables by name, and the views they were computed from (for :meth:`sql`).
        self._computed: dict[str, ir.Table] = {}
        #: Compiled SQL by (query, as_of, definitions' JSON), least recently used first.
        self._sql_cache: OrderedDict[tuple, str] = OrderedDict()
        #: The same, by the expression object itself (the expressions :meth:`reuse` keeps), so
        #: that running one again skips even its structure key.
        self._sql_of_object: OrderedDict[int, tuple[ir.Expr, str]] = OrderedDict()
        self._sql_lock = threading.Lock()
        #: Samples of users by (buckets, seed): their users and raw events tables, and the row
        #: counts of users and events they were drawn from (see :meth:`_sample`).
        self._samples: dict[tuple[int, int], tuple[ir.Table, ir.Table, tuple]] = {}
        #: All users by as_of, exact: what estimates scale by (forgotten by :meth:`refresh`).
        self._totals: dict[datetime, int] = {}
        self._contexts: dict[tuple, CompileContext] = {}  # see context()
        self._built: dict[Hashable, Any] = {}  # see reuse()
        self._samples_check: str | None = None
        self._samples_prefix = f"heapseg_sample_{next(_SAMPLE_TABLES)}"

    # ------------------------------------------------------------------ schema

    @property
    def schema(self) -> DatasetSchema:
        """Property names and their ibis types, by kind."""
        users = self.users.schema()
        events = self.events.schema()
        accounts = self.accounts.schema() if self.accounts is not None else {}
        return DatasetSchema(
            user_properties={k: v for k, v in users.items() if k != "user_id"},
            account_properties={k: v for k, v in accounts.items() if k != "account_id"},
            event_properties={
                k: v for k, v in events.items() if k not in ("user_id", "time", "event")
            },
        )

    def event_names(self) -> list[str]:
        """The names of the events in the data, most frequent first (one query, cached)."""
        with self._lock:
            if self._event_names is None:
                counts = self.events.group_by("event").aggregate(n=self.events.count())
                frame = self.execute(counts.order_by([ibis.desc("n"), "event"]))
                self._event_names = [str(v) for v in frame["event"] if v is not None]
            return list(self._event_names)

    def distinct_values(self, kind: str, field: str, limit: int = 50, as_of: AsOf = None) -> list:
        """The most common values of a property (for pickers), most frequent first.

        User and account properties are counted over the users who had joined at ``as_of``
        (default: the dataset's), with their values at ``as_of`` where a history has them.
        """
        kind = kind.replace("event_property", "event")
        table = None
        if kind == "user" and field in self.users.columns:
            table = self.users_at(as_of, [field])
        elif kind == "account" and self.accounts is not None and field in self.accounts.columns:
            table = self.accounts_at(as_of, [field])
        elif kind == "event" and field in self.events.columns:
            table = self.events
        if table is None:
            raise DataError(f"no {kind} property {field!r} in {self.name}")
        present = table.filter(table[field].notnull())
        counts = (
            present.group_by(field)
            .aggregate(n=present.count())
            .order_by([ibis.desc("n"), field])
            .limit(limit)
        )
        return [_plain(v) for v in self.execute(counts)[field]]

    def joined_at_everywhere(self) -> bool:
        """Whether every user has a ``users.joined_at`` (read once with the data's latest event
        time, then cached): no user's join time then comes from her first event."""
        return "joined_at" in self.users.columns and not self._facts()[0]

    def total_users(self, as_of: AsOf = None) -> int:
        """How many users had joined at ``as_of``: the denominator of every share."""
        users = self.users
        return int(self.execute(users.count(where=self.population(as_of))))

    def population(self, as_of: AsOf = None) -> ir.BooleanValue:
        """Whether each user had joined at ``as_of``, as a boolean over :attr:`users`.

        ``users.joined_at`` decides where it is set, else the user's first event; a user with
        neither is always a user. Always true when the dataset was opened with ``joining=False``.
        """
        joined = self.context(as_of).joined
        return joined if joined is not None else ibis.literal(True)

    def users_at(self, as_of: AsOf = None, properties: Sequence[str] | None = None) -> ir.Table:
        """The users who had joined at ``as_of``, with their properties at ``as_of`` (lazy)."""
        return self.members(Group(), as_of, properties)

    def accounts_at(self, as_of: AsOf = None, properties: Sequence[str] | None = None) -> ir.Table:
        """The accounts with their properties at ``as_of`` (from ``account_history`` where it has
        them, else current values), lazy."""
        if self.accounts is None:
            raise DataError(f"{self.name} has no accounts table")
        names = [c for c in (properties or self.accounts.columns) if c != "account_id"]
        return _at(self.accounts, "account_id", names, self.account_history, self.context(as_of))

    def properties_note(
        self, segments: Sequence[Any] | None = None, properties: Sequence[str] = ()
    ) -> str:
        """Where property values come from, in words to show next to an ``as_of``.

        Without arguments, the dataset's general line: ``"user properties as of today"`` where
        there is no history, else which properties are taken at ``as_of``. With ``segments``
        (definitions) and user ``properties`` (e.g. a breakdown's), only what they read: ``""``
        when every property they test has a history (or they test none), else e.g.
        ``"plan, tier: values as of today"``.
        """
        if segments is None and not properties:
            return self._general_note()
        current = [p for p in properties if not self._tracked("user", p)]
        for segment in segments or ():
            for rule in as_segment(segment).walk():
                if (
                    isinstance(rule, PropertyRule)
                    and rule.kind in ("user", "account")
                    and rule.field != "user_id"
                    and not self._tracked(rule.kind, rule.field)
                ):
                    current.append(rule.field)
        current = list(dict.fromkeys(current))
        return f"{', '.join(current)}: values as of today" if current else ""

    def _tracked(self, kind: str, field: str) -> bool:
        history = self.user_history if kind == "user" else self.account_history
        return history is not None and field in history.tracked

    def _general_note(self) -> str:
        parts = []
        for kind, history in (("user", self.user_history), ("account", self.account_history)):
            if kind == "account" and self.accounts is None:
                continue
            if history is None or not history.tracked:
                parts.append(f"{kind} properties as of today")
            else:
                parts.append(f"{kind} {', '.join(history.tracked)} at as_of")
        return "; ".join(parts)

    def values_at(self, table: ir.Table, as_of: AsOf = None) -> ir.Table:
        """``table`` (with ``user_id`` and user-property columns) with the properties that the
        user history tracks replaced by their values at ``as_of``; other columns unchanged."""
        names = [c for c in table.columns if c != "user_id"]
        return _at(table, "user_id", names, self.user_history, self.context(as_of))

    # ------------------------------------------------------------------ segments

    def context(
        self, as_of: AsOf = None, resolver: Resolver | None = None, *, portable: bool = False
    ) -> CompileContext:
        """The compile context at ``as_of`` (for the compiler and for charts built on it).

        ``portable`` spells out the whole join test even where facts about today's data make
        part of it unnecessary (for SQL that is run elsewhere or later).
        """
        moment = self.resolve_as_of(as_of)
        resolver = resolver if resolver is not None else self.resolver
        # A chart asks for the context of its moment several times, and building the join test
        # is ibis work worth doing once; anything the context is made of is in the key.
        tables = (self.users, self.raw_events, self.accounts, self._moves)
        key = (moment, portable, self.joining, self.check_events, *map(id, tables))
        with self._lock:
            found = self._contexts.get(key)
        if found is not None and found.resolver is resolver:
            return found
        ctx = CompileContext(
            users=self.users,
            events=self.raw_events,
            accounts=self.accounts,
            migrations=self._moves,
            as_of=moment,
            resolver=resolver,
            known_events=self._known_events if self.check_events else None,
            known_values=self.known_values if self.check_events else None,
            user_history=self.user_history,
            account_history=self.account_history,
            aliases=self._long_names(),
        )
        if self.joining:
            ctx = replace(ctx, joined=self._joined(ctx, portable))
        with self._lock:
            self._contexts[key] = ctx
            while len(self._contexts) > _CONTEXTS_KEPT:
                del self._contexts[next(iter(self._contexts))]
        return ctx

    def _long_names(self) -> dict[tuple[str, str], str]:
        """JSON keys by their long names too (``properties.plan`` for ``plan``)."""
        if not self.json_properties:
            return {}
        schema = self.schema
        taken = {
            "user": schema.user_properties,
            "account": schema.account_properties,
            "event": schema.event_properties,
        }
        return long_names(self.json_properties, taken)

    def reuse(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """What ``build()`` gives, built once per ``key`` (and the dataset's settings) until
        :meth:`refresh`: for the ibis expressions a chart builds again from the same arguments,
        since ibis builds large expressions slowly. ``key`` must hold everything ``build``
        depends on, apart from the dataset itself.
        """
        key = (key, self.joining, self.check_events)
        with self._lock:
            if key in self._built:
                return self._built[key]
        value = build()
        with self._lock:
            self._built[key] = value
            while len(self._built) > _BUILT_KEPT:
                del self._built[next(iter(self._built))]
        return value

    def resolve_as_of(self, as_of: AsOf = None) -> datetime:
        """``as_of`` as a naive UTC datetime: ``as_of``, else the dataset's default, else now."""
        return resolve_as_of(as_of, self.default_as_of)

    def predicate(
        self, segment: Any, as_of: AsOf = None, resolver: Resolver | None = None
    ) -> ir.BooleanValue:
        """The segment as a boolean expression over :attr:`users` (joining included)."""
        return compile_segment(as_segment(segment), self.context(as_of, resolver))

    def members(
        self,
        segment: Any,
        as_of: AsOf = None,
        properties: Sequence[str] | None = None,
        resolver: Resolver | None = None,
    ) -> ir.Table:
        """The segment's users as a lazy ibis table: ``user_id`` plus user properties at ``as_of``.

        ``properties`` picks the columns after ``user_id`` (default: all user properties).
        Properties that the user history tracks take their value at ``as_of``.
        Call ``.head()``, ``.count()`` or ``.to_pandas()`` on the result (nothing runs before);
        :meth:`to_pandas` of the dataset gives the rows with nullable types (``Int64``,
        ``string``, ``boolean``) instead of ibis's floats and NaN for missing values.
        """
        return self._members(self.context(as_of, resolver), segment, properties)

    def _members(
        self, ctx: CompileContext, segment: Any, properties: Sequence[str] | None
    ) -> ir.Table:
        selected = self.users.filter(compile_segment(as_segment(segment), ctx))
        if properties is None:
            names = [c for c in self.users.columns if c != "user_id"]
        else:
            unknown = [p for p in properties if p not in self.users.columns]
            if unknown:
                raise DataError(
                    f"unknown user properties {unknown}; known: {', '.join(self.users.columns)}"
                )
            names = [p for p in properties if p != "user_id"]
        return _at(selected, "user_id", names, self.user_history, ctx)

    def count(
        self,
        segment: Any,
        as_of: AsOf = None,
        resolver: Resolver | None = None,
        *,
        sample: float | None = None,
        seed: int = 0,
    ) -> Any:
        """How many users are in the segment at ``as_of`` (one backend query).

        On DuckDB the query compiled for a definition and ``as_of`` is kept and reused (see
        :meth:`clear_query_cache`), unless the definition refers to saved segments.

        Parameters
        ----------
        segment
            A definition (model object, fluent rule or format-1 dict).
        as_of, resolver
            The moment, and what resolves ``segment`` rules (default: the dataset's).
        sample
            ``None`` (default): the exact count, an ``int``. A share of users in (0, 1]: an
            :class:`~heapseg.sampling.Estimate` (estimate, 95% interval) computed on that share
            of the users, drawn deterministically from ``user_id`` with all their events, so
            every rule is exact for them; only the segment's share is estimated and scaled to
            all users. On DuckDB the sample's users and events are copied once into temporary
            tables (kept until :meth:`refresh` or until the tables' row counts change), so
            estimates cost a fraction of an exact count; elsewhere the sample is a filter.
        seed
            Which sample: another seed draws other users.

        Examples
        --------
        >>> import heapseg
        >>> ds = heapseg.connect()
        >>> shoppers = (heapseg.did("Session").times() > 5) & heapseg.did_not("Completed Order")
        >>> ds.count(shoppers)
        1944
        >>> rough = ds.count(shoppers, sample=0.2)
        >>> rough.low <= 1944 <= rough.high
        True
        """
        if sample is not None:
            found = self.counts({"segment": segment}, as_of, resolver, sample=sample, seed=seed)
            return found["segment"]
        seg = as_segment(segment)
        moment = self.resolve_as_of(as_of)

        def build() -> ir.Expr:
            # Members without their property columns: a count needs no values at as_of.
            # "did not" rules at the top become anti joins, which engines plan better.
            predicate, excluded = compile_split(seg, self.context(moment, resolver))
            users, shaped = self._shaped(self.users, {"segment": predicate}, filtering=True)
            # Only the ids: ibis builds and compiles a narrow relation faster.
            kept = users.filter(shaped["segment"]).select("user_id")
            for ids in excluded:
                kept = kept.anti_join(ids, kept.user_id == ids.user_id)
            return kept.count()

        return int(self._fetch_row("count", moment, [seg], build)[0])

    def counts(
        self,
        segments: Mapping[str, Any],
        as_of: AsOf = None,
        resolver: Resolver | None = None,
        *,
        sample: float | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        """The counts of several segments (and ``__total__``, all users) in one backend query.

        With ``sample`` (see :meth:`count`) each segment's count is an
        :class:`~heapseg.sampling.Estimate`, all from one query on the sample; ``__total__``
        stays exact.
        """
        if sample is not None:
            return self._estimated_counts(segments, as_of, resolver, check_fraction(sample), seed)
        if not segments:
            return {"__total__": self.total_users(as_of)}
        defs = [as_segment(seg) for seg in segments.values()]
        moment = self.resolve_as_of(as_of)

        def build() -> ir.Expr:
            conditions = {
                "__total__": self.population(moment),
                **{f"s{i}": self.predicate(seg, moment, resolver) for i, seg in enumerate(defs)},
            }
            users, shaped = self._shaped(self.users, conditions)
            return users.aggregate(**{k: users.count(where=c) for k, c in shaped.items()})

        total, *values = self._fetch_row("counts", moment, defs, build)
        out = {name: int(n) for name, n in zip(segments, values, strict=True)}
        out["__total__"] = int(total)
        with self._lock:
            self._totals[moment] = int(total)
        return out

    def _estimated_counts(
        self,
        segments: Mapping[str, Any],
        as_of: AsOf,
        resolver: Resolver | None,
        fraction: float,
        seed: int,
    ) -> dict[str, Any]:
        """Estimates of the segments' counts from one query on the sample (see :meth:`count`)."""
        defs = [as_segment(seg) for seg in segments.values()]
        moment = self.resolve_as_of(as_of)
        users, events, merged = self._sample(fraction, seed)

        def build() -> ir.Expr:
            ctx = replace(self.context(moment, resolver), users=users, events=events, joined=None)
            if merged:  # the copy's events carry the ids they were merged into: no join
                ctx = replace(ctx, migrations=None)
            if self.joining:
                ctx = replace(ctx, joined=self._joined(ctx, portable=False))
            population = ctx.joined if ctx.joined is not None else ibis.literal(True)
            conditions = {
                "__sampled__": population,
                **{f"s{i}": compile_segment(seg, ctx) for i, seg in enumerate(defs)},
            }
            sampled, shaped = self._shaped(users, conditions)
            return sampled.aggregate(**{k: sampled.count(where=c) for k, c in shaped.items()})

        query = f"sample {round(fraction * BUCKETS)} {seed}"
        sampled, *values = self._fetch_row(query, moment, defs, build)
        total = self._total_at(moment)
        out: dict[str, Any] = {
            name: estimate(int(n), int(sampled), total, fraction)
            for name, n in zip(segments, values, strict=True)
        }
        out["__total__"] = total
        return out

    def _shaped(
        self, users: ir.Table, conditions: dict[str, ir.BooleanValue], filtering: bool = False
    ) -> tuple[ir.Table, dict[str, ir.BooleanValue]]:
        """``users`` and ``conditions`` over it in the shape the backend plans best: on
        PostgreSQL each ``IN (subquery)`` becomes a left join, once (see
        :func:`~heapseg.compile.joined_flags`); elsewhere as they are."""
        if _dialect(self.backend) != "postgres":
            return users, conditions
        return joined_flags(users, conditions, "postgres", filtering=filtering)

    def _total_at(self, moment: datetime) -> int:
        """All users at ``moment``, exact (kept: estimates ask for it at every edit)."""
        with self._lock:
            known = self._totals.get(moment)
        if known is None:
            known = self.total_users(moment)
            with self._lock:
                self._totals[moment] = known
        return known

    def _sample(self, fraction: float, seed: int) -> tuple[ir.Table, ir.Table, bool]:
        """The users in the sample of ``fraction`` drawn with ``seed``, their events (with the
        events of the anonymous ids merged into them), and whether those events already carry
        the merged ids (the DuckDB copy does; otherwise they are raw events).

        On DuckDB both are copied into temporary tables of this connection: a query on them
        reads the sample's events only, where a filter would scan every event each time. Its
        events carry merged ids (no identity join per estimate) and are sorted by event and
        time, so a rule reads its own event's row groups only. The copy is made again after
        :meth:`refresh`, or when the users or events tables no longer have the row counts it
        was made from (one cheap query per estimate checks that). On PostgreSQL too (analysed, so that their joins are planned well), made again after
        :meth:`refresh` only: counting the events there reads them all.
        """
        key = (round(fraction * BUCKETS), seed)
        dialect = _dialect(self.backend)
        duckdb = dialect == "duckdb"
        rows = self._row_counts() if duckdb else ()
        with self._lock:
            found = self._samples.get(key)
        if found is not None and found[2] == rows:
            return found[0], found[1], duckdb
        if found is not None:  # the data changed under an open dataset
            with self._lock:
                self._totals.clear()
        users = self.users.filter(in_sample(self.users.user_id, fraction, seed))
        raw = self.raw_events
        ids = users.user_id.cast(raw.user_id.type())
        keep = raw.user_id.isin(ids)
        if self._moves is not None:
            moves = self._moves
            merged = moves.filter(moves._to.isin(ids))._from
            if dialect == "postgres":
                # One IN, a hash semi join: PostgreSQL runs an OR of two as a test per event.
                keep = raw.user_id.isin(
                    ibis.union(ids.as_table(), merged.name(ids.get_name()).as_table()).user_id
                )
            else:
                keep = keep | raw.user_id.isin(merged)
        events = raw.filter(keep)
        if dialect not in ("duckdb", "postgres") or events.op().find(ops.InMemoryTable):
            # Nothing to copy: the filter is cheap to build again, so it is not kept.
            return users, events, False
        if duckdb:
            # Identities merged once here rather than by a join in every estimate; sorted by
            # event and time, so that a rule's scan skips other events' row groups (the
            # estimates of "Window shoppers" on a million users ran 3-4x faster).
            events = self.events.filter(self.events.user_id.isin(ids)).order_by("event", "time")
        copies = []
        for part, expr in (("users", users), ("events", events)):
            name = f"{self._samples_prefix}_{key[0]}_{key[1]}_{part}".replace("-", "m")
            with backend_errors(f"cannot copy the sample into a {dialect} temporary table"):
                if duckdb:
                    sql = str(self.backend.compile(expr))
                    self.backend.con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {sql}')
                else:
                    self._postgres_copy(name, expr, indexed=part == "events")
                copies.append(self.backend.table(name))
        with self._lock:
            self._samples[key] = (copies[0], copies[1], rows)
        return copies[0], copies[1], duckdb

    def _postgres_copy(self, name: str, expr: ir.Table, indexed: bool) -> None:
        """``expr`` into the temporary table ``name``, analysed; events stored in the order of an
        index on (event, user_id, time), so that a rule reads its own event's rows only."""
        if indexed:
            expr = expr.order_by("event", "user_id", "time")
        self.backend.create_table(name, expr, temp=True, overwrite=True)
        if indexed:
            self.backend.raw_sql(f'CREATE INDEX ON "{name}" (event, user_id, time)').close()
        self.backend.raw_sql(f'ANALYZE "{name}"').close()

    def _row_counts(self) -> tuple:
        """The row counts of the users and events tables (one query; its SQL compiled once)."""
        with self._lock:
            sql = self._samples_check
        if sql is None:
            parts = (self.backend.compile(t.count()) for t in (self.users, self.raw_events))
            sql = "SELECT " + ", ".join(f"({part})" for part in parts)
            with self._lock:
                self._samples_check = sql
        return self._first_row_of_sql(sql)

    def clear_query_cache(self) -> None:
        """Forget the SQL compiled for earlier counts and queries (benchmarks use it to time cold
        runs)."""
        with self._sql_lock:
            self._sql_cache.clear()
            self._sql_of_object.clear()

    def refresh(self) -> None:
        """Forget what was read from the data once: event names, the two facts the join test
        uses (whether some user lacks ``joined_at``, the latest event time) and compiled SQL.

        Call it when the tables have changed (new events loaded) and the dataset stays open.
        """
        with self._lock:
            self._event_names = None
            self._known.clear()
            self._join_facts = None
            self._totals.clear()
            self._contexts.clear()
            self._built.clear()
            self._samples.clear()  # the temporary copies are replaced when next asked for
        for refill in self._refills:
            refill()
        self.clear_query_cache()

    def membership(
        self, segments: Mapping[str, Any], as_of: AsOf = None, resolver: Resolver | None = None
    ) -> ir.Table:
        """One row per user: ``user_id`` and a boolean column per segment (lazy, one query).

        The way to put users into several segments at once, e.g. to group a chart by segments
        or to compare many definitions with one scan.
        """
        predicates = {name: self.predicate(seg, as_of, resolver) for name, seg in segments.items()}
        users, shaped = self._shaped(self.users, predicates)
        flags = {name: ibis.coalesce(p, ibis.literal(False)) for name, p in shaped.items()}
        return users.select("user_id", **flags)

    def flag(
        self,
        segment: Any,
        table: ir.Table | None = None,
        as_of: AsOf = None,
        resolver: Resolver | None = None,
    ) -> ir.BooleanValue:
        """A membership flag for any table with a ``user_id`` column (users, events, ...).

        Use it to filter (``t.filter(flag)``, ``~flag`` for outside the segment) or to group
        (``t.mutate(in_seg=flag)``).
        """
        pred = self.predicate(segment, as_of, resolver)
        if table is None or table is self.users:
            return pred
        if "user_id" not in table.columns:
            raise DataError("flag() needs a table with a user_id column")
        return table.user_id.isin(self.users.filter(pred).user_id)

    def sql(
        self,
        segment: Any,
        as_of: AsOf = None,
        properties: Sequence[str] | None = None,
        dialect: str | None = None,
    ) -> str:
        """The SQL that selects the segment's members, ready to paste into the warehouse.

        It carries the whole evaluation at ``as_of``: joining and property history included.
        """
        expr = self._members(self.context(as_of, portable=True), segment, properties)
        dialect = dialect or _dialect(self.backend)
        text = str(ibis.to_sql(expr, dialect=dialect))
        for name, view in self._computed.items():
            # A table heapseg computed once (JSON keys read) exists only here: its query instead.
            quoted = ".".join(f'"{part}"' for part in name.split("."))
            text = text.replace(quoted, f"({ibis.to_sql(view, dialect=dialect)})")
        return text

    def segment(self, segment: Any, as_of: AsOf = None) -> SegmentView:
        """The segment bound to this dataset: shows its count and share in the notebook."""
        return SegmentView(self, as_segment(segment), self.resolve_as_of(as_of))

    # ------------------------------------------------------------------ plumbing

    def for_thread(self) -> Dataset:
        """A dataset on its own connection (a DuckDB cursor), safe to use from another thread."""
        if self._opener is None:
            return self
        other = self._opener()
        other.joining = self.joining
        other._join_facts = self._join_facts
        other._known = self._known  # the same data: read its values once
        return other

    def _joined(self, ctx: CompileContext, portable: bool) -> ir.BooleanValue:
        """The join test at ``ctx.as_of``; unless ``portable``, without the first-event scan
        where two facts read once from the data show it changes nothing: no user lacks a
        ``joined_at``, or no event lies after ``as_of``."""
        merged = lambda: ctx.attribute(ctx.events)  # noqa: E731
        if portable:
            return joined_by(ctx.users, ctx.as_of, ctx.timestamp, merged)
        unset_join, latest = self._facts()
        needs_events = unset_join and latest is not None and ctx.as_of < latest
        return joined_by(ctx.users, ctx.as_of, ctx.timestamp, merged if needs_events else None)

    def _facts(self) -> tuple[bool, datetime | None]:
        """(whether some user has no ``joined_at``, the latest event time): one query, cached."""
        with self._lock:
            if self._join_facts is None:
                users, events = self.users, self.raw_events
                facts = events.aggregate(latest=events.time.max())
                if "joined_at" in users.columns:
                    facts = facts.cross_join(users.aggregate(unset=users.joined_at.isnull().any()))
                row = self.execute(facts)
                latest = row["latest"].iloc[0]
                unset = bool(row["unset"].iloc[0]) if "unset" in row.columns else True
                self._join_facts = (unset, _ceil_to_microsecond(latest))
            return self._join_facts

    def _known_events(self) -> set[str]:
        return set(self.event_names())

    def known_values(self, kind: str, field: str) -> list[str] | None:
        """The distinct values of a string property, to tell a rule's value the data does not
        hold (``"Gold"`` where the data says ``"gold"``): one query per property, cached until
        :meth:`refresh`. ``None`` when the property is not a string column or has more than
        :data:`~heapseg.hints.VALUE_CHECK_LIMIT` values (then nothing can be told).

        User and account properties include the values their history table holds.
        """
        kind = "event" if kind == "event_property" else kind
        with self._lock:
            if (kind, field) in self._known:
                return self._known[(kind, field)]
        tables = {
            "user": [self.users, self.user_history.table if self._tracked("user", field) else None],
            "account": [
                self.accounts,
                self.account_history.table if self._tracked("account", field) else None,
            ],
            "event": [self.raw_events],
        }.get(kind, [])
        parts = [
            t.select(value=t[field]).filter(t[field].notnull())
            for t in tables
            if t is not None and field in t.columns and t[field].type().is_string()
        ]
        found: list[str] | None = None
        if parts:
            # ibis.union of one table is that table: distinct() dedupes in every case.
            query = ibis.union(*parts).distinct().limit(VALUE_CHECK_LIMIT + 1)
            try:
                values = sorted(str(v) for v in self.execute(query)["value"])
            except HeapsegError:
                values = []  # a hint is not worth a failure: no check
            found = values if 0 < len(values) <= VALUE_CHECK_LIMIT else None
        with self._lock:
            self._known[(kind, field)] = found
        return found

    def _fetch_row(
        self,
        query: str,
        as_of: datetime,
        segments: Sequence[Group],
        build: Callable[[], ir.Expr],
    ) -> tuple:
        """The one row of the query ``build()`` makes from ``segments``.

        On DuckDB the SQL compiled for the same definitions and ``as_of`` is reused: building and
        compiling the ibis expression takes 13-25 ms, up to half as long as the query itself on
        100,000 users, and notebooks and live counts ask for the same definitions again.
        Definitions that refer to saved segments are compiled afresh every time, since the
        catalog may have changed what they select, and so are queries over in-memory tables;
        other engines always go through ibis, where the warehouse's latency dominates.
        """
        if _dialect(self.backend) != "duckdb" or any(s.referenced_segments() for s in segments):
            return _first_row(self.execute(build()))
        # JSON, not the objects: frozen dataclasses hash True like 1 and 1 like 1.0.
        key = (query, as_of, tuple(s.to_json(sort_keys=True) for s in segments))
        with self._sql_lock:
            sql = self._sql_cache.get(key)
            if sql is not None:
                self._sql_cache.move_to_end(key)
        if sql is not None:
            if self.check_events:
                ctx = self.context(as_of)
                for segment in segments:
                    warn_unknown_events(segment, ctx)
        else:
            expr = build()
            if expr.op().find(ops.InMemoryTable):
                # ibis registers in-memory tables with DuckDB just before it runs a query.
                return _first_row(self.execute(expr))
            with backend_errors("cannot compile the query for DuckDB"):
                sql = str(self.backend.compile(expr))
            with self._sql_lock:
                self._sql_cache[key] = sql
                while len(self._sql_cache) > _SQL_CACHE_SIZE:
                    self._sql_cache.popitem(last=False)
        return self._first_row_of_sql(sql)

    def _first_row_of_sql(self, sql: str) -> tuple:
        """Run compiled SQL on the DuckDB connection and fetch its first row."""
        import duckdb

        try:
            row = self.backend.con.execute(sql).fetchone()
        except duckdb.Error as exc:
            raise DataError(f"the duckdb backend failed: {exc}") from exc
        if row is None:
            raise DataError("the duckdb backend returned no row for an aggregate")
        return tuple(row)

    def execute(self, expr: ir.Expr) -> Any:
        """Run an ibis expression on the backend; failures become :class:`DataError`.

        In a terminal, a query that runs for more than a few seconds shows a clock on stderr.
        On DuckDB the SQL compiled for an expression of the same structure (see
        :func:`~heapseg.compiled.structure_key`) is reused: a chart drawn again, or a query
        asked again, skips ibis's compiler, which can take as long as the query.
        """
        with backend_errors(f"the {_dialect(self.backend)} backend failed"), progress("query"):
            if _dialect(self.backend) != "duckdb":
                return expr.execute()
            with self._sql_lock:
                known = self._sql_of_object.get(id(expr))
            if known is not None and known[0] is expr:
                return duckdb_frame(self.backend, expr, known[1])
            key = structure_key(expr)
            if key is None:
                return expr.execute()
            with self._sql_lock:
                sql = self._sql_cache.get(("expression", key))
                if sql is not None:
                    self._sql_cache.move_to_end(("expression", key))
            if sql is None:
                sql = str(self.backend.compile(expr.as_table()))
            with self._sql_lock:
                self._sql_cache[("expression", key)] = sql
                while len(self._sql_cache) > _SQL_CACHE_SIZE:
                    self._sql_cache.popitem(last=False)
                # The object is kept with its SQL, so its id can't be taken by another one.
                self._sql_of_object[id(expr)] = (expr, sql)
                while len(self._sql_of_object) > _BUILT_KEPT:
                    self._sql_of_object.popitem(last=False)
            return duckdb_frame(self.backend, expr, sql)

    def to_pandas(self, table: ir.Table | ir.Column) -> Any:
        """Run an ibis table (e.g. a page of :meth:`members`) and give its rows as a pandas
        DataFrame that keeps the data's types: integers with gaps stay integers (``Int64``),
        text is ``string`` and booleans ``boolean``, each missing value ``<NA>``.

        ``table.to_pandas()`` (ibis) turns an integer column with a gap into floats (``366.0``)
        and missing text into ``NaN``.

        Examples
        --------
        >>> import heapseg
        >>> ds = heapseg.connect()
        >>> page = ds.members(heapseg.user.subscription_type == "paid", properties=["account_id"])
        >>> ds.to_pandas(page.order_by("user_id").limit(3))
           user_id  account_id
        0        4         366
        1        5          28
        2       15         954
        """
        with backend_errors(f"the {_dialect(self.backend)} backend failed"), progress("query"):
            return arrow_to_pandas(table.as_table().to_pyarrow())

    def table_counts(self) -> dict[str, int]:
        """Row counts of the bound tables, in one query."""
        tables = {"users": self.users, "events": self.raw_events}
        if self.accounts is not None:
            tables["accounts"] = self.accounts
        if self.migrations is not None:
            tables["user_migrations"] = self.migrations
        for history in (self.user_history, self.account_history):
            if history is not None:
                tables[history.label] = history.table
        parts = [t.aggregate(table=ibis.literal(n), rows=t.count()) for n, t in tables.items()]
        frame = self.execute(ibis.union(*parts))
        return {str(r.table): int(r.rows) for r in frame.itertuples()}

    def _repr_html_(self) -> str:
        counts = self.table_counts()
        schema = self.schema
        rows = "".join(
            f"<tr><td>{escape(t)}</td><td style='text-align:right'>{n:,}</td></tr>"
            for t, n in counts.items()
        )
        props = "".join(
            f"<tr><td>{kind}</td><td>{escape(', '.join(f'{k} ({v})' for k, v in d.items()))}</td></tr>"
            for kind, d in (
                ("user", schema.user_properties),
                ("account", schema.account_properties),
                ("event", schema.event_properties),
            )
            if d
        )
        return (
            f"<div class='heapseg-dataset'><b>heapseg dataset</b> {escape(self.name)} "
            f"on {escape(_dialect(self.backend))}"
            f"<table><tr><th>table</th><th>rows</th></tr>{rows}</table>"
            f"<table><tr><th>kind</th><th>properties</th></tr>{props}</table>"
            f"<p>{escape(self.time_note())}</p>{self._mapping_html()}</div>"
        )

    def describe_mapping(self) -> str:
        """How the source became users and events, as text to copy and adapt: the preset in
        words, the JSON keys read as properties, and each table as SQL in the backend's dialect
        (a view to create, then bound with ``connect(con, users="users", ...)``).

        Examples
        --------
        >>> import heapseg
        >>> print(heapseg.connect().describe_mapping().splitlines()[0])
        -- heapseg dataset sample on duckdb: the tables it reads, as SQL views
        """
        lines = [
            f"-- heapseg dataset {self.name} on {_dialect(self.backend)}: "
            "the tables it reads, as SQL views"
        ]
        if self.preset is not None:
            lines += [f"-- {line}" for line in self.preset.describe().splitlines()]
        for role, props in self.json_properties.items():
            for prop in props:
                lines.append(f"-- {role}.{prop.name}: {prop.kind} from JSON {prop.source}")
        if self.json_properties.get("events"):
            lines.append(
                "-- events' JSON keys: read once at connect into a table of the session, sorted "
                "by event and time (json_events='once'; ds.refresh() reads them again)"
                if self.json_events == "once"
                else "-- events' JSON keys: read by every query (json_events='per query')"
            )
        tables = self._bound_tables()
        for role, table in tables.items():
            sql = self._view_sql.get(role)
            if sql is None:
                with backend_errors(f"cannot compile the {role} view"):
                    sql = str(self.backend.compile(table, pretty=True))
            lines.append(f"CREATE VIEW {role} AS\n{sql};")
        keywords = ", ".join(f'{r}="{r}"' for r in tables)
        missing = [r for r in REQUIRED if r not in tables]
        keywords += "".join(f", {r}=None" for r in missing)
        lines.append(f"-- then: ds = heapseg.connect(con, {keywords})")
        return "\n".join(lines)

    def _bound_tables(self) -> dict[str, ir.Table]:
        tables: dict[str, ir.Table | None] = {
            "users": self.users,
            "events": self.raw_events,
            "accounts": self.accounts,
            "user_migrations": self.migrations,
            "user_history": self.user_history.table if self.user_history else None,
            "account_history": self.account_history.table if self.account_history else None,
        }
        return {role: table for role, table in tables.items() if table is not None}

    def _mapping_html(self) -> str:
        if self.preset is None and not self.json_properties:
            return ""
        what = f"preset {self.preset.name} ({self.preset.title})" if self.preset else "mapping"
        keys = sum(len(p) for p in self.json_properties.values())
        json_note = f", {keys} properties read from JSON" if keys else ""
        return (
            f"<details><summary>{escape(what)}{json_note}: ds.describe_mapping()</summary>"
            f"<pre>{escape(self.describe_mapping())}</pre></details>"
        )

    def time_note(self) -> str:
        """How this dataset treats time: joining and property history, in one line."""
        if not self.joining:
            joining = "every user counts at every as_of (joining off)"
        elif "joined_at" in self.users.columns:
            joining = "users count from joined_at (else their first event)"
        else:
            joining = "users count from their first event"
        histories = [h.describe() for h in (self.user_history, self.account_history) if h]
        history = "history: " + "; ".join(histories) if histories else "no property history"
        return f"{joining}; {history}; {self.properties_note()}"

    def __repr__(self) -> str:
        return f"<heapseg.Dataset {self.name} on {_dialect(self.backend)}>"


class SegmentView:
    """A segment evaluated on a dataset at an ``as_of``: count, share and a first page of members."""

    def __init__(self, dataset: Dataset, segment: Group, as_of: datetime) -> None:
        self.dataset = dataset
        self.definition = segment
        self.as_of = as_of
        counts = dataset.counts({"segment": segment}, as_of)
        self.count = counts["segment"]
        self.total = counts["__total__"]

    @property
    def share(self) -> float:
        """The segment's share of all users (0..1)."""
        return self.count / self.total if self.total else 0.0

    def members(self, properties: Sequence[str] | None = None) -> ir.Table:
        """The members as a lazy ibis table."""
        return self.dataset.members(self.definition, self.as_of, properties)

    def page(self, number: int = 0, size: int = 20) -> Any:
        """One page of members (a pandas DataFrame), ordered by user_id."""
        table = self.members().order_by("user_id").limit(size, offset=number * size)
        return self.dataset.to_pandas(table)

    def _repr_html_(self) -> str:
        page = self.page(0, 10)
        return (
            "<div class='heapseg-segment'>"
            f"<b>Segment</b>: {escape(self.definition.describe())}<br>"
            f"<b>{self.count:,}</b> users ({self.share:.1%} of {self.total:,}) "
            f"as of {self.as_of.isoformat(sep=' ')} UTC"
            f"{page.to_html(index=False, max_rows=10)}"
            f"<i>first {len(page)} of {self.count:,} members</i></div>"
        )

    def __repr__(self) -> str:
        return (
            f"<Segment {self.definition.describe()!r}: {self.count} users "
            f"({self.share:.1%}) as of {self.as_of.isoformat()}>"
        )


# ---------------------------------------------------------------------------- connect


def connect(
    source: Any = None,
    *,
    users: str | ir.Table = "users",
    events: str | ir.Table = "events",
    accounts: str | ir.Table | None = _AUTO,
    user_migrations: str | ir.Table | None = _AUTO,
    user_history: str | ir.Table | None = _AUTO,
    account_history: str | ir.Table | None = _AUTO,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    database: Any = None,
    resolver: Resolver | None = None,
    as_of: AsOf = None,
    joining: bool = True,
    on_bad_ids: str = "raise",
    preset: str | Preset | None = None,
    json: Mapping[str, Any] | None = None,
    json_events: str = "per query",
) -> Dataset:
    """Open a dataset: the bundled sample, a DuckDB file, a Parquet folder or an ibis backend.

    Parameters
    ----------
    source
        ``None`` for the bundled sample data; a path to a DuckDB file or to a folder of Parquet
        files (``users.parquet``, ``events.parquet`` or ``events/*.parquet``, ...); or any ibis
        backend connection (``ibis.postgres.connect(...)``, ``ibis.pyspark.connect(...)``).
    users, events, accounts, user_migrations
        Table names (or ibis tables). ``accounts`` and ``user_migrations`` are used when such a
        table exists unless set to ``None``. A ``joined_at`` column of ``users`` (timestamp or
        date) says when each user joined.
    user_history, account_history
        Property history tables (names or ibis tables; by default ``user_history`` and
        ``account_history`` when such tables exist). Snapshots form: ``user_id`` (or
        ``account_id``), ``valid_from``, ``valid_to`` (NULL: still valid) and property columns,
        as dbt snapshots keep them. Changes form: ``user_id``, ``time`` and property columns,
        each row setting the non-NULL ones, as Segment's ``identifies``. Columns that the users
        (accounts) table also has take their values at ``as_of`` from the history.
    columns
        Column mapping per table, model name to source name, for warehouses named otherwise:
        ``{"events": {"event": "event_table_name"}, "users": {"joined_at": "joindate"},
        "user_history": {"valid_from": "dbt_valid_from", "valid_to": "dbt_valid_to"}}``.
    database
        Passed to the backend's ``table()`` (a schema or catalog.schema).
    resolver
        Resolves ``kind: segment`` references (a :class:`heapseg.Catalog`).
    as_of
        The default ``as_of`` of every evaluation (e.g. the sample's fixed date).
    joining
        Users count from when they joined: ``users.joined_at`` where set, else their first
        event (a user with neither is always a user). ``False`` makes every ``users`` row a
        user at every ``as_of``, for data whose users table has no time.
    on_bad_ids
        The users table's ids are checked once, with one aggregate query: a NULL or
        duplicated ``user_id``, or ids of another type than ``events.user_id``, raise a
        :class:`DataError` naming them (``"raise"``). ``"warn"`` goes on with a
        :class:`heapseg.checks.UserIdWarning`: NULL ids left out, one row kept per id,
        events' ids compared as the users' type; no user ever counts twice.
    preset
        Read a warehouse as its pipeline laid it out: ``"segment"`` (or ``"rudderstack"``),
        ``"heap"``, ``"posthog"``, ``"amplitude"`` or ``"snowplow"`` (see
        :mod:`heapseg.presets`). The preset builds the users, events, identity merges and
        history from the source's own tables; the table and column arguments are then unused
        (``database`` says where the tables are, e.g. ``"atomic"`` for Snowplow).
        :meth:`Dataset.describe_mapping` shows what it built.
    json
        JSON columns whose keys are properties, by table: ``{"users": "properties"}`` (keys and
        types found in the data by one aggregate query) or
        ``{"events": {"properties": {"plan": "string", "seats": "int"}}}`` (declared). Each key
        becomes a property named by its path (``plan``, ``address.city``), read by the engine's
        own JSON functions; a missing key, a JSON ``null`` or a value of another type is unset.
        The keys of users, accounts and history tables are read once into a table of the
        session (DuckDB, PostgreSQL); the events' as ``json_events`` says.
    json_events
        When the events' JSON keys (of ``json=`` or a preset) are read. ``"per query"``
        (default): by every query that reads events, so connect copies nothing. ``"once"``: at
        connect, into a table of the session holding the events' columns and keys and no JSON
        (DuckDB: sorted by event and time, in an in-memory database every thread's cursor
        shares; PostgreSQL: a temporary table), so that a rule on an event's key costs what a
        rule on a column costs (less on DuckDB, for the sort); it takes seconds and memory in
        proportion to the events (on DuckDB about 10 s more and up to 0.9 GB for 6.6 million
        events with two keys), and :meth:`Dataset.refresh` reads them again. Other engines
        raise a :class:`DataError`.

    Examples
    --------
    The bundled sample (built once into ``~/.cache/heapseg``, or ``$HEAPSEG_DATA_DIR``):

    >>> import heapseg
    >>> ds = heapseg.connect()
    >>> ds.count(heapseg.did("Completed Order").last(30, "day"))
    851

    Any ibis backend, here an in-memory DuckDB with two small tables:

    >>> import ibis
    >>> import pandas as pd
    >>> con = ibis.duckdb.connect()
    >>> _ = con.create_table("users", pd.DataFrame({"user_id": [1, 2, 3],
    ...                                             "plan": ["paid", "free", "paid"]}))
    >>> _ = con.create_table("events", pd.DataFrame({
    ...     "user_id": [1, 1, 2, 3],
    ...     "time": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-02", "2026-10-03"]),
    ...     "event": ["Session", "Session", "Session", "Session"]}))
    >>> ds = heapseg.connect(con, as_of="2026-11-01")
    >>> ds.count((heapseg.user.plan == "paid") & (heapseg.did("Session").times() > 1))
    1
    """
    names = {
        "users": users,
        "events": events,
        "accounts": accounts,
        "user_migrations": user_migrations,
        "user_history": user_history,
        "account_history": account_history,
    }
    if json_events not in JSON_EVENTS:
        raise DataError(
            f"json_events={json_events!r}: expected one of {', '.join(map(repr, JSON_EVENTS))}"
        )
    once = json_events == "once"
    if preset is not None:
        dataset = _open_preset(
            source, get_preset(preset), database, resolver, as_of, on_bad_ids, events_once=once
        )
    else:
        dataset = _open(source, names, columns, database, resolver, as_of, on_bad_ids=on_bad_ids)
    if json is not None:
        dataset = _with_json(dataset, check_json_spec(json), on_bad_ids, events_once=once)
    if once and not dataset.json_properties.get("events"):
        raise DataError(
            "json_events='once' reads the events' JSON keys once, but the events have none: "
            "name their JSON column, e.g. json={'events': 'properties'}"
        )
    dataset.joining = joining
    return dataset


def _open(
    source: Any,
    names: dict[str, Any],
    columns: Mapping[str, Mapping[str, str]] | None,
    database: Any,
    resolver: Resolver | None,
    as_of: AsOf,
    *,
    on_bad_ids: str = "raise",
) -> Dataset:
    if source is None:
        from heapseg.sample import SAMPLE_AS_OF, ensure_sample

        return _connect_duckdb_file(
            ensure_sample(),
            names,
            columns,
            resolver,
            as_of or SAMPLE_AS_OF,
            "sample",
            on_bad_ids=on_bad_ids,
        )
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if "\x00" in str(path):
            raise DataError(f"a path cannot hold a NUL character: {str(path)!r}")
        if path.is_dir():
            return _connect_parquet(path, names, columns, resolver, as_of, on_bad_ids=on_bad_ids)
        if path.is_file():
            return _connect_duckdb_file(
                path, names, columns, resolver, as_of, path.stem, on_bad_ids=on_bad_ids
            )
        if path.exists():  # reading a FIFO would wait for a writer forever
            raise DataError(
                f"{path} is not a regular file (a FIFO, a socket or a device): "
                "pass a DuckDB database file or a folder of Parquet files"
            )
        raise DataError(f"no such file or folder: {path}")
    return _bind(
        source, names, columns, database, resolver, as_of, _dialect(source), on_bad_ids=on_bad_ids
    )


def _connect_duckdb_file(
    path: Path,
    names: dict,
    columns: Any,
    resolver: Resolver | None,
    as_of: Any,
    name: str,
    *,
    on_bad_ids: str = "raise",
) -> Dataset:
    import duckdb

    check_duckdb_file(path)
    try:
        raw = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise duckdb_open_error(path, exc) from exc
    _quiet_duckdb(raw)

    def open_cursor() -> Dataset:
        cursor = raw.cursor()
        _quiet_duckdb(cursor)
        backend = ibis.duckdb.from_connection(cursor)
        return _bind(
            backend, names, columns, None, resolver, as_of, name, open_cursor, on_bad_ids=on_bad_ids
        )

    backend = ibis.duckdb.from_connection(raw)
    return _bind(
        backend, names, columns, None, resolver, as_of, name, open_cursor, on_bad_ids=on_bad_ids
    )


def _quiet_duckdb(con: Any) -> None:
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")


def _connect_parquet(
    path: Path,
    names: dict,
    columns: Any,
    resolver: Resolver | None,
    as_of: Any,
    *,
    on_bad_ids: str = "raise",
) -> Dataset:
    import duckdb

    backend = ibis.duckdb.connect()
    _quiet_duckdb(backend.con)
    tables: dict[str, Any] = {}
    for role, name in names.items():
        if name is None or not isinstance(name, str):
            tables[role] = name
            continue
        table_name = role if name == _AUTO else name
        if "\x00" in table_name:
            raise DataError(f"{role}= cannot hold a NUL character: {table_name!r}")
        candidates = [path / f"{table_name}.parquet", path / table_name]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            if name == _AUTO:
                tables[role] = None
                continue
            raise DataError(
                f"no {table_name}.parquet or {table_name}/ in {path} "
                f"(found: {', '.join(sorted(p.name for p in path.iterdir()))})"
            )
        files = parquet_files(path, found, role, optional=name == _AUTO)
        # A plain (not temporary) view is seen by every cursor of this in-memory database.
        try:
            backend.con.execute(parquet_view_sql(table_name, files))
        except duckdb.Error as exc:
            raise DataError(f"cannot read {found} as the {role} table: {exc}") from exc
        tables[role] = table_name
    return _bind(backend, tables, columns, None, resolver, as_of, path.name, on_bad_ids=on_bad_ids)


def _bind(
    backend: Any,
    names: Mapping[str, Any],
    columns: Mapping[str, Mapping[str, str]] | None,
    database: Any,
    resolver: Resolver | None,
    as_of: Any,
    name: str,
    opener: Any = None,
    *,
    on_bad_ids: str = "raise",
) -> Dataset:
    columns = check_columns(columns)
    if (
        opener is None
        and _dialect(backend) == "duckdb"
        and not any(isinstance(spec, ir.Table) for spec in names.values())
    ):
        # A DuckDB connection must not be shared between threads: a cursor on the same
        # database sees the same tables and views.
        def opener() -> Dataset:
            cursor = ibis.duckdb.from_connection(backend.con.cursor())
            return _bind(
                cursor,
                names,
                columns,
                database,
                resolver,
                as_of,
                name,
                opener,
                on_bad_ids=on_bad_ids,
            )

    if _dialect(backend) == "duckdb":
        # Calendar periods are UTC periods; DuckDB truncates zoned timestamps in the session zone.
        backend.con.execute("SET TimeZone = 'UTC'")
    unknown = set(columns) - set(REQUIRED)
    if unknown:
        raise DataError(
            f"columns= names unknown tables {sorted(unknown)}; valid: {sorted(REQUIRED)}"
        )
    available: list[str] | None = None

    def table(role: str) -> ir.Table | None:
        nonlocal available
        spec = names.get(role)
        if spec is None:
            return None
        if isinstance(spec, ir.Table):
            return _normalise(spec, role, columns.get(role, {}))
        if available is None:
            try:
                available = list(backend.list_tables(database=database))
            except Exception:
                available = []
        table_name = role if spec == _AUTO else spec
        if spec == _AUTO and table_name not in available:
            return None
        try:
            found = backend.table(table_name, database=database)
        except Exception as exc:
            raise DataError(
                f"table {table_name!r} ({role}) not found in the {_dialect(backend)} backend"
                f"{f' (database {database!r})' if database else ''}; "
                f"available tables: {', '.join(sorted(available)) or 'none'}"
            ) from exc
        return _normalise(found, role, columns.get(role, {}))

    users = table("users")
    events = table("events")
    if users is None or events is None:
        raise DataError("a dataset needs a users table and an events table")
    accounts = table("accounts")
    user_history = table("user_history")
    account_history = table("account_history") if accounts is not None else None
    if accounts is None and names.get("account_history") not in (None, _AUTO):
        raise DataError("an account_history table needs an accounts table")
    users, events = check_user_ids(users, events, on_bad_ids)
    return Dataset(
        backend,
        users,
        events,
        accounts,
        table("user_migrations"),
        user_history=_history(user_history, users, "user_id", names.get("user_history")),
        account_history=_history(
            account_history, accounts, "account_id", names.get("account_history")
        ),
        resolver=resolver,
        name=name,
        default_as_of=as_of,
        _opener=opener,
    )


def _normalise(table: ir.Table, role: str, mapping: Mapping[str, str]) -> ir.Table:
    """Rename mapped columns to the model's names and check the required ones and their types."""
    missing = [src for src in mapping.values() if src not in table.columns]
    if missing:
        raise DataError(
            f"the column mapping for {role} names columns that do not exist: {missing}; "
            f"columns: {', '.join(table.columns)}"
        )
    renames = {model: src for model, src in mapping.items() if model != src}
    renamed = table.rename(renames) if renames else table
    absent = [c for c in REQUIRED[role] if c not in renamed.columns]
    if absent:
        raise DataError(
            f"the {role} table has no column {absent[0]!r} "
            f"(columns: {', '.join(table.columns)}); map it with "
            f"columns={{'{role}': {{'{absent[0]}': '<your column>'}}}}"
        )
    if role == "users" and "joined_at" in renamed.columns:
        kind = renamed.joined_at.type()
        if kind.is_date():
            renamed = renamed.mutate(joined_at=renamed.joined_at.cast("timestamp"))
        elif not kind.is_timestamp():
            raise DataError(
                f"users.joined_at must be a timestamp or a date, but its type is {kind}"
            )
    if role == "events":
        kind = renamed.time.type()
        if kind.is_date():
            renamed = renamed.mutate(time=renamed.time.cast("timestamp"))
        elif not kind.is_timestamp():
            raise DataError(f"events.time must be a timestamp, but its type is {kind}")
        if not renamed.event.type().is_string():
            renamed = renamed.mutate(event=renamed.event.cast("string"))
    return renamed


def _history(
    table: ir.Table | None, current: ir.Table | None, key: str, spec: Any
) -> PropertyHistory | None:
    if table is None or current is None:
        return None
    role = f"{key[:-3]}_history"
    label = spec if isinstance(spec, str) and spec != _AUTO else role
    return PropertyHistory.bind(table, current, key, label, role)


def _ceil_to_microsecond(moment: Any) -> datetime | None:
    """A backend timestamp as a naive UTC datetime, rounded up to the microsecond: comparing
    ``as_of`` with it must not lose an event a few nanoseconds after ``as_of``."""
    import pandas as pd

    if moment is None or pd.isna(moment):
        return None
    return resolve_as_of(pd.Timestamp(moment).ceil("us"))


def _at(
    table: ir.Table,
    key: str,
    names: Sequence[str],
    history: PropertyHistory | None,
    ctx: CompileContext,
) -> ir.Table:
    """``key`` and the columns ``names`` of ``table``, those that ``history`` tracks taken at
    ``ctx.as_of`` (unset where the history has no value then), the others as they are."""
    tracked = [c for c in names if history is not None and c in history.tracked]
    if not tracked:
        return table.select(key, *names)
    assert history is not None
    state = history.state_at(ctx.as_of, tracked, ctx.timestamp)
    joined = table.left_join(state, table[key] == state[key])
    return joined.select(
        **{key: table[key]}, **{c: state[c] if c in tracked else table[c] for c in names}
    )


def _dialect(backend: Any) -> str:
    return getattr(backend, "name", type(backend).__name__)


def _first_row(result: Any) -> tuple:
    """The first row of what ibis's ``execute`` gave: a scalar or a DataFrame."""
    if hasattr(result, "iloc"):
        return tuple(result.iloc[0])
    return (result,)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return value


# ---------------------------------------------------------------------------- presets and JSON


def _open_preset(
    source: Any,
    preset: Preset,
    database: Any,
    resolver: Resolver | None,
    as_of: AsOf,
    on_bad_ids: str,
    *,
    events_once: bool = False,
) -> Dataset:
    """A dataset over the views of ``preset``. A DuckDB file or a Parquet folder is read through
    an in-memory DuckDB that holds the views (so every thread's cursor sees them); another
    backend gets the views as ibis expressions, nothing created in the warehouse.
    ``events_once``: the events (when they have JSON keys) are computed once too."""
    if source is None:
        raise DataError(
            f"preset {preset.name!r} needs a source: a connection, a DuckDB file or a Parquet "
            "folder (heapseg.sample.write_layout writes the sample in each layout)"
        )
    if not isinstance(source, (str, os.PathLike)):
        views = preset.views(source, database)
        tables, refills, sql, computed = dict(views.tables()), [], {}, {}
        refilled: list[str] = []
        for role in _once_roles(events_once, views.json):
            done = tables[role] is not None and _materialize(source, role, tables[role])
            if done:
                refilled.append(role)
                sql[role] = str(source.compile(tables[role], pretty=True))
                computed[done[0].get_name()] = tables[role]
                tables[role], refill = done
                refills.append(refill)
        dataset = _bind(
            source, tables, None, None, resolver, as_of, preset.name, on_bad_ids=on_bad_ids
        )
        dataset._refills = refills
        dataset._computed = computed
        if "events" in refilled:
            dataset.json_events = "once"
        return _remember(dataset, preset, views.json, sql)
    path = Path(source).expanduser()
    backend = ibis.duckdb.connect()
    _quiet_duckdb(backend.con)
    if path.is_dir():
        backend.con.execute("CREATE SCHEMA src")
        for found in sorted(path.iterdir()):
            if found.suffix != ".parquet" and not found.is_dir():
                continue
            files = parquet_files(path, found, found.stem, optional=True)
            if files:
                backend.con.execute(
                    parquet_view_sql(f"{found.stem}", files).replace(
                        "CREATE VIEW ", "CREATE VIEW src.", 1
                    )
                )
        where = ("memory", "src")
    elif path.is_file():
        check_duckdb_file(path)
        backend.con.execute(
            f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS src (READ_ONLY)"
        )
        where = ("src", database or "main")
    else:
        raise DataError(f"no such file or folder: {path}")
    views = preset.views(backend, where)
    names: dict[str, Any] = {}
    sql: dict[str, str] = {}
    refills: list[Callable[[], None]] = []
    once = _once_roles(events_once, views.json)
    for role, view in views.tables().items():
        if view is not None:
            # A plain view of the in-memory database: every cursor sees it.
            sql[role] = str(backend.compile(view, pretty=True))
            # Users and their history, computed once (their JSON read once); events stay a view
            # unless asked for once (sorted as rules read them: by event name, then time).
            kind = "TABLE" if role in once else "VIEW"
            order = ' ORDER BY "event", "time"' if role == "events" and kind == "TABLE" else ""
            create = f'CREATE OR REPLACE {kind} "{role}" AS SELECT * FROM ({sql[role]}){order}'
            backend.con.execute(create)
            if kind == "TABLE":
                refills.append(lambda create=create: backend.con.execute(create))
        names[role] = role if view is not None else None
    dataset = _bind(backend, names, None, None, resolver, as_of, path.stem, on_bad_ids=on_bad_ids)
    dataset._refills = refills
    if "events" in once and names.get("events"):
        dataset.json_events = "once"
    return _remember(dataset, preset, views.json, sql)


#: What presets and ``json=`` compute once into a table of the backend (one row per user, per
#: account or per change) instead of reading the JSON in every query; events stay views unless
#: ``connect(json_events="once")``.
_ONCE = ("users", "accounts", "user_history", "account_history")
#: The values of ``connect(json_events=)``.
JSON_EVENTS = ("per query", "once")


def _once_roles(events_once: bool, json: Mapping[str, Any]) -> tuple[str, ...]:
    """The tables computed once: ``_ONCE``, and the events if asked and they have JSON keys."""
    return (*_ONCE, "events") if events_once and json.get("events") else _ONCE


def _materialize(
    backend: Any, role: str, table: ir.Table
) -> tuple[ir.Table, Callable[[], None]] | None:
    """``table`` computed once (see :func:`materialize`); the events sorted by event and time
    and shared by every cursor, and refused where the engine cannot keep them."""
    dialect = _dialect(backend)
    if role != "events":
        return materialize(backend, table, dialect)
    done = materialize(backend, table, dialect, order_by=("event", "time"), shared=True)
    if done is None:
        raise DataError(
            f"json_events='once' keeps the events' JSON keys in a table on "
            f"{', '.join(MATERIALIZING)}, not on {dialect}: leave it out (the keys are then "
            "read by each query)"
        )
    return done


def _remember(
    dataset: Dataset, preset: Preset, json: Mapping[str, Any], sql: Mapping[str, str] = {}
) -> Dataset:
    opener = dataset._opener

    def reopen() -> Dataset:
        assert opener is not None
        other = _remember(opener(), preset, json, sql)
        other.json_events = dataset.json_events
        return other

    dataset._opener = reopen if opener is not None else None
    dataset.preset = preset
    dataset.json_properties = {role: list(props) for role, props in json.items() if props}
    dataset._view_sql = dict(sql)
    return dataset


def _with_json(
    dataset: Dataset,
    spec: Mapping[str, Any],
    on_bad_ids: str,
    *,
    events_once: bool = False,
    shared: Mapping[str, ir.Table] | None = None,
) -> Dataset:
    """The dataset again, each JSON column of ``spec`` read as one property per key.

    ``events_once``: the events' keys are computed once too. ``shared``: tables already
    computed by the dataset this one is a thread's copy of (its events), used as they are.
    """
    tables: dict[str, Any] = dataset._bound_tables()
    unknown = [role for role in spec if role not in tables]
    if unknown:
        raise DataError(f"json= names tables the dataset does not have: {unknown}")
    dialect = _dialect(dataset.backend)
    found: dict[str, list[JsonProperty]] = {}
    refills: list[Callable[[], None]] = []
    sql = dict(dataset._view_sql)
    computed = dict(dataset._computed)
    once = _once_roles(events_once, {"events": True})
    reused: dict[str, ir.Table] = {}
    for role, columns in spec.items():
        tables[role], found[role] = expand_json(dataset.backend, tables[role], columns, dialect)
        if shared and role in shared:
            # The same table, seen through this thread's cursor (its query kept for sql()).
            name = shared[role].get_name().rsplit(".", 1)[-1]
            sql[role] = str(dataset.backend.compile(tables[role], pretty=True))
            computed[shared[role].get_name()] = tables[role]
            tables[role] = reused[role] = dataset.backend.table(
                name, database=(SHARED_DATABASE, "main")
            )
            continue
        done = role in once and found[role] and _materialize(dataset.backend, role, tables[role])
        if done:
            sql[role] = str(dataset.backend.compile(tables[role], pretty=True))
            computed[done[0].get_name()] = tables[role]
            tables[role], refill = done
            refills.append(refill)
            if role == "events":
                reused[role] = tables[role]
    names = {role: tables.get(role) for role in REQUIRED}
    out = _bind(
        dataset.backend,
        names,
        None,
        None,
        dataset.resolver,
        dataset.default_as_of,
        dataset.name,
        on_bad_ids=on_bad_ids,
    )
    out.preset = dataset.preset
    out.json_properties = {**dataset.json_properties, **found}
    out._refills = [*dataset._refills, *refills]
    out._view_sql = sql
    out._computed = computed
    if "events" in reused:
        out.json_events = "once"
    opener = dataset._opener
    if opener is not None:
        # Another thread's dataset reads the same keys, declared: no second discovery.
        declared: dict[str, dict[str, dict[str, str]]] = {}
        for role, props in found.items():
            for prop in props:
                keys = declared.setdefault(role, {}).setdefault(prop.column, {})
                keys[".".join(prop.path)] = prop.kind
        # The events computed once are shared (DuckDB's attached in-memory database), not
        # computed again for each thread; refresh() here refills them for every thread.
        out._opener = lambda: _with_json(opener(), declared, on_bad_ids, shared=reused)
    return out
