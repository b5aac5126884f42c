"""The segment builder in a real JupyterLab page: "Window shoppers" built by clicking and typing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import heapseg
from heapseg.sample import SAMPLE_AS_OF, generate

from .conftest import Lab

pytestmark = pytest.mark.browser

WINDOW_SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}
DESCRIBED = "did Session more than 5 times AND did not do Completed Order"
SECONDS = 1000  # Playwright counts in milliseconds


def write_notebook(lab: Lab, sample: Path, catalog: Path) -> str:
    """A notebook that connects to the sample with a temporary catalog and shows a builder."""
    code = "\n".join(
        [
            "import heapseg",
            "from heapseg.catalog import Catalog",
            "from heapseg.sample import SAMPLE_AS_OF",
            "from heapseg.widgets import SegmentBuilder",
            "",
            f"ds = heapseg.connect({str(sample)!r}, as_of=SAMPLE_AS_OF)",
            f"catalog = Catalog({str(catalog)!r}, user='analyst')",
            "builder = SegmentBuilder(ds, catalog)",
            "builder",
        ]
    )
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(code))
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    name = "segment-builder.ipynb"
    nbformat.write(notebook, lab.root / name)
    return name


def shown_number(text: str) -> int:
    """The first number in a text as the page shows it ("1,349 users (67.5%)" -> 1349)."""
    found = re.search(r"\d[\d,]*", text)
    assert found, f"no number in {text!r}"
    return int(found.group().replace(",", ""))


def test_window_shoppers_built_and_saved_in_jupyterlab(lab, chromium_browser, artifacts, tmp_path):
    sample = generate(tmp_path / "sample.duckdb", n_users=2000)
    catalog_path = tmp_path / "catalog.json"
    ds = heapseg.connect(sample, as_of=SAMPLE_AS_OF)
    expected = ds.count(WINDOW_SHOPPERS)
    expected_rules = [
        ds.count({"combinator": "and", "rules": [rule]}) for rule in WINDOW_SHOPPERS["rules"]
    ]
    notebook = write_notebook(lab, sample, catalog_path)

    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    try:
        page.goto(lab.page_url(notebook))
        # The status bar says "| Idle" only once the kernel is connected; Run before that is lost.
        page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECONDS)
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        builder = page.locator(".heapseg-builder")
        builder.wait_for(state="visible", timeout=120 * SECONDS)
        page.screenshot(path=str(artifacts / "01-empty-builder.png"))

        add_event = builder.locator(".heapseg-definition .heapseg-add-event").first
        add_event.click()
        sessions = builder.locator(".heapseg-rule-event").nth(0)
        sessions.wait_for()
        sessions.locator(".heapseg-event input").fill("Session")
        sessions.locator(".heapseg-mode select").select_option(label="a number of times")
        sessions.locator(".heapseg-count-operator select").select_option(label=">")
        count_value = sessions.locator(".heapseg-count-value input")
        count_value.fill("5")
        count_value.press("Enter")

        add_event.click()
        orders = builder.locator(".heapseg-rule-event").nth(1)
        orders.wait_for()
        orders.locator(".heapseg-event input").fill("Completed Order")
        orders.locator(".heapseg-did select").select_option(label="did not do")

        builder.locator(".heapseg-name input").fill("Window shoppers")
        builder.locator(".heapseg-category input").fill("Engagement")
        builder.locator(".heapseg-description-input textarea").fill("Browse a lot, never buy.")

        # The description is written at the edit; the count when the query is back.
        builder.locator(".heapseg-description-text", has_text=DESCRIBED).wait_for()
        done = builder.locator(".heapseg-summary:not(.heapseg-busy) .heapseg-count")
        done.wait_for()
        shown = shown_number(done.inner_text())
        row_counts = [
            shown_number(row.locator(".heapseg-row-count").inner_text())
            for row in (sessions, orders)
        ]
        share = builder.locator(".heapseg-share").inner_text()
        page.screenshot(path=str(artifacts / "02-window-shoppers-counted.png"))
        assert shown == expected
        assert row_counts == expected_rules
        assert f"{expected / ds.total_users():.1%}" in share

        builder.locator(".heapseg-save").click()
        builder.locator(".heapseg-message", has_text="saved 'Window shoppers'").wait_for()
        page.screenshot(path=str(artifacts / "03-window-shoppers-saved.png"))

        # The catalog browser, typed into the next cell, lists it with the same count.
        page.locator(".jp-Notebook .jp-Cell .cm-content").last.click()
        page.keyboard.type(
            "from heapseg.widgets import CatalogBrowser\nCatalogBrowser(ds, catalog)"
        )
        page.keyboard.press("Shift+Enter")
        listed = page.locator(".heapseg-browser .heapseg-entry-row", has_text="Window shoppers")
        listed.locator(".heapseg-entry-count", has_text="users").wait_for(timeout=120 * SECONDS)
        listed_count = shown_number(listed.locator(".heapseg-entry-count").inner_text())
        category = page.locator(".heapseg-browser .heapseg-category-title").first.inner_text()
        page.screenshot(path=str(artifacts / "04-catalog-browser.png"), full_page=True)
        assert listed_count == expected
        assert category == "Engagement"
    except Exception:
        page.screenshot(path=str(artifacts / "failure.png"))
        raise
    finally:
        context.close()

    document = json.loads(catalog_path.read_text())
    (entry,) = document["segments"]
    assert entry["name"] == "Window shoppers"
    assert entry["category"] == "Engagement"
    assert entry["description"] == "Browse a lot, never buy."
    assert entry["owner"] == "analyst"
    assert entry["type"] == "dynamic" and entry["revision"] == 1
    assert entry["definition"] == WINDOW_SHOPPERS
