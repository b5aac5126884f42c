"""A throwaway PostgreSQL server for the test session, and fast loading of tables into it."""

from __future__ import annotations

import atexit
import contextlib
import glob
import io
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.csv as pa_csv

from tests.backends.reaper import Reaper

if TYPE_CHECKING:
    import psycopg
    from ibis.backends.postgres import Backend as PostgresBackend

# Debian's own cluster tooling is not used: the binaries live in a versioned directory.
_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_SERVER_USER = "postgres"
_ROWS_PER_COPY_CHUNK = 100_000


def find_bin_dir() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None when not installed."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = [Path(d) for d in glob.glob(_BIN_GLOB) if (Path(d) / "initdb").exists()]
    if not candidates:
        return None
    return max(candidates, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


def unavailable_reason() -> str | None:
    """Say why a server cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found; run scripts/system-deps.sh"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_SERVER_USER)
        except KeyError:
            return f"running as root and there is no {_SERVER_USER!r} system user to run the server"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A PostgreSQL server in a temporary directory, listening on 127.0.0.1 only.

    The server refuses to run as root, so when the tests run as root every server command
    runs as the ``postgres`` system user that Debian's package creates.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="heapseg-pg-")))
    port: int = 0
    startup_seconds: float = 0.0
    _bin: Path | None = None
    _running: bool = False
    _databases: int = 0
    _reaper: Reaper | None = None

    def start(self) -> None:
        """Create the cluster, start the server and wait until it accepts connections."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        began = time.perf_counter()
        self._bin = find_bin_dir()
        self._reaper = Reaper(self._cleanup_command())
        (self.root / "socket").mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            account = pwd.getpwnam(_SERVER_USER)
            for path in (self.root, self.root / "socket"):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._pg(
            "initdb",
            "--pgdata",
            str(self.root / "data"),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        # A port picked now may be taken before the server binds it: try a few.
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._start_server()
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise RuntimeError(
                        "PostgreSQL did not start; its log:\n" + self._log_tail()
                    ) from None
        self._running = True
        atexit.register(self.stop)
        self.startup_seconds = time.perf_counter() - began

    def _start_server(self) -> None:
        # The server's own time zone is pinned so that no test depends on the machine's TZ;
        # durability settings are off because the data dies with the session.
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root / 'socket'}",
                "-c timezone=UTC",
                "-c log_timezone=UTC",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=64MB",
            ]
        )
        self._pg(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.root / "data"),
            "--wait",
            "--timeout=60",
            "--log",
            str(self.root / "server.log"),
            "-o",
            options,
        )

    def _cleanup_command(self) -> str:
        assert self._bin is not None
        stop = [str(self._bin / "pg_ctl"), "stop", "--pgdata", str(self.root / "data")]
        stop += ["--mode=immediate"]
        if os.geteuid() == 0:
            stop = ["runuser", "-u", _SERVER_USER, "--", *stop]
        root = shlex.quote(str(self.root))
        return f"{shlex.join(stop)}; rm -rf {root}"

    def _pg(self, program: str, *args: str) -> None:
        assert self._bin is not None
        kwargs: dict = {}
        if os.geteuid() == 0:
            account = pwd.getpwnam(_SERVER_USER)
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
        subprocess.run(
            [str(self._bin / program), *args],
            check=True,
            capture_output=True,
            cwd=self.root,
            env=env,
            **kwargs,
        )

    def _log_tail(self) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"

    def connect_admin(self) -> psycopg.Connection:
        """Open an autocommit connection to the ``postgres`` maintenance database."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def create_database(self, prefix: str = "heapseg_t") -> str:
        """Create a new empty database and return its name."""
        self._databases += 1
        name = f"{prefix}{self._databases}"
        with self.connect_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return name

    def connect(self, database: str) -> PostgresBackend:
        """Connect ibis to one database of this server."""
        import ibis

        return ibis.postgres.connect(
            host="127.0.0.1", port=self.port, user="postgres", database=database
        )

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call twice."""
        if self._running:
            self._running = False
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg("pg_ctl", "stop", "--pgdata", str(self.root / "data"), "--mode=fast")
        shutil.rmtree(self.root, ignore_errors=True)
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None


def _postgres_type(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype):
        return "BIGINT"
    if pa.types.is_floating(dtype):
        return "DOUBLE PRECISION"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_null(dtype):
        return "TEXT"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP WITHOUT TIME ZONE"
    raise TypeError(f"no PostgreSQL column type for Arrow type {dtype}")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def copy_table(con: psycopg.Connection, name: str, table: pa.Table) -> None:
    """Create table ``name`` and fill it with ``COPY ... FROM STDIN``.

    ``table`` must hold naive UTC timestamps (see ``tests.backends.normalize``).
    Arrow's CSV writer quotes every string and leaves NULLs unquoted and empty, which is
    exactly how PostgreSQL's CSV format tells an empty string from a NULL. Row-by-row
    inserts (ibis ``create_table``) took 105 s for a million rows; this takes seconds.
    """
    columns = ", ".join(f"{_quote(f.name)} {_postgres_type(f.type)}" for f in table.schema)
    names = ", ".join(_quote(f.name) for f in table.schema)
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    with con.transaction(), con.cursor() as cur:
        cur.execute(f"CREATE TABLE {_quote(name)} ({columns})")
        with cur.copy(f"COPY {_quote(name)} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in table.to_batches(max_chunksize=_ROWS_PER_COPY_CHUNK):
                buffer = io.BytesIO()
                pa_csv.write_csv(pa.Table.from_batches([batch], table.schema), buffer, options)
                copy.write(buffer.getvalue())
        cur.execute(f"ANALYZE {_quote(name)}")
