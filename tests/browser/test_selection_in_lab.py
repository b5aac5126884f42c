"""Clicking chart marks in a real JupyterLab: the kernel gets the segment with the count shown."""

from __future__ import annotations

import re

import nbformat
import pytest

from heapseg.sample import generate
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECONDS = 1000  # Playwright counts in milliseconds

SETUP = """\
import heapseg, heapseg.charts as hc
from heapseg.widgets import select
hc.enable_notebook()
ds = heapseg.connect({sample!r}, as_of='2026-11-01')
paid = heapseg.user.subscription_type == 'paid'"""
FUNNEL = """\
funnel = hc.funnel(ds, ['Session', 'Add to Cart', 'Completed Order'], by={'Paid': paid})
w = select(funnel)
w"""
BREAKDOWN = """\
breakdown = hc.breakdown(ds, paid, 'country', top=3)
w2 = select(breakdown)
w2"""
# What the kernel holds after the clicks: the segments' counts next to the charts' numbers.
CHECK = """\
shown = funnel.data.set_index('step')['users']
print('FUNNEL', w.marks, ds.count(w.selection_segment), shown[2])
bars = breakdown.data.set_index(['group', 'value'])['count']
print('BREAKDOWN', ds.count(w2.selection_segment), bars[('Rest', 'US')])"""


def _run_cell(page, index: int) -> None:
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")


def test_clicked_bars_are_segments_in_the_kernel(lab, chromium_browser, tmp_path):
    sample = generate(tmp_path / "sample.duckdb", n_users=300)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(SETUP.format(sample=str(sample))),
        nbformat.v4.new_code_cell(FUNNEL),
        nbformat.v4.new_code_cell(BREAKDOWN),
        nbformat.v4.new_code_cell(CHECK),
    ]
    nbformat.write(notebook, lab.root / "chart-selection.ipynb")

    context = chromium_browser.new_context(viewport={"width": 1300, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    try:
        page.goto(lab.page_url("chart-selection.ipynb"))
        page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECONDS)
        for index in range(3):
            _run_cell(page, index)
        widgets = page.locator(".heapseg-chart-selection")
        widgets.nth(1).locator("svg.marks").wait_for(timeout=120 * SECONDS)

        # The second step's bar of the funnel (its accessible label names the step).
        funnel_bar = widgets.nth(0).locator('path[aria-label*="2. Add to Cart"]').first
        # The number the mark shows (its tooltip, which Vega also writes in its aria-label).
        funnel_mark = funnel_bar.get_attribute("aria-label")
        funnel_bar.click()
        funnel_count = widgets.nth(0).locator(".heapseg-selection-count")
        funnel_count.wait_for(timeout=60 * SECONDS)
        funnel_shown = funnel_count.inner_text()
        # Open in builder: the builder below the chart counts the same users.
        widgets.nth(0).locator(".heapseg-open-selection").click()
        counted = widgets.nth(0).locator(
            ".heapseg-builder .heapseg-summary:not(.heapseg-busy) .heapseg-count"
        )
        counted.wait_for(timeout=120 * SECONDS)
        builder_shown = counted.inner_text()
        # The breakdown bar of the rest of the users in the US.
        bar = widgets.nth(1).locator('path[aria-label*="US"][aria-label*="Rest"]').first
        breakdown_mark = bar.get_attribute("aria-label")
        bar.click()
        breakdown_count = widgets.nth(1).locator(".heapseg-selection-count")
        breakdown_count.wait_for(timeout=60 * SECONDS)
        breakdown_shown = breakdown_count.inner_text()
        assert widgets.nth(0).locator(".heapseg-open-selection").is_enabled()

        _run_cell(page, 3)
        output = page.locator(".jp-Notebook .jp-Cell").nth(3).locator(".jp-OutputArea-output")
        output.get_by_text("BREAKDOWN").wait_for(timeout=120 * SECONDS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chart-selection.png"), full_page=True)
        text = output.inner_text()
    finally:
        context.close()

    on_the_bars = [
        re.search(r"Users: ([\d,]+)", mark or "") for mark in (funnel_mark, breakdown_mark)
    ]
    assert all(on_the_bars), (funnel_mark, breakdown_mark)
    funnel_bar_users, breakdown_bar_users = (int(m.group(1).replace(",", "")) for m in on_the_bars)
    funnel = re.search(r"FUNNEL (\[.*\]) (\d+) (\d+)", text)
    assert funnel, text
    assert funnel.group(1) == "[{'segment': 'Paid', 'step': 2}]"
    assert funnel.group(2) == funnel.group(3)  # the segment counts the bar's users
    assert funnel_shown.replace(",", "") == funnel.group(2)  # and the widget says so
    assert int(funnel.group(2)) == funnel_bar_users  # the number on the clicked bar
    assert int(re.sub(r"\D", "", builder_shown.split()[0])) == funnel_bar_users, builder_shown
    breakdown = re.search(r"BREAKDOWN (\d+) (\d+)", text)
    assert breakdown, text
    assert breakdown.group(1) == breakdown.group(2)
    assert breakdown_shown.replace(",", "") == breakdown.group(1)
    assert int(breakdown.group(1)) == breakdown_bar_users
