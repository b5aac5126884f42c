"""Random small datasets and random valid format-1 definitions, for hypothesis or for a plain seed.

The same generator code runs on two sources of choices: a :class:`SeededPicker`
(``random.Random``; what a backend conformance suite uses:
``random_scenario(seed)``) and a :class:`HypothesisPicker` (``st.data()``
draws, so hypothesis can shrink a failing case: ``scenarios()``).

The data is built to hit the edges of the spec: NULL and empty strings, case
variants, the characters ``% _ | + * \\ ' "``, events at the same instant and
exactly on window boundaries relative to ``as_of``, events after ``as_of``,
events of unknown users, identity merges, dangling account ids.

With ``point_in_time=True`` a scenario also carries ``users.joined_at`` and user and
account history tables (snapshots or changes form) whose rows start and end exactly
on ``as_of`` (and on a second, earlier moment), one microsecond either side, overlap,
tie, run backwards or set only some traits. Without it (the default), a seed draws
exactly the data it always drew.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pandas as pd
import pyarrow as pa

T = TypeVar("T")

UNITS = ("hour", "day", "week", "month")
MAIN_EVENTS = ("Session", "Pageview", "Completed Order")
RARE_EVENTS = ("Add to Cart", "Sign Up")
EVENT_NAMES = MAIN_EVENTS + RARE_EVENTS
NEVER_SEEN = "Never Seen"
# Window lengths, offsets and event placements share these small multiples, so that
# events fall exactly on window edges often.
STEPS = (0, 1, 2, 3, 4, 5, 7, 10)

ASCII_STRINGS = (
    "trial",
    "Trial",
    "TRIAL",
    "paid",
    "free",
    "",
    " trial",
    "trial ",
    "50%_off",
    "50% off",
    "5000ff",
    "a_b",
    "axb",
    "a|b",
    "c+d",
    "x*y",
    "back\\slash",
    "it's",
    'say "hi"',
    "ann@gmail.com",
    "BOB@Yahoo.com",
    "cy@hotmail.com",
    "/pricing",
    "/Pricing/team",
    "/docs/pricing?x=1",
)
UNICODE_STRINGS = ("Émile", "émile", "naïve")

AS_OF_CHOICES = (
    dt.datetime(2024, 3, 31, 12, 34, 56),  # month end after a leap February
    dt.datetime(2023, 3, 31, 0, 0, 0),  # midnight, month end after a plain February
    dt.datetime(2024, 1, 1, 0, 0, 0),  # a Monday: ISO week and year boundary
    dt.datetime(2024, 5, 15, 8, 0, 0, 250000),  # fractional seconds
    dt.datetime(2024, 12, 30, 23, 59, 59),  # ISO week 2025-W01 starts on this Monday
    dt.datetime(2024, 2, 29, 18, 0, 0),  # a leap day
)


class Picker(Protocol):
    """Where the generator's choices come from."""

    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class SeededPicker:
    """Choices from ``random.Random(seed)``: reproducible, no shrinking."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]


class HypothesisPicker:
    """Choices drawn from hypothesis (``st.data()`` or a composite's ``draw``): they shrink."""

    def __init__(self, draw: Any) -> None:
        from hypothesis import strategies as st

        self._draw = draw
        self._st = st

    def integer(self, low: int, high: int) -> int:
        return self._draw(self._st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(self._st.sampled_from(list(options)))


def chance(pick: Picker, percent: int) -> bool:
    """True with the given probability; shrinks towards False."""
    return pick.integer(0, 99) >= 100 - percent


# --------------------------------------------------------------------------- calendar helpers


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Calendar month arithmetic with the day clamped to the month's end."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def period_start(moment: dt.datetime, unit: str) -> dt.datetime:
    """The start of the UTC hour, day, ISO week (Monday) or month holding ``moment``."""
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = dt.datetime(moment.year, moment.month, moment.day)
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def step(moment: dt.datetime, n: int, unit: str) -> dt.datetime:
    if unit == "month":
        return add_months(moment, n)
    hours = {"hour": 1, "day": 24, "week": 168}[unit]
    return moment + dt.timedelta(hours=hours * n)


# --------------------------------------------------------------------------- datasets


@dataclass
class Scenario:
    """A dataset, an ``as_of`` and saved segments to reference; pandas frames throughout.

    ``as_of`` is naive UTC; ``as_of_arg`` is the same instant as the engine is
    given it (sometimes zoned, sometimes an ISO string). ``focus_unit`` is the
    unit most event placements, windows and ``within`` spans of this scenario use.
    """

    users: pd.DataFrame
    events: pd.DataFrame
    accounts: pd.DataFrame
    migrations: pd.DataFrame | None
    as_of: dt.datetime
    as_of_arg: Any
    focus_unit: str = "day"
    segments: dict[str, dict | list] = field(default_factory=dict)
    # Point in time: joining on or off, history tables (None: none), and more moments worth
    # evaluating at (their boundaries are in the data as well as as_of's).
    joining: bool = True
    user_history: pd.DataFrame | None = None
    account_history: pd.DataFrame | None = None
    moments: list[dt.datetime] = field(default_factory=list)

    @property
    def point_in_time(self) -> dict[str, Any]:
        """The reference's point-in-time keyword arguments (``reference.load``)."""
        return {
            "joining": self.joining,
            "user_history": self.user_history,
            "account_history": self.account_history,
        }

    @property
    def user_kinds(self) -> dict[str, str]:
        return {
            "plan": "string",
            "email": "string",
            "ltv": "number",
            "visits": "number",
            "opt_in": "boolean",
            "signup": "date",
            "seen": "timestamp",
            "account_id": "string",
        }

    @property
    def account_kinds(self) -> dict[str, str]:
        return {"tier": "string", "seats": "number"}

    @property
    def event_kinds(self) -> dict[str, str]:
        return {
            "path": "string",
            "coupon": "string",
            "revenue": "number",
            "quantity": "number",
            "shipped": "timestamp",
        }

    def samples(self, table: str, column: str) -> list:
        """The non-NULL values of a column, for rule values that hit real data."""
        frame = {"user": self.users, "account": self.accounts, "event_property": self.events}[table]
        history = {"user": self.user_history, "account": self.account_history}.get(table)
        values = frame[column].tolist()
        if history is not None and column in history.columns:
            values += history[column].tolist()  # values at as_of come from the history
        return [v for v in values if v is not None and not pd.isna(v)]


def _string(pick: Picker, unicode: bool, null_percent: int = 15) -> str | None:
    if chance(pick, null_percent):
        return None
    if chance(pick, 10):
        return ""
    pool = ASCII_STRINGS + (UNICODE_STRINGS if unicode else ())
    return pick.choice(pool)


def _quarter(pick: Picker, low: int, high: int) -> float:
    """A multiple of 0.25: sums and averages stay exact in binary floating point."""
    return pick.integer(low * 4, high * 4) / 4


def _unit(pick: Picker, focus: str) -> str:
    """Mostly the scenario's focus unit, sometimes any unit."""
    return focus if chance(pick, 65) else pick.choice(UNITS)


def _moment(
    pick: Picker, as_of: dt.datetime, focus: str, earlier: Sequence[dt.datetime] = ()
) -> dt.datetime:
    """An instant near as_of, often exactly on a boundary a rule may test."""
    nudge = dt.timedelta(seconds=pick.choice((0, 0, 0, -1, 1)))
    how = pick.integer(0, 19)
    if how < 2 and earlier:
        return pick.choice(earlier)  # the same instant as another event
    if how < 8:
        return step(as_of, -pick.choice(STEPS), _unit(pick, focus)) + nudge
    if how < 10 and earlier:
        # a whole number of units after another event: on a `within` edge
        return step(pick.choice(earlier), pick.choice((1, 1, 2)), _unit(pick, focus)) + nudge
    if how < 11 and earlier:
        # just before or at the start of another event's calendar period: straddles it
        start = period_start(pick.choice(earlier), _unit(pick, focus))
        return start + dt.timedelta(seconds=pick.choice((0, -1)))
    if how < 13:
        # around a Monday 00:00 / midnight / month start: calendar period boundaries
        day = (as_of - dt.timedelta(days=pick.integer(0, 90))).date()
        anchor = pick.choice((day - dt.timedelta(days=day.weekday()), day, day.replace(day=1)))
        midnight = dt.datetime(anchor.year, anchor.month, anchor.day)
        return midnight + dt.timedelta(seconds=pick.choice((0, -1, 1, 3600, -3600)))
    if how < 14:
        return as_of + dt.timedelta(minutes=pick.integer(1, 60 * 24 * 10))  # after as_of
    span = (
        100 * 86400 if chance(pick, 50) else int((as_of - step(as_of, -12, focus)).total_seconds())
    )
    return as_of - dt.timedelta(seconds=pick.integer(0, span))


def _time_column(values: list[dt.datetime | None], tz_aware: bool) -> pd.Series:
    series = pd.Series(values, dtype="datetime64[us]")
    return series.dt.tz_localize("UTC") if tz_aware else series


def make_scenario(
    pick: Picker,
    max_users: int = 25,
    max_events: int = 250,
    unicode: bool = True,
    with_segments: bool = True,
    point_in_time: bool = False,
    history_forms: tuple[str | None, str | None] | None = None,
    joining: bool | None = None,
) -> Scenario:
    """Draw a whole scenario: users, accounts, events, migrations, as_of, saved segments.

    ``point_in_time`` adds joined_at, histories and a second as_of, drawn after everything
    else: the rest of the scenario is the one the same choices draw without it.
    ``history_forms`` (user, account: ``"snapshots"``, ``"changes"`` or None for no table)
    and ``joining`` impose what is otherwise drawn.
    """
    as_of = pick.choice(AS_OF_CHOICES)
    focus = pick.choice(("day", "hour", "week", "month"))
    tz_aware = chance(pick, 30)
    int_ids = chance(pick, 30)

    n_users = pick.integer(1, max_users)
    user_ids: list[Any] = (
        list(range(1, n_users + 1)) if int_ids else [f"u{i:02d}" for i in range(n_users)]
    )
    n_accounts = pick.integer(1, 4)
    account_ids = [f"acc{i}" for i in range(n_accounts)]

    rows = []
    for i in range(n_users):
        # Row 0 always has values so that every column's type can be inferred.
        nulls = 0 if i == 0 else 15
        signup = as_of.date() - dt.timedelta(days=pick.integer(-3, 120))
        seen = _moment(pick, as_of, focus)
        rows.append(
            {
                "plan": _string(pick, unicode, nulls),
                "email": _string(pick, unicode, nulls),
                "ltv": None if chance(pick, nulls) else _quarter(pick, -10, 200),
                "visits": None if chance(pick, nulls) else pick.integer(0, 20),
                "opt_in": None if chance(pick, nulls) else chance(pick, 50),
                "signup": None if chance(pick, nulls) else signup,
                "seen": None if chance(pick, nulls) else seen,
                "account_id": None
                if chance(pick, nulls)
                else pick.choice([*account_ids, "acc-dangling"]),
            }
        )
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "plan": pd.Series([r["plan"] for r in rows], dtype="object"),
            "email": pd.Series([r["email"] for r in rows], dtype="object"),
            "ltv": pd.Series([r["ltv"] for r in rows], dtype="Float64"),
            "visits": pd.Series([r["visits"] for r in rows], dtype="Int64"),
            "opt_in": pd.Series([r["opt_in"] for r in rows], dtype="boolean"),
            "signup": pd.Series([r["signup"] for r in rows], dtype="object"),
            "seen": _time_column([r["seen"] for r in rows], tz_aware),
            "account_id": pd.Series([r["account_id"] for r in rows], dtype="object"),
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": account_ids,
            "tier": pd.Series(
                [
                    pick.choice(("gold", "Gold", "silver", "", "platinum"))
                    if i == 0 or not chance(pick, 20)
                    else None
                    for i in range(n_accounts)
                ],
                dtype="object",
            ),
            "seats": pd.Series(
                [
                    pick.integer(1, 50) if i == 0 or not chance(pick, 20) else None
                    for i in range(n_accounts)
                ],
                dtype="Int64",
            ),
        }
    )

    migrations = None
    anon_ids: list[Any] = []
    if chance(pick, 40):
        n_migrations = pick.integer(1, 3)
        sources: list[Any] = []
        targets: list[Any] = []
        for k in range(n_migrations):
            if chance(pick, 20) and n_users > 1:
                source = user_ids[-1 - k % n_users]  # a merged user still in users
            else:
                source = 1000 + k if int_ids else f"anon{k}"
            if source in sources:
                continue
            target = pick.choice(user_ids)
            if target == source:
                continue
            sources.append(source)
            targets.append(target)
            anon_ids.append(source)
        if sources:
            migrations = pd.DataFrame({"from_user_id": sources, "to_user_id": targets})
    ghost = 9999 if int_ids else "ghost"

    # Sparse data makes single events decisive (a lone event on a window's edge).
    per_user = pick.choice((2, 1, 4, 10))
    n_events = pick.integer(0, min(max_events, per_user * n_users))
    times: list[dt.datetime] = []
    times_of: dict[Any, list[dt.datetime]] = {}
    event_rows = []
    for _ in range(n_events):
        who = pick.integer(0, 19)
        if who == 0:
            uid = ghost  # an event of nobody in users: ignored
        elif who <= 2 and anon_ids:
            uid = pick.choice(anon_ids)
        else:
            uid = pick.choice(user_ids)
        # Pairs, same instants and straddled periods matter within one user's events.
        own = times_of.setdefault(uid, [])
        moment = _moment(pick, as_of, focus, own if own and chance(pick, 85) else times)
        own.append(moment)
        times.append(moment)
        event_rows.append(
            {
                "user_id": uid,
                "time": moment,
                "event": _event_name(pick),
                "path": _string(pick, unicode, 40),
                "coupon": None
                if chance(pick, 60)
                else pick.choice(("SAVE10", "save10", "", "50%_off", "a|b")),
                "revenue": None if chance(pick, 40) else _quarter(pick, -5, 60),
                "quantity": None if chance(pick, 40) else pick.integer(0, 5),
                "shipped": None if chance(pick, 60) else _moment(pick, as_of, focus, times),
            }
        )
    events = pd.DataFrame(
        {
            "user_id": pd.Series(
                [r["user_id"] for r in event_rows], dtype="int64" if int_ids else "object"
            ),
            "time": _time_column([r["time"] for r in event_rows], tz_aware),
            "event": pd.Series([r["event"] for r in event_rows], dtype="object"),
            "path": pd.Series([r["path"] for r in event_rows], dtype="object"),
            "coupon": pd.Series([r["coupon"] for r in event_rows], dtype="object"),
            "revenue": pd.Series([r["revenue"] for r in event_rows], dtype="Float64"),
            "quantity": pd.Series([r["quantity"] for r in event_rows], dtype="Int64"),
            "shipped": _time_column([r["shipped"] for r in event_rows], tz_aware),
        }
    )
    # Give string columns of an empty or all-NULL event table a type ibis can infer.
    for name in ("path", "coupon", "event") + (() if int_ids else ("user_id",)):
        if events[name].isna().all():
            events[name] = events[name].astype("string")

    scenario = Scenario(
        users=users,
        events=events,
        accounts=accounts,
        migrations=migrations,
        as_of=as_of,
        as_of_arg=_as_of_arg(pick, as_of),
        focus_unit=focus,
    )
    if with_segments:
        scenario.segments = _saved_segments(pick, scenario)
    if point_in_time:
        _add_point_in_time(
            pick, scenario, unicode, tz_aware, int_ids, account_ids, history_forms, joining
        )
    return scenario


def _event_name(pick: Picker) -> str:
    return pick.choice(MAIN_EVENTS) if chance(pick, 85) else pick.choice(RARE_EVENTS)


def _as_of_arg(pick: Picker, as_of: dt.datetime) -> Any:
    how = pick.integer(0, 3)
    if how == 1:
        return as_of.replace(tzinfo=dt.timezone.utc)
    if how == 2:
        zone = dt.timezone(dt.timedelta(hours=-5))
        return as_of.replace(tzinfo=dt.timezone.utc).astimezone(zone)
    if how == 3:
        return as_of.isoformat()
    return as_of


def _saved_segments(pick: Picker, scenario: Scenario) -> dict[str, dict | list]:
    segments: dict[str, dict | list] = {}
    ids = scenario.users["user_id"].tolist()
    frozen = [uid for uid in ids if chance(pick, 40)]
    frozen.append(8888 if isinstance(ids[0], int) else "left-users")
    segments["static-a"] = frozen
    # Each dynamic segment may reference only those made before it: no cycles.
    segments["dyn-a"] = make_definition(pick, scenario, max_depth=1, segment_ids=["static-a"])
    segments["dyn-b"] = make_definition(
        pick, scenario, max_depth=2, segment_ids=["static-a", "dyn-a"]
    )
    return segments


# --------------------------------------------------------------------------- point in time

MICROSECOND = dt.timedelta(microseconds=1)
# Users columns a user history may track (everything but user_id), and account columns.
USER_TRACKABLE = ("plan", "email", "ltv", "visits", "opt_in", "signup", "seen", "account_id")
ACCOUNT_TRACKABLE = ("tier", "seats")
TIERS = ("gold", "Gold", "silver", "", "platinum")


def _pit_moment(pick: Picker, anchors: Sequence[dt.datetime], focus: str) -> dt.datetime:
    """An instant for joined_at or a history row: often exactly on an anchor (an as_of the
    scenario is evaluated at) or one microsecond either side, else anywhere near as_of."""
    how = pick.integer(0, 9)
    anchor = pick.choice(anchors)
    if how < 4:
        return anchor + pick.choice((dt.timedelta(0), dt.timedelta(0), MICROSECOND, -MICROSECOND))
    if how < 5:
        return anchor + dt.timedelta(seconds=pick.choice((1, -1)))
    return _moment(pick, anchors[0], focus)


def _joined_at(
    pick: Picker, scenario: Scenario, anchors: Sequence[dt.datetime], tz_aware: bool
) -> pd.Series:
    """users.joined_at: some NULL, some after as_of, some on an anchor or 1 µs after it;
    sometimes a date column (its midnight UTC: on an anchor that is a midnight)."""
    dates = chance(pick, 15)
    values: list[Any] = []
    for _ in range(len(scenario.users)):
        if chance(pick, 30):
            values.append(None)
            continue
        moment = _pit_moment(pick, anchors, scenario.focus_unit)
        values.append(
            moment.date() + dt.timedelta(days=pick.choice((0, 0, 1))) if dates else moment
        )
    if dates:
        return pd.Series(values, dtype=pd.ArrowDtype(pa.date32()))
    return _time_column(values, tz_aware)


def _user_value(
    pick: Picker, column: str, scenario: Scenario, unicode: bool, account_ids: Sequence[str]
) -> Any:
    """A value of a users column for a history row (NULL sometimes: "not set" in changes)."""
    if chance(pick, 15):
        return None
    as_of, focus = scenario.as_of, scenario.focus_unit
    if column in ("plan", "email"):
        return _string(pick, unicode, 0)
    if column == "ltv":
        return _quarter(pick, -10, 200)
    if column == "visits":
        return pick.integer(0, 20)
    if column == "opt_in":
        return chance(pick, 50)
    if column == "signup":
        return as_of.date() - dt.timedelta(days=pick.integer(-3, 120))
    if column == "seen":
        return _moment(pick, as_of, focus)
    return pick.choice([*account_ids, "acc-dangling"])


def _account_value(pick: Picker, column: str) -> Any:
    if chance(pick, 15):
        return None
    return pick.choice(TIERS) if column == "tier" else pick.integer(1, 50)


def _history_rows(
    pick: Picker,
    keys: Sequence[Any],
    form: str,
    anchors: Sequence[dt.datetime],
    focus: str,
    value_of: Any,
) -> list[dict]:
    """History rows for ``keys``: ``value_of()`` draws one row's property values.

    Snapshots: chains (valid_to = the next valid_from), open rows, overlapping rows, rows that
    end on an anchor, rows ending before they start, rows sharing a valid_from. Changes: rows
    that set some traits only (NULL: not set), rows at the same instant.
    """
    rows: list[dict] = []
    for key in keys:
        n = pick.choice((0, 1, 1, 2, 2, 3, 4))
        starts = sorted(_pit_moment(pick, anchors, focus) for _ in range(n))
        for k, start in enumerate(starts):
            if form == "changes":
                rows.append({"key": key, "time": start, **value_of(partial=True)})
                if chance(pick, 10):
                    rows.append({"key": key, "time": start, **value_of(partial=True)})  # a tie
                continue
            how = pick.integer(0, 9)
            if how < 4 and k + 1 < n:
                end: dt.datetime | None = starts[k + 1]
            elif how < 6:
                end = None
            elif how < 7:
                end = start - dt.timedelta(seconds=pick.choice((1, 3600)))  # never matches
            elif how < 8:
                end = pick.choice(anchors) + pick.choice((dt.timedelta(0), MICROSECOND))
            else:
                end = step(start, pick.choice(STEPS[1:]), _unit(pick, focus))  # may overlap
            rows.append({"key": key, "valid_from": start, "valid_to": end, **value_of()})
            if chance(pick, 10):
                tie_end = end if chance(pick, 50) else None
                rows.append({"key": key, "valid_from": start, "valid_to": tie_end, **value_of()})
    return rows


def _history_frame(
    rows: list[dict],
    key: str,
    key_dtype: str,
    form: str,
    columns: dict[str, Any],
    extra: str,
    tz_aware: bool,
) -> pd.DataFrame:
    """Rows as a typed history table: the key, the form's columns, tracked ``columns`` (name ->
    dtype; a callable makes the series) and one ``extra`` column that is no property."""
    form_columns = ("valid_from", "valid_to") if form == "snapshots" else ("time",)
    frame = pd.DataFrame({key: pd.Series([r["key"] for r in rows], dtype=key_dtype)})
    for name in form_columns:
        frame[name] = _time_column([r.get(name) for r in rows], tz_aware)
    for name, dtype in columns.items():
        values = [r.get(name) for r in rows]
        frame[name] = dtype(values) if callable(dtype) else pd.Series(values, dtype=dtype)
    frame[extra] = pd.Series([f"x{i}" for i in range(len(rows))], dtype="string")
    return frame


def _add_point_in_time(
    pick: Picker,
    scenario: Scenario,
    unicode: bool,
    tz_aware: bool,
    int_ids: bool,
    account_ids: Sequence[str],
    forms: tuple[str | None, str | None] | None = None,
    joining: bool | None = None,
) -> None:
    """Give ``scenario`` joined_at, a user history, an account history and a second as_of.

    ``forms`` and ``joining`` override the drawn ones (the draws are made all the same).
    """
    as_of, focus = scenario.as_of, scenario.focus_unit
    earlier = step(as_of, -pick.choice((1, 2, 3)), focus)
    scenario.moments = [earlier]
    anchors = (as_of, earlier)
    scenario.joining = not chance(pick, 25)
    if joining is not None:
        scenario.joining = joining
    if chance(pick, 75):
        scenario.users["joined_at"] = _joined_at(pick, scenario, anchors, tz_aware)

    user_ids = scenario.users["user_id"].tolist()
    form = pick.choice(("snapshots", "changes", "snapshots", "changes", None))
    if forms is not None:
        form = forms[0]
    if form is not None:
        tracked = [c for c in USER_TRACKABLE if c != "account_id" and chance(pick, 40)]
        if chance(pick, 40):
            tracked.append("account_id")
        tracked = tracked or [pick.choice(USER_TRACKABLE)]

        def user_values(partial: bool = False) -> dict:
            return {
                c: _user_value(pick, c, scenario, unicode, account_ids)
                if not partial or chance(pick, 55)
                else None
                for c in tracked
            }

        ghost = 7777 if int_ids else "ghost-history"  # not a user: its rows are ignored
        rows = _history_rows(pick, [*user_ids, ghost], form, anchors, focus, user_values)
        dtypes: dict[str, Any] = {
            "plan": "string",
            "email": "string",
            "ltv": "Float64",
            "visits": "Int64",
            "opt_in": "boolean",
            "signup": pd.ArrowDtype(pa.date32()),
            "seen": lambda values: _time_column(values, tz_aware),
            "account_id": "string",
        }
        scenario.user_history = _history_frame(
            rows,
            "user_id",
            "int64" if int_ids else "string",
            form,
            {c: dtypes[c] for c in tracked},
            "dbt_scd_id" if form == "snapshots" else "context_ip",
            tz_aware,
        )

    form = pick.choice(("snapshots", "changes", None))
    if forms is not None:
        form = forms[1]
    if form is not None:
        tracked = [c for c in ACCOUNT_TRACKABLE if chance(pick, 60)] or ["tier"]

        def account_values(partial: bool = False) -> dict:
            return {
                c: _account_value(pick, c) if not partial or chance(pick, 55) else None
                for c in tracked
            }

        # acc-dangling is some users' account but no account: its rows are ignored.
        keys = [*account_ids, "acc-dangling"]
        rows = _history_rows(pick, keys, form, anchors, focus, account_values)
        scenario.account_history = _history_frame(
            rows,
            "account_id",
            "string",
            form,
            {c: {"tier": "string", "seats": "Int64"}[c] for c in tracked},
            "updated_by",
            tz_aware,
        )


def random_scenario(seed: int, **kwargs: Any) -> Scenario:
    """A reproducible scenario from a seed (for backend conformance suites)."""
    return make_scenario(SeededPicker(seed), **kwargs)


def random_definitions(scenario: Scenario, seed: int, n: int = 5, **kwargs: Any) -> list[dict]:
    """``n`` reproducible random definitions valid for ``scenario``."""
    pick = SeededPicker(seed * 7919 + 1)  # not the stream that drew the scenario
    return [make_definition(pick, scenario, **kwargs) for _ in range(n)]


# --------------------------------------------------------------------------- rule values


def _iso(pick: Picker, moment: dt.datetime, allow_date_only: bool = True) -> str:
    """An ISO-8601 spelling of a naive-UTC instant: plain, Z, a +02:00 offset, or a bare date."""
    how = pick.integer(0, 4)
    if how == 1:
        return moment.isoformat() + "Z"
    if how == 2:
        zone = dt.timezone(dt.timedelta(hours=2))
        return moment.replace(tzinfo=dt.timezone.utc).astimezone(zone).isoformat()
    if how == 3 and allow_date_only:
        return moment.date().isoformat()
    return moment.isoformat()


def _case_variant(pick: Picker, text: str) -> str:
    return pick.choice((text, text.upper(), text.lower(), text.swapcase()))


def _substring(pick: Picker, text: str) -> str:
    if not text:
        return "a"
    start = pick.integer(0, len(text) - 1)
    end = pick.integer(start + 1, len(text))
    return text[start:end]


def _escape(piece: str) -> str:
    out = piece.replace("\\", "\\\\")
    for char in "|+*":
        out = out.replace(char, "\\" + char)
    return out


def contains_pattern(pick: Picker, samples: list[str]) -> str:
    """A valid contains pattern: alternatives of parts of pieces joined by ``*``, escaped."""
    pool = [s for s in samples if s] or ["trial"]
    alternatives = []
    for _ in range(pick.integer(1, 3) if chance(pick, 40) else 1):
        parts = []
        for _ in range(pick.integer(1, 2) if chance(pick, 30) else 1):
            pieces = [
                _escape(_case_variant(pick, _substring(pick, pick.choice(pool))))
                for _ in range(pick.integer(1, 2) if chance(pick, 30) else 1)
            ]
            if chance(pick, 15):
                pieces.insert(0, "")  # a leading *
            parts.append("*".join(pieces))
        alternatives.append("+".join(parts))
    return "|".join(alternatives)


def _number_value(pick: Picker, samples: list) -> float | int:
    if samples and chance(pick, 60):
        value = pick.choice(samples)
        return value + pick.choice((0, 0, 0.25, -1))
    return pick.choice((_quarter(pick, -10, 200), pick.integer(-2, 20)))


def _property_rule(pick: Picker, scenario: Scenario, table: str, kind_name: str) -> dict:
    kinds = {
        "user": scenario.user_kinds,
        "account": scenario.account_kinds,
        "event_property": scenario.event_kinds,
    }[table]
    column = pick.choice(sorted(kinds))
    kind = kinds[column]
    samples = scenario.samples(table, column)
    rule: dict[str, Any] = {"kind": kind_name, "field": column}
    ops = {
        "string": (
            "=",
            "!=",
            "in",
            "not in",
            "contains",
            "not contains",
            "begins with",
            "ends with",
            "is set",
            "is not set",
        ),
        "number": (
            "=",
            "!=",
            "in",
            "not in",
            "<",
            "<=",
            ">",
            ">=",
            "between",
            "not between",
            "is set",
            "is not set",
        ),
        "boolean": ("=", "!=", "in", "not in", "is set", "is not set"),
        "date": (
            "=",
            "!=",
            "in",
            "not in",
            "<",
            "<=",
            ">",
            ">=",
            "between",
            "not between",
            "in last",
            "more than ago",
            "is set",
            "is not set",
        ),
        "timestamp": (
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "between",
            "not between",
            "in last",
            "more than ago",
            "is set",
            "is not set",
        ),
    }[kind]
    if kind in ("date", "timestamp") and chance(pick, 35):
        op = pick.choice(("in last", "more than ago"))  # relative to as_of: worth more tries
    else:
        op = pick.choice(ops)
    rule["operator"] = op
    if op in ("is set", "is not set"):
        return rule
    if op in ("in last", "more than ago"):
        rule["value"] = pick.choice(STEPS[1:])
        rule["unit"] = _unit(pick, scenario.focus_unit)
        if chance(pick, 50):
            # On a value exactly n units before as_of (a date counts as its midnight).
            edge = _edge_on(pick, scenario, samples)
            if edge is not None:
                rule["value"], rule["unit"] = edge
        return rule

    def one() -> Any:
        if kind == "string":
            strings = [s for s in samples if s] or ["trial"]
            value = (
                pick.choice(strings)
                if chance(pick, 70)
                else pick.choice([s for s in ASCII_STRINGS if s])
            )
            if op in ("begins with", "ends with"):
                value = _substring(pick, value) if chance(pick, 30) else value
                cut = pick.integer(1, len(value))
                value = value[:cut] if op == "begins with" else value[-cut:]
                return _case_variant(pick, value)
            return value if chance(pick, 60) else _case_variant(pick, value)
        if kind == "number":
            return _number_value(pick, samples)
        if kind == "boolean":
            return chance(pick, 50)
        if kind == "date":
            base = pick.choice(samples) if samples else scenario.as_of.date()
            return (base + dt.timedelta(days=pick.choice((0, 0, 1, -1)))).isoformat()
        moment = (
            pick.choice(samples)
            if samples and chance(pick, 70)
            else _moment(pick, scenario.as_of, scenario.focus_unit)
        )
        moment = _naive(moment) + dt.timedelta(seconds=pick.choice((0, 0, 1, -1)))
        return _iso(pick, moment, allow_date_only=op not in ("=", "!="))

    if op in ("contains", "not contains"):
        rule["value"] = contains_pattern(pick, [s for s in samples if isinstance(s, str)])
    elif op in ("in", "not in"):
        rule["value"] = [one() for _ in range(pick.integer(1, 3))]
    elif op in ("between", "not between"):
        low, high = one(), one()
        if chance(pick, 85):
            low, high = _ordered(low, high)
        rule["value"] = [low, high]
    else:
        rule["value"] = one()
    return rule


def _ordered(low: Any, high: Any) -> tuple[Any, Any]:
    def key(value: Any) -> Any:
        if isinstance(value, str):
            moment = pd.Timestamp(value)
            return moment.tz_convert("UTC").tz_localize(None) if moment.tzinfo else moment
        return value

    return (low, high) if key(low) <= key(high) else (high, low)


# --------------------------------------------------------------------------- event rules


def _edge_on(pick: Picker, scenario: Scenario, instants: list[Any]) -> tuple[int, str] | None:
    """``(n, unit)`` with ``as_of - n·unit`` exactly on one of ``instants``, if any is.

    For dates, "on" means the edge falls on that calendar day (where reading a date as
    its midnight and reading it as a whole day part ways).
    """

    def on(edge: dt.datetime, value: Any) -> bool:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return edge.date() == value
        return edge == _naive(value)

    edges = {
        (n, unit)
        for value in instants
        for unit in UNITS
        for n in STEPS[1:]
        if on(step(scenario.as_of, -n, unit), value)
    }
    return pick.choice(sorted(edges)) if edges else None


def _window(pick: Picker, scenario: Scenario) -> dict:
    how = pick.integer(0, 3)
    unit = _unit(pick, scenario.focus_unit)
    if how <= 1:
        window: dict[str, Any] = {"last": pick.choice(STEPS[1:]), "unit": unit}
        edge = (
            _edge_on(pick, scenario, scenario.events["time"].tolist()) if chance(pick, 40) else None
        )
        if edge is not None:
            # The window starts (or, with an offset, ends) exactly on an event.
            window["last"], window["unit"] = edge
            if how == 1 and edge[0] > 1:
                offset = pick.integer(1, edge[0] - 1)
                window["last"], window["offset"] = edge[0] - offset, offset
                if chance(pick, 50):
                    window["last"], window["offset"] = pick.choice(STEPS[1:5]), edge[0]
            return window
        if how == 1:
            window["offset"] = pick.choice(STEPS[1:5])
        return window
    times = sorted(_naive(t) for t in scenario.events["time"].tolist())
    if len(times) >= 2 and chance(pick, 50):
        # Both ends on event times: the half-open [from, to) is tested at its edges.
        i = pick.integer(0, len(times) - 2)
        start, end = times[i], times[pick.integer(i + 1, len(times) - 1)]
    else:
        start = _moment(pick, scenario.as_of, scenario.focus_unit)
        end = step(start, pick.choice(STEPS[1:]), unit)
    window = {}
    if chance(pick, 80):
        window["from"] = _iso(pick, start)
    if end > start and (chance(pick, 70) or not window):
        # No bare date for "to": truncating it could put it before "from".
        window["to"] = _iso(pick, end, allow_date_only="from" not in window)
    if not window:
        window["from"] = _iso(pick, start)
    return window


def _naive(moment: Any) -> dt.datetime:
    """A pandas/Python instant as a naive UTC datetime."""
    moment = pd.Timestamp(moment)
    if moment.tzinfo is not None:
        moment = moment.tz_convert("UTC").tz_localize(None)
    return moment.to_pydatetime()


def _where(pick: Picker, scenario: Scenario, depth: int = 1) -> dict:
    rules: list[dict] = []
    for _ in range(pick.integer(1, 3)):
        if depth > 0 and chance(pick, 20):
            rules.append(_where(pick, scenario, depth - 1))
        else:
            rules.append(_property_rule(pick, scenario, "event_property", "event_property"))
    group: dict[str, Any] = {"combinator": pick.choice(("and", "or")), "rules": rules}
    if chance(pick, 20):
        group["not"] = True
    return group


def _count(pick: Picker, scenario: Scenario) -> dict:
    op = pick.choice(("=", "!=", "<", "<=", ">", ">=", "between"))
    count: dict[str, Any] = {"operator": op}
    if op == "between":
        low = pick.integer(0, 3)
        count["value"] = [low, low + pick.integer(0, 3)]
    else:
        count["value"] = pick.integer(0, 4)
    if chance(pick, 50):
        count["unit"] = _unit(pick, scenario.focus_unit)
        if op != "between" and chance(pick, 50):
            count["value"] = 2  # one period or two: where calendar boundaries show
    return count


def _aggregate(pick: Picker, scenario: Scenario) -> dict:
    fn = pick.choice(("sum", "avg", "min", "max", "count_distinct"))
    if fn == "count_distinct":
        prop = pick.choice(("path", "coupon", "revenue", "quantity"))
        value_of = lambda: pick.integer(0, 3)  # noqa: E731
    else:
        prop = pick.choice(("revenue", "quantity"))
        samples = scenario.samples("event_property", prop)
        value_of = lambda: _number_value(pick, samples)  # noqa: E731
    op = pick.choice(("=", "!=", "<", "<=", ">", ">=", "between"))
    value: Any = list(_ordered(value_of(), value_of())) if op == "between" else value_of()
    return {"fn": fn, "field": prop, "operator": op, "value": value}


def _event_rule(pick: Picker, scenario: Scenario) -> dict:
    name = _event_name(pick) if not chance(pick, 3) else NEVER_SEEN
    rule: dict[str, Any] = {"kind": "event", "event": name}
    did = not chance(pick, 30)
    if not did or chance(pick, 30):
        rule["did"] = did
    if chance(pick, 60):
        rule["window"] = _window(pick, scenario)
    if chance(pick, 30):
        rule["where"] = _where(pick, scenario)
    if chance(pick, 25):
        then: dict[str, Any] = {"event": _event_name(pick)}
        if chance(pick, 60):
            unit = _unit(pick, scenario.focus_unit)
            then["within"] = {"value": pick.choice((1, 1, 2, 3)), "unit": unit}
        if chance(pick, 25):
            then["where"] = _where(pick, scenario, depth=0)
        rule["then"] = then
        return rule
    if not did:
        return rule
    if chance(pick, 50):
        rule["count"] = _count(pick, scenario)
    if chance(pick, 30):
        rule["aggregate"] = _aggregate(pick, scenario)
    if chance(pick, 15):
        rule["first_time"] = True
    return rule


def _walk(pick: Picker, scenario: Scenario, n: int) -> list[tuple[dt.datetime, str]]:
    """Up to ``n`` events of one user, in time order, mostly consecutive: steps that the data
    holds as a chain (or nearly: same instants, ties and gaps on a unit's edge)."""
    events = scenario.events
    if events.empty:
        return []
    uid = pick.choice(events["user_id"].tolist())
    mine = events[events["user_id"] == uid]
    order = sorted(zip((_naive(t) for t in mine["time"]), mine["event"], strict=True))
    i = pick.integer(0, len(order) - 1)
    walk = [order[i]]
    while len(walk) < n and i + 1 < len(order):
        i = pick.integer(i + 1, min(i + 2, len(order) - 1))
        walk.append(order[i])
    return walk


def funnel_rule(pick: Picker, scenario: Scenario) -> dict:
    """A random funnel rule: 2 to 4 steps, often the names of one user's events in time
    order (so that chains exist), names repeated, ``where`` on some steps, ``within`` often
    exactly the chain's span (0 included), a window, ``reached`` / ``not_reached``."""
    n = pick.choice((2, 2, 3, 3, 4))
    walk = _walk(pick, scenario, n) if chance(pick, 70) else []
    names = [name for _, name in walk]
    while len(names) < n:
        if names and chance(pick, 25):
            names.append(pick.choice(names))  # Session -> Session needs a later Session
        else:
            names.append(_event_name(pick) if not chance(pick, 3) else NEVER_SEEN)
    steps: list[dict] = []
    for name in names:
        item: dict[str, Any] = {"event": name}
        if chance(pick, 20):
            item["where"] = _where(pick, scenario, depth=0)
        steps.append(item)
    rule: dict[str, Any] = {"kind": "funnel", "steps": steps}
    edges = [
        (value, unit)
        for unit in UNITS
        for value in STEPS
        if len(walk) > 1 and step(walk[0][0], value, unit) == walk[-1][0]
    ]
    if edges and chance(pick, 60):
        value, unit = pick.choice(edges)  # the last step exactly on the within limit
        rule["within"] = {"value": value, "unit": unit}
    elif chance(pick, 70):
        unit = _unit(pick, scenario.focus_unit)
        rule["within"] = {"value": pick.choice((0, 1, 1, 2, 3)), "unit": unit}
    if chance(pick, 50):
        rule["window"] = _window(pick, scenario)
    reached = pick.integer(1, n) if chance(pick, 60) else n
    if reached != n or chance(pick, 20):
        rule["reached"] = reached
    if reached < n and chance(pick, 50):
        rule["not_reached"] = pick.integer(reached + 1, n)
    return rule


def funnel_definition(pick: Picker, scenario: Scenario) -> dict:
    """A group around a random funnel rule: alone, beside another rule, or negated."""
    rules = [funnel_rule(pick, scenario)]
    if chance(pick, 30):
        other = (
            _property_rule(pick, scenario, "user", "user")
            if chance(pick, 50)
            else _event_rule(pick, scenario)
        )
        rules.append(other)
    group: dict[str, Any] = {"combinator": pick.choice(("and", "or")), "rules": rules}
    if chance(pick, 25):
        group["not"] = True
    return group


def random_funnel_definitions(scenario: Scenario, seed: int, n: int = 5) -> list[dict]:
    """``n`` reproducible definitions around funnel rules, valid for ``scenario`` (their own
    stream: the other random definitions of a seed stay what they were)."""
    pick = SeededPicker(seed * 6007 + 3)
    return [funnel_definition(pick, scenario) for _ in range(n)]


def funnel_cases(definitions: int = 6, **kwargs: Any) -> Any:
    """A hypothesis strategy of ``(scenario, [definition around a funnel rule, ...])`` pairs."""
    from hypothesis import strategies as st

    @st.composite
    def draw_case(draw: Any) -> tuple[Scenario, list[dict]]:
        pick = HypothesisPicker(draw)
        scenario = make_scenario(pick, **kwargs)
        return scenario, [funnel_definition(pick, scenario) for _ in range(definitions)]

    return draw_case()


# --------------------------------------------------------------------------- groups


def make_definition(
    pick: Picker,
    scenario: Scenario,
    max_depth: int = 3,
    segment_ids: Sequence[str] | None = None,
) -> dict:
    """A random valid format-1 group for ``scenario``."""
    if segment_ids is None:
        segment_ids = sorted(scenario.segments)
    return _group(pick, scenario, max_depth, list(segment_ids))


def _group(pick: Picker, scenario: Scenario, depth: int, segment_ids: list[str]) -> dict:
    rules: list[dict] = []
    # Mostly one or two rules: a rule's effect is then rarely masked by its siblings.
    for _ in range(pick.choice((1, 1, 2, 2, 3, 0, 4))):
        what = pick.integer(0, 9)
        if what == 0 and depth > 0:
            rules.append(_group(pick, scenario, depth - 1, segment_ids))
        elif what <= 3:
            rules.append(_property_rule(pick, scenario, "user", "user"))
        elif what == 4:
            rules.append(_property_rule(pick, scenario, "account", "account"))
        elif what == 5 and segment_ids:
            reference: dict[str, Any] = {"kind": "segment", "id": pick.choice(segment_ids)}
            if chance(pick, 40):
                reference["in"] = not chance(pick, 60)
            rules.append(reference)
        else:
            rules.append(_event_rule(pick, scenario))
    group: dict[str, Any] = {"combinator": pick.choice(("and", "or")), "rules": rules}
    if chance(pick, 20):
        group["not"] = True
    return group


def cases(definitions: int = 8, point_in_time_percent: int = 0, **kwargs: Any) -> Any:
    """A hypothesis strategy of ``(scenario, [definition, ...])`` pairs; that share of the
    scenarios is drawn with ``point_in_time=True``."""
    from hypothesis import strategies as st

    @st.composite
    def draw_case(draw: Any) -> tuple[Scenario, list[dict]]:
        pick = HypothesisPicker(draw)
        options = dict(kwargs)
        if point_in_time_percent:
            options["point_in_time"] = chance(pick, point_in_time_percent)
        scenario = make_scenario(pick, **options)
        return scenario, [make_definition(pick, scenario) for _ in range(definitions)]

    return draw_case()
