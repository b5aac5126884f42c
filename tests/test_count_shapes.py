"""The shapes of count queries: top-level "did not" rules become anti joins, same answers.

The answers are checked against the reference evaluator on random scenarios, with random
"did not" rules (windows, where filters, events never seen) beside random definitions.
"""

from __future__ import annotations

import warnings

import ibis
import pytest

import heapseg
from heapseg.compile import compile_split
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
