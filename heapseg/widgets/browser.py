"""The catalog browser widget: segments by category with counts, search, members, export, open."""

from __future__ import annotations

import math
import re
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import traitlets

from heapseg.catalog.export_files import file_stem, free_path
from heapseg.errors import HeapsegError
from heapseg.widgets.builder import SegmentBuilder
from heapseg.widgets.choices import set_options
from heapseg.widgets.live import LiveRunner
from heapseg.widgets.style import stylesheet

__all__ = ["CatalogBrowser"]

_ALL = ""
#: What Export can write: the file's extension.
EXPORT_FORMATS = ("csv", "parquet")


def _css_id(segment_id: str) -> str:
    """A CSS class naming one entry's row (ids are slugs, but stay safe)."""
    return "heapseg-entry-" + re.sub(r"[^A-Za-z0-9_-]", "_", segment_id)


def _button(text: str, css: str, tooltip: str = "") -> widgets.Button:
    out = widgets.Button(description=text, tooltip=tooltip, layout=widgets.Layout(width="auto"))
    out.add_class(css)
    return out


class CatalogBrowser(widgets.VBox):
    """The team's segments, grouped by category, each with its count and share of all users.

    The counts of all listed segments come from one backend query (the catalog's overview),
    run off the notebook's thread. Search and filters work on what is already loaded.

    Parameters
    ----------
    dataset
        The :class:`heapseg.Dataset` the counts, members and exports come from.
    catalog
        The :class:`heapseg.catalog.Catalog` to browse.
    as_of
        The moment counts are evaluated at (default: the dataset's default, else now).
    export_dir
        The folder Export writes members files into, at first (default: the current folder);
        the analyst changes it in the "Export to" box (``export_folder``).
    page_size
        Members shown per page.

    Attributes
    ----------
    entries : list of SegmentEntry
        The entries shown, after search and filters, in display order.
    counts, shares, problems : dict
        Segment id -> count, share of all users, or why it cannot be counted.
    total : int or None
        All users at ``as_of``.
    search, category_filter, type_filter, owner_filter : str
        The search text and filters ("" for any).
    members : pandas.DataFrame or None
        The page of members on show (``members_of`` is its segment id, ``page`` its number).
    builder : SegmentBuilder or None
        The builder the last "Open" filled.
    export_folder, export_format : str
        Where Export writes (a folder, created if missing) and how (``"csv"`` or
        ``"parquet"``); each file is named after its segment (``US repeat buyers.csv``,
        ``US repeat buyers (2).csv`` when that is taken).

    Examples
    --------
    >>> import heapseg
    >>> ds = heapseg.connect()
    >>> catalog = heapseg.Catalog("team-segments.json")
    >>> paid = catalog.save(heapseg.user.subscription_type == "paid", "Paid")
    >>> browser = heapseg.CatalogBrowser(ds, catalog)  # the last line of a cell shows it
    >>> browser.wait()
    True
    >>> browser.counts[paid.id], browser.total
    (2643, 10000)
    >>> browser.close()
    """

    entries = traitlets.List()
    counts = traitlets.Dict()
    shares = traitlets.Dict()
    problems = traitlets.Dict()
    total = traitlets.Int(None, allow_none=True)
    busy = traitlets.Bool(False)
    search = traitlets.Unicode("")
    category_filter = traitlets.Unicode(_ALL)
    type_filter = traitlets.Unicode(_ALL)
    owner_filter = traitlets.Unicode(_ALL)
    as_of = traitlets.Any()
    members = traitlets.Any(None)
    members_of = traitlets.Unicode(None, allow_none=True)
    page = traitlets.Int(0)
    builder = traitlets.Any(None)
    message = traitlets.Unicode("")
    export_folder = traitlets.Unicode("")
    export_format = traitlets.Enum(EXPORT_FORMATS, default_value="csv")
    last_error = traitlets.Any(None)

    def __init__(
        self,
        dataset: Any,
        catalog: Any,
        *,
        as_of: Any = None,
        export_dir: str | Path | None = None,
        page_size: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.add_class("heapseg-browser")
        self.dataset = dataset
        self.catalog = catalog
        self.export_folder = str(Path(export_dir) if export_dir is not None else Path.cwd())
        self.page_size = page_size
        self.as_of = dataset.resolve_as_of(as_of)
        self._all: list[Any] = []
        # Counts and member pages/exports each have their own worker (and DuckDB cursor), so
        # opening a members page does not cancel the counts being loaded.
        self._counts_runner = LiveRunner(dataset, debounce=0)
        self._detail_runner = LiveRunner(dataset, debounce=0)
        self._build()
        for name in ("search", "category_filter", "type_filter", "owner_filter"):
            self.observe(lambda _: self._render(), name)
        self.observe(lambda _: self.reload(), "as_of")
        self.reload()

    @traitlets.validate("as_of")
    def _valid_as_of(self, proposal: dict) -> datetime:
        # Accept what the engine accepts (ISO strings, dates, aware datetimes); keep naive UTC.
        return self.dataset.resolve_as_of(proposal["value"])

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.search_input = widgets.Text(
            placeholder="Search name, description, category", layout=widgets.Layout(width="22em")
        )
        self.search_input.add_class("heapseg-search")
        self.category_input = widgets.Dropdown(
            options=[("any category", _ALL)], layout=widgets.Layout(width="12em")
        )
        self.category_input.add_class("heapseg-filter-category")
        self.type_input = widgets.Dropdown(
            options=[("any type", _ALL), ("dynamic", "dynamic"), ("static", "static")],
            layout=widgets.Layout(width="9em"),
        )
        self.type_input.add_class("heapseg-filter-type")
        self.owner_input = widgets.Dropdown(
            options=[("any owner", _ALL)], layout=widgets.Layout(width="10em")
        )
        self.owner_input.add_class("heapseg-filter-owner")
        self.reload_button = _button("Reload", "heapseg-reload", "Re-read the catalog and count")
        self.reload_button.on_click(lambda _: self.reload())
        for trait, widget in (
            ("search", self.search_input),
            ("category_filter", self.category_input),
            ("type_filter", self.type_input),
            ("owner_filter", self.owner_input),
        ):
            traitlets.link((self, trait), (widget, "value"))
        self.status_html = widgets.HTML("")
        self.status_html.add_class("heapseg-browser-status")
        toolbar = widgets.HBox(
            [
                self.search_input,
                self.category_input,
                self.type_input,
                self.owner_input,
                self.reload_button,
                self.status_html,
            ],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.listing = widgets.VBox()
        self.listing.add_class("heapseg-listing")
        self.message_html = widgets.HTML("")
        self.message_html.add_class("heapseg-message")
        self.detail = widgets.VBox()
        self.detail.add_class("heapseg-detail")
        self.export_input = widgets.Text(
            description="Export to",
            placeholder="a folder",
            layout=widgets.Layout(width="34em"),
            style={"description_width": "5em"},
        )
        self.export_input.add_class("heapseg-export-folder")
        self.format_input = widgets.Dropdown(
            options=[("CSV", "csv"), ("Parquet", "parquet")], layout=widgets.Layout(width="8em")
        )
        self.format_input.add_class("heapseg-export-format")
        traitlets.link((self, "export_folder"), (self.export_input, "value"))
        traitlets.link((self, "export_format"), (self.format_input, "value"))
        exports = widgets.HBox(
            [self.export_input, self.format_input],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.children = (
            stylesheet(),
            toolbar,
            exports,
            self.listing,
            self.message_html,
            self.detail,
        )

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        """Re-read the catalog and count every listed segment (one backend query, off-thread)."""
        self._all = list(self.catalog.list())
        self._update_filters()
        self.busy = True
        self.status_html.value = "<span class='heapseg-busy-indicator'>counting…</span>"
        catalog, as_of = self.catalog, self.as_of
        with self._counts_runner.lock:
            self._counts_runner.request(
                lambda ds: catalog.overview(ds, as_of),
                lambda seq, frame: self._show_overview(frame),
                lambda seq, error: self._failed("counting the segments failed", error),
            )
            self._render()

    def wait(self, timeout: float | None = 60) -> bool:
        """Block until counts and the last members page / export are done (scripts and tests)."""
        return self._counts_runner.wait(timeout) and self._detail_runner.wait(timeout)

    def close(self) -> None:
        """Stop the workers and close the widget (and the builder it opened)."""
        self._counts_runner.close()
        self._detail_runner.close()
        if self.builder is not None:
            self.builder.close()
        super().close()

    def _show_overview(self, frame: Any) -> None:
        counts, shares, problems = {}, {}, {}
        for row in frame.to_dict("records"):
            if isinstance(row["problem"], str):
                problems[row["id"]] = row["problem"]
            elif not _missing(row["count"]):
                counts[row["id"]] = int(row["count"])
                shares[row["id"]] = float(row["share"])
        self.counts, self.shares, self.problems = counts, shares, problems
        total = frame.attrs.get("total_users")
        self.total = int(total) if total is not None else None
        self.busy = False
        self.status_html.value = (
            f"{len(self._all)} segment{'' if len(self._all) == 1 else 's'} · "
            f"{self.total:,} users · as of "
            f"{self.as_of.isoformat(sep=' ', timespec='minutes')} UTC · "
            f"{escape(self.dataset.properties_note())}"
            if self.total is not None
            else ""
        )
        self._render()

    def _update_filters(self) -> None:
        categories = sorted({e.category for e in self._all if e.category})
        set_options(
            self.category_input,
            [("any category", _ALL), *((c, c) for c in categories)],
            self.category_filter if self.category_filter in categories else _ALL,
        )
        owners = sorted({e.owner for e in self._all})
        set_options(
            self.owner_input,
            [("any owner", _ALL), *((o, o) for o in owners)],
            self.owner_filter if self.owner_filter in owners else _ALL,
        )

    # ------------------------------------------------------------------ listing

    def _matches(self, entry: Any) -> bool:
        needle = self.search.strip().casefold()
        if needle and not any(
            needle in text.casefold()
            for text in (entry.id, entry.name, entry.description, entry.category)
        ):
            return False
        if self.category_filter and entry.category != self.category_filter:
            return False
        if self.type_filter and entry.type != self.type_filter:
            return False
        return not (self.owner_filter and entry.owner != self.owner_filter)

    def _render(self) -> None:
        shown = [e for e in self._all if self._matches(e)]
        by_category: dict[str, list] = {}
        for entry in shown:
            by_category.setdefault(entry.category or "Uncategorised", []).append(entry)
        rows: list[widgets.Widget] = []
        ordered: list = []
        for category in sorted(by_category, key=lambda c: (c == "Uncategorised", c.casefold())):
            title = widgets.HTML(escape(category))
            title.add_class("heapseg-category-title")
            rows.append(title)
            for entry in sorted(by_category[category], key=lambda e: e.name.casefold()):
                rows.append(self._row(entry))
                ordered.append(entry)
        if not rows:
            empty = widgets.HTML(
                "<i>no segment matches</i>" if self._all else "<i>the catalog is empty</i>"
            )
            empty.add_class("heapseg-empty")
            rows.append(empty)
        self.entries = ordered
        self.listing.children = tuple(rows)

    def _row(self, entry: Any) -> widgets.HBox:
        if entry.id in self.counts:
            figure = f"<b>{self.counts[entry.id]:,}</b> users · {self.shares[entry.id]:.1%}"
        elif entry.id in self.problems:
            figure = f"<span class='heapseg-row-error'>⚠ {escape(self.problems[entry.id])}</span>"
        else:
            figure = "<span class='heapseg-busy-indicator'>…</span>"
        count = widgets.HTML(figure, layout=widgets.Layout(width="14em"))
        count.add_class("heapseg-entry-count")
        described = escape(entry.description) if entry.description else "<i>no description</i>"
        name = widgets.HTML(
            f"<b>{escape(entry.name)}</b><br><small>{described}</small>",
            layout=widgets.Layout(width="24em"),
        )
        name.add_class("heapseg-entry-name")
        changed = entry.updated_at.strftime("%Y-%m-%d %H:%M")
        facts = widgets.HTML(
            f"{escape(entry.type)}{' · personal' if entry.visibility == 'personal' else ''}"
            f"<br><small>{escape(entry.owner)} · {changed}</small>",
            layout=widgets.Layout(width="13em"),
        )
        facts.add_class("heapseg-entry-facts")
        buttons = [
            _button("Open", "heapseg-open", "Open in a segment builder"),
            _button("Members", "heapseg-members-button", "Show a page of members"),
            _button("Export", "heapseg-export", "Write the members to a file"),
        ]
        buttons[0].on_click(lambda _: self.open_in_builder(entry.id))
        buttons[1].on_click(lambda _: self.show_members(entry.id))
        buttons[2].on_click(lambda _: self.export(entry.id))
        if entry.is_static:
            refresh = _button("Refresh", "heapseg-refresh", "Re-freeze the members now")
            refresh.on_click(lambda _: self.refresh_static(entry.id))
            buttons.append(refresh)
        row = widgets.HBox(
            [name, facts, count, *buttons], layout=widgets.Layout(align_items="center")
        )
        row.add_class("heapseg-entry-row")
        row.add_class(_css_id(entry.id))
        return row

    # ------------------------------------------------------------------ actions

    def open_in_builder(self, key: str) -> Any:
        """Open a segment (id or name) in a :class:`SegmentBuilder` shown below the list."""
        try:
            if self.builder is None:
                self.builder = SegmentBuilder(self.dataset, self.catalog, as_of=self.as_of)
            self.builder.open(key)
        except HeapsegError as exc:
            self._say(str(exc), exc)
            return None
        self.detail.children = (self.builder,)
        self._say(f"opened {self.builder.name!r} in the builder below")
        return self.builder

    def show_members(self, key: str, page: int = 0) -> None:
        """Show a page of a segment's members with their properties (off-thread)."""
        try:
            entry = self.catalog.get(key)
        except HeapsegError as exc:
            self._say(str(exc), exc)
            return
        catalog, as_of, size = self.catalog, self.as_of, self.page_size
        count = self.counts.get(entry.id)

        def job(ds: Any) -> Any:
            table = catalog.members(entry, ds, as_of).order_by("user_id")
            return ds.to_pandas(table.limit(size, offset=page * size))

        with self._detail_runner.lock:
            self._detail_runner.request(
                job,
                lambda seq, frame: self._show_page(entry, page, count, frame),
                lambda seq, error: self._failed(
                    f"listing the members of {entry.name!r} failed", error
                ),
            )
            self.detail.children = (widgets.HTML("<i>loading members…</i>"),)

    def _show_page(self, entry: Any, page: int, count: int | None, frame: Any) -> None:
        self.members, self.members_of, self.page = frame, entry.id, page
        pages = math.ceil(count / self.page_size) if count else None
        title = widgets.HTML(
            f"<b>{escape(entry.name)}</b>: members, page {page + 1}"
            + (f" of {pages}" if pages else "")
        )
        table = widgets.HTML(frame.to_html(index=False, border=0, na_rep=""))
        table.add_class("heapseg-members")
        previous = _button("◀ Previous", "heapseg-page-previous")
        following = _button("Next ▶", "heapseg-page-next")
        previous.disabled = page == 0
        following.disabled = len(frame) < self.page_size or (
            pages is not None and page + 1 >= pages
        )
        previous.on_click(lambda _: self.show_members(entry.id, page - 1))
        following.on_click(lambda _: self.show_members(entry.id, page + 1))
        self.detail.children = (title, table, widgets.HBox([previous, following]))

    def export(self, key: str, path: str | Path | None = None) -> None:
        """Write a segment's members (``user_id`` + user properties) to CSV or Parquet, off-thread.

        ``path`` defaults to a file named after the segment in :attr:`export_folder` (created
        if missing), in :attr:`export_format`: ``<folder>/US repeat buyers.csv``, or
        ``US repeat buyers (2).csv`` when that file exists. A ``path``'s extension picks the
        format.
        """
        try:
            entry = self.catalog.get(key)
        except HeapsegError as exc:
            self._say(str(exc), exc)
            return
        if path is not None:
            target = Path(path)
        else:
            folder = self.export_dir
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._say(f"cannot export into {folder}: {exc.strerror or exc}", exc)
                return
            target = free_path(folder, file_stem(entry.name), f".{self.export_format}")
        catalog, as_of = self.catalog, self.as_of
        with self._detail_runner.lock:
            self._detail_runner.request(
                lambda ds: catalog.export(entry, ds, target, as_of=as_of),
                lambda seq, written: self._say(f"exported {entry.name!r} to {written}"),
                lambda seq, error: self._failed(f"exporting {entry.name!r} failed", error),
            )
            self._say(f"exporting {entry.name!r}…")

    @property
    def export_dir(self) -> Path:
        """The folder Export writes into (:attr:`export_folder`; empty: the current folder)."""
        return Path(self.export_folder).expanduser() if self.export_folder.strip() else Path.cwd()

    def refresh_static(self, key: str) -> Any:
        """Re-freeze a static segment's members now and say who entered and left.

        The refresh is based on the revision on show: if someone changed the segment since
        the last reload, it is a conflict (shown), not an overwrite; Reload, then refresh.
        """
        folded = key.strip().casefold()
        shown = next((e for e in self._all if e.id == key or e.name.casefold() == folded), None)
        try:
            done = self.catalog.refresh(
                shown if shown is not None else key, self.dataset, self.as_of
            )
        except HeapsegError as exc:
            self._say(str(exc), exc)
            return None
        self._say(
            f"refreshed {done.entry.name!r}: {done.after:,} members "
            f"({done.entered:,} entered, {done.left:,} left)"
        )
        self.reload()
        return done

    def _failed(self, what: str, error: BaseException) -> None:
        self.busy = False
        self._say(f"{what}: {error}", error if isinstance(error, Exception) else None)

    def _say(self, text: str, error: Exception | None = None) -> None:
        self.last_error = error
        self.message = text
        css = "heapseg-message-error" if error is not None else "heapseg-message-info"
        self.message_html.value = f"<span class='{css}'>{escape(text)}</span>"


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))
