"""The tutorials' static charts in a real JupyterLab: no text is clipped at the image's edges.

An SVG chart is laid out in the kernel with vl-convert's fonts, but its text is drawn by the
browser with the browser's fonts; where those are wider, labels ran over the image's edges and
were cut ("indow shoppers"). ``enable_notebook("static")`` draws PNG in the kernel instead. The
test opens a notebook of charts with long labels in Chromium and reads every chart's pixels back
through a canvas: no ink may touch the image's border (text cut at an edge always does), and
each image must be shown at its own size, not squeezed.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from heapseg.sample import generate
from tests.browser.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECONDS = 1000  # Playwright counts in milliseconds

#: Charts whose text reaches the edges: long segment names as axis labels (left edge), value
#: labels after the longest bar (right edge), a legend and weekly date ticks.
CHART_CELLS = [
    "hc.sizes(ds, {'Window shoppers': shoppers, 'Buyers (90 days)': buyers, 'Paid': paid})",
    "hc.compare(ds, {'Window shoppers': shoppers, 'Buyers (90 days)': buyers}, "
    "event='Session', measure='events_per_user')",
    "hc.trend(ds, 'Session', by={'Window shoppers': shoppers, 'Buyers (90 days)': buyers}, "
    "interval='week', last=12)",
]

#: For an <img>: its source kind, natural and shown sizes, and the ink on each edge, read back
#: through a canvas. ``crop`` cuts that many pixels off the left first (the control: what a
#: clipped label looks like to the same measure).
MEASURE = """
async (img, crop) => {
  await img.decode();
  const width = img.naturalWidth - crop, height = img.naturalHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.fillStyle = "white";
  context.fillRect(0, 0, width, height);
  context.drawImage(img, -crop, 0);
  const pixels = context.getImageData(0, 0, width, height).data;
  const ink = (x, y) => {
    const i = 4 * (y * width + x);
    return pixels[i] < 160 && pixels[i + 1] < 160 && pixels[i + 2] < 160;
  };
  const edges = {left: 0, right: 0, top: 0, bottom: 0};
  for (let y = 0; y < height; y++) {
    edges.left += ink(0, y);
    edges.right += ink(width - 1, y);
  }
  for (let x = 0; x < width; x++) {
    edges.top += ink(x, 0);
    edges.bottom += ink(x, height - 1);
  }
  const box = img.getBoundingClientRect();
  const area = img.closest(".jp-OutputArea-output").getBoundingClientRect();
  return {
    kind: img.src.split(/[;,]/)[0],
    natural: [img.naturalWidth, img.naturalHeight],
    shown: [box.width, box.height],
    inside: box.left >= area.left - 1 && box.right <= area.right + 1,
    edges,
  };
}
"""


def _notebook(sample) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    setup = (
        "import heapseg, heapseg.charts as hc\n"
        "from heapseg import did, did_not, user\n"
        'hc.enable_notebook("static")  # as the tutorials do\n'
        f"ds = heapseg.connect({str(sample)!r}, as_of='2026-11-01')\n"
        "shoppers = (did('Session').times() > 5) & did_not('Completed Order')\n"
        "buyers = did('Completed Order').last(90, 'day')\n"
        "paid = user.subscription_type == 'paid'"
    )
    notebook.cells = [nbformat.v4.new_code_cell(setup)]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in CHART_CELLS]
    # The way it was, for the record (test-artifacts/browser/static-charts.json): SVG.
    notebook.cells.append(nbformat.v4.new_code_cell(f'hc.enable_notebook("svg")\n{CHART_CELLS[0]}'))
    return notebook


def test_static_charts_show_all_their_text(lab, chromium_browser, tmp_path):
    sample = generate(tmp_path / "sample.duckdb", n_users=300)
    nbformat.write(_notebook(sample), lab.root / "static-charts.ipynb")
    context = chromium_browser.new_context(
        viewport={"width": 1300, "height": 1600}, device_scale_factor=2
    )
    page = context.new_page()
    page.set_default_timeout(60 * SECONDS)
    try:
        page.goto(lab.page_url("static-charts.ipynb"))
        page.get_by_text(re.compile(r"\|\s*Idle")).first.wait_for(timeout=120 * SECONDS)
        page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
        for _ in range(2 + len(CHART_CELLS)):
            page.keyboard.press("Shift+Enter")
        images = page.locator(".jp-OutputArea-output img")
        images.nth(len(CHART_CELLS)).wait_for(timeout=180 * SECONDS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "static-charts.png"), full_page=True)
        assert images.count() == len(CHART_CELLS) + 1
        seen = [images.nth(i).evaluate(MEASURE, 0) for i in range(len(CHART_CELLS) + 1)]
        (ARTIFACTS / "static-charts.json").write_text(json.dumps(seen, indent=1))
        assert seen.pop()["kind"] == "data:image/svg+xml"
        for cell, measured in zip(CHART_CELLS, seen, strict=True):
            where = f"{cell[:40]}...: {measured}"
            assert measured["kind"] == "data:image/png", where  # drawn in the kernel
            (natural_w, natural_h), (shown_w, shown_h) = measured["natural"], measured["shown"]
            assert abs(shown_w - natural_w / 2) <= 1 and abs(shown_h - natural_h / 2) <= 1, where
            assert measured["inside"], where  # not cut by the output area either
            assert measured["edges"] == {"left": 0, "right": 0, "top": 0, "bottom": 0}, where
        # The control: the same measure sees a label cut at the left edge as ink on that edge.
        cut = images.nth(0).evaluate(MEASURE, 40)
        assert cut["edges"]["left"] > 0, cut
    finally:
        context.close()
