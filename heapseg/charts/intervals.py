"""Honest comparisons on charts: 95% intervals, pairwise tests with Holm's correction, and
how charts show them (interval rules, a note naming the differences that are significant).

Everything starts from counts and sums the backend returned (see :mod:`heapseg.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

from heapseg import stats
from heapseg.charts.common import REST

__all__ = [
    "CONFIDENCE",
    "PAIR_COLUMNS",
    "Group",
    "compared",
    "differs_from",
    "holm_pairs",
    "mean_bounds",
    "pairs_note",
    "partners",
    "proportion_bounds",
    "test_pair",
]

#: The confidence of every interval and the level of every test (after Holm's correction).
CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
PAIR_COLUMNS = ["a", "b", "difference", "test", "statistic", "p_value", "p_holm", "significant"]


@dataclass(frozen=True)
class Group:
    """One series' numbers for a test: a proportion ``x / n``, or a mean of ``n`` values with
    sum ``total`` and sum of squares ``squares``."""

    name: str
    n: float
    x: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def minus(self, part: Group, name: str = REST) -> Group:
        """The users of this group who are not in ``part`` (``part`` lies within it)."""
        return Group(
            name,
            self.n - part.n,
            self.x - part.x,
            self.total - part.total,
            self.squares - part.squares,
        )


def proportion_bounds(successes: float, trials: float) -> tuple[float, float]:
    """The Wilson interval of ``successes / trials`` (NaN for no trials)."""
    return stats.wilson_interval(successes, trials, CONFIDENCE)


def mean_bounds(n: float, total: float, squares: float) -> tuple[float, float]:
    """The t interval of the mean of ``n`` values from their sum and sum of squares."""
    return stats.mean_interval(n, total, squares, CONFIDENCE)


def compared(groups: Sequence[Group], everyone: Group | None) -> list[tuple[Group, Group]]:
    """The pairs a chart tests: every two segments; one segment alone against the rest of the
    users (``everyone`` minus it) when the chart also shows every user."""
    if len(groups) == 1 and everyone is not None:
        return [(groups[0], everyone.minus(groups[0]))]
    return list(combinations(groups, 2))


def test_pair(a: Group, b: Group, kind: str) -> dict[str, Any]:
    """One row of a pairs table: ``kind`` is ``"proportion"`` (two-proportion z-test) or
    ``"mean"`` (Welch's t-test)."""
    if kind == "proportion":
        result = stats.two_proportion_test(a.x, a.n, b.x, b.n)
        difference = _ratio(a.x, a.n) - _ratio(b.x, b.n)
        name = "two-proportion z"
    else:
        spread = [stats.variance(g.n, g.total, g.squares) for g in (a, b)]
        means = [_ratio(g.total, g.n) for g in (a, b)]
        result = stats.welch_test(a.n, means[0], spread[0], b.n, means[1], spread[1])
        difference = means[0] - means[1]
        name = "Welch t"
    return {
        "a": a.name,
        "b": b.name,
        "difference": difference,
        "test": name,
        "statistic": result.statistic,
        "p_value": result.p_value,
    }


def holm_pairs(rows: list[dict[str, Any]], columns: Sequence[str] = ()) -> pd.DataFrame:
    """The pairs table: Holm's correction over every pair shown (``p_holm``) and whether the
    difference is significant at :data:`CONFIDENCE` (``significant``); ``columns`` come first
    (e.g. the period or step a pair belongs to)."""
    table = pd.DataFrame(rows, columns=[*columns, *PAIR_COLUMNS[:-2]])
    table["p_holm"] = stats.holm(table["p_value"].astype(float).tolist())
    table["significant"] = (table["p_holm"].astype(float).fillna(1.0) < ALPHA).astype(bool)
    return table


def differs_from(pairs: pd.DataFrame, name: str, where: dict[str, Any] | None = None) -> str:
    """The series that ``name`` differs from significantly (comma-separated), within the
    pairs matching ``where`` (e.g. one period)."""
    at = tuple(where or {})
    return partners(pairs, at).get((name, *(where or {}).values()), "")


def partners(pairs: pd.DataFrame, at: Sequence[str] = ()) -> dict[tuple, str]:
    """:func:`differs_from` for every series at once: by ``(name, *values of at)``, the series
    it differs from significantly (comma-separated, in the pairs' order); absent: none."""
    # Plain lists in one pass: charts ask once per bar, and filtering the frame each time
    # cost more than the chart's query.
    columns = [pairs[c].tolist() for c in ("a", "b", *at)]
    found: dict[tuple, list[str]] = {}
    for i, significant in enumerate(pairs["significant"].astype(bool).tolist()):
        if significant:
            a, b, *where = (column[i] for column in columns)
            found.setdefault((a, *where), []).append(b)
            found.setdefault((b, *where), []).append(a)
    return {key: ", ".join(names) for key, names in found.items()}


def pairs_note(pairs: pd.DataFrame, at: str = "", word: str = "", limit: int = 3) -> str:
    """The subtitle's word on the tests: which differences are significant (95%, Holm) or
    that none is. ``at`` names the column a pair belongs to (a period, a step), shown after
    ``word`` ("week 2")."""
    if pairs.empty or pairs["p_value"].isna().all():
        return ""
    found = pairs.loc[pairs["significant"].astype(bool)]
    if found.empty:
        return "no difference between them is significant (95%, Holm)"
    parts = []
    for row in found.head(limit).itertuples(index=False):
        where = f" in {word or at} {getattr(row, at)}" if at else ""
        parts.append(f"{row.a} vs {row.b}{where}")
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return "significant (95%, Holm): " + "; ".join(parts) + more


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else math.nan
