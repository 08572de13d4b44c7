"""The stall terminal's durable log: what the firmware keeps in flash, in one SQLite file.

Tables: ``records`` (every record made and not yet acknowledged by the agent, as the bytes
published), ``receipts`` (every sale's receipt payload, printed or not, kept for reprints),
``meta`` (boot counter, last seq used, the day's sale serial, the stop list, acks, the
live state ``traceedge terminal status`` shows).

Durability (WAL, ``synchronous=FULL``, :func:`hostlib.sqlite.write_tx`):

* The boot counter goes up by one at each start, committed before any record is made.
* A sale is one transaction: the day's serial, the seq (``meta.seq``, never lowered, so a
  seq is never reused even after its record was acknowledged and deleted), the signed
  record and its receipt commit together or not at all: a crash loses the whole sale
  (the operator saw no "settled") or none of it.
* A record leaves ``records`` only when a verified ack names it (:meth:`TerminalLog.ack`).

Bounded in bytes (``max_bytes``, records and receipts together): every record is a sale,
so none is ever dropped to make room; when the records waiting for the agent fill the
log, a new sale is refused with :class:`LogFull` (the operator is told; nothing already
made is lost). Receipts of acknowledged sales older than ``keep_days`` are deleted when a
sale is made (reprints reach that far back); a receipt of a sale still waiting is kept.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostlib.sqlite import META_SCHEMA, connect, get_meta, open_ro, set_meta, write_tx
from wire.canonical import canonical

SCHEMA = (
    META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, made REAL NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, made REAL NOT NULL,
    receipt TEXT NOT NULL, printed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS receipts_made ON receipts (made);
"""
)

# A record: (dev, seq, boot, kind, ts, body) -> its canonical bytes; signs with the seq's key.
MakeRecord = Callable[[int, int], dict[str, Any]]


class LogFull(Exception):
    """The log holds ``max_bytes`` of records the agent has not acknowledged yet."""


class TerminalLog:
    def __init__(self, path: Path, max_bytes: int = 256 * 1024**2, keep_days: int = 90) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep_s = keep_days * 86400.0
        self.db = connect(path)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()
        with write_tx(self.db):
            self.boot = int(get_meta(self.db, "boot") or 0) + 1
            set_meta(self.db, {"boot": str(self.boot)})
        self.nbytes = self._bytes()

    def _bytes(self) -> int:
        """Bytes the records and receipts hold (their payloads)."""
        row = self.db.execute(
            "SELECT (SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM records)"
            " + (SELECT COALESCE(SUM(LENGTH(CAST(receipt AS BLOB))), 0) FROM receipts)"
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.db.close()

    # -- making ------------------------------------------------------------------------
    @property
    def last_seq(self) -> int:
        with self.lock:
            return int(get_meta(self.db, "seq") or 0)

    def serial_state(self) -> dict[str, Any] | None:
        with self.lock:
            v = get_meta(self.db, "serial")
        return None if v is None else dict(json.loads(v))

    def append(
        self,
        make: MakeRecord,
        serial: dict[str, Any] | None = None,
        receipt: tuple[str, dict[str, Any]] | None = None,
    ) -> tuple[int, bytes]:
        """Make record ``seq`` (``make(seq, boot)``), store it with the sale's ``serial``
        state and ``receipt`` ``(trace_id, payload)`` in one transaction."""
        try:
            return self._append(make, serial, receipt)
        except BaseException:  # rolled back: what the rollback restored counts again
            with self.lock:
                self.nbytes = self._bytes()
            raise

    def _append(
        self,
        make: MakeRecord,
        serial: dict[str, Any] | None,
        receipt: tuple[str, dict[str, Any]] | None,
    ) -> tuple[int, bytes]:
        with self.lock, write_tx(self.db):
            seq = int(get_meta(self.db, "seq") or 0) + 1
            rec = make(seq, self.boot)
            payload = canonical(rec)
            now = time.time()
            text = json.dumps(receipt[1], ensure_ascii=False) if receipt is not None else ""
            size = len(payload) + len(text.encode())
            self._make_room(now, size)
            self.db.execute(
                "INSERT INTO records(seq, kind, made, payload) VALUES (?, ?, ?, ?)",
                (seq, rec["kind"], now, payload),
            )
            meta = {"seq": str(seq)}
            if serial is not None:
                meta["serial"] = json.dumps(serial)
            set_meta(self.db, meta)
            if receipt is not None:
                self.db.execute(
                    "INSERT INTO receipts(seq, trace_id, made, receipt) VALUES (?, ?, ?, ?)",
                    (seq, receipt[0], now, text),
                )
        self.nbytes += size
        return seq, payload

    def _make_room(self, now: float, size: int) -> None:
        """Old receipts of acknowledged sales go; a sale that still does not fit is refused."""
        old = "made < ? AND seq NOT IN (SELECT seq FROM records)"
        cut = (now - self.keep_s,)
        gone = self.db.execute(
            f"SELECT COALESCE(SUM(LENGTH(CAST(receipt AS BLOB))), 0) FROM receipts WHERE {old}", cut
        ).fetchone()[0]
        if gone:
            self.db.execute(f"DELETE FROM receipts WHERE {old}", cut)
            self.nbytes -= int(gone)
        used = self.nbytes
        if used + size > self.max_bytes:
            waiting = int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])
            raise LogFull(
                f"the terminal's log is full ({used} of {self.max_bytes} bytes, {waiting} "
                "records waiting for the gateway): check the link to the gateway"
            )

    # -- sending -----------------------------------------------------------------------
    def read(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT seq, payload FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(int(s), bytes(p)) for s, p in rows]

    def pending(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def has(self, seq: int) -> bool:
        with self.lock:
            row = self.db.execute("SELECT 1 FROM records WHERE seq = ?", (seq,)).fetchone()
        return row is not None

    def ack(self, ranges: list[tuple[int, int]], bad: list[int]) -> int:
        """Delete the records in ``ranges`` (committed) and ``bad`` (quarantined by the
        agent); returns how many left the log."""
        try:
            return self._ack(ranges, bad)
        except BaseException:
            with self.lock:
                self.nbytes = self._bytes()
            raise

    def _ack(self, ranges: list[tuple[int, int]], bad: list[int]) -> int:
        with self.lock, write_tx(self.db):
            n = 0
            for lo, hi in [*ranges, *((b, b) for b in bad)]:
                size, count = self.db.execute(
                    "SELECT COALESCE(SUM(LENGTH(payload)), 0), COUNT(*) FROM records "
                    "WHERE seq BETWEEN ? AND ?",
                    (lo, hi),
                ).fetchone()
                if count:
                    self.db.execute("DELETE FROM records WHERE seq BETWEEN ? AND ?", (lo, hi))
                    self.nbytes -= int(size)
                    n += int(count)
            set_meta(self.db, {"last_ack_at": str(time.time())})
            if bad:
                old = int(get_meta(self.db, "rejected") or 0)
                set_meta(self.db, {"rejected": str(old + len(bad))})
        return n

    # -- stop list, receipts, state ----------------------------------------------------
    def stop_list(self) -> tuple[int, list[str]]:
        with self.lock:
            v = get_meta(self.db, "stop_list")
        if v is None:
            return 0, []
        d = json.loads(v)
        return int(d["version"]), [str(b) for b in d["batches"]]

    def save_stop_list(self, version: int, batches: list[str]) -> None:
        with self.lock, write_tx(self.db):
            set_meta(self.db, {"stop_list": json.dumps({"version": version, "batches": batches})})

    def receipt(self, trace_id: str | None = None) -> tuple[int, dict[str, Any]] | None:
        """The receipt of ``trace_id`` (None: the newest): ``(seq, payload)``."""
        with self.lock:
            if trace_id is None:
                row = self.db.execute(
                    "SELECT seq, receipt FROM receipts ORDER BY seq DESC LIMIT 1"
                ).fetchone()
            else:
                row = self.db.execute(
                    "SELECT seq, receipt FROM receipts WHERE trace_id = ?", (trace_id,)
                ).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def mark_printed(self, seq: int) -> None:
        with self.lock, write_tx(self.db):
            self.db.execute("UPDATE receipts SET printed = printed + 1 WHERE seq = ?", (seq,))

    def save_state(self, state: dict[str, Any]) -> None:
        with self.lock, write_tx(self.db):
            set_meta(self.db, {"state": json.dumps(state, ensure_ascii=False)})


def read_status(path: Path) -> dict[str, Any]:
    """What ``traceedge terminal status`` shows, read-only (works while the terminal runs)."""
    with open_ro(path) as db:
        try:
            n, oldest = db.execute("SELECT COUNT(*), MIN(made) FROM records").fetchone()
            meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
            unprinted = db.execute("SELECT COUNT(*) FROM receipts WHERE printed = 0").fetchone()
        except sqlite3.Error as exc:
            return {"error": f"cannot read {path}: {exc}"}
    state = json.loads(meta.get("state", "{}"))
    now = time.time()
    last_ack = float(meta["last_ack_at"]) if "last_ack_at" in meta else None
    stop = json.loads(meta["stop_list"]) if "stop_list" in meta else {"version": 0, "batches": []}
    updated = state.get("updated_at")
    return {
        "running": updated is not None and now - float(updated) < 5.0,
        "boot": int(meta.get("boot", 0)),
        "last_seq": int(meta.get("seq", 0)),
        "waiting": int(n),
        "oldest_waiting_s": None if oldest is None else round(now - oldest, 1),
        "last_ack_age_s": None if last_ack is None else round(now - last_ack, 1),
        "rejected_by_agent": int(meta.get("rejected", 0)),
        "unprinted_receipts": int(unprinted[0]),
        "stop_list": stop,
        "app": state.get("app", "settlement"),
        "desk": state.get("desk", ""),
        "devices": state.get("devices", {}),
        "counters": state.get("counters", {}),
    }
