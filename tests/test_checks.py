"""Checks of the users table's ids at connect (issue 14, finding 12): no user counted twice.

A duplicated ``user_id`` counted that user twice (in the total and in every rule), a NULL
``user_id`` row counted as a user who matched every ``did not``, and ids of different types
in users and events failed with ibis's internal "<Field object> is not comparable".
"""

from __future__ import annotations

import warnings

import ibis
import pandas as pd
import pytest

import heapseg
from heapseg.checks import UserIdWarning
from heapseg.errors import DataError
from tests.data_helpers import AS_OF

SESSION = {"combinator": "and", "rules": [{"kind": "event", "event": "Session"}]}
NO_SESSION = {"combinator": "and", "rules": [{"kind": "event", "event": "Session", "did": False}]}


def backend(user_ids: list, event_ids: list, plans: list | None = None) -> ibis.BaseBackend:
    con = ibis.duckdb.connect()
    users = pd.DataFrame({"user_id": user_ids, "plan": plans or ["free"] * len(user_ids)})
    events = pd.DataFrame(
        {
            "user_id": event_ids,
            "time": pd.to_datetime(["2024-03-01"] * len(event_ids)),
            "event": ["Session"] * len(event_ids),
        }
    )
    con.create_table("users", users)
    con.create_table("events", events)
    return con


def test_clean_ids_pass_without_a_word():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserIdWarning)
        ds = heapseg.connect(backend(["u1", "u2", "u3"], ["u2"]))
    assert ds.total_users() == 3
    assert ds.count(SESSION, as_of=AS_OF) == 1


def test_the_check_is_one_aggregate_query(monkeypatch):
    con = backend(["u1", "u2", "u3"], ["u2"])
    queries: list[str] = []
    original = ibis.expr.types.Expr.execute

    def counted(self, *args, **kwargs):
        queries.append(str(ibis.to_sql(self)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ibis.expr.types.Expr, "execute", counted)
    heapseg.connect(con)
    assert len(queries) == 1
    assert "COUNT(DISTINCT" in queries[0]


def test_a_duplicated_user_id_is_a_data_error_naming_it():
    con = backend(["u1", "u2", "u2", "u3", "u4", "u4", "u4"], ["u2"])
    with pytest.raises(DataError) as info:
        heapseg.connect(con)
    message = str(info.value)
    assert "3 duplicated user_id rows" in message
    assert "'u4' (3 rows), 'u2' (2 rows)" in message
    assert "on_bad_ids='warn'" in message


def test_with_warn_a_duplicated_user_counts_once():
    con = backend(["u1", "u2", "u2", "u3"], ["u2"], plans=["free", "paid", "trial", "free"])
    with pytest.warns(UserIdWarning, match="'u2' \\(2 rows\\).*kept one row of each"):
        ds = heapseg.connect(con, on_bad_ids="warn")
    assert ds.total_users() == 3
    assert ds.count(SESSION, as_of=AS_OF) == 1
    assert ds.count(NO_SESSION, as_of=AS_OF) == 2
    assert ds.counts({"s": SESSION}, as_of=AS_OF) == {"s": 1, "__total__": 3}
    assert sorted(ds.members(SESSION, as_of=AS_OF).to_pandas()["user_id"]) == ["u2"]


def test_null_user_ids_are_a_data_error():
    con = backend(["u1", None, "u2", None], ["u1"])
    with pytest.raises(DataError, match="2 users rows have no user_id \\(NULL\\)"):
        heapseg.connect(con)


def test_with_warn_null_user_ids_are_left_out():
    con = backend(["u1", None, "u2"], ["u1"])
    with pytest.warns(UserIdWarning, match="left out"):
        ds = heapseg.connect(con, on_bad_ids="warn")
    assert ds.total_users() == 2
    assert ds.count(NO_SESSION, as_of=AS_OF) == 1


def test_user_id_types_that_do_not_compare_are_a_data_error():
    con = backend(["1", "2", "3"], [2, 3])
    with pytest.raises(DataError) as info:
        heapseg.connect(con)
    message = str(info.value)
    assert "users.user_id is string but events.user_id is int64" in message
    assert "not comparable" not in message


def test_with_warn_events_ids_are_compared_as_the_users_type():
    with pytest.warns(UserIdWarning, match="events.user_id compared as string"):
        ds = heapseg.connect(backend(["1", "2", "3"], [2, 3]), on_bad_ids="warn")
    assert ds.count(SESSION, as_of=AS_OF) == 2
    with pytest.warns(UserIdWarning, match="events.user_id compared as int64"):
        ds = heapseg.connect(backend([1, 2, 3], ["2", "x"]), on_bad_ids="warn")
    assert ds.count(SESSION, as_of=AS_OF) == 1  # 'x' is no int64 id: nobody's event


def test_every_problem_is_named_at_once():
    con = backend(["u1", "u1", None], [1])
    with pytest.raises(DataError) as info:
        heapseg.connect(con)
    message = str(info.value)
    assert "'u1' (2 rows)" in message and "no user_id (NULL)" in message
    assert "users.user_id is string but events.user_id is int64" in message


def test_on_bad_ids_must_be_raise_or_warn():
    with pytest.raises(DataError, match="on_bad_ids must be 'raise' or 'warn'"):
        heapseg.connect(backend(["u1"], ["u1"]), on_bad_ids="ignore")


def test_each_thread_of_a_warned_dataset_counts_users_once():
    con = backend(["u1", "u2", "u2"], ["u2"])
    with pytest.warns(UserIdWarning):
        ds = heapseg.connect(con, on_bad_ids="warn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserIdWarning)
        other = ds.for_thread()
    assert other.total_users() == 2
