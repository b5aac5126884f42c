"""The segment builder driven as an analyst would: buttons clicked, values set, Save pressed."""

from __future__ import annotations

import json
import warnings

import pytest

import heapseg
from heapseg.catalog import Catalog
from heapseg.compile import UnknownEventWarning
from heapseg.errors import ConflictError
from heapseg.model import Group
from heapseg.widgets import SegmentBuilder
from heapseg.widgets.rows import EventRow, PropertyRow, SegmentRow

from .conftest import NEW_TRIAL_USERS, POSSIBLE_CHURN, WINDOW_SHOPPERS


def add(group, kind):
    """Click a group's "+ <kind>" button and return the new row."""
    before = len(group.nodes)
    group.add_buttons[kind].click()
    assert len(group.nodes) == before + 1
    return group.nodes[-1]


def pick_user_property(row: PropertyRow, field: str, operator: str, value) -> None:
    row.field.value = field
    row.operator.value = operator
    row.value.children[0].value = value


def name_it(builder, name: str, category: str = "") -> None:
    builder.name_input.value = name
    builder.category_input.value = category


def saved_definitions(path) -> dict[str, dict]:
    document = json.loads(path.read_text())
    return {raw["name"]: raw for raw in document["segments"]}


def alone(rule: dict) -> dict:
    return {"combinator": "and", "rules": [rule]}


def check_counts(builder, ds, spec: dict) -> None:
    assert builder.wait(60)
    assert builder.errors == {}
    assert builder.count == ds.count(spec)
    assert builder.total == ds.total_users()
    assert builder.share == pytest.approx(builder.count / builder.total)
    expected = {f"rules[{i}]": ds.count(alone(rule)) for i, rule in enumerate(spec["rules"])}
    assert builder.rule_counts == expected
    assert builder.count_html.value == f"{builder.count:,}"
    for i, node in enumerate(builder.root.nodes):
        assert f"{expected[f'rules[{i}]']:,} users" in node.status.value


def test_new_trial_users_built_by_clicking(make_builder, ds, catalog, catalog_path):
    builder = make_builder(catalog)
    row = add(builder.root, "user")
    assert isinstance(row, PropertyRow)
    pick_user_property(row, "subscription_type", "=", "trial")
    event = add(builder.root, "event")
    assert isinstance(event, EventRow)
    event.event.value = "Session"
    event.mode.value = "first"
    event.window.value = "last"
    event.last_n.value = 90
    event.last_unit.value = "day"
    name_it(builder, "New trial users", "Lifecycle")
    check_counts(builder, ds, NEW_TRIAL_USERS)
    assert builder.summary == Group.from_dict(NEW_TRIAL_USERS).describe()

    builder.save_button.click()
    assert builder.last_error is None, builder.message
    raw = saved_definitions(catalog_path)["New trial users"]
    assert raw["definition"] == NEW_TRIAL_USERS
    assert raw["category"] == "Lifecycle"
    assert raw["owner"] == "alice"
    assert raw["type"] == "dynamic"
    reloaded = Catalog(catalog_path, user="bob")
    assert reloaded.count("New trial users", ds) == ds.count(NEW_TRIAL_USERS)


def test_window_shoppers_built_by_clicking(make_builder, ds, catalog, catalog_path):
    builder = make_builder(catalog)
    sessions = add(builder.root, "event")
    sessions.event.value = "Session"
    sessions.mode.value = "count"
    sessions.count_operator.value = ">"
    sessions.count_value.value = 5
    orders = add(builder.root, "event")
    orders.event.value = "Completed Order"
    orders.did.value = False
    name_it(builder, "Window shoppers", "Engagement")
    builder.description_input.value = "Browse a lot, never buy."
    check_counts(builder, ds, WINDOW_SHOPPERS)

    builder.save_button.click()
    raw = saved_definitions(catalog_path)["Window shoppers"]
    assert raw["definition"] == WINDOW_SHOPPERS
    assert raw["description"] == "Browse a lot, never buy."
    assert Catalog(catalog_path).count(raw["id"], ds) == ds.count(WINDOW_SHOPPERS)


def test_possible_churn_built_by_clicking(make_builder, ds, catalog, catalog_path):
    builder = make_builder(catalog)
    pick_user_property(add(builder.root, "user"), "subscription_type", "=", "paid")
    sessions = add(builder.root, "event")
    sessions.event.value = "Session"
    sessions.did.value = False
    sessions.window.value = "last"
    sessions.last_n.value = 90
    name_it(builder, "Possible churn", "Retention")
    check_counts(builder, ds, POSSIBLE_CHURN)
    builder.save_button.click()
    assert saved_definitions(catalog_path)["Possible churn"]["definition"] == POSSIBLE_CHURN


def test_setting_the_segment_fills_the_inputs_and_edits_are_observable(make_builder, ds):
    builder = make_builder(segment=WINDOW_SHOPPERS)
    assert builder.wait(60)
    assert [type(n) for n in builder.root.nodes] == [EventRow, EventRow]
    first = builder.root.nodes[0]
    assert (first.event.value, first.mode.value, first.count_value.value) == ("Session", "count", 5)
    assert builder.root.to_dict() == WINDOW_SHOPPERS
    assert builder.count == ds.count(WINDOW_SHOPPERS)

    seen = []
    builder.observe(lambda change: seen.append(change["new"]), "segment")
    first.count_value.value = 10
    assert builder.wait(60)
    assert seen and seen[-1] == builder.segment
    assert builder.segment.to_dict()["rules"][0]["count"] == {"operator": ">", "value": 10}
    changed = json.loads(json.dumps(WINDOW_SHOPPERS))
    changed["rules"][0]["count"]["value"] = 10
    assert builder.count == ds.count(changed)

    builder.segment = POSSIBLE_CHURN
    assert builder.wait(60)
    assert builder.root.to_dict() == POSSIBLE_CHURN
    assert builder.count == ds.count(POSSIBLE_CHURN)


def test_combinator_not_and_nested_groups(make_builder, ds):
    builder = make_builder()
    pick_user_property(add(builder.root, "user"), "subscription_type", "=", "paid")
    nested = add(builder.root, "group")
    pick_user_property(add(nested, "user"), "country", "=", "US")
    orders = add(nested, "event")
    orders.event.value = "Completed Order"
    nested.combinator.value = "or"
    nested.negate.value = True
    builder.root.combinator.value = "or"
    expected = {
        "combinator": "or",
        "rules": [
            {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"},
            {
                "combinator": "or",
                "not": True,
                "rules": [
                    {"kind": "user", "field": "country", "operator": "=", "value": "US"},
                    {"kind": "event", "event": "Completed Order", "did": True},
                ],
            },
        ],
    }
    assert builder.wait(60)
    assert builder.segment.to_dict() == expected
    assert builder.count == ds.count(expected)
    assert builder.rule_counts["rules[1]"] == ds.count(expected["rules"][1])
    assert builder.rule_counts["rules[1].rules[0]"] == ds.count(
        alone(expected["rules"][1]["rules"][0])
    )
    assert f"{builder.rule_counts['rules[1]']:,} users" in nested.status.value

    # Reorder and remove with the row buttons.
    nested.nodes[1].up.click()
    assert [n.kind for n in nested.nodes] == ["event", "user"]
    nested.nodes[0].remove.click()
    assert builder.wait(60)
    assert [n.kind for n in nested.nodes] == ["user"]
    assert builder.segment.to_dict()["rules"][1]["rules"] == [expected["rules"][1]["rules"][0]]


def test_an_invalid_rule_shows_its_error_on_its_row(make_builder, ds):
    builder = make_builder()
    good = add(builder.root, "user")
    pick_user_property(good, "subscription_type", "=", "paid")
    bad = add(builder.root, "user")
    bad.field.value = "email"
    bad.operator.value = "contains"
    bad.value.children[0].value = "gmail.com|"  # an empty alternative: wrong, not unfinished
    assert builder.wait(60)
    assert builder.segment is None
    assert set(builder.errors) == {"rules[1]"}
    assert "empty alternative" in builder.errors["rules[1]"]
    assert "heapseg-row-error" in bad.status.value
    assert "heapseg-invalid" in bad._dom_classes
    assert bad.invalid
    assert builder.count is None
    # The valid rule still gets its own count.
    assert builder.rule_counts == {"rules[0]": ds.count(alone(good.to_dict()))}

    bad.value.children[0].value = "gmail.com|yahoo.com"
    assert builder.wait(60)
    assert builder.errors == {}
    assert "heapseg-invalid" not in bad._dom_classes
    assert not bad.invalid
    assert builder.count == ds.count(builder.root.to_dict())


def test_unknown_property_from_code_is_a_row_error(make_builder):
    builder = make_builder(
        segment={
            "combinator": "and",
            "rules": [
                {"kind": "user", "field": "plan", "operator": "=", "value": "x"},
                {"kind": "user", "field": "country", "operator": "=", "value": "US"},
            ],
        }
    )
    assert builder.wait(60)
    assert list(builder.errors) == ["rules[0]"]
    assert "unknown user property 'plan'" in builder.errors["rules[0]"]
    assert builder.root.nodes[0].field.value == "plan"  # shown as loaded, not replaced


def test_unknown_event_is_a_warning_not_an_error(make_builder):
    builder = make_builder()
    row = add(builder.root, "event")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row.event.value = "Sesion"
        assert builder.wait(60)
    # Shown on the row only: nothing printed (from the worker thread) into a cell.
    assert not [w for w in caught if issubclass(w.category, UnknownEventWarning)]
    assert builder.errors == {}
    assert "Session" in builder.warnings["rules[0]"]
    assert builder.count == 0


def test_where_filters_aggregate_then_and_windows(make_builder, ds):
    builder = make_builder()
    row = add(builder.root, "event")
    row.event.value = "Completed Order"
    row.with_aggregate.value = True
    row.agg_fn.value = "sum"
    row.agg_field.value = "revenue"
    row.agg_operator.value = ">="
    row.agg_value.value = 100.0
    where = add(row.where, "event_property")
    pick_user_property(where, "payment_method", "=", "card")
    row.window.value = "range"
    import datetime as dt

    row.date_from.value = dt.date(2026, 1, 1)
    row.date_to.value = dt.date(2026, 10, 1)
    seq = add(builder.root, "event")
    seq.event.value = "Add to Cart"
    seq.mode.value = "then"
    seq.then_event.value = "Completed Order"
    seq.then_within.value = True
    seq.then_n.value = 2
    seq.then_unit.value = "day"
    assert builder.wait(60)
    assert builder.errors == {}, builder.errors
    expected = {
        "combinator": "and",
        "rules": [
            {
                "kind": "event",
                "event": "Completed Order",
                "did": True,
                "aggregate": {"fn": "sum", "field": "revenue", "operator": ">=", "value": 100.0},
                "window": {"from": "2026-01-01", "to": "2026-10-01"},
                "where": {
                    "combinator": "and",
                    "rules": [
                        {
                            "kind": "event_property",
                            "field": "payment_method",
                            "operator": "=",
                            "value": "card",
                        }
                    ],
                },
            },
            {
                "kind": "event",
                "event": "Add to Cart",
                "did": True,
                "then": {"event": "Completed Order", "within": {"value": 2, "unit": "day"}},
            },
        ],
    }
    assert builder.segment.to_dict() == expected
    assert builder.count == ds.count(expected)
    # Filling a fresh builder from the definition gives the same inputs back.
    again = make_builder(segment=expected)
    assert again.root.to_dict() == expected


def test_where_row_error_lands_on_the_where_row(make_builder):
    builder = make_builder()
    row = add(builder.root, "event")
    filt = add(row.where, "event_property")
    filt.field.value = "price"
    filt.operator.value = ">"
    filt.value.set(None)
    filt.value.children[0].value = 3
    assert builder.wait(60)
    assert builder.errors == {}
    filt.operator.value = "in"
    assert builder.wait(60)
    assert filt.value.value == [3]  # carried over into the list input
    filt.value.children[0].value = []
    assert builder.wait(60)
    # An empty list is a filter not finished yet: said on the filter, the rule not counted.
    assert builder.errors == {}
    assert builder.incomplete == {"rules[0]": "not counted until its filters are complete"}
    assert "enter a value" in filt.status.value
    assert "heapseg-row-incomplete" in filt.status.value
    filt.field.value = "payment_method"
    filt.operator.value = "contains"
    filt.value.children[0].value = "card|"
    assert builder.wait(60)
    assert list(builder.errors) == ["rules[0].where.rules[0]"]
    assert "heapseg-row-error" in filt.status.value


def test_save_conflict_is_shown(make_builder, ds, catalog, catalog_path):
    entry = catalog.save(WINDOW_SHOPPERS, "Window shoppers", category="Engagement")
    builder = make_builder(catalog)
    builder.open(entry.id)
    assert builder.wait(60)
    assert builder.entry_id == entry.id
    assert builder.name == "Window shoppers"
    assert builder.root.to_dict() == WINDOW_SHOPPERS

    # Bob changes it in the meantime.
    Catalog(catalog_path, user="bob").update(entry.id, description="bob was here")
    builder.root.nodes[0].count_value.value = 7
    builder.save_button.click()
    assert isinstance(builder.last_error, ConflictError)
    assert "bob" in builder.question
    assert "catalog.get" not in builder.message + builder.question  # no code to run
    assert "heapseg-message-error" in builder.message_html.value
    assert saved_definitions(catalog_path)["Window shoppers"]["definition"] == WINDOW_SHOPPERS

    # Re-open, edit, save: now it goes through as revision 3.
    builder.open(entry.id)
    builder.root.nodes[0].count_value.value = 7
    builder.name_input.value = "Keen window shoppers"
    saved = builder.save(rename=True)
    assert saved is not None, builder.message
    raw = saved_definitions(catalog_path)["Keen window shoppers"]
    assert raw["id"] == entry.id
    assert raw["revision"] == 3  # Bob's change, then the rename and the edit as one revision
    assert raw["definition"]["rules"][0]["count"]["value"] == 7
    assert raw["description"] == "bob was here"


def test_save_as_duplicate_delete(make_builder, ds, catalog, catalog_path):
    builder = make_builder(catalog, segment=WINDOW_SHOPPERS)
    builder.name_input.value = "Window shoppers"
    first = builder.save()
    assert first is not None

    builder.save_as_button.click()  # same name: refused, shown
    assert builder.last_error is not None
    assert "needs another name" in builder.message

    builder.name_input.value = "Shoppers, personal"
    builder.visibility_input.value = "personal"
    second = builder.save_as()
    assert second is not None and second.id != first.id
    assert saved_definitions(catalog_path)["Shoppers, personal"]["visibility"] == "personal"

    builder.duplicate_button.click()
    assert builder.name == "Copy of Shoppers, personal"
    copy_id = builder.entry_id
    assert copy_id not in (first.id, second.id)

    builder.delete_button.click()
    assert builder.entry is not None  # asked first
    assert "Delete “Copy of Shoppers, personal”" in builder.question
    builder.prompt_buttons["delete"].click()
    assert builder.entry is None
    assert "Copy of Shoppers, personal" not in saved_definitions(catalog_path)
    assert builder.delete_button.disabled
    assert builder.root.to_dict() == WINDOW_SHOPPERS  # the definition stays in the builder
    assert copy_id not in Catalog(catalog_path)


def test_static_save_freezes_members(make_builder, ds, catalog, catalog_path):
    builder = make_builder(catalog, segment=POSSIBLE_CHURN)
    builder.name_input.value = "Churn snapshot"
    builder.type_input.value = "static"
    saved = builder.save()
    assert saved is not None, builder.message
    raw = saved_definitions(catalog_path)["Churn snapshot"]
    assert raw["type"] == "static"
    assert raw["snapshot"]["count"] == ds.count(POSSIBLE_CHURN)
    builder.type_input.value = "dynamic"
    unfrozen = builder.save()
    assert unfrozen is not None, builder.message
    raw = saved_definitions(catalog_path)["Churn snapshot"]
    assert raw["type"] == "dynamic" and "snapshot" not in raw


def test_segment_rule_counts_through_the_catalog(make_builder, ds, catalog):
    entry = catalog.save(WINDOW_SHOPPERS, "Window shoppers")
    builder = make_builder(catalog)
    row = add(builder.root, "segment")
    assert isinstance(row, SegmentRow)
    assert row.segment.value == entry.id
    row.member.value = False
    assert builder.wait(60)
    assert builder.segment.to_dict()["rules"] == [{"kind": "segment", "id": entry.id, "in": False}]
    assert builder.count == ds.total_users() - ds.count(WINDOW_SHOPPERS)


def test_no_catalog_hides_the_catalog_parts(make_builder):
    builder = make_builder()
    for button in (builder.save_button, builder.save_as_button, builder.delete_button):
        assert button.layout.display == "none"
    assert builder.undo_button.layout.display != "none"  # undo needs no catalog
    assert builder.root.add_buttons["segment"].layout.display == "none"
    assert builder.save() is None
    assert "no catalog" in builder.message


def test_as_of_moves_the_counts(make_builder, ds):
    builder = make_builder(segment=POSSIBLE_CHURN)
    builder.as_of = "2026-06-01T00:00:00+02:00"
    assert builder.wait(60)
    assert builder.as_of.isoformat() == "2026-05-31T22:00:00"
    assert builder.count == ds.count(POSSIBLE_CHURN, as_of=builder.as_of)
    assert builder.count != ds.count(POSSIBLE_CHURN)


def test_as_of_line_says_where_property_values_come_from(make_builder, ds, sample_path):
    builder = make_builder(segment=POSSIBLE_CHURN)
    assert "user subscription_type, role, account_id at as_of" in builder.share_html.value
    current = heapseg.connect(sample_path, as_of=ds.default_as_of, user_history=None)
    other = SegmentBuilder(current, segment=POSSIBLE_CHURN, debounce=0)
    try:
        assert other.wait(60)
        assert "user properties as of today" in other.share_html.value
    finally:
        other.close()


def test_value_pickers_offer_the_values_at_as_of(make_builder, ds, monkeypatch):
    asked = []
    real = type(ds).distinct_values

    def spy(self, kind, field, limit=50, as_of=None):
        asked.append((field, as_of))
        return real(self, kind, field, limit, as_of)

    monkeypatch.setattr(type(ds), "distinct_values", spy)
    builder = make_builder()
    today = builder.choices.values("user", "subscription_type")
    builder.as_of = "2025-06-01"
    assert builder.wait(60)
    then = builder.choices.values("user", "subscription_type")
    assert asked == [
        ("subscription_type", ds.resolve_as_of(None)),
        ("subscription_type", builder.as_of),
    ]
    assert then[0] == ds.distinct_values("user", "subscription_type", as_of="2025-06-01")
    assert today[0] == ds.distinct_values("user", "subscription_type")
