"""Compiled SQL, reused: the key under which two ibis expressions compile to the same SQL.

Compiling an ibis expression costs 20-80 ms, often as long as a DuckDB query on 100,000 users,
and a chart drawn again or a count asked again builds an equal expression. Equal, but not
identical: ibis gives every join and self-reference a fresh identifier from a global counter, so
two builds of one chart are never equal operation trees (``.view()`` takes the counter's next
value). :func:`structure_key` is the tree with the identifiers of the references to each relation
numbered in the order they first appear: which references are the same is all the SQL depends
on (ibis names its table aliases by position, not by identifier).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

__all__ = ["duckdb_frame", "structure_key"]

# What ibis prepares the backend for just before a query runs (registering in-memory data or
# Python UDFs, loading the spatial extension): an expression holding one goes through ibis.
_PREPARED = (
    ops.InMemoryTable,
    ops.ScalarUDF,
    ops.AggUDF,
    ops.AnalyticVectorizedUDF,
    ops.ElementWiseVectorizedUDF,
    ops.ReductionVectorizedUDF,
    ops.GeoSpatialUnOp,
    ops.GeoSpatialBinOp,
)
# Leaves compared by value and type: True == 1 == 1.0, yet each compiles to other SQL.
_PLAIN = (str, int, float, bool, type(None), bytes)


class _Unkeyable(Exception):
    """The expression holds something that can't be keyed (in-memory data, unhashable values)."""


def structure_key(expr: ir.Expr) -> Hashable | None:
    """A hashable key equal for expressions that compile to the same SQL, or None.

    None for expressions over in-memory tables, with Python UDFs or spatial operations (ibis
    prepares the backend for those just before a query runs, so their SQL alone is not the
    query), with values that can't be hashed, or too deep to walk.
    """
    # The tree as a flat list of nodes, children first, each naming its children by position:
    # nested tuples would repeat every shared subtree, and hashing them grows exponentially.
    nodes: list[Hashable] = []
    position: dict[ops.Node, int] = {}
    numbers: dict[tuple[type, Hashable], dict[Any, int]] = {}

    def node_key(node: ops.Node) -> Hashable:
        found = position.get(node)
        if found is None:
            if isinstance(node, _PREPARED):
                raise _Unkeyable
            if isinstance(node, ops.Reference):
                # Only references to one relation need telling apart (a self-join): number
                # them per relation, in the order they appear.
                parent = node_key(node.parent)
                taken = numbers.setdefault((type(node), parent), {})
                nodes.append((type(node), parent, taken.setdefault(node.identifier, len(taken))))
            else:
                nodes.append((type(node), tuple(value_key(arg) for arg in node.__args__)))
            found = position[node] = len(nodes) - 1
        return ("node", found)

    def value_key(value: Any) -> Hashable:
        if isinstance(value, ops.Node):
            return node_key(value)
        if isinstance(value, _PLAIN):
            return (type(value), value)
        if isinstance(value, tuple):
            return (tuple, tuple(value_key(v) for v in value))
        if isinstance(value, Mapping):
            return (type(value), tuple((k, value_key(v)) for k, v in value.items()))
        hash(value)  # raises TypeError for what can't be a key
        # repr tells apart equal values that print differently (the same instant in two zones).
        return (type(value), value, repr(value))

    try:
        node_key(expr.op())
    except (_Unkeyable, TypeError, RecursionError):
        return None
    return (tuple(nodes), ibis.options.sql.default_limit)


def duckdb_frame(backend: Any, expr: ir.Expr, sql: str) -> Any:
    """Run ``sql``, compiled from ``expr``, and give what ibis's DuckDB ``execute`` gives.

    The conversion is ibis's own (``ibis.backends.duckdb.Backend.execute``): nested, dictionary
    and gappy columns go through Python objects, then ibis's converter fixes each column's type.
    """
    import pandas as pd
    import pyarrow.types as pat
    from ibis.backends.duckdb.converter import DuckDBPandasData

    if getattr(backend, "_record_batch_readers_consumed", None):
        # ibis's hook before a query marks (and warns of) tables read from a stream; the rest
        # of its hooks are for what a keyed expression never holds (see structure_key).
        backend._run_pre_execute_hooks(expr)
    table = backend.con.execute(sql).to_arrow_table()
    columns = {
        name: (
            col.to_pylist()
            if pat.is_nested(col.type) or pat.is_dictionary(col.type) or col.null_count
            else col.to_pandas()
        )
        for name, col in zip(table.column_names, table.columns, strict=True)
    }
    schema = expr.as_table().schema()
    if isinstance(expr, ir.Table) and all(
        _kept_as_is(columns[name], dtype) for name, dtype in schema.items()
    ):
        # ibis's two conversions would give back these very columns: skip them (a few ms).
        return pd.DataFrame(columns)
    df = pd.DataFrame(columns)
    return expr.__pandas_result__(DuckDBPandasData.convert_table(df, schema))


def _kept_as_is(column: Any, dtype: Any) -> bool:
    """Whether ibis's pandas conversion returns this column unchanged: a number or boolean
    column without missing values, already of the type ibis gives it."""
    from ibis.formats.pandas import PandasType

    return (
        (dtype.is_integer() or dtype.is_floating() or dtype.is_boolean())
        and not isinstance(column, list)
        and column.dtype == PandasType.from_ibis(dtype)
    )
