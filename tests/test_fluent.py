"""Tests of heapseg/fluent.py, the fluent API: every expression equals the format-1 dict it
stands for."""

from __future__ import annotations

import importlib
import sys

import pytest

import heapseg
from heapseg import (
    account,
    did,
    did_not,
    event_prop,
    in_segment,
    not_in_segment,
    user,
)
from heapseg.errors import DefinitionError
from heapseg.fluent import EventBuilder
from heapseg.model import EventRule, Group, PropertyRule, Segment, SegmentRule, as_segment


def as_dict(built) -> dict:
    return built.to_dict()


def ev(name: str, **keys) -> dict:
    return {"kind": "event", "event": name, "did": True, **keys}


def ep(field: str, operator: str, value=None) -> dict:
    rule = {"kind": "event_property", "field": field, "operator": operator}
    if value is not None:
        rule["value"] = value
    return rule


def u(field: str, operator: str, value=None, **extra) -> dict:
    rule = {"kind": "user", "field": field, "operator": operator, **extra}
    if value is not None:
        rule["value"] = value
    return rule


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (user.subscription_type == "trial", u("subscription_type", "=", "trial")),
        (user.country != "FR", u("country", "!=", "FR")),
        (user.ltv < 10, u("ltv", "<", 10)),
        (user.ltv <= 10.5, u("ltv", "<=", 10.5)),
        (user.signup_date > "2024-01-01", u("signup_date", ">", "2024-01-01")),
        (user.ltv >= 0, u("ltv", ">=", 0)),
        (user.email_opt_in == True, u("email_opt_in", "=", True)),  # noqa: E712
        (user.country.isin(["FR", "DE"]), u("country", "in", ["FR", "DE"])),
        (user.country.isin(("FR",)), u("country", "in", ["FR"])),
        (user.country.not_in(["FR"]), u("country", "not in", ["FR"])),
        (user.ltv.between(1, 5), u("ltv", "between", [1, 5])),
        (user.ltv.not_between(1, 5), u("ltv", "not between", [1, 5])),
        (user.email.contains("gmail.com|yahoo.com"), u("email", "contains", "gmail.com|yahoo.com")),
        (user.email.not_contains("test"), u("email", "not contains", "test")),
        (user.email.begins_with("ann"), u("email", "begins with", "ann")),
        (user.email.ends_with(".com"), u("email", "ends with", ".com")),
        (user.email.is_set(), u("email", "is set")),
        (user.email.is_not_set(), u("email", "is not set")),
        (user.signup_date.in_last(30, "day"), u("signup_date", "in last", 30, unit="day")),
        (
            user.signup_date.more_than_ago(2, "month"),
            u("signup_date", "more than ago", 2, unit="month"),
        ),
        (user["signup date"] == "2024-01-01", u("signup date", "=", "2024-01-01")),
        (
            account.tier.isin(["gold", "platinum"]),
            {"kind": "account", "field": "tier", "operator": "in", "value": ["gold", "platinum"]},
        ),
        (
            account.tier.isin({"gold"}),
            {"kind": "account", "field": "tier", "operator": "in", "value": ["gold"]},
        ),
        (
            account["vertical"] == "retail",
            {"kind": "account", "field": "vertical", "operator": "=", "value": "retail"},
        ),
    ],
)
def test_property_expressions(built, expected: dict):
    assert isinstance(built, PropertyRule)
    assert as_dict(built) == expected
    assert Segment.from_dict({"combinator": "and", "rules": [expected]}).rules[0] == built


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (did("Session"), ev("Session")),
        (did_not("Completed Order"), {"kind": "event", "event": "Completed Order", "did": False}),
        (did("Session").times() > 5, ev("Session", count={"operator": ">", "value": 5})),
        (did("Session").times() >= 5, ev("Session", count={"operator": ">=", "value": 5})),
        (did("Session").times() < 3, ev("Session", count={"operator": "<", "value": 3})),
        (did("Session").times() <= 3, ev("Session", count={"operator": "<=", "value": 3})),
        (did("Session").times() == 0, ev("Session", count={"operator": "=", "value": 0})),
        (did("Session").times() != 2, ev("Session", count={"operator": "!=", "value": 2})),
        (
            did("Session").times().between(2, 4),
            ev("Session", count={"operator": "between", "value": [2, 4]}),
        ),
        (
            did("Session").distinct("day") >= 3,
            ev("Session", count={"operator": ">=", "value": 3, "unit": "day"}),
        ),
        (
            did("Session").distinct("week").between(2, 3),
            ev("Session", count={"operator": "between", "value": [2, 3], "unit": "week"}),
        ),
        (
            did("Completed Order").sum("revenue") >= 100,
            ev(
                "Completed Order",
                aggregate={"fn": "sum", "field": "revenue", "operator": ">=", "value": 100},
            ),
        ),
        (
            did("Completed Order").avg("revenue") < 20.5,
            ev(
                "Completed Order",
                aggregate={"fn": "avg", "field": "revenue", "operator": "<", "value": 20.5},
            ),
        ),
        (
            did("Completed Order").min("revenue") > 1,
            ev(
                "Completed Order",
                aggregate={"fn": "min", "field": "revenue", "operator": ">", "value": 1},
            ),
        ),
        (
            did("Completed Order").max("revenue") != 3,
            ev(
                "Completed Order",
                aggregate={"fn": "max", "field": "revenue", "operator": "!=", "value": 3},
            ),
        ),
        (
            did("Add to Cart").count_distinct("product_id").between(2, 5),
            ev(
                "Add to Cart",
                aggregate={
                    "fn": "count_distinct",
                    "field": "product_id",
                    "operator": "between",
                    "value": [2, 5],
                },
            ),
        ),
        (did("Session").last(90, "day"), ev("Session", window={"last": 90, "unit": "day"})),
        (
            did("Session").last(2, "week", offset=1),
            ev("Session", window={"last": 2, "unit": "week", "offset": 1}),
        ),
        (
            did("Session").between_dates("2024-01-01", "2024-02-01"),
            ev("Session", window={"from": "2024-01-01", "to": "2024-02-01"}),
        ),
        (
            did("Session").between_dates(end="2024-02-01"),
            ev("Session", window={"to": "2024-02-01"}),
        ),
        (
            did("Session").between_dates("2024-01-01T10:00:00Z"),
            ev("Session", window={"from": "2024-01-01T10:00:00Z"}),
        ),
        (
            did("Pageview").where(event_prop("path").contains("/pricing")),
            ev(
                "Pageview",
                where={"combinator": "and", "rules": [ep("path", "contains", "/pricing")]},
            ),
        ),
        (
            did("Pageview").where(
                event_prop("path").begins_with("/blog"), event_prop("ref").is_set()
            ),
            ev(
                "Pageview",
                where={
                    "combinator": "and",
                    "rules": [ep("path", "begins with", "/blog"), ep("ref", "is set")],
                },
            ),
        ),
        (
            did("Pageview").where((event_prop("a") == 1) | ~event_prop("b").is_set()),
            ev(
                "Pageview",
                where={"combinator": "or", "rules": [ep("a", "=", 1), ep("b", "is not set")]},
            ),
        ),
        (did("Session").first_time(), ev("Session", first_time=True)),
        (
            did("Session").first_time().last(90, "day"),
            ev("Session", first_time=True, window={"last": 90, "unit": "day"}),
        ),
        (did("Pageview").then("Upgrade"), ev("Pageview", then={"event": "Upgrade"})),
        (
            did("Pageview").then("Upgrade", within=(1, "day"), where=event_prop("plan") == "pro"),
            ev(
                "Pageview",
                then={
                    "event": "Upgrade",
                    "within": {"value": 1, "unit": "day"},
                    "where": {"combinator": "and", "rules": [ep("plan", "=", "pro")]},
                },
            ),
        ),
        (
            did_not("Pageview").last(7, "day").then("Upgrade", within=(2, "hour")),
            {
                "kind": "event",
                "event": "Pageview",
                "did": False,
                "window": {"last": 7, "unit": "day"},
                "then": {"event": "Upgrade", "within": {"value": 2, "unit": "hour"}},
            },
        ),
        (
            did_not("Session").last(90, "day").where(event_prop("device") == "ios"),
            {
                "kind": "event",
                "event": "Session",
                "did": False,
                "window": {"last": 90, "unit": "day"},
                "where": {"combinator": "and", "rules": [ep("device", "=", "ios")]},
            },
        ),
        (
            (did("Session").times() > 5).last(30, "day").where(event_prop("device") == "ios"),
            ev(
                "Session",
                count={"operator": ">", "value": 5},
                window={"last": 30, "unit": "day"},
                where={"combinator": "and", "rules": [ep("device", "=", "ios")]},
            ),
        ),
    ],
)
def test_event_expressions(built, expected: dict):
    assert isinstance(built, EventBuilder)
    assert as_dict(built) == expected
    parsed = Segment.from_dict({"combinator": "and", "rules": [expected]}).rules[0]
    assert built.rule == parsed
    assert built == parsed


def test_refinements_do_not_change_the_original():
    base = did("Session")
    windowed = base.last(1, "day")
    counted = base.times() > 2
    assert base.rule == EventRule("Session")
    assert windowed.rule.window is not None and windowed.rule.count is None
    assert counted.rule.count is not None and counted.rule.window is None


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (in_segment("seg-vip"), {"kind": "segment", "id": "seg-vip"}),
        (not_in_segment("seg-vip"), {"kind": "segment", "id": "seg-vip", "in": False}),
    ],
)
def test_segment_references(built, expected: dict):
    assert isinstance(built, SegmentRule)
    assert as_dict(built) == expected


# --------------------------------------------------------------------------- & | ~

TRIAL = u("subscription_type", "=", "trial")
PAID = u("subscription_type", "=", "paid")
FR = u("country", "=", "FR")


def test_and_or_build_groups_and_flatten():
    assert as_dict((user.subscription_type == "trial") & did("Session")) == {
        "combinator": "and",
        "rules": [TRIAL, ev("Session")],
    }
    assert as_dict(
        (user.subscription_type == "trial") & did("Session") & (user.country == "FR")
    ) == {"combinator": "and", "rules": [TRIAL, ev("Session"), FR]}
    assert as_dict((user.subscription_type == "trial") | (user.subscription_type == "paid")) == {
        "combinator": "or",
        "rules": [TRIAL, PAID],
    }
    mixed = ((user.subscription_type == "trial") | (user.subscription_type == "paid")) & (
        user.country == "FR"
    )
    assert as_dict(mixed) == {
        "combinator": "and",
        "rules": [{"combinator": "or", "rules": [TRIAL, PAID]}, FR],
    }


def test_spec_examples_in_python():
    new_trials = (user.subscription_type == "trial") & did("Session").first_time().last(90, "day")
    assert as_dict(new_trials) == {
        "combinator": "and",
        "rules": [TRIAL, ev("Session", window={"last": 90, "unit": "day"}, first_time=True)],
    }
    shoppers = (did("Session").times() > 5) & did_not("Completed Order")
    assert shoppers.describe() == "did Session more than 5 times AND did not do Completed Order"
    churn = (user.subscription_type == "paid") & did_not("Session").last(90, "day")
    assert as_dict(churn) == {
        "combinator": "and",
        "rules": [
            PAID,
            {
                "kind": "event",
                "event": "Session",
                "did": False,
                "window": {"last": 90, "unit": "day"},
            },
        ],
    }


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        (user.plan == "paid", u("plan", "!=", "paid")),
        (user.plan.isin(["a", "b"]), u("plan", "not in", ["a", "b"])),
        (user.ltv.between(1, 2), u("ltv", "not between", [1, 2])),
        (user.email.contains("gmail"), u("email", "not contains", "gmail")),
        (user.email.is_set(), u("email", "is not set")),
    ],
)
def test_invert_flips_negative_twins(positive: PropertyRule, negative: dict):
    flipped = ~positive
    assert as_dict(flipped) == negative
    assert ~flipped == positive


@pytest.mark.parametrize(
    "rule",
    [
        user.ltv < 5,
        user.email.begins_with("a"),
        user.signup_date.in_last(3, "day"),
        did("Session").times() > 3,
        did("Session").first_time(),
        did("Completed Order").sum("revenue") > 10,
    ],
)
def test_invert_without_a_twin_wraps_in_a_not_group(rule):
    flipped = ~rule
    assert isinstance(flipped, Group)
    assert as_dict(flipped) == {"combinator": "and", "not": True, "rules": [as_dict(rule)]}


def test_invert_did_and_did_not():
    assert as_dict(~did("Session").last(7, "day")) == {
        "kind": "event",
        "event": "Session",
        "did": False,
        "window": {"last": 7, "unit": "day"},
    }
    assert as_dict(~did_not("Completed Order")) == ev("Completed Order")
    assert as_dict(~did("Pageview").then("Upgrade")) == {
        "kind": "event",
        "event": "Pageview",
        "did": False,
        "then": {"event": "Upgrade"},
    }


def test_invert_segment_reference_and_groups():
    assert as_dict(~in_segment("vip")) == {"kind": "segment", "id": "vip", "in": False}
    assert as_dict(~not_in_segment("vip")) == {"kind": "segment", "id": "vip", "in": True}
    both = (user.plan == "paid") | did("Session")
    assert as_dict(~both) == {
        "combinator": "or",
        "not": True,
        "rules": [u("plan", "=", "paid"), ev("Session")],
    }
    assert ~~both == both
    # A negated group is kept whole when combined, never flattened into its parent.
    assert as_dict(~both & (user.country == "FR")) == {
        "combinator": "and",
        "rules": [
            {"combinator": "or", "not": True, "rules": [u("plan", "=", "paid"), ev("Session")]},
            FR,
        ],
    }


def test_built_segments_round_trip_through_json():
    built = (
        (user.plan == "paid")
        & ~((did("Session").distinct("day") >= 3).last(2, "week", offset=1))
        & (account.tier.isin(["gold"]) | in_segment("vip"))
        & did("Pageview")
        .where(event_prop("path").contains("/pricing"))
        .then("Upgrade", within=(1, "day"))
    )
    assert Segment.from_dict(built.to_json()) == built
    assert heapseg.as_segment(built.to_dict()).to_dict() == built.to_dict()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: did_not("Session").times() > 3, ["did: false"]),
        (lambda: did_not("Session").first_time(), ["did: false"]),
        (lambda: did_not("Order").sum("revenue") > 3, ["did: false"]),
        (lambda: did("Session").first_time().then("Upgrade"), ["'then'"]),
        (lambda: (did("Session").times() > 3).then("Upgrade"), ["'then'"]),
        (lambda: did("Session").times() > "5", ["count.value", "number"]),
        (lambda: did("Session").times() > -1, ["count.value", "whole number"]),
        (lambda: did("Session").times() > 2.5, ["count.value", "whole number"]),
        (lambda: did("Session").distinct("fortnight") >= 3, ["count.unit", "'fortnight'"]),
        (lambda: did("Order").sum("revenue") > "a", ["aggregate.value", "number"]),
        (lambda: did("Session").last(0, "day"), ["window.last", "> 0"]),
        (lambda: did("Session").last(3, "year"), ["window.unit", "'year'"]),
        (lambda: did("Session").between_dates("2024-02-01", "2024-01-01"), ["window", "before"]),
        (lambda: did("Session").between_dates("yesterday"), ["window.from", "ISO-8601"]),
        (
            lambda: did("Session").where(user.plan == "paid"),
            ["where.rules[0].kind", "event_property"],
        ),
        (lambda: did("Session").then("Upgrade", within=(1, "fortnight")), ["within.unit"]),
        (lambda: user.plan.isin([]), ["plan.value", "non-empty list"]),
        (lambda: user.plan == None, ["plan.value"]),  # noqa: E711
        (lambda: user.plan == ["a"], ["plan.value"]),
        (lambda: user.email.contains("a||b"), ["email.value", "empty alternative"]),
        (lambda: user.signup_date.in_last(3, "year"), ["signup_date.unit"]),
        (lambda: user.signup_date.in_last(-1, "day"), ["signup_date.value", "whole number"]),
    ],
)
def test_builder_errors_are_definition_errors(build, words: list[str]):
    with pytest.raises(DefinitionError) as info:
        build()
    for word in words:
        assert word in str(info.value)


def test_builder_refuses_empty_event_name():
    with pytest.raises(DefinitionError):
        did("")


def test_builder_refuses_empty_segment_id():
    with pytest.raises(DefinitionError):
        in_segment("")


def test_combining_with_something_else_is_a_type_error():
    with pytest.raises(TypeError):
        (user.plan == "paid") & 3  # type: ignore[operator]
    with pytest.raises(TypeError):
        user.plan & (user.plan == "paid")  # type: ignore[operator]
    with pytest.raises(TypeError):
        hash(user.plan)


# --------------------------------------------------------------------------- long expressions
# Issue 14: expressions built in a Python loop. Same-combinator chains stay one flat group;
# nesting and size have the limits of JSON definitions, checked as the expression grows.


def test_a_long_chain_of_ors_is_one_flat_group_that_counts():
    from tests.data_helpers import AS_OF, dataset

    expr = user.plan == "p0"
    for i in range(1, 1000):
        expr = expr | (user.plan == f"p{i}")
    assert isinstance(expr, Group) and len(expr.rules) == 1000 and expr.nesting == 0
    ds = dataset([{"user_id": "a", "plan": "p999"}, {"user_id": "b", "plan": "q"}])
    assert ds.count(expr, as_of=AS_OF) == 1


def test_a_chain_of_ands_beyond_the_rule_limit_is_a_definition_error():
    expr = did("View")
    with pytest.raises(DefinitionError, match="more than 1000 rules and groups"):
        for i in range(3000):
            expr = expr & (user.plan == f"p{i}")


def test_thousands_of_inversions_stay_flat():
    for rule in (user.visits < 3, did("View").times() > 2, in_segment("s"), user.plan == "x"):
        expr = rule
        for _ in range(3001):
            expr = ~expr
        assert as_dict(expr) == as_dict(~rule)
        assert as_segment(expr).nesting <= 1


@pytest.mark.parametrize(
    "step",
    [
        lambda expr, i: (expr | (user.plan == f"a{i}")) & (user.visits > i),
        lambda expr, i: ~(expr & (user.plan == f"b{i}")),
        lambda expr, i: did("View").where(event_prop("path") == "/") | (expr & did(f"E{i}")),
    ],
    ids=["and-or", "not-and", "or-and-events"],
)
def test_a_3000_deep_expression_is_refused_where_it_passes_the_limit(step):
    from heapseg.model import MAX_DEPTH

    expr = user.plan == "p"
    with pytest.raises(DefinitionError, match=f"nested more than {MAX_DEPTH} levels") as info:
        for i in range(3000):
            expr = step(expr, i)
    assert i <= MAX_DEPTH + 1 and expr.nesting <= MAX_DEPTH  # the last expression built
    assert "groups are" in str(info.value)


def test_the_old_module_name_still_imports_with_a_deprecation_warning():
    sys.modules.pop("heapseg.builder", None)
    with pytest.warns(DeprecationWarning, match=r"heapseg\.fluent"):
        old = importlib.import_module("heapseg.builder")
    assert old.did is heapseg.did and old.user is heapseg.user
    assert old.EventBuilder is EventBuilder


# --------------------------------------------------------------------------- funnels


def test_funnel_builds_the_format_1_rule():
    from heapseg import funnel

    rule = funnel(
        ["Session", ("Add to Cart", event_prop("path").contains("/shop")), "Completed Order"],
        within=(7, "day"),
        last=(30, "day", 1),
        reached=2,
        not_reached=3,
    )
    assert rule.to_dict() == {
        "kind": "funnel",
        "steps": [
            {"event": "Session"},
            {
                "event": "Add to Cart",
                "where": {"combinator": "and", "rules": [ep("path", "contains", "/shop")]},
            },
            {"event": "Completed Order"},
        ],
        "within": {"value": 7, "unit": "day"},
        "window": {"last": 30, "unit": "day", "offset": 1},
        "reached": 2,
        "not_reached": 3,
    }
    assert as_segment(rule) == Segment.from_dict({"combinator": "and", "rules": [rule.to_dict()]})


def test_funnel_steps_as_json_dates_and_combinations():
    from heapseg import funnel

    where = ep("revenue", ">", 10)
    rule = funnel(
        [{"event": "Session"}, ("Completed Order", where)], between_dates=("2024-01-01", None)
    )
    assert rule.to_dict() == {
        "kind": "funnel",
        "steps": [
            {"event": "Session"},
            {"event": "Completed Order", "where": {"combinator": "and", "rules": [where]}},
        ],
        "window": {"from": "2024-01-01"},
    }
    combined = (user.plan == "paid") & ~rule
    assert combined.to_dict()["rules"][1] == {
        "combinator": "and",
        "not": True,
        "rules": [rule.to_dict()],
    }


@pytest.mark.parametrize(
    ("kwargs", "path", "words"),
    [
        ({"steps": ["Session"]}, "funnel.steps", "at least two steps"),
        ({"steps": "Session"}, "funnel.steps", "at least two steps"),
        ({"steps": ["A", "B"], "reached": 3}, "funnel.reached", "from 1 to 2"),
        ({"steps": ["A", "B"], "within": (1, "year")}, "funnel.within.unit", "'year'"),
        ({"steps": ["A", 5]}, "funnel.steps[1]", "JSON object"),
    ],
)
def test_funnel_errors_name_the_part(kwargs: dict, path: str, words: str):
    from heapseg import funnel

    with pytest.raises(DefinitionError) as info:
        funnel(**kwargs)
    assert info.value.path == path
    assert words in str(info.value)


def test_funnel_takes_one_entry_window():
    from heapseg import funnel

    with pytest.raises(DefinitionError, match="not both"):
        funnel(["A", "B"], last=(1, "day"), between_dates=("2024-01-01", None))
