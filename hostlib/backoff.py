"""Reconnect policy: exponential backoff with jitter, capped so a backlog drains soon.

The n-th consecutive failure waits ``uniform(d/2, d)`` with ``d = min(cap, initial * 2**n)``.
A success resets the sequence. With the default cap of 5 s a link that comes back is
probed at least every 5 s, so draining starts within seconds of the network returning.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.2
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return float(min(self.cap, self.initial * (2 ** min(self.failures, 30))))

    def next_delay(self) -> float:
        """Delay before the next attempt; counts one more failure."""
        d = self.ceiling()
        self.failures += 1
        return self.rng.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0
