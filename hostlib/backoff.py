"""Reconnect policy: exponential backoff with jitter, capped so a backlog drains soon.

The n-th consecutive failure waits ``uniform(d/2, d)`` with ``d = min(cap, initial * 2**n)``.
A success resets the sequence. With the default cap of 5 s a link that comes back is
probed at least every 5 s, so draining starts within seconds of the network returning.

A *refused* connection (:meth:`Backoff.probe_delay`: the peer's host answered that nothing
listens on the port, i.e. the broker is restarting) is retried after ``uniform(initial/2,
initial)`` however long it lasts, and does not grow the sequence: such an attempt costs the
peer one SYN and one RST, and the link is back within ``initial`` of the broker, not
within the cap. Anything that reached the peer (a TLS handshake, a refused CONNECT, a
dropped session) or never got an answer (a network down) backs off as above.
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

    def probe_delay(self) -> float:
        """Delay before the next attempt after a refused connection (nothing listening):
        ``uniform(initial/2, initial)``, capped like every delay; counts no failure."""
        d = min(self.initial, self.cap)
        return self.rng.uniform(d / 2, d)

    def reset(self) -> None:
        self.failures = 0
