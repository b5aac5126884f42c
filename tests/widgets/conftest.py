"""Fixtures for the widget tests: a small generated sample (DuckDB file), a catalog, the examples."""

from __future__ import annotations

from pathlib import Path

import pytest

import heapseg
from heapseg.sample import SAMPLE_AS_OF, generate

#: The three examples of the segment format spec.
NEW_TRIAL_USERS = {
    "combinator": "and",
    "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "trial"},
        {
            "kind": "event",
            "event": "Session",
            "did": True,
            "first_time": True,
            "window": {"last": 90, "unit": "day"},
        },
    ],
}
WINDOW_SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "did": True, "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}
POSSIBLE_CHURN = {
    "combinator": "and",
    "rules": [
        {"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"},
        {"kind": "event", "event": "Session", "did": False, "window": {"last": 90, "unit": "day"}},
    ],
}


@pytest.fixture(scope="session")
def sample_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 generated users (~140k events) in a DuckDB file, made once per test session."""
    return generate(tmp_path_factory.mktemp("widgets-sample") / "sample.duckdb", n_users=2000)


@pytest.fixture(scope="session")
def ds(sample_path: Path) -> heapseg.Dataset:
    return heapseg.connect(sample_path, as_of=SAMPLE_AS_OF)


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "team-segments.json"


@pytest.fixture
def catalog(catalog_path: Path):
    from heapseg.catalog import Catalog

    return Catalog(catalog_path, user="alice")


@pytest.fixture
def make_builder(ds):
    """Builders that count at once (no debounce) and are closed after the test."""
    from heapseg.widgets import SegmentBuilder

    made = []

    def make(*args, **kwargs):
        kwargs.setdefault("debounce", 0)
        builder = SegmentBuilder(ds, *args, **kwargs)
        made.append(builder)
        assert builder.wait(60)
        return builder

    yield make
    for builder in made:
        builder.close()
