"""Click a chart's marks, get their users as a segment: the chart selection widget."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from html import escape
from typing import Any

import altair as alt
import ipywidgets as widgets
import traitlets

from heapseg.charts.common import ChartError
from heapseg.charts.selection import MARK_KEYS, MarkSegment, mark_segment
from heapseg.charts.source import source_of
from heapseg.errors import HeapsegError
from heapseg.model import Group
from heapseg.widgets.builder import SegmentBuilder
from heapseg.widgets.style import stylesheet

__all__ = ["SELECTION", "ChartSelection", "select", "selectable_spec"]

#: The name of the point selection added to the chart (a Vega-Lite parameter).
SELECTION = "heapseg_marks"
_VIEW = "heapseg_marks_view"
# Marks that stand for the data a selection picks (not labels or reference lines).
_DATA_MARKS = ("bar", "rect", "line", "point", "area", "circle", "square")
_LINES = ("line", "area")


def _mark_type(unit: dict) -> str | None:
    mark = unit.get("mark")
    return mark.get("type") if isinstance(mark, dict) else mark


def _units(spec: dict) -> Iterator[dict]:
    """The unit specs of a Vega-Lite spec, first to last (inside layers and facets)."""
    if "mark" in spec:
        yield spec
    for child in spec.get("layer", []):
        yield from _units(child)
    if isinstance(spec.get("spec"), dict):
        yield from _units(spec["spec"])


def selectable_spec(chart: Any) -> dict:
    """The chart's Vega-Lite spec with :data:`SELECTION`: a point selection over the fields
    that name a mark (click one, shift-click more, double-click to clear) on its data marks,
    which get a dark outline when selected (bars and cells)."""
    kind = source_of(chart).kind
    spec = copy.deepcopy(chart.to_dict())
    unit = next((u for u in _units(spec) if _mark_type(u) in _DATA_MARKS), None)
    if unit is None:
        raise ChartError(f"this {kind} chart has no marks to click")
    mark = _mark_type(unit)
    select: dict[str, Any] = {"type": "point", "fields": list(MARK_KEYS[kind]), "on": "click"}
    if mark in _LINES:
        select["nearest"] = True  # a click near a line picks its closest point
    param: dict[str, Any] = {"name": SELECTION, "select": select}
    if unit is not spec:
        unit.setdefault("name", _VIEW)
        param["views"] = [unit["name"]]
    spec.setdefault("params", []).append(param)
    if mark in ("bar", "rect"):
        drawn = unit["mark"] if isinstance(unit["mark"], dict) else {}
        encoding = unit.setdefault("encoding", {})
        encoding["stroke"] = {
            "condition": {"param": SELECTION, "empty": False, "value": "#111111"},
            "value": drawn.get("stroke", "transparent"),
        }
        encoding["strokeWidth"] = {
            "condition": {"param": SELECTION, "empty": False, "value": 2.5},
            "value": drawn.get("strokeWidth", 0),
        }
    return spec


def _top_level(spec: dict) -> Any:
    """The Altair chart of a top-level Vega-Lite spec."""
    for key, kind in (("layer", alt.LayerChart), ("facet", alt.FacetChart)):
        if key in spec:
            return kind.from_dict(spec)
    for key, kind in (("hconcat", alt.HConcatChart), ("vconcat", alt.VConcatChart)):
        if key in spec:
            return kind.from_dict(spec)
    return alt.Chart.from_dict(spec)


class ChartSelection(widgets.VBox):
    """A heapseg chart whose marks you click to get their users as a segment.

    Click a bar, point or cell; shift-click adds more; double-click clears. The bar under the
    chart shows how many users the selection holds and opens it in a :class:`SegmentBuilder`.
    Code follows the selection with :meth:`on_select` (or by observing ``marks``).

    Parameters
    ----------
    chart
        A chart as a heapseg chart function returned it (or its ``(chart, data)`` pair).
    dataset
        The dataset for counts and the builder (default: the chart's).
    catalog
        The catalog the builder saves to.

    Attributes
    ----------
    chart_widget : altair.JupyterChart
        The chart, rendered offline (see :func:`heapseg.charts.enable_notebook`).
    marks : list of dict
        The selected marks' keys (as :func:`heapseg.charts.segment_of` takes them); set it to
        select from code.
    selected : list of MarkSegment
        The selected marks as segments.
    selection_segment : heapseg.Segment or None
        The users of any selected mark: the OR of their segments (None when nothing is
        selected, or when the marks hold at different moments, see :attr:`message`).
    as_of
        The moment at which :attr:`selection_segment` holds the marks' users.
    count
        The number of users in :attr:`selection_segment` at :attr:`as_of` (None: no selection).
    builder : SegmentBuilder or None
        The builder opened by "Open in builder".

    Examples
    --------
    >>> import heapseg
    >>> from heapseg import charts, user
    >>> from heapseg.widgets import select
    >>> ds = heapseg.connect()
    >>> paid = user.subscription_type == "paid"
    >>> w = select(charts.funnel(ds, ["Session", "Add to Cart"], by={"Paid": paid}))
    >>> w.marks = [{"segment": "Paid", "step": 2}]  # what clicking the second bar does
    >>> w.count
    532
    """

    marks = traitlets.List()
    count = traitlets.Int(None, allow_none=True)
    message = traitlets.Unicode("")

    def __init__(self, chart: Any, dataset: Any = None, catalog: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("heapseg-chart-selection")
        if isinstance(chart, tuple) and len(chart) == 2:  # return_data=True; chart.data is data
            chart = chart[0]
        self.chart = chart
        source = source_of(chart)
        self.dataset = dataset if dataset is not None else source.request.ds
        self.catalog = catalog
        self.as_of = source.request.as_of
        self.selected: list[MarkSegment] = []
        self.selection_segment: Group | None = None
        self.builder: SegmentBuilder | None = None
        self._callbacks: list[Callable[[ChartSelection], Any]] = []
        # Built from the spec so that the selection is a top-level parameter, which is what
        # JupyterChart watches (Altair keeps a layer's parameters on the layer in Python).
        self.chart_widget = alt.JupyterChart(_top_level(selectable_spec(chart)))
        self.chart_widget.selections.observe(self._on_vega, [SELECTION])
        self.summary = widgets.HTML(self._summary_html())
        self.summary.add_class("heapseg-selection-summary")
        self.open_button = widgets.Button(
            description="Open in builder",
            tooltip="Edit the selected marks' users as a segment",
            disabled=True,
            layout=widgets.Layout(width="auto"),
        )
        self.open_button.add_class("heapseg-open-selection")
        self.open_button.on_click(lambda _: self.open_in_builder())
        self.builder_box = widgets.VBox()
        bar = widgets.HBox([self.summary, self.open_button])
        bar.add_class("heapseg-selection-bar")
        self.children = [stylesheet(), self.chart_widget, bar, self.builder_box]
        self.observe(self._on_marks, "marks")

    def on_select(self, callback: Callable[[ChartSelection], Any]) -> None:
        """Call ``callback(widget)`` after every change of the selection (also when cleared)."""
        self._callbacks.append(callback)

    def open_in_builder(self) -> SegmentBuilder:
        """Show the selection in a :class:`SegmentBuilder` below the chart (a new one each
        time), and return it."""
        if self.selection_segment is None:
            raise ChartError(self.message or "select one or more marks first")
        self.builder = SegmentBuilder(
            self.dataset, self.catalog, self.selection_segment, as_of=self.as_of
        )
        self.builder_box.children = [self.builder]
        return self.builder

    def _on_vega(self, change: dict) -> None:
        points = getattr(change["new"], "value", None) or []
        fields = MARK_KEYS[source_of(self.chart).kind]
        self.marks = [{k: point[k] for k in fields if k in point} for point in points]

    def _on_marks(self, change: dict) -> None:
        self.message = ""
        try:
            self.selected = [mark_segment(self.chart, **mark) for mark in self.marks]
            self.selection_segment, self.as_of = self._union(self.selected)
            self.count = (
                None
                if self.selection_segment is None
                else self.dataset.count(
                    self.selection_segment, as_of=self.as_of, resolver=self._resolver()
                )
            )
        except HeapsegError as exc:
            self.selected, self.selection_segment, self.count = [], None, None
            self.message = str(exc)
        self.summary.value = self._summary_html()
        self.open_button.disabled = self.selection_segment is None
        for callback in self._callbacks:
            callback(self)

    def _union(self, selected: list[MarkSegment]) -> tuple[Group | None, Any]:
        if not selected:
            return None, source_of(self.chart).request.as_of
        moments = {s.as_of for s in selected}
        if len(moments) > 1:
            raise ChartError(
                "these points hold users at different moments; select points of one moment"
            )
        if len(selected) == 1:
            return selected[0].segment, selected[0].as_of
        return Group("or", tuple(s.segment for s in selected)), selected[0].as_of

    def _resolver(self) -> Any:
        for selected in self.selected:
            if selected.resolver is not None:
                return selected.resolver
        return None

    def _summary_html(self) -> str:
        if self.message:
            return f'<span class="heapseg-message-error">{escape(self.message)}</span>'
        if self.selection_segment is None:
            return (
                '<span class="heapseg-selection-empty">Click a mark (shift-click for more)</span>'
            )
        n = len(self.selected)
        what = escape(self.selected[0].name) if n == 1 else f"{n} marks"
        return (
            f'<span class="heapseg-selection-count">{self.count:,}</span> users · {what}'
            f' <span class="heapseg-row-count">as of {self.as_of:%Y-%m-%d %H:%M} UTC</span>'
        )


def select(chart: Any, dataset: Any = None, catalog: Any = None) -> ChartSelection:
    """The chart as a :class:`ChartSelection`: click marks to get their users as a segment."""
    return ChartSelection(chart, dataset, catalog)
