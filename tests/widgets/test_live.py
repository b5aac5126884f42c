"""The live runner: debounced, newest answer only, off the calling thread, stale queries stopped."""

from __future__ import annotations

import threading
import time

import pytest

from heapseg.widgets.live import CountCache, LiveRunner


class Recorder:
    def __init__(self) -> None:
        self.applied: list[tuple[int, object]] = []
        self.failed: list[tuple[int, BaseException]] = []

    def apply(self, seq, result):
        self.applied.append((seq, result))

    def fail(self, seq, error):
        self.failed.append((seq, error))


class FakeDataset:
    def __init__(self) -> None:
        self.opened = 0

    def for_thread(self):
        self.opened += 1
        return ("worker", self.opened)


def test_a_burst_of_requests_runs_its_first_and_its_last():
    runs = []
    runner = LiveRunner(FakeDataset(), debounce=1.0)
    seen = Recorder()
    try:
        for i in range(5):
            runner.request(lambda ds, i=i: runs.append(i) or i, seen.apply, seen.fail)
        assert runner.wait(10)
        # After a quiet spell, an edit runs at once (no debounce wait).
        time.sleep(1.05)
        began = time.perf_counter()
        runner.request(lambda ds: runs.append(5) or 5, seen.apply, seen.fail)
        assert runner.wait(10)
        assert time.perf_counter() - began < 0.8
    finally:
        runner.close()
    assert runs[-2:] == [4, 5]
    assert set(runs[:-2]) <= {0}  # the burst's first may start; 1, 2, 3 never run
    # The first may also be shown if it was answered before the second request came.
    assert seen.applied[-2:] == [(5, 4), (6, 5)]
    assert seen.applied[:-2] in ([], [(1, 0)])


def test_a_stale_slow_answer_never_overwrites_a_newer_one():
    release = threading.Event()
    started = threading.Event()
    runner = LiveRunner(FakeDataset(), debounce=0)
    seen = Recorder()

    def slow(ds):
        started.set()
        release.wait(10)
        return "old"

    try:
        runner.request(slow, seen.apply, seen.fail)
        assert started.wait(10)
        runner.request(lambda ds: "new", seen.apply, seen.fail)
        release.set()
        assert runner.wait(10)
        time.sleep(0.1)  # give a stale delivery every chance to show up
    finally:
        runner.close()
    assert seen.applied == [(2, "new")]


def test_jobs_run_in_the_worker_on_one_thread_dataset():
    data = FakeDataset()
    runner = LiveRunner(data, debounce=0)
    seen = Recorder()
    names = []

    def job(ds):
        names.append(threading.current_thread().name)
        return ds

    try:
        for _ in range(3):
            runner.request(job, seen.apply, seen.fail)
            assert runner.wait(10)
    finally:
        runner.close()
    assert all(n.startswith("heapseg-live") for n in names)
    assert data.opened == 1  # the worker's connection is opened once and reused
    assert [r for _, r in seen.applied] == [("worker", 1)] * 3


def test_failures_are_delivered():
    runner = LiveRunner(FakeDataset(), debounce=0)
    seen = Recorder()
    try:
        runner.request(lambda ds: 1 / 0, seen.apply, seen.fail)
        assert runner.wait(10)
    finally:
        runner.close()
    assert seen.applied == []
    assert isinstance(seen.failed[0][1], ZeroDivisionError)


def test_a_stale_duckdb_query_is_interrupted(ds):
    runner = LiveRunner(ds, debounce=0)
    seen = Recorder()
    started = threading.Event()

    def endless(worker):
        started.set()
        sql = "select count(*) from range(20000000000) t(i) where i % 7 = 3"
        return worker.backend.con.execute(sql).fetchall()

    try:
        runner.request(endless, seen.apply, seen.fail)
        assert started.wait(10)
        time.sleep(0.2)
        began = time.perf_counter()
        runner.request(lambda worker: worker.total_users(), seen.apply, seen.fail)
        assert runner.wait(20)
        took = time.perf_counter() - began
    finally:
        runner.close()
    assert seen.applied == [(2, ds.total_users())]
    assert took < 5  # the endless scan would take minutes


def test_closed_runner_refuses_requests():
    runner = LiveRunner(FakeDataset(), debounce=0)
    runner.close()
    with pytest.raises(RuntimeError):
        runner.request(lambda ds: 1, lambda *a: None, lambda *a: None)


def test_count_cache_is_bounded_lru():
    cache = CountCache(size=2)
    cache.put(("a",), 1)
    cache.put(("b",), 2)
    assert cache.get(("a",)) == 1
    cache.put(("c",), 3)
    assert cache.get(("b",)) is None
    assert (cache.get(("a",)), cache.get(("c",))) == (1, 3)
    cache.clear()
    assert cache.get(("a",)) is None
