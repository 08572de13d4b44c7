"""The PostgreSQL store's schema, as numbered migrations applied once each, in order.

``schema_migrations`` lists what was applied and when; :func:`migrate` takes a transaction
advisory lock first, so collectors starting together (or ``traceedge collector migrate`` run
beside them) apply each migration exactly once. A migration is never edited once released:
a change is a new entry at the end of :data:`MIGRATIONS`.

Differences from the SQLite store, all forced by many writers committing at once:

* record ids come from an identity column and are *not* committed in order, so nothing may
  read "every record after id N" as a cursor. New records are queued instead, in the same
  transaction that stores them: ``forward_queue`` for the city platform, ``market_queue``
  for the market projection; consumers take rows with ``FOR UPDATE SKIP LOCKED``, so N
  collectors split the work and none waits for another;
* a forward batch names its records (``ids``), not a range, so a batch whose lease ran out is
  sent again with exactly the same records (the same idempotency key);
* counters are kept per collector process (``owner``) and summed when read, so no row is
  written by every commit of every collector.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "records, quarantine, alarms, device state, forwarding, counters",
        """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dev TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ts BIGINT NOT NULL,
    site TEXT NOT NULL,
    mac TEXT NOT NULL,
    received DOUBLE PRECISION NOT NULL,
    rec TEXT NOT NULL,
    CONSTRAINT records_identity UNIQUE (dev, seq)
);
CREATE INDEX records_site_ts ON records (site, ts);
CREATE TABLE quarantine (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received DOUBLE PRECISION NOT NULL,
    site TEXT,
    batch TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    dev TEXT,
    seq BIGINT,
    payload BYTEA NOT NULL,
    counts JSONB,
    bytes INTEGER NOT NULL
);
CREATE TABLE quarantine_reasons (reason TEXT PRIMARY KEY, records BIGINT NOT NULL);
CREATE TABLE alarms (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    raised DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    dev TEXT,
    seq BIGINT,
    detail TEXT NOT NULL
);
CREATE INDEX alarms_kind ON alarms (kind, id);
CREATE TABLE device_state (
    dev TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    count BIGINT NOT NULL,
    max_seq BIGINT NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
CREATE TABLE forward_queue (id BIGINT PRIMARY KEY);
CREATE TABLE forward_batches (
    key TEXT PRIMARY KEY,
    ids BIGINT[] NOT NULL,
    n INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    claimed_until DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX forward_batches_due ON forward_batches (claimed_until);
CREATE TABLE forward_held (
    record_id BIGINT PRIMARY KEY,
    dev TEXT NOT NULL,
    seq BIGINT NOT NULL,
    reason TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL,
    last_tried DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL,
    due BOOLEAN NOT NULL DEFAULT false,
    claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE site_status (
    site TEXT PRIMARY KEY,
    received DOUBLE PRECISION NOT NULL,
    status JSONB NOT NULL
);
CREATE TABLE counters (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, owner)
);
CREATE TABLE processes (
    name TEXT PRIMARY KEY,
    status JSONB NOT NULL
);
CREATE TABLE market_queue (id BIGINT PRIMARY KEY);
""",
    ),
    (
        2,
        "market projection: batches, settlement lines, stop orders, te_market_apply()",
        """
CREATE TABLE batch_stops (
    batch_id TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    issued_ms BIGINT NOT NULL,
    issued DOUBLE PRECISION NOT NULL
);
CREATE TABLE market_batches (
    batch_id TEXT PRIMARY KEY,
    entry_id BIGINT,
    entries INTEGER NOT NULL DEFAULT 0,
    quantity_g BIGINT,
    pieces BIGINT,
    sold_g BIGINT NOT NULL DEFAULT 0,
    sold_pieces BIGINT NOT NULL DEFAULT 0,
    overdrawn_alarm BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE market_lines (
    record_id BIGINT NOT NULL,
    line INTEGER NOT NULL,
    batch_id TEXT,
    trace_id TEXT,
    ts BIGINT NOT NULL,
    weight_g BIGINT NOT NULL,
    pieces BIGINT NOT NULL,
    after_stop BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (record_id, line)
);
CREATE INDEX market_lines_batch ON market_lines (batch_id, ts, record_id, line);
CREATE INDEX records_settlement_trace ON records (((rec::jsonb) #>> '{body,trace_id}'))
    WHERE kind = 'market.settlement';
CREATE INDEX records_entry_batch ON records (((rec::jsonb) #>> '{body,batch_id}'))
    WHERE kind = 'market.entry';

-- One market record applied: what the SQLite store's triggers on market_feed do
-- (collector/markets/schema.py), in one function. Stock is order-independent; a record
-- is applied once because it leaves market_queue in the same transaction.
CREATE FUNCTION te_market_apply(rid BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r records%ROWTYPE;
    body JSONB;
    b market_batches%ROWTYPE;
    now_s DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
BEGIN
    SELECT * INTO r FROM records WHERE id = rid;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    body := (r.rec::jsonb) -> 'body';
    IF r.kind = 'market.entry' THEN
        SELECT * INTO b FROM market_batches WHERE batch_id = body ->> 'batch_id' FOR UPDATE;
        IF FOUND AND b.entry_id IS NOT NULL THEN
            INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (
                now_s, 'batch_entry_duplicate', r.dev, r.seq,
                'batch ' || b.batch_id || ': registered again (first entry is record '
                || b.entry_id || ', this one ' || r.id || '); the first entry is kept');
        END IF;
        INSERT INTO market_batches(batch_id, entry_id, entries, quantity_g, pieces)
        VALUES (body ->> 'batch_id', r.id, 1, (body ->> 'quantity_g')::bigint,
                (body ->> 'pieces')::bigint)
        ON CONFLICT (batch_id) DO UPDATE SET
            entries = market_batches.entries + 1,
            entry_id = COALESCE(market_batches.entry_id, excluded.entry_id),
            quantity_g = CASE WHEN market_batches.entry_id IS NULL
                THEN excluded.quantity_g ELSE market_batches.quantity_g END,
            pieces = CASE WHEN market_batches.entry_id IS NULL
                THEN excluded.pieces ELSE market_batches.pieces END;
        FOR b IN
            UPDATE market_batches SET overdrawn_alarm = true
            WHERE batch_id = body ->> 'batch_id' AND NOT overdrawn_alarm
              AND ((quantity_g IS NOT NULL AND sold_g > quantity_g)
                   OR (pieces IS NOT NULL AND sold_pieces > pieces))
            RETURNING *
        LOOP
            INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (
                now_s, 'batch_overdrawn', r.dev, r.seq,
                'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
                || COALESCE(b.quantity_g::text, '?') || ' g, ' || b.sold_pieces || ' of '
                || COALESCE(b.pieces::text, '-') || ' pieces (found when its entry arrived)');
        END LOOP;
    ELSIF r.kind = 'market.settlement' THEN
        INSERT INTO market_lines(record_id, line, batch_id, trace_id, ts, weight_g, pieces,
                                 after_stop)
        SELECT r.id, j.n - 1, j.v ->> 'batch_id', body ->> 'trace_id', r.ts,
               COALESCE((j.v ->> 'weight_g')::bigint, 0),
               CASE WHEN j.v ->> 'mode' = 'counted'
                    THEN COALESCE((j.v ->> 'pieces')::bigint, 0) ELSE 0 END,
               EXISTS (SELECT 1 FROM batch_stops s
                       WHERE s.batch_id = j.v ->> 'batch_id' AND r.ts >= s.issued_ms)
        FROM jsonb_array_elements(COALESCE(body -> 'lines', '[]'::jsonb))
             WITH ORDINALITY AS j(v, n)
        ON CONFLICT DO NOTHING;
        INSERT INTO market_batches(batch_id, sold_g, sold_pieces)
        SELECT batch_id, SUM(weight_g), SUM(pieces) FROM market_lines
        WHERE record_id = r.id AND batch_id IS NOT NULL
        GROUP BY batch_id ORDER BY batch_id
        ON CONFLICT (batch_id) DO UPDATE SET
            sold_g = market_batches.sold_g + excluded.sold_g,
            sold_pieces = market_batches.sold_pieces + excluded.sold_pieces;
        INSERT INTO alarms(raised, kind, dev, seq, detail)
        SELECT now_s, 'sold_after_stop', r.dev, r.seq,
               'batch ' || l.batch_id || ': sold after the stop-trading order, trace code '
               || COALESCE(l.trace_id, '?')
        FROM (SELECT DISTINCT batch_id, trace_id FROM market_lines
              WHERE record_id = r.id AND after_stop) AS l;
        FOR b IN
            UPDATE market_batches SET overdrawn_alarm = true
            WHERE batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = r.id)
              AND NOT overdrawn_alarm
              AND ((quantity_g IS NOT NULL AND sold_g > quantity_g)
                   OR (pieces IS NOT NULL AND sold_pieces > pieces))
            RETURNING *
        LOOP
            INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (
                now_s, 'batch_overdrawn', r.dev, r.seq,
                'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
                || COALESCE(b.quantity_g::text, '?') || ' g, ' || b.sold_pieces || ' of '
                || COALESCE(b.pieces::text, '-') || ' pieces (trace code '
                || COALESCE(body ->> 'trace_id', '?') || ')');
        END LOOP;
    END IF;
END;
$$;
""",
    ),
)

LATEST = MIGRATIONS[-1][0]
LOCK_KEY = 0x7472616365  # "trace": the advisory lock every migrating process takes
