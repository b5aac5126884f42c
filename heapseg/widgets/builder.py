"""The segment builder widget: rules from the data, live counts, and save/open against the catalog."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import ipywidgets as widgets
import traitlets

# The builder offers every row kind: importing the rows registers them for its groups.
import heapseg.widgets.rows  # noqa: F401
from heapseg.errors import CatalogError, DefinitionError, HeapsegError
from heapseg.model import Group, as_segment
from heapseg.widgets.check import Plan
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.counting import Counts, LiveCounts
from heapseg.widgets.group import GroupBox
from heapseg.widgets.style import stylesheet

__all__ = ["SegmentBuilder"]


class SegmentBuilder(widgets.VBox):
    """Build a segment by pointing and clicking, with live counts, and save it to the catalog.

    Every edit rebuilds the definition from the inputs, shows its plain-English description and
    asks the backend, in one query run off the notebook's thread, for the number of users of the
    whole segment, of every rule alone and of every nested group. An invalid rule shows its
    error on its own row.

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

    Attributes
    ----------
    segment : heapseg.Segment or None
        The definition the inputs spell (None while a rule is invalid). Set it to fill the inputs;
        observe it (``builder.observe(fn, "segment")``) to follow edits.
    count, total, share
        The segment's count, the number of all users and the share (None until counted).
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
    errors = traitlets.Dict()
    warnings = traitlets.Dict()
    summary = traitlets.Unicode("")
    busy = traitlets.Bool(False)
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
            on_plan=self._show_plan,
            on_counts=self._show_counts,
            on_failure=self._show_failure,
        )
        self._from_ui = False
        self.as_of = dataset.resolve_as_of(as_of)
        self.choices = DataChoices(dataset, catalog, self.as_of)

        self.root = GroupBox(self.choices, root=True)
        self.root.add_class("heapseg-definition")
        self.root.on_change = self._on_edit
        self._build_header()
        self._build_summary()
        self._build_actions()
        self.children = (
            stylesheet(),
            self.header,
            self.root,
            self.summary_box,
            self.actions,
        )
        self.observe(self._on_segment, "segment")
        self.observe(self._on_as_of, "as_of")
        if segment is not None:
            self.segment = segment
        else:
            self.refresh()

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
        self.type_input = widgets.Dropdown(
            options=[("dynamic", "dynamic"), ("static (freeze members)", "static")],
            layout=widgets.Layout(width="14em"),
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
        self.header = widgets.VBox(
            [
                widgets.HBox(
                    [self.name_input, self.category_input, self.type_input, self.visibility_input]
                ),
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
        self.summary_box = widgets.VBox(
            [
                widgets.HBox(
                    [self.count_html, self.share_html, self.busy_html],
                    layout=widgets.Layout(align_items="baseline"),
                ),
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

        self.save_button = button("Save", "heapseg-save", "primary")
        self.save_as_button = button("Save as new", "heapseg-save-as")
        self.duplicate_button = button("Duplicate", "heapseg-duplicate")
        self.delete_button = button("Delete", "heapseg-delete", "danger")
        self.save_button.on_click(lambda _: self.save())
        self.save_as_button.on_click(lambda _: self.save_as())
        self.duplicate_button.on_click(lambda _: self.duplicate())
        self.delete_button.on_click(lambda _: self.delete())
        self.message_html = widgets.HTML("")
        self.message_html.add_class("heapseg-message")
        self.actions = widgets.HBox(
            [
                self.save_button,
                self.save_as_button,
                self.duplicate_button,
                self.delete_button,
                self.message_html,
            ],
            layout=widgets.Layout(align_items="center"),
        )
        self.actions.add_class("heapseg-actions")
        if self.catalog is None:
            self.actions.layout.display = "none"
        self._show_entry()

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
        self.name = found.name
        self.description = found.description
        self.category = found.category
        self.segment_type = found.type
        self.visibility = found.visibility
        self.entry = found
        self.segment = found.segment
        self._show_entry()
        self._say(f"opened {found.name!r} (revision {found.revision})")
        return found

    def save(self) -> Any:
        """Save: a new segment, or the changes to the open one (refused if someone else saved
        it in between: the conflict is shown). Returns the saved entry, or None on error."""
        return self._act(self._save)

    def save_as(self) -> Any:
        """Save the definition as a new segment under the name in the name box."""
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

    def delete(self) -> Any:
        """Delete the open segment from the catalog (the definition stays in the builder)."""

        def run() -> Any:
            catalog = self._need_catalog()
            if self.entry is None:
                raise CatalogError("nothing to delete: this segment is not saved")
            gone = self.entry
            catalog.delete(gone, revision=gone.revision)
            self.entry = None
            self._show_entry()
            self._say(f"deleted {gone.name!r}")
            return gone

        return self._act(run)

    def _save(self, new: bool = False) -> Any:
        catalog = self._need_catalog()
        segment = self.segment
        if segment is None:
            where = "; ".join(f"{p or 'segment'}: {m}" for p, m in self.errors.items())
            raise DefinitionError(f"the definition has errors, nothing was saved ({where})")
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
            saved = catalog.update(
                entry.id,
                segment,
                name=self.name,
                description=self.description,
                category=self.category,
                visibility=self.visibility,
                revision=entry.revision,
            )
            if static and not saved.is_static:
                saved = catalog.freeze(saved, self.dataset, self.as_of)
            elif not static and saved.is_static:
                saved = catalog.unfreeze(saved)
        self.entry = saved
        self._show_entry()
        self._say(f"saved {saved.name!r} ({saved.id}, revision {saved.revision})")
        self._refresh_choices()
        return saved

    def _act(self, action: Any) -> Any:
        try:
            return action()
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
        self.message_html.value = f"<span class='{css}'>{escape(text)}</span>"

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
