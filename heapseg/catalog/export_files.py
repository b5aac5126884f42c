"""Where exported members land: the target checked before the query runs, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from heapseg.errors import ExportError


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
