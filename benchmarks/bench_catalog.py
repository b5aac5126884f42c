"""Catalog scale: load, validate, list, save and update on a catalog of 5,000 segments.

    python benchmarks/bench_catalog.py [N]
    python benchmarks/bench_catalog.py [N] --compare-with PATH [--rounds 5]

The first prints one line per figure, in ms (median wall and CPU time of a few repeats).
The second compares this checkout with another one (``PATH``: a folder holding a ``heapseg``
package, e.g. a ``git worktree`` of an older commit): each round runs the figures once for
either code, in fresh processes taking turns, and it prints the medians over the rounds and
their ratios (this checkout / ``PATH``; CPU time is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
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


ROOT = Path(__file__).resolve().parents[1]


def run_side(code: Path, n: int) -> dict[str, tuple[float, float]]:
    """The figures of the ``heapseg`` package in folder ``code``, measured in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(code))
    done = subprocess.run(
        [sys.executable, __file__, str(n), "--json"], env=env, capture_output=True, text=True
    )
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"the run of the heapseg in {code} failed: {reason}")
    package, figures = json.loads(done.stdout.splitlines()[-1])
    if not Path(package).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"the run meant for {code} imported heapseg from {package}")
    return figures


def compare(n: int, other: Path, rounds: int) -> dict[str, dict[str, tuple[float, float]]]:
    """Medians over ``rounds`` of each figure, for this checkout ("new") and ``other`` ("old")."""
    sides = {"old": other, "new": ROOT}
    runs: dict[str, list[dict[str, tuple[float, float]]]] = {"old": [], "new": []}
    for i in range(rounds):
        for side in ("old", "new") if i % 2 == 0 else ("new", "old"):
            runs[side].append(run_side(sides[side], n))
    medians = {
        side: {
            name: (
                statistics.median(run[name][0] for run in results),
                statistics.median(run[name][1] for run in results),
            )
            for name in results[0]
        }
        for side, results in runs.items()
    }
    print(f"catalog of {n} segments; {other} (old) vs {ROOT} (new), {rounds} rounds taking turns")
    print("median of rounds, ms; ratio = new / old")
    header = ("wall old", "wall new", "ratio", "cpu old", "cpu new", "ratio")
    print(f"{'':32s}" + "".join(f"{h:>10s}" for h in header))

    def ms(value: float) -> str:
        return f"{value:10.3f}" if value < 1 else f"{value:10.1f}"

    def ratio(new: float, old: float) -> str:
        return f"{new / old:10.2f}" if old else f"{'-':>10s}"

    for name, (old_wall, old_cpu) in medians["old"].items():
        new_wall, new_cpu = medians["new"][name]
        print(
            f"{name:32s}{ms(old_wall)}{ms(new_wall)}{ratio(new_wall, old_wall)}"
            f"{ms(old_cpu)}{ms(new_cpu)}{ratio(new_cpu, old_cpu)}"
        )
    return medians


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=5000, help="segments in the catalog")
    parser.add_argument("--compare-with", type=Path, metavar="PATH", help="the other checkout")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the comparison")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_with is not None:
        compare(args.n, args.compare_with, args.rounds)
    elif args.json:  # one side of a comparison: the figures on the last line
        import contextlib
        import io

        import heapseg

        with contextlib.redirect_stdout(io.StringIO()):
            figures = main(args.n)
        print(json.dumps([heapseg.__file__, figures]))
    else:
        main(args.n)
