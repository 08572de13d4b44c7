"""The collector's store: each record once, keyed by ``(dev, seq)``.

:class:`Store` is the interface; :class:`SqliteStore` the embedded default (a PostgreSQL
store implements the same methods). One call to :meth:`Store.commit` is one transaction:
records inserted once (``ON CONFLICT DO NOTHING``), a copy with the same identity but
different content quarantined as a ``conflict`` with an alarm, bad records quarantined,
per-device counters updated, and the new records queued for the city platform, all
committed together. The batch is acknowledged only after this returns.

Forwarding reads the store forward by row id. A forward batch is claimed with a lease; the
document sent for it carries an idempotency key naming exactly its records
(:meth:`ForwardBatch.delivery_key`), so a crash between the platform's reply and our
bookkeeping resends the same records under the same key. A record is counted forwarded only
when a document carrying it was accepted. One the forwarder cannot send (the EPCIS mapper
refuses it) is *held* in ``forward_held`` with the reason and an alarm, and sent on its own
when a retry is asked for (:meth:`SqliteStore.retry_held`). A held record whose batch is still
pending is left out of that batch and is not retried until the batch is settled, so no
record is ever in two deliveries at once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from collector import (
    alarms,
    audit,
    cylinders,
    elevators,
    fleet,
    licence_sales,
    licence_use,
    licences,
    markets,
    sites,
    tokens,
    whviews,
)
from collector.archive import keys as archive_keys
from collector.verify import Bad, Good
from hostlib import sqlite as sqlitedb
from hostlib.db import POSTGRES, Db, dialect
from hostlib.errors import StoreError
from hostlib.registry import Device
from hostlib.sqlite import open_ro, storable

SCHEMA = (
    sqlitedb.META_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts INTEGER NOT NULL,
    site TEXT NOT NULL,
    mac TEXT NOT NULL,
    received REAL NOT NULL,
    rec TEXT NOT NULL,
    UNIQUE (dev, seq)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received REAL NOT NULL,
    site TEXT,
    batch TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    dev TEXT,
    seq INTEGER,
    payload BLOB NOT NULL,
    counts TEXT
);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    raised REAL NOT NULL,
    kind TEXT NOT NULL,
    dev TEXT,
    seq INTEGER,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS device_state (
    dev TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    count INTEGER NOT NULL,
    max_seq INTEGER NOT NULL,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS forward_batches (
    key TEXT PRIMARY KEY,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    n INTEGER NOT NULL,
    created REAL NOT NULL,
    claimed_until REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS forward_held (
    record_id INTEGER PRIMARY KEY,
    dev TEXT NOT NULL,
    seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_tried REAL NOT NULL,
    attempts INTEGER NOT NULL,
    due INTEGER NOT NULL DEFAULT 0,
    claimed_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS site_status (
    site TEXT PRIMARY KEY,
    received REAL NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
)

QUARANTINE_REASONS = """
CREATE TABLE IF NOT EXISTS quarantine_reasons (reason TEXT PRIMARY KEY, records INTEGER NOT NULL);
"""
"""Records ever quarantined, by reason (the ``quarantined`` counter split up; rows evicted
from ``quarantine`` stay counted here). Kept for ``/metrics``: reading it is one small table,
where counting ``quarantine`` by reason would read every payload kept."""

COUNTERS = (
    "batches",
    "stored",
    "duplicates",
    "quarantined",
    "conflicts",
    "forwarded",
    "forward_batches",
    "forward_failures",
    "forward_holds",
    "quarantine_evicted",
)

DEFAULT_MAX_QUARANTINE_BYTES = 64 * 1024 * 1024
QUARANTINE_SAMPLE = 8
"""Bad records of one batch kept whole in its single quarantine row (the rest are counted)."""
QUARANTINE_KEEP_BYTES = 65536


@dataclass(frozen=True)
class CommitResult:
    """``conflicted``: the identities of ``good`` records quarantined as conflicts (a
    bundle's receipt confirms every other good record)."""

    stored: int
    duplicates: int
    bad: int
    conflicted: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ForwardBatch:
    """Records claimed for one delivery: ``ids`` (row ids) parallel to ``records``. ``lease``
    is the ``forward_batches`` key of a batch read forward from the cursor, empty for a
    retry of held records."""

    store_id: str
    lease: str
    ids: list[int]
    records: list[dict[str, Any]]

    def delivery_key(self, ids: Collection[int]) -> str:
        """The ``Idempotency-Key`` of a document carrying exactly the records ``ids`` of this
        batch: ``<store id>-<first id>-<last id>-<digest of their ids and MACs>``.

        The same records sent again (after a crash, a lost reply) give the same key; any
        other set (a batch without its held records, a held record retried alone, row ids
        reused by a store restored from a backup) gives another, so the platform never
        answers "duplicate" for records it has not got.
        """
        macs = dict(zip(self.ids, (str(r.get("mac")) for r in self.records), strict=True))
        chosen = sorted(ids)
        if not chosen:
            raise ValueError("a delivery carries at least one record")
        text = "".join(f"{i}:{macs[i]}\n" for i in chosen)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"{self.store_id}-{chosen[0]}-{chosen[-1]}-{digest}"


class Store(Protocol):
    def commit(
        self, site: str, batch_id: str, good: list[Good], bad: list[Bad]
    ) -> CommitResult: ...

    def quarantine_payload(
        self, site: str | None, reason: str, detail: str, payload: bytes, alarm: bool = False
    ) -> None: ...

    def claim_forward(self, limit: int, lease_s: float) -> ForwardBatch | None: ...

    def claim_held(self, limit: int, lease_s: float) -> ForwardBatch | None: ...

    def hold(self, batch: ForwardBatch, reasons: Mapping[int, str]) -> None: ...

    def forwarded(self, batch: ForwardBatch, delivered: Collection[int]) -> None: ...

    def forward_failed(self, batch: ForwardBatch) -> None: ...

    def retry_held(self) -> int: ...

    def heartbeat(self, name: str, status: dict[str, Any]) -> None: ...

    def project(self, limit: int = 2000) -> int: ...

    def site_status(self, site: str, status: dict[str, Any]) -> None: ...

    def summary(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class _AlreadyStored(Exception):
    """A batch inserted at once held a record stored before: undo, go record by record."""


class SqliteStore:
    """WAL, ``synchronous=FULL``; several collector processes may share the file."""

    def __init__(
        self,
        path: Path | str,
        project_inline: bool = True,
        max_quarantine_bytes: int = DEFAULT_MAX_QUARANTINE_BYTES,
    ) -> None:
        """``project_inline``: apply market records (stock, flags) in each commit's own
        transaction; the collector service turns it off and runs :meth:`project` in a
        thread of its own, which keeps that work off the ingest path.
        ``max_quarantine_bytes``: the quarantine's bound (payload and detail bytes); past
        it the oldest rows are evicted and counted in ``quarantine_evicted``."""
        self.project_inline = project_inline
        self.max_quarantine_bytes = max_quarantine_bytes
        self.path = Path(path)
        self._lock = threading.RLock()
        self._horizon: dict[str, int] = {}  # archive horizons as of meta archive_version
        self._horizon_version: str | None = None
        self.db = sqlitedb.connect(self.path, busy_timeout_ms=30000)
        self.db.executescript(SCHEMA)
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(quarantine)")}
        if "counts" not in cols:  # a store made before quarantine rows counted records
            self.db.execute("ALTER TABLE quarantine ADD COLUMN counts TEXT")
        self._ensure_quarantine_reasons()
        cylinders.ensure_schema(self.db)
        licences.ensure_schema(self.db)
        whviews.ensure_schema(self.db)
        licence_use.ensure_schema(self.db)
        licence_sales.ensure_schema(self.db)
        markets.ensure_schema(self.db)  # triggers keep stock and flags in each commit
        elevators.ensure_schema(self.db)
        audit.ensure_schema(self.db)
        tokens.ensure_schema(self.db)
        sites.ensure_schema(self.db)
        alarms.ensure_schema(self.db)  # acks and the list indexes
        archive_keys.ensure_schema(self.db)
        with self.atomic() as db:
            for name in COUNTERS:
                db.execute("INSERT OR IGNORE INTO counters(name, value) VALUES (?, 0)", (name,))
            db.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('store_id', ?)",
                (uuid.uuid4().hex[:12],),
            )
            db.execute("INSERT OR IGNORE INTO meta(name, value) VALUES ('forward_cursor', '0')")
            # records the forwarder has moved past its cursor, so that the backlog is a
            # subtraction, not a count of every record after the cursor (a million after an
            # outage of the platform); a store made before it counts them once, here
            db.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('forward_claimed', "
                "(SELECT COUNT(*) FROM records WHERE id <= "
                "(SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'forward_cursor')))"
            )
            db.execute(
                "INSERT OR IGNORE INTO meta(name, value) VALUES ('quarantine_bytes', "
                f"(SELECT COALESCE(SUM({ROW_BYTES}), 0) FROM quarantine))"
            )
            self.store_id = db.execute("SELECT value FROM meta WHERE name = 'store_id'").fetchone()[
                0
            ]

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _ensure_quarantine_reasons(self) -> None:
        """Create ``quarantine_reasons``; a store made before it starts from the rows its
        quarantine still keeps (evicted ones were never split by reason)."""
        with self.atomic() as db:
            if db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'quarantine_reasons'"
            ).fetchone():
                return
            db.execute(QUARANTINE_REASONS)
            db.execute(
                "INSERT INTO quarantine_reasons(reason, records) SELECT j.key, SUM(j.value) "
                "FROM quarantine q, json_each(COALESCE(q.counts, json_object(q.reason, 1))) j "
                "GROUP BY j.key"
            )

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlitedb.write_tx(self.db, error=StoreError) as db:
            yield db

    @staticmethod
    def _bump(db: sqlite3.Connection, values: dict[str, int]) -> None:
        db.executemany(
            "UPDATE counters SET value = value + ? WHERE name = ?",
            [(v, k) for k, v in values.items() if v],
        )

    @staticmethod
    def _count_quarantined(db: sqlite3.Connection, by_reason: Mapping[str, int]) -> None:
        """Add to ``quarantine_reasons`` (same transaction as the quarantine rows)."""
        db.executemany(
            "INSERT INTO quarantine_reasons(reason, records) VALUES (?, ?) "
            "ON CONFLICT(reason) DO UPDATE SET records = records + excluded.records",
            [(r, n) for r, n in by_reason.items() if n],
        )

    # -- intake ------------------------------------------------------------------------
    def commit(self, site: str, batch_id: str, good: list[Good], bad: list[Bad]) -> CommitResult:
        """Store a verified batch in one transaction. The usual batch holds only new records
        and goes in with one ``executemany``; if one of them was stored already, that
        transaction is rolled back and the batch goes again record by record, which tells a
        duplicate (same MAC) from a conflict. (A savepoint instead of the rollback would
        cost the usual batch more than the record-by-record inserts it saves.)"""
        now = time.time()
        try:
            with self._lock:
                all_new = bool(good) and not self.db.in_transaction  # else not ours to undo
                try:
                    with self.atomic() as db:
                        return self._commit(db, now, site, batch_id, good, bad, all_new)
                except _AlreadyStored:
                    with self.atomic() as db:
                        return self._commit(db, now, site, batch_id, good, bad, False)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    def _commit(
        self,
        db: sqlite3.Connection,
        now: float,
        site: str,
        batch_id: str,
        good: list[Good],
        bad: list[Bad],
        all_new: bool = False,
    ) -> CommitResult:
        """``all_new``: insert ``good`` at once, raising :class:`_AlreadyStored` (the caller
        rolls back) if any of it was there."""
        stored = dups = 0
        quarantine: list[tuple[str, str, str | None, int | None, bytes, str | None]] = []
        if bad:
            quarantine.append(bad_records_row(bad))
        per_dev: dict[str, tuple[int, int]] = {}
        insert = (
            "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dev, seq) DO NOTHING"
        )
        horizon = self._archive_horizon(db)  # {} unless records were ever archived
        if all_new and horizon and any(g.seq <= horizon.get(g.dev, 0) for g in good):
            all_new = False  # may resend an archived record: record by record
        if all_new:
            cur = db.executemany(
                insert, [(g.dev, g.seq, g.kind, g.ts, site, g.mac, now, g.text) for g in good]
            )
            if cur.rowcount != len(good):
                raise _AlreadyStored
            for g in good:
                n, mx = per_dev.get(g.dev, (0, 0))
                per_dev[g.dev] = (n + 1, max(mx, g.seq))
            stored = len(good)
            good = []
        for g in good:
            known: str | None = None  # the MAC stored (or archived) under (dev, seq)
            if g.seq <= horizon.get(g.dev, 0):
                known = archive_keys.archived_mac(db, g.dev, g.seq)
            if known is None:
                cur = db.execute(insert, (g.dev, g.seq, g.kind, g.ts, site, g.mac, now, g.text))
                if cur.rowcount:
                    stored += 1
                    n, mx = per_dev.get(g.dev, (0, 0))
                    per_dev[g.dev] = (n + 1, max(mx, g.seq))
                    continue
                row = db.execute(
                    "SELECT mac FROM records WHERE dev = ? AND seq = ?", (g.dev, g.seq)
                ).fetchone()
                known = None if row is None else str(row[0])
            if known == g.mac:
                dups += 1
            else:
                detail = f"({g.dev}, {g.seq}) already stored with different content"
                quarantine.append(("conflict", detail, g.dev, g.seq, g.text.encode(), None))
                db.execute(
                    "INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (?, ?, ?, ?, ?)",
                    (now, "conflict", g.dev, g.seq, detail),
                )
        if quarantine:
            db.executemany(
                "INSERT INTO quarantine(received, site, batch, reason, detail, dev, seq, payload, "
                "counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (now, site, batch_id, r, storable(d[:500]), dv and storable(dv), sq, p, n)
                    for r, d, dv, sq, p, n in quarantine
                ],
            )
            self._bound_quarantine(db, sum(min(len(q[1]), 500) + len(q[4]) for q in quarantine))
        db.executemany(
            "INSERT INTO device_state(dev, site, count, max_seq, last_seen) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(dev) DO UPDATE SET count = count + excluded.count, "
            "max_seq = MAX(max_seq, excluded.max_seq), last_seen = excluded.last_seen",
            [(dev, site, n, mx, now) for dev, (n, mx) in per_dev.items()],
        )
        if self.project_inline:
            while markets.project(db):
                pass
        conflicts = sum(1 for q in quarantine if q[0] == "conflict")
        by_reason: dict[str, int] = {"conflict": conflicts}
        for b in bad:
            by_reason[b.reason] = by_reason.get(b.reason, 0) + 1
        self._count_quarantined(db, by_reason)
        self._bump(
            db,
            {
                "batches": 1,
                "stored": stored,
                "duplicates": dups,
                "quarantined": len(bad) + conflicts,
                "conflicts": conflicts,
            },
        )
        return CommitResult(stored, dups, len(bad) + conflicts, conflicted(quarantine))

    def _archive_horizon(self, db: sqlite3.Connection) -> dict[str, int]:
        """Each device's highest archived seq (:mod:`collector.archive.keys`), re-read only
        when ``archive_version`` changed: one lookup a batch."""
        version = sqlitedb.get_meta(db, archive_keys.VERSION)
        if version is None:
            return {}
        if version != self._horizon_version:
            self._horizon = archive_keys.horizons(db)
            self._horizon_version = version
        return self._horizon

    def quarantine_payload(
        self, site: str | None, reason: str, detail: str, payload: bytes, alarm: bool = False
    ) -> None:
        """Keep a message that could not be taken (its first 64 KiB); ``alarm``: also raise
        an alarm (a message that made the collector fail unexpectedly)."""
        now = time.time()
        kept = payload[:QUARANTINE_KEEP_BYTES]
        with self.atomic() as db:
            db.execute(
                "INSERT INTO quarantine(received, site, reason, detail, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (now, site, reason, storable(detail[:500]), kept),
            )
            if alarm:
                db.execute(
                    "INSERT INTO alarms(raised, kind, detail) VALUES (?, ?, ?)",
                    (now, reason, storable(f"{site or '?'}: {detail[:500]}")),
                )
            self._bound_quarantine(db, len(detail[:500]) + len(kept))
            self._bump(db, {"quarantined": 1})
            self._count_quarantined(db, {reason: 1})

    def _bound_quarantine(self, db: sqlite3.Connection, added: int) -> None:
        """Account ``added`` bytes just quarantined; evict the oldest rows past the bound."""
        total = int(sqlitedb.get_meta(db, "quarantine_bytes") or 0) + added
        evicted = 0
        while total > self.max_quarantine_bytes:
            rows = db.execute(
                f"SELECT id, {ROW_BYTES} FROM quarantine ORDER BY id LIMIT 256"
            ).fetchall()
            if not rows:
                total = 0
                break
            picked = []
            for rid, size in rows:
                picked.append((rid,))
                total -= int(size)
                if total <= self.max_quarantine_bytes:
                    break
            db.executemany("DELETE FROM quarantine WHERE id = ?", picked)
            evicted += len(picked)
        sqlitedb.set_meta(db, {"quarantine_bytes": str(total)})
        self._bump(db, {"quarantine_evicted": evicted})

    # -- forwarding --------------------------------------------------------------------
    def claim_forward(self, limit: int, lease_s: float) -> ForwardBatch | None:
        """The oldest batch whose lease ran out, else the next ``limit`` records after the
        cursor as a new batch; its held records are left out (they go on their own)."""
        now = time.time()
        with self.atomic() as db:
            row = db.execute(
                "SELECT key, lo, hi FROM forward_batches WHERE claimed_until < ? "
                "ORDER BY lo LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                cursor = int(
                    db.execute("SELECT value FROM meta WHERE name = 'forward_cursor'").fetchone()[0]
                )
                ids = db.execute(
                    "SELECT id FROM records WHERE id > ? ORDER BY id LIMIT ?", (cursor, limit)
                ).fetchall()
                if not ids:
                    return None
                lo, hi = int(ids[0][0]), int(ids[-1][0])
                key = f"{self.store_id}-{lo}-{hi}"
                db.execute(
                    "INSERT INTO forward_batches(key, lo, hi, n, created, claimed_until) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, lo, hi, len(ids), now, now + lease_s),
                )
                db.execute("UPDATE meta SET value = ? WHERE name = 'forward_cursor'", (str(hi),))
                db.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + ? "
                    "WHERE name = 'forward_claimed'",
                    (len(ids),),
                )
            else:
                key, lo, hi = str(row[0]), int(row[1]), int(row[2])
                db.execute(
                    "UPDATE forward_batches SET claimed_until = ?, attempts = attempts + 1 "
                    "WHERE key = ?",
                    (now + lease_s, key),
                )
            rows = db.execute(
                "SELECT id, rec FROM records WHERE id BETWEEN ? AND ? "
                "AND id NOT IN (SELECT record_id FROM forward_held) ORDER BY id",
                (lo, hi),
            ).fetchall()
        return ForwardBatch(
            self.store_id, key, [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]
        )

    def claim_held(self, limit: int, lease_s: float) -> ForwardBatch | None:
        """Up to ``limit`` held records due for a retry, none of them in a pending batch."""
        now = time.time()
        with self.atomic() as db:
            rows = db.execute(
                "SELECT h.record_id, r.rec FROM forward_held h "
                "JOIN records r ON r.id = h.record_id "
                "WHERE h.due = 1 AND h.claimed_until < ? AND NOT EXISTS (SELECT 1 FROM "
                "forward_batches b WHERE h.record_id BETWEEN b.lo AND b.hi) "
                "ORDER BY h.record_id LIMIT ?",
                (now, limit),
            ).fetchall()
            if not rows:
                return None
            db.executemany(
                "UPDATE forward_held SET claimed_until = ? WHERE record_id = ?",
                [(now + lease_s, r[0]) for r in rows],
            )
        return ForwardBatch(
            self.store_id, "", [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]
        )

    def hold(self, batch: ForwardBatch, reasons: Mapping[int, str]) -> None:
        """Keep the records ``reasons`` names (row id → why it cannot be sent) out of
        forwarding: new ones held with an alarm and counted, ones already held get the
        latest reason and wait for the next retry. A batch settled elsewhere meanwhile (its
        lease ran out, another collector sent it) holds nothing."""
        now = time.time()
        recs = dict(zip(batch.ids, batch.records, strict=True))
        with self.atomic() as db:
            if (
                batch.lease
                and not db.execute(
                    "SELECT 1 FROM forward_batches WHERE key = ?", (batch.lease,)
                ).fetchone()
            ):
                return  # settled by another collector meanwhile: its records are delivered
            new = 0
            for rid, why in reasons.items():
                why = why[:500]
                cur = db.execute(
                    "UPDATE forward_held SET reason = ?, last_tried = ?, attempts = attempts + 1, "
                    "due = 0, claimed_until = 0 WHERE record_id = ?",
                    (why, now, rid),
                )
                if cur.rowcount or not batch.lease:  # a retry settled elsewhere: gone
                    continue
                dev, seq = recs[rid]["dev"], recs[rid]["seq"]
                db.execute(
                    "INSERT INTO forward_held(record_id, dev, seq, reason, first_seen, "
                    "last_tried, attempts) VALUES (?, ?, ?, ?, ?, ?, 1)",
                    (rid, dev, seq, why, now, now),
                )
                db.execute(
                    "INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (?, ?, ?, ?, ?)",
                    (now, "forward_held", dev, seq, f"({dev}, {seq}) not forwarded: {why}"[:500]),
                )
                new += 1
            self._bump(db, {"forward_holds": new})

    def forwarded(self, batch: ForwardBatch, delivered: Collection[int]) -> None:
        """Settle ``batch``: the records ``delivered`` (row ids of an accepted document, none
        if nothing could be sent) are done. A batch settled elsewhere meanwhile (its lease
        ran out) changes nothing."""
        with self.atomic() as db:
            if batch.lease:
                cur = db.execute("DELETE FROM forward_batches WHERE key = ?", (batch.lease,))
                done = len(delivered) if cur.rowcount else 0
            else:
                done = sum(
                    db.execute("DELETE FROM forward_held WHERE record_id = ?", (rid,)).rowcount
                    for rid in delivered
                )
            self._bump(db, {"forwarded": done, "forward_batches": 1 if done else 0})

    def forward_failed(self, batch: ForwardBatch) -> None:
        """The platform did not take ``batch``: release it for the next attempt."""
        with self.atomic() as db:
            if batch.lease:
                db.execute(
                    "UPDATE forward_batches SET claimed_until = 0 WHERE key = ?", (batch.lease,)
                )
            else:
                db.executemany(
                    "UPDATE forward_held SET claimed_until = 0 WHERE record_id = ?",
                    [(rid,) for rid in batch.ids],
                )
            self._bump(db, {"forward_failures": 1})

    def retry_held(self) -> int:
        """Make every held record due for one more attempt; how many there are."""
        with self.atomic() as db:
            return int(db.execute("UPDATE forward_held SET due = 1").rowcount)

    def site_status(self, site: str, status: dict[str, Any]) -> None:
        with self.atomic() as db:
            db.execute(
                "INSERT INTO site_status(site, received, status) VALUES (?, ?, ?) "
                "ON CONFLICT(site) DO UPDATE SET received = excluded.received, "
                "status = excluded.status",
                (site, time.time(), json.dumps(status)),
            )

    def project(self, limit: int = 2000) -> int:
        """Apply up to ``limit`` stored market records not applied yet (one transaction)."""
        with self.atomic() as db:
            return markets.project(db, limit)

    def heartbeat(self, name: str, status: dict[str, Any]) -> None:
        with self.atomic() as db:
            sqlitedb.set_meta(db, {f"process:{name}": json.dumps(status)})

    # -- reports -----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._lock:
            return summarize(self.db)


ROW_BYTES = "length(payload) + length(detail)"
"""What a quarantine row counts against ``max_quarantine_bytes`` (SQL)."""


def conflicted(
    quarantine: list[tuple[str, str, str | None, int | None, bytes, str | None]],
) -> tuple[tuple[str, int], ...]:
    """The identities of the conflict rows among a commit's quarantine rows."""
    return tuple(
        (q[2], q[3])
        for q in quarantine
        if q[0] == "conflict" and q[2] is not None and q[3] is not None
    )


def bad_records_row(bad: list[Bad]) -> tuple[str, str, str | None, int | None, bytes, str]:
    """All bad records of one batch as one quarantine row: the reason (``mixed`` when
    there are several), counts by reason, and the first :data:`QUARANTINE_SAMPLE` records."""
    counts: dict[str, int] = {}
    for b in bad:
        counts[b.reason] = counts.get(b.reason, 0) + 1
    reason = next(iter(counts)) if len(counts) == 1 else "mixed"
    first = bad[0]
    detail = f"{len(bad)} bad records, {json.dumps(counts, sort_keys=True)}; first: {first.detail}"
    sample = b"\n".join(b.payload for b in bad[:QUARANTINE_SAMPLE])[:QUARANTINE_KEEP_BYTES]
    dev, seq = (first.dev, first.seq) if len(bad) == 1 else (None, None)
    return reason, detail, dev, seq, sample, json.dumps(counts)


def read_summary(path: Path | str) -> dict[str, Any]:
    """:func:`summarize` of the store at ``path``; empty while it does not exist yet."""
    if not Path(path).exists():
        return {}
    try:
        with open_ro(path) as db:
            return summarize(db)
    except sqlite3.Error:
        return {}


def summarize(db: Db) -> dict[str, Any]:
    """Counters, gaps and backlog of a collector store (any connection, read-only is fine).

    ``forward_backlog`` counts records waiting to be sent, ``forward_held`` records held back
    from the platform (:func:`collector.held.forwarding_view` lists them); together they are
    what the platform does not have yet. The counter ``forward_holds`` counts records ever
    held. On PostgreSQL (whose forwarding tables differ) :func:`collector.pgstore.summarize`
    answers, the same keys.
    """
    if dialect(db) == POSTGRES:
        from collector import pgstore  # imports this module

        return pgstore.summarize(db.conn.cursor())  # type: ignore[attr-defined]
    counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    # device_state counts each device's records as they are stored: no scan of records
    n_records = db.execute("SELECT COALESCE(SUM(count), 0) FROM device_state").fetchone()[0]
    gaps = db.execute("SELECT COALESCE(SUM(max_seq - count), 0) FROM device_state").fetchone()[0]
    devices = db.execute("SELECT COUNT(*) FROM device_state").fetchone()[0]
    row = db.execute("SELECT value FROM meta WHERE name = 'forward_claimed'").fetchone()
    claimed = int(row[0]) if row else 0  # a store a collector is creating this moment
    unclaimed = int(n_records) - claimed
    pending = db.execute("SELECT COALESCE(SUM(n), 0) FROM forward_batches").fetchone()[0]
    held = db.execute("SELECT COUNT(*) FROM forward_held").fetchone()[0]
    held_pending = db.execute(
        "SELECT COUNT(*) FROM forward_held h WHERE EXISTS "
        "(SELECT 1 FROM forward_batches b WHERE h.record_id BETWEEN b.lo AND b.hi)"
    ).fetchone()[0]
    alarms = db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0]
    # a row may stand for many records of one batch: ``counts`` has them by reason
    quarantine = dict(
        db.execute(
            "SELECT j.key, SUM(j.value) FROM quarantine q, "
            "json_each(COALESCE(q.counts, json_object(q.reason, 1))) j GROUP BY j.key"
        ).fetchall()
    )
    now = time.time()
    processes = {}
    for name, value in db.execute("SELECT name, value FROM meta WHERE name LIKE 'process:%'"):
        st = json.loads(value)
        processes[name[len("process:") :]] = dict(st, running=now - st["at"] < 5)
    return {
        "processes": processes,
        "projection_backlog": markets.projection_backlog(db),
        "records": int(n_records),
        "devices": int(devices),
        "gaps": int(gaps),
        "forward_backlog": int(unclaimed) + int(pending) - int(held_pending),
        "forward_held": int(held),
        "alarms": int(alarms),
        "quarantine_by_reason": quarantine,
        "quarantine_bytes": int(sqlitedb.get_meta(db, "quarantine_bytes") or 0),
        **counters,
    }


def site_report(db: Db, registry: Mapping[str, Device] | None = None) -> list[dict[str, Any]]:
    """What each site's agent last reported (backlog, oldest record, alarms). With the
    device ``registry``, a site of provisioned devices whose agent never reported is listed
    too, ``never_seen`` true and nothing else known."""
    now = time.time()
    out = []
    for site, received, status in db.execute(
        "SELECT site, received, status FROM site_status ORDER BY site"
    ):
        st = json.loads(status)
        st.update(site=site, age_s=round(now - received, 1), never_seen=False)
        out.append(st)
    reported = {s["site"] for s in out}
    for site in sorted({d.site for d in (registry or {}).values()} - reported):
        out.append({"site": site, "age_s": None, "never_seen": True})
    out.sort(key=lambda s: str(s["site"]))
    return out


def device_report(db: Db, registry: Mapping[str, Device] | None = None) -> list[dict[str, Any]]:
    """Per device: last seen, contiguous watermark, highest seq, missing count and ranges,
    and the backlog its site's agent last reported. With the device ``registry``, each
    device's type, and the provisioned devices that never sent a record (``never_seen``
    true, no records, ``last_seen`` null)."""
    out = []
    now = time.time()
    registry = registry or {}
    sites = {s["site"]: s for s in site_report(db) if not s["never_seen"]}
    for dev, site, count, max_seq, last_seen in db.execute(
        "SELECT dev, site, count, max_seq, last_seen FROM device_state ORDER BY dev"
    ).fetchall():
        missing: list[list[int]] = []
        if max_seq > count:  # the first 100 ranges, found by SQLite over the (dev, seq) index
            missing = [list(r) for r in fleet.gap_ranges(db, dev, max_seq, 100)[0]]
        watermark = missing[0][0] - 1 if missing else max_seq
        agent = sites.get(site)
        out.append(
            {
                "dev": dev,
                "site": site,
                "records": count,
                "max_seq": max_seq,
                "watermark": watermark,
                "missing": max_seq - count,
                "gaps": missing,
                "last_seen": last_seen,
                "silent_s": round(now - last_seen, 1),
                "agent_backlog": agent["depth"] if agent else None,
                "agent_oldest_age_s": agent["oldest_age_s"] if agent else None,
                "agent_reported_s_ago": agent["age_s"] if agent else None,
                "type": registry[dev].type if dev in registry else None,
                "never_seen": False,
            }
        )
    seen = {d["dev"] for d in out}
    for dev, d in sorted(registry.items()):
        if dev in seen:
            continue
        agent = sites.get(d.site)
        # a gateway that sends no records of its own is heard through its site's reports
        heard = d.type == "gateway" and agent is not None
        out.append(
            {
                "dev": dev,
                "site": d.site,
                "records": 0,
                "max_seq": 0,
                "watermark": 0,
                "missing": 0,
                "gaps": [],
                "last_seen": now - agent["age_s"] if heard and agent else None,
                "silent_s": agent["age_s"] if heard and agent else None,
                "agent_backlog": agent.get("depth") if agent else None,
                "agent_oldest_age_s": agent.get("oldest_age_s") if agent else None,
                "agent_reported_s_ago": agent.get("age_s") if agent else None,
                "type": d.type,
                "never_seen": not heard,
            }
        )
    out.sort(key=lambda d: str(d["dev"]))
    return out
