"""Times for people reading a status: seconds since the epoch as this machine's local time,
and how long ago that was (``2026-11-25 14:03:05 +0800 (3 s ago)``). Machine-readable
output (``--json``) keeps the raw numbers."""

from __future__ import annotations

import time


def local_time(epoch: float) -> str:
    """``2026-11-25 14:03:05 +0800``: this machine's time zone, its offset shown."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(epoch))


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``5 h``, ``3 d`` (rounded): seconds below 2 minutes, minutes
    below 2 hours, hours below 2 days, days beyond."""
    s = abs(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 120 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.0f} h"
    return f"{s / 86400:.0f} d"


def when(epoch: float | None, now: float) -> str:
    """``local time (N s ago)``; ``-`` for a time that never was (None). A time ahead of
    ``now`` (clocks apart) says so rather than pretending it is past."""
    if epoch is None:
        return "-"
    delta = now - epoch
    rel = f"{duration(delta)} ago" if delta >= 0 else f"{duration(delta)} from now"
    return f"{local_time(epoch)} ({rel})"
