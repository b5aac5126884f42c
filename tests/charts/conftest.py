"""A 500-user sample for the chart tests, its raw frames, and an independent oracle.

The oracle never touches heapseg or ibis: segment members come from the plain-Python reference
evaluator (tests/reference.py) and every aggregate is recomputed with pandas from the raw tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import altair as alt
import duckdb
import pandas as pd
import pytest

import heapseg
from heapseg.dataset import Dataset
from heapseg.sample import generate
from tests import reference

# Mid-day, before the sample's last events: charts must drop what happens after it.
AS_OF = datetime(2026, 9, 15, 12, 0)

PAID = {
    "combinator": "and",
    "rules": [{"kind": "user", "field": "subscription_type", "operator": "=", "value": "paid"}],
}
BUYERS = {
    "combinator": "and",
    "rules": [{"kind": "event", "event": "Completed Order", "window": {"last": 60, "unit": "day"}}],
}
SHOPPERS = {
    "combinator": "and",
    "rules": [
        {"kind": "event", "event": "Session", "count": {"operator": ">", "value": 5}},
        {"kind": "event", "event": "Completed Order", "did": False},
    ],
}


@dataclass
class Oracle:
    """Raw frames and reference members, for recomputing chart numbers with pandas."""

    users: pd.DataFrame
    raw_events: pd.DataFrame
    accounts: pd.DataFrame
    migrations: pd.DataFrame
    user_history: pd.DataFrame
    account_history: pd.DataFrame
    events: pd.DataFrame = field(init=False)
    _members: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        moves = self.migrations.groupby("from_user_id")["to_user_id"].min()
        events = self.raw_events.copy()
        events["user_id"] = events["user_id"].map(moves).fillna(events["user_id"]).astype("int64")
        # Events of ids that are not users belong to no one; events after as_of never count.
        self.events = events[events["user_id"].isin(self.users["user_id"])]

    def upto(self, as_of: datetime = AS_OF) -> pd.DataFrame:
        return self.events[self.events["time"] <= as_of]

    def everyone(self, as_of: datetime = AS_OF) -> set:
        """The users who had joined at ``as_of`` (every user of the sample has a joined_at)."""
        return self.members({"combinator": "and", "rules": []}, as_of)

    def members(self, definition: dict, as_of: datetime = AS_OF) -> set:
        key = (repr(definition), as_of)
        if key not in self._members:
            data = self._members.get(("data", as_of))
            if data is None:
                data = reference.load(
                    self.users,
                    self.raw_events,
                    self.accounts,
                    as_of,
                    None,
                    self.migrations,
                    user_history=self.user_history,
                    account_history=self.account_history,
                )
                self._members[("data", as_of)] = data
            self._members[key] = reference.evaluate_loaded(definition, data)
        return self._members[key]


@pytest.fixture(scope="session")
def sample_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("charts") / "sample.duckdb", n_users=500)


@pytest.fixture(scope="session")
def oracle(sample_path: Path) -> Oracle:
    con = duckdb.connect(str(sample_path), read_only=True)
    try:
        tables = (
            "users",
            "events",
            "accounts",
            "user_migrations",
            "user_history",
            "account_history",
        )
        frames = {t: con.sql(f"SELECT * FROM {t}").df() for t in tables}
    finally:
        con.close()
    frames["events"]["time"] = frames["events"]["time"].astype("datetime64[us]")
    return Oracle(
        frames["users"],
        frames["events"],
        frames["accounts"],
        frames["user_migrations"],
        frames["user_history"],
        frames["account_history"],
    )


@pytest.fixture(scope="session")
def ds(sample_path: Path) -> Dataset:
    dataset = heapseg.connect(sample_path, as_of=AS_OF)
    # The engine looks the event names up once (to warn of unknown events), reads two facts
    # for the join test once and each string property's values once (to warn of values the
    # data lacks): not a chart's queries, which tests count with ``executed``.
    dataset.event_names()
    dataset.population()
    for kind, properties in (
        ("user", dataset.schema.user_properties),
        ("account", dataset.schema.account_properties),
    ):
        for name, dtype in properties.items():
            if dtype.is_string():
                dataset.known_values(kind, name)
    return dataset


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row count of every backend result a chart brings into Python."""
    sizes: list[int] = []
    original = Dataset.execute

    def recording(self: Dataset, expr: Any) -> Any:
        result = original(self, expr)
        sizes.append(len(result) if hasattr(result, "__len__") else 1)
        return result

    monkeypatch.setattr(Dataset, "execute", recording)
    return sizes


@pytest.fixture
def renderer():
    """Restore Altair's renderer and JupyterChart's mode after a test that changes them."""
    name = alt.renderers.active
    options = dict(alt.renderers.options)
    offline = alt.JupyterChart._is_offline
    yield
    alt.renderers.enable(name, **options)
    alt.JupyterChart.enable_offline(offline)


@pytest.fixture
def engine(oracle: Oracle, load_tables: Any) -> Dataset:
    """The chart sample loaded into the backend under test (DuckDB, PostgreSQL or Spark), with
    its identities and histories, at the charts' ``AS_OF``: its charts must equal ``ds``'s."""
    con = load_tables(
        {
            "users": oracle.users,
            "events": oracle.raw_events,
            "accounts": oracle.accounts,
            "user_migrations": oracle.migrations,
            "user_history": oracle.user_history,
            "account_history": oracle.account_history,
        }
    )
    return heapseg.connect(
        con,
        user_migrations="user_migrations",
        user_history="user_history",
        account_history="account_history",
        as_of=AS_OF,
    )


def plain(data: pd.DataFrame) -> pd.DataFrame:
    """A chart's data with engine-neutral types (moments as naive UTC), to compare engines."""
    out = data.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return out.reset_index(drop=True)
