"""The backend machinery: every engine round-trips the same data and agrees on join counts."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.backends import BACKENDS, BackendLoader, normalize, unavailable_reason

# Naive UTC instants that break anything reading them as New York local time: 02:30 on
# 2024-03-10 does not exist there, 01:30 on 2024-11-03 happens twice, 07:00 UTC is the
# moment the clocks change.
DST_TRAPS = [
    datetime(2024, 3, 10, 2, 30),
    datetime(2024, 11, 3, 1, 30),
    datetime(2024, 3, 10, 7, 0),
    datetime(2024, 1, 1, 0, 0),
    datetime(2024, 6, 30, 23, 59, 59, 999999),
]

TRICKY_STRINGS = [
    "O'Brien",
    'say "hi"',
    "back\\slash \\N",
    "naïve café ✓ 日本 🚀",
    "",
    "a,b\nc\td",
]


def round_trip_tables() -> dict[str, pd.DataFrame]:
    """Six users and six events covering every column type and the awkward values."""
    users = pd.DataFrame(
        {
            "user_id": pd.array([1, 2, 3, 4, 5, 6], dtype="int64"),
            "name": TRICKY_STRINGS,
            "email": ["a@x.io", None, "c@x.io", None, "e@x.io", "NULL"],
            "email_opt_in": pd.array([True, False, None, True, False, True], dtype="boolean"),
            "signup_date": [
                date(2024, 3, 10),
                date(2024, 11, 3),
                None,
                date(1970, 1, 1),
                date(2024, 2, 29),
                date(2023, 12, 31),
            ],
            "ltv": [0.1 + 0.2, -1.5, None, 1e-300, 0.0, 12345.678],
            "visits": pd.array([1, None, 3, 40, -7, 0], dtype="Int64"),
            # ibis reads PySpark results through pandas, where a nullable integer column is
            # float64: only a column without NULLs keeps integers above 2**53 exact.
            "big": pd.array([2**53 + 1, -(2**62), 0, 1, 2, 3], dtype="int64"),
            "last_seen": pd.Series([*DST_TRAPS, None], dtype="datetime64[us]"),
        }
    )
    events = pd.DataFrame(
        {
            "event_id": pd.array([10, 11, 12, 13, 14, 15], dtype="int64"),
            "user_id": pd.array([1, 1, 2, 3, 99, 6], dtype="int64"),
            "time": pd.Series(
                [*DST_TRAPS, datetime(2024, 3, 10, 6, 59, 59)], dtype="datetime64[us]"
            ),
            "event": ["Session", "Completed Order", "Session", "Search Bar", "Session", "Upgrade"],
            "revenue": [None, 19.99, None, None, None, None],
        }
    )
    return {"users": users, "events": events}


def join_tables(seed: int = 7) -> dict[str, pd.DataFrame]:
    """300 users and 3000 events around the 2024 spring DST change; some events orphaned."""
    rng = np.random.default_rng(seed)
    users = pd.DataFrame({"user_id": np.arange(1, 301, dtype="int64")})
    start = np.datetime64("2024-03-05T00:00:00", "us")
    offsets = rng.integers(0, 10 * 24 * 3600 * 10**6, size=3000)
    events = pd.DataFrame(
        {
            "user_id": rng.integers(1, 321, size=3000).astype("int64"),
            "time": start + offsets.astype("timedelta64[us]"),
            "event": rng.choice(
                ["Session", "Completed Order", "Refund"], size=3000, p=[0.8, 0.15, 0.05]
            ),
        }
    )
    return {"users": users, "events": events}


@pytest.fixture(params=["UTC", "America/New_York"])
def process_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the Python process in time zone ``request.param``."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _rows(con, name: str, order_by: str) -> pa.Table:
    return con.table(name).order_by(order_by).to_pyarrow()


@pytest.mark.usefixtures("process_tz")
def test_round_trip_keeps_values_and_types(load_tables) -> None:
    tables = round_trip_tables()
    con = load_tables(tables)
    for name, key in (("users", "user_id"), ("events", "event_id")):
        expected = normalize(tables[name])
        got = _rows(con, name, key)
        assert got.column_names == expected.column_names
        for column in expected.column_names:
            assert got[column].to_pylist() == expected[column].to_pylist(), (name, column)
    schema = con.table("users").schema()
    assert schema["user_id"].is_int64()
    assert schema["name"].is_string()
    assert schema["email_opt_in"].is_boolean()
    assert schema["signup_date"].is_date()
    assert schema["ltv"].is_float64()
    assert schema["last_seen"].is_timestamp()
    assert schema["last_seen"].timezone is None


@pytest.mark.usefixtures("process_tz")
def test_timestamp_literals_compare_as_utc(load_tables) -> None:
    tables = round_trip_tables()
    events = load_tables(tables).table("events")
    low, high = datetime(2024, 3, 10, 2, 30), datetime(2024, 3, 10, 7, 0)
    window = events.filter((events.time >= low) & (events.time < high))
    frame = tables["events"]
    expected = frame.loc[(frame.time >= low) & (frame.time < high), "event_id"].tolist()
    assert sorted(window.event_id.to_pyarrow().to_pylist()) == sorted(expected)
    assert len(expected) == 2


def test_tz_aware_input_is_stored_as_naive_utc(load_tables) -> None:
    local = pd.Series(pd.to_datetime(["2024-03-10 03:30:00"])).dt.tz_localize("America/New_York")
    con = load_tables({"t": pd.DataFrame({"id": [1], "at": local})})
    assert con.table("t").at.to_pyarrow().to_pylist() == [datetime(2024, 3, 10, 7, 30)]


def test_loads_are_isolated(backend_name: str, backend_loader: BackendLoader) -> None:
    first = backend_loader(backend_name, {"users": pd.DataFrame({"user_id": [1, 2, 3]})})
    second = backend_loader(backend_name, {"users": pd.DataFrame({"user_id": [7]})})
    try:
        assert first.table("users").count().execute() == 3
        assert second.table("users").count().execute() == 1
    finally:
        backend_loader.release(first)
    assert second.table("users").user_id.to_pyarrow().to_pylist() == [7]
    backend_loader.release(second)


def _join_counts(con, low: datetime, high: datetime) -> tuple[int, int, int]:
    users, events = con.table("users"), con.table("events")
    did = events.filter(
        (events.event == "Completed Order") & (events.time >= low) & (events.time < high)
    )
    semi = users.semi_join(did, users.user_id == did.user_id).count().execute()
    anti = users.anti_join(did, users.user_id == did.user_id).count().execute()
    via_isin = users.filter(users.user_id.isin(did.user_id)).count().execute()
    return int(semi), int(anti), int(via_isin)


@pytest.mark.postgres
@pytest.mark.spark
@pytest.mark.usefixtures("process_tz")
def test_semi_and_anti_join_counts_agree_across_backends(backend_loader: BackendLoader) -> None:
    missing = {name: reason for name in BACKENDS if (reason := unavailable_reason(name))}
    if missing:
        pytest.skip(f"backends unavailable: {missing}")
    tables = join_tables()
    low, high = datetime(2024, 3, 9, 22, 15), datetime(2024, 3, 12, 7, 45)
    events = tables["events"]
    chosen = events[
        (events.event == "Completed Order") & (events.time >= low) & (events.time < high)
    ]
    expected_semi = int(tables["users"].user_id.isin(chosen.user_id).sum())
    expected = (expected_semi, len(tables["users"]) - expected_semi, expected_semi)
    assert 0 < expected_semi < len(tables["users"])

    counts = {}
    for name in BACKENDS:
        con = backend_loader(name, tables)
        try:
            counts[name] = _join_counts(con, low, high)
        finally:
            backend_loader.release(con)
    assert counts == dict.fromkeys(BACKENDS, expected)
