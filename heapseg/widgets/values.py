"""Value inputs that fit a property's type and an operator: pickers, numbers, dates, lists, N units."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import ipywidgets as widgets
import traitlets

from heapseg.model import UNITS
from heapseg.widgets.choices import UNIT_LABELS, value_kind

__all__ = ["ValueInput", "scalar_input"]

_UNIT_OPTIONS = [(UNIT_LABELS[u], u) for u in UNITS]


def _small(width: str = "9em") -> widgets.Layout:
    return widgets.Layout(width=width)


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return None


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None


class _Scalar:
    """One scalar input: the widget, how to read it as JSON and how to fill it."""

    def __init__(
        self, widget: widgets.Widget, read: Callable[[], Any], write: Callable[[Any], None]
    ) -> None:
        self.widget = widget
        self.read = read
        self.write = write


def scalar_input(family: str, suggestions: list | None = None, complete: bool = False) -> _Scalar:
    """An input for one value of a column of type ``family`` (see ``choices.type_family``)."""
    if family in ("integer", "float"):
        box = (widgets.IntText if family == "integer" else widgets.FloatText)(
            value=0, layout=_small("8em")
        )
        box.add_class("heapseg-number")

        def write_number(v: Any) -> None:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                box.value = int(v) if family == "integer" else float(v)

        return _Scalar(box, lambda: box.value, write_number)
    if family == "boolean":
        pick = widgets.Dropdown(options=[("true", True), ("false", False)], layout=_small("7em"))
        pick.add_class("heapseg-boolean")

        def write_bool(v: Any) -> None:
            if isinstance(v, bool):
                pick.value = v

        return _Scalar(pick, lambda: pick.value, write_bool)
    if family in ("date", "timestamp"):
        picker = widgets.DatePicker(layout=_small("11em"))
        picker.add_class("heapseg-date")

        def write_date(v: Any) -> None:
            picker.value = _date_of(v)

        return _Scalar(picker, lambda: _iso(picker.value), write_date)
    strings = [str(v) for v in (suggestions or [])]
    combo = widgets.Combobox(
        options=strings,
        ensure_option=False,
        placeholder="value" if not complete else "pick a value",
        layout=_small("12em"),
    )
    combo.add_class("heapseg-text-value")

    def write_text(v: Any) -> None:
        combo.value = "" if v is None else str(v)

    return _Scalar(combo, lambda: combo.value or None, write_text)


class ValueInput(widgets.HBox):
    """The value part of a property rule; its content follows the column's type and the operator.

    ``value`` (and ``unit``, for ``in last`` / ``more than ago``) hold the rule's value as format 1
    writes it (None while nothing is entered). Setting them fills the inputs.
    """

    value = traitlets.Any(None)
    unit = traitlets.Unicode(None, allow_none=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("heapseg-value")
        self._family = "string"
        self._kind = "none"
        self._suggestions: list = []
        self._complete = False
        self._reading = False
        self._read: Callable[[], Any] = lambda: None
        self._write: Callable[[Any], None] = lambda v: None
        self._unit: widgets.Dropdown | None = None

    def configure(self, family: str, operator: str, suggestions: list, complete: bool) -> None:
        """Show the inputs that fit ``family`` and ``operator``, keeping what fits of the value."""
        kind = value_kind(operator)
        same = (
            kind == self._kind
            and family == self._family
            and suggestions == self._suggestions
            and complete == self._complete
        )
        if same:
            return
        old, old_kind = self.value, self._kind
        self._family, self._kind = family, kind
        self._suggestions, self._complete = list(suggestions), complete
        self._build()
        self._fill(_convert(old, old_kind, kind))
        self._changed()

    def set(self, value: Any, unit: str | None = None) -> None:
        """Fill the inputs with a format-1 value (and unit)."""
        self._fill(value, unit)
        self._changed()

    # ------------------------------------------------------------------ inside

    def _build(self) -> None:
        self._unit = None
        kind, family = self._kind, self._family
        if kind == "none":
            self.children = ()
            self._read, self._write = (lambda: None), (lambda v: None)
            return
        if kind == "list":
            self._build_list()
        elif kind == "pair":
            self._build_pair()
        elif kind == "relative":
            self._build_relative()
        elif kind == "text":
            text = widgets.Text(placeholder="text", layout=_small("14em"))
            text.add_class("heapseg-text-value")
            text.observe(self._on_input, "value")
            self.children = (text,)
            self._read = lambda: text.value or None
            self._write = lambda v: setattr(text, "value", "" if v is None else str(v))
            return
        else:
            one = scalar_input(family, self._suggestions, self._complete)
            one.widget.observe(self._on_input, "value")
            self.children = (one.widget,)
            self._read, self._write = one.read, one.write

    def _build_list(self) -> None:
        family = self._family
        if family in ("integer", "float"):
            cls = widgets.IntsInput if family == "integer" else widgets.FloatsInput
            tags = cls(value=[], layout=_small("20em"))
        else:
            allowed = [str(v) for v in self._suggestions] if self._complete else []
            tags = widgets.TagsInput(value=[], allowed_tags=allowed, layout=_small("20em"))
        tags.add_class("heapseg-list-value")
        tags.observe(self._on_input, "value")
        self.children = (tags,)

        def write(v: Any) -> None:
            items = list(v) if isinstance(v, (list, tuple)) else ([] if v is None else [v])
            if isinstance(tags, widgets.TagsInput):
                items = [str(i) for i in items]
                missing = [i for i in items if tags.allowed_tags and i not in tags.allowed_tags]
                if missing:
                    tags.allowed_tags = [*tags.allowed_tags, *missing]
            else:
                items = [
                    i for i in items if isinstance(i, (int, float)) and not isinstance(i, bool)
                ]
            tags.value = items

        self._read = lambda: list(tags.value) or None
        self._write = write

    def _build_pair(self) -> None:
        low = scalar_input(self._family)
        high = scalar_input(self._family)
        for part in (low, high):
            part.widget.observe(self._on_input, "value")
        self.children = (low.widget, widgets.Label("and"), high.widget)

        def read() -> Any:
            a, b = low.read(), high.read()
            return None if a is None or b is None else [a, b]

        def write(v: Any) -> None:
            if isinstance(v, (list, tuple)) and len(v) == 2:
                low.write(v[0])
                high.write(v[1])

        self._read, self._write = read, write

    def _build_relative(self) -> None:
        amount = widgets.BoundedIntText(value=30, min=0, max=100_000, layout=_small("6em"))
        amount.add_class("heapseg-number")
        unit = widgets.Dropdown(options=_UNIT_OPTIONS, value="day", layout=_small("7em"))
        unit.add_class("heapseg-unit")
        for part in (amount, unit):
            part.observe(self._on_input, "value")
        self._unit = unit
        self.children = (amount, unit)
        self._read = lambda: amount.value
        self._write = lambda v: setattr(amount, "value", v) if isinstance(v, int) else None

    def _fill(self, value: Any, unit: str | None = None) -> None:
        self._reading = True
        try:
            self._write(value)
            if self._unit is not None and unit in UNITS:
                self._unit.value = unit
        finally:
            self._reading = False

    def _on_input(self, change: dict) -> None:
        if not self._reading:
            self._changed()

    def _changed(self) -> None:
        self.unit = self._unit.value if self._unit is not None else None
        self.value = self._read()


def _convert(value: Any, old: str, new: str) -> Any:
    """Carry a value over an operator change when its shape allows it (``=`` to ``in``, ...)."""
    if value is None or old == new:
        return value
    if new == "list":
        return value if isinstance(value, list) else [value]
    if old == "list" and new in ("scalar", "text") and isinstance(value, list) and value:
        return value[0]
    if {old, new} <= {"scalar", "text"}:
        return value
    return None
