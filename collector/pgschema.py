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
)

LATEST = MIGRATIONS[-1][0]
LOCK_KEY = 0x7472616365  # "trace": the advisory lock every migrating process takes
