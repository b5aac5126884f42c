"""Rows and groups show any format-1 definition and give it back unchanged."""

from __future__ import annotations

import pytest

from heapseg.model import Group
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.group import GroupBox
from heapseg.widgets.rows import EventRow, PropertyRow, SegmentRow

RULES = [
    {"kind": "user", "field": "subscription_type", "operator": "!=", "value": "free"},
    {"kind": "user", "field": "country", "operator": "not in", "value": ["US", "FR"]},
    {"kind": "user", "field": "ltv", "operator": "between", "value": [10.0, 99.5]},
    {"kind": "user", "field": "account_id", "operator": "in", "value": [1, 2, 3]},
    {"kind": "user", "field": "email", "operator": "contains", "value": "gmail.com|yahoo.com"},
    {"kind": "user", "field": "email", "operator": "is not set"},
    {"kind": "user", "field": "email_opt_in", "operator": "=", "value": True},
    {"kind": "user", "field": "signup_date", "operator": "in last", "value": 30, "unit": "day"},
    {"kind": "user", "field": "signup_date", "operator": ">=", "value": "2026-01-15"},
    {"kind": "account", "field": "tier", "operator": "in", "value": ["gold", "platinum"]},
    {
        "kind": "event",
        "event": "Session",
        "did": True,
        "count": {"operator": ">=", "value": 3, "unit": "day"},
    },
    {
        "kind": "event",
        "event": "Session",
        "did": True,
        "count": {"operator": "between", "value": [2, 4]},
        "window": {"last": 2, "unit": "week", "offset": 1},
    },
    {
        "kind": "event",
        "event": "Completed Order",
        "did": True,
        "aggregate": {
            "fn": "count_distinct",
            "field": "payment_method",
            "operator": ">",
            "value": 1,
        },
        "window": {"from": "2026-02-01"},
    },
    {
        "kind": "event",
        "event": "Started Trial",
        "did": True,
        "window": {"last": 90, "unit": "day"},
        "first_time": True,
    },
    {
        "kind": "event",
        "event": "Pageview",
        "did": False,
        "window": {"to": "2026-06-01"},
        "where": {
            "combinator": "or",
            "not": True,
            "rules": [
                {
                    "kind": "event_property",
                    "field": "path",
                    "operator": "begins with",
                    "value": "/pricing",
                },
                {
                    "combinator": "and",
                    "rules": [{"kind": "event_property", "field": "path", "operator": "is set"}],
                },
            ],
        },
    },
    {
        "kind": "event",
        "event": "Add to Cart",
        "did": False,
        "then": {
            "event": "Completed Order",
            "within": {"value": 3, "unit": "hour"},
            "where": {
                "combinator": "and",
                "rules": [
                    {"kind": "event_property", "field": "revenue", "operator": ">", "value": 20.0}
                ],
            },
        },
    },
    {"kind": "segment", "id": "seg-somebody", "in": False},
]


@pytest.fixture
def choices(ds):
    return DataChoices(ds)


@pytest.mark.parametrize(
    "rule", RULES, ids=lambda r: f"{r['kind']}-{r.get('field', r.get('event', r.get('id')))}"
)
def test_each_rule_round_trips(choices, rule):
    group = GroupBox(choices, root=True)
    model = Group.from_dict({"combinator": "and", "rules": [rule]})
    group.set_model(model)
    (row,) = group.nodes
    assert (
        type(row)
        is {"user": PropertyRow, "account": PropertyRow, "event": EventRow, "segment": SegmentRow}[
            rule["kind"]
        ]
    )
    assert Group.from_dict(group.to_dict()) == model
    assert group.to_dict() == model.to_dict()


def test_a_whole_tree_round_trips(choices):
    model = Group.from_dict(
        {
            "combinator": "or",
            "not": True,
            "rules": [RULES[0], {"combinator": "and", "rules": RULES[10:13]}, RULES[4]],
        }
    )
    group = GroupBox(choices, root=True)
    group.set_model(model)
    assert Group.from_dict(group.to_dict()) == model
    paths = [p for p, _ in group.walk("")]
    assert paths[:4] == ["", "rules[0]", "rules[1]", "rules[1].rules[0]"]
    assert "rules[1].rules[0].where" in paths


def test_event_row_shows_only_what_applies(choices):
    row = EventRow(choices)
    assert row.count_box.layout.display == "none"
    row.mode.value = "count"
    assert row.count_box.layout.display == ""
    assert row.count_high.layout.display == "none"
    row.count_operator.value = "between"
    assert row.count_high.layout.display == ""
    row.did.value = False  # count, aggregate and first time do not go with "did not"
    assert [v for _, v in row.mode.options] == ["once", "then"]
    assert row.mode.value == "once"
    assert row.aggregate_box.layout.display == "none"
    assert "count" not in row.to_dict()
    row.window.value = "last"
    assert row.last_box.layout.display == "" and row.range_box.layout.display == "none"


def test_property_row_follows_the_type(choices):
    row = PropertyRow(choices, "user")
    row.field.value = "ltv"
    assert ">" in row.operator.options and "contains" not in row.operator.options
    row.field.value = "email"
    assert "contains" in row.operator.options and ">" not in row.operator.options
    row.operator.value = "is set"
    assert row.to_dict() == {"kind": "user", "field": "email", "operator": "is set"}


def test_changes_bubble_up_once_per_edit(choices):
    group = GroupBox(choices, root=True)
    heard = []
    group.on_change = lambda: heard.append(1)
    row = group.add("user")
    heard.clear()
    row.field.value = "country"
    assert len(heard) == 1
    group.set_model(Group.from_dict({"combinator": "and", "rules": RULES[:3]}))
    assert len(heard) == 1  # filling from code is not an edit
