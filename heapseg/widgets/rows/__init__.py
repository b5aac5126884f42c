"""The builder's rule rows, one module per rule kind; importing this package registers them all."""

from __future__ import annotations

from heapseg.widgets.rows.event import EventRow
from heapseg.widgets.rows.funnel import FunnelRow
from heapseg.widgets.rows.property import PropertyRow
from heapseg.widgets.rows.segment import SegmentRow

__all__ = ["EventRow", "FunnelRow", "PropertyRow", "SegmentRow"]
