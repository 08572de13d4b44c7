"""Impinj R2000-based UHF readers (the ``A0`` serial protocol).

Frames, both directions::

    A0 Len Addr Cmd Data[] Check

``Len`` counts the bytes after itself (Addr, Cmd, Data, Check); ``Check`` is the two's
complement of the 8-bit sum of every preceding byte, ``A0`` included. Public vector:
real-time inventory, address 1, repeat 0xFF is ``A0 04 01 89 FF D3``.

Real-time inventory (``Cmd 0x89``) answers with one frame per tag read and one summary
frame at the end of the round, told apart by data length:

=========================  ================================================================
data                        decoded as
=========================  ================================================================
1 byte                      :class:`ErrorReply` (code in :data:`ERRORS`)
7 bytes                     :class:`InventoryEnd`: AntID, ReadRate (2, big-endian),
                            TotalRead (4, big-endian)
4 + 2k bytes                :class:`TagRead`: FreqAnt (frequency point in bits 7-2,
                            antenna in bits 1-0), PC (2), EPC (k words, as the PC says),
                            RSSI (raw byte)
=========================  ================================================================

Other commands decode as a generic :class:`Frame`. Every frame starts with ``A0``; after
garbage the decoder hunts for the next ``A0`` and trusts the (weak, 8-bit) checksum.
"""

from .errors import ChecksumError, DeviceError, EncodeError, FrameError
from .stream import StreamDecoder

HEAD = 0xA0
CMD_REALTIME_INVENTORY = 0x89
MIN_LEN = 3

# error code -> (message, retrying may help)
ERRORS = {
    0x10: ("command succeeded", False),
    0x11: ("command failed", True),
    0x20: ("MCU reset error", True),
    0x21: ("CW on error", True),
    0x22: ("antenna missing", False),
    0x23: ("write flash error", True),
    0x24: ("read flash error", True),
    0x25: ("set output power error", True),
    0x31: ("tag inventory error", True),
    0x32: ("tag read error", True),
    0x33: ("tag write error", True),
    0x34: ("tag lock error", True),
    0x35: ("tag kill error", True),
    0x36: ("no tag", True),
    0x37: ("inventory succeeded but access failed", True),
    0x38: ("buffer is empty", True),
    0x40: ("access or password error", False),
    0x41: ("parameter invalid", False),
    0x42: ("word count too long", False),
    0x43: ("memory bank out of range", False),
    0x46: ("reader address invalid", False),
    0x47: ("antenna id out of range", False),
    0x48: ("output power out of range", False),
    0x4F: ("frequency range invalid", False),
    0x50: ("failed to get RN16 from tag", True),
    0x52: ("PLL lock failed", True),
    0x53: ("RF chip did not respond", True),
    0x54: ("failed to reach the desired output power", True),
    0x57: ("output power too low", True),
}


def checksum(data: bytes) -> int:
    """Two's complement of the byte sum."""
    return -sum(data) & 0xFF


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} {value} not in 0-255")
    return value


class Frame:
    """Any frame: ``data`` between Cmd and Check."""

    __slots__ = ("addr", "cmd", "data")

    def __init__(self, addr: int, cmd: int, data: bytes = b"") -> None:
        self.addr = addr
        self.cmd = cmd
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frame) and (other.addr, other.cmd, other.data) == (
            self.addr,
            self.cmd,
            self.data,
        )

    def __repr__(self) -> str:
        return f"Frame(0x{self.addr:02X}, 0x{self.cmd:02X}, {self.data!r})"


class TagRead:
    __slots__ = ("addr", "antenna", "epc", "freq", "pc", "rssi")

    def __init__(self, addr: int, freq: int, antenna: int, pc: int, epc: bytes, rssi: int) -> None:
        self.addr = addr
        self.freq = freq
        self.antenna = antenna
        self.pc = pc
        self.epc = epc
        self.rssi = rssi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagRead) and (
            other.addr,
            other.freq,
            other.antenna,
            other.pc,
            other.epc,
            other.rssi,
        ) == (self.addr, self.freq, self.antenna, self.pc, self.epc, self.rssi)

    def __repr__(self) -> str:
        return (
            f"TagRead(addr={self.addr}, freq={self.freq}, antenna={self.antenna},"
            f" pc=0x{self.pc:04X}, epc={self.epc.hex()}, rssi={self.rssi})"
        )


class InventoryEnd:
    __slots__ = ("addr", "antenna", "read_rate", "total_reads")

    def __init__(self, addr: int, antenna: int, read_rate: int, total_reads: int) -> None:
        self.addr = addr
        self.antenna = antenna
        self.read_rate = read_rate
        self.total_reads = total_reads

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InventoryEnd) and (
            other.addr,
            other.antenna,
            other.read_rate,
            other.total_reads,
        ) == (self.addr, self.antenna, self.read_rate, self.total_reads)

    def __repr__(self) -> str:
        return (
            f"InventoryEnd(addr={self.addr}, antenna={self.antenna},"
            f" read_rate={self.read_rate}, total_reads={self.total_reads})"
        )


class ErrorReply:
    """A one-byte error code answering ``cmd``."""

    __slots__ = ("addr", "cmd", "code")

    def __init__(self, addr: int, cmd: int, code: int) -> None:
        self.addr = addr
        self.cmd = cmd
        self.code = code

    def raise_for_status(self) -> "ErrorReply":
        if self.code == 0x10:
            return self
        message, retry = ERRORS.get(self.code, ("unknown error code", False))
        raise DeviceError(
            f"reader {self.addr} command 0x{self.cmd:02X}: error 0x{self.code:02X} {message}",
            self.code,
            retry,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and (other.addr, other.cmd, other.code) == (
            self.addr,
            self.cmd,
            self.code,
        )

    def __repr__(self) -> str:
        return f"ErrorReply(addr={self.addr}, cmd=0x{self.cmd:02X}, code=0x{self.code:02X})"


def encode_frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    if len(data) > 252:
        raise EncodeError(f"data of {len(data)} bytes does not fit (Len is one byte)")
    body = bytes([HEAD, len(data) + 3, _byte(addr, "address"), _byte(cmd, "command")]) + data
    return body + bytes([checksum(body)])


def encode_realtime_inventory(addr: int = 0x01, repeat: int = 0xFF) -> bytes:
    """``encode_realtime_inventory(1, 0xFF)`` == ``bytes.fromhex("A0040189FFD3")``."""
    return encode_frame(addr, CMD_REALTIME_INVENTORY, bytes([_byte(repeat, "repeat")]))


def pc_for(epc: bytes) -> int:
    """A PC word whose length field matches ``epc`` (other PC bits zero)."""
    if len(epc) % 2 or len(epc) > 62:
        raise EncodeError(f"EPC of {len(epc)} bytes is not 0-31 whole words")
    return (len(epc) // 2) << 11


def encode_tag_read(tag: TagRead) -> bytes:
    if not 0 <= tag.freq <= 0x3F or not 0 <= tag.antenna <= 3:
        raise EncodeError("frequency point must be 0-63 and antenna 0-3")
    if (tag.pc >> 11) * 2 != len(tag.epc) or not 0 <= tag.pc <= 0xFFFF:
        raise EncodeError(f"PC 0x{tag.pc:04X} does not announce an EPC of {len(tag.epc)} bytes")
    data = (
        bytes([tag.freq << 2 | tag.antenna, tag.pc >> 8, tag.pc & 0xFF])
        + tag.epc
        + bytes([_byte(tag.rssi, "rssi")])
    )
    return encode_frame(tag.addr, CMD_REALTIME_INVENTORY, data)


def encode_inventory_end(end: InventoryEnd) -> bytes:
    if not 0 <= end.read_rate <= 0xFFFF or not 0 <= end.total_reads <= 0xFFFFFFFF:
        raise EncodeError("read rate must fit 16 bits and total reads 32 bits")
    data = bytes([_byte(end.antenna, "antenna")]) + end.read_rate.to_bytes(2, "big")
    data += end.total_reads.to_bytes(4, "big")
    return encode_frame(end.addr, CMD_REALTIME_INVENTORY, data)


def encode_error(reply: ErrorReply) -> bytes:
    return encode_frame(reply.addr, reply.cmd, bytes([_byte(reply.code, "error code")]))


def _check(raw: bytes) -> bytes:
    if len(raw) < MIN_LEN + 2 or raw[0] != HEAD or raw[1] != len(raw) - 2:
        raise FrameError(f"not an A0 frame (head, Len or length wrong): {raw.hex()}")
    if checksum(raw[:-1]) != raw[-1]:
        raise ChecksumError(
            f"check 0x{raw[-1]:02X} != computed 0x{checksum(raw[:-1]):02X} in {raw.hex()}"
        )
    return raw[2:-1]


def decode_command(raw: bytes) -> Frame:
    """Parse one complete frame generically (simulators decoding host commands)."""
    body = _check(raw)
    return Frame(body[0], body[1], body[2:])


def decode_response(raw: bytes) -> object:
    """Parse one complete reader frame into TagRead / InventoryEnd / ErrorReply / Frame."""
    body = _check(raw)
    addr, cmd, data = body[0], body[1], body[2:]
    if len(data) == 1:
        return ErrorReply(addr, cmd, data[0])
    if cmd != CMD_REALTIME_INVENTORY:
        return Frame(addr, cmd, data)
    if len(data) == 7:
        return InventoryEnd(
            addr, data[0], int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:7], "big")
        )
    if len(data) < 4 or len(data) % 2:
        raise FrameError(f"inventory frame with {len(data)} data bytes: {raw.hex()}")
    pc = data[1] << 8 | data[2]
    epc = data[3:-1]
    if (pc >> 11) * 2 != len(epc):
        raise FrameError(f"PC 0x{pc:04X} announces {(pc >> 11) * 2} EPC bytes, got {len(epc)}")
    return TagRead(addr, data[0] >> 2, data[0] & 0x03, pc, epc, data[-1])


class Decoder(StreamDecoder):
    """Reader -> host: ``feed(bytes) -> list[TagRead | InventoryEnd | ErrorReply | Frame |
    BadFrame]``."""

    def _find_start(self, buf: bytes, pos: int) -> int:
        return buf.find(b"\xa0", pos)

    def _frame_length(self, buf: bytes, pos: int) -> int:
        if len(buf) - pos < 2:
            return 0
        n = buf[pos + 1]
        if n < MIN_LEN:
            return -1
        return n + 2 if len(buf) - pos >= n + 2 else 0

    def decode_frame(self, raw: bytes) -> object:
        return decode_response(raw)


class CommandDecoder(Decoder):
    """Host -> reader (simulators): ``feed(bytes) -> list[Frame | BadFrame]``."""

    def decode_frame(self, raw: bytes) -> object:
        return decode_command(raw)
