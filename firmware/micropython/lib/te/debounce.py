"""Debouncing for buttons and for fault conditions with raise and clear delays."""

_TYPING = False
if _TYPING:
    from te.hal import Clock, In

RAISED = 1
CLEARED = 2


class Button:
    """``poll`` is True once per press held at least ``ms``."""

    __slots__ = ("inp", "clock", "ms", "since", "done")

    def __init__(self, inp: "In", clock: "Clock", ms: int = 50) -> None:
        self.inp = inp
        self.clock = clock
        self.ms = ms
        self.since = -1
        self.done = False

    def poll(self, now: int) -> bool:
        if not self.inp.on():
            self.since = -1
            self.done = False
            return False
        if self.since < 0:
            self.since = now
        if not self.done and self.clock.diff(now, self.since) >= self.ms:
            self.done = True
            return True
        return False


class Condition:
    """A fault: raised after ``bad`` held ``raise_ms``, cleared after ``good`` held
    ``clear_ms``. ``update`` returns ``RAISED``, ``CLEARED`` or 0."""

    __slots__ = ("name", "clock", "raise_ms", "clear_ms", "active", "since", "raised_ts")

    def __init__(self, name: str, clock: "Clock", raise_ms: int, clear_ms: int) -> None:
        self.name = name
        self.clock = clock
        self.raise_ms = raise_ms
        self.clear_ms = clear_ms
        self.active = False
        self.since = -1
        self.raised_ts = 0

    def _held(self, now: int, cond: bool, ms: int) -> bool:
        if not cond:
            self.since = -1
            return False
        if self.since < 0:
            self.since = now
        if self.clock.diff(now, self.since) >= ms:
            self.since = -1
            return True
        return False

    def update(self, now: int, bad: bool, good: bool) -> int:
        if not self.active:
            if self._held(now, bad, self.raise_ms):
                self.active = True
                return RAISED
        elif self._held(now, good, self.clear_ms):
            self.active = False
            return CLEARED
        return 0
