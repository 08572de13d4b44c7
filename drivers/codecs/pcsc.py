"""HF cards through PC/SC: the GET UID pseudo-APDU and ISO 7816-4 status words.

PC/SC is message-framed (the reader driver delivers whole responses), so this module
has no stream ``Decoder``: :func:`decode_uid_response` takes one complete response,
``data + SW1 SW2``, and :func:`decode_apdu` / :func:`encode_response` serve card
simulators.

``FF CA 00 00 00`` (:data:`GET_UID`) asks the reader for the card's UID (4, 7 or 10 bytes
for ISO 14443-A, 8 for ISO 15693 and FeliCa); the answer is ``UID 90 00``.

Status words (``SW1 SW2``), table :data:`STATUS_WORDS`; ``61xx`` and ``6Cxx`` are
families handled in :func:`status_message`.
"""

from .errors import DeviceError, EncodeError, FrameError

GET_UID = b"\xff\xca\x00\x00\x00"
SW_OK = 0x9000
MAX_UID = 16

# status word -> (message, retrying may help)
STATUS_WORDS = {
    0x9000: ("success", False),
    0x6282: ("end of data reached before Le bytes (UID shorter than asked)", False),
    0x6300: ("the reader could not read the card (no information given)", True),
    0x6581: ("memory failure on the card", True),
    0x6700: ("wrong length: Le/Lc not accepted by the reader", False),
    0x6800: ("function in CLA not supported", False),
    0x6981: ("command incompatible with the card's file structure", False),
    0x6982: ("security status not satisfied (authentication needed)", False),
    0x6985: ("conditions of use not satisfied", False),
    0x6986: ("command not allowed (no current EF)", False),
    0x6A81: ("function not supported: this card or reader cannot return a UID", False),
    0x6A82: ("file or application not found", False),
    0x6A86: ("incorrect parameters P1-P2", False),
    0x6B00: ("wrong parameters P1-P2", False),
    0x6D00: ("instruction (INS) not supported by the reader", False),
    0x6E00: ("class (CLA) not supported by the reader", False),
    0x6F00: ("no precise diagnosis: the card or reader failed", True),
}


def status_message(sw: int) -> tuple[str, bool]:
    """``(message, retrying may help)`` for a status word, families included."""
    if sw in STATUS_WORDS:
        return STATUS_WORDS[sw]
    if sw >> 8 == 0x61:
        return (f"{sw & 0xFF} more response bytes available (send GET RESPONSE)", True)
    if sw >> 8 == 0x6C:
        return (f"wrong Le: repeat the command with Le = {sw & 0xFF}", True)
    return ("unknown status word", False)


def check_status(sw1: int, sw2: int) -> None:
    """Raise DeviceError unless ``SW1 SW2`` is ``90 00``."""
    sw = sw1 << 8 | sw2
    if sw == SW_OK:
        return
    message, retry = status_message(sw)
    raise DeviceError(f"status word {sw1:02X} {sw2:02X}: {message}", sw, retry)


def split_response(response: bytes) -> tuple[bytes, int, int]:
    """``data + SW1 SW2`` -> ``(data, sw1, sw2)``."""
    if len(response) < 2:
        raise FrameError(f"response of {len(response)} bytes has no status word")
    return response[:-2], response[-2], response[-1]


def encode_get_uid() -> bytes:
    return GET_UID


def decode_uid_response(response: bytes) -> bytes:
    """The UID from a GET UID response; DeviceError for any status other than 90 00."""
    data, sw1, sw2 = split_response(response)
    check_status(sw1, sw2)
    if not 0 < len(data) <= MAX_UID:
        raise FrameError(f"90 00 with a UID of {len(data)} bytes (expected 1-{MAX_UID})")
    return data


class Apdu:
    """A short command APDU as a card sees it; ``le`` is None when absent (0 means 256)."""

    __slots__ = ("cla", "data", "ins", "le", "p1", "p2")

    def __init__(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> None:
        self.cla = cla
        self.ins = ins
        self.p1 = p1
        self.p2 = p2
        self.data = data
        self.le = le

    @property
    def is_get_uid(self) -> bool:
        return (self.cla, self.ins, self.p1, self.p2, self.data) == (0xFF, 0xCA, 0, 0, b"")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Apdu) and (
            other.cla,
            other.ins,
            other.p1,
            other.p2,
            other.data,
            other.le,
        ) == (self.cla, self.ins, self.p1, self.p2, self.data, self.le)

    def __repr__(self) -> str:
        return (
            f"Apdu({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X},"
            f" data={self.data.hex()}, le={self.le})"
        )


def encode_apdu(apdu: Apdu) -> bytes:
    """Short APDU, cases 1-4."""
    for v in (apdu.cla, apdu.ins, apdu.p1, apdu.p2):
        if not 0 <= v <= 0xFF:
            raise EncodeError(f"header byte {v} not in 0-255")
    out = bytes([apdu.cla, apdu.ins, apdu.p1, apdu.p2])
    if apdu.data:
        if len(apdu.data) > 255:
            raise EncodeError("short APDUs carry at most 255 data bytes")
        out += bytes([len(apdu.data)]) + apdu.data
    if apdu.le is not None:
        if not 0 <= apdu.le <= 255:
            raise EncodeError(f"Le {apdu.le} not in 0-255")
        out += bytes([apdu.le])
    return out


def decode_apdu(raw: bytes) -> Apdu:
    """Parse a short command APDU (cases 1-4); FrameError on a malformed one."""
    if len(raw) < 4:
        raise FrameError(f"APDU of {len(raw)} bytes is shorter than its header")
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    body = raw[4:]
    if not body:
        return Apdu(cla, ins, p1, p2)
    if len(body) == 1:
        return Apdu(cla, ins, p1, p2, le=body[0])
    lc = body[0]
    if lc == 0:
        raise FrameError("extended APDUs are not supported")
    if len(body) == 1 + lc:
        return Apdu(cla, ins, p1, p2, body[1:])
    if len(body) == 2 + lc:
        return Apdu(cla, ins, p1, p2, body[1:-1], body[-1])
    raise FrameError(f"Lc = {lc} does not match {len(body) - 1} bytes after it")


def encode_response(data: bytes, sw: int = SW_OK) -> bytes:
    """``data + SW1 SW2`` as a card answers."""
    if not 0 <= sw <= 0xFFFF:
        raise EncodeError(f"status word 0x{sw:X} does not fit in two bytes")
    return data + bytes([sw >> 8, sw & 0xFF])
