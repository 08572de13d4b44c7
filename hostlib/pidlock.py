"""An exclusive lock on a file for a process's lifetime, naming the holder's pid.

``fcntl.flock`` on the lock file, taken without waiting: the second process is refused at
once with the holder's pid in the message. The kernel drops the lock when the holder's last
descriptor closes, so a crash (even ``kill -9``) never leaves a stale lock behind. The file
itself stays (removing it would let two processes lock two different files of one name);
the holder writes its pid into it, and clears it when it lets go.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from hostlib.errors import StartupError

PID_WAIT_S = 1.0  # how long a refused process waits for a holder that just locked to write


class PidLock:
    """``PidLock(path).acquire(why)`` … ``release()``; ``why`` ends a refusal's message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, why: str) -> PidLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StartupError(f"{self.path} is held by process {holder}: {why}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor lets go of the lock
            self._fd = None


def _holder(fd: int) -> str:
    """The pid the holder wrote ("unknown" if it has not written it within PID_WAIT_S)."""
    deadline = time.monotonic() + PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text or time.monotonic() > deadline:
            return text or "unknown"
        time.sleep(0.05)
