"""Datasets: connect (DuckDB file, Parquet folder, ibis backend), count/counts/members/sql/flag."""

from __future__ import annotations

import json
import os
import threading
import warnings

import duckdb
import ibis
import ibis.expr.types as ir
import pytest

import heapseg
from heapseg import dataset as dataset_module
from heapseg import did, user
from heapseg.dataset import Dataset
from heapseg.errors import DataError
from tests.data_helpers import (
    AS_OF,
    accounts_frame,
    dataset,
    event_rule,
    events_frame,
    group,
    ids,
    load,
    user_rule,
    users_frame,
)

# paid: p1, p3, p5; trial: p2, p4
USERS = [
    {"user_id": f"p{i}", "plan": "paid" if i % 2 else "trial", "account_id": f"a{i % 2}"}
    for i in range(1, 6)
]
ACCOUNTS = [{"account_id": "a0", "tier": "gold"}, {"account_id": "a1", "tier": "silver"}]
EVENTS = [
    ("p1", "2024-03-01", "View", {"path": "/home"}),
    ("p1", "2024-03-02", "View", {"path": "/pricing"}),
    ("p2", "2024-03-01", "View", {"path": "/home"}),
    ("p2", "2024-03-03", "Buy", {"revenue": 20.0}),
    ("p3", "2024-03-05", "View", {"path": "/home"}),
    ("p3", "2024-04-05", "Buy", {"revenue": 50.0}),  # after as_of
]
# View: p1, p2, p3; Buy before as_of: p2
VIEWERS = group(event_rule("View"))
PAID = group(user_rule("plan", "=", "paid"))
PAID_VIEWERS = group(user_rule("plan", "=", "paid"), event_rule("View"))  # p1, p3


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return dataset(USERS, EVENTS, ACCOUNTS)


class ExecuteSpy:
    """Counts the backend queries a dataset runs.

    Every query goes through ``execute`` (an ibis expression) or, for counts on DuckDB whose SQL
    is cached, ``_first_row_of_sql``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, target: Dataset) -> None:
        self.calls = 0
        for method in ("execute", "_first_row_of_sql"):
            original = getattr(target, method)

            def counted(arg, original=original):
                self.calls += 1
                return original(arg)

            monkeypatch.setattr(target, method, counted)


# --------------------------------------------------------------------------- count / counts


def test_count_takes_models_dicts_json_and_builders(ds):
    model = heapseg.Segment.from_dict(PAID_VIEWERS)
    built = (user.plan == "paid") & did("View")
    for segment in (model, PAID_VIEWERS, model.to_json(), built):
        assert ds.count(segment, as_of=AS_OF) == 2
    assert ds.count(did("Buy"), as_of=AS_OF) == 1  # a single rule is a segment too
    assert ds.count(did("Buy"), as_of="2024-05-01") == 2


def test_counts_runs_one_query_for_several_segments(ds, monkeypatch):
    ds.event_names()  # the event-name check is cached: warm it so only the counts remain
    spy = ExecuteSpy(monkeypatch, ds)
    result = ds.counts(
        {"viewers": VIEWERS, "paid": PAID, "paid viewers": PAID_VIEWERS, "all": group()},
        as_of=AS_OF,
    )
    assert result == {"viewers": 3, "paid": 3, "paid viewers": 2, "all": 5, "__total__": 5}
    assert spy.calls == 1


def test_counts_of_nothing_is_the_total(ds):
    assert ds.counts({}) == {"__total__": 5}


def test_total_users(ds):
    assert ds.total_users() == 5


def test_default_as_of_of_the_dataset():
    fixed = dataset(USERS, EVENTS, as_of="2024-05-01")
    assert fixed.count(did("Buy")) == 2
    assert fixed.count(did("Buy"), as_of=AS_OF) == 1


# --------------------------------------------------------------------------- reused compiled SQL


class CompileSpy:
    """Counts the segments the dataset compiles (builds an ibis expression for)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        # A count compiles through compile_split (did-not rules as anti joins), the rest through
        # compile_segment: either is one segment compiled.
        for name in ("compile_segment", "compile_split"):
            monkeypatch.setattr(dataset_module, name, self._counted(getattr(dataset_module, name)))

    def _counted(self, original):
        def counted(segment, ctx):
            self.calls += 1
            return original(segment, ctx)

        return counted


def test_a_repeated_count_reuses_the_compiled_query(monkeypatch):
    fresh = dataset(USERS, EVENTS, ACCOUNTS)
    spy = CompileSpy(monkeypatch)
    assert [fresh.count(PAID_VIEWERS, as_of=AS_OF) for _ in range(3)] == [2, 2, 2]
    assert spy.calls == 1
    both = {"viewers": VIEWERS, "paid": PAID}
    assert fresh.counts(both, as_of=AS_OF) == {"viewers": 3, "paid": 3, "__total__": 5}
    assert fresh.counts(both, as_of=AS_OF) == {"viewers": 3, "paid": 3, "__total__": 5}
    assert spy.calls == 3  # the two segments once, for the one query of both
    # The same definition as JSON text, or as a model object, is the same query.
    assert fresh.count(json.dumps(PAID_VIEWERS), as_of=AS_OF) == 2
    assert fresh.count(heapseg.Segment.from_dict(PAID_VIEWERS), as_of=AS_OF) == 2
    assert spy.calls == 3
    fresh.clear_query_cache()
    assert fresh.count(PAID_VIEWERS, as_of=AS_OF) == 2
    assert spy.calls == 4


def test_reused_queries_are_per_as_of():
    fresh = dataset(USERS, EVENTS)
    buyers = did("Buy")
    got = [fresh.count(buyers, as_of=moment) for moment in (AS_OF, "2024-05-01", AS_OF)]
    assert got == [1, 2, 1]


def test_true_and_1_are_different_definitions(monkeypatch):
    # Frozen model objects hash True like 1: the reuse key must not confuse them.
    fresh = dataset([{"user_id": "u1", "opt_in": True}, {"user_id": "u2", "opt_in": False}])
    assert fresh.count(group(user_rule("opt_in", "=", True)), as_of=AS_OF) == 1
    with pytest.raises(heapseg.SchemaError, match="true or false"):
        fresh.count(group(user_rule("opt_in", "=", 1)), as_of=AS_OF)


def test_references_to_saved_segments_are_compiled_every_time():
    saved: dict[str, dict] = {"s": PAID}

    class Resolver:
        def resolve_segment(self, segment_id: str):
            return heapseg.Segment.from_dict(saved[segment_id])

    fresh = dataset(USERS, EVENTS, resolver=Resolver())
    in_saved = group({"kind": "segment", "id": "s"})
    assert fresh.count(in_saved, as_of=AS_OF) == 3
    assert fresh.counts({"in": in_saved}, as_of=AS_OF)["in"] == 3
    saved["s"] = PAID_VIEWERS  # someone edited the saved segment
    assert fresh.count(in_saved, as_of=AS_OF) == 2
    assert fresh.counts({"in": in_saved}, as_of=AS_OF)["in"] == 2
    saved["s"] = group(event_rule("Buy"))
    assert fresh.count(in_saved, as_of=AS_OF) == 1


def test_reused_queries_are_bounded_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(dataset_module, "_SQL_CACHE_SIZE", 4)
    fresh = dataset(USERS, EVENTS)
    spy = CompileSpy(monkeypatch)
    plans = [group(user_rule("plan", "=", f"plan{i}")) for i in range(6)]
    for definition in plans[:4]:
        fresh.count(definition, as_of=AS_OF)
    fresh.count(plans[0], as_of=AS_OF)  # used again: now the most recent
    for definition in plans[4:]:
        fresh.count(definition, as_of=AS_OF)  # pushes out plans[1] and plans[2]
    assert spy.calls == 6
    fresh.count(plans[0], as_of=AS_OF)
    fresh.count(plans[5], as_of=AS_OF)
    assert spy.calls == 6
    fresh.count(plans[1], as_of=AS_OF)
    assert spy.calls == 7


def test_a_reused_query_still_warns_about_unknown_events():
    fresh = dataset(USERS, EVENTS)
    for _ in range(2):
        with pytest.warns(heapseg.UnknownEventWarning, match=r"rules\[0\]\.then\.event.*'Buyy'"):
            fresh.count(group(event_rule("View", then={"event": "Buyy"})), as_of=AS_OF)


# --------------------------------------------------------------------------- members / sql / flag


def test_members_is_lazy_and_selects_properties(ds, monkeypatch):
    spy = ExecuteSpy(monkeypatch, ds)
    ds.event_names()
    spy.calls = 0
    members = ds.members(PAID_VIEWERS, as_of=AS_OF, properties=["plan"])
    assert isinstance(members, ir.Table)
    assert spy.calls == 0  # nothing ran yet
    assert members.columns == ("user_id", "plan")
    frame = members.order_by("user_id").to_pandas()
    assert frame.to_dict("records") == [
        {"user_id": "p1", "plan": "paid"},
        {"user_id": "p3", "plan": "paid"},
    ]


def test_members_default_columns_are_all_user_properties(ds):
    members = ds.members(PAID, as_of=AS_OF)
    assert members.columns == tuple(users_frame(USERS).columns)
    assert members.count().execute() == 3


def test_members_with_unknown_property_is_a_data_error(ds):
    with pytest.raises(DataError, match=r"'nope'.*plan"):
        ds.members(PAID, properties=["nope"])


def test_sql_runs_back_on_duckdb(ds):
    sql = ds.sql(PAID_VIEWERS, as_of=AS_OF)
    assert "SELECT" in sql
    assert "2024" in sql  # as_of is a literal in the query: it can be pasted anywhere
    back = set(ds.backend.sql(sql).to_pandas()["user_id"])
    raw = {row[0] for row in ds.backend.con.execute(sql).fetchall()}
    assert back == raw == {"p1", "p3"}


def test_sql_with_properties(ds):
    sql = ds.sql(PAID_VIEWERS, as_of=AS_OF, properties=["plan"])
    frame = ds.backend.sql(sql).to_pandas()
    assert list(frame.columns) == ["user_id", "plan"]
    assert set(frame["user_id"]) == {"p1", "p3"}


def test_flag_on_the_events_table(ds):
    flag = ds.flag(PAID, table=ds.events, as_of=AS_OF)
    inside = ds.events.filter(flag).to_pandas()
    outside = ds.events.filter(~flag).to_pandas()
    # p1: 2 events, p3: 2 events; p2: 2 events
    assert sorted(inside["user_id"]) == ["p1", "p1", "p3", "p3"]
    assert sorted(outside["user_id"]) == ["p2", "p2"]
    marked = ds.events.mutate(paid=flag)
    grouped = marked.group_by("paid").aggregate(n=marked.count()).to_pandas()
    assert dict(zip(grouped["paid"], grouped["n"], strict=True)) == {True: 4, False: 2}


def test_flag_on_the_users_table(ds):
    flag = ds.flag(VIEWERS, as_of=AS_OF)
    assert set(ds.users.filter(flag).to_pandas()["user_id"]) == {"p1", "p2", "p3"}


def test_flag_needs_a_user_id_column(ds):
    with pytest.raises(DataError, match="user_id"):
        ds.flag(PAID, table=ds.accounts)


# --------------------------------------------------------------------------- display


def test_segment_view_repr_shows_count_and_share(ds):
    view = ds.segment(PAID_VIEWERS, as_of=AS_OF)
    assert (view.count, view.total) == (2, 5)
    assert view.share == pytest.approx(0.4)
    text = repr(view)
    assert "plan = paid AND did View" in text
    assert "2 users" in text and "40.0%" in text
    html = view._repr_html_()
    assert "plan = paid AND did View" in html
    assert "<b>2</b> users (40.0% of 5)" in html
    assert "p1" in html and "p3" in html and "p2" not in html
    assert list(view.page(0, 1)["user_id"]) == ["p1"]
    assert list(view.page(1, 1)["user_id"]) == ["p3"]


def test_dataset_html_repr_shows_tables_rows_and_properties(ds):
    html = ds._repr_html_()
    for expected in ("users", "events", "accounts", ">5<", ">6<", ">2<", "plan (string)", "tier"):
        assert expected in html
    assert ds.table_counts() == {"users": 5, "events": 6, "accounts": 2}


def test_schema_lists_properties_by_kind(ds):
    schema = ds.schema
    assert "plan" in schema.user_properties and "user_id" not in schema.user_properties
    assert schema.user_properties["plan"].is_string()
    assert set(schema.account_properties) == {"tier", "seats"}
    assert schema.event_properties["revenue"].is_floating()
    assert "time" not in schema.event_properties
    assert schema.properties("event_property") == schema.event_properties


def test_event_names_most_frequent_first(ds):
    assert ds.event_names() == ["View", "Buy"]


def test_distinct_values_most_frequent_first(ds):
    assert ds.distinct_values("user", "plan") == ["paid", "trial"]
    assert ds.distinct_values("event", "path", limit=1) == ["/home"]
    assert ds.distinct_values("account", "tier") == ["gold", "silver"]


def test_distinct_values_of_unknown_property_is_a_data_error(ds):
    with pytest.raises(DataError, match="'nope'"):
        ds.distinct_values("user", "nope")


# --------------------------------------------------------------------------- connect


def test_connect_binds_tables_and_finds_optional_ones():
    con = load(USERS, EVENTS, ACCOUNTS, migrations=[("p5", "p4")])
    found = heapseg.connect(con)
    assert found.accounts is not None and found.migrations is not None
    bare = heapseg.connect(con, accounts=None, user_migrations=None)
    assert bare.accounts is None and bare.migrations is None
    assert heapseg.connect(load(USERS, EVENTS)).accounts is None


def test_connect_with_ibis_tables(ds):
    again = heapseg.connect(ds.backend, users=ds.users, events=ds.events, accounts=None)
    assert again.count(PAID_VIEWERS, as_of=AS_OF) == 2


def test_column_mapping_for_a_heap_connect_like_warehouse():
    con = ibis.duckdb.connect()
    users = users_frame(USERS).rename(columns={"user_id": "id"})
    events = events_frame(EVENTS).rename(
        columns={"user_id": "uid", "time": "ts", "event": "event_table_name"}
    )
    con.create_table("people", users)
    con.create_table("all_events", events)
    mapped = heapseg.connect(
        con,
        users="people",
        events="all_events",
        columns={
            "users": {"user_id": "id"},
            "events": {"user_id": "uid", "time": "ts", "event": "event_table_name"},
        },
    )
    assert ids(mapped, PAID_VIEWERS) == {"p1", "p3"}
    assert mapped.event_names() == ["View", "Buy"]
    assert ids(mapped, group(event_rule("Buy"))) == {"p2"}


def test_missing_table_is_a_clear_data_error():
    con = load(USERS, EVENTS)
    with pytest.raises(DataError, match=r"'all_events'.*available tables: events, users"):
        heapseg.connect(con, events="all_events")
    with pytest.raises(DataError, match=r"'nope' \(accounts\)"):
        heapseg.connect(con, accounts="nope")


def test_missing_column_is_a_clear_data_error():
    con = ibis.duckdb.connect()
    con.create_table("users", users_frame(USERS))
    con.create_table("events", events_frame(EVENTS).rename(columns={"event": "name"}))
    with pytest.raises(DataError, match=r"no column 'event'.*columns=") as info:
        heapseg.connect(con)
    assert "name" in str(info.value)  # the columns it does have
    with pytest.raises(DataError, match=r"do not exist.*'evt'"):
        heapseg.connect(con, columns={"events": {"event": "evt"}})
    with pytest.raises(DataError, match="unknown tables"):
        heapseg.connect(con, columns={"sessions": {"event": "name"}})


def test_event_time_must_be_a_timestamp():
    con = ibis.duckdb.connect()
    con.create_table("users", users_frame(USERS))
    con.create_table("events", events_frame(EVENTS).assign(time="2024-03-01"))
    with pytest.raises(DataError, match=r"events.time must be a timestamp"):
        heapseg.connect(con)


def write_duckdb_file(path) -> None:
    con = duckdb.connect(str(path))
    for name, frame in (
        ("users", users_frame(USERS)),
        ("events", events_frame(EVENTS)),
        ("accounts", accounts_frame(ACCOUNTS)),
    ):
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()


def write_parquet_folder(folder) -> None:
    folder.mkdir()
    users_frame(USERS).to_parquet(folder / "users.parquet")
    accounts_frame(ACCOUNTS).to_parquet(folder / "accounts.parquet")
    # events in two files under events/, as warehouses export them
    (folder / "events").mkdir()
    events = events_frame(EVENTS)
    events.iloc[:3].to_parquet(folder / "events" / "part-0.parquet")
    events.iloc[3:].to_parquet(folder / "events" / "part-1.parquet")


def test_connect_to_a_duckdb_file(tmp_path):
    path = tmp_path / "shop.duckdb"
    write_duckdb_file(path)
    opened = heapseg.connect(path)
    assert opened.count(PAID_VIEWERS, as_of=AS_OF) == 2
    assert (
        opened.count(
            group({"kind": "account", "field": "tier", "operator": "=", "value": "gold"}),
            as_of=AS_OF,
        )
        == 2
    )
    assert opened.total_users() == 5
    assert "shop" in repr(opened)


def test_connect_to_a_parquet_folder(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    opened = heapseg.connect(str(folder))
    assert opened.table_counts() == {"users": 5, "events": 6, "accounts": 2}
    assert ids(opened, PAID_VIEWERS) == {"p1", "p3"}
    # a0 (gold) is the account of p2 and p4
    tier = group({"kind": "account", "field": "tier", "operator": "=", "value": "gold"})
    assert ids(opened, tier) == {"p2", "p4"}


def test_connect_to_a_missing_path_or_table(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        heapseg.connect(tmp_path / "nothing.duckdb")
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    with pytest.raises(DataError, match=r"no sessions.parquet.*users.parquet"):
        heapseg.connect(folder, events="sessions")


def count_from_two_threads(source: Dataset, expected: int) -> list[str]:
    """Two threads, each on ``for_thread()``, count at the same time; returns their errors."""
    errors: list[str] = []
    results: list[int] = []
    start = threading.Barrier(2)

    def work() -> None:
        mine = source.for_thread()
        start.wait()
        try:
            for _ in range(15):
                results.append(mine.count(PAID_VIEWERS, as_of=AS_OF))
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors or results == [expected] * 30
    return errors


def test_for_thread_on_a_duckdb_file(tmp_path):
    path = tmp_path / "shop.duckdb"
    write_duckdb_file(path)
    opened = heapseg.connect(path)
    other = opened.for_thread()
    assert other is not opened
    assert other.backend.con is not opened.backend.con
    assert count_from_two_threads(opened, 2) == []


@pytest.mark.parametrize("source", ["backend", "parquet"])
def test_for_thread_gives_each_thread_its_own_connection(tmp_path, source: str):
    if source == "parquet":
        write_parquet_folder(tmp_path / "export")
        opened = heapseg.connect(tmp_path / "export")
    else:
        opened = dataset(USERS, EVENTS)
    other = opened.for_thread()
    assert other.backend.con is not opened.backend.con
    assert count_from_two_threads(opened, 2) == []


def test_warnings_of_unknown_events_name_the_rule(ds):
    with pytest.warns(heapseg.UnknownEventWarning, match=r"rules\[1\]\.event.*'Vieww'"):
        ds.count(group(user_rule("plan", "is set"), event_rule("Vieww")), as_of=AS_OF)
    with warnings.catch_warnings():
        warnings.simplefilter("error", heapseg.UnknownEventWarning)
        ds.count(VIEWERS, as_of=AS_OF)


def test_backend_failure_is_a_data_error(tmp_path):
    path = tmp_path / "shop.duckdb"
    write_duckdb_file(path)
    opened = heapseg.connect(path)
    # a connection closed under the dataset: the backend's own error must not leak out raw
    opened.backend.con.close()
    with pytest.raises(DataError, match="backend failed"):
        opened.count(PAID, as_of=AS_OF)


def test_check_events_off_compiles_without_the_unknown_event_warning():
    ds = dataset(USERS, EVENTS)
    ds.check_events = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", heapseg.UnknownEventWarning)
        assert ds.count(did("Never Happened")) == 0
    ds.check_events = True
    with pytest.warns(heapseg.UnknownEventWarning, match="Never Happened"):
        ds.count(did("Never Happened"))


# --------------------------------------------------------------------------- unusable sources
# Issue 14, findings 10 and 13: every source heapseg cannot use is a DataError that says what
# to do; names and paths never reach SQL unquoted.


def test_a_corrupt_parquet_file_is_named(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    (folder / "users.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"users\.parquet is not a readable Parquet file") as info:
        heapseg.connect(folder)
    assert "replace it or remove it" in str(info.value)


def test_a_corrupt_file_among_the_events_files_is_named_at_connect(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    (folder / "events" / "part-2.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"events/part-2\.parquet is not a readable Parquet file"):
        heapseg.connect(folder)


def test_an_empty_events_folder_says_what_to_do(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    parts = sorted((folder / "events").iterdir())
    saved = [part.read_bytes() for part in parts]
    for part in parts:
        part.unlink()
    with pytest.raises(DataError, match=r"events/ in .* holds no \.parquet files") as info:
        heapseg.connect(folder)
    assert "put the events' Parquet files in it" in str(info.value)
    # An optional table's empty folder: the same error, with its own way out.
    for part, data in zip(parts, saved, strict=True):
        part.write_bytes(data)
    (folder / "accounts.parquet").unlink()
    (folder / "accounts").mkdir()
    with pytest.raises(DataError, match=r"accounts/ in .* holds no \.parquet files") as info:
        heapseg.connect(folder)
    assert "pass accounts=None" in str(info.value)
    assert heapseg.connect(folder, accounts=None).total_users() == 5


@pytest.mark.parametrize("name", ["shop[1]", "shop*", "shop?", "it's [a] *b*", "shop{1,2}"])
def test_a_folder_named_with_glob_characters_reads_its_own_files(tmp_path, name: str):
    # A sibling that the name, read as a glob, would match: its one user must not count.
    decoy = tmp_path / "shop1"
    decoy.mkdir()
    users_frame(USERS[:1]).to_parquet(decoy / "users.parquet")
    events_frame(EVENTS[:1]).to_parquet(decoy / "events.parquet")
    (decoy / "events").mkdir()
    events_frame(EVENTS[:1]).to_parquet(decoy / "events" / "part-0.parquet")
    write_parquet_folder(tmp_path / name)
    opened = heapseg.connect(tmp_path / name)
    assert opened.table_counts() == {"users": 5, "events": 6, "accounts": 2}
    assert ids(opened, PAID_VIEWERS) == {"p1", "p3"}


def test_events_files_with_different_columns_are_refused_with_a_way_out(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    extra = events_frame(EVENTS[:1]).assign(coupon="X")
    extra.to_parquet(folder / "events" / "part-2.parquet")
    with pytest.raises(DataError) as info:
        heapseg.connect(folder)
    message = str(info.value)
    assert "events/part-2.parquet has column 'coupon'" in message
    assert "events/part-0.parquet has not" in message
    assert "union_by_name=true" in message


def test_events_files_with_different_column_types_are_refused(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    other = events_frame(EVENTS[:1]).astype({"user_id": "object"})
    other["user_id"] = [42]
    other.to_parquet(folder / "events" / "part-2.parquet")
    with pytest.raises(
        DataError, match=r"column 'user_id' is (large_)?string in events/part-0\.parquet but int64"
    ):
        heapseg.connect(folder)


def test_timestamp_units_may_differ_between_files(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    part = events_frame(EVENTS[:1])
    part["time"] = part["time"].astype("datetime64[ns]")
    part.to_parquet(folder / "events" / "part-2.parquet")
    assert heapseg.connect(folder).table_counts()["events"] == 7


@pytest.mark.parametrize(
    "columns",
    [{"users": "user_id"}, ["users"], {"users": {"user_id": 3}}, {"users": {3: "id"}}, "users"],
    ids=["table-string", "list", "value-int", "key-int", "string"],
)
def test_columns_of_the_wrong_shape_are_a_data_error(tmp_path, columns):
    with pytest.raises(DataError, match=r"columns= maps tables to \{model name: your column\}"):
        heapseg.connect(load(USERS, EVENTS), columns=columns)


def test_a_file_that_is_not_a_duckdb_database(tmp_path):
    catalog = tmp_path / "team.json"
    catalog.write_text('{"format": "heapseg-catalog", "version": 1, "segments": []}')
    with pytest.raises(DataError, match=r"team\.json is not a DuckDB database") as info:
        heapseg.connect(catalog)
    assert "--catalog" in str(info.value)
    parquet = tmp_path / "users.parquet"
    users_frame(USERS).to_parquet(parquet)
    with pytest.raises(DataError, match="pass the folder that holds it"):
        heapseg.connect(parquet)
    empty = tmp_path / "empty.duckdb"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.duckdb is not a DuckDB database"):
        heapseg.connect(empty)


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "data.duckdb"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            heapseg.connect(fifo)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome, "connect() hung on a FIFO"
    assert isinstance(outcome[0], DataError) and "not a regular file" in str(outcome[0])


def test_a_duckdb_file_already_open_in_this_process(tmp_path):
    path = tmp_path / "shop.duckdb"
    write_duckdb_file(path)
    writer = duckdb.connect(str(path))
    try:
        with pytest.raises(DataError, match="already open in this process") as info:
            heapseg.connect(path)
        assert "ibis.duckdb.from_connection" in str(info.value)
        # What the message says to do works.
        assert heapseg.connect(ibis.duckdb.from_connection(writer)).total_users() == 5
    finally:
        writer.close()


def test_table_names_never_reach_sql_unquoted(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    name = 'u" AS SELECT 1; CREATE TABLE pwned AS SELECT 42 AS x; --'
    (folder / "users.parquet").rename(folder / f"{name}.parquet")
    opened = heapseg.connect(folder, users=name)
    assert "pwned" not in opened.backend.list_tables()
    assert opened.total_users() == 5
    assert ids(opened, PAID_VIEWERS) == {"p1", "p3"}


def test_file_names_with_quotes_are_read_as_they_are(tmp_path):
    folder = tmp_path / "export"
    write_parquet_folder(folder)
    part = folder / "events" / "part-1.parquet"
    part.rename(folder / "events" / "it's'); DROP VIEW users; --.parquet")
    opened = heapseg.connect(folder)
    assert opened.table_counts() == {"users": 5, "events": 6, "accounts": 2}


# ---------------------------------------------------------------------------- time: caches, auto


def test_refresh_forgets_the_join_facts_after_new_events():
    con = load([{"user_id": "a"}, {"user_id": "b"}], [("a", "2024-03-01 10:00", "View")])
    ds = heapseg.connect(con)
    everyone = group()
    assert ds.count(everyone, as_of="2024-03-02") == 2  # b has no events: always a user
    con.raw_sql("INSERT INTO events (user_id, time, event) VALUES ('b', '2024-03-05', 'View')")
    # b's first event is now after as_of: not a user then, once the dataset re-reads its facts.
    ds.refresh()
    assert ds.count(everyone, as_of="2024-03-02") == 1
    assert ds.count(everyone, as_of="2024-03-06") == 2


def test_accounts_none_leaves_an_automatic_account_history_out():
    con = load(USERS, [], ACCOUNTS)
    history = accounts_frame(ACCOUNTS).assign(valid_from=ibis.timestamp("2024-01-01").execute())
    con.create_table("account_history", history)
    assert heapseg.connect(con).account_history is not None
    ds = heapseg.connect(con, accounts=None)
    assert ds.accounts is None and ds.account_history is None
    with pytest.raises(DataError, match="account_history table needs an accounts table"):
        heapseg.connect(con, accounts=None, account_history="account_history")
