"""Estimates and progressive counts on DuckDB, PostgreSQL and PySpark, checked with pandas.

Integer ids are sampled by plain integer arithmetic, so every engine draws the same users: the
sampled users and their members are computed here in Python. The builder's counting, asked to
estimate first, ends with exact counts equal to pandas' on every engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

import heapseg
from heapseg.model import Group
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.counting import Counts, LiveCounts
from heapseg.widgets.group import GroupBox
from tests.test_sampling import python_bucket

AS_OF = datetime(2024, 6, 1)
SHARE = 0.3

SEGMENTS = {
    "shoppers": (heapseg.did("Session").times() > 5) & heapseg.did_not("Completed Order"),
    "churn": (heapseg.user.plan == "paid") & heapseg.did_not("Session").last(7, "day"),
    "buyers or trials": heapseg.did("Completed Order").last(14, "day")
    | (heapseg.user.plan == "trial"),
}


def tables(seed: int = 5) -> dict[str, pd.DataFrame]:
    """2,000 users (three plans) and 20,000 events over the 30 days before AS_OF."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame(
        {
            "user_id": np.arange(1, 2001, dtype="int64"),
            "plan": rng.choice(["paid", "free", "trial"], size=2000, p=[0.3, 0.5, 0.2]),
        }
    )
    seconds = rng.integers(0, 30 * 24 * 3600, size=20_000)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(1, 2101, size=20_000).astype("int64"),
            "time": (np.datetime64(AS_OF, "us") - seconds.astype("timedelta64[s]")).astype(
                "datetime64[us]"
            ),
            "event": rng.choice(
                ["Session", "Completed Order", "Refund"], 20_000, p=[0.8, 0.1, 0.1]
            ),
        }
    )
    return {"users": users, "events": events}


def pandas_members(frames: dict[str, pd.DataFrame]) -> dict[str, set[int]]:
    users, events = frames["users"], frames["events"]
    ids = set(users.user_id)

    def who(frame: pd.DataFrame) -> set[int]:
        return set(frame.user_id) & ids

    sessions = events[events.event == "Session"]
    orders = events[events.event == "Completed Order"]
    many = sessions.groupby("user_id").size()
    paid, trial = (
        set(users[users.plan == "paid"].user_id),
        set(users[users.plan == "trial"].user_id),
    )
    recent_sessions = who(sessions[sessions.time > AS_OF - timedelta(days=7)])
    recent_orders = who(orders[orders.time > AS_OF - timedelta(days=14)])
    return {
        "shoppers": (set(many[many > 5].index) & ids) - who(orders),
        "churn": paid - recent_sessions,
        "buyers or trials": recent_orders | trial,
    }


def test_estimates_and_exact_counts_agree_with_pandas(load_tables) -> None:
    frames = tables()
    ds = heapseg.connect(load_tables(frames), as_of=AS_OF)
    members = pandas_members(frames)
    sampled = {u for u in frames["users"].user_id if python_bucket(int(u)) < SHARE * 10_000}

    exact = ds.counts(SEGMENTS)
    assert exact == {**{n: len(m) for n, m in members.items()}, "__total__": 2000}
    estimates = ds.counts(SEGMENTS, sample=SHARE)
    assert estimates["__total__"] == 2000
    for name, found in estimates.items():
        if name == "__total__":
            continue
        assert found.sampled == len(sampled)  # the same users on every engine
        assert found.in_sample == len(members[name] & sampled)
        assert found.estimate == round(2000 * found.in_sample / found.sampled)
    assert ds.count(SEGMENTS["churn"]) == len(members["churn"])


def counts_heard(ds: heapseg.Dataset, definition: Any, **options: Any) -> list[Counts]:
    """What the builder's live counting of ``definition`` reports, in order (and no failure)."""
    root = GroupBox(DataChoices(ds), root=True)
    root.set_model(Group.from_dict(definition.to_dict()))
    heard: list[Counts] = []
    failures: list[BaseException] = []
    counting = LiveCounts(
        ds,
        None,
        debounce=0,
        on_plan=lambda plan: None,
        on_counts=heard.append,
        on_failure=failures.append,
        **options,
    )
    try:
        counting.update(root, ds.resolve_as_of(None))
        assert counting.wait(600)
    finally:
        counting.close()
    assert failures == []
    return heard


def test_the_builder_counts_estimate_then_count_exactly(load_tables) -> None:
    frames = tables()
    ds = heapseg.connect(load_tables(frames), as_of=AS_OF)
    members = pandas_members(frames)
    heard = counts_heard(ds, SEGMENTS["shoppers"], estimate_above=0, sample=SHARE)
    first, middle, last = heard  # estimates, the segment's exact count, every exact count
    assert not first.exact and last.exact
    assert middle.count == len(members["shoppers"]) and "" not in middle.estimates
    assert first.estimates[""].in_sample == len(
        {u for u in members["shoppers"] if python_bucket(u) < SHARE * 10_000}
    )
    assert last.count == len(members["shoppers"])
    sessions = frames["events"][frames["events"].event == "Session"].groupby("user_id").size()
    assert last.rule_counts["rules[0]"] == len(
        set(sessions[sessions > 5].index) & set(frames["users"].user_id)
    )


@pytest.mark.parametrize("bad", [0.0, 2])
def test_a_bad_share_is_refused_before_any_query(load_tables, bad) -> None:
    ds = heapseg.connect(load_tables(tables()), as_of=AS_OF)
    with pytest.raises(heapseg.HeapsegError, match="sample="):
        ds.count(SEGMENTS["churn"], sample=bad)
