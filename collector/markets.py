"""Markets at the collector: traders, batches and their stock, stop-trading orders, trace chains.

Everything is derived from the stored records (``market.entry``, ``market.settlement``) by
SQLite triggers that :func:`ensure_schema` installs in the store, so the derived state is
committed in the same transaction as the record that changed it, whichever process commits
it, and a record stored twice (a duplicate) changes nothing:

* ``market_batches``: one row per batch id: the entry that registered it (the first one
  stored), quantity (grams, and pieces when counted), grams and pieces sold so far;
* ``market_lines``: one row per settlement line: batch, trace code, capture time, grams and
  pieces drawn, and whether it was sold after a stop-trading order for its batch;
* ``alarms`` (the store's table): ``batch_overdrawn`` once a batch has sold more than was
  registered (the settlement is stored all the same: the scale's sale happened),
  ``sold_after_stop`` for a settlement captured at or after a stop order for one of its
  batches, ``batch_entry_duplicate`` when a batch id is registered again.

Stock is order-independent: a settlement stored before its entry draws from the batch as
soon as the entry arrives. Lines draw grams (``weight_g``, whatever the mode) and pieces
(``pieces`` of counted lines); a batch is overdrawn when grams sold exceed ``quantity_g`` or,
when the entry gave pieces, pieces sold exceed them.

A stop order (:func:`stop_trading`) applies to a batch id wherever it is sold; a line counts
as sold after the stop when its record's capture time ``ts`` is at or after the order's
issue time (a sale made before the order but delivered later is not flagged).

Readers (:func:`trace_chain`, :func:`batch_view`) need only a read-only connection. Money in
fen, weights in grams, times in ms since the epoch (UTC): integers throughout.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from hostlib.sqlite import write_tx
from wire import tracecode

ALARM_OVERDRAWN = "batch_overdrawn"
ALARM_SOLD_AFTER_STOP = "sold_after_stop"
ALARM_DUPLICATE_ENTRY = "batch_entry_duplicate"

_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_OVER_COLS = (
    "((quantity_g IS NOT NULL AND sold_g > quantity_g) "
    "OR (pieces IS NOT NULL AND sold_pieces > pieces))"
)
_OVER = _OVER_COLS.replace("quantity_g", "b.quantity_g").replace("sold_", "b.sold_")
_OVER = _OVER.replace("(pieces", "(b.pieces").replace("> pieces", "> b.pieces")

SCHEMA = f"""
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
    SELECT {_NOW}, '{ALARM_DUPLICATE_ENTRY}', r.dev, r.seq,
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
    SELECT {_NOW}, '{ALARM_OVERDRAWN}', r.dev, r.seq,
           'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
           || COALESCE(b.quantity_g, '?') || ' g, ' || b.sold_pieces || ' of '
           || COALESCE(b.pieces, '-') || ' pieces (found when its entry arrived)'
    FROM records AS r JOIN market_batches AS b
      ON b.batch_id = json_extract(r.rec, '$.body.batch_id')
    WHERE r.id = NEW.id AND b.overdrawn_alarm = 0 AND {_OVER};

    UPDATE market_batches SET overdrawn_alarm = 1
    WHERE batch_id = (SELECT json_extract(rec, '$.body.batch_id') FROM records WHERE id = NEW.id)
      AND overdrawn_alarm = 0 AND {_OVER_COLS};
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
    SELECT {_NOW}, '{ALARM_SOLD_AFTER_STOP}', r.dev, r.seq,
           'batch ' || l.batch_id || ': sold after the stop-trading order, trace code '
           || COALESCE(l.trace_id, '?')
    FROM records AS r JOIN (SELECT DISTINCT batch_id, trace_id FROM market_lines
                            WHERE record_id = NEW.id AND after_stop = 1) AS l
    WHERE r.id = NEW.id;

    INSERT INTO alarms(raised, kind, dev, seq, detail)
    SELECT {_NOW}, '{ALARM_OVERDRAWN}', r.dev, r.seq,
           'batch ' || b.batch_id || ': overdrawn, sold ' || b.sold_g || ' g of '
           || COALESCE(b.quantity_g, '?') || ' g, ' || b.sold_pieces || ' of '
           || COALESCE(b.pieces, '-') || ' pieces (trace code '
           || COALESCE(json_extract(r.rec, '$.body.trace_id'), '?') || ')'
    FROM records AS r JOIN market_batches AS b
      ON b.batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = NEW.id)
    WHERE r.id = NEW.id AND b.overdrawn_alarm = 0 AND {_OVER};

    UPDATE market_batches SET overdrawn_alarm = 1
    WHERE batch_id IN (SELECT batch_id FROM market_lines WHERE record_id = NEW.id)
      AND overdrawn_alarm = 0 AND {_OVER_COLS};
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


def project(db: sqlite3.Connection, limit: int = 2000) -> int:
    """Apply up to ``limit`` market records not applied yet, oldest first, in the caller's
    transaction (stock, stop flags, alarms: the triggers on ``market_feed``). Record ids
    only grow in commit order, so the highest applied id is the cursor."""
    return db.execute(_PROJECT, (limit,)).rowcount


def projection_backlog(db: sqlite3.Connection) -> int:
    """Market records stored but not applied yet."""
    row = db.execute(
        "SELECT COUNT(*) FROM records WHERE kind IN ('market.entry', 'market.settlement') "
        "AND id > (SELECT COALESCE(MAX(id), 0) FROM market_feed)"
    ).fetchone()
    return int(row[0])


class UnknownBatch(LookupError):
    """No entry and no sale names this batch id."""


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


# ---------------------------------------------------------------------------------------------
# Traders


def _text(row: Mapping[str, object], key: str, *, required: bool, max_len: int) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        if required:
            raise ValueError(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ValueError(f"{key} must be text of at most {max_len} characters")
    return value


def import_traders(db: sqlite3.Connection, rows: Iterable[Mapping[str, object]]) -> int:
    """Insert or replace traders; returns how many rows were imported.

    Each row maps ``trader``, ``name``, ``market`` (required), ``card_uid`` (IC card UID,
    upper-case hex, 8-20 digits) and ``stall`` (optional). All or nothing: a bad row raises
    ``ValueError`` naming its index and nothing is imported.
    """
    clean: list[tuple[str, str, str | None, str, str | None]] = []
    for i, row in enumerate(rows):
        try:
            trader = _text(row, "trader", required=True, max_len=32)
            name = _text(row, "name", required=True, max_len=64)
            market = _text(row, "market", required=True, max_len=32)
            card = _text(row, "card_uid", required=False, max_len=20)
            stall = _text(row, "stall", required=False, max_len=32)
            if card is not None and (
                len(card) < 8 or any(ch not in "0123456789ABCDEF" for ch in card)
            ):
                raise ValueError("card_uid must be 8-20 upper-case hex digits")
        except ValueError as exc:
            raise ValueError(f"trader row {i}: {exc}") from exc
        assert trader is not None and name is not None and market is not None
        clean.append((trader, name, card, market, stall))
    with write_tx(db):
        db.executemany(
            "INSERT INTO traders(trader, name, card_uid, market, stall) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(market, trader) DO UPDATE SET name = excluded.name, "
            "card_uid = excluded.card_uid, stall = excluded.stall",
            clean,
        )
    return len(clean)


class Trader(BaseModel):
    """A seller as the record names it, and what the trader registry says about it."""

    trader: str = Field(description="trader id as in the record")
    registered: bool = Field(description="the market's trader registry knows this trader")
    name: str | None = Field(default=None, description="registered real name")
    stall: str | None = Field(default=None, description="stall number")
    card: str | None = Field(default=None, description="IC card UID read at the sale or entry")
    card_matches: bool | None = Field(
        default=None,
        description="the card read is the registered one (null: no card read or on file)",
    )


def _trader(db: sqlite3.Connection, market: str, trader: str, card: str | None) -> Trader:
    row = db.execute(
        "SELECT name, card_uid, stall FROM traders WHERE market = ? AND trader = ?",
        (market, trader),
    ).fetchone()
    if row is None:
        return Trader(trader=trader, registered=False, card=card)
    name, card_uid, stall = row
    matches = None if card is None or card_uid is None else card == card_uid
    return Trader(
        trader=trader, registered=True, name=name, stall=stall, card=card, card_matches=matches
    )


# ---------------------------------------------------------------------------------------------
# Read models


class RecordRef(BaseModel):
    dev: str
    seq: int
    ts: int = Field(description="capture time, ms since the epoch (UTC)")


class Entry(BaseModel):
    """The entry registration (进场登记) of a batch."""

    record: RecordRef
    date: str = Field(description="entry date, YYYY-MM-DD, China Standard Time")
    market: str
    seller: Trader
    batch_id: str
    cert_no: str = Field(description="quarantine or origin certificate number")
    origin: str = Field(description="place of origin or slaughterhouse")
    goods_code: str
    goods_name: str
    quantity_g: int
    pieces: int | None = None


class StopOrder(BaseModel):
    batch_id: str
    reason: str
    issued_ms: int = Field(description="when the order was issued, ms since the epoch (UTC)")


class Stock(BaseModel):
    quantity_g: int | None = Field(description="registered on entry (null: no entry yet)")
    pieces: int | None = Field(description="registered pieces, for counted goods")
    sold_g: int
    sold_pieces: int
    remaining_g: int | None
    remaining_pieces: int | None
    overdrawn: bool = Field(description="more sold than registered: recorded and flagged")


class UpstreamSale(BaseModel):
    """The sale upstream whose voucher number this batch was registered under."""

    record: RecordRef
    market: str
    tran_id: str
    trace_id: str
    seller: str


class BatchLink(BaseModel):
    batch_id: str
    entry: Entry | None = Field(description="null: no entry for this batch at the collector")
    other_entries: list[RecordRef] = Field(description="further entries under the same id")
    stock: Stock
    stop: StopOrder | None
    upstream: UpstreamSale | None = None


class SaleLine(BaseModel):
    line: int
    batch_id: str
    goods_code: str
    goods_name: str
    mode: str = Field(description="weighed or counted")
    weight_g: int | None = None
    price_fen_per_kg: int | None = None
    pieces: int | None = None
    price_fen_per_piece: int | None = None
    amount_fen: int = Field(description="the scale's own amount, never recomputed")
    sold_after_stop: bool
    overdrew_batch: bool = Field(description="the batch's balance was below zero after this line")
    batch: BatchLink


class Sale(BaseModel):
    record: RecordRef
    market: str
    terminal: str = Field(description="scale / settlement terminal code")
    scale_sw: str
    tran_id: str
    trace_id: str
    seller: Trader
    buyer: str | None = None
    pay: str | None = None
    total_fen: int
    lines: list[SaleLine]


class TraceCodeFields(BaseModel):
    market: str
    date: str = Field(description="yymmdd")
    day: str = Field(description="YYYY-MM-DD")
    terminal: int
    serial: int


class TraceChain(BaseModel):
    """Sale → batch(es) → origin for one trace code."""

    trace_code: str
    parsed: TraceCodeFields | None = Field(
        description="the code's fields (null: a code of another structure)"
    )
    sale: Sale
    origins: list[str] = Field(description="origins of the batches sold, in line order")
    flags: list[str] = Field(
        description="sold_after_stop, batch_overdrawn, unknown_batch, seller_unregistered, "
        "seller_card_mismatch, trace_code_reused"
    )
    reused_by: list[RecordRef] = Field(description="other settlements carrying the same code")


class BatchSale(BaseModel):
    record: RecordRef
    line: int
    trace_id: str | None
    weight_g: int
    pieces: int
    balance_g: int | None = Field(description="grams left after this line (null: no entry)")
    balance_pieces: int | None
    overdrawn: bool = Field(description="the balance was below zero after this line")
    sold_after_stop: bool


class BatchView(BaseModel):
    batch_id: str
    entry: Entry | None
    other_entries: list[RecordRef]
    stock: Stock
    stop: StopOrder | None
    sold_after_stop: int = Field(description="lines sold after the stop order")
    sales_total: int
    sales: list[BatchSale] = Field(description="lines drawn from the batch, in capture order")


# ---------------------------------------------------------------------------------------------
# Readers


def _entries(db: sqlite3.Connection, batch_id: str) -> list[tuple[int, str, int, int, Any]]:
    rows = db.execute(
        "SELECT id, dev, seq, ts, rec FROM records "
        "WHERE kind = 'market.entry' AND json_extract(rec, '$.body.batch_id') = ? ORDER BY id",
        (batch_id,),
    ).fetchall()
    return [(int(i), str(d), int(s), int(t), json.loads(r)["body"]) for i, d, s, t, r in rows]


def _entry(db: sqlite3.Connection, dev: str, seq: int, ts: int, body: Mapping[str, Any]) -> Entry:
    market = str(body["market"])
    return Entry(
        record=RecordRef(dev=dev, seq=seq, ts=ts),
        date=tracecode.local_day(ts),
        market=market,
        seller=_trader(db, market, str(body["trader"]), body.get("card")),
        batch_id=str(body["batch_id"]),
        cert_no=str(body["cert_no"]),
        origin=str(body["origin"]),
        goods_code=str(body["goods_code"]),
        goods_name=str(body["goods_name"]),
        quantity_g=int(body["quantity_g"]),
        pieces=body.get("pieces"),
    )


def _stock(db: sqlite3.Connection, batch_id: str) -> Stock:
    row = db.execute(
        "SELECT quantity_g, pieces, sold_g, sold_pieces FROM market_batches WHERE batch_id = ?",
        (batch_id,),
    ).fetchone()
    qty, pieces, sold_g, sold_pieces = row if row is not None else (None, None, 0, 0)
    rem_g = None if qty is None else qty - sold_g
    rem_p = None if pieces is None else pieces - sold_pieces
    over = (rem_g is not None and rem_g < 0) or (rem_p is not None and rem_p < 0)
    return Stock(
        quantity_g=qty,
        pieces=pieces,
        sold_g=sold_g,
        sold_pieces=sold_pieces,
        remaining_g=rem_g,
        remaining_pieces=rem_p,
        overdrawn=over,
    )


def _stop(db: sqlite3.Connection, batch_id: str) -> StopOrder | None:
    row = db.execute(
        "SELECT reason, issued_ms FROM batch_stops WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    return None if row is None else StopOrder(batch_id=batch_id, reason=row[0], issued_ms=row[1])


def _upstream(db: sqlite3.Connection, batch_id: str) -> UpstreamSale | None:
    row = db.execute(
        "SELECT dev, seq, ts, rec FROM records WHERE kind = 'market.settlement' "
        "AND json_extract(rec, '$.body.tran_id') = ? ORDER BY id LIMIT 1",
        (batch_id,),
    ).fetchone()
    if row is None:
        return None
    body = json.loads(row[3])["body"]
    return UpstreamSale(
        record=RecordRef(dev=row[0], seq=row[1], ts=row[2]),
        market=body["market"],
        tran_id=body["tran_id"],
        trace_id=body["trace_id"],
        seller=body["seller"],
    )


def _batch_link(db: sqlite3.Connection, batch_id: str, market: str | None) -> BatchLink:
    entries = _entries(db, batch_id)
    # The entry in the sale's own market when there is one, else the first stored.
    chosen = next((e for e in entries if e[4].get("market") == market), None)
    if chosen is None and entries:
        chosen = entries[0]
    entry = None if chosen is None else _entry(db, chosen[1], chosen[2], chosen[3], chosen[4])
    chosen_id = None if chosen is None else chosen[0]
    others = [RecordRef(dev=d, seq=s, ts=t) for i, d, s, t, _ in entries if i != chosen_id]
    return BatchLink(
        batch_id=batch_id,
        entry=entry,
        other_entries=others,
        stock=_stock(db, batch_id),
        stop=_stop(db, batch_id),
        upstream=_upstream(db, batch_id),
    )


def _balance_after(
    db: sqlite3.Connection, batch_id: str, ts: int, record_id: int, line: int, stock: Stock
) -> bool:
    """True if the batch's balance was below zero right after this line (capture order)."""
    if stock.quantity_g is None and stock.pieces is None:
        return False
    g, p = db.execute(
        "SELECT COALESCE(SUM(weight_g), 0), COALESCE(SUM(pieces), 0) FROM market_lines "
        "WHERE batch_id = ? AND (ts, record_id, line) <= (?, ?, ?)",
        (batch_id, ts, record_id, line),
    ).fetchone()
    return (stock.quantity_g is not None and g > stock.quantity_g) or (
        stock.pieces is not None and p > stock.pieces
    )


def trace_chain(db: sqlite3.Connection, code: str) -> TraceChain | None:
    """The chain sale → batch(es) → origin of a trace code; None if no settlement has it.

    When several settlements carry the code (a terminal numbering fault), the first stored is
    the sale and the others are listed in ``reused_by`` with the flag ``trace_code_reused``.
    """
    rows = db.execute(
        "SELECT id, dev, seq, ts, rec FROM records WHERE kind = 'market.settlement' "
        "AND json_extract(rec, '$.body.trace_id') = ? ORDER BY id",
        (code,),
    ).fetchall()
    if not rows:
        return None
    rid, dev, seq, ts, text = rows[0]
    body = json.loads(text)["body"]
    market = str(body["market"])
    flags: list[str] = []
    flagged = {
        int(line): bool(after)
        for line, after in db.execute(
            "SELECT line, after_stop FROM market_lines WHERE record_id = ?", (rid,)
        )
    }
    lines: list[SaleLine] = []
    origins: list[str] = []
    for i, ln in enumerate(body["lines"]):
        link = _batch_link(db, str(ln["batch_id"]), market)
        overdrew = _balance_after(db, link.batch_id, ts, rid, i, link.stock)
        after_stop = flagged.get(i, False)
        if link.entry is None:
            flags.append("unknown_batch")
        else:
            origins.append(link.entry.origin)
        if after_stop:
            flags.append("sold_after_stop")
        if link.stock.overdrawn:
            flags.append("batch_overdrawn")
        lines.append(
            SaleLine(
                line=i,
                batch_id=link.batch_id,
                goods_code=ln["goods_code"],
                goods_name=ln["goods_name"],
                mode=ln["mode"],
                weight_g=ln.get("weight_g"),
                price_fen_per_kg=ln.get("price_fen_per_kg"),
                pieces=ln.get("pieces"),
                price_fen_per_piece=ln.get("price_fen_per_piece"),
                amount_fen=ln["amount_fen"],
                sold_after_stop=after_stop,
                overdrew_batch=overdrew,
                batch=link,
            )
        )
    seller = _trader(db, market, str(body["seller"]), body.get("seller_card"))
    if not seller.registered:
        flags.append("seller_unregistered")
    elif seller.card_matches is False:
        flags.append("seller_card_mismatch")
    reused = [RecordRef(dev=r[1], seq=r[2], ts=r[3]) for r in rows[1:]]
    if reused:
        flags.append("trace_code_reused")
    try:
        parsed: TraceCodeFields | None = TraceCodeFields.model_validate(
            tracecode.parse_trace_code(code)
        )
    except ValueError:
        parsed = None
    sale = Sale(
        record=RecordRef(dev=dev, seq=seq, ts=ts),
        market=market,
        terminal=body["terminal"],
        scale_sw=body["scale_sw"],
        tran_id=body["tran_id"],
        trace_id=body["trace_id"],
        seller=seller,
        buyer=body.get("buyer"),
        pay=body.get("pay"),
        total_fen=body["total_fen"],
        lines=lines,
    )
    return TraceChain(
        trace_code=code,
        parsed=parsed,
        sale=sale,
        origins=list(dict.fromkeys(origins)),
        flags=list(dict.fromkeys(flags)),
        reused_by=reused,
    )


def batch_known(db: sqlite3.Connection, batch_id: str) -> bool:
    """An entry or a sale names this batch id."""
    row = db.execute("SELECT 1 FROM market_batches WHERE batch_id = ?", (batch_id,)).fetchone()
    return row is not None


def batch_view(db: sqlite3.Connection, batch_id: str, limit: int = 1000) -> BatchView | None:
    """A batch: entry, stock, stop order, and its sales with the running balance.

    ``sales`` holds the first ``limit`` lines in capture order (``sales_total`` counts all);
    a line after which the balance is below zero is flagged ``overdrawn``. None if unknown.
    """
    if not batch_known(db, batch_id):
        return None
    link = _batch_link(db, batch_id, None)
    stock = link.stock
    sales: list[BatchSale] = []
    g = p = 0
    total = after = 0
    for line, trace_id, ts, weight, pieces, after_stop, dev, seq in db.execute(
        "SELECT l.line, l.trace_id, l.ts, l.weight_g, l.pieces, l.after_stop, r.dev, r.seq "
        "FROM market_lines AS l JOIN records AS r ON r.id = l.record_id "
        "WHERE l.batch_id = ? ORDER BY l.ts, l.record_id, l.line",
        (batch_id,),
    ).fetchall():
        g += weight
        p += pieces
        total += 1
        after += bool(after_stop)
        if len(sales) >= limit:
            continue
        bal_g = None if stock.quantity_g is None else stock.quantity_g - g
        bal_p = None if stock.pieces is None else stock.pieces - p
        sales.append(
            BatchSale(
                record=RecordRef(dev=dev, seq=seq, ts=ts),
                line=line,
                trace_id=trace_id,
                weight_g=weight,
                pieces=pieces,
                balance_g=bal_g,
                balance_pieces=bal_p,
                overdrawn=(bal_g is not None and bal_g < 0) or (bal_p is not None and bal_p < 0),
                sold_after_stop=bool(after_stop),
            )
        )
    return BatchView(
        batch_id=batch_id,
        entry=link.entry,
        other_entries=link.other_entries,
        stock=stock,
        stop=link.stop,
        sold_after_stop=after,
        sales_total=total,
        sales=sales,
    )


# ---------------------------------------------------------------------------------------------
# Stop-trading orders


class StopResult(BaseModel):
    stop: StopOrder
    issued: bool = Field(
        description="false: the batch was already stopped (the first order stands)"
    )
    flagged: int = Field(description="settlements already stored that this order flagged")


def stop_trading(
    db: sqlite3.Connection, batch_id: str, reason: str, *, now_ms: int | None = None
) -> StopResult:
    """Issue a stop-trading order for a batch (中止交易): later sales of it are flagged.

    Settlements already stored whose capture time is at or after ``now_ms`` (default: now)
    are flagged and alarmed at once. A second order for a stopped batch changes nothing and
    returns the first. Raises :class:`UnknownBatch` when no entry or sale names the batch,
    ``ValueError`` on an empty reason.
    """
    if not reason.strip():
        raise ValueError("a stop order needs a reason")
    issued_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with write_tx(db):
        # A running collector applies market records just behind ingest: catch up first,
        # so every stored entry and sale counts for this order.
        while project(db):
            pass
        if not batch_known(db, batch_id):
            raise UnknownBatch(batch_id)
        existing = _stop(db, batch_id)
        if existing is not None:
            return StopResult(stop=existing, issued=False, flagged=0)
        db.execute(
            "INSERT INTO batch_stops(batch_id, reason, issued_ms, issued) VALUES (?, ?, ?, ?)",
            (batch_id, reason, issued_ms, time.time()),
        )
        hits = db.execute(
            "SELECT DISTINCT l.record_id, r.dev, r.seq, l.trace_id FROM market_lines AS l "
            "JOIN records AS r ON r.id = l.record_id "
            "WHERE l.batch_id = ? AND l.ts >= ? AND l.after_stop = 0",
            (batch_id, issued_ms),
        ).fetchall()
        db.execute(
            "UPDATE market_lines SET after_stop = 1 WHERE batch_id = ? AND ts >= ?",
            (batch_id, issued_ms),
        )
        now = time.time()
        db.executemany(
            "INSERT INTO alarms(raised, kind, dev, seq, detail) VALUES (?, ?, ?, ?, ?)",
            [
                (
                    now,
                    ALARM_SOLD_AFTER_STOP,
                    dev,
                    seq,
                    f"batch {batch_id}: sold after the stop-trading order, trace code {trace}",
                )
                for _, dev, seq, trace in hits
            ],
        )
    return StopResult(
        stop=StopOrder(batch_id=batch_id, reason=reason, issued_ms=issued_ms),
        issued=True,
        flagged=len({h[0] for h in hits}),
    )


def stops(db: sqlite3.Connection) -> list[StopOrder]:
    """Every stop order, oldest first (what the terminals must refuse)."""
    return [
        StopOrder(batch_id=b, reason=r, issued_ms=t)
        for b, r, t in db.execute(
            "SELECT batch_id, reason, issued_ms FROM batch_stops ORDER BY issued_ms, batch_id"
        )
    ]
