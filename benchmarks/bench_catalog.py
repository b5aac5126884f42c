"""Catalog scale: load, validate, list, save and update on a catalog of 5,000 segments.

Run: ``python benchmarks/bench_catalog.py [N]`` (prints one line per figure, in ms).
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from heapseg.catalog import Catalog
from heapseg.catalog.storage import CatalogFile, atomic_write, dumps, new_document

EVENTS = ["Session", "Pageview", "Add to Cart", "Completed Order", "Search Bar", "Logged In"]


def definition(rng: random.Random) -> dict:
    """A realistic definition: 1-4 rules, some nested, windows, counts, where clauses."""
    rules: list[dict] = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["user", "event", "event", "group"])
        if kind == "user":
            rules.append(
                {
                    "kind": "user",
                    "field": rng.choice(["subscription_type", "country", "ltv"]),
                    "operator": "in",
                    "value": rng.sample(["trial", "free", "paid", "US", "FR", "DE"], 2),
                }
            )
        elif kind == "event":
            rules.append(
                {
                    "kind": "event",
                    "event": rng.choice(EVENTS),
                    "did": True,
                    "count": {"operator": ">=", "value": rng.randint(1, 10)},
                    "window": {"last": rng.choice([7, 30, 90]), "unit": "day"},
                    "where": {
                        "combinator": "and",
                        "rules": [
                            {
                                "kind": "event_property",
                                "field": "path",
                                "operator": "contains",
                                "value": "/pricing",
                            }
                        ],
                    },
                }
            )
        else:
            rules.append(
                {
                    "combinator": "or",
                    "rules": [
                        {"kind": "event", "event": rng.choice(EVENTS), "did": False},
                        {
                            "kind": "user",
                            "field": "email",
                            "operator": "ends with",
                            "value": "@example.com",
                        },
                    ],
                }
            )
    return {"combinator": rng.choice(["and", "or"]), "rules": rules}


def build(path: Path, n: int) -> None:
    """Write an n-segment catalog directly (what many saves over months would produce)."""
    rng = random.Random(5000)
    document = new_document()
    for i in range(n):
        stamp = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T10:15:00+01:00"
        document["segments"].append(
            {
                "id": f"seg-bench-{i:05d}",
                "name": f"Benchmark segment {i}",
                "description": "Generated for the catalog benchmark.",
                "category": rng.choice(["Marketing", "Engagement", "Revenue", "Support", ""]),
                "type": "dynamic",
                "visibility": rng.choice(["shared", "shared", "personal"]),
                "owner": rng.choice(["alice", "bob", "carol"]),
                "created_at": stamp,
                "updated_at": stamp,
                "revision": 1,
                "definition": definition(rng),
            }
        )
    atomic_write(path, dumps(document).encode())


def timed(function, repeat: int = 5) -> tuple[float, float]:
    """Median wall time and median CPU time of this process, in ms.

    CPU time is the steadier figure on a shared machine; wall time includes fsync waits.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main(n: int = 5000) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.json"
        build(path, n)
        size_mb = path.stat().st_size / 1e6
        figures = {
            "parse file": timed(lambda: CatalogFile(path).read()),
            "load + validate every entry": timed(lambda: Catalog(path, user="alice").list()),
        }
        cat = Catalog(path, user="alice")
        cat.list()
        figures["list again, file unchanged"] = timed(lambda: cat.list(), repeat=20)
        figures["get by name"] = timed(lambda: cat.get(f"benchmark segment {n // 2}"), 20)
        figures["validate incl. references"] = timed(lambda: cat.validate())
        counter = iter(range(10**6))
        figures["save one more segment"] = timed(
            lambda: cat.save(definition(random.Random()), f"new {next(counter)}")
        )
        figures["update one segment"] = timed(
            lambda: cat.update(cat.get(f"seg-bench-{n // 3:05d}"), description=str(time.time()))
        )
        print(f"catalog of {n} segments, {size_mb:.1f} MB; median of repeats, ms")
        print(f"{'':40s} {'wall':>8s} {'cpu':>8s}")
        for name, (wall, cpu) in figures.items():
            print(f"{name:40s} {wall:8.1f} {cpu:8.1f}")
        return figures


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
