"""A deadline for each transaction on a PostgreSQL connection.

libpq has no client-side timeout for a query: a server that stops answering while its
machine still acknowledges TCP (a process stopped, a hung disk, a frozen proxy) keeps the
calling thread blocked for ever, and a collector's ingest thread with it. :class:`Watchdog`
runs one thread that, when a watched transaction passes its deadline, shuts the
connection's socket down (``shutdown(2)`` on a duplicate of its descriptor): the blocked
call returns at once with psycopg's "server closed the connection", which the caller turns
into its own error, and the pool discards the broken connection.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class Watchdog:
    def __init__(self, timeout_s: float, name: str = "store") -> None:
        self.timeout_s = timeout_s
        self.name = name
        self.cut = 0  # connections shut down for passing their deadline
        self._active: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, conn: Any) -> Iterator[None]:
        """Within the block, ``conn`` is cut if the block outlives ``timeout_s``."""
        key = id(conn)
        with self._lock:
            self._active[key] = (time.monotonic() + self.timeout_s, conn)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"{self.name}-watchdog", daemon=True
                )
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(key, None)

    def _run(self) -> None:
        tick = min(1.0, max(0.05, self.timeout_s / 10))
        while not self._stop:
            self._wake.wait(tick)
            now = time.monotonic()
            with self._lock:
                late = [(k, c) for k, (d, c) in self._active.items() if d < now]
                for k, _ in late:
                    self._active.pop(k, None)
            for _, conn in late:
                self._cut(conn)

    def _cut(self, conn: Any) -> None:
        try:
            fd = os.dup(conn.fileno())
        except Exception:  # closed meanwhile: nothing to cut
            return
        self.cut += 1  # counted before the cut: the blocked caller wakes at once
        try:
            with socket.socket(fileno=fd) as s:
                s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        log.warning(
            "%s: PostgreSQL did not answer within %.0f s; connection cut", self.name, self.timeout_s
        )

    def close(self) -> None:
        self._stop = True
        self._wake.set()
