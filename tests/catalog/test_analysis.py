"""Saved segments on data: static snapshots, movement, overview, export, crafted input."""

from __future__ import annotations

import json
import os
from datetime import timezone

import ibis
import pandas as pd
import pyarrow.parquet as pq
import pytest

import heapseg
from heapseg.catalog import Catalog, EditConflictError
from heapseg.errors import DataError, SchemaError, SegmentReferenceError

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


def ids(table) -> set:
    return set(table.to_pandas()["user_id"])


# ------------------------------------------------------------------------------ static segments


def test_freeze_writes_members_beside_the_catalog(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active")
    frozen = cat.freeze(entry, tiny_dataset, as_of=EARLY)
    assert (frozen.type, frozen.revision) == ("static", 2)
    snap = frozen.snapshot
    assert snap.as_of == EARLY.replace(tzinfo=timezone.utc)
    assert snap.count == 3
    assert snap.members.startswith("team.snapshots/") and snap.members.endswith(".parquet")
    stored = json.loads(catalog_path.read_text())["segments"][0]["snapshot"]
    assert stored == {"as_of": "2026-01-04T00:00:00+00:00", "count": 3, "members": snap.members}
    table = pq.read_table(catalog_path.parent / snap.members)
    assert table.column_names == ["user_id"]
    assert table.column("user_id").to_pylist() == sorted(ACTIVE_EARLY)
    assert cat.static_members(entry.id) == sorted(ACTIVE_EARLY)
    assert cat.history(entry.id)[-1].action == "freeze"


def test_a_static_segment_returns_exactly_its_frozen_members(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    assert entry.is_static and entry.snapshot.count == 3
    # Evaluated at LATE (the dataset's default), the definition would give other users.
    assert tiny_dataset.count(ACTIVE) == 3
    assert set(tiny_dataset.members(ACTIVE).to_pandas()["user_id"]) == ACTIVE_LATE
    assert ids(cat.members(entry, tiny_dataset)) == ACTIVE_EARLY
    assert cat.count(entry.id, tiny_dataset) == 3
    # Referenced from another segment, through the catalog (the resolver).
    paid_active = cat.save(
        {
            "combinator": "and",
            "rules": [*PAID["rules"], {"kind": "segment", "id": entry.id}],
        },
        "Paid and active early",
    )
    assert ids(cat.members(paid_active, tiny_dataset)) == {"u3"}
    assert tiny_dataset.count(paid_active.segment, resolver=cat) == 1
    resolved = cat.resolve_segment(entry.id)
    assert isinstance(resolved, heapseg.StaticMembers)
    assert sorted(resolved.user_ids.to_pylist()) == sorted(ACTIVE_EARLY)


def test_static_members_are_the_same_on_another_backend(catalog_path, tiny_dataset, tmp_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    # Another backend (a Parquet folder read by a fresh connection), where u5 is gone.
    folder = tmp_path / "other"
    folder.mkdir()
    users = tiny_dataset.users.to_pandas()
    users[users.user_id != "u5"].to_parquet(folder / "users.parquet")
    tiny_dataset.raw_events.to_pandas().to_parquet(folder / "events.parquet")
    other = heapseg.connect(folder)
    assert ids(cat.members(entry, other)) == ACTIVE_EARLY - {"u5"}  # those still in users


def test_refresh_reports_who_entered_and_who_left(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    old_file = catalog_path.parent / entry.snapshot.members
    report = cat.refresh(entry, tiny_dataset, as_of=LATE, users=True)
    assert (report.before, report.after) == (3, 3)
    assert (report.entered, report.left) == (2, 2)
    assert report.entered_users == sorted(ACTIVE_LATE - ACTIVE_EARLY)
    assert report.left_users == sorted(ACTIVE_EARLY - ACTIVE_LATE)
    assert report.entry.revision == 2
    assert report.entry.snapshot.as_of == LATE.replace(tzinfo=timezone.utc)
    assert ids(cat.members(entry.id, tiny_dataset)) == ACTIVE_LATE
    last = cat.history(entry.id)[-1]
    assert (last.action, last.details["entered"], last.details["left"]) == ("refresh", 2, 2)
    assert old_file.exists()  # the earlier revision's members stay restorable
    restored = cat.restore(entry.id, 1)
    assert ids(cat.members(restored, tiny_dataset)) == ACTIVE_EARLY
    with pytest.raises(heapseg.CatalogError, match="dynamic"):
        cat.refresh(cat.save(PAID, "Paid"), tiny_dataset)


def test_unfreeze_makes_a_static_segment_dynamic_again(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    dynamic = cat.unfreeze(entry)
    assert (dynamic.type, dynamic.snapshot, dynamic.revision) == ("dynamic", None, 2)
    assert "snapshot" not in json.loads(catalog_path.read_text())["segments"][0]
    assert ids(cat.members(dynamic, tiny_dataset)) == ACTIVE_LATE
    with pytest.raises(heapseg.CatalogError, match="already dynamic"):
        cat.unfreeze(dynamic)
    assert ids(cat.members(cat.restore(entry.id, 1), tiny_dataset)) == ACTIVE_EARLY


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


def test_a_freeze_that_conflicts_leaves_no_members_file(catalog_path, tiny_dataset):
    alice = Catalog(catalog_path, user="alice")
    entry = alice.save(ACTIVE, "Active")
    Catalog(catalog_path, user="bob").update(entry.id, description="bob was here")
    with pytest.raises(EditConflictError, match="bob"):
        alice.freeze(entry, tiny_dataset, as_of=EARLY)
    folder = alice.snapshots_path
    assert not folder.exists() or os.listdir(folder) == []
    assert alice.get(entry.id).type == "dynamic"


def test_a_static_segment_with_its_members_file_gone_is_a_clear_error(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(ACTIVE, "Active", static=True, dataset=tiny_dataset, as_of=EARLY)
    (catalog_path.parent / entry.snapshot.members).unlink()
    with pytest.raises(heapseg.CatalogError, match=r"frozen members file .* is missing"):
        cat.count(entry, tiny_dataset)


def test_json_members_files_are_read_too(catalog_path, tiny_dataset):
    (catalog_path.parent / "members.json").write_text('["u2", "u4"]')
    raw = {
        "id": "seg-json",
        "name": "From JSON",
        "type": "static",
        "visibility": "shared",
        "owner": "alice",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        "revision": 1,
        "definition": {"combinator": "and", "rules": []},
        "snapshot": {"as_of": "2026-01-01T00:00:00+00:00", "count": 2, "members": "members.json"},
    }
    catalog_path.write_text(
        json.dumps({"format": "heapseg-catalog", "version": 1, "segments": [raw]})
    )
    cat = Catalog(catalog_path, user="alice")
    assert ids(cat.members("seg-json", tiny_dataset)) == {"u2", "u4"}


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
    tiny_dataset.event_names()
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


# ------------------------------------------------------------------------------ validation, crafted input


def test_validate_with_a_dataset_reports_unknown_properties(catalog_path, tiny_dataset):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    typo = cat.save(
        {
            "combinator": "and",
            "rules": [{"kind": "user", "field": "subscription", "operator": "=", "value": "paid"}],
        },
        "Typo",
    )
    assert cat.validate() == []
    (problem,) = cat.validate(tiny_dataset)
    assert problem.segment_id == typo.id
    assert "subscription" in problem.message


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


def test_a_reference_cycle_written_by_hand_is_reported_with_the_chain(catalog_path, tiny_dataset):
    def ref(segment_id, target):
        return {
            "id": segment_id,
            "name": segment_id,
            "type": "dynamic",
            "visibility": "shared",
            "owner": "alice",
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00",
            "revision": 1,
            "definition": {"combinator": "and", "rules": [{"kind": "segment", "id": target}]},
        }

    catalog_path.write_text(
        json.dumps(
            {
                "format": "heapseg-catalog",
                "version": 1,
                "segments": [ref("seg-a", "seg-b"), ref("seg-b", "seg-a")],
            }
        )
    )
    cat = Catalog(catalog_path, user="alice")
    with pytest.raises(SegmentReferenceError) as caught:
        cat.count("seg-a", tiny_dataset)
    assert caught.value.chain == ("seg-a", "seg-b", "seg-a")
    problems = {(p.segment_id, p.message) for p in cat.validate()}
    assert problems == {
        ("seg-a", "segment reference cycle: seg-a -> seg-b -> seg-a"),
        ("seg-b", "segment reference cycle: seg-b -> seg-a -> seg-b"),
    }
