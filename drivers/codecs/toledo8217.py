"""Toledo 8217 scale protocol (serial 7E1): the host asks, the scale answers one frame.

Host -> scale: ``W`` (weight), ``S`` (status), ``Z`` (zero); single bytes, a trailing CR
is tolerated. Scale -> host:

* weight: ``STX <weight ASCII> CR``, e.g. ``b"\\x0201.234\\r"``: digits with at most
  one decimal point and no sign (a negative gross is reported through the status byte
  instead), at most ``MAX_WEIGHT_CHARS`` characters.
  The unit is not on the wire: it is the scale's configuration (``Decoder(unit=...)``).
* status: ``STX "?" <status byte> CR`` when the scale cannot give a weight (or after
  ``S``/``Z``).

Status byte bit map (bit 0 = least significant; bit 5 is always 1 so the byte is
printable and can never be mistaken for CR or STX; bit 7 is the parity bit, stripped by
the 7E1 serial line and ignored here):

===  =======================  =========================================
bit  name                     meaning when 1
===  =======================  =========================================
0    ``motion``               scale in motion (no stable weight)
1    ``over_capacity``        weight above capacity
2    ``negative``             gross weight below zero (under zero)
3    ``out_of_zero_range``    outside the zero capture range at power-up/zero
4    ``center_of_zero``       at the center of zero
5    (always 1)
6    ``net``                  the weight is a net weight (tare active)
7    (parity, ignored)
===  =======================  =========================================
"""

from .errors import EncodeError, FrameError
from .quantities import Weight, format_decimal, is_digits, parse_decimal
from .stream import StreamDecoder

STX = 0x02
CR = 0x0D
STATUS_MARK = 0x3F  # "?"
COMMANDS = {0x57: "W", 0x53: "S", 0x5A: "Z"}
STATUS_BITS = (
    (0x01, "motion"),
    (0x02, "over_capacity"),
    (0x04, "negative"),
    (0x08, "out_of_zero_range"),
    (0x10, "center_of_zero"),
    (0x40, "net"),
)
ALWAYS_ONE = 0x20
MAX_WEIGHT_CHARS = 8
WEIGHT_DIGITS = 5  # the encoder zero-pads to this many digits: 1.234 kg -> "01.234"
MAX_FRAME = MAX_WEIGHT_CHARS + 2


def status_flags(status: int) -> list[str]:
    """Names of the bits set in ``status``, in table order."""
    return [name for bit, name in STATUS_BITS if status & bit]


def status_byte(flags: list[str]) -> int:
    """Inverse of :func:`status_flags` (adds the always-one bit)."""
    value = ALWAYS_ONE
    known = [name for _, name in STATUS_BITS]
    for name in flags:
        if name not in known:
            raise EncodeError(f"unknown 8217 status flag {name!r}; known: {', '.join(known)}")
        value |= STATUS_BITS[known.index(name)][0]
    return value


class Reply:
    """A weight reply (``weight`` set, ``status`` None) or a status reply (the reverse)."""

    __slots__ = ("status", "weight")

    def __init__(self, weight: Weight | None = None, status: int | None = None) -> None:
        self.weight = weight
        self.status = status

    @property
    def flags(self) -> list[str]:
        return status_flags(self.status) if self.status is not None else []

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Reply) and other.weight == self.weight and other.status == self.status
        )

    def __repr__(self) -> str:
        if self.status is None:
            return f"Reply(weight={self.weight!r})"
        return f"Reply(status=0x{self.status:02X} {self.flags})"


def encode_command(name: str) -> bytes:
    """``encode_command("W")`` -> ``b"W"``."""
    for code, known in COMMANDS.items():
        if known == name:
            return bytes([code])
    raise EncodeError(f"unknown 8217 command {name!r}; known: W, S, Z")


def encode_weight(weight: Weight) -> bytes:
    """The scale's weight frame, zero-padded to 5 digits; the unit is not transmitted."""
    if weight.value < 0:
        raise EncodeError("8217 weights carry no sign; report a negative gross by status")
    text = format_decimal(weight.value, weight.decimals)
    digits = len(text) - (1 if weight.decimals else 0)
    if digits < WEIGHT_DIGITS:
        text = "0" * (WEIGHT_DIGITS - digits) + text
    if len(text) > MAX_WEIGHT_CHARS:
        raise EncodeError(f"weight {text!r} longer than {MAX_WEIGHT_CHARS} characters")
    return bytes([STX]) + text.encode() + bytes([CR])


def encode_status(status: int) -> bytes:
    """The scale's status frame ``STX ? status CR``; bit 5 must be set, bit 7 clear."""
    if not 0 <= status <= 0x7F or not status & ALWAYS_ONE:
        raise EncodeError(f"8217 status byte 0x{status:02X} needs bit 5 set and bit 7 clear")
    return bytes([STX, STATUS_MARK, status, CR])


def encode_reply(reply: Reply) -> bytes:
    if reply.status is not None:
        return encode_status(reply.status)
    if reply.weight is None:
        raise EncodeError("reply needs a weight or a status")
    return encode_weight(reply.weight)


def decode_reply(raw: bytes, unit: str = "kg") -> Reply:
    """Parse one complete frame ``STX ... CR``."""
    if len(raw) < 3 or raw[0] != STX or raw[-1] != CR:
        raise FrameError(f"8217 frame must be STX ... CR: {raw!r}")
    body = raw[1:-1]
    if body[0] == STATUS_MARK:
        if len(body) != 2:
            raise FrameError(f"status frame must carry exactly one status byte: {raw!r}")
        status = body[1] & 0x7F
        if not status & ALWAYS_ONE:
            raise FrameError(f"status byte 0x{body[1]:02X} lacks the always-one bit 5")
        return Reply(status=status)
    if len(body) > MAX_WEIGHT_CHARS:
        raise FrameError(f"weight field too long: {raw!r}")
    for b in body:
        if not (0x30 <= b <= 0x39 or b == 0x2E):
            raise FrameError(f"bad character 0x{b:02X} in 8217 weight {raw!r}")
    text = body.decode()
    if not is_digits(text.replace(".", "")):
        raise FrameError(f"no digits in 8217 weight {raw!r}")
    value, decimals = parse_decimal(text)
    return Reply(weight=Weight(value, decimals, unit))


class Decoder(StreamDecoder):
    """Scale -> host: ``feed(bytes) -> list[Reply | BadFrame]``.

    An STX always starts a new frame: a frame cut short by another STX is reported as a
    BadFrame and decoding restarts at the new STX.
    """

    def __init__(self, unit: str = "kg", max_buffer: int = 4096) -> None:
        super().__init__(max_buffer)
        self.unit = unit

    def _find_start(self, buf: bytes, pos: int) -> int:
        return buf.find(b"\x02", pos)

    def _frame_length(self, buf: bytes, pos: int) -> int:
        end = min(len(buf), pos + MAX_FRAME + 1)
        for i in range(pos + 1, end):
            b = buf[i]
            if b == CR:
                return i + 1 - pos
            if b == STX:
                return i - pos
        if end == pos + MAX_FRAME + 1:
            return MAX_FRAME + 1
        return 0

    def decode_frame(self, raw: bytes) -> object:
        return decode_reply(raw, self.unit)


class CommandDecoder(StreamDecoder):
    """Host -> scale (simulators): ``feed(bytes) -> list[str]`` of ``"W"``/``"S"``/``"Z"``.

    Any other byte (CR, LF, noise) is skipped and counted in ``discarded``.
    """

    lookahead = False

    def _frame_length(self, buf: bytes, pos: int) -> int:
        return 1 if buf[pos] in COMMANDS else -1

    def decode_frame(self, raw: bytes) -> object:
        return COMMANDS[raw[0]]
