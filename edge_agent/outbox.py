"""The edge agent's durable outbox: SQLite in WAL mode, ``synchronous=FULL``.

Every record a terminal sent is committed here before the terminal gets its ack, and leaves
only when the collector acknowledged the batch that carried it.

* Group commit: :meth:`Outbox.add_many` writes many records in one transaction (one fsync).
* Bounded in bytes (``max_bytes``, counting each record's size plus a fixed row overhead).
  When a group does not fit, status samples (``THINNABLE_KINDS``) are *thinned*: every
  other one in the oldest stretch is deleted, so the series keeps its span at a coarser
  step. Protected kinds are never evicted. When only protected records remain, the records
  that do not fit are refused (not committed, not acked: the terminal keeps them) and the
  ``outbox_full`` alarm is raised until usage drops below 90 %.
* Row ids are ``AUTOINCREMENT`` so they never go back: the uplink reads forward from a
  cursor and an acked batch is the id range ``[lo, hi]``.
* Quarantine: bad input from terminals is kept with the reason, never silently dropped;
  bounded by ``quarantine_max_bytes`` of its own (the oldest rows go first, counted in
  ``quarantine_evicted``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hostlib import sqlite as sqlitedb
from hostlib.sqlite import storable
from wire.envelope import THINNABLE_KINDS

log = logging.getLogger(__name__)

ROW_OVERHEAD = 64
Q_ROW_BYTES = (
    f"length(payload) + length(CAST(detail AS BLOB)) + length(CAST(topic AS BLOB)) + {ROW_OVERHEAD}"
)
"""What one quarantine row counts against ``quarantine_max_bytes`` (SQL)."""
QUARANTINE_KEEP_BYTES = 8192

SCHEMA = (
    sqlitedb.META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    thin INTEGER NOT NULL,
    size INTEGER NOT NULL,
    received REAL NOT NULL,
    rec BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_identity ON outbox(dev, seq);
CREATE INDEX IF NOT EXISTS outbox_thin ON outbox(thin, id) WHERE thin = 1;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_wm (
    dev TEXT PRIMARY KEY,
    wm INTEGER NOT NULL,
    above TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
)

COUNTERS = (
    "received",
    "stored",
    "duplicates",
    "quarantined",
    "evicted",
    "refused",
    "uplinked",
    "acked_records",
    "acked_batches",
    "quarantine_evicted",
)


@dataclass(frozen=True)
class Incoming:
    """A record accepted by intake validation, waiting for its group commit."""

    dev: str
    seq: int
    kind: str
    rec: bytes


@dataclass(frozen=True)
class AddResult:
    stored: list[Incoming]
    duplicates: list[Incoming]
    refused: list[Incoming]
    evicted: int
    watermarks: dict[str, int] = field(default_factory=dict)


MAX_ABOVE = 4096


def advance(wm: int, above: set[int], seqs: list[int]) -> tuple[int, set[int], bool]:
    """Contiguous watermark: every seq <= wm was committed here at some time.

    Returns the new watermark, the committed seqs above it, and whether a hole was given up
    on (more than ``MAX_ABOVE`` seqs waiting behind it: the terminal lost those records or
    sent them elsewhere; the collector's gap report shows them).
    """
    above = above | {s for s in seqs if s > wm}
    gave_up = False
    if len(above) > MAX_ABOVE:
        wm, gave_up = min(above) - 1, True
    while wm + 1 in above:
        wm += 1
        above.discard(wm)
    return wm, above, gave_up


@dataclass(frozen=True)
class Row:
    id: int
    rec: bytes


class Outbox:
    """One SQLite file; one writer connection guarded by a lock (the agent's threads share it)."""

    def __init__(
        self, path: Path | str, max_bytes: int, quarantine_max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.quarantine_max_bytes = quarantine_max_bytes
        self._lock = threading.RLock()
        self.db = sqlitedb.connect(self.path, busy_timeout_ms=10000)
        self.db.executescript(SCHEMA)
        with self.atomic():
            for name in COUNTERS:
                self.db.execute(
                    "INSERT OR IGNORE INTO counters(name, value) VALUES (?, 0)", (name,)
                )
        row = self.db.execute("SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
        self.bytes = int(row[0]) + ROW_OVERHEAD * int(row[1])
        row = self.db.execute(f"SELECT COALESCE(SUM({Q_ROW_BYTES}), 0) FROM quarantine").fetchone()
        self.quarantine_bytes = int(row[0])
        self.alarm = self.get_meta("alarm_outbox_full") == "1"
        self._freed_seen = self.get_meta("freed_outside")
        self._wm: dict[str, tuple[int, set[int]]] = {
            dev: (int(wm), set(json.loads(above)))
            for dev, wm, above in self.db.execute("SELECT dev, wm, above FROM terminal_wm")
        }

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed (and fsynced) on exit, rolled back on error."""
        with self._lock, sqlitedb.write_tx(self.db) as db:
            yield db

    # -- counters and meta -------------------------------------------------------------
    def _bump(self, db: sqlite3.Connection, name: str, n: int) -> None:
        if n:
            db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (n, name))

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self.db.execute("SELECT name, value FROM counters").fetchall())

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            return sqlitedb.get_meta(self.db, name)

    def set_meta(self, values: dict[str, str]) -> None:
        with self.atomic() as db:
            sqlitedb.set_meta(db, values)

    # -- intake ------------------------------------------------------------------------
    def add_many(self, items: list[Incoming], received: int = 0) -> AddResult:
        """Commit a group of records; duplicates of a stored identity are ignored.

        ``received`` counts the messages behind this group (including bad ones) for metrics.
        """
        with self.atomic() as db:
            return self._add_many(db, items, received)

    def add_own(
        self,
        name: str,
        build: Callable[[int], Incoming],
        after: Callable[[sqlite3.Connection, int], None] | None = None,
    ) -> AddResult:
        """Commit one record of the agent's own identity, its sequence (meta ``name``)
        advanced in the same transaction: no sequence is used without its record. ``after``
        (given the connection and the seq) runs in that transaction when the record is
        stored: state the record decides (the dispatch gate's dispatched items) is written
        with it or not at all."""
        with self.atomic() as db:
            seq = int(sqlitedb.get_meta(db, name) or 0) + 1
            res = self._add_many(db, [build(seq)], 1)
            if res.stored:
                sqlitedb.set_meta(db, {name: str(seq)})
                if after is not None:
                    after(db, seq)
            return res

    def _add_many(self, db: sqlite3.Connection, items: list[Incoming], received: int) -> AddResult:
        now = time.time()
        stored: list[Incoming] = []
        dups: list[Incoming] = []
        refused: list[Incoming] = []
        evicted = 0
        need = sum(len(i.rec) + ROW_OVERHEAD for i in items)
        if self.bytes + need > self.max_bytes:
            self._recount_if_freed(db)
        if self.bytes + need > self.max_bytes:
            evicted = self._thin(db, self.bytes + need - self.max_bytes)
        for item in items:
            size = len(item.rec) + ROW_OVERHEAD
            if self.bytes + size > self.max_bytes:
                refused.append(item)
                continue
            cur = db.execute(
                "INSERT OR IGNORE INTO outbox(dev, seq, kind, thin, size, received, rec) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item.dev,
                    item.seq,
                    item.kind,
                    1 if item.kind in THINNABLE_KINDS else 0,
                    len(item.rec),
                    now,
                    item.rec,
                ),
            )
            if cur.rowcount:
                stored.append(item)
                self.bytes += size
            else:
                dups.append(item)
        watermarks = self._advance_watermarks(db, stored + dups)
        self._bump(db, "received", received or len(items))
        self._bump(db, "stored", len(stored))
        self._bump(db, "duplicates", len(dups))
        self._bump(db, "evicted", evicted)
        self._bump(db, "refused", len(refused))
        alarm = bool(refused) or (self.alarm and self.bytes > 0.9 * self.max_bytes)
        if alarm != self.alarm:
            self.alarm = alarm
            sqlitedb.set_meta(db, {"alarm_outbox_full": "1" if alarm else "0"})
        return AddResult(stored, dups, refused, evicted, watermarks)

    def _advance_watermarks(self, db: sqlite3.Connection, items: list[Incoming]) -> dict[str, int]:
        by_dev: dict[str, list[int]] = {}
        for i in items:
            by_dev.setdefault(i.dev, []).append(i.seq)
        out = {}
        for dev, seqs in by_dev.items():
            wm, above = self._wm.get(dev, (0, set()))
            new_wm, new_above, gave_up = advance(wm, above, seqs)
            if gave_up:
                log.warning("outbox: %s: gave up waiting for seqs after %d", dev, wm)
            if (new_wm, new_above) != (wm, above):
                db.execute(
                    "INSERT INTO terminal_wm(dev, wm, above) VALUES (?, ?, ?) "
                    "ON CONFLICT(dev) DO UPDATE SET wm = excluded.wm, above = excluded.above",
                    (dev, new_wm, json.dumps(sorted(new_above))),
                )
                self._wm[dev] = (new_wm, new_above)
            out[dev] = new_wm
        return out

    def watermark(self, dev: str) -> int:
        return self._wm.get(dev, (0, set()))[0]

    def _thin(self, db: sqlite3.Connection, excess: int) -> int:
        """Delete every other status sample, oldest first, until ``excess`` bytes are free."""
        freed = evicted = 0
        while freed < excess:
            rows = db.execute(
                "SELECT id, size FROM outbox WHERE thin = 1 ORDER BY id LIMIT 512"
            ).fetchall()
            if not rows:
                break
            # Keep the oldest of each pair; with a single sample left, it goes too.
            victims = rows[1::2] if len(rows) > 1 else rows
            picked = []
            for rid, size in victims:
                picked.append((rid,))
                freed += size + ROW_OVERHEAD
                if freed >= excess:
                    break
            db.executemany("DELETE FROM outbox WHERE id = ?", picked)
            evicted += len(picked)
        self.bytes -= freed
        return evicted

    def quarantine(self, items: list[tuple[str, str, str, bytes]]) -> None:
        """Keep bad input: ``(topic, reason, detail, payload)``; payload cut to 8 KiB. Past
        ``quarantine_max_bytes`` the oldest rows are evicted (``quarantine_evicted``)."""
        if not items:
            return
        now = time.time()
        rows = [
            (now, storable(t), r, storable(d[:500]), p[:QUARANTINE_KEEP_BYTES])
            for t, r, d, p in items
        ]
        with self.atomic() as db:
            db.executemany(
                "INSERT INTO quarantine(received, topic, reason, detail, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            total = self.quarantine_bytes + sum(
                len(t.encode()) + len(d.encode()) + len(p) + ROW_OVERHEAD for _, t, _, d, p in rows
            )
            evicted = 0
            while total > self.quarantine_max_bytes:
                old = db.execute(
                    f"SELECT id, {Q_ROW_BYTES} FROM quarantine ORDER BY id LIMIT 256"
                ).fetchall()
                if not old:
                    total = 0
                    break
                picked = []
                for rid, size in old:
                    picked.append((rid,))
                    total -= int(size)
                    if total <= self.quarantine_max_bytes:
                        break
                db.executemany("DELETE FROM quarantine WHERE id = ?", picked)
                evicted += len(picked)
            self._bump(db, "quarantined", len(items))
            self._bump(db, "received", len(items))
            self._bump(db, "quarantine_evicted", evicted)
        self.quarantine_bytes = total

    # -- uplink ------------------------------------------------------------------------
    def read_after(self, cursor: int, limit: int, max_bytes: int) -> list[Row]:
        """Records with id > cursor, oldest first, at most ``limit`` and ~``max_bytes``."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, rec FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (cursor, limit)
            ).fetchall()
        out: list[Row] = []
        total = 0
        for rid, rec in rows:
            if out and total + len(rec) > max_bytes:
                break
            out.append(Row(rid, bytes(rec)))
            total += len(rec)
        return out

    def delete_range(self, lo: int, hi: int) -> int:
        """Delete the acked id range; returns how many records left the outbox."""
        with self.atomic() as db:
            row = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE id BETWEEN ? AND ?",
                (lo, hi),
            ).fetchone()
            n, size = int(row[0]), int(row[1])
            db.execute("DELETE FROM outbox WHERE id BETWEEN ? AND ?", (lo, hi))
            self.bytes -= size + n * ROW_OVERHEAD
            self._bump(db, "acked_records", n)
            self._bump(db, "acked_batches", 1)
            if self.alarm and self.bytes <= 0.9 * self.max_bytes:
                self.alarm = False
                db.execute("UPDATE meta SET value = '0' WHERE name = 'alarm_outbox_full'")
        return n

    # -- sneakernet (edge_agent/bundle.py) ---------------------------------------------
    def export_rows(
        self, cursor: int, since: float, limit: int
    ) -> list[tuple[int, str, int, bytes]]:
        """``(id, dev, seq, rec)`` with id > cursor, received at or after ``since``, oldest
        first: a bundle reads the outbox forward in chunks and deletes nothing."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, dev, seq, rec FROM outbox WHERE id > ? AND received >= ? "
                "ORDER BY id LIMIT ?",
                (cursor, since, limit),
            ).fetchall()
        return [(int(i), str(d), int(s), bytes(r)) for i, d, s, r in rows]

    def count_since(self, since: float) -> int:
        with self._lock:
            return int(
                self.db.execute(
                    "SELECT COUNT(*) FROM outbox WHERE received >= ?", (since,)
                ).fetchone()[0]
            )

    def delete_identities(self, confirmed: dict[str, list[tuple[int, int]]]) -> int:
        """Delete, in one transaction, each device's records with seq in its inclusive
        ranges (what a centre's receipt confirmed); returns how many left the outbox. Bumps
        meta ``freed_outside`` so that an agent running on the same outbox recounts its
        bytes."""
        n = size = 0
        with self.atomic() as db:
            for dev, ranges in confirmed.items():
                for lo, hi in ranges:
                    row = db.execute(
                        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox "
                        "WHERE dev = ? AND seq BETWEEN ? AND ?",
                        (dev, lo, hi),
                    ).fetchone()
                    if row[0]:
                        db.execute(
                            "DELETE FROM outbox WHERE dev = ? AND seq BETWEEN ? AND ?",
                            (dev, lo, hi),
                        )
                        n, size = n + int(row[0]), size + int(row[1])
            if n:
                self.bytes -= size + n * ROW_OVERHEAD
                self._bump(db, "acked_records", n)
                freed = int(sqlitedb.get_meta(db, "freed_outside") or 0) + 1
                sqlitedb.set_meta(db, {"freed_outside": str(freed)})
        return n

    def _recount_if_freed(self, db: sqlite3.Connection) -> None:
        """Another process (``agent import-receipt``) freed records: count the bytes again."""
        freed = sqlitedb.get_meta(db, "freed_outside")
        if freed != self._freed_seen:
            self._freed_seen = freed
            row = db.execute("SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox").fetchone()
            self.bytes = int(row[0]) + ROW_OVERHEAD * int(row[1])

    def count_uplinked(self, n: int) -> None:
        with self.atomic() as db:
            self._bump(db, "uplinked", n)

    # -- inspection --------------------------------------------------------------------
    def depth(self) -> tuple[int, int, float | None]:
        """(records, bytes, age in seconds of the oldest record).

        Cheap at any depth (the agent asks every second): the count comes from an index,
        the oldest is the first row (ids grow with arrival), not ``MIN(received)``, which
        reads the whole table (0.3 s of CPU at 1,000,000 records, a month offline)."""
        with self._lock:
            (n,) = self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()
            first = self.db.execute("SELECT received FROM outbox ORDER BY id LIMIT 1").fetchone()
        return int(n), self.bytes, (time.time() - first[0]) if first is not None else None
