"""Every docstring example in heapseg/ runs, over the bundled sample, and none is skipped.

One test per docstring that has examples, named like the object it documents
(``heapseg.charts.trend.trend``). Each runs in a fresh temporary folder (examples that save a
catalog write it there) with ELLIPSIS and NORMALIZE_WHITESPACE, and Altair's renderer is put
back afterwards (``charts.enable_notebook`` changes it for the whole process).
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from pathlib import Path

import altair as alt
import pytest

import heapseg

PACKAGE = Path(heapseg.__file__).parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# Built from pieces, so that this file does not contain what it looks for.
SKIP_DIRECTIVE = "doctest: " + "+SKIP"


def _modules() -> list[str]:
    found = pkgutil.walk_packages(heapseg.__path__, "heapseg.")
    return sorted(["heapseg", *(name for _, name, _ in found if not name.endswith("__main__"))])


def _docstrings() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for name in _modules():
        tests += [t for t in finder.find(importlib.import_module(name), name) if t.examples]
    return sorted(tests, key=lambda t: t.name)


DOCSTRINGS = _docstrings()


@pytest.fixture
def renderer():
    """Restore Altair's renderer and JupyterChart's mode after an example that changes them."""
    name = alt.renderers.active
    options = dict(alt.renderers.options)
    offline = alt.JupyterChart._is_offline
    yield
    alt.renderers.enable(name, **options)
    alt.JupyterChart.enable_offline(offline)


@pytest.mark.parametrize("test", DOCSTRINGS, ids=[t.name for t in DOCSTRINGS])
def test_docstring_examples_run(test, tmp_path, monkeypatch, renderer) -> None:
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    result = runner.run(test, out=report.write, clear_globs=True)
    assert result.failed == 0, report.getvalue()
    assert result.attempted == len(test.examples)


def test_every_file_with_examples_is_run() -> None:
    # Examples the finder cannot reach (a module left out, an object whose __module__ is
    # another) would silently drop out of the run above.
    written = {p for p in PACKAGE.rglob("*.py") if ">>> " in p.read_text(encoding="utf-8")}
    run = {Path(t.filename) for t in DOCSTRINGS}
    assert written <= run, f"examples never run in: {sorted(map(str, written - run))}"


def test_no_example_is_skipped() -> None:
    skipped = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SKIP_DIRECTIVE in line.replace("  ", " ")
    ]
    assert not skipped, "skipped docstring examples (make them run):\n" + "\n".join(skipped)
    flagged = [
        f"{t.name}: {e.source.strip()}"
        for t in DOCSTRINGS
        for e in t.examples
        if e.options.get(doctest.SKIP)
    ]
    assert not flagged, "skipped docstring examples:\n" + "\n".join(flagged)
