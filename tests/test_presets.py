"""Connect presets: the spec's three segments select the same users through every warehouse
layout as through the tidy sample, on DuckDB, PostgreSQL and Spark; bad sources are named."""

from __future__ import annotations

import warnings

import ibis
import pandas as pd
import pytest

import heapseg
from heapseg import charts
from heapseg.errors import DataError
from heapseg.presets import PRESETS, get_preset
from heapseg.sample import SAMPLE_AS_OF, ensure_sample
from heapseg.sample.layouts import LAYOUTS, layout_tables, write_layout
from tests.backends import BACKENDS, unavailable_reason
from tests.backends.fixtures import backend_loader  # noqa: F401
from tests.spec_examples import NEW_TRIALS, POSSIBLE_CHURN, WINDOW_SHOPPERS

USERS = 1_000
SEGMENTS = {"new_trials": NEW_TRIALS, "window_shoppers": WINDOW_SHOPPERS, "churn": POSSIBLE_CHURN}


def _tidy_id(layout: str, value) -> int:
    # PostHog's person ids are UUIDs ending in the tidy id; the others keep it as text or int.
    return int(str(value)[-12:]) if layout == "posthog" else int(value)


def _members(ds: heapseg.Dataset, layout: str) -> dict[str, set[int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # events the small sample never saw
        frame = ds.execute(ds.membership(SEGMENTS))
    return {
        name: {_tidy_id(layout, u) for u, f in zip(frame.user_id, frame[name], strict=True) if f}
        for name in SEGMENTS
    }


@pytest.fixture(scope="module")
def tidy() -> dict[str, set[int]]:
    ds = heapseg.connect(ensure_sample(USERS), as_of=SAMPLE_AS_OF)
    members = _members(ds, "tidy")
    assert all(members.values())  # each segment selects somebody
    return members


@pytest.fixture(scope="module")
def layouts() -> dict[str, dict]:
    return {layout: layout_tables(layout, n_users=USERS) for layout in LAYOUTS}


_MARKS = {"postgres": [pytest.mark.postgres], "spark": [pytest.mark.spark]}
CASES = [
    pytest.param(backend, layout, marks=_MARKS.get(backend, []), id=f"{backend}-{layout}")
    for backend in BACKENDS
    for layout in LAYOUTS
]


@pytest.mark.parametrize(("backend", "layout"), CASES)
def test_every_preset_selects_the_tidy_samples_users(
    backend,
    layout,
    layouts,
    tidy,
    backend_loader,  # noqa: F811
):
    reason = unavailable_reason(backend)
    if reason:
        pytest.skip(reason)
    con = backend_loader(backend, layouts[layout])
    try:
        ds = heapseg.connect(con, preset=layout, as_of=SAMPLE_AS_OF)
        assert _members(ds, layout) == tidy
        assert ds.total_users() == USERS
    finally:
        backend_loader.release(con)


@pytest.mark.parametrize(
    ("layout", "fmt"),
    [("snowplow", "duckdb"), ("segment", "duckdb")] + [(layout, "parquet") for layout in LAYOUTS],
)
def test_presets_open_duckdb_files_and_parquet_folders(layout, fmt, tidy, tmp_path):
    out = write_layout(tmp_path / f"{layout}.{fmt}", layout, fmt=fmt, n_users=USERS)
    database = "atomic" if fmt == "duckdb" and layout == "snowplow" else None
    ds = heapseg.connect(out, preset=layout, as_of=SAMPLE_AS_OF, database=database)
    assert _members(ds, layout) == tidy
    # Another thread's dataset sees the same views (a cursor of the same database).
    other = ds.for_thread()
    assert other is not ds and other.preset is ds.preset
    assert other.count(POSSIBLE_CHURN) == len(tidy["churn"])


MAPPED = {  # the views each preset binds, and a word of its SQL
    "segment": (("users", "events", "user_migrations", "user_history"), "COALESCE"),
    "heap": (("users", "events", "user_migrations"), "EVENT_TABLE_NAME"),
    "posthog": (("users", "events", "user_migrations"), "PERSON_DISTINCT_ID"),
    "amplitude": (("users", "events", "user_migrations", "user_history"), "EPOCH_MS"),
    "snowplow": (("users", "events", "user_migrations", "user_history"), "DERIVED_TSTAMP"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_mapping_shown_is_sql_that_rebuilds_the_dataset(layout, tmp_path, tidy):
    out = write_layout(tmp_path / f"{layout}.duckdb", layout, n_users=USERS)
    database = "atomic" if layout == "snowplow" else None
    ds = heapseg.connect(out, preset=layout, as_of=SAMPLE_AS_OF, database=database)
    text = ds.describe_mapping()
    views, word = MAPPED[layout]
    assert f"preset {layout!r}" in text and word in text.upper()
    if layout in ("posthog", "amplitude", "snowplow"):
        assert "JSON_TYPE" in text  # JSON keys read by the engine, listed with their types
        assert all(f"-- {role}." in text for role in ds.json_properties)
    # Run the views it prints under other names, then connect as it says: same users.
    con = ibis.duckdb.connect()
    con.raw_sql(f"ATTACH '{out}' AS src (READ_ONLY)")
    sql = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    assert [s.split()[2] for s in statements] == list(views)
    for statement in statements:
        con.raw_sql(statement)
    copy = heapseg.connect(con, as_of=SAMPLE_AS_OF)
    assert _members(copy, layout) == tidy
    assert "describe_mapping" in ds._repr_html_()


def test_a_source_without_the_layouts_columns_names_them_and_the_preset():
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE TABLE events (distinct_id VARCHAR, event VARCHAR, ts TIMESTAMP)")
    con.raw_sql("CREATE TABLE persons (id VARCHAR, properties JSON)")
    with pytest.raises(DataError) as info:
        heapseg.connect(con, preset="posthog")
    message = str(info.value)
    assert "posthog preset" in message
    for missing in (
        "events.timestamp",
        "events.properties",
        "persons.created_at",
        "table person_distinct_id",
    ):
        assert missing in message


def test_a_file_without_the_layouts_tables_in_its_schema_says_where_it_looked(tmp_path):
    out = write_layout(tmp_path / "snowplow.duckdb", "snowplow", n_users=300)
    with pytest.raises(DataError) as info:
        heapseg.connect(out, preset="snowplow")  # the table is atomic.events
    message = str(info.value)
    assert "snowplow preset" in message and "table events in schema 'main'" in message
    assert "database= names another schema" in message
    ds = heapseg.connect(out, preset="snowplow", database="atomic", as_of=SAMPLE_AS_OF)
    assert ds.total_users() == 300


def test_presets_by_name():
    assert get_preset("rudderstack") is PRESETS["segment"]
    assert get_preset("Heap") is PRESETS["heap"]
    with pytest.raises(DataError, match="valid: segment"):
        get_preset("mixpanel")
    with pytest.raises(DataError, match="needs a source"):
        heapseg.connect(preset="posthog")
    assert "person_distinct_id" in PRESETS["posthog"].describe()


@pytest.fixture(scope="module")
def opened(layouts) -> dict[str, heapseg.Dataset]:
    """Each layout in an in-memory DuckDB (JSON as text), opened with its preset."""
    out = {}
    for layout, tables in layouts.items():
        con = ibis.duckdb.connect()
        for name, table in tables.items():
            con.create_table(name, table)
        out[layout] = heapseg.connect(con, preset=layout, as_of=SAMPLE_AS_OF)
    return out


PAID = heapseg.user.subscription_type == "paid"
CHARTS = {
    # Event properties from per-event tables (Segment, Heap), JSON (PostHog, Amplitude) or an
    # unstruct_event JSON column (Snowplow); user properties from columns or JSON keys.
    "trend of revenue": lambda ds: charts.trend(
        ds, "Completed Order", by=PAID, measure="sum", property="revenue", interval="week"
    ),
    "breakdown by a user property": lambda ds: charts.breakdown(ds, PAID, "country"),
    "breakdown by a number": lambda ds: charts.breakdown(ds, PAID, "ltv", bins=5),
    "breakdown by an event property": lambda ds: charts.breakdown(
        ds, PAID, "category", event="Add to Cart"
    ),
    "funnel with a where": lambda ds: charts.funnel(
        ds,
        ["Add to Cart", ("Completed Order", heapseg.event_prop("revenue") > 50)],
        by=PAID,
    ),
}


def _chart_data(ds: heapseg.Dataset) -> dict[str, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # events the small sample never saw
        return {name: draw(ds).data.reset_index(drop=True) for name, draw in CHARTS.items()}


@pytest.fixture(scope="module")
def tidy_charts() -> dict[str, pd.DataFrame]:
    charted = _chart_data(heapseg.connect(ensure_sample(USERS), as_of=SAMPLE_AS_OF))
    assert all(len(data) for data in charted.values())
    return charted


@pytest.mark.parametrize("layout", LAYOUTS)
def test_charts_through_every_preset_equal_the_tidy_samples(layout, opened, tidy_charts):
    for chart, got in _chart_data(opened[layout]).items():
        try:
            pd.testing.assert_frame_equal(got, tidy_charts[chart], check_dtype=False)
        except AssertionError as error:
            raise AssertionError(f"{layout}: {chart}") from error


@pytest.mark.parametrize("layout", ["segment", "amplitude"])
def test_layouts_with_join_times_and_history_equal_the_tidy_sample_in_the_past(layout, opened):
    # Segment: users.created_at and identifies; Amplitude: user_creation_time and the
    # user_properties of $identify events, which are no events of their own.
    tidy = heapseg.connect(ensure_sample(USERS), as_of=SAMPLE_AS_OF)
    ds = opened[layout]
    assert ds.table_counts()["events"] == tidy.table_counts()["events"]
    assert ds.event_names() == tidy.event_names()
    for as_of in ("2026-03-01", "2026-07-15"):
        assert ds.count(PAID, as_of=as_of) == tidy.count(PAID, as_of=as_of) > 0
        assert ds.total_users(as_of) == tidy.total_users(as_of) < USERS
    want = charts.size_over_time(tidy, PAID).data.reset_index(drop=True)
    got = charts.size_over_time(ds, PAID).data.reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


JSON_LAYOUTS = ("posthog", "amplitude", "snowplow")  # the layouts whose events hold JSON


@pytest.mark.parametrize("layout", JSON_LAYOUTS)
def test_events_json_read_once_from_a_parquet_folder(layout, tmp_path, tidy, tidy_charts):
    out = write_layout(tmp_path / layout, layout, fmt="parquet", n_users=USERS)
    ds = heapseg.connect(out, preset=layout, as_of=SAMPLE_AS_OF, json_events="once")
    assert ds.json_events == "once"
    assert _members(ds, layout) == tidy
    for chart, got in _chart_data(ds).items():
        pd.testing.assert_frame_equal(got, tidy_charts[chart], check_dtype=False, obj=chart)
    # The events are a table of heapseg's in-memory DuckDB, sorted as rules read them.
    raw = ds.backend.con
    assert ("events",) in raw.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    stored = raw.execute('SELECT event, "time" FROM events ORDER BY rowid').df()
    assert len(stored) == ds.table_counts()["events"]
    ordered = stored.sort_values(["event", "time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(stored, ordered)
    assert "read once at connect" in ds.describe_mapping()
    other = ds.for_thread()
    assert other.json_events == "once"
    assert other.count(POSSIBLE_CHURN) == len(tidy["churn"])


@pytest.mark.parametrize(
    "backend", [pytest.param(b, marks=_MARKS.get(b, []), id=b) for b in BACKENDS]
)
def test_events_json_read_once_through_a_connection(backend, layouts, tidy, backend_loader):  # noqa: F811
    reason = unavailable_reason(backend)
    if reason:
        pytest.skip(reason)
    con = backend_loader(backend, layouts["posthog"])
    try:
        if backend == "spark":
            with pytest.raises(DataError, match="not on pyspark"):
                heapseg.connect(con, preset="posthog", as_of=SAMPLE_AS_OF, json_events="once")
            return
        ds = heapseg.connect(con, preset="posthog", as_of=SAMPLE_AS_OF, json_events="once")
        assert ds.json_events == "once"
        assert "properties" not in ds.raw_events.columns
        assert ds.raw_events.get_name().split(".")[-1].startswith("heapseg_json")
        assert _members(ds, "posthog") == tidy
        revenue = heapseg.did("Completed Order").where(heapseg.event_prop("revenue") > 100)
        per_query = heapseg.connect(con, preset="posthog", as_of=SAMPLE_AS_OF)
        assert ds.count(revenue) == per_query.count(revenue) > 0
    finally:
        backend_loader.release(con)
