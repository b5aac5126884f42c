"""The public names of heapseg.charts; each chart kind lives in a module named like it."""

from __future__ import annotations

import importlib

import pytest

from heapseg import charts

KINDS = (
    "trend",
    "compare",
    "sizes",
    "overlap",
    "funnel",
    "retention",
    "size_over_time",
    "breakdown",
    "lifecycle",
    "stickiness",
    "paths",
)


@pytest.mark.parametrize("kind", KINDS)
def test_each_chart_kind_is_a_function_of_its_own_module(kind):
    module = importlib.import_module(f"heapseg.charts.{kind}")
    assert callable(getattr(charts, kind))
    assert getattr(module, kind) is getattr(charts, kind)
    # The chart function comes first; anything else a module offers is public in charts too.
    assert module.__all__[0] == kind
    assert all(getattr(charts, name) is getattr(module, name) for name in module.__all__)


def test_the_public_names():
    assert set(KINDS) < set(charts.__all__)
    for name in charts.__all__:
        assert getattr(charts, name) is not None
