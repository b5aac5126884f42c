"""The sample written out as the warehouse layouts of the connect presets (Segment, Heap Connect,
PostHog, Amplitude, Snowplow), with each layout's quirks, for trying and testing the presets.

Every layout holds the same users, events, identity merges and property history as the tidy
sample, so a segment selects the same people through any preset: anonymous ids that are merged
later (the tidy ``user_migrations``), properties in JSON with nested objects, keys left out where
unset and a key of mixed types, per-event tables with their own columns, epoch-millisecond times
(Amplitude), a missing ``derived_tstamp`` on some rows and contexts as arrays of entities
(Snowplow).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

from heapseg.errors import HeapsegError
from heapseg.presets import snake_case
from heapseg.sample.files import ensure_sample
from heapseg.sample.schema import DEFAULT_SEED, DEFAULT_USERS, Format

__all__ = ["LAYOUTS", "layout_tables", "person_uuid", "write_layout"]

LAYOUTS = ("segment", "heap", "posthog", "amplitude", "snowplow")
#: Tidy event properties (each event's own table in Segment and Heap; JSON elsewhere).
_EVENT_PROPS = (
    "path",
    "search_term",
    "product_id",
    "price",
    "quantity",
    "category",
    "revenue",
    "item_count",
    "payment_method",
    "promo_code",
    "rating",
)
_USER_PROPS = (
    "subscription_type",
    "country",
    "email",
    "role",
    "signup_date",
    "ltv",
    "email_opt_in",
    "account_id",
)
_HEAP_BUILTIN = {"Session": "sessions", "Pageview": "pageviews"}

_MACROS = """
CREATE MACRO uuidish(tag, n) AS (
    WITH h AS (SELECT md5(tag || ':' || CAST(n AS VARCHAR)) AS x)
    SELECT substr(x, 1, 8) || '-' || substr(x, 9, 4) || '-' || substr(x, 13, 4) || '-'
        || substr(x, 17, 4) || '-' || substr(x, 21, 12) FROM h);
CREATE MACRO person_uuid(n) AS
    '00000000-0000-4000-8000-' || lpad(CAST(n AS VARCHAR), 12, '0');
CREATE MACRO compact(j) AS json_merge_patch('{}', j);
CREATE TABLE anon AS SELECT from_user_id AS id, to_user_id AS to_id FROM tidy.user_migrations;
CREATE TABLE ev AS
SELECT e.*, row_number() OVER (ORDER BY e.user_id, e.time, e.event) AS n,
       a.id IS NOT NULL AS anonymous, coalesce(a.to_id, e.user_id) AS merged_id
FROM tidy.events e LEFT JOIN anon a ON e.user_id = a.id;
CREATE TABLE changes AS
SELECT c.*, c.time = u.joined_at AS first FROM tidy.user_trait_changes c
JOIN tidy.users u USING (user_id);
CREATE TABLE links AS
SELECT a.id, a.to_id, u.joined_at FROM anon a JOIN tidy.users u ON u.user_id = a.to_id;
"""
#: User traits as one JSON object (a trait change sets only what it carries; the first, at
#: signup, carries every property), NULLs left out.
_TRAITS_JSON = """compact(json_object(
    'subscription_type', c.subscription_type, 'role', c.role, 'account_id', c.account_id,
    'country', CASE WHEN c.first THEN u.country END,
    'email', CASE WHEN c.first THEN u.email END,
    'signup_date', CASE WHEN c.first THEN CAST(u.signup_date AS VARCHAR) END,
    'ltv', CASE WHEN c.first THEN u.ltv END,
    'email_opt_in', CASE WHEN c.first THEN u.email_opt_in END,
    'address', CASE WHEN c.first THEN json_object('country', u.country) END))"""


def person_uuid(user_id: int) -> str:
    """The PostHog layout's person id of a tidy user id (a UUID holding the number)."""
    return f"00000000-0000-4000-8000-{user_id:012d}"


def _event_json(alias: str = "e", extra: str = "") -> str:
    pairs = ", ".join(f"'{p}', {alias}.{p}" for p in _EVENT_PROPS)
    return f"compact(json_object({pairs}{extra}))"


def _props_by_event(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Which tidy event properties each event has (a column set somewhere): its own table's."""
    counts = ", ".join(f"count({p})" for p in _EVENT_PROPS)
    rows = con.execute(f"SELECT event, {counts} FROM tidy.events GROUP BY event").fetchall()
    return {r[0]: [p for p, n in zip(_EVENT_PROPS, r[1:], strict=True) if n] for r in rows}


def _segment(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute("""
    CREATE TABLE tracks_all AS SELECT
        uuidish('evt', n) AS id,
        CASE WHEN anonymous THEN uuidish('anon', user_id) ELSE uuidish('dev', user_id) END
            AS anonymous_id,
        CASE WHEN anonymous THEN NULL ELSE CAST(user_id AS VARCHAR) END AS user_id,
        lower(regexp_replace(trim(event), '[^0-9A-Za-z]+', '_', 'g')) AS event,
        event AS event_text, time AS timestamp, time + INTERVAL 1 SECOND AS received_at,
        'analytics.js' AS context_library_name, n, ev.* EXCLUDE (user_id, event, time, n)
    FROM ev""")
    common = "id, anonymous_id, user_id, event, event_text, timestamp, received_at"
    con.execute(f"CREATE TABLE tracks AS SELECT {common}, context_library_name FROM tracks_all")
    names = ["tracks"]
    for event, props in _props_by_event(con).items():
        if not props:
            continue
        table = snake_case(event)
        con.execute(
            f"CREATE TABLE {table} AS SELECT {common}, {', '.join(props)} "
            f"FROM tracks_all WHERE event_text = ?",
            [event],
        )
        names.append(table)
    con.execute("""
    CREATE TABLE identifies AS
    SELECT uuidish('idf', row_number() OVER ()) AS id, uuidish('dev', c.user_id) AS anonymous_id,
           CAST(c.user_id AS VARCHAR) AS user_id, c.time AS timestamp,
           c.subscription_type, c.role, c.account_id,
           CASE WHEN c.first THEN u.email END AS email
    FROM changes c JOIN tidy.users u USING (user_id)
    UNION ALL
    SELECT uuidish('idl', id), uuidish('anon', id), CAST(to_id AS VARCHAR), joined_at,
           NULL, NULL, NULL, NULL
    FROM links""")
    con.execute(f"""
    CREATE TABLE users AS SELECT CAST(user_id AS VARCHAR) AS id, {", ".join(_USER_PROPS)},
        joined_at AS created_at, joined_at AS received_at
    FROM tidy.users""")
    con.execute("DROP TABLE tracks_all")
    return [*names, "identifies", "users"]


def _heap(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute("""
    CREATE TABLE all_events AS SELECT n AS event_id, user_id, session_id, time,
        event AS event_table_name, 'web' AS library
    FROM ev""")
    names = ["all_events"]
    for event, props in _props_by_event(con).items():
        if not props and event not in _HEAP_BUILTIN:
            continue
        table = _HEAP_BUILTIN.get(event, snake_case(event))
        extra = "".join(f", {p}" for p in props)
        if event == "Session":  # Heap's sessions carry where the visit came from
            extra += ", CASE WHEN n % 3 = 0 THEN 'google' END AS utm_source"
        con.execute(
            f"CREATE TABLE {table} AS SELECT n AS event_id, user_id, session_id, time{extra} "
            "FROM ev WHERE event = ?",
            [event],
        )
        names.append(table)
    con.execute(f"""
    CREATE TABLE users AS SELECT user_id, email AS identity, joined_at AS joindate,
        joined_at AS last_modified, {", ".join(_USER_PROPS)}
    FROM tidy.users""")
    con.execute("CREATE TABLE user_migrations AS SELECT * FROM tidy.user_migrations")
    return [*names, "users", "user_migrations"]


def _posthog(con: duckdb.DuckDBPyConnection) -> list[str]:
    lib = ", '$session_id', e.session_id, '$lib', json_object('name', 'web', 'version', '1.2.3')"
    con.execute(f"""
    CREATE TABLE events AS SELECT uuidish('evt', n) AS uuid, e.event,
        CASE WHEN anonymous THEN uuidish('anon', user_id) ELSE CAST(user_id AS VARCHAR) END
            AS distinct_id,
        e.time AS timestamp, {_event_json("e", lib)} AS properties
    FROM ev e""")
    # company_size: a number for most people, text ("11-50") for every third: mixed types.
    con.execute("""
    CREATE TABLE persons AS SELECT person_uuid(user_id) AS id, joined_at AS created_at,
        compact(json_object(
            'subscription_type', subscription_type, 'country', country, 'email', email,
            'role', role, 'signup_date', CAST(signup_date AS VARCHAR), 'ltv', ltv,
            'email_opt_in', email_opt_in, 'account_id', account_id,
            'address', json_object('country', country),
            'company_size', CASE WHEN user_id % 3 = 0 THEN to_json('11-50')
                                 ELSE to_json(user_id % 500) END)) AS properties,
        true AS is_identified
    FROM tidy.users""")
    con.execute("""
    CREATE TABLE person_distinct_id AS
    SELECT CAST(user_id AS VARCHAR) AS distinct_id, person_uuid(user_id) AS person_id,
           false AS is_deleted, 0 AS version FROM tidy.users
    UNION ALL
    SELECT uuidish('anon', id), person_uuid(to_id), false, 1 FROM links""")
    return ["events", "persons", "person_distinct_id"]


def _amplitude(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(f"""
    CREATE TABLE events AS
    SELECT uuidish('evt', n) AS uuid, n AS event_id, merged_id AS amplitude_id,
        CASE WHEN anonymous THEN NULL ELSE CAST(user_id AS VARCHAR) END AS user_id,
        CASE WHEN anonymous THEN uuidish('anon', user_id) ELSE uuidish('dev', user_id) END
            AS device_id,
        event AS event_type, epoch_ms(time) AS event_time,
        epoch_ms(time) + 500 AS server_upload_time, session_id,
        {_event_json("e")} AS event_properties, CAST(NULL AS JSON) AS user_properties,
        epoch_ms((SELECT m.joined_at FROM tidy.users m WHERE m.user_id = e.merged_id))
            AS user_creation_time
    FROM ev e
    UNION ALL
    SELECT uuidish('idf', row_number() OVER ()), NULL, c.user_id, CAST(c.user_id AS VARCHAR),
        uuidish('dev', c.user_id), '$identify', epoch_ms(c.time), epoch_ms(c.time) + 500,
        NULL, CAST('{{}}' AS JSON), {_TRAITS_JSON}, epoch_ms(u.joined_at)
    FROM changes c JOIN tidy.users u USING (user_id)
    UNION ALL
    SELECT uuidish('idl', id), NULL, to_id, CAST(to_id AS VARCHAR), uuidish('anon', id),
        '$identify', epoch_ms(joined_at), epoch_ms(joined_at) + 500, NULL,
        CAST('{{}}' AS JSON), NULL, epoch_ms(joined_at)
    FROM links""")
    return ["events"]


def _snowplow(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute("""CREATE MACRO unstruct(e) AS compact(json_object(
        'search_term', e.search_term, 'product_id', e.product_id, 'price', e.price,
        'quantity', e.quantity, 'category', e.category, 'revenue', e.revenue,
        'item_count', e.item_count, 'payment_method', e.payment_method,
        'promo_code', e.promo_code, 'rating', e.rating))""")
    # One row in 50 lacks derived_tstamp: the collector's time is then the event's time.
    con.execute(f"""
    CREATE TABLE events AS
    SELECT uuidish('evt', n) AS event_id, 'shop' AS app_id, 'web' AS platform,
        CASE WHEN n % 50 = 0 THEN time ELSE time + INTERVAL 1 SECOND END AS collector_tstamp,
        CASE WHEN n % 50 = 0 THEN NULL ELSE time END AS derived_tstamp,
        time AS dvce_created_tstamp,
        CASE WHEN event = 'Pageview' THEN 'page_view' ELSE 'unstruct' END AS event,
        event AS event_name,
        CASE WHEN anonymous THEN uuidish('anon', user_id) ELSE uuidish('dev', user_id) END
            AS domain_userid,
        uuidish('net', merged_id) AS network_userid,
        CASE WHEN anonymous THEN NULL ELSE CAST(user_id AS VARCHAR) END AS user_id,
        CAST(session_id AS VARCHAR) AS domain_sessionid, path AS page_urlpath,
        CASE WHEN unstruct(e) = '{{}}' THEN NULL ELSE unstruct(e) END
            AS unstruct_event_com_heapseg_action_1,
        CAST(NULL AS JSON) AS contexts_com_heapseg_user_1
    FROM ev e
    UNION ALL
    SELECT uuidish('idf', row_number() OVER ()), 'shop', 'web', c.time + INTERVAL 1 SECOND,
        c.time, c.time, 'unstruct', 'identify', uuidish('dev', c.user_id),
        uuidish('net', c.user_id), CAST(c.user_id AS VARCHAR), NULL, NULL, NULL,
        json_array({_TRAITS_JSON})
    FROM changes c JOIN tidy.users u USING (user_id)
    UNION ALL
    SELECT uuidish('idl', id), 'shop', 'web', joined_at + INTERVAL 1 SECOND, joined_at,
        joined_at, 'unstruct', 'identify', uuidish('anon', id), uuidish('net', to_id),
        CAST(to_id AS VARCHAR), NULL, NULL, NULL, NULL
    FROM links""")
    return ["events"]


_BUILDERS = {
    "segment": _segment,
    "heap": _heap,
    "posthog": _posthog,
    "amplitude": _amplitude,
    "snowplow": _snowplow,
}


def _build(layout: str, source: Path) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    if layout not in _BUILDERS:
        raise HeapsegError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{source}' AS tidy (READ_ONLY)")
    con.execute(_MACROS)
    return con, _BUILDERS[layout](con)


def _tidy(source: str | os.PathLike[str] | None, n_users: int, seed: int) -> Path:
    return Path(source) if source is not None else ensure_sample(n_users, seed=seed)


def layout_tables(
    layout: str,
    *,
    n_users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    source: str | os.PathLike[str] | None = None,
) -> dict[str, pa.Table]:
    """The sample in ``layout`` as Arrow tables by name (JSON columns as JSON text).

    ``source`` is a tidy sample DuckDB file (default: the cached sample of ``n_users``).
    """
    con, names = _build(layout, _tidy(source, n_users, seed))
    try:
        return {name: con.table(name).to_arrow_table() for name in names}
    finally:
        con.close()


def write_layout(
    path: str | os.PathLike[str],
    layout: str,
    *,
    fmt: Format = "duckdb",
    n_users: int = DEFAULT_USERS,
    seed: int = DEFAULT_SEED,
    source: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the sample in a warehouse layout: a DuckDB file or a folder of Parquet files.

    Parameters
    ----------
    path
        The DuckDB file or Parquet folder to create (it appears complete or not at all).
    layout
        ``"segment"`` (``tracks``, one table per event with properties, ``identifies``,
        ``users``), ``"heap"`` (``all_events``, per-event tables such as ``completed_order``,
        ``sessions``, ``pageviews``, ``users`` with ``joindate``, ``user_migrations``),
        ``"posthog"`` (``events``, ``persons``, ``person_distinct_id``, JSON ``properties``),
        ``"amplitude"`` (one ``events`` export: epoch-millisecond ``event_time`` and
        ``user_creation_time``, JSON ``event_properties`` / ``user_properties`` on
        ``$identify`` events) or ``"snowplow"``
        (``atomic.events`` in a DuckDB file, ``events.parquet`` in a folder).
    fmt
        ``"duckdb"`` or ``"parquet"``.
    n_users, seed, source
        Which tidy sample to write out (default: the cached sample of ``n_users``).
    overwrite
        Replace an existing ``path`` instead of raising.

    Examples
    --------
    >>> import heapseg
    >>> from heapseg.sample import write_layout
    >>> out = write_layout("posthog.duckdb", "posthog", n_users=1_000)
    >>> ds = heapseg.connect(out, preset="posthog", as_of="2026-11-01")
    >>> ds.count(heapseg.user.subscription_type == "paid") > 0
    True
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise HeapsegError(f"{path} exists; pass overwrite=True to replace it")
    if fmt not in ("duckdb", "parquet"):
        raise HeapsegError(f"fmt must be 'duckdb' or 'parquet', not {fmt!r}")
    con, names = _build(layout, _tidy(source, n_users, seed))
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        if fmt == "duckdb":
            schema = "atomic" if layout == "snowplow" else "main"
            con.execute(f"ATTACH '{tmp}' AS out")
            if schema != "main":
                con.execute(f"CREATE SCHEMA out.{schema}")
            for name in names:
                con.execute(f"CREATE TABLE out.{schema}.{name} AS SELECT * FROM {name}")
            con.execute("DETACH out")
        else:
            tmp.mkdir(parents=True)
            for name in names:
                con.execute(f"COPY {name} TO '{tmp / name}.parquet' (FORMAT parquet)")
        con.close()
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        con.close()
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return path
