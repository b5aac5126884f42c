"""Who was a user, and what their properties were, at ``as_of``: joining and property history.

The ``users`` table holds who exists today with today's values. Two parts of the data model make
an evaluation at a past ``as_of`` give the answer an analyst would have got on that day:

* **joining**: a user counts from ``users.joined_at``, else from their first event, else always;
* **property history**: a table of how properties changed, in *snapshots* form (type-2 slowly
  changing dimension: ``valid_from``, ``valid_to``) or *changes* form (``time``; each row sets the
  properties it carries, NULL meaning "not set by this row").

Everything here builds ibis expressions; nothing runs and no row comes to Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from heapseg.errors import DataError

__all__ = ["HISTORY_FORMS", "PropertyHistory", "first_event_after", "joined_by"]

HistoryForm = Literal["snapshots", "changes"]
HISTORY_FORMS: tuple[HistoryForm, ...] = ("snapshots", "changes")

_STATE_CACHE_SIZE = 64

#: Makes a literal comparable with a timestamp column of the given type.
Stamp = Callable[[datetime, dt.DataType], ir.Value]


@dataclass(frozen=True)
class PropertyHistory:
    """A history table of user (key ``user_id``) or account (key ``account_id``) properties.

    ``tracked`` are the properties it has a column for: their value at ``as_of`` comes from the
    history only (unset before the first row), never from the current table.
    """

    table: ir.Table
    key: str
    form: HistoryForm
    tracked: tuple[str, ...]
    #: The table's name as the user gave it (for displays and messages).
    label: str = "history"
    #: States already built, by (as_of, columns): ibis expressions are immutable, and building
    #: one costs milliseconds that every rule on the same property at the same as_of would repeat.
    _states: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def bind(
        cls, table: ir.Table, current: ir.Table, key: str, label: str, role: str | None = None
    ) -> PropertyHistory:
        """Check a (column-mapped) history table against the current table and normalise it.

        The form is told by the columns: ``valid_from`` (and optionally ``valid_to``) is the
        snapshots form, ``time`` the changes form. The key and every tracked column are cast to
        the current table's types; a kind that differs (a string id against an integer one) is a
        :class:`DataError`, as is a missing key or time column. ``label`` names the table in
        messages; ``role`` is its keyword in ``connect`` (``user_history``), for the hints.
        """
        columns = table.columns
        if key not in columns:
            raise DataError(
                f"the {label} table has no {key!r} column (columns: {', '.join(columns)})"
            )
        if "valid_from" in columns:
            form: HistoryForm = "snapshots"
            times = [c for c in ("valid_from", "valid_to") if c in columns]
        elif "time" in columns:
            form = "changes"
            times = ["time"]
        else:
            raise DataError(
                f"the {label} table needs valid_from (and valid_to) columns for the snapshots form "
                f"or a time column for the changes form (columns: {', '.join(columns)}); map "
                f"yours with columns={{'{role or label}': {{'valid_from': 'dbt_valid_from', "
                f"'valid_to': 'dbt_valid_to'}}}}"
            )
        fixed = {key, *times}
        tracked = tuple(c for c in columns if c not in fixed and c in current.columns)
        select = {key: _same_kind(table[key], current[key].type(), label, key)}
        for name in times:
            select[name] = _timestamp(table[name], label, name)
        for name in tracked:
            select[name] = _same_kind(table[name], current[name].type(), label, name)
        return cls(table.select(**select), key, form, tracked, label)

    def state_at(self, as_of: datetime, columns: Sequence[str], stamp: Stamp) -> ir.Table:
        """``key`` and the value of each of ``columns`` at ``as_of``: one row per key with a row
        in force (snapshots) or a value set (changes); keys without one are absent (unset).

        Snapshots: the rows with ``valid_from <= as_of < valid_to`` (``valid_to`` NULL: still
        valid); of those, the latest ``valid_from``. Changes: for each column, the last non-NULL
        value with ``time <= as_of``. Rows tied on that time give each column's greatest value, so
        that the answer never depends on the engine's row order.
        """
        columns = [c for c in dict.fromkeys(columns) if c in self.tracked]
        cache_key = (as_of, tuple(columns))
        state = self._states.get(cache_key)
        if state is None:
            state = self._build_state(as_of, columns, stamp)
            if len(self._states) >= _STATE_CACHE_SIZE:
                self._states.pop(next(iter(self._states)))
            self._states[cache_key] = state
        return state

    def _build_state(self, as_of: datetime, columns: list[str], stamp: Stamp) -> ir.Table:
        table, key = self.table, self.key
        if self.form == "snapshots":
            moment = stamp(as_of, table.valid_from.type())
            conditions = [table.valid_from <= moment]
            if "valid_to" in table.columns:
                conditions.append(table.valid_to.isnull() | (table.valid_to > moment))
            rows = table.filter(*conditions)
            if len(columns) == 1:
                return _first_by(rows, key, "valid_from", columns[0])
            latest = rows.group_by(key).aggregate(_latest=rows.valid_from.max())
            tied = rows.join(latest, [key, rows.valid_from == latest._latest])
            return tied.group_by(key).aggregate(**{c: tied[c].max() for c in columns})
        rows = table.filter(table.time <= stamp(as_of, table.time.type()))
        if len(columns) == 1:
            return _first_by(rows.filter(rows[columns[0]].notnull()), key, "time", columns[0])
        lasts = rows.group_by(key).aggregate(
            **{f"_t{i}": rows.time.max(where=rows[c].notnull()) for i, c in enumerate(columns)}
        )
        tied = rows.join(lasts, key)
        return tied.group_by(key).aggregate(
            **{c: tied[c].max(where=tied.time == tied[f"_t{i}"]) for i, c in enumerate(columns)}
        )

    def describe(self) -> str:
        """``user_history (snapshots): subscription_type, role``."""
        return (
            f"{self.label} ({self.form}): {', '.join(self.tracked) or 'no property of the table'}"
        )


def _first_by(rows: ir.Table, key: str, time: str, column: str) -> ir.Table:
    """``key`` and ``column`` of each key's row with the latest ``time``; of rows tied on it, the
    one with the greatest value (NULL last). For one column this is the same answer as the
    aggregates of :meth:`PropertyHistory.state_at` in one window pass, which engines run faster
    than an aggregate joined back to its rows (a rule reads one property)."""
    order = [ibis.desc(time), ibis.desc(column, nulls_first=False)]
    ranked = rows.mutate(_rank=ibis.row_number().over(group_by=key, order_by=order))
    return ranked.filter(ranked._rank == 0).select(key, column)


def _same_kind(column: ir.Column, want: dt.DataType, label: str, name: str) -> ir.Column:
    got = column.type()
    if got == want:
        return column
    kinds = (
        (want.is_string(), got.is_string()),
        (want.is_integer(), got.is_integer()),
        (want.is_numeric(), got.is_numeric()),
        (want.is_boolean(), got.is_boolean()),
        (want.is_temporal(), got.is_temporal()),
    )
    if not any(a and b for a, b in kinds):
        raise DataError(
            f"{label}.{name} is {got} but the current table's {name} is {want}: "
            "the history must hold the same kind of value"
        )
    return column.cast(want)


def _timestamp(column: ir.Column, label: str, name: str) -> ir.Column:
    kind = column.type()
    if kind.is_timestamp():
        return column
    if kind.is_date():
        return column.cast("timestamp")  # a date stands for its midnight UTC
    raise DataError(f"{label}.{name} must be a timestamp or a date, but its type is {kind}")


def first_event_after(events: ir.Table, as_of: ir.Value) -> ir.Column:
    """The ids of users whose first event (of any name) is after ``as_of``: not yet joined."""
    firsts = events.group_by("user_id").aggregate(_first=events.time.min())
    late = firsts.filter(firsts._first > as_of, firsts.user_id.notnull())
    return late.user_id


def joined_by(
    users: ir.Table,
    as_of: datetime,
    stamp: Stamp,
    events: Callable[[], ir.Table] | None,
) -> ir.BooleanValue:
    """Whether each user had joined at ``as_of`` (boundary included), as a boolean over ``users``.

    ``users.joined_at`` decides where it is set; elsewhere the first event does: ``events`` gives
    the identity-merged events, or is ``None`` when the caller knows that no user's first event
    lies after ``as_of`` (then every user without ``joined_at`` counts). A user with neither a
    join time nor events has always been a user.
    """
    unset: ir.BooleanValue = ibis.literal(True)
    if events is not None:
        merged = events()
        late = first_event_after(merged, stamp(as_of, merged.time.type()))
        unset = ~ibis.coalesce(users.user_id.isin(late), ibis.literal(False))
    if "joined_at" not in users.columns:
        return unset
    joined = ibis.coalesce(users.joined_at <= stamp(as_of, users.joined_at.type()), False)
    return joined | (users.joined_at.isnull() & unset)
