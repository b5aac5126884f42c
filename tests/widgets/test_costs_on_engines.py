"""What each rule costs, on DuckDB, PostgreSQL and PySpark: the builder's one query, against pandas."""

from __future__ import annotations

from datetime import timedelta

import heapseg
from tests.backends.test_estimates import AS_OF, counts_heard, tables

# paid AND more than 2 sessions AND (an order in the last 14 days OR a refund)
DEFINITION = (
    (heapseg.user.plan == "paid")
    & (heapseg.did("Session").times() > 2)
    & (heapseg.did("Completed Order").last(14, "day") | heapseg.did("Refund"))
)


def test_rule_costs_agree_with_pandas_on_every_engine(load_tables, backend_name) -> None:
    frames = tables()
    users, events = frames["users"], frames["events"]
    ids = set(users.user_id)

    def who(frame) -> set[int]:
        return set(frame.user_id) & ids

    paid = set(users[users.plan == "paid"].user_id)
    sessions = events[events.event == "Session"].groupby("user_id").size()
    many = set(sessions[sessions > 2].index) & ids
    orders = events[events.event == "Completed Order"]
    ordered = who(orders[orders.time > AS_OF - timedelta(days=14)])
    refunded = who(events[events.event == "Refund"])

    ds = heapseg.connect(load_tables(frames), as_of=AS_OF)
    heard = counts_heard(ds, DEFINITION)
    last = heard[-1]
    assert last.exact
    either = ordered | refunded
    assert last.count == len(paid & many & either)
    assert last.rule_counts == {
        "rules[0]": len(paid),
        "rules[1]": len(many),
        "rules[2]": len(either),
        "rules[2].rules[0]": len(ordered),
        "rules[2].rules[1]": len(refunded),
    }
    # The segment without each rule: more users without an AND's rule, fewer without an OR's.
    assert last.without_counts == {
        "rules[0]": len(many & either),
        "rules[1]": len(paid & either),
        "rules[2]": len(paid & many),
        "rules[2].rules[0]": len(paid & many & refunded),
        "rules[2].rules[1]": len(paid & many & ordered),
    }
    assert len(paid & many & refunded) < last.count < len(paid & many)  # both signs exercised
