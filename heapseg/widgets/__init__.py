"""ipywidgets for analysts: the segment builder, the catalog browser and chart selections."""

from __future__ import annotations

from heapseg.widgets.browser import CatalogBrowser
from heapseg.widgets.builder import SegmentBuilder
from heapseg.widgets.selection import ChartSelection, select

__all__ = ["CatalogBrowser", "ChartSelection", "SegmentBuilder", "select"]
