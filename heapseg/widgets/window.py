"""A rule's time window as inputs: at any time, in the last n units, n to m units ago, or dates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from heapseg.model import UNITS, LastWindow, RangeWindow
from heapseg.widgets.choices import UNIT_LABELS
from heapseg.widgets.node import fit_width, label
from heapseg.widgets.values import _date_of, _iso

__all__ = ["UNIT_OPTIONS", "WINDOWS", "ExactDates", "WindowInputs", "number", "pick", "section"]

WINDOWS = [
    ("at any time", "any"),
    ("in the last", "last"),
    ("between … and … ago", "ago"),
    ("between dates", "range"),
]
UNIT_OPTIONS = [(UNIT_LABELS[u], u) for u in UNITS]


def number(value: int, css: str, width: str = "6em", minimum: int = 0) -> widgets.BoundedIntText:
    """A whole-number input with a CSS class to find it by."""
    box = widgets.BoundedIntText(
        value=value, min=minimum, max=1_000_000_000, layout=widgets.Layout(width=width)
    )
    box.add_class(css)
    return box


def pick(options: list, value: Any, css: str, width: str | None = None) -> widgets.Dropdown:
    """A dropdown wide enough for its longest option (or ``width``)."""
    out = widgets.Dropdown(
        options=options, value=value, layout=widgets.Layout(width=width or fit_width(options))
    )
    out.add_class(css)
    return out


def section(children: list, css: str) -> widgets.HBox:
    """Inputs on one centred line, with a CSS class to find them by."""
    box = widgets.HBox(children, layout=widgets.Layout(align_items="center"))
    box.add_class(css)
    return box


class ExactDates:
    """The date pickers of a ``from`` / ``to`` window, and the bounds they cannot hold.

    A bound with a time of day (a chart's mark: an hour, the instant at ``as_of``) shows its
    date in the picker and its time in :attr:`times` beside it, and is kept to the
    microsecond while the picker's date is unchanged; another date is that day at midnight.
    """

    def __init__(self, date_from: widgets.DatePicker, date_to: widgets.DatePicker, css: str):
        self.pickers = {"from": date_from, "to": date_to}
        self.exact: dict[str, str | None] = {"from": None, "to": None}
        self.times = widgets.HTML("")
        self.times.add_class(f"{css}-times")
        for picker in self.pickers.values():
            picker.observe(lambda _: self.show(), "value")

    def fill(self, window: RangeWindow) -> None:
        """Show ``window``'s bounds."""
        self.exact = {"from": window.start, "to": window.end}
        self.pickers["from"].value = _date_of(window.start)
        self.pickers["to"].value = _date_of(window.end)
        self.show()

    def bound(self, key: str) -> str | None:
        """The ``from`` or ``to`` bound as format 1 writes it (None: not set)."""
        picked, exact = self.pickers[key].value, self.exact[key]
        if exact is not None and picked is not None and _date_of(exact) == picked:
            return exact
        return _iso(picked)

    def to_dict(self) -> dict[str, str]:
        """The window's bounds as format 1 writes them (an unset bound left out)."""
        bounds = {"from": self.bound("from"), "to": self.bound("to")}
        return {k: v for k, v in bounds.items() if v is not None}

    def show(self) -> None:
        """Say the bounds' times of day, if any."""
        parts = []
        for key, word in (("from", "from"), ("to", "to before")):
            bound = self.bound(key)
            time = bound.split("T", 1)[1] if bound is not None and "T" in bound else ""
            if time.strip("0:."):  # not a midnight
                parts.append(f"{word} {time}")
        self.times.value = f"({', '.join(parts)} UTC)" if parts else ""


class WindowInputs(widgets.HBox):
    """The window of format 1 as a dropdown and the inputs of the chosen form.

    "between 30 and 120 days ago" is format 1's ``{"last": 90, "unit": "day", "offset": 30}``;
    "between dates" is ``from`` (included) and ``to`` (excluded), either one optional. A bound
    with a time of day (a chart's mark: an hour, an instant at ``as_of``) shows its date in the
    picker and its time beside it, and is kept to the microsecond while the date is unchanged.

    Attributes
    ----------
    form : ipywidgets.Dropdown
        ``any``, ``last``, ``ago`` or ``range``.
    last_n, last_unit, ago_from, ago_to, ago_unit, date_from, date_to
        The inputs of each form.
    """

    def __init__(
        self, css: str = "heapseg-window", form_css: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"), **kwargs
        )
        # The inputs' CSS classes are ``css`` and a suffix; the dropdown's is ``form_css``.
        self.form = pick(WINDOWS, "any", form_css or css)
        self.last_n = number(30, f"{css}-last-n", minimum=1)
        self.last_unit = pick(UNIT_OPTIONS, "day", f"{css}-last-unit")
        self.last_box = section([self.last_n, self.last_unit], f"{css}-last-box")
        self.ago_from = number(30, f"{css}-ago-from")
        self.ago_to = number(120, f"{css}-ago-to", minimum=1)
        self.ago_unit = pick(UNIT_OPTIONS, "day", f"{css}-ago-unit")
        self.ago_box = section(
            [
                label("between"),
                self.ago_from,
                label("and"),
                self.ago_to,
                self.ago_unit,
                label("ago"),
            ],
            f"{css}-ago-box",
        )
        self.date_from = widgets.DatePicker(layout=widgets.Layout(width="10.5em"))
        self.date_from.add_class(f"{css}-date-from")
        self.date_to = widgets.DatePicker(layout=widgets.Layout(width="10.5em"))
        self.date_to.add_class(f"{css}-date-to")
        self.exact = ExactDates(self.date_from, self.date_to, css)
        self.range_box = section(
            [label("from"), self.date_from, label("to before"), self.date_to, self.exact.times],
            f"{css}-range-box",
        )
        self.children = (self.form, self.last_box, self.ago_box, self.range_box)
        self.form.observe(lambda _: self.arrange(), "value")
        self.arrange()

    @property
    def inputs(self) -> tuple[widgets.Widget, ...]:
        """Every input whose value is part of the window."""
        return (
            self.form,
            self.last_n,
            self.last_unit,
            self.ago_from,
            self.ago_to,
            self.ago_unit,
            self.date_from,
            self.date_to,
        )

    def observe_values(self, callback: Callable[..., None]) -> None:
        """Call ``callback`` on every change of any of the inputs."""
        for widget in self.inputs:
            widget.observe(callback, "value")

    def arrange(self) -> None:
        """Show the inputs of the chosen form only."""
        for box, form in (
            (self.last_box, "last"),
            (self.ago_box, "ago"),
            (self.range_box, "range"),
        ):
            box.layout.display = "" if self.form.value == form else "none"

    def to_dict(self) -> dict | None:
        """The format-1 window the inputs spell (None: at any time); not validated."""
        if self.form.value == "last":
            return {"last": self.last_n.value, "unit": self.last_unit.value}
        if self.form.value == "ago":
            start, end = self.ago_from.value, self.ago_to.value
            out: dict[str, Any] = {"last": end - start, "unit": self.ago_unit.value}
            if start:
                out["offset"] = start
            return out
        if self.form.value == "range":
            return self.exact.to_dict()
        return None

    def set_model(self, window: LastWindow | RangeWindow | None) -> None:
        """Fill the inputs from a model window (None: at any time)."""
        if isinstance(window, LastWindow) and window.offset:
            self.form.value = "ago"
            self.ago_from.value = window.offset
            self.ago_to.value = window.offset + window.last
            self.ago_unit.value = window.unit
        elif isinstance(window, LastWindow):
            self.form.value = "last"
            self.last_n.value = window.last
            self.last_unit.value = window.unit
        elif isinstance(window, RangeWindow):
            self.form.value = "range"
            self.exact.fill(window)
        else:
            self.form.value = "any"
        self.arrange()
