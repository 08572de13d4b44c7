"""MQTT 3.1.1 packets: pure encode / decode (no socket in here).

Only what a terminal needs: CONNECT (clean session, keepalive, optional user and
password), PUBLISH QoS 0/1 both ways, PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT out;
CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP in. ``Decoder.feed`` takes any chunking of a
byte stream and returns the packets completed; a malformed or oversized packet raises
``MqttError``: the stream cannot be trusted after it, so the link drops the connection.
The broker side (``decode_connect``, ``decode_subscribe``) serves tests and simulators.
"""

import struct

from micropython import const

CONNECT = const(1)
CONNACK = const(2)
PUBLISH = const(3)
PUBACK = const(4)
SUBSCRIBE = const(8)
SUBACK = const(9)
PINGREQ = const(12)
PINGRESP = const(13)
DISCONNECT = const(14)

MAX_PACKET = const(16384)


class MqttError(Exception):
    """A protocol violation or refusal. Reconnecting may help (a new stream)."""


class Packet:
    __slots__ = ("type", "flags", "pid", "topic", "payload")

    def __init__(self, ptype: int, flags: int, pid: int = 0, topic: str = "",
                 payload: bytes = b"") -> None:
        self.type = ptype
        self.flags = flags
        self.pid = pid
        self.topic = topic
        self.payload = payload

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 3

    def __repr__(self) -> str:
        return "Packet(%d, %d, %d, %r, %r)" % (
            self.type, self.flags, self.pid, self.topic, self.payload)


def varlen(n: int) -> bytes:
    if n < 0 or n > 268435455:
        raise MqttError("remaining length out of range")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _s(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varlen(len(body)) + body


def connect(client_id: str, keepalive_s: int, user: "str | None" = None,
            password: "str | None" = None, clean: bool = True) -> bytes:
    flags = 0x02 if clean else 0
    tail = _s(client_id.encode())
    if user is not None:
        flags |= 0x80
        tail += _s(user.encode())
        if password is not None:
            flags |= 0x40
            tail += _s(password.encode())
    body = _s(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive_s) + tail
    return _packet(CONNECT << 4, body)


def publish(topic: str, payload: bytes, qos: int = 0, pid: int = 0,
            retain: bool = False, dup: bool = False) -> bytes:
    first = (PUBLISH << 4) | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    head = _s(topic.encode())
    if qos:
        head += struct.pack("!H", pid)
    return bytes([first]) + varlen(len(head) + len(payload)) + head + payload


def puback(pid: int) -> bytes:
    return _packet(PUBACK << 4, struct.pack("!H", pid))


def subscribe(pid: int, topics: "list[tuple[str, int]]") -> bytes:
    body = struct.pack("!H", pid)
    for t, q in topics:
        body += _s(t.encode()) + bytes([q])
    return _packet((SUBSCRIBE << 4) | 2, body)


def pingreq() -> bytes:
    return b"\xc0\x00"


def disconnect() -> bytes:
    return b"\xe0\x00"


def connack(rc: int = 0, session: bool = False) -> bytes:
    return _packet(CONNACK << 4, bytes([1 if session else 0, rc]))


def suback(pid: int, codes: "list[int]") -> bytes:
    return _packet(SUBACK << 4, struct.pack("!H", pid) + bytes(codes))


def pingresp() -> bytes:
    return b"\xd0\x00"


def decode_connect(p: Packet) -> "tuple[str, int, int]":
    """Broker side: ``(client id, keepalive s, connect flags)``."""
    b = p.payload
    n = struct.unpack_from("!H", b, 0)[0]
    if b[2 : 2 + n] != b"MQTT" or b[2 + n] != 4:
        raise MqttError("not MQTT 3.1.1")
    flags = b[3 + n]
    keep = struct.unpack_from("!H", b, 4 + n)[0]
    m = struct.unpack_from("!H", b, 6 + n)[0]
    return b[8 + n : 8 + n + m].decode(), keep, flags


def decode_subscribe(p: Packet) -> "list[tuple[str, int]]":
    b = p.payload
    out = []
    i = 0
    while i < len(b):
        n = struct.unpack_from("!H", b, i)[0]
        out.append((b[i + 2 : i + 2 + n].decode(), b[i + 2 + n]))
        i += 3 + n
    return out


class Decoder:
    """Stream of bytes in, ``Packet`` list out. For types other than PUBLISH, ``payload``
    holds the variable header and payload after the packet id (if any)."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self.buf = b""

    def feed(self, data: bytes) -> "list[Packet]":
        buf = self.buf + data if self.buf else bytes(data)
        out: "list[Packet]" = []
        pos = 0
        n = len(buf)
        while pos < n:
            # fixed header: type/flags, then 1..4 bytes of remaining length
            mult = 1
            ln = 0
            i = pos + 1
            while True:
                if i >= n:
                    self.buf = buf[pos:]
                    return out
                b = buf[i]
                ln += (b & 0x7F) * mult
                i += 1
                if not b & 0x80:
                    break
                mult <<= 7
                if mult > 2097152:
                    raise MqttError("malformed remaining length")
            if ln > self.max_packet:
                raise MqttError("packet of %d bytes over the limit" % ln)
            if i + ln > n:
                break
            out.append(self._decode(buf[pos], buf[i : i + ln]))
            pos = i + ln
        self.buf = buf[pos:]
        return out

    def _decode(self, first: int, body: bytes) -> Packet:
        ptype = first >> 4
        flags = first & 0x0F
        if ptype == PUBLISH:
            if len(body) < 2:
                raise MqttError("short PUBLISH")
            tl = struct.unpack_from("!H", body, 0)[0]
            i = 2 + tl
            qos = (flags >> 1) & 3
            if qos == 3 or len(body) < i + (2 if qos else 0):
                raise MqttError("malformed PUBLISH")
            try:
                topic = body[2:i].decode()
            except UnicodeError:
                raise MqttError("topic is not UTF-8") from None
            pid = 0
            if qos:
                pid = struct.unpack_from("!H", body, i)[0]
                i += 2
            return Packet(ptype, flags, pid, topic, body[i:])
        if ptype in (PUBACK, SUBACK, SUBSCRIBE):
            if len(body) < 2:
                raise MqttError("short packet of type %d" % ptype)
            return Packet(ptype, flags, struct.unpack_from("!H", body, 0)[0], "", body[2:])
        if ptype in (CONNACK, PINGRESP, PINGREQ, CONNECT, DISCONNECT):
            if ptype == CONNACK and len(body) != 2:
                raise MqttError("CONNACK must be 2 bytes")
            return Packet(ptype, flags, 0, "", body)
        raise MqttError("unexpected packet type %d" % ptype)
