"""Fixtures for the catalog tests: a catalog path, definitions, a tiny hand-made dataset."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

SESSIONS_OVER_5 = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}}
    ],
}
PAID = {
    "combinator": "and",
    "rules": [{"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}],
}
#: Sessions in the 3 days up to as_of: members move between the two moments below.
ACTIVE = {
    "combinator": "and",
    "rules": [{"kind": "event", "event": "Session", "window": {"last": 3, "unit": "day"}}],
}
EARLY = datetime(2026, 1, 4)
LATE = datetime(2026, 1, 12)
ACTIVE_EARLY = {"u1", "u3", "u5"}
ACTIVE_LATE = {"u1", "u2", "u6"}


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "team.json"


@pytest.fixture
def tiny_dataset():
    """Six users, a handful of events, on an in-memory DuckDB (answers are known by hand)."""
    import ibis
    import pandas as pd

    import heapseg

    con = ibis.duckdb.connect()
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
            "subscription_type": ["trial", "paid", "paid", "free", "trial", "paid"],
            "country": ["FR", "US", "US", "DE", "FR", "US"],
        }
    )
    at = pd.Timestamp
    events = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u3", "u5", "u5", "u6"],
            "time": [
                at("2026-01-02 12:00"),
                at("2026-01-10 12:00"),
                at("2026-01-09 12:00"),
                at("2026-01-01 12:00"),
                at("2026-01-03 12:00"),
                at("2026-01-05 12:00"),
                at("2026-01-11 12:00"),
            ],
            "event": [
                "Session",
                "Session",
                "Session",
                "Session",
                "Session",
                "Completed Order",
                "Session",
            ],
        }
    )
    con.create_table("users", users)
    con.create_table("events", events)
    return heapseg.connect(con, as_of=LATE)


def ids(table) -> set:
    """The ``user_id``s of an ibis table of members."""
    return set(table.to_pandas()["user_id"])


def stored(path) -> dict:
    """The catalog file as JSON."""
    return json.loads(path.read_text())
