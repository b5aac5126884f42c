"""A killed test session leaves no PostgreSQL server and no temp dir behind."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.backends import postgres
from tests.backends.reaper import Reaper

REPO = Path(__file__).resolve().parents[2]


def _wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _run_and_kill(code: str) -> dict:
    """Run ``code`` in a Python that prints one JSON line, then dies by SIGKILL."""
    script = f"{code}\nimport os, signal, sys\nsys.stdout.flush()\nos.kill(os.getpid(), signal.SIGKILL)\n"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -9, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cleanup_runs_when_the_owner_is_killed(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    _run_and_kill(
        "from tests.backends.reaper import Reaper\n"
        f"reaper = Reaper('touch {marker}')\n"
        "print('{}')"
    )
    assert _wait_for(marker.exists, seconds=10)


def test_cancel_skips_the_cleanup(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    reaper = Reaper(f"touch {marker}")
    reaper.cancel()
    time.sleep(0.5)
    assert not marker.exists()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
def test_a_killed_session_stops_its_postgres_server() -> None:
    reason = postgres.unavailable_reason()
    if reason:
        pytest.skip(reason)
    info = _run_and_kill(
        "import json\n"
        "from tests.backends.postgres import PostgresServer\n"
        "server = PostgresServer()\n"
        "server.start()\n"
        "print(json.dumps({'port': server.port, 'root': str(server.root)}))"
    )
    root = Path(info["root"])
    assert _wait_for(lambda: not root.exists() and not _accepts(info["port"]))
