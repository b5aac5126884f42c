"""Fixtures for the widget tests: a small generated sample (DuckDB file), a catalog, the examples."""

from __future__ import annotations

from pathlib import Path

import pytest

import heapseg
from heapseg.sample import SAMPLE_AS_OF, generate
from tests.spec_examples import NEW_TRIALS, POSSIBLE_CHURN, WINDOW_SHOPPERS

#: The three examples of the segment format spec.
NEW_TRIAL_USERS = NEW_TRIALS
__all__ = ["NEW_TRIAL_USERS", "POSSIBLE_CHURN", "WINDOW_SHOPPERS"]


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
