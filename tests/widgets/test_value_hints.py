"""The builder shows values the data does not hold on the row, and completes values from the data."""

from __future__ import annotations

import warnings

import duckdb
import ipywidgets as widgets

from heapseg.hints import UnknownValueWarning
from tests.widgets.test_builder import add, pick_user_property


def distinct(sample_path, sql: str) -> list[str]:
    """Values read straight from the sample file (not through heapseg)."""
    con = duckdb.connect(str(sample_path), read_only=True)
    try:
        return [row[0] for row in con.execute(sql).fetchall()]
    finally:
        con.close()


def test_a_value_in_the_wrong_case_is_a_hint_on_its_row(make_builder):
    builder = make_builder()
    row = add(builder.root, "account")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pick_user_property(row, "tier", "=", "Gold")
        assert builder.wait(60)
    # On the row, not printed into whatever cell runs (the worker does not warn).
    assert not [w for w in caught if issubclass(w.category, UnknownValueWarning)]
    assert builder.errors == {}
    assert builder.warnings == {
        "rules[0]": "no account has tier 'Gold'; the data has 'gold' "
        "(= and in compare case-sensitively; contains does not)"
    }
    assert "heapseg-row-warning" in row.status.value and "the data has" in row.status.value
    assert builder.count == 0
    row.value.children[0].value = "gold"
    assert builder.wait(60)
    assert builder.warnings == {}
    assert "heapseg-row-warning" not in row.status.value
    assert builder.count > 0


def test_a_filter_value_hint_goes_on_the_filter_row(make_builder):
    builder = make_builder()
    row = add(builder.root, "event")
    row.event.value = "Add to Cart"
    where = add(row.where, "event_property")
    pick_user_property(where, "category", "=", "Electronic")
    assert builder.wait(60)
    assert builder.warnings == {
        "rules[0].where.rules[0]": "no event has category 'Electronic'; did you mean 'Electronics'?"
    }
    assert "did you mean" in where.status.value
    assert "did you mean" not in row.status.value


def test_the_value_input_completes_from_the_data(make_builder, sample_path):
    builder = make_builder()
    row = add(builder.root, "event")
    row.event.value = "Add to Cart"
    where = add(row.where, "event_property")
    where.field.value = "category"
    where.operator.value = "="
    combo = where.value.children[0]
    assert isinstance(combo, widgets.Combobox)
    assert sorted(combo.options) == sorted(
        distinct(sample_path, "SELECT DISTINCT category FROM events WHERE category IS NOT NULL")
    )
    tier = add(builder.root, "account")
    tier.field.value = "tier"
    tier.operator.value = "in"
    tags = tier.value.children[0]
    assert isinstance(tags, widgets.TagsInput)
    assert sorted(tags.allowed_tags) == sorted(
        distinct(sample_path, "SELECT DISTINCT tier FROM accounts WHERE tier IS NOT NULL")
    )
