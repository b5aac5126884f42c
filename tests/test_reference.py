"""Hand-checked tests of the reference evaluator (tests/reference.py) on tiny hand-made data."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

try:
    from tests import reference
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    import reference

AS_OF = dt.datetime(2024, 3, 31, 12, 0, 0)
DAY = dt.timedelta(days=1)


# The pandas type of each property column of the hand-made tables (users and histories).
PROPERTY_DTYPES: dict[str, Any] = {
    "plan": "string",
    "email": "string",
    "ltv": "Float64",
    "opt_in": "boolean",
    "signup": pd.ArrowDtype(pa.date32()),
    "seen": "datetime64[us]",
    "account_id": "string",
    "tier": "string",
    "note": "string",  # a history column that users do not have: ignored
    "valid_from": "datetime64[us]",
    "valid_to": "datetime64[us]",
    "time": "datetime64[us]",
}


def _joined_at_column(values: list) -> pd.Series:
    """joined_at as a date column when every value set is a date, else a timestamp column."""
    set_values = [v for v in values if v is not None]
    if set_values and all(
        isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in set_values
    ):
        return pd.Series(values, dtype=pd.ArrowDtype(pa.date32()))
    return pd.Series(values, dtype="datetime64[us]")


def users_frame(rows: list[dict]) -> pd.DataFrame:
    """Users with typed property columns; missing keys are NULL.

    A ``joined_at`` column is there only when some row names it.
    """
    frame = pd.DataFrame(
        {
            "user_id": [r["user_id"] for r in rows],
            **{
                name: pd.Series([r.get(name) for r in rows], dtype=PROPERTY_DTYPES[name])
                for name in ("plan", "email", "ltv", "opt_in", "signup", "seen", "account_id")
            },
        }
    )
    if any("joined_at" in r for r in rows):
        frame["joined_at"] = _joined_at_column([r.get("joined_at") for r in rows])
    return frame


def history_frame(key: str, rows: list[dict]) -> pd.DataFrame:
    """A history table from dict rows: ``key``, then every column some row names, typed."""
    names = [key, *sorted({name for row in rows for name in row} - {key})]
    return pd.DataFrame(
        {
            name: pd.Series(
                [row.get(name) for row in rows],
                dtype="string" if name == key else PROPERTY_DTYPES[name],
            )
            for name in names
        }
    )


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Events from (user_id, time, event, {props}) tuples."""
    int_ids = bool(rows) and all(isinstance(r[0], int) for r in rows)
    return pd.DataFrame(
        {
            "user_id": pd.Series([r[0] for r in rows], dtype="int64" if int_ids else "string"),
            "time": pd.Series([r[1] for r in rows], dtype="datetime64[us]"),
            "event": pd.Series([r[2] for r in rows], dtype="string"),
            "path": pd.Series(
                [(r[3] if len(r) > 3 else {}).get("path") for r in rows], dtype="string"
            ),
            "revenue": pd.Series(
                [(r[3] if len(r) > 3 else {}).get("revenue") for r in rows], dtype="Float64"
            ),
        }
    )


ACCOUNTS = pd.DataFrame(
    {"account_id": ["a1", "a2"], "tier": pd.Series(["gold", None], dtype="object")}
)


def reference_run(definition: dict, users: list[dict], events: list[tuple], **kw: Any) -> set:
    """Evaluate with the reference on frames built from hand-written rows."""
    return reference.evaluate(
        definition,
        users_frame(users),
        events_frame(events),
        kw.pop("accounts", ACCOUNTS),
        kw.pop("as_of", AS_OF),
        **kw,
    )


@pytest.fixture
def run() -> Callable[..., set]:
    """How a hand-made case is evaluated; tests/test_engine_vs_reference.py swaps in the engine."""
    return reference_run


def group(*rules: dict, combinator: str = "and", negate: bool = False) -> dict:
    return {"combinator": combinator, "not": negate, "rules": list(rules)}


def user_rule(field: str, operator: str, value=None, **extra) -> dict:
    rule = {"kind": "user", "field": field, "operator": operator, **extra}
    if value is not None:
        rule["value"] = value
    return rule


# --------------------------------------------------------------------------- the spec's examples


def test_example_new_trial_users(run: Callable[..., set]) -> None:
    definition = group(
        user_rule("plan", "=", "trial"),
        {
            "kind": "event",
            "event": "Session",
            "did": True,
            "first_time": True,
            "window": {"last": 90, "unit": "day"},
        },
    )
    users = [
        {"user_id": "new", "plan": "trial"},
        {"user_id": "old", "plan": "trial"},
        {"user_id": "paid", "plan": "paid"},
        {"user_id": "never", "plan": "trial"},
        {"user_id": "Trial", "plan": "Trial"},  # = is case-sensitive
        {"user_id": "edge", "plan": "trial"},  # first session exactly 90 days ago: outside
        {"user_id": "future", "plan": "trial"},  # only session after as_of
    ]
    events = [
        ("new", AS_OF - 10 * DAY, "Session"),
        ("new", AS_OF - 2 * DAY, "Session"),
        ("old", AS_OF - 100 * DAY, "Session"),
        ("old", AS_OF - 5 * DAY, "Session"),
        ("paid", AS_OF - 10 * DAY, "Session"),
        ("Trial", AS_OF - 10 * DAY, "Session"),
        ("edge", AS_OF - 90 * DAY, "Session"),
        ("edge", AS_OF - 1 * DAY, "Session"),
        ("future", AS_OF + dt.timedelta(seconds=1), "Session"),
    ]
    assert run(definition, users, events) == {"new"}


def test_example_window_shoppers(run: Callable[..., set]) -> None:
    definition = group(
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    )
    six = [AS_OF - k * DAY for k in range(1, 7)]
    users = [{"user_id": u} for u in ("six", "five", "bought", "late_order", "late_session")]
    events = [("six", t, "Session") for t in six]
    events += [("five", t, "Session") for t in six[:5]]
    events += [("bought", t, "Session") for t in six] + [("bought", AS_OF, "Completed Order")]
    events += [("late_order", t, "Session") for t in six]
    events += [("late_order", AS_OF + DAY, "Completed Order")]
    events += [("late_session", t, "Session") for t in six[:5]]
    events += [("late_session", AS_OF + DAY, "Session")]
    assert run(definition, users, events) == {"six", "late_order"}


def test_example_possible_churn(run: Callable[..., set]) -> None:
    definition = group(
        user_rule("plan", "=", "paid"),
        {"kind": "event", "event": "Session", "did": False, "window": {"last": 90, "unit": "day"}},
    )
    users = [
        {"user_id": "gone", "plan": "paid"},
        {"user_id": "exactly90", "plan": "paid"},
        {"user_id": "active", "plan": "paid"},
        {"user_id": "no_events", "plan": "paid"},
        {"user_id": "free", "plan": "free"},
    ]
    events = [
        ("gone", AS_OF - 91 * DAY, "Session"),
        ("exactly90", AS_OF - 90 * DAY, "Session"),  # the window's start is excluded
        ("active", AS_OF - 89 * DAY, "Session"),
    ]
    assert run(definition, users, events) == {"gone", "exactly90", "no_events"}


# --------------------------------------------------------------------------- groups


def test_empty_groups_select_everyone_and_not_selects_nobody(run: Callable[..., set]) -> None:
    users = [{"user_id": "a"}, {"user_id": "b"}]
    assert run(group(), users, []) == {"a", "b"}
    assert run(group(combinator="or"), users, []) == {"a", "b"}
    assert run(group(negate=True), users, []) == set()
    assert run(
        group(group(combinator="or"), user_rule("plan", "is set"), combinator="or"), users, []
    ) == {"a", "b"}


def test_nested_groups_with_not(run: Callable[..., set]) -> None:
    users = [
        {"user_id": "t1", "plan": "trial", "ltv": 5.0},
        {"user_id": "t2", "plan": "trial", "ltv": 50.0},
        {"user_id": "p", "plan": "paid", "ltv": 50.0},
        {"user_id": "n", "plan": None, "ltv": None},
    ]
    inner = group(user_rule("plan", "=", "trial"), user_rule("ltv", ">", 10), negate=True)
    assert run(inner, users, []) == {"t1", "p", "n"}
    outer = group(inner, user_rule("plan", "is set"), combinator="and")
    assert run(outer, users, []) == {"t1", "p"}
    either = group(user_rule("plan", "=", "paid"), user_rule("ltv", "<", 10), combinator="or")
    assert run(either, users, []) == {"t1", "p"}


# --------------------------------------------------------------------------- property operators


UNSET_USERS = [
    {"user_id": "none", "plan": None, "ltv": None, "opt_in": None},
    {"user_id": "empty", "plan": "", "ltv": 0.0, "opt_in": False},
    {"user_id": "trial", "plan": "trial", "ltv": 5.0, "opt_in": True},
    {"user_id": "paid", "plan": "paid", "ltv": 10.0, "opt_in": True},
]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (user_rule("plan", "=", "trial"), {"trial"}),
        (user_rule("plan", "!=", "trial"), {"none", "empty", "paid"}),
        (user_rule("plan", "in", ["trial", "paid"]), {"trial", "paid"}),
        (user_rule("plan", "not in", ["trial"]), {"none", "empty", "paid"}),
        (user_rule("plan", "is set"), {"trial", "paid"}),
        (user_rule("plan", "is not set"), {"none", "empty"}),
        (user_rule("plan", "contains", "A"), {"trial", "paid"}),
        (user_rule("plan", "not contains", "a"), {"none", "empty"}),
        (user_rule("plan", "begins with", "TR"), {"trial"}),
        (user_rule("plan", "ends with", "iD"), {"paid"}),
        (user_rule("ltv", ">", 4), {"trial", "paid"}),
        (user_rule("ltv", ">=", 0), {"empty", "trial", "paid"}),
        (user_rule("ltv", "<", 100), {"empty", "trial", "paid"}),
        (user_rule("ltv", "<=", 5), {"empty", "trial"}),
        (user_rule("ltv", "between", [4, 10]), {"trial", "paid"}),
        (user_rule("ltv", "between", [10, 4]), set()),
        (user_rule("ltv", "not between", [4, 6]), {"none", "empty", "paid"}),
        (user_rule("ltv", "is set"), {"empty", "trial", "paid"}),  # 0 is a value
        (user_rule("ltv", "!=", 5), {"none", "empty", "paid"}),
        (user_rule("opt_in", "=", True), {"trial", "paid"}),
        (user_rule("opt_in", "!=", True), {"none", "empty"}),
        (user_rule("opt_in", "is not set"), {"none"}),
    ],
)
def test_property_operators_and_unset_values(
    run: Callable[..., set], rule: dict, expected: set
) -> None:
    assert run(group(rule), UNSET_USERS, []) == expected


def test_empty_string_is_unset_for_equality() -> None:
    # Reference only: the engine's side is in tests/test_engine_regressions.py.
    users = UNSET_USERS
    assert reference_run(group(user_rule("plan", "=", "")), users, []) == set()
    everyone = {"none", "empty", "trial", "paid"}
    assert reference_run(group(user_rule("plan", "!=", "")), users, []) == everyone
    assert reference_run(group(user_rule("plan", "in", ["", "paid"])), users, []) == {"paid"}


def test_account_properties_and_missing_accounts(run: Callable[..., set]) -> None:
    users = [
        {"user_id": "gold", "account_id": "a1"},
        {"user_id": "unset_tier", "account_id": "a2"},
        {"user_id": "dangling", "account_id": "a9"},
        {"user_id": "no_account", "account_id": None},
    ]
    tier = {"kind": "account", "field": "tier"}
    assert run(group({**tier, "operator": "=", "value": "gold"}), users, []) == {"gold"}
    assert run(group({**tier, "operator": "!=", "value": "gold"}), users, []) == {
        "unset_tier",
        "dangling",
        "no_account",
    }
    assert run(group({**tier, "operator": "is not set"}), users, []) == {
        "unset_tier",
        "dangling",
        "no_account",
    }


def test_dates_and_timestamps_in_last_and_more_than_ago(run: Callable[..., set]) -> None:
    users = [
        {
            "user_id": "d_recent",
            "signup": dt.date(2024, 3, 25),
            "seen": AS_OF - dt.timedelta(hours=1),
        },
        # the date 2024-03-24 is midnight, before as_of - 7 days = 2024-03-24 12:00
        {"user_id": "d_edge", "signup": dt.date(2024, 3, 24), "seen": AS_OF - 7 * DAY},
        {"user_id": "d_old", "signup": dt.date(2024, 1, 1), "seen": AS_OF - 8 * DAY},
        {"user_id": "future", "signup": dt.date(2024, 4, 2), "seen": AS_OF + DAY},
        {"user_id": "unset", "signup": None, "seen": None},
    ]
    last7 = {"value": 7, "unit": "day"}
    assert run(group(user_rule("signup", "in last", **last7)), users, []) == {"d_recent"}
    assert run(group(user_rule("seen", "in last", **last7)), users, []) == {"d_recent", "d_edge"}
    ago7 = {"value": 7, "unit": "day"}
    assert run(group(user_rule("signup", "more than ago", **ago7)), users, []) == {
        "d_edge",
        "d_old",
    }
    assert run(group(user_rule("seen", "more than ago", **ago7)), users, []) == {"d_old"}
    assert run(group(user_rule("signup", ">=", "2024-03-24")), users, []) == {
        "d_recent",
        "d_edge",
        "future",
    }
    assert run(group(user_rule("signup", "between", ["2024-01-01", "2024-03-24"])), users, []) == {
        "d_edge",
        "d_old",
    }
    assert run(group(user_rule("seen", "<", "2024-03-23T12:00:01Z")), users, []) == {"d_old"}
    assert run(group(user_rule("seen", "in last", value=1, unit="month")), users, []) == {
        "d_recent",
        "d_edge",
        "d_old",
    }


# --------------------------------------------------------------------------- contains patterns


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("gmail.com|yahoo.com", "ann@GMAIL.COM", True),
        ("gmail.com|yahoo.com", "bob@yahoo.com", True),
        ("gmail.com|yahoo.com", "cy@hotmail.com", False),
        ("gmail.com|yahoo.com", "gmailxcom", False),  # . is a dot, not a wildcard
        ("foo+bar", "BARfoo", True),  # + parts in any order
        ("foo+bar", "foo", False),
        ("f*o", "f-xyz-o", True),
        ("f*o", "fo", True),  # * may match nothing
        ("f*o", "of", False),
        ("a*b*c", "xAyBzC", True),
        ("a+b|c", "c", True),  # | binds loosest
        ("a+b|c", "ba", True),
        ("a+b|c", "a", False),
        ("a\\|b", "xa|by", True),
        ("a\\|b", "b", False),
        ("a\\+b", "A+B", True),
        ("a\\+b", "ab", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a\\\\b", "a\\b", True),
        ("a\\\\b", "ab", False),
        ("100%", "100%", True),
        ("100%", "1000", False),  # % is no SQL wildcard
        ("a_c", "abc", False),  # _ is no SQL wildcard
        ("it's", "IT'S", True),
        ('"hi"', 'say "hi"', True),
    ],
)
def test_contains_pattern_language(pattern: str, text: str, expected: bool) -> None:
    assert reference.pattern_matches(pattern, text) is expected


@pytest.mark.parametrize("pattern", ["|x", "x|", "x||y", ""])
def test_contains_empty_alternative_is_an_error(pattern: str) -> None:
    with pytest.raises(reference.InvalidDefinition):
        reference.pattern_matches(pattern, "x")


def test_begins_and_ends_with_take_the_value_literally(run: Callable[..., set]) -> None:
    users = [
        {"user_id": "star", "email": "A*B@x.org"},
        {"user_id": "plain", "email": "ab@x.org"},
        {"user_id": "pct", "email": "50%_off@x.org"},
    ]
    assert run(group(user_rule("email", "begins with", "a*")), users, []) == {"star"}
    assert run(group(user_rule("email", "begins with", "50%_")), users, []) == {"pct"}
    assert run(group(user_rule("email", "ends with", "X.ORG")), users, []) == {
        "star",
        "plain",
        "pct",
    }


# --------------------------------------------------------------------------- windows


def test_month_clamping() -> None:
    assert reference.shift(dt.datetime(2023, 3, 31, 10), -1, "month") == dt.datetime(
        2023, 2, 28, 10
    )
    assert reference.shift(dt.datetime(2024, 3, 31, 10), -1, "month") == dt.datetime(
        2024, 2, 29, 10
    )
    assert reference.shift(dt.datetime(2024, 1, 31), 1, "month") == dt.datetime(2024, 2, 29)
    assert reference.shift(dt.datetime(2024, 1, 15), -2, "month") == dt.datetime(2023, 11, 15)


def test_month_window_with_clamping_and_offset(run: Callable[..., set]) -> None:
    as_of = dt.datetime(2023, 3, 31, 12)
    users = [{"user_id": u} for u in ("on_start", "after_start", "jan31", "jan31_plus")]
    events = [
        ("on_start", dt.datetime(2023, 2, 28, 12), "Session"),  # as_of - 1 month: excluded
        ("after_start", dt.datetime(2023, 2, 28, 12, 0, 1), "Session"),
        ("jan31", dt.datetime(2023, 1, 31, 12), "Session"),  # as_of - 2 months: excluded
        ("jan31_plus", dt.datetime(2023, 1, 31, 12, 0, 1), "Session"),
    ]
    last = {"kind": "event", "event": "Session", "window": {"last": 1, "unit": "month"}}
    assert run(group(last), users, events, as_of=as_of) == {"after_start"}
    offset = {**last, "window": {"last": 1, "unit": "month", "offset": 1}}
    # as_of - 2 months < time <= as_of - 1 month (both computed from as_of, clamped)
    assert run(group(offset), users, events, as_of=as_of) == {"on_start", "jan31_plus"}


def test_hour_week_windows_and_offset(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("h", "w", "old")]
    events = [
        ("h", AS_OF - dt.timedelta(minutes=59), "Session"),
        ("w", AS_OF - dt.timedelta(days=13), "Session"),
        ("old", AS_OF - dt.timedelta(days=14), "Session"),
    ]
    rule = {"kind": "event", "event": "Session"}
    assert run(group({**rule, "window": {"last": 1, "unit": "hour"}}), users, events) == {"h"}
    assert run(group({**rule, "window": {"last": 2, "unit": "week"}}), users, events) == {"h", "w"}
    offset = {"last": 1, "unit": "week", "offset": 1}
    assert run(group({**rule, "window": offset}), users, events) == {"w"}


def test_from_to_window_is_half_open_and_cut_at_as_of(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("at_from", "before_to", "at_to", "after_as_of")]
    events = [
        ("at_from", dt.datetime(2024, 3, 1), "Session"),
        ("before_to", dt.datetime(2024, 3, 9, 23, 59, 59), "Session"),
        ("at_to", dt.datetime(2024, 3, 10), "Session"),
        ("after_as_of", AS_OF + dt.timedelta(hours=1), "Session"),
    ]
    window = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-10T00:00:00"}
    rule = {"kind": "event", "event": "Session", "window": window}
    assert run(group(rule), users, events) == {"at_from", "before_to"}
    open_end = {**rule, "window": {"from": "2024-03-05"}}
    assert run(group(open_end), users, events) == {"before_to", "at_to"}
    zoned = {**rule, "window": {"to": "2024-03-01T02:00:00+02:00"}}  # = 2024-03-01 00:00 UTC
    assert run(group(zoned), users, events) == set()


# --------------------------------------------------------------------------- counts and aggregates


def test_count_includes_zero_and_between(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("none", "one", "three")]
    events = [("one", AS_OF - DAY, "Session")] + [
        ("three", AS_OF - k * DAY, "Session") for k in (1, 2, 3)
    ]
    rule = {"kind": "event", "event": "Session"}
    assert run(group({**rule, "count": {"operator": "<", "value": 3}}), users, events) == {
        "none",
        "one",
    }
    assert run(group({**rule, "count": {"operator": "=", "value": 0}}), users, events) == {"none"}
    assert run(group({**rule, "count": {"operator": "!=", "value": 1}}), users, events) == {
        "none",
        "three",
    }
    between = {"operator": "between", "value": [1, 3]}
    assert run(group({**rule, "count": between}), users, events) == {"one", "three"}


def test_distinct_period_counts_across_iso_week_boundary(run: Callable[..., set]) -> None:
    # 2024-01-07 is a Sunday, 2024-01-08 a Monday.
    users = [{"user_id": u} for u in ("split", "same_week", "same_hour")]
    events = [
        ("split", dt.datetime(2024, 1, 7, 23, 30), "Session"),
        ("split", dt.datetime(2024, 1, 8, 0, 30), "Session"),
        ("same_week", dt.datetime(2024, 1, 8, 0, 0), "Session"),
        ("same_week", dt.datetime(2024, 1, 14, 23, 59, 59), "Session"),
        ("same_hour", dt.datetime(2024, 1, 10, 9, 0), "Session"),
        ("same_hour", dt.datetime(2024, 1, 10, 9, 59, 59), "Session"),
        ("same_hour", dt.datetime(2024, 1, 10, 9, 30), "Session"),
    ]
    as_of = dt.datetime(2024, 2, 1)

    def at_least_two(unit: str) -> set:
        rule = {
            "kind": "event",
            "event": "Session",
            "count": {"operator": ">=", "value": 2, "unit": unit},
        }
        return run(group(rule), users, events, as_of=as_of)

    assert at_least_two("week") == {"split"}
    assert at_least_two("day") == {"split", "same_week"}
    assert at_least_two("hour") == {"split", "same_week"}
    assert at_least_two("month") == set()
    exactly_one_week = {
        "kind": "event",
        "event": "Session",
        "count": {"operator": "=", "value": 1, "unit": "week"},
    }
    assert run(group(exactly_one_week), users, events, as_of=as_of) == {"same_week", "same_hour"}


def test_aggregates_and_no_value_rules(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("rich", "nulls", "none", "mixed")]
    events = [
        ("rich", AS_OF - DAY, "Order", {"revenue": 60.0}),
        ("rich", AS_OF - 2 * DAY, "Order", {"revenue": 50.0}),
        ("nulls", AS_OF - DAY, "Order", {"revenue": None}),
        ("mixed", AS_OF - DAY, "Order", {"revenue": 10.0}),
        ("mixed", AS_OF - DAY, "Order", {"revenue": None}),
        ("mixed", AS_OF - 3 * DAY, "Order", {"revenue": 10.0}),
    ]

    def agg(fn: str, operator: str, value) -> set:
        rule = {
            "kind": "event",
            "event": "Order",
            "aggregate": {"fn": fn, "field": "revenue", "operator": operator, "value": value},
        }
        return run(group(rule), users, events)

    assert agg("sum", ">=", 100) == {"rich"}
    assert agg("sum", "!=", 110) == {"mixed"}  # no value matches no comparison, != included
    assert agg("avg", "=", 10) == {"mixed"}  # NULLs are left out of the average
    assert agg("min", "<", 55) == {"rich", "mixed"}
    assert agg("max", "between", [55, 60]) == {"rich"}
    assert agg("count_distinct", "=", 0) == {"nulls"}  # no user without events
    assert agg("count_distinct", "=", 1) == {"mixed"}
    assert agg("count_distinct", "<", 5) == {"rich", "nulls", "mixed"}


def test_count_and_aggregate_both_hold(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("a", "b")]
    events = [
        ("a", AS_OF - DAY, "Order", {"revenue": 10.0}),
        ("a", AS_OF - DAY, "Order", {"revenue": 10.0}),
        ("b", AS_OF - DAY, "Order", {"revenue": 30.0}),
    ]
    rule = {
        "kind": "event",
        "event": "Order",
        "count": {"operator": ">=", "value": 1},
        "aggregate": {"fn": "sum", "field": "revenue", "operator": ">", "value": 25},
    }
    assert run(group(rule), users, events) == {"b"}


# --------------------------------------------------------------------------- where, first_time, then


def test_where_with_nested_not_and_null_properties(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("pricing", "null_path", "docs")]
    events = [
        ("pricing", AS_OF - DAY, "Pageview", {"path": "/Pricing/team"}),
        ("null_path", AS_OF - DAY, "Pageview", {"path": None}),
        ("docs", AS_OF - DAY, "Pageview", {"path": "/docs"}),
    ]
    prop = {"kind": "event_property", "field": "path"}
    rule = {"kind": "event", "event": "Pageview"}
    contains = {**prop, "operator": "contains", "value": "/pricing"}
    assert run(group({**rule, "where": group(contains)}), users, events) == {"pricing"}
    not_contains = {**prop, "operator": "not contains", "value": "/pricing"}
    assert run(group({**rule, "where": group(not_contains)}), users, events) == {
        "null_path",
        "docs",
    }
    negated = group(group(contains, negate=True), {**prop, "operator": "is set"})
    assert run(group({**rule, "where": negated}), users, events) == {"docs"}
    assert run(group({**rule, "did": False, "where": group(contains)}), users, events) == {
        "null_path",
        "docs",
    }


def test_first_time_uses_the_first_event_satisfying_where(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("new_to_pricing", "old_to_pricing")]
    events = [
        ("new_to_pricing", AS_OF - 100 * DAY, "Pageview", {"path": "/docs"}),
        ("new_to_pricing", AS_OF - 5 * DAY, "Pageview", {"path": "/pricing"}),
        ("old_to_pricing", AS_OF - 100 * DAY, "Pageview", {"path": "/pricing"}),
        ("old_to_pricing", AS_OF - 5 * DAY, "Pageview", {"path": "/pricing"}),
    ]
    where = group({"kind": "event_property", "field": "path", "operator": "=", "value": "/pricing"})
    rule = {
        "kind": "event",
        "event": "Pageview",
        "first_time": True,
        "window": {"last": 30, "unit": "day"},
    }
    assert run(group({**rule, "where": where}), users, events) == {"new_to_pricing"}
    assert run(group(rule), users, events) == set()


def test_then_sequences_boundaries(run: Callable[..., set]) -> None:
    t0 = AS_OF - 10 * DAY
    users = [
        {"user_id": u}
        for u in ("same_instant", "at_limit", "past_limit", "reversed", "late_first", "unbounded")
    ]
    events = [
        ("same_instant", t0, "Cart"),
        ("same_instant", t0, "Order"),
        ("at_limit", t0, "Cart"),
        ("at_limit", t0 + DAY, "Order"),  # within boundary included
        ("past_limit", t0, "Cart"),
        ("past_limit", t0 + DAY + dt.timedelta(seconds=1), "Order"),
        ("reversed", t0, "Order"),
        ("reversed", t0 + dt.timedelta(hours=1), "Cart"),
        ("late_first", AS_OF - 40 * DAY, "Cart"),  # first event outside the 30-day window
        ("late_first", AS_OF - 39 * DAY, "Order"),
        ("unbounded", AS_OF - 20 * DAY, "Cart"),
        ("unbounded", AS_OF - 1 * DAY, "Order"),
    ]
    rule = {
        "kind": "event",
        "event": "Cart",
        "window": {"last": 30, "unit": "day"},
        "then": {"event": "Order", "within": {"value": 1, "unit": "day"}},
    }
    assert run(group(rule), users, events) == {"at_limit"}
    no_within = {**rule, "then": {"event": "Order"}}
    assert run(group(no_within), users, events) == {"at_limit", "past_limit", "unbounded"}
    assert run(group({**rule, "did": False}), users, events) == {
        "same_instant",
        "past_limit",
        "reversed",
        "late_first",
        "unbounded",
    }
    no_window = {k: v for k, v in no_within.items() if k != "window"}
    assert run(group(no_window), users, events) == {
        "at_limit",
        "past_limit",
        "late_first",
        "unbounded",
    }


def test_then_second_event_window_is_only_as_of_and_where(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("paid", "free", "after_as_of")]
    events = [
        ("paid", AS_OF - 2 * DAY, "Cart"),
        ("paid", AS_OF - DAY, "Order", {"revenue": 5.0}),
        ("free", AS_OF - 2 * DAY, "Cart"),
        ("free", AS_OF - DAY, "Order", {"revenue": 0.0}),
        ("after_as_of", AS_OF - 2 * DAY, "Cart"),
        ("after_as_of", AS_OF + dt.timedelta(minutes=1), "Order", {"revenue": 5.0}),
    ]
    where = group({"kind": "event_property", "field": "revenue", "operator": ">", "value": 0})
    # The window covers only the first event; the Order may lie after the window's end.
    rule = {
        "kind": "event",
        "event": "Cart",
        "window": {"from": "2024-03-01", "to": "2024-03-30"},
        "then": {"event": "Order", "where": where},
    }
    assert run(group(rule), users, events) == {"paid"}


def test_same_event_followed_by_itself(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("twice", "once", "same_time")]
    events = [
        ("twice", AS_OF - 3 * DAY, "Session"),
        ("twice", AS_OF - 2 * DAY, "Session"),
        ("once", AS_OF - 3 * DAY, "Session"),
        ("same_time", AS_OF - 3 * DAY, "Session"),
        ("same_time", AS_OF - 3 * DAY, "Session"),
    ]
    rule = {
        "kind": "event",
        "event": "Session",
        "then": {"event": "Session", "within": {"value": 1, "unit": "week"}},
    }
    assert run(group(rule), users, events) == {"twice"}


# --------------------------------------------------------------------------- funnels

FUNNEL_STEPS = ("Session", "Add to Cart", "Completed Order")


def funnel(*steps: str, **keys: Any) -> dict:
    """A funnel rule over ``steps`` (event names), within 7 days, entering in the last 30 days,
    unless ``keys`` say otherwise."""
    rule: dict[str, Any] = {
        "kind": "funnel",
        "steps": [{"event": name} for name in steps or FUNNEL_STEPS],
        "within": {"value": 7, "unit": "day"},
        "window": {"last": 30, "unit": "day"},
    }
    rule.update(keys)
    return {k: v for k, v in rule.items() if v is not None}


def test_funnel_steps_boundaries(run: Callable[..., set]) -> None:
    """Same instant (no pair), one microsecond later (a pair), exactly on the within limit
    (counts), one microsecond past it, steps out of order, a last step after as_of."""
    t = AS_OF - 10 * DAY
    hour, micro = dt.timedelta(hours=1), dt.timedelta(microseconds=1)
    paid = {"revenue": 5.0}
    users = [
        {"user_id": u}
        for u in (
            "complete",
            "same_instant",
            "one_micro",
            "at_limit",
            "past_limit",
            "out_of_order",
            "after_as_of",
            "free_order",
            "never",
        )
    ]
    events = [
        ("complete", t, "Session"),
        ("complete", t + hour, "Add to Cart"),
        ("complete", t + 2 * hour, "Completed Order", paid),
        ("same_instant", t, "Session"),
        ("same_instant", t, "Add to Cart"),
        ("same_instant", t + hour, "Completed Order", paid),
        ("one_micro", t, "Session"),
        ("one_micro", t + micro, "Add to Cart"),
        ("at_limit", t, "Session"),
        ("at_limit", t + hour, "Add to Cart"),
        ("at_limit", t + 7 * DAY, "Completed Order", paid),
        ("past_limit", t, "Session"),
        ("past_limit", t + hour, "Add to Cart"),
        ("past_limit", t + 7 * DAY + micro, "Completed Order", paid),
        ("out_of_order", t, "Session"),
        ("out_of_order", t + hour, "Completed Order", paid),
        ("out_of_order", t + 2 * hour, "Add to Cart"),
        ("after_as_of", AS_OF - DAY, "Session"),
        ("after_as_of", AS_OF - hour, "Add to Cart"),
        ("after_as_of", AS_OF + micro, "Completed Order", paid),
        ("free_order", t, "Session"),
        ("free_order", t + hour, "Add to Cart"),
        ("free_order", t + 2 * hour, "Completed Order", {"revenue": 0.0}),
        ("never", AS_OF - DAY, "Pageview"),
    ]
    entered = {u["user_id"] for u in users} - {"never"}
    assert run(group(funnel()), users, events) == {"complete", "at_limit", "free_order"}
    second = {"complete", "one_micro", "at_limit", "past_limit", "out_of_order", "after_as_of"}
    assert run(group(funnel(reached=2)), users, events) == second | {"free_order"}
    assert run(group(funnel(reached=1)), users, events) == entered
    assert run(group(funnel(reached=1, not_reached=2)), users, events) == {"same_instant"}
    assert run(group(funnel(reached=2, not_reached=3)), users, events) == {
        "one_micro",
        "past_limit",
        "out_of_order",
        "after_as_of",
    }
    # No deadline: one microsecond past the limit counts.
    no_limit = funnel(within=None)
    assert run(group(no_limit), users, events) == {
        "complete",
        "at_limit",
        "past_limit",
        "free_order",
    }
    # A step's where: a free order is not the last step.
    paid_order = {"kind": "event_property", "field": "revenue", "operator": ">", "value": 0}
    steps = [{"event": "Session"}, {"event": "Add to Cart"}]
    steps.append({"event": "Completed Order", "where": group(paid_order)})
    assert run(group(funnel(steps=steps)), users, events) == {"complete", "at_limit"}
    # not around a funnel: its complement among the users.
    assert run(group(group(funnel(reached=2)), negate=True), users, events) == {
        "same_instant",
        "never",
    }


def test_funnel_entry_window_and_as_of(run: Callable[..., set]) -> None:
    """The entry is the first step-1 event inside the window, once; later steps may lie
    outside the window; events after as_of and users who had not joined take no part."""
    hour = dt.timedelta(hours=1)
    users = [
        {"user_id": "entry_in_window", "joined_at": AS_OF - 100 * DAY},
        {"user_id": "outside_only"},
        {"user_id": "no_second_attempt"},
        {"user_id": "entry_after_as_of"},
        {"user_id": "not_joined", "joined_at": AS_OF + DAY},
    ]
    events = [
        ("entry_in_window", AS_OF - 40 * DAY, "Session"),  # before the window: not the entry
        ("entry_in_window", AS_OF - 5 * DAY, "Session"),
        ("entry_in_window", AS_OF - 4 * DAY, "Add to Cart"),
        ("outside_only", AS_OF - 40 * DAY, "Session"),
        ("outside_only", AS_OF - 39 * DAY, "Add to Cart"),
        ("no_second_attempt", AS_OF - 20 * DAY, "Session"),  # the entry
        ("no_second_attempt", AS_OF - 6 * DAY, "Session"),
        ("no_second_attempt", AS_OF - 5 * DAY, "Add to Cart"),  # 15 days after the entry
        ("entry_after_as_of", AS_OF - 2 * DAY, "Pageview"),
        ("entry_after_as_of", AS_OF + hour, "Session"),
        ("entry_after_as_of", AS_OF + 2 * hour, "Add to Cart"),
        ("not_joined", AS_OF - 2 * DAY, "Session"),
        ("not_joined", AS_OF - DAY, "Add to Cart"),
    ]
    two = funnel("Session", "Add to Cart")
    assert run(group(two), users, events) == {"entry_in_window"}
    entered = funnel("Session", "Add to Cart", reached=1)
    assert run(group(entered), users, events) == {"entry_in_window", "no_second_attempt"}
    assert run(group(two, negate=True), users, events) == {
        "outside_only",
        "no_second_attempt",
        "entry_after_as_of",
    }
    # A from/to window bounds the entry only: the second step may come after "to".
    window = {"from": (AS_OF - 45 * DAY).isoformat(), "to": (AS_OF - 30 * DAY).isoformat()}
    early = funnel("Session", "Add to Cart", window=window)
    assert run(group(early), users, events) == {"outside_only"}
    # Without a window the entry is the first step-1 event ever (none after as_of).
    ever = funnel("Session", "Add to Cart", window=None)
    assert run(group(ever), users, events) == {"outside_only"}


def test_funnel_repeated_step_name_and_merges(run: Callable[..., set]) -> None:
    """Session -> Session needs a second, strictly later Session; merged identities' events
    count for the user they were merged into."""
    t = AS_OF - 3 * DAY
    hour = dt.timedelta(hours=1)
    users = [
        {"user_id": u}
        for u in ("one_session", "two_sessions", "same_instant", "cart_between", "merged")
    ]
    events = [
        ("one_session", t, "Session"),
        ("one_session", t + hour, "Add to Cart"),
        ("two_sessions", t, "Session"),
        ("two_sessions", t + hour, "Session"),
        ("two_sessions", t + 2 * hour, "Add to Cart"),
        ("same_instant", t, "Session"),
        ("same_instant", t, "Session"),
        ("same_instant", t + hour, "Add to Cart"),
        ("cart_between", t, "Session"),
        ("cart_between", t + hour, "Add to Cart"),
        ("cart_between", t + 2 * hour, "Session"),
        ("anon", t, "Session"),
        ("merged", t + hour, "Session"),
        ("anon", t + 2 * hour, "Add to Cart"),
    ]
    migrations = pd.DataFrame({"from_user_id": ["anon"], "to_user_id": ["merged"]})
    steps = ("Session", "Session", "Add to Cart")
    day = {"value": 1, "unit": "day"}
    full = funnel(*steps, within=day)
    assert run(group(full), users, events, migrations=migrations) == {"two_sessions", "merged"}
    dropped = funnel(*steps, within=day, reached=2, not_reached=3)
    assert run(group(dropped), users, events, migrations=migrations) == {"cart_between"}
    stuck = funnel(*steps, within=day, reached=1, not_reached=2)
    assert run(group(stuck), users, events, migrations=migrations) == {
        "one_session",
        "same_instant",
    }
    # Unmerged, "merged" has one Session and no cart.
    assert run(group(stuck), users, events) == {"one_session", "same_instant", "merged"}


# --------------------------------------------------------------------------- segments, merges, data rules


def test_segment_references(run: Callable[..., set]) -> None:
    users = [{"user_id": u, "plan": p} for u, p in (("a", "trial"), ("b", "paid"), ("c", None))]
    segments = {
        "trials": group(user_rule("plan", "=", "trial")),
        "uses_trials": group({"kind": "segment", "id": "trials", "in": False}),
        "frozen": ["b", "gone"],  # "gone" has left users
    }
    ref = {"kind": "segment", "id": "trials"}
    assert run(group(ref), users, [], segments=segments) == {"a"}
    assert run(group({"kind": "segment", "id": "uses_trials"}), users, [], segments=segments) == {
        "b",
        "c",
    }
    assert run(group({"kind": "segment", "id": "frozen"}), users, [], segments=segments) == {"b"}
    out = {"kind": "segment", "id": "frozen", "in": False}
    assert run(group(out), users, [], segments=segments) == {"a", "c"}


def test_segment_reference_errors(run: Callable[..., set]) -> None:
    users = [{"user_id": "a"}]
    loop = {"x": group({"kind": "segment", "id": "y"}), "y": group({"kind": "segment", "id": "x"})}
    with pytest.raises(reference.InvalidDefinition, match="cycle"):
        run(group({"kind": "segment", "id": "x"}), users, [], segments=loop)
    with pytest.raises(reference.InvalidDefinition, match="unknown segment"):
        run(group({"kind": "segment", "id": "nope"}), users, [], segments=loop)


def test_identity_merge_and_unknown_users(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("merged_into", "plain", "from_still_here")]
    events = [
        ("anon1", AS_OF - DAY, "Session"),
        ("anon2", AS_OF - DAY, "Session"),
        ("merged_into", AS_OF - DAY, "Session"),
        ("plain", AS_OF - DAY, "Session"),
        ("from_still_here", AS_OF - DAY, "Session"),
        ("stranger", AS_OF - DAY, "Session"),  # not a user: ignored
    ]
    migrations = pd.DataFrame(
        {"from_user_id": ["anon1", "anon2", "from_still_here"], "to_user_id": ["merged_into"] * 3}
    )
    rule = {"kind": "event", "event": "Session", "count": {"operator": ">=", "value": 2}}
    assert run(group(rule), users, events, migrations=migrations) == {"merged_into"}
    assert run(group(rule), users, events) == set()
    none = {"kind": "event", "event": "Session", "did": False}
    assert run(group(none), users, events, migrations=migrations) == {"from_still_here"}


def test_integer_user_ids_and_tz_aware_as_of() -> None:
    users = pd.DataFrame({"user_id": [1, 2]})
    events = pd.DataFrame(
        {
            "user_id": [1, 2],
            "time": pd.Series(
                [dt.datetime(2024, 3, 31, 11), dt.datetime(2024, 3, 31, 13)], dtype="datetime64[us]"
            ).dt.tz_localize("UTC"),
            "event": ["Session", "Session"],
        }
    )
    as_of = dt.datetime(2024, 3, 31, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # 12:00 UTC
    rule = {"kind": "event", "event": "Session"}
    assert reference.evaluate(group(rule), users, events, None, as_of) == {1}


# --------------------------------------------------------------------------- point in time: joining

US = dt.timedelta(microseconds=1)
SESSION = {"kind": "event", "event": "Session"}
NO_SESSION = {"kind": "event", "event": "Session", "did": False}


def test_joined_at_decides_who_is_a_user_boundary_included(run: Callable[..., set]) -> None:
    users = [
        {"user_id": "at", "joined_at": AS_OF},  # joined exactly at as_of: a user
        {"user_id": "us_after", "joined_at": AS_OF + US},  # one microsecond later: not yet
        {"user_id": "us_before", "joined_at": AS_OF - US},
        {"user_id": "early_events", "joined_at": AS_OF + DAY},  # events before joining: not yet
        {"user_id": "old_events", "joined_at": AS_OF - DAY},  # events before joined_at count
        {"user_id": "null_event_before", "joined_at": None},  # first event decides
        {"user_id": "null_event_at", "joined_at": None},
        {"user_id": "null_event_us_after", "joined_at": None},
        {"user_id": "null_only_future", "joined_at": None},
        {"user_id": "null_no_events", "joined_at": None},  # neither: a user at every as_of
    ]
    events = [
        ("early_events", AS_OF - 5 * DAY, "Session"),
        ("old_events", AS_OF - 10 * DAY, "Session"),
        ("null_event_before", AS_OF - 3 * DAY, "Pageview"),  # any event name joins
        ("null_event_before", AS_OF + DAY, "Session"),
        ("null_event_at", AS_OF, "Pageview"),
        ("null_event_us_after", AS_OF + US, "Session"),
        ("null_only_future", AS_OF + DAY, "Session"),
    ]
    joined = {
        "at",
        "us_before",
        "old_events",
        "null_event_before",
        "null_event_at",
        "null_no_events",
    }
    assert run(group(), users, events) == joined
    assert run(group(combinator="or"), users, events) == joined
    assert run(group(NO_SESSION), users, events) == joined - {"old_events"}
    assert run(group({**SESSION, "window": {"last": 30, "unit": "day"}}), users, events) == {
        "old_events"
    }
    assert run(group(user_rule("plan", "is set"), negate=True), users, events) == joined
    everyone = {u["user_id"] for u in users}
    assert run(group(), users, events, joining=False) == everyone
    assert run(group(NO_SESSION), users, events, joining=False) == everyone - {
        "early_events",
        "old_events",
    }
    # One microsecond later, the two on the boundary have joined.
    later = AS_OF + US
    assert run(group(), users, events, as_of=later) == joined | {"us_after", "null_event_us_after"}


def test_date_joined_at_is_its_midnight(run: Callable[..., set]) -> None:
    midnight = dt.datetime(2024, 3, 31)
    users = [
        {"user_id": "today", "joined_at": dt.date(2024, 3, 31)},
        {"user_id": "tomorrow", "joined_at": dt.date(2024, 4, 1)},
        {"user_id": "unset", "joined_at": None},
    ]
    assert run(group(), users, [], as_of=midnight) == {"today", "unset"}
    assert run(group(), users, [], as_of=midnight - US) == {"unset"}


def test_first_event_joining_counts_after_identity_merges(run: Callable[..., set]) -> None:
    users = [{"user_id": u} for u in ("target", "source_in_users", "other", "future", "quiet")]
    events = [
        ("target", AS_OF + DAY, "Session"),
        ("anon1", AS_OF - DAY, "Pageview"),  # merged into target: target joined a day ago
        ("source_in_users", AS_OF - DAY, "Session"),  # moved to other: source has no events
        ("other", AS_OF + DAY, "Session"),
        ("future", AS_OF + DAY, "Session"),
        ("stranger", AS_OF - DAY, "Session"),  # not a user
    ]
    migrations = pd.DataFrame(
        {"from_user_id": ["anon1", "source_in_users"], "to_user_id": ["target", "other"]}
    )
    joined = run(group(), users, events, migrations=migrations)
    assert joined == {"target", "source_in_users", "other", "quiet"}
    without_merges = run(group(), users, events)
    assert without_merges == {"source_in_users", "quiet"}


def test_users_who_had_not_joined_are_in_no_segment(run: Callable[..., set]) -> None:
    users = [
        {"user_id": "in", "plan": "trial", "joined_at": AS_OF - DAY},
        {"user_id": "out", "plan": "trial", "joined_at": AS_OF + DAY},
        {"user_id": "out_unset", "plan": None, "joined_at": AS_OF + US},
        {"user_id": "in_paid", "plan": "paid", "joined_at": AS_OF},
    ]
    segments = {
        "trials": group(user_rule("plan", "=", "trial")),
        "everyone": group(),
        "frozen": ["in", "out", "out_unset", "gone"],  # frozen members that had not joined drop
    }

    def sel(*rules: dict, **kw: Any) -> set:
        return run(group(*rules, **kw), users, [], segments=segments)

    assert sel(NO_SESSION) == {"in", "in_paid"}
    assert sel(user_rule("plan", "=", "trial"), negate=True) == {"in_paid"}
    assert sel(user_rule("plan", "!=", "trial")) == {"in_paid"}
    assert sel(user_rule("plan", "is not set")) == set()
    assert sel({"kind": "segment", "id": "trials", "in": False}) == {"in_paid"}
    assert sel({"kind": "segment", "id": "trials"}) == {"in"}
    assert sel({"kind": "segment", "id": "everyone"}) == {"in", "in_paid"}
    assert sel({"kind": "segment", "id": "everyone", "in": False}) == set()
    assert sel({"kind": "segment", "id": "frozen"}) == {"in"}
    assert sel({"kind": "segment", "id": "frozen", "in": False}) == {"in_paid"}
    either = sel(user_rule("plan", "=", "trial"), NO_SESSION, combinator="or", negate=True)
    assert either == set()


def test_total_is_the_number_of_joined_users() -> None:
    users = users_frame(
        [
            {"user_id": "a", "joined_at": AS_OF},
            {"user_id": "b", "joined_at": AS_OF + US},
            {"user_id": "c"},
        ]
    )
    events = events_frame([("c", AS_OF + DAY, "Session")])
    data = reference.load(users, events, ACCOUNTS, AS_OF)
    assert reference.total(data) == 1
    assert reference.total(reference.load(users, events, ACCOUNTS, AS_OF + DAY)) == 3
    assert reference.total(reference.load(users, events, ACCOUNTS, AS_OF, joining=False)) == 3


# --------------------------------------------------------------------------- point in time: history


def snapshot(user: str, valid_from: dt.datetime, valid_to: dt.datetime | None, **props) -> dict:
    return {"user_id": user, "valid_from": valid_from, "valid_to": valid_to, **props}


def change(user: str, time: dt.datetime, **props) -> dict:
    return {"user_id": user, "time": time, **props}


def test_snapshots_boundaries_overlaps_and_ties(run: Callable[..., set]) -> None:
    names = (
        "from_at",
        "to_at",
        "to_us_after",
        "from_us_after",
        "overlap",
        "newer_ended",
        "tie",
        "tie_with_null",
        "latest_null",
        "inverted",
        "no_rows",
    )
    # The current values never show through for a tracked property; email is not tracked.
    users = [{"user_id": u, "plan": "current", "email": "e@x.org"} for u in names]
    rows = [
        snapshot("from_at", AS_OF, None, plan="paid"),  # valid_from == as_of matches
        snapshot("to_at", AS_OF - 10 * DAY, AS_OF, plan="paid"),  # valid_to == as_of does not
        snapshot("to_us_after", AS_OF - 10 * DAY, AS_OF + US, plan="paid"),
        snapshot("from_us_after", AS_OF + US, None, plan="paid"),
        snapshot("overlap", AS_OF - 10 * DAY, None, plan="free"),
        snapshot("overlap", AS_OF - 5 * DAY, AS_OF + DAY, plan="paid"),  # the latest valid_from
        snapshot("newer_ended", AS_OF - 10 * DAY, None, plan="paid"),
        snapshot("newer_ended", AS_OF - 5 * DAY, AS_OF - DAY, plan="free"),
        snapshot("tie", AS_OF - 2 * DAY, None, plan="alpha"),
        snapshot("tie", AS_OF - 2 * DAY, None, plan="beta"),  # same valid_from: the greatest
        snapshot("tie_with_null", AS_OF - 2 * DAY, None, plan=None),
        snapshot("tie_with_null", AS_OF - 2 * DAY, AS_OF + DAY, plan="alpha"),
        snapshot("latest_null", AS_OF - 10 * DAY, None, plan="paid"),
        snapshot("latest_null", AS_OF - DAY, None, plan=None),  # no fall back to an older row
        snapshot("inverted", AS_OF - DAY, AS_OF - 2 * DAY, plan="paid"),  # never matches
        snapshot("ghost", AS_OF - DAY, None, plan="paid"),  # not a user
    ]
    for row in rows:
        row["note"] = "ignored"
    history = history_frame("user_id", rows)

    def sel(rule: dict, **kw: Any) -> set:
        return run(group(rule), users, [], user_history=history, **kw)

    assert sel(user_rule("plan", "=", "paid")) == {
        "from_at",
        "to_us_after",
        "overlap",
        "newer_ended",
    }
    assert sel(user_rule("plan", "is not set")) == {
        "to_at",
        "from_us_after",
        "latest_null",
        "inverted",
        "no_rows",
    }
    assert sel(user_rule("plan", "=", "beta")) == {"tie"}
    assert sel(user_rule("plan", "=", "alpha")) == {"tie_with_null"}
    assert sel(user_rule("plan", "=", "current")) == set()
    assert sel(user_rule("email", "=", "e@x.org")) == set(names)
    # A microsecond earlier: from_at has no row yet, to_at's row still holds.
    earlier = AS_OF - US
    assert sel(user_rule("plan", "=", "paid"), as_of=earlier) == {
        "to_at",
        "to_us_after",
        "overlap",
        "newer_ended",
    }


def test_snapshots_without_valid_to_column(run: Callable[..., set]) -> None:
    users = [{"user_id": u, "plan": "current"} for u in ("a", "b")]
    history = history_frame(
        "user_id",
        [
            {"user_id": "a", "valid_from": AS_OF - 2 * DAY, "plan": "free"},
            {"user_id": "a", "valid_from": AS_OF - DAY, "plan": "paid"},
            {"user_id": "b", "valid_from": AS_OF + US, "plan": "paid"},
        ],
    )
    paid = group(user_rule("plan", "=", "paid"))
    unset = group(user_rule("plan", "is not set"))
    assert run(paid, users, [], user_history=history) == {"a"}
    assert run(unset, users, [], user_history=history) == {"b"}
    assert run(unset, users, [], user_history=history, as_of=AS_OF - 3 * DAY) == {"a", "b"}


def test_changes_partial_rows_boundaries_and_ties(run: Callable[..., set]) -> None:
    names = ("partial", "at", "us_after", "tie", "emptied", "null_keeps", "none_yet", "no_rows")
    users = [{"user_id": u, "plan": "current", "ltv": 1.0} for u in names]
    rows = [
        change("partial", AS_OF - 3 * DAY, plan="free", ltv=5.0),
        change("partial", AS_OF - DAY, ltv=7.0),  # sets ltv only: plan stays free
        change("at", AS_OF, plan="paid"),  # time == as_of counts; ltv never set
        change("us_after", AS_OF - DAY, plan="free"),
        change("us_after", AS_OF + US, plan="paid"),  # not yet
        change("tie", AS_OF - DAY, plan="alpha", ltv=9.0),
        change("tie", AS_OF - DAY, plan="beta"),
        change("tie", AS_OF - DAY, ltv=3.0),
        change("emptied", AS_OF - 2 * DAY, plan="paid"),
        change("emptied", AS_OF - DAY, plan=""),  # "" is set by the row, and is unset
        change("null_keeps", AS_OF - 2 * DAY, plan="paid"),
        change("null_keeps", AS_OF - DAY, plan=None, ltv=2.0),
        change("none_yet", AS_OF + DAY, plan="paid", ltv=8.0),
        change("ghost", AS_OF - DAY, plan="paid"),
    ]
    for row in rows:
        row["note"] = "ignored"
    history = history_frame("user_id", rows)

    def sel(rule: dict, **kw: Any) -> set:
        return run(group(rule), users, [], user_history=history, **kw)

    assert sel(user_rule("plan", "=", "paid")) == {"at", "null_keeps"}
    assert sel(user_rule("plan", "=", "free")) == {"partial", "us_after"}
    assert sel(user_rule("plan", "=", "beta")) == {"tie"}
    assert sel(user_rule("plan", "is not set")) == {"emptied", "none_yet", "no_rows"}
    assert sel(user_rule("ltv", ">", 6)) == {"partial", "tie"}
    assert sel(user_rule("ltv", "is not set")) == {
        "at",
        "us_after",
        "emptied",
        "none_yet",
        "no_rows",
    }
    assert sel(user_rule("ltv", "=", 1.0)) == set()  # the current value never shows through
    assert sel(user_rule("plan", "=", "paid"), as_of=AS_OF + US) == {"at", "us_after", "null_keeps"}


def test_account_at_as_of_through_user_and_account_history(run: Callable[..., set]) -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3"],
            "tier": pd.Series(["gold", "silver", "platinum"], dtype="string"),
        }
    )
    users = [
        {"user_id": "mover", "account_id": "a2"},
        {"user_id": "stayer", "account_id": "a1"},
        {"user_id": "dangler", "account_id": "a1"},
        {"user_id": "no_row", "account_id": "a1"},  # tracked account_id unset: no account
        {"user_id": "on_a3", "account_id": "a1"},
    ]
    user_history = history_frame(
        "user_id",
        [
            snapshot("mover", AS_OF - 10 * DAY, AS_OF - DAY, account_id="a1"),
            snapshot("mover", AS_OF - DAY, None, account_id="a2"),
            snapshot("stayer", AS_OF - 10 * DAY, None, account_id="a1"),
            snapshot("dangler", AS_OF - 10 * DAY, None, account_id="a9"),
            snapshot("on_a3", AS_OF - 10 * DAY, None, account_id="a3"),
        ],
    )
    account_history = history_frame(
        "account_id",
        [
            {"account_id": "a1", "time": AS_OF - 30 * DAY, "tier": "bronze"},
            {"account_id": "a1", "time": AS_OF - 5 * DAY, "tier": "gold"},
            {"account_id": "a2", "time": AS_OF - 30 * DAY, "tier": "silver"},
            {"account_id": "a9", "time": AS_OF - 30 * DAY, "tier": "gold"},  # not an account
            # a3 has no history row: its tier is unset, not "platinum"
        ],
    )
    kw = {"accounts": accounts, "user_history": user_history, "account_history": account_history}

    def tier(operator: str, value: Any = None, **more: Any) -> set:
        rule = {"kind": "account", "field": "tier", "operator": operator}
        if value is not None:
            rule["value"] = value
        return run(group(rule), users, [], **kw, **more)

    assert tier("=", "gold") == {"stayer"}
    assert tier("=", "silver") == {"mover"}
    assert tier("is not set") == {"dangler", "no_row", "on_a3"}
    assert tier("=", "gold", as_of=AS_OF - 2 * DAY) == {"mover", "stayer"}
    assert tier("=", "bronze", as_of=AS_OF - 6 * DAY) == {"mover", "stayer"}
    # Without the user history, the users' account_id (current) links to the history of accounts.
    no_user_history = {**kw, "user_history": None}
    got = run(
        group({"kind": "account", "field": "tier", "operator": "=", "value": "gold"}),
        users,
        [],
        **no_user_history,
    )
    assert got == {"stayer", "dangler", "no_row", "on_a3"}


def test_user_history_without_account_id_keeps_the_users_account(run: Callable[..., set]) -> None:
    users = [{"user_id": "u", "account_id": "a1", "plan": "x"}, {"user_id": "v", "plan": "x"}]
    history = history_frame("user_id", [snapshot("u", AS_OF - DAY, None, plan="paid")])
    gold = group({"kind": "account", "field": "tier", "operator": "=", "value": "gold"})
    assert run(gold, users, [], user_history=history) == {"u"}
    assert run(group(user_rule("plan", "=", "paid")), users, [], user_history=history) == {"u"}


def test_history_reference_details() -> None:
    users = users_frame([{"user_id": "u", "plan": "x"}])
    events = events_frame([])
    rows = [snapshot("u", AS_OF - DAY, None, plan="paid", note="n")]
    history = history_frame("user_id", rows)
    assert reference.tracked_properties(history, users, "user_id") == ["plan"]
    assert reference.history_form(history) == "snapshots"
    assert reference.history_form(history_frame("user_id", [change("u", AS_OF)])) == "changes"
    with pytest.raises(reference.InvalidDefinition, match="valid_from or a time"):
        reference.history_form(history.drop(columns=["valid_from"]))
    with pytest.raises(reference.InvalidDefinition, match="unknown property"):
        reference.evaluate(
            group(user_rule("note", "=", "n")), users, events, None, AS_OF, user_history=history
        )
    data = reference.load(users, events, None, AS_OF, user_history=history)
    assert data.user_values["plan"] == {"u": "paid"}


def test_ties_take_the_greatest_value_of_every_type(run: Callable[..., set]) -> None:
    """Rows at the same valid_from (snapshots) or time (changes): the greatest non-NULL value,
    for strings (by code point), numbers, booleans (true > false), dates and timestamps."""
    t = AS_OF - DAY
    tied = [
        {"plan": "Zed", "ltv": 2.5, "opt_in": False, "signup": dt.date(2024, 1, 2), "seen": t},
        {"plan": "abc", "ltv": -1.0, "opt_in": True, "signup": dt.date(2024, 1, 1), "seen": AS_OF},
        {"plan": None, "ltv": None, "opt_in": None, "signup": None, "seen": None},
    ]
    users = [{"user_id": "u"}, {"user_id": "other"}]
    forms = {
        "snapshots": [snapshot("u", t, None, **props) for props in tied],
        "changes": [change("u", t, **props) for props in tied],
    }
    for rows in forms.values():
        history = history_frame("user_id", rows)

        def sel(rule: dict, history: pd.DataFrame = history) -> set:
            return run(group(rule), users, [], user_history=history)

        assert sel(user_rule("plan", "=", "abc")) == {"u"}  # "a" > "Z" by code point
        assert sel(user_rule("ltv", "=", 2.5)) == {"u"}
        assert sel(user_rule("opt_in", "=", True)) == {"u"}
        assert sel(user_rule("signup", "=", "2024-01-02")) == {"u"}
        assert sel(user_rule("seen", "=", AS_OF.isoformat())) == {"u"}
        assert sel(user_rule("plan", "is not set")) == {"other"}
