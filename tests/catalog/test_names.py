"""A saved segment is named by its id or its name everywhere: catalog, references, charts, CLI."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import heapseg
from heapseg import charts, cli, in_segment, not_in_segment
from heapseg.catalog import Catalog
from heapseg.errors import (
    AmbiguousNameError,
    BriefError,
    NotFoundError,
    SegmentReferenceError,
)
from tests.catalog.conftest import PAID, stored

# In tiny_dataset: paid u2, u3, u6; US u2, u3, u6; sessions in the last 3 days (LATE) u1, u2, u6.
PAID_IDS = {"u2", "u3", "u6"}


@pytest.fixture
def catalog(catalog_path) -> Catalog:
    cat = Catalog(catalog_path, user="ana")
    cat.save(PAID, "US repeat buyers", category="Revenue")
    return cat


def members(ds, segment) -> set:
    return set(ds.members(segment).to_pandas()["user_id"])


def test_in_segment_takes_a_name_an_id_or_an_entry(catalog, tiny_dataset):
    entry = catalog.get("US repeat buyers")
    ds = heapseg.connect(tiny_dataset.backend, as_of=tiny_dataset.default_as_of, resolver=catalog)
    by_hand = {"u1", "u2", "u3", "u4", "u5", "u6"} - {"u1", "u4", "u5"}
    assert by_hand == PAID_IDS
    for key in ("US repeat buyers", "us REPEAT buyers ", entry.id, entry):
        assert members(ds, in_segment(key)) == PAID_IDS, key
        assert members(ds, not_in_segment(key)) == {"u1", "u4", "u5"}, key


def test_an_unknown_name_is_a_short_error_naming_the_nearest(catalog, tiny_dataset):
    ds = heapseg.connect(tiny_dataset.backend, as_of=tiny_dataset.default_as_of, resolver=catalog)
    with pytest.raises(SegmentReferenceError) as info:
        ds.count(in_segment("US repeat buyerz"))
    message = str(info.value)
    assert "'US repeat buyerz'" in message and "did you mean 'US repeat buyers'?" in message
    assert isinstance(info.value, BriefError)
    assert info.value._render_traceback_() == [f"SegmentReferenceError: {message}"]


def test_a_notebook_shows_the_error_in_one_line(catalog_path):
    from IPython.core.interactiveshell import InteractiveShell

    Catalog(catalog_path, user="ana").save(PAID, "US repeat buyers")
    shell = InteractiveShell.instance()
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        result = shell.run_cell(
            "import heapseg\n"
            f"catalog = heapseg.Catalog({str(catalog_path)!r})\n"
            "ds = heapseg.connect(resolver=catalog)\n"
            "ds.count(heapseg.in_segment('US repeat buyerz'))\n"
        )
    assert isinstance(result.error_in_exec, SegmentReferenceError)
    lines = shown.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("SegmentReferenceError: no segment with id or name")
    assert "did you mean 'US repeat buyers'?" in lines[0]


def test_saving_a_reference_by_name_stores_the_id(catalog, catalog_path, tiny_dataset):
    target = catalog.get("US repeat buyers")
    saved = catalog.save(in_segment("us repeat buyers"), "Paid again")
    raw = next(s for s in stored(catalog_path)["segments"] if s["name"] == "Paid again")
    assert raw["definition"]["rules"] == [{"kind": "segment", "id": target.id}]
    assert saved.segment.referenced_segments() == [target.id]
    # The reference survives a rename of its target: it holds the id.
    catalog.rename(target, "Paying users")
    ds = heapseg.connect(tiny_dataset.backend, as_of=tiny_dataset.default_as_of, resolver=catalog)
    assert members(ds, in_segment(saved.id)) == PAID_IDS
    # An update by name stores the id as well.
    catalog.update(saved, in_segment("Paying users") & (heapseg.user.country == "US"))
    raw = next(s for s in stored(catalog_path)["segments"] if s["name"] == "Paid again")
    assert {"kind": "segment", "id": target.id} in raw["definition"]["rules"]


def test_saving_an_unknown_name_is_refused_with_the_nearest(catalog, catalog_path):
    before = stored(catalog_path)
    with pytest.raises(SegmentReferenceError, match="did you mean 'US repeat buyers'"):
        catalog.save(in_segment("US repeat buyer"), "Broken")
    assert stored(catalog_path) == before


def test_get_and_delete_by_name(catalog, catalog_path):
    assert catalog.get("us repeat BUYERS").name == "US repeat buyers"
    with pytest.raises(NotFoundError, match="did you mean 'US repeat buyers'"):
        catalog.get("US repeat buyer")
    catalog.delete("US repeat buyers")
    assert stored(catalog_path)["segments"] == []


def _two_of_one_name(catalog_path) -> list[str]:
    """A file edited by hand so that two segments share one name; their ids."""
    cat = Catalog(catalog_path, user="ana")
    first = cat.save(PAID, "Paid")
    second = cat.save(PAID, "Paid (copy)")
    document = stored(catalog_path)
    document["segments"][1]["name"] = "paid"
    catalog_path.write_text(json.dumps(document))
    return [first.id, second.id]


def test_a_name_two_segments_share_is_ambiguous(catalog_path, tiny_dataset):
    ids = _two_of_one_name(catalog_path)
    cat = Catalog(catalog_path, user="ana")
    with pytest.raises(AmbiguousNameError) as info:
        cat.get("Paid")
    assert all(repr(i) in str(info.value) for i in ids)
    assert "name one by its id" in str(info.value)
    assert cat.get(ids[0]).id == ids[0]  # ids stay unique
    ds = heapseg.connect(tiny_dataset.backend, as_of=tiny_dataset.default_as_of, resolver=cat)
    with pytest.raises(SegmentReferenceError, match="2 segments are named 'Paid'"):
        ds.count(in_segment("Paid"))
    assert members(ds, in_segment(ids[0])) == PAID_IDS
    with pytest.raises(SegmentReferenceError, match="refer to one by its id"):
        cat.save(in_segment("PAID"), "Built on paid")


def test_charts_take_names(catalog, tiny_dataset):
    ds = heapseg.connect(tiny_dataset.backend, as_of=tiny_dataset.default_as_of, resolver=catalog)
    chart = charts.sizes(ds, ["US repeat buyers"])
    assert chart.data[["segment", "users"]].to_dict("records") == [
        {"segment": "US repeat buyers", "users": 3}
    ]
    with pytest.raises(NotFoundError, match="did you mean 'US repeat buyers'"):
        charts.sizes(ds, ["US repeat buyer"])


def test_the_command_line_counts_by_name(catalog, catalog_path, tmp_path, capsys):
    from tests.test_cli import make_data

    data = make_data(tmp_path / "shop.duckdb")
    common = ["--catalog", str(catalog_path), "--data", str(data), "--as-of", "2026-01-12"]
    assert cli.main([*common, "count", "us repeat buyers"]) == 0
    assert capsys.readouterr().out.split()[0] == "3"
    assert cli.main([*common, "count", "US repeat buyer"]) == cli.NOT_FOUND
    assert "did you mean 'US repeat buyers'" in capsys.readouterr().err
