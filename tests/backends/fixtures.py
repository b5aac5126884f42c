"""pytest fixtures to run a test on DuckDB, PostgreSQL and PySpark (see tests/backends)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import ibis
import pandas as pd
import pyarrow as pa
import pytest

from tests.backends import BACKENDS, BackendLoader, unavailable_reason

LoadTables = Callable[[Mapping[str, "pd.DataFrame | pa.Table"]], ibis.BaseBackend]

_MARKS = {"postgres": [pytest.mark.postgres], "spark": [pytest.mark.spark]}


@pytest.fixture(scope="session")
def backend_loader() -> Iterator[BackendLoader]:
    """Session-wide loader: ``backend_loader(name, {"users": df, ...}) -> ibis connection``.

    The PostgreSQL server and the Spark JVM start at the first load that needs them and
    stop when the session ends.
    """
    loader = BackendLoader()
    yield loader
    loader.close()


@pytest.fixture(params=[pytest.param(name, marks=_MARKS.get(name, [])) for name in BACKENDS])
def backend_name(request: pytest.FixtureRequest) -> str:
    """Each backend in turn; skipped (a failure under CI=true) where it cannot run."""
    reason = unavailable_reason(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


@pytest.fixture
def load_tables(backend_name: str, backend_loader: BackendLoader) -> Iterator[LoadTables]:
    """Load tables into the current backend; what the test loaded is dropped afterwards."""
    loaded: list[ibis.BaseBackend] = []

    def load(tables: Mapping[str, pd.DataFrame | pa.Table]) -> ibis.BaseBackend:
        con = backend_loader(backend_name, tables)
        loaded.append(con)
        return con

    yield load
    for con in loaded:
        backend_loader.release(con)
