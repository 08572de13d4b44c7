"""The PostgreSQL store's side of archiving: :class:`~collector.archive.source.ArchiveSource`
over a :class:`collector.pgstore.PostgresStore`.

The PostgreSQL store has no forwarding cursor (:mod:`collector.pgschema`): a record waits in
``forward_queue`` until a forwarder claims it into a ``forward_batches`` row, which is
deleted once the platform took the batch. So a record is *safe to remove* when:

* forwarded: it is not in ``forward_queue``, in no ``forward_batches.ids`` (a delivery not
  settled) and not in ``forward_held``;
* projected: a market record is not in ``market_queue``.

Safe stays safe: a record leaves the queues once and never comes back to them.

:meth:`PgArchiveSource.remove` takes ``SHARE ROW EXCLUSIVE`` on ``records`` for its
transaction: collectors' commits (``ROW EXCLUSIVE``) wait for it, as they wait for the
single writer on SQLite. A commit that resends a record being removed thus sees its key in
``archived_keys`` once it may go on (PostgreSQL takes a statement's snapshot after its
locks), and is counted a duplicate or a conflict, never stored a second time
(:meth:`collector.pgstore.PostgresStore.commit`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from collector.archive import keys
from collector.archive.files import Row
from collector.archive.source import Key
from collector.pgstore import PostgresStore

_MARKET = "('market.entry', 'market.settlement')"

# In flight to the platform: in a batch not settled, or held. NOT IN over a subquery is
# hashed once a statement, so a large chunk does not rescan the batches' arrays per record.
_IN_FLIGHT = (
    "(SELECT unnest(ids) FROM forward_batches UNION ALL SELECT record_id FROM forward_held)"
)

_ARCHIVABLE = f"""
SELECT id, dev, seq, kind, ts, site, mac, received, rec FROM records AS r
WHERE id > %s AND ts < %s
  AND NOT EXISTS (SELECT 1 FROM forward_queue AS q WHERE q.id = r.id)
  AND id NOT IN {_IN_FLIGHT}
  AND (kind NOT IN {_MARKET} OR NOT EXISTS (SELECT 1 FROM market_queue AS m WHERE m.id = r.id))
ORDER BY id
LIMIT %s
"""

# Read from the (small) queues towards records, not by scanning the old records.
_KEPT_BACK = """
SELECT
  (SELECT COUNT(*) FROM forward_queue AS q JOIN records AS r ON r.id = q.id WHERE r.ts < %s),
  (SELECT COUNT(*) FROM records AS r WHERE r.ts < %s
     AND r.id IN (SELECT unnest(ids) FROM forward_batches UNION SELECT record_id FROM forward_held)
     AND NOT EXISTS (SELECT 1 FROM forward_queue AS q WHERE q.id = r.id)),
  (SELECT COUNT(*) FROM market_queue AS m JOIN records AS r ON r.id = m.id WHERE r.ts < %s)
"""


class PgArchiveSource:
    """:class:`ArchiveSource` over a :class:`PostgresStore` (the caller closes the store)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    def archivable(self, before_ms: int, after_id: int, limit: int) -> list[Row]:
        with self.store._tx() as cur:
            rows = cur.execute(_ARCHIVABLE, (after_id, before_ms, limit)).fetchall()
        return [
            (int(i), str(d), int(s), str(k), int(t), str(st), str(m), float(rc), str(rec))
            for i, d, s, k, t, st, m, rc, rec in rows
        ]

    def kept_back(self, before_ms: int) -> dict[str, int]:
        with self.store._tx() as cur:
            row = cur.execute(_KEPT_BACK, (before_ms, before_ms, before_ms)).fetchone()
        nf, fw, npj = row if row else (0, 0, 0)
        return {"not_forwarded": int(nf), "forwarding": int(fw), "not_projected": int(npj)}

    def remove(self, removed: Sequence[Key]) -> int:
        if not removed:
            return 0
        ids = [int(k[0]) for k in removed]
        devs = [str(k[1]) for k in removed]
        seqs = [int(k[2]) for k in removed]
        macs = [str(k[3]) for k in removed]
        with self.store._tx() as cur:
            cur.execute("LOCK TABLE records IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(
                "DELETE FROM records AS r USING unnest(%s::bigint[], %s::text[], %s::bigint[], "
                "%s::text[]) AS u(i, d, s, m) "
                "WHERE r.id = u.i AND r.dev = u.d AND r.seq = u.s AND r.mac = u.m",
                (ids, devs, seqs, macs),
            )
            deleted = cur.rowcount
            cur.execute(
                "INSERT INTO archived_keys(dev, seq, mac) "
                "SELECT d, s, m FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS u(d, s, m) "
                "ORDER BY d, s ON CONFLICT (dev, seq) DO NOTHING",
                (devs, seqs, macs),
            )
            cur.execute(
                "INSERT INTO archive_horizon(dev, seq) "
                "SELECT d, MAX(s) FROM unnest(%s::text[], %s::bigint[]) AS u(d, s) "
                "GROUP BY d ORDER BY d "
                "ON CONFLICT (dev) DO UPDATE SET seq = GREATEST(archive_horizon.seq, excluded.seq)",
                (devs, seqs),
            )
            cur.execute(
                "INSERT INTO meta(name, value) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (keys.VERSION, f"{time.time():.6f}"),
            )
        return int(deleted)
