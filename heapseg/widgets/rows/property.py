"""The row of a ``user``, ``account`` or ``event_property`` rule: property, operator, value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from heapseg.model import PROPERTY_OPERATORS, PropertyRule
from heapseg.widgets.choices import DataChoices, operators_for, set_options, type_family, value_kind
from heapseg.widgets.node import Node, fit_width, label
from heapseg.widgets.registry import register
from heapseg.widgets.values import ValueInput

__all__ = ["PropertyRow"]

KIND_LABELS = {"user": "User", "account": "Account", "event_property": "where"}
#: Every property operator: the operator dropdown is as wide as the longest.
ALL_OPERATORS = sorted(PROPERTY_OPERATORS)


@register(user="User property", account="Account property", event_property="Filter")
class PropertyRow(Node):
    """A property rule; the operators and the value input follow the chosen property's type.

    Attributes
    ----------
    field, operator : ipywidgets.Dropdown
        The property (named as in the data) and the operator (those that fit its type).
    value : ValueInput
        The value input, rebuilt when the type or the operator asks for another shape.
    """

    def __init__(self, choices: DataChoices, kind: str = "user", **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        self.kind = kind
        self.add_class("heapseg-rule")
        self.add_class(f"heapseg-rule-{kind.replace('_', '-')}")
        names = list(choices.properties(kind))
        # Wide enough for the longest name and operator, so no option is cut off.
        self.field = widgets.Dropdown(
            options=names, layout=widgets.Layout(width=fit_width(names or ["property"]))
        )
        self.field.add_class("heapseg-field")
        self.operator = widgets.Dropdown(layout=widgets.Layout(width=fit_width(ALL_OPERATORS)))
        self.operator.add_class("heapseg-operator")
        self.value = ValueInput()
        self._configure(reset=True)
        self.field.observe(self._on_field, "value")
        self.operator.observe(self._on_operator, "value")
        self.value.observe(self.emit, ["value", "unit"])
        badge = label(KIND_LABELS.get(kind, kind), "heapseg-kind", "5.5em")
        line = widgets.HBox(
            [badge, self.field, self.operator, self.value, self.status, self.controls],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.children = (line,)

    @classmethod
    def new(cls, kind: str, choices: DataChoices, rule_kinds: Sequence[str]) -> PropertyRow:
        return cls(choices, kind)

    def _family(self) -> str:
        return type_family(self.choices.dtype(self.kind, self.field.value or ""))

    def _configure(self, reset: bool) -> None:
        dtype = self.choices.dtype(self.kind, self.field.value or "")
        operators = list(operators_for(dtype)) if dtype is not None else []
        current = self.operator.value if not reset else None
        set_options(self.operator, operators, current if current in operators else None)
        self._configure_value(reset)

    def _configure_value(self, reset: bool) -> None:
        family, op = self._family(), self.operator.value or "="
        suggestions: list = []
        complete = False
        if family == "string" and value_kind(op) in ("scalar", "list") and self.field.value:
            suggestions, complete = self.choices.values(self.kind, self.field.value)
        if reset:
            self.value.set(None)
        self.value.configure(family, op, suggestions, complete)

    def _on_field(self, change: dict) -> None:
        if self._filling:
            return
        self._filling = True
        try:
            self._configure(reset=True)
        finally:
            self._filling = False
        self.emit()

    def _on_operator(self, change: dict) -> None:
        if self._filling:
            return
        self._filling = True
        try:
            self._configure_value(reset=False)
        finally:
            self._filling = False
        self.emit()

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "kind": self.kind,
            "field": self.field.value,
            "operator": self.operator.value,
        }
        kind = value_kind(self.operator.value or "")
        if kind != "none":
            out["value"] = self.value.value
        if kind == "relative":
            out["unit"] = self.value.unit
        return out

    def set_model(self, model: Any) -> None:
        if not isinstance(model, PropertyRule):
            raise TypeError(f"a property row shows a PropertyRule, got {type(model).__name__}")
        self._filling = True
        try:
            set_options(self.field, list(self.choices.properties(self.kind)), model.field)
            self._configure(reset=True)
            set_options(self.operator, self.operator.options, model.operator)
            self._configure_value(reset=False)
            value = list(model.value) if isinstance(model.value, tuple) else model.value
            self.value.set(value, model.unit)
        finally:
            self._filling = False
