"""The sample's command line: ``python -m heapseg.sample --users 100000 --out PATH``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from heapseg.errors import HeapsegError
from heapseg.sample.files import ensure_sample, generate
from heapseg.sample.schema import DEFAULT_SEED, DEFAULT_USERS

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m heapseg.sample --users 100000 --format duckdb --out PATH``."""
    parser = argparse.ArgumentParser(
        prog="python -m heapseg.sample", description="Generate the heapseg sample dataset."
    )
    parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="number of users")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--format", choices=("duckdb", "parquet"), default="duckdb")
    parser.add_argument(
        "--out", type=Path, help="output file or folder (default: the cache, DuckDB only)"
    )
    parser.add_argument("--chunk-users", type=int, default=20_000)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every chunk")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        if args.out is None:
            if args.format != "duckdb":
                parser.error("--format parquet needs --out")
            path = ensure_sample(args.users, seed=args.seed)
        else:
            path = generate(
                args.out,
                args.users,
                seed=args.seed,
                fmt=args.format,
                chunk_users=args.chunk_users,
                overwrite=args.overwrite,
            )
    except HeapsegError as e:
        parser.exit(2, f"error: {e}\n")
    print(path)
