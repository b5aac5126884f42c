"""Checks of a data source at ``connect``: files, ``columns=``, and the ids of the users table.

Everything here runs once when a dataset is opened, so that a source heapseg cannot use fails
there with a :class:`~heapseg.errors.DataError` that says what to do, instead of later with a
backend's message, or not at all with a wrong answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from heapseg.errors import DataError, backend_errors


class UserIdWarning(UserWarning):
    """The users table's ids had problems that ``on_bad_ids="warn"`` worked around."""


__all__ = [
    "ON_BAD_IDS",
    "UserIdWarning",
    "check_columns",
    "check_duckdb_file",
    "check_user_ids",
    "duckdb_open_error",
    "parquet_files",
    "parquet_view_sql",
]

#: What ``connect(on_bad_ids=...)`` does with bad user ids: refuse the data, or warn and
#: work around them (NULL ids left out, one row per id, events' ids cast to the users' type).
ON_BAD_IDS = ("raise", "warn")
_SHOWN_IDS = 5

_COLUMNS_EXAMPLE = "columns={'events': {'event': 'event_name', 'time': 'ts'}}"
#: Characters DuckDB reads as a glob in a path, and how to write each one literally.
_GLOB_ESCAPES = {"[": "[[]", "*": "[*]", "?": "[?]"}
# A DuckDB database file: an 8-byte checksum, then these magic bytes.
_DUCKDB_MAGIC = (8, b"DUCK")


# ---------------------------------------------------------------------------- columns=


def check_columns(columns: Any) -> Mapping[str, Mapping[str, str]]:
    """``columns=`` once its shape is right: ``{table: {model name: source column}}``."""
    if columns is None:
        return {}
    if not isinstance(columns, Mapping) or not all(
        isinstance(table, str) and _is_renaming(mapping) for table, mapping in columns.items()
    ):
        raise DataError(
            "columns= maps tables to {model name: your column}, e.g. "
            f"{_COLUMNS_EXAMPLE}; got {_brief(columns)}"
        )
    return columns


def _is_renaming(mapping: Any) -> bool:
    return isinstance(mapping, Mapping) and all(
        isinstance(model, str) and isinstance(source, str) for model, source in mapping.items()
    )


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


# ---------------------------------------------------------------------------- DuckDB files


def check_duckdb_file(path: Path) -> None:
    """Refuse a file that is not a DuckDB database before DuckDB reads it (its errors are
    obscure: a JSON file gives "Cannot launch in-memory database in read-only mode")."""
    try:
        with path.open("rb") as file:
            header = file.read(16)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    offset, magic = _DUCKDB_MAGIC
    if header[offset : offset + len(magic)] == magic:
        return
    raise DataError(f"{path} is not a DuckDB database file: {_what_instead(path, header)}")


def _what_instead(path: Path, header: bytes) -> str:
    suffix = path.suffix.lower()
    if header.startswith(b"PAR1") or suffix == ".parquet":
        return (
            "it is a Parquet file; pass the folder that holds it "
            "(with users.parquet and events.parquet or events/*.parquet)"
        )
    if suffix == ".json" or header.lstrip().startswith((b"{", b"[")):
        return (
            "it looks like JSON; a heapseg catalog goes to --catalog (or heapseg.Catalog), "
            "the data to --data (a DuckDB file or a folder of Parquet files)"
        )
    return (
        "pass a DuckDB database file, a folder of Parquet files, "
        "or an ibis connection (ibis.postgres.connect(...), ...)"
    )


def duckdb_open_error(path: Path, error: Exception) -> DataError:
    """What to do when DuckDB refuses to open ``path`` read-only."""
    text = str(error)
    if "different configuration" in text:
        return DataError(
            f"{path} is already open in this process with other settings (read-write, e.g. "
            "by duckdb.connect), and DuckDB opens a file one way per process: pass that "
            "connection instead, heapseg.connect(ibis.duckdb.from_connection(con)), "
            "or close it first"
        )
    if "lock" in text.lower():
        return DataError(
            f"another program holds {path} open for writing (DuckDB's lock): close it, "
            f"or connect to a copy of the file ({text})"
        )
    return DataError(f"cannot open DuckDB file {path}: {text}")


# ---------------------------------------------------------------------------- Parquet folders


def parquet_files(folder: Path, found: Path, role: str, optional: bool) -> list[Path]:
    """The Parquet files of one table (``found``: a file, or a folder of ``*.parquet``), each
    readable, all with the same columns: what DuckDB would otherwise report at the first
    query, or silently get wrong (it takes the first file's columns)."""
    files = [found] if found.is_file() else sorted(p for p in found.glob("*.parquet"))
    files = [f for f in files if f.is_file()]
    if not files:
        way_out = f", or remove the folder (or pass {role}=None)" if optional else ""
        raise DataError(
            f"{found.name}/ in {folder} holds no .parquet files: "
            f"put the {role}' Parquet files in it{way_out}"
        )
    schemas = [(f, _schema(folder, f)) for f in files]
    first, base = schemas[0]
    for other, schema in schemas[1:]:
        _compare(folder, found, (first, base), (other, schema))
    return files


def _schema(folder: Path, file: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(file)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{_relative(folder, file)} is not a readable Parquet file ({exc}): "
            "replace it or remove it"
        ) from exc


def _compare(folder: Path, found: Path, a: tuple[Path, Any], b: tuple[Path, Any]) -> None:
    (file_a, schema_a), (file_b, schema_b) = a, b
    name_a, name_b = _relative(folder, file_a), _relative(folder, file_b)
    columns_a = {f.name: f.type for f in schema_a}
    columns_b = {f.name: f.type for f in schema_b}
    way_out = (
        f"heapseg reads {found.name}/ as one table: write its files with one schema, e.g. in "
        f"DuckDB: COPY (SELECT * FROM read_parquet('{found.name}/*.parquet', "
        f"union_by_name=true)) TO '{found.name}.parquet'"
    )
    for column in columns_a.keys() ^ columns_b.keys():
        has, lacks = (name_a, name_b) if column in columns_a else (name_b, name_a)
        raise DataError(f"{has} has column {column!r}, {lacks} has not. {way_out}")
    for column, type_a in columns_a.items():
        if _kind(type_a) != _kind(columns_b[column]):
            raise DataError(
                f"column {column!r} is {type_a} in {name_a} but {columns_b[column]} in "
                f"{name_b}. {way_out}"
            )


def _kind(dtype: Any) -> str:
    """A column type up to what DuckDB reconciles by itself (widths, timestamp units)."""
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        return _kind(dtype.value_type)
    checks = [
        ("string", (pa.types.is_string, pa.types.is_large_string)),
        ("integer", (pa.types.is_integer,)),
        ("floating", (pa.types.is_floating,)),
        ("binary", (pa.types.is_binary, pa.types.is_large_binary)),
    ]
    for kind, tests in checks:
        if any(test(dtype) for test in tests):
            return kind
    if pa.types.is_timestamp(dtype):
        return f"timestamp[{'zoned' if dtype.tz else 'naive'}]"
    if pa.types.is_date(dtype):
        return "date"
    return str(dtype)


def _relative(folder: Path, file: Path) -> str:
    return file.relative_to(folder).as_posix()


def parquet_view_sql(view: str, files: list[Path]) -> str:
    """``CREATE VIEW`` over the files: the name quoted as an identifier, each path a string
    literal with its glob characters escaped (DuckDB would read ``shop[1]`` as ``shop1``)."""
    paths = ", ".join(_sql_string(_glob_literal(str(f))) for f in files)
    return f"CREATE VIEW {_sql_identifier(view)} AS SELECT * FROM read_parquet([{paths}])"


def _glob_literal(path: str) -> str:
    return "".join(_GLOB_ESCAPES.get(ch, ch) for ch in path)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------- user ids


def check_user_ids(
    users: ir.Table, events: ir.Table, on_bad_ids: str = "raise"
) -> tuple[ir.Table, ir.Table]:
    """The users and events tables once their ids can be trusted, with one aggregate query.

    A NULL ``user_id`` would count as a user (and match every ``did not``), a duplicated one
    would count its user twice, and ids of different types in users and events cannot be
    matched. With ``on_bad_ids="raise"`` each is a :class:`DataError` naming the offending ids;
    with ``"warn"`` a :class:`UserIdWarning`, and the tables returned leave NULL ids out, keep
    one row of each id (any one) and compare events' ids as the users' type.
    """
    if on_bad_ids not in ON_BAD_IDS:
        raise DataError(f"on_bad_ids must be 'raise' or 'warn', got {_brief(on_bad_ids)}")
    problems: list[str] = []
    fixes: list[str] = []
    user_type, event_type = users.user_id.type(), events.user_id.type()
    if _id_kind(user_type) != _id_kind(event_type):
        problems.append(
            f"users.user_id is {user_type} but events.user_id is {event_type}, so no event "
            "can be matched to a user: store both as one type (e.g. a view with "
            "CAST(user_id AS VARCHAR))"
        )
        fixes.append(f"events.user_id compared as {user_type} (ids that do not convert: nobody's)")
        events = events.mutate(user_id=events.user_id.try_cast(user_type))
    nulls, duplicated = _id_counts(users)
    if nulls:
        problems.append(
            f"{nulls} users rows have no user_id (NULL): they would count as users and match "
            "every 'did not' rule; fill in or remove them"
        )
        fixes.append("the users rows without a user_id left out")
        users = users.filter(users.user_id.notnull())
    if duplicated:
        problems.append(
            f"the users table has {duplicated} duplicated user_id rows, "
            f"{_duplicates(users)}: each such user would count more than once; "
            "de-duplicate the users table"
        )
        fixes.append("kept one row of each user_id (any one)")
        users = _one_row_per_id(users)
    if problems and on_bad_ids == "raise":
        raise DataError(
            "; also ".join(problems)
            + ". Or pass on_bad_ids='warn' to go on with "
            + ", ".join(fixes)
        )
    if problems:
        warnings.warn(
            "; also ".join(problems) + ". Went on with " + ", ".join(fixes),
            UserIdWarning,
            stacklevel=4,
        )
    return users, events


def _id_kind(dtype: dt.DataType) -> str:
    """Id types that compare with each other: all integers, all strings."""
    if dtype.is_integer():
        return "integer"
    if dtype.is_string():
        return "string"
    return str(dtype.copy(nullable=True))


def _id_counts(users: ir.Table) -> tuple[int, int]:
    """NULL ids and duplicated rows (rows beyond the first of each id), in one query."""
    stats = users.aggregate(
        rows=users.count(), ids=users.user_id.count(), distinct=users.user_id.nunique()
    )
    row = _run(stats).iloc[0]
    rows, ids, distinct = (int(row[c]) for c in ("rows", "ids", "distinct"))
    return rows - ids, ids - distinct


def _duplicates(users: ir.Table) -> str:
    """The most repeated ids, for the message (asked only when there are some)."""
    present = users.filter(users.user_id.notnull())
    counts = present.group_by("user_id").aggregate(n=present.count())
    top = counts.filter(counts.n > 1).order_by([ibis.desc("n"), "user_id"]).limit(_SHOWN_IDS + 1)
    rows = list(_run(top).itertuples(index=False))
    shown = ", ".join(f"{_plain(r.user_id)!r} ({r.n} rows)" for r in rows[:_SHOWN_IDS])
    return shown + (", ..." if len(rows) > _SHOWN_IDS else "")


def _one_row_per_id(users: ir.Table) -> ir.Table:
    rank = "_heapseg_id_rank"
    ranked = users.mutate(**{rank: ibis.row_number().over(group_by="user_id")})
    return ranked.filter(ranked[rank] == 0).drop(rank)


def _run(expr: ir.Expr) -> Any:
    with backend_errors("cannot check the users table's ids"):
        return expr.execute()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
