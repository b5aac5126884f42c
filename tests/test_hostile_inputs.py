"""Hostile and careless engine inputs (issue 14): only heapseg's own errors, never a traceback.

Definitions beyond every limit, numbers and dates beyond every range, text no database takes,
fed to a small DuckDB dataset, to the catalog's validation and to the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heapseg
from heapseg import cli
from heapseg.catalog import Catalog
from heapseg.model import COUNT_OPERATORS, MAX_EVENT_RULES, MAX_RULES, PROPERTY_OPERATORS, UNITS

# Definitions past the size limits are big on purpose: their repr is not worth a warning.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def entry(segment_id: str, definition: dict) -> dict:
    return {
        "id": segment_id,
        "name": segment_id.upper(),
        "description": "",
        "category": "",
        "type": "dynamic",
        "visibility": "shared",
        "owner": "mallory",
        "created_at": "2026-11-22T10:15:00+01:00",
        "updated_at": "2026-11-22T10:15:00+01:00",
        "revision": 1,
        "definition": definition,
    }


def chain_catalog(path, length: int) -> None:
    """seg-0 -> seg-1 -> ... -> seg-{length-1}: each refers to the next, the last to nobody."""
    segments = []
    for i in range(length):
        rules = [{"kind": "user", "field": "subscription_type", "operator": "is set"}]
        if i + 1 < length:
            rules.append({"kind": "segment", "id": f"seg-{i + 1}"})
        segments.append(entry(f"seg-{i}", {"combinator": "and", "rules": rules}))
    doc = {"format": "heapseg-catalog", "version": 1, "segments": segments}
    path.write_text(json.dumps(doc))


# --------------------------------------------------------------------------- reference chains


def test_catalog_validate_reports_a_chain_of_300_references(tmp_path):
    path = tmp_path / "team.json"
    chain_catalog(path, 300)
    problems = {p.segment_id: p for p in Catalog(path, user="bob").validate()}
    # seg-i nests 300 - i groups: those deeper than 32 levels are reported, the rest are fine.
    assert sorted(problems, key=lambda s: int(s[4:])) == [f"seg-{i}" for i in range(300 - 33)]
    first = problems["seg-0"]
    assert first.path == "definition"
    assert "nested more than 32 levels deep through segment references" in first.message
    assert "seg-0 -> seg-1 -> seg-2 -> ... -> seg-298 -> seg-299, 300 segments" in first.message


def test_cli_validate_and_count_report_the_long_chain(tmp_path, capsys):
    path = tmp_path / "team.json"
    chain_catalog(path, 300)
    assert cli.main(["--catalog", str(path), "catalog", "validate"]) == 1
    out, err = capsys.readouterr()
    assert "seg-0" in out and "nested more than 32 levels" in out
    assert "267 problem(s) found" in err
    assert cli.main(["--catalog", str(path), "count", "seg-0"]) == 1
    out, err = capsys.readouterr()
    assert "nested more than 32 levels" in err and "Traceback" not in err
    assert cli.main(["--catalog", str(path), "count", "seg-280"]) == 0


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def cli_files(tmp_path):
    """A DuckDB file (three users, sessions in 2024 and in year 1) and a catalog."""
    data = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(data))
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES ('u1', 'paid'), ('u2', 'free'), ('u3', 'paid')) t(user_id, plan)"
    )
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (VALUES "
        "('u1', TIMESTAMP '2024-03-30 12:00', 'Session'), "
        "('u2', TIMESTAMP '0001-01-01 00:00', 'Session')) t(user_id, time, event)"
    )
    con.close()
    catalog = tmp_path / "team.json"
    windows = {
        "wide": {"last": 10**6, "unit": "day"},
        "months": {"last": 10**5, "unit": "month"},
        "gone": {"last": 1, "unit": "day", "offset": 10**12},
        "early": {"from": "0001-01-01T00:00+14:00"},
        "late": {"to": "9999-12-31T23:59:59-12:00"},
    }
    segments = [
        entry(
            key,
            {"combinator": "and", "rules": [{"kind": "event", "event": "Session", "window": w}]},
        )
        for key, w in windows.items()
    ]
    catalog.write_text(
        json.dumps({"format": "heapseg-catalog", "version": 1, "segments": segments})
    )
    return data, catalog


@pytest.mark.parametrize(
    ("segment", "expected"),
    [("wide", "2"), ("months", "2"), ("gone", "0"), ("early", "2"), ("late", "2")],
)
def test_cli_counts_windows_beyond_the_calendar(cli_files, capsys, segment: str, expected: str):
    data, catalog = cli_files
    argv = ["--catalog", str(catalog), "--data", str(data), "--as-of", "2024-03-31", "count"]
    assert cli.main([*argv, segment]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == expected and err == ""


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_cli_as_of_beyond_the_calendar_is_a_usage_error(cli_files, capsys, as_of: str):
    data, catalog = cli_files
    argv = ["--catalog", str(catalog), "--data", str(data), "--as-of", as_of, "count", "wide"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "outside the timestamps heapseg can represent" in err and "Traceback" not in err


def test_cli_as_of_at_the_start_of_the_calendar(cli_files, capsys):
    data, catalog = cli_files
    argv = ["--catalog", str(catalog), "--data", str(data), "--as-of", "0001-01-01", "count"]
    assert cli.main([*argv, "wide"]) == 0
    assert capsys.readouterr().out.strip() == "1"


def test_cli_data_that_is_not_a_database(cli_files, capsys):
    _, catalog = cli_files
    assert cli.main(["--catalog", str(catalog), "--data", str(catalog), "count", "wide"]) == 4
    err = capsys.readouterr().err
    assert "team.json is not a DuckDB database file" in err and "--catalog" in err


# --------------------------------------------------------------------------- fuzzing the engine

FIELDS = ["plan", "email", "ltv", "visits", "opt_in", "signup", "seen", "account_id", "tier"]
EVENT_FIELDS = ["path", "revenue", "quantity"]
EVENTS = ["Session", "Buy", "Never Seen"]

HUGE_INTEGERS = st.sampled_from(
    [2**63, -(2**63) - 1, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**30), 10**12, 10**6, 0, -1]
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -0.0, 5e-324])
ODD_TEXT = st.sampled_from(
    [
        "a\x00b",
        "\x00",
        "\ud800",
        "x\udfffy",
        "",
        " ",
        "\u202eevil",
        "e\u0301",
        "🙂🙂",
        "x" * 5000,
        "50%_off",
        "it's",
        'say "hi"',
        "back\\slash",
        "a|b+c*",
        "|",
        "\\",
        "\t\n\r",
        "\u0000\u0001\u001b[31m",
    ]
)
DATES = st.sampled_from(
    [
        "0001-01-01T00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01",
        "9999-12-31",
        "9999-12-31T23:59:59.999999",
        "0000-01-01",
        "2024-02-30",
        "2024-03-31T25:00",
        "+10000-01-01",
        "2024-03-31T12:00:00.123456789",
        "2024-03-31T12:00Z",
        "2024-03-31T12:00:00+23:59",
        "2024-W13",
        "20240331",
        "2024-03-31 12:00",
        "-2024-01-01",
    ]
) | st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)).map(
    dt.datetime.isoformat
)
TEXT = st.text(max_size=12) | ODD_TEXT
SCALARS = st.one_of(
    HUGE_INTEGERS,
    st.integers(-5, 5),
    FLOATS,
    TEXT,
    DATES,
    st.booleans(),
    st.none(),
)
VALUES = SCALARS | st.lists(SCALARS, max_size=3)


def _mostly(good: list, bad: st.SearchStrategy = TEXT) -> st.SearchStrategy:
    """Mostly a valid name (so that values reach the compiler), sometimes anything."""
    return st.one_of(*[st.sampled_from(good)] * 3, bad)


UNIT_CHOICES = _mostly([*UNITS], st.sampled_from(["year", ""]) | TEXT)


def _maybe(options: dict) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional=options)


def property_rules(kinds: list[str], fields: list[str]) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "kind": st.sampled_from(kinds),
            "field": _mostly(fields),
            "operator": _mostly([*PROPERTY_OPERATORS]),
        },
        optional={"value": VALUES, "unit": UNIT_CHOICES},
    )


WINDOWS = st.one_of(
    st.fixed_dictionaries(
        {"last": HUGE_INTEGERS | st.integers(1, 5), "unit": UNIT_CHOICES},
        optional={"offset": HUGE_INTEGERS | st.integers(0, 5)},
    ),
    _maybe({"from": DATES, "to": DATES}),
    VALUES,
)
COMPARISONS = st.fixed_dictionaries(
    {
        "operator": _mostly([*COUNT_OPERATORS]),
        "value": VALUES | HUGE_INTEGERS,
    },
    optional={"unit": UNIT_CHOICES},
)
WHERE = st.fixed_dictionaries(
    {"rules": st.lists(property_rules(["event_property"], EVENT_FIELDS), max_size=2)},
    optional={"combinator": st.sampled_from(["and", "or"]), "not": st.booleans()},
)
EVENT_RULES = st.fixed_dictionaries(
    {"kind": st.just("event"), "event": _mostly(EVENTS)},
    optional={
        "did": st.booleans(),
        "count": COMPARISONS,
        "aggregate": st.fixed_dictionaries(
            {"fn": st.sampled_from(["sum", "avg", "min", "max", "count_distinct"])},
            optional={
                "field": _mostly(EVENT_FIELDS),
                "operator": st.sampled_from(COUNT_OPERATORS),
                "value": VALUES | HUGE_INTEGERS,
            },
        ),
        "window": WINDOWS,
        "where": WHERE,
        "first_time": st.booleans(),
        "then": st.fixed_dictionaries(
            {"event": _mostly(EVENTS)},
            optional={
                "within": st.fixed_dictionaries(
                    {"value": HUGE_INTEGERS | st.integers(0, 5), "unit": UNIT_CHOICES}
                ),
                "where": WHERE,
            },
        ),
    },
)
SAVED = ["paid", "c0", "c30", "loop-a", "frozen", "broken", "missing"]
SEGMENT_RULES = st.fixed_dictionaries(
    {"kind": st.just("segment"), "id": _mostly(SAVED)},
    optional={"in": st.booleans()},
)
RULES = st.one_of(property_rules(["user", "account"], FIELDS), EVENT_RULES, SEGMENT_RULES)


def groups(rules: st.SearchStrategy, wild: bool = True) -> st.SearchStrategy:
    combinators = _mostly(["and", "or"], st.just("xor")) if wild else st.sampled_from(["and", "or"])
    return st.fixed_dictionaries(
        {"rules": st.lists(rules, max_size=3)},
        optional={"combinator": combinators, "not": st.booleans()},
    )


DEFINITIONS = st.recursive(groups(RULES), lambda inner: groups(RULES | inner), max_leaves=8)


# Valid in shape, extreme in value: these reach the compiler and the backend.
WHOLE = st.sampled_from([1, 2, 2**31, 2**62, 2**63 - 1, 10**6, 10**12]) | st.integers(0, 2**63 - 1)
NUMBERS = WHOLE | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
VALID_TEXT = st.text(max_size=10).filter(lambda t: "\x00" not in t) | st.sampled_from(
    ["\u202eevil", "e\u0301", "🙂", "x" * 5000, "50%_off", "it's", 'say "hi"', "a\\|b\\+c\\*"]
)
VALID_DATES = st.sampled_from(
    ["0001-01-01T00:00+14:00", "9999-12-31T23:59:59-12:00", "0001-01-01", "9999-12-31"]
) | st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)).map(dt.datetime.isoformat)


@st.composite
def plausible_property(draw: st.DrawFn, kinds: list[str], fields: list[str]) -> dict:
    operator = draw(st.sampled_from(PROPERTY_OPERATORS))
    rule = {"kind": draw(st.sampled_from(kinds)), "field": draw(st.sampled_from(fields))}
    scalar = NUMBERS | VALID_TEXT | VALID_DATES | st.booleans()
    if operator in ("=", "!="):
        rule["value"] = draw(scalar)
    elif operator in ("in", "not in"):
        rule["value"] = draw(st.lists(scalar, min_size=1, max_size=3))
    elif operator in ("<", "<=", ">", ">="):
        rule["value"] = draw(NUMBERS | VALID_DATES)
    elif operator in ("between", "not between"):
        rule["value"] = draw(st.lists(NUMBERS | VALID_DATES, min_size=2, max_size=2))
    elif operator in ("in last", "more than ago"):
        rule["value"] = draw(WHOLE | st.just(0))
        rule["unit"] = draw(st.sampled_from(UNITS))
    elif operator not in ("is set", "is not set"):
        rule["value"] = draw(VALID_TEXT.filter(bool))
    return {**rule, "operator": operator}


PLAUSIBLE_WINDOWS = st.fixed_dictionaries(
    {"last": WHOLE, "unit": st.sampled_from(UNITS)}, optional={"offset": WHOLE | st.just(0)}
) | _maybe({"from": VALID_DATES, "to": VALID_DATES})
PLAUSIBLE_COUNTS = st.fixed_dictionaries(
    {
        "operator": st.sampled_from(COUNT_OPERATORS),
        "value": WHOLE | st.just(0) | st.lists(WHOLE, min_size=2, max_size=2),
    },
    optional={"unit": st.sampled_from(UNITS)},
)
PLAUSIBLE_EVENTS = st.fixed_dictionaries(
    {"kind": st.just("event"), "event": st.sampled_from(EVENTS)},
    optional={
        "count": PLAUSIBLE_COUNTS,
        "aggregate": st.fixed_dictionaries(
            {
                "fn": st.sampled_from(["sum", "avg", "min", "max", "count_distinct"]),
                "field": st.sampled_from(EVENT_FIELDS),
                "operator": st.sampled_from(COUNT_OPERATORS),
                "value": NUMBERS | st.lists(NUMBERS, min_size=2, max_size=2),
            }
        ),
        "window": PLAUSIBLE_WINDOWS,
        "where": st.fixed_dictionaries(
            {"rules": st.lists(plausible_property(["event_property"], EVENT_FIELDS), max_size=2)}
        ),
        "first_time": st.booleans(),
    },
) | st.fixed_dictionaries(
    {
        "kind": st.just("event"),
        "event": st.sampled_from(EVENTS),
        "then": st.fixed_dictionaries(
            {"event": st.sampled_from(EVENTS)},
            optional={
                "within": st.fixed_dictionaries(
                    {"value": st.integers(0, 1200) | WHOLE, "unit": st.sampled_from(UNITS)}
                )
            },
        ),
    },
    optional={"did": st.booleans(), "window": PLAUSIBLE_WINDOWS},
)
PLAUSIBLE = st.recursive(
    groups(
        plausible_property(["user", "account"], FIELDS)
        | PLAUSIBLE_EVENTS
        | st.fixed_dictionaries({"kind": st.just("segment"), "id": st.sampled_from(SAVED)}),
        wild=False,
    ),
    lambda inner: groups(
        plausible_property(["user"], FIELDS) | PLAUSIBLE_EVENTS | inner, wild=False
    ),
    max_leaves=6,
)


@st.composite
def deep(draw: st.DrawFn) -> dict:
    """A rule under many groups (the limit is 32 levels)."""
    definition = draw(mutated() | st.just(GOOD_DEFINITION))
    for _ in range(draw(st.sampled_from([30, 31, 32, 33, 80]))):
        definition = {
            "combinator": draw(st.sampled_from(["and", "or"])),
            "not": draw(st.booleans()),
            "rules": [definition, {"kind": "user", "field": "plan", "operator": "is set"}],
        }
    return definition


@st.composite
def wide(draw: st.DrawFn) -> dict:
    """One rule repeated past a limit."""
    rule = draw(RULES)
    limit = MAX_EVENT_RULES if rule.get("kind") == "event" else MAX_RULES
    return {"combinator": "or", "rules": [rule] * (limit + draw(st.integers(1, 3)))}


@st.composite
def mutated(draw: st.DrawFn) -> dict:
    """A valid definition with one part swapped for something hostile."""
    definition = json.loads(json.dumps(GOOD_DEFINITION))
    node: Any = definition
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(VALUES | HUGE_INTEGERS | DATES | WINDOWS | DEFINITIONS)
        return definition


GOOD_DEFINITION = {
    "combinator": "and",
    "rules": [
        {"kind": "user", "field": "plan", "operator": "in", "value": ["paid", "free"]},
        {"kind": "account", "field": "tier", "operator": "=", "value": "gold"},
        {
            "kind": "event",
            "event": "Session",
            "count": {"operator": ">=", "value": 1, "unit": "day"},
            "window": {"last": 30, "unit": "day", "offset": 1},
            "where": {
                "combinator": "or",
                "rules": [
                    {
                        "kind": "event_property",
                        "field": "path",
                        "operator": "contains",
                        "value": "/a|/b",
                    }
                ],
            },
        },
        {
            "kind": "event",
            "event": "Buy",
            "then": {"event": "Session", "within": {"value": 2, "unit": "hour"}},
        },
        {"combinator": "or", "not": True, "rules": [{"kind": "segment", "id": "paid"}]},
        {"kind": "user", "field": "seen", "operator": "in last", "value": 3, "unit": "month"},
        {
            "kind": "user",
            "field": "signup",
            "operator": "between",
            "value": ["2024-01-01", "2024-03-01"],
        },
    ],
}
VALID_AS_OFS = st.one_of(
    st.none(),
    VALID_DATES,
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)),
    st.dates(),
)
AS_OFS = st.one_of(
    st.none(),
    DATES,
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)),
    st.dates(),
    st.datetimes(
        dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.just(dt.timezone.utc)
    ),
)


class SavedSegments:
    """What a catalog would resolve: a chain of 40 references, a cycle, frozen members and a
    broken definition."""

    def __init__(self) -> None:
        paid = {
            "combinator": "and",
            "rules": [{"kind": "user", "field": "plan", "operator": "=", "value": "paid"}],
        }
        self.saved: dict[str, Any] = {
            "paid": paid,
            "loop-a": {"rules": [{"kind": "segment", "id": "loop-b"}]},
        }
        self.saved["loop-b"] = {"rules": [{"kind": "segment", "id": "loop-a", "in": False}]}
        for i in range(40):
            last = i == 39
            self.saved[f"c{i}"] = (
                paid if last else {"rules": [{"kind": "segment", "id": f"c{i + 1}"}]}
            )
        self.saved["frozen"] = heapseg.StaticMembers(["u1", "gone"])
        self.saved["broken"] = {"rules": [{"kind": "nope"}]}

    def resolve_segment(self, segment_id: str) -> Any:
        return self.saved[segment_id]


@pytest.fixture(scope="module")
def fuzz_dataset(tmp_path_factory) -> heapseg.Dataset:
    path = tmp_path_factory.mktemp("fuzz") / "small.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES "
        "('u1', 'paid', 'a@x', 10.5, 3, true, DATE '2024-01-05', TIMESTAMP '2024-03-30 10:00', 'a1'), "
        "('u2', 'free', '', NULL, NULL, false, DATE '0001-01-01', TIMESTAMP '0001-01-01 00:00', 'a2'), "
        "('u3', NULL, NULL, -1e300, 9223372036854775807, NULL, NULL, NULL, NULL)"
        ") t(user_id, plan, email, ltv, visits, opt_in, signup, seen, account_id)"
    )
    con.execute(
        "CREATE TABLE events AS SELECT * FROM (VALUES "
        "('u1', TIMESTAMP '2024-03-30 12:00', 'Session', '/a', 1.5, 1), "
        "('u1', TIMESTAMP '2024-03-30 13:00', 'Buy', '/b', 1e300, -9223372036854775808), "
        "('u2', TIMESTAMP '0001-01-01 00:00', 'Session', NULL, NULL, NULL), "
        "('u2', TIMESTAMP '9999-12-31 23:59:59', 'Buy', 'x', 0.0, 0)"
        ") t(user_id, time, event, path, revenue, quantity)"
    )
    con.execute(
        "CREATE TABLE accounts AS SELECT * FROM (VALUES ('a1', 'gold'), ('a2', NULL)) t(account_id, tier)"
    )
    con.close()
    return heapseg.connect(path, resolver=SavedSegments(), as_of="2024-03-31T12:00")


def evaluate(ds: heapseg.Dataset, definition: Any, as_of: Any) -> None:
    """Everything a user does with a definition; only heapseg's own errors may come out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        for action in (
            lambda: ds.count(definition, as_of=as_of),
            lambda: ds.counts({"a": definition, "b": GOOD_DEFINITION}, as_of=as_of),
            lambda: ds.sql(definition, as_of=as_of),
        ):
            try:
                action()
            except heapseg.HeapsegError as error:
                assert str(error)  # a message for the user, not an empty shell


FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(definition=PLAUSIBLE, as_of=VALID_AS_OFS)
def test_extreme_values_in_valid_definitions_raise_only_heapseg_errors(
    fuzz_dataset, definition, as_of
):
    evaluate(fuzz_dataset, definition, as_of)


@FUZZ
@given(definition=st.one_of(DEFINITIONS, mutated(), deep(), wide()), as_of=AS_OFS)
def test_hostile_definitions_raise_only_heapseg_errors(fuzz_dataset, definition, as_of):
    evaluate(fuzz_dataset, definition, as_of)


@FUZZ
@given(definition=mutated(), as_of=AS_OFS)
def test_hostile_json_text_raises_only_heapseg_errors(fuzz_dataset, definition, as_of):
    try:
        text = json.dumps(definition)
    except (ValueError, TypeError):  # NaN is JSON to Python; nothing else here fails to dump
        return
    evaluate(fuzz_dataset, text, as_of)
