"""Fuzzing the catalog file: random bytes and random JSON edits of a valid catalog.

Whatever the file holds, reading it raises nothing but ``CatalogError``s, the entries
nobody damaged stay usable, a damaged entry is reported (never silently dropped), a file
that cannot be read is never rewritten, and a rewrite keeps a damaged entry as it was.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heapseg.catalog import Catalog
from heapseg.catalog.jsontext import loads, to_json
from heapseg.errors import CatalogError, CatalogFormatError

from .conftest import ACTIVE, PAID, SESSIONS_OVER_5
from .test_bad_files import entry

SEGMENTS = [
    entry("seg-paid", "Paid", PAID, category="Revenue", description="They pay"),
    entry("seg-engaged", "Engaged", SESSIONS_OVER_5, owner="bob", visibility="personal"),
    entry("seg-active", "Active", ACTIVE),
    entry(
        "seg-uses",
        "Uses paid",
        {"combinator": "or", "rules": [{"kind": "segment", "id": "seg-paid"}]},
    ),
]
VALID = {"format": "heapseg-catalog", "version": 1, "segments": SEGMENTS}
#: Stand-ins replaced in the JSON text by what ``json.dumps`` cannot write.
HUGE, DEEP = "@@huge-integer@@", "@@deep-array@@"
REPLACEMENTS = {f'"{HUGE}"': "-" + "8" * 5000, f'"{DEEP}"': "[" * 400 + "]" * 400}

#: Text with what a hostile file may hold: controls, bidi overrides, lone surrogates (which a
#: "\ud800" escape gives), a byte-order mark.
hostile_text = st.text(max_size=8) | st.builds(
    "".join,
    st.lists(
        st.text(max_size=3)
        | st.characters(categories=["Cs"])
        | st.sampled_from(["\x00", "\x1b[2J", "\x07", "\r", "\x7f", "\x9b", "\u202e", "\ufeff"]),
        min_size=1,
        max_size=4,
    ),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats()  # NaN and Infinity included: Python's reader accepts them
    | hostile_text
    | st.sampled_from([HUGE, DEEP, "", " ", "seg-paid", "Paid", "static", "personal"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def as_bytes(document: Any, ensure_ascii: bool) -> bytes:
    """The document as a JSON file: UTF-8, lone surrogates written as JSON escapes."""
    text = json.dumps(document, ensure_ascii=ensure_ascii)
    for stand_in, raw in REPLACEMENTS.items():
        text = text.replace(stand_in, raw)
    # Surrogates occur only inside strings, where "\udc80" is their JSON escape.
    return text.encode("utf-8", "backslashreplace")


@contextmanager
def catalog_file(data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "team.json"
        path.write_bytes(data)
        yield path


def check_unreadable_file_is_kept(path: Path, error: CatalogError) -> None:
    """A file that cannot be read is reported, and a writer refuses to replace it."""
    assert isinstance(error, CatalogFormatError) or "cannot read" in str(error), error
    before = path.read_bytes()
    cat = Catalog(path, user="fuzzer", lock_timeout=5)
    try:
        cat.save(PAID, "Fuzz new")
    except CatalogError:
        pass
    else:
        raise AssertionError("a catalog that could not be read was rewritten")
    assert path.read_bytes() == before
    assert not cat.history_path.exists()
    assert sorted(os.listdir(path.parent)) == ["team.json", "team.json.lock"]


def read_everything(cat: Catalog) -> list:
    """Every read a user can make; only CatalogErrors (and their family) may come out."""
    entries = cat.list(everyone=True)
    for found in entries:
        assert cat.get(found.id).revision == found.revision
        if not found.is_static:  # a static one would read its members file
            cat.resolve_segment(found.id)
        to_json(found.to_dict())
    for problem in cat.problems:
        assert str(problem)
    cat.validate()
    cat.categories()
    return entries


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=300)
    | st.builds(str.encode, hostile_text, st.just("utf-8"), st.just("surrogatepass"))
)
def test_random_bytes_are_read_or_refused_never_crashed_on(data):
    with catalog_file(data) as path:
        cat = Catalog(path, user="fuzzer", lock_timeout=5)
        try:
            read_everything(cat)
        except CatalogError as error:
            check_unreadable_file_is_kept(path, error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_byte_edits_of_a_valid_catalog(data):
    text = bytearray(json.dumps(VALID, indent=1).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text) - 1))
        edit = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if edit == "flip":
            text[at] = data.draw(st.integers(0, 255))
        elif edit == "insert":
            text[at:at] = data.draw(st.binary(min_size=1, max_size=3))
        else:
            del text[at : at + data.draw(st.integers(1, 8))]
    with catalog_file(bytes(text)) as path:
        cat = Catalog(path, user="fuzzer", lock_timeout=5)
        try:
            entries = read_everything(cat)
        except CatalogError as error:
            check_unreadable_file_is_kept(path, error)
            return
        # Read: every entry is either usable or reported, none silently dropped.
        usable = {e.id for e in entries}
        reported = {p.index for p in cat.problems}
        document = loads(bytes(text).decode("utf-8-sig"))
        for index, raw in enumerate(document["segments"]):
            identifier = raw.get("id") if isinstance(raw, dict) else None
            assert identifier in usable or index in reported, (index, raw)


def edit_entry(data: st.DataObject, raw: Any) -> Any:
    """A random edit somewhere inside one entry: replace, delete or add a value."""
    if not isinstance(raw, (dict, list)) or not raw or data.draw(st.integers(0, 3)) == 0:
        return data.draw(json_values)
    key = data.draw(st.sampled_from(list(raw) if isinstance(raw, dict) else range(len(raw))))
    action = data.draw(st.sampled_from(["replace", "delete", "add", "deeper"]))
    if action == "deeper":
        raw[key] = edit_entry(data, raw[key])
    elif action == "replace":
        raw[key] = data.draw(json_values)
    elif action == "delete":
        del raw[key]
    elif isinstance(raw, dict):
        raw[data.draw(hostile_text)] = data.draw(json_values)
    else:
        raw.append(data.draw(json_values))
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_of_one_entry_leave_the_others_usable(data):
    document = copy.deepcopy(VALID)
    victim = data.draw(st.integers(0, len(SEGMENTS) - 1))
    document["segments"][victim] = edit_entry(data, document["segments"][victim])
    text = as_bytes(document, ensure_ascii=data.draw(st.booleans()))
    with catalog_file(text) as path:
        cat = Catalog(path, user="alice", lock_timeout=5)
        entries = read_everything(cat)  # the file itself is fine: reading must work
        by_id = {e.id: e for e in entries}
        problems = {p.index: p for p in cat.problems}
        edited = loads(text.decode())["segments"][victim]
        for index, raw in enumerate(SEGMENTS):
            if index == victim:
                continue
            # Untouched entries stay usable, unless the edited one now claims their id or
            # name first (the later of two duplicates is the one reported), or they refer to
            # the edited one and it is unusable (a reference, checked by validate).
            if raw["id"] in by_id:
                assert by_id[raw["id"]].to_dict() == raw
            else:
                assert index in problems and problems[index].path in ("id", "name"), problems
                assert index > victim
        kept_id = edited.get("id") if isinstance(edited, dict) else None
        if edited != SEGMENTS[victim] and not (isinstance(kept_id, str) and kept_id in by_id):
            assert victim in problems  # damaged and not usable: reported, not dropped

        # A rewrite keeps the edited entry exactly as it was written.
        before = to_json(edited)
        cat.save(PAID, "Fuzz new")
        again = Catalog(path, user="bob")
        assert to_json(loads(path.read_text())["segments"][victim]) == before
        assert {e.id for e in again.list(everyone=True)} >= set(by_id)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_edits_of_the_top_level_are_read_or_refused(data):
    document = copy.deepcopy(VALID)
    key = data.draw(st.sampled_from(["format", "version", "segments", "extra", None]))
    if key is None:
        document = data.draw(json_values)
    elif data.draw(st.booleans()):
        document[key] = data.draw(json_values)
    else:
        document.pop(key, None)
    text = as_bytes(document, ensure_ascii=data.draw(st.booleans()))
    with catalog_file(text) as path:
        cat = Catalog(path, user="fuzzer", lock_timeout=5)
        try:
            read_everything(cat)
        except CatalogError as error:
            check_unreadable_file_is_kept(path, error)
            return
        cat.save(PAID, "Fuzz new")  # a readable file takes a save
        if key == "extra" and "extra" in document:
            written = loads(path.read_text())["extra"]
            assert to_json(written) == to_json(loads(text.decode())["extra"])
