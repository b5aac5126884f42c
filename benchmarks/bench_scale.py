"""Benchmark: the three spec segments on DuckDB and PySpark (local) at 100,000 and 1,000,000 users.

    python benchmarks/bench_scale.py --users 100000 1000000 [--engines duckdb spark]

Reads the sample written as Parquet (``python -m heapseg.sample --format parquet --out
benchmarks/data/sample-N``, generated here when missing), times ``Dataset.count`` for each segment
(median of ``--repeat`` runs after a warm-up), checks both engines agree, and prints the times,
the growth from the smallest to the largest size, and peak memory: this process's peak RSS
(DuckDB runs in-process) and, for Spark, the JVM's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from bench_common import peak_rss_mb, sample_path
from bench_engine import SEGMENTS

import heapseg
from heapseg.sample import SAMPLE_AS_OF


def duckdb_dataset(path: Path) -> heapseg.Dataset:
    return heapseg.connect(path, as_of=SAMPLE_AS_OF)


def spark_dataset(path: Path, session: object) -> heapseg.Dataset:
    import ibis

    for table in ("users", "accounts", "user_migrations"):
        session.read.parquet(str(path / f"{table}.parquet")).createOrReplaceTempView(table)
    events = path / "events"
    source = str(events) if events.is_dir() else str(path / "events.parquet")
    session.read.parquet(source).createOrReplaceTempView("events")
    return heapseg.connect(ibis.pyspark.connect(session), as_of=SAMPLE_AS_OF)


def spark_session(memory: str) -> object:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    warehouse = tempfile.mkdtemp(prefix="heapseg-spark-")
    return (
        SparkSession.builder.master("local[2]")
        .appName("heapseg-bench")
        .config("spark.driver.memory", memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", warehouse)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def jvm_peak_mb() -> float:
    peaks = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "java" in proc.name():
                status = Path(f"/proc/{proc.pid}/status").read_text()
                line = next(x for x in status.splitlines() if x.startswith("VmHWM"))
                peaks.append(int(line.split()[1]) / 1024)
        except (psutil.Error, OSError, StopIteration):
            continue
    return max(peaks, default=float("nan"))


def time_counts(ds: heapseg.Dataset, repeat: int) -> dict[str, tuple[float, int]]:
    out = {}
    for name, segment in SEGMENTS.items():
        count = ds.count(segment)  # warm-up
        runs = []
        for _ in range(repeat):
            ds.clear_query_cache()  # time the whole count, compiling included, on every engine
            start = time.perf_counter()
            count = ds.count(segment)
            runs.append(time.perf_counter() - start)
        out[name] = (statistics.median(runs), count)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--spark-memory", default="6g")
    args = parser.parse_args(argv)

    session = spark_session(args.spark_memory) if "spark" in args.engines else None
    results: dict[tuple[str, int], dict[str, tuple[float, int]]] = {}
    for users in args.users:
        path = sample_path(users, fmt="parquet")
        for engine in args.engines:
            ds = duckdb_dataset(path) if engine == "duckdb" else spark_dataset(path, session)
            events = ds.table_counts()["events"]
            results[engine, users] = time_counts(ds, args.repeat)
            for name, (seconds, count) in results[engine, users].items():
                print(
                    f"{engine:<7} {users:>9,} users {events:>11,} events  {name:<16} "
                    f"{seconds:8.3f} s  {count:>9,} users"
                )
    for users in args.users:
        counts = {e: {n: c for n, (_, c) in results[e, users].items()} for e in args.engines}
        if len({tuple(sorted(c.items())) for c in counts.values()}) > 1:
            print(f"MISMATCH at {users} users: {counts}")
            return 1
    if len(args.users) > 1:
        small, large = min(args.users), max(args.users)
        for engine in args.engines:
            for name in SEGMENTS:
                growth = results[engine, large][name][0] / results[engine, small][name][0]
                print(
                    f"growth {engine:<7} {name:<16} x{growth:5.1f} time for x{large // small} users"
                )
    print(f"peak RSS of this process (DuckDB in-process): {peak_rss_mb():.0f} MB")
    if session is not None:
        print(f"peak RSS of the Spark JVM: {jvm_peak_mb():.0f} MB")
        session.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
