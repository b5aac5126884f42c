"""Charts in a real JupyterLab page with no network but loopback: they render, nothing off-host loads."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import nbformat
import pytest

from heapseg.sample import generate
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECONDS = 1000  # Playwright counts in milliseconds


def test_enable_notebook_renders_charts_offline(lab, chromium_browser, tmp_path):
    sample = generate(tmp_path / "sample.duckdb", n_users=300)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell("import heapseg, heapseg.charts as hc\nhc.enable_notebook();"),
        nbformat.v4.new_code_cell(
            f"ds = heapseg.connect({str(sample)!r}, as_of='2026-11-01')\n"
            "paid = heapseg.user.subscription_type == 'paid'\n"
            "hc.trend(ds, 'Session', by={'Paid': paid}, include_all=True, last=14)"
        ),
        nbformat.v4.new_code_cell("hc.overlap(ds, {'Paid': paid, 'Not paid': ~paid})"),
    ]
    nbformat.write(notebook, lab.root / "charts-offline.ipynb")

    context = chromium_browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(lab.page_url("charts-offline.ipynb"))
        page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECONDS)
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        for _ in range(3):
            page.keyboard.press("Shift+Enter")
        marks = page.locator(".jp-OutputArea-output .vega-embed svg.marks")
        marks.nth(1).wait_for(timeout=120 * SECONDS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "charts-offline.png"), full_page=True)
        assert marks.count() == 2
        assert "Session: events per day by segment" in marks.nth(0).inner_html()
        assert page.get_by_text("Error loading script").count() == 0
    finally:
        context.close()
    host = urlparse(lab.url).netloc
    off_host = [
        url
        for url in requested
        if urlparse(url).scheme not in ("blob", "data") and urlparse(url).netloc != host
    ]
    assert off_host == []
