"""Hostile things around the catalog file: links, FIFOs, read-only files, full disks.

Nothing outside heapseg's own files is ever touched, nothing hangs, and every failure is a
``CatalogError`` that names the path, with the catalog left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from heapseg.catalog import Catalog
from heapseg.errors import CatalogError

from .conftest import PAID, SESSIONS_OVER_5

REPO = Path(__file__).resolve().parents[2]


def as_unprivileged(argv: list[str]) -> list[str]:
    """Run ``argv`` without the permission override root has, so modes are enforced.

    A non-root user has no override to drop; root keeps its uid but loses
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, as a normal analyst would not have them.
    """
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root, the permission tests need setpriv (util-linux)"
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", *argv]


def run_python(code: str, *args: str, unprivileged: bool = False, timeout: float = 60) -> str:
    """Run a snippet in a fresh interpreter (a hang fails the test, it does not hang it)."""
    argv = [sys.executable, "-c", textwrap.dedent(code), *args]
    done = subprocess.run(
        as_unprivileged(argv) if unprivileged else argv,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


#: Runs each action of argv[2:] on the catalog argv[1] and prints one line per action:
#: "ok" or the exception's class and message (a CatalogError must name the path).
ACTIONS = """
    import sys
    from heapseg.catalog import Catalog
    from heapseg.errors import CatalogError
    PAID = {"combinator": "and", "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}]}
    cat = Catalog(sys.argv[1], user="mallory", lock_timeout=5)
    actions = {
        "list": lambda: cat.list(),
        "get-missing": lambda: cat.get("nobody"),
        "history": lambda: cat.history("seg-a"),
        "save": lambda: cat.save(PAID, "Another"),
        "update": lambda: cat.update("seg-a", description="x"),
        "members": lambda: cat.static_members("seg-a"),
    }
    for name in sys.argv[2:]:
        try:
            actions[name]()
            print(name, "ok")
        except Exception as exc:
            print(name, type(exc).__name__, isinstance(exc, CatalogError), str(exc))
"""


def outcomes(output: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in output.splitlines())


def fingerprint(path: Path) -> tuple[bytes, int, int]:
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


def leftovers(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


@pytest.fixture
def saved(catalog_path: Path) -> Catalog:
    """A catalog with one segment, its lock and history already created."""
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    return cat


# ----------------------------------------------------------------------------------- links


@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-file", "dangling"])
def test_a_symlinked_lock_file_is_refused_and_its_target_left_alone(
    saved, catalog_path, tmp_path, dangling
):
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    if not dangling:
        victim.write_text("precious\n")
    lock = catalog_path.with_name("team.json.lock")
    lock.unlink()
    lock.symlink_to(victim)
    before = fingerprint(catalog_path)
    with pytest.raises(CatalogError, match=re.escape(str(lock))) as caught:
        saved.save(SESSIONS_OVER_5, "Engaged")
    assert "symbolic link" in str(caught.value)
    assert lock.is_symlink()
    if dangling:
        assert not victim.exists()  # not created through the link either
    else:
        assert victim.read_text() == "precious\n"
    assert fingerprint(catalog_path) == before


def test_a_hard_linked_lock_file_is_refused_and_the_other_name_left_alone(
    saved, catalog_path, tmp_path
):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = catalog_path.with_name("team.json.lock")
    lock.unlink()
    os.link(victim, lock)
    with pytest.raises(CatalogError, match=re.escape(str(lock))) as caught:
        saved.save(SESSIONS_OVER_5, "Engaged")
    assert "hard link" in str(caught.value)
    assert victim.read_text() == "precious\n"


def test_a_symlinked_history_file_is_refused_and_its_target_left_alone(
    saved, catalog_path, tmp_path
):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    history = saved.history_path
    history.unlink()
    history.symlink_to(victim)
    before = fingerprint(catalog_path)
    segment_id = saved.get("Paid").id
    for change in (
        lambda: saved.save(SESSIONS_OVER_5, "Engaged"),
        lambda: saved.update(segment_id, description="x"),
        lambda: saved.history(segment_id),
    ):
        with pytest.raises(CatalogError, match=re.escape(str(history))) as caught:
            change()
        assert "symbolic link" in str(caught.value)
    assert victim.read_text() == "precious\n"
    assert fingerprint(catalog_path) == before


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_a_symlinked_catalog_is_written_through_to_its_target(tmp_path, relative):
    shared = tmp_path / "srv" / "team"
    shared.mkdir(parents=True)
    real = shared / "real.json"
    first = Catalog(real, user="alice").save(PAID, "Paid")
    home = tmp_path / "home"
    home.mkdir()
    link = home / "link.json"
    link.symlink_to(os.path.relpath(real, home) if relative else real)

    bob = Catalog(link, user="bob")
    assert bob.path == real
    engaged = bob.save(SESSIONS_OVER_5, "Engaged")
    bob.update(first.id, description="bob's edit")

    assert link.is_symlink() and link.resolve() == real  # still the shared file
    team = Catalog(real, user="carol")
    assert [(e.name, e.description) for e in team.list()] == [
        ("Paid", "bob's edit"),
        ("Engaged", ""),
    ]
    assert [r.user for r in team.history(engaged.id)] == ["bob"]
    # Lock and history live beside the shared file, where every writer finds them.
    assert sorted(os.listdir(home)) == ["link.json"]
    assert {"real.json.lock", "real.json.history.jsonl"} <= set(os.listdir(shared))


def test_a_catalog_replaced_by_a_link_after_opening_is_not_split(catalog_path, tmp_path):
    cat = Catalog(catalog_path, user="alice")
    cat.save(PAID, "Paid")
    elsewhere = tmp_path / "elsewhere.json"
    catalog_path.rename(elsewhere)
    catalog_path.symlink_to(elsewhere)
    before = fingerprint(elsewhere)
    with pytest.raises(CatalogError, match=re.escape(str(catalog_path))) as caught:
        cat.save(SESSIONS_OVER_5, "Engaged")
    assert "symbolic link" in str(caught.value)
    assert catalog_path.is_symlink()
    assert fingerprint(elsewhere) == before


# ----------------------------------------------------------------------------- permissions


def test_a_read_only_catalog_file_is_refused_and_kept(saved, catalog_path):
    catalog_path.chmod(0o444)
    before = fingerprint(catalog_path)
    history_before = saved.history_path.read_bytes()
    segment_id = saved.get("Paid").id
    for change in (
        lambda: saved.save(SESSIONS_OVER_5, "Engaged"),
        lambda: saved.update(segment_id, description="x"),
        lambda: saved.delete(segment_id),
    ):
        with pytest.raises(CatalogError, match=re.escape(str(catalog_path))) as caught:
            change()
        assert "read-only" in str(caught.value)
    assert fingerprint(catalog_path) == before
    assert saved.history_path.read_bytes() == history_before
    assert oct(catalog_path.stat().st_mode & 0o777) == oct(0o444)
    assert leftovers(catalog_path.parent) == []
    assert [e.name for e in saved.list()] == ["Paid"]  # reading still works


def test_a_catalog_the_writer_may_not_write_is_refused_and_kept(saved, catalog_path):
    # Writable by its group but not by its owner (the writer): the folder would allow the
    # rename, the file itself does not allow the write.
    catalog_path.chmod(0o464)
    before = fingerprint(catalog_path)
    out = outcomes(run_python(ACTIONS, str(catalog_path), "save", "list", unprivileged=True))
    assert out["save"].startswith("CatalogError True ")
    assert str(catalog_path) in out["save"] and "not writable" in out["save"]
    assert out["list"] == "ok"
    assert fingerprint(catalog_path) == before


def test_a_read_only_folder_is_a_catalog_error_naming_the_path(saved, catalog_path):
    folder = catalog_path.parent
    folder.chmod(0o555)
    try:
        out = outcomes(run_python(ACTIONS, str(catalog_path), "save", unprivileged=True))
    finally:
        folder.chmod(0o755)
    assert out["save"].startswith("CatalogError True ")
    assert str(folder) in out["save"] and "Permission denied" in out["save"]
    assert [e.name for e in Catalog(catalog_path, user="bob").list()] == ["Paid"]
    assert leftovers(folder) == []


def test_an_unreadable_history_is_a_catalog_error_naming_the_path(saved, catalog_path):
    saved.history_path.chmod(0o000)
    out = outcomes(run_python(ACTIONS, str(catalog_path), "history", "save", unprivileged=True))
    for action in ("history", "save"):
        assert out[action].startswith("CatalogError True "), out
        assert str(saved.history_path) in out[action]


# ----------------------------------------------------------------------------------- FIFOs


def test_a_fifo_in_place_of_the_history_does_not_hang(saved, catalog_path):
    saved.history_path.unlink()
    os.mkfifo(saved.history_path)
    before = fingerprint(catalog_path)
    out = outcomes(run_python(ACTIONS, str(catalog_path), "list", "history", "get-missing", "save"))
    assert out["list"] == "ok"
    for action in ("history", "get-missing", "save"):
        assert out[action].startswith("CatalogError True "), out
        assert str(saved.history_path) in out[action] and "not a regular file" in out[action]
    assert fingerprint(catalog_path) == before


def test_a_fifo_in_place_of_the_catalog_does_not_hang(catalog_path):
    os.mkfifo(catalog_path)
    out = outcomes(run_python(ACTIONS, str(catalog_path), "list", "save"))
    for action in ("list", "save"):
        assert out[action].startswith("CatalogError True "), out
        assert str(catalog_path) in out[action] and "not a regular file" in out[action]


@pytest.mark.parametrize("suffix", [".parquet", ".json"])
def test_a_fifo_in_place_of_frozen_members_does_not_hang(catalog_path, suffix):
    members = f"team.snapshots/seg-a{suffix}"
    raw = {
        "id": "seg-a",
        "name": "A",
        "type": "static",
        "visibility": "shared",
        "owner": "alice",
        "created_at": "2026-11-22T10:15:00+01:00",
        "updated_at": "2026-11-22T10:15:00+01:00",
        "revision": 1,
        "definition": PAID,
        "snapshot": {"as_of": "2026-11-22T10:15:00+01:00", "count": 2, "members": members},
    }
    doc = {"format": "heapseg-catalog", "version": 1, "segments": [raw]}
    catalog_path.write_text(json.dumps(doc))
    (catalog_path.parent / "team.snapshots").mkdir()
    os.mkfifo(catalog_path.parent / members)
    out = outcomes(run_python(ACTIONS, str(catalog_path), "members"))
    assert out["members"].startswith("CatalogError True "), out
    assert members in out["members"] and "not a regular file" in out["members"]


# ------------------------------------------------------------------------- disk full, EIO


def fail(
    monkeypatch: pytest.MonkeyPatch, name: str, matches: Callable[..., bool], code: int
) -> None:
    """Make ``os.<name>`` fail with ``code`` when ``matches(*args)``, as a full disk would."""
    real = getattr(os, name)

    def failing(*args, **kwargs):
        if matches(*args):
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, failing)


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize(
    ("call", "target", "code"),
    [
        ("fsync", "temp", errno.ENOSPC),
        ("replace", "temp", errno.EACCES),
        ("write", "history", errno.ENOSPC),
        ("fsync", "history", errno.EDQUOT),
    ],
)
def test_a_failing_disk_is_a_catalog_error_and_the_file_stays_intact(
    saved, catalog_path, monkeypatch, call, target, code
):
    before = fingerprint(catalog_path)
    history = saved.history_path

    def matches(first, *rest) -> bool:
        name = fd_path(first) if isinstance(first, int) else str(first)
        return name.endswith(".tmp") if target == "temp" else name == str(history)

    fail(monkeypatch, call, matches, code)
    with pytest.raises(CatalogError) as caught:
        saved.save(SESSIONS_OVER_5, "Engaged")
    monkeypatch.undo()
    message = str(caught.value)
    assert os.strerror(code) in message
    assert str(history if target == "history" else catalog_path) in message
    assert "nothing was saved" in message
    assert fingerprint(catalog_path) == before
    assert leftovers(catalog_path.parent) == []
    after = Catalog(catalog_path, user="bob")
    assert [e.name for e in after.list()] == ["Paid"] and after.problems == []
    after.save(SESSIONS_OVER_5, "Engaged")  # the next writer is not blocked


def test_a_full_disk_while_freezing_members_is_a_catalog_error(
    catalog_path, tiny_dataset, monkeypatch
):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    before = fingerprint(catalog_path)
    fail(monkeypatch, "fsync", lambda fd: ".snapshots" in fd_path(fd), errno.ENOSPC)
    with pytest.raises(CatalogError) as caught:
        cat.freeze(entry, tiny_dataset)
    monkeypatch.undo()
    assert "No space left on device" in str(caught.value)
    assert str(cat.snapshots_path) in str(caught.value)
    assert fingerprint(catalog_path) == before
    assert os.listdir(cat.snapshots_path) == []
    assert cat.get(entry.id).type == "dynamic"


@pytest.mark.parametrize("which", ["catalog", "history", "lock"])
def test_a_folder_in_place_of_a_catalog_file_is_refused(saved, catalog_path, which):
    path = {
        "catalog": catalog_path,
        "history": saved.history_path,
        "lock": catalog_path.with_name("team.json.lock"),
    }[which]
    path.unlink()
    path.mkdir()
    cat = Catalog(catalog_path, user="bob")
    with pytest.raises(CatalogError, match=re.escape(str(path))) as caught:
        cat.save(SESSIONS_OVER_5, "Engaged")
    assert "not a regular file" in str(caught.value)
    assert path.is_dir() and os.listdir(path) == []


def test_frozen_members_are_never_written_through_a_linked_folder(
    catalog_path, tiny_dataset, tmp_path
):
    cat = Catalog(catalog_path, user="alice")
    entry = cat.save(PAID, "Paid")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cat.snapshots_path.symlink_to(elsewhere)
    before = fingerprint(catalog_path)
    with pytest.raises(CatalogError, match=re.escape(str(cat.snapshots_path))) as caught:
        cat.freeze(entry, tiny_dataset)
    assert "symbolic link" in str(caught.value)
    assert os.listdir(elsewhere) == []
    assert fingerprint(catalog_path) == before
