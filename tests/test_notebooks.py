"""The tutorials' nbval checks hold on a machine whose fonts differ.

nbval compares every output of every notebook cell with the one saved in the notebook. A chart's
image depends on the fonts of the machine that drew it (text widths move axes and titles by a
pixel). The tutorials draw charts as PNG (``enable_notebook("static")``), which nbval does not
compare; ``tests/nbval_sanitize.cfg`` replaces an SVG chart (``enable_notebook("svg")``) with a
placeholder. Every chart cell also shows the numbers behind its chart as a table, which nbval
does compare.

The proof runs the notebooks that hold charts through nbval with the charts drawn in another
font (``$HEAPSEG_CHART_FONT``): every chart's image differs from the saved one, and nbval passes.
This module is also the small pytest plugin (``-p tests.test_notebooks``) that records, in that
run, what nbval saw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SANITIZE = REPO / "tests" / "nbval_sanitize.cfg"
SVG = "image/svg+xml"
#: The outputs that are a drawn chart: PNG (the tutorials' static mode) or SVG.
CHARTS = ("image/png", SVG)
#: A font whose text widths differ from Vega's default sans-serif (vl-convert's Liberation Sans).
OTHER_FONT = "DejaVu Sans Mono"
#: Where the plugin writes what nbval saw (set only in the nested nbval run).
RECORD_ENV = "HEAPSEG_NBVAL_RECORD"


def _chart(output: dict) -> str | None:
    """The drawn chart of a cell output (PNG as base64, or SVG text), if it is one.

    An Altair chart's output says so in its text form (``alt.Chart(...)``); an image read
    back from a file (the export cell's ``IPython.display.Image``) is not a chart drawn here.
    """
    data = output.get("data", {})
    if not str(data.get("text/plain", "")).startswith("alt."):
        return None
    return next((data[kind] for kind in CHARTS if kind in data), None)


def _svg_cells(path: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    """(index, cell) of the code cells whose saved outputs hold a rendered chart."""
    notebook = nbformat.read(path, as_version=4)
    return [
        (index, cell)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and any(_chart(o) is not None for o in cell.outputs)
    ]


CHARTED = [path for path in NOTEBOOKS if _svg_cells(path)]


def _sanitize(text: str) -> str:
    for regex, replace in get_sanitize_patterns(SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


# ---------------------------------------------------------------- checks on the saved notebooks


def test_the_tutorials_have_charts():
    assert len(CHARTED) >= 3, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", CHARTED, ids=lambda p: p.stem)
def test_every_chart_cell_also_shows_its_numbers(path):
    """Each chart output comes with a table (HTML and text) that nbval compares; a chart is not
    compared (PNG) or only a placeholder (sanitized SVG), while the table keeps its numbers."""
    for index, cell in _svg_cells(path):
        charts = [o for o in cell.outputs if _chart(o) is not None]
        tables = [o for o in cell.outputs if "text/html" in o.get("data", {})]
        where = f"{path.name} cell {index}"
        assert len(charts) == 1 and tables, f"{where}: a chart without its numbers"
        if SVG in charts[0]["data"]:
            assert _sanitize(charts[0]["data"][SVG]) == "<svg>CHART</svg>", where
        for table in tables:
            for kind in ("text/html", "text/plain"):
                text = table["data"][kind]
                assert _sanitize(text) == text, f"{where}: the sanitizer changes the {kind} table"
                assert re.search(r"\d", text), f"{where}: no numbers in the table"


# ---------------------------------------------------------------- the notebooks under other fonts


def test_nbval_passes_with_charts_drawn_in_other_fonts(tmp_path):
    record = tmp_path / "nbval-outputs.jsonl"
    env = {**os.environ, "HEAPSEG_CHART_FONT": OTHER_FONT, RECORD_ENV: str(record)}
    env["TMPDIR"] = str(tmp_path)  # the tutorials' own temporary folders
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.test_notebooks",
        "--nbval",
        "--nbval-current-env",
        f"--nbval-sanitize-with={SANITIZE}",
        "-q",
        *[str(p.relative_to(REPO)) for p in CHARTED],
    ]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=840, check=False
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"nbval failed under {OTHER_FONT}:\n{done.stdout[-6000:]}"

    seen = [json.loads(line) for line in record.read_text().splitlines()]
    charts = [s for s in seen if s["saved"] is not None]
    saved_count = sum(len(_svg_cells(p)) for p in CHARTED)
    assert len(charts) == saved_count, "nbval did not run every chart cell"
    same = [f"{s['notebook']} cell {s['cell']}" for s in charts if s["saved"] == s["drawn"]]
    assert not same, f"drawn in {OTHER_FONT}, these charts did not change: {same}"
    assert all(s["drawn"].lstrip().startswith(("<svg", "iVBORw0KGgo")) for s in charts)
    print(f"{len(charts)} charts, all different pixels; nbval passed in {elapsed:.0f} s")


# ---------------------------------------------------------------- the plugin of the nested run


def pytest_runtest_teardown(item):
    """In the nested nbval run: note each chart cell's saved and newly drawn image."""
    target = os.environ.get(RECORD_ENV)
    outputs = getattr(item, "test_outputs", None)
    cell = getattr(item, "cell", None)
    if not target or outputs is None or cell is None:
        return
    saved = [_chart(o) for o in cell.outputs if _chart(o) is not None]
    drawn = [_chart(o) for o in outputs if _chart(o) is not None]
    line = {
        "notebook": Path(str(item.fspath)).name,
        "cell": getattr(item, "cell_num", None),
        "saved": saved[0] if saved else None,
        "drawn": drawn[0] if drawn else None,
    }
    with open(target, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")
