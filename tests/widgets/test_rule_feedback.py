"""What a row says: incomplete rather than wrong, what each rule costs, and the analyst's words."""

from __future__ import annotations

import pandas as pd
import pytest

from heapseg.widgets.node import STATUS_WIDTH, fit_width
from heapseg.widgets.rows.event import MODES_DID
from heapseg.widgets.window import WINDOWS

US = {"kind": "user", "field": "country", "operator": "=", "value": "US"}
RICH = {"kind": "user", "field": "ltv", "operator": ">", "value": 100}


@pytest.fixture(scope="module")
def users(ds) -> pd.DataFrame:
    """The users table read straight from DuckDB (country and ltv have no history)."""
    con = ds.backend.con
    return con.execute("SELECT user_id, country, ltv FROM users").df()


def test_a_new_rule_is_incomplete_not_wrong(make_builder, ds, users):
    builder = make_builder(segment={"combinator": "and", "rules": [US]})
    row = builder.root.add("user")
    row.field.value = "email"
    row.operator.value = "contains"
    assert builder.wait(60)
    assert builder.errors == {}
    assert builder.incomplete == {"rules[1]": "enter a value"}
    assert "heapseg-row-incomplete" in row.status.value and "⚠" not in row.status.value
    assert not row.invalid and row.unfinished
    assert "heapseg-incomplete" in row._dom_classes and "heapseg-invalid" not in row._dom_classes
    # Left out of the count, and the count line says so.
    assert builder.count == int((users.country == "US").sum())
    assert builder.incomplete_html.value == "1 rule incomplete, not counted"
    assert builder.segment.to_dict() == {"combinator": "and", "rules": [US]}

    row.value.children[0].value = "@gmail"
    assert builder.wait(60)
    assert builder.incomplete == {} and builder.incomplete_html.value == ""
    assert not row.unfinished
    gmail = ds.users.to_pandas().email.fillna("").str.lower().str.contains("@gmail")
    ids = set(ds.users.to_pandas().user_id[gmail])
    assert builder.count == int(((users.country == "US") & users.user_id.isin(ids)).sum())


def test_incomplete_event_rules_and_saving(make_builder, catalog):
    builder = make_builder(catalog)
    first = builder.root.add("event")
    first.event.value = ""
    second = builder.root.add("event")
    second.event.value = "Session"
    second.mode.value = "then"
    assert builder.wait(60)
    assert builder.incomplete == {"rules[0]": "choose an event", "rules[1]": "choose an event"}
    assert builder.incomplete_html.value == "2 rules incomplete, not counted"
    assert builder.count == builder.total  # nothing counted yet: everyone
    builder.name_input.value = "Half done"
    assert builder.save() is None
    assert "finish or remove the incomplete rules first" in builder.message
    assert "Half done" not in [e.name for e in catalog.list()]


def test_each_rule_shows_what_it_costs(make_builder, users):
    definition = {"combinator": "and", "rules": [US, RICH]}
    builder = make_builder(segment=definition)
    us, rich = users.country == "US", users.ltv > 100
    both = int((us & rich).sum())
    assert builder.count == both
    # Without "country = US" the segment is the rich users, and the other way round.
    assert builder.without_counts == {"rules[0]": int(rich.sum()), "rules[1]": int(us.sum())}
    first = builder.root.nodes[0].status.value
    assert f"without it: {int(rich.sum()):,} (+{int(rich.sum()) - both:,})" in first
    assert "heapseg-row-cost" in first


def test_costs_of_nested_rules_and_or_groups(make_builder, users):
    definition = {
        "combinator": "and",
        "rules": [RICH, {"combinator": "or", "rules": [US, {**US, "value": "DE"}]}],
    }
    builder = make_builder(segment=definition)
    rich, us, de = users.ltv > 100, users.country == "US", users.country == "DE"
    whole = int((rich & (us | de)).sum())
    assert builder.count == whole
    assert builder.without_counts == {
        "rules[0]": int((us | de).sum()),
        "rules[1]": int(rich.sum()),
        "rules[1].rules[0]": int((rich & de).sum()),
        "rules[1].rules[1]": int((rich & us).sum()),
    }
    # In an OR, a rule adds users: the segment is smaller without it.
    nested = builder.root.nodes[1].nodes[0].status.value
    assert f"without it: {int((rich & de).sum()):,} (−{whole - int((rich & de).sum()):,})" in nested


def test_costs_come_in_the_one_live_query(make_builder, ds, monkeypatch):
    calls = []
    real = type(ds).counts

    def spy(self, segments, *args, **kwargs):
        calls.append(set(segments))
        return real(self, segments, *args, **kwargs)

    monkeypatch.setattr(type(ds), "counts", spy)
    make_builder(segment={"combinator": "and", "rules": [US, RICH, {**US, "value": "DE"}]})
    (asked,) = calls
    assert {"without:rules[0]", "without:rules[1]", "without:rules[2]"} <= asked


def test_window_words_and_the_between_ago_window(make_builder, ds):
    builder = make_builder()
    row = builder.root.add("event")
    row.event.value = "Session"
    labels = [text for text, _ in WINDOWS]
    assert labels == ["at any time", "in the last", "between … and … ago", "between dates"]
    assert "as_of" not in " ".join(str(w.value) for w in row.last_box.children)
    row.window.value = "ago"
    row.ago_from.value = 30
    row.ago_to.value = 120
    assert builder.wait(60)
    spelled = [c.value for c in row.ago_box.children if hasattr(c, "value")]
    assert spelled == ["between", 30, "and", 120, "day", "ago"]
    expected = {"last": 90, "unit": "day", "offset": 30}
    assert builder.segment.to_dict()["rules"][0]["window"] == expected
    assert builder.count == ds.count(
        {"combinator": "and", "rules": [{"kind": "event", "event": "Session", "window": expected}]}
    )
    # A saved window with an offset is shown as "between … and … ago" again.
    again = make_builder(segment=builder.segment)
    shown = again.root.nodes[0]
    assert (shown.window.value, shown.ago_from.value, shown.ago_to.value) == ("ago", 30, 120)


def test_dropdowns_fit_their_longest_option_and_status_lines_have_one_width(make_builder, ds):
    builder = make_builder(segment={"combinator": "and", "rules": [US]})
    row = builder.root.add("event")
    longest = max(len(text) for text, _ in MODES_DID)  # "a number of times"
    width = float(row.mode.layout.width.removesuffix("ch"))
    assert width >= longest + 4
    assert fit_width(["ab", ("a longer one", 1)]) == "16.0ch"
    # The aggregate's property list changes with its function: the box fits the longest of all.
    names = list(ds.events.schema().names)
    row.with_aggregate.value = True
    row.agg_fn.value = "count_distinct"
    listed = [str(o[0] if isinstance(o, tuple) else o) for o in row.agg_field.options]
    assert "payment_method" in listed and set(listed) <= set(names)
    agg_width = float(row.agg_field.layout.width.removesuffix("ch"))
    assert agg_width >= max(len(t) for t in listed) + 4
    row.agg_fn.value = "sum"
    assert row.agg_field.layout.width == f"{agg_width}ch"  # the row does not move
    for node in (row, builder.root.nodes[0]):
        assert node.status.layout.width == STATUS_WIDTH
