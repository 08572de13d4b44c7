"""Serial link to the gateway for boxes whose MCU is wired to it (UART / RS-485).

Frame (both directions)::

    7E | type | num | len u16 BE | payload | CRC-16 LE

CRC-16/MCRF4XX (the Chafon codec's ``crc16``) over ``type .. payload``. Decoding reuses
the drivers' ``StreamDecoder``: garbage and corrupt frames are skipped, the next good
frame is never lost. Types: ``REC`` record and ``GATE`` request (terminal -> gateway),
``ACK`` and ``CMD`` (gateway -> terminal) carry the same JSON as the MQTT topics;
``LACK`` acknowledges frame ``num`` at link level; ``HELLO`` (num 0) restarts numbering.

Link layer (``SerialEndpoint``, the same on both ends): stop-and-wait. One data frame is
outstanding; it is resent after ``rto_ms`` until its ``LACK`` arrives; after ``max_tries``
the link counts as down (and keeps probing). A repeated ``num`` is acknowledged again but
delivered once. The application ack (``ACK``) is what frees records in the flash log.
"""

import struct

from micropython import const

from drivers.codecs.chafon import crc16
from drivers.codecs.errors import ChecksumError
from drivers.codecs.stream import StreamDecoder
from te.channel import Channel

_TYPING = False
if _TYPING:
    from typing import Callable

    from machine import UART

    from te.hal import Clock

SOF = const(0x7E)
REC = const(0x01)
GATE = const(0x02)
ACK = const(0x11)
CMD = const(0x12)
LACK = const(0x20)
HELLO = const(0x30)
MAX_PAYLOAD = const(4608)


class Frame:
    __slots__ = ("type", "num", "payload")

    def __init__(self, ftype: int, num: int, payload: bytes = b"") -> None:
        self.type = ftype
        self.num = num
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Frame) and other.type == self.type
                and other.num == self.num and other.payload == self.payload)

    def __repr__(self) -> str:
        return "Frame(0x%02x, %d, %r)" % (self.type, self.num, self.payload)


def encode(ftype: int, num: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long for one frame")
    body = struct.pack(">BBH", ftype, num, len(payload)) + payload
    return b"\x7e" + body + struct.pack("<H", crc16(body))


def decode(raw: bytes) -> Frame:
    body = raw[1:-2]
    crc = struct.unpack_from("<H", raw, len(raw) - 2)[0]
    if crc16(body) != crc:
        raise ChecksumError("serial link frame CRC mismatch")
    return Frame(body[0], body[1], body[4:])


class Decoder(StreamDecoder):
    """``feed(bytes) -> list[Frame | BadFrame]``."""

    def _find_start(self, buf: bytes, pos: int) -> int:
        return buf.find(b"\x7e", pos)

    def _frame_length(self, buf: bytes, pos: int) -> int:
        if len(buf) - pos < 5:
            return 0
        ln = (buf[pos + 3] << 8) | buf[pos + 4]
        if ln > MAX_PAYLOAD:
            return -1
        return 7 + ln if len(buf) - pos >= 7 + ln else 0

    def decode_frame(self, raw: bytes) -> object:
        return decode(raw)


class SerialEndpoint:
    def __init__(
        self,
        uart: "UART",
        clock: "Clock",
        deliver: "Callable[[int, bytes], None]",
        rto_ms: int = 250,
        max_tries: int = 6,
        queue_max: int = 4,
    ) -> None:
        self.uart = uart
        self.clock = clock
        self.deliver = deliver
        self.rto_ms = rto_ms
        self.max_tries = max_tries
        self.queue_max = queue_max
        self.dec = Decoder()
        self.queue: "list[tuple[int, bytes]]" = [(HELLO, b"")]
        self.out: "Frame | None" = None
        self.sent_at = 0
        self.tries = 0
        self.num = 0
        self.rx_num = -1
        self.is_up = False
        self.ups = 0
        self.retransmits = 0
        self.bad_frames = 0

    def room(self) -> int:
        return self.queue_max - len(self.queue)

    def send(self, ftype: int, payload: bytes) -> bool:
        if len(self.queue) >= self.queue_max:
            return False
        self.queue.append((ftype, payload))
        return True

    def poll(self, now: int) -> None:
        data = self.uart.read()
        if data:
            for f in self.dec.feed(data):
                if isinstance(f, Frame):
                    self._frame(f, now)
                else:
                    self.bad_frames += 1
        out = self.out
        if out is not None and self.clock.diff(now, self.sent_at) >= self.rto_ms:
            if self.tries >= self.max_tries:
                self.is_up = False
            self.tries += 1
            self.retransmits += 1
            self.sent_at = now
            self.uart.write(encode(out.type, out.num, out.payload))
        if self.out is None and self.queue:
            ftype, payload = self.queue.pop(0)
            if ftype == HELLO:
                num = 0
            else:
                self.num = self.num % 255 + 1
                num = self.num
            self.out = Frame(ftype, num, payload)
            self.tries = 1
            self.sent_at = now
            self.uart.write(encode(ftype, num, payload))

    def _frame(self, f: Frame, now: int) -> None:
        if f.type == LACK:
            out = self.out
            if out is not None and f.num == out.num:
                self.out = None
                if not self.is_up:
                    self.is_up = True
                    self.ups += 1
            return
        self.uart.write(encode(LACK, f.num))
        if f.type == HELLO:
            self.rx_num = -1
            return
        if f.num == self.rx_num:
            return  # a resend whose LACK was lost: acknowledged again, delivered once
        self.rx_num = f.num
        self.deliver(f.type, f.payload)


class SerialChannel(Channel):
    """The terminal side: records and gate requests out, acks and commands in."""

    def __init__(self, uart: "UART", clock: "Clock", rto_ms: int = 250) -> None:
        super().__init__()
        self.ep = SerialEndpoint(uart, clock, self._deliver, rto_ms)
        self._was_up = False

    def _deliver(self, ftype: int, payload: bytes) -> None:
        if ftype == ACK:
            self._ack(payload)
        elif ftype == CMD:
            self._cmd(payload)

    def poll(self, now: int) -> None:
        self.ep.poll(now)
        if self.ep.is_up and not self._was_up:
            self.epoch += 1
        self._was_up = self.ep.is_up

    def up(self) -> bool:
        return self.ep.is_up

    def room(self) -> int:
        return self.ep.room() - 1 if self.ep.is_up else 0

    def send_record(self, seq: int, payload: bytes) -> bool:
        return self.ep.is_up and self.ep.room() > 1 and self.ep.send(REC, payload)

    def send_gate(self, payload: bytes) -> bool:
        return self.ep.is_up and self.ep.send(GATE, payload)
