"""The Catalog: what a save writes, its user, rename and move, the revision an edit is based on."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest

import heapseg
from heapseg.catalog import Catalog, EditConflictError
from heapseg.errors import CatalogError, NotFoundError, SegmentReferenceError

from .conftest import PAID, SESSIONS_OVER_5, stored


@pytest.fixture
def tz_paris(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


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


def test_resolve_segment_gives_the_model_or_an_error(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    assert cat.resolve_segment(entry.id) == heapseg.Segment.from_dict(PAID)
    with pytest.raises(SegmentReferenceError) as caught:
        cat.resolve_segment("seg-missing")
    assert caught.value.chain == ("seg-missing",)


# ------------------------------------------------------------------------ the base of an edit


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


def test_funnel_rules_save_load_validate_and_count(catalog_path, tiny_dataset):
    """A funnel rule (beside a reference to a saved segment) is saved as written, read back by
    another catalog, valid with and without data, and counted through references: u5 is the
    one user with a Completed Order after a Session (tiny_dataset)."""
    cat = Catalog(catalog_path, user="alice")
    paid = cat.save(PAID, "Paid")
    where = {
        "combinator": "and",
        "rules": [{"kind": "event_property", "field": "event", "operator": "is set"}],
    }
    funnel = {
        "kind": "funnel",
        "steps": [{"event": "Session"}, {"event": "Completed Order", "where": where}],
        "within": {"value": 7, "unit": "day"},
        "reached": 2,
    }
    buyers = cat.save({"combinator": "and", "rules": [funnel]}, "Session then order")
    dropped = {**funnel, "reached": 1, "not_reached": 2}
    others = cat.save(
        {"combinator": "and", "rules": [dropped, {"kind": "segment", "id": paid.id}]},
        "Paid who did not order",
    )
    assert stored(catalog_path)["segments"][1]["definition"]["rules"][0] == funnel
    again = Catalog(catalog_path, user="bob")
    assert again.get(buyers.id).definition == {"combinator": "and", "rules": [funnel]}
    assert again.problems == []
    assert again.validate() == []
    assert again.validate(tiny_dataset) == []
    ds = heapseg.connect(tiny_dataset.backend, resolver=again, as_of=tiny_dataset.default_as_of)
    assert ds.count({"combinator": "and", "rules": [{"kind": "segment", "id": buyers.id}]}) == 1
    # u2, u3 and u6 are paid; each had a Session and no order after it.
    assert ds.count({"combinator": "and", "rules": [{"kind": "segment", "id": others.id}]}) == 3
    described = heapseg.as_segment(again.get(others.id).definition).describe()
    assert described.startswith("entered the funnel Session → Completed Order (where event is set)")


def test_validate_with_data_reports_an_unknown_property_in_a_funnel_step(
    catalog_path, tiny_dataset
):
    cat = Catalog(catalog_path, user="alice")
    typo = {
        "combinator": "and",
        "rules": [{"kind": "event_property", "field": "prise", "operator": "is set"}],
    }
    funnel = {
        "kind": "funnel",
        "steps": [{"event": "Session"}, {"event": "Session", "where": typo}],
    }
    entry = cat.save({"combinator": "and", "rules": [funnel]}, "Typo")
    (problem,) = cat.validate(tiny_dataset)
    assert problem.segment_id == entry.id
    assert "prise" in problem.message and "steps[1].where" in str(problem)
