"""heapseg.stats against SciPy and statsmodels on known inputs (test dependencies only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heapseg import stats

scipy_stats = pytest.importorskip("scipy.stats")
proportion = pytest.importorskip("statsmodels.stats.proportion")
multitest = pytest.importorskip("statsmodels.stats.multitest")

COUNTS = [(0, 1), (0, 10), (1, 10), (5, 10), (10, 10), (3, 500), (480, 500), (12, 40), (7, 9)]


@pytest.mark.parametrize(("successes", "trials"), COUNTS)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_statsmodels(successes, trials, confidence):
    expected = proportion.proportion_confint(
        successes, trials, alpha=1 - confidence, method="wilson"
    )
    assert stats.wilson_interval(successes, trials, confidence) == pytest.approx(
        expected, abs=1e-12
    )


def test_wilson_of_nothing_and_bad_counts():
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError, match="successes <= trials"):
        stats.wilson_interval(5, 3)
    with pytest.raises(ValueError, match="confidence"):
        stats.wilson_interval(1, 3, confidence=95)


@pytest.mark.parametrize(
    "values",
    [[2.0, 4.0, 4.0, 5.0, 9.0], [0, 0, 0, 1], [1.5, 2.5], list(np.linspace(-3, 40, 77) ** 2)],
)
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.999])
def test_mean_interval_matches_scipy_t_interval(values, confidence):
    values = np.asarray(values, dtype=float)
    expected = scipy_stats.t.interval(
        confidence, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values)
    )
    got = stats.mean_interval(len(values), values.sum(), (values**2).sum(), confidence)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_mean_interval_needs_two_values():
    assert all(math.isnan(v) for v in stats.mean_interval(1, 3.0, 9.0))


@pytest.mark.parametrize("dof", [1, 2, 3.5, 10, 41.78, 1000, 1e6])
@pytest.mark.parametrize("confidence", [0.5, 0.95, 0.999])
def test_t_quantile_matches_scipy(dof, confidence):
    expected = scipy_stats.t.ppf(0.5 + confidence / 2, dof)
    assert stats.student_t_quantile(confidence, dof) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "counts",
    [(30, 100, 50, 110), (1, 20, 9, 25), (400, 1000, 420, 1000), (0, 50, 5, 50), (7, 7, 3, 9)],
)
def test_two_proportion_test_matches_statsmodels(counts):
    x1, n1, x2, n2 = counts
    z, p = proportion.proportions_ztest([x1, x2], [n1, n2])
    got = stats.two_proportion_test(x1, n1, x2, n2)
    assert got.statistic == pytest.approx(z, rel=1e-12)
    assert got.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)


def test_two_proportion_test_with_nothing_to_tell_apart():
    assert math.isnan(stats.two_proportion_test(0, 10, 0, 20).p_value)
    assert math.isnan(stats.two_proportion_test(3, 0, 1, 20).p_value)


@pytest.mark.parametrize(
    "table",
    [
        [[30, 70], [50, 60], [20, 80]],
        [[5, 5], [9, 1]],
        [[100, 3, 7], [90, 12, 1], [80, 5, 40], [3, 0, 9]],
        [[1000, 9000], [1100, 8900]],
    ],
)
def test_chi_square_matches_scipy(table):
    statistic, p, dof, _ = scipy_stats.chi2_contingency(table, correction=False)
    got = stats.chi_square_test(table)
    assert got.statistic == pytest.approx(statistic, rel=1e-12)
    assert got.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert got.dof == dof


def test_chi_square_of_two_groups_is_the_z_test_squared():
    z = stats.two_proportion_test(30, 100, 50, 110)
    chi = stats.chi_square_test([[30, 70], [50, 60]])
    assert chi.statistic == pytest.approx(z.statistic**2)
    assert chi.p_value == pytest.approx(z.p_value)


def test_chi_square_leaves_out_empty_rows_and_needs_two_by_two():
    assert stats.chi_square_test([[30, 70], [0, 0], [50, 60]]) == pytest.approx(
        stats.chi_square_test([[30, 70], [50, 60]])
    )
    assert math.isnan(stats.chi_square_test([[30, 70]]).p_value)
    assert math.isnan(stats.chi_square_test([[30, 0], [20, 0]]).p_value)


@pytest.mark.parametrize(
    "groups",
    [
        ([2.0, 4.0, 4.0, 5.0, 9.0], [1.0, 1.5, 2.0, 2.5]),
        (list(range(50)), [x * 1.1 + 3 for x in range(80)]),
        ([0, 0, 0, 1, 0, 3], [2, 2, 5, 9, 1, 0, 0, 4, 7]),
    ],
)
def test_welch_from_sums_matches_scipy_on_the_raw_values(groups):
    a, b = (np.asarray(g, dtype=float) for g in groups)
    expected = scipy_stats.ttest_ind(a, b, equal_var=False)
    # What a backend returns per segment: a count, a sum and a sum of squares.
    spread = [stats.variance(len(g), g.sum(), (g**2).sum()) for g in (a, b)]
    got = stats.welch_test(len(a), a.mean(), spread[0], len(b), b.mean(), spread[1])
    assert got.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(expected.pvalue, rel=1e-8)
    assert got.dof == pytest.approx(expected.df, rel=1e-9)


def test_welch_needs_two_values_and_some_spread():
    assert math.isnan(stats.welch_test(1, 3.0, 0.0, 10, 2.0, 1.0).p_value)
    assert math.isnan(stats.welch_test(5, 3.0, 0.0, 10, 3.0, 0.0).p_value)


@pytest.mark.parametrize(
    "p_values",
    [[0.01, 0.04, 0.03, 0.2], [0.5], [0.001, 0.001, 0.9, 0.02, 0.049], [0.3, 0.2, 0.1]],
)
def test_holm_matches_statsmodels(p_values):
    expected = multitest.multipletests(p_values, method="holm")[1]
    assert stats.holm(p_values) == pytest.approx(list(expected), rel=1e-12)


def test_holm_leaves_untested_pairs_out_of_the_family():
    adjusted = stats.holm([0.01, float("nan"), 0.04])
    assert math.isnan(adjusted[1])
    assert [adjusted[0], adjusted[2]] == pytest.approx([0.02, 0.04])
