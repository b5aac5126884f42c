"""Segment colours: one per segment name for the whole session, and the colour encodings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

import altair as alt

from heapseg.charts.common import NEUTRAL, ChartError

__all__ = ["PALETTE", "SegmentColors", "color", "colors", "legend_toggle", "toggled"]

# Tableau's and Vega's categorical colours without their greys: greys mean "everybody else".
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#b279a2",
    "#eeca3b",
    "#72b7b2",
    "#9d755d",
    "#ff9da6",
    "#1f3b73",
    "#a0522d",
    "#2ca02c",
    "#d62728",
    "#8c564b",
    "#17becf",
    "#bcbd22",
)


class SegmentColors:
    """One colour per segment name, kept for the whole notebook session.

    The first chart that shows a segment gives it the next free colour of the palette; every
    later chart shows it in the same colour. ``"All users"`` and ``"Rest"`` are grey.

    Examples
    --------
    >>> palette = SegmentColors()
    >>> palette["Paid"] == palette["Paid"]
    True
    >>> palette.set("Churn risk", "#d62728")
    >>> palette["Churn risk"]
    '#d62728'
    """

    def __init__(
        self, palette: Sequence[str] = PALETTE, neutral: Mapping[str, str] | None = None
    ) -> None:
        if not palette:
            raise ChartError("a palette needs at least one colour")
        self.palette = tuple(palette)
        self.neutral = dict(NEUTRAL if neutral is None else neutral)
        self._assigned: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name in self.neutral:
            return self.neutral[name]
        if name not in self._assigned:
            used = set(self._assigned.values())
            free = [c for c in self.palette if c not in used]
            # Past the palette's end colours repeat, in the same order as the first time.
            self._assigned[name] = (
                free[0] if free else self.palette[len(self._assigned) % len(self.palette)]
            )
        return self._assigned[name]

    def set(self, name: str, color: str) -> None:
        """Give ``name`` a colour of your choice (any CSS colour)."""
        self._assigned[name] = color

    def reset(self) -> None:
        """Forget every assignment (the next charts start the palette again)."""
        self._assigned.clear()

    def assigned(self) -> dict[str, str]:
        """The colours given so far, by segment name."""
        return dict(self._assigned)

    def scale(self, names: Iterable[str]) -> alt.Scale:
        """An Altair colour scale that maps each name to its colour."""
        names = list(names)
        return alt.Scale(domain=names, range=[self[n] for n in names])

    def _repr_html_(self) -> str:
        swatches = "".join(
            f"<span style='display:inline-block;margin-right:1em'>"
            f"<span style='display:inline-block;width:1em;height:1em;background:{c};"
            f"vertical-align:middle'></span> {escape(n)}</span>"
            for n, c in {**self._assigned, **self.neutral}.items()
        )
        return f"<div class='heapseg-colors'>{swatches}</div>"

    def __repr__(self) -> str:
        return f"SegmentColors({self._assigned!r})"


#: The session's registry: every chart uses it unless given ``colors=``.
colors = SegmentColors()


def color(
    names: Sequence[str],
    palette: SegmentColors | None,
    title: str = "Segment",
    legend: bool = True,
    field: str = "segment",
) -> alt.Color:
    """Colour by ``field`` with each name's session colour; the legend lists names in order."""
    scale = (palette or colors).scale(names)
    return alt.Color(
        f"{field}:N",
        scale=scale,
        sort=list(names),
        title=title,
        legend=alt.Legend(
            orient="bottom", columns=min(len(names), 3), labelLimit=280, symbolType="square"
        )
        if legend
        else None,
    )


def legend_toggle(field: str = "segment") -> alt.Parameter:
    """Clicking a legend entry highlights that series; shift-click adds others."""
    return alt.selection_point(fields=[field], bind="legend", name="legend_toggle")


def toggled(selection: alt.Parameter, dim: float = 0.12) -> alt.OpacityValue:
    """Full opacity for the selected series (all when none is selected), faint for the others.

    Built as the channel object itself: Altair turns a plain condition (what ``alt.when``
    gives) into one by looking its class up in the whole Vega-Lite schema, tens of
    milliseconds per encoding.
    """
    condition = alt.when(selection).then(alt.value(1.0)).otherwise(alt.value(dim))
    return alt.OpacityValue(**condition)
