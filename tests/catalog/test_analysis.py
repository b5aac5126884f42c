"""Saved segments on data: SQL, movement, overview, export, crafted input."""

from __future__ import annotations

import os
from datetime import timezone

import ibis
import pandas as pd
import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.errors import DataError, SchemaError

from .conftest import ACTIVE, ACTIVE_EARLY, ACTIVE_LATE, EARLY, LATE, PAID


@pytest.fixture
def queries(monkeypatch):
    """Counts the queries sent to DuckDB (Table.execute / to_pyarrow, one per backend query)."""
    backend = ibis.backends.duckdb.Backend
    calls: list[str] = []
    for name in ("execute", "to_pyarrow"):
        original = getattr(backend, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(backend, name, counted)
    return calls


# ------------------------------------------------------------------------------ SQL


def test_sql_of_a_saved_segment(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    dynamic = cat.save(PAID, "Paid")
    frozen = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    text = cat.sql(dynamic, tiny_dataset)
    assert "SELECT" in text and "'paid'" in text
    # Frozen members are written out, so the SQL runs as it is on the warehouse.
    static_sql = cat.sql(frozen, tiny_dataset)
    assert "memtable" not in static_sql
    assert "'u1'" in static_sql and "'u3'" in static_sql and "'u2'" not in static_sql
    rows = tiny_dataset.backend.raw_sql(static_sql).fetchall()
    assert {row[0] for row in rows} == ACTIVE_EARLY


# ------------------------------------------------------------------------------ movement


def test_movement_between_two_moments_in_one_query(catalog_path, tiny_dataset, queries):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active")
    tiny_dataset.event_names()  # the known-events lookup is cached per dataset
    tiny_dataset.population()  # and so are the facts the join test reads once
    queries.clear()
    moved = cat.movement(entry, tiny_dataset, EARLY, LATE)
    assert len(queries) == 1
    # u2 and u6 came in, but they had not joined at EARLY (first events on 01-09 and 01-11):
    # they are new, not users who entered.
    counts = (moved.before, moved.after, moved.new, moved.entered, moved.left, moved.stayed)
    assert counts == (3, 3, 2, 0, 2, 1)
    assert moved.entered_users == [] and moved.left_users == [] and moved.new_users == []
    queries.clear()
    moved = cat.movement(entry.id, tiny_dataset, EARLY, LATE, users=True)
    assert len(queries) == 1
    assert moved.new_users == sorted(ACTIVE_LATE - ACTIVE_EARLY)
    assert moved.entered_users == []
    assert moved.left_users == sorted(ACTIVE_EARLY - ACTIVE_LATE)
    assert (moved.start, moved.end) == (
        EARLY.replace(tzinfo=timezone.utc),
        LATE.replace(tzinfo=timezone.utc),
    )


def test_movement_tells_new_users_from_those_who_entered(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    never = {
        "combinator": "and",
        "rules": [{"kind": "event", "event": "Completed Order", "did": False}],
    }
    idle = {"combinator": "and", "rules": [{**ACTIVE["rules"][0], "did": False}]}
    # At EARLY the users are u1, u3, u5 (first events before it) and u4 (no events: always).
    # By LATE u2 and u6 have joined, neither has ordered: new; u5 ordered on 01-05: left.
    moved = cat.movement(cat.save(never, "Never ordered"), tiny_dataset, EARLY, LATE, users=True)
    assert (moved.before, moved.after) == (4, 5)
    assert (moved.new_users, moved.entered_users, moved.left_users) == (["u2", "u6"], [], ["u5"])
    assert moved.after == moved.before + moved.new + moved.entered - moved.left
    # u3 and u5 were users at EARLY and active then; idle at LATE: they entered.
    moved = cat.movement(cat.save(idle, "Idle"), tiny_dataset, EARLY, LATE, users=True)
    assert (moved.new_users, moved.entered_users, moved.left_users) == ([], ["u3", "u5"], [])
    everyone = heapseg.connect(tiny_dataset.backend, joining=False)
    old = cat.movement("Never ordered", everyone, EARLY, LATE, users=True)
    # Without joining, u2 and u6 "never ordered" before they existed.
    assert (old.before, old.new_users, old.entered_users) == (6, [], [])


# ------------------------------------------------------------------------------ overview


def test_overview_counts_every_segment_in_one_query(catalog_path, tiny_dataset, queries):
    cat = Catalog(catalog_path, user="alice")
    paid = cat.save(PAID, "Paid", category="Revenue")
    active = cat.save(ACTIVE, "Active", category="Engagement")
    frozen = cat.save(ACTIVE, "Active early", static=True, dataset=tiny_dataset, as_of=EARLY)
    typo = cat.save(
        {
            "combinator": "and",
            "rules": [{"kind": "user", "field": "plan", "operator": "=", "value": "x"}],
        },
        "Typo",
    )
    # Event names and a property's values are read once per dataset (for hints), then cached.
    tiny_dataset.event_names()
    tiny_dataset.known_values("user", "subscription_type")
    queries.clear()
    frame = cat.overview(tiny_dataset)
    assert len(queries) == 1
    assert list(frame.columns) == [
        "id", "name", "category", "type", "owner", "count", "share", "problem"
    ]  # fmt: skip
    rows = frame.set_index("id")
    assert rows.loc[paid.id, "count"] == 3 and rows.loc[paid.id, "share"] == pytest.approx(0.5)
    assert rows.loc[active.id, "count"] == 3  # at the dataset's default as_of (LATE)
    assert rows.loc[frozen.id, "count"] == 3 and rows.loc[frozen.id, "type"] == "static"
    assert pd.isna(rows.loc[typo.id, "count"]) and "plan" in rows.loc[typo.id, "problem"]
    assert frame.attrs["total_users"] == 6
    by_category = cat.overview(tiny_dataset, as_of=EARLY, category="engagement")
    assert list(by_category["id"]) == [active.id]
    assert list(by_category["count"]) == [3]


# ------------------------------------------------------------------------------ export


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_members_with_chosen_properties(catalog_path, tiny_dataset, tmp_path, suffix):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    target = tmp_path / f"paid{suffix}"
    assert cat.export(entry, tiny_dataset, target, properties=["country"]) == target
    frame = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert list(frame.columns) == ["user_id", "country"]
    assert frame.to_dict("records") == [
        {"user_id": "u2", "country": "US"},
        {"user_id": "u3", "country": "US"},
        {"user_id": "u6", "country": "US"},
    ]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_export_refuses_unknown_formats_and_properties(catalog_path, tiny_dataset, tmp_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    with pytest.raises(DataError, match=r"\.csv or \.parquet"):
        cat.export(entry, tiny_dataset, tmp_path / "paid.xlsx")
    with pytest.raises(DataError, match="unknown user properties"):
        cat.export(entry, tiny_dataset, tmp_path / "paid.csv", properties=["nope"])
    assert sorted(os.listdir(tmp_path)) == [
        "team.json",
        "team.json.history.jsonl",
        "team.json.lock",
    ]


# ------------------------------------------------------------------------------ crafted input


def test_crafted_field_is_an_unknown_property_and_crafted_values_are_data(
    catalog_path, tiny_dataset
):
    cat = Catalog(catalog_path, user="alice")
    field = cat.save(
        {
            "combinator": "and",
            "rules": [
                {"kind": "user", "field": "x; DROP TABLE users", "operator": "=", "value": "1"}
            ],
        },
        "Crafted field",
    )
    with pytest.raises(SchemaError, match="x; DROP TABLE users"):
        cat.count(field, tiny_dataset)
    crafted = "x'); DROP TABLE users; -- \\ \" '"
    value = cat.save(
        {
            "combinator": "and",
            "rules": [{"kind": "user", "field": "country", "operator": "=", "value": crafted}],
        },
        crafted,
    )
    assert cat.count(value, tiny_dataset) == 0
    assert cat.count(crafted, tiny_dataset) == 0  # looked up by its (crafted) name
    assert tiny_dataset.total_users() == 6  # the users table is still there
