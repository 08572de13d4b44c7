"""A gateway-hosted device's own durable record log: the firmware's flash log, in SQLite.

A source that *makes* records for a device the gateway hosts (a Modbus elevator
controller has no MCU of its own to sign them) keeps them exactly as a terminal keeps its
flash log (``firmware/micropython/README.md``, "Flash log"):

* ``boot`` grows by one, committed, every time the journal is opened.
* A record is signed with the next ``seq`` and inserted in *one* transaction that also
  advances the stored next seq, committed (``synchronous=FULL``) before it is offered to
  the agent. After a ``kill -9`` either both are on disk or neither is, so a seq is never
  used twice and never skipped.
* A record stays until the agent's sealed ack (:func:`wire.auth.open_terminal_ack` under
  the device key) names it in its ranges ``r`` (committed) or ``bad`` (quarantined), and
  only if it was offered by this process (up to :attr:`Journal.high`): a stale or replayed
  ack frees nothing that was not sent. ``wm`` frees nothing (as in the firmware).
* Bounded in bytes: when full, the oldest status samples (``wire.envelope.THINNABLE_KINDS``)
  are dropped first (counted in :attr:`Journal.thinned`); a protected record (a fault) is
  never dropped, even past the bound (counted in :attr:`Journal.over_cap`).

Not thread-safe: one source thread owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hostlib.sqlite import META_SCHEMA, connect, get_meta, set_meta, write_tx
from wire.canonical import canonical
from wire.envelope import THINNABLE_KINDS, make_record

SCHEMA = (
    META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS recs (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    thin INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""
)


class JournalError(Exception):
    """The journal cannot be used: another device's file, or full of protected records."""


class Journal:
    """``path``: the SQLite file; records of ``dev`` signed with ``key`` (a key, or a
    function giving the key of a seq: a device whose key was rotated)."""

    def __init__(
        self, path: Path, dev: str, key: bytes | Callable[[int], bytes], max_bytes: int
    ) -> None:
        self.path = path
        self.dev = dev
        self.key_for: Callable[[int], bytes] = key if callable(key) else (lambda _seq: key)
        self.max_bytes = max_bytes
        self.db = connect(path)
        self.db.executescript(SCHEMA)
        self.thinned = 0
        self.over_cap = 0
        self.high = 0  # the highest seq offered by this process (set by the caller)
        with write_tx(self.db):
            stored = get_meta(self.db, "dev")
            if stored is None or stored == dev:
                self.boot = int(get_meta(self.db, "boot") or 0) + 1
                set_meta(self.db, {"dev": dev, "boot": str(self.boot)})
        if stored is not None and stored != dev:
            self.db.close()
            raise JournalError(f"{path} is the journal of {stored}, not {dev}: move it away")
        self.nbytes = int(
            self.db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM recs").fetchone()[0]
        )
        self.last_seq = self.next_seq - 1  # the newest seq used (0: none yet)

    @property
    def next_seq(self) -> int:
        return int(get_meta(self.db, "next_seq") or 1)

    def add(self, kind: str, body: dict[str, object], ts: int, tq: str) -> tuple[int, bytes]:
        """Sign and store one record; returns ``(seq, payload)`` once it is on disk.
        :class:`JournalError` for a status sample when only protected records are left."""
        with write_tx(self.db):
            seq = self.next_seq
            rec = make_record(self.dev, seq, self.boot, kind, ts, tq, body, self.key_for(seq))
            payload = canonical(rec)
            thin = kind in THINNABLE_KINDS
            self._make_room(len(payload), thin)
            self.db.execute(
                "INSERT INTO recs (seq, kind, thin, payload) VALUES (?, ?, ?, ?)",
                (seq, kind, int(thin), payload),
            )
            set_meta(self.db, {"next_seq": str(seq + 1)})
        self.nbytes += len(payload)
        self.last_seq = seq
        return seq, payload

    def _make_room(self, size: int, thin: bool) -> None:
        while self.nbytes + size > self.max_bytes:
            row = self.db.execute(
                "SELECT seq, LENGTH(payload) FROM recs WHERE thin = 1 ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                if not thin:
                    self.over_cap += 1
                    return  # a fault is never dropped
                raise JournalError(f"journal {self.path} is full of protected records")
            self.db.execute("DELETE FROM recs WHERE seq = ?", (row[0],))
            self.nbytes -= int(row[1])
            self.thinned += 1

    def pending(self, after: int = 0, limit: int = 1000) -> list[tuple[int, bytes]]:
        """Records not yet acknowledged with seq > ``after``, oldest first."""
        return [
            (int(s), bytes(p))
            for s, p in self.db.execute(
                "SELECT seq, payload FROM recs WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]

    def oldest(self) -> int | None:
        """The oldest seq still held (None: empty)."""
        row = self.db.execute("SELECT MIN(seq) FROM recs").fetchone()
        return None if row[0] is None else int(row[0])

    def depth(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM recs").fetchone()[0])

    def free(self, ranges: list[tuple[int, int]], bad: list[int]) -> int:
        """Delete what an ack names, up to :attr:`high`; returns how many were freed."""
        freed = 0
        with write_tx(self.db):
            for lo, hi in [*ranges, *((b, b) for b in bad)]:
                hi = min(hi, self.high)
                if lo > hi:
                    continue
                rows = self.db.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0), COUNT(*) FROM recs "
                    "WHERE seq BETWEEN ? AND ?",
                    (lo, hi),
                ).fetchone()
                self.db.execute("DELETE FROM recs WHERE seq BETWEEN ? AND ?", (lo, hi))
                self.nbytes -= int(rows[0])
                freed += int(rows[1])
        return freed

    def close(self) -> None:
        self.db.close()
