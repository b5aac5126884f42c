"""The segment builder widget: rules from the data, live counts, and save/open against the catalog."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from html import escape, unescape
from typing import Any

import ipywidgets as widgets
import traitlets

# The builder offers every row kind: importing the rows registers them for its groups.
import heapseg.widgets.rows  # noqa: F401
from heapseg.errors import (
    CatalogError,
    DefinitionError,
    EditConflictError,
    HeapsegError,
    NotFoundError,
)
from heapseg.model import Group, as_segment
from heapseg.widgets.check import Plan
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.counting import ESTIMATE_ABOVE, Counts, LiveCounts
from heapseg.widgets.difference import describe_difference, users_of
from heapseg.widgets.group import GroupBox
from heapseg.widgets.history import EditHistory, loose_group
from heapseg.widgets.keys import UndoKeys
from heapseg.widgets.node import fit_width
from heapseg.widgets.style import stylesheet

__all__ = ["SegmentBuilder"]


class SegmentBuilder(widgets.VBox):
    """Build a segment by pointing and clicking, with live counts, and save it to the catalog.

    Every edit rebuilds the definition from the inputs, shows its plain-English description and
    asks the backend, in one query run off the notebook's thread, for the number of users of the
    whole segment, of every rule alone and of every nested group, and of the segment without
    each of them (what each rule costs). An invalid rule shows its error on its own row; a rule
    still being filled in is *incomplete*, left out of the counts until it is complete.

    Edits can be undone and redone (the buttons, or Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y while focus
    is in the builder outside a text field). Until saved, the builder says "● unsaved changes".
    Saving never surprises: a changed name asks whether to rename the open segment or save a
    new one, Delete and New ask first, and when someone else saved the segment meanwhile the
    builder offers to reload theirs, save yours as new, or show the difference.

    Parameters
    ----------
    dataset
        The :class:`heapseg.Dataset` to count on; property names, types, values and event
        names for the pickers come from it.
    catalog
        A :class:`heapseg.catalog.Catalog`: enables Save / Save as / Duplicate / Delete and
        ``segment`` rules.
    segment
        A definition to start from (a ``heapseg.Segment``, a rule or a format-1 dict).
    as_of
        The moment counts are evaluated at (default: the dataset's default, else now).
    debounce
        Seconds of quiet after an edit before the counts are asked for.
    estimate_above, sample
        On a dataset with more users than ``estimate_above`` (default 200,000; ``None``: never)
        an edit first shows estimates (``≈ 20,400 users ± 900 (95%)``) made on a sample of the
        users (``sample``: its share; default about 50,000 users), then the exact counts.

    Attributes
    ----------
    segment : heapseg.Segment or None
        The definition the inputs spell, incomplete rules left out (None while a rule is
        invalid). Set it to fill the inputs; observe it (``builder.observe(fn, "segment")``) to
        follow edits.
    count, total, share
        The segment's count, the number of all users and the share (None until counted).
    estimate : heapseg.sampling.Estimate or None
        While the count shown is an estimate, the estimate and its interval (None once exact).
    rule_counts : dict
        Path of each rule and nested group (``rules[0]``, ``rules[2].rules[1]``) -> its count.
    errors, warnings : dict
        Path of a row -> what is wrong with it (or, for warnings, worth knowing).
    summary : str
        The plain-English description of the segment.
    entry : SegmentEntry or None
        The catalog entry being edited (None for a new segment).
    message, last_error
        The outcome of the last Save / Save as / Duplicate / Delete / open.
    dirty : bool
        Whether the definition, name or texts changed since the segment was opened, saved or
        started.
    incomplete : dict
        Path of a rule still being filled in -> what it needs (left out of the counts).
    without_counts : dict
        Path of each rule and nested group -> the segment's count without it.
    question : str
        What the builder asks now (rename? delete? discard? a conflict), "" when nothing;
        answered with the buttons of :attr:`prompt_buttons`.
    conflict : EditConflictError or None
        The conflict of the last Save, until it is resolved.

    Examples
    --------
    >>> import heapseg
    >>> ds = heapseg.connect()
    >>> builder = heapseg.SegmentBuilder(ds, heapseg.Catalog("team-segments.json"))
    >>> builder.segment = heapseg.user.subscription_type == "paid"  # or click it together
    >>> builder.wait()
    True
    >>> builder.summary, builder.count, builder.total
    ('subscription_type = paid', 2643, 10000)
    >>> ds.count(builder.segment)
    2643
    >>> builder.close()
    """

    segment = traitlets.Any(None, allow_none=True)
    count = traitlets.Int(None, allow_none=True)
    total = traitlets.Int(None, allow_none=True)
    share = traitlets.Float(None, allow_none=True)
    rule_counts = traitlets.Dict()
    without_counts = traitlets.Dict()
    incomplete = traitlets.Dict()
    dirty = traitlets.Bool(False)
    question = traitlets.Unicode("")
    conflict = traitlets.Any(None)
    can_undo = traitlets.Bool(False)
    can_redo = traitlets.Bool(False)
    errors = traitlets.Dict()
    warnings = traitlets.Dict()
    summary = traitlets.Unicode("")
    busy = traitlets.Bool(False)
    estimate = traitlets.Any(None, allow_none=True)
    as_of = traitlets.Any()
    entry = traitlets.Any(None)
    message = traitlets.Unicode("")
    last_error = traitlets.Any(None)
    name = traitlets.Unicode("")
    description = traitlets.Unicode("")
    category = traitlets.Unicode("")
    segment_type = traitlets.Enum(("dynamic", "static"), "dynamic")
    visibility = traitlets.Enum(("shared", "personal"), "shared")

    def __init__(
        self,
        dataset: Any,
        catalog: Any = None,
        segment: Any = None,
        *,
        as_of: Any = None,
        debounce: float = 0.25,
        estimate_above: int | None = ESTIMATE_ABOVE,
        sample: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.add_class("heapseg-builder")
        self.dataset = dataset
        self.catalog = catalog
        self._counting = LiveCounts(
            dataset,
            catalog if catalog is not None else getattr(dataset, "resolver", None),
            debounce=debounce,
            estimate_above=estimate_above,
            sample=sample,
            on_plan=self._show_plan,
            on_counts=self._show_counts,
            on_failure=self._show_failure,
        )
        self._from_ui = False
        self._restoring = False
        self.history = EditHistory()
        self._baseline: dict | None = None
        self.as_of = dataset.resolve_as_of(as_of)
        self.choices = DataChoices(dataset, catalog, self.as_of)

        self.root = GroupBox(self.choices, root=True)
        self.root.add_class("heapseg-definition")
        self.root.on_change = self._on_edit
        self._build_header()
        self._build_summary()
        self._build_actions()
        self.undo_keys = UndoKeys(self._on_key)
        self.children = (
            stylesheet(),
            self.undo_keys,
            self.header,
            self.root,
            self.summary_box,
            self.actions_box,
        )
        self.observe(self._on_segment, "segment")
        self.observe(self._on_as_of, "as_of")
        self.observe(
            self._update_state, ["name", "description", "category", "segment_type", "visibility"]
        )
        if segment is not None:
            self.segment = segment
        else:
            self.refresh()
        self._start_clean()

    # ------------------------------------------------------------------ layout

    def _build_header(self) -> None:
        self.name_input = widgets.Text(
            placeholder="Segment name", layout=widgets.Layout(width="22em")
        )
        self.name_input.add_class("heapseg-name")
        categories = self.catalog.categories() if self.catalog is not None else []
        self.category_input = widgets.Combobox(
            options=categories,
            placeholder="Category",
            ensure_option=False,
            layout=widgets.Layout(width="14em"),
        )
        self.category_input.add_class("heapseg-category")
        types = [("dynamic", "dynamic"), ("static (freeze members)", "static")]
        self.type_input = widgets.Dropdown(
            options=types, layout=widgets.Layout(width=fit_width(types))
        )
        self.type_input.add_class("heapseg-type")
        self.visibility_input = widgets.Dropdown(
            options=["shared", "personal"], layout=widgets.Layout(width="9em")
        )
        self.visibility_input.add_class("heapseg-visibility")
        self.description_input = widgets.Textarea(
            placeholder="What this segment is for",
            layout=widgets.Layout(width="60em", height="3.2em"),
        )
        self.description_input.add_class("heapseg-description-input")
        for trait, widget in (
            ("name", self.name_input),
            ("category", self.category_input),
            ("segment_type", self.type_input),
            ("visibility", self.visibility_input),
            ("description", self.description_input),
        ):
            traitlets.link((self, trait), (widget, "value"))
        self.entry_info = widgets.HTML("")
        self.entry_info.add_class("heapseg-entry")
        self.rename_note = widgets.HTML("")
        self.rename_note.add_class("heapseg-rename-note")
        self.header = widgets.VBox(
            [
                widgets.HBox(
                    [self.name_input, self.category_input, self.type_input, self.visibility_input],
                    layout=widgets.Layout(flex_flow="row wrap"),
                ),
                self.rename_note,
                self.description_input,
                self.entry_info,
            ]
        )
        self.header.add_class("heapseg-header")
        if self.catalog is None:
            self.header.layout.display = "none"

    def _build_summary(self) -> None:
        self.count_html = widgets.HTML("")
        self.count_html.add_class("heapseg-count")
        self.share_html = widgets.HTML("")
        self.share_html.add_class("heapseg-share")
        self.busy_html = widgets.HTML("counting…")
        self.busy_html.add_class("heapseg-busy-indicator")
        self.summary_html = widgets.HTML("")
        self.summary_html.add_class("heapseg-description-text")
        self.incomplete_html = widgets.HTML("")
        self.incomplete_html.add_class("heapseg-incomplete-note")
        self.summary_box = widgets.VBox(
            [
                widgets.HBox(
                    [self.count_html, self.share_html, self.busy_html],
                    layout=widgets.Layout(align_items="baseline"),
                ),
                self.incomplete_html,
                self.summary_html,
            ]
        )
        self.summary_box.add_class("heapseg-summary")

    def _build_actions(self) -> None:
        def button(text: str, css: str, style: str = "") -> widgets.Button:
            out = widgets.Button(
                description=text, button_style=style, layout=widgets.Layout(width="auto")
            )
            out.add_class(css)
            return out

        self.new_button = button("New", "heapseg-new")
        self.undo_button = button("Undo", "heapseg-undo")
        self.undo_button.icon = "undo"
        self.undo_button.tooltip = "Undo the last edit (Ctrl+Z)"
        self.redo_button = button("Redo", "heapseg-redo")
        self.redo_button.icon = "repeat"
        self.redo_button.tooltip = "Redo (Ctrl+Shift+Z or Ctrl+Y)"
        self.save_button = button("Save", "heapseg-save", "primary")
        self.save_as_button = button("Save as new", "heapseg-save-as")
        self.duplicate_button = button("Duplicate", "heapseg-duplicate")
        self.delete_button = button("Delete", "heapseg-delete", "danger")
        self.new_button.on_click(lambda _: self.new())
        self.undo_button.on_click(lambda _: self.undo())
        self.redo_button.on_click(lambda _: self.redo())
        self.save_button.on_click(lambda _: self.save())
        self.save_as_button.on_click(lambda _: self.save_as())
        self.duplicate_button.on_click(lambda _: self.duplicate())
        self.delete_button.on_click(lambda _: self.delete())
        self.state_html = widgets.HTML("")
        self.state_html.add_class("heapseg-state")
        # The message has a line of its own and wraps: a long one never squeezes the buttons.
        self.message_html = widgets.HTML("", layout=widgets.Layout(width="100%"))
        self.message_html.add_class("heapseg-message")
        self.actions = widgets.HBox(
            [
                self.new_button,
                self.undo_button,
                self.redo_button,
                self.save_button,
                self.save_as_button,
                self.duplicate_button,
                self.delete_button,
                self.state_html,
            ],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.actions.add_class("heapseg-actions")
        self._build_prompt()
        self.actions_box = widgets.VBox([self.actions, self.message_html, self.prompt])
        self.actions_box.add_class("heapseg-actions-box")
        if self.catalog is None:
            for part in (
                self.save_button,
                self.save_as_button,
                self.duplicate_button,
                self.delete_button,
                self.state_html,
            ):
                part.layout.display = "none"
        self._show_entry()

    def _build_prompt(self) -> None:
        """Where the builder asks before it renames, deletes, discards or resolves a conflict."""
        self.prompt_text = widgets.HTML("", layout=widgets.Layout(width="100%"))
        self.prompt_text.add_class("heapseg-prompt-text")
        self.prompt_row = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.prompt_row.add_class("heapseg-prompt-buttons")
        self.diff_html = widgets.HTML("", layout=widgets.Layout(width="100%"))
        self.diff_html.add_class("heapseg-diff")
        self.prompt = widgets.VBox([self.prompt_text, self.prompt_row, self.diff_html])
        self.prompt.add_class("heapseg-prompt")
        self.prompt.layout.display = "none"
        #: The buttons of the question shown now, by key ("rename", "cancel", ...).
        self.prompt_buttons: dict[str, widgets.Button] = {}

    # ------------------------------------------------------------------ two-way with code

    @traitlets.validate("as_of")
    def _valid_as_of(self, proposal: dict) -> datetime:
        # Accept what the engine accepts (ISO strings, dates, aware datetimes); keep naive UTC.
        return self.dataset.resolve_as_of(proposal["value"])

    def _on_as_of(self, change: dict) -> None:
        # Value pickers offer what the properties held at the new moment.
        self.choices.as_of = change["new"]
        self.refresh()

    @traitlets.validate("segment")
    def _valid_segment(self, proposal: dict) -> Group | None:
        value = proposal["value"]
        return None if value is None else as_segment(value)

    def _on_segment(self, change: dict) -> None:
        if self._from_ui:
            return
        self.root.set_model(change["new"] if change["new"] is not None else Group("and", ()))
        self.refresh()

    def refresh(self) -> None:
        """Re-read the inputs and count again (also after the data or the catalog changed)."""
        self._counting.forget()
        self._on_edit()

    def wait(self, timeout: float | None = 60) -> bool:
        """Block until the counts of the latest edit are shown (for scripts and tests)."""
        return self._counting.wait(timeout)

    def close(self) -> None:
        """Stop the live counts and close the widget."""
        self._counting.close()
        super().close()

    # ------------------------------------------------------------------ live feedback

    def _on_edit(self) -> None:
        self._counting.update(self.root, self.as_of)

    def _show_plan(self, plan: Plan) -> None:
        """What is known at once after an edit: the definition, its errors, and "counting"."""
        self._from_ui = True
        try:
            self.segment = plan.segment
        finally:
            self._from_ui = False
        self.errors = dict(plan.errors)
        self.warnings = dict(plan.warnings)
        self.incomplete = {p: plan.incomplete[p] for p in plan.skipped if p in plan.incomplete}
        left_out = len(plan.skipped)
        self.incomplete_html.value = (
            f"{left_out} rule{'s' if left_out != 1 else ''} incomplete, not counted"
            if left_out
            else ""
        )
        self._remember(plan.definition)
        self.busy = True
        self.summary_box.add_class("heapseg-busy")
        self.busy_html.layout.display = ""
        if plan.segment is not None:
            self.summary = plan.segment.describe()
        else:
            self.summary = "fix the rules marked in red to see the segment"
        self.summary_html.value = escape(self.summary)

    def _show_counts(self, counts: Counts) -> None:
        self.total = counts.total
        self.count = counts.count
        self.share = counts.share
        self.rule_counts = counts.rule_counts
        self.without_counts = counts.without_counts
        self.estimate = counts.estimates.get("")
        if self.estimate is not None:
            # The exact count follows: stay "counting" until it replaces the estimate.
            self.count_html.value = (
                f"<span class='heapseg-estimate'>{escape(str(self.estimate))}</span>"
            )
            self.share_html.value = (
                f"≈ {self.share:.1%} of {counts.total:,} users · estimated on "
                f"{self.estimate.fraction:.1%} of them, exact count coming"
            )
            return
        if not counts.exact and counts.count is not None:
            # The segment's count is exact; the rules' estimates are still being replaced.
            self.count_html.value = f"{counts.count:,}"
            self.share_html.value = f"users · {self.share:.1%} of {counts.total:,} users"
            return
        if counts.count is None:
            self.count_html.value = "–"
            self.share_html.value = f"users (of {counts.total:,})"
        else:
            self.count_html.value = f"{counts.count:,}"
            self.share_html.value = (
                f"users · {self.share:.1%} of {counts.total:,} users · as of "
                f"{self.as_of.isoformat(sep=' ', timespec='minutes')} UTC · "
                f"{escape(self.dataset.properties_note())}"
            )
        self._idle()

    def _show_failure(self, error: BaseException) -> None:
        self.count = None
        self.share = None
        self.count_html.value = "–"
        self.share_html.value = ""
        self._say(f"counting failed: {error}", error if isinstance(error, Exception) else None)
        self._idle()

    def _idle(self) -> None:
        self.busy = False
        self.summary_box.remove_class("heapseg-busy")
        self.busy_html.layout.display = "none"

    # ------------------------------------------------------------------ undo, redo, dirty state

    def _state(self, definition: dict | None = None) -> dict:
        """What Save would write: the definition and the texts around it."""
        return {
            "definition": definition if definition is not None else self.root.to_dict(),
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "type": self.segment_type,
            "visibility": self.visibility,
        }

    def _start_clean(self) -> None:
        """What is shown now is what was opened, saved or started: nothing to undo, not dirty."""
        definition = self.root.to_dict()
        self.history.reset(definition)
        self._baseline = self._state(definition)
        self._update_state()

    def _remember(self, definition: dict) -> None:
        if self._restoring:
            self.history.replace_current(definition)
        else:
            self.history.record(definition)
        self._update_state(definition=definition)

    def _update_state(self, *_: Any, definition: dict | None = None) -> None:
        """Follow an edit: undo / redo buttons, the dirty mark, the rename note."""
        if not hasattr(self, "state_html"):
            return  # traits set while the widget is being built
        self.can_undo, self.can_redo = self.history.can_undo, self.history.can_redo
        self.undo_button.disabled = not self.can_undo
        self.redo_button.disabled = not self.can_redo
        dirty = self._baseline is not None and self._state(definition) != self._baseline
        if dirty and not self.dirty and self.last_error is None:
            self._say("")  # "saved …" would no longer be true
        self.dirty = dirty
        entry = self.entry
        if dirty:
            self.state_html.value = "● unsaved changes"
            self.state_html.add_class("heapseg-state-dirty")
        else:
            self.state_html.value = (
                "new segment, not saved yet"
                if entry is None
                else f"✓ saved as revision {entry.revision}"
            )
            self.state_html.remove_class("heapseg-state-dirty")
        if self._renaming() and entry is not None:
            change = f"Save renames “{escape(entry.name)}” → “{escape(self.name.strip())}”"
            # Names are unique ignoring case: a change of case only cannot be a second segment.
            both = "." if self._same_name() else "; Save as new keeps both."
            self.rename_note.value = change + both
        else:
            self.rename_note.value = ""

    def _renaming(self) -> bool:
        entry = self.entry
        return entry is not None and self.name.strip() != entry.name and bool(self.name.strip())

    def _same_name(self) -> bool:
        """Whether the name box holds the open segment's name, ignoring case (as the catalog
        compares names): then it cannot name a second segment."""
        entry = self.entry
        return entry is not None and self.name.strip().casefold() == entry.name.casefold()

    def undo(self) -> bool:
        """Take back the last edit of the rules (Ctrl+Z); returns whether there was one."""
        return self._restore(self.history.undo())

    def redo(self) -> bool:
        """Do again the edit undone last (Ctrl+Shift+Z or Ctrl+Y)."""
        return self._restore(self.history.redo())

    def _restore(self, definition: dict | None) -> bool:
        if definition is None:
            return False
        try:
            model = loose_group(definition)
        except HeapsegError as exc:
            # A row kind that cannot show a half-filled rule: say so, change nothing.
            self._say(f"this step cannot be shown again: {exc}", exc)
            return False
        self._restoring = True
        try:
            self.root.set_model(model)
            self.refresh()
        finally:
            self._restoring = False
        return True

    def _on_key(self, action: str) -> None:
        if action == "undo":
            self.undo()
        elif action == "redo":
            self.redo()

    def new(self, discard: bool = False) -> bool:
        """Start an empty, unsaved segment. With unsaved changes it asks first (in the widget),
        unless ``discard=True``; returns whether it started."""
        if self.dirty and not discard:
            what = f"“{escape(self.entry.name)}”" if self.entry is not None else "this segment"
            self._ask(
                f"Discard the unsaved changes to {what} and start a new segment?",
                [
                    ("discard", "Discard and start new", "danger", lambda: self.new(discard=True)),
                    ("cancel", "Keep editing", "", self._dismiss),
                ],
            )
            return False
        self._dismiss()
        self.entry = None
        self.name = self.description = self.category = ""
        self.segment_type, self.visibility = "dynamic", "shared"
        self.segment = None
        self._show_entry()
        self._start_clean()
        self._say("started a new segment")
        return True

    # ------------------------------------------------------------------ asking

    def _ask(self, text: str, choices: list[tuple[str, str, str, Any]], diff: str = "") -> None:
        """Show a question (HTML) with one button per ``(key, label, style, action)``."""
        self.prompt_buttons = {}
        for key, text_, style, action in choices:
            button = widgets.Button(
                description=text_, button_style=style, layout=widgets.Layout(width="auto")
            )
            button.add_class(f"heapseg-choice-{key}")
            button.on_click(lambda _, act=action: self._act(act))
            self.prompt_buttons[key] = button
        self.prompt_row.children = tuple(self.prompt_buttons.values())
        self.prompt_text.value = text
        self.diff_html.value = diff
        self.prompt.layout.display = ""
        self.question = unescape(re.sub(r"<[^>]+>", "", text))

    def _dismiss(self) -> None:
        self.prompt_buttons = {}
        self.prompt_row.children = ()
        self.prompt_text.value = self.diff_html.value = ""
        self.prompt.layout.display = "none"
        self.question = ""

    # ------------------------------------------------------------------ the catalog

    def open(self, entry: Any = None) -> Any:
        """Load a catalog entry (or its id or name) into the builder, to edit it.

        Without an argument this is ipywidgets' own ``Widget.open`` (which opens the widget's
        connection to the front end and is called by ipywidgets itself).
        """
        if entry is None:
            return super().open()
        catalog = self._need_catalog()
        found = catalog.get(entry)
        self._dismiss()
        self.conflict = None
        self.entry = found
        self.name = found.name
        self.description = found.description
        self.category = found.category
        self.segment_type = found.type
        self.visibility = found.visibility
        self.segment = found.segment
        self._show_entry()
        self._start_clean()
        self._say(f"opened {found.name!r} (revision {found.revision})")
        return found

    def save(self, rename: bool | None = None) -> Any:
        """Save: a new segment, or the changes to the open one. Returns the saved entry, or None.

        When the name was changed, Save asks (in the widget) whether to rename the open
        segment or to save a new one, unless ``rename=True`` (rename it) is given. If someone
        else saved the segment in between, nothing is saved and the builder offers to reload
        theirs, save yours as new, or show the difference (:attr:`conflict`); if someone deleted
        it, nothing is saved and the builder offers to save yours as new.
        """
        if self._renaming() and rename is not True:
            old, new = escape(self.entry.name), escape(self.name.strip())
            rename_it = ("rename", f"Rename to “{self.name.strip()}”", "warning", self._rename_save)
            cancel = ("cancel", "Cancel", "", self._dismiss)
            if self._same_name():  # only the case changes: no second segment can have it
                self._ask(f"Save renames “{old}” → “{new}”. Rename it?", [rename_it, cancel])
            else:
                self._ask(
                    f"Save renames “{old}” → “{new}”. Rename it, or keep “{old}” and save a new "
                    f"segment named “{new}”?",
                    [rename_it, ("save-as-new", "Save as new", "primary", self.save_as), cancel],
                )
            self._say("nothing saved yet: choose how to save")
            return None
        return self._act(self._save)

    def _rename_save(self) -> Any:
        return self._save()

    def save_as(self) -> Any:
        """Save the definition as a new segment under the name in the name box."""
        if self._same_name():
            self._say(
                f"Save as new needs another name: “{self.name.strip()}” is the segment you are "
                "editing (type a new name first, or Duplicate it)",
                CatalogError("name in use"),
            )
            return None
        return self._act(lambda: self._save(new=True))

    def duplicate(self) -> Any:
        """Copy the open segment in the catalog and open the copy."""

        def run() -> Any:
            catalog = self._need_catalog()
            if self.entry is None:
                raise CatalogError("nothing to duplicate: save the segment first")
            copy = catalog.duplicate(self.entry)
            self.open(copy.id)
            self._say(f"duplicated as {copy.name!r}")
            return copy

        return self._act(run)

    def delete(self, confirm: bool = False) -> Any:
        """Delete the open segment from the catalog (the definition stays in the builder).

        Asks first (in the widget) unless ``confirm=True``; a segment other segments refer to
        is not deleted: the question names them. Returns the deleted entry, or None.
        """
        if self.catalog is None or self.entry is None:
            return self._act(self._delete)
        users = users_of(self.catalog, self.entry.id)
        name = escape(self.entry.name)
        if users:
            listed = ", ".join(f"“{escape(u)}”" for u in users)
            self._ask(
                f"“{name}” cannot be deleted: {listed} "
                f"{'refers' if len(users) == 1 else 'refer'} to it. Change "
                f"{'that segment' if len(users) == 1 else 'those segments'} first.",
                [("cancel", "OK", "", self._dismiss)],
            )
            self._say(f"not deleted: used by {', '.join(users)}", CatalogError("in use"))
            return None
        if not confirm:
            self._ask(
                f"Delete “{name}” from the catalog for everyone? No other segment refers to it; "
                "its history is kept.",
                [
                    ("delete", f"Delete “{self.entry.name}”", "danger", self._delete),
                    ("cancel", "Cancel", "", self._dismiss),
                ],
            )
            return None
        return self._act(self._delete)

    def _delete(self) -> Any:
        catalog = self._need_catalog()
        if self.entry is None:
            raise CatalogError("nothing to delete: this segment is not saved")
        gone = self.entry
        catalog.delete(gone, revision=gone.revision)
        self._dismiss()
        self.entry = None
        self._show_entry()
        # The definition is still here, saved nowhere: unsaved unless it is empty.
        self._baseline = {
            **self._state({"combinator": "and", "rules": []}),
            "name": "",
            "description": "",
            "category": "",
        }
        self._update_state()
        self._say(f"deleted {gone.name!r}")
        return gone

    def _save(self, new: bool = False) -> Any:
        catalog = self._need_catalog()
        segment = self.segment
        if segment is None:
            where = "; ".join(f"{p or 'segment'}: {m}" for p, m in self.errors.items())
            raise DefinitionError(f"the definition has errors, nothing was saved ({where})")
        if self.incomplete:
            where = ", ".join(f"{p} ({m})" for p, m in self.incomplete.items())
            raise DefinitionError(
                f"finish or remove the incomplete rules first, nothing was saved: {where}"
            )
        static = self.segment_type == "static"
        entry = self.entry
        if entry is None or new:
            saved = catalog.save(
                segment,
                self.name,
                description=self.description,
                category=self.category,
                visibility=self.visibility,
                static=static,
                dataset=self.dataset if static else None,
                as_of=self.as_of,
            )
        else:
            # Name, definition and texts change together in one revision, based on the
            # revision that was opened: a change saved by someone else since is a conflict.
            try:
                saved = catalog.update(
                    entry.id,
                    segment,
                    name=self.name,
                    description=self.description,
                    category=self.category,
                    visibility=self.visibility,
                    revision=entry.revision,
                )
            except EditConflictError as exc:
                self._offer_conflict(exc)
                raise
            except NotFoundError as exc:
                self._offer_deleted(entry, exc)
                return None
            if static and not saved.is_static:
                saved = catalog.freeze(saved, self.dataset, self.as_of)
            elif not static and saved.is_static:
                saved = catalog.unfreeze(saved)
        self._dismiss()
        self.conflict = None
        self.entry = saved
        self._show_entry()
        self._baseline = self._state()
        self._update_state()
        self._say(f"saved {saved.name!r} ({saved.id}, revision {saved.revision})")
        self._refresh_choices()
        return saved

    # ------------------------------------------------------------------ conflicts

    def _offer_conflict(self, error: EditConflictError) -> None:
        self.conflict = error
        who = escape(error.changed_by or "someone")
        at = error.changed_at
        if at is not None and at.tzinfo is not None:
            at = at.astimezone(timezone.utc)
        when = f" at {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
        self._ask(
            f"{who} saved “{escape(self.entry.name if self.entry else error.segment_id)}”"
            f"{when} (revision {error.current_revision}) after you opened revision "
            f"{error.expected_revision}. Nothing was saved.",
            [
                ("reload", "Reload theirs", "warning", self.reload_theirs),
                ("save-mine", "Save mine as new", "primary", self.save_mine_as_new),
                ("difference", "Show the difference", "", self._show_difference),
                ("cancel", "Keep editing", "", self._dismiss),
            ],
        )

    def _offer_deleted(self, entry: Any, error: NotFoundError) -> None:
        """Someone deleted the open segment after it was opened: nothing was saved; offer to
        save this version as a new segment."""
        records = self._need_catalog().history(entry.id)
        gone = records[-1] if records and records[-1].action == "delete" else None
        who = escape(gone.user) if gone is not None else "someone"
        when = f" at {gone.at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if gone else ""
        self._ask(
            f"{who} deleted “{escape(entry.name)}”{when} after you opened it (revision "
            f"{entry.revision}). Nothing was saved.",
            [
                ("save-mine", "Save mine as new", "primary", self.save_mine_as_new),
                ("cancel", "Keep editing", "", self._dismiss),
            ],
        )
        self._say("not saved: this segment was deleted meanwhile; choose below", error)

    def reload_theirs(self) -> Any:
        """After a conflict: open the segment as the other person saved it (yours can be
        brought back with Undo)."""
        self._need_catalog()
        segment_id = self.conflict.segment_id if self.conflict else self.entry_id
        if segment_id is None:
            raise CatalogError("nothing to reload: this segment is not saved")
        mine = self.root.to_dict()
        theirs = self.open(segment_id)
        # Undo gives your version back.
        self.history.reset(mine)
        self.history.record(self.root.to_dict())
        self._update_state()
        self._say(
            f"reloaded {theirs.name!r} as saved (revision {theirs.revision}); Undo brings yours back"
        )
        return theirs

    def save_mine_as_new(self) -> Any:
        """After a conflict: keep theirs, and save your version as a new segment (named
        after yours, with your login added when the name is taken)."""
        catalog = self._need_catalog()
        name = self.name.strip()
        taken = {e.name.lower() for e in catalog.list(everyone=True)}
        if name.lower() in taken:
            base = f"{name} ({catalog.user})"
            name, n = base, 2
            while name.lower() in taken:
                name, n = f"{base} {n}", n + 1
        self.name = name
        return self._save(new=True)

    def difference(self) -> str:
        """Theirs against yours, in words: names, texts and rules added or removed."""
        catalog = self._need_catalog()
        segment_id = self.conflict.segment_id if self.conflict else self.entry_id
        if segment_id is None:
            raise CatalogError("nothing to compare: this segment is not saved")
        theirs = catalog.get(segment_id)
        who = self.conflict.changed_by if self.conflict else None
        return describe_difference(theirs, self._state(), self.segment, who)

    def _show_difference(self) -> None:
        self.diff_html.value = self.difference()

    # ------------------------------------------------------------------ reporting

    def _act(self, action: Any) -> Any:
        try:
            return action()
        except EditConflictError as exc:
            # The choices are shown below the message (see _offer_conflict).
            self._say("not saved: this segment was changed meanwhile; choose below", exc)
            return None
        except HeapsegError as exc:
            self._say(str(exc), exc)
            return None

    def _need_catalog(self) -> Any:
        if self.catalog is None:
            raise CatalogError("this builder has no catalog: pass one, SegmentBuilder(ds, catalog)")
        return self.catalog

    def _say(self, text: str, error: Exception | None = None) -> None:
        self.last_error = error
        self.message = text
        css = "heapseg-message-error" if error is not None else "heapseg-message-info"
        self.message_html.value = f"<span class='{css}'>{escape(text)}</span>" if text else ""

    def _show_entry(self) -> None:
        entry = self.entry
        if entry is None:
            self.entry_info.value = "<i>new segment, not saved yet</i>"
        else:
            self.entry_info.value = (
                f"editing <b>{escape(entry.name)}</b> · <code>{escape(entry.id)}</code> · "
                f"revision {entry.revision} · {escape(entry.type)} · owner {escape(entry.owner)}"
            )
        for button in (self.duplicate_button, self.delete_button):
            button.disabled = entry is None

    def _refresh_choices(self) -> None:
        if self.catalog is not None:
            self.category_input.options = self.catalog.categories()

    @property
    def entry_id(self) -> str | None:
        """The id of the open catalog entry (None for a new segment)."""
        return self.entry.id if self.entry is not None else None
