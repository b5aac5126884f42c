"""heapseg/as_of.py: the one rule that turns every accepted ``as_of`` into a naive UTC datetime."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import ibis
import pandas as pd
import pytest

import heapseg
from heapseg import as_of as as_of_module
from heapseg.as_of import resolve_as_of
from heapseg.errors import DefinitionError, HeapsegError

NOON = datetime(2026, 3, 1, 12, 0)


def naive_utc(value: datetime) -> datetime:
    """``value`` after checking that it is a naive datetime (the resolved form)."""
    assert type(value) is datetime
    assert value.tzinfo is None
    return value


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00", NOON),
        ("2026-03-01 12:00:00", NOON),
        ("2026-03-01T12:00:00Z", NOON),
        ("2026-03-01T12:00:00+00:00", NOON),
        ("2026-03-01T12:00:00+01:00", datetime(2026, 3, 1, 11, 0)),
        ("2026-03-01T07:00:00-05:00", NOON),
        ("2026-03-01T00:30:00+01:00", datetime(2026, 2, 28, 23, 30)),  # the day before in UTC
        ("2026-03-01", datetime(2026, 3, 1)),  # a date is its midnight
        ("2026-03-01T12:00:00.000001", NOON + timedelta(microseconds=1)),
    ],
)
def test_iso_strings(text, expected):
    assert naive_utc(resolve_as_of(text)) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "", "01/03/2026"])
def test_a_string_that_is_not_iso_8601_is_refused(text):
    with pytest.raises(DefinitionError, match="as_of") as info:
        resolve_as_of(text)
    assert isinstance(info.value, HeapsegError)


# --------------------------------------------------------------------------- datetimes and dates


def test_a_naive_datetime_is_utc_as_it_is():
    moment = datetime(2026, 3, 1, 12, 34, 56, 789012)
    assert naive_utc(resolve_as_of(moment)) == moment


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (NOON.replace(tzinfo=timezone.utc), NOON),
        (NOON.replace(tzinfo=timezone(timedelta(hours=-5))), datetime(2026, 3, 1, 17, 0)),
        (
            NOON.replace(tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 3, 1, 6, 30),
        ),
        (datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")), datetime(2026, 7, 1, 10, 0)),
        (datetime(2026, 1, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris")), datetime(2026, 1, 1, 11, 0)),
    ],
)
def test_a_zoned_datetime_is_converted_to_utc(moment, expected):
    assert naive_utc(resolve_as_of(moment)) == expected


def test_a_date_is_its_midnight_utc():
    assert naive_utc(resolve_as_of(date(2026, 3, 1))) == datetime(2026, 3, 1)


# --------------------------------------------------------------------------- pandas


def test_a_naive_pandas_timestamp():
    resolved = naive_utc(resolve_as_of(pd.Timestamp("2026-03-01 12:00:00.000005")))
    assert resolved == NOON + timedelta(microseconds=5)


def test_a_zoned_pandas_timestamp():
    eastern = pd.Timestamp("2026-03-01 12:00", tz="America/New_York")
    assert naive_utc(resolve_as_of(eastern)) == datetime(2026, 3, 1, 17, 0)
    assert naive_utc(resolve_as_of(pd.Timestamp("2026-03-01 12:00", tz="UTC"))) == NOON


# --------------------------------------------------------------------------- None and default


@pytest.mark.parametrize(
    ("default", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1)),
        ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8, 0)),
        (date(2026, 11, 1), datetime(2026, 11, 1)),
        (NOON, NOON),
        (NOON.replace(tzinfo=timezone(timedelta(hours=1))), datetime(2026, 3, 1, 11, 0)),
        (pd.Timestamp("2026-03-01 12:00", tz="UTC"), NOON),
    ],
)
def test_none_takes_the_default(default, expected):
    assert naive_utc(resolve_as_of(None, default)) == expected
    assert naive_utc(resolve_as_of(None, default=default)) == expected


def test_an_explicit_as_of_wins_over_the_default():
    assert resolve_as_of("2026-03-01T12:00:00", default="2026-11-01") == NOON
    assert resolve_as_of(date(2026, 3, 1), default=NOON) == datetime(2026, 3, 1)


def test_none_without_default_is_now_to_the_second():
    before = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    for resolved in (resolve_as_of(), resolve_as_of(None), resolve_as_of(None, None)):
        after = datetime.now(timezone.utc).replace(tzinfo=None)
        assert naive_utc(resolved).microsecond == 0
        assert before <= resolved <= after


def test_now_is_utc_not_local_time(monkeypatch):
    fixed = datetime(2026, 3, 1, 12, 0, 7, 123456, tzinfo=timezone.utc)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            assert tz is timezone.utc
            return fixed

    monkeypatch.setattr(as_of_module, "datetime", Clock)
    assert resolve_as_of() == datetime(2026, 3, 1, 12, 0, 7)
    assert resolve_as_of(None, None).tzinfo is None


# --------------------------------------------------------------------------- bad types


@pytest.mark.parametrize("value", [20260301, 1.5, ["2026-03-01"], ("2026", 3, 1), b"2026-03-01"])
def test_a_value_of_another_type_is_refused(value):
    with pytest.raises(
        HeapsegError, match=r"as_of must be a datetime, a date or an ISO-8601 string"
    ):
        resolve_as_of(value)


def test_a_bad_default_is_refused_too():
    with pytest.raises(HeapsegError, match=r"got 42"):
        resolve_as_of(None, default=42)


def test_a_bad_as_of_is_refused_before_the_default_is_looked_at():
    with pytest.raises(HeapsegError, match=r"got 42"):
        resolve_as_of(42, default="2026-03-01")


# --------------------------------------------------------------------------- the dataset's rule


def test_the_dataset_resolves_with_its_default():
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE TABLE users AS SELECT 'u1' AS user_id")
    con.raw_sql("CREATE TABLE events(user_id VARCHAR, time TIMESTAMP, event VARCHAR)")
    fixed = heapseg.connect(con, as_of="2026-11-01T01:00:00+01:00")
    assert fixed.resolve_as_of() == datetime(2026, 11, 1, 0, 0)
    assert fixed.resolve_as_of(date(2026, 3, 1)) == datetime(2026, 3, 1)
    assert fixed.context().as_of == datetime(2026, 11, 1, 0, 0)
    assert fixed.context("2026-03-01T12:00:00Z").as_of == NOON
    with pytest.raises(HeapsegError, match="as_of must be"):
        fixed.count({"combinator": "and", "rules": []}, as_of=20260301)


def test_a_zoned_moment_that_leaves_the_calendar_in_utc_is_a_clear_error():
    from datetime import timedelta, timezone

    from heapseg.errors import HeapsegError

    near_year_one = datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(HeapsegError, match="outside the years 1 to 9999"):
        resolve_as_of(near_year_one)
