"""A UART over a real serial device (a pty's path) for the firmware under WebAssembly.

The Node side exposes ``globalThis.serialBridge`` (see ``tests/firmware/mp_run.mjs``):
``open(path) -> id`` (-1: cannot open), ``read(id) -> hex string`` ("" nothing waiting,
null: hung up), ``write(id, hex) -> bool``, ``close(id)``. The surface is the part of
``machine.UART`` the serial link uses: ``read() -> bytes | None`` and ``write(bytes)``.
A hung-up or missing device is reopened on the next read, as a board's UART would simply
see the line come back.
"""

from binascii import hexlify, unhexlify

import js


class JsSerial:
    def __init__(self, path: str) -> None:
        self.bridge = js.serialBridge
        self.path = path
        self.id = -1
        self.opens = 0
        self.hangups = 0

    def _open(self) -> bool:
        if self.id < 0:
            self.id = int(self.bridge.open(self.path))
            if self.id >= 0:
                self.opens += 1
        return self.id >= 0

    def read(self) -> "bytes | None":
        if not self._open():
            return None
        h = self.bridge.read(self.id)
        if h is None:
            self.bridge.close(self.id)
            self.id = -1
            self.hangups += 1
            return None
        return unhexlify(str(h)) if h else None

    def write(self, data: bytes) -> int:
        if not self._open() or not self.bridge.write(self.id, hexlify(data).decode()):
            return 0
        return len(data)

    def close(self) -> None:
        if self.id >= 0:
            self.bridge.close(self.id)
            self.id = -1
