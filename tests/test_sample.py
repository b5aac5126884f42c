"""Tests of the bundled sample data (heapseg.sample: its schema, generator, files and command line)."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from heapseg import sample
from heapseg.errors import HeapsegError
from heapseg.sample import files as sample_files
from heapseg.sample import generator as sample_generator

N = 2_000
TABLES = (
    "users",
    "accounts",
    "events",
    "user_migrations",
    "user_history",
    "user_trait_changes",
    "account_history",
)
TRAITS = ["subscription_type", "role", "account_id"]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample.generate(tmp_path_factory.mktemp("duckdb") / "sample.duckdb", N)


@pytest.fixture(scope="module")
def parquet_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A different chunk size than the DuckDB fixture: the rows must not depend on it.
    return sample.generate(
        tmp_path_factory.mktemp("parquet") / "sample", N, fmt="parquet", chunk_users=700
    )


@pytest.fixture(scope="module")
def con(db_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(db_path), read_only=True)
    yield c
    c.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> object:
    return con.execute(sql, list(params)).fetchone()[0]


# Users with at least one event of each kind, as SQL snippets reused below.
SESSIONS = "(select user_id, count(*) n, max(time) last_session from events where event = 'Session' group by 1)"
BUYERS = "(select distinct user_id from events where event = 'Completed Order')"


# --- determinism and formats -----------------------------------------------------------------


def test_same_seed_and_size_give_identical_tables(tmp_path: Path) -> None:
    a = sample.generate(tmp_path / "a", 1_000, seed=7, fmt="parquet")
    b = sample.generate(tmp_path / "b", 1_000, seed=7, fmt="parquet")
    for name in set(TABLES) - {"events"}:
        assert pq.read_table(a / f"{name}.parquet").equals(pq.read_table(b / f"{name}.parquet"))
    events_a = pq.read_table(a / "events")
    assert events_a.num_rows > 30_000
    assert events_a.equals(pq.read_table(b / "events"))


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a = pq.read_table(
        sample.generate(tmp_path / "a", 1_000, seed=1, fmt="parquet") / "users.parquet"
    )
    b = pq.read_table(
        sample.generate(tmp_path / "b", 1_000, seed=2, fmt="parquet") / "users.parquet"
    )
    assert a["user_id"].equals(b["user_id"])
    assert not a["email"].equals(b["email"])
    assert not a["signup_date"].equals(b["signup_date"])


def test_parquet_and_duckdb_hold_the_same_rows(db_path: Path, parquet_path: Path) -> None:
    c = duckdb.connect()
    c.execute(f"attach '{db_path}' as db (read_only)")
    for name in TABLES:
        source = (
            f"'{parquet_path / 'events'}/*.parquet'"
            if name == "events"
            else f"'{parquet_path / name}.parquet'"
        )
        pq_rows = f"select * from read_parquet({source})"
        db_rows = f"select * from db.{name}"
        n_db = one(c, f"select count(*) from db.{name}")
        assert n_db > 0
        assert one(c, f"select count(*) from ({pq_rows})") == n_db
        assert one(c, f"select count(*) from ({pq_rows} except all {db_rows})") == 0
        assert one(c, f"select count(*) from ({db_rows} except all {pq_rows})") == 0
    assert len(list((parquet_path / "events").glob("part-*.parquet"))) == math.ceil(N / 1_000)


def test_parquet_files_have_the_declared_schemas(parquet_path: Path) -> None:
    assert pq.read_schema(parquet_path / "users.parquet") == sample.USERS_SCHEMA
    assert pq.read_schema(parquet_path / "accounts.parquet") == sample.ACCOUNTS_SCHEMA
    assert pq.read_schema(parquet_path / "user_migrations.parquet") == sample.MIGRATIONS_SCHEMA
    assert pq.read_schema(parquet_path / "user_history.parquet") == sample.USER_HISTORY_SCHEMA
    assert (
        pq.read_schema(parquet_path / "user_trait_changes.parquet")
        == sample.USER_TRAIT_CHANGES_SCHEMA
    )
    assert pq.read_schema(parquet_path / "account_history.parquet") == sample.ACCOUNT_HISTORY_SCHEMA
    for part in (parquet_path / "events").iterdir():
        assert pq.read_schema(part) == sample.EVENTS_SCHEMA


def test_duckdb_tables_have_the_documented_types(con: duckdb.DuckDBPyConnection) -> None:
    expected = {
        "users": [
            ("user_id", "BIGINT"),
            ("subscription_type", "VARCHAR"),
            ("country", "VARCHAR"),
            ("email", "VARCHAR"),
            ("role", "VARCHAR"),
            ("signup_date", "DATE"),
            ("ltv", "DOUBLE"),
            ("email_opt_in", "BOOLEAN"),
            ("account_id", "BIGINT"),
            ("joined_at", "TIMESTAMP"),
        ],
        "accounts": [
            ("account_id", "BIGINT"),
            ("tier", "VARCHAR"),
            ("vertical", "VARCHAR"),
            ("location", "VARCHAR"),
        ],
        "events": [
            ("user_id", "BIGINT"),
            ("time", "TIMESTAMP"),
            ("event", "VARCHAR"),
            ("session_id", "BIGINT"),
            ("path", "VARCHAR"),
            ("search_term", "VARCHAR"),
            ("product_id", "BIGINT"),
            ("price", "DOUBLE"),
            ("quantity", "BIGINT"),
            ("category", "VARCHAR"),
            ("revenue", "DOUBLE"),
            ("item_count", "BIGINT"),
            ("payment_method", "VARCHAR"),
            ("promo_code", "VARCHAR"),
            ("rating", "BIGINT"),
        ],
        "user_migrations": [("from_user_id", "BIGINT"), ("to_user_id", "BIGINT")],
        "user_history": [
            ("user_id", "BIGINT"),
            ("valid_from", "TIMESTAMP"),
            ("valid_to", "TIMESTAMP"),
            ("subscription_type", "VARCHAR"),
            ("role", "VARCHAR"),
            ("account_id", "BIGINT"),
        ],
        "user_trait_changes": [
            ("user_id", "BIGINT"),
            ("time", "TIMESTAMP"),
            ("subscription_type", "VARCHAR"),
            ("role", "VARCHAR"),
            ("account_id", "BIGINT"),
        ],
        "account_history": [
            ("account_id", "BIGINT"),
            ("valid_from", "TIMESTAMP"),
            ("valid_to", "TIMESTAMP"),
            ("tier", "VARCHAR"),
        ],
    }
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    assert tables == set(expected)
    for table, columns in expected.items():
        assert [(r[0], r[1]) for r in con.execute(f"describe {table}").fetchall()] == columns


# Digests of the tables as they were before the histories and users.joined_at were added (the
# generator of DATA_VERSION 1, seed 42, N users): adding them must not change a single value.
OLD_TABLES = {
    "users": (
        "user_id, subscription_type, country, email, role, signup_date, ltv, email_opt_in, account_id",
        "4220be06cee289bf",
    ),
    "accounts": ("*", "05c4a7740d65dd58"),
    "events": ("*", "a32337ce2a0539ac"),
    "user_migrations": ("*", "de17e3d36986fb55"),
}


def digest(con: duckdb.DuckDBPyConnection, table: str, columns: str) -> str:
    cursor = con.execute(f"select {columns} from {table} order by all")
    h = hashlib.sha256()
    while rows := cursor.fetchmany(10_000):
        h.update(repr(rows).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("table", sorted(OLD_TABLES))
def test_tables_that_predate_the_histories_are_unchanged(
    con: duckdb.DuckDBPyConnection, table: str
) -> None:
    columns, expected = OLD_TABLES[table]
    assert digest(con, table, columns) == expected


# --- referential facts -------------------------------------------------------------------------


def test_users_are_numbered_one_to_n(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute(
        "select count(*), count(distinct user_id), min(user_id), max(user_id) from users"
    ).fetchone() == (N, N, 1, N)


def test_every_user_has_one_created_account_at_signup(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """select u.user_id, count(e.user_id), min(e.time::date) = any_value(u.signup_date)
           from users u left join events e on e.user_id = u.user_id and e.event = 'Created Account'
           group by 1"""
    ).fetchall()
    assert len(rows) == N
    assert all(n == 1 and same_day for _, n, same_day in rows)
    # Nothing a user did comes before their account (anonymous pre-signup events aside).
    assert (
        one(
            con,
            """select count(*) from events e join users u using (user_id)
               where e.time < (select time from events c
                               where c.user_id = u.user_id and c.event = 'Created Account')""",
        )
        == 0
    )


def test_no_event_at_or_after_as_of_and_history_starts_in_may_2025(
    con: duckdb.DuckDBPyConnection,
) -> None:
    first, last = con.execute("select min(time), max(time) from events").fetchone()
    assert last < sample.SAMPLE_AS_OF
    assert sample.SAMPLE_AS_OF - last < timedelta(days=2)
    assert sample.SAMPLE_START <= first < sample.SAMPLE_START + timedelta(days=10)
    lo, hi = con.execute("select min(signup_date), max(signup_date) from users").fetchone()
    assert (hi - lo).days > 500
    assert hi < sample.SAMPLE_AS_OF.date()


def test_unknown_event_users_are_exactly_the_migrated_anonymous_ids(
    con: duckdb.DuckDBPyConnection,
) -> None:
    orphans = {
        r[0]
        for r in con.execute(
            "select distinct user_id from events where user_id not in (select user_id from users)"
        ).fetchall()
    }
    migrations = con.execute("select from_user_id, to_user_id from user_migrations").fetchall()
    assert 20 <= len(migrations) <= 0.06 * N
    assert orphans == {f for f, _ in migrations}
    assert len({f for f, _ in migrations}) == len(migrations)
    assert all(f > N and 1 <= t <= N for f, t in migrations)
    anonymous_events = con.execute("select distinct event from events where user_id > ?", [N])
    assert {r[0] for r in anonymous_events.fetchall()} == {"Session", "Pageview"}


def test_account_ids_are_mostly_valid(con: duckdb.DuckDBPyConnection) -> None:
    n_accounts, distinct = con.execute(
        "select count(*), count(distinct account_id) from accounts"
    ).fetchone()
    assert n_accounts == distinct == math.ceil(N / 8)
    total, linked, valid = con.execute(
        """select count(*), count(account_id),
                  count(*) filter (where account_id in (select account_id from accounts))
           from users"""
    ).fetchone()
    assert 0.75 * total <= valid < linked < total  # some missing accounts, some without one
    assert linked - valid >= 10


def test_sessions_belong_to_one_user_and_carry_their_events(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        one(
            con,
            "select count(*) from (select session_id from events where session_id is not null group by 1 having count(distinct user_id) > 1)",
        )
        == 0
    )
    assert one(
        con, "select count(*) = count(distinct session_id) from events where event = 'Session'"
    )
    # Every in-session event points to a Session event of the same user.
    assert (
        one(
            con,
            """select count(*) from events e where session_id is not null
               and not exists (select 1 from events s where s.event = 'Session'
                               and s.session_id = e.session_id and s.user_id = e.user_id)""",
        )
        == 0
    )


# --- join times and property histories ---------------------------------------------------------


def test_every_user_joined_at_their_created_account_event(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select count(*) from users where joined_at is null") == 0
    assert one(con, "select count(*) from users where joined_at::date <> signup_date") == 0
    assert (
        one(
            con,
            """select count(*) from users u join events e using (user_id)
               where e.event = 'Created Account' and e.time = u.joined_at""",
        )
        == N
    )
    lo, hi = con.execute("select min(joined_at), max(joined_at) from users").fetchone()
    assert lo >= sample.SAMPLE_START and hi < sample.SAMPLE_AS_OF
    # Merged anonymous browsing comes before joining: that is what identity merges look like.
    assert (
        one(
            con,
            """select count(*) from events e join user_migrations m on e.user_id = m.from_user_id
               join users u on u.user_id = m.to_user_id where e.time < u.joined_at""",
        )
        > 0
    )


@pytest.mark.parametrize(
    ("table", "key"), [("user_history", "user_id"), ("account_history", "account_id")]
)
def test_snapshots_are_contiguous_and_within_the_history(
    con: duckdb.DuckDBPyConnection, table: str, key: str
) -> None:
    assert (
        one(
            con,
            f"""select count(*) from (
                  select valid_from, valid_to,
                         lead(valid_from) over (partition by {key} order by valid_from) next_from
                  from {table})
                where valid_to is distinct from next_from or valid_to <= valid_from""",
        )
        == 0
    )
    first, last_from, last_to = con.execute(
        f"select min(valid_from), max(valid_from), max(valid_to) from {table}"
    ).fetchone()
    assert first >= sample.SAMPLE_START
    assert last_from < sample.SAMPLE_AS_OF and last_to < sample.SAMPLE_AS_OF
    assert one(con, f"select count(*) from {table} where valid_from is null or {key} is null") == 0


def test_user_history_starts_at_joined_at_and_ends_at_the_users_values(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert (
        one(
            con,
            """select count(*) from users u
               join (select user_id, min(valid_from) f from user_history group by 1) h using (user_id)
               where h.f = u.joined_at""",
        )
        == N
    )
    # The current row (valid_to NULL) of every user is their users row, NULLs included.
    assert one(con, "select count(*) from user_history where valid_to is null") == N
    assert (
        one(
            con,
            """select count(*) from users u join user_history h using (user_id)
               where h.valid_to is null
                 and h.subscription_type is not distinct from u.subscription_type
                 and h.role is not distinct from u.role
                 and h.account_id is not distinct from u.account_id""",
        )
        == N
    )
    assert one(con, "select count(*) from users where role is null") > 0
    assert one(con, "select count(*) from users where account_id is null") > 0


def test_user_history_follows_trials_and_upgrades(con: duckdb.DuckDBPyConnection) -> None:
    # Everyone signs up free; a trial starts at "Started Trial"; paid starts at "Upgrade".
    assert (
        one(
            con,
            """select count(*) from user_history h join users u using (user_id)
               where h.valid_from = u.joined_at and h.subscription_type <> 'free'""",
        )
        == 0
    )
    for plan, event in (("trial", "Started Trial"), ("paid", "Upgrade")):
        assert (
            one(
                con,
                f"""select count(*) from
                      (select user_id, min(valid_from) t from user_history
                       where subscription_type = '{plan}' group by 1) h
                    full join (select user_id, time t from events where event = '{event}') e
                    using (user_id) where h.t is distinct from e.t""",
            )
            == 0
        )
    paths = dict(
        con.execute(
            """select path, count(*) from (
                 select user_id, string_agg(subscription_type, '>' order by valid_from) path
                 from (select *, lag(subscription_type) over (partition by user_id
                                                              order by valid_from) previous
                       from user_history)
                 where previous is distinct from subscription_type group by 1)
               group by 1"""
        ).fetchall()
    )
    assert set(paths) == {"free", "free>trial", "free>trial>paid", "free>trial>free", "free>paid"}
    assert min(paths.values()) > 0 and paths["free>trial>free"] >= 0.1 * N
    # A lapsed trial is back to free 14 days after it started.
    lapsed, on_time = con.execute(
        """select count(*), count(*) filter (where f.valid_from = e.time + interval 14 day)
           from (select *, lag(subscription_type) over (partition by user_id
                                                        order by valid_from) previous
                 from user_history) f
           join events e on e.user_id = f.user_id and e.event = 'Started Trial'
           where f.previous = 'trial' and f.subscription_type = 'free'"""
    ).fetchone()
    assert lapsed == on_time == paths["free>trial>free"]


def test_some_users_change_role_or_account_once_never_to_null(
    con: duckdb.DuckDBPyConnection,
) -> None:
    for trait in ("role", "account_id"):
        changed, from_null = con.execute(
            f"""select count(*), count(last_null) from (
                  select user_id, max(valid_from) filter (where {trait} is null) last_null,
                         min(valid_from) filter (where {trait} is not null) first_set,
                         count(*) filter (where changed) n_changes
                  from (select *, {trait} is distinct from lag({trait}) over w
                                  and lag(valid_from) over w is not null changed
                        from user_history window w as (partition by user_id order by valid_from))
                  group by 1)
                where n_changes = 1 and (last_null is null or last_null < first_set)""",
        ).fetchone()
        all_changed = one(
            con,
            f"""select count(distinct user_id) from (
                  select user_id, {trait} is distinct from lag({trait}) over w
                                  and lag(valid_from) over w is not null changed
                  from user_history window w as (partition by user_id order by valid_from))
                where changed""",
        )
        # Every change is the user's only one for that trait, and never towards NULL (NULL
        # rows, where there are some, come first: the trait was filled in later).
        assert changed == all_changed
        assert 0.02 * N <= changed <= 0.1 * N
        assert 0 < from_null < changed
    # Where a user moved, the old account was another one of the accounts table.
    assert (
        one(
            con,
            """select count(*) from user_history h join users u using (user_id)
               where h.account_id <> u.account_id
                 and h.account_id not in (select account_id from accounts)""",
        )
        == 0
    )


def test_trait_changes_set_the_first_values_then_only_what_changed(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert one(con, "select count(*) from user_trait_changes") == one(
        con, "select count(*) from user_history"
    )
    # Each change row matches the snapshot row starting then, against the one ending then.
    conditions = " and ".join(
        f"""(c.{t} is null and (p.user_id is null and s.{t} is null
                                 or p.user_id is not null and s.{t} is not distinct from p.{t})
             or c.{t} is not null and c.{t} = s.{t}
                and (p.user_id is null or c.{t} is distinct from p.{t}))"""
        for t in TRAITS
    )
    assert one(
        con,
        f"""select count(*) from user_trait_changes c
                join user_history s on s.user_id = c.user_id and s.valid_from = c.time
                left join user_history p on p.user_id = c.user_id and p.valid_to = c.time
                where {conditions}""",
    ) == one(con, "select count(*) from user_trait_changes")
    assert (
        one(
            con,
            "select count(*) from user_trait_changes where subscription_type is null and role is null and account_id is null",
        )
        == 0
    )


def values_from_snapshots(history: pd.DataFrame, at: datetime) -> pd.DataFrame:
    valid = (history.valid_from <= at) & (history.valid_to.isna() | (at < history.valid_to))
    rows = history[valid]
    assert rows.user_id.is_unique
    return rows.set_index("user_id")[TRAITS].sort_index()


def values_from_changes(changes: pd.DataFrame, at: datetime) -> pd.DataFrame:
    # GroupBy.last takes each column's last non-NULL value: a NULL is "not set by this row".
    rows = changes[changes.time <= at].sort_values(["user_id", "time"])
    return rows.groupby("user_id")[TRAITS].last().sort_index()


def test_changes_replayed_give_the_snapshots_at_every_moment(
    con: duckdb.DuckDBPyConnection,
) -> None:
    history = con.execute("select * from user_history").df()
    changes = con.execute("select * from user_trait_changes").df()
    users = con.execute(f"select user_id, joined_at, {', '.join(TRAITS)} from users").df()
    later_starts = history.valid_from[history.valid_from > history.valid_from.min()]
    moments = [
        sample.SAMPLE_START,
        datetime(2025, 8, 1),
        datetime(2025, 12, 24, 18),
        datetime(2026, 3, 1),
        datetime(2026, 7, 15, 12, 30),
        datetime(2026, 10, 1),
        # Moments at which some user's traits change: the row starting then counts.
        *later_starts.sample(5, random_state=0).dt.to_pydatetime(),
        sample.SAMPLE_AS_OF - timedelta(microseconds=1),
    ]
    for at in moments:
        expected = values_from_snapshots(history, at)
        # Who has history rows at a moment: exactly the users who had joined.
        assert list(expected.index) == sorted(users.user_id[users.joined_at <= at])
        pd.testing.assert_frame_equal(
            values_from_changes(changes, at), expected, check_dtype=False, obj=str(at)
        )
    assert len(expected) == N
    final = users.set_index("user_id")[TRAITS].sort_index()
    pd.testing.assert_frame_equal(
        values_from_changes(changes, sample.SAMPLE_AS_OF), final, check_dtype=False
    )


def test_account_history_ends_at_the_accounts_tier(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select count(*) from account_history where valid_to is null") == math.ceil(
        N / 8
    )
    assert one(
        con,
        """select count(*) from accounts a join account_history h using (account_id)
               where h.valid_to is null and h.tier = a.tier""",
    ) == math.ceil(N / 8)
    tier_paths = dict(
        con.execute(
            """select path, count(*) from (
                 select account_id, string_agg(tier, '>' order by valid_from) path
                 from account_history group by 1) group by 1"""
        ).fetchall()
    )
    changed = sum(n for path, n in tier_paths.items() if ">" in path)
    assert 0.15 * math.ceil(N / 8) <= changed <= 0.5 * math.ceil(N / 8)
    assert "bronze>silver>gold" in tier_paths
    # An account exists (has its first history row) whenever a user's history places them in it.
    assert (
        one(
            con,
            """select count(*) from user_history h
               join (select account_id, min(valid_from) created from account_history group by 1) a
               using (account_id) where h.valid_from < a.created""",
        )
        == 0
    )


# --- event properties ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "events"),
    [
        ("path", {"Pageview"}),
        ("search_term", {"Search Bar"}),
        ("price", {"Add to Cart"}),
        ("quantity", {"Add to Cart"}),
        ("category", {"Add to Cart"}),
        ("product_id", {"Add to Cart", "Product Review Published"}),
        ("revenue", {"Completed Order"}),
        ("item_count", {"Completed Order"}),
        ("payment_method", {"Completed Order"}),
        ("rating", {"Product Review Published"}),
        ("promo_code", {"Completed Order"}),
    ],
)
def test_event_properties_are_set_only_on_their_events(
    con: duckdb.DuckDBPyConnection, column: str, events: set[str]
) -> None:
    carrying = {
        r[0]
        for r in con.execute(
            f"select distinct event from events where {column} is not null"
        ).fetchall()
    }
    assert carrying == events
    if column != "promo_code":  # promo codes are optional on orders
        assert (
            one(
                con,
                f"select count(*) from events where event in ? and {column} is null",
                list(events),
            )
            == 0
        )


def test_event_property_values_are_plausible(con: duckdb.DuckDBPyConnection) -> None:
    assert set(sample.EVENT_NAMES) == {
        r[0] for r in con.execute("select distinct event from events").fetchall()
    }
    assert one(con, "select min(revenue) > 0 and min(item_count) >= 1 from events") is True
    assert one(con, "select min(price) > 0 and min(quantity) >= 1 from events") is True
    assert con.execute("select min(rating), max(rating) from events").fetchone() == (1, 5)
    assert one(con, "select count(*) from events where path like '/products/%'") > 1_000
    lifecycle = (
        "('Created Account', 'Started Trial', 'Upgrade', 'Refund', 'Product Review Published')"
    )
    assert one(con, f"select count(session_id) from events where event in {lifecycle}") == 0
    assert (
        one(
            con,
            f"select count(*) from events where event not in {lifecycle} and session_id is null",
        )
        == 0
    )


def test_orders_check_out_a_cart_of_the_same_session(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        """select o.revenue, o.promo_code, sum(c.price * c.quantity), sum(c.quantity), any_value(o.item_count)
           from events o join events c on c.session_id = o.session_id and c.event = 'Add to Cart'
           where o.event = 'Completed Order' group by o.session_id, o.revenue, o.promo_code"""
    ).fetchall()
    assert len(rows) == one(con, "select count(*) from events where event = 'Completed Order'")
    for revenue, promo, basket, quantity, item_count in rows:
        assert item_count == quantity
        if promo is None:
            assert revenue == pytest.approx(basket, abs=0.01)
        else:
            assert 0 < revenue <= basket + 0.01


# --- behaviours the sample exists to show -----------------------------------------------------


def test_about_seventy_events_per_user(con: duckdb.DuckDBPyConnection) -> None:
    per_user = one(con, "select count(*) from events where user_id <= ?", N) / N
    assert 45 <= per_user <= 100


def test_activity_is_heavy_tailed(con: duckdb.DuckDBPyConnection) -> None:
    median, p99, top = con.execute(
        f"select median(n), quantile_disc(n, 0.99), max(n) from {SESSIONS}"
    ).fetchone()
    assert median <= 5
    assert p99 >= 60
    assert top >= 100


def test_some_users_never_came_back(con: duckdb.DuckDBPyConnection) -> None:
    only_signup = one(
        con,
        """select count(*) from users u where not exists
           (select 1 from events e where e.user_id = u.user_id and e.event <> 'Created Account')""",
    )
    assert 0.03 * N <= only_signup <= 0.15 * N


def test_window_shoppers(con: duckdb.DuckDBPyConnection) -> None:
    shoppers = one(
        con,
        f"""select count(*) from {SESSIONS} s where n > 5
            and user_id not in {BUYERS} and user_id <= ?""",
        N,
    )
    assert shoppers >= 0.08 * N
    # They do put things in their carts.
    assert (
        one(
            con,
            f"""select count(distinct user_id) from events where event = 'Add to Cart'
                and user_id not in {BUYERS}
                and user_id in (select user_id from {SESSIONS} where n > 5)""",
        )
        >= 0.5 * shoppers
    )


def test_subscriptions_follow_trials_and_upgrades(con: duckdb.DuckDBPyConnection) -> None:
    counts = dict(
        con.execute("select subscription_type, count(*) from users group by 1").fetchall()
    )
    assert set(counts) == {"trial", "free", "paid"}
    assert counts["paid"] >= 0.15 * N
    assert counts["free"] >= 0.5 * N
    upgraded = {
        r[0] for r in con.execute("select user_id from events where event = 'Upgrade'").fetchall()
    }
    paid = {
        r[0]
        for r in con.execute(
            "select user_id from users where subscription_type = 'paid'"
        ).fetchall()
    }
    assert upgraded == paid
    # Trial users are within their 14 days; converters upgraded from a trial; lapsed trials are free.
    assert (
        one(
            con,
            """select count(*) from users u where subscription_type = 'trial' and not exists
               (select 1 from events e where e.user_id = u.user_id and e.event = 'Started Trial'
                and e.time > ?::timestamp - interval 14 day)""",
            sample.SAMPLE_AS_OF,
        )
        == 0
    )
    trials = "(select user_id, min(time) t from events where event = 'Started Trial' group by 1)"
    converted, lapsed = con.execute(
        f"""select count(*) filter (where subscription_type = 'paid'),
                   count(*) filter (where subscription_type = 'free')
            from users join {trials} using (user_id)"""
    ).fetchone()
    assert converted >= 0.05 * N
    assert lapsed >= 0.1 * N


def test_possible_churn_paid_users_without_recent_sessions(con: duckdb.DuckDBPyConnection) -> None:
    paid, gone = con.execute(
        f"""select count(*), count(*) filter (where s.last_session is null or s.last_session < ?::timestamp - interval 90 day)
            from users u left join {SESSIONS} s using (user_id) where subscription_type = 'paid'""",
        [sample.SAMPLE_AS_OF],
    ).fetchone()
    assert gone >= 0.15 * paid
    assert gone >= 30


def test_lapsed_trials_stop_coming_back(con: duckdb.DuckDBPyConnection) -> None:
    # Most trials that did not convert have no session a month after the trial ended.
    lapsed, still_active = con.execute(
        f"""with t as (select user_id, min(time) t from events where event = 'Started Trial' group by 1)
            select count(*), count(*) filter (where s.last_session > t.t + interval 45 day)
            from users u join t using (user_id) left join {SESSIONS} s using (user_id)
            where subscription_type = 'free' and t.t < ?::timestamp - interval 60 day""",
        [sample.SAMPLE_AS_OF],
    ).fetchone()
    assert lapsed > 0
    assert still_active <= 0.4 * lapsed


def test_orders_refunds_and_reviews(con: duckdb.DuckDBPyConnection) -> None:
    counts = dict(con.execute("select event, count(*) from events group by 1").fetchall())
    assert counts["Completed Order"] >= 0.5 * N
    assert 0.02 * counts["Completed Order"] <= counts["Refund"] <= 0.1 * counts["Completed Order"]
    assert counts["Product Review Published"] >= 0.05 * counts["Completed Order"]
    # A refund or a review follows one of the user's orders.
    assert (
        one(
            con,
            """select count(*) from events r where event in ('Refund', 'Product Review Published')
               and not exists (select 1 from events o where o.user_id = r.user_id
                               and o.event = 'Completed Order' and o.time < r.time)""",
        )
        == 0
    )


def test_user_properties_look_real(con: duckdb.DuckDBPyConnection) -> None:
    assert (
        one(con, "select count(*) from users where not regexp_full_match(country, '[A-Z]{2}')") == 0
    )
    assert one(con, "select count(distinct country) from users") >= 10
    emails = dict(
        con.execute(
            """select case when email is null then 'null' when email = '' then 'empty'
                           when email like '%@gmail.com' then 'gmail'
                           when regexp_matches(email, '@(yahoo|outlook|hotmail|icloud)') then 'personal'
                           else 'company' end, count(*) from users group by 1"""
        ).fetchall()
    )
    assert set(emails) == {"null", "empty", "gmail", "personal", "company"}
    assert emails["company"] >= 0.3 * N
    assert (
        one(con, "select count(*) from users where email <> '' and email not like '%_@_%._%'") == 0
    )
    roles = {r[0] for r in con.execute("select distinct role from users").fetchall()}
    assert {None, "analyst", "engineer", "marketer", "manager", "founder"} <= roles
    assert 0.4 * N <= one(con, "select count(*) from users where email_opt_in") <= 0.8 * N
    assert one(con, "select count(*) from users where ltv < 0") == 0
    # Paying users are worth more.
    assert one(
        con,
        """select avg(ltv) filter (where subscription_type = 'paid')
                > 2 * avg(ltv) filter (where subscription_type = 'free') from users""",
    )


def test_accounts_have_tiers_verticals_locations(con: duckdb.DuckDBPyConnection) -> None:
    tiers = {r[0] for r in con.execute("select distinct tier from accounts").fetchall()}
    assert tiers == {"bronze", "silver", "gold", "platinum"}
    assert one(con, "select count(distinct vertical) from accounts") >= 8
    assert one(con, "select count(distinct location) from accounts") >= 10
    assert (
        one(
            con,
            "select count(*) from accounts where tier is null or vertical is null or location is null",
        )
        == 0
    )


# --- generate's contract ----------------------------------------------------------------------


def test_generate_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = sample.generate(tmp_path / "s.duckdb", 1_000)
    with pytest.raises(HeapsegError, match="already exists"):
        sample.generate(path, 1_000)
    sample.generate(path, 1_200, overwrite=True)
    c = duckdb.connect(str(path), read_only=True)
    assert one(c, "select count(*) from users") == 1_200
    c.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb"]  # no temp file left behind


@pytest.mark.parametrize(
    "kwargs",
    [{"n_users": 0}, {"seed": -1}, {"fmt": "csv"}, {"chunk_users": 0}, {"n_users": 1.5}],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"n_users": 1_000} | kwargs
    with pytest.raises(HeapsegError):
        sample.generate(tmp_path / "x", **args)
    assert list(tmp_path.iterdir()) == []


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sample_generator, "_events_table", broken)
    with pytest.raises(RuntimeError):
        sample.generate(tmp_path / "s", 1_000, fmt="parquet")
    assert list(tmp_path.iterdir()) == []


def test_tables_come_accounts_first_then_by_chunk_and_account_history_last() -> None:
    per_chunk = ["users", "events", "user_migrations", "user_history", "user_trait_changes"]
    names = [name for name, _ in sample_generator.tables(seed=4, n_users=2_500, chunk_users=1_000)]
    assert names == ["accounts", *per_chunk * 3, "account_history"]
    assert set(names) == set(sample.schema.SCHEMAS)


def test_tiny_and_odd_sizes(tmp_path: Path) -> None:
    path = sample.generate(tmp_path / "s", 1_234, fmt="parquet", chunk_users=1)
    users = pq.read_table(path / "users.parquet")
    assert users["user_id"].to_pylist() == list(range(1, 1_235))
    assert pq.read_table(path / "accounts.parquet").num_rows == math.ceil(1_234 / 8)
    one_user = sample.generate(tmp_path / "one", 1, fmt="parquet")
    assert pq.read_table(one_user / "users.parquet").num_rows == 1
    assert "Created Account" in pq.read_table(one_user / "events")["event"].to_pylist()


# --- the cache --------------------------------------------------------------------------------


def test_default_path_uses_heapseg_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEAPSEG_DATA_DIR", str(tmp_path))
    path = sample.default_path(1_000)
    assert path.parent == tmp_path
    assert f"v{sample.DATA_VERSION}" in path.name and "1000" in path.name and "seed42" in path.name
    assert sample.default_path(1_000, seed=3) != path
    assert sample.default_path(2_000) != path
    monkeypatch.delenv("HEAPSEG_DATA_DIR")
    assert sample.default_path(1_000).parent == Path.home() / ".cache" / "heapseg"


def test_ensure_sample_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEAPSEG_DATA_DIR", str(tmp_path / "cache"))
    calls = []
    write = sample_files._write

    def counting_write(*args: object) -> None:
        calls.append(args)
        write(*args)

    monkeypatch.setattr(sample_files, "_write", counting_write)
    path = sample.ensure_sample(1_000)
    assert path == sample.default_path(1_000)
    assert path.is_file()
    mtime = path.stat().st_mtime_ns
    assert sample.ensure_sample(1_000) == path
    assert path.stat().st_mtime_ns == mtime
    assert len(calls) == 1
    c = duckdb.connect(str(path), read_only=True)
    assert one(c, "select count(*) from users") == 1_000
    c.close()


def test_ensure_sample_concurrent_callers_share_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEAPSEG_DATA_DIR", str(tmp_path))
    calls = []
    write = sample_files._write

    def counting_write(*args: object) -> None:
        calls.append(args)
        write(*args)

    monkeypatch.setattr(sample_files, "_write", counting_write)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(sample.ensure_sample(1_000)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [sample.default_path(1_000)] * 3
    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        sample.default_path(1_000).name
    ]


# --- command line ------------------------------------------------------------------------------


def test_command_line_writes_and_prints_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    sample.main(["--users", "1000", "--format", "parquet", "--out", str(out), "--seed", "5"])
    assert capsys.readouterr().out.strip() == str(out)
    expected = sample.generate(tmp_path / "api", 1_000, seed=5, fmt="parquet")
    assert pq.read_table(out / "users.parquet").equals(pq.read_table(expected / "users.parquet"))


def test_command_line_runs_as_python_dash_m(tmp_path: Path) -> None:
    out = tmp_path / "m"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "heapseg.sample",
            "--users",
            "1000",
            "--format=parquet",
            f"--out={out}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(out)
    assert pq.read_table(out / "users.parquet").num_rows == 1_000


def test_command_line_reports_an_existing_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sample.generate(tmp_path / "s.duckdb", 1_000)
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--users", "1000", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
