"""UHF tags through an Impinj R2000 reader on a UART (the drivers' ``A0`` codec)."""

from drivers.codecs import r2000
from te.uhf import hexu

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock


class R2000Reader:
    """An Impinj R2000 reader (the ``A0`` protocol, ``drivers.codecs.r2000``): a real-time
    inventory round every ``scan_ms``; ``current(now)`` gives ``(epc hex, "")`` for the
    last tag read while it stays in the field (no user memory read: the EPC is the item)."""

    def __init__(self, uart: "UART", clock: "Clock", adr: int = 0x01, scan_ms: int = 300,
                 absent_ms: int = 1500) -> None:
        self.uart = uart
        self.clock = clock
        self.adr = adr
        self.scan_ms = scan_ms
        self.absent_ms = absent_ms
        self.dec = r2000.Decoder()
        self.sent = clock.add(clock.ticks_ms(), -scan_ms)
        self.epc = b""
        self.seen = 0
        self.errors = 0

    def poll(self, now: int) -> None:
        data = self.uart.read()
        if data:
            for r in self.dec.feed(data):
                if isinstance(r, r2000.TagRead):
                    self.epc = bytes(r.epc)
                    self.seen = now
                elif isinstance(r, r2000.InventoryEnd):
                    pass
                elif isinstance(r, r2000.ErrorReply) and r.code == 0x10:
                    pass  # "command succeeded"
                else:
                    self.errors += 1
        if self.clock.diff(now, self.sent) >= self.scan_ms:
            self.uart.write(r2000.encode_realtime_inventory(self.adr, 1))
            self.sent = now

    def present(self, now: int) -> bool:
        return bool(self.epc) and self.clock.diff(now, self.seen) < self.absent_ms

    def current(self, now: int) -> "tuple[str, str] | None":
        if self.present(now):
            return hexu(self.epc), ""
        return None
