"""Progress of long work: a bar widget in a notebook, a bar on stderr in a terminal.

Long work (building the sample, a size-over-time chart of many moments, refreshing static
segments, exporting members, a slow query) reports through :func:`progress`. Where it shows:

* in a Jupyter kernel with ipywidgets, as a progress bar widget under the cell, closed when the
  work ends (work of known size only, so that a notebook's outputs never depend on timing);
* in a terminal (stderr is a TTY), as a bar redrawn in place on stderr, or as a running clock for
  work of unknown size once it lasts :data:`QUIET_SECONDS`;
* nowhere else (pipes, logs, tests): the steps go to the ``heapseg.progress`` logger.

``HEAPSEG_PROGRESS=off`` turns every display off; ``=on`` shows the terminal bar even when stderr
is not a TTY.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["QUIET_SECONDS", "Progress", "progress"]

log = logging.getLogger(__name__)

#: Work of unknown size shows a clock in the terminal only once it has run this long.
QUIET_SECONDS = 2.0
_ENV = "HEAPSEG_PROGRESS"
_WIDTH = 28
#: Work inside other work (a query inside an export) shows nothing of its own.
_active = threading.local()


class Progress:
    """One piece of long work: ``advance`` it as steps are done, ``note`` what it is doing."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None, widget: Any) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self._stream = stream
        self._widget = widget
        self._lock = threading.Lock()
        self._drawn = False

    def advance(self, steps: int = 1, note: str = "") -> None:
        """Count ``steps`` more steps as done (and say what was done)."""
        with self._lock:
            self.done += steps
            log.debug("%s: %s/%s %s", self.label, self.done, self.total or "?", note)
            self._draw(note)

    def _draw(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if self._widget is not None:
            bar, text = self._widget
            bar.value = min(self.done, bar.max)
            text.value = f"{self.label}: {self.done:,} of {self.total:,} {note}".strip()
        if self._stream is None:
            return
        if self.total:
            filled = round(_WIDTH * min(self.done, self.total) / self.total)
            line = (
                f"{self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] "
                f"{self.done:,}/{self.total:,} {elapsed:5.1f}s"
            )
        else:
            line = f"{self.label} ... {elapsed:5.1f}s"
        self._stream.write(f"\r{line} {note}"[:200].ljust(60))
        self._stream.flush()
        self._drawn = True

    def _tick(self) -> None:
        with self._lock:
            self._draw()

    def _finish(self) -> None:
        with self._lock:
            if self._widget is not None:
                for part in self._widget:
                    part.close()
            if self._stream is not None and self._drawn:
                self._stream.write("\n")
                self._stream.flush()
        log.debug("%s: done in %.1fs", self.label, time.monotonic() - self.started)


def _setting() -> str:
    return os.environ.get(_ENV, "").strip().lower()


def _terminal(stream: TextIO) -> TextIO | None:
    setting = _setting()
    if setting in ("off", "0", "no"):
        return None
    if setting in ("on", "1", "yes"):
        return stream
    isatty = getattr(stream, "isatty", None)
    return stream if isatty is not None and isatty() else None


def _notebook_widget(label: str, total: int | None) -> Any:
    if total is None or _setting() in ("off", "0", "no"):
        return None
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    import ipywidgets as widgets
    from IPython.display import display

    bar = widgets.IntProgress(value=0, min=0, max=max(total, 1), description="")
    text = widgets.HTML(value=label)
    display(widgets.HBox([bar, text]))
    return bar, text


@contextmanager
def progress(
    label: str, total: int | None = None, *, stream: TextIO | None = None
) -> Iterator[Progress]:
    """Report the progress of ``total`` steps of work (``None``: of unknown size).

    >>> with progress("counting", total=3) as work:
    ...     for _ in range(3):
    ...         work.advance()
    >>> work.done
    3
    """
    nested = getattr(_active, "depth", 0) > 0
    out = None if nested else _terminal(stream if stream is not None else sys.stderr)
    # In a notebook the kernel's stderr is no terminal: the widget shows instead.
    widget = _notebook_widget(label, total) if out is None and not nested else None
    work = Progress(label, total, out, widget)
    _active.depth = getattr(_active, "depth", 0) + 1
    stop = threading.Event()
    clock = None
    if out is not None and total is None:

        def keep_time() -> None:
            if not stop.wait(QUIET_SECONDS):
                while not stop.wait(0.5):
                    work._tick()

        clock = threading.Thread(target=keep_time, daemon=True, name="heapseg-progress")
        clock.start()
    try:
        yield work
    finally:
        _active.depth -= 1
        stop.set()
        if clock is not None:
            clock.join()
        work._finish()
