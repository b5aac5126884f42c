"""Query results as pandas frames with nullable types: Dataset.to_pandas, SegmentView pages."""

from __future__ import annotations

import duckdb
import ibis
import pandas as pd
import pyarrow as pa
import pytest

import heapseg
from heapseg.errors import DataError
from heapseg.frames import arrow_to_pandas

USERS_SQL = """
CREATE TABLE users AS SELECT * FROM (VALUES
    (1, 366, 'a@x.io', TRUE, 10.5::DOUBLE, DATE '2024-01-02'),
    (2, NULL, NULL, NULL, NULL, NULL),
    (3, 28, 'c@x.io', FALSE, 2.0, DATE '2024-02-03')
) AS t(user_id, account_id, email, opt_in, ltv, signup);
CREATE TABLE events AS SELECT * FROM (VALUES
    (1, TIMESTAMP '2024-03-01 10:00:00', 'Session'),
    (2, TIMESTAMP '2024-03-01 11:00:00', 'Session'),
    (3, TIMESTAMP '2024-03-02 09:00:00', 'Session')
) AS t(user_id, time, event);
"""


@pytest.fixture(scope="module")
def ds() -> heapseg.Dataset:
    con = duckdb.connect()
    con.execute(USERS_SQL)
    return heapseg.connect(ibis.duckdb.from_connection(con), as_of="2024-04-01")


def test_members_keep_integers_text_and_booleans_with_gaps(ds):
    frame = ds.to_pandas(ds.members(heapseg.Segment.from_dict({"rules": []})).order_by("user_id"))
    assert frame.dtypes.astype(str).to_dict() == {
        "user_id": "Int32",
        "account_id": "Int32",
        "email": "string",
        "opt_in": "boolean",
        "ltv": "Float64",
        "signup": "datetime64[ms]",
    }
    assert frame["account_id"].tolist()[0] == 366 and frame["account_id"].tolist()[2] == 28
    assert frame.loc[1, ["account_id", "email", "opt_in", "ltv"]].isna().all()
    assert frame.loc[1, "account_id"] is pd.NA and frame.loc[1, "email"] is pd.NA
    assert frame["email"].tolist() == ["a@x.io", pd.NA, "c@x.io"]
    assert frame["opt_in"].tolist() == [True, pd.NA, False]
    assert "366.0" not in frame.to_string() and "NaN" not in frame.to_string()
    # ibis's own to_pandas loses the types: what this method exists for.
    plain = ds.members(heapseg.Segment.from_dict({"rules": []})).order_by("user_id").to_pandas()
    assert plain["account_id"].dtype.kind == "f"


def test_dates_stay_dates(ds):
    frame = ds.to_pandas(ds.users.select("user_id", "signup").order_by("user_id"))
    assert frame["signup"].dtype.kind == "M"
    assert frame["signup"].tolist()[0] == pd.Timestamp("2024-01-02")
    assert pd.isna(frame["signup"].tolist()[1])


def test_a_segment_page_shows_whole_ids_and_missing_values_as_na(ds):
    view = ds.segment(heapseg.did("Session"))
    page = view.page(0, 10)
    assert page["account_id"].tolist() == [366, pd.NA, 28]
    html = view._repr_html_()
    assert "366.0" not in html and "NaN" not in html
    assert ">366<" in html and "&lt;NA&gt;" in html


def test_a_column_expression_gives_a_frame(ds):
    frame = ds.to_pandas(ds.users.order_by("user_id").email)
    assert frame["email"].tolist() == ["a@x.io", pd.NA, "c@x.io"]


def test_a_backend_failure_is_a_data_error(ds):
    broken = ds.users.mutate(bad=ds.users.email.cast("int64"))
    with pytest.raises(DataError, match="backend failed"):
        ds.to_pandas(broken)


@pytest.mark.parametrize(
    ("arrow", "dtype"),
    [
        (pa.int64(), "Int64"),
        (pa.int32(), "Int32"),
        (pa.uint8(), "UInt8"),
        (pa.float64(), "Float64"),
        (pa.bool_(), "boolean"),
        (pa.string(), "string"),
        (pa.large_string(), "string"),
    ],
)
def test_every_arrow_scalar_type_has_its_nullable_pandas_type(arrow, dtype):
    frame = arrow_to_pandas(pa.table({"x": pa.array([None], type=arrow)}))
    assert frame["x"].dtype.name == dtype
    assert frame["x"].tolist() == [pd.NA]
