"""The catalog file: its top-level format checked, and the leftovers of dead writers removed."""

from __future__ import annotations

import pytest

from heapseg.catalog.storage import CatalogFile, parse_document
from heapseg.errors import CatalogFormatError


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
