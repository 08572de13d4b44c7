"""The streaming half shared by every codec: buffering, resynchronisation, bad frames.

A protocol's ``Decoder`` subclasses :class:`StreamDecoder` and supplies three small
methods over the buffered bytes; the loop in :meth:`StreamDecoder.feed` does the rest:

``_find_start(buf, pos) -> int``
    index of the next possible frame start at or after ``pos`` (e.g. the next STX),
    or -1 when there is none; the bytes skipped are counted in ``discarded``.
``_frame_length(buf, pos) -> int``
    for a candidate starting at ``pos``: its length when complete, 0 when more bytes
    are needed, -1 when ``pos`` cannot start a frame after all (skip one byte).
``decode_frame(raw) -> object``
    the protocol's pure decoder for one complete candidate; raises ``CodecError``.

Rules (the same for every protocol):

* ``feed(data)`` returns the items completed by ``data`` in stream order: decoded frame
  objects and :class:`BadFrame` entries. It never raises for any input bytes. An empty
  list means "need more".
* A candidate that fails to decode becomes one ``BadFrame(error, raw)``; decoding resumes
  one byte after its start (``resync_step = 1``) or after it (line protocols), and further
  failures inside the bytes of a reported bad frame are not reported again. So one bad
  byte costs exactly the frame it hit, never the following good one. Line protocols
  (no start byte) also look inside a bad line for a decodable frame start
  (``_salvage``): garbage glued before a good line costs the garbage only.
* When an incomplete candidate (typically garbage that looks like a length prefix) hides
  a complete, valid frame later in the buffer, the decoder skips to that frame
  (``lookahead``), so a stalled garbage prefix never holds a good frame back.
* The buffer is bounded: more than ``max_buffer`` bytes without a complete frame are
  dropped and reported as one ``BadFrame`` carrying a ``BufferOverflow``.
* The loop always advances, so ``feed`` terminates in time linear in the buffered bytes
  (times the lookahead window for length-prefixed protocols).
"""

from .errors import BufferOverflow, CodecError, FrameError

MAX_BUFFER = 4096
"""Default bound on bytes buffered without a complete frame."""

RAW_KEEP = 64
"""How many dropped bytes a buffer-overflow ``BadFrame`` keeps for diagnosis."""


class BadFrame:
    """A corrupt frame found in the stream: the error and the bytes it was found in."""

    __slots__ = ("error", "raw")

    def __init__(self, error: CodecError, raw: bytes) -> None:
        self.error = error
        self.raw = raw

    @property
    def reason(self) -> str:
        return self.error.message

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, BadFrame)
            and type(other.error) is type(self.error)
            and other.error.message == self.error.message
            and other.raw == self.raw
        )

    def __repr__(self) -> str:
        return f"BadFrame({type(self.error).__name__}({self.error.message!r}), {self.raw!r})"


class StreamDecoder:
    """Base of every protocol ``Decoder``; see the module docstring for the contract."""

    lookahead = True
    """Search past an incomplete candidate for a complete valid frame (length prefixes)."""

    resync_step = 1
    """After a bad frame, resume this many bytes after its start; 0 means after it."""

    def __init__(self, max_buffer: int = MAX_BUFFER) -> None:
        self.max_buffer = max_buffer
        self.discarded = 0
        """Bytes skipped while hunting for a frame start (not part of any item)."""
        self._buf = b""
        self._quiet = 0

    @property
    def buffered(self) -> int:
        """Bytes held back as the start of a frame not yet complete."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget any partial frame (after a reconnect, for instance)."""
        self._buf = b""
        self._quiet = 0

    # -- to be supplied by each protocol ------------------------------------------------

    def _find_start(self, buf: bytes, pos: int) -> int:
        return pos

    def _frame_length(self, buf: bytes, pos: int) -> int:
        raise NotImplementedError

    def decode_frame(self, raw: bytes) -> object:
        raise NotImplementedError

    def _salvage(self, raw: bytes) -> int:
        """Line protocols: offset of a decodable frame inside a bad line, or -1."""
        return -1

    # -- the shared loop -----------------------------------------------------------------

    def feed(self, data: bytes) -> list[object]:
        """Add received bytes; return the frames (and ``BadFrame`` entries) they complete."""
        known = len(self._buf)
        buf = self._buf + bytes(data) if known else bytes(data)
        out: list[object] = []
        end = len(buf)
        pos = 0
        quiet = self._quiet
        while pos < end:
            start = self._find_start(buf, pos)
            if start < 0:
                self.discarded += end - pos
                pos = end
                break
            if start > pos:
                self.discarded += start - pos
                pos = start
                if pos >= end:
                    break
            n = self._frame_length(buf, pos)
            if n < 0:
                self.discarded += 1
                pos += 1
                continue
            if n == 0:
                later = self._look_ahead(buf, pos + 1, known) if self.lookahead else -1
                if later < 0:
                    break
                self.discarded += later - pos
                pos = later
                continue
            raw = buf[pos : pos + n]
            try:
                item = self.decode_frame(raw)
            except CodecError as exc:
                skip = -1 if self.resync_step else self._salvage(raw)
                if skip > 0:
                    if pos >= quiet:
                        error = FrameError(f"{skip} bytes of garbage before a frame")
                        out.append(BadFrame(error, raw[:skip]))
                    pos += skip
                    continue
                if pos >= quiet:
                    out.append(BadFrame(exc, raw))
                if pos + n > quiet:
                    quiet = pos + n
                pos += self.resync_step or n
                continue
            out.append(item)
            pos += n
        rest = buf[pos:]
        quiet = quiet - pos if quiet > pos else 0
        if len(rest) > self.max_buffer:
            error = BufferOverflow(
                f"{len(rest)} bytes without a complete frame (bound {self.max_buffer}); dropped"
            )
            out.append(BadFrame(error, rest[:RAW_KEEP]))
            rest = b""
            quiet = 0
        self._buf = rest
        self._quiet = quiet
        return out

    def _look_ahead(self, buf: bytes, pos: int, known: int) -> int:
        """Index of the first complete, valid frame at or after ``pos``, or -1.

        Candidates lying wholly within the first ``known`` bytes were already tried by
        the previous ``feed`` (which stalled at the same position), so they are skipped:
        each candidate is decoded at most once however the stream is chunked.
        """
        end = len(buf)
        while pos < end:
            start = self._find_start(buf, pos)
            if start < 0 or start >= end:
                return -1
            n = self._frame_length(buf, start)
            if n > 0 and start + n > known:
                try:
                    self.decode_frame(buf[start : start + n])
                except CodecError:
                    pass
                else:
                    return start
            pos = start + 1
        return -1
