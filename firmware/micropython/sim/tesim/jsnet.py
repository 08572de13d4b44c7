"""A ``Transport`` over a Node ``net`` socket, for the firmware under WebAssembly.

The Node side exposes ``globalThis.tcpBridge`` (see ``tests/firmware/mp_run.mjs``):
``open(host, port) -> id``, ``state(id)`` (0 closed, 1 connecting, 2 open),
``read(id) -> hex string`` (what arrived since the last call), ``write(id, hex)``,
``close(id)``. Bytes cross as hex strings: the JS FFI passes ``str`` cheaply.
"""

from binascii import hexlify, unhexlify

import js
from te.transport import CLOSED, Transport


class JsTransport(Transport):
    def __init__(self) -> None:
        self.bridge = js.tcpBridge
        self.id = -1
        self.opens = 0

    def open(self, host: str, port: int) -> None:
        self.close()
        self.id = int(self.bridge.open(host, port))
        self.opens += 1

    def state(self) -> int:
        return CLOSED if self.id < 0 else int(self.bridge.state(self.id))

    def read(self) -> "bytes | None":
        if self.id < 0:
            return None
        h = self.bridge.read(self.id)
        if h is None:
            self.id = -1
            return None
        return unhexlify(str(h)) if h else b""

    def write(self, data: bytes) -> None:
        if self.id < 0 or not self.bridge.write(self.id, hexlify(data).decode()):
            raise OSError(104)

    def close(self) -> None:
        if self.id >= 0:
            self.bridge.close(self.id)
            self.id = -1
