"""Building charts without Altair's checks: the checks come back after, also across threads,
and dropping unset properties changes nothing in the spec."""

from __future__ import annotations

import threading

import altair as alt
import pandas as pd
import pytest
from altair.utils import schemapi

from heapseg.charts.drawing import layer, lean, put, unvalidated


def test_checks_are_off_while_drawing_and_back_after():
    seen = []

    @unvalidated
    def draw():
        seen.append(schemapi.DEBUG_MODE)
        return alt.Chart().mark_bar()

    assert schemapi.DEBUG_MODE is True
    draw()
    assert seen == [False] and schemapi.DEBUG_MODE is True


def test_a_failing_draw_restores_the_checks():
    @unvalidated
    def broken():
        raise ValueError("no chart")

    with pytest.raises(ValueError, match="no chart"):
        broken()
    assert schemapi.DEBUG_MODE is True


def test_overlapping_threads_leave_the_checks_on():
    # Altair's own debug_mode() restores what it found: B entering while A is inside finds
    # the checks off, and restoring that after A has left would leave them off for good.
    entered = {name: threading.Event() for name in "AB"}
    leave = {name: threading.Event() for name in "AB"}

    @unvalidated
    def draw(name):
        entered[name].set()
        leave[name].wait(timeout=10)

    a = threading.Thread(target=draw, args=("A",))
    b = threading.Thread(target=draw, args=("B",))
    a.start()
    entered["A"].wait(timeout=10)
    b.start()
    entered["B"].wait(timeout=10)
    assert schemapi.DEBUG_MODE is False
    leave["A"].set()
    a.join()
    assert schemapi.DEBUG_MODE is False  # B is still drawing
    leave["B"].set()
    b.join()
    assert schemapi.DEBUG_MODE is True


def test_lean_and_put_keep_the_spec():
    data = pd.DataFrame({"a": ["x", "y"], "n": [1, 2]})

    def charts():
        bars = (
            alt.Chart()
            .mark_bar(cornerRadiusEnd=2)
            .encode(
                x=alt.X("n:Q", title="N", axis=alt.Axis(format="d")),
                y=alt.Y("a:N", sort=["y", "x"]),
                tooltip=[alt.Tooltip("n:Q", format=",d")],
            )
        )
        text = alt.Chart().mark_text(dx=4).encode(x=alt.X("n:Q"), y=alt.Y("a:N"), text="n:Q")
        return bars, text

    expected = alt.layer(*charts(), data=data).properties(width=300, height=alt.Step(20))
    built = put(layer(*charts(), data=data), width=300, height=alt.Step(20))
    assert built.to_dict() == expected.to_dict()
    # Unset properties are gone from the marks, the chart's own stay (Altair reads them).
    bars = lean(charts()[0])
    assert "align" not in bars.mark._kwds and bars.params is alt.Undefined
    assert bars.encoding.y._kwds.keys() >= {"shorthand", "sort"}
