"""The market's price-computing scale on CAS ECR: ``DC2`` gives weight, unit price and
total as the scale computed them."""

from drivers.codecs import cas_ecr
from te.scale import Polled

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock


class CasScale(Polled):
    """``ask()`` sends DC2; ``poll`` until ``reading`` (a price frame) or ``failed``."""

    def __init__(self, uart: "UART", clock: "Clock", reply_ms: int = 1000) -> None:
        super().__init__(uart, clock, reply_ms)
        self.dec = cas_ecr.Decoder()
        self.reading: "cas_ecr.Reading | None" = None
        self.failed = False

    def ask(self, now: int) -> None:
        self.reading = None
        self.failed = False
        self._request(cas_ecr.encode_command("DC2"), now)

    def poll(self, now: int) -> bool:
        done = False
        data = self.uart.read()
        if data:
            for r in self.dec.feed(data):
                if isinstance(r, cas_ecr.Reading) and self.waiting:
                    self.waiting = False
                    self.reading = r
                    done = True
                else:
                    self.bad += 1
        if self._expire(now):
            self.failed = True
            done = True
        return done
