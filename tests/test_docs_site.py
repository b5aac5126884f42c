"""The documentation site (mkdocs.yml, docs/) builds with warnings as errors, and shows every chart.

* ``mkdocs build --strict`` passes: every page is in the nav, every link and anchor leads
  somewhere, and the API reference renders every docstring without a griffe warning.
* Every chart kind of ``heapseg.charts`` has a page under docs/charts/ with its picture and
  its reference, and the page's picture code (what ``scripts/chart_images.py`` draws) runs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from heapseg import charts

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
CONFIG = REPO / "mkdocs.yml"
BUILD_TIMEOUT = 600


def _chart_images():
    spec = importlib.util.spec_from_file_location("chart_images", REPO / "scripts/chart_images.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chart_images = _chart_images()
# A chart kind is a function of heapseg.charts that lives in the module named like it.
KINDS = sorted(
    name
    for name in charts.__all__
    if getattr(getattr(charts, name), "__module__", None) == f"heapseg.charts.{name}"
)


def _page(kind: str) -> Path:
    return DOCS / "charts" / f"{kind.replace('_', '-')}.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # Material's notice about MkDocs 2 is not about this site.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG), "-d", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    assert "WARNING" not in log, log
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    for page in ("index.html", "getting-started/index.html", "api/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in ("heapseg.connect", "heapseg.Dataset.count", "heapseg.catalog.Catalog.save"):
        assert f'id="{anchor}"' in api, f"the API reference lost {anchor}"
    # Sphinx roles are turned into code (and links), never shown raw.
    assert not re.search(r":(func|class|meth|attr|data|mod):`", api)


def test_the_format_references_are_in_the_site(site: Path) -> None:
    for name in ("data-model", "segment-format", "catalog-format"):
        assert (site / name / "index.html").is_file(), name


def test_the_chart_kinds_are_known() -> None:
    expected = ["breakdown", "compare", "funnel", "overlap", "retention", "size_over_time"]
    usage = ["lifecycle", "stickiness", "paths"]
    assert sorted([*expected, "sizes", "trend", *usage]) == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_every_chart_kind_has_a_page_with_its_picture(kind: str, site: Path) -> None:
    page = _page(kind)
    assert page.is_file(), f"no page for charts.{kind}: {page.relative_to(REPO)}"
    text = page.read_text(encoding="utf-8")
    picture = f"../images/charts/{page.stem}.png"
    assert f"]({picture})" in text, f"{page.name} does not show {picture}"
    assert (page.parent / picture).resolve().is_file(), f"missing {picture}"
    assert f"::: heapseg.charts.{kind}.{kind}" in text, f"{page.name} lacks its reference"
    assert f"charts/{page.stem}.md" in CONFIG.read_text(encoding="utf-8"), "not in the nav"
    built = (site / "charts" / page.stem / "index.html").read_text(encoding="utf-8")
    assert f'id="heapseg.charts.{kind}.{kind}"' in built
    assert f"{page.stem}.png" in built


@pytest.mark.parametrize("kind", KINDS)
def test_the_picture_code_of_each_chart_page_runs(kind: str) -> None:
    code = chart_images.picture_code(_page(kind))
    assert f"charts.{kind}(" in code, f"the picture of {kind} is drawn by another chart"
    chart = chart_images.draw(_page(kind))
    assert len(chart.data) > 0
