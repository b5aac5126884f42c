"""Catalog basics: list/get/save/update/rename/duplicate/delete/move, metadata, conflicts."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pytest

import heapseg
from heapseg.catalog import Catalog, EditConflictError
from heapseg.errors import (
    CatalogError,
    ConflictError,
    DefinitionError,
    NotFoundError,
    SegmentReferenceError,
)

from .conftest import PAID, SESSIONS_OVER_5


@pytest.fixture
def tz_paris(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def stored(path) -> dict:
    return json.loads(path.read_text())


def test_save_writes_every_key_of_the_spec(catalog_path, tz_paris):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(
        SESSIONS_OVER_5, "Window shoppers", description="Browse, never buy", category="Engagement"
    )
    doc = stored(catalog_path)
    assert (doc["format"], doc["version"]) == ("heapseg-catalog", 1)
    (raw,) = doc["segments"]
    assert raw["id"] == entry.id
    assert re.fullmatch(r"seg-window-shoppers-[0-9a-f]{8}", entry.id)
    assert raw["name"] == "Window shoppers"
    assert raw["description"] == "Browse, never buy"
    assert raw["category"] == "Engagement"
    assert (raw["type"], raw["visibility"], raw["owner"], raw["revision"]) == (
        "dynamic",
        "shared",
        "alice",
        1,
    )
    assert raw["definition"] == SESSIONS_OVER_5
    # The writer's UTC offset is kept (Paris in November: +01:00).
    created = datetime.fromisoformat(raw["created_at"])
    assert created.utcoffset() == timedelta(hours=1)
    assert raw["created_at"].endswith("+01:00")
    assert raw["updated_at"] == raw["created_at"]
    assert abs(created.timestamp() - time.time()) < 60


def test_user_defaults_to_the_os_login(catalog_path, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    assert Catalog(catalog_path).user == "carol"
    assert Catalog(catalog_path).save(PAID, "Paid").owner == "carol"


def test_a_missing_file_is_an_empty_catalog_until_the_first_save(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    assert cat.list() == [] and cat.problems == []
    assert not catalog_path.exists()
    cat.save(PAID, "Paid")
    assert catalog_path.exists()


def test_get_by_id_or_name_ignoring_case(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paying Customers")
    assert cat.get(entry.id) == entry
    assert cat.get("paying customers") == entry
    assert cat.get("  PAYING CUSTOMERS ") == entry
    assert "paying customers" in cat and entry.id in cat and "nope" not in cat
    assert entry.segment == heapseg.Segment.from_dict(PAID)


def test_get_unknown_suggests_close_names(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paying customers")
    with pytest.raises(NotFoundError, match="did you mean 'Paying customers'"):
        cat.get("Paying customer")


def test_list_filters_and_visibility(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    bob = Catalog(catalog_path, user="bob")
    a1 = alice.save(PAID, "Paid", category="Revenue", description="money")
    a2 = alice.save(SESSIONS_OVER_5, "Engaged", category="Engagement")
    a3 = alice.save(PAID, "Alice scratch", visibility="personal")
    b1 = bob.save(SESSIONS_OVER_5, "Bob scratch", visibility="personal")

    assert [e.id for e in alice.list()] == [a1.id, a2.id, a3.id]
    assert [e.id for e in bob.list()] == [a1.id, a2.id, b1.id]
    assert [e.id for e in bob.list(everyone=True)] == [a1.id, a2.id, a3.id, b1.id]
    assert [e.id for e in alice.list(category="revenue")] == [a1.id]
    assert [e.id for e in alice.list(owner="bob", everyone=True)] == [b1.id]
    assert [e.id for e in alice.list(text="MONEY")] == [a1.id]
    assert [e.id for e in alice.list(text="engage")] == [a2.id]
    assert alice.list(type="static") == []
    assert alice.categories() == ["Engagement", "Revenue"]
    assert len(alice) == 3 and [e.id for e in alice] == [a1.id, a2.id, a3.id]


def test_save_accepts_builder_rules_and_segments(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    rule = heapseg.did("Session").times() > 5
    entry = cat.save(rule, "Engaged")
    assert entry.definition == heapseg.as_segment(rule).to_dict()
    entry2 = cat.save(heapseg.Segment.from_dict(PAID), "Paid")
    assert entry2.definition == PAID


def test_names_are_unique_ignoring_case(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    with pytest.raises(CatalogError, match="already used"):
        cat.save(PAID, "PAID")
    other = cat.save(PAID, "Other")
    with pytest.raises(CatalogError, match="already used"):
        cat.rename(other, " paid ")
    assert [e.name for e in cat.list()] == ["Paid", "Other"]


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"name": ""}, "name"),
        ({"name": 42}, "name"),
        ({"name": "x", "description": 3}, "description"),
        ({"name": "x", "category": ["a"]}, "category"),
        ({"name": "x", "visibility": "public"}, "visibility"),
        ({"name": "bad\x00name"}, "name"),
    ],
)
def test_save_rejects_bad_fields_and_writes_nothing(catalog_path, kwargs, path):
    cat = Catalog(catalog_path, user="alice")
    name = kwargs.pop("name")
    with pytest.raises(DefinitionError) as caught:
        cat.save(PAID, name, **kwargs)
    assert caught.value.path == path
    assert not catalog_path.exists()


def test_save_rejects_an_invalid_definition_with_its_path(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    bad = {"combinator": "and", "rules": [{"kind": "funnel", "steps": []}]}
    with pytest.raises(DefinitionError) as caught:
        cat.save(bad, "Funnel")
    assert caught.value.path == "definition.rules[0].kind"
    with pytest.raises(DefinitionError, match="got int"):
        cat.save(42, "Number")
    assert not catalog_path.exists()


def test_update_bumps_revision_and_updated_at(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    updated = cat.update(entry, SESSIONS_OVER_5, description="now engaged")
    assert updated.revision == 2
    assert updated.definition == SESSIONS_OVER_5
    assert updated.description == "now engaged"
    assert updated.created_at == entry.created_at and updated.updated_at >= entry.updated_at
    again = cat.update(updated.id, category="Engagement")
    assert again.revision == 3 and again.category == "Engagement"
    assert again.definition == SESSIONS_OVER_5
    assert stored(catalog_path)["segments"][0]["revision"] == 3


def test_rename_keeps_the_id_and_move_changes_category(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    renamed = cat.rename(entry, "Paying")
    assert (renamed.id, renamed.name, renamed.revision) == (entry.id, "Paying", 2)
    moved = cat.move("paying", "Revenue")
    assert (moved.category, moved.revision) == ("Revenue", 3)
    assert cat.get(entry.id).name == "Paying"
    with pytest.raises(NotFoundError):
        cat.get("Paid")


def test_duplicate_names_copies_and_gives_new_ids(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    bob = Catalog(catalog_path, user="bob")
    entry = alice.save(PAID, "Paid", category="Revenue", description="d")
    copy1 = bob.duplicate(entry)
    copy2 = bob.duplicate("paid")
    named = bob.duplicate(entry, name="Paid (EU)")
    assert [copy1.name, copy2.name, named.name] == ["Copy of Paid", "Copy of Paid (2)", "Paid (EU)"]
    assert len({entry.id, copy1.id, copy2.id, named.id}) == 4
    assert copy1.definition == entry.definition
    assert (copy1.category, copy1.description, copy1.owner, copy1.revision) == (
        "Revenue",
        "d",
        "bob",
        1,
    )
    assert bob.history(copy1)[0].details == {"copied_from": entry.id}


def test_delete_removes_and_the_id_is_never_reused(catalog_path, monkeypatch):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    cat.delete(entry)
    assert cat.list() == []
    with pytest.raises(NotFoundError, match="was deleted by alice"):
        cat.get(entry.id)
    # Make the generator come up with the deleted id first: it must skip it.
    proposals = iter([entry.id, "seg-paid-00000001"])
    monkeypatch.setattr("heapseg.catalog.changes.new_id", lambda name: next(proposals))
    again = cat.save(PAID, "Paid")
    assert again.id == "seg-paid-00000001"


def test_delete_refuses_when_other_segments_refer_to_it(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    base = cat.save(PAID, "Paid")
    user = cat.save({"combinator": "and", "rules": [{"kind": "segment", "id": base.id}]}, "Uses")
    with pytest.raises(CatalogError, match=f"used by {user.id}"):
        cat.delete(base)
    assert base.id in cat
    cat.delete(base, force=True)
    assert base.id not in cat


def test_references_must_exist_and_cycles_are_refused_with_the_chain(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    with pytest.raises(SegmentReferenceError, match="seg-nope"):
        cat.save({"combinator": "and", "rules": [{"kind": "segment", "id": "seg-nope"}]}, "X")
    a = cat.save(PAID, "A")
    b = cat.save({"combinator": "and", "rules": [{"kind": "segment", "id": a.id}]}, "B")
    c = cat.save({"combinator": "or", "rules": [{"kind": "segment", "id": b.id}]}, "C")
    with pytest.raises(SegmentReferenceError) as caught:
        cat.update(a, {"combinator": "and", "rules": [{"kind": "segment", "id": c.id}]})
    assert caught.value.chain == (a.id, c.id, b.id, a.id)
    assert f"{a.id} -> {c.id} -> {b.id} -> {a.id}" in str(caught.value)
    assert cat.get(a.id).revision == 1
    with pytest.raises(SegmentReferenceError) as self_ref:
        cat.update(a, {"combinator": "and", "rules": [{"kind": "segment", "id": a.id}]})
    assert self_ref.value.chain == (a.id, a.id)


def test_resolve_segment_gives_the_model_or_an_error(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    assert cat.resolve_segment(entry.id) == heapseg.Segment.from_dict(PAID)
    with pytest.raises(SegmentReferenceError) as caught:
        cat.resolve_segment("seg-missing")
    assert caught.value.chain == ("seg-missing",)


# ----------------------------------------------------------------------------------- conflicts


def test_two_kernels_editing_the_same_segment_conflict(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    entry = alice.save(PAID, "Paid")
    bob = Catalog(catalog_path, user="bob")
    # Both load revision 1, both edit.
    mine = alice.get(entry.id)
    theirs = bob.get(entry.id)
    saved = bob.update(theirs, description="bob's edit")
    before = catalog_path.read_bytes()
    with pytest.raises(ConflictError) as caught:
        alice.update(mine, description="alice's edit")
    error = caught.value
    assert isinstance(error, EditConflictError)
    assert error.changed_by == "bob"
    assert error.changed_at == saved.updated_at
    assert (error.expected_revision, error.current_revision) == (1, 2)
    assert "changed by bob at " + saved.updated_at.isoformat() in str(error)
    assert "nothing was saved" in str(error)
    # Nothing overwritten: bob's edit stands, the file did not change.
    assert catalog_path.read_bytes() == before
    assert alice.get(entry.id).description == "bob's edit"


def test_edits_by_id_are_checked_against_what_this_catalog_last_read(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    entry = alice.save(PAID, "Paid")
    bob = Catalog(catalog_path, user="bob")
    bob.rename(entry.id, "Paying")
    for change in (
        lambda: alice.update(entry.id, description="x"),
        lambda: alice.move(entry.id, "Revenue"),
        lambda: alice.rename(entry.id, "Paid!"),
        lambda: alice.delete(entry.id),
    ):
        with pytest.raises(EditConflictError, match="changed by bob"):
            change()
    # Having read the catalog again, alice edits the current revision.
    assert alice.get(entry.id).name == "Paying"
    assert alice.update(entry.id, description="x").revision == 3
    # An explicit revision wins.
    with pytest.raises(EditConflictError):
        alice.update(entry.id, description="y", revision=1)


def test_editing_a_segment_someone_deleted_says_so(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    entry = alice.save(PAID, "Paid")
    Catalog(catalog_path, user="bob").delete(entry.id)
    with pytest.raises(NotFoundError, match="deleted by bob"):
        alice.update(entry, description="x")


def test_sql_crafted_names_and_values_are_stored_as_data(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    crafted = 'x\'; DROP TABLE users; -- "quoted" back\\slash'
    definition = {
        "combinator": "and",
        "rules": [
            {"kind": "user", "field": "x; DROP TABLE users", "operator": "=", "value": crafted}
        ],
    }
    entry = cat.save(definition, crafted, description=crafted, category=crafted)
    again = Catalog(catalog_path, user="bob").get(entry.id)
    assert (again.name, again.description, again.category) == (crafted, crafted, crafted)
    assert again.definition == definition
    assert stored(catalog_path)["segments"][0]["definition"] == definition
    assert entry.id.startswith("seg-x-drop-table-users-quoted-back-slash-")


def test_text_that_is_not_valid_unicode_is_refused_before_anything_is_written(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    before = catalog_path.read_bytes()
    history_before = cat.history_path.read_bytes()
    with pytest.raises(CatalogError, match="not valid Unicode"):
        cat.save(PAID, "Broken \ud800 name")
    assert catalog_path.read_bytes() == before
    assert cat.history_path.read_bytes() == history_before


def test_update_changes_name_and_definition_in_one_revision(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    cat.save(PAID, "Taken")
    updated = cat.update(entry, SESSIONS_OVER_5, name="Engaged", category="Engagement")
    assert (updated.name, updated.category, updated.revision) == ("Engaged", "Engagement", 2)
    assert updated.definition == SESSIONS_OVER_5
    with pytest.raises(CatalogError, match="already used"):
        cat.update(updated, name="taken", description="not saved either")
    assert cat.get(entry.id).description == ""


def test_re_reading_the_catalog_does_not_move_the_revision_an_edit_is_based_on(
    catalog_path, tiny_dataset
):
    """Issue 14, finding 1: a lost update after ``len``/``list`` re-read bob's change."""
    seed = Catalog(catalog_path, user="alice").save(PAID, "Paid")
    alice = Catalog(catalog_path, user="alice")
    bob = Catalog(catalog_path, user="bob")
    alice.get(seed.id)  # alice sees revision 1
    bob.update(seed.id, description="bob's edit")
    # Every read that does not show alice the segment on purpose leaves her base at 1.
    assert len(alice) == 1
    assert [e.revision for e in alice.list()] == [2]
    assert seed.id in alice and alice.categories() == [] and alice.problems == []
    alice.validate()
    alice.history(seed.id)
    assert alice.count(seed.id, tiny_dataset) == 3
    alice.sql(seed.id, tiny_dataset)
    before = catalog_path.read_bytes()
    for edit in (
        lambda: alice.update(seed.id, definition=SESSIONS_OVER_5),
        lambda: alice.rename(seed.id, "Paying"),
        lambda: alice.delete(seed.id),
    ):
        with pytest.raises(EditConflictError) as caught:
            edit()
        assert (caught.value.expected_revision, caught.value.current_revision) == (1, 2)
        assert caught.value.changed_by == "bob"
    assert catalog_path.read_bytes() == before  # bob's change stands
    # The entry a listing returned is an explicit base: editing it is editing revision 2.
    (listed,) = alice.list()
    assert alice.update(listed, definition=SESSIONS_OVER_5).revision == 3
    assert alice.get(seed.id).description == "bob's edit"


def test_a_listing_is_the_base_of_segments_not_seen_before(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    bob = Catalog(catalog_path, user="bob")
    entry = bob.save(PAID, "Paid")
    alice.list()  # alice first sees revision 1 here
    bob.update(entry.id, description="bob's edit")
    alice.list()  # shows revision 2, but alice's edits by id stay based on revision 1
    with pytest.raises(EditConflictError):
        alice.update(entry.id, description="alice's edit")
    # get() is how a caller takes the current revision as the base of its next edit.
    alice.get(entry.id)
    assert alice.update(entry.id, description="alice's edit").revision == 3


def test_an_edit_by_id_of_a_segment_never_read_is_based_on_the_current_revision(catalog_path):
    entry = Catalog(catalog_path, user="alice").save(PAID, "Paid")
    carol = Catalog(catalog_path, user="carol")
    assert carol.update(entry.id, description="blind edit").revision == 2
    Catalog(catalog_path, user="bob").update(entry.id, description="bob's edit")
    # Having edited revision 2, carol's next edit by id is based on it: bob's 3 conflicts.
    with pytest.raises(EditConflictError):
        carol.update(entry.id, description="carol again")


def test_catalog_errors_live_in_heapseg_errors_and_stay_importable_where_they_were():
    import heapseg.catalog
    import heapseg.catalog.catalog
    import heapseg.catalog.storage
    import heapseg.errors

    assert heapseg.catalog.EditConflictError is heapseg.errors.EditConflictError
    assert heapseg.catalog.catalog.EditConflictError is heapseg.errors.EditConflictError
    assert heapseg.catalog.LockTimeoutError is heapseg.errors.LockTimeoutError
    assert heapseg.catalog.storage.LockTimeoutError is heapseg.errors.LockTimeoutError
    assert issubclass(heapseg.errors.EditConflictError, heapseg.errors.ConflictError)
    assert issubclass(heapseg.errors.LockTimeoutError, heapseg.errors.CatalogError)
