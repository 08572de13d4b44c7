"""A barcode scanner on a pty: one scan per line (AIM identifier, data, CR LF).

It cycles through ``codes`` (by default a GS1-128 label with AIM prefix ``]C1`` carrying
GTIN, batch and net weight, and a QR code ``]Q1`` holding a GS1 Digital Link URI) and
sends the next one

* every ``every`` seconds (presentation mode; ``None`` or 0: never on its own),
* when the host sends the serial trigger ``SYN T CR`` (:data:`~drivers.transports.readers.TRIGGER`),
* when a test calls :meth:`ScannerSim.scan`, optionally with a code of its own.
"""

from __future__ import annotations

import os

from drivers.codecs.barcode import Scan, encode_scan, gs1_scan
from drivers.codecs.gs1 import build_digital_link
from drivers.transports.readers import TRIGGER
from simulators.serial_devices import PtyDevice

GTIN = "09506000134352"
LABEL_AIS = {"01": GTIN, "10": "LOT2024A", "3103": "001250"}
LINK_AIS = {"01": GTIN, "10": "LOT2024A", "21": "SN0042", "17": "261231"}


def default_codes() -> list[Scan]:
    link = build_digital_link(LINK_AIS)
    return [gs1_scan(LABEL_AIS, "]C1"), Scan("]Q1", link, dict(LINK_AIS))]


class ScannerSim(PtyDevice):
    kind = "barcode scanner"
    protocol = "aim"

    def __init__(
        self,
        *,
        every: float | None = None,
        codes: list[Scan] | None = None,
        link: str | os.PathLike[str] | None = None,
        seed: int = 1,
    ) -> None:
        super().__init__(link=link, seed=seed)
        self.every = every or None
        self.codes = codes or default_codes()
        self._next = 0
        self._due = 0.0
        self._heard = b""

    def reset(self) -> None:
        self._heard = b""
        self._due = 0.0

    def scan(self, code: Scan | None = None) -> Scan:
        """Send ``code``, or the next of ``codes``; returns what was sent."""
        if code is None:
            code = self.codes[self._next % len(self.codes)]
            self._next += 1
        self.send(encode_scan(code))
        return code

    def on_bytes(self, data: bytes) -> None:
        heard = self._heard + data
        while TRIGGER in heard:
            self.stats.commands += 1
            heard = heard.split(TRIGGER, 1)[1]
            self.scan()
        self._heard = heard[-(len(TRIGGER) - 1) :]

    def on_tick(self, now: float) -> None:
        if self.every is None:
            return
        if not self._due:
            self._due = now + self.every
        elif now >= self._due:
            self._due = now + self.every
            self.scan()
