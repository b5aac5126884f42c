"""The same segments on DuckDB, PostgreSQL and PySpark: every backend selects the reference's users.

Each scenario (users, events, accounts, identity merges, saved dynamic and static segments; NULLs,
empty strings, case variants, ``% _ | + * \\``, events on window boundaries, zoned and naive
``as_of``, integer and string ids) is loaded into each backend; a battery of hand-written
definitions covering every rule kind, operator and window form, plus seeded random definitions,
is evaluated in batches (one query per batch through ``Dataset.membership``) and compared,
user by user, with the plain-Python reference evaluator of ``tests/reference.py``.

Point-in-time scenarios add ``users.joined_at`` and user and account history tables (snapshots
and changes form, under their own or mapped column names), with joining on and off. They are
checked at the scenario's as_of (where joined_at and history rows start and end exactly, or one
microsecond either side) and at an earlier as_of: memberships, counts with ``__total__`` (the
users who had joined) and the property values ``members`` gives at as_of.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest

import heapseg
from tests import reference, strategies
from tests.test_engine_vs_reference import DictResolver, property_mismatches, reference_data
from tests.test_reference import (  # noqa: F401  (re-collected here, run on every backend)
    ACCOUNTS,
    AS_OF,
    events_frame,
    reference_run,
    test_funnel_entry_window_and_as_of,
    test_funnel_repeated_step_name_and_merges,
    test_funnel_steps_boundaries,
    users_frame,
)

# Spark plans every query for seconds, so it gets fewer scenarios; the battery runs everywhere.
SCENARIO_SEEDS = {"duckdb": (3, 11, 29, 47), "postgres": (3, 11, 29, 47), "spark": (3, 11)}
RANDOM_DEFINITIONS = {"duckdb": 24, "postgres": 24, "spark": 8}
FUNNEL_DEFINITIONS = {"duckdb": 12, "postgres": 12, "spark": 4}
BATCH = 12
_MARKS = {"postgres": [pytest.mark.postgres], "spark": [pytest.mark.spark]}
CASES = [
    pytest.param(backend, seed, marks=_MARKS.get(backend, []), id=f"{backend}-{seed}")
    for backend, seeds in SCENARIO_SEEDS.items()
    for seed in seeds
]
# Point in time: (seed, user history form, account history form, joining, mapped names).
# Mapped: the tables have their own names and dbt-style column names, given through columns=;
# otherwise heapseg finds user_history / account_history by their default names.
PIT_SCENARIOS = {
    "snapshots-changes-mapped": (35, "snapshots", "changes", True, True),
    "changes-snapshots": (12, "changes", "snapshots", True, False),
    "snapshots-joining-off": (3, "snapshots", None, False, False),
    "changes-changes-mapped": (38, "changes", "changes", True, True),
}
PIT_BACKENDS = {
    "duckdb": tuple(PIT_SCENARIOS),
    "postgres": tuple(PIT_SCENARIOS),
    "spark": ("snapshots-changes-mapped", "changes-snapshots"),
}


@dataclass(frozen=True)
class PitPlan:
    """How much of the point-in-time battery a backend runs (Spark takes ~40 s a query)."""

    random_definitions: int = 16
    full_battery: bool = True  # the general battery too, at the scenario's as_of
    negative_twins: bool = True  # != and is set beside = and is not set
    batch: int = BATCH
    members_checks: int = 3  # members() property checks per as_of
    repeat_counts: bool = True  # counts twice (DuckDB reuses its SQL) and count() once
    # One as_of per scenario (the scenario's for the first, the earlier one for the next, ...):
    # both carry joined_at and history boundaries.
    one_as_of: bool = False


PIT_PLANS = {
    "duckdb": PitPlan(),
    "postgres": PitPlan(),
    "spark": PitPlan(
        random_definitions=4,
        full_battery=False,
        negative_twins=False,
        batch=16,
        members_checks=1,
        repeat_counts=False,
        one_as_of=True,
    ),
}
PIT_CASES = [
    pytest.param(backend, name, marks=_MARKS.get(backend, []), id=f"{backend}-{name}")
    for backend, names in PIT_BACKENDS.items()
    for name in names
]
MAPPED_FORM_COLUMNS = {
    "valid_from": "dbt_valid_from",
    "valid_to": "dbt_valid_to",
    "time": "received_at",
}


def _rule(kind: str, field: str, operator: str, value: Any = None, **extra: Any) -> dict:
    rule = {"kind": kind, "field": field, "operator": operator, **extra}
    if value is not None:
        rule["value"] = value
    return rule


def _and(*rules: dict, negate: bool = False) -> dict:
    group = {"combinator": "and", "rules": list(rules)}
    if negate:
        group["not"] = True
    return group


def _funnel(steps: tuple, within: int | None = None, unit: str = "day", **keys: Any) -> dict:
    """A funnel rule over ``steps`` (names or step objects), ``within`` units of step 1."""
    rule: dict[str, Any] = {
        "kind": "funnel",
        "steps": [{"event": step} if isinstance(step, str) else step for step in steps],
        **keys,
    }
    if within is not None:
        rule["within"] = {"value": within, "unit": unit}
    return rule


def battery(scenario: strategies.Scenario) -> list[dict]:
    """Hand-written definitions touching every operator, rule kind and window form."""
    as_of = scenario.as_of
    month_ago = strategies.step(as_of, -1, "month").isoformat()
    two_months_ago = strategies.step(as_of, -2, "month").isoformat()
    plan = next(iter(scenario.samples("user", "plan")), "trial")
    ltv = scenario.samples("user", "ltv") or [1.0]
    u, a, e = "user", "account", "event"
    where_path = {"combinator": "and", "rules": [_rule("event_property", "path", "contains", "a")]}
    last_30 = {"last": 30, "unit": "day"}
    defs = [
        # The three examples of the format spec.
        _and(
            _rule(u, "plan", "=", "trial"),
            {
                "kind": e,
                "event": "Session",
                "did": True,
                "first_time": True,
                "window": {"last": 90, "unit": "day"},
            },
        ),
        _and(
            {"kind": e, "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
            {"kind": e, "event": "Completed Order", "did": False},
        ),
        _and(
            _rule(u, "plan", "=", "paid"),
            {"kind": e, "event": "Session", "did": False, "window": {"last": 90, "unit": "day"}},
        ),
        # Property operators, positive and negative, on every column type.
        _and(_rule(u, "plan", "=", plan)),
        _and(_rule(u, "plan", "!=", plan)),
        _and(_rule(u, "plan", "in", [plan, "free"])),
        _and(_rule(u, "plan", "not in", [plan, "free"])),
        _and(_rule(u, "ltv", ">", ltv[0])),
        _and(_rule(u, "ltv", "<=", ltv[0])),
        _and(_rule(u, "visits", "between", [1, 5])),
        _and(_rule(u, "visits", "not between", [1, 5])),
        _and(_rule(u, "email", "contains", "gmail.com|yahoo")),
        _and(_rule(u, "email", "contains", "a*e+.")),
        _and(_rule(u, "email", "contains", "50%_|\\|x|\\+|\\*")),
        _and(_rule(u, "email", "not contains", "trial")),
        _and(_rule(u, "email", "begins with", "Tr")),
        _and(_rule(u, "email", "ends with", "_OFF")),
        _and(_rule(u, "email", "is set")),
        _and(_rule(u, "email", "is not set")),
        _and(_rule(u, "opt_in", "=", True)),
        _and(_rule(u, "opt_in", "!=", True)),
        _and(_rule(u, "signup", "in last", 2, unit="month")),
        _and(_rule(u, "signup", "more than ago", 3, unit="week")),
        _and(_rule(u, "seen", "in last", 36, unit="hour")),
        _and(_rule(u, "seen", ">=", month_ago)),
        _and(_rule(a, "tier", "=", "gold")),
        _and(_rule(a, "tier", "!=", "gold")),
        _and(_rule(a, "seats", "is not set")),
        # Behaviour: counts (0 takes part), distinct periods, aggregates, windows.
        _and({"kind": e, "event": "Pageview", "count": {"operator": "<", "value": 3}}),
        _and({"kind": e, "event": "Pageview", "count": {"operator": "between", "value": [2, 4]}}),
        _and(
            {"kind": e, "event": "Session", "count": {"operator": ">=", "value": 2, "unit": "day"}}
        ),
        _and(
            {"kind": e, "event": "Session", "count": {"operator": ">=", "value": 2, "unit": "week"}}
        ),
        _and(
            {"kind": e, "event": "Session", "count": {"operator": "=", "value": 1, "unit": "month"}}
        ),
        _and(
            {"kind": e, "event": "Pageview", "count": {"operator": ">", "value": 1, "unit": "hour"}}
        ),
        _and(
            {
                "kind": e,
                "event": "Completed Order",
                "aggregate": {"fn": "sum", "field": "revenue", "operator": ">=", "value": 20},
            }
        ),
        _and(
            {
                "kind": e,
                "event": "Completed Order",
                "aggregate": {"fn": "avg", "field": "revenue", "operator": "!=", "value": 10},
            }
        ),
        _and(
            {
                "kind": e,
                "event": "Add to Cart",
                "aggregate": {"fn": "count_distinct", "field": "path", "operator": "=", "value": 0},
            }
        ),
        _and(
            {
                "kind": e,
                "event": "Add to Cart",
                "aggregate": {
                    "fn": "max",
                    "field": "quantity",
                    "operator": "between",
                    "value": [2, 3],
                },
            }
        ),
        _and({"kind": e, "event": "Session", "window": {"last": 1, "unit": "month"}}),
        _and({"kind": e, "event": "Session", "window": {"last": 2, "unit": "week", "offset": 1}}),
        _and({"kind": e, "event": "Session", "window": {"from": two_months_ago, "to": month_ago}}),
        _and({"kind": e, "event": "Session", "window": {"from": month_ago}}),
        _and(
            {
                "kind": e,
                "event": "Pageview",
                "where": where_path,
                "window": {"last": 10, "unit": "day"},
            }
        ),
        _and({"kind": e, "event": "Pageview", "did": False, "where": where_path}),
        _and(
            {
                "kind": e,
                "event": "Session",
                "first_time": True,
                "window": {"last": 1, "unit": "month"},
            }
        ),
        # Sequences.
        _and(
            {
                "kind": e,
                "event": "Session",
                "then": {"event": "Completed Order", "within": {"value": 1, "unit": "day"}},
            }
        ),
        _and(
            {
                "kind": e,
                "event": "Add to Cart",
                "did": False,
                "then": {"event": "Completed Order", "within": {"value": 1, "unit": "month"}},
            }
        ),
        _and(
            {
                "kind": e,
                "event": "Pageview",
                "window": {"last": 2, "unit": "week"},
                "then": {"event": "Pageview"},
            }
        ),
        # Funnels: the chart's default, drop-offs, a repeated step, where, no deadline, not.
        _and(_funnel(("Session", "Add to Cart", "Completed Order"), 7, "day", window=last_30)),
        _and(
            _funnel(
                ("Session", "Pageview", "Completed Order"), 1, "month", reached=2, not_reached=3
            )
        ),
        _and(_funnel(("Session", "Session", "Pageview"), 1, "day", reached=2)),
        _and(
            _funnel(
                ({"event": "Pageview", "where": where_path}, "Completed Order"),
                window={"from": month_ago},
            )
        ),
        _and(_funnel(("Pageview", "Session"), 3, "hour", reached=1, not_reached=2), negate=True),
        _and(_funnel(("Session", "Completed Order"), 0, "hour", reached=1)),
        # Nesting, not, references to saved dynamic and static segments.
        {
            "combinator": "or",
            "not": True,
            "rules": [
                _rule(u, "plan", "=", "trial"),
                _and(
                    _rule(u, "ltv", ">", 10),
                    _rule(a, "tier", "in", ["gold", "silver"]),
                    negate=True,
                ),
            ],
        },
        _and({"kind": "segment", "id": "static-a"}),
        _and({"kind": "segment", "id": "static-a", "in": False}),
        _and({"kind": "segment", "id": "dyn-b"}, {"kind": "segment", "id": "dyn-a", "in": False}),
        {"combinator": "or", "rules": []},
    ]
    return defs


def _batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _mismatches(
    ds: heapseg.Dataset,
    data: reference._Data,
    definitions: list[dict],
    as_of_arg: Any,
    backend_name: str,
    batch_size: int = BATCH,
) -> list[str]:
    """Definitions whose members on the backend differ from the reference's, batch by batch."""
    mismatches = []
    for batch in _batches(definitions, batch_size):
        named = {f"d{i}": d for i, d in enumerate(batch)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
            table = ds.membership(named, as_of=as_of_arg).to_pandas()
        for name, definition in named.items():
            got = {_plain(v) for v in table.loc[table[name].astype(bool), "user_id"]}
            expected = {_plain(v) for v in reference.evaluate_loaded(definition, data)}
            if got != expected:
                mismatches.append(
                    f"as_of={data.as_of.isoformat()} {json.dumps(definition)}\n"
                    f"  only {backend_name}: {sorted(got - expected, key=str)}"
                    f"\n  only reference: {sorted(expected - got, key=str)}"
                )
    return mismatches


def _check_counts(
    ds: heapseg.Dataset,
    data: reference._Data,
    definitions: list[dict],
    as_of_arg: Any,
    repeat: bool = True,
) -> None:
    """Counts take their own path (on DuckDB, compiled SQL that is reused; elsewhere ibis's
    execute): every few definitions, references to saved segments included, must agree too,
    and ``__total__`` is the number of users at as_of."""
    picked = definitions[:: max(1, len(definitions) // 8)] + definitions[-3:]
    named = {f"d{i}": d for i, d in enumerate(picked)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        counts = ds.counts(named, as_of=as_of_arg)
        again = ds.counts(named, as_of=as_of_arg) if repeat else counts
        single = ds.count(picked[-1], as_of=as_of_arg) if repeat else None
    expected = {n: len(reference.evaluate_loaded(d, data)) for n, d in named.items()}
    expected["__total__"] = reference.total(data)
    assert counts == expected
    assert again == expected
    if single is not None:
        assert single == expected[f"d{len(picked) - 1}"]


@pytest.mark.parametrize(("backend_name", "seed"), CASES, indirect=["backend_name"])
def test_backend_selects_the_reference_users(
    seed: int, backend_name: str, load_tables: Callable[..., Any]
) -> None:
    scenario = strategies.random_scenario(seed, unicode=True)
    tables = {"users": scenario.users, "events": scenario.events, "accounts": scenario.accounts}
    if scenario.migrations is not None:
        tables["user_migrations"] = scenario.migrations
    con = load_tables(tables)
    ds = heapseg.connect(
        con,
        user_migrations="user_migrations" if scenario.migrations is not None else None,
        resolver=DictResolver(scenario.segments),
    )
    definitions = (
        battery(scenario)
        + strategies.random_definitions(scenario, seed, n=RANDOM_DEFINITIONS[backend_name])
        + strategies.random_funnel_definitions(scenario, seed, n=FUNNEL_DEFINITIONS[backend_name])
    )
    data = reference_data(scenario)
    mismatches = _mismatches(ds, data, definitions, scenario.as_of_arg, backend_name)
    assert not mismatches, f"{len(mismatches)} definitions differ on {backend_name}:\n" + "\n".join(
        mismatches
    )
    _check_counts(ds, data, definitions, scenario.as_of_arg)


def _sample(scenario: strategies.Scenario, table: str, column: str) -> Any:
    """A rule value for ``column`` that the data holds (history values first), or None."""
    kind = (scenario.user_kinds if table == "user" else scenario.account_kinds)[column]
    samples = scenario.samples(table, column)
    samples = [v for v in samples if not (kind == "string" and v == "")]
    if not samples:
        return None
    value = samples[len(samples) // 2]
    if kind == "timestamp":
        return strategies._naive(value).isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    return bool(value) if kind == "boolean" else value


def pit_battery(scenario: strategies.Scenario, negative_twins: bool = True) -> list[dict]:
    """Property rules on every user and account column (tracked or not), and the rules that
    select users by what they lack: who had not joined must be in none of them."""
    defs: list[dict] = []
    for table, kinds in (("user", scenario.user_kinds), ("account", scenario.account_kinds)):
        for column in sorted(kinds):
            defs.append(_and(_rule(table, column, "is not set")))
            if negative_twins:
                defs.append(_and(_rule(table, column, "is set")))
            value = _sample(scenario, table, column)
            if value is not None:
                defs.append(_and(_rule(table, column, "=", value)))
                if negative_twins:
                    defs.append(_and(_rule(table, column, "!=", value)))
    defs += [
        _and({"kind": "event", "event": "Session", "did": False}),
        _and({"kind": "event", "event": "Session"}),
        _and(_rule("user", "plan", "=", "trial"), negate=True),
        _and({"kind": "segment", "id": "static-a"}),
        _and({"kind": "segment", "id": "static-a", "in": False}),
        _and({"kind": "segment", "id": "dyn-a", "in": False}),
        {"combinator": "or", "rules": []},
    ]
    return defs


def _pit_tables(
    scenario: strategies.Scenario, mapped: bool
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The frames to load and the point-in-time arguments of ``heapseg.connect`` for them."""
    users = scenario.users
    tables = {"users": users, "events": scenario.events, "accounts": scenario.accounts}
    if scenario.migrations is not None:
        tables["user_migrations"] = scenario.migrations
    options: dict[str, Any] = {"joining": scenario.joining}
    histories = {"user_history": scenario.user_history, "account_history": scenario.account_history}
    if not mapped:
        tables.update({name: frame for name, frame in histories.items() if frame is not None})
        return tables, options  # found by their default names
    columns: dict[str, dict[str, str]] = {}
    if "joined_at" in users.columns:
        tables["users"] = users.rename(columns={"joined_at": "joindate"})
        columns["users"] = {"joined_at": "joindate"}
    for name, frame in histories.items():
        if frame is None:
            options[name] = None
            continue
        mapping = {k: v for k, v in MAPPED_FORM_COLUMNS.items() if k in frame.columns}
        source = f"dim_{name}_{'snapshots' if 'valid_from' in frame.columns else 'changes'}"
        tables[source] = frame.rename(columns=mapping)
        columns[name] = mapping
        options[name] = source
    options["columns"] = columns
    return tables, options


@pytest.mark.parametrize(("backend_name", "name"), PIT_CASES, indirect=["backend_name"])
def test_backend_point_in_time_agrees_with_the_reference(
    name: str, backend_name: str, load_tables: Callable[..., Any]
) -> None:
    seed, user_form, account_form, joining, mapped = PIT_SCENARIOS[name]
    scenario = strategies.random_scenario(
        seed, point_in_time=True, history_forms=(user_form, account_form), joining=joining
    )
    tables, options = _pit_tables(scenario, mapped)
    con = load_tables(tables)
    ds = heapseg.connect(
        con,
        user_migrations="user_migrations" if scenario.migrations is not None else None,
        resolver=DictResolver(scenario.segments),
        **options,
    )
    plan = PIT_PLANS[backend_name]
    # Random definitions first: the battery's last one (an empty group) selects every user.
    definitions = strategies.random_definitions(
        scenario, seed, n=plan.random_definitions
    ) + pit_battery(scenario, plan.negative_twins)
    # The full battery at the scenario's as_of; the earlier as_of gets the point-in-time part.
    general = battery(scenario) if plan.full_battery else []
    moments: list[tuple[dt.datetime, Any, list[dict]]] = [
        (scenario.as_of, scenario.as_of_arg, general + definitions),
        *((moment, moment, definitions) for moment in scenario.moments),
    ]
    if plan.one_as_of:
        turn = PIT_BACKENDS[backend_name].index(name) % len(moments)
        moments = [(at, arg, definitions) for at, arg, _ in moments[turn : turn + 1]]
    names = sorted(scenario.user_kinds)
    mismatches = []
    for as_of, as_of_arg, defs in moments:
        data = reference_data(scenario, as_of)
        # A scenario that tests something: users at as_of, and (joining on) at the earlier
        # as_of some who had not joined yet.
        assert reference.total(data) > 0
        if scenario.joining and as_of < scenario.as_of:
            assert reference.total(data) < len(scenario.users)
        mismatches += _mismatches(ds, data, defs, as_of_arg, backend_name, plan.batch)
        _check_counts(ds, data, defs, as_of_arg, plan.repeat_counts)
        # Property values at as_of: tracked columns from the history, the others from users.
        checked = [defs[-1], defs[0], defs[len(defs) // 2]][: plan.members_checks]
        for definition in checked:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
                frame = ds.members(definition, as_of_arg, properties=names).to_pandas()
            members = {_plain(v) for v in frame["user_id"]}
            assert members == {_plain(v) for v in reference.evaluate_loaded(definition, data)}
            wrong = property_mismatches(frame, data, names)
            assert wrong == [], f"as_of={as_of}: (user_id, property, {backend_name}, reference)"
    assert not mismatches, f"{len(mismatches)} definitions differ on {backend_name}:\n" + "\n".join(
        mismatches
    )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --------------------------------------------------------------------------- hand-made funnels


@pytest.fixture
def run(load_tables: Callable[..., Any]) -> Callable[..., set]:
    """The funnel cases of tests/test_reference.py (same microsecond, the within edge, a
    repeated step, as_of, the window, drop-offs, not, merges), evaluated on each backend: the
    backend must give the hand-written expected set and agree with the reference."""
    loaded: dict[tuple, heapseg.Dataset] = {}

    def backend_run(definition: dict, users: list[dict], events: list[tuple], **kw: Any) -> set:
        migrations = kw.get("migrations")
        key = (repr(users), repr(events), None if migrations is None else migrations.to_json())
        if key not in loaded:  # one load per data set: Spark takes seconds for each
            tables = {
                "users": users_frame(users),
                "events": events_frame(events),
                "accounts": kw.get("accounts", ACCOUNTS),
            }
            if migrations is not None:
                tables["user_migrations"] = migrations
            con = load_tables(tables)
            moves = "user_migrations" if migrations is not None else None
            loaded[key] = heapseg.connect(con, user_migrations=moves)
        frame = loaded[key].members(definition, kw.get("as_of", AS_OF), properties=[])
        got = {_plain(v) for v in frame.to_pandas()["user_id"]}
        assert got == reference_run(definition, users, events, **kw)
        return got

    return backend_run
