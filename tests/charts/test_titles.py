"""Titles and the last touches: the as_of and notes in the subtitle, the data attached."""

from __future__ import annotations

from datetime import datetime

import altair as alt
import pandas as pd
import pytest

from heapseg.charts import MAX_ROWS, ChartError
from heapseg.charts.segments import one_segment
from heapseg.charts.titles import finish, scope_note, title_params
from tests.charts.conftest import PAID


def test_the_subtitle_gives_as_of_and_the_details_that_are_not_empty():
    params = title_params("Sessions", datetime(2026, 9, 15, 12), "", "by plan")
    assert params.text == "Sessions"
    assert params.subtitle == "as of 2026-09-15 12:00 UTC · by plan"
    assert title_params("x", datetime(2026, 9, 15)).subtitle == "as of 2026-09-15 UTC"
    assert scope_note(None) == ""
    assert scope_note(one_segment(("Paid", PAID))) == "only users in: Paid"


def test_finish_ends_the_subtitle_with_the_note_and_keeps_it_with_the_data():
    data = pd.DataFrame({"x": [1, 2]})
    chart = alt.Chart(data).mark_bar().properties(title=title_params("t", datetime(2026, 1, 1)))
    drawn, same = finish(chart, data, True, "plan: values as of today")
    assert same is data and data.attrs["note"] == "plan: values as of today"
    assert drawn.to_dict()["title"]["subtitle"].endswith(" · plan: values as of today")
    assert not isinstance(finish(chart, data, False), tuple)
    with pytest.raises(ChartError, match="points"):
        finish(chart, pd.DataFrame({"x": range(MAX_ROWS + 1)}), False)


def test_longer_explanations_get_lines_of_their_own_and_the_note_stays_on_the_first():
    params = title_params("t", datetime(2026, 1, 1), "by plan", lines=["cohort: ...", "", "tests"])
    assert params.subtitle == ["as of 2026-01-01 UTC · by plan", "cohort: ...", "tests"]
    assert title_params("t", datetime(2026, 1, 1), lines=["", ""]).subtitle == (
        "as of 2026-01-01 UTC"
    )
    data = pd.DataFrame({"x": [1, 2]})
    chart = alt.Chart(data).mark_bar().properties(title=params)
    drawn = finish(chart, data, False, "plan: values as of today")
    assert drawn.to_dict()["title"]["subtitle"] == [
        "as of 2026-01-01 UTC · by plan · plan: values as of today",
        "cohort: ...",
        "tests",
    ]
