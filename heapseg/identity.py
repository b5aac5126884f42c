"""Heap's identity merges: which id each merged id became, and events attributed to it."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

__all__ = ["identity_moves", "merge_identities"]


def identity_moves(migrations: ir.Table, events: ir.Table) -> ir.Table:
    """``(_from, _to)`` from ``migrations`` (``from_user_id``, ``to_user_id``): one target per
    merged id (the least), in the events' id type, so that no event is ever counted twice.

    Examples
    --------
    >>> import ibis
    >>> migrations = ibis.memtable({"from_user_id": [7, 7, 8], "to_user_id": [2, 1, 3]})
    >>> events = ibis.memtable({"user_id": [1, 7, 8]})
    >>> identity_moves(migrations, events).order_by("_from").to_pyarrow().to_pylist()
    [{'_from': 7, '_to': 1}, {'_from': 8, '_to': 3}]
    """
    id_type = events.user_id.type()
    return migrations.group_by(_from=migrations.from_user_id.cast(id_type)).aggregate(
        _to=migrations.to_user_id.cast(id_type).min()
    )


def merge_identities(events: ir.Table, moves: ir.Table) -> ir.Table:
    """``events`` with each merged ``user_id`` replaced by the id it became (per ``moves``, from
    :func:`identity_moves`); the other columns, and their order, as they are.

    Examples
    --------
    >>> import ibis
    >>> moves = ibis.memtable({"_from": [7], "_to": [1]})
    >>> events = ibis.memtable({"user_id": [1, 7, 8], "event": ["a", "b", "c"]})
    >>> merge_identities(events, moves).order_by("event").to_pyarrow().to_pylist()
    [{'user_id': 1, 'event': 'a'}, {'user_id': 1, 'event': 'b'}, {'user_id': 8, 'event': 'c'}]
    """
    joined = events.left_join(moves, events.user_id == moves._from)
    # Columns picked through their source tables: right even if events has a ``_to`` column.
    merged = ibis.coalesce(moves._to, events.user_id)
    return joined.select(**{c: merged if c == "user_id" else events[c] for c in events.columns})
