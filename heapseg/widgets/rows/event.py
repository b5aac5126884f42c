"""The row of an ``event`` rule: did / did not, how often, an aggregate, a window, filters, then."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets

from heapseg.model import COUNT_OPERATORS, UNITS, EventRule, Group
from heapseg.widgets.choices import (
    AGGREGATE_LABELS,
    DataChoices,
    set_options,
    with_current,
)
from heapseg.widgets.group import GroupBox
from heapseg.widgets.node import Node, fit_width, join_path, label
from heapseg.widgets.registry import register
from heapseg.widgets.window import UNIT_OPTIONS, WindowInputs, number, pick, section

__all__ = ["EventRow"]

MODES_DID = [
    ("at least once", "once"),
    ("a number of times", "count"),
    ("for the first time", "first"),
    ("followed by", "then"),
]
MODES_DID_NOT = [("at all", "once"), ("followed by", "then")]
PERIODS = [("times", ""), *((f"different {u}s", u) for u in UNITS)]


def _w(width: str) -> widgets.Layout:
    return widgets.Layout(width=width)


def _show(box: widgets.Widget, visible: bool) -> None:
    box.layout.display = "" if visible else "none"


@register(event="Event")
class EventRow(Node):
    """An event rule, as Heap and Amplitude phrase it: "did Session more than 5 times in the last
    30 days where path contains /pricing".

    Attributes
    ----------
    did : ipywidgets.Dropdown
        ``did`` or ``did not do``.
    event : ipywidgets.Combobox
        The event name, with the data's event names offered (a name not seen yet is allowed).
    mode : ipywidgets.Dropdown
        ``once`` (at least once / at all), ``count``, ``first`` (first time) or ``then``.
    count_operator, count_value, count_high, count_per
        The count comparison; ``count_per`` counts distinct hours/days/weeks/months.
    window : ipywidgets.Dropdown
        ``any``, ``last`` (in the last ``last_n`` ``last_unit``), ``ago`` (between
        ``ago_from`` and ``ago_to`` ``ago_unit`` ago) or ``range`` (``date_from``, ``date_to``).
    with_aggregate : ipywidgets.Checkbox
        Adds ``agg_fn`` of ``agg_field`` compared by ``agg_operator`` with ``agg_value``.
    where : GroupBox
        Filters on event properties.
    then_event, then_within, then_n, then_unit, then_where
        The second step of a sequence.
    """

    kind = "event"

    def __init__(self, choices: DataChoices, **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        self.add_class("heapseg-rule")
        self.add_class("heapseg-rule-event")
        names = choices.event_names()
        self._build_event(names)
        self._build_count()
        self._build_window()
        self._build_aggregate()
        self._build_then(names)
        self._build_where()
        self._listen()
        self.children = self._lay_out()
        self._arrange()

    # ------------------------------------------------------------------ the inputs

    def _build_event(self, names: list[str]) -> None:
        """did / did not do, the event, and the mode (once, a number of times, first, then)."""
        self.did = pick([("did", True), ("did not do", False)], True, "heapseg-did")
        self.event = widgets.Combobox(
            options=names,
            value=names[0] if names else "",
            ensure_option=False,
            placeholder="event name",
            layout=_w("14em"),
        )
        self.event.add_class("heapseg-event")
        self.mode = pick(MODES_DID, "once", "heapseg-mode", fit_width(MODES_DID + MODES_DID_NOT))

    def _build_count(self) -> None:
        """How often: an operator, one or two numbers, times or distinct periods."""
        self.count_operator = pick(list(COUNT_OPERATORS), ">=", "heapseg-count-operator")
        self.count_value = number(1, "heapseg-count-value")
        self.count_high = number(10, "heapseg-count-high")
        self.count_per = pick(PERIODS, "", "heapseg-count-per")
        self.count_and = label("and")
        self.count_box = section(
            [
                self.count_operator,
                self.count_value,
                self.count_and,
                self.count_high,
                self.count_per,
            ],
            "heapseg-count-box",
        )

    def _build_window(self) -> None:
        """When: at any time, in the last n units, between n and m units ago, or dates; its
        inputs sit on the rule's line, with the names the row has always given them."""
        self.when = WindowInputs("heapseg", form_css="heapseg-window")
        self.window = self.when.form
        self.last_n, self.last_unit, self.last_box = (
            self.when.last_n,
            self.when.last_unit,
            self.when.last_box,
        )
        self.ago_from, self.ago_to, self.ago_unit, self.ago_box = (
            self.when.ago_from,
            self.when.ago_to,
            self.when.ago_unit,
            self.when.ago_box,
        )
        self.date_from, self.date_to, self.range_box = (
            self.when.date_from,
            self.when.date_to,
            self.when.range_box,
        )
        self.exact = self.when.exact

    def _build_aggregate(self) -> None:
        """With aggregate: a function of an event property compared with one or two numbers."""
        self.with_aggregate = widgets.Checkbox(
            value=False, description="with aggregate", indent=False, layout=_w("12em")
        )
        self.with_aggregate.add_class("heapseg-with-aggregate")
        fns = [(text, fn) for fn, text in AGGREGATE_LABELS.items()]
        self.agg_fn = pick(fns, "sum", "heapseg-agg-fn")
        # As wide as the longest property any function may list ("distinct values" lists text
        # properties too), so that switching functions neither cuts a name nor moves the row.
        widest = fit_width(["property", *self.choices.aggregate_fields("count_distinct")])
        self.agg_field = pick(
            self.choices.aggregate_fields("sum"), None, "heapseg-agg-field", widest
        )
        self.agg_operator = pick(list(COUNT_OPERATORS), ">=", "heapseg-agg-operator")
        self.agg_value = widgets.FloatText(value=0, layout=_w("7em"))
        self.agg_value.add_class("heapseg-agg-value")
        self.agg_high = widgets.FloatText(value=100, layout=_w("7em"))
        self.agg_high.add_class("heapseg-agg-high")
        self.agg_and = label("and")
        self.agg_parts = section(
            [
                self.agg_fn,
                label("of"),
                self.agg_field,
                self.agg_operator,
                self.agg_value,
                self.agg_and,
                self.agg_high,
            ],
            "heapseg-agg-parts",
        )
        self.aggregate_box = section([self.with_aggregate, self.agg_parts], "heapseg-aggregate")

    def _build_then(self, names: list[str]) -> None:
        """The second step of a sequence: then an event, optionally within n units."""
        self.then_event = widgets.Combobox(
            options=names,
            value="",
            ensure_option=False,
            placeholder="then event",
            layout=_w("14em"),
        )
        self.then_event.add_class("heapseg-then-event")
        self.then_within = widgets.Checkbox(
            value=False, description="within", indent=False, layout=_w("5.5em")
        )
        self.then_within.add_class("heapseg-then-within")
        self.then_n = number(1, "heapseg-then-n")
        self.then_unit = pick(UNIT_OPTIONS, "day", "heapseg-then-unit")
        self.then_box = section(
            [self.then_event, self.then_within, self.then_n, self.then_unit], "heapseg-then-box"
        )

    def _build_where(self) -> None:
        """The filters on event properties, of the event and of the then event."""
        self.where = GroupBox(
            self.choices, rule_kinds=("event_property",), root=True, title="where"
        )
        self.where.add_class("heapseg-where")
        self.then_where = GroupBox(
            self.choices, rule_kinds=("event_property",), root=True, title="then where"
        )
        self.then_where.add_class("heapseg-then-where")
        for group in (self.where, self.then_where):
            group.on_change = self.emit

    def _listen(self) -> None:
        # Inputs that change which other inputs apply re-arrange the row; the rest only emit.
        for widget in (
            self.did,
            self.mode,
            self.window,
            self.with_aggregate,
            self.count_operator,
            self.agg_fn,
            self.agg_operator,
            self.then_within,
        ):
            widget.observe(self._on_shape, "value")
        for widget in (
            self.event,
            self.count_value,
            self.count_high,
            self.count_per,
            *self.when.inputs[1:],  # the form re-arranges the row (above)
            self.agg_field,
            self.agg_value,
            self.agg_high,
            self.then_event,
            self.then_n,
            self.then_unit,
        ):
            widget.observe(self.emit, "value")

    def _lay_out(self) -> tuple[widgets.Box, widgets.Box]:
        """One wrapping line for the rule, then its aggregate and filters indented below it."""
        first = widgets.HBox(
            [
                label("Event", "heapseg-kind", "5.5em"),
                self.did,
                self.event,
                self.mode,
                self.count_box,
                self.then_box,
                self.window,
                self.last_box,
                self.ago_box,
                self.range_box,
                self.status,
                self.controls,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        details = widgets.VBox(
            [self.aggregate_box, self.where, self.then_where],
            layout=widgets.Layout(padding="0 0 0 5.5em"),
        )
        return first, details

    # ------------------------------------------------------------------ showing what applies

    def _on_shape(self, change: dict) -> None:
        if self._filling:
            return
        self._arrange()
        self.emit()

    def _arrange(self) -> None:
        """Show the inputs that apply to the current choices (and keep mode valid for did)."""
        did = bool(self.did.value)
        modes = MODES_DID if did else MODES_DID_NOT
        if list(self.mode.options) != modes:
            keep = self.mode.value if self.mode.value in dict(modes).values() else "once"
            was = self._filling
            self._filling = True
            try:
                self.mode.options = modes
                self.mode.value = keep
            finally:
                self._filling = was
        mode = self.mode.value
        _show(self.count_box, mode == "count")
        between = self.count_operator.value == "between"
        _show(self.count_and, between)
        _show(self.count_high, between)
        _show(self.then_box, mode == "then")
        _show(self.then_where, mode == "then")
        _show(self.then_n, self.then_within.value)
        _show(self.then_unit, self.then_within.value)
        self.when.arrange()
        _show(self.aggregate_box, did and mode != "then")
        _show(self.agg_parts, bool(self.with_aggregate.value))
        agg_between = self.agg_operator.value == "between"
        _show(self.agg_and, agg_between)
        _show(self.agg_high, agg_between)
        fields = self.choices.aggregate_fields(self.agg_fn.value)
        if list(self.agg_field.options) != fields:
            current = self.agg_field.value
            set_options(self.agg_field, fields, current if current in fields else None)

    # ------------------------------------------------------------------ the rule

    def to_dict(self) -> dict:
        did = bool(self.did.value)
        mode = self.mode.value
        out: dict[str, Any] = {"kind": "event", "event": self.event.value or None, "did": did}
        if did and mode == "count":
            count: dict[str, Any] = {
                "operator": self.count_operator.value,
                "value": self._pair(self.count_operator, self.count_value, self.count_high),
            }
            if self.count_per.value:
                count["unit"] = self.count_per.value
            out["count"] = count
        if did and mode != "then" and self.with_aggregate.value:
            out["aggregate"] = {
                "fn": self.agg_fn.value,
                "field": self.agg_field.value,
                "operator": self.agg_operator.value,
                "value": self._pair(self.agg_operator, self.agg_value, self.agg_high),
            }
        window = self.when.to_dict()
        if window is not None:
            out["window"] = window
        if self.where.nodes:
            out["where"] = self.where.to_dict()
        if did and mode == "first":
            out["first_time"] = True
        if mode == "then":
            then: dict[str, Any] = {"event": self.then_event.value or None}
            if self.then_within.value:
                then["within"] = {"value": self.then_n.value, "unit": self.then_unit.value}
            if self.then_where.nodes:
                then["where"] = self.then_where.to_dict()
            out["then"] = then
        return out

    @staticmethod
    def _pair(operator: widgets.Dropdown, low: widgets.Widget, high: widgets.Widget) -> Any:
        return [low.value, high.value] if operator.value == "between" else low.value

    def set_model(self, model: Any) -> None:
        if not isinstance(model, EventRule):
            raise TypeError(f"an event row shows an EventRule, got {type(model).__name__}")
        self._filling = True
        try:
            self._fill(model)
        finally:
            self._filling = False
        self._arrange()

    def _fill(self, rule: EventRule) -> None:
        names = self.choices.event_names()
        self.event.options = with_current(names, rule.event)
        self.event.value = rule.event or ""
        self.did.value = rule.did
        self._arrange()
        if rule.then is not None:
            mode = "then"
        elif rule.first_time:
            mode = "first"
        elif rule.count is not None:
            mode = "count"
        else:
            mode = "once"
        self.mode.value = mode
        if rule.count is not None:
            self.count_operator.value = rule.count.operator
            self._fill_pair(rule.count.value, self.count_value, self.count_high, int)
            self.count_per.value = rule.count.unit or ""
        self.with_aggregate.value = rule.aggregate is not None
        if rule.aggregate is not None:
            self.agg_fn.value = rule.aggregate.fn
            self._arrange()
            set_options(self.agg_field, self.agg_field.options, rule.aggregate.field)
            self.agg_operator.value = rule.aggregate.comparison.operator
            self._fill_pair(rule.aggregate.comparison.value, self.agg_value, self.agg_high, float)
        self.when.set_model(rule.window)
        self._fill_group(self.where, rule.where)
        if rule.then is not None:
            self.then_event.options = with_current(names, rule.then.event)
            self.then_event.value = rule.then.event or ""
            self.then_within.value = rule.then.within is not None
            if rule.then.within is not None:
                self.then_n.value = rule.then.within.value
                self.then_unit.value = rule.then.within.unit
            self._fill_group(self.then_where, rule.then.where)

    @staticmethod
    def _fill_pair(value: Any, low: widgets.Widget, high: widgets.Widget, cast: type) -> None:
        if isinstance(value, (tuple, list)):
            low.value, high.value = cast(value[0]), cast(value[1])
        else:
            low.value = cast(value)

    @staticmethod
    def _fill_group(group: GroupBox, model: Group | None) -> None:
        group.set_model(model if model is not None else Group("and", ()))

    def walk(self, path: str) -> Iterator[tuple[str, Node]]:
        yield path, self
        yield from self.where.walk(join_path(path, "where"))
        yield from self.then_where.walk(join_path(path, "then.where"))
