"""The writers' lock: a timeout naming the holder, released by the kernel when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from heapseg.catalog import LockTimeoutError
from heapseg.catalog.locking import FileLock, login

REPO = Path(__file__).resolve().parents[2]


def test_a_held_lock_times_out_with_a_clear_message(tmp_path):
    lock_path = tmp_path / "team.json.lock"
    with FileLock(lock_path):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as caught:
            FileLock(lock_path, timeout=0.3).acquire()
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message
    assert "stayed locked for more than 0.3 s" in message
    assert str(lock_path) in message
    # Released: the next writer gets it at once.
    with FileLock(lock_path, timeout=0.1):
        pass


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from heapseg.catalog.locking import FileLock
    lock = FileLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_the_kernel_releases_the_lock_of_a_killed_writer(tmp_path):
    lock_path = tmp_path / "team.json.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeoutError, match=f"pid {holder.pid}"):
            FileLock(lock_path, timeout=0.2).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # The lock file is still there, still naming the dead holder: it does not matter.
        assert f'"pid": {holder.pid}' in lock_path.read_text()
        started = time.monotonic()
        with FileLock(lock_path, timeout=1):
            assert time.monotonic() - started < 0.5
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_login_is_the_os_login_else_the_uid(monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "carol")
    assert login() == "carol"

    def no_login_name():
        raise KeyError("getpwuid(): uid not found")

    monkeypatch.setattr("getpass.getuser", no_login_name)
    assert login() == f"uid{os.getuid()}"
