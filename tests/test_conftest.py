"""The suite-wide hooks of tests/conftest.py: under CI=true a skipped test fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SKIPPING_SUITE = """
import pytest

def test_runs():
    assert 1 + 1 == 2

def test_cannot_run_here():
    pytest.skip("no frobnicator on this machine")
"""


def _run_suite(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_sessionfinish, pytest_terminal_summary  # noqa: F401\n"
    )
    (tmp_path / "test_sample.py").write_text(SKIPPING_SUITE)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    # Installed plugins (nbval pulls in jsonschema's slow grammar) are not needed here.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_fails_the_run_under_ci(tmp_path: Path) -> None:
    result = _run_suite(tmp_path, ci="true")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "SKIPPED counted as FAILED" in result.stdout
    assert "test_cannot_run_here: " in result.stdout
    assert "no frobnicator on this machine" in result.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_a_skip_is_only_a_skip_outside_ci(tmp_path: Path, ci: str | None) -> None:
    result = _run_suite(tmp_path, ci=ci)
    assert result.returncode == pytest.ExitCode.OK, result.stdout
    assert "1 passed, 1 skipped" in result.stdout
    assert "counted as FAILED" not in result.stdout
