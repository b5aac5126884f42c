"""Many writers at once, and writers killed mid-save: nothing lost, the file always valid."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from heapseg.catalog import Catalog, EditConflictError

from .conftest import PAID

REPO = Path(__file__).resolve().parents[2]
WORKERS = 8
SAVES = 50


def _worker(number: int, path: str, shared_id: str) -> dict:
    """Save 50 segments, update every 5th, delete every 10th, bump a shared counter 5 times."""
    saved, deleted, errors = [], [], []
    updates: Counter = Counter()
    bumps = 0
    try:
        cat = Catalog(path, user=f"worker{number}", lock_timeout=120)
        for j in range(SAVES):
            entry = cat.save(PAID, f"w{number}-s{j}", category=f"c{j % 3}")
            saved.append(entry.id)
            if j % 5 == 4:
                cat.update(entry, description=f"updated by {number}")
                updates[entry.id] += 1
            if j % 10 == 9:
                cat.delete(saved[-3])
                deleted.append(saved[-3])
            if j % 10 == 0:
                # Read-modify-write of one segment everybody edits: a lost update would show
                # as a counter below the number of successful bumps.
                while True:
                    current = cat.get(shared_id)
                    try:
                        cat.update(current, description=str(int(current.description) + 1))
                        bumps += 1
                        break
                    except EditConflictError:
                        continue
    except Exception as exc:  # reported to the test, which fails on any
        errors.append(f"{type(exc).__name__}: {exc}")
    return {
        "saved": saved,
        "deleted": deleted,
        "updates": dict(updates),
        "bumps": bumps,
        "errors": errors,
    }


@pytest.mark.slow
def test_eight_processes_saving_updating_deleting_at_once(catalog_path):
    shared = Catalog(catalog_path, user="lead").save(PAID, "Shared counter", description="0")
    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        results = pool.starmap(_worker, [(n, str(catalog_path), shared.id) for n in range(WORKERS)])

    assert [r["errors"] for r in results] == [[]] * WORKERS
    saved = [i for r in results for i in r["saved"]]
    deleted = {i for r in results for i in r["deleted"]}
    updates = Counter()
    for r in results:
        updates.update(r["updates"])
    assert len(saved) == len(set(saved)) == WORKERS * SAVES
    assert len(deleted) == WORKERS * (SAVES // 10)

    doc = json.loads(catalog_path.read_text())
    ids = [raw["id"] for raw in doc["segments"]]
    assert Counter(ids).most_common(1)[0][1] == 1  # every id exactly once
    assert set(ids) == (set(saved) - deleted) | {shared.id}
    cat = Catalog(catalog_path, user="checker")
    assert cat.problems == []
    for entry in cat.list():
        if entry.id == shared.id:
            continue
        assert entry.revision == 1 + updates[entry.id]
        history = cat.history(entry.id)
        assert [r.revision for r in history] == list(range(1, entry.revision + 1))
    bumps = sum(r["bumps"] for r in results)
    counter = cat.get(shared.id)
    assert bumps == WORKERS * (SAVES // 10)
    assert counter.description == str(bumps)  # no lost update
    assert counter.revision == 1 + bumps
    for segment_id in deleted:
        assert cat.history(segment_id)[-1].action == "delete"
    assert [n for n in os.listdir(catalog_path.parent) if n.endswith(".tmp")] == []


SAVE_LOOP = textwrap.dedent(
    """
    import sys
    from heapseg.catalog import Catalog
    cat = Catalog(sys.argv[1], user="looper", lock_timeout=30)
    definition = {"combinator": "and", "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}]}
    i = 0
    while True:
        entry = cat.save(definition, f"{sys.argv[2]}-{i}")
        if i % 3 == 2:
            cat.update(entry, description="edited")
        print(entry.id, flush=True)
        i += 1
    """
)


def _populate(path: Path, n: int) -> None:
    # A bigger file makes each write take longer, so kills land mid-write more often.
    cat = Catalog(path, user="seed")
    for i in range(n):
        cat.save(PAID, f"seed-{i}")


def _assert_valid(path: Path, confirmed: list[str]) -> Catalog:
    json.loads(path.read_text())  # whole, parseable JSON: old or new, never half
    cat = Catalog(path, user="checker", lock_timeout=2)
    assert cat.problems == []
    present = {e.id for e in cat.list()}
    assert set(confirmed) <= present  # what a writer confirmed is durable
    return cat


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_a_valid_file(catalog_path):
    _populate(catalog_path, 150)
    confirmed: list[str] = []
    leftovers = 0
    rng = random.Random(20261123)
    for round_ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVE_LOOP, str(catalog_path), f"r{round_}"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            confirmed.append(proc.stdout.readline().strip())  # started writing
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        confirmed.extend(line for line in out.splitlines() if line.strip())
        leftovers += sum(n.endswith(".tmp") for n in os.listdir(catalog_path.parent))
        cat = _assert_valid(catalog_path, confirmed)
        # The dead writer's lock is gone: the next save goes through at once.
        started = time.monotonic()
        cat.save(PAID, f"after-kill-{round_}")
        assert time.monotonic() - started < 2
        assert [n for n in os.listdir(catalog_path.parent) if n.endswith(".tmp")] == []
        for entry in cat.list(text=f"r{round_}-"):  # what the killed writer touched
            assert cat.history(entry.id)[-1].revision == entry.revision
    print(f"temp files left by killed writers (then cleaned): {leftovers}")


CRASH_AT = textwrap.dedent(
    """
    import os, signal, sys
    import heapseg.catalog.files as files
    import heapseg.catalog.history as history
    from heapseg.catalog import Catalog

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    point = sys.argv[2]
    if point == "mid-temp-write":
        real_fdopen = os.fdopen
        class Half:
            def __init__(self, handle): self.handle = handle
            def __enter__(self): return self
            def __exit__(self, *exc): return False
            def write(self, data):
                self.handle.write(data[: len(data) // 2]); self.handle.flush(); die()
        files.os.fdopen = lambda fd, mode: Half(real_fdopen(fd, mode))
    elif point == "before-rename":
        files.os.replace = die
    elif point == "after-history-before-rename":
        real_append = history.HistoryLog.append
        def append_then_die(self, records):
            real_append(self, records); die()
        history.HistoryLog.append = append_then_die
    elif point == "after-rename":
        files.fsync_dir = die
    cat = Catalog(sys.argv[1], user="crasher")
    entry = cat.get("Target")
    cat.update(entry, description="crashed edit")
    """
)


@pytest.mark.parametrize(
    "point", ["mid-temp-write", "before-rename", "after-history-before-rename", "after-rename"]
)
def test_a_writer_killed_at_each_step_of_a_save(catalog_path, point):
    cat = Catalog(catalog_path, user="alice")
    target = cat.save(PAID, "Target")
    cat.save(PAID, "Other")
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AT, str(catalog_path), point], cwd=REPO, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL
    after = Catalog(catalog_path, user="bob", lock_timeout=2)
    assert after.problems == []
    entry = after.get("Target")
    landed = point == "after-rename"
    assert entry.description == ("crashed edit" if landed else "")
    assert entry.revision == (2 if landed else 1)
    assert [r.revision for r in after.history(target.id)] == list(range(1, entry.revision + 1))
    # The next writer is not blocked, cleans up, and its revision 2 is the one history keeps.
    updated = after.update(entry, description="next")
    assert [n for n in os.listdir(catalog_path.parent) if n.endswith(".tmp")] == []
    last = after.history(target.id)[-1]
    assert (last.revision, last.user) == (updated.revision, "bob")
