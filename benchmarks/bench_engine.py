"""Benchmark: heapseg's compiled segment counts against hand-written DuckDB SQL, same run.

    python benchmarks/bench_engine.py --users 100000 [--repeat 9]

Generates (once, cached in benchmarks/data/) the sample dataset at that size, then times
``Dataset.count`` for the three segments of the format spec against hand-written SQL for the same
segments on the same connection, the three taking turns, checks all give the same numbers, and
prints the medians and ratios. ``Dataset.count`` is timed twice: cold (the query cache cleared, so
ibis builds and compiles the expression each time) and warm (the same definition again). Peak memory is the process's peak RSS, next to the size of the events table on disk.
"""

from __future__ import annotations

import argparse
import sys

from bench_common import interleaved_medians, open_sample, peak_rss_mb

from heapseg import did, did_not, user
from heapseg.sample import SAMPLE_AS_OF

# The same semantics as heapseg's: events of merged anonymous ids count for their user; events
# after as_of are ignored; relative windows are absolute timestamps.
EVENTS = """
events_m AS (
  SELECT coalesce(m.to_user_id, e.user_id) AS user_id, e.time, e.event
  FROM events e
  LEFT JOIN (SELECT from_user_id, min(to_user_id) AS to_user_id
             FROM user_migrations GROUP BY from_user_id) m
    ON e.user_id = m.from_user_id
  WHERE e.time <= TIMESTAMP '{as_of}'
)"""

HAND_SQL = {
    "new trial users": """
WITH {events}
SELECT count(*) FROM users u
WHERE u.subscription_type = 'trial'
  AND u.user_id IN (
    SELECT user_id FROM events_m WHERE event = 'Session'
    GROUP BY user_id
    HAVING min(time) > TIMESTAMP '{as_of}' - INTERVAL 90 DAY)""",
    "window shoppers": """
WITH {events}
SELECT count(*) FROM users u
WHERE u.user_id IN (
    SELECT user_id FROM events_m WHERE event = 'Session' GROUP BY user_id HAVING count(*) > 5)
  AND u.user_id NOT IN (SELECT user_id FROM events_m WHERE event = 'Completed Order')""",
    "possible churn": """
WITH {events}
SELECT count(*) FROM users u
WHERE u.subscription_type = 'paid'
  AND u.user_id NOT IN (
    SELECT user_id FROM events_m
    WHERE event = 'Session' AND time > TIMESTAMP '{as_of}' - INTERVAL 90 DAY)""",
}

SEGMENTS = {
    "new trial users": (user.subscription_type == "trial")
    & did("Session").first_time().last(90, "day"),
    "window shoppers": (did("Session").times() > 5) & did_not("Completed Order"),
    "possible churn": (user.subscription_type == "paid") & did_not("Session").last(90, "day"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args(argv)

    ds, path, counts = open_sample(args.users)
    raw = ds.backend.con
    n_columns = len(ds.raw_events.columns)
    # What the events would take in pandas at 8 bytes a cell (strings take more): the floor of
    # any approach that pulled raw events into Python.
    events_mb = counts["events"] * n_columns * 8 / 2**20
    rss_before = peak_rss_mb()
    print(
        "cold: the segment's SQL compiled from scratch (ibis builds and compiles the expression);"
        "\nwarm: the same definition and as_of asked again (the SQL compiled last time is reused)"
    )
    print(
        f"{'segment':<18} {'cold s':>8} {'warm s':>8} {'hand SQL s':>11} "
        f"{'cold/hand':>10} {'warm/hand':>10} {'count':>8}"
    )
    worst = {"cold": 0.0, "warm": 0.0}
    as_of = SAMPLE_AS_OF.isoformat(sep=" ")
    for name, segment in SEGMENTS.items():
        sql = HAND_SQL[name].format(events=EVENTS.format(as_of=as_of), as_of=as_of)

        def cold(s=segment) -> int:
            ds.clear_query_cache()
            return ds.count(s)

        timings = interleaved_medians(
            {
                "cold": cold,
                "warm": lambda s=segment: ds.count(s),
                "hand": lambda q=sql: raw.execute(q).fetchone()[0],
            },
            args.repeat,
        )
        counts_seen = {result for _, result in timings.values()}
        if len(counts_seen) != 1:
            print(f"MISMATCH {name}: {timings}")
            return 1
        hand = timings["hand"][0]
        ratios = {kind: timings[kind][0] / hand for kind in worst}
        for kind, ratio in ratios.items():
            worst[kind] = max(worst[kind], ratio)
        print(
            f"{name:<18} {timings['cold'][0]:>8.4f} {timings['warm'][0]:>8.4f} {hand:>11.4f} "
            f"{ratios['cold']:>10.2f} {ratios['warm']:>10.2f} {timings['hand'][1]:>8,}"
        )
    print(f"worst ratio: cold {worst['cold']:.2f}, warm {worst['warm']:.2f} (target <= 1.25)")
    peak = peak_rss_mb()
    print(
        f"peak RSS: {peak:.0f} MB (before the timed runs {rss_before:.0f} MB); "
        f"events as a DataFrame would take >= {events_mb:.0f} MB; "
        f"the DuckDB file is {path.stat().st_size / 2**20:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
