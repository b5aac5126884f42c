"""Properties in JSON columns: the same rules select the same users as the reference evaluator
run on the values taken out of the JSON here, in Python, by the documented rules (a missing key,
a JSON null or a value of another type is unset), on DuckDB, PostgreSQL and Spark; the SQL
reads the JSON with the engine's own functions."""

from __future__ import annotations

import datetime as dt
import json
import random
import warnings

import pandas as pd
import pytest

import heapseg
from heapseg import charts
from heapseg.errors import DataError
from heapseg.json_properties import check_json_spec, discover_keys, first_entity, json_value
from tests import reference
from tests.backends import unavailable_reason
from tests.backends.fixtures import backend_loader, backend_name, load_tables  # noqa: F401

AS_OF = dt.datetime(2026, 6, 1)
#: What discovery must find, and what the reference reads: path -> kind.
USER_KEYS = {
    ("plan",): "string",
    ("seats",): "int",  # mostly whole numbers, some text: the text is unset
    ("score",): "float",  # whole and fractional numbers
    ("beta",): "bool",
    ("address", "city"): "string",  # nested object
    ("$lib",): "string",  # a key a JSON path must quote
    ("odd.key",): "int",  # a key with a dot: one key, not a path
}
EVENT_KEYS = {("amount",): "float", ("coupon",): "string", ("items",): "int"}
ACCOUNT_KEYS = {("tier",): "string", ("size",): "int"}
PLANS = ["free", "paid", "Paid", "trial", "", "paid plus"]
CITIES = ["Oslo", "Lima", "oslo"]


def _user_properties(rng: random.Random, i: int) -> str | None:
    if i % 17 == 0:
        return None  # no JSON at all
    if i % 19 == 0:
        return json.dumps([1, 2])  # JSON, but not an object
    props: dict = {}
    if rng.random() < 0.85:
        props["plan"] = rng.choice(PLANS) if rng.random() < 0.9 else rng.choice([3, True, None])
    if rng.random() < 0.8:
        props["seats"] = rng.randint(-3, 9) if rng.random() < 0.75 else rng.choice(["4", "lots"])
    if rng.random() < 0.8:
        props["score"] = rng.choice([rng.randint(0, 3), round(rng.uniform(0, 3), 2)])
    if rng.random() < 0.7:
        props["beta"] = rng.random() < 0.5 if rng.random() < 0.9 else "yes"
    if rng.random() < 0.7:
        props["address"] = {"city": rng.choice(CITIES)} if rng.random() < 0.9 else "Oslo"
    if rng.random() < 0.5:
        props["$lib"] = rng.choice(["web", "ios"])
    if rng.random() < 0.5:
        props["odd.key"] = rng.choice([1, 2, 3])
    props["tags"] = ["a", "b"]  # arrays are not properties
    props["gone"] = None  # only ever null: not a property
    return json.dumps(props)


def _scenario(seed: int = 5, n: int = 60) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed)
    users = pd.DataFrame(
        {
            "user_id": list(range(1, n + 1)),
            "account_id": [i % 7 if i % 5 else None for i in range(1, n + 1)],
            "properties": [_user_properties(rng, i) for i in range(1, n + 1)],
        }
    )
    users["account_id"] = users["account_id"].astype("Int64")
    rows = []
    for i in range(1, n + 1):
        for k in range(rng.randint(0, 4)):
            props = {}
            if rng.random() < 0.8:
                props["amount"] = rng.choice([rng.randint(1, 40), round(rng.uniform(1, 40), 1)])
            if rng.random() < 0.4:
                props["coupon"] = rng.choice(["SPRING", "spring10", ""])
            if rng.random() < 0.6:
                props["items"] = rng.randint(1, 5) if rng.random() < 0.8 else "two"
            rows.append(
                {
                    "user_id": i,
                    "time": AS_OF - dt.timedelta(days=rng.randint(1, 60), hours=k),
                    "event": rng.choice(["Order", "Visit"]),
                    "properties": json.dumps(props),
                }
            )
    events = pd.DataFrame(rows)
    accounts = pd.DataFrame(
        {
            "account_id": list(range(7)),
            "properties": [
                json.dumps({"tier": t, "size": s})
                for t, s in zip(
                    ["gold", "silver", "gold", None, "bronze", "gold", "silver"],
                    [10, "big", 3, 40, None, 7, 12],
                    strict=True,
                )
            ],
        }
    )
    return {"users": users, "events": events, "accounts": accounts}


def _read(text: str | None, path: tuple[str, ...], kind: str):
    """The documented reading of one key, written independently of heapseg."""
    if not isinstance(text, str):
        return None  # no JSON (NULL)
    node = json.loads(text)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if kind == "string":
        return node if isinstance(node, str) else None
    if kind == "bool":
        return node if isinstance(node, bool) else None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    if kind == "int":
        return node if isinstance(node, int) else None
    return float(node)


def _flatten(frame: pd.DataFrame, keys: dict) -> pd.DataFrame:
    out = frame.drop(columns=["properties"])
    for path, kind in keys.items():
        values = [_read(t, path, kind) for t in frame["properties"]]
        dtype = {"string": "object", "int": "Int64", "float": "Float64", "bool": "boolean"}[kind]
        out[".".join(path)] = pd.Series(values, dtype=dtype, index=frame.index)
    return out


def _prop(kind: str, field: str, operator: str, value=None) -> dict:
    rule = {"kind": kind, "field": field, "operator": operator}
    if value is not None:
        rule["value"] = value
    return {"combinator": "and", "rules": [rule]}


DEFINITIONS = {
    "plan = paid": _prop("user", "plan", "=", "paid"),
    "plan != paid": _prop("user", "plan", "!=", "paid"),
    "plan in": _prop("user", "plan", "in", ["free", "trial"]),
    "plan is set": _prop("user", "plan", "is set"),
    "plan is not set": _prop("user", "plan", "is not set"),
    "plan contains": _prop("user", "plan", "contains", "PAID"),
    "seats > 3": _prop("user", "seats", ">", 3),
    "seats between": _prop("user", "seats", "between", [-1, 4]),
    "seats != 4": _prop("user", "seats", "!=", 4),
    "score >= 1.5": _prop("user", "score", ">=", 1.5),
    "score = 2": _prop("user", "score", "=", 2),
    "beta = true": _prop("user", "beta", "=", True),
    "beta != true": _prop("user", "beta", "!=", True),
    "city = Oslo": _prop("user", "address.city", "=", "Oslo"),
    "city begins with o": _prop("user", "address.city", "begins with", "o"),
    "$lib = web": _prop("user", "$lib", "=", "web"),
    "odd.key >= 2": _prop("user", "odd.key", ">=", 2),
    "tier = gold": _prop("account", "tier", "=", "gold"),
    "size > 5": _prop("account", "size", ">", 5),
    "tier is not set": _prop("account", "tier", "is not set"),
    "order amount > 20": {
        "combinator": "and",
        "rules": [
            {
                "kind": "event",
                "event": "Order",
                "where": _prop("event_property", "amount", ">", 20),
            }
        ],
    },
    "order without coupon, 2+ items": {
        "combinator": "and",
        "rules": [
            {
                "kind": "event",
                "event": "Order",
                "where": {
                    "combinator": "and",
                    "rules": [
                        {"kind": "event_property", "field": "coupon", "operator": "is not set"},
                        {"kind": "event_property", "field": "items", "operator": ">=", "value": 2},
                    ],
                },
            }
        ],
    },
    "sum of amount >= 30": {
        "combinator": "and",
        "rules": [
            {
                "kind": "event",
                "event": "Order",
                "aggregate": {"fn": "sum", "field": "amount", "operator": ">=", "value": 30},
            }
        ],
    },
}

JSON = {"users": "properties", "events": "properties", "accounts": "properties"}


@pytest.fixture(scope="module")
def scenario() -> dict[str, pd.DataFrame]:
    return _scenario()


def _expected(scenario: dict[str, pd.DataFrame]) -> dict[str, set]:
    users = _flatten(scenario["users"], USER_KEYS)
    events = _flatten(scenario["events"], EVENT_KEYS)
    accounts = _flatten(scenario["accounts"], ACCOUNT_KEYS)
    return {
        name: reference.evaluate(definition, users, events, accounts, AS_OF)
        for name, definition in DEFINITIONS.items()
    }


def test_json_rules_select_the_references_users(scenario, load_tables, backend_name):  # noqa: F811
    con = load_tables(scenario)
    ds = heapseg.connect(con, json=JSON, as_of=AS_OF)
    # Discovery found each key with the kind most of its values have.
    kinds = {(p.column, p.path): p.kind for props in ds.json_properties.values() for p in props}
    for path, kind in {**USER_KEYS, **EVENT_KEYS}.items():
        assert kinds[("properties", path)] == kind, path
    assert ("properties", ("tags",)) not in kinds and ("properties", ("gone",)) not in kinds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = ds.execute(ds.membership(DEFINITIONS))
    expected = _expected(scenario)
    for name in DEFINITIONS:
        got = {int(u) for u, flag in zip(frame["user_id"], frame[name], strict=True) if flag}
        assert got == expected[name], name
    # The engine's JSON functions do the reading; no Python UDF.
    sql = ds.sql(DEFINITIONS["seats > 3"]).upper()
    functions = {
        "duckdb": "JSON_TYPE",
        "postgres": "JSON_TYPEOF",
        "spark": "SCHEMA_OF_VARIANT",
    }
    assert functions[backend_name] in sql
    assert "UNWRAP_JSON" not in sql


def test_pickers_and_breakdowns_see_json_keys(scenario):
    con = _duckdb(scenario)
    ds = heapseg.connect(con, json=JSON, as_of=AS_OF)
    assert {"plan", "seats", "address.city", "odd.key"} <= set(ds.schema.user_properties)
    assert "properties" not in ds.schema.user_properties
    assert str(ds.schema.user_properties["seats"]) == "int64"
    assert {"amount", "coupon", "items"} <= set(ds.schema.event_properties)
    flat = _flatten(scenario["users"], USER_KEYS)
    plans = flat["plan"].dropna().value_counts()  # "" included, as for a column
    assert ds.distinct_values("user", "plan") == sorted(plans.index, key=lambda v: (-plans[v], v))
    cities = set(flat["address.city"].dropna())
    assert set(ds.distinct_values("user", "address.city")) == cities
    _, data = charts.breakdown(ds, heapseg.user.seats > 3, "plan", return_data=True)
    members = _expected(scenario)["seats > 3"]
    inside = flat[flat.user_id.isin(members)]["plan"].replace("", pd.NA).fillna("(not set)")
    mine = data[data["group"] == "seats > 3"]
    assert dict(zip(mine["value"], mine["count"], strict=True)) == inside.value_counts().to_dict()


def _duckdb(tables: dict[str, pd.DataFrame]):
    import ibis

    con = ibis.duckdb.connect()
    for name, frame in tables.items():
        con.create_table(name, frame)
    return con


def test_declared_keys_skip_discovery_and_set_the_type(scenario):
    con = _duckdb(scenario)
    ds = heapseg.connect(
        con,
        json={"users": {"properties": {"seats": "float", "score": "int", "plan": "string"}}},
        as_of=AS_OF,
    )
    assert set(ds.schema.user_properties) == {"account_id", "seats", "score", "plan"}
    flat = _flatten(scenario["users"], {("seats",): "float", ("score",): "int"})
    want = set(flat[flat["seats"] > 3.5].user_id)
    assert {int(u) for u in ds.members(heapseg.user.seats > 3.5).to_pandas().user_id} == want
    # Declared int: a number with a fraction is unset.
    assert flat["score"].notna().sum() < scenario["users"].properties.str.contains("score").sum()
    want = set(flat[flat["score"].isna()].user_id)
    got = ds.members(heapseg.user.score.is_not_set()).to_pandas().user_id
    assert {int(u) for u in got} == want


def test_a_key_named_like_a_column_keeps_the_column_and_gets_the_long_name():
    con = _duckdb(
        {
            "users": pd.DataFrame(
                {"user_id": [1, 2], "plan": ["a", "b"], "properties": ['{"plan": "x"}', "{}"]}
            ),
            "events": pd.DataFrame(
                {"user_id": [1], "time": [AS_OF - dt.timedelta(days=1)], "event": ["e"]}
            ),
        }
    )
    ds = heapseg.connect(con, json={"users": "properties"}, as_of=AS_OF)
    assert ds.count(heapseg.user.plan == "b") == 1
    assert (
        ds.count(
            {
                "combinator": "and",
                "rules": [
                    {"kind": "user", "field": "properties.plan", "operator": "=", "value": "x"}
                ],
            }
        )
        == 1
    )


def test_json_value_needs_json_or_text():
    import ibis

    table = ibis.table({"n": "int64"}, name="t")
    with pytest.raises(DataError, match="not JSON"):
        json_value(table.n, ["a"], "string", "duckdb")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["users"], "maps tables"),
        ({"users": {"properties": {"plan": "text"}}}, "valid kinds"),
        ({"users": {"properties": 3}}, "expected None"),
    ],
)
def test_bad_json_specs_say_what_is_wrong(spec, message):
    with pytest.raises(DataError, match=message):
        check_json_spec(spec)


def test_unknown_tables_and_columns_are_named(scenario):
    con = _duckdb(scenario)
    with pytest.raises(DataError, match="does not have"):
        heapseg.connect(con, json={"users": "traits"}, as_of=AS_OF)
    with pytest.raises(DataError, match="tables the dataset does not have"):
        heapseg.connect(con, json={"user_history": "properties"}, as_of=AS_OF)


def test_discovery_is_one_aggregate_per_level(scenario):
    con = _duckdb(scenario)
    queries: list[str] = []

    def run(backend, sql):
        queries.append(sql)
        return list(backend.sql(sql).execute().itertuples(index=False, name=None))

    keys = discover_keys(con, con.table("users"), "properties", "duckdb", run=run)
    assert keys == USER_KEYS
    # The top level, then the one nested object (address).
    assert len(queries) == 2 and all("GROUP BY" in q and "json_each" in q for q in queries)


def test_json_keys_are_read_once_and_again_on_refresh(scenario):
    con = _duckdb(scenario)
    ds = heapseg.connect(con, json={"users": "properties"}, as_of=AS_OF)
    before = ds.count(heapseg.user.plan == "paid")
    assert before == len(_expected(scenario)["plan = paid"])
    # The rule reads a table of extracted keys, not the JSON, until the data changes.
    con.raw_sql("""UPDATE users SET properties = '{"plan": "paid"}'""")
    assert ds.count(heapseg.user.plan == "paid") == before
    ds.refresh()
    assert ds.count(heapseg.user.plan == "paid") == len(scenario["users"])
    # The SQL given to the warehouse reads the JSON itself.
    assert "JSON_TYPE" in ds.sql(heapseg.user.plan == "paid").upper()


def test_text_that_is_not_json_is_unset_not_an_engine_error():
    # A text column with a row that is not JSON at all (DuckDB reads it with TRY_CAST).
    texts = ['{"plan": "paid", "seats": 2}', "oops", "", '{"plan": "paid"', '{"seats": 5}']
    users = pd.DataFrame({"user_id": range(1, len(texts) + 1), "properties": texts})
    events = pd.DataFrame({"user_id": [1], "time": [AS_OF - dt.timedelta(days=1)], "event": ["e"]})
    expected = {}
    for user, text in zip(users.user_id, texts, strict=True):
        try:
            props = json.loads(text)
        except ValueError:
            props = {}
        expected[user] = props
    for json_spec in ("properties", {"properties": {"plan": "string", "seats": "int"}}):
        ds = heapseg.connect(_duckdb({"users": users, "events": events}), json={"users": json_spec})
        paid = ds.members(heapseg.user.plan == "paid", as_of=AS_OF).to_pandas().user_id
        assert {int(u) for u in paid} == {u for u, p in expected.items() if p.get("plan") == "paid"}
        unset = ds.members(heapseg.user.seats.is_not_set(), as_of=AS_OF).to_pandas().user_id
        assert {int(u) for u in unset} == {u for u, p in expected.items() if "seats" not in p}


def _long(definition: dict) -> dict:
    """The definition with every property named by its JSON column and key path."""
    out = {}
    for key, value in definition.items():
        if key in ("field",):
            value = f"properties.{value}"
        elif isinstance(value, dict):
            value = _long(value)
        elif isinstance(value, list):
            value = [_long(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def test_rules_may_name_a_key_by_its_json_column_and_path(scenario):
    con = _duckdb(scenario)
    ds = heapseg.connect(con, json=JSON, as_of=AS_OF)
    expected = _expected(scenario)
    longer = {name: _long(definition) for name, definition in DEFINITIONS.items()}
    assert longer["sum of amount >= 30"]["rules"][0]["aggregate"]["field"] == "properties.amount"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = ds.execute(ds.membership(longer))
    for name in DEFINITIONS:
        got = {int(u) for u, flag in zip(frame["user_id"], frame[name], strict=True) if flag}
        assert got == expected[name], name
    # The pickers keep one name per key.
    assert "properties.plan" not in ds.schema.user_properties
    with pytest.raises(heapseg.SchemaError, match=r"unknown user property 'properties\.nope'"):
        ds.count(_prop("user", "properties.nope", "is set"))


def test_a_context_array_is_read_as_its_first_entity(load_tables):  # noqa: F811
    # Snowplow's contexts: an array of entities; an object stays as it is.
    rows = [
        '[{"plan": "paid", "seats": 2}, {"plan": "free"}]',
        '{"plan": "trial", "seats": 3}',
        "[]",
        None,
        '[{"seats": 4}]',
        "[3]",
    ]
    con = load_tables({"t": pd.DataFrame({"id": range(len(rows)), "c": rows})})
    table = con.table("t")
    first = first_entity(table.c, con.name)
    got = (
        table.select(
            "id",
            plan=json_value(first, ["plan"], "string", con.name),
            seats=json_value(first, ["seats"], "int", con.name),
        )
        .order_by("id")
        .to_pyarrow()
        .to_pylist()
    )
    for row, text in zip(got, rows, strict=True):
        node = json.loads(text) if text else None
        node = (node or [None])[0] if isinstance(node, list) else node
        node = node if isinstance(node, dict) else {}
        assert row["plan"] == node.get("plan") and row["seats"] == node.get("seats"), text


# ---------------------------------------------------------------- events' keys read once


def _order_amounts(events: pd.DataFrame) -> dict[str, float]:
    """Sum of the orders' amounts per week, read from the JSON here (the trend's numbers)."""
    flat = _flatten(events, EVENT_KEYS)
    orders = flat[(flat.event == "Order") & flat.amount.notna()]
    weeks = orders.time.dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d")
    return orders.groupby(weeks).amount.sum().round(6).to_dict()


def test_events_keys_read_once_select_the_same_users(scenario, load_tables, backend_name):  # noqa: F811
    con = load_tables(scenario)
    if backend_name == "spark":
        # Spark keeps no table of the session here: refused, saying what happens without it.
        with pytest.raises(DataError, match=r"not on pyspark.*read by each query"):
            heapseg.connect(con, json=JSON, as_of=AS_OF, json_events="once")
        return
    per_query = heapseg.connect(con, json=JSON, as_of=AS_OF)
    once = heapseg.connect(con, json=JSON, as_of=AS_OF, json_events="once")
    assert (per_query.json_events, once.json_events) == ("per query", "once")
    # The rules read a table of the session that holds no JSON: the keys are its columns.
    assert "properties" not in once.raw_events.columns
    assert once.raw_events.get_name().startswith("heapseg")
    expected = _expected(scenario)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = [ds.execute(ds.membership(DEFINITIONS)) for ds in (per_query, once)]
    for frame in frames:
        for name in DEFINITIONS:
            got = {int(u) for u, flag in zip(frame["user_id"], frame[name], strict=True) if flag}
            assert got == expected[name], name
    for name in ("order amount > 20", "sum of amount >= 30"):
        assert once.count(DEFINITIONS[name]) == per_query.count(DEFINITIONS[name])
    # A chart's numbers: the weekly sum of the orders' amounts, against the JSON read here.
    want = _order_amounts(scenario["events"])
    for ds in (per_query, once):
        _, data = charts.trend(
            ds, "Order", measure="sum", property="amount", interval="week", return_data=True
        )
        data = data[data.value > 0]
        got = dict(zip(data.period.dt.strftime("%Y-%m-%d"), data.value.round(6), strict=True))
        assert got == want
    # The SQL for the warehouse reads the JSON itself, and selects the same users there.
    sql = once.sql(DEFINITIONS["order amount > 20"])
    assert "heapseg_once" not in sql and "heapseg_json" not in sql
    assert {"duckdb": "JSON_TYPE", "postgres": "JSON_TYPEOF"}[backend_name] in sql.upper()
    pasted = {int(u) for u in con.sql(sql).execute().user_id}
    assert pasted == expected["order amount > 20"]
    # An unknown key is still named, with the keys there are.
    with pytest.raises(heapseg.SchemaError, match="unknown event property 'amont'"):
        once.count(heapseg.did("Order").where(heapseg.event_prop("amont") > 1))
    assert "read once at connect" in once.describe_mapping()
    assert "read by every query" in per_query.describe_mapping()


@pytest.mark.parametrize(
    "backend_name",
    ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)],  # Spark refuses it
)
def test_events_keys_read_once_again_on_refresh(scenario, backend_loader, backend_name):  # noqa: F811
    reason = unavailable_reason(backend_name)
    if reason:
        pytest.skip(reason)
    con = backend_loader(backend_name, scenario)
    try:
        _refresh_reads_new_events(con, backend_name)
    finally:
        backend_loader.release(con)


def _refresh_reads_new_events(con, engine: str) -> None:
    ds = heapseg.connect(con, json=JSON, as_of=AS_OF, json_events="once")
    big = heapseg.did("Order").where(heapseg.event_prop("amount") > 1000)
    assert ds.count(big) == 0
    # A new order of 5000 for user 17, after the table was filled.
    when = (AS_OF - dt.timedelta(days=2)).isoformat(sep=" ")
    table = con.table("events")
    text = "JSON" if table.properties.type().is_json() else "TEXT"
    insert = (
        f"INSERT INTO events (user_id, time, event, properties) VALUES (17, TIMESTAMP '{when}', "
        f"""'Order', CAST('{{"amount": 5000}}' AS {text}))"""
    )
    if engine == "postgres":
        con.raw_sql(insert).close()
        con.con.commit()
    else:
        con.raw_sql(insert)
    others = [ds.for_thread()] if engine == "duckdb" else []
    assert ds.count(big) == 0  # the copy read at connect, until refresh
    ds.refresh()
    assert ds.count(big) == 1
    assert ds.members(big).to_pandas().user_id.astype(int).tolist() == [17]
    # Another thread's dataset shares the table (DuckDB cursors): refreshed with it, not copied.
    for other in others:
        assert other.raw_events.get_name() == ds.raw_events.get_name()
        assert other.count(big) == 1


def test_json_events_needs_keys_of_events_and_a_known_value(scenario):
    con = _duckdb(scenario)
    with pytest.raises(DataError, match=r"json_events='sometimes'.*'per query', 'once'"):
        heapseg.connect(con, json=JSON, json_events="sometimes")
    with pytest.raises(DataError, match=r"the events have none.*json=\{'events'"):
        heapseg.connect(con, json={"users": "properties"}, json_events="once")
