"""The builder's live counts: plans shown at once, counts off-thread and cached, newest answer only."""

from __future__ import annotations

import threading

import pytest

from heapseg.model import Group
from heapseg.widgets.choices import DataChoices
from heapseg.widgets.counting import Counts, LiveCounts
from heapseg.widgets.group import GroupBox

from .conftest import WINDOW_SHOPPERS

PAID = {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}


class Heard:
    """What the controller tells its widget, in order."""

    def __init__(self) -> None:
        self.plans: list = []
        self.counts: list[Counts] = []
        self.failures: list[BaseException] = []

    def listen(self, dataset, resolver=None) -> LiveCounts:
        """A controller (counting at once) that tells this recorder."""
        return LiveCounts(
            dataset,
            resolver,
            debounce=0,
            on_plan=self.plans.append,
            on_counts=self.counts.append,
            on_failure=self.failures.append,
        )


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def root(ds) -> GroupBox:
    return GroupBox(DataChoices(ds), root=True)


@pytest.fixture
def counting(ds, heard):
    made = heard.listen(ds)
    yield made
    made.close()


@pytest.fixture
def asked(ds, monkeypatch) -> list[set[str]]:
    """The paths each backend query asks for (the worker's dataset is another instance)."""
    calls: list[set[str]] = []
    real = type(ds).counts

    def spy(self, segments, *args, **kwargs):
        calls.append(set(segments))
        return real(self, segments, *args, **kwargs)

    monkeypatch.setattr(type(ds), "counts", spy)
    return calls


def fill(root: GroupBox, definition: dict) -> None:
    root.set_model(Group.from_dict(definition))


def alone(rule: dict) -> dict:
    return {"combinator": "and", "rules": [rule]}


def test_an_update_shows_the_plan_then_the_counts_on_the_rows(ds, root, counting, heard):
    fill(root, WINDOW_SHOPPERS)
    plan = counting.update(root, ds.resolve_as_of(None))
    assert heard.plans == [plan]
    assert counting.wait(60)
    (counts,) = heard.counts
    assert counts.count == ds.count(WINDOW_SHOPPERS)
    assert counts.total == ds.total_users()
    assert counts.share == pytest.approx(counts.count / counts.total)
    expected = {f"rules[{i}]": ds.count(alone(r)) for i, r in enumerate(WINDOW_SHOPPERS["rules"])}
    assert counts.rule_counts == expected
    for i, node in enumerate(root.nodes):
        assert f"{expected[f'rules[{i}]']:,} users" in node.status.value
    assert heard.failures == []


def test_counting_runs_off_the_calling_thread(ds, root, counting, monkeypatch):
    fill(root, WINDOW_SHOPPERS)
    threads = []
    original = counting._count

    def spy(worker, plan, as_of):
        threads.append((threading.current_thread().name, worker is ds))
        return original(worker, plan, as_of)

    monkeypatch.setattr(counting, "_count", spy)
    root.nodes[0].count_value.value = 3
    counting.update(root, ds.resolve_as_of(None))
    assert counting.wait(60)
    assert threads and threads[-1][0].startswith("heapseg-live")
    assert threads[-1][1] is False  # its own connection (a DuckDB cursor)


def test_unchanged_rules_come_from_the_cache_until_forgotten(ds, root, counting, heard, asked):
    as_of = ds.resolve_as_of(None)
    fill(root, WINDOW_SHOPPERS)
    counting.update(root, as_of)
    assert counting.wait(60)
    assert asked == [{"", "rules[0]", "rules[1]"}]
    root.nodes[0].count_value.value = 3
    counting.update(root, as_of)
    assert counting.wait(60)
    assert asked[1] == {"", "rules[0]"}  # "did not do Completed Order" is cached
    assert heard.counts[-1].rule_counts["rules[1]"] == heard.counts[0].rule_counts["rules[1]"]
    counting.forget()
    counting.update(root, as_of)
    assert counting.wait(60)
    assert asked[2] == {"", "rules[0]", "rules[1]"}


def test_segment_references_are_never_cached(ds, catalog, heard, asked):
    entry = catalog.save(WINDOW_SHOPPERS, "Window shoppers")
    root = GroupBox(DataChoices(ds, catalog), root=True)
    fill(root, {"combinator": "and", "rules": [PAID, {"kind": "segment", "id": entry.id}]})
    counting = heard.listen(ds, catalog)
    try:
        for _ in range(2):
            counting.update(root, ds.resolve_as_of(None))
            assert counting.wait(60)
    finally:
        counting.close()
    # The segment without its reference is PAID alone: from the cache the second time.
    assert asked == [
        {"", "rules[0]", "rules[1]", "without:rules[0]"},
        {"", "rules[1]", "without:rules[0]"},
    ]
    assert heard.counts[-1].count == ds.count(
        {"combinator": "and", "rules": [PAID, *WINDOW_SHOPPERS["rules"]]}
    )


def test_only_the_newest_edit_is_applied(ds, root, counting, heard, monkeypatch):
    as_of = ds.resolve_as_of(None)
    release, started = threading.Event(), threading.Event()
    original = counting._count

    def slow_first(worker, plan, as_of):
        if not started.is_set():
            started.set()
            release.wait(10)
        return original(worker, plan, as_of)

    monkeypatch.setattr(counting, "_count", slow_first)
    fill(root, WINDOW_SHOPPERS)
    counting.update(root, as_of)
    assert started.wait(10)
    fill(root, alone(PAID))
    counting.update(root, as_of)
    release.set()
    assert counting.wait(60)
    assert [c.count for c in heard.counts] == [ds.count(alone(PAID))]
    assert f"{ds.count(alone(PAID)):,} users" in root.nodes[0].status.value


def test_a_mended_row_shows_counting_until_its_answer(ds, root, counting, heard, monkeypatch):
    as_of = ds.resolve_as_of(None)
    row = root.add("user")
    row.field.value = "email"
    row.operator.value = "contains"
    row.value.children[0].value = "gmail.com|"  # an empty alternative
    counting.update(root, as_of)
    assert counting.wait(60)
    assert row.invalid and "heapseg-row-error" in row.status.value
    assert heard.counts[-1].count is None

    release = threading.Event()
    original = counting._count
    monkeypatch.setattr(counting, "_count", lambda *args: release.wait(10) and original(*args))
    row.value.children[0].value = "gmail.com"
    counting.update(root, as_of)
    assert not row.invalid and "heapseg-row-busy" in row.status.value
    release.set()
    assert counting.wait(60)
    assert "heapseg-row-count" in row.status.value


def test_a_failure_is_handed_over_and_rows_keep_what_they_showed(
    ds, root, counting, heard, monkeypatch
):
    fill(root, alone(PAID))
    counting.update(root, ds.resolve_as_of(None))
    assert counting.wait(60)
    shown = root.nodes[0].status.value

    def broken(worker, plan, as_of):
        raise RuntimeError("the warehouse is down")

    monkeypatch.setattr(counting, "_count", broken)
    counting.update(root, ds.resolve_as_of(None))
    assert counting.wait(60)
    assert [str(e) for e in heard.failures] == ["the warehouse is down"]
    assert len(heard.counts) == 1
    assert root.nodes[0].status.value == shown


def test_share_of_no_users_is_zero_and_of_an_invalid_segment_none():
    assert Counts(count=0, total=0, rule_counts={}).share == 0.0
    assert Counts(count=None, total=10, rule_counts={}).share is None
    assert Counts(count=5, total=20, rule_counts={}).share == 0.25
