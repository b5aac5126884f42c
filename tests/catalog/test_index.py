"""The catalog as read: entries found by id or name, listed with filters, problems per entry."""

from __future__ import annotations

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.catalog.index import build_index
from heapseg.errors import NotFoundError

from .conftest import PAID, SESSIONS_OVER_5
from .test_bad_files import entry, write_catalog


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


def test_entries_without_a_usable_id_and_duplicates_are_reported(catalog_path):
    write_catalog(
        catalog_path,
        [
            entry("seg-a", "A"),
            "not an object",
            entry(7, "Seven"),
            entry("seg-a", "A again"),
            entry("seg-c", "a"),
        ],
    )
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a"]
    found = {(p.segment_id, p.index, p.path) for p in cat.problems}
    assert found == {
        (None, 1, ""),
        (None, 2, "id"),
        ("seg-a", 3, "id"),
        ("seg-c", 4, "name"),
    }
    texts = [str(p) for p in cat.problems]
    assert "segments[1]: an entry must be a JSON object, found a string" in texts


def test_entries_unchanged_since_the_last_read_are_not_checked_again():
    document = {"segments": [entry("seg-a", "A"), entry("seg-b", "B", SESSIONS_OVER_5)]}
    first = build_index(document, "v1", False, None)
    changed = {"segments": [entry("seg-a", "A"), entry("seg-b", "B", PAID)]}
    second = build_index(changed, "v2", False, first)
    assert second.signature == "v2"
    assert second.by_id["seg-a"].entry is first.by_id["seg-a"].entry  # reused
    assert second.by_id["seg-b"].entry is not first.by_id["seg-b"].entry  # checked again
    assert second.by_id["seg-b"].entry.definition == PAID
    assert second.find(" b ") is second.by_id["seg-b"] and second.find("c") is None
    assert [e.id for e in second.entries("alice", text="b")] == ["seg-b"]
