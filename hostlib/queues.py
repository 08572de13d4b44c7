"""Back-pressure helper shared by the agent's intake and the collector's ingest."""

from __future__ import annotations

import queue
import threading
from typing import TypeVar

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
