"""Estimated counts from a deterministic sample of whole users: the sample, the estimate, its interval.

A sample keeps a user with all their events or not at all, so every behaviour rule is exact for
the users it keeps; only the share of users in the segment is estimated. The sample is a test on
``user_id`` alone, the same on every evaluation, so an estimate never flickers between two edits
of the same definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from heapseg.errors import HeapsegError

__all__ = ["BUCKETS", "Estimate", "estimate", "in_sample", "wilson_interval"]

#: The sample is ``bucket(user_id) < fraction * BUCKETS``: fractions go by steps of 1/BUCKETS.
BUCKETS = 10_000
#: A Mersenne prime: the integer mix below stays under 2**62, so no engine overflows a BIGINT.
_PRIME = 2_147_483_647
#: Multipliers of the mix (primitive roots modulo the prime, as in Park and Miller's generator).
_FIRST, _SECOND = 48_271, 69_621
#: z of a two-sided 95% interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A count estimated on a sample of users, with its 95% interval.

    Attributes
    ----------
    estimate
        The estimated count: all users times the segment's share among the sampled users.
    low, high
        The 95% interval of the count (Wilson's interval of that share, with the finite
        population correction, times all users).
    fraction
        The share of users the sample holds (asked for; the sample holds about that many).
    sampled, in_sample
        How many users the sample held, and how many of them are in the segment.
    total
        All users at ``as_of`` (exact): what the share is scaled by.
    exact
        Always False: an exact count is a plain ``int``.
    """

    estimate: int
    low: int
    high: int
    fraction: float
    sampled: int
    in_sample: int
    total: int
    exact: bool = False

    @property
    def margin(self) -> int:
        """Half the interval's width, in users."""
        return math.ceil((self.high - self.low) / 2)

    def __int__(self) -> int:
        return self.estimate

    def __contains__(self, count: int) -> bool:
        return self.low <= count <= self.high

    def __str__(self) -> str:
        estimate, margin = _rounded(self.estimate, self.margin)
        return f"≈ {estimate:,} users ± {margin:,} (95%)"

    def __repr__(self) -> str:
        return (
            f"<Estimate {self} [{self.low:,}, {self.high:,}] from {self.sampled:,} sampled users "
            f"({self.fraction:.2%})>"
        )


def _rounded(estimate: int, margin: int) -> tuple[int, int]:
    """Both rounded to the margin's second significant digit: ± 912 shows as ± 910."""
    if margin < 100:
        return estimate, margin
    step = 10 ** (len(str(margin)) - 2)
    return round(estimate / step) * step, math.ceil(margin / step) * step


def wilson_interval(
    hits: int, n: int, population: int | None = None, z: float = Z95
) -> tuple[float, float]:
    """Wilson's score interval of a share ``hits / n``.

    With ``population`` (the number the ``n`` were drawn from, without replacement) the
    variance takes the finite population correction ``1 - n / population``, applied as a
    larger effective sample size; the interval then narrows to the share itself as the
    sample becomes the whole population.

    Examples
    --------
    >>> low, high = wilson_interval(200, 1000)
    >>> round(low, 4), round(high, 4)
    (0.1764, 0.2259)
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n <= 0:
        return 0.0, 1.0
    share = hits / n
    effective = float(n)
    if population is not None and population > 1:
        remaining = max(population - n, 0) / (population - 1)
        if remaining == 0:
            return share, share
        effective = n / remaining
    z2 = z * z
    centre = (share + z2 / (2 * effective)) / (1 + z2 / effective)
    half = (
        z
        * math.sqrt(share * (1 - share) / effective + z2 / (4 * effective * effective))
        / (1 + z2 / effective)
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate(in_segment: int, sampled: int, total: int, fraction: float) -> Estimate:
    """The count of a segment with ``in_segment`` of ``sampled`` sampled users in it, among
    ``total`` users: a ratio estimate with Wilson's 95% interval.

    The interval is honest when the sample is random with respect to the segment, which a
    hash of the user id is for any segment not defined by that same hash.

    Examples
    --------
    >>> e = estimate(in_segment=1020, sampled=5000, total=100_000, fraction=0.05)
    >>> e.estimate, e.low, e.high
    (20400, 19333, 21511)
    >>> str(e)
    '≈ 20,400 users ± 1,100 (95%)'
    """
    if sampled <= 0:
        return Estimate(0, 0, total, fraction, 0, 0, total)
    low, high = wilson_interval(in_segment, sampled, population=max(total, sampled))
    point = round(total * in_segment / sampled)
    # Never an interval that leaves out the sampled members themselves or the estimate.
    low_n = min(max(math.floor(total * low), in_segment), point)
    high_n = max(min(math.ceil(total * high), total - (sampled - in_segment)), point)
    return Estimate(point, low_n, high_n, fraction, sampled, in_segment, total)


def check_fraction(fraction: float) -> float:
    """``fraction`` as a float in (0, 1], or a clear error."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise HeapsegError(f"sample= must be a number between 0 and 1, not {fraction!r}")
    if not 0 < fraction <= 1 or math.isnan(fraction):
        raise HeapsegError(f"sample= must be a share of users in (0, 1], not {fraction!r}")
    if round(fraction * BUCKETS) < 1:
        raise HeapsegError(f"sample= must be at least 1/{BUCKETS:,}, not {fraction!r}")
    return float(fraction)


def bucket(user_id: ir.Value, seed: int = 0) -> ir.IntegerValue:
    """Each user's bucket in ``[0, BUCKETS)``: a deterministic mix of ``user_id`` and ``seed``.

    Integer ids go through two rounds of a multiplicative mix modulo a prime in plain integer
    arithmetic, which DuckDB, PostgreSQL, Spark and every SQL engine compute alike: the same
    users are sampled on every engine. Other ids (strings) go through the engine's own hash
    function: deterministic on that engine, but each engine samples different users.
    """
    value = user_id.cast("int64") if user_id.type().is_integer() else user_id.hash()
    salt = (seed * 7_919 + 12_345) % _PRIME
    x = (value % _PRIME + _PRIME) % _PRIME  # in [0, prime), for negative ids too
    x = ((x + salt) % _PRIME * _FIRST) % _PRIME
    # The second round squares: a linear mix alone would sample consecutive ids in a lattice.
    x = (x * x % _PRIME * _SECOND + salt) % _PRIME
    return x % BUCKETS


def in_sample(user_id: ir.Value, fraction: float, seed: int = 0) -> ir.BooleanValue:
    """Whether each user is in the sample of ``fraction`` of the users drawn with ``seed``."""
    return bucket(user_id, seed) < ibis.literal(round(check_fraction(fraction) * BUCKETS))
