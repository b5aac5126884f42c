"""Saving from the builder is safe: a dirty mark, renaming asked, New and Delete asking, conflicts."""

from __future__ import annotations

import json

import pytest

from heapseg.catalog import Catalog
from heapseg.errors import EditConflictError

from .conftest import POSSIBLE_CHURN, WINDOW_SHOPPERS


def stored(path) -> dict[str, dict]:
    """The catalog file as written, by name (read with json, not with heapseg)."""
    return {raw["name"]: raw for raw in json.loads(path.read_text())["segments"]}


@pytest.fixture
def opened(make_builder, catalog):
    """A builder editing the saved "Window shoppers" (as notebook 2 leaves it)."""
    entry = catalog.save(WINDOW_SHOPPERS, "Window shoppers", category="Engagement")
    builder = make_builder(catalog)
    builder.open(entry.id)
    assert builder.wait(60)
    return builder


def test_an_edit_marks_the_builder_dirty_and_saving_cleans_it(opened, catalog_path):
    builder = opened
    assert not builder.dirty
    assert "saved as revision 1" in builder.state_html.value
    assert builder.message.startswith("opened")

    builder.root.nodes[0].count_value.value = 8
    assert builder.wait(60)
    assert builder.dirty
    assert builder.state_html.value == "● unsaved changes"
    assert "heapseg-state-dirty" in builder.state_html._dom_classes
    assert builder.message == ""  # no stale "opened …" / "saved …" next to unsaved changes

    # Putting the value back is not a change any more.
    builder.root.nodes[0].count_value.value = 5
    assert builder.wait(60)
    assert not builder.dirty

    builder.description_input.value = "Browse a lot, never buy."
    assert builder.dirty  # the texts count too
    builder.root.nodes[0].count_value.value = 8
    saved = builder.save()
    assert saved is not None, builder.message
    assert not builder.dirty
    assert builder.state_html.value == "✓ saved as revision 2"
    raw = stored(catalog_path)["Window shoppers"]
    assert raw["revision"] == 2
    assert raw["definition"]["rules"][0]["count"] == {"operator": ">", "value": 8}
    assert raw["description"] == "Browse a lot, never buy."


def test_a_new_segment_is_marked_unsaved_until_saved(make_builder, catalog):
    builder = make_builder(catalog)
    assert not builder.dirty
    assert builder.state_html.value == "new segment, not saved yet"
    builder.root.add_buttons["event"].click()
    assert builder.dirty
    assert builder.state_html.value == "● unsaved changes"


def test_renaming_on_save_is_asked_and_can_become_a_new_segment(opened, catalog_path):
    builder = opened
    first_id = builder.entry_id
    builder.root.nodes[0].count_value.value = 10
    builder.name_input.value = "Keen browsers"
    assert builder.rename_note.value == (
        "Save renames “Window shoppers” → “Keen browsers”; Save as new keeps both."
    )
    assert builder.save_button.click() is None
    assert builder.question == (
        "Save renames “Window shoppers” → “Keen browsers”. Rename it, or keep "
        "“Window shoppers” and save a new segment named “Keen browsers”?"
    )
    assert set(builder.prompt_buttons) == {"rename", "save-as-new", "cancel"}
    # Nothing was written while the question is open.
    assert stored(catalog_path)["Window shoppers"]["revision"] == 1
    assert "Keen browsers" not in stored(catalog_path)

    builder.prompt_buttons["save-as-new"].click()
    names = stored(catalog_path)
    assert names["Window shoppers"]["definition"] == WINDOW_SHOPPERS  # untouched
    assert names["Window shoppers"]["revision"] == 1
    assert names["Keen browsers"]["definition"]["rules"][0]["count"]["value"] == 10
    assert builder.entry_id == names["Keen browsers"]["id"] != first_id
    assert builder.question == "" and builder.prompt.layout.display == "none"
    assert builder.rename_note.value == ""


def test_renaming_chosen_renames_the_open_segment(opened, catalog_path):
    builder = opened
    builder.name_input.value = "Keen browsers"
    builder.save_button.click()
    builder.prompt_buttons["rename"].click()
    names = stored(catalog_path)
    assert set(names) == {"Keen browsers"}
    assert names["Keen browsers"]["revision"] == 2
    assert not builder.dirty


def test_cancel_keeps_everything_as_it_was(opened, catalog_path):
    builder = opened
    builder.name_input.value = "Keen browsers"
    builder.save_button.click()
    builder.prompt_buttons["cancel"].click()
    assert builder.question == ""
    assert builder.dirty and builder.name == "Keen browsers"
    assert set(stored(catalog_path)) == {"Window shoppers"}


def test_new_asks_before_discarding_unsaved_changes(opened):
    builder = opened
    builder.root.nodes[1].remove.click()
    assert builder.wait(60)
    assert builder.new_button.click() is None
    assert "Discard the unsaved changes to “Window shoppers”" in builder.question
    builder.prompt_buttons["cancel"].click()
    assert builder.entry is not None and len(builder.root.nodes) == 1

    builder.new_button.click()
    builder.prompt_buttons["discard"].click()
    assert builder.wait(60)
    assert builder.entry is None
    assert builder.root.nodes == []
    assert builder.name == "" and builder.category == ""
    assert not builder.dirty and not builder.can_undo
    assert builder.count == builder.total  # an empty segment selects everyone


def test_new_without_changes_starts_at_once(opened):
    assert opened.new() is True
    assert opened.question == "" and opened.entry is None


def test_delete_asks_first(opened, catalog_path):
    builder = opened
    builder.delete_button.click()
    assert builder.entry is not None
    assert builder.question == (
        "Delete “Window shoppers” from the catalog for everyone? No other segment refers to it; "
        "its history is kept."
    )
    builder.prompt_buttons["cancel"].click()
    assert set(stored(catalog_path)) == {"Window shoppers"}
    builder.delete_button.click()
    builder.prompt_buttons["delete"].click()
    assert stored(catalog_path) == {}
    assert builder.entry is None
    assert builder.dirty  # the definition is still here, saved nowhere now


def test_delete_names_the_segments_that_refer_to_it(opened, catalog, catalog_path):
    builder = opened
    target = builder.entry_id
    ref = {"kind": "segment", "id": target}
    catalog.save({"combinator": "and", "rules": [ref]}, "Shoppers in the US")
    Catalog(catalog_path, user="bob").save(
        {"combinator": "or", "rules": [ref]}, "Bob's shoppers", visibility="personal"
    )
    builder.delete_button.click()
    # Everyone's segments count, Bob's personal one included.
    assert "“Shoppers in the US”" in builder.question
    assert "“Bob's shoppers”" in builder.question
    assert "cannot be deleted" in builder.question
    assert set(builder.prompt_buttons) == {"cancel"}
    assert "Window shoppers" in stored(catalog_path)
    assert builder.entry_id == target


@pytest.fixture
def conflicted(opened, catalog_path):
    """Bob saved "Window shoppers" after the builder opened it; the builder's Save was refused."""
    bob = Catalog(catalog_path, user="bob")
    bob.update(
        opened.entry_id,
        {"combinator": "and", "rules": [*WINDOW_SHOPPERS["rules"], POSSIBLE_CHURN["rules"][0]]},
        description="bob was here",
    )
    opened.root.nodes[0].count_value.value = 9
    opened.save_button.click()
    assert isinstance(opened.conflict, EditConflictError)
    return opened


def test_a_conflict_offers_three_ways_out(conflicted, catalog_path):
    builder = conflicted
    assert set(builder.prompt_buttons) == {"reload", "save-mine", "difference", "cancel"}
    assert builder.question.startswith("bob saved “Window shoppers”")
    assert "(revision 2) after you opened revision 1. Nothing was saved." in builder.question
    assert stored(catalog_path)["Window shoppers"]["description"] == "bob was here"


def test_show_the_difference_says_which_rules_differ(conflicted):
    builder = conflicted
    builder.prompt_buttons["difference"].click()
    shown = builder.diff_html.value
    assert "only in theirs: subscription_type = paid" in shown
    assert "only in theirs: did Session more than 5 times" in shown
    assert "only in yours: did Session more than 9 times" in shown
    assert "did not do Completed Order" not in shown  # in both
    assert "description: theirs “bob was here”, yours “”" in shown
    assert "revision 2, by bob" in shown


def test_reload_theirs_shows_their_version_and_undo_brings_mine_back(conflicted, ds):
    builder = conflicted
    builder.prompt_buttons["reload"].click()
    assert builder.wait(60)
    assert builder.entry.revision == 2
    assert builder.description == "bob was here"
    assert len(builder.root.nodes) == 3
    assert not builder.dirty and builder.conflict is None
    assert builder.count == ds.count(builder.entry.segment)
    assert builder.undo()
    assert builder.wait(60)
    assert builder.root.to_dict()["rules"][0]["count"]["value"] == 9


def test_save_mine_as_new_keeps_theirs(conflicted, catalog_path):
    builder = conflicted
    builder.prompt_buttons["save-mine"].click()
    names = stored(catalog_path)
    assert names["Window shoppers"]["description"] == "bob was here"
    mine = names["Window shoppers (alice)"]
    assert mine["definition"]["rules"][0]["count"]["value"] == 9
    assert builder.entry_id == mine["id"]
    assert builder.conflict is None and builder.question == ""
    assert not builder.dirty


def test_a_segment_deleted_meanwhile_offers_to_save_mine_as_new(opened, catalog_path):
    builder = opened
    Catalog(catalog_path, user="bob").delete(builder.entry_id)
    builder.root.nodes[0].count_value.value = 9
    assert builder.wait(60)
    assert builder.save() is None
    assert builder.question.startswith("bob deleted “Window shoppers” at ")
    assert builder.question.endswith("after you opened it (revision 1). Nothing was saved.")
    assert set(builder.prompt_buttons) == {"save-mine", "cancel"}
    assert builder.message == "not saved: this segment was deleted meanwhile; choose below"
    assert builder.dirty and stored(catalog_path) == {}

    builder.prompt_buttons["save-mine"].click()
    raw = stored(catalog_path)["Window shoppers"]  # the name is free again: kept as it was
    assert raw["definition"]["rules"][0]["count"] == {"operator": ">", "value": 9}
    assert raw["revision"] == 1 and builder.entry_id == raw["id"]
    assert builder.question == "" and not builder.dirty


def test_a_change_of_case_only_is_a_rename_with_no_second_segment(opened, catalog_path):
    builder = opened
    builder.name_input.value = "window SHOPPERS"
    # Names are unique ignoring case: "Save as new" could not keep both, so it is not offered.
    assert builder.rename_note.value == "Save renames “Window shoppers” → “window SHOPPERS”."
    builder.save_button.click()
    assert builder.question == "Save renames “Window shoppers” → “window SHOPPERS”. Rename it?"
    assert set(builder.prompt_buttons) == {"rename", "cancel"}
    assert set(stored(catalog_path)) == {"Window shoppers"}
    builder.prompt_buttons["rename"].click()
    assert set(stored(catalog_path)) == {"window SHOPPERS"}
    assert stored(catalog_path)["window SHOPPERS"]["revision"] == 2


def test_save_as_new_under_the_open_segments_own_name_says_what_to_do(opened, catalog_path):
    builder = opened
    builder.root.nodes[0].count_value.value = 7
    assert builder.wait(60)
    builder.save_as_button.click()
    assert builder.message == (
        "Save as new needs another name: “Window shoppers” is the segment you are editing "
        "(type a new name first, or Duplicate it)"
    )
    assert builder.last_error is not None and builder.dirty
    assert [raw["revision"] for raw in stored(catalog_path).values()] == [1]
    builder.name_input.value = "Keen browsers"
    builder.save_as_button.click()
    assert set(stored(catalog_path)) == {"Window shoppers", "Keen browsers"}
