"""Chafon / CF-RU family UHF readers (UHFReader18-style binary protocol).

Frames, both directions (``Len`` counts the bytes after itself, CRC included)::

    command:   Len Adr Cmd Data[]        CRC-LSB CRC-MSB
    response:  Len Adr Cmd Status Data[] CRC-LSB CRC-MSB

CRC-16: preset 0xFFFF, reflected polynomial 0x8408, no final XOR, sent LSB first, over
every byte from ``Len`` to the end of ``Data``. Public vector: inventory to address 0xFF
is ``04 FF 01 1B B4``.

Commands implemented: ``0x01`` inventory (no data), ``0x02`` read data
(``ENum EPC Mem WordPtr Num Pwd[4]``, ENum = EPC length in words), ``0x21`` get reader
information. Any other command decodes as a generic :class:`Response`.

Inventory responses carry ``Num`` then ``Num`` times ``EPCLen EPC``; their status is
``0x01`` done, ``0x02`` scan time overflow, ``0x03`` more frames follow (collect them with
:class:`InventoryRound`), ``0x04`` reader buffer full; ``0xFB`` (no tag) decodes as an
empty inventory. Reader information is ``Version(2) Type Protocols MaxFreq MinFreq Power
ScanTime``. Other statuses are in :data:`STATUS`; ``Response.raise_for_status()`` maps
them to :class:`DeviceError`.

No sync byte: after garbage the decoder tries every position, trusting the CRC.
"""

from .errors import ChecksumError, DeviceError, EncodeError, FrameError
from .stream import StreamDecoder

CMD_INVENTORY = 0x01
CMD_READ = 0x02
CMD_READER_INFO = 0x21

INVENTORY_OK = (0x01, 0x02, 0x03, 0x04)
STATUS_MORE = 0x03
STATUS_NO_TAG = 0xFB

# status -> (message, retrying may help)
STATUS = {
    0x00: ("success", False),
    0x01: ("inventory finished", False),
    0x02: ("inventory scan time overflow", True),
    0x03: ("more inventory frames follow", False),
    0x04: ("reader tag buffer full", True),
    0x05: ("access password error", False),
    0x09: ("kill tag error", True),
    0x0A: ("kill password cannot be zero", False),
    0x0B: ("tag does not support the command", False),
    0x0C: ("access password cannot be zero", False),
    0x0D: ("tag is protected, cannot set again", False),
    0x0E: ("tag is unprotected, no need to reset", False),
    0x10: ("some bytes are locked, write failed", False),
    0x11: ("cannot lock", False),
    0x12: ("already locked, cannot lock again", False),
    0x13: ("parameter save failed", True),
    0x14: ("cannot adjust power", False),
    0xF9: ("command execution error", True),
    0xFA: ("poor communication between reader and tag", True),
    0xFB: ("no tag operable in the field", True),
    0xFC: ("tag returned an error code", False),
    0xFD: ("command length wrong", False),
    0xFE: ("illegal command", False),
    0xFF: ("parameter error", False),
}
MEM_BANKS = {"reserved": 0, "epc": 1, "tid": 2, "user": 3}
MIN_COMMAND_LEN = 4
MIN_RESPONSE_LEN = 5


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MCRF4XX: preset 0xFFFF, reflected polynomial 0x8408 (table-driven: after
    garbage every position is a candidate, so the CRC is the hot path)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def _frame(body: bytes) -> bytes:
    if len(body) + 2 > 255:
        raise EncodeError(f"frame too long: {len(body) + 3} bytes, Len must fit in one byte")
    body = bytes([len(body) + 2]) + body
    crc = crc16(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} {value} not in 0-255")
    return value


class Command:
    __slots__ = ("adr", "cmd", "data")

    def __init__(self, adr: int, cmd: int, data: bytes = b"") -> None:
        self.adr = adr
        self.cmd = cmd
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and (other.adr, other.cmd, other.data) == (
            self.adr,
            self.cmd,
            self.data,
        )

    def __repr__(self) -> str:
        return f"Command(0x{self.adr:02X}, 0x{self.cmd:02X}, {self.data!r})"


class Response:
    """Any response; ``data`` is what follows the status byte."""

    __slots__ = ("adr", "cmd", "data", "status")

    def __init__(self, adr: int, cmd: int, status: int, data: bytes = b"") -> None:
        self.adr = adr
        self.cmd = cmd
        self.status = status
        self.data = data

    @property
    def ok(self) -> bool:
        if self.cmd == CMD_INVENTORY:
            return self.status in INVENTORY_OK or self.status == STATUS_NO_TAG
        return self.status == 0x00

    def raise_for_status(self) -> "Response":
        if self.ok:
            return self
        message, retry = STATUS.get(self.status, ("unknown status", False))
        if self.status == 0xFC and self.data:
            message += f" 0x{self.data[0]:02X}"
        raise DeviceError(
            f"reader 0x{self.adr:02X} command 0x{self.cmd:02X}: status 0x{self.status:02X} "
            + message,
            self.status,
            retry,
        )

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, Response)
            and (
                other.adr,
                other.cmd,
                other.status,
                other.data,
            )
            == (self.adr, self.cmd, self.status, self.data)
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(0x{self.adr:02X}, 0x{self.cmd:02X},"
            f" 0x{self.status:02X}, {self.data!r})"
        )


class Inventory(Response):
    """Inventory response: ``epcs`` (list of bytes); ``more`` when frames follow."""

    __slots__ = ("epcs",)

    def __init__(self, adr: int, status: int, data: bytes, epcs: list[bytes]) -> None:
        super().__init__(adr, CMD_INVENTORY, status, data)
        self.epcs = epcs

    @property
    def more(self) -> bool:
        return self.status == STATUS_MORE


class ReaderInfo(Response):
    """Get-reader-information response, fields decoded."""

    __slots__ = (
        "max_freq",
        "min_freq",
        "power",
        "protocols",
        "reader_type",
        "scan_time",
        "version",
    )

    def __init__(self, adr: int, status: int, data: bytes) -> None:
        super().__init__(adr, CMD_READER_INFO, status, data)
        self.version = (data[0], data[1])
        self.reader_type = data[2]
        self.protocols = data[3]
        self.max_freq = data[4]
        self.min_freq = data[5]
        self.power = data[6]
        self.scan_time = data[7]


class InventoryRound:
    """Collects one inventory spread over several frames (status 0x03 = more follow)."""

    def __init__(self) -> None:
        self.epcs: list[bytes] = []

    def add(self, response: Inventory) -> list[bytes] | None:
        """Add a frame; return the round's EPCs when it was the last one, else None."""
        self.epcs.extend(response.epcs)
        if response.more:
            return None
        done = self.epcs
        self.epcs = []
        return done


# -- host -> reader -----------------------------------------------------------------------


def encode_command(adr: int, cmd: int, data: bytes = b"") -> bytes:
    return _frame(bytes([_byte(adr, "address"), _byte(cmd, "command")]) + data)


def encode_inventory(adr: int = 0xFF) -> bytes:
    """``encode_inventory(0xFF)`` == ``bytes.fromhex("04FF011BB4")``."""
    return encode_command(adr, CMD_INVENTORY)


def encode_reader_info(adr: int = 0xFF) -> bytes:
    return encode_command(adr, CMD_READER_INFO)


def encode_read(
    adr: int, epc: bytes, bank: str, word_ptr: int, words: int, password: bytes = b"\0\0\0\0"
) -> bytes:
    """Read ``words`` 16-bit words of ``bank`` (reserved/epc/tid/user) of tag ``epc``."""
    if len(epc) % 2 or len(epc) > 62:
        raise EncodeError(f"EPC must be a whole number of words, at most 31; got {len(epc)} B")
    if bank not in MEM_BANKS:
        raise EncodeError(f"unknown memory bank {bank!r}; known: {', '.join(MEM_BANKS)}")
    if len(password) != 4:
        raise EncodeError("access password must be 4 bytes")
    data = (
        bytes([len(epc) // 2])
        + epc
        + bytes([MEM_BANKS[bank], _byte(word_ptr, "word pointer"), _byte(words, "word count")])
        + password
    )
    return encode_command(adr, CMD_READ, data)


def decode_command(raw: bytes) -> Command:
    body = _check(raw, MIN_COMMAND_LEN)
    return Command(body[1], body[2], body[3:])


# -- reader -> host -----------------------------------------------------------------------


def encode_response(adr: int, cmd: int, status: int, data: bytes = b"") -> bytes:
    return _frame(
        bytes([_byte(adr, "address"), _byte(cmd, "command"), _byte(status, "status")]) + data
    )


def encode_inventory_response(adr: int, epcs: list[bytes], status: int = 0x01) -> bytes:
    data = bytes([len(epcs)])
    for epc in epcs:
        if not 0 < len(epc) <= 62:
            raise EncodeError(f"EPC length {len(epc)} not in 1-62")
        data += bytes([len(epc)]) + epc
    return encode_response(adr, CMD_INVENTORY, status, data)


def _check(raw: bytes, minimum: int) -> bytes:
    if len(raw) < minimum + 1 or raw[0] != len(raw) - 1:
        raise FrameError(f"Len byte does not match a frame of at least {minimum + 1}: {raw!r}")
    crc = raw[-2] | raw[-1] << 8
    if crc16(raw[:-2]) != crc:
        raise ChecksumError(f"CRC 0x{crc:04X} != computed 0x{crc16(raw[:-2]):04X} in {raw.hex()}")
    return raw[:-2]


def _epcs(data: bytes, raw: bytes) -> list[bytes]:
    if not data:
        raise FrameError(f"inventory response without tag count: {raw.hex()}")
    count = data[0]
    epcs = []
    i = 1
    for _ in range(count):
        if i >= len(data):
            raise FrameError(f"inventory says {count} tags but data ends early: {raw.hex()}")
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            raise FrameError(f"bad EPC length {n} at offset {i}: {raw.hex()}")
        epcs.append(data[i + 1 : i + 1 + n])
        i += 1 + n
    if i != len(data):
        raise FrameError(f"{len(data) - i} stray bytes after {count} EPCs: {raw.hex()}")
    return epcs


def decode_response(raw: bytes) -> Response:
    """Parse one complete response frame; FrameError / ChecksumError on garbage."""
    body = _check(raw, MIN_RESPONSE_LEN)
    adr, cmd, status, data = body[1], body[2], body[3], body[4:]
    if cmd == CMD_INVENTORY and status in INVENTORY_OK:
        return Inventory(adr, status, data, _epcs(data, raw))
    if cmd == CMD_INVENTORY and status == STATUS_NO_TAG:
        return Inventory(adr, status, data, [])
    if cmd == CMD_READER_INFO and status == 0x00:
        if len(data) != 8:
            raise FrameError(f"reader information must be 8 bytes, got {len(data)}")
        return ReaderInfo(adr, status, data)
    return Response(adr, cmd, status, data)


class Decoder(StreamDecoder):
    """Reader -> host: ``feed(bytes) -> list[Response | BadFrame]``."""

    min_len = MIN_RESPONSE_LEN

    def _frame_length(self, buf: bytes, pos: int) -> int:
        n = buf[pos]
        if n < self.min_len:
            return -1
        return n + 1 if len(buf) - pos > n else 0

    def decode_frame(self, raw: bytes) -> object:
        return decode_response(raw)


class CommandDecoder(Decoder):
    """Host -> reader (simulators): ``feed(bytes) -> list[Command | BadFrame]``."""

    min_len = MIN_COMMAND_LEN

    def decode_frame(self, raw: bytes) -> object:
        return decode_command(raw)
