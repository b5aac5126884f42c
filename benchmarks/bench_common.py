"""What the benchmark scripts share: the cached sample datasets, interleaved timing, peak memory."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import heapseg
from heapseg.sample import SAMPLE_AS_OF, generate

#: What leaves the sample's property history out.
NO_HISTORY = {"user_history": None, "account_history": None}
#: Where the generated sample datasets are kept between runs (ignored by git).
DATA = Path(__file__).parent / "data"

# The first CTEs of every hand-written query, with heapseg's semantics: events of merged anonymous
# ids count for their user, and nothing after ``{as_of}`` counts (``ev``: user_id, time, event).
MERGED_EVENTS = """moves AS (
  SELECT from_user_id, min(to_user_id) AS to_user_id FROM user_migrations GROUP BY from_user_id
),
ev AS (
  SELECT coalesce(m.to_user_id, e.user_id) AS user_id, e.time, e.event
  FROM events e LEFT JOIN moves m ON e.user_id = m.from_user_id
  WHERE e.time <= TIMESTAMP '{as_of}'
)"""


def sample_path(users: int, fmt: str = "duckdb") -> Path:
    """The sample dataset of ``users`` users in ``DATA``, generated on first use."""
    path = DATA / (f"sample-{users}.duckdb" if fmt == "duckdb" else f"sample-{users}")
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        generate(path, n_users=users, fmt=fmt)
    return path


def open_sample(users: int, history: bool = False) -> tuple[heapseg.Dataset, Path, dict[str, int]]:
    """The sample of ``users`` users as a dataset at its ``as_of``, announced on stdout.

    Without ``history`` the property history tables are left out, so properties read today's
    values as the hand-written SQL of the benchmarks does (``bench_time.py`` asks for history).
    Returns the dataset, its file and its tables' row counts.
    """
    path = sample_path(users)
    ds = heapseg.connect(path, as_of=SAMPLE_AS_OF, **({} if history else NO_HISTORY))
    counts = ds.table_counts()
    print(f"dataset: {counts['users']:,} users, {counts['events']:,} events ({path.name})")
    return ds, path, counts


def interleaved_medians(
    runs: dict[str, Callable[[], object]], repeat: int
) -> dict[str, tuple[float, object]]:
    """Median seconds and last result of each run, the runs taking turns (rotating who goes first).

    Taking turns spreads the machine's noise evenly: timing one side's repeats after the
    other's lets a burst of load from elsewhere land on one side only. Each run goes once
    untimed first (file pages, the event-name cache).
    """
    results = {name: fn() for name, fn in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i in range(repeat):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            results[name] = runs[name]()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in runs}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
