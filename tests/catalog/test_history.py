"""History of every saved change: who, when, before/after, restore, crash leftovers."""

from __future__ import annotations

import json

import pytest

from heapseg.catalog import Catalog, HistoryRecord
from heapseg.catalog.history import HistoryLog
from heapseg.errors import NotFoundError

from .conftest import PAID, SESSIONS_OVER_5


def test_every_change_is_recorded_with_who_when_before_after(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    bob = Catalog(catalog_path, user="bob")
    entry = alice.save(PAID, "Paid")
    bob.update(entry.id, SESSIONS_OVER_5)
    bob.rename(entry.id, "Engaged")
    alice.move(alice.get(entry.id), "Engagement")  # alice sees bob's changes first

    records = alice.history(entry.id)
    assert [(r.revision, r.action, r.user) for r in records] == [
        (1, "create", "alice"),
        (2, "update", "bob"),
        (3, "rename", "bob"),
        (4, "move", "alice"),
    ]
    create, update, rename, move = records
    assert create.before is None and create.definition_after == PAID
    assert update.definition_before == PAID and update.definition_after == SESSIONS_OVER_5
    assert rename.before["name"] == "Paid" and rename.after["name"] == "Engaged"
    assert rename.details == {"old_name": "Paid"}
    assert move.after["category"] == "Engagement"
    current = alice.get(entry.id)
    assert move.at == current.updated_at
    assert move.after == current.to_dict()
    # The history lives beside the catalog, one JSON object per line.
    assert alice.history_path == catalog_path.with_name("team.json.history.jsonl")
    lines = alice.history_path.read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["create", "update", "rename", "move"]


def test_history_of_a_deleted_segment_stays_readable(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    cat.delete(entry)
    records = cat.history(entry.id)
    assert [(r.revision, r.action) for r in records] == [(1, "create"), (2, "delete")]
    assert records[-1].after is None and records[-1].before["name"] == "Paid"


def test_restore_brings_back_an_earlier_definition_as_a_new_revision(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid", description="first", category="Revenue")
    cat.update(entry.id, SESSIONS_OVER_5, description="second", category="Engagement")
    cat.rename(entry.id, "Renamed")
    restored = cat.restore(entry.id, 1)
    assert restored.revision == 4
    assert restored.definition == PAID
    assert (restored.description, restored.category) == ("first", "Revenue")
    assert restored.name == "Renamed"  # the name is not part of a restore
    last = cat.history(entry.id)[-1]
    assert (last.action, last.details) == ("restore", {"restored_from": 1})
    assert last.definition_before == SESSIONS_OVER_5
    with pytest.raises(NotFoundError, match="no revision 9; known revisions: 1, 2, 3, 4"):
        cat.restore(entry.id, 9)


def test_records_of_saves_that_never_landed_are_ignored(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    # A writer appended its record, then died before replacing the catalog: revision 2 never
    # landed. A later real save produces revision 2 again; that one wins.
    ghost = HistoryRecord(
        segment_id=entry.id,
        revision=2,
        action="update",
        user="ghost",
        at=entry.updated_at,
        before=entry.to_dict(),
        after={**entry.to_dict(), "revision": 2, "description": "never saved"},
    )
    log = HistoryLog(cat.history_path)
    log.append([ghost])
    assert [r.user for r in cat.history(entry.id)] == ["alice"]
    cat.update(entry.id, description="real")
    records = cat.history(entry.id)
    assert [(r.revision, r.user, r.after["description"]) for r in records] == [
        (1, "alice", ""),
        (2, "alice", "real"),
    ]


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    with open(cat.history_path, "a") as handle:
        handle.write('{"segment_id": "' + entry.id + '", "revision": 2, "act')  # killed here
    assert [r.revision for r in cat.history(entry.id)] == [1]
    cat.update(entry.id, description="after the crash")
    assert [r.revision for r in cat.history(entry.id)] == [1, 2]
    log = HistoryLog(cat.history_path)
    log.records()
    assert log.bad_lines == 1


def test_history_of_an_unknown_id_is_not_found(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    with pytest.raises(NotFoundError):
        cat.history("seg-never")


def test_the_deletion_of_a_segment_is_its_last_record_if_it_is_a_delete(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    log = HistoryLog(cat.history_path)
    assert log.deletion(entry.id) is None
    cat.delete(entry)
    deleted = log.deletion(entry.id)
    assert (deleted.action, deleted.user, deleted.revision) == ("delete", "alice", 2)
    assert log.deletion("seg-never") is None
