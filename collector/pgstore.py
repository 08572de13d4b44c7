"""The collector's store in PostgreSQL, shared by every collector of a city.

Same contract as :class:`collector.store.SqliteStore` (see that module): each record once
by ``(dev, seq)``, a copy with other content quarantined as a ``conflict`` with an alarm,
bad records quarantined, device counters, forwarding with leases and idempotency keys, all
of one batch in one transaction, acknowledged only after it commits.

What differs is how many writers share it (:mod:`collector.pgschema` explains the tables):

* a batch goes in as one statement (``INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO
  NOTHING RETURNING``): one round trip for the whole batch, and the rows not returned are
  the duplicates and conflicts, told apart by one more query for their stored MACs; a
  record already moved to the archive is not inserted (its key is kept, see
  :mod:`collector.archive.keys`), so a resent copy is a duplicate or a conflict as well;
* new records are queued for the platform and the market projection in the same
  transaction; :meth:`PostgresStore.claim_forward` and :meth:`PostgresStore.project` take
  queue rows with ``FOR UPDATE SKIP LOCKED``, so N collectors on N machines split the work
  and each record is forwarded once;
* connections come from a psycopg pool, so ingest, projection and forwarding threads of one
  process do not wait for each other; a deadlock or serialization failure between
  collectors is retried (``RETRIES``), anything else becomes :class:`StoreError`: the batch
  is not acknowledged and its agent sends it again.

A PostgreSQL server that goes away makes every call fail fast with :class:`StoreError`
(the pool's ``timeout``); the collector stops acknowledging and resumes by itself once the
server answers again (the pool reconnects).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import ConnectionPool, PoolTimeout

from collector import markets, pgschema
from collector.store import (
    COUNTERS,
    DEFAULT_MAX_QUARANTINE_BYTES,
    QUARANTINE_KEEP_BYTES,
    CommitResult,
    ForwardBatch,
    bad_records_row,
    conflicted,
)
from collector.verify import Bad, Good
from hostlib.db import PgDb
from hostlib.errors import StoreError
from hostlib.pgwatch import Watchdog
from hostlib.sqlite import storable

log = logging.getLogger(__name__)

MARKET_KINDS = ("market.entry", "market.settlement")
RETRIES = 3
"""Attempts of a transaction that PostgreSQL aborted for a deadlock or a serialization
failure between collectors (each is retried at once; the loser of a deadlock is chosen by
the server)."""

_RETRYABLE = (pgerrors.DeadlockDetected, pgerrors.SerializationFailure)

# A record moved to the archive (collector/archive/keys.py): its key is in archived_keys,
# looked at only when its device's horizon reaches its seq (archive_horizon holds a row per
# archived device), so a batch of new records costs one primary-key probe of that small
# table a record. collector/archive/pgsource.py says why a concurrent removal cannot slip by.
_ARCHIVED = (
    "SELECT 1 FROM archive_horizon AS h JOIN archived_keys AS a ON a.dev = h.dev "
    "AND a.seq = u.s WHERE h.dev = u.d AND h.seq >= u.s"
)
_ARCHIVED_ROWS = (
    "unnest(%b::text[], %b::bigint[]) AS u(d, s) "
    "JOIN archive_horizon AS h ON h.dev = u.d AND h.seq >= u.s "
    "JOIN archived_keys AS a ON a.dev = u.d AND a.seq = u.s"
)


def pg_text(text: str) -> str:
    """``text`` as PostgreSQL can store it: :func:`storable`, and NUL (which no PostgreSQL
    text may hold) as its escape."""
    return storable(text).replace("\x00", "\\x00")


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    host, port, db = (str(info.get(k, "")) for k in ("host", "port", "dbname"))
    user = str(info.get("user", ""))
    return f"postgresql://{user + '@' if user else ''}{host}{':' + str(port) if port else ''}/{db}"


def migrate(url: str, connect_timeout_s: float = 10.0) -> list[int]:
    """Apply the migrations ``url``'s database lacks, in order, each in its own
    transaction under an advisory lock; the versions applied (none: up to date)."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(connect_timeout_s))) as conn:
            return _migrate(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot migrate {redact_url(url)}: {_reason(exc)}") from exc


def _migrate(conn: psycopg.Connection[Any]) -> list[int]:
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (pgschema.LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
        )
        done = {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
        newer = [v for v in done if v > pgschema.LATEST]
        if newer:
            raise StoreError(
                f"the database has schema version {max(newer)}, newer than this build knows "
                f"({pgschema.LATEST}): run the newer traceedge"
            )
        for version, name, sql in pgschema.MIGRATIONS:
            if version in done:
                continue
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations(version, name, applied) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
            applied.append(version)
    return applied


def schema_version(url: str) -> int:
    """The highest migration applied to ``url``'s database (0: none)."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
            if not row or not row[0]:
                return 0
            got = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            return int(got.fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        raise StoreError(f"cannot read {redact_url(url)}: {_reason(exc)}") from exc


IDLE_IN_TRANSACTION_MS = 10_000
"""Our transactions never wait on their client between statements for more than a moment;
one idle that long inside a transaction has lost its collector."""


def server_timeouts(seconds: float) -> str:
    """libpq ``options`` that make the server end what the client cannot: a statement
    running past ``seconds``, and a session left idle inside a transaction for
    :data:`IDLE_IN_TRANSACTION_MS` (a collector cut off mid-commit would otherwise hold
    its rows' locks for ever, and every other collector storing the same records would
    wait on them)."""
    ms = max(1000, int(seconds * 1000))
    idle = min(ms, IDLE_IN_TRANSACTION_MS)
    return f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={idle}"


def _reason(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class PostgresStore:
    """A pool of connections to one database; safe to use from several threads."""

    def __init__(
        self,
        url: str,
        project_inline: bool = True,
        max_quarantine_bytes: int = DEFAULT_MAX_QUARANTINE_BYTES,
        owner: str = "collector",
        pool_size: int = 4,
        timeout_s: float = 5.0,
        migrate_schema: bool = True,
        query_timeout_s: float = 30.0,
    ) -> None:
        """``owner``: the collector's client id, whose counter rows this process writes.
        ``timeout_s``: how long a call waits for a connection (a server that is down makes
        each call fail after it). ``migrate_schema``: apply missing migrations now (a
        deployment that migrates separately with ``traceedge collector migrate`` turns it
        off, and then a database behind this build is refused). ``query_timeout_s``: a
        transaction the server has not finished by then is cut off (:mod:`hostlib.pgwatch`):
        a server that hangs fails the batch instead of blocking the collector."""
        self.url = url
        self.where = redact_url(url)
        self.project_inline = project_inline
        self.max_quarantine_bytes = max_quarantine_bytes
        self.owner = owner
        self.watchdog = Watchdog(query_timeout_s, f"store {self.where}")
        if migrate_schema:
            migrate(url, timeout_s)
        else:
            have = schema_version(url)
            if have < pgschema.LATEST:
                raise StoreError(
                    f"{self.where} has schema version {have}, this build needs "
                    f"{pgschema.LATEST}: run `traceedge collector migrate`"
                )
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,
            kwargs={
                "connect_timeout": max(1, int(timeout_s)),
                # a peer gone without a word: the kernel gives up on it within seconds
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 3,
                "keepalives_count": 3,
                "tcp_user_timeout": int(query_timeout_s * 1000),
                "options": server_timeouts(query_timeout_s),
            },
            name=f"store-{owner}",
            open=False,
        )
        try:
            self.pool.open(wait=True, timeout=timeout_s)
        except PoolTimeout as exc:
            raise StoreError(f"cannot connect to {self.where}") from exc
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO meta(name, value) VALUES ('store_id', %s) ON CONFLICT DO NOTHING",
                (uuid.uuid4().hex[:12],),
            )
            cur.execute(
                "INSERT INTO meta(name, value) VALUES ('quarantine_bytes', '0') "
                "ON CONFLICT DO NOTHING"
            )
            row = cur.execute("SELECT value FROM meta WHERE name = 'store_id'").fetchone()
            self.store_id = str(row[0]) if row else ""

    def close(self) -> None:
        self.watchdog.close()
        self.pool.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """One transaction on a pooled connection: committed when the block returns, rolled
        back when it raises; psycopg and pool errors become :class:`StoreError`."""
        try:
            with (
                self.pool.connection() as conn,
                self.watchdog.watch(conn),
                conn.transaction(),
                conn.cursor() as cur,
            ):
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreError(f"{self.where}: {_reason(exc)}") from exc

    def _retrying(self, fn: Any, *args: Any) -> Any:
        """``fn(cursor, *args)`` in a transaction, again when the server aborted it for a
        deadlock or serialization failure with another collector."""
        for attempt in range(RETRIES):
            try:
                with self._tx() as cur:
                    return fn(cur, *args)
            except StoreError as exc:
                if not isinstance(exc.__cause__, _RETRYABLE) or attempt == RETRIES - 1:
                    raise
                log.debug("store: %s; retrying", exc)
        raise AssertionError("unreachable")

    def _bump(self, cur: psycopg.Cursor[Any], values: Mapping[str, int]) -> None:
        items = sorted((k, v) for k, v in values.items() if v)
        if not items:
            return
        cur.execute(
            "INSERT INTO counter_parts(name, owner, value) "
            "SELECT n, %s, v FROM unnest(%b::text[], %b::bigint[]) AS u(n, v) "
            "ON CONFLICT (name, owner) DO UPDATE SET value = counter_parts.value "
            "+ excluded.value",
            (self.owner, [k for k, _ in items], [v for _, v in items]),
        )

    @staticmethod
    def _count_quarantined(cur: psycopg.Cursor[Any], by_reason: Mapping[str, int]) -> None:
        items = sorted((k, v) for k, v in by_reason.items() if v)
        if not items:
            return
        cur.execute(
            "INSERT INTO quarantine_reasons(reason, records) "
            "SELECT r, n FROM unnest(%b::text[], %b::bigint[]) AS u(r, n) "
            "ON CONFLICT (reason) DO UPDATE SET records = quarantine_reasons.records "
            "+ excluded.records",
            ([k for k, _ in items], [v for _, v in items]),
        )

    # -- intake ------------------------------------------------------------------------
    def commit(self, site: str, batch_id: str, good: list[Good], bad: list[Bad]) -> CommitResult:
        """Store a verified batch in one transaction (see the module's docstring)."""
        result: CommitResult = self._retrying(self._commit, time.time(), site, batch_id, good, bad)
        return result

    def _commit(
        self,
        cur: psycopg.Cursor[Any],
        now: float,
        site: str,
        batch_id: str,
        good: list[Good],
        bad: list[Bad],
    ) -> CommitResult:
        quarantine: list[tuple[str, str, str | None, int | None, bytes, str | None]] = []
        if bad:
            quarantine.append(bad_records_row(bad))
        inserted: list[tuple[int, str, int, str]] = []
        if good:
            inserted = cur.execute(
                "INSERT INTO records(dev, seq, kind, ts, site, mac, received, rec) "
                "SELECT d, s, k, t, %s, m, %s, r FROM unnest(%b::text[], %b::bigint[], "
                "%b::text[], %b::bigint[], %b::text[], %b::text[]) AS u(d, s, k, t, m, r) "
                f"WHERE NOT EXISTS ({_ARCHIVED}) "
                "ON CONFLICT (dev, seq) DO NOTHING RETURNING id, dev, seq, kind",
                (
                    site,
                    now,
                    [g.dev for g in good],
                    [g.seq for g in good],
                    [g.kind for g in good],
                    [g.ts for g in good],
                    [g.mac for g in good],
                    [g.text for g in good],
                ),
            ).fetchall()
        stored = len(inserted)
        dups = 0
        per_dev: dict[str, tuple[int, int]] = {}
        for _rid, dev, seq, _kind in inserted:
            n, mx = per_dev.get(dev, (0, 0))
            per_dev[dev] = (n + 1, max(mx, int(seq)))
        if stored < len(good):
            fresh = {(d, int(s)) for _, d, s, _ in inserted}
            rest: list[Good] = []
            for g in good:  # the first copy of a fresh identity is the one stored
                if (g.dev, g.seq) in fresh:
                    fresh.discard((g.dev, g.seq))
                else:
                    rest.append(g)
            macs: dict[tuple[str, int], str] = {}  # stored, else archived
            for d, s, m, hot in cur.execute(
                "SELECT r.dev, r.seq, r.mac, 1 FROM records AS r WHERE (r.dev, r.seq) IN "
                "(SELECT * FROM unnest(%b::text[], %b::bigint[])) "
                f"UNION ALL SELECT u.d, u.s, a.mac, 0 FROM {_ARCHIVED_ROWS}",
                ([g.dev for g in rest], [g.seq for g in rest]) * 2,
            ):
                if hot or (d, int(s)) not in macs:
                    macs[(d, int(s))] = m
            for g in rest:
                if macs.get((g.dev, g.seq)) == g.mac:
                    dups += 1
                    continue
                detail = f"({g.dev}, {g.seq}) already stored with different content"
                quarantine.append(("conflict", detail, g.dev, g.seq, g.text.encode(), None))
                cur.execute(
                    "INSERT INTO alarms(raised, kind, dev, seq, detail) "
                    "VALUES (%s, 'conflict', %s, %s, %s)",
                    (now, g.dev, g.seq, detail),
                )
        if inserted:
            ids = [int(r[0]) for r in inserted]
            cur.execute("INSERT INTO forward_queue(id) SELECT unnest(%b::bigint[])", (ids,))
            market = [int(r[0]) for r in inserted if r[3] in MARKET_KINDS]
            if market:
                cur.execute("INSERT INTO market_queue(id) SELECT unnest(%b::bigint[])", (market,))
        if quarantine:
            self._quarantine(cur, now, site, batch_id, quarantine)
        if per_dev:
            devs = sorted(per_dev)  # one order for every writer: no deadlock between them
            cur.execute(
                "INSERT INTO device_state(dev, site, count, max_seq, last_seen) "
                "SELECT d, %s, n, m, %s FROM unnest(%b::text[], %b::bigint[], %b::bigint[]) "
                "AS u(d, n, m) ON CONFLICT (dev) DO UPDATE SET "
                "count = device_state.count + excluded.count, "
                "max_seq = GREATEST(device_state.max_seq, excluded.max_seq), "
                "last_seen = GREATEST(device_state.last_seen, excluded.last_seen)",
                (
                    site,
                    now,
                    devs,
                    [per_dev[d][0] for d in devs],
                    [per_dev[d][1] for d in devs],
                ),
            )
        if self.project_inline:
            while self._project(cur, 2000):
                pass
        conflicts = sum(1 for q in quarantine if q[0] == "conflict")
        by_reason: dict[str, int] = {"conflict": conflicts}
        for b in bad:
            by_reason[b.reason] = by_reason.get(b.reason, 0) + 1
        self._count_quarantined(cur, by_reason)
        self._bump(
            cur,
            {
                "batches": 1,
                "stored": stored,
                "duplicates": dups,
                "quarantined": len(bad) + conflicts,
                "conflicts": conflicts,
            },
        )
        return CommitResult(stored, dups, len(bad) + conflicts, conflicted(quarantine))

    def _quarantine(
        self,
        cur: psycopg.Cursor[Any],
        now: float,
        site: str | None,
        batch_id: str | None,
        rows: list[tuple[str, str, str | None, int | None, bytes, str | None]],
    ) -> None:
        added = 0
        for reason, detail, dev, seq, payload, counts in rows:
            detail = pg_text(detail[:500])
            size = len(detail) + len(payload)
            added += size
            cur.execute(
                "INSERT INTO quarantine(received, site, batch, reason, detail, dev, seq, payload, "
                "counts, bytes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    now,
                    site and pg_text(site),
                    batch_id and pg_text(batch_id),
                    reason,
                    detail,
                    dev and pg_text(dev),
                    seq,
                    payload,
                    counts,
                    size,
                ),
            )
        self._bound_quarantine(cur, added)

    def _bound_quarantine(self, cur: psycopg.Cursor[Any], added: int) -> None:
        """Account ``added`` bytes just quarantined; evict the oldest rows past the bound."""
        row = cur.execute(
            "UPDATE meta SET value = (value::bigint + %s)::text "
            "WHERE name = 'quarantine_bytes' RETURNING value::bigint",
            (added,),
        ).fetchone()
        total = int(row[0]) if row else added
        evicted = 0
        while total > self.max_quarantine_bytes:
            rows = cur.execute("SELECT id, bytes FROM quarantine ORDER BY id LIMIT 256").fetchall()
            if not rows:
                total = 0
                break
            picked: list[int] = []
            for rid, size in rows:
                picked.append(int(rid))
                total -= int(size)
                if total <= self.max_quarantine_bytes:
                    break
            cur.execute("DELETE FROM quarantine WHERE id = ANY(%s)", (picked,))
            evicted += len(picked)
        if evicted:
            cur.execute("UPDATE meta SET value = %s WHERE name = 'quarantine_bytes'", (str(total),))
            self._bump(cur, {"quarantine_evicted": evicted})

    def quarantine_payload(
        self, site: str | None, reason: str, detail: str, payload: bytes, alarm: bool = False
    ) -> None:
        """Keep a message that could not be taken (its first 64 KiB); ``alarm``: also raise
        an alarm (a message that made the collector fail unexpectedly)."""
        now = time.time()
        kept = payload[:QUARANTINE_KEEP_BYTES]
        with self._tx() as cur:
            self._quarantine(cur, now, site, None, [(reason, detail, None, None, kept, None)])
            if alarm:
                cur.execute(
                    "INSERT INTO alarms(raised, kind, detail) VALUES (%s, %s, %s)",
                    (now, reason, pg_text(f"{site or '?'}: {detail[:500]}")),
                )
            self._bump(cur, {"quarantined": 1})
            self._count_quarantined(cur, {reason: 1})

    # -- forwarding --------------------------------------------------------------------
    def claim_forward(self, limit: int, lease_s: float) -> ForwardBatch | None:
        """The oldest batch whose lease ran out, else up to ``limit`` queued records as a new
        batch (rows another collector is claiming are skipped); held records left out."""
        now = time.time()
        with self._tx() as cur:
            row = cur.execute(
                "SELECT key, ids FROM forward_batches WHERE claimed_until < %s "
                "ORDER BY created LIMIT 1 FOR UPDATE SKIP LOCKED",
                (now,),
            ).fetchone()
            if row is not None:
                key, ids = str(row[0]), [int(i) for i in row[1]]
                cur.execute(
                    "UPDATE forward_batches SET claimed_until = %s, attempts = attempts + 1 "
                    "WHERE key = %s",
                    (now + lease_s, key),
                )
            else:
                ids = sorted(
                    int(r[0])
                    for r in cur.execute(
                        "DELETE FROM forward_queue WHERE id IN (SELECT id FROM forward_queue "
                        "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                        (limit,),
                    )
                )
                if not ids:
                    return None
                key = f"{self.store_id}-{ids[0]}-{ids[-1]}"
                cur.execute(
                    "INSERT INTO forward_batches(key, ids, n, created, claimed_until) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (key, ids, len(ids), now, now + lease_s),
                )
                self._bump(cur, {"forward_claimed": len(ids)})
            rows = cur.execute(
                "SELECT id, rec FROM records WHERE id = ANY(%s) "
                "AND id NOT IN (SELECT record_id FROM forward_held) ORDER BY id",
                (ids,),
            ).fetchall()
        return ForwardBatch(
            self.store_id, key, [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]
        )

    def claim_held(self, limit: int, lease_s: float) -> ForwardBatch | None:
        """Up to ``limit`` held records due for a retry, none of them in a pending batch."""
        now = time.time()
        with self._tx() as cur:
            rows = cur.execute(
                "SELECT h.record_id, r.rec FROM forward_held h "
                "JOIN records r ON r.id = h.record_id "
                "WHERE h.due = 1 AND h.claimed_until < %s AND NOT EXISTS (SELECT 1 FROM "
                "forward_batches b WHERE h.record_id = ANY(b.ids)) "
                "ORDER BY h.record_id LIMIT %s FOR UPDATE OF h SKIP LOCKED",
                (now, limit),
            ).fetchall()
            if not rows:
                return None
            cur.execute(
                "UPDATE forward_held SET claimed_until = %s WHERE record_id = ANY(%s)",
                (now + lease_s, [int(r[0]) for r in rows]),
            )
        return ForwardBatch(
            self.store_id, "", [int(r[0]) for r in rows], [json.loads(r[1]) for r in rows]
        )

    def hold(self, batch: ForwardBatch, reasons: Mapping[int, str]) -> None:
        """Keep the records ``reasons`` names out of forwarding (see SqliteStore.hold)."""
        now = time.time()
        recs = dict(zip(batch.ids, batch.records, strict=True))
        with self._tx() as cur:
            if (
                batch.lease
                and not cur.execute(
                    "SELECT 1 FROM forward_batches WHERE key = %s", (batch.lease,)
                ).fetchone()
            ):
                return  # settled by another collector meanwhile: its records are delivered
            new = 0
            for rid, why in sorted(reasons.items()):
                why = pg_text(why[:500])
                cur.execute(
                    "UPDATE forward_held SET reason = %s, last_tried = %s, "
                    "attempts = attempts + 1, due = 0, claimed_until = 0 "
                    "WHERE record_id = %s",
                    (why, now, rid),
                )
                if cur.rowcount or not batch.lease:  # a retry settled elsewhere: gone
                    continue
                dev, seq = recs[rid]["dev"], recs[rid]["seq"]
                cur.execute(
                    "INSERT INTO forward_held(record_id, dev, seq, reason, first_seen, "
                    "last_tried, attempts) VALUES (%s, %s, %s, %s, %s, %s, 1) "
                    "ON CONFLICT DO NOTHING",
                    (rid, dev, seq, why, now, now),
                )
                if not cur.rowcount:
                    continue
                cur.execute(
                    "INSERT INTO alarms(raised, kind, dev, seq, detail) "
                    "VALUES (%s, 'forward_held', %s, %s, %s)",
                    (now, dev, seq, pg_text(f"({dev}, {seq}) not forwarded: {why}"[:500])),
                )
                new += 1
            self._bump(cur, {"forward_holds": new})

    def forwarded(self, batch: ForwardBatch, delivered: Collection[int]) -> None:
        """Settle ``batch``: the records ``delivered`` are done; a batch settled elsewhere
        meanwhile (its lease ran out) changes nothing."""
        with self._tx() as cur:
            if batch.lease:
                cur.execute("DELETE FROM forward_batches WHERE key = %s", (batch.lease,))
                done = len(delivered) if cur.rowcount else 0
            else:
                cur.execute(
                    "DELETE FROM forward_held WHERE record_id = ANY(%s)", (sorted(delivered),)
                )
                done = cur.rowcount
            self._bump(cur, {"forwarded": done, "forward_batches": 1 if done else 0})

    def forward_failed(self, batch: ForwardBatch) -> None:
        """The platform did not take ``batch``: release it for the next attempt."""
        with self._tx() as cur:
            if batch.lease:
                cur.execute(
                    "UPDATE forward_batches SET claimed_until = 0 WHERE key = %s", (batch.lease,)
                )
            else:
                cur.execute(
                    "UPDATE forward_held SET claimed_until = 0 WHERE record_id = ANY(%s)",
                    (sorted(batch.ids),),
                )
            self._bump(cur, {"forward_failures": 1})

    def retry_held(self) -> int:
        """Make every held record due for one more attempt; how many there are."""
        with self._tx() as cur:
            cur.execute("UPDATE forward_held SET due = 1")
            return int(cur.rowcount)

    # -- the rest of the protocol ------------------------------------------------------
    def site_status(self, site: str, status: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO site_status(site, received, status) VALUES (%s, %s, %s) "
                "ON CONFLICT (site) DO UPDATE SET received = excluded.received, "
                "status = excluded.status",
                (pg_text(site), time.time(), pg_text(json.dumps(status))),
            )

    def heartbeat(self, name: str, status: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO meta(name, value) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (f"process:{name}", json.dumps(status)),
            )

    def project(self, limit: int = 2000) -> int:
        """Apply up to ``limit`` queued market records (one transaction)."""
        n: int = self._retrying(self._project, limit)
        return n

    def _project(self, cur: psycopg.Cursor[Any], limit: int) -> int:
        """Apply up to ``limit`` market records taken off ``market_queue``, oldest first (rows
        another collector is applying are skipped): ``te_market_apply`` (migration 2) does
        what the SQLite store's triggers do. Each leaves the queue in the transaction that
        applies it, so it is applied once."""
        return markets.project(PgDb(cur.connection), limit)

    # -- reports -----------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self._tx() as cur:
            return summarize(cur)


def summarize(cur: psycopg.Cursor[Any]) -> dict[str, Any]:
    """What :func:`collector.store.summarize` gives for a SQLite store, the same keys."""
    counters = {name: 0 for name in COUNTERS}
    for name, value in cur.execute("SELECT name, SUM(value) FROM counters GROUP BY name"):
        counters[str(name)] = int(value)
    claimed = counters.pop("forward_claimed", 0)
    n_records, gaps, devices = cur.execute(
        "SELECT COALESCE(SUM(count), 0), COALESCE(SUM(max_seq - count), 0), COUNT(*) "
        "FROM device_state"
    ).fetchone() or (0, 0, 0)
    pending = cur.execute("SELECT COALESCE(SUM(n), 0) FROM forward_batches").fetchone()
    held, held_pending = cur.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM forward_batches b "
        "WHERE h.record_id = ANY(b.ids))) FROM forward_held h"
    ).fetchone() or (0, 0)
    alarms = cur.execute("SELECT COUNT(*) FROM alarms").fetchone()
    quarantine = {
        str(k): int(v)
        for k, v in cur.execute(
            "SELECT j.key, SUM(j.value::bigint) FROM quarantine q, "
            "jsonb_each_text(COALESCE(q.counts::jsonb, jsonb_build_object(q.reason, 1))) j "
            "GROUP BY j.key"
        )
    }
    qbytes = cur.execute("SELECT value FROM meta WHERE name = 'quarantine_bytes'").fetchone()
    backlog = cur.execute("SELECT COUNT(*) FROM market_queue").fetchone()
    now = time.time()
    processes = {
        str(name)[len("process:") :]: dict(st, running=now - st["at"] < 5)
        for name, st in (
            (n, json.loads(v))
            for n, v in cur.execute(
                "SELECT name, value FROM meta WHERE name LIKE 'process:%%'"
            ).fetchall()
        )
    }
    return {
        "processes": processes,
        "projection_backlog": int(backlog[0]) if backlog else 0,
        "records": int(n_records),
        "devices": int(devices),
        "gaps": int(gaps),
        "forward_backlog": int(n_records)
        - claimed
        + (int(pending[0]) if pending else 0)
        - int(held_pending),
        "forward_held": int(held),
        "alarms": int(alarms[0]) if alarms else 0,
        "quarantine_by_reason": quarantine,
        "quarantine_bytes": int(qbytes[0]) if qbytes else 0,
        **counters,
    }
