"""The moment of an evaluation: one type (:data:`AsOf`) and one rule to resolve it."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import TypeAlias

from heapseg.errors import HeapsegError
from heapseg.model import parse_iso_timestamp

__all__ = ["AsOf", "resolve_as_of"]

#: What every ``as_of=`` accepts: a datetime (naive means UTC), a date (its midnight UTC), an
#: ISO-8601 string (a pandas Timestamp is a datetime), or None for "the dataset's default, else now".
AsOf: TypeAlias = "datetime | date | str | None"


def resolve_as_of(as_of: AsOf = None, default: AsOf = None) -> datetime:
    """``as_of`` as a naive UTC datetime: ``as_of``, else ``default``, else now (to the second).

    >>> resolve_as_of("2026-03-01T12:00:00+01:00")
    datetime.datetime(2026, 3, 1, 11, 0)
    >>> resolve_as_of(None, default="2026-11-01")
    datetime.datetime(2026, 11, 1, 0, 0)
    """
    if as_of is None:
        as_of = default
    if as_of is None:
        return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    if isinstance(as_of, str):
        return parse_iso_timestamp(as_of, "as_of")
    if hasattr(as_of, "to_pydatetime"):  # a pandas Timestamp becomes a plain datetime
        as_of = as_of.to_pydatetime()
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            return as_of
        try:
            return as_of.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise HeapsegError(
                f"as_of {as_of.isoformat()} is outside the years 1 to 9999 in UTC"
            ) from None
    if isinstance(as_of, date):
        return datetime(as_of.year, as_of.month, as_of.day)
    raise HeapsegError(f"as_of must be a datetime, a date or an ISO-8601 string, got {as_of!r}")
