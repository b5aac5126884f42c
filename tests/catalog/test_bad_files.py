"""Damaged and hostile catalog files: clear errors, bad entries isolated, nothing overwritten."""

from __future__ import annotations

import json
import os

import pytest

from heapseg.catalog import Catalog
from heapseg.errors import (
    CatalogError,
    CatalogFormatError,
    DefinitionError,
    SegmentReferenceError,
)

from .conftest import PAID, SESSIONS_OVER_5


def entry(segment_id, name, definition=PAID, /, **overrides) -> dict:
    raw = {
        "id": segment_id,
        "name": name,
        "description": "",
        "category": "",
        "type": "dynamic",
        "visibility": "shared",
        "owner": "alice",
        "created_at": "2026-11-22T10:15:00+01:00",
        "updated_at": "2026-11-22T10:15:00+01:00",
        "revision": 1,
        "definition": definition,
    }
    raw.update(overrides)
    return raw


def write_catalog(path, segments, **top) -> None:
    doc = {"format": "heapseg-catalog", "version": 1, **top, "segments": segments}
    path.write_text(json.dumps(doc, indent=2))


def snapshot_of(path):
    st = path.stat()
    return path.read_bytes(), st.st_mtime_ns, st.st_ino, sorted(os.listdir(path.parent))


GOOD = json.dumps(
    {"format": "heapseg-catalog", "version": 1, "segments": [entry("seg-a", "A")]}, indent=2
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        (GOOD[: len(GOOD) // 2], "not valid JSON \\(truncated or damaged\\?\\)"),
        ("this is not json", "not valid JSON"),
        ('{"format": "something-else", "version": 1, "segments": []}', "not a heapseg catalog"),
        ('{"format": "heapseg-catalog", "version": 7, "segments": []}', "version 7"),
    ],
    ids=["empty", "truncated", "not-json", "wrong-format", "newer-version"],
)
def test_unreadable_files_give_a_clear_error_and_are_never_overwritten(
    catalog_path, content, message
):
    catalog_path.write_text(content)
    before = snapshot_of(catalog_path)
    cat = Catalog(catalog_path, user="alice")
    for read in (cat.list, lambda: cat.get("A"), lambda: cat.problems, cat.validate):
        with pytest.raises(CatalogFormatError, match=message):
            read()
    # A writer refuses too, and keeps the file as it is.
    with pytest.raises(CatalogFormatError, match=message):
        cat.save(PAID, "New")
    with pytest.raises(CatalogFormatError):
        cat.delete("seg-a")
    assert snapshot_of(catalog_path)[:3] == before[:3]
    assert [n for n in os.listdir(catalog_path.parent) if n.endswith(".tmp")] == []
    assert not cat.history_path.exists()


def test_an_unknown_rule_kind_is_reported_with_its_id_and_the_rest_stays_usable(catalog_path):
    # A kind of a later version of the format (funnel rules were one, once).
    future = {"combinator": "and", "rules": [{"kind": "prediction", "model": "churn"}]}
    write_catalog(
        catalog_path,
        [entry("seg-a", "A"), entry("seg-future", "Future", future), entry("seg-b", "B")],
    )
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a", "seg-b"]
    (problem,) = cat.problems
    assert (problem.segment_id, problem.index, problem.path) == (
        "seg-future",
        1,
        "definition.rules[0].kind",
    )
    assert "unknown rule kind 'prediction'" in problem.message
    assert "segment 'seg-future': definition.rules[0].kind" in str(problem)
    with pytest.raises(DefinitionError, match="seg-future"):
        cat.get("seg-future")
    with pytest.raises(SegmentReferenceError, match="cannot be used"):
        cat.resolve_segment("seg-future")
    # Writing other segments keeps the entry exactly; it can still be renamed or deleted.
    cat.save(SESSIONS_OVER_5, "C")
    cat.rename("seg-future", "Future prediction")
    raw = json.loads(catalog_path.read_text())["segments"][1]
    assert raw["definition"] == future and raw["name"] == "Future prediction"
    assert raw["revision"] == 2
    cat.delete("seg-future")
    assert [e.id for e in cat.list()][:2] == ["seg-a", "seg-b"] and cat.problems == []


def test_a_funnel_rule_with_a_bad_step_number_is_reported_at_its_key(catalog_path):
    steps = [{"event": "Session"}, {"event": "Completed Order"}]
    bad = {"combinator": "and", "rules": [{"kind": "funnel", "steps": steps, "reached": 3}]}
    write_catalog(catalog_path, [entry("seg-a", "A"), entry("seg-bad", "Bad", bad)])
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a"]
    (problem,) = cat.problems
    assert (problem.segment_id, problem.path) == ("seg-bad", "definition.rules[0].reached")
    assert "from 1 to 2, got 3" in problem.message


def deep_group(levels: int) -> str:
    return '{"combinator": "and", "rules": [' * levels + "]}" * levels


def test_a_100000_level_definition_is_reported_not_crashed_on(catalog_path):
    good = json.dumps(entry("seg-a", "A"))
    deep = (
        '{"id": "seg-deep", "name": "Deep", "type": "dynamic", "visibility": "shared", '
        '"owner": "mallory", "created_at": "2026-11-22T10:15:00+01:00", '
        '"updated_at": "2026-11-22T10:15:00+01:00", "revision": 1, '
        f'"definition": {deep_group(100_000)}}}'
    )
    text = '{"format": "heapseg-catalog", "version": 1, "segments": [' + good + ", " + deep + "]}"
    catalog_path.write_text(text)
    with pytest.raises(RecursionError):
        json.loads(text)  # what a naive reader would do
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a"]
    (problem,) = cat.problems
    assert problem.segment_id == "seg-deep"
    assert problem.path.startswith("definition.rules[0].rules[0]")
    assert "nested more than" in problem.message
    # A rewrite keeps the deep entry as it was, and the file stays readable.
    cat.save(SESSIONS_OVER_5, "B")
    written = catalog_path.read_text()
    again = Catalog(catalog_path, user="carol")
    assert [e.name for e in again.list()] == ["A", "B"]
    assert [p.segment_id for p in again.problems] == ["seg-deep"]
    # The deep part survives byte for byte below the depth that is loaded as objects.
    tail = '{"combinator": "and", "rules": [' * 1000
    assert tail in written


def test_a_deep_definition_passed_in_python_is_a_definition_error(catalog_path):
    nested: dict = {"combinator": "and", "rules": []}
    for _ in range(100_000):
        nested = {"combinator": "and", "rules": [nested]}
    cat = Catalog(catalog_path, user="alice")
    with pytest.raises(DefinitionError, match="nested"):
        cat.save(nested, "Deep")
    with pytest.raises(DefinitionError, match="nested"):
        cat.save(deep_group(100_000), "Deep JSON text")
    assert not catalog_path.exists()


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"name": 42}, "name", "must be a string, found a number"),
        ({"name": ""}, "name", "must not be empty"),
        ({"owner": None}, "owner", "must be a string"),
        ({"description": ["x"]}, "description", "must be a string, found a list"),
        ({"type": "frozen"}, "type", "dynamic, static"),
        ({"visibility": True}, "visibility", "must be a string, found a boolean"),
        ({"revision": "2"}, "revision", "whole number"),
        ({"revision": True}, "revision", "whole number"),
        ({"revision": 0}, "revision", "whole number"),
        ({"created_at": 1700000000}, "created_at", "ISO-8601"),
        ({"updated_at": "yesterday"}, "updated_at", "not an ISO-8601 timestamp"),
        ({"updated_at": "2026-11-22T10:15:00"}, "updated_at", "needs its UTC offset"),
        ({"definition": "and"}, "definition", "must be a group object"),
        ({"type": "static"}, "snapshot", "needs a snapshot"),
        (
            {
                "type": "static",
                "snapshot": {
                    "as_of": "2026-01-01T00:00:00+00:00",
                    "count": 1,
                    "members": "../x.parquet",
                },
            },
            "snapshot.members",
            "relative to the catalog",
        ),
        (
            {
                "type": "static",
                "snapshot": {
                    "as_of": "2026-01-01T00:00:00+00:00",
                    "count": -1,
                    "members": "a.parquet",
                },
            },
            "snapshot.count",
            "whole number",
        ),
        ({"snapshot": {"as_of": "x"}}, "snapshot", "only a static segment"),
    ],
)
def test_a_wrong_type_or_value_is_reported_per_entry(catalog_path, overrides, path, message):
    write_catalog(catalog_path, [entry("seg-a", "A"), entry("seg-bad", "Bad", **overrides)])
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a"]
    (problem,) = cat.problems
    assert (problem.segment_id, problem.path) == ("seg-bad", path)
    assert message in problem.message


def test_reading_never_writes(catalog_path):
    funnel = {"combinator": "and", "rules": [{"kind": "funnel"}]}
    write_catalog(catalog_path, [entry("seg-a", "A"), entry("seg-b", "B", funnel)])
    before = snapshot_of(catalog_path)
    cat = Catalog(catalog_path, user="bob")
    cat.list()
    cat.get("A")
    cat.problems  # noqa: B018
    cat.validate()
    cat.history("seg-a") if cat.history_path.exists() else None
    cat.resolve_segment("seg-a")
    assert snapshot_of(catalog_path) == before  # same bytes, mtime, inode, same folder


def test_unknown_keys_of_a_newer_version_survive_rewrites(catalog_path):
    write_catalog(
        catalog_path,
        [
            entry("seg-a", "A", tags=["vip"], approval={"by": "dana", "at": "2026-11-20"}),
            entry("seg-b", "B", color="teal"),
        ],
        generator="heapseg 9.0",
        settings={"default_category": "Misc"},
    )
    cat = Catalog(catalog_path, user="bob")
    assert dict(cat.get("seg-a").extra) == {
        "tags": ["vip"],
        "approval": {"by": "dana", "at": "2026-11-20"},
    }
    cat.update("seg-a", SESSIONS_OVER_5)
    cat.rename("seg-b", "Bee")
    cat.save(PAID, "C")
    doc = json.loads(catalog_path.read_text())
    assert doc["generator"] == "heapseg 9.0"
    assert doc["settings"] == {"default_category": "Misc"}
    a, b, _ = doc["segments"]
    assert a["tags"] == ["vip"] and a["approval"] == {"by": "dana", "at": "2026-11-20"}
    assert a["definition"] == SESSIONS_OVER_5 and a["revision"] == 2
    assert b["color"] == "teal" and b["name"] == "Bee"
    assert cat.get("seg-a").to_dict() == a


def test_an_entry_with_a_5000_digit_integer_is_reported_and_the_others_stay_usable(
    catalog_path,
):
    """Issue 14, finding 7: one huge integer made the whole catalog unreadable."""
    huge = "9" * 5000
    too_many = {
        "combinator": "and",
        "rules": [
            {"kind": "event", "event": "Session", "count": {"operator": ">", "value": "@HUGE@"}}
        ],
    }
    segments = [
        entry("seg-a", "A"),
        entry("seg-count", "Count", too_many),
        entry("seg-revision", "Revision", revision="@HUGE@"),
        entry("seg-b", "B", note={"big": "@HUGE@"}),
    ]
    text = json.dumps({"format": "heapseg-catalog", "version": 1, "segments": segments})
    catalog_path.write_text(text.replace('"@HUGE@"', huge))
    cat = Catalog(catalog_path, user="bob")
    assert [e.id for e in cat.list()] == ["seg-a", "seg-b"]
    found = {(p.segment_id, p.path): p.message for p in cat.problems}
    assert set(found) == {
        ("seg-count", "definition.rules[0].count.value"),
        ("seg-revision", "revision"),
    }
    assert "5000 digits" in found[("seg-count", "definition.rules[0].count.value")]
    assert "5000-digit number" in found[("seg-revision", "revision")]
    with pytest.raises(DefinitionError, match="5000 digits"):
        cat.get("seg-count")
    # Rewriting keeps every digit, and the file reads the same again.
    cat.save(SESSIONS_OVER_5, "C")
    cat.update("seg-b", description="edited")
    assert catalog_path.read_text().count(huge) == 3
    again = Catalog(catalog_path, user="carol")
    assert [e.id for e in again.list()] == ["seg-a", "seg-b", again.get("C").id]
    assert str(again.get("seg-b").extra["note"]["big"]) == huge


def test_a_lone_surrogate_escape_in_one_entry_does_not_block_every_save(catalog_path):
    """Found by the fuzzing in test_fuzz.py: "\\ud800" is valid JSON but has no UTF-8 form."""
    write_catalog(catalog_path, [entry("seg-a", "A", description="\ud800 half an emoji")])
    assert '"\\ud800 half an emoji"' in catalog_path.read_text()
    cat = Catalog(catalog_path, user="bob")
    assert cat.get("seg-a").description == "\ud800 half an emoji"
    cat.save(SESSIONS_OVER_5, "B")
    cat.rename("seg-a", "A renamed")
    # Written back as the same escape; the file stays UTF-8 and reads the same.
    raw = json.loads(catalog_path.read_text(encoding="utf-8"))["segments"][0]
    assert raw["description"] == "\ud800 half an emoji" and raw["name"] == "A renamed"
    assert [r.action for r in cat.history("seg-a")] == ["rename"]
    # New text must still be valid Unicode.
    with pytest.raises(CatalogError, match="not valid Unicode"):
        cat.update("seg-a", description="new \udc80")
