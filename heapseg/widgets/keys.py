"""Keyboard shortcuts of a widget: Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y while focus is inside it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

__all__ = ["UndoKeys"]

# Listeners on the window, in the capture phase: they see a key before JupyterLab's own
# shortcuts (a notebook's undo of cell operations) and before the text inputs. A key counts
# when focus is inside the widget named by `scope` (the element around this one), or when focus
# fell back to an element around it (a removed row's button takes focus with it; JupyterLab
# then focuses the cell) and the last click was inside it. In a text field the browser's own
# undo of the typing is left alone.
_ESM = """
function render({ model, el }) {
  el.classList.add("heapseg-keys");
  let lastClickInside = false;
  const scopeOf = () => el.closest("." + model.get("scope"));
  const typing = (target) =>
    target instanceof HTMLTextAreaElement ||
    (target instanceof HTMLInputElement &&
      !["checkbox", "radio", "button", "submit", "range", "color"].includes(target.type)) ||
    (target instanceof Element && target.closest(".cm-editor, [contenteditable=true]") !== null);
  const onPointer = (event) => {
    const scope = scopeOf();
    lastClickInside = !!scope && event.target instanceof Node && scope.contains(event.target);
  };
  const onKey = (event) => {
    const scope = scopeOf();
    const target = event.target;
    if (!scope || !(target instanceof Node) || typing(target)) return;
    const inside = scope.contains(target) || (lastClickInside && target.contains(scope)) ||
      (lastClickInside && target === document.body);
    if (!inside) return;
    if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
    const key = event.key.toLowerCase();
    let action = null;
    if (key === "z") action = event.shiftKey ? "redo" : "undo";
    else if (key === "y" && !event.shiftKey) action = "redo";
    if (action === null) return;
    event.preventDefault();
    event.stopPropagation();
    model.send({ action });
  };
  window.addEventListener("pointerdown", onPointer, true);
  window.addEventListener("keydown", onKey, true);
  return () => {
    window.removeEventListener("pointerdown", onPointer, true);
    window.removeEventListener("keydown", onKey, true);
  };
}
export default { render };
"""


class UndoKeys(anywidget.AnyWidget):
    """An invisible widget that turns undo / redo keys pressed inside another widget into calls.

    Put it among the children of the widget whose CSS class is ``scope``; ``on_action``
    receives ``"undo"`` or ``"redo"`` (Ctrl+Z, Ctrl+Shift+Z or Ctrl+Y, Cmd on macOS).
    """

    _esm = _ESM
    scope = traitlets.Unicode("heapseg-builder").tag(sync=True)

    def __init__(self, on_action: Callable[[str], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layout.display = "none"
        self._on_action = on_action
        self.on_msg(self._received)

    def _received(self, _: Any, content: Any, buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action in ("undo", "redo"):
            self._on_action(action)
