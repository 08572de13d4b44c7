"""Market tables, indexes and triggers in the store, and the projection that feeds them.

Everything is derived from the stored records (``market.entry``, ``market.settlement``) by
SQLite triggers that :func:`ensure_schema` installs in the store. :func:`project` applies
stored records not applied yet by inserting their ids into ``market_feed``; the triggers on
that table run in the projector's transaction, so the derived state is committed together
with the projection cursor, whichever process commits it, and a record stored twice (a
duplicate) changes nothing:

* ``market_batches``: one row per batch id: the entry that registered it (the first one
  applied), quantity (grams, and pieces when counted), grams and pieces sold so far;
* ``market_lines``: one row per settlement line: batch, trace code, capture time, grams and
  pieces drawn, and whether it was sold after a stop-trading order for its batch;
* ``market_sources``: the upstream sale an entry names (``source``: trace code and/or
  voucher, how it was read), one row per entry that names one; ``market_links``: the hop,
  entry → the upstream sale's lines of the same goods code. Linked from whichever side is
  applied second (the entry's trigger looks for stored settlements, the settlement's for
  applied entries), so the links are the same whatever the order (:mod:`collector.markets.chain`
  reads them);
* ``alarms`` (the store's table): ``batch_overdrawn`` once a batch has sold more than was
  registered (the settlement is stored all the same: the scale's sale happened),
  ``sold_after_stop`` for a settlement captured at or after a stop order for one of its
  batches, ``batch_entry_duplicate`` when a batch id is registered again.

Stock is order-independent: a settlement applied before its entry draws from the batch as
soon as the entry arrives. Lines draw grams (``weight_g``, whatever the mode) and pieces
(``pieces`` of counted lines); a batch is overdrawn when grams sold exceed ``quantity_g`` or,
when the entry gave pieces, pieces sold exceed them.

Every statement here is static text; values reach SQLite only as parameters. The alarm
times are "now" in seconds since the epoch: ``(julianday('now') - 2440587.5) * 86400.0``.
"""

from __future__ import annotations

import sqlite3

from hostlib.db import POSTGRES, Db, dialect

SCHEMA = """
CREATE TABLE IF NOT EXISTS traders (
    trader TEXT NOT NULL,
    name TEXT NOT NULL,
    card_uid TEXT,
    market TEXT NOT NULL,
    stall TEXT,
    PRIMARY KEY (market, trader)
);
CREATE INDEX IF NOT EXISTS traders_card ON traders(card_uid);
CREATE TABLE IF NOT EXISTS batch_stops (
    batch_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    issued_ms INTEGER NOT NULL,
    issued REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_stop_lifts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    stop_issued_ms INTEGER NOT NULL,
    lifted_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_stop_chain (
    batch_id TEXT PRIMARY KEY,
    root TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS market_feed (id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS market_batches (
    batch_id TEXT PRIMARY KEY,
    entry_id INTEGER,
    entries INTEGER NOT NULL DEFAULT 0,
    quantity_g INTEGER,
    pieces INTEGER,
    sold_g INTEGER NOT NULL DEFAULT 0,
    sold_pieces INTEGER NOT NULL DEFAULT 0,
    overdrawn_alarm INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS market_lines (
    record_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    batch_id TEXT,
    trace_id TEXT,
    ts INTEGER NOT NULL,
    weight_g INTEGER NOT NULL,
    pieces INTEGER NOT NULL,
    after_stop INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (record_id, line)
);
CREATE INDEX IF NOT EXISTS market_lines_batch ON market_lines(batch_id, ts, record_id, line);
CREATE TABLE IF NOT EXISTS market_sources (
    entry_id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    trace_id TEXT,
    tran_id TEXT,
    via TEXT,
    goods_code TEXT NOT NULL,
    quantity_g INTEGER NOT NULL,
    pieces INTEGER
);
CREATE INDEX IF NOT EXISTS market_sources_trace ON market_sources(trace_id);
CREATE INDEX IF NOT EXISTS market_sources_tran ON market_sources(tran_id);
CREATE INDEX IF NOT EXISTS market_sources_batch ON market_sources(batch_id);
CREATE TABLE IF NOT EXISTS market_links (
    entry_id INTEGER NOT NULL,
    record_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    PRIMARY KEY (entry_id, record_id, line)
);
CREATE INDEX IF NOT EXISTS market_links_sale ON market_links(record_id, line);
-- an entry's source found among the stored settlements by index, not by reading every
-- settlement (a scan per entry made a month's import quadratic: 1,000,000 records > 10 min)
CREATE INDEX IF NOT EXISTS records_settlement_trace
    ON records(json_extract(rec, '$.body.trace_id')) WHERE kind = 'market.settlement';
CREATE INDEX IF NOT EXISTS records_settlement_tran
    ON records(json_extract(rec, '$.body.tran_id')) WHERE kind = 'market.settlement';
CREATE INDEX IF NOT EXISTS records_settlement_trace
    ON records(json_extract(rec, '$.body.trace_id')) WHERE kind = 'market.settlement';
CREATE INDEX IF NOT EXISTS records_settlement_tran
    ON records(json_extract(rec, '$.body.tran_id')) WHERE kind = 'market.settlement';
CREATE INDEX IF NOT EXISTS records_entry_batch
    ON records(json_extract(rec, '$.body.batch_id')) WHERE kind = 'market.entry';

-- Records reach market_feed through project(), not a trigger on records: the triggers
-- below then run in the projector's transaction, off the ingest path.
DROP TRIGGER IF EXISTS market_records_feed;

CREATE TRIGGER IF NOT EXISTS market_feed_entry AFTER INSERT ON market_feed
WHEN (SELECT kind FROM records WHERE id = NEW.id) = 'market.entry'
BEGIN
    INSERT INTO alarms(raised, kind, dev, seq, detail)
    SELECT ((julianday('now') - 2440587.5) * 86400.0), 'batch_entry_duplicate', r.dev, r.seq,
           'batch ' || b.batch_id || ': registered again (first entry is record '
           || b.entry_id || ', this one ' || r.id || '); the first entry is kept'
    FROM records AS r JOIN market_batches AS b
      ON b.batch_id = json_extract(r.rec, '$.body.batch_id')
    WHERE r.id = NEW.id AND b.entry_id IS NOT NULL;

    INSERT INTO market_batches(batch_id, entry_id, entries, quantity_g, pieces)
    SELECT json_extract(rec, '$.body.batch_id'), id, 1,
           json_extract(rec, '$.body.quantity_g'), json_extract(rec, '$.body.pieces')
    FROM records WHERE id = NEW.id
    ON CONFLICT(batch_id) DO UPDATE SET
        entries = entries + 1,
        entry_id = COALESCE(entry_id, excluded.entry_id),
        quantity_g = CASE WHEN entry_id IS NULL THEN excluded.quantity_g ELSE quantity_g END,
        pieces = CASE WHEN entry_id IS NULL THEN excluded.pieces ELSE pieces END;

    INSERT INTO alarms(raised, kind, dev, seq, detail)
    SELECT ((julianday('now') - 2440587.5) * 86400.0), 'batch_overdrawn', r.dev, r.seq,
           'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
           || COALESCE(b.quantity_g, '?') || ' g, ' || b.sold_pieces || ' of '
           || COALESCE(b.pieces, '-') || ' pieces (found when its entry arrived)'
    FROM records AS r JOIN market_batches AS b
      ON b.batch_id = json_extract(r.rec, '$.body.batch_id')
    WHERE r.id = NEW.id AND b.overdrawn_alarm = 0
      AND ((b.quantity_g IS NOT NULL AND b.sold_g > b.quantity_g)
           OR (b.pieces IS NOT NULL AND b.sold_pieces > b.pieces));

    UPDATE market_batches SET overdrawn_alarm = 1
    WHERE batch_id = (SELECT json_extract(rec, '$.body.batch_id') FROM records WHERE id = NEW.id)
      AND overdrawn_alarm = 0
      AND ((quantity_g IS NOT NULL AND sold_g > quantity_g)
           OR (pieces IS NOT NULL AND sold_pieces > pieces));

    -- The hop (卡单同行): the entry's named source, linked to the upstream sale's lines of
    -- the same goods among the settlements stored so far (later ones: their trigger).
    INSERT OR IGNORE INTO market_sources(entry_id, batch_id, trace_id, tran_id, via, goods_code,
                                         quantity_g, pieces)
    SELECT id, json_extract(rec, '$.body.batch_id'), json_extract(rec, '$.body.source.trace_id'),
           json_extract(rec, '$.body.source.tran_id'), json_extract(rec, '$.body.source.via'),
           json_extract(rec, '$.body.goods_code'), json_extract(rec, '$.body.quantity_g'),
           json_extract(rec, '$.body.pieces')
    FROM records WHERE id = NEW.id AND json_type(rec, '$.body.source') = 'object';

    INSERT OR IGNORE INTO market_links(entry_id, record_id, line)
    SELECT src.entry_id, s.id, j.key
    FROM market_sources AS src JOIN records AS s
      -- two index searches (records_settlement_trace / _tran); "+" drops the columns'
      -- TEXT affinity, which would otherwise keep the expression indexes out of use
      ON s.id IN (SELECT id FROM records WHERE kind = 'market.settlement'
                    AND json_extract(rec, '$.body.trace_id') = +src.trace_id
                  UNION SELECT id FROM records WHERE kind = 'market.settlement'
                    AND json_extract(rec, '$.body.tran_id') = +src.tran_id),
         json_each(s.rec, '$.body.lines') AS j
    WHERE src.entry_id = NEW.id AND json_extract(j.value, '$.goods_code') = src.goods_code;
END;

CREATE TRIGGER IF NOT EXISTS market_feed_settlement AFTER INSERT ON market_feed
WHEN (SELECT kind FROM records WHERE id = NEW.id) = 'market.settlement'
BEGIN
    INSERT INTO market_lines(record_id, line, batch_id, trace_id, ts, weight_g, pieces, after_stop)
    SELECT r.id, j.key, json_extract(j.value, '$.batch_id'), json_extract(r.rec, '$.body.trace_id'),
           r.ts,
           COALESCE(json_extract(j.value, '$.weight_g'), 0),
           CASE WHEN json_extract(j.value, '$.mode') = 'counted'
                THEN COALESCE(json_extract(j.value, '$.pieces'), 0) ELSE 0 END,
           EXISTS (SELECT 1 FROM batch_stops AS s
                   WHERE s.batch_id = json_extract(j.value, '$.batch_id')
                     AND r.ts >= s.issued_ms)
    FROM records AS r, json_each(r.rec, '$.body.lines') AS j
    WHERE r.id = NEW.id;

    INSERT INTO market_batches(batch_id, sold_g, sold_pieces)
    SELECT batch_id, SUM(weight_g), SUM(pieces) FROM market_lines
    WHERE record_id = NEW.id AND batch_id IS NOT NULL
    GROUP BY batch_id
    ON CONFLICT(batch_id) DO UPDATE SET
        sold_g = sold_g + excluded.sold_g,
        sold_pieces = sold_pieces + excluded.sold_pieces;

    INSERT INTO alarms(raised, kind, dev, seq, detail)
    SELECT ((julianday('now') - 2440587.5) * 86400.0), 'sold_after_stop', r.dev, r.seq,
           'batch ' || l.batch_id || ': sold after the stop-trading order, trace code '
           || COALESCE(l.trace_id, '?')
    FROM records AS r JOIN (SELECT DISTINCT batch_id, trace_id FROM market_lines
                            WHERE record_id = NEW.id AND after_stop = 1) AS l
    WHERE r.id = NEW.id;

    INSERT INTO alarms(raised, kind, dev, seq, detail)
    SELECT ((julianday('now') - 2440587.5) * 86400.0), 'batch_overdrawn', r.dev, r.seq,
           'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
           || COALESCE(b.quantity_g, '?') || ' g, ' || b.sold_pieces || ' of '
           || COALESCE(b.pieces, '-') || ' pieces (trace code '
           || COALESCE(json_extract(r.rec, '$.body.trace_id'), '?') || ')'
    FROM records AS r JOIN market_batches AS b
      ON b.batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = NEW.id)
    WHERE r.id = NEW.id AND b.overdrawn_alarm = 0
      AND ((b.quantity_g IS NOT NULL AND b.sold_g > b.quantity_g)
           OR (b.pieces IS NOT NULL AND b.sold_pieces > b.pieces));

    UPDATE market_batches SET overdrawn_alarm = 1
    WHERE batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = NEW.id)
      AND overdrawn_alarm = 0
      AND ((quantity_g IS NOT NULL AND sold_g > quantity_g)
           OR (pieces IS NOT NULL AND sold_pieces > pieces));

    -- Entries applied before this sale that name it: link them to its lines of their goods.
    INSERT OR IGNORE INTO market_links(entry_id, record_id, line)
    SELECT src.entry_id, r.id, j.key
    FROM records AS r, json_each(r.rec, '$.body.lines') AS j JOIN market_sources AS src
      ON (src.trace_id = json_extract(r.rec, '$.body.trace_id')
          OR src.tran_id = json_extract(r.rec, '$.body.tran_id'))
     AND src.goods_code = json_extract(j.value, '$.goods_code')
    WHERE r.id = NEW.id;
END;
"""

# Records stored before the triggers existed go through the same triggers once.
_BACKFILL = """
INSERT INTO market_feed(id)
SELECT id FROM records
WHERE kind IN ('market.entry', 'market.settlement')
  AND id NOT IN (SELECT id FROM market_feed)
ORDER BY id;
"""

_PROJECT = """
INSERT INTO market_feed(id)
SELECT id FROM records
WHERE kind IN ('market.entry', 'market.settlement')
  AND id > (SELECT COALESCE(MAX(id), 0) FROM market_feed)
ORDER BY id
LIMIT ?
"""

_BACKLOG = """
SELECT COUNT(*) FROM records
WHERE kind IN ('market.entry', 'market.settlement')
  AND id > (SELECT COALESCE(MAX(id), 0) FROM market_feed)
"""


def ensure_schema(db: sqlite3.Connection) -> None:
    """Create the market tables, indexes and triggers in a store; apply stored records once.

    Idempotent; call it outside a transaction on a store (``records`` and ``alarms`` must
    exist: :class:`collector.store.SqliteStore` creates them), e.g. when the store is opened.
    The triggers live in the file, so one call covers every process that writes to it.
    """
    if db.in_transaction:
        db.execute("COMMIT")
    try:
        db.executescript("BEGIN IMMEDIATE;\n" + SCHEMA + _BACKFILL + "COMMIT;")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def project(db: Db, limit: int = 2000) -> int:
    """Apply up to ``limit`` market records not applied yet, oldest first, in the caller's
    transaction (stock, stop flags, alarms: the triggers on ``market_feed``). Record ids
    only grow in commit order, so the highest applied id is the cursor.

    On the PostgreSQL store the records wait in ``market_queue`` and ``te_market_apply``
    applies them (:mod:`collector.pgschema`, migration 2)."""
    if dialect(db) == POSTGRES:
        ids = sorted(
            int(r[0])
            for r in db.execute(
                "DELETE FROM market_queue WHERE id IN (SELECT id FROM market_queue ORDER BY id "
                "LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING id",
                (limit,),
            ).fetchall()
        )
        if ids:
            db.execute("SELECT te_market_apply(i) FROM unnest(?::bigint[]) AS u(i)", (ids,))
            # the hop (migration 4), apart from te_market_apply: migration 2 stays as released
            db.execute("SELECT te_market_link(i) FROM unnest(?::bigint[]) AS u(i)", (ids,))
            new_link = db.execute(
                "SELECT 1 FROM market_links WHERE entry_id = ANY(?::bigint[]) "
                "OR record_id = ANY(?::bigint[]) LIMIT 1",
                (ids, ids),
            ).fetchone()
            if new_link is not None:
                _follow(db)
        return len(ids)
    cursor = db.execute("SELECT COALESCE(MAX(id), 0) FROM market_feed").fetchone()[0]
    n = int(db.execute(_PROJECT, (limit,)).rowcount)
    if (
        n
        and db.execute(
            "SELECT 1 FROM market_links WHERE entry_id > ? UNION ALL "
            "SELECT 1 FROM market_links WHERE record_id > ? LIMIT 1",
            (cursor, cursor),
        ).fetchone()
    ):
        _follow(db)
    return n


def _follow(db: Db) -> None:
    """Stops follow the goods to batches linked just now (:func:`stops.follow_stops`):
    asked only when this step linked a hop, and only while some order is in force."""
    if db.execute("SELECT 1 FROM batch_stops LIMIT 1").fetchone() is None:
        return
    from collector.markets.stops import follow_stops  # stops builds on this module

    follow_stops(db)


def projection_backlog(db: Db) -> int:
    """Market records stored but not applied yet."""
    if dialect(db) == POSTGRES:
        return int(db.execute("SELECT COUNT(*) FROM market_queue").fetchone()[0])
    return int(db.execute(_BACKLOG).fetchone()[0])
