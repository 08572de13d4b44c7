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
-- SQLite's JSON functions, for the paths the shared queries use (hostlib/db.py): object
-- members only; JSON null as NULL, strings without their quotes (json_each: booleans as 1
-- and 0, as SQLite gives them).
CREATE FUNCTION te_json_scalar(v JSONB) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'boolean' THEN CASE WHEN v = 'true'::jsonb THEN '1' ELSE '0' END
        WHEN 'null' THEN NULL
        WHEN 'string' THEN v #>> '{}'
        ELSE v::text END
$$;
-- json_extract is one expression PostgreSQL inlines (into index expressions too) and reads
-- with the json type's parser, which only walks the text: three times cheaper a record than
-- a jsonb conversion through a function call, and every json index on records pays it on
-- every insert. Booleans come back as 'true'/'false' here (no shared query reads one).
CREATE FUNCTION json_extract(doc TEXT, path TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (doc::json) #>> string_to_array(substr(path, 3), '.')
$$;
CREATE FUNCTION json_each(doc TEXT, path TEXT) RETURNS TABLE (key TEXT, value TEXT)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH v AS (SELECT (doc::jsonb) #> string_to_array(substr(path, 3), '.') AS j)
    SELECT e.key, te_json_scalar(e.value) FROM v,
        jsonb_each(CASE WHEN jsonb_typeof(v.j) = 'object' THEN v.j ELSE '{}'::jsonb END) e
    UNION ALL
    SELECT (a.n - 1)::text, te_json_scalar(a.value) FROM v,
        jsonb_array_elements(CASE WHEN jsonb_typeof(v.j) = 'array' THEN v.j ELSE '[]'::jsonb END)
        WITH ORDINALITY AS a(value, n)
$$;
CREATE FUNCTION json_each(doc TEXT) RETURNS TABLE (key TEXT, value TEXT)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT * FROM json_each(doc, '$') $$;

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
    counts TEXT,
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
    due INTEGER NOT NULL DEFAULT 0,
    claimed_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE site_status (
    site TEXT PRIMARY KEY,
    received DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE counter_parts (
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, owner)
);
CREATE VIEW counters AS
    SELECT name, SUM(value)::bigint AS value FROM counter_parts GROUP BY name;
CREATE TABLE market_queue (id BIGINT PRIMARY KEY);
CREATE INDEX alarms_dev ON alarms (dev, id);
CREATE INDEX alarms_raised ON alarms (raised);
CREATE INDEX quarantine_site ON quarantine (site, id);
CREATE INDEX quarantine_received ON quarantine (received);
""",
    ),
    (
        3,
        "the regulator's side: tokens, audit log, sites, cylinders, elevators, acks, traders",
        """
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    hash TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION,
    revoked DOUBLE PRECISION
);
CREATE TABLE audit_log (
    id BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    result TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE FUNCTION te_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION te_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION te_append_only();
CREATE TABLE sites (
    site TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    district TEXT,
    kind TEXT NOT NULL,
    market TEXT,
    address TEXT,
    phone TEXT
);
CREATE INDEX sites_district ON sites (district);
CREATE INDEX sites_market ON sites (market);
CREATE TABLE alarm_acks (
    alarm_id BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    "by" TEXT NOT NULL,
    role TEXT NOT NULL,
    comment TEXT NOT NULL,
    audit_id BIGINT NOT NULL
);
CREATE TABLE quarantine_acks (
    quarantine_id BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    "by" TEXT NOT NULL,
    role TEXT NOT NULL,
    comment TEXT NOT NULL,
    audit_id BIGINT NOT NULL
);
CREATE TABLE cylinders (
    cyl TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX records_cyl ON records (json_extract(rec, '$.body.cyl'))
    WHERE kind IN ('cylinder.fill', 'cylinder.check');
CREATE INDEX records_cyl_denied ON records (ts)
    WHERE kind = 'cylinder.check' AND json_extract(rec, '$.body.decision') = 'deny';
CREATE TABLE traders (
    trader TEXT NOT NULL,
    name TEXT NOT NULL,
    card_uid TEXT,
    market TEXT NOT NULL,
    stall TEXT,
    PRIMARY KEY (market, trader)
);
CREATE INDEX traders_card ON traders (card_uid);
CREATE TABLE batch_stop_lifts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    batch_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    stop_reason TEXT NOT NULL,
    stop_issued_ms BIGINT NOT NULL,
    lifted_ms BIGINT NOT NULL
);
CREATE TABLE elevators (
    reg TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    company TEXT,
    site TEXT
);
CREATE INDEX records_elevator_reg ON records (json_extract(rec, '$.body.reg'), kind, ts)
    WHERE json_extract(rec, '$.body.reg') IS NOT NULL;
-- the latest event (capture order: ts, dev, seq) of each fault of each elevator, as the
-- SQLite store's trigger keeps it (collector/elevators.py)
CREATE TABLE elevator_fault_last (
    reg TEXT NOT NULL,
    fault TEXT NOT NULL,
    ts BIGINT NOT NULL,
    dev TEXT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    site TEXT NOT NULL,
    PRIMARY KEY (reg, fault)
);
CREATE FUNCTION te_elevator_fault_last() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reg TEXT := json_extract(NEW.rec, '$.body.reg');
    fault TEXT := json_extract(NEW.rec, '$.body.fault');
BEGIN
    IF reg IS NOT NULL AND fault IS NOT NULL THEN
        INSERT INTO elevator_fault_last AS l (reg, fault, ts, dev, seq, state, site)
        VALUES (reg, fault, NEW.ts, NEW.dev, NEW.seq, json_extract(NEW.rec, '$.body.state'),
                NEW.site)
        ON CONFLICT ON CONSTRAINT elevator_fault_last_pkey DO UPDATE SET ts = excluded.ts,
            dev = excluded.dev, seq = excluded.seq, state = excluded.state,
            site = excluded.site
        WHERE (excluded.ts, excluded.dev COLLATE "C", excluded.seq)
            > (l.ts, l.dev COLLATE "C", l.seq);
    END IF;
    RETURN NULL;
END;
$$;
-- what retention moved to Parquet (collector/archive/keys.py): identities kept, so a
-- resent record is still a duplicate or a conflict
CREATE TABLE archived_keys (
    dev TEXT NOT NULL,
    seq BIGINT NOT NULL,
    mac TEXT NOT NULL,
    PRIMARY KEY (dev, seq)
);
CREATE TABLE archive_horizon (dev TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TRIGGER elevator_fault_last_feed AFTER INSERT ON records
    FOR EACH ROW WHEN (NEW.kind = 'elevator.fault')
    EXECUTE FUNCTION te_elevator_fault_last();
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
    overdrawn_alarm INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE market_lines (
    record_id BIGINT NOT NULL,
    line INTEGER NOT NULL,
    batch_id TEXT,
    trace_id TEXT,
    ts BIGINT NOT NULL,
    weight_g BIGINT NOT NULL,
    pieces BIGINT NOT NULL,
    after_stop INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (record_id, line)
);
CREATE INDEX market_lines_batch ON market_lines (batch_id, ts, record_id, line);
CREATE INDEX records_settlement_trace ON records (json_extract(rec, '$.body.trace_id'))
    WHERE kind = 'market.settlement';
CREATE INDEX records_settlement_tran ON records (json_extract(rec, '$.body.tran_id'))
    WHERE kind = 'market.settlement';
CREATE INDEX records_entry_batch ON records (json_extract(rec, '$.body.batch_id'))
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
            UPDATE market_batches SET overdrawn_alarm = 1
            WHERE batch_id = body ->> 'batch_id' AND overdrawn_alarm = 0
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
               (EXISTS (SELECT 1 FROM batch_stops s
                        WHERE s.batch_id = j.v ->> 'batch_id' AND r.ts >= s.issued_ms))::int
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
              WHERE record_id = r.id AND after_stop = 1) AS l;
        FOR b IN
            UPDATE market_batches SET overdrawn_alarm = 1
            WHERE batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = r.id)
              AND overdrawn_alarm = 0
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
    (
        4,
        "market chain (卡单同行): entry sources, hops entry → upstream sale lines",
        """
CREATE TABLE market_sources (
    entry_id BIGINT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    trace_id TEXT,
    tran_id TEXT,
    via TEXT,
    goods_code TEXT NOT NULL,
    quantity_g BIGINT NOT NULL,
    pieces BIGINT
);
CREATE INDEX market_sources_trace ON market_sources (trace_id);
CREATE INDEX market_sources_tran ON market_sources (tran_id);
CREATE INDEX market_sources_batch ON market_sources (batch_id);
CREATE TABLE market_links (
    entry_id BIGINT NOT NULL,
    record_id BIGINT NOT NULL,
    line INTEGER NOT NULL,
    PRIMARY KEY (entry_id, record_id, line)
);
CREATE INDEX market_links_sale ON market_links (record_id, line);
-- stop orders that followed an upstream order down the chain (collector/markets/stops.py)
CREATE TABLE batch_stop_chain (
    batch_id TEXT PRIMARY KEY,
    root TEXT NOT NULL
);

-- The hop of one market record applied: what the SQLite store's triggers on market_feed
-- add for it (collector/markets/schema.py). The entry side looks for stored settlements,
-- the settlement side for applied entries, so the links are the same in any order.
CREATE FUNCTION te_market_link(rid BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r records%ROWTYPE;
    body JSONB;
BEGIN
    SELECT * INTO r FROM records WHERE id = rid;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    body := (r.rec::jsonb) -> 'body';
    IF r.kind = 'market.entry' AND jsonb_typeof(body -> 'source') = 'object' THEN
        INSERT INTO market_sources(entry_id, batch_id, trace_id, tran_id, via, goods_code,
                                   quantity_g, pieces)
        VALUES (r.id, body ->> 'batch_id', body -> 'source' ->> 'trace_id',
                body -> 'source' ->> 'tran_id', body -> 'source' ->> 'via',
                body ->> 'goods_code', (body ->> 'quantity_g')::bigint,
                (body ->> 'pieces')::bigint)
        ON CONFLICT DO NOTHING;
        INSERT INTO market_links(entry_id, record_id, line)
        SELECT r.id, s.id, j.n - 1
        FROM records AS s,
             jsonb_array_elements(COALESCE((s.rec::jsonb) -> 'body' -> 'lines', '[]'::jsonb))
             WITH ORDINALITY AS j(v, n)
        WHERE s.kind = 'market.settlement'
          AND (json_extract(s.rec, '$.body.trace_id') = body -> 'source' ->> 'trace_id'
               OR json_extract(s.rec, '$.body.tran_id') = body -> 'source' ->> 'tran_id')
          AND j.v ->> 'goods_code' = body ->> 'goods_code'
        ON CONFLICT DO NOTHING;
    ELSIF r.kind = 'market.settlement' THEN
        INSERT INTO market_links(entry_id, record_id, line)
        SELECT src.entry_id, r.id, j.n - 1
        FROM jsonb_array_elements(COALESCE(body -> 'lines', '[]'::jsonb))
             WITH ORDINALITY AS j(v, n)
        JOIN market_sources AS src
          ON (src.trace_id = body ->> 'trace_id' OR src.tran_id = body ->> 'tran_id')
         AND src.goods_code = j.v ->> 'goods_code'
        ON CONFLICT DO NOTHING;
    END IF;
END;
$$;
-- the queue holds records not applied yet: those already applied were stored before
-- sources existed, and had none
""",
    ),
    (
        5,
        "warehouse: licence registry and recalled lots (collector/licences.py)",
        """
CREATE TABLE licences (
    licence TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE recalled_lots (
    lot TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX records_goods_count ON records (ts) WHERE kind = 'goods.count';
""",
    ),
    (
        6,
        "warehouse views: sales reported to public security, goods.* indexes (whviews.py)",
        """
CREATE TABLE goods_reported (
    dev TEXT NOT NULL,
    seq BIGINT NOT NULL,
    site TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    reported_at DOUBLE PRECISION NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (dev, seq)
);
CREATE INDEX records_goods ON records (site, kind, ts)
    WHERE kind IN ('goods.in', 'goods.out', 'goods.pack', 'goods.count');
CREATE INDEX records_goods_controlled ON records (ts)
    WHERE kind = 'goods.out'
    AND json_extract(rec, '$.body.product_class') IN ('chemical_toxic', 'chemical_precursor');
""",
    ),
    (
        7,
        "warehouse: sales against a licence, summed per site (collector/licence_use.py)",
        """
CREATE INDEX records_goods_licence ON records (ts)
    WHERE kind = 'goods.out' AND json_extract(rec, '$.body.licence') IS NOT NULL;
""",
    ),
    (
        8,
        "warehouse: every version of every licence as imported (collector/licences.py)",
        """
CREATE TABLE licence_history (
    licence TEXT NOT NULL,
    version BIGINT NOT NULL,
    entry TEXT NOT NULL,
    imported DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (licence, version)
);
INSERT INTO licence_history (licence, version, entry, imported)
    SELECT licence,
           COALESCE((SELECT CAST(value AS BIGINT) FROM meta
                     WHERE name = 'licence_registry_version'), 0),
           entry, updated
    FROM licences;
""",
    ),
)

MIGRATIONS = tuple(sorted(MIGRATIONS))
assert [m[0] for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1)), "numbered 1, 2, …"
LATEST = MIGRATIONS[-1][0]
LOCK_KEY = 0x7472616365  # "trace": the advisory lock every migrating process takes
