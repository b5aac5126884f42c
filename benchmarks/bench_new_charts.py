"""Benchmark: lifecycle, stickiness and paths by segment, heapseg.charts vs hand-written SQL.

    python benchmarks/bench_new_charts.py --users 100000 [--repeat 5]

On the sample dataset of that size (generated once, cached in benchmarks/data/), times each chart
by a user-property segment with "All users" (the whole call: query, reshaping and building the
Altair chart) against tuned hand-written DuckDB SQL for the same numbers on the same connection,
checks that both give the same numbers, and prints the medians and the ratio (target <= 1.25).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

import pandas as pd
from bench_common import MERGED_EVENTS, interleaved_medians, open_sample

from heapseg import charts, user
from heapseg.sample import SAMPLE_AS_OF

TARGET = 1.25
BY = {"Paid": user.subscription_type == "paid"}
AS_OF = SAMPLE_AS_OF  # a midnight: the windows end with the whole day before

# What every query shares, with heapseg's semantics: events of merged anonymous ids count for
# their user, events of ids that are not users are dropped, nothing after as_of counts, and the
# users are those who had joined at as_of (joined_at, else their first event).
COMMON = (
    "WITH "
    + MERGED_EVENTS
    + """,
usr AS (
  SELECT user_id, coalesce(subscription_type = 'paid', false) AS s0, joined_at FROM users
  WHERE joined_at <= TIMESTAMP '{as_of}'
)
"""
)

# Weekly lifecycle of sessions over 12 weeks, new = joined in the week (every sample user has
# a joined_at, so the first-event fallback is not needed here).
LIFECYCLE = (
    COMMON
    + """,
acts AS (
  SELECT DISTINCT user_id, least(date_trunc('week', time), TIMESTAMP '{last}') AS p
  FROM ev WHERE event = 'Session'
),
lagged AS (
  SELECT user_id, p, lag(p) OVER w AS prev, lead(p) OVER w AS nxt
  FROM acts WINDOW w AS (PARTITION BY user_id ORDER BY p)
),
statuses AS (
  SELECT l.user_id, l.p,
         CASE WHEN l.p = date_trunc('week', u.joined_at) THEN 'new'
              WHEN l.prev = l.p - INTERVAL 7 DAY THEN 'returning'
              ELSE 'resurrecting' END AS status
  FROM lagged l JOIN usr u USING (user_id)
  WHERE l.p BETWEEN TIMESTAMP '{first}' AND TIMESTAMP '{last}'
  UNION ALL
  SELECT l.user_id, l.p + INTERVAL 7 DAY, 'dormant'
  FROM lagged l JOIN usr u USING (user_id)
  WHERE (l.nxt IS NULL OR l.nxt <> l.p + INTERVAL 7 DAY)
    AND l.p + INTERVAL 7 DAY BETWEEN TIMESTAMP '{first}' AND TIMESTAMP '{last}'
)
SELECT p AS period, status, count(*) FILTER (WHERE s0) AS m0, count(*) AS m_all
FROM statuses JOIN usr USING (user_id) GROUP BY ALL
"""
)

# Days with a session in the last 30 UTC days.
STICKINESS = (
    COMMON
    + """,
days AS (
  SELECT user_id, count(DISTINCT least(date_trunc('day', time), TIMESTAMP '{last}')) AS days
  FROM ev WHERE event = 'Session' AND time >= TIMESTAMP '{first}' GROUP BY user_id
)
SELECT days, count(*) FILTER (WHERE s0) AS m0, count(*) AS m_all
FROM days JOIN usr USING (user_id) GROUP BY days
"""
)

# Three steps either side of each user's first Add to Cart of the last 30 days.
PATHS = (
    COMMON
    + """,
numbered AS (
  SELECT user_id, event, row_number() OVER (PARTITION BY user_id ORDER BY time, event) AS n
  FROM ev WHERE time > TIMESTAMP '{since}'
),
anchors AS (SELECT user_id, min(n) AS a FROM numbered WHERE event = 'Add to Cart' GROUP BY 1),
steps AS (
  SELECT n.user_id, n.event, n.n - a.a AS step
  FROM numbered n JOIN anchors a USING (user_id) WHERE n.n - a.a BETWEEN -3 AND 3
)
SELECT step, event, count(*) FILTER (WHERE s0) AS m0, count(*) AS m_all
FROM steps JOIN usr USING (user_id) GROUP BY ALL
"""
)


def _lifecycle(ds):
    return charts.lifecycle(ds, "Session", by=BY, include_all=True, interval="week", last=12).data


def _lifecycle_hand(raw) -> pd.DataFrame:
    last = AS_OF - timedelta(days=AS_OF.weekday() or 7)  # the Monday of the week before as_of
    first = last - timedelta(weeks=11)
    return raw.execute(LIFECYCLE.format(as_of=AS_OF, first=first, last=last)).df()


def _lifecycle_same(ours: pd.DataFrame, hand: pd.DataFrame) -> bool:
    hand = hand.assign(period=pd.to_datetime(hand["period"]).astype("datetime64[us]"))
    hand = hand.set_index(["period", "status"])
    for segment, column in (("Paid", "m0"), (charts.ALL_USERS, "m_all")):
        mine = ours[ours["segment"] == segment]
        for period, status, users in zip(
            mine["period"], mine["status"], mine["users"], strict=True
        ):
            key = (period.tz_localize(None), status)
            if int(hand[column].get(key, 0)) != users:
                return False
    return len(hand) > 0 and int(hand["m_all"].sum()) == int(
        ours.loc[ours["segment"] == charts.ALL_USERS, "users"].sum()
    )


def _stickiness(ds):
    return charts.stickiness(ds, "Session", by=BY, include_all=True, window="month").data


def _stickiness_hand(raw) -> pd.DataFrame:
    last = AS_OF - timedelta(days=1)
    return raw.execute(
        STICKINESS.format(as_of=AS_OF, first=last - timedelta(days=29), last=last)
    ).df()


def _stickiness_same(ours: pd.DataFrame, hand: pd.DataFrame) -> bool:
    hand = hand.set_index("days")
    for segment, column in (("Paid", "m0"), (charts.ALL_USERS, "m_all")):
        mine = ours[ours["segment"] == segment]
        want = [int(hand[column].get(k, 0)) for k in mine["days"]]
        if mine["users"].tolist() != want or sum(want) != int(hand[column].sum()):
            return False
    return True


def _paths(ds):
    return charts.paths(ds, "Add to Cart", by=BY, include_all=True, steps=3, top=5).data


def _paths_hand(raw) -> pd.DataFrame:
    return raw.execute(PATHS.format(as_of=AS_OF, since=AS_OF - timedelta(days=30))).df()


def _paths_same(ours: pd.DataFrame, hand: pd.DataFrame) -> bool:
    for segment, column in (("Paid", "m0"), (charts.ALL_USERS, "m_all")):
        mine = ours[ours["segment"] == segment]
        anchored = int(hand.loc[hand["step"] == 0, column].sum())
        if not len(mine) or int(mine["anchored"].iloc[0]) != anchored:
            return False
        for step, rows in mine.groupby("step"):
            at = hand[(hand["step"] == step) & (hand[column] > 0)]
            at = at.sort_values([column, "event"], ascending=[False, True]).head(5)
            want = [(e, int(n)) for e, n in zip(at["event"], at[column], strict=True)]
            if list(zip(rows["event"], rows["users"], strict=True)) != want:
                return False
    return True


RUNS = {
    "lifecycle, 12 weeks": (_lifecycle, _lifecycle_hand, _lifecycle_same),
    "stickiness, 30 days": (_stickiness, _stickiness_hand, _stickiness_same),
    "paths, 3 steps": (_paths, _paths_hand, _paths_same),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    ds, _, _ = open_sample(args.users)
    raw = ds.backend.con
    print(f"{'chart by a segment':<22} {'heapseg s':>10} {'hand SQL s':>11} {'ratio':>6}")
    worst = 0.0
    for name, (ours_fn, hand_fn, same) in RUNS.items():
        timings = interleaved_medians(
            {"ours": lambda f=ours_fn: f(ds), "hand": lambda f=hand_fn: f(raw)}, args.repeat
        )
        (ours, data), (hand, expected) = timings["ours"], timings["hand"]
        if not same(data, expected):
            print(f"MISMATCH {name}:\n{data}\n{expected}")
            return 1
        ratio = ours / hand
        worst = max(worst, ratio)
        print(f"{name:<22} {ours:>10.4f} {hand:>11.4f} {ratio:>6.2f}")
    print(f"worst ratio: {worst:.2f} (target <= {TARGET}); numbers equal to the hand-written SQL's")
    return 0 if worst <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
