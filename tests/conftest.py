"""Test-suite wide settings: the backend fixtures, and under CI a skipped test is a failure."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.backends.fixtures"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _skipped(config: pytest.Config) -> list[pytest.TestReport | pytest.CollectReport]:
    # The terminal reporter sees every report, notebooks' included: a conftest hook such as
    # pytest_runtest_logreport would only see the items below tests/.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return list(reporter.stats.get("skipped", [])) if reporter else []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI=true, end with a failing exit status when anything was skipped."""
    if _in_ci() and _skipped(session.config) and exitstatus in (0, 5):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Name the skips that fail the run under CI=true."""
    skipped = _skipped(config)
    if not (_in_ci() and skipped):
        return
    terminalreporter.section("skips fail the run under CI=true", red=True, bold=True)
    for report in skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        terminalreporter.line(f"SKIPPED counted as FAILED: {report.nodeid}: {reason}", red=True)
