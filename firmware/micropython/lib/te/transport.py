"""Byte-stream transport seam under the MQTT link: non-blocking, polled.

``SocketTransport`` (te.net) is the board's TCP socket; the simulator's ``JsTransport``
crosses a Node ``net`` socket; tests script one. All share these five calls.
"""

from micropython import const

CLOSED = const(0)
CONNECTING = const(1)
OPEN = const(2)


class Transport:
    def open(self, host: str, port: int) -> None:
        """Start connecting; never blocks for long. ``state()`` tells when it is open."""
        raise NotImplementedError

    def state(self) -> int:
        raise NotImplementedError

    def read(self) -> "bytes | None":
        """The bytes received so far (``b""``: none yet); ``None`` once closed."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Queue bytes to send; ``OSError`` if the connection is gone."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
