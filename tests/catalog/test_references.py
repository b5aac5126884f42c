"""References between saved segments: unknown or cyclic ones refused on save, found by validate."""

from __future__ import annotations

import json

import pytest

from heapseg.catalog import Catalog
from heapseg.catalog.references import (
    BrokenReference,
    broken_reference,
    find_cycle,
    references_of,
    referrers,
)
from heapseg.errors import CatalogError, SegmentReferenceError

from .conftest import PAID


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


def test_delete_refuses_when_other_segments_refer_to_it(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    base = cat.save(PAID, "Paid")
    user = cat.save({"combinator": "and", "rules": [{"kind": "segment", "id": base.id}]}, "Uses")
    with pytest.raises(CatalogError, match=f"used by {user.id}"):
        cat.delete(base)
    assert base.id in cat
    cat.delete(base, force=True)
    assert base.id not in cat


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


def ref_entry(segment_id, *targets) -> dict:
    """A raw entry whose definition refers to ``targets``, one nested in a group."""
    rules = [{"kind": "segment", "id": t} for t in targets]
    nested = {"combinator": "or", "rules": rules[1:]}
    return {"id": segment_id, "definition": {"combinator": "and", "rules": [*rules[:1], nested]}}


def test_references_of_a_raw_entry_are_found_without_trusting_it():
    assert references_of(ref_entry("seg-a", "seg-b", "seg-c")) == {"seg-b", "seg-c"}
    assert references_of("not an entry") == set()
    assert references_of({"definition": {"rules": "not a list"}}) == set()
    assert references_of({"definition": {"kind": "segment", "id": 7}}) == set()


def test_referrers_name_the_entries_that_use_a_segment_but_itself():
    segments = [ref_entry("seg-a", "seg-a"), ref_entry("seg-b", "seg-a"), ref_entry(None, "seg-a")]
    assert referrers(segments, "seg-a", 0) == ["seg-b", "segments[2]"]


def test_find_cycle_gives_the_chain_through_its_start():
    refs = {"a": ["b"], "b": ["c", "d"], "c": ["a"], "d": []}
    assert find_cycle("a", refs.__getitem__) == ("a", "b", "c", "a")
    assert find_cycle("d", refs.__getitem__) is None
    assert find_cycle("x", {"x": ["x"]}.__getitem__) == ("x", "x")


def test_broken_reference_is_one_rule_an_unknown_id_first_then_a_cycle():
    refs = {"a": ["b"], "b": ["a"]}
    assert broken_reference("a", ["b", "zz"], refs, refs.__getitem__) == BrokenReference("zz", ())
    assert broken_reference("a", ["b"], refs, refs.__getitem__) == BrokenReference(
        None, ("a", "b", "a")
    )
    # A new segment (no id yet): nothing refers to it, so it closes no cycle.
    assert broken_reference(None, ["a"], refs, refs.__getitem__) is None
    assert broken_reference("c", ["a"], refs, refs.__getitem__) is None


def test_save_and_validate_report_the_same_unknown_reference(catalog_path):
    cat = Catalog(catalog_path, user="alice")
    target = cat.save(PAID, "Target")
    user = cat.save({"combinator": "and", "rules": [{"kind": "segment", "id": target.id}]}, "U")
    cat.delete(target, force=True)
    (problem,) = cat.validate()
    assert (problem.segment_id, problem.message) == (
        user.id,
        f"refers to unknown segment {target.id!r}",
    )
    with pytest.raises(SegmentReferenceError, match=f"refers to segment {target.id!r}") as caught:
        cat.update(user, {"combinator": "and", "rules": [{"kind": "segment", "id": target.id}]})
    assert caught.value.chain == (user.id, target.id)
