"""The watchdog is fed only after the health checks pass.

Every subsystem ``beat``s after each completed poll; ``Health.poll`` runs the checks at
most every ``every_ms`` and feeds the watchdog only when all pass: no beat older than
``stale_ms`` (a stuck loop or driver), free heap above ``min_free`` (a leak), and each
extra check added with ``add`` (e.g. the flash log still writable). A failing check is
not fed, so the board resets after the watchdog timeout; the reason is kept in
``failing`` for the status record of the next boot. A long network outage is *not* a
failure: the flash log holds the records and a reset would not bring the network back.
"""

import gc

_TYPING = False
if _TYPING:
    from typing import Callable

    from machine import WDT

    from te.hal import Clock


class Health:
    def __init__(
        self,
        clock: "Clock",
        wdt: "WDT",
        every_ms: int = 1000,
        stale_ms: int = 10000,
        min_free: int = 8192,
    ) -> None:
        self.clock = clock
        self.wdt = wdt
        self.every_ms = every_ms
        self.stale_ms = stale_ms
        self.min_free = min_free
        self.beats: "dict[str, int]" = {}
        self.checks: "list[tuple[str, Callable[[], bool]]]" = []
        self.last = clock.ticks_ms()
        self.fed = 0
        self.failing = ""

    def beat(self, name: str, now: int) -> None:
        self.beats[name] = now

    def add(self, name: str, check: "Callable[[], bool]") -> None:
        self.checks.append((name, check))

    def check(self, now: int) -> str:
        """The first failing check's name, or ``""``."""
        for name, t in self.beats.items():
            if self.clock.diff(now, t) > self.stale_ms:
                return "stale:" + name
        if gc.mem_free() < self.min_free:
            gc.collect()
            if gc.mem_free() < self.min_free:
                return "heap"
        for name, fn in self.checks:
            try:
                if not fn():
                    return name
            except Exception:  # a crashing check fails, it never stops the loop
                return name
        return ""

    def poll(self, now: int) -> None:
        if self.clock.diff(now, self.last) < self.every_ms:
            return
        self.last = now
        self.failing = self.check(now)
        if not self.failing:
            self.wdt.feed()
            self.fed += 1
