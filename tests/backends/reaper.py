"""Clean up servers and temp dirs even when pytest dies without running its finalizers."""

from __future__ import annotations

import subprocess


class Reaper:
    """A detached shell that runs ``cleanup`` once this Python process is gone.

    It waits for end-of-file on a pipe whose only writer is this process: the kernel
    closes it however the process ends (an OOM kill or SIGKILL included), so a
    PostgreSQL server or a temp dir never outlives the test session. When the session
    ends normally, ``cancel`` stops the shell after the owner has cleaned up itself.
    """

    def __init__(self, cleanup: str) -> None:
        self._process = subprocess.Popen(
            ["sh", "-c", f"while read -r _; do :; done; {cleanup}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def cancel(self) -> None:
        """Stop the shell without running its cleanup."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
