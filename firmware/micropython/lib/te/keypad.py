"""A 4 x 4 matrix keypad: rows driven low one at a time, columns read with pull-ups.

``poll`` scans every ``every_ms`` and returns a key once per press (seen in two scans in
a row, then released), or ``None``.
"""

_TYPING = False
if _TYPING:
    from machine import Pin

    from te.hal import Clock

LAYOUT = "123A456B789C*0#D"


class Keypad:
    def __init__(self, rows: "list[Pin]", cols: "list[Pin]", clock: "Clock",
                 every_ms: int = 20) -> None:
        self.rows = rows
        self.cols = cols
        self.clock = clock
        self.every_ms = every_ms
        self.last = clock.ticks_ms()
        self.seen = ""
        self.count = 0
        self.held = ""
        for r in rows:
            r.value(1)

    def scan(self) -> str:
        for i, r in enumerate(self.rows):
            r.value(0)
            for j, c in enumerate(self.cols):
                if not c.value():
                    r.value(1)
                    return LAYOUT[i * 4 + j]
            r.value(1)
        return ""

    def poll(self, now: int) -> "str | None":
        if self.clock.diff(now, self.last) < self.every_ms:
            return None
        self.last = now
        k = self.scan()
        if k != self.seen:
            self.seen = k
            self.count = 1
            if not k:
                self.held = ""
            return None
        self.count += 1
        if k and self.count >= 2 and self.held != k:
            self.held = k
            return k
        return None
