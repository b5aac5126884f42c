"""What charts ask the backend: event-property filters and the numeric properties they sum."""

from __future__ import annotations

import importlib

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.charts import (
    ChartError,
    compare,
    funnel,
    lifecycle,
    overlap,
    paths,
    queries,
    retention,
    stickiness,
    trend,
)
from heapseg.charts.queries import as_where, numeric_property, run, scoped_events
from heapseg.model import Group
from tests.charts.conftest import AS_OF, BUYERS, PAID

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


# ------------------------------------------------------------------------------ built once


@pytest.fixture
def builds(monkeypatch):
    """How many times the users' flags and the events in scope were built (not reused)."""
    counts = {"users": 0, "events": 0}
    for name, module_name in (("users", "_flagged_users"), ("events", "_scoped_events")):
        original = getattr(queries, module_name)

        def counting(*args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(queries, module_name, counting)
    return counts


def test_a_chart_drawn_again_reuses_its_expressions_until_refresh(sample_path, builds):
    fresh = heapseg.connect(sample_path, as_of=AS_OF)
    first = trend(fresh, "Session", by={"Paid": PAID}, include_all=True, last=14).data
    assert builds == {"users": 1, "events": 1}
    again = trend(fresh, "Session", by={"Paid": PAID}, include_all=True, last=14).data
    assert builds == {"users": 1, "events": 1}
    assert again.equals(first)
    # Other arguments are other expressions.
    trend(fresh, "Session", by={"Buyers": BUYERS}, include_all=True, last=14)
    trend(fresh, "Completed Order", by={"Paid": PAID}, include_all=True, last=14)
    assert builds == {"users": 2, "events": 2}
    fresh.refresh()
    trend(fresh, "Session", by={"Paid": PAID}, include_all=True, last=14)
    assert builds == {"users": 3, "events": 3}


def test_segments_that_refer_to_saved_ones_follow_the_catalog(sample_path, oracle, tmp_path):
    fresh = heapseg.connect(sample_path, as_of=AS_OF)
    cat = Catalog(tmp_path / "c.json", user="ana")
    entry = cat.save(PAID, "Plan")
    by = {"Plan": {"combinator": "and", "rules": [{"kind": "segment", "id": entry.id}]}}
    before = compare(fresh, by, resolver=cat).data
    cat.update(entry, BUYERS)  # the saved segment now selects buyers: the chart must follow
    after = compare(fresh, by, resolver=cat).data
    users = lambda data: int(data.loc[data["segment"] == "Plan", "users"].iloc[0])  # noqa: E731
    assert users(before) == len(oracle.members(PAID))
    assert users(after) == len(oracle.members(BUYERS)) != users(before)


@pytest.fixture
def queries_built(monkeypatch):
    """How many times each chart kind's whole query was built (not reused)."""
    calls = {}
    for kind in (
        "stickiness",
        "trend",
        "lifecycle",
        "paths",
        "compare",
        "funnel",
        "retention",
        "overlap",
    ):
        module = importlib.import_module(f"heapseg.charts.{kind}")

        def counting(*args, _original=module._query, _kind=kind, **kwargs):
            calls[_kind] = calls.get(_kind, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, "_query", counting)
    return calls


@pytest.mark.parametrize(
    ("kind", "draw", "other"),
    [
        ("trend", lambda ds, **kw: trend(ds, "Session", last=14, **kw), {"measure": "users"}),
        ("lifecycle", lambda ds, **kw: lifecycle(ds, "Session", last=6, **kw), {"new": "first"}),
        ("paths", lambda ds, **kw: paths(ds, "Add to Cart", top=3, **kw), {"steps": 2}),
        ("compare", lambda ds, by, **kw: compare(ds, by, **kw), {"event": "Session"}),
        (
            "funnel",
            lambda ds, **kw: funnel(ds, ["Session", "Completed Order"], **kw),
            {"within": 3},
        ),
        (
            "retention",
            lambda ds, **kw: retention(ds, "Session", periods=4, **kw),
            {"convention": "calendar"},
        ),
        (
            "overlap",
            lambda ds, by, **kw: overlap(ds, {**by, "Buyers": BUYERS}, **kw),
            {"as_of": "2026-06-01"},
        ),
    ],
    ids=["trend", "lifecycle", "paths", "compare", "funnel", "retention", "overlap"],
)
def test_each_chart_kind_builds_its_query_once(sample_path, queries_built, kind, draw, other):
    fresh = heapseg.connect(sample_path, as_of=AS_OF)
    first = draw(fresh, by={"Paid": PAID}).data
    assert draw(fresh, by={"Paid": PAID}).data.equals(first)
    assert queries_built == {kind: 1}
    draw(fresh, by={"Paid": PAID}, **other)
    draw(fresh, by={"Paid": BUYERS})
    assert queries_built == {kind: 3}


def test_a_chart_query_is_built_once_per_request_and_settings(sample_path, queries_built):
    fresh = heapseg.connect(sample_path, as_of=AS_OF)
    draw = lambda **kw: stickiness(fresh, "Session", by={"Paid": PAID}, **kw).data  # noqa: E731
    first = draw()
    assert queries_built == {"stickiness": 1}
    # Drawn again, or only shown otherwise (the measure is not in the query): built once.
    assert draw().equals(first)
    draw(measure="users")
    assert queries_built == {"stickiness": 1}
    # Anything the query reads builds it again: window, event filter, segments, scope, as_of.
    draw(window="month")
    draw(where={"kind": "event_property", "field": "path", "operator": "contains", "value": "a"})
    draw(include_all=True)
    draw(filter=BUYERS)
    stickiness(fresh, "Session", by={"Paid": BUYERS})
    stickiness(fresh, "Session", by={"Paid": PAID}, as_of="2026-06-01")
    assert queries_built == {"stickiness": 7}
    fresh.refresh()
    assert draw().equals(first)
    assert queries_built == {"stickiness": 8}


def test_a_chart_of_saved_segments_builds_its_query_every_time(
    sample_path, oracle, tmp_path, queries_built
):
    fresh = heapseg.connect(sample_path, as_of=AS_OF)
    cat = Catalog(tmp_path / "c.json", user="ana")
    entry = cat.save(PAID, "Plan")
    by = {"Plan": {"combinator": "and", "rules": [{"kind": "segment", "id": entry.id}]}}
    before = stickiness(fresh, "Session", by=by, resolver=cat).data
    cat.update(entry, BUYERS)
    after = stickiness(fresh, "Session", by=by, resolver=cat).data
    assert queries_built == {"stickiness": 2}
    assert not after.equals(before)
    direct = stickiness(fresh, "Session", by={"Plan": BUYERS}).data
    assert after["users"].tolist() == direct["users"].tolist()
