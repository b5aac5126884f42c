"""Minimal cases where the engine and the spec disagree, found by the engine-vs-reference tests.

Each one failed before its fix and guards it now.
"""

from __future__ import annotations

import datetime as dt
import warnings

import ibis
import pandas as pd

import heapseg

AS_OF = dt.datetime(2024, 3, 31, 12)


def members(definition: dict, users: pd.DataFrame) -> set:
    events = pd.DataFrame(
        {
            "user_id": pd.Series([], dtype="string"),
            "time": pd.Series([], dtype="datetime64[us]"),
            "event": pd.Series([], dtype="string"),
        }
    )
    ds = heapseg.connect(
        ibis.duckdb.connect(),
        users=ibis.memtable(users),
        events=ibis.memtable(events),
        accounts=None,
        user_migrations=None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        frame = ds.members(definition, as_of=AS_OF).to_pandas()
    return set(frame["user_id"].tolist())


# The spec: an empty string is unset ("is set: the value is not NULL (and, for strings,
# not empty) ... 'unset' means the same everywhere below"), and "other comparisons with
# an unset value are false"; the negative operators select what the positive twin does not.
USERS = pd.DataFrame(
    {
        "user_id": ["none", "empty", "trial"],
        "plan": pd.Series([None, "", "trial"], dtype="string"),
    }
)


def test_equal_to_empty_string_selects_nobody() -> None:
    rule = {"kind": "user", "field": "plan", "operator": "=", "value": ""}
    assert members({"combinator": "and", "rules": [rule]}, USERS) == set()


def test_not_equal_to_empty_string_selects_everybody() -> None:
    rule = {"kind": "user", "field": "plan", "operator": "!=", "value": ""}
    assert members({"combinator": "and", "rules": [rule]}, USERS) == {"none", "empty", "trial"}


def test_in_with_empty_string_ignores_unset_values() -> None:
    rule = {"kind": "user", "field": "plan", "operator": "in", "value": ["", "trial"]}
    assert members({"combinator": "and", "rules": [rule]}, USERS) == {"trial"}
