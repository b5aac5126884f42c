"""The builder on a dataset whose properties live in JSON columns (a PostHog export)."""

from __future__ import annotations

import json
import warnings

import duckdb
import pytest

import heapseg
from heapseg.sample import SAMPLE_AS_OF
from heapseg.sample.layouts import write_layout
from heapseg.widgets import SegmentBuilder
from heapseg.widgets.choices import DataChoices
from tests.widgets.test_builder import add, pick_user_property


@pytest.fixture(scope="module")
def posthog(tmp_path_factory: pytest.TempPathFactory):
    path = write_layout(
        tmp_path_factory.mktemp("posthog") / "posthog.duckdb", "posthog", n_users=300
    )
    with duckdb.connect(str(path), read_only=True) as con:
        raw = [
            json.loads(text) for (text,) in con.execute("SELECT properties FROM persons").fetchall()
        ]
    return heapseg.connect(path, preset="posthog", as_of=SAMPLE_AS_OF), raw


def test_pickers_list_json_keys_with_their_types_and_values(posthog):
    ds, raw = posthog
    choices = DataChoices(ds)
    users = choices.properties("user")
    assert {"subscription_type", "address.country", "company_size"} <= set(users)
    assert users["address.country"].is_string()
    # Most people's company_size is a number, every third one's is text: a number it is.
    assert users["company_size"].is_integer()
    countries, complete = choices.values("user", "address.country")
    expected = {p["address"]["country"] for p in raw if p.get("address", {}).get("country")}
    assert complete and set(countries) == expected


def test_a_rule_on_a_json_key_counts_live_like_the_dataset(posthog):
    ds, raw = posthog
    builder = SegmentBuilder(ds, debounce=0)
    row = add(builder.root, "user")
    assert "address.country" in row.field.options
    country = max(
        {p["address"]["country"] for p in raw if p.get("address", {}).get("country")},
        key=lambda c: sum(p.get("address", {}).get("country") == c for p in raw),
    )
    pick_user_property(row, "address.country", "=", country)
    builder.wait()
    rule = {"kind": "user", "field": "address.country", "operator": "=", "value": country}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = ds.count({"combinator": "and", "rules": [rule]})
    assert builder.segment.to_dict()["rules"] == [rule]
    assert builder.count == expected > 0
    # Every person had joined by the sample's as_of: the count is the JSON's, read here.
    assert ds.total_users() == len(raw)
    assert builder.count == sum(p.get("address", {}).get("country") == country for p in raw)
