"""Segment colours: stable per name, grey for everybody else."""

from __future__ import annotations

from heapseg.charts import SegmentColors
from heapseg.charts.common import NEUTRAL
from heapseg.charts.palette import color


def test_colours_are_stable_and_neutral_for_everybody():
    palette = SegmentColors(["#111111", "#222222"])
    assert palette["a"] == "#111111" and palette["b"] == "#222222" and palette["a"] == "#111111"
    assert palette["c"] == "#111111"  # past the end the palette repeats
    assert palette["All users"] == NEUTRAL["All users"] and palette["Rest"] == NEUTRAL["Rest"]
    palette.set("a", "red")
    assert palette["a"] == "red"
    palette.reset()
    assert palette.assigned() == {}


def test_the_colour_encoding_keeps_the_names_order_and_their_colours():
    palette = SegmentColors(["#111111", "#222222"])
    encoding = color(["b", "a", "All users"], palette).to_dict()
    assert encoding["scale"] == {
        "domain": ["b", "a", "All users"],
        "range": ["#111111", "#222222", NEUTRAL["All users"]],
    }
    assert encoding["sort"] == ["b", "a", "All users"]
    assert encoding["legend"]["orient"] == "bottom"
    assert color(["b"], palette, legend=False).to_dict()["legend"] is None
