"""Chart marks as segments: every mark's segment counts what the mark shows, on every engine.

The invariant ``ds.count(segment_of(chart, **mark)) == the number on the mark`` is checked for
every mark of small charts of each kind on DuckDB, PostgreSQL and Spark; on DuckDB the same
segments also go through the reference evaluator (tests/reference.py), and the marks that count
events are checked against pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

import heapseg
from heapseg import charts, event_prop, user
from heapseg.charts import ChartError, mark_segment, marks, segment_of
from heapseg.charts.source import source_of
from heapseg.model import Group
from tests.charts.conftest import AS_OF, BUYERS, PAID

US = user.country == "US"
STEPS = ["Session", "Add to Cart", ("Completed Order", event_prop("payment_method") != "gift_card")]

#: Small charts of every kind whose marks turn into segments, with the options each mark takes.
CHARTS: dict[str, tuple[Callable[[Any], Any], list[dict[str, Any]]]] = {
    "trend": (
        lambda ds: charts.trend(
            ds,
            "Session",
            by={"Paid": PAID, "Buyers": BUYERS},
            filter=US,
            measure="users",
            interval="week",
            last=3,
            include_all=True,
        ),
        [{}],
    ),
    "trend_where": (
        lambda ds: charts.trend(
            ds,
            None,
            by={"Paid": PAID},
            where=event_prop("path").contains("/pricing"),
            measure="users",
            interval="day",
            last=3,
        ),
        [{}],
    ),
    "compare": (
        lambda ds: charts.compare(ds, {"Paid": PAID, "Buyers": BUYERS}, event="Add to Cart"),
        [{}, {"did": True}],
    ),
    "sizes": (lambda ds: charts.sizes(ds, {"Paid": PAID, "US": US}), [{}]),
    "overlap": (lambda ds: charts.overlap(ds, {"Paid": PAID, "Buyers": BUYERS, "US": US}), [{}]),
    "funnel": (
        lambda ds: charts.funnel(ds, STEPS, by={"Paid": PAID}, filter=US, include_all=True),
        [{}, {"dropped": True}],
    ),
    "breakdown_text": (lambda ds: charts.breakdown(ds, PAID, "role", top=2), [{}]),
    # "(not set)" is a bar of its own here, so "(other values)" leaves the unset values out.
    "breakdown_unset": (lambda ds: charts.breakdown(ds, PAID, "role", top=4), [{}]),
    "breakdown_number": (lambda ds: charts.breakdown(ds, BUYERS, "ltv", bins=3), [{}]),
    "breakdown_date": (
        lambda ds: charts.breakdown(ds, PAID, "signup_date", top=2, versus="all"),
        [{}],
    ),
    "breakdown_bool": (lambda ds: charts.breakdown(ds, PAID, "email_opt_in"), [{}]),
    "size_over_time": (
        lambda ds: charts.size_over_time(ds, {"Paid": PAID, "Buyers": BUYERS}, last=3),
        [{}],
    ),
    "lifecycle": (
        lambda ds: charts.lifecycle(
            ds, "Session", by={"Paid": PAID}, filter=US, interval="week", last=2
        ),
        [{}],
    ),
    "lifecycle_first": (
        lambda ds: charts.lifecycle(
            ds, "Add to Cart", by={"Buyers": BUYERS}, interval="month", last=2, new="first"
        ),
        [{}],
    ),
    "stickiness": (
        lambda ds: charts.stickiness(ds, "Session", by={"Paid": PAID}, include_all=True),
        [{}],
    ),
    # At a midnight as_of the events at as_of count on the day before (stickiness) and in the
    # day before it (trend): the segments say so with windows of the instant at as_of.
    "stickiness_midnight": (
        lambda ds: charts.stickiness(ds, "Session", by={"Paid": PAID}, as_of="2026-09-15"),
        [{}],
    ),
    "trend_midnight": (
        lambda ds: charts.trend(
            ds,
            "Session",
            by={"Paid": PAID},
            measure="users",
            interval="day",
            last=3,
            as_of="2026-09-15",
        ),
        [{}],
    ),
    "retention_days": (
        lambda ds: charts.retention(
            ds, "Session", by={"Paid": PAID}, periods=3, unit="day", convention="calendar"
        ),
        [{}],
    ),
    "retention_weeks": (
        lambda ds: charts.retention(
            ds,
            "Created Account",
            "Session",
            by={"Paid": PAID},
            filter=US,
            periods=2,
            convention="calendar",
            include_all=True,
        ),
        [{}],
    ),
}


#: The charts checked on PostgreSQL and Spark: every kind once (the others vary the options).
ON_EVERY_ENGINE = (
    "trend",
    "compare",
    "sizes",
    "overlap",
    "funnel",
    "breakdown_text",
    "breakdown_unset",
    "breakdown_number",
    "size_over_time",
    "lifecycle",
    "stickiness",
    "stickiness_midnight",
    "trend_midnight",
    "retention_weeks",
)


def _selections(chart: Any, options: list[dict[str, Any]]) -> list[tuple[dict, Any]]:
    """Every (mark, MarkSegment) of a chart, for each option that applies to the mark."""
    kind = source_of(chart).kind
    out = []
    for mark in marks(chart):
        for extra in options:
            last_step = kind == "funnel" and mark["step"] == len(STEPS)
            if extra.get("dropped") and last_step:
                continue
            out.append(({**mark, **extra}, mark_segment(chart, **mark, **extra)))
    return out


def _check_invariant(ds: Any, names: Any = CHARTS) -> int:
    """Count every mark's segment on ``ds`` (one query per chart and moment, with
    ``Dataset.counts``), and the busiest mark of each chart with ``ds.count`` itself, as an
    analyst would (its SQL differs from a query of several counts); the number of marks
    checked."""
    checked = 0
    for name in names:
        draw, options = CHARTS[name]
        chart = draw(ds)
        by_moment: dict[datetime, dict[str, tuple[dict, Any]]] = {}
        selections = _selections(chart, options)
        for mark, selected in selections:
            assert selected.shown is not None, (name, mark)
            by_moment.setdefault(selected.as_of, {})[f"m{checked}"] = (mark, selected)
            checked += 1
        mark, busiest = max(selections, key=lambda pair: pair[1].shown)
        assert ds.count(busiest.segment, as_of=busiest.as_of) == busiest.shown, (name, mark)
        for moment, chosen in by_moment.items():
            counted = ds.counts({k: s.segment for k, (_, s) in chosen.items()}, as_of=moment)
            for key, (mark, selected) in chosen.items():
                assert counted[key] == selected.shown, (name, mark, selected.segment.describe())
    return checked


def test_every_mark_counts_what_it_shows_on_duckdb(ds) -> None:
    assert _check_invariant(ds) > 60
    chart = CHARTS["funnel"][0](ds)
    for mark in marks(chart):  # ds.count itself, as an analyst would call it
        assert ds.count(segment_of(chart, **mark)) == mark_segment(chart, **mark).shown


def test_every_mark_is_the_reference_evaluators_users(ds, oracle) -> None:
    for name, (draw, options) in CHARTS.items():
        chart = draw(ds)
        for mark, selected in _selections(chart, options):
            found = oracle.members(selected.segment.to_dict(), selected.as_of)
            assert len(found) == selected.shown, (name, mark, selected.segment.describe())


def test_marks_of_every_kind_on_each_backend(backend_name: str, load_tables, oracle) -> None:
    con = load_tables(
        {
            "users": oracle.users,
            "events": oracle.raw_events,
            "accounts": oracle.accounts,
            "user_migrations": oracle.migrations,
        }
    )
    ds = heapseg.connect(con, user_migrations="user_migrations", as_of=AS_OF)
    assert _check_invariant(ds, ON_EVERY_ENGINE) > 60


def test_segment_of_is_the_definition_of_mark_segment(ds) -> None:
    chart = charts.overlap(ds, {"Paid": PAID, "Buyers": BUYERS})
    segment = segment_of(chart, a="Paid", b="Buyers")
    assert isinstance(segment, Group)
    both = {"combinator": "and", "rules": [*PAID["rules"], *BUYERS["rules"]]}
    assert segment == Group.from_dict(both), segment.to_dict()
    assert ds.count(segment) == int(
        chart.data.query("a == 'Paid' and b == 'Buyers'")["both"].iloc[0]
    )


def test_trend_point_is_an_absolute_window_with_the_charts_where(ds) -> None:
    chart = CHARTS["trend_where"][0](ds)
    period = chart.data["period"].iloc[0]
    rule = segment_of(chart, segment="Paid", period=period).to_dict()["rules"][1]
    start = period.tz_convert(None).to_pydatetime()
    first = rule["rules"][0]
    assert rule["combinator"] == "or"  # every event, one rule per name the data has
    assert first["window"] == {
        "from": start.isoformat(),
        "to": (start + timedelta(days=1)).isoformat(),
    }
    assert first["where"]["rules"][0]["field"] == "path"


def test_trend_events_point_holds_the_users_who_did_them(ds, oracle) -> None:
    chart = charts.trend(ds, "Session", by={"Paid": PAID}, interval="week", last=2)
    paid = oracle.members(PAID)
    events = oracle.upto()
    for mark in marks(chart):
        selected = mark_segment(chart, **mark)
        assert selected.shown is None  # the point counts events, not users
        start = mark["period"].tz_convert(None)
        end = min(start + timedelta(days=7), pd.Timestamp(AS_OF) + timedelta(microseconds=1))
        done = events[
            (events["event"] == "Session") & (events["time"] >= start) & (events["time"] < end)
        ]
        expected = set(done["user_id"]) & paid
        assert ds.count(selected.segment) == len(expected), mark


def test_trend_last_period_keeps_the_events_at_as_of() -> None:
    """At an as_of that starts an hour, the last point holds the events at exactly as_of."""
    users = pd.DataFrame(
        {"user_id": [1, 2, 3], "joined_at": [datetime(2026, 6, 1)] * 3, "plan": ["a", "a", "b"]}
    )
    as_of = datetime(2026, 6, 30, 12)
    times = [as_of - timedelta(hours=1, minutes=30), as_of - timedelta(seconds=1), as_of]
    events = pd.DataFrame({"user_id": [1, 2, 3], "time": times, "event": ["Session"] * 3})
    con = ibis.duckdb.connect()
    con.create_table("users", users)
    con.create_table("events", events)
    ds = heapseg.connect(con, as_of=as_of)
    chart = charts.trend(ds, "Session", measure="users", interval="hour", last=2)
    shown = dict(zip(chart.data["period"], chart.data["value"], strict=True))
    for mark in marks(chart):
        selected = mark_segment(chart, **mark)
        assert ds.count(selected.segment) == selected.shown == shown[mark["period"]]
    assert list(shown.values()) == [1, 2]


def test_breakdown_event_property_bar_holds_the_users_of_those_events(ds, oracle) -> None:
    chart = charts.breakdown(ds, PAID, "category", event="Add to Cart", top=2)
    paid = oracle.members(PAID)
    everyone = oracle.everyone()
    events = oracle.upto()
    window = events[
        (events["event"] == "Add to Cart") & (events["time"] > AS_OF - timedelta(days=30))
    ]
    top = [v for v in chart.data["value"].unique() if not v.startswith("(")]
    for mark in marks(chart):
        selected = mark_segment(chart, **mark)
        assert selected.shown is None  # bars count events
        value = mark["value"]
        if value == "(other values)":
            rows = window[~window["category"].isin(top)]
        elif value == "(not set)":
            rows = window[window["category"].isna() | (window["category"] == "")]
        else:
            rows = window[window["category"] == value]
        group = paid if mark["group"] != "Rest" else everyone - paid
        expected = set(rows["user_id"]) & group
        assert ds.count(selected.segment) == len(expected), mark


def test_breakdown_not_set_and_other_values_bars_hold_the_reference_users(ds, oracle) -> None:
    chart = CHARTS["breakdown_unset"][0](ds)
    shown = [v for v in chart.data["value"].unique() if not v.startswith("(")]
    assert {"(not set)", "(other values)"} <= set(chart.data["value"])
    # The reference evaluator's users (roles as of AS_OF, an empty string unset too).
    paid = oracle.members(PAID)
    rest = oracle.everyone() - paid
    unset = oracle.members({"combinator": "and", "rules": [_role("is not set")]})
    listed = oracle.members({"combinator": "and", "rules": [_role("in", shown)]})
    other = oracle.everyone() - unset - listed
    for group, members in ((chart.data["group"].iloc[0], paid), ("Rest", rest)):
        bars = chart.data[chart.data["group"] == group].set_index("value")["count"]
        for value, expected in (("(not set)", unset), ("(other values)", other)):
            assert ds.count(segment_of(chart, group=group, value=value)) == len(expected & members)
            assert bars[value] == len(expected & members)


def _role(operator: str, value: Any = None) -> dict[str, Any]:
    rule = {"kind": "user", "field": "role", "operator": operator}
    return rule if value is None else {**rule, "value": value}


def test_funnel_drop_off_is_reached_but_not_the_next(ds) -> None:
    chart = charts.funnel(ds, STEPS, by={"Paid": PAID})
    dropped = mark_segment(chart, segment="Paid", step=2, dropped=True)
    rule = dropped.segment.to_dict()["rules"][1]
    assert (rule["kind"], rule["reached"], rule["not_reached"]) == ("funnel", 2, 3)
    assert rule["steps"][2]["where"]["rules"][0]["field"] == "payment_method"
    users = chart.data.set_index("step")["users"]
    assert ds.count(dropped.segment) == users[2] - users[3]
    # A step as NumPy or JSON (2.0) give it is the same step.
    second = segment_of(chart, segment="Paid", step=2)
    assert segment_of(chart, segment="Paid", step=np.int64(2)) == second
    assert segment_of(chart, segment="Paid", step=2.0) == second
    with pytest.raises(ChartError, match="last step has no drop-off"):
        mark_segment(chart, segment="Paid", step=3, dropped=True)


def test_size_over_time_point_is_the_segment_frozen_at_its_moment(ds, tmp_path) -> None:
    chart = charts.size_over_time(ds, {"Paid": PAID}, last=3)
    first = chart.data.iloc[0]
    selected = mark_segment(chart, segment="Paid", at=first["at"])
    assert selected.static
    assert selected.as_of == first["at"].tz_convert(None).to_pydatetime() < AS_OF
    assert selected.segment == Group.from_dict(PAID)
    catalog = heapseg.Catalog(tmp_path / "segments.json", user="ana")
    entry = selected.save(catalog, dataset=ds)
    assert entry.is_static
    assert len(catalog.static_members(entry)) == int(first["users"])
    # Vega hands points over as epoch milliseconds.
    millis = first["at"].value // 1_000_000
    assert mark_segment(chart, segment="Paid", at=millis) == selected


def test_saving_a_mark_keeps_it_dynamic(ds, tmp_path) -> None:
    chart = charts.compare(ds, {"Paid": PAID}, event="Add to Cart")
    selected = mark_segment(chart, segment="Paid", did=True)
    catalog = heapseg.Catalog(tmp_path / "segments.json", user="ana")
    entry = selected.save(catalog)
    assert not entry.is_static
    assert entry.name == "Paid · did Add to Cart"
    assert ds.count(entry.segment) == int(chart.data["did"].iloc[0])


def test_lifecycle_new_users_without_joined_at_joined_at_their_first_event() -> None:
    """Users without joined_at join at their first event of any name (as the chart reads it)."""
    day = datetime(2026, 6, 1)
    users = pd.DataFrame(
        {"user_id": [1, 2, 3, 4], "joined_at": [day, None, None, day + timedelta(days=14)]}
    )
    rows = [  # (user, days after June 1st, event)
        (1, 1, "Session"), (1, 8, "Session"),
        (2, 2, "Pageview"), (2, 9, "Session"), (2, 16, "Session"),
        (3, 9, "Session"), (3, 10, "Pageview"),
        (4, 15, "Session"), (4, 16, "Session"),
    ]  # fmt: skip
    events = pd.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "time": [day + timedelta(days=d, hours=10) for _, d, _ in rows],
            "event": [e for _, _, e in rows],
        }
    )
    con = ibis.duckdb.connect()
    con.create_table("users", users)
    con.create_table("events", events)
    ds = heapseg.connect(con, as_of=datetime(2026, 6, 20))
    chart = charts.lifecycle(ds, "Session", interval="week", last=3)
    shown = chart.data.set_index(["period", "status"])["users"]
    assert shown.sum() > 0
    for mark in marks(chart):
        selected = mark_segment(chart, **mark)
        assert ds.count(selected.segment) == selected.shown, (mark, selected.segment.describe())
    # Week of June 8: user 3 joined then (her first event); user 1 had a session the week
    # before; user 2 joined the week before with a pageview (her first event of any name), so
    # she is not new but back without a session that week.
    week = pd.Timestamp("2026-06-08", tz="UTC")
    statuses = ("new", "returning", "resurrecting")
    assert [shown[(week, status)] for status in statuses] == [1, 1, 1]


def test_paths_and_any_event_stickiness_say_why_they_are_no_segment(ds) -> None:
    paths = charts.paths(ds, "Add to Cart", steps=1, top=2)
    with pytest.raises(ChartError, match="no rule for 'the next event'"):
        segment_of(paths, **marks(paths)[0])
    sticky = charts.stickiness(ds, None, window=3)
    with pytest.raises(ChartError, match="pass event="):
        segment_of(sticky, **marks(sticky)[0])


def test_retention_point_says_why_it_is_no_segment(ds) -> None:
    chart = charts.retention(ds, "Session", by={"Paid": PAID}, periods=2)
    with pytest.raises(ChartError, match="their own first start event"):
        segment_of(chart, segment="Paid", period=1)


def test_calendar_retention_point_is_one_branch_per_start_day(ds) -> None:
    chart = charts.retention(
        ds,
        "Session",
        by={"Paid": PAID},
        periods=2,
        unit="day",
        cohort_last=4,
        convention="calendar",
    )
    second = segment_of(chart, segment="Paid", period=2).to_dict()["rules"][1]
    # Start days d with d + 2 over by as_of (2026-09-15 12:00): 09-11 (cut at the window's
    # start, 09-11 12:00), 09-12; the later ones have not had their day 2 yet.
    assert second["combinator"] == "or" and len(second["rules"]) == 2
    first_day, next_day = (branch["rules"] for branch in second["rules"])
    assert first_day[0]["window"] == {
        "from": "2026-09-11T12:00:00.000001",
        "to": "2026-09-12T00:00:00",
    }
    assert first_day[1]["window"] == {"from": "2026-09-13T00:00:00", "to": "2026-09-14T00:00:00"}
    assert next_day[1] == {
        "kind": "event",
        "event": "Session",
        "did": False,
        "window": {"from": "2026-09-11T12:00:00.000001", "to": "2026-09-12T00:00:00"},
    }
    # With a one-day cohort window no start day has had its day 2 yet: nobody, not everybody.
    late = charts.retention(
        ds,
        "Session",
        by={"Paid": PAID},
        periods=2,
        unit="day",
        cohort_last=1,
        convention="calendar",
    )
    nobody = segment_of(late, segment="Paid", period=2)
    assert nobody.to_dict()["rules"][1] == {"combinator": "or", "not": True, "rules": []}
    assert ds.count(nobody) == 0 == int(late.data.query("period == 2")["retained"].iloc[0])


def test_calendar_retention_over_too_many_start_days_says_what_to_change(ds) -> None:
    chart = charts.retention(
        ds, "Session", periods=2, unit="day", cohort_last=60, convention="calendar"
    )
    with pytest.raises(ChartError, match=r"start days need \d+ event rules.*shorter cohort_last"):
        segment_of(chart, segment=chart.data["segment"].iloc[0], period=1)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"segment": "Paid"}, "missing step"),
        ({"segment": "Paid", "step": 1, "colour": "red"}, "unknown colour"),
        ({"segment": "Nobody", "step": 1}, "no series 'Nobody'"),
        ({"segment": "Paid", "step": 9}, "from 1 to 3"),
        ({"segment": "Paid", "step": 1.5}, "whole number"),
        ({"segment": "Paid", "step": float("nan")}, "whole number"),
        ({"segment": "Paid", "step": True}, "whole number"),
    ],
)
def test_a_mark_that_is_not_there_is_refused(ds, keys: dict, message: str) -> None:
    chart = charts.funnel(ds, STEPS, by={"Paid": PAID})
    with pytest.raises(ChartError, match=message):
        segment_of(chart, **keys)


def test_a_chart_changed_afterwards_has_no_source(ds) -> None:
    chart = charts.sizes(ds, {"Paid": PAID})
    with pytest.raises(ChartError, match="changed afterwards"):
        segment_of(chart.properties(width=100), segment="Paid")
    with pytest.raises(ChartError, match="no period"):
        segment_of(CHARTS["trend"][0](ds), segment="Paid", period="2020-01-01")
    # The source never reaches the Vega-Lite spec.
    assert "_heapseg_source" not in str(chart.to_dict())
