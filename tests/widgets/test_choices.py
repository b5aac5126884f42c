"""Choices from the data: operators per type, value shapes, values, events, options kept."""

from __future__ import annotations

import ibis.expr.datatypes as dt
import ipywidgets as widgets
import pytest

from heapseg.model import PROPERTY_OPERATORS
from heapseg.widgets.choices import (
    VALUE_LIMIT,
    DataChoices,
    operators_for,
    set_options,
    type_family,
    value_kind,
    with_current,
)


@pytest.mark.parametrize(
    ("dtype", "family", "has", "lacks"),
    [
        (dt.string, "string", {"contains", "in", "is set"}, {">", "in last", "between"}),
        (dt.int64, "integer", {">", "between", "in"}, {"contains", "in last"}),
        (dt.float64, "float", {">=", "not between"}, {"begins with"}),
        (dt.boolean, "boolean", {"=", "!="}, {">", "in", "contains"}),
        (dt.date, "date", {"in last", "more than ago", "=", "between"}, {"contains", "in"}),
        (dt.timestamp, "timestamp", {"in last", ">"}, {"=", "contains"}),
    ],
)
def test_operators_fit_the_type(dtype, family, has, lacks):
    assert type_family(dtype) == family
    ops = set(operators_for(dtype))
    assert has <= ops
    assert not ops & lacks
    assert ops <= set(PROPERTY_OPERATORS)


def test_value_kinds_cover_every_operator():
    kinds = {op: value_kind(op) for op in PROPERTY_OPERATORS}
    assert kinds["is set"] == "none"
    assert kinds["not in"] == "list"
    assert kinds["between"] == "pair"
    assert kinds["begins with"] == "text"
    assert kinds["in last"] == "relative"
    assert kinds["<="] == "scalar"


def test_choices_come_from_the_dataset(ds):
    choices = DataChoices(ds)
    assert set(choices.properties("user")) == set(ds.schema.user_properties)
    assert choices.dtype("user", "ltv").is_floating()
    assert choices.event_names() == ds.event_names()
    assert "revenue" in choices.aggregate_fields("sum")
    assert "payment_method" not in choices.aggregate_fields("avg")
    assert "payment_method" in choices.aggregate_fields("count_distinct")
    values, complete = choices.values("user", "subscription_type")
    assert complete and sorted(values) == ["free", "paid", "trial"]
    emails, complete = choices.values("user", "email")
    assert not complete and len(emails) == VALUE_LIMIT
    methods, complete = choices.values("event_property", "payment_method")
    assert complete and methods
    assert choices.values("user", "no_such_column") == ([], True)
    assert choices.segments() == []


def test_set_options_keeps_or_adds_the_choice():
    pick = widgets.Dropdown(options=["a", "b"], value="b")
    set_options(pick, ["a", "b", "c"], "b")
    assert pick.value == "b"  # ipywidgets alone would jump back to "a"
    set_options(pick, ["a", "b"], "zzz")
    assert pick.options == ("a", "b", "zzz") and pick.value == "zzz"
    set_options(pick, [("One", 1), ("Two", 2)], None)
    assert pick.value == 1
    assert with_current([("One", 1)], 3) == [("One", 1), ("3", 3)]
