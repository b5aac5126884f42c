"""The exceptions users see: every one derives from HeapsegError; backend failures become
DataError through :func:`backend_errors`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime


class HeapsegError(Exception):
    """Base class of every error heapseg raises on purpose."""


class BriefError(HeapsegError):
    """An error whose message says everything: a notebook shows it in one line, without the
    traceback through heapseg's code (``%tb`` still shows it).

    For mistakes in what the analyst typed (an unknown or ambiguous segment name), where 40
    lines of frames would bury the one line that says what to change.
    """

    def _render_traceback_(self) -> list[str]:
        # IPython asks an exception for its own traceback lines through this method.
        return [f"{type(self).__name__}: {self}"]


class DefinitionError(HeapsegError, ValueError):
    """A segment definition is not valid segment format 1.

    ``path`` locates the offending part (``rules[1].count.operator``).
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class SchemaError(HeapsegError):
    """A definition does not fit the dataset: unknown property, wrong type."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


class DataError(HeapsegError):
    """The data source is unusable: a missing table or column, a backend failure."""


@contextmanager
def backend_errors(message: str) -> Iterator[None]:
    """Run a backend call: a :class:`HeapsegError` passes as it is, any other exception becomes
    ``DataError(f"{message}: {exc}")``.

    Backends fail in every shape (DuckDB, psycopg, Spark, pyarrow, OS errors); a user needs one.

    Examples
    --------
    >>> with backend_errors("reading the users failed"):
    ...     raise OSError("disk full")
    Traceback (most recent call last):
    heapseg.errors.DataError: reading the users failed: disk full
    """
    try:
        yield
    except HeapsegError:
        raise
    except Exception as exc:
        raise DataError(f"{message}: {exc}") from exc


class ExportError(DataError):
    """Members cannot be written where asked: the folder is missing or not writable, the file
    exists (and replacing it was not asked for), or the disk is full."""


class ChartError(HeapsegError):
    """A chart cannot be drawn as asked (bad argument, too many points)."""


class SegmentReferenceError(BriefError):
    """A ``kind: segment`` reference cannot be resolved: unknown id or name, or a cycle."""

    def __init__(self, message: str, chain: tuple[str, ...] = ()) -> None:
        self.chain = chain
        super().__init__(message)


class CatalogError(HeapsegError):
    """The catalog file cannot be read or written."""


class CatalogFormatError(CatalogError):
    """The catalog file is not a valid heapseg catalog (empty, truncated, wrong format)."""


class ConflictError(CatalogError):
    """Someone else changed a segment since it was loaded."""


class EditConflictError(ConflictError):
    """The segment changed since it was loaded; nothing was saved.

    Attributes
    ----------
    segment_id
        The segment concerned.
    changed_by, changed_at
        Who saved the newer revision and when (from the history; ``None`` if unknown).
    expected_revision, current_revision
        The revision the edit was based on, and the one in the catalog now.
    """

    def __init__(
        self,
        message: str,
        *,
        segment_id: str,
        changed_by: str | None,
        changed_at: datetime | None,
        expected_revision: int,
        current_revision: int,
    ) -> None:
        super().__init__(message)
        self.segment_id = segment_id
        self.changed_by = changed_by
        self.changed_at = changed_at
        self.expected_revision = expected_revision
        self.current_revision = current_revision


class LockTimeoutError(CatalogError):
    """The catalog's lock stayed held by another writer longer than the timeout."""


class NotFoundError(CatalogError, BriefError, KeyError):
    """No segment with that id or name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AmbiguousNameError(NotFoundError):
    """A name matches more than one segment (a catalog file edited by hand can hold two
    segments of the same name): the message lists their ids, which are unique."""
