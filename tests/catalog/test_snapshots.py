"""Static segments: members frozen beside the catalog, used on any backend, refreshed, unfrozen."""

from __future__ import annotations

import json
import os
from datetime import timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import heapseg
from heapseg.catalog import Catalog, EditConflictError
from heapseg.catalog.snapshots import compare, removed_unless_saved, write_members

from .conftest import ACTIVE, ACTIVE_EARLY, ACTIVE_LATE, EARLY, LATE, PAID, ids


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


def test_compare_gives_who_entered_and_who_left_across_id_types():
    entered, left = compare(pa.array([1, 2, 3]), pa.array(["2", "3", "4"]))
    assert (entered.to_pylist(), left.to_pylist()) == (["4"], ["1"])
    entered, left = compare(pa.array(["a", "b"]), pa.array(["a", "b"]))
    assert (len(entered), len(left)) == (0, 0)


def test_members_written_for_a_change_that_fails_are_removed(catalog_path):
    relative = write_members(catalog_path, "seg-x", LATE, pa.array(["u1", "u2"]))
    written = catalog_path.parent / relative
    assert written.exists() and relative.startswith("team.snapshots/")
    with removed_unless_saved(catalog_path, {"members": relative}):
        pass
    assert written.exists()  # saved: kept
    with (
        pytest.raises(KeyboardInterrupt),
        removed_unless_saved(catalog_path, {"members": relative}),
    ):
        raise KeyboardInterrupt
    assert not written.exists()
    with pytest.raises(ValueError), removed_unless_saved(catalog_path, None):
        raise ValueError("a dynamic segment: no members to remove")
