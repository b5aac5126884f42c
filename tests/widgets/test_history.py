"""Undo and redo of builder edits: the history, showing half-filled rules again, the keys."""

from __future__ import annotations

import copy

from heapseg.model import Group
from heapseg.widgets.history import EditHistory, changed_rule, loose_group
from heapseg.widgets.keys import UndoKeys

from .conftest import POSSIBLE_CHURN, WINDOW_SHOPPERS

PAID = {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}
US = {"kind": "user", "field": "country", "operator": "=", "value": "US"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def with_rules(*rules) -> dict:
    return {"combinator": "and", "rules": [copy.deepcopy(r) for r in rules]}


def test_changed_rule_names_the_one_place_that_changed():
    us_too = with_rules(PAID, US)
    de = with_rules(PAID, {**US, "value": "DE"})
    assert changed_rule(us_too, de) == "rules[1]"
    assert changed_rule(with_rules(PAID), us_too) is None  # a rule added
    assert changed_rule(us_too, {**us_too, "combinator": "or"}) == ""
    assert changed_rule(us_too, with_rules(US, PAID)) is None  # two rules changed places


def test_undo_redo_walk_the_steps_and_a_new_edit_drops_the_redo():
    history = EditHistory(merge_seconds=0)
    steps = [with_rules(), with_rules(PAID), with_rules(PAID, US)]
    history.reset(steps[0])
    for step in steps[1:]:
        assert history.record(step)
    assert not history.record(steps[-1])  # the same again is no step
    assert history.undo() == steps[1]
    assert history.undo() == steps[0]
    assert history.undo() is None and not history.can_undo
    assert history.redo() == steps[1]
    assert history.can_redo
    history.record(with_rules(US))
    assert not history.can_redo
    assert history.undo() == steps[1]


def test_typing_into_one_rule_is_one_step():
    clock = Clock()
    history = EditHistory(merge_seconds=1.0, clock=clock)
    history.reset(with_rules(PAID))
    history.record(with_rules(PAID, {**US, "value": None}))
    for i, text in enumerate(["U", "US"]):
        clock.now = 10 + 0.3 * i
        history.record(with_rules(PAID, {**US, "value": text}))
    clock.now = 20  # a pause: a new step
    history.record(with_rules(PAID, {**US, "value": "USA"}))
    assert history.undo() == with_rules(PAID, {**US, "value": "US"})
    assert history.undo() == with_rules(PAID, {**US, "value": None})
    assert history.undo() == with_rules(PAID)


def test_the_history_keeps_its_limit():
    history = EditHistory(limit=3, merge_seconds=0)
    history.reset(with_rules())
    for n in range(1, 6):
        history.record(with_rules(*[PAID] * n))
    assert history.undo() == with_rules(*[PAID] * 4)
    assert history.undo() == with_rules(*[PAID] * 3)
    assert history.undo() is None


def test_loose_group_shows_half_filled_rules_as_they_are():
    raw = {
        "combinator": "or",
        "rules": [
            {"kind": "user", "field": "email", "operator": "contains", "value": None},
            {"kind": "event", "event": None, "did": True},
            {
                "kind": "event",
                "event": "Session",
                "did": True,
                "where": {
                    "combinator": "and",
                    "rules": [
                        {"kind": "event_property", "field": "path", "operator": "in", "value": None}
                    ],
                },
                "then": {"event": None},
            },
            {"kind": "segment", "id": None, "in": False},
        ],
    }
    group = loose_group(raw)
    email, nameless, session, segment = group.rules
    assert (email.field, email.operator, email.value) == ("email", "contains", None)
    assert nameless.event == ""
    assert session.where.rules[0].field == "path" and session.then.event == ""
    assert (segment.id, segment.member) == (None, False)
    # A valid definition comes back exactly as parsed.
    assert loose_group(WINDOW_SHOPPERS) == Group.from_dict(WINDOW_SHOPPERS)


def test_removing_a_group_of_two_rules_is_undone_and_redone(make_builder, ds):
    definition = {"combinator": "and", "rules": [PAID, {"combinator": "or", "rules": [US, PAID]}]}
    builder = make_builder(segment=definition)
    builder.history.merge_seconds = 0
    builder._start_clean()
    assert not builder.can_undo and builder.undo_button.disabled
    group = builder.root.nodes[1]
    group.remove.click()
    assert builder.wait(60)
    assert builder.root.to_dict() == with_rules(PAID)
    assert builder.can_undo and not builder.undo_button.disabled

    builder.undo_button.click()
    assert builder.wait(60)
    assert builder.root.to_dict() == definition
    assert builder.count == ds.count(definition)
    assert not builder.dirty
    assert builder.can_redo and not builder.redo_button.disabled

    builder.redo_button.click()
    assert builder.wait(60)
    assert builder.root.to_dict() == with_rules(PAID)
    assert builder.count == ds.count(with_rules(PAID))


def test_undo_covers_rule_edits_additions_and_the_combinator(make_builder):
    builder = make_builder(segment=POSSIBLE_CHURN)
    builder.history.merge_seconds = 0
    builder._start_clean()
    seen = [builder.root.to_dict()]
    builder.root.nodes[1].last_n.value = 30
    seen.append(builder.root.to_dict())
    builder.root.add_buttons["user"].click()  # an incomplete rule comes back too
    seen.append(builder.root.to_dict())
    builder.root.combinator.value = "or"
    seen.append(builder.root.to_dict())
    assert builder.wait(60)
    for state in reversed(seen[:-1]):
        assert builder.undo()
        assert builder.root.to_dict() == state
    assert not builder.undo()
    for state in seen[1:]:
        assert builder.redo()
        assert builder.root.to_dict() == state
    assert builder.wait(60)


def test_keys_pressed_in_the_browser_undo_and_redo(make_builder):
    builder = make_builder(segment=WINDOW_SHOPPERS)
    builder.history.merge_seconds = 0
    builder._start_clean()
    assert isinstance(builder.undo_keys, UndoKeys) and builder.undo_keys in builder.children
    assert builder.undo_keys.scope in builder._dom_classes
    builder.root.nodes[1].remove.click()
    # What the front end sends on Ctrl+Z, then Ctrl+Y (ipywidgets' custom message path).
    builder.undo_keys._handle_custom_msg({"action": "undo"}, [])
    assert builder.root.to_dict() == WINDOW_SHOPPERS
    builder.undo_keys._handle_custom_msg({"action": "redo"}, [])
    assert len(builder.root.nodes) == 1
    builder.undo_keys._handle_custom_msg({"action": "something else"}, [])
    assert len(builder.root.nodes) == 1
    assert builder.wait(60)
