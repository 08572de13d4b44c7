"""Helpers for the line-oriented protocols (MT-SICS, scanners)."""

from .errors import CodecError, FrameError
from .stream import StreamDecoder

CR = 0x0D
LF = 0x0A


def ascii_text(raw: bytes, what: str) -> str:
    """Decode printable ASCII (0x20-0x7E) or raise FrameError naming ``what``."""
    for b in raw:
        if b < 0x20 or b > 0x7E:
            raise FrameError(f"{what}: byte 0x{b:02X} is not printable ASCII in {raw!r}")
    return raw.decode("ascii")


def strip_eol(raw: bytes) -> bytes:
    """Remove one trailing CR LF, LF or CR."""
    if raw[-2:] == b"\r\n":
        return raw[:-2]
    if raw[-1:] == b"\n" or raw[-1:] == b"\r":
        return raw[:-1]
    return raw


class LineDecoder(StreamDecoder):
    """Splits on a line terminator; empty lines are skipped, never reported.

    With ``cr_ends_line`` a lone CR ends a line too (barcode scanners send CR or CR LF);
    otherwise only LF does and one CR before it is stripped (MT-SICS sends CR LF).
    """

    lookahead = False
    resync_step = 0
    cr_ends_line = False

    frame_starts = b""
    """Bytes that may begin a frame; a bad line is searched for a decodable suffix
    starting with one of them (``b""``: never salvage)."""

    def _salvage(self, raw: bytes) -> int:
        for i in range(1, len(raw) - 1):
            if raw[i] in self.frame_starts:
                try:
                    self.decode_frame(raw[i:])
                except CodecError:
                    continue
                return i
        return -1

    def _find_start(self, buf: bytes, pos: int) -> int:
        end = len(buf)
        while pos < end and (buf[pos] == LF or buf[pos] == CR):
            pos += 1
        return pos

    def _frame_length(self, buf: bytes, pos: int) -> int:
        i = buf.find(b"\n", pos)
        if self.cr_ends_line:
            j = buf.find(b"\r", pos)
            if j >= 0 and (i < 0 or j < i):
                i = j
        return i + 1 - pos if i >= 0 else 0
