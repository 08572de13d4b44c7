"""Serial link to the gateway for boxes whose MCU is wired to it (UART / RS-485).

Frames and the link layer are the drivers' (``drivers.codecs.slink``, the same code the
agent's ``serial_link`` source runs): point-to-point stop-and-wait over a UART, or, with a
bus address, a terminal on an RS-485 bus that speaks only when the gateway polls it.
This module is the terminal's :class:`~te.channel.Channel` over either.
"""

from drivers.codecs.slink import (
    ACK,
    CMD,
    DISPATCH,
    GATE,
    HELLO,
    LACK,
    REC,
    BusTerminal,
    Decoder,
    Frame,
    SerialEndpoint,
    decode,
    encode,
)
from te.channel import Channel

__all__ = [
    "ACK",
    "CMD",
    "DISPATCH",
    "GATE",
    "HELLO",
    "LACK",
    "REC",
    "BusTerminal",
    "Decoder",
    "Frame",
    "SerialChannel",
    "SerialEndpoint",
    "decode",
    "encode",
]

_TYPING = False
if _TYPING:
    from machine import UART

    from te.hal import Clock, HalfDuplex


class SerialChannel(Channel):
    """The terminal side: records, fill-gate and dispatch requests out, acks, commands and
    gate answers in.

    ``addr`` 0: point-to-point; 1..254: this terminal's address on an RS-485 bus."""

    def __init__(
        self, uart: "UART | HalfDuplex", clock: "Clock", rto_ms: int = 250, addr: int = 0,
        silence_ms: int = 3000,
    ) -> None:
        super().__init__()
        self.ep: "SerialEndpoint | BusTerminal"
        if addr:
            self.ep = BusTerminal(uart, clock, self._deliver, addr, silence_ms)
        else:
            self.ep = SerialEndpoint(uart, clock, self._deliver, rto_ms)
        self._was_up = False
        self._hellos = 0

    def _deliver(self, ftype: int, payload: bytes) -> None:
        if ftype == ACK:
            self._ack(payload)
        elif ftype == CMD:
            self._cmd(payload)

    def poll(self, now: int) -> None:
        ep = self.ep
        ep.poll(now)
        # up again, or the gateway restarted (its HELLO): resend what is unacked
        if ep.is_up and (not self._was_up or ep.hellos != self._hellos):
            self.epoch += 1
        self._hellos = ep.hellos
        self._was_up = ep.is_up

    def up(self) -> bool:
        return self.ep.is_up

    def room(self) -> int:
        return self.ep.room() - 1 if self.ep.is_up else 0

    def send_record(self, seq: int, payload: bytes) -> bool:
        return self.ep.is_up and self.ep.room() > 1 and self.ep.send(REC, payload)

    def send_gate(self, payload: bytes) -> bool:
        return self.ep.is_up and self.ep.send(GATE, payload)

    def send_dispatch(self, payload: bytes) -> bool:
        """A warehouse handheld's sealed dispatch request: the gateway hands it to the
        agent's dispatch gate as ``t/{dev}/dispatch``; the answer comes as a ``CMD``."""
        return self.ep.is_up and self.ep.send(DISPATCH, payload)
