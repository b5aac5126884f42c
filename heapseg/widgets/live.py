"""Queries off the widget thread: debounced, numbered, run on the worker's own connection.

Every edit asks for a new evaluation. An edit after a quiet spell runs at once; during a burst
(typing) each request waits ``debounce`` seconds for the next one, so the burst makes one more
query at its end. Queries run in a single worker thread on ``dataset.for_thread()``: DuckDB
releases the GIL there, so widget events keep flowing while it runs. Each request carries a
sequence number; only the newest one's result is ever applied, so a slow stale answer cannot
overwrite a newer one, and a query that became stale while running is interrupted when the
backend allows it. A job may show a first answer before its last (an estimate, then the exact
count): both pass the same newest-only gate.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["CountCache", "LiveRunner"]

log = logging.getLogger(__name__)


class CountCache:
    """Counts already computed, keyed by definition and ``as_of``, so unchanged rules cost nothing.

    An edit usually changes one rule: the other rules' own counts come from here. Bounded (least
    recently used first out) and shared between threads.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._items: OrderedDict[tuple, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> int | None:
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: tuple, value: int) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class LiveRunner:
    """Runs one job at a time in a worker thread, newest request only.

    Parameters
    ----------
    dataset
        The dataset; the worker uses ``dataset.for_thread()`` (its own DuckDB cursor), opened
        once in the worker and reused.
    debounce
        Seconds of quiet that end a burst of requests: a request after such a pause runs at
        once, one within a burst waits that long for a newer one (which restarts the wait).
    """

    def __init__(self, dataset: Any, debounce: float = 0.25) -> None:
        self.dataset = dataset
        self.debounce = debounce
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heapseg-live")
        self._worker_dataset: Any = None
        self._lock = threading.RLock()
        self._seq = 0
        self._running: int | None = None
        self._timer: threading.Timer | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._closed = False
        self._last_request = -math.inf

    @property
    def lock(self) -> threading.RLock:
        """Held while a result is applied: hold it to register a request and mark the widgets
        busy in one step, so no answer lands in between."""
        return self._lock

    @property
    def latest(self) -> int:
        """The sequence number of the newest request."""
        return self._seq

    def request(
        self,
        job: Callable[..., Any],
        apply: Callable[[int, Any], None],
        fail: Callable[[int, BaseException], None],
        preview: Callable[[int, Any], None] | None = None,
    ) -> int:
        """Schedule ``job(worker_dataset)``; ``apply(seq, result)`` or ``fail(seq, error)`` follow
        in the worker thread, only if no newer request came in the meantime.

        With ``preview`` the job is called as ``job(worker_dataset, show)``: ``show(partial)``
        hands a first answer to ``preview(seq, partial)`` if the request is still the newest,
        and returns whether it was (a job stops when it is not: nobody wants the rest).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("this live runner is closed")
            now = time.monotonic()
            quiet = self._idle.is_set() and now - self._last_request >= self.debounce
            self._last_request = now
            self._seq += 1
            seq = self._seq
            self._idle.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            stale = self._running is not None
        if stale:
            # Before scheduling: the interrupt can then only reach the stale query.
            self._interrupt()
        task = (job, apply, fail, preview)
        with self._lock:
            if seq != self._seq:
                return seq
            if self.debounce > 0 and not quiet:
                self._timer = threading.Timer(self.debounce, self._submit, (seq, task))
                self._timer.daemon = True
                self._timer.start()
                return seq
        self._submit(seq, task)
        return seq

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the newest request has been answered (for scripts and tests)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop: cancel a pending request and let the worker end."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            self._idle.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ worker side

    def _submit(self, seq: int, task: tuple) -> None:
        with self._lock:
            if self._closed or seq != self._seq:
                return
            self._executor.submit(self._run, seq, *task)

    def _run(self, seq: int, job: Any, apply: Any, fail: Any, preview: Any) -> None:
        with self._lock:
            if seq != self._seq:
                return
            self._running = seq

        def show(partial: Any) -> bool:
            with self._lock:
                if seq != self._seq:
                    return False
                try:
                    preview(seq, partial)
                except Exception:
                    log.exception("showing a first live result failed")
                return True

        try:
            if self._worker_dataset is None:
                self._worker_dataset = self.dataset.for_thread()
            if preview is None:
                result = job(self._worker_dataset)
            else:
                result = job(self._worker_dataset, show)
        except Exception as exc:
            error = exc
            self._finish(seq, lambda: fail(seq, error))
        else:
            self._finish(seq, lambda: apply(seq, result))

    def _finish(self, seq: int, deliver: Callable[[], None]) -> None:
        # Delivered under the lock: a request made meanwhile waits, so an answer is applied
        # only while it is the newest, and never after a newer edit was registered.
        with self._lock:
            self._running = None
            if seq != self._seq:
                return
            try:
                deliver()
            except Exception:
                log.exception("applying a live result failed")
            finally:
                self._idle.set()

    def _interrupt(self) -> None:
        """Ask the backend to stop a query whose answer nobody wants any more (DuckDB can)."""
        worker = self._worker_dataset
        if worker is None or worker is self.dataset:
            return
        con = getattr(getattr(worker, "backend", None), "con", None)
        interrupt = getattr(con, "interrupt", None)
        if interrupt is not None:
            with contextlib.suppress(Exception):
                interrupt()
