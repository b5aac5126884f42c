"""What every row and group shares: format-1 paths and the status line with its own record of errors."""

from __future__ import annotations

import pytest

from heapseg.widgets.choices import DataChoices
from heapseg.widgets.node import join_path
from heapseg.widgets.rows import SegmentRow


@pytest.fixture
def row(ds):
    return SegmentRow(DataChoices(ds))


def test_join_path():
    assert join_path("", "rules") == "rules"
    assert join_path("rules", 2) == "rules[2]"
    assert join_path("rules[2]", "where") == "rules[2].where"


def test_status_line_shows_a_count_a_share_busy_or_an_error(row):
    row.show(count=1234, total=2000)
    assert "1,234 users (61.7%)" in row.status.value
    assert not row.invalid
    row.show(busy=True, warning="no such event yet")
    assert "heapseg-row-busy" in row.status.value
    assert "no such event yet" in row.status.value
    row.show(error="pick a <segment>", warning="hidden")
    assert "⚠ pick a &lt;segment&gt;" in row.status.value
    assert "hidden" not in row.status.value
    assert row.invalid
    row.show(count=0, total=0)
    assert row.status.value == "<span class='heapseg-row-count'>0 users</span>"
    assert not row.invalid
