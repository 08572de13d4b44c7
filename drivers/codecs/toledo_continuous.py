"""Mettler Toledo continuous output: the scale streams fixed 18-byte frames unasked.

Frame: ``STX SWA SWB SWC W W W W W W T T T T T T CR CHK``

* weight and tare: 6 ASCII digits each (leading zeros or blanks), no decimal point; the
  point position is in SWA; the weight's sign is in SWB; the tare is unsigned.
* ``CHK``: two's complement of the 7-bit sum of every preceding byte (STX to CR), i.e.
  ``(sum(frame[:17]) + CHK) & 0x7F == 0``.
* The line is 7 data bits (even parity): the transport must deliver 7-bit bytes; bit 7
  set anywhere makes the frame invalid here.

Status bytes (bit 5 of each is always 1; bit 7 is parity):

====  ====  ==============================================================
byte  bits  meaning
====  ====  ==============================================================
SWA   0-2   decimal point code, table :data:`DECIMAL_POINT` (``XXXX00`` ... ``X.XXXXX``)
SWA   3-4   increment size: 1 = x1, 2 = x2, 3 = x5
SWB   0     1 = net weight, 0 = gross
SWB   1     1 = negative weight
SWB   2     1 = out of range (over / under capacity)
SWB   3     1 = motion
SWB   4     1 = kg, 0 = lb (when SWC bits 0-2 are 0)
SWB   6     1 = power-up, not ready
SWC   0-2   unit override, table :data:`UNITS` (0 = use SWB bit 4)
SWC   3     1 = print request
SWC   4     1 = expanded data (x10)
SWC   6     1 = keyboard (hand) tare
====  ====  ==============================================================
"""

from .errors import ChecksumError, EncodeError, FrameError
from .quantities import Weight, is_digits
from .stream import StreamDecoder

STX = 0x02
CR = 0x0D
FRAME_LEN = 18
ALWAYS_ONE = 0x20

# decimal point code -> (decimals, multiplier): code 0 "XXXX00" means the six digits
# are hundreds, code 4 "XXXX.XX" means two decimals
DECIMAL_POINT = ((0, 100), (0, 10), (0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1))
INCREMENTS = (0, 1, 2, 5)
UNITS = ("", "g", "t", "oz", "ozt", "dwt", "ton", "custom")
SWB_BITS = (
    (0x01, "net"),
    (0x02, "negative"),
    (0x04, "out_of_range"),
    (0x08, "motion"),
    (0x10, "kg"),
    (0x40, "power_up"),
)
SWC_BITS = ((0x08, "print_request"), (0x10, "expanded"), (0x40, "keyboard_tare"))
FLAGS = ("net", "out_of_range", "motion", "power_up", "print_request", "expanded", "keyboard_tare")


def checksum(data: bytes) -> int:
    """Two's complement of the 7-bit sum of ``data``."""
    return -sum(data) & 0x7F


class Frame:
    """One continuous-output frame.

    ``weight`` is signed; ``tare`` unsigned; both in the same unit and resolution.
    ``flags`` is a sorted list of names from :data:`FLAGS`. ``dp_code`` is SWA bits 0-2
    (derived from ``weight.decimals`` when not given); ``increment`` is 1, 2 or 5.
    """

    __slots__ = ("dp_code", "flags", "increment", "tare", "weight")

    def __init__(
        self,
        weight: Weight,
        tare: Weight,
        flags: list[str] | None = None,
        increment: int = 1,
        dp_code: int | None = None,
    ) -> None:
        self.weight = weight
        self.tare = tare
        self.flags = sorted(flags) if flags else []
        self.increment = increment
        self.dp_code = weight.decimals + 2 if dp_code is None else dp_code

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def stable(self) -> bool:
        return "motion" not in self.flags

    @property
    def net(self) -> bool:
        return "net" in self.flags

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Frame)
            and other.weight == self.weight
            and other.tare == self.tare
            and other.flags == self.flags
            and other.increment == self.increment
            and other.dp_code == self.dp_code
        )

    def __repr__(self) -> str:
        return (
            f"Frame({self.weight!r}, {self.tare!r}, {self.flags!r},"
            f" increment={self.increment}, dp_code={self.dp_code})"
        )


def _digits6(value: int, multiplier: int, what: str) -> bytes:
    if value < 0 or value % multiplier:
        raise EncodeError(f"{what} {value} is not a non-negative multiple of {multiplier}")
    text = str(value // multiplier)
    if len(text) > 6:
        raise EncodeError(f"{what} {value} needs more than 6 digits")
    return ("0" * (6 - len(text)) + text).encode()


def encode_frame(frame: Frame) -> bytes:
    """The 18 bytes a scale sends for ``frame``."""
    if not 0 <= frame.dp_code <= 7:
        raise EncodeError(f"decimal point code {frame.dp_code} not in 0-7")
    decimals, multiplier = DECIMAL_POINT[frame.dp_code]
    w, t = frame.weight, frame.tare
    if w.decimals != decimals or t.decimals != decimals:
        raise EncodeError(f"weight and tare need {decimals} decimals for code {frame.dp_code}")
    if w.unit != t.unit:
        raise EncodeError("weight and tare must share a unit")
    if frame.increment not in INCREMENTS[1:]:
        raise EncodeError(f"increment {frame.increment} not in 1, 2, 5")
    for flag in frame.flags:
        if flag not in FLAGS:
            raise EncodeError(f"unknown flag {flag!r}; known: {', '.join(FLAGS)}")
    swa = ALWAYS_ONE | frame.dp_code | INCREMENTS.index(frame.increment) << 3
    swb = ALWAYS_ONE
    swc = ALWAYS_ONE
    for bit, name in SWB_BITS:
        if name in frame.flags:
            swb |= bit
    for bit, name in SWC_BITS:
        if name in frame.flags:
            swc |= bit
    if w.value < 0:
        swb |= 0x02
    if w.unit == "kg":
        swb |= 0x10
    elif w.unit != "lb":
        if w.unit not in UNITS[1:]:
            raise EncodeError(f"unit {w.unit!r} not in kg, lb, {', '.join(UNITS[1:])}")
        swc |= UNITS.index(w.unit)
    body = (
        bytes([STX, swa, swb, swc])
        + _digits6(abs(w.value), multiplier, "weight")
        + _digits6(t.value, multiplier, "tare")
        + bytes([CR])
    )
    return body + bytes([checksum(body)])


def _number(field: bytes, raw: bytes) -> int:
    text = field.decode().lstrip(" ")
    if not is_digits(text):
        raise FrameError(f"bad digits {field!r} in {raw!r}")
    return int(text)


def decode_frame(raw: bytes) -> Frame:
    """Parse one complete 18-byte frame; FrameError / ChecksumError on garbage."""
    if len(raw) != FRAME_LEN or raw[0] != STX or raw[16] != CR:
        raise FrameError(f"continuous frame must be 18 bytes STX ... CR CHK: {raw!r}")
    for b in raw:
        if b > 0x7F:
            raise FrameError(f"byte 0x{b:02X} has bit 7 set (line not 7E1?) in {raw!r}")
    if checksum(raw[:17]) != raw[17]:
        raise ChecksumError(
            f"checksum 0x{raw[17]:02X} != computed 0x{checksum(raw[:17]):02X} in {raw!r}"
        )
    swa, swb, swc = raw[1], raw[2], raw[3]
    if not swa & swb & swc & ALWAYS_ONE:
        raise FrameError(f"status bytes lack the always-one bit 5 in {raw!r}")
    increment = INCREMENTS[swa >> 3 & 0x03]
    if not increment:
        raise FrameError(f"increment code 0 in SWA 0x{swa:02X}")
    dp_code = swa & 0x07
    decimals, multiplier = DECIMAL_POINT[dp_code]
    unit_code = swc & 0x07
    unit = UNITS[unit_code] if unit_code else ("kg" if swb & 0x10 else "lb")
    flags = [name for bit, name in SWB_BITS if swb & bit and name not in ("negative", "kg")]
    flags += [name for bit, name in SWC_BITS if swc & bit]
    value = _number(raw[4:10], raw) * multiplier
    tare = _number(raw[10:16], raw) * multiplier
    if swb & 0x02:
        value = -value
    return Frame(
        Weight(value, decimals, unit), Weight(tare, decimals, unit), flags, increment, dp_code
    )


class Decoder(StreamDecoder):
    """Scale -> host: ``feed(bytes) -> list[Frame | BadFrame]``."""

    def _find_start(self, buf: bytes, pos: int) -> int:
        return buf.find(b"\x02", pos)

    def _frame_length(self, buf: bytes, pos: int) -> int:
        return FRAME_LEN if len(buf) - pos >= FRAME_LEN else 0

    def decode_frame(self, raw: bytes) -> object:
        return decode_frame(raw)
