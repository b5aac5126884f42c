"""Value inputs: the widget fits the type and operator; values come out as format 1 writes them."""

from __future__ import annotations

import datetime as dt

import ipywidgets as widgets

from heapseg.widgets.values import ValueInput


def make(family, operator, suggestions=(), complete=False) -> ValueInput:
    box = ValueInput()
    box.configure(family, operator, list(suggestions), complete)
    return box


def test_string_scalar_offers_the_values():
    box = make("string", "=", ["trial", "paid"], complete=True)
    (combo,) = box.children
    assert isinstance(combo, widgets.Combobox)
    assert combo.options == ("trial", "paid")
    assert box.value is None
    combo.value = "trial"
    assert box.value == "trial"


def test_lists_for_in():
    box = make("string", "in", ["a", "b"], complete=True)
    (tags,) = box.children
    assert isinstance(tags, widgets.TagsInput)
    assert tags.allowed_tags == ["a", "b"]
    tags.value = ["a", "b"]
    assert box.value == ["a", "b"]
    box.set(["a", "other"])  # a loaded value outside the known ones is kept
    assert box.value == ["a", "other"]
    numbers = make("integer", "not in")
    assert isinstance(numbers.children[0], widgets.IntsInput)
    numbers.children[0].value = [1, 5]
    assert numbers.value == [1, 5]
    free = make("string", "in", ["x"], complete=False)
    assert free.children[0].allowed_tags == []


def test_numbers_booleans_dates():
    number = make("float", ">")
    assert isinstance(number.children[0], widgets.FloatText)
    number.children[0].value = 2.5
    assert number.value == 2.5
    flag = make("boolean", "=")
    flag.children[0].value = False
    assert flag.value is False
    day = make("date", "<")
    assert isinstance(day.children[0], widgets.DatePicker)
    assert day.value is None
    day.children[0].value = dt.date(2026, 3, 1)
    assert day.value == "2026-03-01"
    day.set("2025-12-31")
    assert day.children[0].value == dt.date(2025, 12, 31)


def test_pairs_and_relative():
    pair = make("integer", "between")
    low, _, high = pair.children
    low.value, high.value = 3, 9
    assert pair.value == [3, 9]
    relative = make("date", "in last")
    amount, unit = relative.children
    amount.value, unit.value = 14, "week"
    assert (relative.value, relative.unit) == (14, "week")
    relative.set(3, "month")
    assert (amount.value, unit.value) == (3, "month")
    assert make("string", "is set").children == ()


def test_operator_change_keeps_what_fits():
    box = make("string", "=", ["a"], True)
    box.children[0].value = "a"
    box.configure("string", "in", ["a"], True)
    assert box.value == ["a"]
    box.configure("string", "=", ["a"], True)
    assert box.value == "a"
    box.configure("string", "is set", ["a"], True)
    assert box.value is None
