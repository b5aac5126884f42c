"""Progressive counts: estimates first, then the exact counts; stale answers dropped, edits cancel.

Ordering is driven by events the tests hold (a query waits on a gate), never by sleeping.
"""

from __future__ import annotations

import threading

import pytest

from heapseg.model import Group
from heapseg.sampling import Estimate
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.counting import Counts, LiveCounts
from heapseg.widgets.group import GroupBox
from heapseg.widgets.live import LiveRunner

from .conftest import WINDOW_SHOPPERS

PAID = {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}


class FakeDataset:
    def for_thread(self):
        return "worker"


# ---------------------------------------------------------------------------- the runner


def test_a_preview_is_shown_before_the_final_answer():
    seen: list[tuple[str, int, object]] = []
    runner = LiveRunner(FakeDataset(), debounce=0)

    def job(worker, show):
        assert show("first") is True
        return "last"

    try:
        runner.request(
            job,
            lambda seq, r: seen.append(("apply", seq, r)),
            lambda seq, e: seen.append(("fail", seq, e)),
            preview=lambda seq, r: seen.append(("preview", seq, r)),
        )
        assert runner.wait(10)
    finally:
        runner.close()
    assert seen == [("preview", 1, "first"), ("apply", 1, "last")]


def test_a_newer_request_stops_a_job_before_its_preview_and_its_rest():
    seen: list[tuple[str, int, object]] = []
    gate, started = threading.Event(), threading.Event()
    shown: list[bool] = []
    runner = LiveRunner(FakeDataset(), debounce=0)

    def slow(worker, show):
        started.set()
        gate.wait(10)
        shown.append(show("old estimate"))
        return "old exact"

    def fast(worker, show):
        show("new estimate")
        return "new exact"

    def ask(job):
        runner.request(
            job,
            lambda seq, r: seen.append(("apply", seq, r)),
            lambda seq, e: seen.append(("fail", seq, e)),
            preview=lambda seq, r: seen.append(("preview", seq, r)),
        )

    try:
        ask(slow)
        assert started.wait(10)
        ask(fast)  # while the first is in flight
        gate.set()
        assert runner.wait(10)
    finally:
        runner.close()
    assert shown == [False]  # the stale job was told to stop
    assert seen == [("preview", 2, "new estimate"), ("apply", 2, "new exact")]


# ---------------------------------------------------------------------------- the counts


class Heard:
    def __init__(self) -> None:
        self.counts: list[Counts] = []
        self.rows: list[str] = []
        self.failures: list[BaseException] = []


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def root(ds) -> GroupBox:
    return GroupBox(DataChoices(ds), root=True)


def progressive(ds, heard: Heard, root: GroupBox, **options) -> LiveCounts:
    """Counts that always estimate first (estimate_above=0) on a fifth of the users."""

    def on_counts(counts: Counts) -> None:
        heard.counts.append(counts)
        heard.rows.append(root.nodes[0].status.value if root.nodes else "")

    options.setdefault("estimate_above", 0)
    options.setdefault("sample", 0.2)
    return LiveCounts(
        ds,
        None,
        debounce=0,
        on_plan=lambda plan: None,
        on_counts=on_counts,
        on_failure=heard.failures.append,
        **options,
    )


@pytest.fixture
def queries(ds, monkeypatch):
    """Every backend counts() call as ("estimate" | "exact", paths), with gates to hold them."""
    calls: list[tuple[str, set[str]]] = []
    gates: dict[int, threading.Event] = {}
    reached: dict[int, threading.Event] = {}
    real = type(ds).counts

    def spy(self, segments, *args, sample=None, **kwargs):
        n = len(calls)
        calls.append(("estimate" if sample is not None else "exact", set(segments)))
        if n in gates:
            reached[n].set()
            gates[n].wait(10)
        return real(self, segments, *args, sample=sample, **kwargs)

    def hold(n: int) -> tuple[threading.Event, threading.Event]:
        gates[n], reached[n] = threading.Event(), threading.Event()
        return gates[n], reached[n]

    monkeypatch.setattr(type(ds), "counts", spy)
    spy.calls, spy.hold = calls, hold
    return spy


def alone(rule: dict) -> dict:
    return {"combinator": "and", "rules": [rule]}


def test_an_edit_shows_estimates_then_the_exact_counts(ds, root, heard, queries):
    root.set_model(Group.from_dict(WINDOW_SHOPPERS))
    counting = progressive(ds, heard, root)
    try:
        counting.update(root, ds.resolve_as_of(None))
        assert counting.wait(60)
    finally:
        counting.close()
    first, middle, last = heard.counts
    assert not first.exact and not middle.exact and last.exact
    # The segment, each rule (and the segment without each rule) estimated in one query; then
    # the segment's exact count alone (as ds.count runs it), then the rules' in one query.
    assert [kind for kind, _ in queries.calls] == ["estimate", "exact"]
    assert queries.calls[1][1] == queries.calls[0][1] - {""}
    exact = ds.count(WINDOW_SHOPPERS)
    assert middle.count == exact and set(middle.estimates) == {"rules[0]", "rules[1]"}
    estimate = first.estimates[""]
    assert isinstance(estimate, Estimate) and first.count == estimate.estimate
    assert set(first.estimates) == {"", "rules[0]", "rules[1]"}
    assert abs(estimate.estimate - exact) < 0.25 * exact
    assert "heapseg-row-estimate" in heard.rows[0] and "≈" in heard.rows[0]
    assert last.count == exact
    assert last.rule_counts == {
        f"rules[{i}]": ds.count(alone(r)) for i, r in enumerate(WINDOW_SHOPPERS["rules"])
    }
    assert "heapseg-row-estimate" in heard.rows[1]
    assert "heapseg-row-count" in heard.rows[2] and "≈" not in heard.rows[2]


def test_an_edit_cancels_the_counts_in_flight(ds, root, heard, queries):
    as_of = ds.resolve_as_of(None)
    counting = progressive(ds, heard, root)
    gate, reached = queries.hold(0)  # the first edit's estimate query waits
    try:
        root.set_model(Group.from_dict(WINDOW_SHOPPERS))
        counting.update(root, as_of)
        assert reached.wait(10)
        root.set_model(Group.from_dict(alone(PAID)))
        counting.update(root, as_of)
        gate.set()
        assert counting.wait(60)
    finally:
        counting.close()
    # The first edit's estimate is dropped and its exact query never runs.
    assert [kind for kind, _ in queries.calls] == ["estimate", "estimate", "exact"]
    assert [c.exact for c in heard.counts] == [False, True]
    assert heard.counts[-1].count == ds.count(alone(PAID))
    assert all(set(c.rule_counts) == {"rules[0]"} for c in heard.counts)


def test_a_stale_exact_answer_never_replaces_a_newer_estimate(ds, root, heard, queries):
    as_of = ds.resolve_as_of(None)
    counting = progressive(ds, heard, root)
    gate, reached = queries.hold(1)  # the first edit's exact query waits
    try:
        root.set_model(Group.from_dict(WINDOW_SHOPPERS))
        counting.update(root, as_of)
        assert reached.wait(10)
        root.set_model(Group.from_dict(alone(PAID)))
        counting.update(root, as_of)
        gate.set()
        assert counting.wait(60)
    finally:
        counting.close()
    shown = [(c.exact, set(c.rule_counts)) for c in heard.counts]
    # Window shoppers' estimate and exact count, then only the newer edit's answers, in order.
    assert shown == [
        (False, {"rules[0]", "rules[1]"}),
        (False, {"rules[0]", "rules[1]"}),
        (False, {"rules[0]"}),
        (True, {"rules[0]"}),
    ]
    assert heard.counts[-1].count == ds.count(alone(PAID))


def test_cached_counts_are_not_estimated_again(ds, root, heard, queries):
    as_of = ds.resolve_as_of(None)
    counting = progressive(ds, heard, root)
    try:
        root.set_model(Group.from_dict(WINDOW_SHOPPERS))
        for _ in range(2):
            counting.update(root, as_of)
            assert counting.wait(60)
    finally:
        counting.close()
    # The second update finds every count cached: no estimate, no query, exact at once.
    assert [kind for kind, _ in queries.calls] == ["estimate", "exact"]
    assert [c.exact for c in heard.counts] == [False, False, True, True]


def test_small_datasets_are_counted_exactly_at_once(ds, root, heard, queries):
    counting = progressive(ds, heard, root, estimate_above=ds.total_users())
    try:
        root.set_model(Group.from_dict(WINDOW_SHOPPERS))
        counting.update(root, ds.resolve_as_of(None))
        assert counting.wait(60)
    finally:
        counting.close()
    assert [kind for kind, _ in queries.calls] == ["exact"]
    assert [c.exact for c in heard.counts] == [True]


def test_the_builder_shows_the_estimate_then_the_exact_count(ds, make_builder):
    shown: list[str] = []
    estimates: list[object] = []
    builder = make_builder(estimate_above=0, sample=0.25)
    builder.count_html.observe(lambda change: shown.append(change.new), "value")
    builder.observe(lambda change: estimates.append(change.new), "estimate")
    builder.segment = WINDOW_SHOPPERS
    assert builder.wait(60)
    exact = ds.count(WINDOW_SHOPPERS)
    assert "≈" in shown[-2] and "(95%)" in shown[-2]
    assert shown[-1] == f"{exact:,}" and builder.count == exact
    assert isinstance(estimates[-2], Estimate) and estimates[-1] is None
    assert str(estimates[-2]) in shown[-2]
