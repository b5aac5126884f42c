"""Intervals and tests for comparing segments, from counts and sums only (no raw rows).

Wilson intervals for shares and rates, t intervals for means (from a count, a sum and a sum of
squares), the two-proportion z-test, Pearson's chi-square test, Welch's t-test and Holm's
correction. Pure Python (``math``): the distributions' tails come from the regularized
incomplete beta and gamma functions, computed here, so heapseg needs no SciPy. The tests check
every function against SciPy and statsmodels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import NamedTuple

__all__ = [
    "Test",
    "chi_square_test",
    "holm",
    "mean_interval",
    "normal_quantile",
    "student_t_quantile",
    "two_proportion_test",
    "variance",
    "welch_test",
    "wilson_interval",
]

NAN = float("nan")


class Test(NamedTuple):
    """A test's statistic, its two-sided p-value and its degrees of freedom (NaN when none)."""

    statistic: float
    p_value: float
    dof: float = NAN


def normal_quantile(confidence: float) -> float:
    """The two-sided standard normal quantile ``z`` of ``confidence`` (1.96 for 0.95)."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson's score interval for the proportion ``successes / trials``.

    Unlike the normal ("Wald") interval it stays within [0, 1] and is sound for small counts
    and for proportions near 0 or 1. ``(nan, nan)`` when ``trials`` is 0.

    Examples
    --------
    >>> low, high = wilson_interval(12, 40)
    >>> round(low, 4), round(high, 4)
    (0.1807, 0.4543)
    """
    if successes < 0 or trials < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return NAN, NAN
    z = normal_quantile(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    center = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # Exact at the ends (no rounding residue): no successes cannot be below 0, all not above 1.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return low, high


def variance(n: float, total: float, squares: float) -> float:
    """The sample variance (``n - 1`` in the denominator) of ``n`` values with sum ``total``
    and sum of squares ``squares``; NaN for fewer than two values."""
    if n < 2:
        return NAN
    return max(0.0, (squares - total * total / n) / (n - 1))


def mean_interval(
    n: float, total: float, squares: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The t interval of a mean from the values' count, sum and sum of squares.

    ``(nan, nan)`` for fewer than two values.

    Examples
    --------
    >>> values = [2.0, 4.0, 4.0, 5.0, 9.0]
    >>> low, high = mean_interval(len(values), sum(values), sum(v * v for v in values))
    >>> round(low, 3), round(high, 3)
    (1.586, 8.014)
    """
    spread = variance(n, total, squares)
    if math.isnan(spread):
        return NAN, NAN
    mean = total / n
    half = student_t_quantile(confidence, n - 1) * math.sqrt(spread / n)
    return mean - half, mean + half


def two_proportion_test(x1: float, n1: float, x2: float, n2: float) -> Test:
    """The two-sided z-test of ``x1 / n1 == x2 / n2`` with the pooled proportion.

    NaN when a group is empty or the pooled proportion is 0 or 1 (nothing to tell apart).

    Examples
    --------
    >>> result = two_proportion_test(30, 100, 50, 110)
    >>> round(result.statistic, 3), round(result.p_value, 4)
    (-2.303, 0.0213)
    """
    if n1 == 0 or n2 == 0:
        return Test(NAN, NAN)
    pooled = (x1 + x2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread <= 0:
        return Test(NAN, NAN)
    z = (x1 / n1 - x2 / n2) / math.sqrt(spread)
    return Test(z, math.erfc(abs(z) / math.sqrt(2)))


def chi_square_test(table: Sequence[Sequence[float]]) -> Test:
    """Pearson's chi-square test of independence of a table of counts (no continuity
    correction); rows or columns that are all zero are left out. NaN below a 2 x 2 table.

    Examples
    --------
    >>> result = chi_square_test([[30, 70], [50, 60], [20, 80]])
    >>> round(result.statistic, 3), round(result.p_value, 5), result.dof
    (15.876, 0.00036, 2.0)
    """
    rows = [list(map(float, r)) for r in table if any(r)]
    if not rows:
        return Test(NAN, NAN)
    keep = [j for j in range(len(rows[0])) if any(r[j] for r in rows)]
    rows = [[r[j] for j in keep] for r in rows]
    if len(rows) < 2 or len(keep) < 2:
        return Test(NAN, NAN)
    row_sums = [sum(r) for r in rows]
    col_sums = [sum(r[j] for r in rows) for j in range(len(keep))]
    grand = sum(row_sums)
    statistic = 0.0
    for i, r in enumerate(rows):
        for j, observed in enumerate(r):
            expected = row_sums[i] * col_sums[j] / grand
            statistic += (observed - expected) ** 2 / expected
    dof = (len(rows) - 1) * (len(keep) - 1)
    return Test(statistic, _upper_gamma(dof / 2, statistic / 2), float(dof))


def welch_test(n1: float, mean1: float, var1: float, n2: float, mean2: float, var2: float) -> Test:
    """Welch's two-sided t-test of equal means, with unequal variances (Welch–Satterthwaite
    degrees of freedom). NaN when a group has fewer than two values or both spreads are 0.

    Examples
    --------
    >>> result = welch_test(20, 5.1, 4.0, 25, 3.9, 9.0)
    >>> round(result.statistic, 3), round(result.p_value, 4), round(result.dof, 2)
    (1.604, 0.1163, 41.78)
    """
    if n1 < 2 or n2 < 2 or math.isnan(var1) or math.isnan(var2):
        return Test(NAN, NAN)
    a, b = var1 / n1, var2 / n2
    if a + b == 0:
        return Test(NAN, NAN)
    t = (mean1 - mean2) / math.sqrt(a + b)
    dof = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    return Test(t, _t_two_sided(t, dof), dof)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for the family tested together.

    NaN p-values (tests that could not be made) stay NaN and do not count in the family.

    Examples
    --------
    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, 0.2])]
    [0.04, 0.09, 0.09, 0.2]
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [NAN] * len(p_values)
    running = 0.0
    m = len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def student_t_quantile(confidence: float, dof: float) -> float:
    """The two-sided quantile ``t`` of Student's t with ``dof`` degrees of freedom:
    ``P(|T| <= t) == confidence``."""
    _check_confidence(confidence)
    if dof <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {dof}")
    alpha = 1 - confidence
    # P(|T| > t) = I_x(dof/2, 1/2) with x = dof / (dof + t²), increasing in x: bisect on x.
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = (low + high) / 2
        if _beta_regularized(middle, dof / 2, 0.5) < alpha:
            low = middle
        else:
            high = middle
        if high - low < 1e-16 * max(high, 1e-300):
            break
    x = (low + high) / 2
    return math.sqrt(dof * (1 - x) / x)


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _t_two_sided(t: float, dof: float) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``dof`` degrees of freedom."""
    return _beta_regularized(dof / (dof + t * t), dof / 2, 0.5)


def _beta_regularized(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` (Lentz's continued fraction)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); else use symmetry.
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1 - front * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1) < 1e-15:
            break
    return result


def _upper_gamma(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function ``Q(a, x)`` (the chi-square tail)."""
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        # The series of P(a, x), then Q = 1 - P.
        term = total = 1 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1 - total * math.exp(log_front))
    # Lentz's continued fraction of Q(a, x).
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    result = d
    for i in range(1, 10_000):
        numerator = -i * (i - a)
        b += 2
        d = numerator * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + numerator / c
        c = c if abs(c) > tiny else tiny
        result *= c * d
        if abs(c * d - 1) < 1e-16:
            break
    return math.exp(log_front) * result
