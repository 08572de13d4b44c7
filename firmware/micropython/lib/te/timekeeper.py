"""Wall time with its quality, for the ``ts`` / ``tq`` of every record.

``tq`` is ``ntp`` for ``ntp_valid_ms`` after a sync (NTP, or any trusted source calling
``synced``), then ``rtc`` (the RTC keeps counting); at boot it is ``rtc`` when the RTC
already holds a plausible date (a battery-backed RTC survived), else ``unsynced``.
"""

from micropython import const

_TYPING = False
if _TYPING:
    from te.hal import Clock

# 2024-01-01T00:00:00Z: an RTC reading before this was never set.
PLAUSIBLE_MS = const(1704067200000)


class TimeKeeper:
    def __init__(self, clock: "Clock", ntp_valid_ms: int = 86400000) -> None:
        self.clock = clock
        self.ntp_valid_ms = ntp_valid_ms
        self.synced_at: "int | None" = None
        self.rtc_ok = clock.wall_ms() >= PLAUSIBLE_MS
        self.syncs = 0

    def synced(self, wall_ms: int) -> None:
        """A trusted source says it is ``wall_ms`` now: set the RTC, quality ``ntp``."""
        self.clock.set_wall_ms(wall_ms)
        self.synced_at = self.clock.ticks_ms()
        self.rtc_ok = True
        self.syncs += 1

    def quality(self) -> str:
        if self.synced_at is not None:
            if self.clock.diff(self.clock.ticks_ms(), self.synced_at) < self.ntp_valid_ms:
                return "ntp"
            return "rtc"
        return "rtc" if self.rtc_ok else "unsynced"

    def now(self) -> "tuple[int, str]":
        ms = self.clock.wall_ms()
        return (ms if ms > 0 else 0), self.quality()
