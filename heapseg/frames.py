"""Query results as pandas frames that keep the data's types: integers with gaps, text, booleans."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["arrow_to_pandas", "nullable_dtype"]

# pandas' numpy types have no missing integer or boolean: a column with one gap would turn
# account ids into floats (366.0) and missing text into NaN. The nullable types keep both.
_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.float32(): pd.Float32Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
    pa.string_view(): pd.StringDtype(),
}


def nullable_dtype(arrow_type: pa.DataType) -> Any:
    """The pandas nullable type for an Arrow type (``Int64``, ``string``, ``boolean``, ...),
    or None to let pyarrow choose (dates, timestamps, nested values)."""
    return _NULLABLE.get(arrow_type)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as a pandas DataFrame with nullable types; missing values are ``<NA>``.

    Dates become ``datetime64`` columns, as ibis gives them.

    Examples
    --------
    >>> import pyarrow as pa
    >>> frame = arrow_to_pandas(pa.table({"account_id": [366, None], "email": ["a@x.io", None]}))
    >>> frame
       account_id   email
    0         366  a@x.io
    1        <NA>    <NA>
    >>> frame.dtypes.astype(str).to_dict()
    {'account_id': 'Int64', 'email': 'string'}
    """
    return table.to_pandas(types_mapper=nullable_dtype, date_as_object=False)
