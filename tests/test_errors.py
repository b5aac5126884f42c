"""Tests of heapseg/errors.py: the error classes and backend_errors."""

from __future__ import annotations

import pytest

from heapseg.errors import ChartError, DataError, HeapsegError, SchemaError, backend_errors


def test_backend_errors_turns_any_other_exception_into_a_data_error() -> None:
    cause = OSError("disk full")
    with (
        pytest.raises(DataError, match=r"^reading the users failed: disk full$") as info,
        backend_errors("reading the users failed"),
    ):
        raise cause
    assert info.value.__cause__ is cause


def test_backend_errors_lets_heapseg_errors_through_unchanged() -> None:
    error = SchemaError("unknown property", "rules[0].field")
    with pytest.raises(SchemaError) as info, backend_errors("counting failed"):
        raise error
    assert info.value is error


def test_backend_errors_leaves_a_call_that_works_alone() -> None:
    with backend_errors("counting failed"):
        result = 1 + 1
    assert result == 2


def test_backend_errors_does_not_swallow_an_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), backend_errors("counting failed"):
        raise KeyboardInterrupt


def test_chart_error_is_a_heapseg_error_reexported_by_the_charts() -> None:
    from heapseg import charts
    from heapseg.charts import common

    assert issubclass(ChartError, HeapsegError)
    assert charts.ChartError is common.ChartError is ChartError
