"""The builder's row kinds: each kind names the node class that shows it, registered by its module."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from heapseg.model import EventRule, FunnelRule, Group, PropertyRule, SegmentRule
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.node import Node

__all__ = ["RowKind", "add_label", "kind_of", "kinds", "make_node", "register"]

N = TypeVar("N", bound=type[Node])


@dataclass(frozen=True)
class RowKind:
    """A rule kind the builder can show: the node class, and the text of its "+" button."""

    node: type[Node]
    label: str


# Filled as the row modules (and group.py) are imported: heapseg.widgets.rows imports them all.
_KINDS: dict[str, RowKind] = {}


def register(**labels: str) -> Callable[[N], N]:
    """Class decorator: the class shows the rule kinds named by the keywords.

    Each keyword's value is the text of the button that adds one (``event="Event"`` gives
    "+ Event"). The class makes its nodes with :meth:`Node.new`, so a group adds one
    without importing the module that defines it.
    """

    def decorate(cls: N) -> N:
        for kind, label in labels.items():
            _KINDS[kind] = RowKind(cls, label)
        return cls

    return decorate


def kinds() -> tuple[str, ...]:
    """The rule kinds registered so far."""
    return tuple(_KINDS)


def _row_kind(kind: str) -> RowKind:
    found = _KINDS.get(kind)
    if found is None:
        raise ValueError(f"unknown rule kind {kind!r}; valid: {', '.join(kinds())}")
    return found


def make_node(kind: str, choices: DataChoices, rule_kinds: Sequence[str]) -> Node:
    """A new, empty row (or group) of ``kind``, inside a group that offers ``rule_kinds``."""
    return _row_kind(kind).node.new(kind, choices, rule_kinds)


def add_label(kind: str) -> str:
    """The text of the button that adds a row of ``kind`` ("Event" for "+ Event")."""
    return _row_kind(kind).label


def kind_of(model: Any) -> str:
    """The row kind that shows a model object."""
    if isinstance(model, Group):
        return "group"
    if isinstance(model, EventRule):
        return "event"
    if isinstance(model, FunnelRule):
        return "funnel"
    if isinstance(model, SegmentRule):
        return "segment"
    if isinstance(model, PropertyRule):
        return model.kind
    raise TypeError(f"not a rule or group: {model!r}")
