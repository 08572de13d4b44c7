"""Stand-in for ``te.net`` where there are no sockets (the WebAssembly port): the link
stays down, which the firmware must survive."""

from te.transport import CLOSED, Transport

_TYPING = False
if _TYPING:
    from typing import Any


class Wifi:
    def __init__(self, *a: "Any") -> None:
        pass

    def up(self) -> bool:
        return False

    def poll(self, now: int) -> None:
        pass


class SocketTransport(Transport):
    def __init__(self, wifi: "Any" = None) -> None:
        self.opens = 0

    def open(self, host: str, port: int) -> None:
        self.opens += 1

    def state(self) -> int:
        return CLOSED

    def read(self) -> "bytes | None":
        return None

    def write(self, data: bytes) -> None:
        raise OSError(107)

    def close(self) -> None:
        pass


class NtpSync:
    def __init__(self, *a: "Any") -> None:
        pass

    def poll(self, now: int, up: bool) -> None:
        pass
