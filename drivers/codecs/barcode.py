"""Barcode scanners: one scan per line (CR or CR LF), optional AIM symbology prefix.

A scan line is ``[AIM identifier] data`` where the AIM identifier is ``]`` + symbology
character + modifier (:data:`SYMBOLOGIES`). What the data means follows from it:

=======================  ====================================================================
identifier               data
=======================  ====================================================================
``]C1 ]e0 ]d2 ]Q3``      GS1 element string, FNC1 sent as GS (0x1D) -> ``ais``
``]E0`` / ``]E4``        EAN-13 (UPC-A with a leading 0) / EAN-8, check digit verified;
                         ``ais = {"01": GTIN-14}``
any (or none)            an ``http(s)://`` GS1 Digital Link URI -> ``ais``
none, leading GS         GS1 element string (scanners that send FNC1 but no AIM prefix)
other                    opaque text, ``ais`` is None
=======================  ====================================================================

Scans are UTF-8 (QR codes carry any text); control characters other than GS, RS, EOT
and TAB make a line invalid. GS1 parsing is in :mod:`drivers.codecs.gs1`.
"""

from wire.checkdigit import verify_check_digit

from .errors import CodecError, EncodeError, FrameError
from .gs1 import encode_element_string, find_digital_link, net_weight, parse_element_string, utf8
from .lines import LineDecoder, strip_eol
from .quantities import Weight

# identifier -> (name, content): "gs1" element string, "ean" GTIN digits, "" other
SYMBOLOGIES = {
    "]A0": ("Code 39", ""),
    "]C0": ("Code 128", ""),
    "]C1": ("GS1-128", "gs1"),
    "]E0": ("EAN-13", "ean"),
    "]E4": ("EAN-8", "ean"),
    "]I0": ("ITF", ""),
    "]I1": ("ITF with check digit", ""),
    "]Q0": ("QR Code model 1", ""),
    "]Q1": ("QR Code", ""),
    "]Q3": ("GS1 QR Code", "gs1"),
    "]d1": ("Data Matrix", ""),
    "]d2": ("GS1 DataMatrix", "gs1"),
    "]e0": ("GS1 DataBar", "gs1"),
}
EAN_LENGTHS = {"]E0": 13, "]E4": 8}
ALLOWED_CONTROLS = "\x1d\x1e\x04\t"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM = _LETTERS + "0123456789"
_IDENTIFIERS = [key.encode() for key in SYMBOLOGIES]


class Scan:
    """One scan: AIM ``symbology`` ("" when absent), ``data`` after it, GS1 ``ais``."""

    __slots__ = ("ais", "data", "symbology")

    def __init__(self, symbology: str, data: str, ais: dict[str, str] | None = None) -> None:
        self.symbology = symbology
        self.data = data
        self.ais = ais

    @property
    def name(self) -> str:
        entry = SYMBOLOGIES.get(self.symbology)
        if entry is not None:
            return entry[0]
        return "unknown " + self.symbology if self.symbology else "no identifier"

    def ai(self, key: str) -> str | None:
        return self.ais.get(key) if self.ais else None

    @property
    def gtin(self) -> str | None:
        return self.ai("01")

    @property
    def net_weight(self) -> Weight | None:
        """AI 310n as ``Weight(value, n, "kg")``, e.g. 3103 000195 -> 195 g."""
        return net_weight(self.ais) if self.ais else None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Scan)
            and other.symbology == self.symbology
            and other.data == self.data
            and other.ais == self.ais
        )

    def __repr__(self) -> str:
        return f"Scan({self.symbology!r}, {self.data!r}, {self.ais!r})"


def gs1_scan(ais: dict[str, str], symbology: str = "]C1") -> Scan:
    """A GS1 scan of ``ais`` (for simulators): element string behind a GS1 identifier."""
    if SYMBOLOGIES.get(symbology, ("", ""))[1] != "gs1":
        raise EncodeError(f"{symbology!r} is not a GS1 symbology identifier")
    return Scan(symbology, encode_element_string(ais), dict(ais))


def encode_scan(scan: Scan) -> bytes:
    """The line a scanner sends: identifier, data, CR LF."""
    if aim_identifier(scan.symbology) != scan.symbology or (
        not scan.symbology and aim_identifier(scan.data)
    ):
        raise EncodeError(f"bad AIM identifier {scan.symbology!r} for data {scan.data[:3]!r}")
    for ch in scan.data:
        if ch in "\r\n" or (ch < " " and ch not in ALLOWED_CONTROLS):
            raise EncodeError(f"control character {ch!r} cannot be sent in a scan")
    return (scan.symbology + scan.data).encode() + b"\r\n"


def aim_identifier(text: str) -> str:
    """The AIM identifier at the start of ``text``: ``]``, a letter, a letter or digit."""
    if len(text) >= 3 and text[0] == "]" and text[1] in _LETTERS and text[2] in _ALNUM:
        return text[:3]
    return ""


def decode_scan(raw: bytes) -> Scan:
    """Parse one scan line (terminator optional); FrameError when it cannot be trusted."""
    text = utf8(strip_eol(raw))
    if text is None:
        raise FrameError(f"scan is not UTF-8: {raw!r}")
    for ch in text:
        if ch < " " and ch not in ALLOWED_CONTROLS:
            raise FrameError(f"control character {ch!r} in scan {raw!r}")
    if not text:
        raise FrameError("empty scan")
    symbology = aim_identifier(text)
    data = text[len(symbology) :]
    content = SYMBOLOGIES.get(symbology, ("", ""))[1]
    ais: dict[str, str] | None = None
    if content == "gs1":
        ais = parse_element_string(data)
    elif content == "ean":
        if len(data) != EAN_LENGTHS[symbology] or not verify_check_digit(data):
            raise FrameError(f"bad {SYMBOLOGIES[symbology][0]} {data!r} (length or check digit)")
        ais = {"01": "0" * (14 - len(data)) + data}
    elif data.startswith("https://") or data.startswith("http://"):
        ais = find_digital_link(data)
    elif not symbology and data[:1] == "\x1d":
        ais = parse_element_string(data)
    return Scan(symbology, data, ais)


class Decoder(LineDecoder):
    """Scanner -> host: ``feed(bytes) -> list[Scan | BadFrame]``; CR, LF or CR LF end a scan."""

    cr_ends_line = True

    def _salvage(self, raw: bytes) -> int:
        # only at a known AIM identifier: a suffix of opaque text is not a scan
        i = raw.find(b"]", 1)
        while i > 0:
            if raw[i : i + 3] in _IDENTIFIERS:
                try:
                    decode_scan(raw[i:])
                except CodecError:
                    pass
                else:
                    return i
            i = raw.find(b"]", i + 1)
        return -1

    def decode_frame(self, raw: bytes) -> object:
        return decode_scan(raw)


class ScanJoiner:
    """The lines of one multi-line scan back into one :class:`Scan`.

    A scanner ends every line of a QR code's text with CR (a seed label QR has four), so
    :class:`Decoder` hands the lines of one scan out as separate scans. They come as one
    burst of bytes; two scans a person makes are a pause apart. So a line continues the
    scan before it when the line has no AIM identifier of its own (only a scan's first line
    carries one) and the line was not preceded by ``gap_ms`` without a byte; the lines are
    joined with LF. Call :meth:`heard` whenever bytes arrive (before feeding them to the
    decoder) so that a line's own transmission time does not count as a pause; a caller that
    sees only whole lines may skip it, the gap then runs from one line's end to the next's.
    A scan is handed out once ``gap_ms`` passes in silence (:meth:`due`, :meth:`heard`), or
    at once when the next scan begins (:meth:`feed`). A burst longer than ``max_lines``
    lines or ``max_chars`` characters is handed out as it stands (``cut`` counts them): the
    item parser then refuses it with its reason. ``gap_ms`` 0 joins nothing.
    ``clock.diff(a, b)`` is ``a - b`` in milliseconds (the board's ``ticks_diff``).
    """

    def __init__(
        self, clock: object, gap_ms: int = 150, max_lines: int = 8, max_chars: int = 2048
    ) -> None:
        self.clock = clock
        self.gap_ms = gap_ms
        self.max_lines = max_lines
        self.max_chars = max_chars
        self.lines: list[Scan] = []
        self.chars = 0
        self.last = 0  # ticks of the last byte or line of the pending scan
        self.joined = 0  # scans made of more than one line
        self.cut = 0  # bursts handed out at max_lines / max_chars

    def _take(self) -> list[Scan]:
        lines = self.lines
        if not lines:
            return []
        self.lines = []
        self.chars = 0
        if len(lines) == 1:
            return [lines[0]]
        self.joined += 1
        return [Scan(lines[0].symbology, "\n".join([s.data for s in lines]))]

    def _quiet(self, now: int) -> bool:
        return self.clock.diff(now, self.last) > self.gap_ms  # type: ignore[attr-defined,no-any-return]

    def feed(self, scan: Scan, now: int) -> list[Scan]:
        """Take one decoded line; return the scans it completes (usually none)."""
        if self.gap_ms <= 0:
            return [scan]
        out: list[Scan] = []
        if self.lines and (scan.symbology or self._quiet(now)):
            out = self._take()
        self.lines.append(scan)
        self.chars += len(scan.data)
        self.last = now
        if len(self.lines) >= self.max_lines or self.chars >= self.max_chars:
            self.cut += 1
            out += self._take()
        return out

    def heard(self, now: int) -> list[Scan]:
        """Bytes arrived: the pending scan if they came after a pause, and the clock reset."""
        out = self.due(now)
        self.last = now
        return out

    def due(self, now: int) -> list[Scan]:
        """The scan whose last byte came more than ``gap_ms`` ago, if any."""
        if self.lines and self._quiet(now):
            return self._take()
        return []

    def pending(self) -> bool:
        """True while a scan may still grow."""
        return bool(self.lines)
