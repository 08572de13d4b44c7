"""Debouncing for buttons. Fault conditions (raise and clear delays) are the elevator rule
set's: :class:`drivers.codecs.elevator_rules.Condition`."""

_TYPING = False
if _TYPING:
    from te.hal import Clock, In


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
