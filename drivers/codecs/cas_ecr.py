"""CAS "ECR" protocol of price-computing scales (the variant pinned here).

Exchange: host ``ENQ`` -> scale ``ACK``; host ``DC1`` -> weight frame; host ``DC2`` ->
price frame (weight frame plus unit price and total). Other CAS ECR "types" move or
resize fields: add a layout, do not patch the parser.

Frame layout (offsets in bytes; every field ASCII; one table, :data:`LAYOUT`):

======  ======  ======  ==================================================================
field   offset  length  content
======  ======  ======  ==================================================================
SOH     0       1       0x01
STX     1       1       0x02
status  2       1       ``S`` stable, ``U`` unstable (motion), ``O`` overload
sign    3       1       ``" "`` positive, ``"-"`` negative
weight  4       6       right-aligned digits with an optional point, e.g. ``" 1.250"``;
                        in overload any 6 characters (``"------"``), no weight decoded
unit    10      2       right-aligned unit, e.g. ``"kg"``, ``"lb"``, ``" g"``
price   12      8       DC2 only: unit price, digits with optional point (``"00012.90"``)
total   20      8       DC2 only: total price, same format
BCC     12/28   1       XOR of every byte from ``status`` up to the byte before BCC
ETX     13/29   1       0x03
EOT     14/30   1       0x04
======  ======  ======  ==================================================================

A weight frame is 15 bytes, a price frame 31. Bytes 13-14 are ``ETX EOT`` only in a
weight frame (in a price frame they are price digits), which tells the two apart. Money
keeps the decimals written in the field: ``"00012.90"`` -> ``Money(1290, 2)``.
"""

from .errors import ChecksumError, EncodeError, FrameError
from .quantities import Money, Weight, format_decimal, parse_decimal
from .stream import StreamDecoder

SOH = 0x01
STX = 0x02
ETX = 0x03
EOT = 0x04
ENQ = 0x05
ACK = 0x06
NAK = 0x15
DC1 = 0x11
DC2 = 0x12

LAYOUT = {
    "status": (2, 1),
    "sign": (3, 1),
    "weight": (4, 6),
    "unit": (10, 2),
    "price": (12, 8),
    "total": (20, 8),
}
WEIGHT_FRAME_LEN = 15
PRICE_FRAME_LEN = 31
BCC_FROM = 2
STATUSES = {"S": "stable", "U": "unstable", "O": "overload"}
OVERLOAD_FILL = "------"
COMMANDS = {ENQ: "ENQ", DC1: "DC1", DC2: "DC2"}
CONTROLS = {ACK: "ACK", NAK: "NAK"}


def bcc(data: bytes) -> int:
    """XOR of all bytes."""
    x = 0
    for b in data:
        x ^= b
    return x


class Control:
    """A single control byte from the scale: ``Control("ACK")`` or ``Control("NAK")``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Control) and other.name == self.name

    def __repr__(self) -> str:
        return f"Control({self.name!r})"


class Reading:
    """A weight frame (``unit_price``/``total`` None) or a price frame."""

    __slots__ = ("status", "total", "unit_price", "weight")

    def __init__(
        self,
        status: str,
        weight: Weight | None,
        unit_price: Money | None = None,
        total: Money | None = None,
    ) -> None:
        self.status = status
        self.weight = weight
        self.unit_price = unit_price
        self.total = total

    @property
    def stable(self) -> bool:
        return self.status == "S"

    @property
    def overload(self) -> bool:
        return self.status == "O"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Reading)
            and other.status == self.status
            and other.weight == self.weight
            and other.unit_price == self.unit_price
            and other.total == self.total
        )

    def __repr__(self) -> str:
        return f"Reading({self.status!r}, {self.weight!r}, {self.unit_price!r}, {self.total!r})"


def _field(raw: bytes, name: str) -> str:
    offset, length = LAYOUT[name]
    return raw[offset : offset + length].decode()


def _fit(text: str, name: str) -> str:
    length = LAYOUT[name][1]
    if len(text) > length:
        raise EncodeError(f"{name} {text!r} does not fit in {length} characters")
    return " " * (length - len(text)) + text


def encode_command(name: str) -> bytes:
    """``"ENQ"``, ``"DC1"`` (weight) or ``"DC2"`` (weight, unit price, total)."""
    for code, known in COMMANDS.items():
        if known == name:
            return bytes([code])
    raise EncodeError(f"unknown CAS ECR command {name!r}; known: ENQ, DC1, DC2")


def encode_control(name: str) -> bytes:
    for code, known in CONTROLS.items():
        if known == name:
            return bytes([code])
    raise EncodeError(f"unknown CAS ECR control {name!r}; known: ACK, NAK")


def _money_text(money: Money, name: str) -> str:
    if money.value < 0:
        raise EncodeError(f"{name} cannot be negative")
    text = format_decimal(money.value, money.decimals)
    length = LAYOUT[name][1]
    return "0" * (length - len(text)) + text if len(text) < length else _fit(text, name)


def encode_reading(reading: Reading) -> bytes:
    """The scale's weight frame, or price frame when ``unit_price`` and ``total`` are set."""
    if reading.status not in STATUSES:
        raise EncodeError(f"unknown status {reading.status!r}; known: S, U, O")
    if (reading.status == "O") != (reading.weight is None):
        raise EncodeError("an overload reading has no weight; any other reading needs one")
    if reading.weight is None:
        sign, number, unit = " ", OVERLOAD_FILL, "kg"
    else:
        w = reading.weight
        sign = "-" if w.value < 0 else " "
        number = format_decimal(abs(w.value), w.decimals)
        unit = w.unit
    body = reading.status + sign + _fit(number, "weight") + _fit(unit, "unit")
    if (reading.unit_price is None) != (reading.total is None):
        raise EncodeError("a price frame needs both unit_price and total")
    if reading.unit_price is not None and reading.total is not None:
        body += _money_text(reading.unit_price, "price") + _money_text(reading.total, "total")
    data = body.encode()
    for b in data:
        if not 0x20 <= b <= 0x7E:
            raise EncodeError(f"non-printable character in {body!r}")
    return bytes([SOH, STX]) + data + bytes([bcc(data), ETX, EOT])


def _money(raw: bytes, name: str) -> Money:
    text = _field(raw, name)
    if " " in text.strip(" "):
        raise FrameError(f"bad {name} field {text!r}")
    value, decimals = parse_decimal(text)
    if value < 0 or text.strip(" ")[:1] in ("-", "+"):
        raise FrameError(f"{name} field {text!r} must be unsigned")
    return Money(value, decimals)


def decode_reading(raw: bytes) -> Reading:
    """Parse one complete 15- or 31-byte frame."""
    n = len(raw)
    if n not in (WEIGHT_FRAME_LEN, PRICE_FRAME_LEN):
        raise FrameError(f"CAS ECR frame must be 15 or 31 bytes, got {n}: {raw!r}")
    if raw[0] != SOH or raw[1] != STX or raw[n - 2] != ETX or raw[n - 1] != EOT:
        raise FrameError(f"CAS ECR frame must be SOH STX ... BCC ETX EOT: {raw!r}")
    data = raw[BCC_FROM : n - 3]
    if bcc(data) != raw[n - 3]:
        raise ChecksumError(f"BCC 0x{raw[n - 3]:02X} != computed 0x{bcc(data):02X} in {raw!r}")
    for b in data:
        if not 0x20 <= b <= 0x7E:
            raise FrameError(f"byte 0x{b:02X} is not printable ASCII in {raw!r}")
    status = _field(raw, "status")
    if status not in STATUSES:
        raise FrameError(f"unknown status {status!r} in {raw!r}")
    sign = _field(raw, "sign")
    if sign not in (" ", "-"):
        raise FrameError(f"bad sign {sign!r} in {raw!r}")
    unit = _field(raw, "unit").strip(" ")
    number = _field(raw, "weight")
    weight = None
    if status != "O":
        if not unit or " " in unit or " " in number.strip(" "):
            raise FrameError(f"bad weight or unit field in {raw!r}")
        if number.strip(" ")[:1] in ("-", "+"):
            raise FrameError(f"sign inside the weight field in {raw!r}")
        value, decimals = parse_decimal(number)
        weight = Weight(-value if sign == "-" else value, decimals, unit)
    if n == WEIGHT_FRAME_LEN:
        return Reading(status, weight)
    return Reading(status, weight, _money(raw, "price"), _money(raw, "total"))


class Decoder(StreamDecoder):
    """Scale -> host: ``feed(bytes) -> list[Reading | Control | BadFrame]``."""

    def _find_start(self, buf: bytes, pos: int) -> int:
        end = len(buf)
        while pos < end:
            b = buf[pos]
            if b in (SOH, ACK, NAK):
                return pos
            pos += 1
        return -1

    def _frame_length(self, buf: bytes, pos: int) -> int:
        if buf[pos] != SOH:
            return 1
        avail = len(buf) - pos
        if avail < 2:
            return 0
        if buf[pos + 1] != STX:
            return -1
        if avail < WEIGHT_FRAME_LEN - 1:
            return 0
        if buf[pos + WEIGHT_FRAME_LEN - 2] == ETX:
            if avail < WEIGHT_FRAME_LEN:
                return 0
            if buf[pos + WEIGHT_FRAME_LEN - 1] == EOT:
                return WEIGHT_FRAME_LEN
        return PRICE_FRAME_LEN if avail >= PRICE_FRAME_LEN else 0

    def decode_frame(self, raw: bytes) -> object:
        if len(raw) == 1:
            return Control(CONTROLS[raw[0]])
        return decode_reading(raw)


class CommandDecoder(StreamDecoder):
    """Host -> scale (simulators): ``feed(bytes) -> list[str]`` (``"ENQ"``, ``"DC1"``, ...)."""

    lookahead = False

    def _frame_length(self, buf: bytes, pos: int) -> int:
        return 1 if buf[pos] in COMMANDS else -1

    def decode_frame(self, raw: bytes) -> object:
        return COMMANDS[raw[0]]
