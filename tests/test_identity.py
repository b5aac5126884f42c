"""Tests of heapseg/identity.py: identity merges, as the dataset and the compiler apply them."""

from __future__ import annotations

import ibis

from heapseg.identity import identity_moves, merge_identities


def _rows(table: ibis.Table) -> list[dict]:
    return table.order_by(list(table.columns)).to_pyarrow().to_pylist()


def test_identity_moves_keep_one_target_per_id_in_the_events_id_type() -> None:
    migrations = ibis.memtable({"from_user_id": [7, 7, 8], "to_user_id": [2, 1, 3]})
    events = ibis.memtable({"user_id": ["1", "7"]})
    moves = identity_moves(migrations, events)
    assert moves.schema() == ibis.schema({"_from": "string", "_to": "string"})
    assert _rows(moves) == [{"_from": "7", "_to": "1"}, {"_from": "8", "_to": "3"}]


def test_merge_keeps_every_column_and_its_order() -> None:
    events = ibis.memtable({"event": ["a", "b", "c"], "user_id": [1, 7, 8], "time": [3, 2, 1]})
    moves = ibis.memtable({"_from": [7, 9], "_to": [1, 1]})
    merged = merge_identities(events, moves)
    assert merged.columns == ("event", "user_id", "time")
    assert _rows(merged) == [
        {"event": "a", "user_id": 1, "time": 3},
        {"event": "b", "user_id": 1, "time": 2},
        {"event": "c", "user_id": 8, "time": 1},
    ]


def test_merge_is_right_when_an_event_property_is_named_like_the_moves_columns() -> None:
    events = ibis.memtable({"user_id": [7, 8], "_to": ["x", "y"], "_from": [0, 0]})
    moves = ibis.memtable({"_from": [7], "_to": [1]})
    assert _rows(merge_identities(events, moves)) == [
        {"user_id": 1, "_to": "x", "_from": 0},
        {"user_id": 8, "_to": "y", "_from": 0},
    ]
