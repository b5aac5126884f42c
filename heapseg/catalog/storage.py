"""The catalog file: its top-level format, lock-free reads, locked atomic replacement."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from heapseg.catalog.files import atomic_write, read_regular, resolve_link, temp_prefix
from heapseg.catalog.jsontext import Loaded, dumps, json_type, loads_measured
from heapseg.catalog.locking import DEFAULT_LOCK_TIMEOUT, FileLock
from heapseg.errors import CatalogError, CatalogFormatError, LockTimeoutError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CatalogFile",
    "FileContent",
    "LockTimeoutError",
    "new_document",
    "parse_document",
    "parse_document_measured",
]

FORMAT_NAME = "heapseg-catalog"
FORMAT_VERSION = 1

# --------------------------------------------------------------------------------------------
# The document


class FileContent(NamedTuple):
    """A catalog as read: the document, the file version it came from, its nesting depth,
    and whether some integer in it was kept as text (``LongNumber``)."""

    document: dict | None
    signature: tuple[int, int, int, int] | None
    depth: int
    long_numbers: bool = False


def parse_document(text: str, source: str) -> dict:
    """Parse and check the top level of a catalog file (see ``parse_document_measured``)."""
    return parse_document_measured(text, source).value


def parse_document_measured(text: str, source: str, *, encoded: bytes | None = None) -> Loaded:
    """Parse and check the top level of a catalog file; entries are checked one by one later.

    ``encoded``: the file's bytes, when the text was decoded from them (see ``loads_measured``).

    Raises
    ------
    CatalogFormatError
        Empty, not JSON (with line and column), not a catalog, or another format version.
    """
    if not text.strip():
        raise CatalogFormatError(f"{source} is empty: it is not a heapseg catalog")
    try:
        loaded = loads_measured(text, encoded=encoded)
    except ValueError as exc:
        raise CatalogFormatError(
            f"{source} is not valid JSON (truncated or damaged?): {exc}"
        ) from None
    document = loaded.value
    if not isinstance(document, dict):
        raise CatalogFormatError(
            f"{source}: the top level must be a JSON object with "
            f'"format": "{FORMAT_NAME}", found {json_type(document)}'
        )
    if document.get("format") != FORMAT_NAME:
        raise CatalogFormatError(
            f'{source} is not a heapseg catalog: "format" is {document.get("format")!r}, '
            f"expected {FORMAT_NAME!r}"
        )
    version = document.get("version")
    if type(version) is not int:
        raise CatalogFormatError(
            f'{source}: "version" must be the integer {FORMAT_VERSION}, found {version!r}'
        )
    if version != FORMAT_VERSION:
        newer = " by a newer heapseg" if version > FORMAT_VERSION else ""
        raise CatalogFormatError(
            f"{source} was written{newer} in catalog format version {version}; "
            f"this heapseg reads version {FORMAT_VERSION} only"
        )
    if not isinstance(document.get("segments"), list):
        raise CatalogFormatError(
            f'{source}: "segments" must be a list, found {json_type(document.get("segments"))}'
        )
    return loaded


def new_document() -> dict:
    """An empty catalog document."""
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "segments": []}


# --------------------------------------------------------------------------------------------
# The file


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class CatalogFile:
    """One catalog JSON file: lock-free reads, locked read-modify-write transactions."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = resolve_link(Path(path))
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout

    def signature(self) -> tuple[int, int, int, int] | None:
        """What changes whenever the file is replaced (inode, size, mtime); None if missing."""
        try:
            return _signature(self.path.stat())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog {self.path}: {exc.strerror}") from None

    def read(self) -> dict | None:
        """The parsed document, or None when the file does not exist yet. Never writes."""
        return self.read_content().document

    def read_content(self) -> FileContent:
        """The parsed document with the signature of exactly the file version that was read."""
        try:
            data, st = read_regular(self.path, "catalog", follow=True)
        except FileNotFoundError:
            return FileContent(None, None, 0)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CatalogFormatError(
                f"{self.path} is not UTF-8 text (byte {exc.start}): it is not a heapseg catalog"
            ) from None
        loaded = parse_document_measured(text, str(self.path), encoded=data)
        return FileContent(loaded.value, _signature(st), loaded.depth, loaded.long_numbers)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock; leftovers of writers that died mid-write are removed."""
        with FileLock(self.lock_path, self.lock_timeout):
            self._remove_dead_temp_files()
            yield

    def encode(self, document: dict) -> bytes:
        """The file's bytes for ``document``; fails before anything is written."""
        try:
            return dumps(document).encode("utf-8")
        except ValueError as exc:  # a Python int longer than Python converts to text
            raise CatalogError(f"cannot store this value in {self.path}: {exc}") from None

    def check_writable(self) -> None:
        """Refuse, before anything is written, a file this writer must not replace.

        A rename would replace a read-only file, or a link, without a word (the folder
        allows it): a file without write permission for anyone (root included), one the
        writer may not write, and a link that took the file's place since it was opened are
        refused. Call under ``locked()``.
        """
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CatalogError(f"cannot read the catalog {self.path}: {exc.strerror}") from None
        if stat.S_ISLNK(st.st_mode):
            raise CatalogError(
                f"the catalog {self.path} was replaced by a symbolic link since it was opened; "
                "nothing was saved (open the catalog again to write where the link points)"
            )
        if not st.st_mode & 0o222:
            raise CatalogError(
                f"the catalog {self.path} is read-only (mode {stat.S_IMODE(st.st_mode):04o}); "
                "nothing was saved (make it writable to save changes)"
            )
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW))
        except OSError as exc:
            raise CatalogError(
                f"the catalog {self.path} is not writable by you ({exc.strerror}); nothing "
                "was saved"
            ) from None

    def write(self, data: bytes) -> tuple[int, int, int, int]:
        """Atomically replace the file with ``data`` (hold ``locked()``); the new signature."""
        return _signature(atomic_write(self.path, data))

    def _remove_dead_temp_files(self) -> None:
        # Writers create temp files only while holding the lock, and we hold it now: any
        # temp file still there belongs to a writer that was killed before its rename.
        prefix = temp_prefix(self.path)
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.path.parent):
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
