"""Every chart kind and its main variants on the 500-user chart sample, for the spec fixture.

``python -m tests.charts.spec_cases`` writes the Vega-Lite spec of each case to
``tests/charts/specs.json`` (run it only when a chart is meant to look different);
``test_specs.py`` checks that the charts still draw exactly these specs.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heapseg import charts
from heapseg.charts import SegmentColors
from heapseg.widgets.selection import selectable_spec
from tests.charts.conftest import BUYERS, PAID, SHOPPERS

FIXTURE = Path(__file__).with_name("specs.json")
TWO = {"Paid": PAID, "Buyers": BUYERS}
THREE = {"Paid": PAID, "Buyers": BUYERS, "Shoppers": SHOPPERS}


def cases() -> dict[str, Callable[[Any], Any]]:
    """The charts whose specs are pinned, by name; each takes the dataset. A fresh
    :class:`SegmentColors` per chart keeps colours independent of the order charts run in."""

    def c() -> SegmentColors:
        return SegmentColors()

    return {
        "breakdown_category": lambda ds: charts.breakdown(
            ds, ("Paid", PAID), "country", top=5, colors=c()
        ),
        "breakdown_number_all": lambda ds: charts.breakdown(
            ds, ("Buyers", BUYERS), "ltv", bins=4, versus="all", colors=c()
        ),
        "breakdown_event": lambda ds: charts.breakdown(
            ds, ("Paid", PAID), "payment_method", event="Completed Order", colors=c()
        ),
        "compare_share": lambda ds: charts.compare(ds, THREE, event="Add to Cart", colors=c()),
        "compare_sizes": lambda ds: charts.compare(ds, {"Buyers": BUYERS}, colors=c()),
        "compare_mean": lambda ds: charts.compare(
            ds, TWO, event="Session", measure="events_per_user", include_all=False, colors=c()
        ),
        "compare_property": lambda ds: charts.compare(ds, TWO, property="ltv", colors=c()),
        "sizes": lambda ds: charts.sizes(ds, THREE, colors=c()),
        "overlap": lambda ds: charts.overlap(ds, THREE),
        "trend_by": lambda ds: charts.trend(
            ds, "Session", by=TWO, include_all=True, last=14, colors=c()
        ),
        "trend_filter_users": lambda ds: charts.trend(
            ds, "Completed Order", filter=PAID, measure="users", interval="week", last=6, colors=c()
        ),
        "trend_sum": lambda ds: charts.trend(
            ds,
            "Completed Order",
            by={"Paid": PAID},
            measure="sum",
            property="revenue",
            interval="week",
            last=4,
            colors=c(),
        ),
        "funnel_by": lambda ds: charts.funnel(
            ds, ["Session", "Add to Cart", "Completed Order"], by=TWO, include_all=True, colors=c()
        ),
        "funnel_filter": lambda ds: charts.funnel(
            ds, ["Session", "Completed Order"], filter=PAID, colors=c()
        ),
        "retention_by": lambda ds: charts.retention(
            ds,
            "Session",
            "Completed Order",
            by={"Paid": PAID},
            include_all=True,
            periods=4,
            cohort_last=10,
            colors=c(),
        ),
        "retention_calendar": lambda ds: charts.retention(
            ds, "Session", periods=3, unit="day", convention="calendar", colors=c()
        ),
        "size_over_time": lambda ds: charts.size_over_time(ds, TWO, last=6, colors=c()),
        "size_over_time_share": lambda ds: charts.size_over_time(
            ds, {"Buyers": BUYERS}, interval="day", last=5, share=True, colors=c()
        ),
        "lifecycle_by": lambda ds: charts.lifecycle(
            ds, "Session", by={"Paid": PAID}, include_all=True, last=6
        ),
        "lifecycle_filter": lambda ds: charts.lifecycle(ds, filter=BUYERS, interval="day", last=5),
        "stickiness_by": lambda ds: charts.stickiness(
            ds, "Session", by=TWO, include_all=True, colors=c()
        ),
        "stickiness_users": lambda ds: charts.stickiness(
            ds, window=10, filter=PAID, measure="users", colors=c()
        ),
        "paths_by": lambda ds: charts.paths(
            ds, "Add to Cart", by={"Paid": PAID}, include_all=True, steps=2, top=3, colors=c()
        ),
        "paths_next": lambda ds: charts.paths(
            ds, "Session", direction="next", steps=2, top=4, colors=c()
        ),
    }


#: The cases whose clickable spec (the chart selection widget's) is pinned too.
SELECTABLE = ("breakdown_category", "funnel_by", "trend_by", "overlap", "paths_by")


def normalised(spec: dict) -> dict:
    """``spec`` with Altair's generated names (``param_7``, ``view_3``,
    ``view_b22bc7e3b12b38aa_0``) renumbered from 1 in order of appearance: their numbers
    count what the process drew before, their hashes how Altair built the view."""
    text = json.dumps(spec, sort_keys=True)
    seen: dict[str, str] = {}

    def rename(match: re.Match) -> str:
        name = match.group(0)
        if name not in seen:
            seen[name] = f"{match.group(1)}_{sum(k.startswith(match.group(1)) for k in seen) + 1}"
        return seen[name]

    return json.loads(re.sub(r"\b(param|view)_(?:[0-9a-f]{16}_)?\d+\b", rename, text))


def specs(ds: Any) -> dict[str, dict]:
    """The normalised spec of every case (and the clickable spec of :data:`SELECTABLE`)."""
    out = {}
    for name, draw in cases().items():
        chart = draw(ds)
        out[name] = normalised(chart.to_dict())
        if name in SELECTABLE:
            out[f"{name}_selectable"] = normalised(selectable_spec(chart))
    return out


def main(path: str) -> None:  # pragma: no cover - regenerates the fixture by hand
    import heapseg
    from tests.charts.conftest import AS_OF

    ds = heapseg.connect(path, as_of=AS_OF)
    FIXTURE.write_text(json.dumps(specs(ds), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1])
