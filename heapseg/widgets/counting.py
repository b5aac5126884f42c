"""The builder's live counts: each edit's plan, cached counts, one query off-thread, newest answer only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from heapseg.model import Group
from heapseg.resolver import Resolver
from heapseg.widgets.check import WITHOUT, Plan, make_plan
from heapseg.widgets.group import GroupBox
from heapseg.widgets.live import CountCache, LiveRunner

__all__ = ["Counts", "LiveCounts"]

#: The key under which ``Dataset.counts`` answers the number of all users.
TOTAL = "__total__"


@dataclass(frozen=True)
class Counts:
    """One answer: the segment's count (None while a rule is invalid), all users, the count of
    every rule and nested group by its path (``rules[0]``, ``rules[2].rules[1]``), and the
    segment's count without each of them."""

    count: int | None
    total: int
    rule_counts: dict[str, int]
    #: Path of a rule or nested group -> the segment's count without it (what it costs).
    without_counts: dict[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float | None:
        """The segment's share of all users (0 when there are no users; None while invalid)."""
        if self.count is None:
            return None
        return self.count / self.total if self.total else 0.0


class LiveCounts:
    """Counts a builder's tree of rows as it is edited, off the notebook's thread.

    Each :meth:`update` validates the rows (:func:`make_plan`), marks the invalid ones at once,
    and asks the backend, in one query run by a :class:`LiveRunner`, for the counts the plan
    lists that are not cached yet. Only the newest edit's answer is applied: it goes to the
    rows' status lines, then to ``on_counts``; a failure goes to ``on_failure``.

    Parameters
    ----------
    dataset
        The :class:`heapseg.Dataset` to count on (the worker uses its ``for_thread()``).
    resolver
        What ``segment`` rules are resolved with (the catalog), or None.
    debounce
        Seconds of quiet after an edit before the counts are asked for.
    on_plan, on_counts, on_failure
        Called with the plan of each edit (at once, on the calling thread), then with the
        :class:`Counts` or the error of the newest edit (on the worker thread).
    """

    def __init__(
        self,
        dataset: Any,
        resolver: Resolver | None,
        *,
        debounce: float,
        on_plan: Callable[[Plan], None],
        on_counts: Callable[[Counts], None],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.dataset = dataset
        self.resolver = resolver
        self._on_plan = on_plan
        self._on_counts = on_counts
        self._on_failure = on_failure
        self._runner = LiveRunner(dataset, debounce=debounce)
        self._cache = CountCache()

    def update(self, root: GroupBox, as_of: datetime) -> Plan:
        """Plan the counts of the tree under ``root`` at ``as_of`` and ask for them."""
        plan = make_plan(root, self.dataset, as_of, self.resolver)
        # Under the runner's lock: no answer lands between the request and the busy marks.
        with self._runner.lock:
            self._runner.request(
                lambda worker: self._count(worker, plan, as_of),
                lambda seq, result: self._apply(root, plan, result),
                lambda seq, error: self._on_failure(error),
            )
            self._on_plan(plan)
            self._mark_rows(root, plan)
        return plan

    def forget(self) -> None:
        """Drop the cached counts (the data or the catalog changed)."""
        self._cache.clear()

    def wait(self, timeout: float | None = 60) -> bool:
        """Block until the newest edit's counts are applied."""
        return self._runner.wait(timeout)

    def close(self) -> None:
        """Stop: a pending request is dropped and the worker ends."""
        self._runner.close()

    # ------------------------------------------------------------------ worker side

    @staticmethod
    def _key(segment: Group, as_of: datetime) -> tuple | None:
        if segment.referenced_segments():
            return None  # what a reference selects lives in the catalog and may change
        return (json.dumps(segment.to_dict(), sort_keys=True), as_of.isoformat())

    def _count(self, worker: Any, plan: Plan, as_of: datetime) -> dict[str, int]:
        """The counts the plan asks for: cached ones, the rest in one backend query."""
        out: dict[str, int] = {}
        todo: dict[str, Group] = {}
        # A segment without one of its two rules is the other rule alone: asked once.
        first_of: dict[tuple, str] = {}
        same: dict[str, str] = {}
        for path, segment in plan.queries.items():
            key = self._key(segment, as_of)
            cached = self._cache.get(key) if key is not None else None
            if cached is not None:
                out[path] = cached
            elif key is not None and key in first_of:
                same[path] = first_of[key]
            else:
                if key is not None:
                    first_of[key] = path
                todo[path] = segment
        total = self._cache.get((TOTAL, as_of.isoformat()))
        if todo or total is None:
            if worker is not self.dataset:
                # Unknown event names are already shown on their rows (make_plan); compiled
                # again here they would print a warning into whatever cell is running.
                # warnings.catch_warnings is process-wide, not safe from this thread, so the
                # worker's own dataset skips the event-name check instead.
                worker.check_events = False
            result = worker.counts(todo, as_of, resolver=self.resolver)
            total = result.pop(TOTAL)
            self._cache.put((TOTAL, as_of.isoformat()), total)
            for path, number in result.items():
                key = self._key(plan.queries[path], as_of)
                if key is not None:
                    self._cache.put(key, number)
            out.update(result)
        out.update({path: out[first] for path, first in same.items()})
        out[TOTAL] = total
        return out

    # ------------------------------------------------------------------ showing

    @staticmethod
    def _mark_rows(root: GroupBox, plan: Plan) -> None:
        """What is known at once: errors on their rows, and "counting" on rows just mended."""
        for path, node in root.walk(""):
            error, warning = plan.errors.get(path), plan.warnings.get(path)
            incomplete = plan.incomplete.get(path)
            if error or incomplete or path not in plan.queries:
                node.show(error=error, warning=warning, incomplete=incomplete)
            elif node.invalid or node.unfinished:
                node.show(busy=True, warning=warning)

    def _apply(self, root: GroupBox, plan: Plan, result: dict[str, int]) -> None:
        total = result[TOTAL]
        counts = Counts(
            count=result.get(""),
            total=total,
            rule_counts={
                p: n for p, n in result.items() if p not in ("", TOTAL) and WITHOUT not in p
            },
            without_counts={
                p[len(WITHOUT) :]: n for p, n in result.items() if p.startswith(WITHOUT)
            },
        )
        for path, node in root.walk(""):
            if path and path in result:
                node.show(
                    count=result[path],
                    total=total,
                    warning=plan.warnings.get(path),
                    without=counts.without_counts.get(path),
                    whole=counts.count,
                )
        self._on_counts(counts)
