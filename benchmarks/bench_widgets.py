"""Benchmark: the segment builder's responsiveness, from a value change to the count shown.

    python benchmarks/bench_widgets.py [--data benchmarks/data/sample-100000.duckdb] [--edits 20]

Opens a SegmentBuilder on the sample dataset with "Window shoppers" (Session count > 5 AND did
not do Completed Order), then changes the Session count threshold through its input ``--edits``
times, each time to a value not seen before (so nothing comes from the builder's count cache),
and measures the wall time from the change to the moment the new count is shown (the builder's
default debounce included). Each shown count is checked against ``Dataset.count`` of the same
definition. Prints the median and the worst edit, and the same with no debounce (the query
alone: the segment, each rule and the total, in one backend query).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from bench_common import sample_path

import heapseg
from heapseg.sample import SAMPLE_AS_OF
from heapseg.widgets import SegmentBuilder

WINDOW_SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}


def time_edits(ds: heapseg.Dataset, edits: int, debounce: float, first: int) -> list[float]:
    """Seconds from each threshold change to its count being shown."""
    builder = SegmentBuilder(ds, segment=WINDOW_SHOPPERS, debounce=debounce)
    try:
        if not builder.wait(300):
            raise SystemExit("the first count did not come back within 300 s")
        threshold = builder.root.nodes[0].count_value
        timings = []
        for value in range(first, first + edits):
            began = time.perf_counter()
            threshold.value = value
            if not builder.wait(300):
                raise SystemExit(f"no count within 300 s after setting the threshold to {value}")
            timings.append(time.perf_counter() - began)
            check_shown(builder, ds, value)
        return timings
    finally:
        builder.close()


def check_shown(builder: SegmentBuilder, ds: heapseg.Dataset, value: int) -> None:
    definition = builder.segment.to_dict()
    assert definition["rules"][0]["count"]["value"] == value, definition
    expected = ds.count(definition)
    shown = int(builder.count_html.value.replace(",", ""))
    if shown != expected:
        raise SystemExit(
            f"threshold {value}: the builder shows {shown}, Dataset.count says {expected}"
        )


def describe(label: str, timings: list[float]) -> str:
    return (
        f"{label:<34} median {statistics.median(timings):6.3f} s   "
        f"worst {max(timings):6.3f} s   best {min(timings):6.3f} s   ({len(timings)} edits)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DuckDB file (default: the sample of --users)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--debounce", type=float, default=0.25)
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = sample_path(args.users)
    ds = heapseg.connect(args.data, as_of=SAMPLE_AS_OF)
    sizes = ds.table_counts()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.data.name}: {sizes['users']:,} users, {sizes['events']:,} events; "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    with_debounce = time_edits(ds, args.edits, args.debounce, first=6)
    query_only = time_edits(ds, args.edits, 0.0, first=6 + args.edits)
    print(describe(f"value change -> count (debounce {args.debounce:g} s)", with_debounce))
    print(describe("value change -> count (no debounce)", query_only))
    target = statistics.median(with_debounce) < 0.5
    print(f"target median < 0.5 s: {'met' if target else 'NOT met'}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
