"""Scales on a UART, polled: request, reply or timeout (the drivers' codecs do the bytes).

Exact unit conversions and the polled request base; the protocols live in their own
modules so a board carries only its scale's codec: ``te.sics_scale`` (Mettler Toledo
MT-SICS, the filling scale) and ``te.cas_scale`` (CAS ECR, the market's price-computing
scale, whose weight, unit price and total the terminal reproduces, never recomputes).
"""

_TYPING = False
if _TYPING:
    from machine import UART

    from drivers.codecs.quantities import Money, Weight
    from te.hal import Clock


def grams(w: "Weight") -> int:
    """A weight in grams, exactly; ``ValueError`` (an ``EncodeError``) if it would round."""
    if w.unit == "kg":
        return w.at(3)
    if w.unit == "g":
        return w.at(0)
    raise ValueError("unit %r is not a mass unit this terminal records" % w.unit)


def _pow10(n: int) -> int:
    f = 1
    for _ in range(n):
        f *= 10
    return f


def fen(m: "Money") -> int:
    """Yuan (as the scale prints them) in fen, exactly; ``ValueError`` if it would round."""
    if m.decimals <= 2:
        return m.value * _pow10(2 - m.decimals)
    f = _pow10(m.decimals - 2)
    if m.value % f:
        raise ValueError("%d at %d decimals is not a whole number of fen" % (m.value, m.decimals))
    return m.value // f


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
