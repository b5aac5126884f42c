"""Point in time (heapseg/point_in_time.py and the Dataset's time API), on tiny hand-made data.

Who is a user at ``as_of`` (joining: ``users.joined_at``, else the first event after identity
merges, else always), what a tracked property was at ``as_of`` (user and account history in
snapshots or changes form), and the dataset methods built on them: ``population``,
``total_users``, ``counts``, ``members``, ``users_at``, ``accounts_at``, ``distinct_values``,
``sql``, the join-facts shortcut, ``connect`` validation and the notes that say where values
come from. Every expectation is a set of user ids that can be checked by reading the rows.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from typing import Any

import ibis
import pytest

import heapseg
from heapseg.compile import compile_segment
from heapseg.dataset import Dataset
from heapseg.errors import DataError
from heapseg.model import StaticMembers
from heapseg.resolver import Resolver
from tests.data_helpers import event_rule, group, ids, prop, user_rule

EVENTS_DDL = "events(user_id VARCHAR, time TIMESTAMP, event VARCHAR)"
ALL = group()


def table(con: ibis.BaseBackend, ddl: str, *rows: tuple) -> None:
    """``CREATE TABLE <ddl>`` (``"users(user_id VARCHAR, ...)"``) holding ``rows``.

    Timestamps are written as ISO strings; DuckDB casts them to the column's type.
    """
    con.raw_sql(f"CREATE TABLE {ddl}")
    if rows:
        name = ddl.split("(", 1)[0]
        marks = ", ".join("?" * len(rows[0]))
        con.con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])


def users_in(ds: Dataset, expr: Any) -> set:
    """The user_ids of ``ds.users`` for which the boolean ``expr`` holds."""
    return set(ds.users.filter(expr).select("user_id").to_pandas()["user_id"])


def portable_count(ds: Dataset, segment: Any, as_of: Any) -> int:
    """The segment's count through the full (portable) join test, without any shortcut."""
    expr = ds.users.filter(compile_segment(segment, ds.context(as_of, portable=True))).count()
    return int(expr.execute())


def records(table_expr: ibis.Table, key: str = "user_id") -> list[dict]:
    """The rows ordered by ``key``, NaN and NaT read as None."""
    frame = table_expr.order_by(key).to_pandas()
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def quiet_count(ds: Dataset, segment: Any, as_of: Any) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        return ds.count(segment, as_of)


# =========================================================================== joining

T = datetime(2024, 3, 31, 12, 0, 0)
JUST_AFTER = T + timedelta(microseconds=1)

JOIN_USERS = (
    ("at", "paid", T),  # joined exactly at T
    ("late", "paid", JUST_AFTER),  # one microsecond after T, with an event long before
    ("early", "paid", "2024-03-20 00:00"),  # an event (03-10) before joining
    ("first", "paid", None),  # first event 03-12
    ("merged", "paid", None),  # own event 03-25; merged anonymous id's event 03-05
    ("never", "paid", None),  # no joined_at, no events: always a user
    ("future", "paid", None),  # only events after T
)
JOIN_EVENTS = (
    ("late", "2024-03-01 00:00", "View"),
    ("early", "2024-03-10 00:00", "View"),
    ("first", "2024-03-12 00:00", "View"),
    ("first", "2024-03-13 00:00", "Buy"),
    ("merged", "2024-03-25 00:00", "View"),
    ("anon", "2024-03-05 00:00", "View"),
    ("future", "2024-04-02 00:00", "View"),
)
EVERYONE = {u[0] for u in JOIN_USERS}
JOINED_AT_T = {"at", "early", "first", "merged", "never"}

# Who is a user at each moment (by the rules above, read off the rows).
POPULATIONS = [
    ("2024-03-01", {"never"}),
    ("2024-03-07", {"never", "merged"}),  # merged through anon's event of 03-05
    ("2024-03-15", {"never", "merged", "first"}),  # early's events don't make it join
    (T, JOINED_AT_T),
    (JUST_AFTER, JOINED_AT_T | {"late"}),
    ("2024-04-03", EVERYONE),
]


def join_backend(migrations: bool = True) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    table(con, "users(user_id VARCHAR, plan VARCHAR, joined_at TIMESTAMP)", *JOIN_USERS)
    table(con, EVENTS_DDL, *JOIN_EVENTS)
    if migrations:
        table(con, "user_migrations(from_user_id VARCHAR, to_user_id VARCHAR)", ("anon", "merged"))
    return con


@pytest.fixture(scope="module")
def joins() -> Dataset:
    return heapseg.connect(join_backend())


@pytest.mark.parametrize(("as_of", "expected"), POPULATIONS)
def test_who_is_a_user_at_as_of(joins, as_of, expected):
    assert ids(joins, ALL, as_of) == expected
    assert users_in(joins, joins.population(as_of)) == expected
    assert users_in(joins, joins.predicate(ALL, as_of)) == expected


@pytest.mark.parametrize(("as_of", "expected"), POPULATIONS)
def test_total_users_counts_and_population_agree(joins, as_of, expected):
    assert joins.total_users(as_of) == len(expected)
    assert joins.counts({}, as_of) == {"__total__": len(expected)}
    assert joins.counts({"all": ALL}, as_of) == {"all": len(expected), "__total__": len(expected)}
    assert joins.count(ALL, as_of) == len(expected)


def test_joined_at_boundary_is_inclusive_to_the_microsecond(joins):
    assert "at" in ids(joins, ALL, T)
    assert "at" not in ids(joins, ALL, T - timedelta(microseconds=1))
    assert "late" not in ids(joins, ALL, T)
    assert "late" in ids(joins, ALL, JUST_AFTER)


def test_joined_at_beats_earlier_events(joins):
    # late viewed on 03-01 but joined only after T: its event does not make it a user.
    assert "late" not in ids(joins, ALL, "2024-03-02")
    assert "early" not in ids(joins, ALL, "2024-03-15")
    assert "early" in ids(joins, ALL, "2024-03-20")


def test_first_event_decides_without_joined_at(joins):
    assert "first" not in ids(joins, ALL, datetime(2024, 3, 11, 23, 59, 59, 999999))
    assert "first" in ids(joins, ALL, "2024-03-12")  # first event exactly at as_of


def test_a_merged_anonymous_event_makes_the_target_join_earlier(joins):
    assert "merged" in ids(joins, ALL, "2024-03-05")
    assert "merged" not in ids(joins, ALL, "2024-03-04")
    # Without the migrations the merged user joins at its own first event, 03-25.
    unmerged = heapseg.connect(join_backend(migrations=False))
    assert ids(unmerged, ALL, "2024-03-07") == {"never"}
    assert unmerged.total_users("2024-03-07") == 1
    assert "merged" in ids(unmerged, ALL, "2024-03-25")


def test_a_user_without_events_or_joined_at_is_always_a_user(joins):
    for as_of in ("1990-01-01", "2024-03-01", "2099-01-01"):
        assert "never" in ids(joins, ALL, as_of)


def test_a_user_whose_events_are_all_after_as_of_is_not_a_user(joins):
    assert "future" not in ids(joins, ALL, T)
    assert "future" not in ids(joins, ALL, datetime(2024, 4, 1, 23, 59, 59))
    assert "future" in ids(joins, ALL, "2024-04-02")


def test_events_before_joined_at_count_once_joined(joins):
    viewed_early = group(event_rule("View", window={"from": "2024-03-01", "to": "2024-03-11"}))
    # late (03-01), anon->merged (03-05), early (03-10) viewed in the window.
    assert ids(joins, viewed_early, T) == {"merged", "early"}
    assert ids(joins, viewed_early, JUST_AFTER) == {"merged", "early", "late"}
    assert ids(joins, viewed_early, "2024-03-15") == {"merged"}  # early not joined yet


def test_did_false_excludes_users_who_had_not_joined(joins):
    no_buy = group(event_rule("Buy", did=False))
    assert ids(joins, no_buy, T) == JOINED_AT_T - {"first"}
    assert joins.count(no_buy, T) == 4
    assert ids(joins, no_buy, "2024-04-03") == EVERYONE - {"first"}


def test_a_not_group_excludes_users_who_had_not_joined(joins):
    not_free = group(group(user_rule("plan", "=", "free")), negate=True)
    assert ids(joins, not_free, T) == JOINED_AT_T
    assert ids(joins, group(user_rule("plan", "=", "paid"), negate=True), T) == set()
    assert ids(joins, not_free, JUST_AFTER) == JOINED_AT_T | {"late"}


class Saved:
    """A resolver over a dict of saved segments (definitions or StaticMembers)."""

    def __init__(self, **segments: Any) -> None:
        self.segments = segments

    def resolve_segment(self, segment_id: str) -> Any:
        return self.segments[segment_id]


def ref(segment_id: str, member: bool = True) -> dict:
    return {"kind": "segment", "id": segment_id, "in": member}


def test_in_false_references_exclude_users_who_had_not_joined(joins):
    saved = Saved(buyers=group(event_rule("Buy")), nobody=group(user_rule("plan", "=", "free")))
    assert isinstance(saved, Resolver)
    out_of_nobody = group(ref("nobody", member=False))
    assert ids(joins, out_of_nobody, T, resolver=saved) == JOINED_AT_T
    assert ids(joins, group(ref("buyers", member=False)), T, resolver=saved) == JOINED_AT_T - {
        "first"
    }
    assert ids(joins, out_of_nobody, "2024-04-03", resolver=saved) == EVERYONE
    assert joins.count(out_of_nobody, T, resolver=saved) == 5


def test_static_members_exclude_users_who_had_not_joined(joins):
    saved = Saved(frozen=StaticMembers(["at", "late", "future", "never"]))
    assert ids(joins, group(ref("frozen")), T, resolver=saved) == {"at", "never"}
    assert ids(joins, group(ref("frozen")), JUST_AFTER, resolver=saved) == {"at", "never", "late"}
    assert ids(joins, group(ref("frozen", member=False)), T, resolver=saved) == JOINED_AT_T - {
        "at",
        "never",
    }
    assert joins.count(group(ref("frozen")), T, resolver=saved) == 2


def test_joining_off_makes_every_users_row_a_user_at_every_as_of():
    ds = heapseg.connect(join_backend(), joining=False)
    assert ds.joining is False
    no_buy = group(event_rule("Buy", did=False))
    for as_of, _ in POPULATIONS:
        assert ids(ds, ALL, as_of) == EVERYONE
        assert ds.total_users(as_of) == 7
        assert ds.counts({}, as_of) == {"__total__": 7}
        assert users_in(ds, ds.population(as_of)) == EVERYONE
    assert ds.context(T).joined is None
    assert ids(ds, no_buy, "2024-03-01") == EVERYONE  # first bought only on 03-13
    assert ids(ds, no_buy, T) == EVERYONE - {"first"}
    assert "MIN(" not in ds.sql(ALL, T) and "joined_at" not in ds.sql(ALL, T)


def test_joined_at_as_a_date_is_its_midnight():
    con = ibis.duckdb.connect()
    table(
        con,
        "users(user_id VARCHAR, joined_at DATE)",
        ("d1", "2024-03-10"),
        ("d2", "2024-03-12"),
        ("d3", None),
    )
    table(con, EVENTS_DDL, ("d3", "2024-03-11 08:00", "View"), ("d1", "2024-03-01", "View"))
    ds = heapseg.connect(con)
    assert ds.users.joined_at.type().is_timestamp()
    assert ids(ds, ALL, datetime(2024, 3, 9, 23, 59, 59, 999999)) == set()
    assert ids(ds, ALL, "2024-03-10") == {"d1"}
    assert ids(ds, ALL, "2024-03-11T08:00:00") == {"d1", "d3"}
    assert ids(ds, ALL, "2024-03-12") == {"d1", "d2", "d3"}
    assert ds.total_users("2024-03-11") == 1


# =========================================================================== the join facts


def facts_backend(kind: str) -> ibis.BaseBackend:
    """(a) every joined_at set, (b) some NULL joined_at, (c) no joined_at column.

    The latest event is 2024-03-25 in each.
    """
    con = ibis.duckdb.connect()
    if kind == "all set":
        table(
            con,
            "users(user_id VARCHAR, plan VARCHAR, joined_at TIMESTAMP)",
            ("a1", "paid", "2024-03-01"),
            ("a2", "free", "2024-03-20"),  # an event on 03-05, before joining
            ("a3", "paid", "2024-04-10"),  # joins after every event
        )
        events = [("a2", "2024-03-05", "View"), ("a1", "2024-03-25", "View")]
    elif kind == "some null":
        table(
            con,
            "users(user_id VARCHAR, plan VARCHAR, joined_at TIMESTAMP)",
            ("b1", "paid", "2024-03-01"),
            ("b2", "free", None),  # first event 03-20
            ("b3", "paid", None),  # no events at all
        )
        events = [("b2", "2024-03-20", "View"), ("b2", "2024-03-25", "View")]
    else:
        table(
            con,
            "users(user_id VARCHAR, plan VARCHAR)",
            ("c1", "paid"),  # first event 03-05
            ("c2", "free"),  # first event 03-25
            ("c3", "paid"),  # no events
        )
        events = [("c1", "2024-03-05", "View"), ("c2", "2024-03-25", "View")]
    table(con, EVENTS_DDL, *events)
    return con


LATEST = datetime(2024, 3, 25)
FACT_CASES = [
    ("all set", "2024-03-10", {"a1"}),
    ("all set", "2024-03-25", {"a1", "a2"}),
    ("all set", "2024-04-30", {"a1", "a2", "a3"}),
    ("some null", "2024-03-10", {"b1", "b3"}),
    ("some null", "2024-03-20", {"b1", "b2", "b3"}),
    ("some null", "2024-04-30", {"b1", "b2", "b3"}),
    ("no column", "2024-03-01", {"c3"}),
    ("no column", "2024-03-10", {"c1", "c3"}),
    ("no column", "2024-03-25", {"c1", "c2", "c3"}),
    ("no column", "2024-04-30", {"c1", "c2", "c3"}),
]
FACT_SEGMENTS = {
    "all": ALL,
    "no view": group(event_rule("View", did=False)),
    "not free": group(user_rule("plan", "!=", "free")),
}


@pytest.fixture(scope="module")
def fact_datasets() -> dict[str, Dataset]:
    return {
        kind: heapseg.connect(facts_backend(kind)) for kind in ("all set", "some null", "no column")
    }


def test_join_facts_are_read_from_the_data(fact_datasets):
    assert fact_datasets["all set"]._facts() == (False, LATEST)
    assert fact_datasets["some null"]._facts() == (True, LATEST)
    assert fact_datasets["no column"]._facts() == (True, LATEST)


@pytest.mark.parametrize(("kind", "as_of", "expected"), FACT_CASES)
def test_the_shortcut_counts_as_the_portable_expression(fact_datasets, kind, as_of, expected):
    ds = fact_datasets[kind]
    assert ids(ds, ALL, as_of) == expected
    assert ds.count(ALL, as_of) == portable_count(ds, ALL, as_of) == len(expected)
    for segment in FACT_SEGMENTS.values():
        assert quiet_count(ds, segment, as_of) == portable_count(ds, segment, as_of)
    assert ds.counts({}, as_of)["__total__"] == len(expected)


@pytest.mark.parametrize(("kind", "as_of", "expected"), FACT_CASES)
def test_pasted_sql_selects_the_same_users(fact_datasets, kind, as_of, expected):
    ds = fact_datasets[kind]
    for segment in FACT_SEGMENTS.values():
        sql = ds.sql(segment, as_of)
        assert "MIN(" in sql  # the first-event test is always spelled out
        rows = {row[0] for row in ds.backend.con.execute(sql).fetchall()}
        assert rows == ids(ds, segment, as_of)
    assert {row[0] for row in ds.backend.con.execute(ds.sql(ALL, as_of)).fetchall()} == expected


@pytest.mark.parametrize(
    ("kind", "as_of", "scans"),
    [
        ("all set", "2024-03-10", False),  # joined_at decides everyone
        ("some null", "2024-03-10", True),  # b2's first event is still ahead
        ("some null", "2024-03-25", False),  # no event after as_of
        ("no column", "2024-03-10", True),
        ("no column", "2024-04-30", False),
    ],
)
def test_the_shortcut_skips_the_first_event_scan_only_when_it_changes_nothing(
    fact_datasets, kind, as_of, scans
):
    ds = fact_datasets[kind]
    shortcut = ibis.to_sql(ds.users.filter(ds.population(as_of)))
    assert ("MIN(" in shortcut) is scans
    portable = ibis.to_sql(ds.users.filter(ds.context(as_of, portable=True).joined))
    assert "MIN(" in portable


def test_pasted_sql_stays_right_on_tomorrows_data():
    # Today every user has a joined_at, so counts skip the first-event scan; the SQL must not.
    con = facts_backend("all set")
    ds = heapseg.connect(con)
    assert ds.count(ALL, "2024-03-25") == 2
    sql = ds.sql(ALL, "2024-03-25")
    con.raw_sql("INSERT INTO users VALUES ('new', 'paid', NULL), ('old', 'paid', NULL)")
    con.raw_sql(
        "INSERT INTO events VALUES ('new', '2024-03-30', 'View'), ('old', '2024-03-02', 'View')"
    )
    rows = {row[0] for row in con.con.execute(sql).fetchall()}
    assert rows == {"a1", "a2", "old"}
    ds.refresh()  # the facts read before the new rows are forgotten
    assert ds._facts() == (True, datetime(2024, 3, 30))
    assert ids(ds, ALL, "2024-03-25") == {"a1", "a2", "old"}
    assert ds.count(ALL, "2024-03-25") == ds.total_users("2024-03-25") == 3


def test_join_facts_are_one_row_whatever_the_users(monkeypatch):
    # The facts are two aggregates: one row comes back, not one per user.
    ds = heapseg.connect(facts_backend("no column"))
    frames = []
    execute = ds.execute

    def spy(expr):
        frames.append(execute(expr))
        return frames[-1]

    monkeypatch.setattr(ds, "execute", spy)
    assert ds._facts() == (True, LATEST)
    assert [len(frame) for frame in frames] == [1]


@pytest.mark.parametrize("joined_at", [False, True])
def test_an_empty_users_table_has_no_users(joined_at):
    con = ibis.duckdb.connect()
    table(
        con,
        "users(user_id VARCHAR, joined_at TIMESTAMP)" if joined_at else "users(user_id VARCHAR)",
    )
    table(con, EVENTS_DDL, ("u1", "2024-03-01", "View"))
    ds = heapseg.connect(con)
    assert ds.total_users("2024-03-10") == 0
    assert ds.count(ALL, "2024-03-10") == 0
    assert ds.counts({"all": ALL}, "2024-03-10") == {"all": 0, "__total__": 0}
    assert ids(ds, ALL, "2024-03-10") == set()


def test_the_shortcut_respects_nanosecond_event_times():
    # u2's only event is half a microsecond after as_of: u2 has not joined.
    con = ibis.duckdb.connect()
    table(con, "users(user_id VARCHAR)", ("u1",), ("u2",))
    con.raw_sql("CREATE TABLE events(user_id VARCHAR, time TIMESTAMP_NS, event VARCHAR)")
    con.raw_sql(
        "INSERT INTO events VALUES ('u1', '2024-03-01 00:00:00', 'View'), "
        "('u2', '2024-03-01 12:00:00.0000005', 'View')"
    )
    ds = heapseg.connect(con)
    as_of = "2024-03-01T12:00:00"
    assert portable_count(ds, ALL, as_of) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas discarding nanoseconds
        assert ids(ds, ALL, as_of) == {"u1"}
        assert ds.count(ALL, as_of) == 1
        assert ds.total_users(as_of) == 1


# =========================================================================== user history: snapshots

SNAP_USERS = [(f"s{i}", "pro", "admin", f"s{i}@x") for i in range(1, 7)]
SNAP_ROWS = (
    # s1: free until 02-01, pro from 02-01 (valid_from == as_of matches, valid_to == as_of not)
    ("s1", "2024-01-01", "2024-02-01", "free", "member", "x1"),
    ("s1", "2024-02-01", None, "pro", "admin", "x2"),
    # s2: overlapping rows: the latest valid_from wins while it is valid
    ("s2", "2024-01-01", None, "free", "member", "x3"),
    ("s2", "2024-02-01", "2024-04-01", "pro", "admin", "x4"),
    # s3: identical valid_from: the greatest non-NULL value of each property
    ("s3", "2024-01-01", None, "basic", "owner", "x5"),
    ("s3", "2024-01-01", None, "trial", None, "x6"),
    # s4: no row before 03-01: unset, never today's 'pro'
    ("s4", "2024-03-01", None, "pro", "admin", "x7"),
    # s5: valid_to before valid_from: never matches
    ("s5", "2024-03-01", "2024-02-01", "pro", "admin", "x8"),
    # s6: one row that ends at 02-01: unset from 02-01 on
    ("s6", "2024-01-01", "2024-02-01", "free", "member", "x10"),
    # ghost: not in users
    ("ghost", "2024-01-01", None, "pro", "admin", "x9"),
)
# plan of s1..s6 at each moment (None: unset)
SNAP_PLANS = {
    "2024-01-15": ["free", "free", "trial", None, None, "free"],
    datetime(2024, 1, 31, 23, 59, 59, 999999): ["free", "free", "trial", None, None, "free"],
    "2024-02-01": ["pro", "pro", "trial", None, None, None],
    "2024-03-01": ["pro", "pro", "trial", "pro", None, None],
    "2024-04-15": ["pro", "free", "trial", "pro", None, None],
}
USERS_DDL = "users(user_id VARCHAR, plan VARCHAR, role VARCHAR, email VARCHAR)"


def snapshots_backend(
    valid_from: str = "valid_from", valid_to: str = "valid_to", kind: str = "TIMESTAMP"
) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    table(con, USERS_DDL, *SNAP_USERS)
    table(con, EVENTS_DDL)
    table(
        con,
        f"user_history(user_id VARCHAR, {valid_from} {kind}, {valid_to} {kind}, plan VARCHAR, "
        "role VARCHAR, dbt_scd_id VARCHAR)",
        *SNAP_ROWS,
    )
    return con


@pytest.fixture(scope="module")
def snapshots() -> Dataset:
    return heapseg.connect(snapshots_backend())


def plans_at(ds: Dataset, as_of: Any) -> list:
    return [r["plan"] for r in records(ds.users_at(as_of, ["plan"]))]


def test_snapshots_history_is_bound_with_its_tracked_properties(snapshots):
    history = snapshots.user_history
    assert history is not None
    assert (history.form, history.key, history.label) == ("snapshots", "user_id", "user_history")
    assert history.tracked == ("plan", "role")  # dbt_scd_id: not a users column, ignored
    assert history.describe() == "user_history (snapshots): plan, role"


@pytest.mark.parametrize(("as_of", "plans"), SNAP_PLANS.items())
def test_snapshots_value_at_as_of(snapshots, as_of, plans):
    assert plans_at(snapshots, as_of) == plans


def test_snapshots_tie_takes_the_greatest_non_null_value(snapshots):
    row = records(snapshots.users_at("2024-02-15", ["plan", "role"]))[2]
    assert row == {"user_id": "s3", "plan": "trial", "role": "owner"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (user_rule("plan", "=", "pro"), {"s1", "s2"}),
        (user_rule("plan", "!=", "pro"), {"s3", "s4", "s5", "s6"}),
        (user_rule("plan", "is not set"), {"s4", "s5", "s6"}),
        (user_rule("plan", "is set"), {"s1", "s2", "s3"}),
        (user_rule("plan", "in", ["free", "trial"]), {"s3"}),
        (user_rule("role", "=", "owner"), {"s3"}),
        (user_rule("email", "=", "s4@x"), {"s4"}),  # untracked: the users value
    ],
)
def test_snapshots_property_rules_read_the_value_at_as_of(snapshots, rule, expected):
    assert ids(snapshots, group(rule), "2024-02-15") == expected
    assert snapshots.count(group(rule), "2024-02-15") == len(expected)


def test_snapshots_rows_of_unknown_users_are_ignored(snapshots):
    assert snapshots.total_users("2024-02-15") == 6
    pro = group(user_rule("plan", "=", "pro"))
    assert ids(snapshots, pro, "2024-03-15") == {"s1", "s2", "s4"}
    assert "ghost" not in {r["user_id"] for r in records(snapshots.users_at("2024-03-15"))}


def test_snapshots_sql_carries_the_history(snapshots):
    pro = group(user_rule("plan", "=", "pro"))
    sql = snapshots.sql(pro, "2024-02-15", properties=["plan"])
    rows = sorted(snapshots.backend.con.execute(sql).fetchall())
    assert rows == [("s1", "pro"), ("s2", "pro")]


def test_snapshots_with_mapped_dbt_columns():
    con = snapshots_backend("dbt_valid_from", "dbt_valid_to")
    mapping = {"user_history": {"valid_from": "dbt_valid_from", "valid_to": "dbt_valid_to"}}
    ds = heapseg.connect(con, columns=mapping)
    assert ds.user_history.form == "snapshots"
    for as_of, plans in SNAP_PLANS.items():
        assert plans_at(ds, as_of) == plans
    assert ids(ds, group(user_rule("plan", "!=", "pro")), "2024-02-15") == {"s3", "s4", "s5", "s6"}


def test_snapshots_with_date_valid_from():
    ds = heapseg.connect(snapshots_backend(kind="DATE"))
    assert ds.user_history.table.valid_from.type().is_timestamp()
    for as_of, plans in SNAP_PLANS.items():
        assert plans_at(ds, as_of) == plans


def test_snapshots_without_valid_to():
    con = ibis.duckdb.connect()
    table(con, USERS_DDL, *SNAP_USERS[:2])
    table(con, EVENTS_DDL)
    table(
        con,
        "user_history(user_id VARCHAR, valid_from TIMESTAMP, plan VARCHAR)",
        ("s1", "2024-01-01", "free"),
        ("s1", "2024-02-01", "pro"),
    )
    ds = heapseg.connect(con)
    assert plans_at(ds, "2024-01-15") == ["free", None]
    assert plans_at(ds, "2024-02-01") == ["pro", None]


# =========================================================================== user history: changes

CHANGE_ROWS = (
    # c1: a row that sets only the plan leaves the role
    ("c1", "2024-01-01", "free", "member"),
    ("c1", "2024-02-01", "pro", None),
    # c2: rows at the same time: the greatest value of each property
    ("c2", "2024-01-01", "basic", "admin"),
    ("c2", "2024-01-01", "trial", None),
    ("c2", "2024-01-01", None, "owner"),
    # c3: nothing before 03-01
    ("c3", "2024-03-01", "pro", "admin"),
    # c4: a later row of NULLs sets nothing
    ("c4", "2024-01-01", "free", "member"),
    ("c4", "2024-02-01", None, None),
)
CHANGE_STATES = {
    "2023-12-31": [(None, None), (None, None), (None, None), (None, None)],
    "2024-01-01": [("free", "member"), ("trial", "owner"), (None, None), ("free", "member")],
    datetime(2024, 1, 31, 23, 59, 59): [
        ("free", "member"),
        ("trial", "owner"),
        (None, None),
        ("free", "member"),
    ],
    "2024-02-01": [("pro", "member"), ("trial", "owner"), (None, None), ("free", "member")],
    "2024-03-01": [("pro", "member"), ("trial", "owner"), ("pro", "admin"), ("free", "member")],
}


@pytest.fixture(scope="module")
def changes() -> Dataset:
    con = ibis.duckdb.connect()
    table(con, USERS_DDL, *[(f"c{i}", "gold", "root", f"c{i}@x") for i in range(1, 5)])
    table(con, EVENTS_DDL)
    table(
        con,
        "user_trait_changes(user_id VARCHAR, time TIMESTAMP, plan VARCHAR, role VARCHAR)",
        *CHANGE_ROWS,
    )
    return heapseg.connect(con, user_history="user_trait_changes")


def test_changes_history_is_bound(changes):
    history = changes.user_history
    assert (history.form, history.tracked, history.label) == (
        "changes",
        ("plan", "role"),
        "user_trait_changes",
    )


@pytest.mark.parametrize(("as_of", "states"), CHANGE_STATES.items())
def test_changes_value_at_as_of(changes, as_of, states):
    rows = records(changes.users_at(as_of, ["plan", "role", "email"]))
    assert [(r["plan"], r["role"]) for r in rows] == states
    assert [r["email"] for r in rows] == ["c1@x", "c2@x", "c3@x", "c4@x"]  # untracked


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (user_rule("plan", "=", "pro"), {"c1"}),
        (user_rule("role", "=", "member"), {"c1", "c4"}),
        (user_rule("plan", "is not set"), {"c3"}),
        (user_rule("role", "!=", "owner"), {"c1", "c3", "c4"}),
        (user_rule("plan", "=", "gold"), set()),  # today's value is not the past
    ],
)
def test_changes_property_rules(changes, rule, expected):
    assert ids(changes, group(rule), "2024-02-01") == expected
    assert changes.count(group(rule), "2024-02-01") == len(expected)


# =========================================================================== accounts

ACCOUNT_ROWS = (("a1", "gold"), ("a2", "silver"))
ACCOUNT_HISTORY = (
    ("a1", "2024-01-01", "2024-03-01", "bronze"),
    ("a1", "2024-03-01", None, "gold"),
    ("a2", "2024-01-01", None, "silver"),
    ("a9", "2024-01-01", None, "gold"),  # an account that the accounts table lacks
)


def accounts_backend() -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    table(
        con,
        "users(user_id VARCHAR, account_id VARCHAR)",
        ("m1", "a1"),
        ("m2", "a2"),
        ("m3", "a9"),
        ("m4", "a2"),
    )
    table(con, EVENTS_DDL)
    table(con, "accounts(account_id VARCHAR, tier VARCHAR)", *ACCOUNT_ROWS)
    table(
        con,
        "account_history(account_id VARCHAR, valid_from TIMESTAMP, valid_to TIMESTAMP, "
        "tier VARCHAR)",
        *ACCOUNT_HISTORY,
    )
    return con


@pytest.fixture(scope="module")
def accounts() -> Dataset:
    return heapseg.connect(accounts_backend())


@pytest.fixture(scope="module")
def moving() -> Dataset:
    """m1 was in a2 until 03-01, then a1; m2 always a2; m3, m4 have no user history."""
    con = accounts_backend()
    table(
        con,
        "user_history(user_id VARCHAR, valid_from TIMESTAMP, valid_to TIMESTAMP, "
        "account_id VARCHAR)",
        ("m1", "2024-01-01", "2024-03-01", "a2"),
        ("m1", "2024-03-01", None, "a1"),
        ("m2", "2024-01-01", None, "a2"),
    )
    return heapseg.connect(con)


def tier(operator: str, value: Any = None) -> dict:
    return group(prop("account", "tier", operator, value))


@pytest.mark.parametrize(
    ("as_of", "rule", "expected"),
    [
        ("2024-02-15", tier("=", "gold"), set()),  # a1 was bronze
        ("2024-02-15", tier("=", "bronze"), {"m1"}),
        ("2024-03-01", tier("=", "gold"), {"m1"}),
        ("2024-03-15", tier("=", "silver"), {"m2", "m4"}),
        ("2024-03-15", tier("!=", "gold"), {"m2", "m3", "m4"}),  # a9 is no account
        ("2024-03-15", tier("is not set"), {"m3"}),
        ("2023-12-01", tier("is not set"), {"m1", "m2", "m3", "m4"}),
    ],
)
def test_account_history_gives_the_tier_at_as_of(accounts, as_of, rule, expected):
    assert ids(accounts, rule, as_of) == expected
    assert accounts.count(rule, as_of) == len(expected)


def test_accounts_at(accounts):
    assert records(accounts.accounts_at("2024-02-15"), "account_id") == [
        {"account_id": "a1", "tier": "bronze"},
        {"account_id": "a2", "tier": "silver"},
    ]
    assert records(accounts.accounts_at("2024-03-01", ["tier"]), "account_id") == [
        {"account_id": "a1", "tier": "gold"},
        {"account_id": "a2", "tier": "silver"},
    ]
    assert records(accounts.accounts_at("2023-06-01"), "account_id") == [
        {"account_id": "a1", "tier": None},
        {"account_id": "a2", "tier": None},
    ]


def test_distinct_account_values_at_as_of(accounts):
    assert accounts.distinct_values("account", "tier", as_of="2024-02-15") == ["bronze", "silver"]
    assert accounts.distinct_values("account", "tier", as_of="2024-03-15") == ["gold", "silver"]


@pytest.mark.parametrize(
    ("as_of", "rule", "expected"),
    [
        ("2024-02-15", tier("=", "silver"), {"m1", "m2"}),  # m1 was still in a2
        ("2024-02-15", tier("=", "bronze"), set()),  # today's a1 link is not the past
        ("2024-03-15", tier("=", "silver"), {"m2"}),
        ("2024-03-15", tier("=", "gold"), {"m1"}),
        ("2024-03-15", tier("is not set"), {"m3", "m4"}),  # no user history row: no account
    ],
)
def test_a_users_account_at_as_of_follows_the_user_history(moving, as_of, rule, expected):
    assert moving.user_history.tracked == ("account_id",)
    assert ids(moving, rule, as_of) == expected
    assert moving.count(rule, as_of) == len(expected)


def test_account_history_in_changes_form():
    con = ibis.duckdb.connect()
    table(con, "users(user_id VARCHAR, account_id VARCHAR)", ("m1", "a1"), ("m2", "a2"))
    table(con, EVENTS_DDL)
    table(con, "accounts(account_id VARCHAR, tier VARCHAR)", *ACCOUNT_ROWS)
    table(
        con,
        "account_history(account_id VARCHAR, time TIMESTAMP, tier VARCHAR)",
        ("a1", "2024-01-01", "bronze"),
        ("a1", "2024-03-01", "gold"),
    )
    ds = heapseg.connect(con)
    assert ds.account_history.form == "changes"
    assert ids(ds, tier("=", "bronze"), "2024-02-01") == {"m1"}
    assert ids(ds, tier("=", "gold"), "2024-03-01") == {"m1"}
    assert ids(ds, tier("is not set"), "2024-03-01") == {"m2"}  # a2 has no history


def test_account_history_without_accounts_is_a_data_error():
    con = ibis.duckdb.connect()
    table(con, "users(user_id VARCHAR, account_id VARCHAR)", ("m1", "a1"))
    table(con, EVENTS_DDL)
    table(
        con,
        "account_history(account_id VARCHAR, valid_from TIMESTAMP, tier VARCHAR)",
        ("a1", "2024-01-01", "gold"),
    )
    with pytest.raises(DataError, match="account_history table needs an accounts table"):
        heapseg.connect(con, account_history="account_history")
    with pytest.raises(DataError, match="account_history table needs an accounts table"):
        heapseg.connect(con, account_history=con.table("account_history"))
    # Found automatically, it is left out with the accounts it would describe.
    assert heapseg.connect(con).account_history is None
    assert heapseg.connect(con, account_history=None).account_history is None


# =========================================================================== members, users_at


@pytest.fixture(scope="module")
def joined_history() -> Dataset:
    """j1 joined 01-01, j2 joined 03-01 (its history starts before it joined)."""
    con = ibis.duckdb.connect()
    table(
        con,
        "users(user_id VARCHAR, plan VARCHAR, joined_at TIMESTAMP, email VARCHAR, visits INTEGER)",
        ("j1", "pro", "2024-01-01", "j1@x", 3),
        ("j2", "pro", "2024-03-01", "j2@x", 5),
    )
    table(con, EVENTS_DDL)
    table(
        con,
        "user_history(user_id VARCHAR, valid_from TIMESTAMP, valid_to TIMESTAMP, plan VARCHAR)",
        ("j1", "2024-01-01", "2024-02-01", "free"),
        ("j1", "2024-02-01", None, "pro"),
        ("j2", "2024-02-01", None, "vip"),
    )
    return heapseg.connect(con)


def test_members_properties_at_as_of(snapshots):
    members = snapshots.members(ALL, "2024-02-15", properties=["plan", "email"])
    assert members.columns == ("user_id", "plan", "email")
    assert records(members) == [
        {"user_id": "s1", "plan": "pro", "email": "s1@x"},
        {"user_id": "s2", "plan": "pro", "email": "s2@x"},
        {"user_id": "s3", "plan": "trial", "email": "s3@x"},
        {"user_id": "s4", "plan": None, "email": "s4@x"},
        {"user_id": "s5", "plan": None, "email": "s5@x"},
        {"user_id": "s6", "plan": None, "email": "s6@x"},
    ]
    free = snapshots.members(group(user_rule("plan", "=", "free")), "2024-01-15", ["role"])
    assert records(free) == [
        {"user_id": "s1", "role": "member"},
        {"user_id": "s2", "role": "member"},
        {"user_id": "s6", "role": "member"},
    ]


def test_members_without_properties_keeps_every_users_column_in_order(joined_history):
    members = joined_history.members(ALL, "2024-01-15")
    assert members.columns == joined_history.users.columns
    assert members.columns == ("user_id", "plan", "joined_at", "email", "visits")
    assert records(members) == [
        {
            "user_id": "j1",
            "plan": "free",
            "joined_at": datetime(2024, 1, 1),
            "email": "j1@x",
            "visits": 3,
        }
    ]


def test_users_at_lists_joined_users_with_values_at_as_of(joined_history):
    assert records(joined_history.users_at("2024-02-15", ["plan"])) == [
        {"user_id": "j1", "plan": "pro"}
    ]
    assert records(joined_history.users_at("2024-03-01", ["plan", "visits"])) == [
        {"user_id": "j1", "plan": "pro", "visits": 3},
        {"user_id": "j2", "plan": "vip", "visits": 5},
    ]
    assert joined_history.users_at("2023-12-01").count().execute() == 0


def test_distinct_values_counts_joined_users_at_as_of(joined_history):
    assert joined_history.distinct_values("user", "plan", as_of="2024-01-15") == ["free"]
    # j2's 'vip' row is in force on 02-15 but j2 has not joined yet.
    assert joined_history.distinct_values("user", "plan", as_of="2024-02-15") == ["pro"]
    assert joined_history.distinct_values("user", "plan", as_of="2024-03-01") == ["pro", "vip"]
    assert joined_history.distinct_values("user", "email", as_of="2024-02-15") == ["j1@x"]


def test_tracked_rules_still_exclude_users_who_had_not_joined(joined_history):
    vip = group(user_rule("plan", "=", "vip"))
    assert ids(joined_history, vip, "2024-02-15") == set()
    assert ids(joined_history, vip, "2024-03-01") == {"j2"}
    assert ids(joined_history, group(user_rule("plan", "!=", "vip")), "2024-02-15") == {"j1"}


# =========================================================================== connect validation


def bad_backend(users_ddl: str, history_ddl: str | None = None) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    table(con, users_ddl)
    table(con, "events(user_id BIGINT, time TIMESTAMP, event VARCHAR)")
    if history_ddl is not None:
        table(con, history_ddl)
    return con


@pytest.mark.parametrize(
    ("users_ddl", "history_ddl", "message"),
    [
        (
            "users(user_id BIGINT, plan VARCHAR)",
            "user_history(user_id BIGINT, changed TIMESTAMP, plan VARCHAR)",
            r"the user_history table needs valid_from .* or a time column",
        ),
        (
            "users(user_id BIGINT, plan VARCHAR)",
            "user_history(user_id VARCHAR, valid_from TIMESTAMP, plan VARCHAR)",
            r"user_history\.user_id is string but the current table's user_id is int64",
        ),
        (
            "users(user_id BIGINT, visits BIGINT)",
            "user_history(user_id BIGINT, time TIMESTAMP, visits VARCHAR)",
            r"user_history\.visits is string but the current table's visits is int64",
        ),
        (
            "users(user_id BIGINT, plan VARCHAR)",
            "user_history(user_id BIGINT, time TIMESTAMP, plan INTEGER)",
            r"user_history\.plan is int32 but the current table's plan is string",
        ),
        (
            "users(user_id BIGINT, plan VARCHAR)",
            "user_history(user_id BIGINT, valid_from VARCHAR, plan VARCHAR)",
            r"user_history\.valid_from must be a timestamp or a date",
        ),
        (
            "users(user_id BIGINT, plan VARCHAR)",
            "user_history(user_id BIGINT, valid_from DATE, valid_to INTEGER, plan VARCHAR)",
            r"user_history\.valid_to must be a timestamp or a date",
        ),
        (
            "users(user_id BIGINT, joined_at VARCHAR)",
            None,
            r"users\.joined_at must be a timestamp or a date, but its type is string",
        ),
    ],
)
def test_connect_refuses_bad_time_data(users_ddl, history_ddl, message):
    with pytest.raises(DataError, match=message):
        heapseg.connect(bad_backend(users_ddl, history_ddl))


def test_connect_accepts_a_history_of_a_compatible_kind():
    # A float visits against integer users.visits is a number all the same: cast, not refused.
    con = bad_backend(
        "users(user_id BIGINT, visits BIGINT)",
        "user_history(user_id INTEGER, time TIMESTAMP, visits DOUBLE)",
    )
    con.raw_sql("INSERT INTO users VALUES (1, 9)")
    con.raw_sql("INSERT INTO user_history VALUES (1, '2024-01-01', 4.0)")
    ds = heapseg.connect(con)
    assert ds.user_history.tracked == ("visits",)
    assert records(ds.users_at("2024-02-01")) == [{"user_id": 1, "visits": 4}]


def snap_backend() -> ibis.BaseBackend:
    """A dbt snapshot named ``snap``, with dbt's column names."""
    con = bad_backend(
        "users(user_id BIGINT, plan VARCHAR)",
        "snap(user_id BIGINT, dbt_valid_from TIMESTAMP, dbt_valid_to TIMESTAMP, plan VARCHAR)",
    )
    con.raw_sql("INSERT INTO users VALUES (1, 'pro')")
    con.raw_sql("INSERT INTO snap VALUES (1, '2024-01-01', '2024-02-01', 'free')")
    return con


DBT_MAPPING = {"user_history": {"valid_from": "dbt_valid_from", "valid_to": "dbt_valid_to"}}


def test_a_history_table_named_otherwise_maps_through_the_history_role():
    ds = heapseg.connect(snap_backend(), user_history="snap", columns=DBT_MAPPING)
    assert ds.user_history.label == "snap"
    assert records(ds.users_at("2024-01-15")) == [{"user_id": 1, "plan": "free"}]
    assert records(ds.users_at("2024-02-01")) == [{"user_id": 1, "plan": None}]


def test_the_missing_time_column_hint_can_be_followed():
    # The hint's columns= names the table's role: columns={'snap': ...} is refused by connect.
    con = snap_backend()
    with pytest.raises(DataError, match=r"columns=\{'user_history': \{'valid_from'") as info:
        heapseg.connect(con, user_history="snap")
    assert "snap" in str(info.value)  # the message names the table


# =========================================================================== notes and display


def test_notes_without_history_say_as_of_today(joins, accounts):
    assert joins.properties_note() == "user properties as of today"
    assert joins.time_note() == (
        "users count from joined_at (else their first event); no property history; "
        "user properties as of today"
    )
    plain = heapseg.connect(facts_backend("no column"))
    assert plain.time_note().startswith("users count from their first event; no property history")
    assert accounts.properties_note() == "user properties as of today; account tier at as_of"
    bare = heapseg.connect(accounts_backend(), account_history=None)
    assert bare.properties_note() == "user properties as of today; account properties as of today"
    assert bare.time_note().endswith("no property history; " + bare.properties_note())


def test_notes_with_history_name_the_tracked_properties(snapshots, moving):
    assert snapshots.properties_note() == "user plan, role at as_of"
    assert "as of today" not in snapshots.properties_note()
    assert "history: user_history (snapshots): plan, role" in snapshots.time_note()
    assert moving.properties_note() == "user account_id at as_of; account tier at as_of"
    assert "account_history (snapshots): tier" in moving.time_note()


def test_time_note_with_joining_off():
    ds = heapseg.connect(join_backend(), joining=False)
    assert ds.time_note().startswith("every user counts at every as_of (joining off)")


def test_dataset_html_shows_the_history_table_and_its_rows(snapshots, moving):
    html = snapshots._repr_html_()
    assert "<td>user_history</td><td style='text-align:right'>10</td>" in html
    assert "user_history (snapshots): plan, role" in html
    assert snapshots.table_counts()["user_history"] == 10
    assert "<td>account_history</td><td style='text-align:right'>4</td>" in moving._repr_html_()


# =========================================================================== for_thread


def test_for_thread_keeps_joining_off():
    ds = heapseg.connect(join_backend(), joining=False)
    other = ds.for_thread()
    assert other is not ds and other.backend.con is not ds.backend.con
    assert other.joining is False
    assert other.total_users("2024-03-01") == 7
    assert ids(other, ALL, "2024-03-01") == EVERYONE


def test_for_thread_keeps_joining_on(joins):
    other = joins.for_thread()
    assert other is not joins and other.joining is True
    assert ids(other, ALL, T) == JOINED_AT_T
    assert other.total_users(T) == 5
