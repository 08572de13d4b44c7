"""Append-only flash log: every record is here before anything sends it.

Layout: segment files ``<root>/<n>.seg`` (``n`` counts up, 8 digits), each a run of
entries::

    A5 | len u16 LE | seq u32 LE | payload (len bytes) | crc32 u32 LE over all before it

An entry is written with one ``write`` and a ``flush`` (littlefs commits on flush), and
the caller uses the record only after ``append`` returns. Seqs grow by one per entry, so
a segment covers one contiguous range ``first..last`` and the index in RAM is a few
integers per segment, however long the network is away.

Recovery (``open``) reads every entry and checks its CRC. A bad or short entry at the end
of a segment is a write torn by a power cut: it is dropped (the caller never
saw it succeed, so its seq is free again) and appends continue in a *new* segment, so no
byte is ever written after garbage. A bad entry anywhere else is corruption: it is
counted and skipped, and reading resynchronises on the next valid entry; nothing before
or after it is lost.

Acks (``ack``) are seq ranges; a segment whose every seq is acknowledged is deleted,
the newest seq ever written first saved in the counters file (see ``Ids``) so it is never
reused. Acks are kept in RAM only: after a reboot the unfreed segments are sent again and
the gateway acknowledges the duplicates.

Capacity: ``max_bytes`` in all; the last ``reserve`` bytes take only protected records,
so status samples never crowd out a fill, a fault or a sale. ``LogFull`` says no.
"""

import struct
from binascii import crc32

from micropython import const

_TYPING = False
if _TYPING:
    from typing import IO, Any, Callable

    from te.fs import FS

MAGIC = const(0xA5)
HEAD = const(7)
OVERHEAD = const(11)
MAX_PAYLOAD = const(8192)


class LogFull(Exception):
    """No room for this record. Retrying helps only after acks free segments."""


class Segment:
    __slots__ = ("no", "first", "last", "count", "size", "sealed")

    def __init__(self, no: int) -> None:
        self.no = no
        self.first = 0
        self.last = 0
        self.count = 0
        self.size = 0
        self.sealed = False


def entry(seq: int, payload: bytes) -> bytes:
    """The bytes of one log entry."""
    head = struct.pack("<BHI", MAGIC, len(payload), seq)
    crc = crc32(payload, crc32(head))
    return head + payload + struct.pack("<I", crc)


def scan(data: bytes, on_entry: "Callable[[int, int, int], None]") -> "tuple[int, int]":
    """Walk the entries in ``data``: ``on_entry(seq, offset, length)`` for each valid one.

    Returns ``(end of the last valid entry, bytes skipped as bad)``; a bad region before a
    later valid entry is skipped, a bad tail is not counted (the caller decides).
    """
    pos = 0
    n = len(data)
    good_end = 0
    skipped = 0
    while pos + OVERHEAD <= n:
        if data[pos] == MAGIC:
            ln, seq = struct.unpack_from("<HI", data, pos + 1)
            end = pos + HEAD + ln
            if end + 4 <= n and struct.unpack_from("<I", data, end)[0] == crc32(
                memoryview(data)[pos:end]
            ):
                if pos > good_end:
                    skipped += pos - good_end
                on_entry(seq, pos, ln)
                pos = end + 4
                good_end = pos
                continue
        pos += 1
    return good_end, skipped


def _name(no: int) -> str:
    return "%08d.seg" % no


class FlashLog:
    def __init__(
        self,
        fs: "FS",
        root: str = "/log",
        seg_bytes: int = 16384,
        max_bytes: int = 262144,
        reserve: int = 32768,
    ) -> None:
        self.fs = fs
        self.root = root
        self.seg_bytes = seg_bytes
        self.max_bytes = max_bytes
        self.reserve = reserve
        self.segs: "list[Segment]" = []
        self.acked: "list[list[int]]" = []  # sorted, merged [lo, hi] ranges
        self.last_seq = 0
        self.bytes = 0
        self.torn = 0
        self.corrupt = 0
        self.freed = 0
        self.on_free: "Callable[[int], None] | None" = None
        self._f: "IO[bytes] | None" = None

    # -- recovery --------------------------------------------------------------------
    def open(self) -> None:
        self.fs.mkdir(self.root)
        names = sorted(n for n in self.fs.listdir(self.root) if n.endswith(".seg"))
        self.segs = []
        self.bytes = 0
        for i, name in enumerate(names):
            seg = Segment(int(name[:-4]))
            with self.fs.open(self.root + "/" + name, "rb") as f:
                data = f.read()

            def add(seq: int, off: int, ln: int, seg: Segment = seg) -> None:
                if seg.count == 0:
                    seg.first = seq
                seg.last = seq
                seg.count += 1

            end, skipped = scan(data, add)
            self.corrupt += skipped
            seg.size = len(data)
            if end < len(data):
                # Garbage up to the end of a file is a write torn by a power cut (nothing
                # is ever appended after garbage): dropped, and the segment is sealed.
                self.torn += 1
                seg.sealed = True
            if i < len(names) - 1:
                seg.sealed = True
            if seg.count:
                self.last_seq = max(self.last_seq, seg.last)
            self.segs.append(seg)
            self.bytes += seg.size
        # Segments without one valid entry hold nothing: drop them (not the newest
        # unsealed one, which is where appends go).
        for seg in [s for s in self.segs if s.count == 0 and s.sealed]:
            self._delete(seg)

    # -- writing ---------------------------------------------------------------------
    def _current(self, need: int) -> Segment:
        seg = self.segs[-1] if self.segs else None
        if seg is None or seg.sealed or (seg.count and seg.size + need > self.seg_bytes):
            if self._f is not None:
                self._f.close()
                self._f = None
            if seg is not None:
                seg.sealed = True
            seg = Segment(self.segs[-1].no + 1 if self.segs else 1)
            self.segs.append(seg)
        if self._f is None:
            self._f = self.fs.open(self.root + "/" + _name(seg.no), "ab")
        return seg

    def append(self, seq: int, payload: bytes, protected: bool = True) -> int:
        """Write one entry durably; returns its size in flash. ``LogFull`` if no room."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError("payload too long")
        need = len(payload) + OVERHEAD
        limit = self.max_bytes if protected else self.max_bytes - self.reserve
        if self.bytes + need > limit:
            raise LogFull("flash log full (%d of %d bytes)" % (self.bytes, self.max_bytes))
        seg = self._current(need)
        data = entry(seq, payload)
        f = self._f
        assert f is not None
        try:
            f.write(data)
            f.flush()
        except OSError:
            # The segment's tail is unknown now: never append after it.
            seg.sealed = True
            try:
                f.close()
            except OSError:
                pass
            self._f = None
            raise
        if seg.count == 0:
            seg.first = seq
        seg.last = seq
        seg.count += 1
        seg.size += need
        self.bytes += need
        self.last_seq = seq
        return need

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    # -- acknowledgements --------------------------------------------------------------
    def is_acked(self, seq: int) -> bool:
        for lo, hi in self.acked:
            if lo <= seq <= hi:
                return True
            if lo > seq:
                return False
        return False

    def _add_range(self, lo: int, hi: int) -> None:
        out: "list[list[int]]" = []
        placed = False
        for r in self.acked:
            if r[1] < lo - 1:
                out.append(r)
            elif r[0] > hi + 1:
                if not placed:
                    out.append([lo, hi])
                    placed = True
                out.append(r)
            else:
                lo = min(lo, r[0])
                hi = max(hi, r[1])
        if not placed:
            out.append([lo, hi])
        self.acked = out

    def ack(self, ranges: "list[Any]", bad: "list[Any]") -> int:
        """Mark seqs acknowledged (committed ranges, quarantined seqs); free segments.

        Returns the number of segments freed. Malformed items are ignored.
        """
        for r in ranges:
            if isinstance(r, list) and len(r) == 2 and isinstance(r[0], int) and isinstance(
                r[1], int
            ) and 0 < r[0] <= r[1]:
                self._add_range(r[0], r[1])
        for s in bad:
            if isinstance(s, int) and s > 0:
                self._add_range(s, s)
        freed = 0
        for seg in list(self.segs):
            if seg.count and self._covered(seg.first, seg.last):
                if not seg.sealed and seg is self.segs[-1]:
                    # The segment being written: seal it so the next append starts anew.
                    self.close()
                    seg.sealed = True
                self._delete(seg)
                freed += 1
        if self.segs:
            live = self.segs[0].first if self.segs[0].count else self.last_seq + 1
            self.acked = [r for r in self.acked if r[1] >= live]
        return freed

    def _covered(self, lo: int, hi: int) -> bool:
        for a, b in self.acked:
            if a <= lo and hi <= b:
                return True
        return False

    def _delete(self, seg: Segment) -> None:
        if seg.count and self.on_free is not None:
            self.on_free(self.last_seq)  # persist the seq floor before losing the entries
        self.fs.remove(self.root + "/" + _name(seg.no))
        self.segs.remove(seg)
        self.bytes -= seg.size
        self.freed += 1

    # -- reading ---------------------------------------------------------------------
    def pending(self) -> int:
        """How many entries wait for an ack."""
        n = 0
        for seg in self.segs:
            if seg.count:
                n += seg.count
                for lo, hi in self.acked:
                    a = max(lo, seg.first)
                    b = min(hi, seg.last)
                    if a <= b:
                        n -= b - a + 1
        return n

    def oldest_unacked(self) -> int:
        """The lowest unacknowledged seq, or 0 when everything is acknowledged."""
        for seg in self.segs:
            if seg.count:
                s = seg.first
                while s <= seg.last:
                    if not self.is_acked(s):
                        return s
                    s += 1
        return 0

    def read(self, from_seq: int, max_n: int) -> "list[tuple[int, bytes]]":
        """Up to ``max_n`` unacknowledged entries with seq >= ``from_seq``, in order.

        Walks entry headers with seeks (no whole-segment buffer); entries whose CRC fails
        are skipped and counted; a broken header falls back to a resynchronising scan.
        """
        out: "list[tuple[int, bytes]]" = []
        for seg in self.segs:
            if not seg.count or seg.last < from_seq:
                continue
            if self._f is not None and seg is self.segs[-1]:
                self._f.flush()
            with self.fs.open(self.root + "/" + _name(seg.no), "rb") as f:
                self._read_seg(f, seg, from_seq, max_n, out)
            if len(out) >= max_n:
                break
        return out

    def _read_seg(
        self, f: "IO[bytes]", seg: Segment, from_seq: int, max_n: int,
        out: "list[tuple[int, bytes]]"
    ) -> None:
        pos = 0
        while len(out) < max_n and pos + OVERHEAD <= seg.size:
            f.seek(pos)
            head = f.read(HEAD)
            if len(head) < HEAD or head[0] != MAGIC:
                break
            ln, seq = struct.unpack_from("<HI", head, 1)
            if seq > seg.last:
                return
            if seq >= from_seq and not self.is_acked(seq):
                rest = f.read(ln + 4)
                if len(rest) == ln + 4 and struct.unpack_from("<I", rest, ln)[0] == crc32(
                    memoryview(rest)[:ln], crc32(head)
                ):
                    out.append((seq, rest[:ln]))
                else:
                    break
            pos += HEAD + ln + 4
        else:
            return
        if len(out) >= max_n:
            return
        # A broken entry: resynchronise over the rest of the segment (rare, corruption).
        f.seek(pos)
        data = f.read()
        have = [s for s, _ in out]

        def take(seq: int, off: int, ln: int) -> None:
            if (len(out) < max_n and seq >= from_seq and seq not in have
                    and not self.is_acked(seq)):
                out.append((seq, data[off + HEAD : off + HEAD + ln]))

        scan(data[1:], lambda s, o, n: take(s, o + 1, n))
