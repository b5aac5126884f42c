"""Benchmark: what drawing costs in each chart kind, next to the whole call.

    python benchmarks/bench_draw.py --users 100000 [--repeat 5] [--kinds trend,funnel]

On the sample dataset of that size (generated once, cached in benchmarks/data/), calls each chart
kind by a user-property segment (with "All users" where the kind has it) and times, median of
``--repeat`` calls: the whole call, the backend query (``run``), the reshaping of its result into
``chart.data`` and the drawing (the module's ``_draw`` and ``finish``: building the Altair chart).
At 100k users a chart's query takes 40-200 ms, so these fixed Python costs decide its ratio
against hand-written SQL (``bench_charts.py``, ``bench_new_charts.py``).
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench_common import open_sample

from heapseg import charts, user

BY = {"Paid": user.subscription_type == "paid"}
OTHER = {"US": user.country == "US"}
# What each step is called in the chart modules (reshaping has a name per kind).
STEPS = {"run": "query", "_draw": "draw", "finish": "draw"}
RESHAPE = ("_frame", "_long", "_ranked")
REQUEST = importlib.import_module("heapseg.charts.request")

KINDS: dict[str, Callable[[Any], Any]] = {
    "breakdown": lambda ds: charts.breakdown(ds, ("Paid", BY["Paid"]), "country"),
    "compare": lambda ds: charts.compare(ds, {**BY, **OTHER}, event="Add to Cart"),
    "sizes": lambda ds: charts.sizes(ds, {**BY, **OTHER}),
    "overlap": lambda ds: charts.overlap(ds, {**BY, **OTHER}),
    "trend": lambda ds: charts.trend(ds, "Session", by=BY, include_all=True, last=90),
    "funnel": lambda ds: charts.funnel(
        ds, ["Session", "Add to Cart", "Completed Order"], by=BY, include_all=True
    ),
    "retention": lambda ds: charts.retention(ds, "Session", by=BY, include_all=True),
    "size_over_time": lambda ds: charts.size_over_time(ds, BY, last=12),
    "lifecycle": lambda ds: charts.lifecycle(ds, "Session", by=BY, include_all=True, last=12),
    "stickiness": lambda ds: charts.stickiness(
        ds, "Session", by=BY, include_all=True, window="month"
    ),
    "paths": lambda ds: charts.paths(ds, "Add to Cart", by=BY, include_all=True),
}


def timed(module: Any, spent: dict[str, float]) -> Callable[[], None]:
    """Wrap the module's query, reshaping and drawing functions to add their seconds to
    ``spent``; returns what undoes it. A chart runs its query either itself (``run``) or through
    its request (``ChartRequest.run``, which calls ``run`` of charts/request.py)."""
    originals = []
    places = [(module, name) for name in (*STEPS, *RESHAPE)] + [(REQUEST, "run")]
    for place, name in places:
        fn = getattr(place, name, None)
        if fn is None:
            continue
        step = STEPS.get(name, "reshape")

        def wrapper(*args: Any, _fn: Any = fn, _step: str = step, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent[_step] += time.perf_counter() - start

        originals.append((place, name, fn))
        setattr(place, name, wrapper)
    return lambda: [setattr(place, name, fn) for place, name, fn in originals]


def measure(ds: Any, kind: str, repeat: int) -> dict[str, float]:
    """Median milliseconds of the whole call and of each step, over ``repeat`` calls."""
    module = importlib.import_module(f"heapseg.charts.{kind}")
    KINDS[kind](ds)  # once untimed: file pages, cached event names and values
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        spent: dict[str, float] = defaultdict(float)
        undo = timed(module, spent)
        try:
            start = time.perf_counter()
            KINDS[kind](ds)
            samples["whole"].append(time.perf_counter() - start)
        finally:
            undo()
        for step in ("query", "reshape", "draw"):
            samples[step].append(spent[step])
    return {step: statistics.median(values) * 1000 for step, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    ds, _path, _counts = open_sample(args.users)
    print(f"median of {args.repeat} calls, ms")
    print(f"{'kind':<16}{'whole':>9}{'query':>9}{'reshape':>9}{'draw':>9}{'other':>9}")
    for kind in args.kinds.split(","):
        t = measure(ds, kind, args.repeat)
        other = t["whole"] - t["query"] - t["reshape"] - t["draw"]
        print(
            f"{kind:<16}{t['whole']:>9.1f}{t['query']:>9.1f}{t['reshape']:>9.1f}"
            f"{t['draw']:>9.1f}{other:>9.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
