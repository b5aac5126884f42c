"""Benchmark: a rule on a property kept in a JSON column against the same rule on a real column,
same data, same run, on DuckDB and PostgreSQL.

    python benchmarks/bench_json.py --users 100000 [--repeat 7] [--engines duckdb,postgres]

The sample's users and events (cached in benchmarks/data/) are loaded twice: ``users`` and
``events`` with real property columns, ``users_json`` and ``events_json`` with the same values
in one JSON column (DuckDB ``JSON``, PostgreSQL ``jsonb``, nested ``address.country``
included). The JSON dataset is opened with ``connect(json={"users": "properties", "events":
"properties"})``, which finds the keys and their types with one aggregate query per nesting
level and reads the users' keys once into a temporary table; event properties are read from
the JSON by every query. Each rule is counted on both datasets, taking turns, and the counts
must agree. Figures of a run on a shared 2-core machine (100,000 users): worst JSON/column
1.38 on PostgreSQL (events' keys included); on DuckDB 1.32 for the users' keys but 2.0-2.8 for
the events', whose JSON text is read for every event of the row groups scanned.
PostgreSQL is a throwaway server started for the run (as the tests do), unless ``--postgres``
gives a connection URL.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import ibis
from bench_common import interleaved_medians, sample_path

import heapseg
from heapseg.sample import SAMPLE_AS_OF

RULES = {
    "plan = paid (string)": heapseg.user.subscription_type == "paid",
    "ltv > 100 (number)": heapseg.user.ltv > 100,
    "country in, opt-in (two keys)": heapseg.user.country.isin(["US", "DE"])
    & (heapseg.user.email_opt_in == True),  # noqa: E712 (a rule, not a comparison)
    "churn (property + events)": (heapseg.user.subscription_type == "paid")
    & heapseg.did_not("Session").last(90, "day"),
    # Event properties: the JSON of each matching event is read by the query itself.
    "order revenue > 100 (event)": heapseg.did("Completed Order")
    .where(heapseg.event_prop("revenue") > 100)
    .last(90, "day"),
    "sum of revenue >= 300 (event)": heapseg.did("Completed Order").sum("revenue") >= 300,
    "category = Electronics (event)": heapseg.did("Add to Cart")
    .where(heapseg.event_prop("category") == "Electronics")
    .times()
    >= 2,
}
TARGET = 1.5

_TABLES = """
CREATE TABLE users AS SELECT user_id, joined_at, subscription_type, ltv, country, email_opt_in
FROM src.users;
CREATE TABLE users_json AS SELECT user_id, joined_at, json_object(
    'subscription_type', subscription_type, 'ltv', ltv, 'country', country,
    'email_opt_in', email_opt_in, 'address', json_object('country', country),
    'signup_date', CAST(signup_date AS VARCHAR), 'role', role) AS properties
FROM src.users;
CREATE TABLE events AS SELECT user_id, time, event, revenue, category FROM src.events;
CREATE TABLE events_json AS SELECT user_id, time, event,
    json_merge_patch('{}', json_object('revenue', revenue, 'category', category)) AS properties
FROM src.events;
"""


def _duckdb(path: Path) -> ibis.BaseBackend:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
    con.execute(_TABLES)
    con.execute("DETACH src")
    return ibis.duckdb.from_connection(con)


def _postgres(source: ibis.BaseBackend, url: str | None) -> tuple[ibis.BaseBackend, object]:
    """The same tables in PostgreSQL (``properties`` as jsonb), and what stops the server."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.backends.postgres import PostgresServer, copy_table

    server = None
    if url is None:
        server = PostgresServer()
        server.start()
        database = server.create_database("heapseg_bench_json")
        con = server.connect(database)
    else:
        con = ibis.connect(url)
    raw = con.con
    for name in ("users", "users_json", "events", "events_json"):
        table = source.table(name)
        if name.endswith("_json"):
            table = table.mutate(properties=table.properties.cast("string"))
        raw.execute(f'DROP TABLE IF EXISTS "{name}"')
        raw.commit()
        import psycopg

        with psycopg.connect(raw.info.dsn, autocommit=True) as loader:
            copy_table(loader, name, table.to_pyarrow())
    for name in ("users_json", "events_json"):
        raw.execute(
            f"ALTER TABLE {name} ALTER COLUMN properties TYPE jsonb USING properties::jsonb"
        )
        raw.execute(f"ANALYZE {name}")
    raw.commit()
    return con, server


def _compare(engine: str, con: ibis.BaseBackend, repeat: int) -> float:
    began = time.perf_counter()
    columns = heapseg.connect(con, users="users", events="events", as_of=SAMPLE_AS_OF)
    plain = time.perf_counter() - began
    began = time.perf_counter()
    in_json = heapseg.connect(
        con,
        users="users_json",
        events="events_json",
        json={"users": "properties", "events": "properties"},
        as_of=SAMPLE_AS_OF,
    )
    found = time.perf_counter() - began
    keys = ", ".join(
        f"{p.name} ({p.kind})" for props in in_json.json_properties.values() for p in props
    )
    print(
        f"\n{engine}: connect {plain:.2f} s with columns, {found:.2f} s with JSON (keys found "
        f"and the users' read once into a temporary table): {keys}"
    )
    print(f"{'rule':<32} {'column s':>9} {'JSON s':>9} {'JSON/column':>12} {'count':>8}")
    worst = 0.0
    for name, rule in RULES.items():
        timings = interleaved_medians(
            {
                "column": lambda r=rule: columns.count(r),
                "json": lambda r=rule: in_json.count(r),
            },
            repeat,
        )
        if timings["column"][1] != timings["json"][1]:
            print(f"MISMATCH {engine} {name}: {timings}")
            raise SystemExit(1)
        ratio = timings["json"][0] / timings["column"][0]
        worst = max(worst, ratio)
        print(
            f"{name:<32} {timings['column'][0]:>9.4f} {timings['json'][0]:>9.4f} "
            f"{ratio:>12.2f} {timings['json'][1]:>8,}"
        )
    sql = in_json.sql(RULES["ltv > 100 (number)"]).upper()
    functions = {"duckdb": "JSON_TYPE", "postgres": "JSONB_TYPEOF"}[engine]
    print(f"the SQL reads the JSON with {functions}: {functions in sql}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: start one)")
    args = parser.parse_args(argv)
    path = sample_path(args.users)
    source = _duckdb(path)
    print(f"dataset: {args.users:,} users, {source.table('events').count().execute():,} events")
    worst = {}
    for engine in args.engines.split(","):
        if engine == "duckdb":
            worst[engine] = _compare(engine, source, args.repeat)
        elif engine == "postgres":
            con, server = _postgres(source, args.postgres)
            try:
                worst[engine] = _compare(engine, con, args.repeat)
            finally:
                if server is not None:
                    server.stop()
        else:
            parser.error(f"unknown engine {engine!r}: duckdb or postgres")
    summary = ", ".join(f"{e} {w:.2f}" for e, w in worst.items())
    print(f"\nworst ratios JSON/column: {summary} (target <= {TARGET})")
    return 0 if all(w <= TARGET for w in worst.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
