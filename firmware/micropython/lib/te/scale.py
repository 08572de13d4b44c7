"""Scales on a UART, polled: request, reply or timeout (the drivers' codecs do the bytes).

Exact unit conversions (``drivers.codecs.quantities``, shared with the host) and the
polled request base; the protocols live in their own
modules so a board carries only its scale's codec: ``te.sics_scale`` (Mettler Toledo
MT-SICS, the filling scale) and ``te.cas_scale`` (CAS ECR, the market's price-computing
scale, whose weight, unit price and total the terminal reproduces, never recomputes).
"""

from drivers.codecs.quantities import fen as fen  # the apps take them from here
from drivers.codecs.quantities import grams as grams

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock


class Polled:
    def __init__(self, uart: "UART", clock: "Clock", reply_ms: int) -> None:
        self.uart = uart
        self.clock = clock
        self.reply_ms = reply_ms
        self.waiting = False
        self.sent = 0
        self.timeouts = 0
        self.bad = 0

    def _request(self, frame: bytes, now: int) -> None:
        self.uart.write(frame)
        self.waiting = True
        self.sent = now

    def _expire(self, now: int) -> bool:
        if self.waiting and self.clock.diff(now, self.sent) > self.reply_ms:
            self.waiting = False
            self.timeouts += 1
            return True
        return False
