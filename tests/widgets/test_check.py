"""The plan of one edit: what to count in one query, and which row each error belongs to."""

from __future__ import annotations

from heapseg.model import Group
from heapseg.sample import SAMPLE_AS_OF
from heapseg.widgets.check import make_plan, owner_of
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.group import GroupBox

PAID = {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}
SESSIONS = {
    "kind": "event",
    "event": "Session",
    "did": True,
    "count": {"operator": ">", "value": 5},
}


def tree(ds, definition) -> GroupBox:
    root = GroupBox(DataChoices(ds), root=True)
    root.set_model(Group.from_dict(definition))
    return root


def test_owner_of_picks_the_deepest_row():
    paths = ["", "rules[1]", "rules[1].rules[0]", "rules[1].rules[10]", "rules[12]"]
    assert owner_of("rules[1].rules[0].value", paths) == "rules[1].rules[0]"
    assert owner_of("rules[1].rules[10]", paths) == "rules[1].rules[10]"
    assert owner_of("rules[1].combinator", paths) == "rules[1]"
    assert owner_of("rules[12].count", paths) == "rules[12]"
    assert owner_of("rules[2]", paths) == ""


def test_one_query_for_segment_rules_and_groups(ds):
    definition = {
        "combinator": "or",
        "rules": [PAID, {"combinator": "and", "not": True, "rules": [SESSIONS]}],
    }
    plan = make_plan(tree(ds, definition), ds, SAMPLE_AS_OF, None)
    assert plan.errors == {}
    costs = {"without:rules[0]", "without:rules[1]", "without:rules[1].rules[0]"}
    assert set(plan.queries) == {"", "rules[0]", "rules[1]", "rules[1].rules[0]", *costs}
    assert plan.queries[""] == plan.segment == Group.from_dict(definition)
    assert plan.queries["rules[1]"] == Group.from_dict(definition["rules"][1])
    assert plan.queries["rules[1].rules[0]"].to_dict() == {"combinator": "and", "rules": [SESSIONS]}
    counts = ds.counts(plan.queries, SAMPLE_AS_OF)
    assert counts[""] == ds.count(definition)
    # What each rule costs: the segment without it, against a definition written by hand.
    assert counts["without:rules[0]"] == ds.count(
        {"combinator": "or", "rules": [definition["rules"][1]]}
    )
    assert counts["without:rules[1]"] == ds.count({"combinator": "or", "rules": [PAID]})
    emptied = {"combinator": "or", "rules": [PAID, {"combinator": "and", "not": True, "rules": []}]}
    assert counts["without:rules[1].rules[0]"] == ds.count(emptied)


def test_errors_stay_on_their_rows_and_keep_groups_uncounted(ds):
    definition = {
        "combinator": "and",
        "rules": [
            PAID,
            {
                "combinator": "or",
                "rules": [
                    {"kind": "user", "field": "ltv", "operator": "contains", "value": "x"},
                    SESSIONS,
                ],
            },
            {"kind": "account", "field": "tierr", "operator": "=", "value": "gold"},
        ],
    }
    plan = make_plan(tree(ds, definition), ds, SAMPLE_AS_OF, None)
    assert set(plan.errors) == {"rules[1].rules[0]", "rules[2]"}
    assert "string column" in plan.errors["rules[1].rules[0]"]
    assert "tier" in plan.errors["rules[2]"]  # the nearest known name is suggested
    assert plan.segment is None
    assert set(plan.queries) == {"rules[0]", "rules[1].rules[1]"}


def test_unknown_segment_reference_is_a_row_error(ds, catalog):
    definition = {"combinator": "and", "rules": [PAID, {"kind": "segment", "id": "seg-gone"}]}
    plan = make_plan(tree(ds, definition), ds, SAMPLE_AS_OF, catalog)
    assert list(plan.errors) == ["rules[1]"]
    assert "seg-gone" in plan.errors["rules[1]"]
