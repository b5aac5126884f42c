"""Properties kept in JSON columns: their keys and types found in the backend, and their values
read with the engine's own JSON functions, so that rules see them as ordinary columns.

A JSON column (``properties``, ``traits``, ``event_properties``...) becomes one column per key
(``plan``, ``seats``, ``address.city`` for a nested object) in a view over the table; the raw
column leaves the view. Each key has one type: the one most of its values have (``string``,
``int``, ``float`` or ``bool``), found by a small aggregate in the backend or declared. A value
of another type, like a missing key or a JSON ``null``, is unset for that row. No JSON is ever
parsed in Python.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from heapseg.errors import DataError, backend_errors

__all__ = [
    "KINDS",
    "JsonProperty",
    "check_json_spec",
    "discover_keys",
    "expand_json",
    "first_entity",
    "json_value",
    "long_names",
    "materialize",
]

#: What a JSON key may be declared as, and the ibis type its values take.
KINDS: dict[str, dt.DataType] = {
    "string": dt.string,
    "int": dt.int64,
    "float": dt.float64,
    "bool": dt.boolean,
}
#: Names the temporary tables that hold extracted keys apart (datasets may share a connection).
_TABLES = itertools.count(1)
#: Engines where :func:`materialize` keeps the extracted keys in a temporary table.
MATERIALIZING = ("duckdb", "postgres")
#: DuckDB: the in-memory database (attached to the connection) of tables every cursor shares.
SHARED_DATABASE = "heapseg_once"
_ALIASES = {"number": "float", "integer": "int", "boolean": "bool", "str": "string"}
#: How many rows the type discovery reads at most (per JSON column and nesting level).
SAMPLE_ROWS = 100_000
#: Nested objects are followed this deep (``address.city`` is depth 2).
MAX_DEPTH = 3
#: JSON kinds as each engine names them, to heapseg's.
_TYPE_NAMES = {
    # DuckDB json_type
    "VARCHAR": "string",
    "BIGINT": "int",
    "UBIGINT": "int",
    "DOUBLE": "float",
    "BOOLEAN": "bool",
    "OBJECT": "object",
    "ARRAY": "array",
    # PostgreSQL jsonb_typeof (numbers are told apart by their text in the query)
    "string": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "object",
    "array": "array",
    # Spark schema_of_variant
    "STRING": "string",
    "VARIANT": "string",
}

JsonSpec = Mapping[str, Mapping[str, Mapping[str, str] | None]]


@dataclass(frozen=True)
class JsonProperty:
    """One key of a JSON column, read as a property named ``name`` of type ``kind``."""

    column: str
    path: tuple[str, ...]
    kind: str
    name: str

    @property
    def source(self) -> str:
        """``properties.address.city``: the column and the key path."""
        return ".".join((self.column, *self.path))


#: The kind of rule that reads the properties of each table a JSON column may be in.
_RULE_KINDS = {
    "users": "user",
    "user_history": "user",
    "accounts": "account",
    "account_history": "account",
    "events": "event",
}


def long_names(
    found: Mapping[str, Sequence[JsonProperty]], taken: Mapping[str, Collection[str]]
) -> dict[tuple[str, str], str]:
    """``(rule kind, long name) -> property``: each JSON key by its column and path
    (``properties.plan``) as well as by the name it was given (``plan``), for the tables of
    ``found`` (``users``, ``events``...). A long name that is a property of its own, in
    ``taken`` (kind -> names), stays that property's.

    Examples
    --------
    >>> plan = JsonProperty("properties", ("plan",), "string", "plan")
    >>> long_names({"users": [plan]}, {"user": {"plan"}})
    {('user', 'properties.plan'): 'plan'}
    """
    out: dict[tuple[str, str], str] = {}
    for role, props in found.items():
        kind = _RULE_KINDS.get(role)
        if kind is None:
            continue
        for prop in props:
            if prop.source != prop.name and prop.source not in taken.get(kind, ()):
                out[(kind, prop.source)] = prop.name
    return out


def check_json_spec(spec: Any) -> dict[str, dict[str, dict[str, str] | None]]:
    """``json=`` in its long form: ``{table: {json column: {key path: kind} or None}}``.

    Accepted: ``{"users": "properties"}``, ``{"events": ["properties", "context"]}`` (keys found
    in the data) and ``{"users": {"properties": {"plan": "string", "address.city": "string"}}}``
    (keys declared, nothing read). Kinds: ``string``, ``int``, ``float`` (or ``number``),
    ``bool``.
    """
    if spec is None:
        return {}
    example = "json={'users': 'properties', 'events': {'properties': {'plan': 'string'}}}"
    if not isinstance(spec, Mapping):
        raise DataError(f"json= maps tables to their JSON columns, e.g. {example}")
    out: dict[str, dict[str, dict[str, str] | None]] = {}
    for table, columns in spec.items():
        if isinstance(columns, str):
            columns = {columns: None}
        elif isinstance(columns, Sequence) and all(isinstance(c, str) for c in columns):
            columns = dict.fromkeys(columns)
        if not isinstance(table, str) or not isinstance(columns, Mapping):
            raise DataError(f"json= for {table!r}: expected a column name, a list or a mapping")
        out[table] = {}
        for column, keys in columns.items():
            if keys is None:
                out[table][column] = None
                continue
            if not isinstance(keys, Mapping):
                raise DataError(
                    f"json= for {table}.{column}: expected None (find the keys) or "
                    "{key path: kind}"
                )
            out[table][column] = {
                str(k): _kind(v, f"{table}.{column}.{k}") for k, v in keys.items()
            }
    return out


def _kind(value: Any, where: str) -> str:
    kind = _ALIASES.get(value, value)
    if kind not in KINDS:
        raise DataError(
            f"json= declares {where} as {value!r}; valid kinds: {', '.join([*KINDS, 'number'])}"
        )
    return kind


# ---------------------------------------------------------------------------- reading values


def _json_column(value: ir.Value, dialect: str) -> ir.Value:
    """The column as the engine's JSON (Spark keeps JSON text, read through its variant type)."""
    if dialect == "pyspark" or value.type().is_json():
        return value
    if not value.type().is_string():
        raise DataError(f"{value.get_name()} is {value.type()}, not JSON or JSON text")
    # DuckDB: text that is not JSON is NULL (unset), not an error that stops every query.
    # PostgreSQL has no TRY_CAST (ibis compiles it as CAST): its text must be JSON.
    return value.try_cast(dt.json) if dialect == "duckdb" else value.cast(dt.json)


@ibis.udf.scalar.builtin(name="try_parse_json")
def _spark_parse(text: str) -> str:  # a VARIANT in Spark; only ever passed on to the next two
    """Spark: JSON text as a variant (NULL where it is not JSON)."""


@ibis.udf.scalar.builtin(name="variant_get")
def _spark_get(variant: str, path: str) -> str:
    """Spark: the variant at a path."""


@ibis.udf.scalar.builtin(name="schema_of_variant")
def _spark_kind(variant: str) -> str:
    """Spark: the type of a variant (``STRING``, ``BIGINT``, ``DECIMAL(3,1)``...)."""


@ibis.udf.scalar.builtin(name="variant_get")
def _spark_get_double(variant: str, path: str, kind: str) -> float:
    """Spark: the variant at a path as a double."""


@ibis.udf.scalar.builtin(name="variant_get")
def _spark_get_string(variant: str, path: str, kind: str) -> str:
    """Spark: the variant at a path as a string."""


@ibis.udf.scalar.builtin(name="variant_get")
def _spark_get_bool(variant: str, path: str, kind: str) -> bool:
    """Spark: the variant at a path as a boolean."""


def _spark_path(path: Sequence[str]) -> str:
    return "$" + "".join(f'["{key}"]' for key in path)


def _spark_value(column: ir.Value, path: Sequence[str], kind: str) -> ir.Value:
    variant = _spark_parse(column)
    where = _spark_path(path)
    found = _spark_kind(_spark_get(variant, where))
    if kind == "string":
        return ibis.ifelse(found == "STRING", _spark_get_string(variant, where, "string"), None)
    if kind == "bool":
        return ibis.ifelse(found == "BOOLEAN", _spark_get_bool(variant, where, "boolean"), None)
    if kind == "int":
        return ibis.ifelse(found == "BIGINT", _spark_get_double(variant, where, "bigint"), None)
    number = found.isin(["BIGINT", "DOUBLE"]) | found.startswith("DECIMAL")
    return ibis.ifelse(number, _spark_get_double(variant, where, "double"), None)


def json_value(column: ir.Value, path: Sequence[str], kind: str, dialect: str) -> ir.Value:
    """The value at ``path`` of a JSON (or JSON text) column as ``kind``, NULL where it is
    missing, ``null`` or of another JSON type; for an ``int`` key, numbers written with a
    fraction or an exponent are NULL too.

    DuckDB and PostgreSQL read it through ibis's JSON operations (``json_type`` / ``->``,
    ``jsonb_typeof`` / ``json_extract_path``); Spark through its variant functions
    (``try_parse_json``, ``variant_get``, ``schema_of_variant``), never a Python UDF.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"p": ['{"plan": "paid", "seats": 3}', '{"seats": "3"}']})
    >>> t.select(plan=json_value(t.p, ["plan"], "string", "duckdb"),
    ...          seats=json_value(t.p, ["seats"], "int", "duckdb")).to_pyarrow().to_pylist()
    [{'plan': 'paid', 'seats': 3}, {'plan': None, 'seats': None}]
    """
    if dialect == "pyspark":
        return _spark_value(column, path, kind).cast(KINDS[kind])
    if dialect == "postgres":
        return _postgres_value(_json_column(column, dialect), path, kind)
    node = _json_column(column, dialect)
    for key in path:
        # DuckDB reads the key as a JSON path: quoted, any key (dots, "$") is one key.
        node = node[f'"{key}"' if dialect == "duckdb" else key]
    return {"string": node.str, "bool": node.bool, "int": node.int}.get(kind, node.float)


@ibis.udf.scalar.builtin(name="json_extract_path")
def _pg_get(json: dt.JSON, key: str) -> dt.JSON:
    """PostgreSQL: the JSON value under a key."""


@ibis.udf.scalar.builtin(name="json_extract_path_text")
def _pg_text(json: dt.JSON, key: str) -> str:
    """PostgreSQL: the value under a key as text (a string without its quotes)."""


@ibis.udf.scalar.builtin(name="json_typeof")
def _pg_kind(json: dt.JSON) -> str:
    """PostgreSQL: ``string``, ``number``, ``boolean``, ``object``, ``array`` or ``null``."""


@ibis.udf.scalar.builtin(name="jsonb_extract_path")
def _pgb_get(json: dt.JSON, key: str) -> dt.JSON:
    """PostgreSQL: the jsonb value under a key."""


@ibis.udf.scalar.builtin(name="jsonb_extract_path_text")
def _pgb_text(json: dt.JSON, key: str) -> str:
    """PostgreSQL: the jsonb value under a key as text."""


@ibis.udf.scalar.builtin(name="jsonb_typeof")
def _pgb_kind(json: dt.JSON) -> str:
    """PostgreSQL: the jsonb value's type."""


def _postgres_value(column: ir.Value, path: Sequence[str], kind: str) -> ir.Value:
    # json and jsonb have the same functions under two names.
    binary = getattr(column.type(), "binary", False)
    get, text_of, kind_of = (
        (_pgb_get, _pgb_text, _pgb_kind) if binary else (_pg_get, _pg_text, _pg_kind)
    )
    parent = column
    for key in path[:-1]:
        parent = get(parent, key)
    found = kind_of(get(parent, path[-1]))
    text = text_of(parent, path[-1])
    if kind == "string":
        return ibis.ifelse(found == "string", text, None)
    if kind == "bool":
        return ibis.ifelse(found == "boolean", text == "true", None)
    if kind == "int":
        whole = (found == "number") & text.re_search(r"^-?[0-9]+$")
        return ibis.ifelse(whole, text.cast(dt.int64), None)
    return ibis.ifelse(found == "number", text.cast(dt.float64), None)


@ibis.udf.scalar.builtin(name="json_type")
def _duck_kind(json: dt.JSON) -> str:
    """DuckDB: ``OBJECT``, ``ARRAY``, ``VARCHAR``... of a JSON value."""


@ibis.udf.scalar.builtin(name="json_extract")
def _duck_at(json: dt.JSON, path: str) -> dt.JSON:
    """DuckDB: the JSON value at a path."""


@ibis.udf.scalar.builtin(name="json_extract_path")
def _pg_item(json: dt.JSON, index: str) -> dt.JSON:
    """PostgreSQL: the element of a JSON array at an index (given as text)."""


@ibis.udf.scalar.builtin(name="jsonb_extract_path")
def _pgb_item(json: dt.JSON(binary=True), index: str) -> dt.JSON(binary=True):
    """PostgreSQL: the element of a jsonb array at an index (given as text)."""


@ibis.udf.scalar.builtin(name="jsonb_typeof")
def _pgb_kind_b(json: dt.JSON(binary=True)) -> str:
    """PostgreSQL: the jsonb value's type."""


def first_entity(value: ir.Value, dialect: str) -> ir.Value:
    """A JSON column whose rows may hold an array of objects (Snowplow's contexts: one entity
    or more of a schema) as the first object of the array; a row holding an object stays as it
    is, an empty array is NULL. On Spark the column stays JSON text.

    Examples
    --------
    >>> import ibis
    >>> t = ibis.memtable({"c": ['[{"plan": "paid"}, {"plan": "free"}]', '{"plan": "trial"}']})
    >>> t.select(plan=json_value(first_entity(t.c, "duckdb"), ["plan"], "string", "duckdb")
    ...          ).to_pyarrow().to_pylist()
    [{'plan': 'paid'}, {'plan': 'trial'}]
    """
    if dialect == "pyspark":
        text = value.cast(dt.string)
        listed = text.strip().startswith("[")
        return ibis.ifelse(listed, _spark_json_text(text, "$[0]"), text)
    node = _json_column(value, dialect)
    if dialect == "postgres":
        if getattr(node.type(), "binary", False):
            return ibis.ifelse(_pgb_kind_b(node) == "array", _pgb_item(node, "0"), node)
        return ibis.ifelse(_pg_kind(node) == "array", _pg_item(node, "0"), node)
    return ibis.ifelse(_duck_kind(node) == "ARRAY", _duck_at(node, "$[0]"), node)


# ---------------------------------------------------------------------------- finding keys


def _key_rows_sql(sub: str, dialect: str) -> str:
    """SQL over ``sub`` (one column ``j``): (key, kind, n) for the top-level keys of objects."""
    if dialect == "duckdb":
        return (
            f"SELECT e.key AS key, e.type AS kind, count(*) AS n FROM ({sub}) AS s, "
            "json_each(CASE WHEN json_type(s.j) = 'OBJECT' THEN s.j END) AS e "
            "GROUP BY e.key, e.type"
        )
    if dialect == "postgres":
        return (
            "SELECT e.key AS key, CASE WHEN jsonb_typeof(e.value) = 'number' AND "
            "e.value::text ~ '^-?[0-9]+$' THEN 'integer' ELSE jsonb_typeof(e.value) END AS kind, "
            f"count(*) AS n FROM ({sub}) AS s, LATERAL jsonb_each(CASE WHEN "
            "jsonb_typeof(s.j::jsonb) = 'object' THEN s.j::jsonb END) AS e GROUP BY 1, 2"
        )
    if dialect == "pyspark":
        return (
            "SELECT e.key AS key, CASE WHEN schema_of_variant(e.value) LIKE 'DECIMAL%' "
            "THEN 'DOUBLE' WHEN schema_of_variant(e.value) LIKE 'OBJECT%' THEN 'OBJECT' "
            "WHEN schema_of_variant(e.value) LIKE 'ARRAY%' THEN 'ARRAY' "
            "ELSE schema_of_variant(e.value) END AS kind, count(*) AS n "
            f"FROM ({sub}) AS s, LATERAL variant_explode(try_parse_json(s.j)) AS e "
            "GROUP BY 1, 2"
        )
    raise DataError(
        f"finding the keys of a JSON column is not supported on {dialect}: declare them, "
        "e.g. json={'users': {'properties': {'plan': 'string'}}}"
    )


def discover_keys(
    backend: Any,
    table: ir.Table,
    column: str,
    dialect: str,
    *,
    sample: int = SAMPLE_ROWS,
    run: Callable[[Any, str], Any] | None = None,
) -> dict[tuple[str, ...], str]:
    """The keys of a JSON column and their kinds, from the first ``sample`` rows, by one
    aggregate query in the backend per nesting level (objects are followed ``MAX_DEPTH`` deep).

    A key takes the kind most of its values have (numbers: ``int`` if all are whole, else
    ``float``; ties go to ``string``); keys that hold only ``null``, arrays or characters that
    a JSON path cannot name (``"`` and ``\\``) are left out.
    """
    if column not in table.columns:
        raise DataError(
            f"json= names a column {column!r} that the table does not have "
            f"(columns: {', '.join(table.columns)})"
        )
    run = run or _run
    found: dict[tuple[str, ...], str] = {}
    pending: list[tuple[str, ...]] = [()]
    while pending:
        prefix = pending.pop(0)
        node: ir.Value = table[column]
        if dialect != "pyspark":
            node = _json_column(node, dialect)
            for key in prefix:
                node = node[f'"{key}"' if dialect == "duckdb" else key]
        elif prefix:
            node = _spark_nested_text(node, prefix)
        sub = str(backend.compile(table.select(j=node).limit(sample)))
        counts: dict[str, dict[str, int]] = {}
        for key, kind, n in run(backend, _key_rows_sql(sub, dialect)):
            name = _TYPE_NAMES.get(str(kind))
            # Spark explodes arrays too: their elements come without a key.
            if name is None or not isinstance(key, str) or '"' in key or "\\" in key:
                continue
            counts.setdefault(str(key), {}).setdefault(name, 0)
            counts[str(key)][name] += int(n)
        for key, kinds in sorted(counts.items()):
            kind = _majority(kinds)
            path = (*prefix, key)
            if kind == "object":
                if len(path) < MAX_DEPTH:
                    pending.append(path)
            elif kind is not None:
                found[path] = kind
    return found


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_json_text(text: str, path: str) -> str:
    """Spark: the JSON text at a path."""


def _spark_nested_text(column: ir.Value, prefix: Sequence[str]) -> ir.Value:
    return _spark_json_text(column, _spark_path(prefix))


def _majority(kinds: Mapping[str, int]) -> str | None:
    numbers = kinds.get("int", 0) + kinds.get("float", 0)
    totals = {
        "string": kinds.get("string", 0),
        "number": numbers,
        "bool": kinds.get("bool", 0),
        "object": kinds.get("object", 0),
        "array": kinds.get("array", 0),
    }
    best = max(totals, key=lambda k: (totals[k], k == "string"))
    if totals[best] == 0 or best == "array":
        return None
    if best == "number":
        return "float" if kinds.get("float", 0) else "int"
    return best


def _run(backend: Any, sql: str) -> list[tuple]:
    with backend_errors("cannot read the keys of a JSON column"):
        frame = backend.sql(sql).execute()
    return list(frame.itertuples(index=False, name=None))


# ---------------------------------------------------------------------------- the view


def expand_json(
    backend: Any,
    table: ir.Table,
    columns: Mapping[str, Mapping[str, str] | None],
    dialect: str,
    *,
    keep: Sequence[str] = (),
) -> tuple[ir.Table, list[JsonProperty]]:
    """``table`` with each JSON column of ``columns`` replaced by a column per key.

    ``columns`` maps a JSON column to its declared ``{key path: kind}`` (dots separate nested
    keys) or to ``None`` to find the keys in the data (:func:`discover_keys`). A key is named by
    its path (``plan``, ``address.city``); where the table (or an earlier JSON column) already
    has that name, by the column and the path (``properties.plan``). Columns of ``keep`` stay.

    Examples
    --------
    >>> import ibis
    >>> con = ibis.duckdb.connect()
    >>> t = con.create_table("people", ibis.memtable({"id": [1, 2],
    ...     "properties": ['{"plan": "paid", "address": {"city": "Oslo"}}', '{"plan": 3}']}))
    >>> view, props = expand_json(con, t, {"properties": None}, "duckdb")
    >>> view.columns
    ('id', 'plan', 'address.city')
    >>> view.order_by("id").to_pyarrow().to_pylist()[1]
    {'id': 2, 'plan': None, 'address.city': None}
    """
    values: dict[str, ir.Value] = {}
    properties: list[JsonProperty] = []
    taken = set(table.columns) - set(columns)
    for column, declared in columns.items():
        if column not in table.columns:
            raise DataError(
                f"json= names a column {column!r} that the table does not have "
                f"(columns: {', '.join(table.columns)})"
            )
        if declared is None:
            keys = discover_keys(backend, table, column, dialect)
        else:
            keys = {tuple(path.split(".")): kind for path, kind in declared.items()}
        for path, kind in keys.items():
            name = ".".join(path)
            if name in taken:
                name = f"{column}.{name}"
            taken.add(name)
            values[name] = json_value(table[column], path, kind, dialect)
            properties.append(JsonProperty(column, path, kind, name))
    kept = [c for c in table.columns if c not in columns or c in keep]
    return table.select(*kept, **values), properties


def materialize(
    backend: Any,
    table: ir.Table,
    dialect: str,
    *,
    temporary: bool = True,
    order_by: Sequence[str] = (),
    shared: bool = False,
) -> tuple[ir.Table, Callable[[], None]] | None:
    """``table`` (one with JSON keys read as columns) computed once into a table of the backend:
    the JSON is read once, not by every query. ``None`` where the engine is not one of
    ``MATERIALIZING`` (the view is then read as it is).

    Returns the new table and what fills it again from the source (``Dataset.refresh``). The
    table is temporary (this connection's) unless ``temporary`` is false (for heapseg's own
    in-memory DuckDB, where every cursor must see it). On DuckDB, ``order_by`` sorts its rows
    (events by ``event`` and ``time``: a rule's event name and window then skip most row
    groups), and ``shared`` puts it in an in-memory database attached to the connection
    (``SHARED_DATABASE``), which every cursor sees and nothing writes to a file.
    """
    if dialect not in MATERIALIZING:
        return None
    name = f"heapseg_json_{os.getpid()}_{next(_TABLES)}"
    with backend_errors("cannot compile the JSON properties' table"):
        sql = str(backend.compile(table))
    kind = "TEMPORARY TABLE" if temporary and not shared else "TABLE"
    where = f'"{name}"'
    if dialect == "duckdb":
        if order_by:
            sql = f"SELECT * FROM ({sql}) ORDER BY " + ", ".join(f'"{c}"' for c in order_by)
        if shared:
            with backend_errors("cannot attach an in-memory database for the JSON properties"):
                backend.con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {SHARED_DATABASE}")
            where = f'{SHARED_DATABASE}.main."{name}"'

    def fill() -> None:
        with backend_errors(f"cannot read the JSON properties into {name}"):
            if dialect == "duckdb":
                backend.con.execute(f"CREATE OR REPLACE {kind} {where} AS {sql}")
            else:
                backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"').close()
                backend.raw_sql(f'CREATE {kind} "{name}" AS {sql}').close()
                # Autovacuum never analyzes a temporary table: without this the planner
                # guesses its row count.
                backend.raw_sql(f'ANALYZE "{name}"').close()

    fill()
    if where != f'"{name}"':
        return backend.table(name, database=(SHARED_DATABASE, "main")), fill
    return backend.table(name), fill
