"""What every chart shares: its error (defined in heapseg.errors), its limit on points and the
names of "everybody else"."""

from __future__ import annotations

from heapseg.errors import ChartError

__all__ = ["ALL_USERS", "MAX_ROWS", "NEUTRAL", "REST", "ChartError", "check_points", "pct"]

#: The most rows a chart sends to Vega-Lite: Altair's own limit, and far more points than a
#: reader can tell apart. A finer interval or a longer window is refused before any query runs.
MAX_ROWS = 5000
ALL_USERS = "All users"
REST = "Rest"
#: The greys of the groups that mean "everybody else", whatever the palette.
NEUTRAL = {ALL_USERS: "#595959", REST: "#b3b3b3"}


def check_points(n: int, hint: str) -> None:
    """Refuse, before anything runs, a chart that would send more than ``MAX_ROWS`` rows."""
    if n > MAX_ROWS:
        raise ChartError(f"this chart would have {n:,} points (at most {MAX_ROWS:,}): {hint}")


def pct(part: float, whole: float) -> float:
    """``part / whole``, 0 when ``whole`` is 0."""
    return float(part) / float(whole) if whole else 0.0
