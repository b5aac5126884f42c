"""Estimated counts: the sample of users, the interval's arithmetic, and its measured coverage.

The coverage test draws random datasets and random definitions (``tests/strategies.py``), takes
the exact counts from the plain-Python reference evaluator, and checks that the 95% interval of
``Dataset.count(segment, sample=...)`` holds the exact count at least 95% of the time over many
segments and several samples (seeds).
"""

from __future__ import annotations

import math
import numbers
import warnings

import ibis
import pytest
from statsmodels.stats.proportion import proportion_confint

import heapseg
from heapseg.errors import HeapsegError
from heapseg.sampling import BUCKETS, Estimate, estimate, wilson_interval
from tests import reference, strategies
from tests.test_engine_vs_reference import load_scenario, reference_data

PRIME = 2_147_483_647


def python_bucket(user_id: int, seed: int = 0) -> int:
    """heapseg's bucket of an integer id, written again in Python (integers do not overflow)."""
    salt = (seed * 7_919 + 12_345) % PRIME
    x = user_id % PRIME  # Python's modulo is never negative
    x = (x + salt) % PRIME * 48_271 % PRIME
    x = (x * x % PRIME * 69_621 + salt) % PRIME
    return x % BUCKETS


# ---------------------------------------------------------------------------- the arithmetic


@pytest.mark.parametrize(("hits", "n"), [(0, 50), (3, 50), (200, 1000), (999, 1000), (37, 37)])
def test_wilson_interval_is_statsmodels_wilson(hits: int, n: int) -> None:
    low, high = wilson_interval(hits, n)
    expected = proportion_confint(hits, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(expected[0], abs=1e-12)
    assert high == pytest.approx(expected[1], abs=1e-12)


def test_finite_population_correction_narrows_to_the_share() -> None:
    wide = wilson_interval(30, 100)
    narrower = wilson_interval(30, 100, population=200)
    assert narrower[0] > wide[0] and narrower[1] < wide[1]
    assert wilson_interval(30, 100, population=100) == (0.3, 0.3)


def test_estimate_scales_the_sampled_share_and_prints_its_margin() -> None:
    found = estimate(in_segment=1020, sampled=5000, total=100_000, fraction=0.05)
    assert found.estimate == 20_400
    low, high = wilson_interval(1020, 5000, population=100_000)
    assert (found.low, found.high) == (math.floor(low * 100_000), math.ceil(high * 100_000))
    assert str(found) == "≈ 20,400 users ± 1,100 (95%)"
    assert int(found) == 20_400 and 20_000 in found and 25_000 not in found
    assert not found.exact


def test_estimate_never_excludes_what_the_sample_saw() -> None:
    # 5 of 10 sampled users are in: at least 5 and at most 95 of the 100 users are.
    found = estimate(in_segment=5, sampled=10, total=100, fraction=0.1)
    assert found.low >= 5 and found.high <= 95
    empty = estimate(in_segment=0, sampled=0, total=40, fraction=0.1)
    assert (empty.low, empty.high) == (0, 40)


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), "0.1", True, 1e-6])
def test_bad_sample_share_is_refused(bad: object) -> None:
    ds = heapseg.connect()
    with pytest.raises(HeapsegError, match="sample="):
        ds.count(heapseg.user.subscription_type == "paid", sample=bad)


# ---------------------------------------------------------------------------- the sample


def test_the_sample_is_the_users_whose_bucket_is_below_the_share() -> None:
    ds = heapseg.connect()
    users = ds.users.select("user_id").to_pandas()
    everyone = heapseg.Group("and", ())
    for seed in (0, 1, 2):
        expected = sum(python_bucket(int(i), seed) < 1000 for i in users.user_id)
        found = ds.count(everyone, sample=0.1, seed=seed)
        # Every user of the sample joined before the sample's as_of (no joined_at after it).
        assert found.sampled == expected
        assert found.in_sample == expected
        assert abs(expected - 0.1 * len(users)) < 4 * math.sqrt(0.09 * len(users))


def test_negative_and_huge_integer_ids_get_the_same_bucket_as_in_python() -> None:
    from heapseg.sampling import bucket

    ids = [-(2**62), -7, -1, 0, 1, 2, 3, 2**31 - 1, 2**31, 2**62 + 5]
    table = ibis.memtable({"user_id": ids})
    con = ibis.duckdb.connect()
    got = con.execute(table.select(b=bucket(table.user_id, seed=3))).b.tolist()
    assert got == [python_bucket(i, 3) for i in ids]


def test_estimate_counts_the_sampled_members_of_every_segment() -> None:
    """In-sample counts against the reference: members of the segment with a sampled id."""
    scenario = strategies.random_scenario(3, max_users=1500, max_events=12000)
    con = ibis.duckdb.connect()
    ds = load_scenario(con, scenario, create_tables=True)
    data = reference_data(scenario)
    definitions = strategies.random_definitions(scenario, 5, n=8)
    sampled = {u for u in data.user_ids if _bucket_of(u) < 3000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
        found = ds.counts(
            {f"d{i}": d for i, d in enumerate(definitions)}, scenario.as_of, sample=0.3
        )
    assert found["__total__"] == reference.total(data)
    for i, definition in enumerate(definitions):
        members = reference.evaluate_loaded(definition, data)
        got = found[f"d{i}"]
        assert isinstance(got, Estimate)
        if isinstance(next(iter(data.user_ids), 0), numbers.Integral):
            assert got.sampled == len(sampled)
            assert got.in_sample == len(members & sampled)


def _bucket_of(user_id: object) -> int:
    return python_bucket(int(user_id)) if isinstance(user_id, numbers.Integral) else -1


def test_the_sample_copy_follows_the_data(tmp_path) -> None:
    """On DuckDB the sample is copied once; new rows (or refresh()) make a new copy."""
    import duckdb
    import pandas as pd

    path = tmp_path / "d.duckdb"
    raw = duckdb.connect(str(path))
    raw.execute("CREATE TABLE users AS SELECT range AS user_id FROM range(1, 2001)")
    raw.execute(
        "CREATE TABLE events AS SELECT range AS user_id, TIMESTAMP '2026-01-01' AS time, "
        "'Session' AS event FROM range(1, 2001) WHERE range % 2 = 0"
    )
    ds = heapseg.connect(ibis.duckdb.from_connection(raw), as_of="2026-06-01", joining=False)
    did = heapseg.did("Session")
    first = ds.count(did, sample=0.25)
    sampled = [u for u in range(1, 2001) if python_bucket(u) < 2500]
    assert first.in_sample == sum(u % 2 == 0 for u in sampled)
    raw.execute(
        "INSERT INTO events SELECT range, TIMESTAMP '2026-01-02', 'Session' "
        "FROM range(1, 2001) WHERE range % 2 = 1"
    )
    assert ds.count(did, sample=0.25).in_sample == len(sampled)  # rows changed: copied again
    raw.execute("UPDATE events SET event = 'Other' WHERE user_id % 2 = 1")
    assert ds.count(did, sample=0.25).in_sample == len(sampled)  # same row counts: kept
    ds.refresh()
    assert ds.count(did, sample=0.25).in_sample == first.in_sample
    assert ds.count(did) == int(pd.Series(range(1, 2001)).mod(2).eq(0).sum())


def test_the_sample_copy_counts_the_events_of_merged_ids_for_their_user() -> None:
    """The DuckDB copy holds events with identities merged: an anonymous id's events count for
    the user it became (its least target when it has two), in the estimate as in the exact count."""
    import duckdb

    raw = duckdb.connect()
    raw.execute("CREATE TABLE users AS SELECT range AS user_id FROM range(1, 3001)")
    # Every user has one Session of their own; users divisible by 3 had an anonymous id
    # (user + 100,000) with a second Session, merged into them and, for even ones, into a
    # second, larger target too (the least target wins).
    raw.execute(
        "CREATE TABLE events AS "
        "SELECT range AS user_id, TIMESTAMP '2026-01-01' AS time, 'Session' AS event "
        "FROM range(1, 3001) UNION ALL "
        "SELECT range + 100000, TIMESTAMP '2026-01-02', 'Session' FROM range(3, 3001, 3) "
        "ORDER BY time DESC"
    )
    raw.execute(
        "CREATE TABLE user_migrations AS "
        "SELECT range + 100000 AS from_user_id, range AS to_user_id FROM range(3, 3001, 3) "
        "UNION ALL SELECT range + 100000, range + 1 FROM range(6, 3001, 6)"
    )
    ds = heapseg.connect(ibis.duckdb.from_connection(raw), as_of="2026-06-01", joining=False)
    twice = heapseg.did("Session").times() >= 2
    found = ds.count(twice, sample=0.3)
    sampled = [u for u in range(1, 3001) if python_bucket(u) < 3000]
    assert found.sampled == len(sampled)
    assert found.in_sample == sum(u % 3 == 0 for u in sampled)
    assert ds.count(twice) == 1000
    # Asked again, the kept copy gives the same answer.
    assert ds.count(twice, sample=0.3) == found


# ---------------------------------------------------------------------------- coverage

#: Scenarios with 900-1,500 users, integer and string ids, with and without joined_at.
COVERAGE_SEEDS = (3, 10, 20, 25)
DEFINITIONS = 30
SAMPLE_SEEDS = tuple(range(10))
SHARE = 0.2


def test_the_95_percent_interval_holds_the_exact_count_at_least_95_percent_of_the_time() -> None:
    """Coverage measured over 4 random datasets x 30 random segments x 10 samples.

    What ``count(sample=)`` computes is checked above against the reference; here the same
    arithmetic runs on every (segment, sample) pair from two queries per dataset: each
    user's membership of every segment, and each user's bucket under every seed.
    """
    from heapseg.sampling import bucket

    con = ibis.duckdb.connect()
    covered = trials = hard_covered = hard = 0
    for scenario_seed in COVERAGE_SEEDS:
        scenario = strategies.random_scenario(
            scenario_seed, max_users=1500, max_events=12000, point_in_time=scenario_seed % 2 == 0
        )
        ds = load_scenario(con, scenario, create_tables=True)
        definitions = strategies.random_definitions(scenario, scenario_seed, n=DEFINITIONS)
        users = ds.users
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", heapseg.UnknownEventWarning)
            flags = {
                f"d{i}": ibis.coalesce(ds.predicate(d, scenario.as_of), False)
                for i, d in enumerate(definitions)
            }
        buckets = {f"b{s}": bucket(users.user_id, s) for s in SAMPLE_SEEDS}
        joined = ds.population(scenario.as_of)
        frame = con.execute(users.select(joined=joined, **flags, **buckets))
        frame = frame[frame.joined.astype(bool)]
        total = len(frame)
        for seed in SAMPLE_SEEDS:
            sampled = frame[frame[f"b{seed}"] < round(SHARE * BUCKETS)]
            for i in range(DEFINITIONS):
                exact = int(frame[f"d{i}"].sum())
                guess = estimate(int(sampled[f"d{i}"].sum()), len(sampled), total, SHARE)
                trials += 1
                covered += exact in guess
                if 0 < exact < total:  # neither no one nor everyone
                    hard += 1
                    hard_covered += exact in guess
    rate, hard_rate = covered / trials, hard_covered / hard
    print(
        f"coverage of the 95% interval: {rate:.1%} of {trials} estimates; "
        f"{hard_rate:.1%} of the {hard} whose segment is neither empty nor everyone"
    )
    assert hard >= trials // 3, "too few segments that sampling can get wrong"
    assert rate >= 0.95 and hard_rate >= 0.95
