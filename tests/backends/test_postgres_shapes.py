"""On PostgreSQL, several counts in one query join each rule's users once: no per-user SubPlan.

PostgreSQL hashes ``user_id IN (subquery)`` inside an aggregate's ``FILTER`` or an ``OR`` only
when it expects the ids to fit in ``work_mem``; otherwise it scans them once per user (the
builder's query over 100,000 users ran for over ten minutes at the default 4 MB). The data here
is small, so ``work_mem`` is lowered to its minimum to put the ids over that line, as 100,000
users are at the default: the plain ``IN`` shape then plans a SubPlan, heapseg's shape none.
Answers are checked against pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import heapseg
from tests.backends import BackendLoader, unavailable_reason

pytestmark = pytest.mark.postgres

AS_OF = datetime(2024, 6, 1)
USERS = 3000
#: Anonymous ids 3001..3200 did events too; 150 of them were merged into users later.
MERGED = 150

SHOPPERS = (heapseg.did("Session").times() > 5) & heapseg.did_not("Completed Order")
EITHER = heapseg.did("Refund").last(7, "day") | (heapseg.user.plan == "trial")


def frames(seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, USERS + 1, dtype="int64"),
            "plan": rng.choice(["paid", "free", "trial"], size=USERS, p=[0.3, 0.5, 0.2]),
        }
    )
    n = 40_000
    seconds = rng.integers(0, 30 * 24 * 3600, size=n)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 201, size=n).astype("int64"),
            "time": (np.datetime64(AS_OF, "us") - seconds.astype("timedelta64[s]")).astype(
                "datetime64[us]"
            ),
            "event": rng.choice(["Session", "Completed Order", "Refund"], n, p=[0.8, 0.15, 0.05]),
        }
    )
    migrations = pd.DataFrame(
        {
            "from_user_id": np.arange(USERS + 1, USERS + MERGED + 1, dtype="int64"),
            "to_user_id": rng.integers(1, USERS + 1, size=MERGED).astype("int64"),
        }
    )
    return {"users": users, "events": events, "user_migrations": migrations}


def pandas_counts(tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    users, events, moves = tables["users"], tables["events"], tables["user_migrations"]
    owner = dict(zip(moves.from_user_id, moves.to_user_id, strict=True))
    events = events.assign(user_id=events.user_id.map(lambda u: owner.get(u, u)))
    ids = set(users.user_id)
    sessions = events[events.event == "Session"].groupby("user_id").size()
    many = set(sessions[sessions > 5].index) & ids
    ordered = set(events[events.event == "Completed Order"].user_id)
    refunds = events[(events.event == "Refund") & (events.time > AS_OF - timedelta(days=7))]
    trial = set(users[users.plan == "trial"].user_id)
    return {
        "shoppers": len(many - ordered),
        "many sessions": len(many),
        "never ordered": len(ids - ordered),
        "either": len((set(refunds.user_id) & ids) | trial),
    }


@pytest.fixture(scope="module")
def postgres_dataset(
    backend_loader: BackendLoader,
) -> Iterator[tuple[heapseg.Dataset, dict[str, pd.DataFrame]]]:
    reason = unavailable_reason("postgres")
    if reason:
        pytest.skip(reason)
    tables = frames()
    con = backend_loader("postgres", tables)
    try:
        con.raw_sql("SET work_mem = '64kB'").close()  # see the module's docstring
        ds = heapseg.connect(con, as_of=AS_OF)
        ds.check_events = False  # no event-name queries among those the tests look at
        yield ds, tables
    finally:
        backend_loader.release(con)


def plans_of(ds: heapseg.Dataset, run: Callable[[], object]) -> list[tuple[str, str]]:
    """The SQL ``run`` sends through ``ds.execute``, each with PostgreSQL's plan for it."""
    seen: list[str] = []
    execute = ds.execute

    def spy(expr):
        seen.append(str(ds.backend.compile(expr)))
        return execute(expr)

    ds.execute = spy
    try:
        run()
    finally:
        ds.execute = execute
    return [(sql, explain(ds, sql)) for sql in seen]


def explain(ds: heapseg.Dataset, sql: str) -> str:
    with ds.backend.raw_sql(f"EXPLAIN {sql}") as cur:
        return "\n".join(row[0] for row in cur.fetchall())


def test_the_builders_query_joins_each_rule_once(postgres_dataset) -> None:
    ds, tables = postgres_dataset
    expected = pandas_counts(tables)
    queries = {
        "": SHOPPERS,
        "rules[0]": heapseg.did("Session").times() > 5,
        "rules[1]": heapseg.did_not("Completed Order"),
        "either": EITHER,
    }
    found: dict = {}
    sql, plan = plans_of(ds, lambda: found.update(ds.counts(queries)))[-1]
    assert found == {
        "": expected["shoppers"],
        "rules[0]": expected["many sessions"],
        "rules[1]": expected["never ordered"],
        "either": expected["either"],
        "__total__": USERS,
    }
    assert "SubPlan" not in plan
    # Three rules with subqueries in four counts: three joins.
    assert "_flag2" in sql and "_flag3" not in sql and " IN (SELECT" not in sql
    users = ds.users
    plain = users.aggregate(
        **{f"q{i}": users.count(where=ds.predicate(q)) for i, q in enumerate(queries.values())}
    )
    assert "SubPlan" in explain(ds, str(ds.backend.compile(plain)))  # what it would have been


def test_counts_in_an_or_have_no_subplan_and_an_and_keeps_its_semi_joins(
    postgres_dataset,
) -> None:
    ds, tables = postgres_dataset
    expected = pandas_counts(tables)
    found: list[int] = []
    sql, plan = plans_of(ds, lambda: found.append(ds.count(EITHER)))[-1]
    assert found == [expected["either"]] and "SubPlan" not in plan and "_flag0" in sql
    sql, plan = plans_of(ds, lambda: found.append(ds.count(SHOPPERS)))[-1]
    assert found[-1] == expected["shoppers"] and "SubPlan" not in plan
    # ds.count's own shape, as before: a semi join and an anti join.
    assert "_flag" not in sql and "Anti Join" in plan


def test_estimates_read_a_sample_copied_once(postgres_dataset) -> None:
    ds, tables = postgres_dataset
    expected = pandas_counts(tables)
    first = ds.counts({"shoppers": SHOPPERS}, sample=0.5)["shoppers"]
    plans = plans_of(ds, lambda: ds.counts({"shoppers": SHOPPERS}, sample=0.5))
    again = ds.counts({"shoppers": SHOPPERS}, sample=0.5)["shoppers"]
    assert again == first and first.low <= expected["shoppers"] <= first.high
    ((sql, plan),) = plans  # one query, on the temporary tables copied by the first
    assert "heapseg_sample_" in sql and "SubPlan" not in plan
    assert "on events " not in plan  # the sample's events only
