"""Compiled SQL reuse: structure keys, and Dataset.execute compiling an equal expression once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import ibis
import ibis.backends.duckdb
import ibis.expr.types as ir
import pytest

from heapseg import charts, user
from heapseg.compiled import structure_key
from tests.data_helpers import AS_OF, dataset
from tests.test_dataset import EVENTS, USERS


@pytest.fixture
def compiled(monkeypatch):
    """The expressions the DuckDB backend compiles, in order."""
    seen: list[ir.Expr] = []
    backend = ibis.backends.duckdb.Backend
    original = backend.compile

    def counting(self, expr, *args, **kwargs):
        seen.append(expr)
        return original(self, expr, *args, **kwargs)

    monkeypatch.setattr(backend, "compile", counting)
    return seen


def self_joined(ds, minimum: int) -> ir.Table:
    """Users joined to a view of themselves: every build takes a fresh reference identifier."""
    users = ds.users.filter(ds.users.user_id.length() >= minimum)
    other = users.view()
    joined = users.join(other, users.plan == other.plan).select(users.user_id, mate=other.user_id)
    return joined.group_by("user_id").aggregate(mates=joined.mate.nunique()).order_by("user_id")


# ------------------------------------------------------------------------------ keys


def test_two_builds_of_one_query_have_one_key_though_ibis_numbers_them_apart():
    ds = dataset(USERS, EVENTS)
    first, second = self_joined(ds, 1), self_joined(ds, 1)
    assert first.op() != second.op()  # what made a plain operation-tree cache miss every time
    assert structure_key(first) == structure_key(second)
    assert hash(structure_key(first)) == hash(structure_key(second))
    # ... and they compile to the same SQL, the premise of the key.
    assert str(ds.backend.compile(first)) == str(ds.backend.compile(second))


def test_keys_tell_apart_what_compiles_differently():
    ds = dataset(USERS, EVENTS)
    users = ds.users
    keys = {
        "length >= 1": structure_key(self_joined(ds, 1)),
        "length >= 2": structure_key(self_joined(ds, 2)),
        "int 1": structure_key(users.filter(users.user_id.length() == 1).count()),
        "float 1.0": structure_key(users.filter(users.user_id.length() == 1.0).count()),
        "plan": structure_key(users.select("plan")),
        "account": structure_key(users.select("account_id")),
        # The same instant in two zones is printed differently, so it is another query.
        "utc": structure_key(
            users.mutate(t=ibis.literal(datetime(2024, 1, 1, tzinfo=timezone.utc)))
        ),
        "+1h": structure_key(
            users.mutate(
                t=ibis.literal(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))))
            )
        ),
    }
    assert None not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_a_self_join_and_a_join_of_two_views_are_other_queries():
    ds = dataset(USERS, EVENTS)
    users = ds.users
    same = users.join(users.view(), "plan")
    a, b = users.view(), users.view()
    two_views = a.join(b, "plan")
    assert structure_key(same) != structure_key(two_views)


def test_in_memory_tables_have_no_key():
    ds = dataset(USERS, EVENTS)
    memory = ibis.memtable({"user_id": ["p1", "p2"]})
    assert structure_key(ds.users.semi_join(memory, "user_id").count()) is None


# ------------------------------------------------------------------------------ execute


def test_an_equal_expression_runs_its_compiled_sql_again(compiled):
    ds = dataset(USERS, EVENTS)
    expected = self_joined(ds, 1).execute()  # ibis's own execute
    compiled.clear()
    first = ds.execute(self_joined(ds, 1))
    again = ds.execute(self_joined(ds, 1))
    assert len(compiled) == 1
    # The same frame as ibis's own execute: columns, dtypes, values.
    for got in (first, again):
        assert list(got.columns) == list(expected.columns)
        assert list(got.dtypes) == list(expected.dtypes)
        assert got.to_dict("list") == expected.to_dict("list")
    # Another literal is another query; a scalar comes back as a scalar.
    assert ds.execute(self_joined(ds, 99)).empty
    assert ds.execute(ds.users.count()) == len(USERS)
    assert len(compiled) == 3
    ds.clear_query_cache()
    ds.execute(self_joined(ds, 1))
    assert len(compiled) == 4


def test_expressions_over_in_memory_tables_go_through_ibis(compiled):
    ds = dataset(USERS, EVENTS)
    memory = ibis.memtable({"user_id": ["p1", "p2"]})
    joined = ds.users.semi_join(memory, "user_id").count()
    assert ds.execute(joined) == 2
    assert ds.execute(joined) == 2
    assert not any(key[0] == "expression" for key in ds._sql_cache)


@pytest.mark.parametrize(
    "draw",
    [
        lambda ds, by: charts.compare(ds, by),
        lambda ds, by: charts.trend(ds, "View", by=by, include_all=True, last=10),
        lambda ds, by: charts.stickiness(ds, "View", by=by, include_all=True, window="week"),
        lambda ds, by: charts.lifecycle(ds, "View", by=by, include_all=True, last=4),
        lambda ds, by: charts.paths(ds, "View", by=by, include_all=True, steps=2, last=60),
    ],
    ids=["compare", "trend", "stickiness", "lifecycle", "paths"],
)
def test_a_chart_drawn_again_is_not_compiled_again(compiled, draw):
    # A fixed as_of: the default, now, is another query every second.
    ds = dataset(USERS, EVENTS, as_of=AS_OF)
    by = {"Paid": user.plan == "paid"}
    first = draw(ds, by).data
    n = len(compiled)
    assert n >= 1
    again = draw(ds, by).data
    assert len(compiled) == n
    assert again.equals(first)
    # Another segment is another query, compiled afresh.
    other = draw(ds, {"Trial": user.plan == "trial"}).data
    assert len(compiled) > n
    assert not other.equals(first)


def test_python_udfs_go_through_ibis_which_registers_them():
    ds = dataset(USERS, EVENTS)

    @ibis.udf.scalar.python
    def shout(text: str) -> str:
        return text.upper()

    expr = ds.users.select(loud=shout(ds.users.user_id)).order_by("loud")
    assert structure_key(expr) is None
    assert ds.execute(expr)["loud"].tolist() == ["P1", "P2", "P3", "P4", "P5"]


@pytest.mark.parametrize("minimum", [1, 99], ids=["rows", "empty"])
def test_number_and_boolean_results_are_ibis_frames(minimum):
    # Columns ibis's conversion leaves as they are (numbers and booleans without gaps) skip it;
    # those with gaps, text and times go through it. Either way: ibis's frame.
    ds = dataset(USERS, EVENTS)
    users = ds.users.filter(ds.users.user_id.length() >= minimum)
    expr = users.group_by("plan").aggregate(
        n=users.count(),
        share=users.count() / 3.0,
        many=users.count() > 1,
        ltv=users.user_id.length().sum().cast("float64"),
        gappy=ibis.ifelse(users.count() > 1, users.count(), ibis.null()),
        last=users.user_id.max(),
    )
    expr = expr.order_by("plan")
    for columns in (["n", "share", "many"], ["n", "gappy", "last", "ltv"]):
        chosen = expr.select(*columns)
        expected = chosen.execute()
        got = ds.execute(chosen)
        assert list(got.columns) == list(expected.columns)
        assert list(got.dtypes) == list(expected.dtypes)
        assert got.to_dict("list") == expected.to_dict("list")
