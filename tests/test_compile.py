"""The compiler on DuckDB: every rule kind, operator and window against tiny hand-checked data.

Each dataset is a handful of users; the expected sets are worked out by hand in the comments.
Unless a test says otherwise, ``as_of`` is 2024-03-31 12:00 UTC (``AS_OF``).
"""

from __future__ import annotations

import warnings

import pandas as pd
import pyarrow as pa
import pytest

import heapseg
from heapseg.errors import DefinitionError, SchemaError, SegmentReferenceError
from tests.data_helpers import (
    AS_OF,
    dataset,
    event_rule,
    group,
    ids,
    load,
    prop,
    user_rule,
)


def ep(field: str, operator: str, value=None, **extra) -> dict:
    return prop("event_property", field, operator, value, **extra)


def acc(field: str, operator: str, value=None) -> dict:
    return prop("account", field, operator, value)


# --------------------------------------------------------------------------- properties

PEOPLE = [
    {
        "user_id": "u1",
        "plan": "trial",
        "email": "Ann@Gmail.com",
        "ltv": 10.0,
        "visits": 3,
        "opt_in": True,
        "signup": "2024-03-30",
        "seen": "2024-03-31 11:00",
        "account_id": "a1",
    },
    {
        "user_id": "u2",
        "plan": "Trial",
        "email": "",
        "ltv": None,
        "visits": None,
        "opt_in": False,
        "signup": "2024-01-01",
        "seen": "2023-03-31 11:00",
        "account_id": "a2",
    },
    # u3: every property unset, and an account_id that matches no account.
    {"user_id": "u3", "ltv": 5.5, "visits": 0, "account_id": "zz"},
    {
        "user_id": "u4",
        "plan": "paid",
        "email": "x_y%z@yahoo.com",
        "ltv": 100.0,
        "visits": 10,
        "opt_in": True,
        "signup": "2024-03-31",
        "seen": "2024-03-31 12:00:01",
    },
    {
        "user_id": "u5",
        "plan": "paid",
        "email": "a|b+c*d@corp.io",
        "ltv": 50.0,
        "visits": 1,
        "opt_in": False,
        "signup": "2023-12-31",
        "seen": "2024-03-01 00:00",
        "account_id": "a3",
    },
]
ACCOUNTS = [
    {"account_id": "a1", "tier": "gold", "seats": 5},
    {"account_id": "a2"},
    {"account_id": "a3", "tier": "Platinum", "seats": 50},
]


@pytest.fixture(scope="module")
def people() -> heapseg.Dataset:
    return dataset(PEOPLE, [("u1", "2024-03-01", "Session")], ACCOUNTS)


PROPERTY_CASES = [
    # strings: '=' and 'in' are case-sensitive ("Trial" is not "trial")
    (user_rule("plan", "=", "trial"), {"u1"}),
    (user_rule("plan", "!=", "trial"), {"u2", "u3", "u4", "u5"}),  # unset u3 included
    (user_rule("plan", "in", ["trial", "paid"]), {"u1", "u4", "u5"}),
    (user_rule("plan", "not in", ["trial", "paid"]), {"u2", "u3"}),
    (user_rule("plan", "is set"), {"u1", "u2", "u4", "u5"}),
    (user_rule("plan", "is not set"), {"u3"}),
    (user_rule("email", "=", "ann@gmail.com"), set()),
    # '' counts as unset for strings
    (user_rule("email", "is set"), {"u1", "u4", "u5"}),
    (user_rule("email", "is not set"), {"u2", "u3"}),
    # contains / begins with / ends with ignore case
    (user_rule("email", "contains", "gmail"), {"u1"}),
    (user_rule("email", "contains", "GMAIL.COM|yahoo"), {"u1", "u4"}),
    (user_rule("email", "contains", "com+ann"), {"u1"}),  # '+' parts in any order
    (user_rule("email", "contains", "corp+gmail"), set()),  # both parts must be there
    (user_rule("email", "contains", "a*gmail"), {"u1"}),
    (user_rule("email", "contains", "ann@*gmail"), {"u1"}),  # '*' may match nothing
    (user_rule("email", "contains", "o*o"), {"u4", "u5"}),  # yahoo.com / corp.io
    (user_rule("email", "contains", "o\\*o"), set()),  # an escaped '*' is the character
    (user_rule("email", "contains", "\\*d@"), {"u5"}),
    (user_rule("email", "contains", "a\\|b\\+c"), {"u5"}),
    (user_rule("email", "contains", "zzz|a\\|b"), {"u5"}),
    # '%' and '_' in data and pattern are plain characters, not LIKE wildcards
    (user_rule("email", "contains", "_"), {"u4"}),
    (user_rule("email", "contains", "%"), {"u4"}),
    (user_rule("email", "contains", "x%y"), set()),
    (user_rule("email", "contains", "x__"), set()),
    (user_rule("email", "contains", "y%z@"), {"u4"}),
    (user_rule("email", "not contains", "gmail"), {"u2", "u3", "u4", "u5"}),
    (user_rule("email", "not contains", "o*o"), {"u1", "u2", "u3"}),
    (user_rule("email", "begins with", "ANN"), {"u1"}),
    (user_rule("email", "begins with", "x_"), {"u4"}),
    (user_rule("email", "begins with", "x%"), set()),
    (user_rule("email", "begins with", "a|b"), {"u5"}),  # taken literally
    (user_rule("email", "ends with", ".COM"), {"u1", "u4"}),
    (user_rule("email", "ends with", "%z@yahoo.com"), {"u4"}),
    (user_rule("email", "ends with", "_"), set()),
    # floats: u2 has no ltv
    (user_rule("ltv", ">", 5.5), {"u1", "u4", "u5"}),
    (user_rule("ltv", ">=", 5.5), {"u1", "u3", "u4", "u5"}),
    (user_rule("ltv", "<", 10), {"u3"}),
    (user_rule("ltv", "<=", 10), {"u1", "u3"}),
    (user_rule("ltv", "=", 10), {"u1"}),
    (user_rule("ltv", "!=", 10), {"u2", "u3", "u4", "u5"}),
    (user_rule("ltv", "in", [10, 100]), {"u1", "u4"}),
    (user_rule("ltv", "not in", [10, 100]), {"u2", "u3", "u5"}),
    (user_rule("ltv", "between", [5.5, 50]), {"u1", "u3", "u5"}),
    (user_rule("ltv", "not between", [5.5, 50]), {"u2", "u4"}),
    (user_rule("ltv", "is set"), {"u1", "u3", "u4", "u5"}),
    (user_rule("ltv", "is not set"), {"u2"}),
    # integers
    (user_rule("visits", "=", 0), {"u3"}),
    (user_rule("visits", "!=", 0), {"u1", "u2", "u4", "u5"}),
    (user_rule("visits", ">", 2.5), {"u1", "u4"}),
    (user_rule("visits", "between", [1, 3]), {"u1", "u5"}),
    # booleans: u3 unset
    (user_rule("opt_in", "=", True), {"u1", "u4"}),
    (user_rule("opt_in", "=", False), {"u2", "u5"}),
    (user_rule("opt_in", "!=", True), {"u2", "u3", "u5"}),
    (user_rule("opt_in", "in", [True]), {"u1", "u4"}),
    (user_rule("opt_in", "not in", [False]), {"u1", "u3", "u4"}),
    (user_rule("opt_in", "is set"), {"u1", "u2", "u4", "u5"}),
    (user_rule("opt_in", "is not set"), {"u3"}),
    # dates: a date stands for its midnight (UTC)
    (user_rule("signup", "=", "2024-03-30"), {"u1"}),
    (user_rule("signup", "!=", "2024-03-30"), {"u2", "u3", "u4", "u5"}),
    (user_rule("signup", "<", "2024-01-01"), {"u5"}),
    (user_rule("signup", ">=", "2024-03-30"), {"u1", "u4"}),
    (user_rule("signup", "in", ["2024-01-01", "2023-12-31"]), {"u2", "u5"}),
    (user_rule("signup", "between", ["2024-01-01", "2024-03-30"]), {"u1", "u2"}),
    (user_rule("signup", "not between", ["2024-01-01", "2024-03-30"]), {"u3", "u4", "u5"}),
    (user_rule("signup", "is set"), {"u1", "u2", "u4", "u5"}),
    # in last 1 day = [03-30 12:00, 03-31 12:00]: only the 03-31 midnight is inside
    (user_rule("signup", "in last", 1, unit="day"), {"u4"}),
    # [03-29 12:00, as_of]: 03-30 and 03-31
    (user_rule("signup", "in last", 2, unit="day"), {"u1", "u4"}),
    # before 03-30 12:00: 03-30 midnight and earlier
    (user_rule("signup", "more than ago", 1, unit="day"), {"u1", "u2", "u5"}),
    # as_of - 3 months = 2023-12-31 12:00: 2023-12-31 midnight is before it
    (user_rule("signup", "more than ago", 3, unit="month"), {"u5"}),
    (user_rule("signup", "in last", 3, unit="month"), {"u1", "u2", "u4"}),
    # timestamps (a property comparison ignores as_of: u4's value lies after it)
    (user_rule("seen", ">", "2024-03-01T00:00:00"), {"u1", "u4"}),
    (user_rule("seen", ">=", "2024-03-01"), {"u1", "u4", "u5"}),
    (user_rule("seen", "=", "2024-03-01T00:00:00"), {"u5"}),
    (user_rule("seen", "!=", "2024-03-01T00:00:00"), {"u1", "u2", "u3", "u4"}),
    (user_rule("seen", "<", "2024-03-01T00:00:00Z"), {"u2"}),
    (user_rule("seen", "between", ["2023-03-31T11:00:00", "2024-03-01T00:00:00"]), {"u2", "u5"}),
    (user_rule("seen", "not between", ["2023-03-31T11:00:00", "2024-03-01"]), {"u1", "u3", "u4"}),
    (user_rule("seen", "is not set"), {"u3"}),
    # in last 1 hour = [11:00, 12:00], both ends included; u4 (12:00:01) is after as_of
    (user_rule("seen", "in last", 1, unit="hour"), {"u1"}),
    # [2024-02-29 12:00, as_of]
    (user_rule("seen", "in last", 31, unit="day"), {"u1", "u5"}),
    # before 2023-03-31 12:00
    (user_rule("seen", "more than ago", 12, unit="month"), {"u2"}),
    (user_rule("seen", "more than ago", 1, unit="month"), {"u2"}),
    # accounts: u2's account has no tier, u3's account_id is dangling, u4 has none
    (acc("tier", "=", "gold"), {"u1"}),
    (acc("tier", "!=", "gold"), {"u2", "u3", "u4", "u5"}),
    (acc("tier", "in", ["platinum"]), set()),
    (acc("tier", "not in", ["gold"]), {"u2", "u3", "u4", "u5"}),
    (acc("tier", "contains", "PLAT"), {"u5"}),
    (acc("tier", "not contains", "plat"), {"u1", "u2", "u3", "u4"}),
    (acc("tier", "is set"), {"u1", "u5"}),
    (acc("tier", "is not set"), {"u2", "u3", "u4"}),
    (acc("seats", ">=", 5), {"u1", "u5"}),
    (acc("seats", "=", 50), {"u5"}),
    (acc("seats", "not between", [1, 10]), {"u2", "u3", "u4", "u5"}),
]


@pytest.mark.parametrize(
    ("rule", "expected"),
    PROPERTY_CASES,
    ids=[
        f"{r['kind']} {r['field']} {r['operator']} {r.get('value', '')}" for r, _ in PROPERTY_CASES
    ],
)
def test_property_rules(people: heapseg.Dataset, rule: dict, expected: set):
    assert ids(people, group(rule)) == expected


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        (user_rule("plan", "=", "trial"), user_rule("plan", "!=", "trial")),
        (user_rule("ltv", "in", [10]), user_rule("ltv", "not in", [10])),
        (
            user_rule("seen", "between", ["2024-01-01", "2025-01-01"]),
            user_rule("seen", "not between", ["2024-01-01", "2025-01-01"]),
        ),
        (user_rule("email", "contains", "a"), user_rule("email", "not contains", "a")),
        (user_rule("email", "is set"), user_rule("email", "is not set")),
        (acc("tier", "=", "gold"), acc("tier", "!=", "gold")),
    ],
)
def test_negative_operators_are_exact_complements(people, positive: dict, negative: dict):
    everyone = {u["user_id"] for u in PEOPLE}
    yes, no = ids(people, group(positive)), ids(people, group(negative))
    assert yes.isdisjoint(no)
    assert yes | no == everyone
    assert ids(people, group(positive, negate=True)) == no


def test_account_rule_needs_an_accounts_table():
    ds = dataset(PEOPLE)
    assert ds.accounts is None
    with pytest.raises(SchemaError, match="no accounts table") as info:
        ds.count(group(acc("tier", "=", "gold")), as_of=AS_OF)
    assert info.value.path == "rules[0]"


# --------------------------------------------------------------------------- did / count


@pytest.fixture(scope="module")
def counts() -> heapseg.Dataset:
    users = [{"user_id": f"c{i}"} for i in range(1, 6)]
    events = [
        *[("c1", f"2024-03-0{d}", "Session") for d in (1, 2, 3)],
        ("c2", "2024-03-01", "Session"),
        *[("c3", f"2024-03-0{d}", "Session") for d in (1, 2, 3, 4, 5)],
        # c4 has no events at all
        ("c5", "2024-03-31 12:00", "Session"),  # exactly at as_of: counts
        ("c5", "2024-04-01", "Session"),  # after as_of: ignored
        ("c5", "2024-03-02", "Pageview"),
        ("ghost", "2024-03-02", "Session"),  # not a user: ignored
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (event_rule("Session"), {"c1", "c2", "c3", "c5"}),
        (event_rule("Session", did=False), {"c4"}),
        (event_rule("Pageview", did=False), {"c1", "c2", "c3", "c4"}),
        (event_rule("Session", count={"operator": ">", "value": 2}), {"c1", "c3"}),
        (event_rule("Session", count={"operator": ">=", "value": 5}), {"c3"}),
        # a count of 0 takes part: c4 never did it
        (event_rule("Session", count={"operator": "<", "value": 3}), {"c2", "c4", "c5"}),
        (event_rule("Session", count={"operator": "<=", "value": 1}), {"c2", "c4", "c5"}),
        (event_rule("Session", count={"operator": "=", "value": 0}), {"c4"}),
        (event_rule("Session", count={"operator": "=", "value": 1}), {"c2", "c5"}),
        (event_rule("Session", count={"operator": "!=", "value": 3}), {"c2", "c3", "c4", "c5"}),
        (event_rule("Session", count={"operator": "!=", "value": 0}), {"c1", "c2", "c3", "c5"}),
        (event_rule("Session", count={"operator": "between", "value": [1, 3]}), {"c1", "c2", "c5"}),
        (event_rule("Session", count={"operator": "between", "value": [0, 1]}), {"c2", "c4", "c5"}),
        (event_rule("Session", count={"operator": "between", "value": [4, 9]}), {"c3"}),
    ],
)
def test_did_and_counts(counts, rule: dict, expected: set):
    assert ids(counts, group(rule)) == expected


@pytest.fixture(scope="module")
def periods() -> heapseg.Dataset:
    users = [{"user_id": f"d{i}"} for i in range(1, 7)]
    events = [
        # d1: Sat 03-30 10:00 and 23:59:59, Sun 03-31 00:00 -> 2 days, 3 hours, 1 ISO week
        ("d1", "2024-03-30 10:00", "Session"),
        ("d1", "2024-03-30 23:59:59", "Session"),
        ("d1", "2024-03-31 00:00", "Session"),
        # d2: Sun 03-24 23:59:59 and Mon 03-25 00:00 -> 2 days, 2 hours, 2 ISO weeks
        ("d2", "2024-03-24 23:59:59", "Session"),
        ("d2", "2024-03-25 00:00", "Session"),
        # d3: Thu 02-29 23:00 and Fri 03-01 00:30 -> 2 days, 2 hours, 1 ISO week, 2 months
        ("d3", "2024-02-29 23:00", "Session"),
        ("d3", "2024-03-01 00:30", "Session"),
        # d4: 10:15, 10:45, 11:59:59 on one day -> 2 hours, 1 day
        ("d4", "2024-03-31 10:15", "Session"),
        ("d4", "2024-03-31 10:45", "Session"),
        ("d4", "2024-03-31 11:59:59", "Session"),
        # d5: twice the same instant -> 1 of everything
        ("d5", "2024-03-10 01:00", "Session"),
        ("d5", "2024-03-10 01:00", "Session"),
        # d6: no events
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("unit", "operator", "value", "expected"),
    [
        ("day", ">=", 2, {"d1", "d2", "d3"}),
        ("day", "=", 1, {"d4", "d5"}),
        ("day", "<", 2, {"d4", "d5", "d6"}),  # d6: 0 days takes part
        ("hour", ">=", 3, {"d1"}),
        ("hour", "=", 2, {"d2", "d3", "d4"}),
        ("week", ">=", 2, {"d2"}),
        ("week", "=", 1, {"d1", "d3", "d4", "d5"}),
        ("month", ">=", 2, {"d3"}),
        ("month", "between", [1, 1], {"d1", "d2", "d4", "d5"}),
    ],
)
def test_distinct_calendar_periods(periods, unit: str, operator: str, value, expected: set):
    rule = event_rule("Session", count={"operator": operator, "value": value, "unit": unit})
    assert ids(periods, group(rule)) == expected


def test_distinct_days_are_utc_days_whatever_the_session_time_zone():
    con = load(
        [{"user_id": "z1"}, {"user_id": "z2"}],
        [
            # z1: 01:00 and 06:00 UTC on 03-10: one UTC day (two New York days)
            ("z1", "2024-03-10 01:00", "Session"),
            ("z1", "2024-03-10 06:00", "Session"),
            # z2: 03-09 23:00 and 03-10 01:00 UTC: two UTC days (one New York day)
            ("z2", "2024-03-09 23:00", "Session"),
            ("z2", "2024-03-10 01:00", "Session"),
        ],
    )
    con.raw_sql(
        "ALTER TABLE events ALTER COLUMN time TYPE TIMESTAMPTZ USING time AT TIME ZONE 'UTC'"
    )
    con.raw_sql("SET TimeZone = 'America/New_York'")
    ds = heapseg.connect(con)
    rule = event_rule("Session", count={"operator": ">=", "value": 2, "unit": "day"})
    assert ids(ds, group(rule), as_of="2024-03-11T00:00:00Z") == {"z2"}


# --------------------------------------------------------------------------- aggregates


@pytest.fixture(scope="module")
def orders() -> heapseg.Dataset:
    users = [{"user_id": f"g{i}"} for i in range(1, 6)]
    events = [
        # g1: revenue 10, 30 and one without -> sum 40, avg 20, min 10, max 30, 2 distinct
        ("g1", "2024-03-01", "Order", {"revenue": 10.0, "plan": "a"}),
        ("g1", "2024-03-02", "Order", {"revenue": 30.0, "plan": "b"}),
        ("g1", "2024-03-03", "Order", {"plan": "a"}),
        # g2: one order of 500
        ("g2", "2024-03-01", "Order", {"revenue": 500.0, "plan": "a"}),
        # g3: one order without revenue -> no value, 0 distinct
        ("g3", "2024-03-01", "Order"),
        # g4: no orders
        ("g4", "2024-03-01", "Session"),
        # g5: 5 before as_of, 100 after it (ignored) -> sum 5
        ("g5", "2024-03-01", "Order", {"revenue": 5.0}),
        ("g5", "2024-04-01", "Order", {"revenue": 100.0}),
    ]
    return dataset(users, events)


def agg(fn: str, operator: str, value, field: str = "revenue") -> dict:
    return event_rule(
        "Order", aggregate={"fn": fn, "field": field, "operator": operator, "value": value}
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (agg("sum", ">=", 40), {"g1", "g2"}),
        # no value (g3, g4) matches no comparison, '<' included
        (agg("sum", "<", 100), {"g1", "g5"}),
        (agg("sum", "!=", 40), {"g2", "g5"}),
        (agg("sum", "between", [5, 40]), {"g1", "g5"}),
        (agg("avg", "=", 20), {"g1"}),
        (agg("avg", "between", [5, 20]), {"g1", "g5"}),
        (agg("min", "<", 10), {"g5"}),
        (agg("max", ">", 29), {"g1", "g2"}),
        (agg("max", "!=", 30), {"g2", "g5"}),
        (agg("count_distinct", "=", 0), {"g3"}),
        (agg("count_distinct", "<", 2), {"g2", "g3", "g5"}),
        (agg("count_distinct", ">=", 2), {"g1"}),
        # count and aggregate both hold: g2 has one order only
        (
            event_rule(
                "Order",
                count={"operator": ">=", "value": 2},
                aggregate={"fn": "sum", "field": "revenue", "operator": ">", "value": 30},
            ),
            {"g1"},
        ),
        # where narrows the events the aggregate sees: g1 plan a -> revenue 10 (+ NULL)
        (
            event_rule(
                "Order",
                where=group(ep("plan", "=", "a")),
                aggregate={"fn": "sum", "field": "revenue", "operator": "=", "value": 10},
            ),
            {"g1"},
        ),
        # a window too: g1's orders of 03-02 and 03-03 -> sum 30
        (
            event_rule(
                "Order",
                window={"from": "2024-03-02"},
                aggregate={"fn": "sum", "field": "revenue", "operator": "=", "value": 30},
            ),
            {"g1"},
        ),
    ],
)
def test_aggregates(orders, rule: dict, expected: set):
    assert ids(orders, group(rule)) == expected


def test_count_distinct_of_a_string_property(orders):
    # g1 ordered plans a, b, a -> 2 distinct; g2 one plan
    assert ids(orders, group(agg("count_distinct", ">=", 2, field="plan"))) == {"g1"}


# --------------------------------------------------------------------------- windows


@pytest.fixture(scope="module")
def moments() -> heapseg.Dataset:
    users = [{"user_id": f"w{i}"} for i in range(1, 7)]
    events = [
        ("w1", "2024-03-30 12:00", "Session"),  # exactly as_of - 1 day
        ("w2", "2024-03-30 12:00:01", "Session"),
        ("w3", "2024-03-31 12:00", "Session"),  # exactly as_of
        ("w4", "2024-03-31 12:00:01", "Session"),  # after as_of: ignored by every rule
        ("w5", "2024-03-01 00:00", "Session"),
        ("w6", "2024-03-15 00:00", "Session"),
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (None, {"w1", "w2", "w3", "w5", "w6"}),
        # (03-30 12:00, 03-31 12:00]: the lower bound is excluded, as_of included
        ({"last": 1, "unit": "day"}, {"w2", "w3"}),
        ({"last": 24, "unit": "hour"}, {"w2", "w3"}),
        # (03-29 12:00, 03-30 12:00]
        ({"last": 1, "unit": "day", "offset": 1}, {"w1"}),
        # (03-24 12:00, 03-31 12:00]
        ({"last": 1, "unit": "week"}, {"w1", "w2", "w3"}),
        # [03-01, 03-15): from included, to excluded
        ({"from": "2024-03-01", "to": "2024-03-15"}, {"w5"}),
        ({"from": "2024-03-15"}, {"w1", "w2", "w3", "w6"}),
        ({"to": "2024-03-15T00:00:01"}, {"w5", "w6"}),
        # zones are converted: [03-30 12:00 UTC, 03-31 12:00 UTC)
        ({"from": "2024-03-30T12:00:00Z", "to": "2024-03-31T14:00:00+02:00"}, {"w1", "w2"}),
        # a from/to window is still cut off at as_of
        ({"from": "2024-03-31T00:00:00", "to": "2024-04-30T00:00:00"}, {"w3"}),
    ],
)
def test_windows(moments, window, expected: set):
    rule = event_rule("Session", window=window) if window else event_rule("Session")
    assert ids(moments, group(rule)) == expected


def test_did_not_with_window(moments):
    rule = event_rule("Session", did=False, window={"last": 1, "unit": "day"})
    # w4's only event is after as_of: w4 had not joined yet, so it is in no segment.
    assert ids(moments, group(rule)) == {"w1", "w5", "w6"}
    everyone = heapseg.connect(moments.backend, joining=False)
    assert ids(everyone, group(rule)) == {"w1", "w4", "w5", "w6"}


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2024-03-31T12:00:00", {"w2", "w3"}),
        ("2024-03-31T12:00:00Z", {"w2", "w3"}),
        ("2024-03-31T14:00:00+02:00", {"w2", "w3"}),
        # an hour earlier: (03-30 11:00, 03-31 11:00] -> w1, w2; w3 is after as_of
        ("2024-03-31T12:00:00+01:00", {"w1", "w2"}),
        # a second later: (03-30 12:00:01, 03-31 12:00:01] takes w4 in and leaves w2 out
        (pd.Timestamp("2024-03-31 12:00:01"), {"w3", "w4"}),
        # a date is its midnight: (03-30 00:00, 03-31 00:00]
        ("2024-03-31", {"w1", "w2"}),
    ],
)
def test_as_of_forms(moments, as_of, expected: set):
    rule = event_rule("Session", window={"last": 1, "unit": "day"})
    assert ids(moments, group(rule), as_of=as_of) == expected


@pytest.fixture(scope="module")
def month_ends() -> heapseg.Dataset:
    stamps = {
        "m1": "2025-02-28 12:00",  # exactly 31 March 12:00 minus one month (clamped to 28 Feb)
        "m2": "2025-02-28 12:00:01",
        "m3": "2025-03-01 11:00",
        "m4": "2025-02-28 11:00",
        "m5": "2025-01-31 12:00",  # exactly minus two months
        "m6": "2025-01-31 12:00:01",
    }
    users = [{"user_id": uid, "seen": stamp} for uid, stamp in stamps.items()]
    events = [(uid, stamp, "Session") for uid, stamp in stamps.items()]
    return dataset(users, events)


MONTH_AS_OF = "2025-03-31T12:00:00"


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # (2025-02-28 12:00, 2025-03-31 12:00]
        ({"last": 1, "unit": "month"}, {"m2", "m3"}),
        # (2025-01-31 12:00, 2025-03-31 12:00]
        ({"last": 2, "unit": "month"}, {"m1", "m2", "m3", "m4", "m6"}),
        # (2025-01-31 12:00, 2025-02-28 12:00]
        ({"last": 1, "unit": "month", "offset": 1}, {"m1", "m4", "m6"}),
    ],
)
def test_month_windows_clamp_to_the_month_end(month_ends, window: dict, expected: set):
    rule = event_rule("Session", window=window)
    assert ids(month_ends, group(rule), as_of=MONTH_AS_OF) == expected


def test_month_property_operators_clamp_to_the_month_end(month_ends):
    # in last 1 month = [2025-02-28 12:00, as_of]
    in_last = user_rule("seen", "in last", 1, unit="month")
    assert ids(month_ends, group(in_last), as_of=MONTH_AS_OF) == {"m1", "m2", "m3"}
    ago = user_rule("seen", "more than ago", 1, unit="month")
    assert ids(month_ends, group(ago), as_of=MONTH_AS_OF) == {"m4", "m5", "m6"}


def test_shift_clamps_months():
    from datetime import datetime

    from heapseg.compile import shift

    assert shift(datetime(2025, 3, 31, 12), 1, "month") == datetime(2025, 2, 28, 12)
    assert shift(datetime(2024, 3, 31), 1, "month") == datetime(2024, 2, 29)
    assert shift(datetime(2024, 1, 31), 2, "month") == datetime(2023, 11, 30)
    assert shift(datetime(2024, 3, 10, 5), 2, "week") == datetime(2024, 2, 25, 5)


# --------------------------------------------------------------------------- first_time


@pytest.fixture(scope="module")
def starters() -> heapseg.Dataset:
    users = [{"user_id": f"f{i}"} for i in range(1, 6)]
    events = [
        ("f1", "2024-03-30", "Session"),
        ("f2", "2024-01-01", "Session"),
        ("f2", "2024-03-30", "Session"),
        ("f3", "2024-04-01", "Session"),  # only after as_of
        ("f4", "2024-01-15", "Session", {"path": "/b"}),
        ("f4", "2024-03-30", "Session", {"path": "/a"}),
        # f5: no events
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("rule", "as_of", "expected"),
    [
        # first ever Session in (03-24 12:00, 03-31 12:00]: f2 and f4 started earlier
        (event_rule("Session", first_time=True, window={"last": 7, "unit": "day"}), AS_OF, {"f1"}),
        # the first Session with path /a is f4's of 03-30
        (
            event_rule(
                "Session",
                first_time=True,
                where=group(ep("path", "=", "/a")),
                window={"last": 7, "unit": "day"},
            ),
            AS_OF,
            {"f4"},
        ),
        (event_rule("Session", first_time=True), AS_OF, {"f1", "f2", "f4"}),
        (
            event_rule(
                "Session", first_time=True, window={"from": "2024-01-01", "to": "2024-02-01"}
            ),
            AS_OF,
            {"f2", "f4"},
        ),
        # two days later f3's first Session (04-01) is inside (03-26 12:00, 04-02 12:00]
        (
            event_rule("Session", first_time=True, window={"last": 7, "unit": "day"}),
            "2024-04-02T12:00:00",
            {"f1", "f3"},
        ),
    ],
)
def test_first_time(starters, rule: dict, as_of, expected: set):
    assert ids(starters, group(rule), as_of=as_of) == expected


# --------------------------------------------------------------------------- sequences


@pytest.fixture(scope="module")
def sequences() -> heapseg.Dataset:
    users = [{"user_id": f"s{i}"} for i in range(1, 9)]
    events = [
        ("s1", "2024-03-01 10:00", "View"),
        ("s1", "2024-03-02 10:00", "Buy"),  # exactly 1 day later
        ("s2", "2024-03-01 10:00", "View"),
        ("s2", "2024-03-02 10:00:01", "Buy"),  # 1 day and 1 second later
        ("s3", "2024-03-01 10:00", "View"),
        ("s3", "2024-03-01 10:00", "Buy"),  # the same instant never pairs
        ("s4", "2024-03-02 10:00", "Buy"),
        ("s4", "2024-03-03 10:00", "View"),  # wrong order
        ("s5", "2024-03-10 10:00", "View"),
        ("s5", "2024-03-20 10:00", "Buy"),
        ("s6", "2024-03-31 11:00", "View"),
        ("s6", "2024-03-31 12:30", "Buy"),  # after as_of
        ("s7", "2024-03-01 10:00", "View", {"path": "/a"}),
        ("s7", "2024-03-01 11:00", "Buy", {"plan": "pro"}),
        # s8: no events
    ]
    return dataset(users, events)


def then(within=None, **extra) -> dict:
    out = {"event": "Buy", **extra}
    if within is not None:
        out["within"] = {"value": within[0], "unit": within[1]}
    return out


@pytest.mark.parametrize(
    ("rule", "as_of", "expected"),
    [
        (event_rule("View", then=then()), AS_OF, {"s1", "s2", "s5", "s7"}),
        (event_rule("View", then=then((1, "day"))), AS_OF, {"s1", "s7"}),  # boundary included
        (event_rule("View", then=then((24, "hour"))), AS_OF, {"s1", "s7"}),
        (event_rule("View", then=then((1, "week"))), AS_OF, {"s1", "s2", "s7"}),
        (event_rule("View", did=False, then=then()), AS_OF, {"s3", "s4", "s6", "s8"}),
        # the window limits only the first event: s5's Buy (03-20) lies outside it
        (
            event_rule("View", window={"from": "2024-03-05", "to": "2024-03-15"}, then=then()),
            AS_OF,
            {"s5"},
        ),
        # s6's Buy is after as_of at 12:00, before it at 13:00
        (event_rule("View", window={"last": 1, "unit": "day"}, then=then()), AS_OF, set()),
        (
            event_rule("View", window={"last": 1, "unit": "day"}, then=then()),
            "2024-03-31T13:00:00",
            {"s6"},
        ),
        (
            event_rule(
                "View",
                where=group(ep("path", "=", "/a")),
                then=then(where=group(ep("plan", "=", "pro"))),
            ),
            AS_OF,
            {"s7"},
        ),
        (event_rule("View", then=then(where=group(ep("plan", "=", "basic")))), AS_OF, set()),
        (
            event_rule("View", did=False, then=then(where=group(ep("plan", "is set")))),
            AS_OF,
            {"s1", "s2", "s3", "s4", "s5", "s6", "s8"},
        ),
    ],
)
def test_sequences(sequences, rule: dict, as_of, expected: set):
    assert ids(sequences, group(rule), as_of=as_of) == expected


# --------------------------------------------------------------------------- groups


@pytest.fixture(scope="module")
def mixed() -> heapseg.Dataset:
    # paid: n1, n3, n5; trial: n2, n4, n6
    users = [{"user_id": f"n{i}", "plan": "paid" if i % 2 else "trial"} for i in range(1, 7)]
    events = [
        ("n1", "2024-03-01", "View"),
        ("n2", "2024-03-01", "View"),
        ("n4", "2024-03-01", "Buy"),
    ]
    return dataset(users, events)


PAID = user_rule("plan", "=", "paid")
VIEW = event_rule("View")
BUY = event_rule("Buy")


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (group(), {"n1", "n2", "n3", "n4", "n5", "n6"}),  # an empty group is everyone
        (group(negate=True), set()),
        (group(PAID, VIEW), {"n1"}),
        (group(PAID, VIEW, combinator="or"), {"n1", "n2", "n3", "n5"}),
        (group(PAID, VIEW, combinator="or", negate=True), {"n4", "n6"}),
        (group(group(group(PAID, negate=True), negate=True)), {"n1", "n3", "n5"}),
        (group(group(PAID, negate=True), group(VIEW, negate=True)), {"n4", "n6"}),
        # paid, or neither View nor Buy (n6)
        (
            group(PAID, group(VIEW, BUY, combinator="or", negate=True), combinator="or"),
            {"n1", "n3", "n5", "n6"},
        ),
        # not (paid and View) = all but n1; and not Buy = all but n4
        (
            group(group(PAID, VIEW, negate=True), group(BUY, negate=True)),
            {"n2", "n3", "n5", "n6"},
        ),
    ],
)
def test_nested_groups_and_not(mixed, definition: dict, expected: set):
    assert ids(mixed, definition) == expected


# --------------------------------------------------------------------------- the spec examples

NEW_TRIALS = group(
    {"kind": "user", "field": "subscription_type", "operator": "=", "value": "trial"},
    event_rule("Session", did=True, first_time=True, window={"last": 90, "unit": "day"}),
)
WINDOW_SHOPPERS = group(
    event_rule("Session", did=True, count={"operator": ">", "value": 5}),
    event_rule("Completed Order", did=False),
)
POSSIBLE_CHURN = group(
    {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"},
    event_rule("Session", did=False, window={"last": 90, "unit": "day"}),
)


@pytest.fixture(scope="module")
def shop() -> heapseg.Dataset:
    plans = {
        "x1": "trial",
        "x2": "trial",
        "x3": "paid",
        "x4": "paid",
        "x5": "free",
        "x6": "paid",
        "x7": "trial",
    }
    users = [{"user_id": uid, "subscription_type": plan} for uid, plan in plans.items()]
    events = [
        ("x1", "2024-03-01", "Session"),  # started 30 days ago
        ("x2", "2023-11-01", "Session"),  # started long ago ...
        ("x2", "2024-03-01", "Session"),  # ... and active again lately
        *[("x3", f"2023-10-0{d}", "Session") for d in range(1, 7)],  # 6 sessions, long ago
        *[("x4", f"2024-03-0{d}", "Session") for d in range(1, 7)],  # 6 recent sessions ...
        ("x4", "2024-03-07", "Completed Order"),  # ... and an order
        # x5, x6: no events
        ("x7", "2024-01-01 12:00", "Session"),  # exactly as_of - 90 days: outside
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (NEW_TRIALS, {"x1"}),
        (WINDOW_SHOPPERS, {"x3"}),  # x4 ordered
        (POSSIBLE_CHURN, {"x3", "x6"}),  # x4 is active, x5 is free
    ],
    ids=["new-trials", "window-shoppers", "possible-churn"],
)
def test_spec_examples(shop, definition: dict, expected: set):
    assert ids(shop, definition) == expected


def test_spec_examples_from_the_builder_select_the_same_users(shop):
    from heapseg import did, did_not, user

    built = {
        "new": (user.subscription_type == "trial") & did("Session").first_time().last(90, "day"),
        "shoppers": (did("Session").times() > 5) & did_not("Completed Order"),
        "churn": (user.subscription_type == "paid") & did_not("Session").last(90, "day"),
    }
    assert {k: ids(shop, v) for k, v in built.items()} == {
        "new": {"x1"},
        "shoppers": {"x3"},
        "churn": {"x3", "x6"},
    }


# --------------------------------------------------------------------------- segment references


class Resolver:
    """A tiny catalog: saved definitions by id; an unknown id raises KeyError."""

    def __init__(self, saved: dict) -> None:
        self.saved = saved
        self.asked: list[str] = []

    def resolve_segment(self, segment_id: str):
        self.asked.append(segment_id)
        return self.saved[segment_id]


def ref(segment_id: str, member: bool | None = None) -> dict:
    rule = {"kind": "segment", "id": segment_id}
    if member is not None:
        rule["in"] = member
    return rule


@pytest.fixture(scope="module")
def referencing() -> heapseg.Dataset:
    # paid: r1, r3, r5
    users = [{"user_id": f"r{i}", "plan": "paid" if i % 2 else "trial"} for i in range(1, 6)]
    events = [("r1", "2024-03-01", "View"), ("r2", "2024-03-01", "View")]
    saved = {
        "paid": heapseg.Segment.from_dict(group(user_rule("plan", "=", "paid"))),
        "paid-viewers": heapseg.Segment.from_dict(group(ref("paid"), event_rule("View"))),
        "frozen": heapseg.StaticMembers(["r2", "r3", "gone"]),  # "gone" left the users table
        "frozen-arrow": heapseg.StaticMembers(pa.array(["r4"])),
        "frozen-series": heapseg.StaticMembers(pd.Series(["r5", "r1"])),
        "frozen-empty": heapseg.StaticMembers([]),
        "cycle-a": heapseg.Segment.from_dict(group(ref("cycle-b"))),
        "cycle-b": heapseg.Segment.from_dict(group(user_rule("plan", "is set"), ref("cycle-a"))),
        "self": heapseg.Segment.from_dict(group(ref("self", False))),
    }
    return dataset(users, events, resolver=Resolver(saved))


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (group(ref("paid")), {"r1", "r3", "r5"}),
        (group(ref("paid", True)), {"r1", "r3", "r5"}),
        (group(ref("paid", False)), {"r2", "r4"}),
        (group(ref("paid-viewers")), {"r1"}),
        (group(ref("paid-viewers", False), event_rule("View")), {"r2"}),
        (group(ref("frozen")), {"r2", "r3"}),
        (group(ref("frozen", False)), {"r1", "r4", "r5"}),
        (group(ref("frozen-arrow")), {"r4"}),
        (group(ref("frozen-series")), {"r1", "r5"}),
        (group(ref("frozen-empty")), set()),
        (group(ref("frozen-empty", False)), {"r1", "r2", "r3", "r4", "r5"}),
        (group(ref("frozen"), ref("paid")), {"r3"}),
    ],
)
def test_segment_references(referencing, definition: dict, expected: set):
    assert ids(referencing, definition) == expected


def test_unknown_segment_id_is_an_error(referencing):
    with pytest.raises(SegmentReferenceError, match="unknown segment id 'nope'") as info:
        referencing.count(group(user_rule("plan", "is set"), ref("nope")), as_of=AS_OF)
    assert info.value.chain == ("nope",)
    assert "rules[1]" in str(info.value)


@pytest.mark.parametrize(
    ("start", "chain"),
    [("cycle-a", ("cycle-a", "cycle-b", "cycle-a")), ("self", ("self", "self"))],
)
def test_reference_cycle_is_an_error_with_its_chain(referencing, start: str, chain: tuple):
    with pytest.raises(SegmentReferenceError, match="cycle") as info:
        referencing.count(group(ref(start)), as_of=AS_OF)
    assert info.value.chain == chain
    assert " -> ".join(chain) in str(info.value)


def test_reference_without_resolver_is_an_error(people):
    with pytest.raises(SegmentReferenceError, match="no catalog"):
        people.count(group(ref("paid")), as_of=AS_OF)


def test_resolver_can_be_given_per_call(people):
    trials = heapseg.Segment.from_dict(group(user_rule("plan", "=", "trial")))
    resolver = Resolver({"trials": trials})
    assert people.count(group(ref("trials")), as_of=AS_OF, resolver=resolver) == 1
    assert resolver.asked == ["trials"]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (user_rule("pln", "=", "a"), "rules[0].field", ["'pln'", "did you mean 'plan'"]),
        (acc("tierr", "=", "a"), "rules[0].field", ["'tierr'", "'tier'"]),
        (
            event_rule("Session", where=group(ep("pth", "=", "/a"))),
            "rules[0].where.rules[0].field",
            ["'pth'", "'path'"],
        ),
        (agg("sum", ">", 1, field="revnue"), "rules[0].aggregate.field", ["'revnue'", "'revenue'"]),
    ],
)
@pytest.mark.filterwarnings("ignore::heapseg.compile.UnknownEventWarning")
def test_unknown_property_names_the_nearest(people, rule: dict, path: str, words: list[str]):
    with pytest.raises(SchemaError) as info:
        people.count(group(rule), as_of=AS_OF)
    assert info.value.path == path
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("rule", "column_type"),
    [
        (user_rule("ltv", "=", "ten"), "float64"),
        (user_rule("visits", "in", [1, "2"]), "int64"),
        (user_rule("opt_in", "=", "true"), "boolean"),
        (user_rule("plan", "=", 3), "string"),
        (user_rule("plan", ">", "a"), "string"),
        (user_rule("plan", "in last", 3, unit="day"), "string"),
        (user_rule("ltv", "contains", "1"), "float64"),
        (user_rule("ltv", "begins with", "1"), "float64"),
        (user_rule("signup", "=", "2024-01-01T10:00:00"), "date"),
        (user_rule("signup", ">", 3), "date"),
        (user_rule("seen", "<", 5), "timestamp"),
        (acc("seats", "=", "five"), "int64"),
        (event_rule("Session", where=group(ep("revenue", "=", "a"))), "float64"),
        (agg("sum", ">", 1, field="path"), "string"),
    ],
)
@pytest.mark.filterwarnings("ignore::heapseg.compile.UnknownEventWarning")
def test_wrong_value_type_names_the_column_type(people, rule: dict, column_type: str):
    with pytest.raises(SchemaError) as info:
        people.count(group(rule), as_of=AS_OF)
    assert column_type in str(info.value)
    assert info.value.path.startswith("rules[0]")


def test_unparseable_date_value_is_a_definition_error(people):
    with pytest.raises(DefinitionError, match="'yesterday'"):
        people.count(group(user_rule("signup", "<", "yesterday")), as_of=AS_OF)


def test_not_format_1_is_a_definition_error(people):
    with pytest.raises(DefinitionError, match="unknown key 'filters'"):
        people.count({"filters": []}, as_of=AS_OF)


def test_unknown_event_name_is_a_warning_not_an_error(counts):
    with pytest.warns(heapseg.UnknownEventWarning, match="'Sesion'.*did you mean 'Session'"):
        assert counts.count(group(event_rule("Sesion")), as_of=AS_OF) == 0
    with pytest.warns(heapseg.UnknownEventWarning, match="'Sesion'"):
        assert counts.count(group(event_rule("Sesion", did=False)), as_of=AS_OF) == 5
    with pytest.warns(heapseg.UnknownEventWarning, match="then.event.*'Upgrade'"):
        counts.count(group(event_rule("Session", then={"event": "Upgrade"})), as_of=AS_OF)


def test_known_event_names_do_not_warn(counts):
    with warnings.catch_warnings():
        warnings.simplefilter("error", heapseg.UnknownEventWarning)
        assert counts.count(group(event_rule("Pageview")), as_of=AS_OF) == 1


# --------------------------------------------------------------------------- identity merge


def test_identity_merge_attributes_events_to_the_new_user():
    users = [{"user_id": f"i{i}"} for i in range(1, 5)]
    events = [
        ("anon-1", "2024-03-01", "View"),  # anonymous id, later identified as i2
        ("anon-1", "2024-03-02", "View"),
        ("i2", "2024-03-03", "View"),
        ("i3", "2024-03-03", "View"),  # i3 was merged into i4
        ("anon-1", "2024-03-04", "Buy"),
    ]
    ds = dataset(users, events, migrations=[("anon-1", "i2"), ("i3", "i4")])
    # i2: 3 Views (2 inherited); i4: i3's View; i3 has none left
    assert ids(ds, group(event_rule("View"))) == {"i2", "i4"}
    assert ids(ds, group(event_rule("View", count={"operator": ">=", "value": 3}))) == {"i2"}
    assert ids(ds, group(event_rule("View", did=False))) == {"i1", "i3"}
    assert ids(ds, group(event_rule("View", first_time=True, window={"to": "2024-03-02"}))) == {
        "i2"
    }
    assert ids(ds, group(event_rule("View", then={"event": "Buy"}))) == {"i2"}
    unmerged = dataset(users, events, migrations=[("anon-1", "i2")], user_migrations=None)
    assert ids(unmerged, group(event_rule("View"))) == {"i2", "i3"}


def test_identity_merge_with_event_properties_named_like_its_own_columns():
    # The merge joins a (_from, _to) table: events may have properties of those names too.
    con = load([{"user_id": "u1"}, {"user_id": "u2"}], [("a1", "2024-03-01", "View")])
    con.raw_sql("ALTER TABLE events ADD COLUMN _to VARCHAR DEFAULT 'x'")
    con.raw_sql("ALTER TABLE events ADD COLUMN _from INTEGER DEFAULT 7")
    con.create_table(
        "user_migrations", pd.DataFrame({"from_user_id": ["a1"], "to_user_id": ["u1"]})
    )
    ds = heapseg.connect(con)
    assert ds.events.columns[-2:] == ("_to", "_from")
    frame = ds.execute(ds.events.select("user_id", "_to", "_from"))
    assert frame.to_dict("records") == [{"user_id": "u1", "_to": "x", "_from": 7}]
    on_to = group(event_rule("View", where=group(prop("event_property", "_to", "=", "x"))))
    assert ids(ds, on_to) == {"u1"}
    assert ds.count(on_to, as_of=AS_OF) == 1
    summed = event_rule(
        "View", aggregate={"fn": "sum", "field": "_from", "operator": "=", "value": 7}
    )
    assert ds.count(group(summed), as_of=AS_OF) == 1


# --------------------------------------------------------------------------- big and extreme
# Issue 14: definitions at the limits compile without deep recursion (balanced AND/OR trees);
# beyond them, and for windows beyond the calendar, a clear error or the right answer.


@pytest.fixture(scope="module")
def few() -> heapseg.Dataset:
    users = [
        {
            "user_id": "f1",
            "plan": "p7",
            "email": "x499@a",
            "seen": "2024-03-30 10:00",
            "signup": "2024-03-01",
        },
        {
            "user_id": "f2",
            "plan": "x",
            "email": "none",
            "seen": "0001-01-02 00:00",
            "signup": "0001-01-01",
        },
        {"user_id": "f3", "plan": None, "email": None, "seen": None},
    ]
    events = [
        ("f1", "2024-03-30 12:00", "View"),
        ("f2", "0001-01-01 00:00", "View"),
        ("f2", "2024-03-31 12:00", "Buy"),
    ]
    return dataset(users, events)


@pytest.mark.parametrize("combinator", ["or", "and"])
def test_a_group_of_a_thousand_rules_compiles_and_counts(few, combinator: str):
    from heapseg.model import MAX_RULES

    rules = [
        user_rule("plan", "!=" if combinator == "and" else "=", f"p{i}") for i in range(MAX_RULES)
    ]
    expected = {"f1"} if combinator == "or" else {"f2", "f3"}
    assert ids(few, group(*rules, combinator=combinator)) == expected


def test_a_contains_pattern_with_a_thousand_alternatives_compiles_and_counts(few):
    from heapseg.model import MAX_PATTERN_PARTS

    pattern = "|".join(f"x{i}@" for i in range(MAX_PATTERN_PARTS))
    assert ids(few, group(user_rule("email", "contains", pattern))) == {"f1"}
    assert ids(few, group(user_rule("email", "not contains", pattern))) == {"f2", "f3"}


def chained(length: int, *, twice: bool = False) -> Resolver:
    """s0 -> s1 -> ... -> s{length-1}; the last one selects the paid plan (p7)."""
    saved = {}
    for i in range(length):
        if i + 1 == length:
            rules = [user_rule("plan", "=", "p7")]
        else:
            rules = [ref(f"s{i + 1}")] * (2 if twice else 1) + [user_rule("plan", "is set")]
        saved[f"s{i}"] = heapseg.Segment.from_dict(group(*rules))
    return Resolver(saved)


def test_a_short_chain_of_references_counts(few):
    assert ids(few, group(ref("s0")), resolver=chained(10)) == {"f1"}


def test_a_chain_of_300_references_is_a_definition_error(few):
    with pytest.raises(DefinitionError) as info:
        few.count(group(user_rule("plan", "is set"), ref("s0")), as_of=AS_OF, resolver=chained(300))
    assert info.value.path == "rules[1]"
    message = str(info.value)
    assert "nested more than 32 levels deep through segment references" in message
    assert "s0 -> s1 -> s2 -> ... -> s298 -> s299, 300 segments" in message


def test_references_that_double_the_query_at_each_step_are_refused(few):
    # 12 steps, each referring twice to the next: 4,096 copies of the last segment's rule.
    with pytest.raises(DefinitionError, match="more than 1000 rules and groups through segment"):
        few.count(group(ref("s0")), as_of=AS_OF, resolver=chained(12, twice=True))


def test_nesting_counts_where_a_reference_stands(few):
    # 20 levels here plus 20 in the referenced segment: 40 levels in the compiled query.
    def nest(rule: dict, levels: int) -> dict:
        for _ in range(levels):
            rule = group(rule, user_rule("plan", "is set"), negate=True)
        return rule

    resolver = Resolver({"deep": heapseg.Segment.from_dict(nest(user_rule("plan", "=", "p7"), 20))})
    assert ids(few, nest(ref("deep"), 5), resolver=resolver) == ids(
        few, nest(nest(user_rule("plan", "=", "p7"), 20), 5)
    )
    with pytest.raises(DefinitionError, match="nested more than 32 levels deep through") as info:
        few.count(nest(ref("deep"), 20), as_of=AS_OF, resolver=resolver)
    assert info.value.path == ".".join(["rules[0]"] * 20)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"last": 10**6, "unit": "day"}, {"f1", "f2"}),
        ({"last": 10**5, "unit": "month"}, {"f1", "f2"}),
        ({"last": 2**63 - 1, "unit": "hour"}, {"f1", "f2"}),
        ({"last": 2**63 - 1, "unit": "week"}, {"f1", "f2"}),
        ({"last": 1, "unit": "day", "offset": 10**12}, set()),
        ({"last": 2**62, "unit": "month", "offset": 2**62}, set()),
        ({"from": "0001-01-01T00:00+14:00"}, {"f1", "f2"}),
        ({"to": "9999-12-31T23:59:59-12:00"}, {"f1", "f2"}),
        ({"from": "0001-01-01T00:00+14:00", "to": "0001-01-01T12:00:00+00:00"}, {"f2"}),
    ],
)
def test_windows_wider_than_the_calendar_mean_any_time(few, window: dict, expected: set):
    assert ids(few, group(event_rule("View", window=window))) == expected
    first = event_rule("View", first_time=True, window=window)
    assert ids(few, group(first)) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (user_rule("seen", "in last", 2**63 - 1, unit="day"), {"f1", "f2"}),
        (user_rule("seen", "in last", 2**63 - 1, unit="month"), {"f1", "f2"}),
        (user_rule("seen", "more than ago", 10**6, unit="day"), set()),
        (user_rule("signup", "in last", 10**7, unit="week"), {"f1", "f2"}),
        (user_rule("signup", "more than ago", 2**63 - 1, unit="hour"), set()),
    ],
)
def test_relative_dates_beyond_the_calendar(few, rule: dict, expected: set):
    assert ids(few, group(rule)) == expected


def test_as_of_at_the_start_of_the_calendar(few):
    early = "0001-01-01T06:00"
    assert ids(few, group(event_rule("View", window={"last": 3, "unit": "day"})), as_of=early) == {
        "f2"
    }
    assert ids(few, group(user_rule("seen", "in last", 90, unit="month")), as_of=early) == set()
    with pytest.raises(DefinitionError, match="outside the timestamps"):
        few.count(group(), as_of="0001-01-01T00:00+14:00")


def test_frozen_members_of_mixed_id_kinds_are_a_reference_error():
    from heapseg.errors import SegmentReferenceError
    from heapseg.model import StaticMembers

    class Frozen:
        def resolve_segment(self, segment_id):
            return StaticMembers(["u1", 7])

    ds = dataset([{"user_id": "u1"}, {"user_id": "u2"}], resolver=Frozen())
    with pytest.raises(SegmentReferenceError, match="not one kind of id"):
        ds.count(group({"kind": "segment", "id": "frozen"}))


# --------------------------------------------------------------------------- funnel rules


def _funnel(*names: str, **keys) -> dict:
    return {"kind": "funnel", "steps": [{"event": n} for n in names], **keys}


@pytest.fixture(scope="module")
def shoppers() -> heapseg.Dataset:
    users = [{"user_id": f"f{i}"} for i in range(1, 5)]
    events = [
        # f1: all three steps; f2: a cart the same instant as the session (no pair); f3: a
        # session only; f4: an order before the cart (out of order), then the cart.
        ("f1", "2024-03-20 10:00", "Session"),
        ("f1", "2024-03-20 11:00", "Add to Cart"),
        ("f1", "2024-03-21 09:00", "Completed Order"),
        ("f2", "2024-03-20 10:00", "Session"),
        ("f2", "2024-03-20 10:00", "Add to Cart"),
        ("f3", "2024-03-25 10:00", "Session"),
        ("f4", "2024-03-20 10:00", "Session"),
        ("f4", "2024-03-20 11:00", "Completed Order"),
        ("f4", "2024-03-20 12:00", "Add to Cart"),
    ]
    return dataset(users, events)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, {"f1"}),
        ({"reached": 2}, {"f1", "f4"}),
        ({"reached": 1}, {"f1", "f2", "f3", "f4"}),
        ({"reached": 1, "not_reached": 2}, {"f2", "f3"}),
        ({"reached": 2, "not_reached": 3}, {"f4"}),
        ({"within": {"value": 12, "unit": "hour"}}, set()),  # f1's order is 23 hours later
        ({"window": {"last": 7, "unit": "day"}, "reached": 1}, {"f3"}),
    ],
)
def test_funnel_rule_steps(shoppers, keys: dict, expected: set):
    rule = _funnel("Session", "Add to Cart", "Completed Order", **keys)
    assert ids(shoppers, group(rule)) == expected


def test_not_around_a_funnel_is_its_complement(shoppers):
    rule = _funnel("Session", "Add to Cart", reached=2)
    assert ids(shoppers, {**group(rule), "not": True}) == {"f2", "f3"}


def test_a_funnel_rule_looks_at_the_steps_it_needs(shoppers):
    steps = ("Session", "Add to Cart", "Completed Order")
    assert "Completed Order" in shoppers.sql(group(_funnel(*steps, reached=2, not_reached=3)))
    assert "Completed Order" not in shoppers.sql(group(_funnel(*steps, reached=2)))


def test_unknown_funnel_events_warn_with_their_step(shoppers):
    rule = _funnel("Session", "Add to Kart", reached=1)
    with pytest.warns(heapseg.UnknownEventWarning, match=r"steps\[1\]\.event.*'Add to Cart'"):
        shoppers.count(group(rule), as_of=AS_OF)
    with pytest.warns(heapseg.UnknownEventWarning, match=r"steps\[1\]\.event"):
        shoppers.count(group(rule), as_of=AS_OF)  # the reused query warns too


@pytest.mark.filterwarnings("ignore::heapseg.compile.UnknownEventWarning")
def test_unknown_property_in_a_funnel_step_names_the_step(shoppers):
    where = {"combinator": "and", "rules": [ep("revnue", ">", 1)]}
    rule = {
        "kind": "funnel",
        "steps": [{"event": "Session"}, {"event": "Add to Cart", "where": where}],
    }
    with pytest.raises(SchemaError) as info:
        shoppers.count(group(rule), as_of=AS_OF)
    assert info.value.path == "rules[0].steps[1].where.rules[0].field"
