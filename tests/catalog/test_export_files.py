"""File names for exported members: a segment's name made safe on every system, never a clash."""

from __future__ import annotations

import unicodedata

import pytest

from heapseg.catalog.export_files import file_stem, free_path

#: What Windows refuses in a file name (the strictest of Linux, macOS and Windows).
WINDOWS_FORBIDDEN = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("US repeat buyers", "US repeat buyers"),
        ("Churn: paid / 90 days?", "Churn paid 90 days"),
        ('a<b>c"d|e*f\\g', "a b c d e f g"),
        ("tab\tand\nnewline", "tab and newline"),
        ("  spaced   out  ", "spaced out"),
        (".hidden", "hidden"),
        ("trailing dots...", "trailing dots"),
        ("NUL", "_NUL"),
        ("com1.backup", "_com1.backup"),
        ("LPT9", "_LPT9"),
        ("Console", "Console"),  # only the exact device names are reserved
        ("???", "segment"),
        ("", "segment"),
        ("Käufer in Köln", "Käufer in Köln"),
    ],
)
def test_file_stem(name, stem):
    got = file_stem(name)
    assert got == stem
    assert not set(got) & WINDOWS_FORBIDDEN
    assert got == got.strip() and not got.startswith(".") and not got.endswith(".")


def test_file_stem_composes_accents_and_keeps_to_the_limit():
    decomposed = unicodedata.normalize("NFD", "Café")
    assert file_stem(decomposed) == "Café" and len(file_stem(decomposed)) == 4
    long = file_stem("x" * 300)
    assert long == "x" * 100
    assert file_stem("ab. cd", limit=3) == "ab"  # cut, then no trailing dot or space


def test_free_path_never_overwrites(tmp_path):
    first = free_path(tmp_path, "Window shoppers", ".csv")
    assert first == tmp_path / "Window shoppers.csv"
    first.write_text("")
    second = free_path(tmp_path, "Window shoppers", ".csv")
    assert second == tmp_path / "Window shoppers (2).csv"
    second.write_text("")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "missing")
    assert free_path(tmp_path, "Window shoppers", ".csv").name == "Window shoppers (3).csv"
    assert free_path(tmp_path, "dangling", ".csv").name == "dangling (2).csv"  # a link is taken
    assert free_path(tmp_path, "Window shoppers", ".parquet").name == "Window shoppers.parquet"
