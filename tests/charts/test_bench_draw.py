"""benchmarks/bench_draw.py runs on a small sample: every chart kind, its steps within the call."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def test_bench_draw_times_every_kind_and_its_steps(tmp_path, capsys):
    sys.path.insert(0, str(BENCHMARKS))
    common = importlib.import_module("bench_common")
    saved = common.DATA
    common.DATA = tmp_path
    try:
        bench = importlib.import_module("bench_draw")
        assert bench.main(["--users", "1000", "--repeat", "1"]) == 0
    finally:
        common.DATA = saved
        sys.path.remove(str(BENCHMARKS))
    lines = capsys.readouterr().out.splitlines()
    assert "dataset: 1,000 users" in lines[0]
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in lines[3:]}
    assert sorted(rows) == sorted(bench.KINDS)
    for kind, (whole, query, reshape, draw, other) in rows.items():
        # Each chart runs one query and draws once, all within the call.
        assert whole > 0 and query > 0 and draw > 0, kind
        assert query + reshape + draw <= whole + 0.2, kind
        assert abs(other - (whole - query - reshape - draw)) < 0.3, kind
