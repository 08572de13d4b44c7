"""The seam between the firmware and its link to the gateway (MQTT or serial).

The sender and the apps use only this. Messages are the wire contract's: records out
(``t/{dev}/rec``), fill-gate requests out (``t/{dev}/gate``), dispatch requests out
(``t/{dev}/dispatch``; on the serial link a ``DISPATCH`` frame), acks in (``t/{dev}/ack``),
commands and gate answers in (``t/{dev}/cmd``). Incoming messages are passed on as bytes,
unverified: whoever acts on one verifies its seal first (``wire.auth``).
"""

_TYPING = False
if _TYPING:
    from typing import Callable


class Channel:
    def __init__(self) -> None:
        self.on_ack: "Callable[[bytes], None] | None" = None
        self.on_cmd: "Callable[[bytes], None] | None" = None
        self.epoch = 0  # counts connections: a new one means "resend what is unacked"
        self.last_error = ""

    def poll(self, now: int) -> None:
        raise NotImplementedError

    def up(self) -> bool:
        raise NotImplementedError

    def room(self) -> int:
        """How many more records may be handed over now."""
        raise NotImplementedError

    def send_record(self, seq: int, payload: bytes) -> bool:
        raise NotImplementedError

    def send_gate(self, payload: bytes) -> bool:
        raise NotImplementedError

    def send_dispatch(self, payload: bytes) -> bool:
        """A warehouse dispatch request (``t/{dev}/dispatch``); False: not handed over now
        (the link is down or full; one that cannot carry requests at all never takes it),
        so it is tried again until the request's deadline, and nothing leaves meanwhile."""
        return False

    def _ack(self, payload: bytes) -> None:
        if self.on_ack is not None:
            self.on_ack(payload)

    def _cmd(self, payload: bytes) -> None:
        if self.on_cmd is not None:
            self.on_cmd(payload)
