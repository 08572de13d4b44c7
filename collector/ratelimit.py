"""Rate limits per client address: a token bucket each, in memory, with a bounded table.

A client may send ``burst`` requests at once and then ``rate_per_min`` a minute. The table
holds at most ``max_clients`` buckets: when it is full, the bucket used least recently is
dropped (by then it has usually refilled, so nothing is forgotten that mattered). IPv6
clients are counted per /64, the block one subscriber line usually holds, so a client cannot
dodge the limit by walking through the addresses of its own block.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_CLIENTS = 10_000


def client_key(address: str | None) -> str:
    """The key a client is counted under: its IPv4 address, its IPv6 /64, or the text."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per client key; :meth:`take` says whether a request may go ahead."""

    def __init__(
        self,
        rate_per_min: int,
        burst: int,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_min <= 0 or burst <= 0 or max_clients <= 0:
            raise ValueError("rate_per_min, burst and max_clients must be above 0")
        self.rate = rate_per_min / 60.0  # tokens a second
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """0.0 if the request may go ahead (one token taken); else the seconds until it may."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = _Bucket(self.burst, now)
                self._buckets[key] = b
                while len(self._buckets) > self.max_clients:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
                b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate


def retry_after(wait_s: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
