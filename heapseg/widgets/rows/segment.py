"""The row of a ``segment`` rule: in / not in another saved segment of the catalog."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from heapseg.model import SegmentRule
from heapseg.widgets.choices import DataChoices, set_options
from heapseg.widgets.node import Node, fit_width, label
from heapseg.widgets.registry import register

__all__ = ["SegmentRow"]


@register(segment="Segment")
class SegmentRow(Node):
    """Membership of a saved segment, picked by name among the catalog's segments.

    Attributes
    ----------
    member : ipywidgets.Dropdown
        ``in`` (True) or ``not in`` (False).
    segment : ipywidgets.Dropdown
        The segment, labelled by name, valued by id.
    """

    kind = "segment"

    def __init__(self, choices: DataChoices, **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        self.add_class("heapseg-rule")
        self.add_class("heapseg-rule-segment")
        self.member = widgets.Dropdown(
            options=[("in", True), ("not in", False)],
            value=True,
            layout=widgets.Layout(width="6em"),
        )
        self.member.add_class("heapseg-member")
        options = choices.segments()
        self.segment = widgets.Dropdown(
            options=options,
            value=options[0][1] if options else None,
            layout=widgets.Layout(width=fit_width(options or ["segment"])),
        )
        self.segment.add_class("heapseg-segment-pick")
        self.member.observe(self.emit, "value")
        self.segment.observe(self.emit, "value")
        line = widgets.HBox(
            [
                label("Segment", "heapseg-kind", "5.5em"),
                self.member,
                self.segment,
                self.status,
                self.controls,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.children = (line,)

    def to_dict(self) -> dict:
        return {"kind": "segment", "id": self.segment.value, "in": bool(self.member.value)}

    def set_model(self, model: Any) -> None:
        if not isinstance(model, SegmentRule):
            raise TypeError(f"a segment row shows a SegmentRule, got {type(model).__name__}")
        self._filling = True
        try:
            set_options(self.segment, self.choices.segments(), model.id)
            self.member.value = model.member
        finally:
            self._filling = False
