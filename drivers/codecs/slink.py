"""The serial link between a terminal MCU and its gateway (UART or RS-485): frames and the
link layer, one implementation run by the firmware (``te.slink``) and by the agent's
``serial_link`` source alike.

Frames
------
Point-to-point (one terminal on the port)::

    7E | type | num | len u16 BE | payload | CRC-16 LE

Bus (RS-485, several terminals on one half-duplex pair; ``type`` has bit 0x40 set)::

    7E | type|0x40[|0x80] | addr | num | len u16 BE | payload | CRC-16 LE

CRC-16/MCRF4XX (the Chafon codec's ``crc16``: preset 0xFFFF, reflected 0x8408) over every
byte after ``7E``. In a bus frame ``addr`` (1..254) is always the *terminal's* address,
whichever way the frame goes, and bit 0x80 says it was sent by the terminal (so nobody
mistakes an echo, or another terminal's answer, for a frame meant for it). Decoding
(:class:`Decoder`, a ``StreamDecoder``) skips garbage and corrupt frames and never loses
the next good one; :class:`Frame` carries the base type, ``addr`` (0 on a point-to-point
link) and ``up``.

Types: ``REC`` record, ``GATE`` fill-gate request and ``DISPATCH`` warehouse dispatch
request (terminal -> gateway); ``ACK`` and ``CMD`` (gateway -> terminal) carry the same
JSON as the MQTT topics ``t/{dev}/rec``, ``/gate``, ``/dispatch``, ``/ack``, ``/cmd``.
Link frames: ``LACK`` acknowledges data frame ``num``; ``HELLO`` (num 0) says "I
(re)started: restart numbering"; ``POLL`` asks the terminal to speak; ``IDLE`` is a bus
terminal's "nothing to send".

Link layer (:class:`SerialEndpoint`, the same on both ends of a point-to-point link):
stop-and-wait. One data frame is outstanding; it is resent after ``rto_ms`` until its
``LACK`` arrives; after ``max_tries`` the link counts as down (and keeps probing). A
repeated ``num`` is acknowledged again but delivered once. The gateway's endpoint sends a
``POLL`` (answered by ``LACK`` 0) when it has nothing outstanding for ``keepalive_ms``, so a
silent terminal is noticed. The application ack (``ACK``) is what frees records in the
terminal's flash log, never the ``LACK``.

Bus (:class:`BusTerminal` on each terminal, :class:`BusMaster` on the gateway): the gateway
is the only master. It visits the terminals in turn: to each it first sends its pending
data frame (if any; the terminal answers ``LACK``), then a ``POLL``; the polled terminal
answers with exactly one frame: its outstanding data frame (the same ``num`` again until
its ``LACK`` arrives) or ``IDLE``. The master acknowledges a data frame with ``LACK`` at
once (no answer expected). A terminal never speaks unless addressed, so the bus needs no
collision handling; a terminal not polled for ``silence_ms`` counts its link as down.

MicroPython subset: plain classes, no ``micropython.const`` (host code imports it too).
"""

import struct

from .chafon import crc16
from .errors import ChecksumError, FrameError
from .stream import StreamDecoder

SOF = 0x7E
REC = 0x01
GATE = 0x02
DISPATCH = 0x03
ACK = 0x11
CMD = 0x12
LACK = 0x20
HELLO = 0x30
POLL = 0x31
IDLE = 0x32
BUS = 0x40
UP = 0x80
MAX_PAYLOAD = 16384  # the firmware MQTT client's packet bound: a command fits either way
MAX_ADDR = 254
DATA_TYPES = (REC, GATE, DISPATCH, ACK, CMD)


class Frame:
    __slots__ = ("addr", "num", "payload", "type", "up")

    def __init__(
        self, ftype: int, num: int, payload: bytes = b"", addr: int = 0, up: bool = False
    ) -> None:
        self.type = ftype
        self.num = num
        self.payload = payload
        self.addr = addr
        self.up = up

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Frame)
            and other.type == self.type
            and other.num == self.num
            and other.payload == self.payload
            and other.addr == self.addr
            and other.up == self.up
        )

    def __repr__(self) -> str:
        if self.addr:
            return "Frame(0x%02x, %d, %r, addr=%d, up=%r)" % (
                self.type,
                self.num,
                self.payload,
                self.addr,
                self.up,
            )
        return "Frame(0x%02x, %d, %r)" % (self.type, self.num, self.payload)


def encode(ftype: int, num: int, payload: bytes = b"", addr: int = 0, up: bool = False) -> bytes:
    """One frame; ``addr`` > 0 makes it a bus frame (``up``: sent by the terminal)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long for one frame")
    if ftype & (BUS | UP) or not 0 <= ftype < 256 or not 0 <= num < 256:
        raise ValueError("frame type or number out of range")
    if addr:
        if not 0 < addr <= MAX_ADDR:
            raise ValueError("bus address out of range 1..254")
        head = struct.pack(">BBBH", ftype | BUS | (UP if up else 0), addr, num, len(payload))
    else:
        head = struct.pack(">BBH", ftype, num, len(payload))
    body = head + payload
    return b"\x7e" + body + struct.pack("<H", crc16(body))


def decode(raw: bytes) -> Frame:
    """One complete frame (``7E`` .. CRC); raises ``FrameError`` / ``ChecksumError``."""
    if len(raw) < 7 or raw[0] != SOF:
        raise FrameError("serial link frame too short or without 7E")
    body = raw[1:-2]
    crc = raw[-2] | (raw[-1] << 8)
    if crc16(body) != crc:
        raise ChecksumError("serial link frame CRC mismatch")
    t = body[0]
    if t & BUS:
        if len(body) < 5 or not 0 < body[1] <= MAX_ADDR:
            raise FrameError("serial link bus frame with a bad address")
        n = (body[3] << 8) | body[4]
        if n != len(body) - 5:
            raise FrameError("serial link frame length mismatch")
        return Frame(t & 0x3F, body[2], bytes(body[5:]), body[1], bool(t & UP))
    if t & UP:
        raise FrameError("serial link frame type with the terminal bit but no address")
    n = (body[2] << 8) | body[3]
    if n != len(body) - 4:
        raise FrameError("serial link frame length mismatch")
    return Frame(t, body[1], bytes(body[4:]))


class Decoder(StreamDecoder):
    """``feed(bytes) -> list[Frame | BadFrame]``, point-to-point and bus frames alike."""

    def __init__(self, max_buffer: int = MAX_PAYLOAD + 64) -> None:
        super().__init__(max_buffer)

    def _find_start(self, buf: bytes, pos: int) -> int:
        return buf.find(b"\x7e", pos)

    def _frame_length(self, buf: bytes, pos: int) -> int:
        if len(buf) - pos < 2:
            return 0
        head = 6 if buf[pos + 1] & BUS else 5
        if len(buf) - pos < head:
            return 0
        ln = (buf[pos + head - 2] << 8) | buf[pos + head - 1]
        if ln > MAX_PAYLOAD:
            return -1
        return head + 2 + ln if len(buf) - pos >= head + 2 + ln else 0

    def decode_frame(self, raw: bytes) -> object:
        return decode(raw)


class HostClock:
    """The firmware clock's ``ticks_ms``/``diff`` on a host (monotonic ms, no wrap)."""

    def ticks_ms(self) -> int:
        import time

        return int(time.monotonic() * 1000)

    def diff(self, a: int, b: int) -> int:
        return a - b


class Outbound:
    """One sender's data frames waiting to go (at most ``queue_max``, a ``HELLO`` first) and
    their numbering: ``HELLO`` is 0, every other frame takes the next of 1..255."""

    def __init__(self, queue_max: int) -> None:
        self.queue_max = queue_max
        self.queue: list[tuple[int, bytes]] = [(HELLO, b"")]
        self.out: Frame | None = None
        self.num = 0

    def room(self) -> int:
        return self.queue_max - len(self.queue)

    def send(self, ftype: int, payload: bytes) -> bool:
        if len(self.queue) >= self.queue_max:
            return False
        self.queue.append((ftype, payload))
        return True

    def take(self) -> Frame:
        """The next queued frame, numbered, now the one outstanding (``out``)."""
        ftype, payload = self.queue.pop(0)
        if ftype == HELLO:
            num = 0
        else:
            self.num = self.num % 255 + 1
            num = self.num
        self.out = Frame(ftype, num, payload)
        return self.out


class SerialEndpoint(Outbound):
    """Stop-and-wait over a point-to-point link; ``uart`` has ``read() -> bytes | None``
    and ``write(bytes)``; ``clock`` has ``diff(a, b)``; ``deliver(type, payload)`` gets each
    data frame once. ``keepalive_ms`` > 0 (the gateway) polls an idle terminal;
    ``byte_us`` (the line's time per byte, when known) adds a frame's own transmission time
    to its resend timeout."""

    def __init__(
        self,
        uart: object,
        clock: object,
        deliver: object,
        rto_ms: int = 250,
        max_tries: int = 6,
        queue_max: int = 4,
        keepalive_ms: int = 0,
        byte_us: int = 0,
    ) -> None:
        Outbound.__init__(self, queue_max)
        self.uart = uart
        self.clock = clock
        self.deliver = deliver
        self.rto_ms = rto_ms
        self.max_tries = max_tries
        self.keepalive_ms = keepalive_ms
        self.byte_us = byte_us
        self.dec = Decoder()
        self.sent_at = 0
        self.tries = 0
        self.rx_num = -1
        self.is_up = False
        self.ups = 0
        self.retransmits = 0
        self.bad_frames = 0
        self.frames_in = 0
        self.frames_out = 0
        self.hellos = 0  # HELLOs heard: the peer (re)started
        self.heard_at: int | None = None  # ticks of the last good frame heard
        self.polling = False  # a keepalive POLL is outstanding

    def _write(self, data: bytes) -> None:
        self.frames_out += 1
        self.uart.write(data)  # type: ignore[attr-defined]

    def poll(self, now: int) -> None:
        data = self.uart.read()  # type: ignore[attr-defined]
        if data:
            for f in self.dec.feed(data):
                if isinstance(f, Frame) and not f.addr:
                    self.frames_in += 1
                    self.heard_at = now
                    self._frame(f, now)
                else:
                    self.bad_frames += 1
        diff = self.clock.diff  # type: ignore[attr-defined]
        out = self.out
        if out is not None and diff(now, self.sent_at) >= self.rto_ms + (
            (len(out.payload) + 9) * self.byte_us // 1000
        ):
            if self.tries >= self.max_tries:
                self.is_up = False
            self.tries += 1
            self.retransmits += 1
            self.sent_at = now
            self._write(encode(out.type, out.num, out.payload))
        if self.out is None and self.queue:
            out = self.take()
            self.tries = 1
            self.sent_at = now
            self.polling = False
            self._write(encode(out.type, out.num, out.payload))
        elif (
            self.out is None
            and self.keepalive_ms
            and diff(now, self.sent_at) >= (self.rto_ms if self.polling else self.keepalive_ms)
        ):
            if self.polling:
                self.tries += 1
                if self.tries > self.max_tries:
                    self.is_up = False
            else:
                self.tries = 1
            self.polling = True
            self.sent_at = now
            self._write(encode(POLL, 0))

    def _frame(self, f: Frame, now: int) -> None:
        if f.type == LACK:
            out = self.out
            if out is not None and f.num == out.num:
                self.out = None
            elif out is None and self.polling and f.num == 0:
                self.polling = False
            else:
                return
            self.tries = 0
            if not self.is_up:
                self.is_up = True
                self.ups += 1
            return
        if f.type in (IDLE,):
            return
        self._write(encode(LACK, f.num))
        if f.type == POLL:
            return
        if f.type == HELLO:
            self.rx_num = -1
            self.hellos += 1
            return
        if f.num == self.rx_num:
            return  # a resend whose LACK was lost: acknowledged again, delivered once
        self.rx_num = f.num
        self.deliver(f.type, f.payload)  # type: ignore[operator]


class BusTerminal(Outbound):
    """A terminal on an RS-485 bus (address ``addr``): speaks only when addressed.

    The same surface as :class:`SerialEndpoint` (``send``, ``room``, ``poll``, ``is_up``,
    counters). A ``POLL`` for it is answered by its outstanding data frame or ``IDLE``; a
    data frame for it by ``LACK``. Not polled for ``silence_ms``: the link is down, and a
    ``HELLO`` is queued so the master learns it is back when polls resume."""

    def __init__(
        self,
        uart: object,
        clock: object,
        deliver: object,
        addr: int,
        silence_ms: int = 3000,
        queue_max: int = 4,
    ) -> None:
        if not 0 < addr <= MAX_ADDR:
            raise ValueError("bus address out of range 1..254")
        Outbound.__init__(self, queue_max)
        self.uart = uart
        self.clock = clock
        self.deliver = deliver
        self.addr = addr
        self.silence_ms = silence_ms
        self.dec = Decoder()
        self.sent = False
        self.rx_num = -1
        self.is_up = False
        self.ups = 0
        self.retransmits = 0
        self.bad_frames = 0
        self.frames_in = 0
        self.frames_out = 0
        self.hellos = 0
        self.heard_at: int | None = None

    def _write(self, ftype: int, num: int, payload: bytes = b"") -> None:
        self.frames_out += 1
        self.uart.write(encode(ftype, num, payload, self.addr, True))  # type: ignore[attr-defined]

    def poll(self, now: int) -> None:
        data = self.uart.read()  # type: ignore[attr-defined]
        if data:
            for f in self.dec.feed(data):
                if not isinstance(f, Frame) or not f.addr:
                    self.bad_frames += 1
                elif f.addr == self.addr and not f.up:
                    self.frames_in += 1
                    self.heard_at = now
                    self._frame(f)
        heard = self.heard_at
        if self.is_up and (
            heard is None or self.clock.diff(now, heard) > self.silence_ms  # type: ignore[attr-defined]
        ):
            self.is_up = False
            if self.out is None and not (self.queue and self.queue[0][0] == HELLO):
                self.queue.insert(0, (HELLO, b""))

    def _frame(self, f: Frame) -> None:
        if f.type == LACK:
            out = self.out
            if out is not None and f.num == out.num:
                self.out = None
                if not self.is_up:
                    self.is_up = True
                    self.ups += 1
            return
        if f.type == POLL:
            if self.out is None and self.queue:
                self.take()
                self.sent = False
            out = self.out
            if out is None:
                self._write(IDLE, 0)
                return
            if self.sent:
                self.retransmits += 1
            self.sent = True
            self._write(out.type, out.num, out.payload)
            return
        if f.type == IDLE:
            return
        self._write(LACK, f.num)
        if f.type == HELLO:
            self.rx_num = -1
            self.hellos += 1
            return
        if f.num == self.rx_num:
            return
        self.rx_num = f.num
        self.deliver(f.type, f.payload)  # type: ignore[operator]


class BusPeer(Outbound):
    """The master's view of one terminal on the bus."""

    def __init__(self, addr: int, queue_max: int) -> None:
        Outbound.__init__(self, queue_max)
        self.addr = addr
        self.tries = 0
        self.rx_num = -1
        self.heard_at: int | None = None
        self.misses = 0
        self.hellos = 0
        self.polls = 0


class BusMaster:
    """The gateway on an RS-485 bus: visits each address in turn (pending data frame, then
    ``POLL``), waits ``rto_ms`` for the one answer (plus the frame's own transmission time
    at ``byte_us`` per byte; the wait starts again with every byte that arrives, so a long
    answer is never cut off by the next poll), acknowledges the terminals' data frames.
    ``deliver(addr, type, payload)`` gets each data frame once and every ``HELLO``."""

    def __init__(
        self,
        uart: object,
        clock: object,
        deliver: object,
        addrs: list[int],
        rto_ms: int = 100,
        queue_max: int = 4,
        byte_us: int = 0,
    ) -> None:
        if not addrs:
            raise ValueError("a bus needs at least one terminal address")
        self.uart = uart
        self.clock = clock
        self.deliver = deliver
        self.rto_ms = rto_ms
        self.queue_max = queue_max
        self.byte_us = byte_us
        self.wait_ms = rto_ms
        self.peers: dict[int, BusPeer] = {}
        for a in addrs:
            if not 0 < a <= MAX_ADDR or a in self.peers:
                raise ValueError("bus addresses must be distinct, 1..254")
            self.peers[a] = BusPeer(a, queue_max)
        self.order = list(self.peers)
        self.cur = 0
        self.phase_data = True
        self.waiting: BusPeer | None = None
        self.sent_at = 0
        self.dec = Decoder()
        self.retransmits = 0
        self.bad_frames = 0
        self.strays = 0
        self.frames_in = 0
        self.frames_out = 0
        self.timeouts = 0

    def room(self, addr: int) -> int:
        return self.peers[addr].room()

    def send(self, addr: int, ftype: int, payload: bytes) -> bool:
        return self.peers[addr].send(ftype, payload)

    def _write(self, p: BusPeer, ftype: int, num: int, payload: bytes = b"") -> None:
        self.frames_out += 1
        self.wait_ms = self.rto_ms + (len(payload) + 10) * self.byte_us // 1000
        self.uart.write(encode(ftype, num, payload, p.addr))  # type: ignore[attr-defined]

    def _done(self) -> None:
        self.waiting = None
        if self.phase_data:
            self.phase_data = False
        else:
            self.phase_data = True
            self.cur = (self.cur + 1) % len(self.order)

    def poll(self, now: int) -> None:
        data = self.uart.read()  # type: ignore[attr-defined]
        if data:
            self.sent_at = now  # the line is busy: wait on from its last byte
            for f in self.dec.feed(data):
                if not isinstance(f, Frame) or not f.addr:
                    self.bad_frames += 1
                elif f.up:
                    p = self.peers.get(f.addr)
                    if p is None:
                        self.strays += 1
                    else:
                        self.frames_in += 1
                        p.heard_at = now
                        p.misses = 0
                        self._frame(p, f)
        w = self.waiting
        if w is not None and self.clock.diff(now, self.sent_at) >= self.wait_ms:  # type: ignore[attr-defined]
            self.timeouts += 1
            w.misses += 1
            self._done()
        if self.waiting is not None:
            return
        p = self.peers[self.order[self.cur]]
        if self.phase_data:
            if p.out is None and p.queue:
                p.take()
                p.tries = 0
            out = p.out
            if out is not None:
                if p.tries:
                    self.retransmits += 1
                p.tries += 1
                self._write(p, out.type, out.num, out.payload)
                self.waiting = p
                self.sent_at = now
                return
            self.phase_data = False
        p.polls += 1
        self._write(p, POLL, 0)
        self.waiting = p
        self.sent_at = now

    def _frame(self, p: BusPeer, f: Frame) -> None:
        w = self.waiting
        if f.type == LACK:
            out = p.out
            if out is not None and f.num == out.num:
                p.out = None
                p.tries = 0
            if w is p and self.phase_data:
                self._done()
            return
        if f.type == POLL:
            self.strays += 1
            return
        if w is p and not self.phase_data:
            self._done()
        if f.type == IDLE:
            return
        self._write(p, LACK, f.num)
        if f.type == HELLO:
            p.rx_num = -1
            p.hellos += 1
            self.deliver(p.addr, HELLO, b"")  # type: ignore[operator]
            return
        if f.num == p.rx_num:
            return
        p.rx_num = f.num
        self.deliver(p.addr, f.type, f.payload)  # type: ignore[operator]
