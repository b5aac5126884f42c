"""What every row and group of the builder shares: its status line, move/remove buttons, change signal."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from html import escape
from typing import Any, Protocol

import ipywidgets as widgets

from heapseg.widgets.choices import DataChoices

__all__ = ["STATUS_WIDTH", "Node", "Parent", "fit_width", "icon_button", "join_path", "label"]

#: The width of every row's status line (its count, what it costs, or its message).
STATUS_WIDTH = "17em"


def fit_width(labels: Sequence[Any], extra: float = 4.0) -> str:
    """A dropdown width that shows its longest option whole (``ch`` is one digit's width).

    ``labels`` are option texts or ``(text, value)`` pairs; ``extra`` leaves room for the
    arrow and the padding.
    """
    texts = [str(o[0] if isinstance(o, tuple) else o) for o in labels] or [""]
    # About one ch per character: letters average a digit's width in the notebook's sans-serif.
    return f"{round(max(len(t) for t in texts) + extra, 1)}ch"


def join_path(base: str, key: str | int) -> str:
    """The format-1 path of a child: ``rules[2]``, ``rules[2].where.rules[0]``."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def icon_button(icon: str, tooltip: str, css: str) -> widgets.Button:
    button = widgets.Button(
        icon=icon, tooltip=tooltip, layout=widgets.Layout(width="auto", padding="0 8px")
    )
    button.add_class(css)
    return button


def label(text: str, css: str = "heapseg-label", width: str | None = None) -> widgets.HTML:
    out = widgets.HTML(escape(text), layout=widgets.Layout(width=width or "auto"))
    out.add_class(css)
    return out


class Parent(Protocol):
    """What a node asks of the group it sits in (its move and remove buttons)."""

    def move(self, node: Node, delta: int) -> None: ...

    def remove_child(self, node: Node) -> None: ...


class Node(widgets.VBox):
    """A rule row or a group in the builder's tree.

    A node turns its inputs into a format-1 fragment (:meth:`to_dict`), fills them from a model
    object (:meth:`set_model`), and shows its own count or error on its status line. Any edit
    calls ``on_change`` (set by the parent), so the builder hears every change once.
    """

    kind: str = ""

    def __init__(self, choices: DataChoices, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.choices = choices
        self.parent: Parent | None = None
        self.on_change: Callable[[], None] | None = None
        self._filling = False
        self._invalid = False
        self._unfinished = False
        # A fixed width: the row's inputs stay put while its count or message changes.
        self.status = widgets.HTML("", layout=widgets.Layout(width=STATUS_WIDTH))
        self.status.add_class("heapseg-status")
        self.up = icon_button("arrow-up", "Move up", "heapseg-move-up")
        self.down = icon_button("arrow-down", "Move down", "heapseg-move-down")
        self.remove = icon_button("trash", "Remove", "heapseg-remove")
        self.up.on_click(lambda _: self.parent and self.parent.move(self, -1))
        self.down.on_click(lambda _: self.parent and self.parent.move(self, 1))
        self.remove.on_click(lambda _: self.parent and self.parent.remove_child(self))
        self.controls = widgets.HBox([self.up, self.down, self.remove])
        self.controls.add_class("heapseg-controls")

    @classmethod
    def new(cls, kind: str, choices: DataChoices, rule_kinds: Sequence[str]) -> Node:
        """A new, empty node of ``kind``, for a group that offers ``rule_kinds``."""
        return cls(choices)

    # ------------------------------------------------------------------ the tree

    def to_dict(self) -> dict:
        """The node's format-1 fragment as the inputs say (not validated)."""
        raise NotImplementedError

    def set_model(self, model: Any) -> None:
        """Fill the inputs from a model object (a rule or a group)."""
        raise NotImplementedError

    def walk(self, path: str) -> Iterator[tuple[str, Node]]:
        """This node and the nodes inside it, with their format-1 paths."""
        yield path, self

    # ------------------------------------------------------------------ feedback

    def emit(self, *_: Any) -> None:
        """Tell the parent (and so the builder) that something changed."""
        if not self._filling and self.on_change is not None:
            self.on_change()

    def show(
        self,
        count: int | None = None,
        total: int | None = None,
        error: str | None = None,
        warning: str | None = None,
        busy: bool = False,
        incomplete: str | None = None,
        without: int | None = None,
        whole: int | None = None,
        estimate: Any = None,
    ) -> None:
        """Show the node's own count (and share), or its error, on its status line.

        ``incomplete`` says what a rule still being filled in needs (shown plainly, not as an
        error); ``without`` is the segment's count without this rule and ``whole`` the
        segment's count, to show what the rule costs. ``estimate`` (a
        :class:`heapseg.sampling.Estimate`) shows the count as an estimate with its margin,
        until the exact count replaces it.
        """
        parts = []
        if error:
            parts.append(f"<span class='heapseg-row-error'>⚠ {escape(error)}</span>")
        elif incomplete:
            parts.append(f"<span class='heapseg-row-incomplete'>{escape(incomplete)}</span>")
        elif estimate is not None:
            share = f" ({estimate.estimate / total:.1%})" if total else ""
            parts.append(
                f"<span class='heapseg-row-estimate' title='estimated on "
                f"{estimate.fraction:.1%} of the users, 95% interval "
                f"{estimate.low:,}–{estimate.high:,}'>{escape(str(estimate))}{share}</span>"
            )
        elif count is not None:
            share = f" ({count / total:.1%})" if total else ""
            parts.append(f"<span class='heapseg-row-count'>{count:,} users{share}</span>")
            if without is not None and whole is not None:
                parts.append(_cost(without, whole))
        elif busy:
            parts.append("<span class='heapseg-row-busy'>…</span>")
        if warning and not error:
            parts.append(f"<span class='heapseg-row-warning'>{escape(warning)}</span>")
        self.status.value = " ".join(parts)
        self._invalid = bool(error)
        self._unfinished = bool(incomplete) and not error
        for css, on in (
            ("heapseg-invalid", self._invalid),
            ("heapseg-incomplete", self._unfinished),
        ):
            if on:
                self.add_class(css)
            else:
                self.remove_class(css)

    @property
    def invalid(self) -> bool:
        """Whether the status line shows an error (the row is marked ``heapseg-invalid``)."""
        return self._invalid

    @property
    def unfinished(self) -> bool:
        """Whether the rule is still being filled in (marked ``heapseg-incomplete``)."""
        return self._unfinished


def _cost(without: int, whole: int) -> str:
    """ "without it: 2,000 (+651)": the segment's count without a rule, and the difference."""
    change = without - whole
    sign = "+" if change > 0 else ("−" if change < 0 else "±")
    tip = (
        f"The segment would have {without:,} users without this rule "
        f"({abs(change):,} {'more' if change >= 0 else 'fewer'} than its {whole:,})"
    )
    return (
        f"<span class='heapseg-row-cost' title='{escape(tip)}'>"
        f"without it: {without:,} ({sign}{abs(change):,})</span>"
    )
