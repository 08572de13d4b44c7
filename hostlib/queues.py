"""Back-pressure helpers shared by the agent's intake and the collector's ingest."""

from __future__ import annotations

import collections
import queue
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


def put_blocking(q: queue.Queue[T], item: T, stop: threading.Event) -> bool:
    """Put ``item``, waiting while ``q`` is full (so the MQTT thread stops reading and the
    broker holds the rest); gives up only when ``stop`` is set. True if it was queued."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


class MessageQueue(Generic[T]):
    """A FIFO of ``(item, payload)`` bounded by count *and* by payload bytes.

    :meth:`put_blocking` waits while ``max_items`` are queued or the queued payloads reach
    ``max_bytes`` (so the MQTT thread stops reading and the broker holds the rest). A
    message larger than ``max_bytes`` still goes in once the queue is empty: nothing waits
    for ever, and memory stays within ``max_bytes`` plus one message."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: collections.deque[tuple[T, bytes]] = collections.deque()
        self._cond = threading.Condition()

    def qsize(self) -> int:
        return len(self._items)

    def put_blocking(self, item: T, payload: bytes, stop: threading.Event) -> bool:
        """Queue ``(item, payload)`` when there is room; False if ``stop`` was set first."""
        with self._cond:
            while self._items and (
                len(self._items) >= self.max_items or self.nbytes + len(payload) > self.max_bytes
            ):
                if stop.is_set():
                    return False
                self._cond.wait(0.5)
            self._items.append((item, payload))
            self.nbytes += len(payload)
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> tuple[T, bytes]:
        """The oldest message, waiting up to ``timeout`` s; :class:`queue.Empty` if none."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                raise queue.Empty
            item = self._items.popleft()
            self.nbytes -= len(item[1])
            self._cond.notify_all()
            return item

    def get_nowait(self) -> tuple[T, bytes]:
        return self.get(0)
