#!/usr/bin/env python3
"""Redraw the pictures of the chart pages (docs/images/charts/*.png) from the pages' own code.

    .venv/bin/python scripts/chart_images.py            # every page of docs/charts/
    .venv/bin/python scripts/chart_images.py trend      # one page
    .venv/bin/python scripts/chart_images.py --out DIR  # somewhere else

Each chart page holds one Python block right after a ``<!-- picture -->`` line: the code a
reader can paste into a notebook, over the bundled sample, ending with a chart in ``chart``.
This script runs that block in a temporary folder (a block may save a catalog) and writes
``chart`` with :func:`heapseg.charts.save` to ``images/charts/<page>.png``, so each picture is
exactly what its page's code draws. Pixels depend on the machine's fonts; set
``$HEAPSEG_CHART_FONT`` for a house font.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PAGES = REPO / "docs" / "charts"
OUT = REPO / "docs" / "images" / "charts"
MARKER = "<!-- picture -->"
BLOCK = re.compile(re.escape(MARKER) + r"\s*\n```python\n(?P<code>.*?)\n```", re.S)
SCALE = 1.5


def chart_pages() -> list[Path]:
    """The pages of docs/charts/ that show a chart: those with a picture marker (not the
    overview, not the guide to selections)."""
    return sorted(p for p in PAGES.glob("*.md") if MARKER in p.read_text(encoding="utf-8"))


def picture_code(page: Path) -> str:
    """The Python block under the page's picture marker (exactly one)."""
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    if len(blocks) != 1:
        raise SystemExit(f"{page}: {len(blocks)} blocks after {MARKER!r}, expected 1")
    return blocks[0]


def draw(page: Path) -> Any:
    """Run the page's picture block in a temporary folder and return its ``chart``."""
    code = picture_code(page)
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="heapseg-chart-") as folder:
        os.chdir(folder)
        try:
            namespace: dict[str, Any] = {"__name__": f"chart_page_{page.stem}"}
            exec(compile(code, str(page), "exec"), namespace)
        finally:
            os.chdir(here)
    if "chart" not in namespace:
        raise SystemExit(f"{page}: the picture block must leave its chart in `chart`")
    return namespace["chart"]


def main(argv: list[str] | None = None) -> None:
    from heapseg import charts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="page names (trend, size-over-time...)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    args = parser.parse_args(argv)
    pages = [PAGES / f"{name}.md" for name in args.pages] or chart_pages()
    missing = [p.name for p in pages if not p.is_file()]
    if missing:
        parser.error(f"no such chart page: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        target = charts.save(draw(page), args.out / f"{page.stem}.png", scale=SCALE)
        print(f"{page.relative_to(REPO)} -> {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
