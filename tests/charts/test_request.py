"""The setup every chart shares: as_of, resolver, segments, scope, series names and limits."""

from __future__ import annotations

from datetime import datetime

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.charts import ALL_USERS, MAX_ROWS, ChartError, not_in, trend
from heapseg.charts.request import NOTHING_TO_DRAW, prepare
from tests.charts.conftest import AS_OF, BUYERS, PAID


def test_defaults_come_from_the_dataset(ds):
    request = prepare(ds, {"Paid": PAID})
    assert request.as_of == AS_OF
    assert request.resolver is ds.resolver
    assert [s.name for s in request.segments] == ["Paid"]
    assert request.scope is None and not request.include_all
    assert request.names == ["Paid"]
    assert prepare(ds, PAID, as_of="2026-09-01").as_of == datetime(2026, 9, 1)


def test_all_users_is_a_series_when_asked_or_alone(ds):
    assert prepare(ds, None, include_all=None).names == [ALL_USERS]
    assert prepare(ds, {"Paid": PAID}, include_all=None).names == ["Paid"]
    both = prepare(ds, [("Paid", PAID), ("Buyers", BUYERS)], include_all=True)
    assert both.names == ["Paid", "Buyers", ALL_USERS]


def test_nothing_to_draw_and_too_few_segments_are_errors(ds):
    with pytest.raises(ChartError, match="nothing to draw"):
        prepare(ds, None, include_all=False)
    with pytest.raises(ChartError, match=r"^overlap needs two$"):
        prepare(ds, [PAID], fewest=2, too_few="overlap needs two")
    assert NOTHING_TO_DRAW.startswith("nothing to draw")


def test_chart_with_nothing_to_draw_is_an_error(ds):
    with pytest.raises(ChartError, match="nothing to draw"):
        trend(ds, "Session", include_all=False)


def test_points_are_counted_per_series_before_any_query(ds, executed):
    request = prepare(ds, [PAID, BUYERS], include_all=True)
    request.check_points(MAX_ROWS // 3, "fine")
    with pytest.raises(ChartError, match=f"{3 * (MAX_ROWS // 3 + 1):,} points.*fewer"):
        request.check_points(MAX_ROWS // 3 + 1, "ask for fewer")
    assert executed == []


def test_a_catalog_gives_its_segments_and_resolves_them(ds, tmp_path):
    cat = Catalog(tmp_path / "c.json", user="ana")
    cat.save(PAID, "Paid", category="Plans")
    cat.save(BUYERS, "Buyers", category="Commerce")
    assert prepare(ds, cat).names == ["Paid", "Buyers"]
    only = prepare(ds, cat, category="commerce")
    assert only.names == ["Buyers"] and only.segments[0].resolver is cat
    by_name = prepare(ds, ["Paid"], resolver=cat)
    assert by_name.resolver is cat and by_name.segments[0].segment == cat.get("Paid").segment


def test_users_are_flagged_with_every_segment_within_the_scope(ds, oracle, executed):
    request = prepare(ds, {"Paid": PAID}, filter=not_in(BUYERS), include_all=True)
    assert request.scope.name.startswith("not in ")
    # The series of every user in scope is named after the filter, not "All users".
    assert request.names == ["Paid", request.scope.name] and request.all_name != ALL_USERS
    assert prepare(ds, {"Paid": PAID}, include_all=True).names == ["Paid", ALL_USERS]
    users = request.users()
    executed.clear()  # building may read a property's values once, for hints
    row = ds.execute(users.aggregate(n=users.count(), paid=users.count(where=users.s0))).iloc[0]
    assert executed == [1]
    outside = oracle.everyone() - oracle.members(BUYERS)
    assert row["n"] == len(outside)
    assert row["paid"] == len(outside & oracle.members(PAID))


def test_the_note_names_what_the_segments_and_the_scope_read_today(sample_path):
    current = heapseg.connect(sample_path, as_of=AS_OF, user_history=None)
    assert prepare(current, {"Buyers": BUYERS}).note() == ""
    scoped = prepare(current, {"Buyers": BUYERS}, filter=PAID)
    assert scoped.note() == "subscription_type: values as of today"
    assert prepare(current, {"Buyers": BUYERS}).note("country") == "country: values as of today"
