"""ipywidgets for analysts: the segment builder and the catalog browser."""

from __future__ import annotations

from heapseg.widgets.browser import CatalogBrowser
from heapseg.widgets.builder import SegmentBuilder

__all__ = ["CatalogBrowser", "SegmentBuilder"]
