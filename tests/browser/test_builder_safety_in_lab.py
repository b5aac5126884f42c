"""Editing a saved segment in a real JupyterLab page is safe: what the analyst sees and presses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.sample import SAMPLE_AS_OF, generate

from .conftest import Lab
from .test_builder_in_lab import SECONDS, WINDOW_SHOPPERS, shown_number

pytestmark = pytest.mark.browser

# Text of each option that a <select> cannot show whole (measured with the select's own font).
CUT_OPTIONS = """
(root) => {
  const canvas = document.createElement("canvas").getContext("2d");
  const cut = [];
  for (const select of root.querySelectorAll("select")) {
    if (select.offsetParent === null) continue;  // hidden
    const style = getComputedStyle(select);
    canvas.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    for (const option of select.options) {
      if (canvas.measureText(option.text).width > room) cut.push(option.text);
    }
  }
  return cut;
}
"""

# Buttons whose label does not fit them, and how the message sits against the buttons.
BUTTON_FIT = """
(root) => {
  const squeezed = [];
  for (const button of root.querySelectorAll("button")) {
    if (button.offsetParent === null) continue;
    if (button.scrollWidth > button.clientWidth + 1) squeezed.push(button.textContent.trim());
  }
  return squeezed;
}
"""


def write_notebook(lab: Lab, sample: Path, catalog: Path, name: str, *then: str) -> str:
    """A notebook whose builder edits the saved "Window shoppers", as notebook 2 leaves it
    (``then``: lines of code run on it before it is shown)."""
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
            "builder.open('Window shoppers')",
            *then,
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
    nbformat.write(notebook, lab.root / name)
    return name


def open_builder(page, lab: Lab, notebook: str):
    page.goto(lab.page_url(notebook))
    page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECONDS)
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Shift+Enter")
    builder = page.locator(".heapseg-builder")
    builder.wait_for(state="visible", timeout=120 * SECONDS)
    builder.locator(".heapseg-summary:not(.heapseg-busy) .heapseg-count").wait_for()
    return builder


def counted(builder) -> int:
    done = builder.locator(".heapseg-summary:not(.heapseg-busy) .heapseg-count")
    done.wait_for()
    return shown_number(done.inner_text())


@pytest.fixture
def saved_catalog(tmp_path):
    sample = generate(tmp_path / "sample.duckdb", n_users=2000)
    path = tmp_path / "catalog.json"
    catalog = Catalog(path, user="analyst")
    shoppers = catalog.save(WINDOW_SHOPPERS, "Window shoppers", category="Engagement")
    catalog.save(
        {
            "combinator": "and",
            "rules": [
                {"kind": "user", "field": "country", "operator": "=", "value": "US"},
                {"kind": "segment", "id": shoppers.id},
            ],
        },
        "US window shoppers",
    )
    return sample, path, heapseg.connect(sample, as_of=SAMPLE_AS_OF)


def test_dirty_state_undo_keys_rename_and_delete_asked(
    lab, chromium_browser, artifacts, saved_catalog
):
    sample, catalog_path, ds = saved_catalog
    notebook = write_notebook(lab, sample, catalog_path, "builder-safety.ipynb")
    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    try:
        builder = open_builder(page, lab, notebook)
        state = builder.locator(".heapseg-state")
        assert state.inner_text() == "✓ saved as revision 1"
        assert counted(builder) == ds.count(WINDOW_SHOPPERS)
        assert page.evaluate(CUT_OPTIONS, builder.element_handle()) == []

        # Any edit: the status says so, and no stale "opened/saved" message stays.
        count_value = (
            builder.locator(".heapseg-rule-event").nth(0).locator(".heapseg-count-value input")
        )
        row = builder.locator(".heapseg-rule-event").nth(0)
        parts = (".heapseg-count-value", ".heapseg-status", ".heapseg-remove")

        def places() -> list[tuple[float, float]]:
            boxes = [row.locator(part).first.bounding_box() for part in parts]
            return [(round(b["x"]), round(b["y"])) for b in boxes]

        before = places()
        count_value.fill("8")
        count_value.press("Enter")
        builder.locator(".heapseg-state", has_text="● unsaved changes").wait_for()
        assert "saved" not in builder.locator(".heapseg-message").inner_text()
        tighter = {
            "combinator": "and",
            "rules": [dict(WINDOW_SHOPPERS["rules"][0]), WINDOW_SHOPPERS["rules"][1]],
        }
        tighter["rules"][0] = {**tighter["rules"][0], "count": {"operator": ">", "value": 8}}
        builder.locator(".heapseg-count", has_text=f"{ds.count(tighter):,}").wait_for()
        # The row's inputs and buttons stayed where they were while the counts changed.
        assert places() == before

        # Remove a rule, then Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y from the keyboard.
        rows = builder.locator(".heapseg-definition .heapseg-rule-event")
        rows.nth(1).locator(".heapseg-remove").click()
        page.wait_for_function(
            "() => document.querySelectorAll('.heapseg-rule-event').length === 1"
        )
        cells = page.locator(".jp-Notebook .jp-Cell").count()
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "() => document.querySelectorAll('.heapseg-rule-event').length === 2"
        )
        assert rows.nth(1).locator(".heapseg-did select").input_value() == "did not do"
        page.keyboard.press("Control+Shift+z")
        page.wait_for_function(
            "() => document.querySelectorAll('.heapseg-rule-event').length === 1"
        )
        page.keyboard.press("Control+z")
        page.wait_for_function(
            "() => document.querySelectorAll('.heapseg-rule-event').length === 2"
        )
        assert page.locator(".jp-Notebook .jp-Cell").count() == cells  # the notebook kept its cells
        page.screenshot(path=str(artifacts / "safety-01-undone.png"))

        # The Undo button takes back the count edit: nothing unsaved any more.
        builder.locator(".heapseg-undo").click()
        builder.locator(".heapseg-state", has_text="✓ saved as revision 1").wait_for()
        assert count_value.input_value() == "5"

        # A new rule is incomplete (neutral) and left out of the count.
        builder.locator(".heapseg-definition .heapseg-add-user").first.click()
        builder.locator(
            ".heapseg-incomplete-note", has_text="1 rule incomplete, not counted"
        ).wait_for()
        new_row = builder.locator(".heapseg-rule-user.heapseg-incomplete")
        new_row.wait_for()
        assert builder.locator(".heapseg-invalid").count() == 0
        assert counted(builder) == ds.count(WINDOW_SHOPPERS)
        cost = builder.locator(".heapseg-rule-event").nth(0).locator(".heapseg-row-cost")
        assert "without it" in cost.inner_text()
        builder.locator(".heapseg-rule-user .heapseg-remove").click()

        # Renaming on Save is a choice, shown before anything is written.
        builder.locator(".heapseg-name input").fill("Keen browsers")
        builder.locator(
            ".heapseg-rename-note", has_text="Save renames “Window shoppers” → “Keen browsers”"
        ).wait_for()
        builder.locator(".heapseg-save").click()
        prompt = builder.locator(".heapseg-prompt")
        prompt.locator(".heapseg-choice-rename").wait_for()
        assert prompt.locator(".heapseg-choice-save-as-new").is_visible()
        page.screenshot(path=str(artifacts / "safety-02-rename-asked.png"))
        prompt.locator(".heapseg-choice-cancel").click()
        prompt.wait_for(state="hidden")
        names = {s["name"] for s in json.loads(catalog_path.read_text())["segments"]}
        assert names == {"Window shoppers", "US window shoppers"}

        # Delete asks, and names the segment that refers to this one.
        builder.locator(".heapseg-delete").click()
        prompt.locator(".heapseg-prompt-text", has_text="“US window shoppers”").wait_for()
        assert "cannot be deleted" in prompt.inner_text()
        assert page.evaluate(BUTTON_FIT, builder.element_handle()) == []
        page.screenshot(path=str(artifacts / "safety-03-delete-asked.png"))
        prompt.locator(".heapseg-choice-cancel").click()
    except Exception:
        page.screenshot(path=str(artifacts / "safety-failure.png"))
        raise
    finally:
        context.close()
    names = {s["name"] for s in json.loads(catalog_path.read_text())["segments"]}
    assert names == {"Window shoppers", "US window shoppers"}


# Window shoppers AND (country = US OR country = DE): a group of two rules.
GROUPED = {
    "combinator": "and",
    "rules": [
        *WINDOW_SHOPPERS["rules"],
        {
            "combinator": "or",
            "rules": [
                {"kind": "user", "field": "country", "operator": "=", "value": "US"},
                {"kind": "user", "field": "country", "operator": "=", "value": "DE"},
            ],
        },
    ],
}
# The nested groups of the definition (not the where-filter groups inside event rows).
NESTED = ".heapseg-root > .heapseg-items > .heapseg-group"


def test_removing_a_group_of_two_rules_is_undone_from_the_keyboard(
    lab, chromium_browser, artifacts, saved_catalog
):
    """The issue's case: Ctrl+Z did nothing after removing a group of two rules."""
    sample, catalog_path, ds = saved_catalog
    notebook = write_notebook(
        lab, sample, catalog_path, "builder-group-undo.ipynb", f"builder.segment = {GROUPED!r}"
    )
    context = chromium_browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    nested = f"() => document.querySelectorAll({NESTED!r}).length"
    try:
        builder = open_builder(page, lab, notebook)
        grouped, plain = ds.count(GROUPED), ds.count(WINDOW_SHOPPERS)
        assert grouped < plain
        assert counted(builder) == grouped
        group = builder.locator(NESTED)
        assert group.count() == 1 and group.locator(".heapseg-rule-user").count() == 2
        builder.locator(".heapseg-state", has_text="● unsaved changes").wait_for()

        # The group's own Remove (in its header, before its rows' buttons).
        group.locator(".heapseg-remove").first.click()
        page.wait_for_function(f"() => ({nested})() === 0")
        builder.locator(".heapseg-count", has_text=f"{plain:,}").wait_for()

        page.keyboard.press("Control+z")
        page.wait_for_function(f"() => ({nested})() === 1")
        rows = group.locator(".heapseg-rule-user")
        assert rows.count() == 2
        shown = [rows.nth(i).locator(".heapseg-value input").input_value() for i in range(2)]
        assert shown == ["US", "DE"]
        builder.locator(".heapseg-count", has_text=f"{grouped:,}").wait_for()
        assert counted(builder) == grouped
        page.screenshot(path=str(artifacts / "safety-05-group-undone.png"))

        page.keyboard.press("Control+Shift+z")
        page.wait_for_function(f"() => ({nested})() === 0")
        builder.locator(".heapseg-count", has_text=f"{plain:,}").wait_for()
    except Exception:
        page.screenshot(path=str(artifacts / "safety-failure.png"))
        raise
    finally:
        context.close()


def test_conflict_choices_and_unsqueezed_buttons(lab, chromium_browser, artifacts, saved_catalog):
    sample, catalog_path, _ = saved_catalog
    notebook = write_notebook(lab, sample, catalog_path, "builder-conflict.ipynb")
    context = chromium_browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    try:
        builder = open_builder(page, lab, notebook)
        # Meanwhile Bob saves another version of it.
        bob = Catalog(catalog_path, user="bob")
        theirs = {"combinator": "and", "rules": [WINDOW_SHOPPERS["rules"][0]]}
        bob.update("Window shoppers", theirs, description="bob was here")

        count_value = (
            builder.locator(".heapseg-rule-event").nth(0).locator(".heapseg-count-value input")
        )
        count_value.fill("9")
        count_value.press("Enter")
        builder.locator(".heapseg-state", has_text="● unsaved changes").wait_for()
        builder.locator(".heapseg-save").click()
        prompt = builder.locator(".heapseg-prompt")
        prompt.locator(".heapseg-prompt-text", has_text="bob saved “Window shoppers”").wait_for()
        for choice in ("reload", "save-mine", "difference", "cancel"):
            assert prompt.locator(f".heapseg-choice-{choice}").is_visible()

        # No button is squeezed: each shows its whole label, and the message has its own line.
        assert page.evaluate(BUTTON_FIT, builder.element_handle()) == []
        assert page.evaluate(CUT_OPTIONS, builder.element_handle()) == []
        save_box = builder.locator(".heapseg-save").bounding_box()
        message_box = builder.locator(".heapseg-message").bounding_box()
        assert message_box["y"] >= save_box["y"] + save_box["height"] - 1
        widths = {
            name: builder.locator(f".heapseg-{name}").bounding_box()["width"]
            for name in ("new", "undo", "redo", "save", "save-as", "duplicate", "delete")
        }
        assert min(widths.values()) > 40, widths

        prompt.locator(".heapseg-choice-difference").click()
        diff = builder.locator(".heapseg-diff")
        diff.locator("li", has_text="only in yours: did Session more than 9 times").wait_for()
        text = diff.inner_text()
        assert "only in theirs: did Session more than 5 times" in text
        assert "description: theirs “bob was here”" in text
        page.screenshot(path=str(artifacts / "safety-04-conflict.png"), full_page=True)

        prompt.locator(".heapseg-choice-save-mine").click()
        builder.locator(".heapseg-message", has_text="saved 'Window shoppers (analyst)'").wait_for()
        builder.locator(".heapseg-state", has_text="✓ saved as revision 1").wait_for()
    except Exception:
        page.screenshot(path=str(artifacts / "safety-failure.png"))
        raise
    finally:
        context.close()
    segments = {s["name"]: s for s in json.loads(catalog_path.read_text())["segments"]}
    assert segments["Window shoppers"]["definition"] == theirs
    mine = segments["Window shoppers (analyst)"]["definition"]
    assert mine["rules"][0]["count"] == {"operator": ">", "value": 9}
    assert mine["rules"][1] == WINDOW_SHOPPERS["rules"][1]
