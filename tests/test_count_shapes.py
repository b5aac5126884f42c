"""The shapes of count queries: top-level "did not" rules become anti joins, same answers.

The answers are checked against the reference evaluator on random scenarios, with random
"did not" rules (windows, where filters, events never seen) beside random definitions.
"""

from __future__ import annotations

import warnings

import ibis
import ibis.expr.operations as ops
import pytest

import heapseg
from heapseg.compile import compile_split, joined_flags
from tests import reference, strategies
from tests.test_engine_vs_reference import load_scenario, reference_data


def did_not_rule(pick: strategies.SeededPicker, scenario: strategies.Scenario) -> dict:
    """A random event rule made a plain "did not" (window and where kept)."""
    rule = strategies._event_rule(pick, scenario)
    keep = {k: v for k, v in rule.items() if k in ("kind", "event", "window", "where")}
    return {**keep, "did": False}


@pytest.mark.parametrize("seed", [3, 11, 29, 47, 8])
def test_counts_with_anti_joins_equal_the_reference(seed: int) -> None:
    scenario = strategies.random_scenario(seed, point_in_time=seed % 2 == 0)
    ds = load_scenario(ibis.duckdb.connect(), scenario)
    data = reference_data(scenario)
    pick = strategies.SeededPicker(seed * 31 + 7)
    others = strategies.random_definitions(scenario, seed, n=6)
    definitions = [
        {"combinator": "and", "rules": [did_not_rule(pick, scenario)]},
        {
            "combinator": "and",
            "rules": [did_not_rule(pick, scenario), did_not_rule(pick, scenario)],
        },
        *(
            {"combinator": "and", "rules": [other, did_not_rule(pick, scenario)]}
            for other in others
        ),
        # Not at the top of an "and": compiled as before.
        {"combinator": "or", "rules": [did_not_rule(pick, scenario), others[0]]},
        {"combinator": "and", "not": True, "rules": [did_not_rule(pick, scenario)]},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        for definition in definitions:
            expected = len(reference.evaluate_loaded(definition, data))
            assert ds.count(definition, scenario.as_of) == expected, definition


def test_did_not_at_the_top_is_an_anti_join_in_the_sql() -> None:
    ds = heapseg.connect()
    churn = (heapseg.user.subscription_type == "paid") & heapseg.did_not("Session").last(90, "day")
    predicate, excluded = compile_split(churn, ds.context())
    assert len(excluded) == 1
    sql = str(ds.backend.compile(ds.users.filter(predicate).anti_join(excluded[0], "user_id")))
    assert "ANTI JOIN" in sql.upper()
    assert ds.count(churn) == int(
        ds.backend.con.execute(
            "SELECT count(*) FROM users u WHERE subscription_type = 'paid' AND NOT EXISTS ("
            "SELECT 1 FROM events e LEFT JOIN user_migrations m ON e.user_id = m.from_user_id "
            "WHERE coalesce(m.to_user_id, e.user_id) = u.user_id AND e.event = 'Session' "
            "AND e.time > TIMESTAMP '2026-11-01' - INTERVAL 90 DAY "
            "AND e.time <= TIMESTAMP '2026-11-01')"
        ).fetchone()[0]
    )
    # An "or" keeps its "did not" inside the boolean.
    _, none = compile_split(heapseg.did_not("Session") | heapseg.did("Refund"), ds.context())
    assert none == []


@pytest.mark.parametrize("seed", [3, 11, 29, 8])
def test_joined_flags_select_the_reference_users(seed: int) -> None:
    # PostgreSQL's shape, run here on DuckDB over random definitions (every rule kind, nested
    # and negated groups, references, history), as one query of counts and as filters.
    scenario = strategies.random_scenario(seed, point_in_time=seed % 2 == 0)
    ds = load_scenario(ibis.duckdb.connect(), scenario)
    data = reference_data(scenario)
    definitions = strategies.random_definitions(scenario, seed, n=12)
    expected = [len(reference.evaluate_loaded(d, data)) for d in definitions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        predicates = {f"s{i}": ds.predicate(d, scenario.as_of) for i, d in enumerate(definitions)}
    assert any(p.op().find(ops.InSubquery, filter=ops.Value) for p in predicates.values())
    wide, shaped = joined_flags(ds.users, predicates, "duckdb")
    for condition in shaped.values():  # every test on the users' rows became a flag
        assert condition.op().find(ops.InSubquery, filter=ops.Value) == []
    row = ds.execute(wide.aggregate(**{k: wide.count(where=c) for k, c in shaped.items()}))
    assert row.iloc[0].tolist() == expected
    for (name, predicate), count in zip(predicates.items(), expected, strict=True):
        wide, kept = joined_flags(ds.users, {name: predicate}, "duckdb", filtering=True)
        assert ds.execute(wide.filter(kept[name]).count()) == count, name


SHOPPERS_SQL = """
WITH merged AS (
    SELECT coalesce(m.to_user_id, e.user_id) AS user_id, e.event FROM events e
    LEFT JOIN (SELECT from_user_id, min(to_user_id) AS to_user_id FROM user_migrations GROUP BY 1) m
    ON e.user_id = m.from_user_id WHERE e.time <= TIMESTAMP '2026-11-01'
), per_user AS (
    SELECT user_id, count(*) FILTER (WHERE event = 'Session') AS sessions,
           count(*) FILTER (WHERE event = 'Completed Order') AS orders
    FROM merged GROUP BY 1
)
SELECT count(*) FILTER (WHERE sessions > 5 AND coalesce(orders, 0) = 0),
       count(*) FILTER (WHERE sessions > 5), count(*) FILTER (WHERE coalesce(orders, 0) = 0)
FROM users LEFT JOIN per_user USING (user_id)
"""


def test_joined_flags_join_a_rule_once_and_keep_top_level_semi_joins() -> None:
    ds = heapseg.connect()
    many, never = heapseg.did("Session").times() > 5, heapseg.did_not("Completed Order")
    conditions = {
        "segment": ds.predicate(many & never),
        "rules[0]": ds.predicate(many),
        "rules[1]": ds.predicate(never),
    }
    wide, shaped = joined_flags(ds.users, conditions, "postgres")
    query = wide.aggregate(**{k: wide.count(where=c) for k, c in shaped.items()})
    sql = ibis.to_sql(query, "postgres", pretty=False)
    # Two rules, two joins, though the segment and each rule compiled subqueries of their own;
    # the users with more than 5 sessions come grouped by user, so only one DISTINCT.
    assert sql.count(' AS "_flag') == 2
    assert sql.count("LEFT OUTER JOIN (SELECT DISTINCT") == 1
    assert "_flag1" in sql and "_flag2" not in sql and " IN (SELECT" not in sql
    assert ds.execute(query).iloc[0].tolist() == list(ds.backend.con.sql(SHOPPERS_SQL).fetchone())
    # As a filter, "did" at the top of the AND stays an IN (PostgreSQL makes it a semi join);
    # those under the OR become flags.
    either = heapseg.did("Refund") | heapseg.did("Session").last(7, "day")
    ordered = heapseg.did("Completed Order")
    predicate = ds.predicate(ordered & (heapseg.user.country == "US") & either)
    wide, shaped = joined_flags(ds.users, {"s": predicate}, "postgres", filtering=True)
    sql = ibis.to_sql(wide.filter(shaped["s"]).count(), "postgres", pretty=False)
    assert sql.count(" IN (SELECT") == 1
    assert sql.count("LEFT OUTER JOIN (SELECT DISTINCT") == 2
    # The same test in an OR and at the top is a flag in both places.
    predicate = ds.predicate(either & heapseg.did("Refund"))
    wide, shaped = joined_flags(ds.users, {"s": predicate}, "postgres", filtering=True)
    assert " IN (SELECT" not in ibis.to_sql(wide.filter(shaped["s"]).count(), "postgres")


def test_counts_and_first_times_add_up_over_merged_ids() -> None:
    """Counts and first times are reduced per raw id, then combined over the ids merged into a
    user (a sum, a min): the same members as the reference, which merges first."""
    import datetime as dt

    import pandas as pd

    as_of = dt.datetime(2026, 6, 1)
    day = dt.timedelta(days=1)
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"]})
    rows = [
        # u1: one Session of its own and one from each of two anonymous ids: three in all.
        ("u1", as_of - day, "Session"),
        ("a1", as_of - 2 * day, "Session"),
        ("a2", as_of - 3 * day, "Session"),
        # u2: two Sessions of its own, none merged.
        ("u2", as_of - day, "Session"),
        ("u2", as_of - 2 * day, "Session"),
        # u3: recent Sessions, but an anonymous id merged into it had one long before.
        ("u3", as_of - day, "Session"),
        ("a3", as_of - 400 * day, "Session"),
        # u4: a first Session within the window, merged from an id with two targets (the
        # least, u3, takes it).
        ("u4", as_of - 5 * day, "Session"),
        ("a4", as_of - 6 * day, "Session"),
    ]
    events = pd.DataFrame(rows, columns=["user_id", "time", "event"])
    migrations = pd.DataFrame(
        {"from_user_id": ["a1", "a2", "a3", "a4"], "to_user_id": ["u1", "u1", "u3", "u4"]}
    )
    con = ibis.duckdb.connect()
    for name, frame in (("users", users), ("events", events), ("user_migrations", migrations)):
        con.create_table(name, frame)
    ds = heapseg.connect(con, as_of=as_of, joining=False)
    definitions = [
        {"kind": "event", "event": "Session", "count": {"operator": ">=", "value": 3}},
        {"kind": "event", "event": "Session", "count": {"operator": "=", "value": 2}},
        {"kind": "event", "event": "Session", "count": {"operator": "<", "value": 2}},
        {
            "kind": "event",
            "event": "Session",
            "first_time": True,
            "window": {"last": 30, "unit": "day"},
        },
        {
            "kind": "event",
            "event": "Session",
            "first_time": True,
            "count": {"operator": ">=", "value": 2},
            "window": {"last": 30, "unit": "day"},
        },
    ]
    for rule in definitions:
        definition = {"combinator": "and", "rules": [rule]}
        expected = reference.evaluate(definition, users, events, None, as_of, migrations=migrations)
        assert ds.count(definition) == len(expected), rule
        members = set(ds.members(definition, properties=[]).to_pandas().user_id)
        assert members == expected, rule
    # The data is what the comments say: u1 has three Sessions, u3's first is old.
    first_30 = {"combinator": "and", "rules": [definitions[3]]}
    assert reference.evaluate(first_30, users, events, None, as_of, migrations=migrations) == {
        "u1",
        "u2",
        "u4",
    }
