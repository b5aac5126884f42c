"""The registry of row kinds: each kind makes the row that shows it, without group.py knowing the rows."""

from __future__ import annotations

import pytest

from heapseg.model import Group
from heapseg.widgets import registry
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.group import GroupBox
from heapseg.widgets.node import Node
from heapseg.widgets.registry import add_label, kind_of, kinds, make_node, register
from heapseg.widgets.rows import EventRow, FunnelRow, PropertyRow, SegmentRow

MADE_BY = {
    "user": PropertyRow,
    "account": PropertyRow,
    "event_property": PropertyRow,
    "event": EventRow,
    "funnel": FunnelRow,
    "segment": SegmentRow,
    "group": GroupBox,
}


@pytest.fixture
def choices(ds):
    return DataChoices(ds)


@pytest.mark.parametrize("kind", sorted(MADE_BY))
def test_each_kind_makes_its_row(choices, kind):
    assert kind in kinds()
    node = make_node(kind, choices, ("event_property",))
    assert type(node) is MADE_BY[kind]
    assert node.kind == kind


def test_each_kind_says_what_its_button_adds():
    assert {kind: add_label(kind) for kind in MADE_BY} == {
        "user": "User property",
        "account": "Account property",
        "event_property": "Filter",
        "event": "Event",
        "funnel": "Funnel",
        "segment": "Segment",
        "group": "Group",
    }


def test_a_nested_group_offers_what_its_parent_offers(choices):
    nested = make_node("group", choices, ("event_property",))
    assert isinstance(nested, GroupBox)
    assert nested.rule_kinds == ("event_property",)


def test_an_unknown_kind_names_the_valid_ones(choices):
    with pytest.raises(ValueError, match=r"unknown rule kind 'cohort'; valid: .*event.*segment"):
        make_node("cohort", choices, ())


def test_kind_of_each_model():
    model = Group.from_dict(
        {
            "combinator": "and",
            "rules": [
                {"kind": "account", "field": "tier", "operator": "=", "value": "gold"},
                {"kind": "event", "event": "Session"},
                {"kind": "segment", "id": "seg-x"},
                {"combinator": "or", "rules": []},
                {"kind": "funnel", "steps": [{"event": "Session"}, {"event": "Session"}]},
            ],
        }
    )
    assert kind_of(model) == "group"
    assert [kind_of(rule) for rule in model.rules] == [
        "account",
        "event",
        "segment",
        "group",
        "funnel",
    ]
    with pytest.raises(TypeError, match="not a rule or group"):
        kind_of({"kind": "event"})


def test_a_kind_registered_elsewhere_is_added_by_groups(choices, monkeypatch):
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))

    @register(note="Note")
    class NoteRow(Node):
        kind = "note"

        def to_dict(self) -> dict:
            return {"kind": "note"}

    group = GroupBox(choices, rule_kinds=("user", "note"))
    assert group.add_buttons["note"].description == "+ Note"
    group.add_buttons["note"].click()
    (row,) = group.nodes
    assert isinstance(row, NoteRow)
    assert row.parent is group
    assert group.to_dict() == {"combinator": "and", "rules": [{"kind": "note"}]}
