"""heapseg's own files on disk: opened without following links or blocking, written atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from heapseg.errors import CatalogError

# --------------------------------------------------------------------------------------------
# Opening heapseg's own files


def open_regular(path: Path, flags: int, what: str, *, follow: bool = False) -> int:
    """Open a regular file; refuse what would block, damage another file or mislead.

    A FIFO, device or folder in the file's place is refused before anything is read or
    written (opened non-blocking, so a FIFO cannot hang the caller). Unless ``follow``, a
    symbolic link is refused too (``O_NOFOLLOW``), and so is a file with other hard links:
    writing through either would change a file that is not heapseg's.
    ``FileNotFoundError`` passes through; every other failure is a ``CatalogError``
    naming ``what`` and the path.
    """
    nofollow = 0 if follow else os.O_NOFOLLOW
    try:
        fd = os.open(path, flags | nofollow | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _open_error(path, what, exc, follow) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CatalogError(
                f"the {what} {path} is not a regular file (a FIFO, device or folder is in "
                "its place); heapseg does not read or write it: remove it"
            )
        if not follow and st.st_nlink > 1:
            raise CatalogError(
                f"the {what} {path} has {st.st_nlink - 1} other hard link(s); writing it would "
                "change those files too: replace it with a copy of its own"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_error(path: Path, what: str, exc: OSError, follow: bool) -> CatalogError:
    if exc.errno == errno.ELOOP and not follow:
        return CatalogError(
            f"the {what} {path} is a symbolic link; heapseg does not follow links for its own "
            "files (that could overwrite the file it points to): replace it with the file itself"
        )
    if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO without a reader, a folder
        return CatalogError(
            f"the {what} {path} is not a regular file (a FIFO, device or folder is in its "
            "place); heapseg does not read or write it: remove it"
        )
    return CatalogError(f"cannot open the {what} {path}: {exc.strerror or exc}")


def read_regular(path: Path, what: str, *, follow: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of a regular file and its ``stat`` (see ``open_regular``)."""
    fd = open_regular(path, os.O_RDONLY, what, follow=follow)
    try:
        st = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 1 << 16)):
            chunks.append(chunk)
    except OSError as exc:
        raise CatalogError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks), st


def resolve_link(path: Path) -> Path:
    """The file a symbolic link points to (the path itself when it is not a link).

    A catalog opened through a link is its target: writing the target keeps the link and
    the shared file one (replacing the link would split them), and the lock, history and
    snapshots then sit beside the target, where every writer finds them.
    """
    return Path(os.path.realpath(path)) if os.path.islink(path) else path


# --------------------------------------------------------------------------------------------
# Writing


def _umask() -> int:
    # os.umask can only be read by setting it, which races with other threads; Linux shows it.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some network filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def temp_prefix(path: Path) -> str:
    """Prefix of the temporary files a writer of ``path`` creates next to it."""
    return f".{path.name}."


def atomic_write(path: Path, data: bytes) -> os.stat_result:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    The data goes to a temporary file in the same directory, is flushed to disk, then renamed
    over the target (atomic on POSIX), and the directory entry itself is flushed.
    The file keeps its permissions (a shared catalog must stay readable by the team).
    Returns the new file's ``stat``.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise _unchanged(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        written = os.stat(tmp)  # a rename keeps inode, size and mtime: the new file's signature
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a quota, a permission: nothing replaced
            raise _unchanged(path, exc) from None
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise CatalogError(
            f"{path} was saved, but its folder could not be flushed to disk "
            f"({exc.strerror or exc}): the change may be lost if the machine crashes now"
        ) from None
    return written


def _unchanged(path: Path, exc: OSError) -> CatalogError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return CatalogError(
        f"cannot save {path}: {exc.strerror or exc}{where}; nothing was saved, the file is "
        "unchanged"
    )
