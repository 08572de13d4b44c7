"""The hot store's side of archiving: which records may leave, and removing them.

:class:`ArchiveSource` is all the archive job (:mod:`collector.archive.run`) asks of a
store; :class:`SqliteArchiveSource` implements it over :class:`collector.store.SqliteStore`,
and a PostgreSQL store implements the same three methods (and, in its ``commit``, the check
of ``archived_keys`` described in :mod:`collector.archive.keys`).

A record is *safe to remove* when the city platform has it and nothing still needs its row:

* forwarded: its id is at or below the forwarding cursor, no pending ``forward_batches``
  range holds it (a delivery not yet settled), and it is not in ``forward_held``;
* projected: a market record (``market.entry``, ``market.settlement``) is at or below the
  market projection's cursor (``MAX(market_feed.id)``).

Safe stays safe: the cursors only grow, and a record past the cursor is never held.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from collector.archive import keys
from collector.archive.files import Row
from collector.store import SqliteStore
from hostlib import sqlite as sqlitedb

Key = tuple[int, str, int, str]
"""A removed record: id, dev, seq, mac."""


class ArchiveSource(Protocol):
    def archivable(self, before_ms: int, after_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` records safe to remove, captured before ``before_ms``, with ids
        above ``after_id``, in id order."""
        ...

    def kept_back(self, before_ms: int) -> dict[str, int]:
        """Records captured before ``before_ms`` that may not leave yet, by reason:
        ``not_forwarded``, ``forwarding`` (pending or held), ``not_projected``."""
        ...

    def remove(self, removed: Sequence[Key]) -> int:
        """In one transaction: delete these records (matched on all four fields), keep their
        keys for deduplication and gaps; how many rows were deleted."""
        ...


_MARKET = "('market.entry', 'market.settlement')"

_ARCHIVABLE = f"""
SELECT id, dev, seq, kind, ts, site, mac, received, rec FROM records AS r
WHERE id > ?
  AND id <= (SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'forward_cursor')
  AND ts < ?
  AND NOT EXISTS (SELECT 1 FROM forward_held AS h WHERE h.record_id = r.id)
  AND NOT EXISTS (SELECT 1 FROM forward_batches AS b WHERE r.id BETWEEN b.lo AND b.hi)
  AND (kind NOT IN {_MARKET} OR id <= (SELECT COALESCE(MAX(id), 0) FROM market_feed))
ORDER BY id
LIMIT ?
"""

_KEPT_BACK = f"""
SELECT
  COALESCE(SUM(id > c.cursor), 0),
  COALESCE(SUM(id <= c.cursor AND (
      EXISTS (SELECT 1 FROM forward_held AS h WHERE h.record_id = r.id)
      OR EXISTS (SELECT 1 FROM forward_batches AS b WHERE r.id BETWEEN b.lo AND b.hi))), 0),
  COALESCE(SUM(kind IN {_MARKET} AND id > c.projected), 0)
FROM records AS r,
  (SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'forward_cursor') AS cursor,
          (SELECT COALESCE(MAX(id), 0) FROM market_feed) AS projected) AS c
WHERE ts < ?
"""


class SqliteArchiveSource:
    """:class:`ArchiveSource` over a :class:`SqliteStore` (the caller closes the store)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    def archivable(self, before_ms: int, after_id: int, limit: int) -> list[Row]:
        with self.store._lock:
            rows = self.store.db.execute(_ARCHIVABLE, (after_id, before_ms, limit)).fetchall()
        return [
            (int(i), str(d), int(s), str(k), int(t), str(st), str(m), float(rc), str(rec))
            for i, d, s, k, t, st, m, rc, rec in rows
        ]

    def kept_back(self, before_ms: int) -> dict[str, int]:
        with self.store._lock:
            nf, fw, npj = self.store.db.execute(_KEPT_BACK, (before_ms,)).fetchone()
        return {"not_forwarded": int(nf), "forwarding": int(fw), "not_projected": int(npj)}

    def remove(self, removed: Sequence[Key]) -> int:
        if not removed:
            return 0
        horizon: dict[str, int] = {}
        for _, dev, seq, _ in removed:
            horizon[dev] = max(horizon.get(dev, 0), seq)
        with self.store.atomic() as db:
            deleted = db.executemany(
                "DELETE FROM records WHERE id = ? AND dev = ? AND seq = ? AND mac = ?", removed
            ).rowcount
            db.executemany(
                "INSERT INTO archived_keys(dev, seq, mac) VALUES (?, ?, ?) "
                "ON CONFLICT(dev, seq) DO NOTHING",
                [(dev, seq, mac) for _, dev, seq, mac in removed],
            )
            db.executemany(
                "INSERT INTO archive_horizon(dev, seq) VALUES (?, ?) "
                "ON CONFLICT(dev) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                list(horizon.items()),
            )
            sqlitedb.set_meta(db, {keys.VERSION: f"{time.time():.6f}"})
        return int(deleted)
