"""The funnel row of the builder: steps added and removed, within, window, reached / not reached,
round trips of any funnel rule, and live counts equal to the funnel chart's bars."""

from __future__ import annotations

import datetime as dt

import pytest

from heapseg import charts
from heapseg.charts.funnel import funnel_rule
from heapseg.model import Group
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.group import GroupBox
from heapseg.widgets.rows import FunnelRow
from heapseg.widgets.rows.funnel import COMPLETED, NO_STEP

from .test_builder import add, pick_user_property

STEPS = ["Session", "Add to Cart", "Completed Order"]
CARD = {
    "combinator": "and",
    "rules": [
        {"kind": "event_property", "field": "payment_method", "operator": "=", "value": "card"}
    ],
}
FUNNELS = [
    {"kind": "funnel", "steps": [{"event": "Session"}, {"event": "Add to Cart"}]},
    {
        "kind": "funnel",
        "steps": [{"event": name} for name in STEPS],
        "within": {"value": 7, "unit": "day"},
        "window": {"last": 30, "unit": "day"},
        "reached": 2,
        "not_reached": 3,
    },
    {
        "kind": "funnel",
        "steps": [
            {"event": "Pageview"},
            {"event": "Pageview"},
            {"event": "Completed Order", "where": CARD},
        ],
        "within": {"value": 3, "unit": "hour"},
        "window": {"last": 2, "unit": "week", "offset": 1},
        "reached": 1,
    },
    {
        "kind": "funnel",
        "steps": [{"event": name} for name in [*STEPS, "Session"]],
        "within": {"value": 1, "unit": "month"},
        "window": {"from": "2026-06-01", "to": "2026-09-01"},
        "reached": 3,
    },
]


@pytest.fixture
def choices(ds):
    return DataChoices(ds)


@pytest.mark.parametrize("rule", FUNNELS, ids=lambda r: f"{len(r['steps'])}-steps")
def test_each_funnel_round_trips(choices, rule):
    group = GroupBox(choices, root=True)
    model = Group.from_dict({"combinator": "and", "rules": [rule]})
    group.set_model(model)
    (row,) = group.nodes
    assert isinstance(row, FunnelRow)
    assert group.to_dict() == model.to_dict()
    assert Group.from_dict(group.to_dict()) == model


def test_a_new_funnel_row_is_the_classic_funnel(choices):
    row = FunnelRow(choices)
    assert row.to_dict() == {
        "kind": "funnel",
        "steps": [{"event": name} for name in STEPS],
        "within": {"value": 7, "unit": "day"},
        "window": {"last": 30, "unit": "day"},
    }
    # As the funnel chart draws it by default.
    assert row.to_dict() == funnel_rule(STEPS).to_dict()


def test_steps_are_added_and_removed_and_at_least_two_stay(choices):
    row = FunnelRow(choices)
    heard = []
    row.on_change = lambda: heard.append(1)
    row.add_step_button.click()
    assert len(row.steps) == 4 and len(heard) == 1
    row.steps[3].event.value = "Session"
    assert [s.number.value for s in row.steps] == ["1.", "2.", "3.", "4."]
    row.steps[1].remove.click()
    assert [s.event.value for s in row.steps] == ["Session", "Completed Order", "Session"]
    assert [s.number.value for s in row.steps] == ["1.", "2.", "3."]
    row.steps[0].remove.click()
    assert len(row.steps) == 2
    assert all(step.remove.disabled for step in row.steps)
    row.steps[0].remove.click()  # a funnel keeps two steps
    assert len(row.steps) == 2
    row.add_step_button.click()
    assert not any(step.remove.disabled for step in row.steps)


def test_reached_and_not_reached_follow_the_steps(choices):
    row = FunnelRow(choices)
    assert [label for label, _ in row.reached.options] == [
        "completed",
        "step 1 (entered)",
        "step 2 (Add to Cart)",
    ]
    assert row.not_reached.layout.display == "none"
    row.reached.value = 2
    assert row.not_reached.layout.display == ""
    assert list(row.not_reached.options) == [("—", NO_STEP), ("step 3 (Completed Order)", 3)]
    row.not_reached.value = 3
    assert row.to_dict()["reached"] == 2 and row.to_dict()["not_reached"] == 3
    row.steps[2].event.value = "Pageview"  # labels follow the names, the choice stays
    assert row.not_reached.options[1] == ("step 3 (Pageview)", 3) and row.not_reached.value == 3
    row.reached.value = 1
    assert [v for _, v in row.not_reached.options] == [NO_STEP, 2, 3]
    assert row.not_reached.value == 3
    row.steps[2].remove.click()  # step 3 is gone: "but not" it is dropped
    assert row.not_reached.value == NO_STEP and "not_reached" not in row.to_dict()
    row.reached.value = COMPLETED
    assert "reached" not in row.to_dict()
    row.with_within.value = False
    assert "within" not in row.to_dict() and row.within_n.layout.display == "none"


def test_window_forms_and_step_filters(choices):
    row = FunnelRow(choices)
    row.window.form.value = "range"
    row.window.date_from.value = dt.date(2026, 7, 1)
    assert row.to_dict()["window"] == {"from": "2026-07-01"}
    row.window.form.value = "ago"
    row.window.ago_from.value, row.window.ago_to.value = 7, 37
    assert row.to_dict()["window"] == {"last": 30, "unit": "day", "offset": 7}
    row.window.form.value = "any"
    assert "window" not in row.to_dict()
    filt = add(row.steps[2].where, "event_property")
    pick_user_property(filt, "payment_method", "=", "card")
    assert row.to_dict()["steps"][2] == {"event": "Completed Order", "where": CARD}
    paths = [path for path, _ in row.walk("rules[0]")]
    assert "rules[0].steps[2].where.rules[0]" in paths


def test_live_counts_are_the_funnel_charts_bars(make_builder, ds):
    builder = make_builder()
    row = add(builder.root, "funnel")
    assert isinstance(row, FunnelRow)
    assert builder.wait(60)
    assert builder.errors == {} and builder.incomplete == {}
    data = charts.funnel(ds, STEPS, include_all=True).data
    bars = data.sort_values("step")["users"].tolist()
    assert builder.count == bars[2] > 0
    assert f"{bars[2]:,} users" in row.status.value
    row.reached.value = 2
    assert builder.wait(60)
    assert builder.count == bars[1]
    row.not_reached.value = 3
    assert builder.wait(60)
    assert builder.count == bars[1] - bars[2]
    assert builder.segment.to_dict()["rules"][0]["not_reached"] == 3
    # not around the funnel: everyone else
    builder.root.negate.value = True
    assert builder.wait(60)
    assert builder.count == ds.total_users() - (bars[1] - bars[2])


def test_an_unfinished_step_is_incomplete_and_a_bad_filter_is_an_error(make_builder):
    builder = make_builder()
    row = add(builder.root, "funnel")
    row.add_step_button.click()
    assert builder.wait(60)
    assert builder.incomplete == {"rules[0]": "choose an event"}
    assert "choose an event" in row.status.value
    row.steps[3].event.value = "Session"
    filt = add(row.steps[3].where, "event_property")
    filt.field.value = "payment_method"
    filt.operator.value = "contains"
    filt.value.children[0].value = "card|"
    assert builder.wait(60)
    assert list(builder.errors) == ["rules[0].steps[3].where.rules[0]"]
    assert "heapseg-row-error" in filt.status.value
    filt.value.children[0].value = "card"
    assert builder.wait(60)
    assert builder.errors == {} and builder.count is not None


def test_undo_and_redo_bring_back_an_unfinished_funnel(make_builder):
    builder = make_builder()
    builder.history.merge_seconds = 0
    builder._start_clean()
    row = add(builder.root, "funnel")
    seen = [builder.root.to_dict()]
    row.add_step_button.click()  # a step with no event yet
    seen.append(builder.root.to_dict())
    row.reached.value = 2
    seen.append(builder.root.to_dict())
    row.steps[3].event.value = "Session"
    seen.append(builder.root.to_dict())
    assert builder.wait(60)
    for state in reversed(seen[:-1]):
        assert builder.undo()
        assert builder.root.to_dict() == state
    for state in seen[1:]:
        assert builder.redo()
        assert builder.root.to_dict() == state
    assert builder.wait(60)
