"""JSON that survives hostile input: the bounded parser, nesting depth, the writer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heapseg.catalog.jsontext import (
    MAX_DEPTH,
    LongNumber,
    RawJSON,
    _BoundedParser,
    dumps,
    json_type,
    loads,
    nesting_depth,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_bounded_parser_reads_what_json_reads(value):
    text = json.dumps(value, indent=1)
    assert _BoundedParser(text, 10_000).parse() == json.loads(text)
    assert loads(text) == json.loads(text)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_nesting_depth_matches_the_structure(value):
    def depth(v):
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0

    assert nesting_depth(json.dumps(value)) == depth(value)


def test_brackets_inside_strings_do_not_count():
    assert nesting_depth('{"a": "[[[[{{{{\\"]]]"}') == 1


def test_a_100000_level_document_loads_without_recursion_and_round_trips():
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"keep": 1, "deep": ' + deep + ', "after": "x"}'
    value = loads(text)
    assert value["keep"] == 1 and value["after"] == "x"
    node, level = value["deep"], 2  # the outer object is level 1
    while not isinstance(node, RawJSON):
        node, level = node[0], level + 1
    assert level == MAX_DEPTH + 1  # kept as objects down to MAX_DEPTH, verbatim below
    # Rewriting puts the deep part back byte for byte, and the result reads the same again.
    n = 100_001 - MAX_DEPTH
    assert node.text == "[" * n + "]" * n
    written = dumps(value)
    assert node.text in written
    again = loads(written)
    assert (again["keep"], again["after"]) == (1, "x")


def test_bounded_parser_reports_bad_json_with_position():
    with pytest.raises(ValueError, match="line 2 column"):
        _BoundedParser('{"a": 1,\n "b": }', 10).parse()
    with pytest.raises(ValueError, match="Unterminated"):
        loads("[" * 300 + "]" * 10)
    with pytest.raises(ValueError, match="Extra data"):
        _BoundedParser("[1] [2]", 10).parse()


def test_dumps_is_readable_json_with_unicode_kept():
    text = dumps({"name": "Käufer ☕", "n": [1, 2]})
    assert "Käufer ☕" in text
    assert json.loads(text) == {"name": "Käufer ☕", "n": [1, 2]}


def test_json_type_names_a_value_for_messages():
    assert json_type(None) == "nothing (null or missing)"
    assert json_type({"a": 1}) == "an object"
    assert json_type([1]) == "a list"
    assert json_type("x") == "a string"
    assert json_type(True) == "a boolean"
    assert json_type(3.5) == "a number"
    assert json_type(LongNumber("9" * 5000)) == "a number of 5000 digits (too long to read)"
    assert json_type(RawJSON("[[]]")) == "a structure nested too deeply"


def test_nan_and_the_infinities_read_alike_at_any_depth():
    # Python's reader takes NaN and Infinity: a file deep enough for the bounded parser must too.
    for constant in ("NaN", "Infinity", "-Infinity"):
        shallow = json.loads(f"[{constant}, 1]")
        deep = loads(f"[{constant}, " + "[" * 400 + "]" * 400 + "]", max_depth=32)
        assert repr(deep[0]) == repr(shallow[0])
        assert repr(_BoundedParser(f"[{constant}]", 10).parse()) == repr(shallow[:1])
