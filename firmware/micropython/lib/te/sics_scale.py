"""The filling scale on MT-SICS: ``SI`` immediate readings while filling, ``S`` stable."""

from drivers.codecs import sics
from te.scale import Polled, grams

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock


class SicsScale(Polled):
    """``ask(stable)``, then ``poll`` until ``reading`` (grams) or ``failed``."""

    def __init__(self, uart: "UART", clock: "Clock", reply_ms: int = 1500) -> None:
        super().__init__(uart, clock, reply_ms)
        self.dec = sics.Decoder()
        self.gross_g: "int | None" = None
        self.stable = False
        self.failed = False
        self.updated = 0

    def ask(self, stable: bool, now: int) -> None:
        self.failed = False
        self._request(sics.encode_command("S" if stable else "SI"), now)

    def poll(self, now: int) -> bool:
        """True when a reply (or a timeout) completed the request."""
        done = False
        data = self.uart.read()
        if data:
            for r in self.dec.feed(data):
                if not isinstance(r, sics.Reply) or not self.waiting:
                    self.bad += 1
                    continue
                self.waiting = False
                done = True
                if r.ok and r.weight is not None:
                    try:
                        self.gross_g = grams(r.weight)
                    except ValueError:
                        self.failed = True
                        continue
                    self.stable = r.status == "S"
                    self.updated = now
                else:
                    self.failed = True  # busy, overload, error line: ask again
        if self._expire(now):
            self.failed = True
            done = True
        return done
