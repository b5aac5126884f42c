"""One change under the lock: fields checked, new ids, revisions, duplicates, conflicts."""

from __future__ import annotations

import pytest

import heapseg
from heapseg.catalog import Catalog, EditConflictError
from heapseg.errors import CatalogError, ConflictError, DefinitionError, NotFoundError

from .conftest import PAID, SESSIONS_OVER_5, stored


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
    bad = {"combinator": "and", "rules": [{"kind": "prediction", "model": "churn"}]}
    with pytest.raises(DefinitionError) as caught:
        cat.save(bad, "Prediction")
    assert caught.value.path == "definition.rules[0].kind"
    with pytest.raises(DefinitionError, match="got int"):
        cat.save(42, "Number")
    assert not catalog_path.exists()


def test_save_accepts_builder_rules_and_segments(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    rule = heapseg.did("Session").times() > 5
    entry = cat.save(rule, "Engaged")
    assert entry.definition == heapseg.as_segment(rule).to_dict()
    entry2 = cat.save(heapseg.Segment.from_dict(PAID), "Paid")
    assert entry2.definition == PAID


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


def test_editing_a_segment_someone_deleted_says_so(catalog_path):
    alice = Catalog(catalog_path, user="alice")
    entry = alice.save(PAID, "Paid")
    Catalog(catalog_path, user="bob").delete(entry.id)
    with pytest.raises(NotFoundError, match="deleted by bob"):
        alice.update(entry, description="x")


def test_text_that_is_not_valid_unicode_is_refused_before_anything_is_written(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    before = catalog_path.read_bytes()
    history_before = cat.history_path.read_bytes()
    with pytest.raises(CatalogError, match="not valid Unicode"):
        cat.save(PAID, "Broken \ud800 name")
    assert catalog_path.read_bytes() == before
    assert cat.history_path.read_bytes() == history_before
