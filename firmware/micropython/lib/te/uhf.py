"""UHF cylinder tags through a Chafon / CF-RU reader on a UART (the drivers' codec).

Inventories every ``scan_ms``; when a new EPC shows up it reads ``code_words`` words of
the tag's user memory, where the filling station wrote the cylinder code (ASCII, NUL
padded; GB/T 38059 keeps the cylinder identity on the tag). ``current(now)`` gives
``(epc hex, cylinder code)`` while the tag stays in the field. With ``code_words=0`` the
user memory is not read and ``current`` gives ``(epc hex, "")`` (the EPC is the item).
"""

from drivers.codecs import chafon

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock

IDLE = 0
WAIT_INV = 1
WAIT_READ = 2


def hexu(b: bytes) -> str:
    return "".join("%02X" % x for x in b)


class UhfReader:
    def __init__(self, uart: "UART", clock: "Clock", adr: int = 0xFF, scan_ms: int = 300,
                 reply_ms: int = 600, code_words: int = 8, absent_ms: int = 1500) -> None:
        self.uart = uart
        self.clock = clock
        self.adr = adr
        self.scan_ms = scan_ms
        self.reply_ms = reply_ms
        self.code_words = code_words
        self.absent_ms = absent_ms
        self.dec = chafon.Decoder()
        self.wait = IDLE
        self.sent = clock.add(clock.ticks_ms(), -scan_ms)
        self.epc = b""
        self.code = ""
        self.seen = 0
        self.errors = 0

    def _send(self, frame: bytes, wait: int, now: int) -> None:
        self.uart.write(frame)
        self.wait = wait
        self.sent = now

    def poll(self, now: int) -> None:
        data = self.uart.read()
        if data:
            for r in self.dec.feed(data):
                if isinstance(r, chafon.Inventory):
                    self._inventory(r, now)
                elif isinstance(r, chafon.Response) and r.cmd == chafon.CMD_READ:
                    self._read(r)
                else:
                    self.errors += 1
        if self.wait != IDLE and self.clock.diff(now, self.sent) > self.reply_ms:
            self.errors += 1
            self.wait = IDLE
        if self.wait == IDLE and self.clock.diff(now, self.sent) >= self.scan_ms:
            if self.epc and not self.code and self.code_words and self.present(now):
                self._send(chafon.encode_read(self.adr, self.epc, "user", 0, self.code_words),
                           WAIT_READ, now)
            else:
                self._send(chafon.encode_inventory(self.adr), WAIT_INV, now)

    def _inventory(self, r: "chafon.Inventory", now: int) -> None:
        if self.wait == WAIT_INV:
            self.wait = IDLE
        if not r.epcs:
            return
        epc = bytes(r.epcs[0])
        self.seen = now
        if epc != self.epc:
            self.epc = epc
            self.code = ""
            if not self.code_words:
                return  # the EPC is the item (warehouse): no user memory to read
            self._send(chafon.encode_read(self.adr, epc, "user", 0, self.code_words),
                       WAIT_READ, now)

    def _read(self, r: "chafon.Response") -> None:
        self.wait = IDLE
        if r.status != 0:
            self.errors += 1
            return
        raw = bytes(r.data)
        end = raw.find(b"\x00")
        try:
            self.code = (raw if end < 0 else raw[:end]).decode()
        except UnicodeError:
            self.errors += 1

    def present(self, now: int) -> bool:
        return bool(self.epc) and self.clock.diff(now, self.seen) < self.absent_ms

    def current(self, now: int) -> "tuple[str, str] | None":
        if self.present(now) and (self.code or not self.code_words):
            return hexu(self.epc), self.code
        return None

