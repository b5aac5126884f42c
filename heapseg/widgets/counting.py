"""The builder's live counts: each edit's plan, cached counts, one query off-thread, newest answer only.

On a large dataset an edit is answered twice: first estimates from a sample of the users, then
the exact counts that replace them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from heapseg.model import Group
from heapseg.resolver import Resolver
from heapseg.sampling import Estimate
from heapseg.widgets.check import WITHOUT, Plan, make_plan
from heapseg.widgets.group import GroupBox
from heapseg.widgets.live import CountCache, LiveRunner

__all__ = ["Counts", "LiveCounts"]

#: The key under which ``Dataset.counts`` answers the number of all users.
TOTAL = "__total__"
#: Above this many users, an edit is first answered by estimates (see :class:`LiveCounts`).
ESTIMATE_ABOVE = 200_000
#: How many users the builder's sample holds, about (the share follows the dataset's size).
SAMPLE_USERS = 50_000


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
    #: The counts that are estimates, by path (``""``: the segment's): the first answer to an
    #: edit on a large dataset. Empty once the exact counts are in.
    estimates: dict[str, Estimate] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """Whether every count is exact (no estimate among them)."""
        return not self.estimates

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
    estimate_above
        On a dataset with more users than this, each edit is first answered with estimates
        (:class:`Counts` with ``estimates``) from a sample of the users, then with the
        segment's exact count (its own query, as ``Dataset.count`` runs it), then with every
        exact count; ``None`` never estimates. The users are counted once, by the first answer.
    sample
        The share of users the estimates are made on; ``None``: about ``SAMPLE_USERS`` users
        whatever the dataset's size (5% of a million users).
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
        estimate_above: int | None = ESTIMATE_ABOVE,
        sample: float | None = None,
    ) -> None:
        self.dataset = dataset
        self.resolver = resolver
        self.estimate_above = estimate_above
        self.sample = sample
        self._on_plan = on_plan
        self._on_counts = on_counts
        self._on_failure = on_failure
        self._runner = LiveRunner(dataset, debounce=debounce)
        self._cache = CountCache()

    def update(self, root: GroupBox, as_of: datetime) -> Plan:
        """Plan the counts of the tree under ``root`` at ``as_of`` and ask for them."""
        plan = make_plan(root, self.dataset, as_of, self.resolver)
        apply = lambda seq, result: self._apply(root, plan, result)  # noqa: E731
        fail = lambda seq, error: self._on_failure(error)  # noqa: E731
        # Under the runner's lock: no answer lands between the request and the busy marks.
        with self._runner.lock:
            if self.estimate_above is None:
                self._runner.request(lambda worker: self._count(worker, plan, as_of), apply, fail)
            else:
                self._runner.request(
                    lambda worker, show: self._progressive(worker, plan, as_of, show),
                    apply,
                    fail,
                    preview=lambda seq, result: self._apply(root, plan, result),
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

    def _progressive(
        self, worker: Any, plan: Plan, as_of: datetime, show: Callable[[dict], bool]
    ) -> dict[str, Any] | None:
        """Estimates first (shown through ``show``) when the dataset is large, then the exact
        counts; None when a newer edit made the estimates unwanted (no exact query is run)."""
        estimates = self._estimate(worker, plan, as_of)
        if estimates is None:
            return self._count(worker, plan, as_of)
        if not show(estimates):
            return None
        _, todo, _ = self._todo(plan, as_of)
        segment = todo.get("")
        key = self._key(segment, as_of) if segment is not None else None
        if key is not None and len(todo) > 1:
            # The figure read first, exact as soon as ds.count would have it: the segment
            # alone (cached for the next query), before the rules' and groups' counts.
            exact = worker.count(segment, as_of, resolver=self.resolver)
            self._cache.put(key, exact)
            if not show({**estimates, "": exact}):
                return None
        return self._count(worker, plan, as_of)

    def _estimate(self, worker: Any, plan: Plan, as_of: datetime) -> dict[str, Any] | None:
        """Estimates of the counts not cached yet, in one query on a sample of the users (with
        the cached exact ones); None when the dataset is not large or everything is cached."""
        total = self._total(worker, as_of)
        if self.estimate_above is None or total <= self.estimate_above:
            return None
        out, todo, same = self._todo(plan, as_of)
        if not todo:
            return None
        share = self.sample if self.sample is not None else min(1.0, SAMPLE_USERS / total)
        if worker is not self.dataset:
            worker.check_events = False  # see _count
        out.update(worker.counts(todo, as_of, resolver=self.resolver, sample=share))
        out.update({path: out[first] for path, first in same.items()})
        return out

    def _total(self, worker: Any, as_of: datetime) -> int:
        """All users at ``as_of`` (cached with the counts)."""
        key = (TOTAL, as_of.isoformat())
        total = self._cache.get(key)
        if total is None:
            total = worker.total_users(as_of)
            self._cache.put(key, total)
        return total

    def _todo(
        self, plan: Plan, as_of: datetime
    ) -> tuple[dict[str, Any], dict[str, Group], dict[str, str]]:
        """The plan's cached counts, the definitions to ask for, and the paths whose definition
        is another path's (asked once)."""
        out: dict[str, Any] = {}
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
        return out, todo, same

    def _count(self, worker: Any, plan: Plan, as_of: datetime) -> dict[str, int]:
        """The counts the plan asks for: cached ones, the rest in one backend query."""
        out, todo, same = self._todo(plan, as_of)
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

    def _apply(self, root: GroupBox, plan: Plan, result: dict[str, Any]) -> None:
        total = result[TOTAL]
        estimates = {p: n for p, n in result.items() if isinstance(n, Estimate)}
        numbers = {p: int(n) for p, n in result.items()}
        counts = Counts(
            count=numbers.get(""),
            total=total,
            rule_counts={
                p: n for p, n in numbers.items() if p not in ("", TOTAL) and WITHOUT not in p
            },
            without_counts={
                p[len(WITHOUT) :]: n for p, n in numbers.items() if p.startswith(WITHOUT)
            },
            estimates={p: e for p, e in estimates.items() if WITHOUT not in p},
        )
        for path, node in root.walk(""):
            if path and path in result:
                node.show(
                    count=numbers[path],
                    total=total,
                    warning=plan.warnings.get(path),
                    without=counts.without_counts.get(path),
                    whole=counts.count,
                    estimate=estimates.get(path),
                )
        self._on_counts(counts)
