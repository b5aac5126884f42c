"""A group of the builder: And / Or, not, its rules and nested groups, and the buttons that add them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ipywidgets as widgets

from heapseg.model import Group
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.node import Node, join_path, label
from heapseg.widgets.registry import add_label, kind_of, make_node, register

__all__ = ["RULE_KINDS", "GroupBox"]

RULE_KINDS = ("user", "account", "event", "funnel", "segment")


@register(group="Group")
class GroupBox(Node):
    """Rules and nested groups combined with And / Or, optionally negated.

    Attributes
    ----------
    combinator : ipywidgets.ToggleButtons
        ``and`` or ``or``.
    negate : ipywidgets.Checkbox
        Format 1's ``not``: select the users the group would not select.
    items : ipywidgets.VBox
        The rows and nested groups, in order.
    add_buttons : dict[str, ipywidgets.Button]
        One button per kind that can be added here (``group`` included).
    """

    kind = "group"

    def __init__(
        self,
        choices: DataChoices,
        *,
        rule_kinds: Sequence[str] = RULE_KINDS,
        root: bool = False,
        title: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(choices, **kwargs)
        self.rule_kinds = tuple(rule_kinds)
        self.root = root
        self.add_class("heapseg-group")
        if root:
            self.add_class("heapseg-root")
        self.combinator = widgets.ToggleButtons(
            options=[("And", "and"), ("Or", "or")],
            value="and",
            style={"button_width": "4em"},
        )
        self.combinator.add_class("heapseg-combinator")
        self.negate = widgets.Checkbox(
            value=False, description="not", indent=False, layout=widgets.Layout(width="4.5em")
        )
        self.negate.add_class("heapseg-not")
        self.combinator.observe(self.emit, "value")
        self.negate.observe(self.emit, "value")
        self.items = widgets.VBox(
            layout=widgets.Layout(border_left="3px solid #c8d3e0", padding="0 0 0 8px")
        )
        self.items.add_class("heapseg-items")
        self.add_buttons: dict[str, widgets.Button] = {}
        filters = self.rule_kinds == ("event_property",)
        for kind in (*self.rule_kinds, "group"):
            text = "Filter group" if filters and kind == "group" else add_label(kind)
            button = widgets.Button(
                description=f"+ {text}",
                layout=widgets.Layout(width="auto"),
                tooltip=f"Add {text.lower()}",
            )
            button.add_class(f"heapseg-add-{kind.replace('_', '-')}")
            button.on_click(lambda _, k=kind: self.add(k))
            self.add_buttons[kind] = button
        self._hide_unavailable()
        head = [label(title, "heapseg-group-title")] if title else []
        self.header = widgets.HBox(
            [*head, self.combinator, self.negate, self.status] + ([] if root else [self.controls]),
            layout=widgets.Layout(align_items="center"),
        )
        self.footer = widgets.HBox(list(self.add_buttons.values()))
        self.footer.add_class("heapseg-add")
        self.children = (self.header, self.items, self.footer)
        self._layout()

    @classmethod
    def new(cls, kind: str, choices: DataChoices, rule_kinds: Sequence[str]) -> GroupBox:
        return cls(choices, rule_kinds=rule_kinds)

    def _hide_unavailable(self) -> None:
        if "account" in self.add_buttons and not self.choices.has_accounts:
            self.add_buttons["account"].layout.display = "none"
        if "segment" in self.add_buttons and self.choices.catalog is None:
            self.add_buttons["segment"].layout.display = "none"

    def _layout(self) -> None:
        # A where-filter group with no filter yet shows only its add buttons.
        quiet = "event_property" in self.rule_kinds and not self.items.children
        self.header.layout.display = "none" if quiet else ""
        self.items.layout.display = "none" if not self.items.children else ""

    # ------------------------------------------------------------------ editing

    @property
    def nodes(self) -> list[Node]:
        """The rows and nested groups, in order."""
        return list(self.items.children)

    def add(self, kind: str, model: Any = None) -> Node:
        """Add a row (or a nested group, ``kind="group"``) at the end; returns it."""
        node = make_node(kind, self.choices, self.rule_kinds)
        if model is not None:
            node.set_model(model)
        node.parent = self
        node.on_change = self.emit
        self.items.children = (*self.items.children, node)
        self._layout()
        self.emit()
        return node

    def remove_child(self, node: Node) -> None:
        """Take a row or group out."""
        self.items.children = tuple(c for c in self.items.children if c is not node)
        node.parent = None
        node.on_change = None
        self._layout()
        self.emit()

    def move(self, node: Node, delta: int) -> None:
        """Move a row or group up (``-1``) or down (``+1``) among its siblings."""
        items = list(self.items.children)
        index = items.index(node)
        target = index + delta
        if not 0 <= target < len(items):
            return
        items[index], items[target] = items[target], items[index]
        self.items.children = tuple(items)
        self.emit()

    # ------------------------------------------------------------------ the tree

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"combinator": self.combinator.value}
        if self.negate.value:
            out["not"] = True
        out["rules"] = [node.to_dict() for node in self.nodes]
        return out

    def set_model(self, model: Any) -> None:
        if not isinstance(model, Group):
            raise TypeError(f"a group shows a Group, got {type(model).__name__}")
        self._filling = True
        try:
            self.combinator.value = model.combinator
            self.negate.value = model.negate
            for node in self.nodes:
                node.parent = None
                node.on_change = None
            self.items.children = ()
            for rule in model.rules:
                self.add(kind_of(rule), rule)
        finally:
            self._filling = False
        self._layout()

    def walk(self, path: str) -> Iterator[tuple[str, Node]]:
        yield path, self
        for i, node in enumerate(self.nodes):
            yield from node.walk(join_path(join_path(path, "rules"), i))
