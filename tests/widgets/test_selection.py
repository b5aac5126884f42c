"""The chart selection widget in Python: the selection JupyterChart reports, as a segment.

Clicks are simulated the way the front end reports them: JupyterChart's synced
``_vl_selections`` trait gets the Vega signal of the point selection.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pytest
import vl_convert as vlc

from heapseg import charts, did, user
from heapseg.model import Group
from heapseg.widgets import ChartSelection, select
from heapseg.widgets.selection import SELECTION, selectable_spec

PAID = user.subscription_type == "paid"
BUYERS = did("Completed Order").last(60, "day")
STEPS = ["Session", "Add to Cart", "Completed Order"]


def click(widget: ChartSelection, *points: dict[str, Any]) -> None:
    """What the front end sends when the marks of ``points`` are selected (none: cleared)."""
    chart = widget.chart_widget
    signal = {"vlPoint": {"or": list(points)}} if points else None
    chart._vl_selections = {**chart._vl_selections, SELECTION: {"value": signal, "store": []}}


@pytest.fixture
def funnel(ds):
    return charts.funnel(ds, STEPS, by={"Paid": PAID})


def _users(chart: Any, **match: Any) -> int:
    rows = chart.data
    for key, value in match.items():
        rows = rows[rows[key] == value]
    return int(rows.iloc[0]["users" if "users" in rows else "count"])


def test_a_clicked_funnel_bar_is_its_segment(ds, funnel) -> None:
    widget = select(funnel)
    seen: list[Any] = []
    widget.on_select(lambda w: seen.append((w.marks, w.count)))
    assert widget.selection_segment is None and widget.open_button.disabled

    click(widget, {"segment": "Paid", "step": 2})
    assert widget.marks == [{"segment": "Paid", "step": 2}]
    assert widget.selection_segment == charts.segment_of(funnel, segment="Paid", step=2)
    assert widget.count == _users(funnel, segment="Paid", step=2)
    assert ds.count(widget.selection_segment) == widget.count
    assert f"{widget.count:,}</span> users" in widget.summary.value
    assert not widget.open_button.disabled
    assert seen == [([{"segment": "Paid", "step": 2}], widget.count)]

    click(widget)  # a double-click clears
    assert (widget.marks, widget.selection_segment, widget.count) == ([], None, None)
    assert widget.open_button.disabled
    assert len(seen) == 2


def test_a_chart_with_its_data_is_selectable_too(ds) -> None:
    chart, data = charts.funnel(ds, STEPS, by={"Paid": PAID}, return_data=True)
    widget = select((chart, data))
    click(widget, {"segment": "Paid", "step": 3})
    assert widget.count == int(data.query("segment == 'Paid' and step == 3")["users"].iloc[0])


def test_shift_clicked_bars_are_the_or_of_their_segments(ds) -> None:
    chart = charts.breakdown(ds, PAID, "country", top=3)
    widget = select(chart)
    group = chart.data["group"].iloc[0]
    click(widget, {"group": group, "value": "US"}, {"group": group, "value": "GB"})
    assert isinstance(widget.selection_segment, Group)
    assert widget.selection_segment.combinator == "or"
    assert len(widget.selected) == 2
    # Users have one country: the union holds the two bars' users.
    both = _users(chart, group=group, value="US") + _users(chart, group=group, value="GB")
    assert widget.count == both
    assert "2 marks" in widget.summary.value


def test_open_in_builder_edits_the_selection(ds, catalog) -> None:
    chart = charts.breakdown(ds, PAID, "country", top=3)
    widget = select(chart, catalog=catalog)
    click(widget, {"group": "Rest", "value": "(other values)"})
    widget.open_button.click()
    builder = widget.builder
    assert widget.builder_box.children == (builder,)
    assert builder.segment == widget.selection_segment
    assert builder.catalog is catalog
    assert builder.wait(60)
    assert builder.count == _users(chart, group="Rest", value="(other values)")
    builder.close()


def test_a_trend_point_arrives_as_epoch_milliseconds(ds) -> None:
    chart = charts.trend(ds, "Session", by={"Paid": PAID}, measure="users", last=3)
    widget = select(chart)
    row = chart.data.iloc[1]
    click(widget, {"segment": "Paid", "period": row["period"].value // 1_000_000})
    assert widget.count == int(row["value"])
    assert widget.as_of == ds.resolve_as_of()


def test_size_over_time_points_hold_at_their_moment(ds) -> None:
    chart = charts.size_over_time(ds, {"Paid": PAID, "Buyers": BUYERS}, last=2)
    widget = select(chart)
    first = chart.data.iloc[0]
    click(widget, {"segment": first["segment"], "at": first["at"].isoformat()})
    assert widget.as_of == first["at"].tz_convert(None).to_pydatetime()
    assert widget.count == int(first["users"])
    later = chart.data.iloc[1]
    click(widget, {"segment": first["segment"], "at": first["at"].isoformat()},
          {"segment": later["segment"], "at": later["at"].isoformat()})  # fmt: skip
    assert widget.selection_segment is None
    assert "different moments" in widget.message
    assert "different moments" in widget.summary.value


TIMED = {  # marks whose windows start or end at a time of day
    "hourly trend": lambda ds: charts.trend(
        ds, "Session", by={"Paid": PAID}, measure="users", interval="hour", last=6
    ),
    "stickiness at a midnight": lambda ds: charts.stickiness(ds, "Session", by={"Paid": PAID}),
    "calendar retention at noon": lambda ds: charts.retention(
        ds, "Session", by={"Paid": PAID}, periods=2, unit="day", cohort_last=3,
        convention="calendar", as_of="2026-10-20T12:00:00",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(TIMED))
def test_marks_with_times_of_day_open_in_the_builder_as_they_are(ds, kind: str) -> None:
    chart = TIMED[kind](ds)
    widget = select(chart)
    for mark in charts.marks(chart)[:3]:
        widget.marks = [mark]
        builder = widget.open_in_builder()
        assert builder.wait(60)
        # The builder's date pickers hold days; the times are kept, so nothing changed.
        assert builder.segment == widget.selection_segment, builder.errors
        assert builder.count == widget.count == charts.mark_segment(chart, **mark).shown
        builder.close()


def test_a_bound_with_a_time_is_shown_and_kept_until_its_date_changes() -> None:
    from datetime import date

    from heapseg.model import RangeWindow
    from heapseg.widgets.window import WindowInputs

    inputs = WindowInputs()
    inputs.set_model(RangeWindow("2026-10-31T20:00:00", "2026-11-01T00:00:00.000001"))
    assert inputs.to_dict() == {"from": "2026-10-31T20:00:00", "to": "2026-11-01T00:00:00.000001"}
    assert inputs.exact.times.value == "(from 20:00:00, to before 00:00:00.000001 UTC)"
    inputs.date_from.value = date(2026, 10, 30)  # another day: that day, from midnight
    assert inputs.to_dict() == {"from": "2026-10-30", "to": "2026-11-01T00:00:00.000001"}
    assert inputs.exact.times.value == "(to before 00:00:00.000001 UTC)"
    inputs.set_model(RangeWindow("2026-01-01", None))
    assert (inputs.to_dict(), inputs.exact.times.value) == ({"from": "2026-01-01"}, "")


def test_a_lifecycle_bar_arrives_with_its_period_in_milliseconds_and_its_status(ds) -> None:
    chart = charts.lifecycle(ds, "Session", by={"Paid": PAID}, interval="week", last=3)
    widget = select(chart)
    row = chart.data[chart.data["status"] == "dormant"].iloc[-1]
    click(widget, {"segment": "Paid", "period": row["period"].value // 1_000_000,
                   "status": "dormant"})  # fmt: skip
    assert widget.count == int(row["users"]) > 0  # drawn below zero, counted as users
    assert ds.count(widget.selection_segment) == widget.count


def test_a_retention_point_says_why_it_is_no_segment(ds) -> None:
    widget = select(charts.retention(ds, "Session", by={"Paid": PAID}, periods=2))
    click(widget, {"segment": "Paid", "period": 1})
    assert widget.selection_segment is None and widget.count is None
    assert "cannot be a segment" in widget.message
    with pytest.raises(charts.ChartError, match="cannot be a segment"):
        widget.open_in_builder()


KINDS = {
    "funnel": lambda ds: charts.funnel(ds, STEPS, by={"Paid": PAID}),
    "breakdown": lambda ds: charts.breakdown(ds, PAID, "country", top=3),
    "compare": lambda ds: charts.compare(ds, {"Paid": PAID}, event="Session"),
    "sizes": lambda ds: charts.sizes(ds, {"Paid": PAID, "Buyers": BUYERS}),
    "overlap": lambda ds: charts.overlap(ds, {"Paid": PAID, "Buyers": BUYERS}),
    "trend": lambda ds: charts.trend(ds, "Session", by={"Paid": PAID}, last=3),
    "size_over_time": lambda ds: charts.size_over_time(ds, {"Paid": PAID}, last=2),
    "lifecycle": lambda ds: charts.lifecycle(ds, "Session", by={"Paid": PAID}, last=3),
    "stickiness": lambda ds: charts.stickiness(ds, "Session", by={"Paid": PAID}),
    "retention": lambda ds: charts.retention(
        ds, "Session", by={"Paid": PAID}, periods=2, unit="day", convention="calendar"
    ),
    "paths": lambda ds: charts.paths(ds, "Add to Cart", by={"Paid": PAID}, steps=1, top=2),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_gets_a_selection_vega_compiles(ds, kind: str) -> None:
    chart = KINDS[kind](ds)
    spec = selectable_spec(chart)
    param = next(p for p in spec["params"] if p["name"] == SELECTION)
    assert param["select"]["fields"] == list(charts.selection.MARK_KEYS[kind])
    assert param["select"]["on"] == "click"
    vega = vlc.vegalite_to_vega(spec)  # valid Vega-Lite, compiled offline
    assert any(s["name"] == f"{SELECTION}_store" for s in vega["data"])
    widget = select(chart)
    assert SELECTION in widget.chart_widget._vl_selections  # JupyterChart syncs it
    assert "heapseg_marks" not in str(chart.to_dict())  # the chart itself is unchanged


def test_the_chart_widget_renders_offline(ds, funnel) -> None:
    offline = alt.JupyterChart._is_offline
    try:
        charts.enable_notebook()
        assert select(funnel).chart_widget._esm == alt.JupyterChart._esm
        assert "cdn" not in str(alt.JupyterChart._esm)[:2000].lower()
    finally:
        alt.JupyterChart.enable_offline(offline)
