"""Hostile and careless engine inputs (issue 14): only heapseg's own errors, never a traceback.

Definitions beyond every limit, numbers and dates beyond every range, text no database takes,
fed to a small DuckDB dataset, to the catalog's validation and to the command line.
"""

from __future__ import annotations

import json

import pytest

from heapseg import cli
from heapseg.catalog import Catalog


def entry(segment_id: str, definition: dict) -> dict:
    return {
        "id": segment_id,
        "name": segment_id.upper(),
        "description": "",
        "category": "",
        "type": "dynamic",
        "visibility": "shared",
        "owner": "mallory",
        "created_at": "2026-11-22T10:15:00+01:00",
        "updated_at": "2026-11-22T10:15:00+01:00",
        "revision": 1,
        "definition": definition,
    }


def chain_catalog(path, length: int) -> None:
    """seg-0 -> seg-1 -> ... -> seg-{length-1}: each refers to the next, the last to nobody."""
    segments = []
    for i in range(length):
        rules = [{"kind": "user", "field": "subscription_type", "operator": "is set"}]
        if i + 1 < length:
            rules.append({"kind": "segment", "id": f"seg-{i + 1}"})
        segments.append(entry(f"seg-{i}", {"combinator": "and", "rules": rules}))
    doc = {"format": "heapseg-catalog", "version": 1, "segments": segments}
    path.write_text(json.dumps(doc))


# --------------------------------------------------------------------------- reference chains


def test_catalog_validate_reports_a_chain_of_300_references(tmp_path):
    path = tmp_path / "team.json"
    chain_catalog(path, 300)
    problems = {p.segment_id: p for p in Catalog(path, user="bob").validate()}
    # seg-i nests 300 - i groups: those deeper than 32 levels are reported, the rest are fine.
    assert sorted(problems, key=lambda s: int(s[4:])) == [f"seg-{i}" for i in range(300 - 33)]
    first = problems["seg-0"]
    assert first.path == "definition"
    assert "nested more than 32 levels deep through segment references" in first.message
    assert "seg-0 -> seg-1 -> seg-2 -> ... -> seg-298 -> seg-299, 300 segments" in first.message


def test_cli_validate_and_count_report_the_long_chain(tmp_path, capsys):
    path = tmp_path / "team.json"
    chain_catalog(path, 300)
    assert cli.main(["--catalog", str(path), "catalog", "validate"]) == 1
    out, err = capsys.readouterr()
    assert "seg-0" in out and "nested more than 32 levels" in out
    assert "267 problem(s) found" in err
    assert cli.main(["--catalog", str(path), "count", "seg-0"]) == 1
    out, err = capsys.readouterr()
    assert "nested more than 32 levels" in err and "Traceback" not in err
    assert cli.main(["--catalog", str(path), "count", "seg-280"]) == 0
