"""Writing the sample: a DuckDB file or a Parquet folder, complete or not at all, and the
cached copy that ``heapseg.connect()`` opens."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from heapseg.errors import HeapsegError
from heapseg.progress import progress
from heapseg.sample.generator import tables
from heapseg.sample.schema import DATA_VERSION, DEFAULT_SEED, DEFAULT_USERS, SCHEMAS, Format

__all__ = ["default_path", "ensure_sample", "generate"]

log = logging.getLogger(__name__)


def generate(
    path: str | os.PathLike[str],
    n_users: int = DEFAULT_USERS,
    *,
    seed: int = DEFAULT_SEED,
    fmt: Format = "duckdb",
    chunk_users: int = 20_000,
    overwrite: bool = False,
) -> Path:
    """Generate the sample dataset and write it to ``path``.

    The output is written under a temporary name and renamed when complete, so ``path`` never
    holds a half-written dataset. The same ``seed`` and ``n_users`` always give the same rows,
    whatever ``fmt`` and ``chunk_users``.

    Parameters
    ----------
    path
        A DuckDB file (``fmt="duckdb"``) or a folder to create (``fmt="parquet"``: ``users.parquet``,
        ``accounts.parquet``, ``user_migrations.parquet``, ``user_history.parquet``,
        ``user_trait_changes.parquet``, ``account_history.parquet`` and
        ``events/part-*.parquet``). ``users.joined_at`` is each user's signup moment (the time
        of their "Created Account" event). The histories: ``user_history`` (snapshots: ``valid_from``,
        ``valid_to``) and ``user_trait_changes`` (changes: ``time``, NULL = not set) tell how
        each user's subscription_type, role and account_id came to their ``users`` values;
        ``account_history`` (snapshots) does the same for account tiers.
    n_users
        Number of users (1 to a few million); about 70 events per user on average.
    seed
        Seed of the random streams (a non-negative integer).
    fmt
        ``"duckdb"`` or ``"parquet"``.
    chunk_users
        Users generated and written per step (rounded up to a multiple of 1,000); bounds the
        memory used: about 30 MB per 1,000 users of a chunk, plus DuckDB's own cache.
    overwrite
        Replace an existing ``path`` instead of raising.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    HeapsegError
        ``path`` exists (and ``overwrite`` is false) or an argument is out of range.

    Examples
    --------
    >>> import duckdb
    >>> out = generate("sample.duckdb", n_users=1_000)
    >>> duckdb.connect(str(out)).sql("select count(*) from users").fetchone()
    (1000,)
    """
    path = Path(path)
    _check_args(n_users, seed, fmt, chunk_users)
    if path.exists() and not overwrite:
        raise HeapsegError(f"{path} already exists; pass overwrite=True to replace it")
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        _write(tmp, n_users, seed, fmt, chunk_users)
        if overwrite:
            _remove(path)
        os.replace(tmp, path)
    finally:
        _remove(tmp)
    return path


def default_path(n_users: int = DEFAULT_USERS, *, seed: int = DEFAULT_SEED) -> Path:
    """Where the cached sample of ``n_users`` users lives.

    The folder is ``$HEAPSEG_DATA_DIR`` if set, else ``~/.cache/heapseg``; the file name carries
    the data version, the size and the seed, so a new generator never reuses an old file.

    Examples
    --------
    >>> default_path(1_000).name
    'heapseg-sample-v2-1000u-seed42.duckdb'
    """
    folder = os.environ.get("HEAPSEG_DATA_DIR") or Path.home() / ".cache" / "heapseg"
    return Path(folder) / f"heapseg-sample-v{DATA_VERSION}-{n_users}u-seed{seed}.duckdb"


def ensure_sample(n_users: int = DEFAULT_USERS, *, seed: int = DEFAULT_SEED) -> Path:
    """Return the cached sample DuckDB file, generating it the first time.

    Safe when several processes ask at once: one generates (under a lock file where the
    platform has ``fcntl``), the file appears by an atomic rename, the others reuse it.

    Examples
    --------
    >>> import duckdb
    >>> path = ensure_sample(1_000)
    >>> duckdb.connect(str(path), read_only=True).sql("select count(*) from accounts").fetchone()
    (125,)
    """
    path = default_path(n_users, seed=seed)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path.with_name(path.name + ".lock")):
        if path.exists():  # another process finished while we waited
            return path
        log.info("generating the heapseg sample data (%d users) into %s", n_users, path)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            _write(tmp, n_users, seed, "duckdb", 20_000)
            _publish(tmp, path)
        finally:
            _remove(tmp)
    return path


def _check_args(n_users: int, seed: int, fmt: str, chunk_users: int) -> None:
    if not isinstance(n_users, int) or n_users < 1:
        raise HeapsegError(f"n_users must be a positive integer, got {n_users!r}")
    if not isinstance(seed, int) or seed < 0:
        raise HeapsegError(f"seed must be a non-negative integer, got {seed!r}")
    if fmt not in ("duckdb", "parquet"):
        raise HeapsegError(f"fmt must be 'duckdb' or 'parquet', got {fmt!r}")
    if not isinstance(chunk_users, int) or chunk_users < 1:
        raise HeapsegError(f"chunk_users must be a positive integer, got {chunk_users!r}")


def _write(path: Path, n_users: int, seed: int, fmt: str, chunk_users: int) -> None:
    started = time.perf_counter()
    writer = _DuckDBWriter(path) if fmt == "duckdb" else _ParquetWriter(path)
    n_events = 0
    try:
        # A bar for samples written in several chunks; a small one is done before it would show.
        total = n_users if n_users > chunk_users else None
        with progress(f"building the {n_users:,}-user sample", total) as work:
            for name, rows in tables(seed, n_users, chunk_users):
                writer.write(name, rows)
                if name == "events":
                    n_events += rows.num_rows
                elif name == "users":
                    work.advance(rows.num_rows, f"users, {n_events:,} events")
    finally:
        writer.close()
    log.info(
        "wrote %d users and %d events (%s) in %.1fs",
        n_users,
        n_events,
        fmt,
        time.perf_counter() - started,
    )


def _publish(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` appeared meanwhile (then keep the existing one)."""
    try:
        os.link(tmp, path)  # fails if path exists: never replaces a file someone may be reading
    except FileExistsError:
        return
    except OSError:  # file systems without hard links
        if not path.exists():
            os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.unlink()


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: rely on the atomic rename alone
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Writers


class _DuckDBWriter:
    def __init__(self, path: Path) -> None:
        import duckdb

        self._con = duckdb.connect(str(path))
        # DuckDB's own bar would print over ours (and into notebooks).
        self._con.execute("SET enable_progress_bar = false")
        for name, schema in SCHEMAS.items():
            columns = ", ".join(f'"{f.name}" {_duckdb_type(f.type)}' for f in schema)
            self._con.execute(f"CREATE TABLE {name} ({columns})")

    def write(self, name: str, table: pa.Table) -> None:
        self._con.register("_heapseg_chunk", table)
        try:
            self._con.execute(f"INSERT INTO {name} SELECT * FROM _heapseg_chunk")
        finally:
            self._con.unregister("_heapseg_chunk")

    def close(self) -> None:
        self._con.execute("CHECKPOINT")
        self._con.close()


def _duckdb_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return {
        pa.int64(): "BIGINT",
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
    }[t]


class _ParquetWriter:
    def __init__(self, path: Path) -> None:
        self._path = path
        (path / "events").mkdir(parents=True)
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._parts = 0

    def write(self, name: str, table: pa.Table) -> None:
        if name == "events":
            pq.write_table(
                table, self._path / "events" / f"part-{self._parts:05d}.parquet", compression="zstd"
            )
            self._parts += 1
            return
        if name not in self._writers:
            self._writers[name] = pq.ParquetWriter(
                self._path / f"{name}.parquet", SCHEMAS[name], compression="zstd"
            )
        self._writers[name].write_table(table)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
