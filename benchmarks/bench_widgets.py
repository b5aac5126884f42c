"""Benchmark: the segment builder's responsiveness, from a value change to the figures shown.

    python benchmarks/bench_widgets.py [--users 100000 | --data FILE.duckdb] [--edits 20]
        [--estimate-above N] [--sample SHARE] [--postgres]

Opens a SegmentBuilder on the sample dataset with "Window shoppers" (Session count > 5 AND did
not do Completed Order), then changes the Session count threshold through its input ``--edits``
times, each time to a value not seen before (so nothing comes from the builder's count cache),
and measures the wall time from the change to the first figure shown (an estimate on a large
dataset, see ``--estimate-above``) and to the segment's exact count. Each exact count is checked against
``Dataset.count`` of the same definition, whose own time (compiled afresh, as the builder's is)
gives the ratio exact figure / ``ds.count``. Prints medians and the worst edit, with the
builder's default debounce and without (the query alone: the segment, each rule, the segment
without each rule and the total, in one backend query), then peak memory.

``--postgres`` runs the same loop against a throwaway PostgreSQL server (started as the tests
start theirs) holding the sample's users, identity merges and the events' user_id, time and
event columns, with an index on events (event, user_id, time): first with PostgreSQL's default
settings (``work_mem`` 4 MB), then with ``work_mem`` at 256 MB; each time as the builder comes
(estimates only above ``--estimate-above`` users) and with estimates first (on ``--sample``, or
5% of the users). It prints the medians of the first figure, the exact figure, ``ds.count`` and
their ratio per edit, and how long opening the builder took (its first answers; with estimates,
the one-time copy of the sample into temporary tables).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from bench_common import peak_rss_mb, sample_path

import heapseg
from heapseg.sample import SAMPLE_AS_OF
from heapseg.widgets import SegmentBuilder
from heapseg.widgets.counting import ESTIMATE_ABOVE

WINDOW_SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}


class Timings:
    """Per edit: seconds to the first figure, to the exact figure, and ds.count's own time."""

    def __init__(self) -> None:
        self.first: list[float] = []
        self.exact: list[float] = []
        self.count: list[float] = []
        self.estimated = 0
        #: Seconds from opening the builder to its first complete answer.
        self.opening = 0.0


def time_edits(
    ds: heapseg.Dataset, edits: int, debounce: float, first: int, **options: object
) -> Timings:
    """Change the threshold ``edits`` times; time the first and the exact figure of each."""
    opened = time.perf_counter()
    builder = SegmentBuilder(ds, segment=WINDOW_SHOPPERS, debounce=debounce, **options)
    out = Timings()
    shown = threading.Event()
    exact_at: list[float] = []

    def on_count(change: dict) -> None:
        if "≈" not in change["new"]:
            exact_at.append(time.perf_counter())
        shown.set()

    builder.count_html.observe(on_count, "value")
    # The same count as before changes no text: the end of counting is a figure shown too.
    builder.observe(lambda change: change.new or shown.set(), "busy")
    try:
        if not builder.wait(600):
            raise SystemExit("the first count did not come back within 600 s")
        out.opening = time.perf_counter() - opened
        threshold = builder.root.nodes[0].count_value
        for value in range(first, first + edits):
            shown.clear()
            exact_at.clear()
            began = time.perf_counter()
            threshold.value = value
            if not shown.wait(600):
                raise SystemExit(f"no figure within 600 s after setting the threshold to {value}")
            out.first.append(time.perf_counter() - began)
            out.estimated += "≈" in builder.count_html.value
            if not builder.wait(600):
                raise SystemExit(f"no count within 600 s after setting the threshold to {value}")
            # The exact count line (the rules' exact counts may follow it).
            out.exact.append((exact_at[0] if exact_at else time.perf_counter()) - began)
            out.count.append(check_shown(builder, ds, value))
        return out
    finally:
        builder.close()


def check_shown(builder: SegmentBuilder, ds: heapseg.Dataset, value: int) -> float:
    """Check the exact count shown against ``Dataset.count``; return that count's seconds."""
    definition = builder.segment.to_dict()
    assert definition["rules"][0]["count"]["value"] == value, definition
    ds.clear_query_cache()  # compiled afresh, as the builder's new definition was
    began = time.perf_counter()
    expected = ds.count(definition)
    took = time.perf_counter() - began
    shown = int(builder.count_html.value.replace(",", ""))
    if shown != expected:
        raise SystemExit(
            f"threshold {value}: the builder shows {shown}, Dataset.count says {expected}"
        )
    return took


def describe(label: str, timings: list[float]) -> str:
    return (
        f"{label:<40} median {statistics.median(timings):6.3f} s   "
        f"worst {max(timings):6.3f} s   best {min(timings):6.3f} s   ({len(timings)} edits)"
    )


def report(label: str, timings: Timings) -> None:
    print(describe(f"{label}: edit -> first figure", timings.first))
    print(describe(f"{label}: edit -> exact figure", timings.exact))
    print(describe(f"{label}: ds.count of the same segment", timings.count))
    ratios = [e / c for e, c in zip(timings.exact, timings.count, strict=True)]
    print(
        f"{label}: {timings.estimated} of {len(timings.first)} first figures were estimates; "
        f"exact figure / ds.count median {statistics.median(ratios):.2f}"
    )


def postgres_dataset(path: Path) -> tuple[heapseg.Dataset, object]:
    """The sample at ``path`` copied into a throwaway PostgreSQL server (the tests' helper),
    with its default settings."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import duckdb

    from tests.backends.postgres import PostgresServer, copy_table

    server = PostgresServer()
    server.start()
    con = server.connect(server.create_database("heapseg_bench"))
    source = duckdb.connect(str(path), read_only=True)
    began = time.perf_counter()
    copy_table(con.con, "users", source.execute("SELECT * FROM users").to_arrow_table())
    migrations = source.execute("SELECT * FROM user_migrations").to_arrow_table()
    copy_table(con.con, "user_migrations", migrations)
    events = source.execute("SELECT user_id, time, event FROM events").to_arrow_table()
    copy_table(con.con, "events", events)
    del events
    with con.con.cursor() as cur:
        cur.execute("CREATE INDEX ON events (event, user_id, time)")
        cur.execute("ANALYZE")
    con.con.commit()
    print(f"PostgreSQL: loaded and indexed in {time.perf_counter() - began:.0f} s")
    ds = heapseg.connect(con, as_of=SAMPLE_AS_OF, accounts=None)
    return ds, server


def run_postgres(args: argparse.Namespace, options: dict) -> None:
    """The edit loop on PostgreSQL at the default ``work_mem`` and at 256 MB, as the builder
    comes and with estimates first; a summary line per run."""
    pg, server = postgres_dataset(args.data)
    estimating = {"estimate_above": 0, "sample": args.sample or 0.05}
    summary = []
    try:
        first = 6
        for work_mem in ("default", "256MB"):
            if work_mem != "default":
                pg.backend.raw_sql(f"SET work_mem = '{work_mem}'").close()
            with pg.backend.raw_sql("SHOW work_mem") as cur:
                shown = cur.fetchone()[0]
            for how, opts in (("as it comes", options), ("estimates first", estimating)):
                label = f"PostgreSQL work_mem {shown}, {how}"
                timings = time_edits(pg, args.edits, 0.0, first=first, **opts)
                print(f"({label}: opening the builder took {timings.opening:.1f} s)")
                report(label, timings)
                summary.append((label, timings))
                first += args.edits
    finally:
        server.stop()
    print("PostgreSQL medians (no debounce): first figure, exact figure, ds.count, exact/ds.count")
    for label, t in summary:
        ratio = statistics.median([e / c for e, c in zip(t.exact, t.count, strict=True)])
        print(
            f"  {label:<48} {statistics.median(t.first):6.2f} s {statistics.median(t.exact):6.2f} s "
            f"{statistics.median(t.count):6.2f} s   {ratio:.2f}"
        )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a DuckDB file (default: the sample of --users)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--debounce", type=float, default=0.25)
    parser.add_argument("--estimate-above", type=int, default=ESTIMATE_ABOVE)
    parser.add_argument("--sample", type=float, default=None, help="the estimates' share")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="only on PostgreSQL")
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = sample_path(args.users)
    options = {"estimate_above": args.estimate_above, "sample": args.sample}
    if args.postgres or args.postgres_only:
        run_postgres(args, options)
        if args.postgres_only:
            return
    ds = heapseg.connect(args.data, as_of=SAMPLE_AS_OF)
    sizes = ds.table_counts()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.data.name}: {sizes['users']:,} users, {sizes['events']:,} events; "
        f"{os.cpu_count()} cores, load average {load:.1f}"
    )
    began = time.perf_counter()
    with_debounce = time_edits(ds, args.edits, args.debounce, first=6, **options)
    print(f"(opening the builder and its first answers: {time.perf_counter() - began:.1f} s)")
    query_only = time_edits(ds, args.edits, 0.0, first=6 + args.edits, **options)
    report(f"debounce {args.debounce:g} s", with_debounce)
    report("no debounce", query_only)
    median = statistics.median(query_only.exact)
    print(f"value change -> count (no debounce) median {median:6.3f} s (the exact count line)")
    first = statistics.median(query_only.first)
    exact = statistics.median(query_only.exact)
    ratio = statistics.median(
        [e / c for e, c in zip(query_only.exact, query_only.count, strict=True)]
    )
    if sizes["users"] > args.estimate_above:
        print(f"target first figure median <= 0.3 s: {'met' if first <= 0.3 else 'NOT met'}")
        print(f"target exact figure <= 1.2x ds.count: {'met' if ratio <= 1.2 else 'NOT met'}")
    else:
        print(f"target exact figure median <= 0.3 s: {'met' if exact <= 0.3 else 'NOT met'}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
