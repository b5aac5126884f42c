"""The catalog file layer: tolerant parser, atomic replace, flock with timeout, dead writers."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heapseg.catalog import LockTimeoutError
from heapseg.catalog.storage import (
    MAX_DEPTH,
    CatalogFile,
    FileLock,
    RawJSON,
    _BoundedParser,
    atomic_write,
    dumps,
    loads,
    nesting_depth,
    parse_document,
)
from heapseg.errors import CatalogError, CatalogFormatError

REPO = Path(__file__).resolve().parents[2]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_bounded_parser_reads_what_json_reads(value):
    text = json.dumps(value, indent=1)
    assert _BoundedParser(text, 10_000).parse() == json.loads(text)
    assert loads(text) == json.loads(text)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_nesting_depth_matches_the_structure(value):
    def depth(v):
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0

    assert nesting_depth(json.dumps(value)) == depth(value)


def test_brackets_inside_strings_do_not_count():
    assert nesting_depth('{"a": "[[[[{{{{\\"]]]"}') == 1


def test_a_100000_level_document_loads_without_recursion_and_round_trips():
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"keep": 1, "deep": ' + deep + ', "after": "x"}'
    value = loads(text)
    assert value["keep"] == 1 and value["after"] == "x"
    node, level = value["deep"], 2  # the outer object is level 1
    while not isinstance(node, RawJSON):
        node, level = node[0], level + 1
    assert level == MAX_DEPTH + 1  # kept as objects down to MAX_DEPTH, verbatim below
    # Rewriting puts the deep part back byte for byte, and the result reads the same again.
    n = 100_001 - MAX_DEPTH
    assert node.text == "[" * n + "]" * n
    written = dumps(value)
    assert node.text in written
    again = loads(written)
    assert (again["keep"], again["after"]) == (1, "x")


def test_bounded_parser_reports_bad_json_with_position():
    with pytest.raises(ValueError, match="line 2 column"):
        _BoundedParser('{"a": 1,\n "b": }', 10).parse()
    with pytest.raises(ValueError, match="Unterminated"):
        loads("[" * 300 + "]" * 10)
    with pytest.raises(ValueError, match="Extra data"):
        _BoundedParser("[1] [2]", 10).parse()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ('{"format": "heapseg-catalog", "version": 1, "segm', "not valid JSON"),
        ("segments: []", "not valid JSON"),
        ("[]", "top level must be a JSON object"),
        ('{"format": "other", "version": 1, "segments": []}', "not a heapseg catalog"),
        ('{"version": 1, "segments": []}', "not a heapseg catalog"),
        ('{"format": "heapseg-catalog", "version": 2, "segments": []}', "newer heapseg"),
        ('{"format": "heapseg-catalog", "version": "1", "segments": []}', "integer 1"),
        ('{"format": "heapseg-catalog", "version": 1, "segments": {}}', '"segments" must be'),
    ],
)
def test_parse_document_rejects_what_is_not_a_catalog(text, message):
    with pytest.raises(CatalogFormatError, match=message):
        parse_document(text, "team.json")


def test_a_file_that_is_not_utf8_is_a_format_error(tmp_path):
    path = tmp_path / "team.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CatalogFormatError, match="not UTF-8"):
        CatalogFile(path).read()


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "team.json"
    path.write_text("old")
    os.chmod(path, 0o664)
    old_inode = path.stat().st_ino
    atomic_write(path, b"new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert path.stat().st_ino != old_inode  # a new file renamed over, not an in-place write
    assert os.listdir(tmp_path) == ["team.json"]


def test_atomic_write_failing_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "team.json"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(CatalogError, match=re.escape(f"cannot save {path}: disk full; nothing")):
        atomic_write(path, b"new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["team.json"]


def test_a_held_lock_times_out_with_a_clear_message(tmp_path):
    lock_path = tmp_path / "team.json.lock"
    with FileLock(lock_path):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            FileLock(lock_path, timeout=0.3).acquire()
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message
    assert "stayed locked for more than 0.3 s" in message
    assert str(lock_path) in message
    # Released: the next writer gets it at once.
    with FileLock(lock_path, timeout=0.1):
        pass


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from heapseg.catalog.storage import FileLock
    lock = FileLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_the_kernel_releases_the_lock_of_a_killed_writer(tmp_path):
    lock_path = tmp_path / "team.json.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeoutError, match=f"pid {holder.pid}"):
            FileLock(lock_path, timeout=0.2).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # The lock file is still there, still naming the dead holder: it does not matter.
        assert f'"pid": {holder.pid}' in lock_path.read_text()
        started = time.monotonic()
        with FileLock(lock_path, timeout=1):
            assert time.monotonic() - started < 0.5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_temp_files_of_dead_writers_are_removed_under_the_lock(tmp_path):
    path = tmp_path / "team.json"
    leftover = tmp_path / ".team.json.abc123.tmp"
    leftover.write_text("half a catalog")
    other = tmp_path / ".other.json.abc.tmp"
    other.write_text("not ours")
    with CatalogFile(path).locked():
        pass
    assert not leftover.exists()
    assert other.exists()


def test_dumps_is_readable_json_with_unicode_kept():
    text = dumps({"name": "Käufer ☕", "n": [1, 2]})
    assert "Käufer ☕" in text
    assert json.loads(text) == {"name": "Käufer ☕", "n": [1, 2]}
