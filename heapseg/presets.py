"""Connect presets: the warehouse layouts of Segment / RudderStack, Heap Connect, PostHog,
Amplitude and Snowplow, each a mapping onto the data model plus its identity and history rules.

A preset reads the source's own tables and builds ibis views over them:
``users``, ``events`` and, where the layout has them, ``user_migrations`` (identity merges) and
``user_history`` (changes form). JSON columns become one property per key
(:mod:`heapseg.json_properties`). ``heapseg.connect(con, preset="posthog")`` binds the views;
``Dataset.describe_mapping()`` prints them as SQL to copy and adapt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from heapseg.errors import DataError, backend_errors
from heapseg.json_properties import JsonProperty, expand_json, first_entity

__all__ = ["PRESETS", "Preset", "PresetViews", "get_preset"]


@dataclass(frozen=True)
class PresetViews:
    """What a preset built over a source: the data model's tables as ibis views."""

    preset: Preset
    users: ir.Table
    events: ir.Table
    user_migrations: ir.Table | None = None
    user_history: ir.Table | None = None
    #: The JSON keys read as properties, by the view they are in.
    json: Mapping[str, Sequence[JsonProperty]] = field(default_factory=dict)

    def tables(self) -> dict[str, ir.Table | None]:
        """The views by their ``connect`` keyword (accounts: none in these layouts)."""
        return {
            "users": self.users,
            "events": self.events,
            "accounts": None,
            "user_migrations": self.user_migrations,
            "user_history": self.user_history,
            "account_history": None,
        }


@dataclass(frozen=True)
class Preset:
    """A warehouse layout: which source tables and columns make users, events, identity merges
    and property history (said in words here, built by ``build``)."""

    name: str
    title: str
    #: Source table -> the columns the preset reads from it (checked before anything runs).
    requires: Mapping[str, tuple[str, ...]]
    users: str
    events: str
    identity: str
    history: str
    build: Callable[[Source], PresetViews] = field(repr=False)

    def views(self, backend: Any, database: Any = None) -> PresetViews:
        """The views over ``backend`` (tables in ``database``: a schema or catalog.schema)."""
        source = Source(self, backend, database)
        source.check()
        return self.build(source)

    def describe(self) -> str:
        """The preset in words: its tables and its mapping, identity and history rules."""
        needs = "; ".join(f"{t} ({', '.join(c)})" for t, c in self.requires.items())
        return (
            f"preset {self.name!r} ({self.title}): reads {needs}\n"
            f"  users: {self.users}\n  events: {self.events}\n"
            f"  identity: {self.identity}\n  history: {self.history}"
        )


@dataclass
class Source:
    """The source a preset reads: its backend, the tables found, and the checks on them."""

    preset: Preset
    backend: Any
    database: Any = None
    _names: list[str] | None = None

    @property
    def dialect(self) -> str:
        return getattr(self.backend, "name", type(self.backend).__name__)

    def names(self) -> list[str]:
        if self._names is None:
            with backend_errors(f"cannot list the tables of the {self.dialect} backend"):
                self._names = list(self.backend.list_tables(database=self.database))
        return self._names

    def has(self, name: str) -> bool:
        return name in self.names()

    def where(self) -> str:
        """`` in schema 'atomic'``: where the tables were looked for (a file's own schema by its
        name only), or nothing for the backend's default."""
        if not self.database:
            return ""
        schema = self.database[-1] if isinstance(self.database, tuple) else self.database
        return f" in schema {schema!r}"

    def table(self, name: str) -> ir.Table:
        if not self.has(name):
            where = f" ({self.where().strip()})" if self.database else ""
            raise DataError(
                f"the {self.preset.name} preset needs a table {name!r}{where}; "
                f"found: {', '.join(sorted(self.names())) or 'no table'}"
            )
        with backend_errors(f"cannot open the table {name!r}"):
            return self.backend.table(name, database=self.database)

    def check(self) -> None:
        """Every required table and column is there, else one error naming all that lack."""
        missing: list[str] = []
        for name, columns in self.preset.requires.items():
            if not self.has(name):
                missing.append(f"table {name}")
                continue
            have = set(self.table(name).columns)
            missing.extend(f"{name}.{c}" for c in columns if c not in have)
        if missing:
            hint = "" if self.names() else "; database= names another schema"
            raise DataError(
                f"the {self.preset.name} preset ({self.preset.title}) needs "
                f"{', '.join(missing)}{self.where()}, which the source lacks "
                f"(tables: {', '.join(sorted(self.names())) or 'none'}{hint})"
            )

    def json(
        self, table: ir.Table, columns: Sequence[str], keep: Sequence[str] = ()
    ) -> tuple[ir.Table, list[JsonProperty]]:
        present = {c: None for c in columns if c in table.columns}
        if not present:
            return table, []
        return expand_json(self.backend, table, present, self.dialect, keep=keep)


# ---------------------------------------------------------------------------- shared rules


def snake_case(name: str) -> str:
    """``"Completed Order"`` -> ``"completed_order"``: how Segment and Heap name event tables."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _union_events(parts: Sequence[ir.Table]) -> ir.Table:
    """Event tables with different property columns as one: each lacking column NULL (of the
    type of its first table; a column typed differently across tables is read as text)."""
    types: dict[str, Any] = {}
    for part in parts:
        for name, dtype in part.schema().items():
            if name in types and types[name] != dtype:
                types[name] = ibis.dtype("string")
            types.setdefault(name, dtype)
    aligned = [
        part.select(
            **{
                n: part[n].cast(t) if n in part.columns else ibis.null().cast(t)
                for n, t in types.items()
            }
        )
        for part in parts
    ]
    return aligned[0] if len(aligned) == 1 else ibis.union(*aligned, distinct=False)


def _links(table: ir.Table, anonymous: str, known: str) -> ir.Table:
    """Identity merges as ``user_migrations``: each anonymous id seen with a known user id."""
    pairs = table.filter(table[anonymous].notnull(), table[known].notnull())
    return pairs.select(
        from_user_id=pairs[anonymous].cast("string"), to_user_id=pairs[known].cast("string")
    ).distinct()


_UTC_TIMESTAMP = dt.Timestamp(timezone="UTC")


@ibis.udf.scalar.builtin(name="to_timestamp")
def _pg_from_epoch(seconds: float) -> _UTC_TIMESTAMP:
    """PostgreSQL: epoch seconds as a timestamp with time zone."""


@ibis.udf.scalar.builtin(name="timestamp_millis")
def _spark_from_epoch_ms(milliseconds: int) -> dt.timestamp:
    """Spark: epoch milliseconds as a timestamp (in the session's zone: UTC)."""


def _epoch_or_time(column: ir.Value, dialect: str) -> ir.Value:
    """An event time as a timestamp: epoch milliseconds (Amplitude exports), text or a time."""
    kind = column.type()
    if kind.is_integer():
        # ibis has no portable epoch-milliseconds cast: each engine's own function.
        if dialect == "postgres":
            return _pg_from_epoch(column / 1000.0)
        if dialect == "pyspark":
            return _spark_from_epoch_ms(column)
        return column.as_timestamp("ms")
    if kind.is_string():
        return column.cast("timestamp")
    return column


def _users_from_history(ids: ir.Table, history: ir.Table) -> ir.Table:
    """A users view for layouts without one: each known id, and the history's properties as
    typed NULL columns (their values at ``as_of`` come from the history only)."""
    props = {
        c: ibis.null().cast(t) for c, t in history.schema().items() if c not in ("user_id", "time")
    }
    return ids.select(*ids.columns, **props) if props else ids


# ---------------------------------------------------------------------------- the layouts


_SEGMENT_TRACK = ("anonymous_id", "user_id", "event", "event_text", "timestamp")


def _segment(src: Source) -> PresetViews:
    tracks = src.table("tracks")
    known = {"tracks", "identifies", "users", "pages", "screens", "groups", "aliases"}
    per_event = []
    for name in src.names():
        if name in known:
            continue
        table = src.table(name)
        if set(_SEGMENT_TRACK) <= set(table.columns):
            per_event.append((name, table))
    common = {
        "id",
        "anonymous_id",
        "user_id",
        "event",
        "event_text",
        "timestamp",
        "received_at",
        "sent_at",
        "original_timestamp",
        "uuid_ts",
    }

    def as_events(table: ir.Table) -> ir.Table:
        props = [c for c in table.columns if c not in common and not c.startswith("context_")]
        return table.select(
            user_id=ibis.coalesce(table.user_id.cast("string"), table.anonymous_id.cast("string")),
            time=table.timestamp,
            event=table.event_text,
            **{c: table[c] for c in props},
        )

    tables_of = [name for name, _ in per_event]
    rest = tracks.filter(~tracks.event.isin(tables_of)) if tables_of else tracks
    events = _union_events(
        [as_events(rest.select(*_SEGMENT_TRACK))] + [as_events(t) for _, t in per_event]
    )
    identifies = src.table("identifies")
    users = src.table("users")
    user_cols = [c for c in users.columns if c not in ("id", "received_at", "uuid_ts")]
    users_view = users.select(user_id=users.id.cast("string"), **{c: users[c] for c in user_cols})
    if "created_at" in users_view.columns:
        users_view = users_view.rename(joined_at="created_at")
    traits = [
        c
        for c in identifies.columns
        if c in users.columns and c not in ("id", "user_id", "received_at", "created_at")
    ]
    identified = identifies.filter(identifies.user_id.notnull())
    history = identified.select(
        user_id=identified.user_id.cast("string"),
        time=identified.timestamp,
        **{c: identified[c] for c in traits},
    )
    return PresetViews(
        src.preset,
        users=users_view,
        events=events,
        user_migrations=_links(identifies, "anonymous_id", "user_id"),
        user_history=history if traits else None,
    )


def _heap(src: Source) -> PresetViews:
    all_events = src.table("all_events")
    names_query = all_events.select("event_table_name").distinct()
    with backend_errors("cannot read the event names of all_events"):
        names = [str(n) for n in names_query.execute()["event_table_name"] if n is not None]
    builtin = {"Session": "sessions", "Pageview": "pageviews"}
    common = {"event_id", "user_id", "session_id", "time", "event_table_name", "library"}
    parts, with_table = [], []
    for name in sorted(names):
        table_name = builtin.get(name, snake_case(name))
        if not src.has(table_name):
            continue
        table = src.table(table_name)
        if not {"user_id", "time"} <= set(table.columns):
            continue
        with_table.append(name)
        props = [c for c in table.columns if c not in common]
        parts.append(
            table.select(
                user_id=table.user_id,
                time=table.time,
                event=ibis.literal(name),
                session_id=table.session_id if "session_id" in table.columns else ibis.null(),
                **{c: table[c] for c in props},
            )
        )
    rest = (
        all_events.filter(~all_events.event_table_name.isin(with_table))
        if with_table
        else all_events
    )
    parts.insert(
        0,
        rest.select(
            user_id=rest.user_id,
            time=rest.time,
            event=rest.event_table_name,
            session_id=rest.session_id if "session_id" in rest.columns else ibis.null(),
        ),
    )
    events = _union_events(parts)
    users = src.table("users")
    users_view = users.rename(joined_at="joindate") if "joindate" in users.columns else users
    drop = [c for c in ("last_modified", "identity") if c in users_view.columns]
    users_view = users_view.drop(*drop) if drop else users_view
    migrations = src.table("user_migrations") if src.has("user_migrations") else None
    return PresetViews(src.preset, users=users_view, events=events, user_migrations=migrations)


def _posthog(src: Source) -> PresetViews:
    raw = src.table("events")
    events = raw.select(
        user_id=raw.distinct_id.cast("string"),
        time=raw.timestamp,
        event=raw.event,
        properties=raw.properties,
    )
    events, event_keys = src.json(events, ["properties"])
    persons = src.table("persons")
    users = persons.select(
        user_id=persons.id.cast("string"),
        joined_at=persons.created_at,
        properties=persons.properties,
    )
    users, user_keys = src.json(users, ["properties"])
    links = src.table("person_distinct_id")
    if "is_deleted" in links.columns:
        links = links.filter(~ibis.coalesce(links.is_deleted.cast("boolean"), False))
    migrations = links.select(
        from_user_id=links.distinct_id.cast("string"), to_user_id=links.person_id.cast("string")
    )
    return PresetViews(
        src.preset,
        users=users,
        events=events,
        user_migrations=migrations,
        json={"users": user_keys, "events": event_keys},
    )


#: Amplitude's own events that set properties rather than record what a user did: their
#: ``user_properties`` make the history; Amplitude's charts leave them out, and so do we.
_AMPLITUDE_UPDATES = ("$identify", "$groupidentify")


def _amplitude(src: Source) -> PresetViews:
    raw = src.table("events")
    done = raw.filter(~ibis.coalesce(raw.event_type.isin(_AMPLITUDE_UPDATES), False))
    events = done.select(
        user_id=ibis.coalesce(done.user_id.cast("string"), done.device_id.cast("string")),
        time=_epoch_or_time(done.event_time, src.dialect),
        event=done.event_type,
        event_properties=done.event_properties,
    )
    events, event_keys = src.json(events, ["event_properties"])
    identified = raw.filter(raw.user_id.notnull())
    history = identified.filter(identified.user_properties.notnull()).select(
        user_id=identified.user_id.cast("string"),
        time=_epoch_or_time(identified.event_time, src.dialect),
        user_properties=identified.user_properties,
    )
    history, user_keys = src.json(history, ["user_properties"])
    if "user_creation_time" in raw.columns:
        # When Amplitude first saw the user: the join time.
        created = _epoch_or_time(identified.user_creation_time, src.dialect)
        ids = identified.group_by(user_id=identified.user_id.cast("string")).aggregate(
            joined_at=created.min()
        )
    else:
        ids = identified.select(user_id=identified.user_id.cast("string")).distinct()
    return PresetViews(
        src.preset,
        users=_users_from_history(ids, history),
        events=events,
        user_migrations=_links(raw, "device_id", "user_id"),
        user_history=history if user_keys else None,
        json={"user_history": user_keys, "events": event_keys},
    )


_USER_CONTEXT = re.compile(r"^contexts_.*_user_\d+$")


def _entity(table: ir.Table, column: str, dialect: str) -> ir.Value:
    """A Snowplow JSON column: a context holds an array of entities (its first is read), the
    self-describing event one object."""
    kind = table[column].type()
    if column.startswith("contexts_") and (kind.is_json() or kind.is_string()):
        return first_entity(table[column], dialect)
    return table[column]


def _snowplow(src: Source) -> PresetViews:
    raw = src.table("events")
    time = ibis.coalesce(raw.derived_tstamp, raw.collector_tstamp)
    user_context = next((c for c in raw.columns if _USER_CONTEXT.match(c)), None)
    json_columns = [
        c
        for c in raw.columns
        if c != user_context and (c.startswith("contexts_") or c.startswith("unstruct_event"))
    ]
    flattened = {
        "page_urlpath": "path",
        "page_referrer": "referrer",
        "domain_sessionid": "session_id",
    }
    events = raw.select(
        user_id=ibis.coalesce(raw.user_id.cast("string"), raw.domain_userid.cast("string")),
        time=time,
        event=raw.event_name,
        **{model: raw[c] for c, model in flattened.items() if c in raw.columns},
        **{c: _entity(raw, c, src.dialect) for c in json_columns},
    )
    events, event_keys = src.json(events, json_columns)
    identified = raw.filter(raw.user_id.notnull())
    ids = identified.select(user_id=identified.user_id.cast("string")).distinct()
    history, user_keys = None, []
    if user_context is not None:
        rows = identified.filter(identified[user_context].notnull())
        history = rows.select(
            user_id=rows.user_id.cast("string"),
            time=ibis.coalesce(rows.derived_tstamp, rows.collector_tstamp),
            **{user_context: _entity(rows, user_context, src.dialect)},
        )
        history, user_keys = src.json(history, [user_context])
    return PresetViews(
        src.preset,
        users=_users_from_history(ids, history) if history is not None else ids,
        events=events,
        user_migrations=_links(raw, "domain_userid", "user_id"),
        user_history=history if user_keys else None,
        json={"user_history": user_keys, "events": event_keys},
    )


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "segment",
            "Segment / RudderStack warehouse",
            {
                "tracks": _SEGMENT_TRACK,
                "identifies": ("anonymous_id", "user_id", "timestamp"),
                "users": ("id",),
            },
            users="users: id -> user_id, traits as properties, created_at -> joined_at",
            events=(
                "tracks and each per-event table (same columns plus the event's properties): "
                "event_text -> event, timestamp -> time, user_id (else anonymous_id) -> user_id"
            ),
            identity="identifies: anonymous_id -> user_id, as user_migrations",
            history="identifies: the traits that users also has, changes form (timestamp -> time)",
            build=_segment,
        ),
        Preset(
            "heap",
            "Heap Connect",
            {
                "all_events": ("event_id", "user_id", "time", "event_table_name"),
                "users": ("user_id",),
            },
            users="users: properties as they are, joindate -> joined_at",
            events=(
                "all_events (event_table_name -> event) with the properties of each event's own "
                "table (sessions for Session, pageviews for Pageview, completed_order for "
                "Completed Order...)"
            ),
            identity="user_migrations (from_user_id -> to_user_id)",
            history="none (Heap keeps current user properties)",
            build=_heap,
        ),
        Preset(
            "posthog",
            "PostHog export",
            {
                "events": ("distinct_id", "event", "timestamp", "properties"),
                "persons": ("id", "created_at", "properties"),
                "person_distinct_id": ("distinct_id", "person_id"),
            },
            users="persons: id -> user_id, created_at -> joined_at, properties JSON keys",
            events="events: distinct_id, timestamp -> time, event, properties JSON keys",
            identity="person_distinct_id: each distinct_id -> its person_id",
            history="none (person properties are current)",
            build=_posthog,
        ),
        Preset(
            "amplitude",
            "Amplitude export",
            {
                "events": (
                    "user_id",
                    "device_id",
                    "event_type",
                    "event_time",
                    "event_properties",
                    "user_properties",
                ),
            },
            users=(
                "each user_id seen in events, user_creation_time (if there) -> joined_at; "
                "properties from user_properties"
            ),
            events=(
                "events but $identify / $groupidentify: event_type -> event, event_time (epoch "
                "milliseconds or a time) -> time, user_id (else device_id), event_properties "
                "JSON keys"
            ),
            identity="device_id -> user_id wherever an event carries both",
            history="user_properties JSON keys, changes form (event_time -> time)",
            build=_amplitude,
        ),
        Preset(
            "snowplow",
            "Snowplow atomic.events",
            {
                "events": (
                    "event_name",
                    "domain_userid",
                    "user_id",
                    "collector_tstamp",
                    "derived_tstamp",
                ),
            },
            users="each user_id seen in events; properties from a contexts_*_user_* JSON column",
            events=(
                "events: event_name -> event, derived_tstamp (else collector_tstamp) -> time, "
                "user_id (else domain_userid), page_urlpath -> path, contexts_* and "
                "unstruct_event* JSON keys"
            ),
            identity="domain_userid -> user_id wherever an event carries both",
            history="the contexts_*_user_* JSON keys, changes form",
            build=_snowplow,
        ),
    )
}


def get_preset(preset: str | Preset) -> Preset:
    """A preset by name (``segment``, ``rudderstack``, ``heap``, ``posthog``, ``amplitude``,
    ``snowplow``), or the :class:`Preset` given."""
    if isinstance(preset, Preset):
        return preset
    name = {"rudderstack": "segment", "heap_connect": "heap"}.get(
        str(preset).lower(), str(preset).lower()
    )
    if name not in PRESETS:
        raise DataError(f"unknown preset {preset!r}; valid: {', '.join([*PRESETS, 'rudderstack'])}")
    return PRESETS[name]
