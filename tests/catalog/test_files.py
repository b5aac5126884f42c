"""heapseg's own files: atomic replacement that keeps permissions and leaves nothing behind."""

from __future__ import annotations

import os
import re
import stat

import pytest

from heapseg.catalog.files import atomic_write
from heapseg.errors import CatalogError


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
