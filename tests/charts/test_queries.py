"""What charts ask the backend: event-property filters and the numeric properties they sum."""

from __future__ import annotations

import pytest

import heapseg
from heapseg.charts import ChartError
from heapseg.charts.queries import as_where, numeric_property, run, scoped_events
from heapseg.model import Group
from tests.charts.conftest import AS_OF

PAYPAL = {"kind": "event_property", "field": "payment_method", "operator": "=", "value": "paypal"}


def test_a_where_is_a_group_a_rule_or_nothing():
    assert as_where(None) is None
    group = as_where({"combinator": "and", "rules": [PAYPAL]})
    assert isinstance(group, Group)
    assert as_where(PAYPAL) == group
    assert as_where(group) is group
    assert as_where(heapseg.event_prop("payment_method") == "paypal") == group


def test_scoped_events_keep_the_names_the_window_and_the_where(ds, oracle):
    events = scoped_events(ds, AS_OF, events="Completed Order", where=PAYPAL)
    got = int(run(ds, events.aggregate(n=events.count()))["n"].iloc[0])
    orders = oracle.upto()
    orders = orders[(orders["event"] == "Completed Order") & (orders["payment_method"] == "paypal")]
    assert got == len(orders) > 0


def test_sums_need_a_numeric_event_property(ds):
    assert numeric_property(ds, "revenue", "sum") == "revenue"
    with pytest.raises(ChartError, match="needs property="):
        numeric_property(ds, None, "sum")
    with pytest.raises(ChartError, match="unknown event property 'nope'"):
        numeric_property(ds, "nope", "sum")
    with pytest.raises(ChartError, match="numeric"):
        numeric_property(ds, "payment_method", "avg")


def test_in_and_not_in_a_segment_share_one_flag_and_match_the_reference(ds, oracle):
    from heapseg.charts.queries import flagged_users
    from heapseg.charts.segments import ChartSegment

    shoppers = Group.from_dict(
        {
            "combinator": "and",
            "rules": [
                {"kind": "event", "event": "Session", "count": {"operator": ">", "value": 5}},
                {"kind": "event", "event": "Completed Order", "did": False},
            ],
        }
    )
    segments = [
        ChartSegment("in", shoppers),
        ChartSegment("not in", ~shoppers),
        ChartSegment("not in, wrapped", Group("and", (shoppers,), negate=True)),
    ]
    table = flagged_users(ds, segments, AS_OF)
    sql = str(ds.backend.compile(table))
    # Completed Order is read once: the complements reuse the first flag.
    assert sql.count("'Completed Order'") == 1
    frame = run(ds, table)
    members = oracle.members(shoppers.to_dict())
    everyone = oracle.everyone()
    assert set(frame.user_id) == everyone
    assert set(frame.user_id[frame.s0]) == members
    assert set(frame.user_id[frame.s1]) == everyone - members
    assert set(frame.user_id[frame.s2]) == everyone - members
