"""A slow reference evaluator of segment format 1, written from the spec alone (plain Python, no SQL).

It exists to be an independent oracle for the compiler: it is written from the
format documentation in docs/ (the segment format and the data model, "Time"
included) only, loops over users and events one by one, and favours
obviousness over speed. Use it on small data (tens of users, hundreds of events).

Readings of the spec where it leaves room (each one is marked ``READING`` below):

* An empty group selects every user whatever its combinator (``or`` included);
  with ``not`` it selects nobody. The same holds for an empty ``where`` group and
  events.
* Unset string values: NULL or ``""``. A rule value is never compared with an
  unset column value, so ``= ""`` selects nobody and ``!= ""`` everybody.
* A ``date`` column compared with a timestamp (``in last``, ``more than ago``, or a
  timestamp literal) is taken as the timestamp of its midnight UTC; compared with
  a date literal it is compared as a date.
* Windows and ``within`` with unit ``month`` move the calendar month and clamp the
  day to the month's end, keeping the time of day; ``offset`` months are applied
  in one move of ``N + M`` months, as the spec's formula writes it.
* ``count_distinct`` counts ``""`` as a value (the spec names only NULL as "no
  value" for aggregates).
* ``first_time`` combined with ``count``/``aggregate`` is an AND of the conditions;
  combined with ``then`` it is the AND of "first time inside the window" and
  "a pair exists" (the generator never produces that combination).
* ``user_migrations`` is applied in one hop (``from -> to``, no chains); a
  ``from_user_id`` that is still in ``users`` keeps its row but loses its events.
* Events with a NULL ``user_id``, ``time`` or ``event`` belong to no one / never match.

Point in time (data model, "Time"), as the dataset contract pins it down:

* Joining (on by default): a user is a user at ``as_of`` when ``joined_at <= as_of``
  (a date ``joined_at`` is its midnight UTC); with ``joined_at`` NULL or absent, when
  their first event (after identity merges, any name, any time, ``where`` plays no
  part) is ``<= as_of``; with neither, always. Segments are drawn from these users
  only, everywhere (``did: false``, ``not``, ``in: false``, static members), and they
  are the total.
* History: the tracked properties are the history's columns that ``users``
  (``accounts``) also has, minus the key and the form's own columns; others are
  ignored. Snapshots: candidate rows ``valid_from <= as_of < valid_to`` (``valid_to``
  NULL: open), the latest ``valid_from`` wins, ties -> the greatest non-NULL value.
  Changes: the last non-NULL value with ``time <= as_of``, ties -> the greatest.
  No such row: unset, never the ``users`` value.
* A user's account at ``as_of`` is their tracked ``account_id`` when the user history
  tracks it; account history rows count only for accounts in ``accounts``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

NEGATIVE_TWIN = {
    "!=": "=",
    "not in": "in",
    "not between": "between",
    "not contains": "contains",
}
UNITS = ("hour", "day", "week", "month")


class InvalidDefinition(ValueError):
    """The definition is not something the reference can evaluate (invalid per the spec)."""


# --------------------------------------------------------------------------- values


def normalize(value: Any) -> Any:
    """A cell as a plain Python value: None for every kind of NULL, naive UTC datetimes."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is not None:
            value = value.tz_convert("UTC").tz_localize(None)
        return value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        # numpy scalars
        return normalize(value.item())
    return value


def column_kind(series: pd.Series) -> str:
    """One of string / number / boolean / date / timestamp for a pandas column."""
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        arrow = dtype.pyarrow_dtype
        if pa.types.is_date(arrow):
            return "date"
        if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
            return "string"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    values = [normalize(v) for v in series.tolist()]
    values = [v for v in values if v is not None]
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, dt.datetime) for v in values):
        return "timestamp"
    if values and all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values):
        return "date"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "number"
    return "string"


def parse_timestamp(value: Any) -> dt.datetime:
    """An ISO-8601 string (or datetime/date) as a naive UTC datetime; no zone means UTC."""
    if isinstance(value, dt.datetime):
        return normalize(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise InvalidDefinition(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return normalize(dt.datetime.fromisoformat(text))


def is_date_literal(value: Any) -> bool:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()) is not None


def shift(moment: dt.datetime, n: int, unit: str) -> dt.datetime:
    """``moment + n·unit``; months are calendar months with the day clamped to the month's end."""
    if unit == "hour":
        return moment + dt.timedelta(hours=n)
    if unit == "day":
        return moment + dt.timedelta(days=n)
    if unit == "week":
        return moment + dt.timedelta(days=7 * n)
    if unit == "month":
        months = moment.year * 12 + (moment.month - 1) + n
        year, month = divmod(months, 12)
        month += 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)
    raise InvalidDefinition(f"unknown unit {unit!r}")


def period_of(moment: dt.datetime, unit: str) -> tuple:
    """The calendar period (UTC) that contains ``moment``: hour, date, ISO week or month."""
    if unit == "hour":
        return (moment.year, moment.month, moment.day, moment.hour)
    if unit == "day":
        return (moment.year, moment.month, moment.day)
    if unit == "week":
        monday = moment.date() - dt.timedelta(days=moment.weekday())
        return (monday.year, monday.month, monday.day)
    if unit == "month":
        return (moment.year, moment.month)
    raise InvalidDefinition(f"unknown unit {unit!r}")


# --------------------------------------------------------------------------- contains patterns


def parse_pattern(pattern: str) -> list[list[list[str]]]:
    """A ``contains`` pattern as alternatives -> parts -> literal pieces separated by ``*``.

    ``|`` binds loosest, then ``+``, then ``*``; ``\\|``, ``\\+``, ``\\*`` and
    ``\\\\`` are the characters themselves.
    """
    alternatives: list[list[list[str]]] = []
    parts: list[list[str]] = []
    pieces: list[str] = []
    current: list[str] = []
    raw_alternative: list[str] = []  # to detect an empty alternative

    def end_piece() -> None:
        pieces.append("".join(current))
        current.clear()

    def end_part() -> None:
        end_piece()
        parts.append(list(pieces))
        pieces.clear()

    def end_alternative() -> None:
        end_part()
        if not raw_alternative:
            raise InvalidDefinition(f"empty alternative in contains pattern {pattern!r}")
        alternatives.append(list(parts))
        parts.clear()
        raw_alternative.clear()

    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "|+*\\":
            current.append(pattern[i + 1])
            raw_alternative.append(pattern[i + 1])
            i += 2
            continue
        if char == "|":
            end_alternative()
        elif char == "+":
            raw_alternative.append(char)
            end_part()
        elif char == "*":
            raw_alternative.append(char)
            end_piece()
        else:
            # READING: a backslash before any other character is itself.
            current.append(char)
            raw_alternative.append(char)
        i += 1
    end_alternative()
    return alternatives


def pattern_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` contains ``pattern`` (case-insensitive), per the spec's pattern language."""
    haystack = text.lower()
    for parts in parse_pattern(pattern):
        if all(_part_matches(pieces, haystack) for pieces in parts):
            return True
    return False


def _part_matches(pieces: list[str], haystack: str) -> bool:
    regex = ".*".join(re.escape(piece.lower()) for piece in pieces)
    return re.search(regex, haystack, flags=re.DOTALL) is not None


# --------------------------------------------------------------------------- property operators


def is_unset(kind: str, value: Any) -> bool:
    return value is None or (kind == "string" and value == "")


def _coerce(kind: str, value: Any, rule: dict) -> Any:
    """A rule value in the column's type; a misfit is an error naming the rule."""
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidDefinition(f"{rule}: {value!r} does not fit a number column")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidDefinition(f"{rule}: {value!r} does not fit a boolean column")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidDefinition(f"{rule}: {value!r} does not fit a string column")
        return value
    if kind == "date":
        if is_date_literal(value):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(value.strip())
        return parse_timestamp(value)
    if kind == "timestamp":
        return parse_timestamp(value)
    raise InvalidDefinition(f"unknown column kind {kind}")


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    """READING: a date meets a timestamp as the timestamp of its midnight UTC."""
    a_date = isinstance(a, dt.date) and not isinstance(a, dt.datetime)
    b_date = isinstance(b, dt.date) and not isinstance(b, dt.datetime)
    if a_date and isinstance(b, dt.datetime):
        a = dt.datetime(a.year, a.month, a.day)
    if b_date and isinstance(a, dt.datetime):
        b = dt.datetime(b.year, b.month, b.day)
    return a, b


def compare(op: str, x: Any, v: Any) -> bool:
    """``x op v`` for the ordered / equality operators (both sides already typed)."""
    if op == "between":
        low, high = v
        return compare(">=", x, low) and compare("<=", x, high)
    x, v = _comparable(x, v)
    if op == "=":
        return x == v
    if op == "!=":
        return x != v
    if op == "<":
        return x < v
    if op == "<=":
        return x <= v
    if op == ">":
        return x > v
    if op == ">=":
        return x >= v
    raise InvalidDefinition(f"unknown comparison operator {op!r}")


def property_predicate(kind: str, rule: dict, as_of: dt.datetime) -> Callable[[Any], bool]:
    """A function value -> bool for a user/account/event_property rule on a column of ``kind``."""
    op = rule["operator"]
    if op in NEGATIVE_TWIN:
        positive = property_predicate(kind, {**rule, "operator": NEGATIVE_TWIN[op]}, as_of)
        return lambda x: not positive(x)
    if op == "is set":
        return lambda x: not is_unset(kind, x)
    if op == "is not set":
        return lambda x: is_unset(kind, x)
    value = rule.get("value")
    test = _positive_test(kind, op, value, rule, as_of)
    return lambda x: (not is_unset(kind, x)) and test(x)


def _positive_test(
    kind: str, op: str, value: Any, rule: dict, as_of: dt.datetime
) -> Callable[[Any], bool]:
    if op in ("=", "<", "<=", ">", ">="):
        if op != "=" and kind not in ("number", "date", "timestamp"):
            raise InvalidDefinition(f"{rule}: {op} needs a number, date or timestamp column")
        typed = _coerce(kind, value, rule)
        return lambda x: compare(op, x, typed)
    if op == "in":
        if not isinstance(value, list):
            raise InvalidDefinition(f"{rule}: in needs a list")
        typed_list = [_coerce(kind, v, rule) for v in value]
        return lambda x: any(compare("=", x, v) for v in typed_list)
    if op == "between":
        if kind not in ("number", "date", "timestamp"):
            raise InvalidDefinition(f"{rule}: between needs a number, date or timestamp column")
        low, high = (_coerce(kind, v, rule) for v in value)
        return lambda x: compare("between", x, (low, high))
    if op in ("contains", "begins with", "ends with"):
        if kind != "string" or not isinstance(value, str):
            raise InvalidDefinition(f"{rule}: {op} needs a string column and a string value")
        if op == "contains":
            parse_pattern(value)  # an invalid pattern is an error even if no row is tested
            return lambda x: pattern_matches(value, x)
        if op == "begins with":
            return lambda x: x.lower().startswith(value.lower())
        return lambda x: x.lower().endswith(value.lower())
    if op in ("in last", "more than ago"):
        if kind not in ("date", "timestamp"):
            raise InvalidDefinition(f"{rule}: {op} needs a date or timestamp column")
        unit = rule.get("unit")
        if unit not in UNITS:
            raise InvalidDefinition(f"{rule}: unit must be one of {UNITS}")
        start = shift(as_of, -int(value), unit)
        if op == "in last":
            return lambda x: compare("between", x, (start, as_of))
        return lambda x: compare("<", x, start)
    raise InvalidDefinition(f"{rule}: unknown operator {op!r}")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Event:
    """One event, attributed to its (merged) user."""

    user_id: Any
    time: dt.datetime
    name: Any
    props: dict[str, Any]


@dataclass
class _Data:
    """Everything a definition is evaluated on, at one ``as_of``.

    ``user_ids`` are the users who had joined by ``as_of``: every rule, group and
    reference draws from them only. ``all_user_ids`` are the rows of ``users``.
    ``user_values`` / ``account_values`` hold the values at ``as_of`` of every user.
    """

    as_of: dt.datetime
    user_ids: list[Any]
    user_kinds: dict[str, str]
    user_values: dict[str, dict[Any, Any]]
    account_kinds: dict[str, str]
    account_values: dict[str, dict[Any, Any]]
    event_kinds: dict[str, str]
    events: dict[Any, list[Event]]
    segments: dict[str, Any]
    all_user_ids: list[Any] = field(default_factory=list)
    resolving: list[str] = field(default_factory=list)

    @property
    def everyone(self) -> set:
        """The users at ``as_of`` ("all users"; the total that shares divide by)."""
        return set(self.user_ids)


def total(data: _Data) -> int:
    """The number of users at ``as_of``: ``counts()["__total__"]``."""
    return len(data.user_ids)


def _columns(frame: pd.DataFrame, skip: Iterable[str]) -> tuple[dict, dict]:
    kinds, values = {}, {}
    for name in frame.columns:
        if name in skip:
            continue
        kinds[name] = column_kind(frame[name])
        values[name] = [normalize(v) for v in frame[name].tolist()]
    return kinds, values


def _instant(value: Any) -> dt.datetime | None:
    """A timestamp or date cell as a naive UTC datetime; a date is its midnight UTC."""
    value = normalize(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


# --------------------------------------------------------------------------- point in time


SNAPSHOTS = "snapshots"
CHANGES = "changes"
FORM_COLUMNS = ("valid_from", "valid_to", "time")


def history_form(history: pd.DataFrame, form: str | None = None) -> str:
    """The form of a history table: told by its columns unless given."""
    if form is not None:
        if form not in (SNAPSHOTS, CHANGES):
            raise InvalidDefinition(f"unknown history form {form!r}")
        return form
    # READING: a table with both valid_from and time is read as snapshots (listed first).
    if "valid_from" in history.columns:
        return SNAPSHOTS
    if "time" in history.columns:
        return CHANGES
    raise InvalidDefinition("a history table needs a valid_from or a time column")


def tracked_properties(history: pd.DataFrame, current: pd.DataFrame, key: str) -> list[str]:
    """The history's columns that the current table also has, minus the key and form columns."""
    return [
        name
        for name in history.columns
        if name in current.columns and name != key and name not in FORM_COLUMNS
    ]


def _history_rows(history: pd.DataFrame, key: str, names: list[str]) -> dict[Any, list[dict]]:
    """History rows per key, every cell a plain value; form columns as instants."""
    rows: dict[Any, list[dict]] = {}
    for record in history.to_dict("records"):
        owner = normalize(record[key])
        if owner is None:
            continue  # READING: a row with a NULL key belongs to no one
        row = {name: normalize(record[name]) for name in names}
        for name in FORM_COLUMNS:
            row[name] = _instant(record.get(name))
        rows.setdefault(owner, []).append(row)
    return rows


def snapshot_value(rows: list[dict], name: str, as_of: dt.datetime) -> Any:
    """Snapshots: among rows with valid_from <= as_of < valid_to (valid_to NULL: open), the
    rows of the latest valid_from; their greatest non-NULL value; None when there is none."""
    candidates = [
        row
        for row in rows
        # A NULL valid_from never matches (its comparison is unknown); valid_to < valid_from
        # simply never holds.
        if row["valid_from"] is not None
        and row["valid_from"] <= as_of
        and (row["valid_to"] is None or as_of < row["valid_to"])
    ]
    if not candidates:
        return None
    latest = max(row["valid_from"] for row in candidates)
    values = [row[name] for row in candidates if row["valid_from"] == latest]
    values = [v for v in values if v is not None]
    # The latest row wins even when its value is NULL: no fall back to an older row.
    return max(values) if values else None


def change_value(rows: list[dict], name: str, as_of: dt.datetime) -> Any:
    """Changes: the value of the last row with time <= as_of that sets it (not NULL);
    several rows at that time: the greatest value; None when no row sets it."""
    # READING: "" is a value that a row sets (it is not NULL), and so unsets the property.
    setting = [
        row
        for row in rows
        if row["time"] is not None and row["time"] <= as_of and row[name] is not None
    ]
    if not setting:
        return None
    last = max(row["time"] for row in setting)
    return max(row[name] for row in setting if row["time"] == last)


def values_at(
    history: pd.DataFrame,
    form: str | None,
    key: str,
    current: pd.DataFrame,
    keys: list[Any],
    as_of: dt.datetime,
) -> dict[str, dict[Any, Any]]:
    """Tracked property -> {key: value at as_of}, for each of ``keys`` (the current table's)."""
    form = history_form(history, form)
    names = tracked_properties(history, current, key)
    rows = _history_rows(history, key, names)
    pick = snapshot_value if form == SNAPSHOTS else change_value
    return {name: {k: pick(rows.get(k, []), name, as_of) for k in keys} for name in names}


def joined_users(
    user_ids: list[Any],
    joined_at: dict[Any, dt.datetime | None] | None,
    first_event: dict[Any, dt.datetime],
    as_of: dt.datetime,
) -> list[Any]:
    """The users at ``as_of``: joined_at <= as_of when it is set, else first event <= as_of,
    else (no events at all) always."""
    joined = []
    for uid in user_ids:
        moment = joined_at.get(uid) if joined_at is not None else None
        if moment is not None:
            # Events before joined_at do not make the user join earlier.
            if moment <= as_of:
                joined.append(uid)
        elif uid not in first_event or first_event[uid] <= as_of:
            joined.append(uid)
    return joined


def load(
    users: pd.DataFrame,
    events: pd.DataFrame,
    accounts: pd.DataFrame | None,
    as_of: dt.datetime | str,
    segments: dict[str, Any] | None = None,
    migrations: pd.DataFrame | None = None,
    *,
    joining: bool = True,
    user_history: pd.DataFrame | None = None,
    user_history_form: str | None = None,
    account_history: pd.DataFrame | None = None,
    account_history_form: str | None = None,
) -> _Data:
    """Index the frames per user at ``as_of``: the identity merge applied, events after as_of
    dropped, the users who had joined, property values as of ``as_of``.

    ``joining=False``: every users row is a user at every as_of. ``user_history`` /
    ``account_history`` (keys ``user_id`` / ``account_id``) are in the snapshots form
    (``valid_from``, ``valid_to``) or the changes form (``time``); the form is told by the
    columns unless ``*_form`` gives it.
    """
    as_of = parse_timestamp(as_of)
    user_ids = [normalize(u) for u in users["user_id"].tolist()]
    if len(set(user_ids)) != len(user_ids) or None in user_ids:
        raise InvalidDefinition("users.user_id must be unique and not NULL")

    # READING: joined_at stays a user property as well (it is a column of users).
    kinds, columns = _columns(users, skip=("user_id",))
    user_values = {name: dict(zip(user_ids, col, strict=True)) for name, col in columns.items()}
    if user_history is not None:
        # Tracked properties never fall back to the users value.
        user_values.update(
            values_at(user_history, user_history_form, "user_id", users, user_ids, as_of)
        )

    account_kinds: dict[str, str] = {}
    account_values: dict[str, dict[Any, Any]] = {}
    if accounts is not None:
        account_ids = [normalize(a) for a in accounts["account_id"].tolist()]
        a_kinds, a_columns = _columns(accounts, skip=("account_id",))
        by_account = {
            name: dict(zip(account_ids, col, strict=True)) for name, col in a_columns.items()
        }
        if account_history is not None:
            # Only accounts of the accounts table: history rows of other ids are ignored.
            by_account.update(
                values_at(
                    account_history,
                    account_history_form,
                    "account_id",
                    accounts,
                    account_ids,
                    as_of,
                )
            )
        # The user's account at as_of (tracked through the user history when it has account_id).
        user_account = user_values.get("account_id", dict.fromkeys(user_ids))
        for name in a_columns:
            account_kinds[name] = a_kinds[name]
            # A user whose account_id matches no account has every account property unset.
            account_values[name] = {
                uid: (
                    by_account[name].get(user_account[uid])
                    if user_account[uid] is not None
                    else None
                )
                for uid in user_ids
            }

    merge: dict[Any, Any] = {}
    if migrations is not None:
        for src, dst in zip(
            migrations["from_user_id"].tolist(), migrations["to_user_id"].tolist(), strict=True
        ):
            src, dst = normalize(src), normalize(dst)
            if src in merge and merge[src] != dst:
                raise InvalidDefinition(f"user {src!r} migrates to two users")
            merge[src] = dst

    event_kinds, event_columns = _columns(events, skip=("user_id", "time", "event"))
    known = set(user_ids)
    per_user: dict[Any, list[Event]] = {uid: [] for uid in user_ids}
    first_event: dict[Any, dt.datetime] = {}
    raw_users = [normalize(u) for u in events["user_id"].tolist()]
    raw_times = [normalize(t) for t in events["time"].tolist()]
    raw_names = [normalize(n) for n in events["event"].tolist()]
    for i, (uid, time, name) in enumerate(zip(raw_users, raw_times, raw_names, strict=True)):
        uid = merge.get(uid, uid)
        if uid is None or uid not in known or time is None or name is None:
            continue
        if isinstance(time, dt.date) and not isinstance(time, dt.datetime):
            time = dt.datetime(time.year, time.month, time.day)
        # Joining looks at every event of the user, those after as_of included.
        if uid not in first_event or time < first_event[uid]:
            first_event[uid] = time
        if time > as_of:  # events after as_of are ignored by every rule
            continue
        props = {prop: col[i] for prop, col in event_columns.items()}
        per_user[uid].append(Event(uid, time, name, props))

    joined = user_ids
    if joining:
        joined_at = None
        if "joined_at" in users.columns:
            joined_at = {
                uid: _instant(v)
                for uid, v in zip(user_ids, users["joined_at"].tolist(), strict=True)
            }
        joined = joined_users(user_ids, joined_at, first_event, as_of)

    return _Data(
        as_of=as_of,
        user_ids=joined,
        user_kinds=kinds,
        user_values=user_values,
        account_kinds=account_kinds,
        account_values=account_values,
        event_kinds=event_kinds,
        events=per_user,
        segments=dict(segments or {}),
        all_user_ids=user_ids,
    )


# --------------------------------------------------------------------------- evaluation


def evaluate(
    definition: dict,
    users: pd.DataFrame,
    events: pd.DataFrame,
    accounts: pd.DataFrame | None,
    as_of: dt.datetime | str,
    segments: dict[str, dict | list] | None = None,
    migrations: pd.DataFrame | None = None,
    **point_in_time: Any,
) -> set:
    """The set of ``user_id`` s the format-1 ``definition`` selects at ``as_of``.

    Parameters
    ----------
    definition
        A format-1 group.
    users, events, accounts
        The three tables of the data model (``accounts`` may be None); ``users`` may
        have a ``joined_at`` column.
    as_of
        The evaluation moment; naive means UTC.
    segments
        What ``kind: segment`` references resolve to: a dict is a dynamic
        definition, a list the frozen member ids of a static segment.
    migrations
        ``user_migrations(from_user_id, to_user_id)``.
    point_in_time
        ``joining``, ``user_history``, ``user_history_form``, ``account_history``,
        ``account_history_form``: see :func:`load`.
    """
    data = load(users, events, accounts, as_of, segments, migrations, **point_in_time)
    return evaluate_loaded(definition, data)


def evaluate_loaded(definition: dict, data: _Data) -> set:
    """:func:`evaluate` on data already indexed by :func:`load` (to evaluate many definitions)."""
    return _group(definition, data)


def _group(group: dict, data: _Data) -> set:
    if not isinstance(group, dict) or group.get("combinator", "and") not in ("and", "or"):
        raise InvalidDefinition(f"not a group: {group!r}")
    rules = group.get("rules", [])
    everyone = data.everyone
    if not rules:
        selected = set(everyone)  # READING: empty group = all users, whatever the combinator
    else:
        parts = [_rule_or_group(rule, data) for rule in rules]
        if group.get("combinator", "and") == "and":
            selected = set.intersection(*parts)
        else:
            selected = set.union(*parts)
    if group.get("not", False):
        selected = everyone - selected
    return selected


def _rule_or_group(item: dict, data: _Data) -> set:
    if "kind" not in item:
        return _group(item, data)
    kind = item["kind"]
    if kind == "user":
        return _property_rule(item, data.user_kinds, data.user_values, data)
    if kind == "account":
        return _property_rule(item, data.account_kinds, data.account_values, data)
    if kind == "event":
        return _event_rule(item, data)
    if kind == "funnel":
        return _funnel_rule(item, data)
    if kind == "segment":
        return _segment_rule(item, data)
    raise InvalidDefinition(f"unknown rule kind {kind!r}")


def _property_rule(rule: dict, kinds: dict, values: dict, data: _Data) -> set:
    name = rule["field"]
    if name not in kinds:
        raise InvalidDefinition(f"unknown property {name!r}")
    predicate = property_predicate(kinds[name], rule, data.as_of)
    return {uid for uid in data.user_ids if predicate(values[name][uid])}


def _segment_rule(rule: dict, data: _Data) -> set:
    seg_id = rule["id"]
    if seg_id not in data.segments:
        raise InvalidDefinition(f"unknown segment {seg_id!r}")
    if seg_id in data.resolving:
        raise InvalidDefinition(f"segment cycle: {[*data.resolving, seg_id]}")
    target = data.segments[seg_id]
    if isinstance(target, dict):
        data.resolving.append(seg_id)
        try:
            members = _group(target, data)
        finally:
            data.resolving.pop()
    else:
        # A static segment contributes its frozen members still in users.
        members = {normalize(u) for u in target} & data.everyone
    if rule.get("in", True):
        return members
    return data.everyone - members


# --------------------------------------------------------------------------- event rules


def _event_predicate(group: dict | None, data: _Data) -> Callable[[Event], bool]:
    """A where-group as a function event -> bool."""
    if group is None:
        return lambda e: True
    rules = group.get("rules", [])
    tests = []
    for item in rules:
        if "kind" not in item:
            tests.append(_event_predicate(item, data))
            continue
        if item["kind"] != "event_property":
            raise InvalidDefinition(f"where holds only event_property rules, not {item['kind']!r}")
        name = item["field"]
        if name not in data.event_kinds:
            raise InvalidDefinition(f"unknown event property {name!r}")
        predicate = property_predicate(data.event_kinds[name], item, data.as_of)
        tests.append(lambda e, p=predicate, n=name: p(e.props[n]))
    combinator = group.get("combinator", "and")
    negate = bool(group.get("not", False))

    def holds(event: Event) -> bool:
        if not tests:
            result = True
        elif combinator == "and":
            result = all(t(event) for t in tests)
        else:
            result = any(t(event) for t in tests)
        return result != negate

    return holds


def window_predicate(window: dict | None, as_of: dt.datetime) -> Callable[[dt.datetime], bool]:
    """The rule's window as a function time -> bool (events after as_of are already gone)."""
    if window is None:
        return lambda t: t <= as_of
    if "last" in window:
        unit = window["unit"]
        n, offset = int(window["last"]), int(window.get("offset", 0))
        end = shift(as_of, -offset, unit)
        start = shift(as_of, -(n + offset), unit)
        return lambda t: start < t <= end
    start = parse_timestamp(window["from"]) if window.get("from") is not None else None
    end = parse_timestamp(window["to"]) if window.get("to") is not None else None
    return lambda t: (start is None or start <= t) and (end is None or t < end) and t <= as_of


def _event_rule(rule: dict, data: _Data) -> set:
    did = rule.get("did", True)
    then = rule.get("then")
    if not did and any(k in rule for k in ("count", "aggregate")):
        raise InvalidDefinition("count/aggregate are not allowed with did: false")
    if not did and rule.get("first_time"):
        raise InvalidDefinition("first_time is not allowed with did: false")
    if then is not None and any(k in rule for k in ("count", "aggregate")):
        raise InvalidDefinition("count/aggregate are not allowed with then")

    where = _event_predicate(rule.get("where"), data)
    in_window = window_predicate(rule.get("window"), data.as_of)
    then_where = _event_predicate(then.get("where"), data) if then else None

    selected = set()
    for uid in data.user_ids:
        named = [e for e in data.events[uid] if e.name == rule["event"] and where(e)]
        matching = [e for e in named if in_window(e.time)]
        if then is not None:
            followers = [e for e in data.events[uid] if e.name == then["event"] and then_where(e)]
            holds = _has_pair(matching, followers, then.get("within"))
            if rule.get("first_time"):
                holds = holds and _first_in_window(named, in_window)
            if holds == bool(did):
                selected.add(uid)
            continue
        if not did:
            if not matching:
                selected.add(uid)
            continue
        ok = _count_holds(rule["count"], matching) if "count" in rule else bool(matching)
        if ok and "aggregate" in rule:
            ok = _aggregate_holds(rule["aggregate"], matching, data)
        if ok and rule.get("first_time"):
            ok = _first_in_window(named, in_window)
        if ok:
            selected.add(uid)
    return selected


def _first_in_window(named: list[Event], in_window: Callable[[dt.datetime], bool]) -> bool:
    if not named:
        return False
    return in_window(min(e.time for e in named))


def _has_pair(firsts: list[Event], followers: list[Event], within: dict | None) -> bool:
    for first in firsts:
        limit = shift(first.time, int(within["value"]), within["unit"]) if within else None
        for follower in followers:
            # Strictly later; the within boundary is included; the same instant never pairs.
            if follower.time > first.time and (limit is None or follower.time <= limit):
                return True
    return False


def _count_holds(count: dict, matching: list[Event]) -> bool:
    unit = count.get("unit")
    n = len(matching) if unit is None else len({period_of(e.time, unit) for e in matching})
    return compare(count["operator"], n, _count_value(count))


def _count_value(spec: dict) -> Any:
    value = spec["value"]
    if spec["operator"] == "between":
        low, high = value
        return (low, high)
    return value


def _aggregate_holds(agg: dict, matching: list[Event], data: _Data) -> bool:
    if not matching:
        return False  # no matching event: no value, no comparison holds
    name, fn = agg["field"], agg["fn"]
    if name not in data.event_kinds:
        raise InvalidDefinition(f"unknown event property {name!r}")
    values = [e.props[name] for e in matching if e.props[name] is not None]
    if fn == "count_distinct":
        result: Any = len(set(values))
    elif not values:
        return False  # only NULL values: no value
    elif fn == "sum":
        result = sum(values)
    elif fn == "avg":
        result = sum(values) / len(values)
    elif fn == "min":
        result = min(values)
    elif fn == "max":
        result = max(values)
    else:
        raise InvalidDefinition(f"unknown aggregate {fn!r}")
    op = agg["operator"]
    if op not in ("=", "!=", "<", "<=", ">", ">=", "between"):
        raise InvalidDefinition(f"unknown aggregate operator {op!r}")
    target = _count_value(agg)
    if fn in ("min", "max"):
        # min/max keep the property's type (a date or timestamp is compared as one).
        kind = data.event_kinds[name]
        target = (
            tuple(_coerce(kind, v, agg) for v in target)
            if op == "between"
            else _coerce(kind, target, agg)
        )
    return compare(op, result, target)


# --------------------------------------------------------------------------- funnel rules


def _funnel_rule(rule: dict, data: _Data) -> set:
    """Users who reached step ``reached`` (and not ``not_reached``) of the funnel.

    Written as the spec reads, by search rather than by taking the earliest event at each
    step: step j is reached when some chain ``t1 < t2 < ... < tj <= t1 + within`` of events
    of steps 2..j exists, ``t1`` being the first step-1 event inside the window.
    """
    steps = rule.get("steps")
    if not isinstance(steps, list) or len(steps) < 2:
        raise InvalidDefinition(f"a funnel needs at least two steps: {rule!r}")
    n = len(steps)
    reached = rule.get("reached", n)
    not_reached = rule.get("not_reached")
    if not 1 <= reached <= n or (not_reached is not None and not reached < not_reached <= n):
        raise InvalidDefinition(f"reached / not_reached out of range: {rule!r}")
    tests = [_event_predicate(step.get("where"), data) for step in steps]
    in_window = window_predicate(rule.get("window"), data.as_of)
    within = rule.get("within")

    selected = set()
    for uid in data.user_ids:
        times = [
            sorted(e.time for e in data.events[uid] if e.name == step["event"] and test(e))
            for step, test in zip(steps, tests, strict=True)
        ]
        entries = [t for t in times[0] if in_window(t)]
        if not entries:
            continue
        start = min(entries)  # later step-1 events are no second attempt
        deadline = shift(start, int(within["value"]), within["unit"]) if within else None

        def reaches(
            step: int, times: list = times, start: dt.datetime = start, end: Any = deadline
        ) -> bool:
            """Step ``step`` (from 1) is reached: some strictly increasing chain of events of
            steps 2..step follows ``start``, none after ``end``. ``ends`` holds every time at
            which a chain through step j can end (all of them, not only the earliest)."""
            ends = {start}
            for j in range(1, step):
                ends = {
                    t for t in times[j] if (end is None or t <= end) and any(p < t for p in ends)
                }
            return bool(ends)

        if reaches(reached) and (not_reached is None or not reaches(not_reached)):
            selected.add(uid)
    return selected
