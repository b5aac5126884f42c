"""Segment format 1 as objects: parsing, exact JSON round-trip, validation paths, plain English."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

import heapseg
from heapseg.errors import DefinitionError
from heapseg.model import (
    AGGREGATE_FUNCTIONS,
    COUNT_OPERATORS,
    MAX_DEPTH,
    MAX_EVENT_RULES,
    MAX_PATTERN_PARTS,
    MAX_RULES,
    MAX_WITHIN,
    PROPERTY_OPERATORS,
    Aggregate,
    Comparison,
    EventRule,
    FunnelRule,
    FunnelStep,
    Group,
    LastWindow,
    PropertyRule,
    RangeWindow,
    Segment,
    SegmentRule,
    Then,
    as_segment,
    parse_contains_pattern,
    parse_iso_timestamp,
)

# The three examples at the end of the format spec.
from tests.spec_examples import NEW_TRIALS, POSSIBLE_CHURN, WINDOW_SHOPPERS


def seg(*rules: dict, combinator: str = "and") -> dict:
    return {"combinator": combinator, "rules": list(rules)}


def event(name: str = "Session", **keys) -> dict:
    return {"kind": "event", "event": name, "did": True, **keys}


def where(*rules: dict, combinator: str = "and", **extra) -> dict:
    return {"combinator": combinator, **extra, "rules": list(rules)}


def ep(field: str, operator: str, value=None) -> dict:
    rule = {"kind": "event_property", "field": field, "operator": operator}
    if value is not None:
        rule["value"] = value
    return rule


def parse_error(definition) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        Segment.from_dict(definition)
    return info.value


# --------------------------------------------------------------------------- every form parses

# A valid value for every property operator.
OPERATOR_VALUES = {
    "=": "trial",
    "!=": 3,
    "in": ["gold", "platinum"],
    "not in": [1, 2],
    "<": 5,
    "<=": "2024-01-01",
    ">": 1.5,
    ">=": "2024-01-01T10:00:00",
    "between": [1, 10],
    "not between": ["2024-01-01", "2024-02-01"],
    "contains": "gmail.com|yahoo.com",
    "not contains": "a*b+c",
    "begins with": "/pricing",
    "ends with": ".com",
    "is set": None,
    "is not set": None,
    "in last": 30,
    "more than ago": 2,
}


def test_operator_table_covers_every_property_operator():
    assert set(OPERATOR_VALUES) == set(PROPERTY_OPERATORS)


@pytest.mark.parametrize("operator", PROPERTY_OPERATORS)
@pytest.mark.parametrize("kind", ["user", "account"])
def test_every_property_operator_parses(kind: str, operator: str):
    rule = {"kind": kind, "field": "f", "operator": operator}
    if OPERATOR_VALUES[operator] is not None:
        rule["value"] = OPERATOR_VALUES[operator]
    if operator in ("in last", "more than ago"):
        rule["unit"] = "day"
    parsed = Segment.from_dict(seg(rule)).rules[0]
    assert isinstance(parsed, PropertyRule)
    assert (parsed.kind, parsed.field, parsed.operator) == (kind, "f", operator)
    assert parsed.to_dict() == rule


@pytest.mark.parametrize("operator", PROPERTY_OPERATORS)
def test_every_operator_parses_in_where(operator: str):
    rule = ep("p", operator, OPERATOR_VALUES[operator])
    if operator in ("in last", "more than ago"):
        rule["unit"] = "hour"
    parsed = Segment.from_dict(seg(event(where=where(rule)))).rules[0]
    assert parsed.where.rules[0] == PropertyRule(
        "event_property",
        "p",
        operator,
        tuple(rule["value"]) if isinstance(rule.get("value"), list) else rule.get("value"),
        rule.get("unit"),
    )


def test_every_rule_kind_parses_to_its_type():
    parsed = Segment.from_dict(
        seg(
            {"kind": "user", "field": "country", "operator": "=", "value": "FR"},
            {"kind": "account", "field": "tier", "operator": "in", "value": ["gold"]},
            event("Session"),
            {"kind": "segment", "id": "seg-1"},
            seg({"kind": "segment", "id": "seg-2", "in": False}, combinator="or"),
        )
    )
    kinds = [type(rule) for rule in parsed.rules]
    assert kinds == [PropertyRule, PropertyRule, EventRule, SegmentRule, Group]
    assert parsed.rules[0].kind == "user"
    assert parsed.rules[1].kind == "account"
    assert parsed.rules[1].value == ("gold",)
    assert parsed.rules[3] == SegmentRule("seg-1", True)
    assert parsed.rules[4].combinator == "or"
    assert parsed.rules[4].rules[0].member is False
    assert parsed.referenced_segments() == ["seg-1", "seg-2"]


@pytest.mark.parametrize("operator", COUNT_OPERATORS)
def test_every_count_operator_parses(operator: str):
    value = [2, 4] if operator == "between" else 3
    rule = Segment.from_dict(seg(event(count={"operator": operator, "value": value}))).rules[0]
    assert rule.count == Comparison(operator, tuple(value) if operator == "between" else value)


@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_distinct_period_count_parses(unit: str):
    rule = Segment.from_dict(seg(event(count={"operator": ">=", "value": 3, "unit": unit}))).rules[
        0
    ]
    assert rule.count == Comparison(">=", 3, unit)


@pytest.mark.parametrize("fn", AGGREGATE_FUNCTIONS)
def test_every_aggregate_function_parses(fn: str):
    rule = Segment.from_dict(
        seg(event(aggregate={"fn": fn, "field": "revenue", "operator": ">=", "value": 100}))
    ).rules[0]
    assert rule.aggregate == Aggregate(fn, "revenue", Comparison(">=", 100))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"last": 90, "unit": "day"}, LastWindow(90, "day")),
        ({"last": 2, "unit": "week", "offset": 1}, LastWindow(2, "week", 1)),
        ({"last": 1, "unit": "month"}, LastWindow(1, "month")),
        ({"last": 6, "unit": "hour"}, LastWindow(6, "hour")),
        ({"from": "2024-01-01", "to": "2024-02-01"}, RangeWindow("2024-01-01", "2024-02-01")),
        ({"from": "2024-01-01T10:00:00Z"}, RangeWindow("2024-01-01T10:00:00Z", None)),
        ({"to": "2024-02-01T00:00:00+02:00"}, RangeWindow(None, "2024-02-01T00:00:00+02:00")),
    ],
)
def test_every_window_form_parses(window: dict, expected):
    rule = Segment.from_dict(seg(event(window=window))).rules[0]
    assert rule.window == expected
    assert rule.window.to_dict() == window


def test_range_window_bounds_are_naive_utc():
    from datetime import datetime

    window = (
        Segment.from_dict(
            seg(event(window={"from": "2024-01-01T10:00:00Z", "to": "2024-02-01T02:00:00+02:00"}))
        )
        .rules[0]
        .window
    )
    assert window.bounds() == (datetime(2024, 1, 1, 10), datetime(2024, 2, 1, 0))


def test_then_first_time_and_where_parse():
    rule = Segment.from_dict(
        seg(
            event(
                "Pageview",
                where=where(ep("path", "contains", "/pricing")),
                then={
                    "event": "Upgrade",
                    "within": {"value": 1, "unit": "day"},
                    "where": where(ep("plan", "=", "pro")),
                },
            ),
            event("Session", first_time=True),
        )
    )
    sequence, started = rule.rules
    assert sequence.then.event == "Upgrade"
    assert (sequence.then.within.value, sequence.then.within.unit) == (1, "day")
    assert sequence.then.where.rules[0] == PropertyRule("event_property", "plan", "=", "pro")
    assert sequence.where.rules[0].value == "/pricing"
    assert isinstance(sequence.then, Then)
    assert started.first_time is True


def test_json_string_parses_like_the_dict():
    assert Segment.from_dict(json.dumps(WINDOW_SHOPPERS)) == Segment.from_dict(WINDOW_SHOPPERS)
    assert Segment.from_dict(json.dumps(WINDOW_SHOPPERS).encode()) == Segment.from_dict(
        WINDOW_SHOPPERS
    )


def test_model_objects_are_immutable():
    parsed = Segment.from_dict(NEW_TRIALS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.rules[0].value = "paid"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.combinator = "or"  # type: ignore[misc]
    assert isinstance(parsed.rules, tuple)


# --------------------------------------------------------------------------- JSON round-trip

ROUND_TRIPS = [
    NEW_TRIALS,
    WINDOW_SHOPPERS,
    POSSIBLE_CHURN,
    seg(),
    {"combinator": "or", "not": True, "rules": []},
    {"combinator": "and", "not": False, "rules": [{"kind": "segment", "id": "s", "in": True}]},
    seg({"kind": "segment", "id": "s"}, {"kind": "segment", "id": "t", "in": False}),
    seg(
        {"kind": "user", "field": "ltv", "operator": "between", "value": [1.5, 99]},
        {"kind": "user", "field": "signup_date", "operator": "in last", "value": 3, "unit": "week"},
        {"kind": "user", "field": "email", "operator": "is not set"},
        {"kind": "user", "field": "email_opt_in", "operator": "=", "value": False},
        {"kind": "account", "field": "tier", "operator": "not in", "value": ["gold", "silver"]},
        combinator="or",
    ),
    seg(event(first_time=False), event(did=False, window={"last": 3, "unit": "day", "offset": 0})),
    seg(event(window={"last": 3, "unit": "day", "offset": 2})),
    seg(event(window={"from": "2024-01-01", "to": "2024-02-01T12:30:00Z"})),
    seg(event(window={"to": "2024-02-01"})),
    seg(event(count={"operator": "between", "value": [2, 4]})),
    seg(event(count={"operator": ">=", "value": 3, "unit": "week"})),
    seg(
        event(
            "Completed Order",
            count={"operator": ">", "value": 1},
            aggregate={"fn": "sum", "field": "revenue", "operator": "between", "value": [10, 20.5]},
            window={"last": 90, "unit": "day"},
            where=where(ep("payment_method", "in", ["card", "paypal"])),
        )
    ),
    seg(
        event(
            where={
                "combinator": "or",
                "not": True,
                "rules": [
                    ep("path", "begins with", "/blog"),
                    where(ep("path", "is set"), ep("path", "!=", "/"), combinator="and"),
                ],
            }
        )
    ),
    seg(event("Pageview", then={"event": "Upgrade"})),
    seg(
        event(
            "Pageview",
            did=False,
            window={"last": 1, "unit": "month"},
            then={
                "event": "Upgrade",
                "within": {"value": 2, "unit": "hour"},
                "where": where(ep("plan", "=", "pro")),
            },
        )
    ),
    {
        "combinator": "and",
        "not": True,
        "rules": [
            {"combinator": "or", "not": False, "rules": [event(), event("Refund", did=False)]},
            {"combinator": "and", "rules": []},
        ],
    },
]


@pytest.mark.parametrize("definition", ROUND_TRIPS)
def test_round_trip_is_exact(definition: dict):
    parsed = Segment.from_dict(definition)
    assert parsed.to_dict() == definition
    assert json.loads(parsed.to_json()) == definition
    assert Segment.from_dict(parsed.to_json()) == parsed


def test_round_trip_keeps_key_types_and_numbers():
    definition = seg({"kind": "user", "field": "ltv", "operator": ">=", "value": 5.0})
    out = Segment.from_dict(definition).to_dict()
    assert isinstance(out["rules"][0]["value"], float)
    value = Segment.from_dict(seg(event(count={"operator": "between", "value": [1, 2]})))
    assert isinstance(value.to_dict()["rules"][0]["count"]["value"], list)


def test_round_trip_keeps_did_omitted():
    definition = seg({"kind": "event", "event": "Session"})
    assert Segment.from_dict(definition).to_dict() == definition


# --------------------------------------------------------------------------- validation errors

VALIDATION_ERRORS = [
    # (definition, path, words the message must contain)
    pytest.param(
        seg({"kind": "person", "field": "x", "operator": "is set"}),
        "rules[0].kind",
        ["'person'", "user, account, event, funnel, segment"],
        id="unknown-kind",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "like", "value": "a"}),
        "rules[0].operator",
        ["'like'", "not contains", "more than ago"],
        id="bad-property-operator",
    ),
    pytest.param(
        seg(event(), event(count={"operator": "~", "value": 1})),
        "rules[1].count.operator",
        ["'~'", "between", ">="],
        id="bad-count-operator",
    ),
    pytest.param(
        seg(event(aggregate={"fn": "median", "field": "r", "operator": ">", "value": 1})),
        "rules[0].aggregate.fn",
        ["'median'", "count_distinct"],
        id="bad-aggregate-fn",
    ),
    pytest.param(
        seg(event(aggregate={"fn": "sum", "field": "r", "operator": "contains", "value": 1})),
        "rules[0].aggregate.operator",
        ["'contains'", "between"],
        id="bad-aggregate-operator",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "in", "value": "gold"}),
        "rules[0].value",
        ["non-empty list"],
        id="in-needs-list",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "in", "value": []}),
        "rules[0].value",
        ["non-empty list"],
        id="in-empty-list",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "not in", "value": ["a", {"b": 1}]}),
        "rules[0].value[1]",
        ["string, number or boolean"],
        id="in-list-item",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "=", "value": ["a"]}),
        "rules[0].value",
        ["'='", "string, number or boolean"],
        id="equals-list",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "=", "value": float("nan")}),
        "rules[0].value",
        ["'='"],
        id="equals-nan",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "between", "value": [1, 2, 3]}),
        "rules[0].value",
        ["[low, high]"],
        id="between-three",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "<", "value": [1]}),
        "rules[0].value",
        ["number or an ISO"],
        id="order-list",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "contains", "value": ""}),
        "rules[0].value",
        ["non-empty string"],
        id="contains-empty",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "contains", "value": "a||b"}),
        "rules[0].value",
        ["empty alternative"],
        id="contains-empty-alternative",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "is set", "value": "a"}),
        "rules[0].value",
        ["takes no value"],
        id="is-set-value",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "in last", "value": 2.5, "unit": "day"}),
        "rules[0].value",
        ["whole number"],
        id="in-last-float",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "in last", "value": 3}),
        "rules[0].unit",
        ["needs a unit", "month"],
        id="in-last-no-unit",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "more than ago", "value": 3, "unit": "y"}),
        "rules[0].unit",
        ["needs a unit", "week"],
        id="more-than-ago-bad-unit",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "=", "value": 3, "unit": "day"}),
        "rules[0].unit",
        ["in last"],
        id="unit-on-equals",
    ),
    pytest.param(
        seg(event(count={"operator": ">", "value": 2.5})),
        "rules[0].count.value",
        ["whole number"],
        id="count-float",
    ),
    pytest.param(
        seg(event(count={"operator": ">", "value": True})),
        "rules[0].count.value",
        ["must be a number"],
        id="count-bool",
    ),
    pytest.param(
        seg(event(count={"operator": "between", "value": [1]})),
        "rules[0].count.value",
        ["[low, high]"],
        id="count-between-short",
    ),
    pytest.param(
        seg(event(count={"operator": ">", "value": 1, "unit": "fortnight"})),
        "rules[0].count.unit",
        ["'fortnight'", "hour, day, week, month"],
        id="count-bad-unit",
    ),
    pytest.param(
        seg(event(aggregate={"fn": "sum", "field": "r", "operator": ">", "value": "100"})),
        "rules[0].aggregate.value",
        ["must be a number"],
        id="aggregate-string-value",
    ),
    pytest.param(
        seg(event(did=False, count={"operator": ">", "value": 1})),
        "rules[0]",
        ["count", "did: false"],
        id="did-false-count",
    ),
    pytest.param(
        seg(event(did=False, first_time=True)),
        "rules[0]",
        ["first_time", "did: false"],
        id="did-false-first-time",
    ),
    pytest.param(
        seg(event(did=False, aggregate={"fn": "sum", "field": "r", "operator": ">", "value": 1})),
        "rules[0]",
        ["aggregate", "did: false"],
        id="did-false-aggregate",
    ),
    pytest.param(
        seg(event(then={"event": "B"}, count={"operator": ">", "value": 1})),
        "rules[0]",
        ["count", "'then'"],
        id="then-count",
    ),
    pytest.param(
        seg(event(then={"event": "B"}, first_time=True)),
        "rules[0]",
        ["first_time", "'then'"],
        id="then-first-time",
    ),
    pytest.param(
        seg(event(window={"from": "2024-02-01", "to": "2024-01-01"})),
        "rules[0].window",
        ["'from'", "before 'to'"],
        id="window-from-after-to",
    ),
    pytest.param(
        seg(event(window={"from": "2024-01-01", "to": "2024-01-01T00:00:00"})),
        "rules[0].window",
        ["before 'to'"],
        id="window-from-equals-to",
    ),
    pytest.param(
        seg(event(window={"last": 0, "unit": "day"})),
        "rules[0].window.last",
        ["> 0"],
        id="window-last-zero",
    ),
    pytest.param(
        seg(event(window={"last": -3, "unit": "day"})),
        "rules[0].window.last",
        ["> 0"],
        id="window-last-negative",
    ),
    pytest.param(
        seg(event(window={"last": "3", "unit": "day"})),
        "rules[0].window.last",
        ["whole number"],
        id="window-last-string",
    ),
    pytest.param(
        seg(event(window={"last": 3, "unit": "year"})),
        "rules[0].window.unit",
        ["'year'", "hour, day, week, month"],
        id="window-bad-unit",
    ),
    pytest.param(
        seg(event(window={"last": 3, "unit": "day", "offset": -1})),
        "rules[0].window.offset",
        [">= 0"],
        id="window-negative-offset",
    ),
    pytest.param(
        seg(event(window={})),
        "rules[0].window",
        ["'last'", "'from'"],
        id="window-empty",
    ),
    pytest.param(
        seg(event(window={"last": 3, "unit": "day", "from": "2024-01-01"})),
        "rules[0].window",
        ["unknown key 'from'", "offset"],
        id="window-mixed",
    ),
    pytest.param(
        seg(event(window={"from": "last tuesday"})),
        "rules[0].window.from",
        ["'last tuesday'", "ISO-8601"],
        id="window-from-not-iso",
    ),
    pytest.param(
        seg(event(then={"event": "B", "within": {"value": 1, "unit": "fortnight"}})),
        "rules[0].then.within.unit",
        ["'fortnight'"],
        id="then-within-bad-unit",
    ),
    pytest.param(
        seg(event(where=where({"kind": "user", "field": "x", "operator": "is set"}))),
        "rules[0].where.rules[0].kind",
        ["event_property", "'user'"],
        id="where-user-rule",
    ),
    pytest.param(
        seg(event(where=where(where({"kind": "segment", "id": "s"})))),
        "rules[0].where.rules[0].rules[0].kind",
        ["event_property", "'segment'"],
        id="where-nested-segment-rule",
    ),
    pytest.param(
        seg(event(then={"event": "B", "where": where(event())})),
        "rules[0].then.where.rules[0].kind",
        ["event_property"],
        id="then-where-event-rule",
    ),
    pytest.param(
        seg({"kind": "event_property", "field": "x", "operator": "is set"}),
        "rules[0].kind",
        ["'event_property'", "user, account, event, funnel, segment"],
        id="event-property-at-top",
    ),
    pytest.param(
        {"combinator": "and", "rule": []},
        "",
        ["unknown key 'rule'", "combinator, not, rules"],
        id="group-unknown-key",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "in", "values": ["a"]}),
        "rules[0]",
        ["unknown key 'values'", "value"],
        id="rule-unknown-key",
    ),
    pytest.param(
        seg(event(count={"operator": ">", "value": 1, "by": "day"})),
        "rules[0].count",
        ["unknown key 'by'", "unit"],
        id="count-unknown-key",
    ),
    pytest.param(
        seg(event(then={"event": "B", "after": True})),
        "rules[0].then",
        ["unknown key 'after'", "within"],
        id="then-unknown-key",
    ),
    pytest.param(
        seg(event(sessions=3)),
        "rules[0]",
        ["unknown key 'sessions'", "first_time"],
        id="event-unknown-key",
    ),
    pytest.param(
        seg({"kind": "segment", "id": "s", "member": True}),
        "rules[0]",
        ["unknown key 'member'", "in"],
        id="segment-unknown-key",
    ),
    pytest.param(
        seg({"kind": "user", "field": 5, "operator": "is set"}),
        "rules[0].field",
        ["non-empty string", "5"],
        id="field-not-string",
    ),
    pytest.param(
        seg({"kind": "user", "field": "", "operator": "is set"}),
        "rules[0].field",
        ["non-empty string"],
        id="field-empty",
    ),
    pytest.param(
        seg({"kind": "user", "operator": "is set"}),
        "rules[0]",
        ["missing required key 'field'"],
        id="field-missing",
    ),
    pytest.param(
        seg({"kind": "event", "event": None}),
        "rules[0].event",
        ["non-empty string"],
        id="event-not-string",
    ),
    pytest.param(
        seg({"kind": "segment", "id": 7}),
        "rules[0].id",
        ["non-empty string"],
        id="segment-id-not-string",
    ),
    pytest.param(
        seg(event(then={"event": 3})),
        "rules[0].then.event",
        ["non-empty string"],
        id="then-event-not-string",
    ),
    pytest.param(
        seg(event(window={"from": 20240101})),
        "rules[0].window.from",
        ["ISO-8601", "string"],
        id="window-from-not-string",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": "contains", "value": 5}),
        "rules[0].value",
        ["non-empty string"],
        id="contains-not-string",
    ),
    pytest.param(
        seg({"kind": "user", "field": "x", "operator": 5, "value": 5}),
        "rules[0].operator",
        ["unknown operator 5"],
        id="operator-not-string",
    ),
    pytest.param(
        {"combinator": "and", "not": "yes", "rules": []},
        "not",
        ["true or false"],
        id="not-not-bool",
    ),
    pytest.param(seg(event(did="true")), "rules[0].did", ["true or false"], id="did-not-bool"),
    pytest.param(
        seg(event(first_time=1)), "rules[0].first_time", ["true or false"], id="first-time-int"
    ),
    pytest.param(
        seg({"kind": "segment", "id": "s", "in": "no"}),
        "rules[0].in",
        ["true or false"],
        id="in-not-bool",
    ),
    pytest.param(
        {"combinator": "xor", "rules": []}, "combinator", ["'and' or 'or'"], id="bad-combinator"
    ),
    pytest.param({"combinator": "and", "rules": {}}, "rules", ["list"], id="rules-not-list"),
    pytest.param(seg("Session"), "rules[0]", ["JSON object", "str"], id="rule-not-object"),
    pytest.param(
        seg({"field": "x", "operator": "is set"}), "rules[0]", ["'kind'"], id="rule-without-kind"
    ),
    pytest.param(["not", "a", "group"], "", ["JSON object", "list"], id="group-not-object"),
    pytest.param(
        seg(seg(seg({"kind": "user", "field": "x", "operator": "??"}))),
        "rules[0].rules[0].rules[0].operator",
        ["'??'"],
        id="nested-path",
    ),
]


@pytest.mark.parametrize(("definition", "path", "words"), VALIDATION_ERRORS)
def test_validation_error_names_path_and_what_is_valid(definition, path: str, words: list[str]):
    error = parse_error(definition)
    assert error.path == path
    message = str(error)
    if path:
        assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message
    assert isinstance(error, heapseg.HeapsegError)
    assert isinstance(error, ValueError)


def test_invalid_json_string_is_a_definition_error():
    error = parse_error('{"combinator": "and", "rules": [')
    assert "not valid JSON" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        '{"rules": [' * 100_000 + "]}" * 100_000,
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=["groups", "arrays"],
)
def test_hundred_thousand_levels_of_json_are_a_clear_error(text: str):
    error = parse_error(text)
    assert not isinstance(error, RecursionError)
    assert "nested too deeply" in str(error)


def test_deeper_than_the_recursion_limit_python_dicts_are_a_clear_error():
    definition: dict = {"combinator": "and", "rules": []}
    for _ in range(10_000):
        definition = {"combinator": "and", "rules": [definition]}
    error = parse_error(definition)
    assert f"more than {MAX_DEPTH} levels" in str(error)
    assert error.path.startswith("rules[0].rules[0]")


def test_reasonable_nesting_parses_and_round_trips():
    definition: dict = seg({"kind": "user", "field": "x", "operator": "is set"})
    for level in range(MAX_DEPTH - 1):
        definition = {"combinator": "or" if level % 2 else "and", "rules": [definition]}
    parsed = Segment.from_dict(definition)
    assert parsed.to_dict() == definition


def test_direct_construction_is_validated():
    with pytest.raises(DefinitionError, match="did: false"):
        EventRule("Session", did=False, count=Comparison(">", 1))
    with pytest.raises(DefinitionError, match="'and' or 'or'"):
        Group("xor", ())
    with pytest.raises(DefinitionError, match="rules and groups"):
        Group("and", ("not a rule",))  # type: ignore[arg-type]


def test_as_segment_accepts_groups_rules_dicts_and_json():
    rule = PropertyRule("user", "plan", "=", "paid")
    expected = Group("and", (rule,))
    assert as_segment(expected) is expected
    assert as_segment(rule) == expected
    assert as_segment(expected.to_dict()) == expected
    assert as_segment(expected.to_json()) == expected
    with pytest.raises(DefinitionError, match="expected a segment"):
        as_segment(42)


# --------------------------------------------------------------------------- plain English


@pytest.mark.parametrize(
    ("definition", "text"),
    [
        (
            NEW_TRIALS,
            "subscription_type = trial AND did Session for the first time in the last 90 days",
        ),
        (WINDOW_SHOPPERS, "did Session more than 5 times AND did not do Completed Order"),
        (POSSIBLE_CHURN, "subscription_type = paid AND did not do Session in the last 90 days"),
    ],
)
def test_describe_spec_examples(definition: dict, text: str):
    assert Segment.from_dict(definition).describe() == text


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (event(count={"operator": "=", "value": 1}), "did Session exactly 1 time"),
        (event(count={"operator": "!=", "value": 2}), "did Session not exactly 2 times"),
        (event(count={"operator": "<", "value": 3}), "did Session fewer than 3 times"),
        (event(count={"operator": "<=", "value": 1}), "did Session at most 1 time"),
        (event(count={"operator": ">=", "value": 4}), "did Session at least 4 times"),
        (
            event(count={"operator": "between", "value": [2, 4]}),
            "did Session between 2 and 4 times",
        ),
        (
            event(count={"operator": ">=", "value": 3, "unit": "day"}),
            "did Session on at least 3 different days",
        ),
        (
            event(count={"operator": ">", "value": 1, "unit": "week"}),
            "did Session on more than 1 different weeks",
        ),
        (
            event(
                "Completed Order",
                aggregate={"fn": "sum", "field": "revenue", "operator": ">=", "value": 100},
            ),
            "did Completed Order with sum of revenue >= 100",
        ),
        (
            event(
                "Add to Cart",
                aggregate={
                    "fn": "count_distinct",
                    "field": "product_id",
                    "operator": "between",
                    "value": [2, 5],
                },
            ),
            "did Add to Cart with count distinct of product_id between 2 and 5",
        ),
        (event(window={"last": 1, "unit": "hour"}), "did Session in the last 1 hour"),
        (
            event(window={"last": 2, "unit": "week", "offset": 1}),
            "did Session between 1 and 3 weeks ago",
        ),
        (
            event(window={"from": "2024-01-01", "to": "2024-02-01"}),
            "did Session from 2024-01-01 to before 2024-02-01",
        ),
        (event(window={"from": "2024-01-01"}), "did Session since 2024-01-01"),
        (event(window={"to": "2024-02-01"}), "did Session before 2024-02-01"),
        (
            event(
                "Pageview",
                where=where(ep("path", "contains", "/pricing")),
                then={
                    "event": "Upgrade",
                    "within": {"value": 1, "unit": "day"},
                    "where": where(ep("plan", "=", "pro")),
                },
            ),
            "did Pageview where path contains /pricing followed by Upgrade where plan = pro "
            "within 1 day",
        ),
        (
            event("Pageview", did=False, then={"event": "Upgrade"}),
            "did not do Pageview followed by Upgrade",
        ),
        (
            event(
                count={"operator": ">", "value": 5},
                window={"last": 30, "unit": "day"},
                where=where(ep("device", "=", "mobile"), ep("os", "=", "ios"), combinator="or"),
            ),
            "did Session where device = mobile OR os = ios more than 5 times in the last 30 days",
        ),
        ({"kind": "segment", "id": "vip"}, "in segment vip"),
        ({"kind": "segment", "id": "vip", "in": False}, "not in segment vip"),
        (
            {"kind": "user", "field": "country", "operator": "in", "value": ["FR", "DE"]},
            "country in (FR, DE)",
        ),
        (
            {"kind": "account", "field": "tier", "operator": "=", "value": "gold"},
            "account tier = gold",
        ),
        (
            {"kind": "user", "field": "ltv", "operator": "not between", "value": [1, 2]},
            "ltv not between 1 and 2",
        ),
        ({"kind": "user", "field": "email", "operator": "is not set"}, "email is not set"),
        (
            {"kind": "user", "field": "email_opt_in", "operator": "=", "value": True},
            "email_opt_in = true",
        ),
        (
            {
                "kind": "user",
                "field": "signup_date",
                "operator": "in last",
                "value": 3,
                "unit": "day",
            },
            "signup_date in the last 3 days",
        ),
        (
            {
                "kind": "user",
                "field": "signup_date",
                "operator": "more than ago",
                "value": 1,
                "unit": "month",
            },
            "signup_date more than 1 month ago",
        ),
    ],
)
def test_describe_rules(rule: dict, text: str):
    assert Segment.from_dict(seg(rule)).describe() == text


def test_describe_groups_and_not():
    a = {"kind": "user", "field": "a", "operator": "=", "value": 1}
    b = {"kind": "user", "field": "b", "operator": "=", "value": 2}
    c = {"kind": "user", "field": "c", "operator": "=", "value": 3}
    assert Segment.from_dict(seg(seg(a, b, combinator="or"), c)).describe() == (
        "(a = 1 OR b = 2) AND c = 3"
    )
    negated = {"combinator": "or", "not": True, "rules": [a, b]}
    assert Segment.from_dict(seg(negated, c)).describe() == "NOT (a = 1 OR b = 2) AND c = 3"
    assert Segment.from_dict({**seg(a), "not": True}).describe() == "NOT (a = 1)"
    assert Segment.from_dict(seg()).describe() == "all users"
    assert Segment.from_dict({"combinator": "or", "not": True, "rules": []}).describe() == (
        "NOT (all users)"
    )


def test_html_repr_escapes_the_description():
    parsed = Segment.from_dict(seg({"kind": "user", "field": "ltv", "operator": "<", "value": 5}))
    html = parsed._repr_html_()
    assert "ltv &lt; 5" in html
    assert "<b>Segment</b>" in html


# --------------------------------------------------------------------------- contains patterns


@pytest.mark.parametrize(
    ("pattern", "parsed"),
    [
        ("gmail.com", ((("gmail.com",),),)),
        ("gmail.com|yahoo.com", ((("gmail.com",),), (("yahoo.com",),))),
        ("a*b+c", ((("a", "b"), ("c",)),)),
        ("x+y|z", ((("x",), ("y",)), (("z",),))),
        ("*a*", ((("", "a", ""),),)),
        (r"a\|b", ((("a|b",),),)),
        (r"1\+1", ((("1+1",),),)),
        (r"5\*", ((("5*",),),)),
        ("C:\\\\dir", ((("C:\\dir",),),)),
        (r"a\b", ((("a\\b",),),)),
        ("a\\", ((("a\\",),),)),
        (r"x\|y*z|w\+", ((("x|y", "z"),), (("w+",),))),
    ],
)
def test_contains_pattern_parsing(pattern: str, parsed: tuple):
    assert parse_contains_pattern(pattern) == parsed


@pytest.mark.parametrize("pattern", ["", "a||b", "|a", "a|", "+", "*", "a|+", "a|*"])
def test_contains_pattern_empty_alternative_is_an_error(pattern: str):
    with pytest.raises(DefinitionError, match="empty alternative") as info:
        parse_contains_pattern(pattern, "rules[0].value")
    assert info.value.path == "rules[0].value"


def test_contains_pattern_must_be_a_string():
    with pytest.raises(DefinitionError, match="must be a string"):
        parse_contains_pattern(5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- limits (issue 14)
# Definitions no analyst writes (thousands of rules, 64-bit overflows, NUL bytes) are refused
# with the path and the limit, never crash the engine or reach the SQL.

PLAN_IS_SET = {"kind": "user", "field": "plan", "operator": "is set"}


def test_the_limits_are_generous_but_below_what_the_engines_survive():
    assert MAX_DEPTH == 32
    assert MAX_RULES == 1000
    assert MAX_EVENT_RULES == 100
    assert MAX_PATTERN_PARTS == 1000


def test_a_definition_with_as_many_rules_as_the_limit_parses():
    rules = [
        {"kind": "user", "field": "plan", "operator": "=", "value": f"p{i}"}
        for i in range(MAX_RULES)
    ]
    assert len(Segment.from_dict(seg(*rules)).rules) == MAX_RULES


def test_more_rules_than_the_limit_is_a_definition_error():
    error = parse_error(seg(PLAN_IS_SET, seg(*[PLAN_IS_SET] * MAX_RULES)))
    assert error.path == "rules[1]"
    assert f"more than {MAX_RULES} rules and groups" in str(error)


def test_where_rules_count_towards_the_limit():
    big_where = where(*[ep("path", "=", "/x")] * MAX_RULES)
    error = parse_error(seg(event(where=big_where)))
    assert f"more than {MAX_RULES} rules and groups" in str(error)


def test_more_event_rules_than_the_limit_is_a_definition_error():
    assert len(Segment.from_dict(seg(*[event()] * MAX_EVENT_RULES)).rules) == MAX_EVENT_RULES
    error = parse_error(seg(*[event()] * (MAX_EVENT_RULES + 1)))
    assert error.path == f"rules[{MAX_EVENT_RULES}]"
    assert f"more than {MAX_EVENT_RULES} event rules" in str(error)


def test_a_contains_pattern_with_more_parts_than_the_limit_is_refused():
    ok = "|".join(f"x{i}" for i in range(MAX_PATTERN_PARTS))
    assert len(parse_contains_pattern(ok)) == MAX_PATTERN_PARTS
    rule = {"kind": "user", "field": "email", "operator": "contains", "value": ok + "|y"}
    error = parse_error(seg(rule))
    assert error.path == "rules[0].value"
    assert f"more than {MAX_PATTERN_PARTS}" in str(error)


def test_groups_built_in_python_deeper_than_the_limit_are_refused():
    rule = PropertyRule("user", "plan", "=", "paid")
    nested = Group("and", (rule,))
    for _ in range(MAX_DEPTH):
        nested = Group("or", (nested, rule))
    with pytest.raises(DefinitionError, match=f"more than {MAX_DEPTH} levels"):
        Group("and", (nested, rule))


def test_groups_built_in_python_with_more_rules_than_the_limit_are_refused():
    rule = PropertyRule("user", "plan", "=", "paid")
    with pytest.raises(DefinitionError, match=f"more than {MAX_RULES} rules"):
        Group("and", (rule,) * (MAX_RULES + 1))


BIG = 2**63
HUGE_INTEGERS = [
    pytest.param(seg({"kind": "user", "field": "n", "operator": "=", "value": BIG}), "rules[0].value", id="="),
    pytest.param(seg({"kind": "user", "field": "n", "operator": ">", "value": -BIG - 1}), "rules[0].value", id=">"),
    pytest.param(seg({"kind": "user", "field": "n", "operator": "in", "value": [1, 10**30]}), "rules[0].value[1]", id="in"),
    pytest.param(seg({"kind": "user", "field": "n", "operator": "between", "value": [0, BIG]}), "rules[0].value[1]", id="between"),
    pytest.param(seg({"kind": "user", "field": "d", "operator": "in last", "value": BIG, "unit": "day"}), "rules[0].value", id="in-last"),
    pytest.param(seg(event(count={"operator": ">", "value": BIG})), "rules[0].count.value", id="count"),
    pytest.param(seg(event(count={"operator": "between", "value": [1, 2**100]})), "rules[0].count.value[1]", id="count-between"),
    pytest.param(seg(event(aggregate={"fn": "sum", "field": "r", "operator": ">", "value": BIG})), "rules[0].aggregate.value", id="aggregate"),
    pytest.param(seg(event(window={"last": BIG, "unit": "day"})), "rules[0].window.last", id="last"),
    pytest.param(seg(event(window={"last": 1, "unit": "day", "offset": BIG})), "rules[0].window.offset", id="offset"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "path"), HUGE_INTEGERS)
def test_integers_beyond_64_bits_are_a_definition_error(definition: dict, path: str):
    error = parse_error(definition)
    assert error.path == path
    assert "64-bit" in str(error)


def test_the_largest_64_bit_integers_are_accepted():
    for value in (BIG - 1, -BIG):
        Segment.from_dict(seg({"kind": "user", "field": "n", "operator": "=", "value": value}))
    Segment.from_dict(seg(event(count={"operator": "<", "value": BIG - 1})))


@pytest.mark.parametrize("unit", ["hour", "day", "week", "month"])
def test_then_within_more_than_a_century_is_refused(unit: str):
    within = {"value": MAX_WITHIN[unit], "unit": unit}
    Segment.from_dict(seg(event(then={"event": "Buy", "within": within})))
    within = {"value": MAX_WITHIN[unit] + 1, "unit": unit}
    error = parse_error(seg(event(then={"event": "Buy", "within": within})))
    assert error.path == "rules[0].then.within.value"
    assert "100 years" in str(error) and "leave 'within' out" in str(error)


def test_within_limits_are_a_century():
    assert MAX_WITHIN == {"hour": 876_600, "day": 36_525, "week": 5_218, "month": 1_200}


BAD_TEXT = [
    pytest.param(seg({"kind": "user", "field": "plan", "operator": "=", "value": "a\x00b"}), "rules[0].value", "NUL", id="value-nul"),
    pytest.param(seg({"kind": "user", "field": "plan", "operator": "in", "value": ["a", "\x00"]}), "rules[0].value[1]", "NUL", id="list-nul"),
    pytest.param(seg({"kind": "user", "field": "plan", "operator": "contains", "value": "a|\x00"}), "rules[0].value", "NUL", id="contains-nul"),
    pytest.param(seg({"kind": "user", "field": "pl\x00an", "operator": "is set"}), "rules[0].field", "NUL", id="field-nul"),
    pytest.param(seg(event("Sess\x00ion")), "rules[0].event", "NUL", id="event-nul"),
    pytest.param(seg({"kind": "segment", "id": "seg-\x00"}), "rules[0].id", "NUL", id="segment-nul"),
    pytest.param(seg({"kind": "user", "field": "plan", "operator": "=", "value": "a\ud800"}), "rules[0].value", "surrogate", id="value-surrogate"),
    pytest.param(seg(event("\udfff")), "rules[0].event", "surrogate", id="event-surrogate"),
    pytest.param(seg(event(where=where(ep("path", "begins with", "\x00")))), "rules[0].where.rules[0].value", "NUL", id="where-nul"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "path", "word"), BAD_TEXT)
def test_text_no_database_accepts_is_a_definition_error(definition: dict, path: str, word: str):
    error = parse_error(definition)
    assert error.path == path
    assert word in str(error)


def test_odd_but_valid_unicode_is_kept():
    text = "é\u200b\u202eñ🙂\t\n"
    rule = {"kind": "user", "field": "plan", "operator": "=", "value": text}
    assert Segment.from_dict(seg(rule)).rules[0].value == text


def test_window_bounds_beyond_the_representable_range_mean_no_bound():
    window = {"from": "0001-01-01T00:00+14:00", "to": "9999-12-31T23:59:59-12:00"}
    parsed = Segment.from_dict(seg(event(window=window)))
    start, end = parsed.rules[0].window.bounds()
    assert start == datetime.min and end == datetime.max
    assert parsed.to_dict()["rules"][0]["window"] == window


@pytest.mark.parametrize("text", ["0001-01-01T00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_timestamps_outside_the_representable_range_are_a_definition_error(text: str):
    with pytest.raises(DefinitionError) as info:
        parse_iso_timestamp(text, "as_of")
    assert info.value.path == "as_of"
    assert "0001-01-01" in str(info.value) and "9999-12-31" in str(info.value)


# --------------------------------------------------------------------------- funnel rules


def funnel_rule(n: int = 3, **keys) -> dict:
    names = ["Session", "Add to Cart", "Completed Order", "Review"][:n]
    return {"kind": "funnel", "steps": [{"event": name} for name in names], **keys}


FUNNEL_ROUND_TRIPS = [
    funnel_rule(2),
    funnel_rule(3, within={"value": 7, "unit": "day"}, window={"last": 30, "unit": "day"}),
    funnel_rule(3, reached=3),  # the default, given: kept
    funnel_rule(4, reached=2, not_reached=3, window={"from": "2024-01-01", "to": "2024-02-01"}),
    {
        "kind": "funnel",
        "steps": [
            {"event": "Pageview", "where": where(ep("path", "contains", "/pricing"))},
            {"event": "Pageview", "where": where(ep("path", "=", "/signup"), combinator="or")},
        ],
        "within": {"value": 1, "unit": "hour"},
        "reached": 1,
        "not_reached": 2,
    },
]


@pytest.mark.parametrize("rule", FUNNEL_ROUND_TRIPS)
def test_funnel_round_trip_is_exact(rule: dict):
    parsed = Segment.from_dict(seg(rule))
    assert parsed.to_dict() == seg(rule)
    assert Segment.from_dict(parsed.to_json()) == parsed
    assert isinstance(parsed.rules[0], FunnelRule)


def test_funnel_reached_defaults_to_the_last_step():
    rule = Segment.from_dict(seg(funnel_rule(3))).rules[0]
    assert rule.reached == 3 and rule.not_reached is None and rule.needed == 3
    assert rule == Segment.from_dict(seg(funnel_rule(3, reached=3))).rules[0]
    built = FunnelRule((FunnelStep("A"), FunnelStep("B")))
    assert built.reached == 2
    assert built.to_dict() == {"kind": "funnel", "steps": [{"event": "A"}, {"event": "B"}]}
    # A step chosen in Python is written out even where it was not given.
    assert dataclasses.replace(built, reached=1).to_dict()["reached"] == 1
    dropped = dataclasses.replace(rule, reached=1, not_reached=2)
    assert dropped.needed == 2


FUNNEL_ERRORS = [
    pytest.param({"kind": "funnel"}, "rules[0]", ["missing required key 'steps'"], id="no-steps"),
    pytest.param(funnel_rule(1), "rules[0].steps", ["at least two steps", "got 1"], id="one-step"),
    pytest.param(
        {"kind": "funnel", "steps": "Session"}, "rules[0].steps", ["list"], id="steps-not-list"
    ),
    pytest.param(
        {"kind": "funnel", "steps": [{"event": "A"}, "B"]},
        "rules[0].steps[1]",
        ["JSON object"],
        id="step-not-object",
    ),
    pytest.param(
        {"kind": "funnel", "steps": [{"event": "A"}, {"event": ""}]},
        "rules[0].steps[1].event",
        ["non-empty string"],
        id="empty-event",
    ),
    pytest.param(
        {"kind": "funnel", "steps": [{"event": "A"}, {"event": "B", "within": 3}]},
        "rules[0].steps[1]",
        ["unknown key 'within'", "event, where"],
        id="step-unknown-key",
    ),
    pytest.param(
        funnel_rule(3, reached=4),
        "rules[0].reached",
        ["from 1 to 3", "got 4"],
        id="reached-too-far",
    ),
    pytest.param(
        funnel_rule(3, reached=0), "rules[0].reached", ["from 1 to 3", "got 0"], id="reached-0"
    ),
    pytest.param(
        funnel_rule(3, reached="2"), "rules[0].reached", ["whole number", "'2'"], id="reached-str"
    ),
    pytest.param(funnel_rule(3, reached=True), "rules[0].reached", ["got True"], id="reached-bool"),
    pytest.param(
        funnel_rule(3, reached=2, not_reached=2),
        "rules[0].not_reached",
        ["after 'reached' (2)", "from 3 to 3", "got 2"],
        id="not-reached-not-after",
    ),
    pytest.param(
        funnel_rule(3, not_reached=3),
        "rules[0].not_reached",
        ["after 'reached' (3)", "last step"],
        id="not-reached-after-last",
    ),
    pytest.param(
        funnel_rule(3, reached=1, not_reached=5),
        "rules[0].not_reached",
        ["from 2 to 3", "got 5"],
        id="not-reached-too-far",
    ),
    pytest.param(
        funnel_rule(2, within={"value": 2, "unit": "fortnight"}),
        "rules[0].within.unit",
        ["'fortnight'"],
        id="within-unit",
    ),
    pytest.param(
        funnel_rule(2, within={"value": 10**6, "unit": "day"}),
        "rules[0].within.value",
        ["100 years"],
        id="within-century",
    ),
    pytest.param(
        funnel_rule(2, window={"last": 0, "unit": "day"}),
        "rules[0].window.last",
        ["> 0"],
        id="window-last",
    ),
    pytest.param(
        funnel_rule(2, window={"from": "2024-02-01", "to": "2024-01-01"}),
        "rules[0].window",
        ["must be before"],
        id="window-backwards",
    ),
    pytest.param(
        {"kind": "funnel", "steps": [{"event": "A"}, {"event": "B", "where": where(event())}]},
        "rules[0].steps[1].where.rules[0].kind",
        ["event_property"],
        id="step-where-event-rule",
    ),
    pytest.param(
        funnel_rule(2, count={"operator": ">", "value": 1}),
        "rules[0]",
        ["unknown key 'count'", "a funnel rule", "not_reached"],
        id="unknown-key",
    ),
]


@pytest.mark.parametrize(("definition", "path", "words"), FUNNEL_ERRORS)
def test_funnel_validation_errors_name_the_rule(definition: dict, path: str, words: list[str]):
    error = parse_error(seg(definition))
    assert error.path == path
    for word in words:
        assert word in str(error)


def test_funnels_built_in_python_are_validated():
    with pytest.raises(DefinitionError, match="at least two steps"):
        FunnelRule((FunnelStep("A"),))
    with pytest.raises(DefinitionError, match="from 1 to 2, got 3"):
        FunnelRule((FunnelStep("A"), FunnelStep("B")), reached=3)
    with pytest.raises(DefinitionError, match="after 'reached'"):
        FunnelRule((FunnelStep("A"), FunnelStep("B"), FunnelStep("C")), reached=2, not_reached=2)
    with pytest.raises(DefinitionError, match="FunnelStep"):
        FunnelRule(("A", "B"))  # type: ignore[arg-type]


def test_a_funnel_counts_one_event_rule_per_step():
    steps = MAX_EVENT_RULES // 4
    parsed = Segment.from_dict(seg(*[funnel_rule(4)] * steps))
    assert parsed._shape.event_rules == MAX_EVENT_RULES
    error = parse_error(seg(*[funnel_rule(4)] * steps, event()))
    assert error.path == f"rules[{steps}]"
    assert f"more than {MAX_EVENT_RULES} event rules" in str(error)
    built = FunnelRule(tuple(FunnelStep(f"e{i}") for i in range(MAX_EVENT_RULES + 1)))
    with pytest.raises(DefinitionError, match=f"more than {MAX_EVENT_RULES} event rules"):
        Group("and", (built,))
    long = {"kind": "funnel", "steps": [{"event": "A"}] * (MAX_EVENT_RULES + 1)}
    error = parse_error(seg(long))
    assert error.path == "rules[0].steps"
    assert f"at most {MAX_EVENT_RULES} steps" in str(error)


def test_funnel_step_wheres_count_towards_depth_and_size():
    deep = ep("path", "is set")
    for _ in range(MAX_DEPTH - 1):
        deep = where(deep)
    ok = {"kind": "funnel", "steps": [{"event": "A"}, {"event": "B", "where": where(deep)}]}
    assert Segment.from_dict(seg(ok)).nesting == MAX_DEPTH
    too_deep = {
        "kind": "funnel",
        "steps": [{"event": "A"}, {"event": "B", "where": where(where(deep))}],
    }
    assert f"more than {MAX_DEPTH} levels" in str(parse_error(seg(too_deep)))
    big = where(*[ep("path", "=", "/x")] * MAX_RULES)
    error = parse_error(
        seg({"kind": "funnel", "steps": [{"event": "A", "where": big}, {"event": "B"}]})
    )
    assert f"more than {MAX_RULES} rules and groups" in str(error)


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (
            funnel_rule(3),
            "completed the funnel Session → Add to Cart → Completed Order",
        ),
        (
            funnel_rule(3, reached=2, within={"value": 7, "unit": "day"}),
            "reached step 2 (Add to Cart) of the funnel Session → Add to Cart → Completed Order "
            "within 7 days",
        ),
        (
            funnel_rule(3, reached=2, not_reached=3, window={"last": 30, "unit": "day"}),
            "reached step 2 (Add to Cart) but not step 3 (Completed Order) of the funnel "
            "Session → Add to Cart → Completed Order, entering in the last 30 days",
        ),
        (
            funnel_rule(2, reached=1, within={"value": 1, "unit": "hour"}),
            "entered the funnel Session → Add to Cart within 1 hour",
        ),
        (
            funnel_rule(2, reached=1, not_reached=2, window={"from": "2024-01-01"}),
            "entered the funnel Session → Add to Cart but did not reach step 2 (Add to Cart), "
            "entering since 2024-01-01",
        ),
        (
            {
                "kind": "funnel",
                "steps": [
                    {"event": "Pageview", "where": where(ep("path", "contains", "/pricing"))},
                    {"event": "Upgrade"},
                ],
            },
            "completed the funnel Pageview (where path contains /pricing) → Upgrade",
        ),
    ],
)
def test_describe_funnel_rules(rule: dict, text: str):
    assert Segment.from_dict(seg(rule)).describe() == text


def test_not_around_a_funnel_is_a_negated_group():
    rule = Segment.from_dict(seg(funnel_rule(2))).rules[0]
    negated = ~rule
    assert isinstance(negated, Group) and negated.negate and negated.rules == (rule,)
    assert negated.describe() == "NOT (completed the funnel Session → Add to Cart)"
