"""Where exported members land: the target checked before the query runs, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from heapseg.errors import ExportError

#: Names Windows keeps for devices, whatever the extension.
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))} | {
    f"LPT{i}" for i in range(1, 10)
}
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+')


def file_stem(name: str, limit: int = 100) -> str:
    """A file name (without extension) for a segment's name, valid on Linux, macOS and Windows.

    Characters no system accepts in a file name (``/ \\ : * ? " < > |`` and controls) become
    spaces, runs of spaces one, leading dots and trailing dots or spaces go, device names
    (``CON``, ``NUL``, ...) get a ``_`` in front, and the result is cut to ``limit`` characters.

    Examples
    --------
    >>> file_stem("US repeat buyers")
    'US repeat buyers'
    >>> file_stem("Churn: paid / 90 days?")
    'Churn paid 90 days'
    >>> file_stem("..."), file_stem("con")
    ('segment', '_con')
    """
    text = _UNSAFE.sub(" ", unicodedata.normalize("NFC", name))
    text = re.sub(r"\s+", " ", text).strip().lstrip(".")[:limit].rstrip(" .")
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    return text or "segment"


def free_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem.suffix``, or ``stem (2).suffix``, ``stem (3).suffix``... when taken."""
    target = folder / f"{stem}{suffix}"
    number = 2
    while os.path.lexists(target):
        target = folder / f"{stem} ({number}){suffix}"
        number += 1
    return target


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse a target that cannot or must not be written, before any query runs.

    Raises
    ------
    ExportError
        The folder is missing, is not a folder or is not writable; the target is a folder;
        or the target exists and ``overwrite`` is false.
    """
    folder = target.parent
    if not folder.exists():
        raise ExportError(f"cannot export to {target}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ExportError(f"cannot export to {target}: {folder} is not a folder")
    if target.is_dir():
        raise ExportError(f"cannot export to {target}: it is a folder")
    if os.path.lexists(target) and not overwrite:
        raise ExportError(
            f"{target} already exists; nothing was written (--force on the command line, or "
            "overwrite=True, replaces it)"
        )
    try:  # the kernel's answer, ACLs and read-only mounts included; leaves nothing behind
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ExportError(f"cannot write into {folder}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def no_leftovers(target: Path) -> Iterator[None]:
    """Remove the temporary files of an export that fails or is interrupted (Ctrl-C).

    The export writes ``.<name>.<random><suffix>`` beside the target and renames it; DuckDB
    writes over an existing file through its own ``tmp_<that name>``. Only files that
    appeared during this export are removed: another export's are left alone.
    """
    before = set(_temp_files(target))
    try:
        yield
    except BaseException:
        for name in set(_temp_files(target)) - before:
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()
        raise


def _temp_files(target: Path) -> list[str]:
    ours, suffix = f".{target.name}.", target.suffix.lower()
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return [n for n in names if n.removeprefix("tmp_").startswith(ours) and n.endswith(suffix)]
