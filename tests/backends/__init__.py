"""Run the same tests on DuckDB, PostgreSQL and PySpark: start engines lazily, load tables.

``BackendLoader(name, tables)`` returns an ibis connection on which every table of
``tables`` exists under its own plain name (``users``, ``events``, ...). Each call gets an
isolated namespace (a fresh DuckDB database, a fresh PostgreSQL database, a fresh Spark
session on the shared JVM), so tests never see each other's tables and
``heapseg.connect(con)`` works with the default table names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from tests.backends import postgres, spark

if TYPE_CHECKING:
    import ibis

BACKENDS: tuple[str, ...] = ("duckdb", "postgres", "spark")


def unavailable_reason(name: str) -> str | None:
    """Say why backend ``name`` cannot run on this machine, or None when it can."""
    if name == "duckdb":
        return None
    if name == "postgres":
        return postgres.unavailable_reason()
    if name == "spark":
        return spark.unavailable_reason()
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def _normalize_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        return _normalize_column(column.cast(dtype.value_type))
    if pa.types.is_large_string(dtype) or pa.types.is_null(dtype):
        return column.cast(pa.string())
    if pa.types.is_timestamp(dtype):
        # Casting away the zone keeps the UTC instant; the engines all hold microseconds.
        return column.cast(pa.timestamp("us"))
    return column


def normalize(table: pd.DataFrame | pa.Table) -> pa.Table:
    """Return ``table`` as Arrow in the types every backend shares.

    Timestamps become naive UTC with microsecond precision (the data model says naive
    means UTC), categoricals and large strings become strings, all-NULL columns strings.
    """
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    columns = [_normalize_column(column) for column in table.columns]
    return pa.table(columns, names=table.column_names)


@dataclass
class BackendLoader:
    """Load tables into DuckDB, PostgreSQL or PySpark; servers start at first use, once."""

    _postgres: postgres.PostgresServer | None = None
    _spark: spark.SparkServer | None = None
    _open: list[tuple[str, ibis.BaseBackend, object]] = field(default_factory=list)

    def __call__(
        self, name: str, tables: Mapping[str, pd.DataFrame | pa.Table]
    ) -> ibis.BaseBackend:
        """Load ``tables`` into a fresh namespace of backend ``name`` and connect ibis to it.

        Parameters
        ----------
        name
            ``"duckdb"``, ``"postgres"`` or ``"spark"``.
        tables
            Table name -> pandas DataFrame or Arrow table. Timestamps are stored as naive
            UTC; tz-aware input is converted to UTC first.

        Returns
        -------
        ibis.BaseBackend
            A connection on which ``con.table(table_name)`` works for every loaded table.
        """
        reason = unavailable_reason(name)
        if reason:
            raise RuntimeError(f"backend {name!r} unavailable: {reason}")
        arrow = {table_name: normalize(data) for table_name, data in tables.items()}
        loaders = {
            "duckdb": self._load_duckdb,
            "postgres": self._load_postgres,
            "spark": self._load_spark,
        }
        return loaders[name](arrow)

    def _load_duckdb(self, tables: dict[str, pa.Table]) -> ibis.BaseBackend:
        import ibis

        con = ibis.duckdb.connect()
        for table_name, table in tables.items():
            con.create_table(table_name, table)
        self._open.append(("duckdb", con, None))
        return con

    def _load_postgres(self, tables: dict[str, pa.Table]) -> ibis.BaseBackend:
        if self._postgres is None:
            server = postgres.PostgresServer()
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
            self._postgres = server
        database = self._postgres.create_database()
        con = self._postgres.connect(database)
        for table_name, table in tables.items():
            postgres.copy_table(con.con, table_name, table)
        self._open.append(("postgres", con, database))
        return con

    def _load_spark(self, tables: dict[str, pa.Table]) -> ibis.BaseBackend:
        if self._spark is None:
            server = spark.SparkServer()
            try:
                server.start()
            except BaseException:
                server.stop()
                raise
            self._spark = server
        session = self._spark.new_session()
        for table_name, table in tables.items():
            spark.create_view(session, table_name, table)
        con = self._spark.connect(session)
        self._open.append(("spark", con, session))
        return con

    @property
    def startup_seconds(self) -> dict[str, float]:
        """How long each server that was started took to become ready."""
        started = {"postgres": self._postgres, "spark": self._spark}
        return {name: s.startup_seconds for name, s in started.items() if s is not None}

    def release(self, con: ibis.BaseBackend) -> None:
        """Close ``con`` and drop what its load created (database, views)."""
        for index, (name, open_con, handle) in enumerate(self._open):
            if open_con is con:
                del self._open[index]
                self._release(name, open_con, handle)
                return

    def _release(self, name: str, con: ibis.BaseBackend, handle: object) -> None:
        if name == "spark":
            for view in handle.catalog.listTables():  # type: ignore[attr-defined]
                handle.catalog.dropTempView(view.name)  # type: ignore[attr-defined]
            return
        con.disconnect()
        if name == "postgres" and self._postgres is not None:
            with self._postgres.connect_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{handle}" WITH (FORCE)')

    def close(self) -> None:
        """Release every connection and stop the servers."""
        while self._open:
            self.release(self._open[-1][1])
        for server in (self._spark, self._postgres):
            if server is not None:
                server.stop()
        self._spark = None
        self._postgres = None
