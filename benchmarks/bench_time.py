"""Benchmark: segments in the past (joining and property history) against hand-written DuckDB SQL.

    python benchmarks/bench_time.py --users 100000 [--repeat 7]

On the sample (users.joined_at, user_history in snapshots form), times at a past ``as_of``:

* ``Dataset.count`` of the three segments of the format spec, cold (compiled from scratch) and
  warm, against hand-written SQL with the same semantics (joined users; the plan at ``as_of``
  picked from the snapshots with a window function; merged identities; events up to ``as_of``);
* a size-over-time chart of "possible churn" at 12 weekly dates (``charts.size_over_time``, data
  only) against one hand-written query over the 12 dates;
* the same counts at the sample's own ``as_of`` without history (``user_history=None``), against
  the hand SQL of ``bench_engine.py``: evaluation without history must not get slower.

Every pair must give the same numbers; the ratios are heapseg / hand SQL (target <= 1.25).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from bench_common import NO_HISTORY, interleaved_medians, open_sample, peak_rss_mb
from bench_engine import EVENTS, SEGMENTS
from bench_engine import HAND_SQL as CURRENT_SQL

import heapseg
from heapseg import charts
from heapseg.sample import SAMPLE_AS_OF

PAST = datetime(2026, 5, 1, 12, 0)

# The plan each user had at as_of: the snapshot in force with the latest valid_from.
PLAN_AT = """
plan_at AS (
  SELECT user_id, subscription_type FROM user_history
  WHERE valid_from <= TIMESTAMP '{as_of}'
    AND (valid_to IS NULL OR valid_to > TIMESTAMP '{as_of}')
  QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY valid_from DESC) = 1
),
joined AS (SELECT user_id FROM users WHERE joined_at <= TIMESTAMP '{as_of}')"""

HAND_SQL = {
    "new trial users": """
WITH {events}, {plan}
SELECT count(*) FROM joined u JOIN plan_at p USING (user_id)
WHERE p.subscription_type = 'trial'
  AND u.user_id IN (
    SELECT user_id FROM events_m WHERE event = 'Session'
    GROUP BY user_id
    HAVING min(time) > TIMESTAMP '{as_of}' - INTERVAL 90 DAY)""",
    "window shoppers": """
WITH {events}, {plan}
SELECT count(*) FROM joined u
WHERE u.user_id IN (
    SELECT user_id FROM events_m WHERE event = 'Session' GROUP BY user_id HAVING count(*) > 5)
  AND u.user_id NOT IN (SELECT user_id FROM events_m WHERE event = 'Completed Order')""",
    "possible churn": """
WITH {events}, {plan}
SELECT count(*) FROM joined u JOIN plan_at p USING (user_id)
WHERE p.subscription_type = 'paid'
  AND u.user_id NOT IN (
    SELECT user_id FROM events_m
    WHERE event = 'Session' AND time > TIMESTAMP '{as_of}' - INTERVAL 90 DAY)""",
}

# "Possible churn" at each of the dates, in one query: per date, the users who had joined, their
# plan at that date, and no Session in the 90 days up to it.
SIZE_OVER_TIME_SQL = """
WITH dates(d) AS (VALUES {dates}),
moves AS (SELECT from_user_id, min(to_user_id) AS to_user_id FROM user_migrations
          GROUP BY from_user_id),
sessions AS (
  SELECT coalesce(m.to_user_id, e.user_id) AS user_id, e.time
  FROM events e LEFT JOIN moves m ON e.user_id = m.from_user_id
  WHERE e.event = 'Session' AND e.time <= TIMESTAMP '{last}'
),
plan_at AS (
  SELECT d, h.user_id, h.subscription_type
  FROM dates JOIN user_history h
    ON h.valid_from <= d AND (h.valid_to IS NULL OR h.valid_to > d)
  QUALIFY row_number() OVER (PARTITION BY d, h.user_id ORDER BY h.valid_from DESC) = 1
),
paid AS (
  SELECT p.d, p.user_id FROM plan_at p JOIN users u USING (user_id)
  WHERE p.subscription_type = 'paid' AND u.joined_at <= p.d
),
active AS (
  SELECT DISTINCT dates.d, s.user_id FROM dates JOIN sessions s
    ON s.time > dates.d - INTERVAL 90 DAY AND s.time <= dates.d
)
SELECT d, count(*) AS n FROM paid ANTI JOIN active USING (d, user_id) GROUP BY d ORDER BY d"""


def _row(name: str, ours: float, hand: float, extra: str = "") -> float:
    ratio = ours / hand
    print(f"{name:<34} {ours:>9.4f} {hand:>11.4f} {ratio:>7.2f} {extra}")
    return ratio


def _counts(
    ds: heapseg.Dataset, hand: dict[str, str], as_of: datetime, repeat: int
) -> dict[str, float]:
    """Cold and warm counts of the three segments against ``hand``; the worst ratio of each."""
    raw = ds.backend.con
    stamp = as_of.isoformat(sep=" ")
    worst = {"cold": 0.0, "warm": 0.0}
    for name, segment in SEGMENTS.items():
        sql = hand[name].format(
            events=EVENTS.format(as_of=stamp), plan=PLAN_AT.format(as_of=stamp), as_of=stamp
        )

        def cold(s=segment) -> int:
            ds.clear_query_cache()
            return ds.count(s, as_of)

        timings = interleaved_medians(
            {
                "cold": cold,
                "warm": lambda s=segment: ds.count(s, as_of),
                "hand": lambda q=sql: raw.execute(q).fetchone()[0],
            },
            repeat,
        )
        seen = {result for _, result in timings.values()}
        if len(seen) != 1:
            raise SystemExit(f"MISMATCH {name} at {stamp}: {timings}")
        count = timings["hand"][1]
        for kind in ("cold", "warm"):
            ratio = _row(f"{name} ({kind})", timings[kind][0], timings["hand"][0], f"{count:>8,}")
            worst[kind] = max(worst[kind], ratio)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    ds, path, _ = open_sample(args.users, history=True)
    print(ds.time_note())
    header = f"{'':<34} {'heapseg s':>9} {'hand SQL s':>11} {'ratio':>7}"

    print(f"\n1. the spec's segments at {PAST:%Y-%m-%d %H:%M} (joining and the plan's history)")
    print(header + "    count")
    worst_past = _counts(ds, HAND_SQL, PAST, args.repeat)

    print("\n2. possible churn, size over time at 12 weekly dates (one query each side)")
    churn = {"Possible churn": SEGMENTS["possible churn"]}

    def ours() -> list[int]:
        data = charts.size_over_time(
            ds, churn, interval="week", last=12, as_of=PAST, return_data=True
        )[1]
        return data["users"].tolist()

    # The same moments as the chart's: 12 weekly steps (7 days) back from as_of.
    first = charts.size_over_time(
        ds, churn, interval="week", last=12, as_of=PAST, return_data=True
    )[1]
    dates = [d.to_pydatetime() for d in first["at"].dt.tz_localize(None)]
    sql = SIZE_OVER_TIME_SQL.format(
        dates=", ".join(f"(TIMESTAMP '{d.isoformat(sep=' ')}')" for d in dates),
        last=PAST.isoformat(sep=" "),
    )
    raw = ds.backend.con

    timings = interleaved_medians(
        {"heapseg": ours, "hand": lambda: [n for _, n in raw.execute(sql).fetchall()]},
        args.repeat,
    )
    if timings["heapseg"][1] != timings["hand"][1]:
        raise SystemExit(f"MISMATCH size over time: {timings}")
    worst_chart = _row(
        "size over time, 12 dates",
        timings["heapseg"][0],
        timings["hand"][0],
        str(timings["hand"][1]),
    )

    print(f"\n3. without history, at the sample's as_of {SAMPLE_AS_OF:%Y-%m-%d} (as before)")
    print(header + "    count")
    plain = heapseg.connect(path, as_of=SAMPLE_AS_OF, **NO_HISTORY)
    worst_plain = _counts(plain, CURRENT_SQL, SAMPLE_AS_OF, args.repeat)

    print(
        f"\nworst ratios (target <= 1.25, on repeated counts as bench_engine.py has always "
        f"measured them): past counts {worst_past['warm']:.2f}, size over time "
        f"{worst_chart:.2f}, without history {worst_plain['warm']:.2f}; a definition's first "
        f"count: past {worst_past['cold']:.2f}, without history {worst_plain['cold']:.2f}"
    )
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
