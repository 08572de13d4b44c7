"""Mettler Toledo MT-SICS (level 0/1 subset): ASCII lines terminated by CR LF.

Commands (host -> balance), built by :func:`encode_command`:

======  ==============================  ===================================
``S``   stable weight                   ``S S     100.00 g``
``SI``  weight immediately              ``S S ...`` or ``S D ...`` (dynamic)
``Z``   zero                            ``Z A``
``T``   tare                            ``T S     100.00 g`` (tare weight)
``TA``  query / preset tare (value)     ``TA A    100.00 g``
``TAC`` clear tare                      ``TAC A``
``@``   reset (cancel, no zero)         ``I4 A "B021002593"``
``I4``  serial number                   ``I4 A "B021002593"``
======  ==============================  ===================================

Reply statuses (second field): ``S`` stable, ``D`` dynamic, ``A`` done, ``I`` busy /
not executable now, ``L`` logical error (e.g. parameter), ``+`` overload, ``-``
underload. Whole-line errors: ``ES`` syntax, ``ET`` transmission, ``EL`` logical.
Weights are right-aligned in a 10-character field followed by a space and the unit;
decoded as :class:`~drivers.codecs.quantities.Weight` (``100.00 g`` ->
``Weight(10000, 2, "g")``).

``Decoder`` decodes replies into :class:`Reply`; ``CommandDecoder`` decodes commands
into :class:`Command` (for simulators). Device-reported failures are valid replies;
``Reply.raise_for_status()`` turns them into :class:`DeviceError`.
"""

from .errors import DeviceError, EncodeError, FrameError
from .lines import LineDecoder, ascii_text, strip_eol
from .quantities import Weight, format_decimal, parse_decimal

COMMANDS = ("S", "SI", "Z", "T", "TA", "TAC", "@", "I4")

# reply identifier -> statuses it may carry
REPLY_STATUSES = {
    "S": "SDI+-L",
    "SI": "SDI+-L",
    "Z": "AI+-L",
    "T": "SI+-L",
    "TA": "AIL",
    "TAC": "AIL",
    "I4": "AIL",
}
WEIGHT_REPLIES = ("S S", "S D", "SI S", "SI D", "T S", "TA A")
TEXT_REPLIES = ("I4 A",)
ERROR_LINES = {
    "ES": ("syntax error: the balance did not recognise the command", False),
    "ET": ("transmission error: the balance received a corrupted command", True),
    "EL": ("logical error: the balance cannot execute the command", False),
}
STATUS_ERRORS = {
    "I": ("busy or not executable now (e.g. still taking another reading)", True),
    "L": ("command understood but not executable (parameter out of range?)", False),
    "+": ("overload: upper limit of the weighing or zero/tare range exceeded", True),
    "-": ("underload: lower limit of the weighing or zero/tare range exceeded", True),
}
WEIGHT_WIDTH = 10
MAX_UNIT = 5


class Reply:
    """One reply line. ``weight`` for weight replies, ``text`` for ``I4 A``."""

    __slots__ = ("command", "status", "text", "weight")

    def __init__(
        self, command: str, status: str = "", weight: Weight | None = None, text: str = ""
    ) -> None:
        self.command = command
        self.status = status
        self.weight = weight
        self.text = text

    @property
    def stable(self) -> bool:
        return self.status == "S" and self.command in ("S", "SI")

    @property
    def ok(self) -> bool:
        return self.command not in ERROR_LINES and self.status not in STATUS_ERRORS

    def raise_for_status(self) -> "Reply":
        """Return self when the balance reports success, else raise DeviceError."""
        if self.command in ERROR_LINES:
            message, retry = ERROR_LINES[self.command]
            raise DeviceError(self.command + ": " + message, self.command, retry)
        if self.status in STATUS_ERRORS:
            message, retry = STATUS_ERRORS[self.status]
            code = self.command + " " + self.status
            raise DeviceError(code + ": " + message, code, retry)
        return self

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Reply)
            and other.command == self.command
            and other.status == self.status
            and other.weight == self.weight
            and other.text == self.text
        )

    def __repr__(self) -> str:
        return f"Reply({self.command!r}, {self.status!r}, {self.weight!r}, {self.text!r})"


class Command:
    """One command line; ``weight`` only for ``TA`` with a preset value."""

    __slots__ = ("name", "weight")

    def __init__(self, name: str, weight: Weight | None = None) -> None:
        self.name = name
        self.weight = weight

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Command) and other.name == self.name and other.weight == self.weight
        )

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.weight!r})"


def _check_unit(unit: str) -> None:
    if not 0 < len(unit) <= MAX_UNIT or not all(0x21 <= ord(c) <= 0x7E for c in unit):
        raise EncodeError(f"bad unit {unit!r}: 1-{MAX_UNIT} printable characters, no spaces")


def _weight_text(weight: Weight) -> str:
    _check_unit(weight.unit)
    text = format_decimal(weight.value, weight.decimals)
    return " " * (WEIGHT_WIDTH - len(text)) + text + " " + weight.unit


def _parse_weight(text: str, line: str) -> Weight:
    parts = text.split()
    if len(parts) != 2:
        raise FrameError(f"expected '<value> <unit>' in {line!r}")
    value, decimals = parse_decimal(parts[0])
    unit = parts[1]
    if len(unit) > MAX_UNIT:
        raise FrameError(f"unit too long in {line!r}")
    return Weight(value, decimals, unit)


def encode_command(name: str, weight: Weight | None = None) -> bytes:
    """``encode_command("S")`` -> ``b"S\\r\\n"``; ``TA`` takes an optional preset tare."""
    if name not in COMMANDS:
        raise EncodeError(f"unknown MT-SICS command {name!r}; known: {', '.join(COMMANDS)}")
    if weight is not None:
        if name != "TA":
            raise EncodeError(f"command {name!r} takes no value")
        _check_unit(weight.unit)
        line = "TA " + format_decimal(weight.value, weight.decimals) + " " + weight.unit
    else:
        line = name
    return line.encode() + b"\r\n"


def decode_command(raw: bytes) -> Command:
    """Parse one command line (with or without its CR LF)."""
    line = ascii_text(strip_eol(raw), "MT-SICS command").strip(" ")
    if line in COMMANDS:
        return Command(line)
    if line.startswith("TA "):
        return Command("TA", _parse_weight(line[3:], line))
    raise FrameError(f"unknown MT-SICS command {line!r}")


def encode_reply(reply: Reply) -> bytes:
    """The line a balance sends for ``reply`` (used by simulators and tests)."""
    if reply.command in ERROR_LINES:
        return reply.command.encode() + b"\r\n"
    statuses = REPLY_STATUSES.get(reply.command)
    if statuses is None or len(reply.status) != 1 or reply.status not in statuses:
        raise EncodeError(f"no MT-SICS reply {reply.command!r} {reply.status!r}")
    key = reply.command + " " + reply.status
    line = key
    if key in WEIGHT_REPLIES:
        if reply.weight is None:
            raise EncodeError(f"reply {key!r} needs a weight")
        line = key + " " + _weight_text(reply.weight)
    elif key in TEXT_REPLIES:
        if '"' in reply.text or not all(0x20 <= ord(c) <= 0x7E for c in reply.text):
            raise EncodeError(f"text {reply.text!r} must be printable ASCII without quotes")
        line = key + ' "' + reply.text + '"'
    return line.encode() + b"\r\n"


def decode_reply(raw: bytes) -> Reply:
    """Parse one reply line (with or without its CR LF); FrameError on garbage."""
    line = ascii_text(strip_eol(raw), "MT-SICS reply")
    if line in ERROR_LINES:
        return Reply(line)
    ident, _, rest = line.partition(" ")
    statuses = REPLY_STATUSES.get(ident)
    status = rest[:1]
    if statuses is None or not status or status not in statuses:
        raise FrameError(f"not an MT-SICS reply: {line!r}")
    tail = rest[1:]
    if tail and tail[0] != " ":
        raise FrameError(f"status must be one character in {line!r}")
    key = ident + " " + status
    if key in WEIGHT_REPLIES:
        return Reply(ident, status, weight=_parse_weight(tail, line))
    if key in TEXT_REPLIES:
        text = tail.strip(" ")
        if len(text) < 2 or text[0] != '"' or text[-1] != '"' or '"' in text[1:-1]:
            raise FrameError(f'expected a "quoted" text in {line!r}')
        return Reply(ident, status, text=text[1:-1])
    if tail.strip(" "):
        raise FrameError(f"unexpected data after {key!r} in {line!r}")
    return Reply(ident, status)


class Decoder(LineDecoder):
    """Balance -> host: ``feed(bytes) -> list[Reply | BadFrame]``."""

    frame_starts = b"STZIE"

    def decode_frame(self, raw: bytes) -> object:
        return decode_reply(raw)


class CommandDecoder(LineDecoder):
    """Host -> balance (simulators): ``feed(bytes) -> list[Command | BadFrame]``."""

    frame_starts = b"STZI@"

    def decode_frame(self, raw: bytes) -> object:
        return decode_command(raw)
