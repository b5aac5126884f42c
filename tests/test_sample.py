"""Tests of the bundled sample data generator (heapseg.sample)."""

from __future__ import annotations

import math
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from heapseg import sample
from heapseg.errors import HeapsegError

N = 2_000


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
    for name in ("users", "accounts", "user_migrations"):
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
    for name in ("users", "accounts", "events", "user_migrations"):
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
    }
    tables = {r[0] for r in con.execute("show tables").fetchall()}
    assert tables == set(expected)
    for table, columns in expected.items():
        assert [(r[0], r[1]) for r in con.execute(f"describe {table}").fetchall()] == columns


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

    monkeypatch.setattr(sample, "_events_table", broken)
    with pytest.raises(RuntimeError):
        sample.generate(tmp_path / "s", 1_000, fmt="parquet")
    assert list(tmp_path.iterdir()) == []


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
    write = sample._write

    def counting_write(*args: object) -> None:
        calls.append(args)
        write(*args)

    monkeypatch.setattr(sample, "_write", counting_write)
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
    write = sample._write

    def counting_write(*args: object) -> None:
        calls.append(args)
        write(*args)

    monkeypatch.setattr(sample, "_write", counting_write)
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


def test_command_line_reports_an_existing_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sample.generate(tmp_path / "s.duckdb", 1_000)
    with pytest.raises(SystemExit) as exit_info:
        sample.main(["--users", "1000", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "already exists" in capsys.readouterr().err
