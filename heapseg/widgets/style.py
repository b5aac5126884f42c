"""The few CSS rules the widgets need (statuses, counts, errors), shipped as an HTML widget."""

from __future__ import annotations

import ipywidgets as widgets

__all__ = ["stylesheet"]

CSS = """
<style>
.heapseg-row-count { color: #3b5b7a; font-size: 0.9em; }
.heapseg-row-estimate, .heapseg-estimate { color: #6b7f93; font-size: 0.9em; font-style: italic; }
.heapseg-row-error, .heapseg-message-error { color: #b3261e; }
.heapseg-row-warning { color: #9a6700; font-size: 0.9em; }
.heapseg-row-busy, .heapseg-busy-indicator { color: #888; }
.heapseg-kind { font-weight: 600; color: #555; }
.heapseg-invalid > .widget-hbox:first-child { background: #fdecea; }
.heapseg-row-incomplete { color: #6b6b6b; font-style: italic; }
.heapseg-row-cost { display: block; color: #5f6f80; font-size: 0.85em; }
.heapseg-status { line-height: 1.25; white-space: normal; }
.heapseg-state { white-space: nowrap; padding: 0 0.6em; color: #555; }
.heapseg-state-dirty { color: #9a6700; font-weight: 600; }
.heapseg-message, .heapseg-prompt-text { white-space: normal; overflow-wrap: anywhere; }
.heapseg-actions .jupyter-button, .heapseg-prompt .jupyter-button { flex: 0 0 auto; }
.heapseg-prompt { border-left: 3px solid #9a6700; padding: 2px 0 2px 8px; margin: 4px 0; }
.heapseg-rename-note { color: #9a6700; }
.heapseg-diff ul { margin: 2px 0; }
.heapseg-diff-added { color: #1e6b36; }
.heapseg-diff-removed { color: #b3261e; }
.heapseg-count { font-size: 1.6em; font-weight: 700; }
.heapseg-busy .heapseg-count { color: #999; }
.heapseg-description-text { font-style: italic; color: #333; }
.heapseg-message-info { color: #1e6b36; }
.heapseg-category-title { font-weight: 700; font-size: 1.1em; margin-top: 0.6em; }
.heapseg-entry-row { border-bottom: 1px solid #e4e4e4; }
.heapseg-members table { border-collapse: collapse; font-size: 0.9em; }
.heapseg-members td, .heapseg-members th { padding: 2px 8px; border-bottom: 1px solid #eee; }
</style>
"""


def stylesheet() -> widgets.HTML:
    """An invisible widget carrying heapseg's CSS (one per displayed builder or browser)."""
    sheet = widgets.HTML(CSS, layout=widgets.Layout(display="none"))
    sheet.add_class("heapseg-style")
    return sheet
