"""The row of a ``funnel`` rule: ordered steps, a time limit, the entry window, the step reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets

from heapseg.model import FunnelRule, Group
from heapseg.widgets.choices import DataChoices, with_current
from heapseg.widgets.group import GroupBox
from heapseg.widgets.node import Node, icon_button, join_path, label
from heapseg.widgets.registry import register
from heapseg.widgets.window import UNIT_OPTIONS, WindowInputs, number, pick

__all__ = ["FunnelRow", "FunnelStepInputs"]

#: "reached" this value: the users who completed every step (format 1's default).
COMPLETED = 0
#: "but not" this value: no step the users must have missed.
NO_STEP = 0


class FunnelStepInputs(widgets.VBox):
    """One step: its number, the event, a button that removes it, and filters on its events.

    Attributes
    ----------
    event : ipywidgets.Combobox
        The step's event name (names the data has are offered; a new name is allowed).
    where : GroupBox
        Conditions on the step's event properties.
    remove : ipywidgets.Button
        Takes the step out (disabled while the funnel has only two steps).
    """

    def __init__(self, choices: DataChoices, names: list[str], event: str = "") -> None:
        super().__init__()
        self.add_class("heapseg-funnel-step")
        self.number = label("1.", "heapseg-funnel-step-number", "2em")
        self.event = widgets.Combobox(
            options=names,
            value=event,
            ensure_option=False,
            placeholder="event name",
            layout=widgets.Layout(width="14em"),
        )
        self.event.add_class("heapseg-funnel-event")
        self.remove = icon_button("times", "Remove this step", "heapseg-funnel-remove-step")
        self.where = GroupBox(choices, rule_kinds=("event_property",), root=True, title="where")
        self.where.add_class("heapseg-funnel-where")
        line = widgets.HBox(
            [self.number, self.event, self.remove], layout=widgets.Layout(align_items="center")
        )
        self.where.layout.padding = "0 0 0 2em"
        self.children = (line, self.where)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"event": self.event.value or None}
        if self.where.nodes:
            out["where"] = self.where.to_dict()
        return out


@register(funnel="Funnel")
class FunnelRow(Node):
    """A funnel rule: "reached step 2 (Add to Cart) but not step 3 of Session → Add to Cart →
    Completed Order within 7 days, entering in the last 30 days".

    The same rule as the bars of :func:`heapseg.charts.funnel`: a bar, or the drop-off between
    two, becomes a row of the builder.

    Attributes
    ----------
    steps : list[FunnelStepInputs]
        The steps, in order (at least two); :meth:`add_step` and :meth:`remove_step` edit them.
    add_step_button : ipywidgets.Button
        Adds a step at the end.
    reached : ipywidgets.Dropdown
        The step reached: ``0`` for "completed" (every step), else a step number.
    not_reached : ipywidgets.Dropdown
        A later step not reached (``0``: none); offered only after ``reached``.
    with_within, within_n, within_unit
        The time limit from entering (step 1) to the later steps.
    window : WindowInputs
        When users enter the funnel.
    """

    kind = "funnel"

    def __init__(self, choices: DataChoices, **kwargs: Any) -> None:
        super().__init__(choices, **kwargs)
        self.add_class("heapseg-rule")
        self.add_class("heapseg-rule-funnel")
        self._names = choices.event_names()
        self.reached = pick([("completed", COMPLETED)], COMPLETED, "heapseg-funnel-reached", "16em")
        self.not_reached = pick([("—", NO_STEP)], NO_STEP, "heapseg-funnel-not-reached", "16em")
        self.but_not = label("but not")
        self.with_within = widgets.Checkbox(
            value=True, description="within", indent=False, layout=widgets.Layout(width="5.5em")
        )
        self.with_within.add_class("heapseg-funnel-within")
        self.within_n = number(7, "heapseg-funnel-within-n")
        self.within_unit = pick(UNIT_OPTIONS, "day", "heapseg-funnel-within-unit")
        self.window = WindowInputs("heapseg-funnel-window")
        self.window.form.value = "last"
        self.steps: list[FunnelStepInputs] = []
        self.steps_box = widgets.VBox()
        self.steps_box.add_class("heapseg-funnel-steps")
        self.add_step_button = widgets.Button(
            description="+ Step", layout=widgets.Layout(width="auto"), tooltip="Add a step"
        )
        self.add_step_button.add_class("heapseg-funnel-add-step")
        self.add_step_button.on_click(lambda _: self.add_step())
        first = widgets.HBox(
            [
                label("Funnel", "heapseg-kind", "5.5em"),
                label("reached"),
                self.reached,
                self.but_not,
                self.not_reached,
                self.with_within,
                self.within_n,
                self.within_unit,
                label("entering"),
                self.window,
                self.status,
                self.controls,
            ],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        details = widgets.VBox(
            [self.steps_box, self.add_step_button], layout=widgets.Layout(padding="0 0 0 5.5em")
        )
        self.children = (first, details)
        self._listen()
        for name in self._first_names():
            self.add_step(name)

    def _first_names(self) -> list[str]:
        # A new funnel starts as the classic one where the data has its events.
        classic = ["Session", "Add to Cart", "Completed Order"]
        if all(name in self._names for name in classic):
            return classic
        return [*self._names[:2], "", ""][:2]

    def _listen(self) -> None:
        self.reached.observe(self._on_reached, "value")
        for widget in (self.not_reached, self.within_n, self.within_unit):
            widget.observe(self.emit, "value")
        self.with_within.observe(self._on_within, "value")
        self.window.observe_values(self.emit)

    # ------------------------------------------------------------------ steps

    def add_step(self, event: str = "") -> FunnelStepInputs:
        """Add a step at the end (with ``event`` chosen); returns its inputs."""
        step = FunnelStepInputs(self.choices, with_current(self._names, event), event)
        step.event.observe(self._on_step_name, "value")
        step.remove.on_click(lambda _, s=step: self.remove_step(s))
        step.where.on_change = self.emit
        self.steps.append(step)
        self._arrange_steps()
        self.emit()
        return step

    def remove_step(self, step: FunnelStepInputs) -> None:
        """Take a step out (a funnel keeps at least two)."""
        if len(self.steps) <= 2 or step not in self.steps:
            return
        self.steps.remove(step)
        step.where.on_change = None
        self._arrange_steps()
        self.emit()

    def _arrange_steps(self) -> None:
        self.steps_box.children = tuple(self.steps)
        for i, step in enumerate(self.steps, start=1):
            step.number.value = f"{i}."
            step.remove.disabled = len(self.steps) <= 2
        self._offer_steps()

    def _on_step_name(self, _: Any) -> None:
        if self._filling:
            return
        self._offer_steps()
        self.emit()

    def _on_reached(self, _: Any) -> None:
        if self._filling:
            return
        self._offer_steps()
        self.emit()

    def _on_within(self, _: Any) -> None:
        self._arrange()
        self.emit()

    def _step_label(self, k: int) -> str:
        if k == 1:
            return "step 1 (entered)"
        return f"step {k} ({self.steps[k - 1].event.value or '…'})"

    def _offer_steps(self) -> None:
        """The step choices follow the steps: "reached" any but the last (or "completed"),
        "but not" a step after the one reached. A choice that no longer exists is dropped."""
        n = len(self.steps)
        reached = [("completed", COMPLETED)] + [(self._step_label(k), k) for k in range(1, n)]
        was = self._filling
        self._filling = True
        try:
            keep = self.reached.value if self.reached.value in dict(reached).values() else COMPLETED
            self.reached.options = reached
            self.reached.value = keep
            first = keep + 1 if keep else n + 1
            later = [("—", NO_STEP)] + [(self._step_label(m), m) for m in range(first, n + 1)]
            current = self.not_reached.value
            self.not_reached.options = later
            self.not_reached.value = current if current in dict(later).values() else NO_STEP
        finally:
            self._filling = was
        self._arrange()

    def _arrange(self) -> None:
        after = self.reached.value != COMPLETED
        for widget in (self.but_not, self.not_reached):
            widget.layout.display = "" if after else "none"
        for widget in (self.within_n, self.within_unit):
            widget.layout.display = "" if self.with_within.value else "none"

    # ------------------------------------------------------------------ the rule

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"kind": "funnel", "steps": [s.to_dict() for s in self.steps]}
        if self.with_within.value:
            out["within"] = {"value": self.within_n.value, "unit": self.within_unit.value}
        window = self.window.to_dict()
        if window is not None:
            out["window"] = window
        if self.reached.value != COMPLETED:
            out["reached"] = self.reached.value
            if self.not_reached.value != NO_STEP:
                out["not_reached"] = self.not_reached.value
        return out

    def set_model(self, model: Any) -> None:
        if not isinstance(model, FunnelRule):
            raise TypeError(f"a funnel row shows a FunnelRule, got {type(model).__name__}")
        self._filling = True
        try:
            for step in self.steps:
                step.where.on_change = None
            self.steps = []
            for step_model in model.steps:
                step = self.add_step(step_model.event)
                step.where.set_model(
                    step_model.where if step_model.where is not None else Group("and", ())
                )
            self.with_within.value = model.within is not None
            if model.within is not None:
                self.within_n.value = model.within.value
                self.within_unit.value = model.within.unit
            self.window.set_model(model.window)
            last = model.reached == len(model.steps)
            self.reached.value = COMPLETED if last else model.reached
            self._offer_steps()
            self.not_reached.value = model.not_reached or NO_STEP
        finally:
            self._filling = False
        self._arrange()

    def walk(self, path: str) -> Iterator[tuple[str, Node]]:
        yield path, self
        for i, step in enumerate(self.steps):
            yield from step.where.walk(join_path(join_path(join_path(path, "steps"), i), "where"))
