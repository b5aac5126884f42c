"""One small local PySpark session for the test session, and loading tables into it."""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
from py4j.protocol import Py4JError

from tests.backends.reaper import Reaper

if TYPE_CHECKING:
    from ibis.backends.pyspark import Backend as PySparkBackend
    from pyspark.sql import SparkSession


def unavailable_reason() -> str | None:
    """Say why a Spark session cannot be started here, or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed; run scripts/setup.sh"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no Java runtime found; run scripts/system-deps.sh"
    return None


@dataclass
class SparkServer:
    """A ``local[2]`` SparkSession whose warehouse, metastore and scratch files live in a temp dir.

    Each ``connect`` gets its own ``newSession()``: same JVM and SparkContext, but separate
    temporary views, so every load can use plain table names without colliding.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="heapseg-spark-")))
    startup_seconds: float = 0.0
    _session: SparkSession | None = None
    _reaper: Reaper | None = None

    def start(self) -> None:
        """Start the JVM and the base session."""
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        from pyspark.sql import SparkSession

        began = time.perf_counter()
        # The JVM exits by itself when this process dies (its stdin closes); give it a moment.
        self._reaper = Reaper(f"sleep 3; rm -rf {shlex.quote(str(self.root))}")
        # Spark binds the driver to the machine's name unless told otherwise; CI has no DNS.
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        # The JVM clock runs in UTC whatever TZ the tests set, and a small heap with the serial
        # collector fits a 2-core machine shared with other processes.
        java_options = (
            f"-Duser.timezone=UTC -Dderby.system.home={self.root / 'derby'} "
            "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss4m"
        )
        self._session = (
            SparkSession.builder.master("local[2]")
            .appName("heapseg-tests")
            .config("spark.driver.memory", "1g")
            .config("spark.driver.extraJavaOptions", java_options)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.local.dir", str(self.root / "scratch"))
            # A leftover ./spark-warehouse makes the next session fail (LOCATION_ALREADY_EXISTS).
            .config("spark.sql.warehouse.dir", str(self.root / "warehouse"))
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.ui.enabled", "false")
            # Test tables are tiny: re-planning stages at run time (AQE) and compiling whole
            # stages to Java (Janino) cost more than the rows do; the results are the same.
            .config("spark.sql.adaptive.enabled", "false")
            .config("spark.sql.codegen.wholeStage", "false")
            .config("spark.ui.showConsoleProgress", "false")
            # Without Arrow, PySpark converts naive datetimes through the *process* time zone;
            # with Arrow and the session zone UTC they stay naive UTC. No silent fallback.
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
            .getOrCreate()
        )
        self._session.sparkContext.setLogLevel("ERROR")
        self.startup_seconds = time.perf_counter() - began

    def new_session(self) -> SparkSession:
        """Return a fresh session (own temporary views) on the running JVM."""
        if self._session is None:
            self.start()
        assert self._session is not None
        return self._session.newSession()

    def connect(self, session: SparkSession) -> PySparkBackend:
        """Connect ibis to ``session``."""
        import ibis

        return ibis.pyspark.connect(session)

    def stop(self) -> None:
        """Stop the session and remove its directory; safe to call twice."""
        if self._session is not None:
            try:
                self._session.stop()
            except (ConnectionError, OSError, Py4JError) as exc:
                # The JVM is gone already (it ended before the session did): nothing to stop.
                warnings.warn(f"Spark JVM already gone at teardown: {exc}", stacklevel=2)
            self._session = None
        shutil.rmtree(self.root, ignore_errors=True)
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None


def create_view(session: SparkSession, name: str, table: pa.Table) -> None:
    """Register ``table`` (naive UTC timestamps) as temporary view ``name`` of ``session``."""
    session.createDataFrame(table).createOrReplaceTempView(name)
