"""The benchmark scripts run end to end on a small sample and check their own numbers.

Their timings are not asserted here (a shared machine is too noisy for that, and a 1,000-user
sample says nothing about 100,000): what fails is a script that no longer runs, or whose
results disagree with its hand-written SQL.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
USERS = "1000"


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``benchmarks/`` importable, its sample data in a temporary folder shared by the module."""
    sys.path.insert(0, str(BENCHMARKS))
    common = importlib.import_module("bench_common")
    saved = common.DATA
    common.DATA = tmp_path_factory.mktemp("bench-data")
    try:
        yield common
    finally:
        common.DATA = saved
        sys.path.remove(str(BENCHMARKS))


def test_bench_engine_counts_agree_with_hand_sql(bench, capsys):
    engine = importlib.import_module("bench_engine")
    assert engine.main(["--users", USERS, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert "dataset: 1,000 users" in out
    assert "worst ratio: cold" in out
    assert all(name in out for name in engine.SEGMENTS)


def test_bench_charts_numbers_agree_with_hand_sql(bench, capsys):
    charts = importlib.import_module("bench_charts")
    # 2 means only the timing target was missed, which a tiny sample may do.
    assert charts.main(["--users", USERS, "--repeat", "1"]) in (0, 2)
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert "numbers equal to the hand-written SQL's" in out


def test_bench_widgets_shows_the_counts_of_ds_count(bench, capsys):
    widgets = importlib.import_module("bench_widgets")
    widgets.main(["--users", USERS, "--edits", "2"])  # raises if a shown count is wrong
    out = capsys.readouterr().out
    assert "value change -> count (no debounce) median" in out


@pytest.mark.postgres
def test_bench_widgets_on_postgres(bench, capsys):
    from tests.backends import unavailable_reason

    reason = unavailable_reason("postgres")
    if reason:
        pytest.skip(reason)
    widgets = importlib.import_module("bench_widgets")
    # It raises if a count shown differs from Dataset.count's.
    widgets.main(["--users", USERS, "--edits", "2", "--postgres-only"])
    out = capsys.readouterr().out
    assert "PostgreSQL work_mem 4MB, as it comes: edit -> exact figure" in out
    assert "PostgreSQL work_mem 256MB, estimates first: 2 of 2 first figures were estimates" in out


def test_bench_scale_on_duckdb(bench, capsys):
    scale = importlib.import_module("bench_scale")
    assert scale.main(["--users", USERS, "--engines", "duckdb", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "peak RSS of this process" in out
    assert (bench.DATA / f"sample-{USERS}" / "users.parquet").exists()


def test_bench_catalog(bench, capsys):
    catalog = importlib.import_module("bench_catalog")
    figures = catalog.main(n=40)
    assert "load + validate every entry" in figures
    assert "catalog of 40 segments" in capsys.readouterr().out


def test_bench_catalog_compares_two_checkouts_in_fresh_processes(bench, capsys, tmp_path):
    catalog = importlib.import_module("bench_catalog")
    medians = catalog.compare(20, catalog.ROOT, rounds=1)  # this checkout against itself
    assert set(medians) == {"old", "new"}
    assert set(medians["old"]) == set(medians["new"]) >= {"load + validate every entry"}
    lines = capsys.readouterr().out.splitlines()
    load = next(line for line in lines if line.startswith("load + validate every entry"))
    assert len(load.split()) == 5 + 6  # the 5 words of its name, old / new / ratio twice
    # A folder without heapseg would measure the installed package instead: refused.
    with pytest.raises(SystemExit, match=f"heapseg.*{tmp_path}|{tmp_path}.*heapseg"):
        catalog.run_side(tmp_path, 5)


def test_bench_time_agrees_with_hand_sql_in_the_past(bench, capsys):
    past = importlib.import_module("bench_time")
    assert past.main(["--users", USERS, "--repeat", "1"]) == 0  # a mismatch exits
    out = capsys.readouterr().out
    assert "history: user_history (snapshots)" in out
    assert "size over time, 12 dates" in out and "worst ratios (target <= 1.25" in out


def test_bench_new_charts_numbers_agree_with_hand_sql(bench, capsys):
    new_charts = importlib.import_module("bench_new_charts")
    # 2 means only the timing target was missed, which a tiny sample may do.
    assert new_charts.main(["--users", USERS, "--repeat", "1"]) in (0, 2)
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert all(name in out for name in new_charts.RUNS)
    assert "numbers equal to the hand-written SQL's" in out


@pytest.mark.postgres
def test_bench_json_counts_agree_with_real_columns(bench, capsys):
    from tests.backends import unavailable_reason

    reason = unavailable_reason("postgres")
    engines = "duckdb" if reason else "duckdb,postgres"
    json_bench = importlib.import_module("bench_json")
    # 2 means only the timing target was missed, which a tiny sample may do.
    assert json_bench.main(["--users", USERS, "--repeat", "1", "--engines", engines]) in (0, 2)
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert "the SQL reads the JSON with JSON_TYPE: True" in out
    assert "worst ratios JSON/column" in out
    if reason:
        pytest.skip(f"PostgreSQL part not run: {reason}")
    assert "the SQL reads the JSON with JSONB_TYPEOF: True" in out
