"""Tiny hand-made datasets in an in-memory DuckDB, and helpers to read a segment's users back."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import ibis
import pandas as pd

import heapseg

AS_OF = datetime(2024, 3, 31, 12, 0, 0)

# Column types of the hand-made tables; a key missing from a row is NULL.
USER_TYPES = {
    "subscription_type": "string",
    "plan": "string",
    "email": "string",
    "ltv": "Float64",
    "visits": "Int64",
    "opt_in": "boolean",
    "signup": "datetime64[us]",
    "seen": "datetime64[us]",
    "account_id": "string",
}
EVENT_TYPES = {
    "path": "string",
    "revenue": "Float64",
    "quantity": "Int64",
    "plan": "string",
}
ACCOUNT_TYPES = {"tier": "string", "seats": "Int64"}


def frame(rows: Iterable[dict], types: dict[str, str], key: str) -> pd.DataFrame:
    """A DataFrame with ``key`` first and one typed column per entry of ``types``."""
    rows = list(rows)
    data: dict[str, Any] = {key: [r[key] for r in rows]}
    for name, dtype in types.items():
        data[name] = pd.Series([r.get(name) for r in rows], dtype=dtype)
    return pd.DataFrame(data)


def users_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Users with typed property columns (``signup`` becomes a DATE column in DuckDB)."""
    return frame(rows, USER_TYPES, "user_id")


def events_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    """Events from ``(user_id, time, event)`` or ``(user_id, time, event, {props})`` tuples."""
    rows = list(rows)
    props = [r[3] if len(r) > 3 else {} for r in rows]
    data: dict[str, Any] = {
        "user_id": pd.Series([r[0] for r in rows], dtype="string"),
        "time": pd.Series([pd.Timestamp(r[1]) for r in rows], dtype="datetime64[us]"),
        "event": pd.Series([r[2] for r in rows], dtype="string"),
    }
    for name, dtype in EVENT_TYPES.items():
        data[name] = pd.Series([p.get(name) for p in props], dtype=dtype)
    return pd.DataFrame(data)


def accounts_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """Accounts with typed property columns."""
    return frame(rows, ACCOUNT_TYPES, "account_id")


def load(
    users: Iterable[dict],
    events: Iterable[tuple] = (),
    accounts: Iterable[dict] | None = None,
    migrations: list[tuple[str, str]] | None = None,
) -> ibis.BaseBackend:
    """A fresh in-memory DuckDB holding the tables (``signup`` stored as DATE)."""
    con = ibis.duckdb.connect()
    con.create_table("users", users_frame(users))
    con.raw_sql("ALTER TABLE users ALTER COLUMN signup TYPE DATE")
    con.create_table("events", events_frame(events))
    if accounts is not None:
        con.create_table("accounts", accounts_frame(accounts))
    if migrations is not None:
        con.create_table(
            "user_migrations",
            pd.DataFrame(migrations, columns=["from_user_id", "to_user_id"], dtype="string"),
        )
    return con


def dataset(
    users: Iterable[dict],
    events: Iterable[tuple] = (),
    accounts: Iterable[dict] | None = None,
    migrations: list[tuple[str, str]] | None = None,
    **kwargs: Any,
) -> heapseg.Dataset:
    """A heapseg dataset over a fresh in-memory DuckDB holding the given rows."""
    con = load(users, events, accounts, migrations)
    return heapseg.connect(con, **kwargs)


def ids(ds: heapseg.Dataset, segment: Any, as_of: Any = AS_OF, **kwargs: Any) -> set:
    """The user_ids the segment selects (unknown-event warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        table = ds.members(segment, as_of=as_of, **kwargs).select("user_id")
        return set(table.to_pandas()["user_id"])


def group(*rules: dict, combinator: str = "and", negate: bool = False) -> dict:
    """A format-1 group."""
    out: dict[str, Any] = {"combinator": combinator, "rules": list(rules)}
    if negate:
        out["not"] = True
    return out


def prop(kind: str, field: str, operator: str, value: Any = None, **extra: Any) -> dict:
    """A property rule (``value`` left out when None)."""
    rule = {"kind": kind, "field": field, "operator": operator, **extra}
    if value is not None:
        rule["value"] = value
    return rule


def user_rule(field: str, operator: str, value: Any = None, **extra: Any) -> dict:
    """A ``user`` property rule."""
    return prop("user", field, operator, value, **extra)


def event_rule(event: str, **keys: Any) -> dict:
    """An ``event`` rule."""
    return {"kind": "event", "event": event, **keys}
