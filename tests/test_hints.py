"""Values the data does not hold: a warning with the nearest values, checked once per property."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import heapseg
from heapseg import account, did, event_prop, user
from heapseg import dataset as dataset_module
from heapseg.hints import UnknownValueWarning, check_value, value_hint
from heapseg.model import PropertyRule
from tests.data_helpers import AS_OF, dataset, events_frame, users_frame

USERS = [
    {"user_id": "u1", "plan": "paid", "email": "a@x.io", "account_id": "a1", "visits": 3},
    {"user_id": "u2", "plan": "trial", "account_id": "a2", "visits": 7},
    {"user_id": "u3", "plan": "paid", "email": "c@x.io", "account_id": "a1"},
    {"user_id": "u4", "plan": "Free"},
]
ACCOUNTS = [{"account_id": "a1", "tier": "gold"}, {"account_id": "a2", "tier": "silver"}]
EVENTS = [
    ("u1", "2024-03-01", "Add to Cart", {"path": "/Electronics/tv"}),
    ("u2", "2024-03-02", "Add to Cart", {"path": "/Kitchen/pan"}),
    ("u3", "2024-03-03", "View", {"path": "/home"}),
]


@pytest.fixture(scope="module")
def ds() -> heapseg.Dataset:
    return dataset(USERS, EVENTS, ACCOUNTS, as_of=AS_OF)


def hints(ds, segment) -> list[str]:
    """The value warnings counting ``segment`` gives (and the count must still be right)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds.count(segment)
    return [str(w.message) for w in caught if issubclass(w.category, UnknownValueWarning)]


# ---------------------------------------------------------------------------- the words


def test_a_value_in_another_case_says_so():
    said = value_hint("Gold", ["bronze", "gold", "silver"])
    assert said == "the data has 'gold' (= and in compare case-sensitively; contains does not)"


def test_a_misspelt_value_gets_the_nearest():
    assert value_hint("Electroncs", ["Books", "Electronics", "Toys"]) == (
        "did you mean 'Electronics'?"
    )
    # Closeness ignores case too: 'electronic' is near 'Electronics'.
    assert value_hint("electronic", ["Books", "Electronics"]) == "did you mean 'Electronics'?"


def test_a_value_near_nothing_lists_some_values():
    assert value_hint("zzz", ["a", "b"]) == "the data's values include 'a', 'b'"


# ---------------------------------------------------------------------------- in code


def test_an_account_value_in_the_wrong_case_warns_with_the_right_one(ds):
    said = hints(ds, account.tier == "Gold")
    assert said == [
        "rules[0].value: no account has tier 'Gold'; the data has 'gold' "
        "(= and in compare case-sensitively; contains does not)"
    ]
    assert ds.count(account.tier == "Gold") == 0  # still allowed: a warning, not an error


def test_user_values_and_lists_and_negations(ds):
    assert hints(ds, user.plan == "piad") == [
        "rules[0].value: no user has plan 'piad'; did you mean 'paid'?"
    ]
    said = hints(ds, {"rules": [{"kind": "user", "field": "plan", "operator": "in",
                                 "value": ["paid", "free", "trail"]}]})  # fmt: skip
    assert len(said) == 2
    assert "'free'; the data has 'Free'" in said[0]
    assert "'trail'; did you mean 'trial'?" in said[1]
    assert len(hints(ds, user.plan != "Paid")) == 1


def test_event_property_values_in_where_filters(ds):
    rule = did("View").where(event_prop("path") == "/Home")
    assert hints(ds, rule) == [
        "rules[0].where.rules[0].value: no event has path '/Home'; the data has '/home' "
        "(= and in compare case-sensitively; contains does not)"
    ]


def test_values_the_data_holds_and_other_operators_are_quiet(ds):
    assert hints(ds, (user.plan == "paid") & (account.tier == "gold")) == []
    assert hints(ds, user.plan.contains("PAI")) == []  # contains ignores case
    assert hints(ds, user.visits == 99) == []  # numbers are not checked
    assert hints(ds, did("View").where(event_prop("path") == "/home")) == []


def test_the_known_values_are_the_datas_distinct_values(ds):
    frame = users_frame(USERS)
    assert ds.known_values("user", "plan") == sorted(frame["plan"].dropna().unique())
    assert ds.known_values("user", "email") == sorted(frame["email"].dropna().unique())
    assert ds.known_values("event_property", "path") == sorted(
        events_frame(EVENTS)["path"].dropna().unique()
    )
    assert ds.known_values("user", "visits") is None  # not a string column
    assert ds.known_values("user", "nope") is None


def test_a_property_with_too_many_values_is_not_checked(monkeypatch):
    many = dataset(USERS, EVENTS, ACCOUNTS, as_of=AS_OF)
    monkeypatch.setattr(dataset_module, "VALUE_CHECK_LIMIT", 2)
    assert many.known_values("user", "plan") is None  # three values: some could be missing
    assert hints(many, user.plan == "nope") == []
    assert many.known_values("account", "tier") == ["gold", "silver"]


def test_values_are_read_once_per_property_not_per_count(monkeypatch):
    fresh = dataset(USERS, EVENTS, ACCOUNTS, as_of=AS_OF)
    fresh.event_names()
    queries = []
    original = fresh.execute
    monkeypatch.setattr(fresh, "execute", lambda expr: queries.append(expr) or original(expr))
    for _ in range(3):
        hints(fresh, (user.plan == "Paid") & did("View").where(event_prop("path") == "/x"))
        hints(fresh, user.plan.isin(["paid", "x"]))
    values_queries = [q for q in queries if "value" in q.columns]
    assert len(values_queries) == 2  # plan, path: once each
    fresh.refresh()
    hints(fresh, user.plan == "Paid")
    assert len([q for q in queries if "value" in q.columns]) == 3


def test_a_repeated_count_still_warns(ds):
    # The second count reuses the compiled SQL: the check runs without compiling.
    assert len(hints(ds, user.plan == "Trial")) == 1
    assert len(hints(ds, user.plan == "Trial")) == 1


def test_warnings_point_at_the_analysts_line_not_at_heapseg(ds):
    """Python prints a warning's file and line with it: the line that counted, not heapseg's."""

    def located(count) -> list[tuple[str, type]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            count()
        return [(w.filename, w.category) for w in caught]

    here = __file__
    segment = (user.plan == "Trail") & did("Veiw")
    first = located(lambda: ds.count(segment))
    again = located(lambda: ds.count(segment))  # the compiled SQL reused: checked without compiling
    several = located(lambda: ds.counts({"a": segment}))
    for found in (first, again, several):
        assert sorted(c.__name__ for _, c in found) == [
            "UnknownEventWarning",
            "UnknownValueWarning",
        ]
        assert {filename for filename, _ in found} == {here}


def test_check_events_off_checks_no_value(ds):
    quiet = ds.for_thread()
    quiet.check_events = False
    assert hints(quiet, user.plan == "Paid") == []


def test_history_values_count_as_known():
    """A value only the history holds (a plan someone had) is no typo."""
    import ibis

    con = ibis.duckdb.connect()
    con.create_table("users", users_frame(USERS))
    con.create_table("events", events_frame(EVENTS))
    con.create_table(
        "user_history",
        pd.DataFrame(
            {
                "user_id": ["u1", "u1"],
                "valid_from": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                "valid_to": pd.to_datetime(["2024-02-01", None]),
                "plan": ["legacy", "paid"],
            }
        ),
    )
    with_history = heapseg.connect(con, as_of=AS_OF)
    assert "legacy" in with_history.known_values("user", "plan")
    assert hints(with_history, user.plan == "legacy") == []
    assert len(hints(with_history, user.plan == "Legacy")) == 1


def test_check_value_without_a_source_is_silent():
    rule = PropertyRule.from_dict({"kind": "user", "field": "plan", "operator": "=", "value": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_value(rule, "user", True, None, "rules[0]")
        check_value(rule, "user", True, lambda kind, field: None, "rules[0]")


def test_values_and_hints_on_every_engine(backend_name, load_tables):
    """The distinct-values query and the warning are the same on DuckDB, PostgreSQL and Spark,
    and so are members read back with nullable types."""
    users = users_frame(USERS)
    con = load_tables({"users": users, "events": events_frame(EVENTS)})
    ds = heapseg.connect(con, as_of=AS_OF, accounts=None)
    assert ds.known_values("user", "plan") == sorted(users["plan"].dropna().unique())
    assert hints(ds, user.plan == "free") == [
        "rules[0].value: no user has plan 'free'; the data has 'Free' "
        "(= and in compare case-sensitively; contains does not)"
    ]
    assert hints(ds, did("Add to Cart").where(event_prop("path") == "/kitchen/pan")) == [
        "rules[0].where.rules[0].value: no event has path '/kitchen/pan'; the data has "
        "'/Kitchen/pan' (= and in compare case-sensitively; contains does not)"
    ]
    frame = ds.to_pandas(ds.members(user.plan == "paid", properties=["email", "visits"]))
    frame = frame.sort_values("user_id").reset_index(drop=True)
    assert frame["visits"].dtype.name == "Int64" and frame["email"].dtype.name == "string"
    assert frame["visits"].tolist() == [3, pd.NA]
    assert frame["email"].tolist() == ["a@x.io", "c@x.io"]
