"""The catalog browser: listing by category with counts, search and filters, open, members, export."""

from __future__ import annotations

import pandas as pd
import pytest

from heapseg.catalog import Catalog, EditConflictError
from heapseg.widgets import CatalogBrowser, SegmentBuilder
from heapseg.widgets.browser import _css_id

from .conftest import NEW_TRIAL_USERS, POSSIBLE_CHURN, WINDOW_SHOPPERS


@pytest.fixture
def filled(catalog: Catalog, ds):
    """Three segments in two categories (one static), and one of Bob's personal ones."""
    catalog.save(NEW_TRIAL_USERS, "New trial users", category="Lifecycle", description="new")
    catalog.save(WINDOW_SHOPPERS, "Window shoppers", category="Engagement")
    catalog.save(POSSIBLE_CHURN, "Churn snapshot", category="Lifecycle", static=True, dataset=ds)
    Catalog(catalog.path, user="bob").save(
        WINDOW_SHOPPERS, "Bob's shoppers", category="Engagement", visibility="personal"
    )
    return catalog


@pytest.fixture
def panel(filled, ds, tmp_path):
    made = CatalogBrowser(ds, filled, export_dir=tmp_path)
    assert made.wait(60)
    yield made
    made.close()


def names(panel) -> list[str]:
    return [e.name for e in panel.entries]


def test_lists_by_category_with_counts_from_one_overview(panel, filled, ds):
    assert names(panel) == ["Window shoppers", "Churn snapshot", "New trial users"]
    titles = [c.value for c in panel.listing.children if "heapseg-category-title" in c._dom_classes]
    assert titles == ["Engagement", "Lifecycle"]
    for entry in filled.list():
        assert panel.counts[entry.id] == filled.count(entry.id, ds)
        assert panel.shares[entry.id] == pytest.approx(panel.counts[entry.id] / ds.total_users())
    assert panel.total == ds.total_users()
    assert panel.problems == {}
    row = next(c for c in panel.listing.children if "heapseg-entry-row" in c._dom_classes)
    count_text = next(w for w in row.children if "heapseg-entry-count" in w._dom_classes).value
    assert f"{panel.counts[panel.entries[0].id]:,}" in count_text


def test_search_and_filters(panel):
    panel.search_input.value = "shop"
    assert names(panel) == ["Window shoppers"]
    panel.search_input.value = ""
    panel.type_input.value = "static"
    assert names(panel) == ["Churn snapshot"]
    panel.type_input.value = ""
    panel.category_input.value = "Lifecycle"
    assert names(panel) == ["Churn snapshot", "New trial users"]
    panel.category_filter = ""
    panel.owner_filter = "alice"
    assert len(panel.entries) == 3
    panel.search = "nothing like this"
    assert panel.entries == []
    assert any("heapseg-empty" in c._dom_classes for c in panel.listing.children)


def test_problem_entries_show_why(filled, ds):
    filled.save(
        {
            "combinator": "and",
            "rules": [{"kind": "user", "field": "plan", "operator": "=", "value": 1}],
        },
        "Broken",
    )
    panel = CatalogBrowser(ds, filled)
    try:
        assert panel.wait(60)
        broken = filled.get("Broken").id
        assert "plan" in panel.problems[broken]
        assert broken not in panel.counts
    finally:
        panel.close()


def test_open_in_builder(panel, filled, ds):
    entry = filled.get("Window shoppers")
    builder = panel.open_in_builder(entry.id)
    assert isinstance(builder, SegmentBuilder)
    assert builder.wait(60)
    assert panel.detail.children == (builder,)
    assert builder.entry_id == entry.id
    assert builder.root.to_dict() == WINDOW_SHOPPERS
    assert builder.count == panel.counts[entry.id]
    assert panel.open_in_builder("no such segment") is None
    assert "no segment" in panel.message


def test_members_pages(panel, filled, ds):
    entry = filled.get("Window shoppers")
    panel.page_size = 7
    panel.show_members(entry.id)
    assert panel.wait(60)
    expected = filled.members(entry.id, ds).order_by("user_id").limit(7).to_pandas()
    assert panel.members_of == entry.id
    # The same rows; the page keeps nullable types (ibis's to_pandas turns ids with gaps to floats).
    pd.testing.assert_frame_equal(panel.members.reset_index(drop=True), expected, check_dtype=False)
    assert panel.members["account_id"].dtype.name == "Int64"
    html = panel.detail.children[1].value  # account ids shown whole: 366, not 366.0
    shown = [int(v) for v in panel.members["account_id"].dropna()]
    assert shown and all(f"<td>{v}</td>" in html and f"<td>{v}.0</td>" not in html for v in shown)
    assert panel.members.columns[0] == "user_id"
    following = panel.detail.children[2].children[1]
    following.click()
    assert panel.wait(60)
    assert panel.page == 1
    second = filled.members(entry.id, ds).order_by("user_id").limit(7, offset=7).to_pandas()
    assert list(panel.members["user_id"]) == list(second["user_id"])


def test_export_writes_the_members(panel, filled, ds, tmp_path):
    entry = filled.get("Churn snapshot")
    panel.export(entry.id)
    assert panel.wait(60)
    written = tmp_path / "Churn snapshot.csv"  # named after the segment, not its id
    assert written.exists(), panel.message
    frame = pd.read_csv(written)
    assert len(frame) == filled.count(entry.id, ds)
    assert set(frame["user_id"]) == set(filled.members(entry.id, ds).to_pandas()["user_id"])
    assert str(written) in panel.message


def test_export_into_a_folder_the_analyst_chose(panel, filled, ds, tmp_path):
    entry = filled.get("Window shoppers")
    panel.export_input.value = str(tmp_path / "campaigns" / "december")  # the "Export to" box
    panel.format_input.value = "parquet"
    assert (panel.export_folder, panel.export_format) == (
        str(tmp_path / "campaigns" / "december"),
        "parquet",
    )
    row = next(c for c in panel.listing.children if _css_id(entry.id) in c._dom_classes)
    export = next(w for w in row.children if "heapseg-export" in w._dom_classes)
    for _ in range(2):
        export.click()
        assert panel.wait(60)
    folder = tmp_path / "campaigns" / "december"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Window shoppers (2).parquet",  # the first export is never overwritten
        "Window shoppers.parquet",
    ]
    frame = pd.read_parquet(folder / "Window shoppers.parquet")
    assert len(frame) == filled.count(entry.id, ds)
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob("seg-*"))


def test_export_of_a_name_no_file_system_accepts(panel, filled, ds, tmp_path):
    entry = filled.save(WINDOW_SHOPPERS, "Churn: paid / 90 days?")
    panel.reload()
    assert panel.wait(60)
    panel.export(entry.id)
    assert panel.wait(60)
    assert (tmp_path / "Churn paid 90 days.csv").exists(), panel.message


def test_export_into_a_folder_that_cannot_be_made(panel, filled, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    panel.export_folder = str(tmp_path / "a-file" / "inside")
    panel.export(filled.get("Window shoppers").id)
    assert panel.message.startswith(f"cannot export into {tmp_path / 'a-file' / 'inside'}")
    assert panel.last_error is not None


def test_refresh_static(panel, filled, ds):
    entry = filled.get("Churn snapshot")
    done = panel.refresh_static(entry.id)
    assert done is not None, panel.message
    assert "refreshed" in panel.message
    assert filled.get(entry.id).revision == entry.revision + 1
    assert panel.wait(60)
    assert panel.counts[entry.id] == done.after
    assert panel.refresh_static("Window shoppers") is None  # dynamic: refused, shown
    assert "dynamic" in panel.message


def test_refresh_static_is_based_on_the_revision_on_show(panel, filled):
    entry = next(e for e in panel.entries if e.name == "Churn snapshot")
    Catalog(filled.path, user="bob").update(entry.id, description="bob's note")
    # Not reloaded: the browser still shows the revision bob changed, so it conflicts.
    assert panel.refresh_static(entry.id) is None
    assert isinstance(panel.last_error, EditConflictError)
    assert "changed by bob" in panel.message
    panel.reload()
    assert panel.wait(60)
    done = panel.refresh_static("churn snapshot")
    assert done is not None, panel.message
    assert done.entry.revision == entry.revision + 2
    assert done.entry.description == "bob's note"
