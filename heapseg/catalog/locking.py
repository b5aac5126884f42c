"""The writers' lock: an exclusive flock on a file beside the catalog, with a timeout."""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import secrets
import socket
import time
from datetime import datetime
from pathlib import Path

from heapseg.catalog.files import open_regular
from heapseg.errors import CatalogError, LockTimeoutError

DEFAULT_LOCK_TIMEOUT = 10.0


class FileLock:
    """An exclusive ``fcntl.flock`` on a separate lock file, with a timeout.

    The kernel releases a flock when its holder dies, however it dies (SIGKILL included), so a
    crashed writer never leaves the catalog locked. The lock file only ever holds a note about
    the current holder, used in the timeout message; it is never trusted for the lock itself.
    """

    def __init__(self, path: Path, timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        # Never through a link: the holder note truncates and rewrites the file.
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, "catalog lock file")
        except FileNotFoundError:
            raise CatalogError(
                f"cannot create the catalog lock file {self.path}: its folder does not exist"
            ) from None
        deadline = time.monotonic() + self.timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockTimeoutError(
                        f"the catalog is locked by another writer{holder} and stayed locked "
                        f"for more than {self.timeout:g} s (lock file {self.path}); "
                        "try again, or raise lock_timeout"
                    ) from None
                # Jitter keeps many waiting processes from waking in step.
                time.sleep(pause * (0.5 + secrets.randbelow(1000) / 1000))
                pause = min(pause * 2, 0.01)
            except OSError as exc:
                os.close(fd)
                raise CatalogError(f"cannot lock {self.path}: {exc}") from None
        self._fd = fd
        _write_holder(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _write_holder(fd: int) -> None:
    note = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "user": login(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)


def _read_holder(fd: int) -> str:
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" ({note['user']}, pid {int(note['pid'])} on {note['host']}, since {note['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def login() -> str:
    """Who is writing, for the history and the lock's note: the OS login, else ``uid<n>``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return f"uid{os.getuid()}"
