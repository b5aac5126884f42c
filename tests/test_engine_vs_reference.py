"""Property test: the compiled ibis query (DuckDB) selects exactly the users the reference selects.

Each example draws one small dataset (``tests/strategies.py``) and a handful of
definitions; the engine's answer for all of them comes from one query of
membership flags, checked against ``tests/reference.py``; ``members`` and
``counts`` are checked on the first ones. Some examples are point-in-time
scenarios (joined_at, user and account history, joining on or off): those are
also evaluated at a second, earlier as_of, and ``members`` property values at
as_of are checked. Set ``HEAPSEG_PROPERTY_EXAMPLES`` for a
longer search, ``HEAPSEG_PROPERTY_RANDOM=1`` for fresh random examples instead of
the fixed (derandomized) ones CI runs, ``HEAPSEG_PROPERTY_SHRINK=0`` to skip shrinking.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import ibis
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings

import heapseg
from tests import reference, strategies
from tests.test_reference import (  # noqa: F401  (re-collected here, run on the engine)
    ACCOUNTS,
    AS_OF,
    events_frame,
    group,
    reference_run,
    test_account_at_as_of_through_user_and_account_history,
    test_account_properties_and_missing_accounts,
    test_aggregates_and_no_value_rules,
    test_begins_and_ends_with_take_the_value_literally,
    test_changes_partial_rows_boundaries_and_ties,
    test_count_and_aggregate_both_hold,
    test_count_includes_zero_and_between,
    test_date_joined_at_is_its_midnight,
    test_dates_and_timestamps_in_last_and_more_than_ago,
    test_distinct_period_counts_across_iso_week_boundary,
    test_empty_groups_select_everyone_and_not_selects_nobody,
    test_example_new_trial_users,
    test_example_possible_churn,
    test_example_window_shoppers,
    test_first_event_joining_counts_after_identity_merges,
    test_first_time_uses_the_first_event_satisfying_where,
    test_from_to_window_is_half_open_and_cut_at_as_of,
    test_funnel_entry_window_and_as_of,
    test_funnel_repeated_step_name_and_merges,
    test_funnel_steps_boundaries,
    test_hour_week_windows_and_offset,
    test_identity_merge_and_unknown_users,
    test_joined_at_decides_who_is_a_user_boundary_included,
    test_month_window_with_clamping_and_offset,
    test_nested_groups_with_not,
    test_property_operators_and_unset_values,
    test_same_event_followed_by_itself,
    test_segment_references,
    test_snapshots_boundaries_overlaps_and_ties,
    test_snapshots_without_valid_to_column,
    test_then_second_event_window_is_only_as_of_and_where,
    test_then_sequences_boundaries,
    test_ties_take_the_greatest_value_of_every_type,
    test_user_history_without_account_id_keeps_the_users_account,
    test_users_who_had_not_joined_are_in_no_segment,
    test_where_with_nested_not_and_null_properties,
    users_frame,
)

DEFINITIONS_PER_EXAMPLE = 8
POINT_IN_TIME_PERCENT = 35  # the share of examples drawn with joined_at and histories
EXAMPLES = int(os.environ.get("HEAPSEG_PROPERTY_EXAMPLES", "80"))  # ~40 s on 2 idle cores
DERANDOMIZE = os.environ.get("HEAPSEG_PROPERTY_RANDOM", "") != "1"
# HEAPSEG_PROPERTY_SHRINK=0 reports the first failure as found (shrinking can take minutes).
PHASES = (
    tuple(Phase)
    if os.environ.get("HEAPSEG_PROPERTY_SHRINK", "1") != "0"
    else (
        Phase.explicit,
        Phase.reuse,
        Phase.generate,
    )
)


class DictResolver:
    """Resolves ``kind: segment`` ids from a scenario's saved segments (dict or frozen id list)."""

    def __init__(self, segments: dict[str, dict | list]) -> None:
        self._segments = segments

    def resolve_segment(self, segment_id: str) -> Any:
        saved = self._segments[segment_id]
        if isinstance(saved, dict):
            return heapseg.Segment.from_dict(saved)
        return heapseg.StaticMembers(saved)


def load_scenario(
    con: Any, scenario: strategies.Scenario, create_tables: bool = False
) -> heapseg.Dataset:
    """Bind a heapseg dataset on a scenario's frames, as memtables or as tables created in ``con``.

    Memtables are ~15x faster to set up on DuckDB; a backend conformance suite
    (PostgreSQL, Spark) passes ``create_tables=True``.
    """
    frames = {"users": scenario.users, "events": scenario.events, "accounts": scenario.accounts}
    optional = {
        "user_migrations": scenario.migrations,
        "user_history": scenario.user_history,
        "account_history": scenario.account_history,
    }
    frames.update({name: frame for name, frame in optional.items() if frame is not None})
    if create_tables:
        tables = {
            name: con.create_table(name, frame, overwrite=True) for name, frame in frames.items()
        }
    else:
        tables = {name: ibis.memtable(frame) for name, frame in frames.items()}
    # Every optional table is named (None included): the module's connection may hold tables
    # of that name from an earlier scenario, which AUTO would pick up.
    return heapseg.connect(
        con,
        users=tables["users"],
        events=tables["events"],
        accounts=tables["accounts"],
        user_migrations=tables.get("user_migrations"),
        user_history=tables.get("user_history"),
        account_history=tables.get("account_history"),
        joining=scenario.joining,
        resolver=DictResolver(scenario.segments),
    )


def engine_memberships(ds: heapseg.Dataset, definitions: Sequence[dict], as_of: Any) -> list[set]:
    """The members of every definition, from one query of membership flags over users."""
    flags = {f"d{i}": ds.flag(d, as_of=as_of) for i, d in enumerate(definitions)}
    frame = ds.users.select("user_id", **flags).to_pandas()
    return [
        set(frame.loc[frame[f"d{i}"].astype(bool), "user_id"].tolist())
        for i in range(len(definitions))
    ]


def reference_data(scenario: strategies.Scenario, as_of: Any = None) -> reference._Data:
    """The scenario indexed by the reference at ``as_of`` (default: the scenario's)."""
    return reference.load(
        scenario.users,
        scenario.events,
        scenario.accounts,
        scenario.as_of if as_of is None else as_of,
        scenario.segments,
        scenario.migrations,
        **scenario.point_in_time,
    )


def reference_memberships(
    scenario: strategies.Scenario, definitions: Sequence[dict], as_of: Any = None
) -> list[set]:
    loaded = reference_data(scenario, as_of)
    return [reference.evaluate_loaded(d, loaded) for d in definitions]


def plain_value(value: Any) -> Any:
    """A property value as the reference holds it: None for NULL, a date as its midnight."""
    value = reference.normalize(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def property_mismatches(
    frame: Any, data: reference._Data, names: Sequence[str]
) -> list[tuple[Any, str, Any, Any]]:
    """``(user_id, property, engine, reference)`` where a members() frame's values at as_of
    differ from the reference's."""
    wrong = []
    for record in frame.to_dict("records"):
        uid = plain_value(record["user_id"])
        for name in names:
            got, want = plain_value(record[name]), plain_value(data.user_values[name][uid])
            if got != want:
                wrong.append((uid, name, got, want))
    return wrong


def describe(
    scenario: strategies.Scenario,
    definition: dict,
    expected: set,
    actual: set,
    as_of: Any = None,
) -> str:
    """A compact, copyable dump of a failing case."""
    histories = [
        f"joining={scenario.joining}",
        f"user_history=\n{_sorted_frame(scenario.user_history)}",
        f"account_history=\n{_sorted_frame(scenario.account_history)}",
    ]
    return "\n".join(
        [
            f"as_of={scenario.as_of if as_of is None else as_of!r} "
            f"(scenario as_of {scenario.as_of!r}, given as {scenario.as_of_arg!r})",
            f"definition={json.dumps(definition)}",
            f"expected={sorted(expected, key=str)}",
            f"engine={sorted(actual, key=str)}",
            f"segments={json.dumps(scenario.segments, default=str)}",
            f"users=\n{scenario.users.to_string()}",
            f"accounts=\n{scenario.accounts.to_string()}",
            f"events=\n{scenario.events.sort_values('time').to_string()}",
            f"migrations=\n{scenario.migrations}",
            *histories,
        ]
    )


def _sorted_frame(frame: Any) -> str:
    if frame is None:
        return "None"
    return frame.sort_values(frame.columns[0], kind="stable").to_string()


@pytest.fixture(scope="module")
def con() -> Any:
    connection = ibis.duckdb.connect()
    yield connection
    connection.disconnect()


@pytest.fixture
def run(con: Any) -> Callable[..., set]:
    """The hand-made cases of tests/test_reference.py, evaluated by the engine.

    Every hand-checked test imported above runs again here with this ``run``:
    the engine must give the hand-written expected set (and agree with the reference).
    """

    def engine_run(definition: dict, users: list[dict], events: list[tuple], **kw: Any) -> set:
        scenario = strategies.Scenario(
            users=users_frame(users),
            events=events_frame(events),
            accounts=kw.get("accounts", ACCOUNTS),
            migrations=kw.get("migrations"),
            as_of=kw.get("as_of", AS_OF),
            as_of_arg=kw.get("as_of", AS_OF),
            segments=kw.get("segments") or {},
            joining=kw.get("joining", True),
            user_history=kw.get("user_history"),
            account_history=kw.get("account_history"),
        )
        ds = load_scenario(con, scenario)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
            frame = ds.members(definition, as_of=scenario.as_of_arg).to_pandas()
            counts = ds.counts({"s": definition}, as_of=scenario.as_of_arg)
        got = set(frame["user_id"].tolist())
        assert got == reference_run(definition, users, events, **kw)
        data = reference_data(scenario)
        assert counts == {"s": len(got), "__total__": reference.total(data)}
        return got

    return engine_run


def test_segment_reference_errors_on_the_engine(run: Callable[..., set]) -> None:
    users = [{"user_id": "a"}]
    loop = {"x": group({"kind": "segment", "id": "y"}), "y": group({"kind": "segment", "id": "x"})}
    with pytest.raises(heapseg.SegmentReferenceError):
        run(group({"kind": "segment", "id": "x"}), users, [], segments=loop)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=strategies.cases(DEFINITIONS_PER_EXAMPLE, POINT_IN_TIME_PERCENT))
def test_engine_agrees_with_reference(
    con: Any, case: tuple[strategies.Scenario, list[dict]]
) -> None:
    scenario, definitions = case
    ds = load_scenario(con, scenario)
    # The scenario's own as_of (as the engine is given it), then the point-in-time moments.
    for as_of, as_of_arg in [(scenario.as_of, scenario.as_of_arg)] + [
        (moment, moment) for moment in scenario.moments
    ]:
        check_at(ds, scenario, definitions, as_of, as_of_arg)


@settings(
    max_examples=max(8, EXAMPLES // 8),
    deadline=None,
    derandomize=DERANDOMIZE,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(case=strategies.funnel_cases(DEFINITIONS_PER_EXAMPLE))
def test_engine_agrees_with_reference_on_funnels(
    con: Any, case: tuple[strategies.Scenario, list[dict]]
) -> None:
    """Funnel rules (steps taken from a user's own events, within on a chain's edge, repeated
    names, drop-offs, not) on hypothesis-drawn data: the engine selects the reference's users."""
    scenario, definitions = case
    check_at(
        load_scenario(con, scenario), scenario, definitions, scenario.as_of, scenario.as_of_arg
    )


def check_at(
    ds: heapseg.Dataset,
    scenario: strategies.Scenario,
    definitions: list[dict],
    as_of: dt.datetime,
    as_of_arg: Any,
) -> None:
    """Memberships, members (with property values at as_of), counts and the total at as_of."""
    data = reference_data(scenario, as_of)
    expected = [reference.evaluate_loaded(d, data) for d in definitions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        actual = engine_memberships(ds, definitions, as_of_arg)
        for definition, want, got in zip(definitions, expected, actual, strict=True):
            if want != got:
                note(describe(scenario, definition, want, got, as_of))
            assert got == want

        first = definitions[0]
        names = sorted(scenario.user_kinds)
        frame = ds.members(first, as_of=as_of_arg, properties=names).to_pandas()
        assert sorted(frame["user_id"].tolist(), key=str) == sorted(expected[0], key=str)
        wrong = property_mismatches(frame, data, names)
        if wrong:
            note(describe(scenario, first, expected[0], set(frame["user_id"]), as_of))
        assert wrong == [], "(user_id, property, engine, reference)"
        pair = {"a": definitions[0], "b": definitions[1]}
        counts = ds.counts(pair, as_of=as_of_arg)
        assert counts == {
            "a": len(expected[0]),
            "b": len(expected[1]),
            "__total__": reference.total(data),
        }
        assert ds.count(definitions[2], as_of=as_of_arg) == len(expected[2])


@pytest.mark.slow
def test_engine_agrees_on_seeded_sweep(con: Any) -> None:
    """A seeded search beside hypothesis: 10 seeds by default, ``HEAPSEG_SWEEP_SEEDS=a:b`` for more
    (300 seeds take ~75 s)."""
    start, stop = (int(x) for x in os.environ.get("HEAPSEG_SWEEP_SEEDS", "1000:1010").split(":"))
    disagreements = []
    for seed in range(start, stop):
        scenario = strategies.random_scenario(seed)
        definitions = strategies.random_definitions(scenario, seed, n=DEFINITIONS_PER_EXAMPLE)
        expected = reference_memberships(scenario, definitions)
        # Tables created in DuckDB (not memtables): counts then run the compiled SQL directly,
        # the path a DuckDB file or Parquet folder takes, and are checked here too.
        # Definitions that refer to saved segments are always compiled afresh: count them in a
        # query of their own so that the others take the reused-SQL path.
        ds = load_scenario(con, scenario, create_tables=True)
        named = {f"d{i}": d for i, d in enumerate(definitions)}
        referring = {n for n, d in named.items() if heapseg.as_segment(d).referenced_segments()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
            actual = engine_memberships(ds, definitions, scenario.as_of_arg)
            counts = {}
            for part in (referring, set(named) - referring):
                if part:
                    batch = {n: named[n] for n in sorted(part)}
                    counts.update(ds.counts(batch, as_of=scenario.as_of_arg))
        disagreements += [
            (seed, i, definitions[i])
            for i, (want, got) in enumerate(zip(expected, actual, strict=True))
            if want != got or counts[f"d{i}"] != len(want)
        ]
    assert disagreements == [], f"(seed, index, definition): {disagreements[:5]}"
