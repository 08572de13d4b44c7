"""Market readers: the chain behind a trace code, a batch with its stock and sales.

A line counts as sold after a stop order when its record's capture time ``ts`` is at or
after the order's issue time (see :mod:`collector.markets.stops`); a batch's balance runs
over its lines in capture order (``ts``, then record and line). Readers need only a
read-only connection: what they read is the projected state (:mod:`collector.markets.schema`)
and the stored records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, cast

from collector.markets import chain
from collector.markets.results import (
    BatchLink,
    BatchSale,
    BatchView,
    Entry,
    EntrySource,
    RecordRef,
    Sale,
    SaleLine,
    Stock,
    StopOrder,
    TraceChain,
    TraceCodeFields,
    Trader,
    UpstreamHop,
    UpstreamSale,
)
from hostlib.db import Db
from wire import tracecode

Found = tuple[int, str, int, int, str]
"""A record a reader found: id, dev, seq, ts, rec."""


class RecordFinder(Protocol):
    """Where records no longer in the hot store are found (the archive:
    :class:`collector.archive.lookup.ArchiveReader`), asked only when the store has none."""

    def find(self, kind: str, field: str, value: str) -> list[Found]: ...


def _records(
    db: Db, sql: str, value: str, older: RecordFinder | None, kind: str, field: str
) -> list[Found]:
    """The store's records for ``sql`` (one parameter); when it has none, ``older``'s."""
    rows: list[Found] = [
        (int(i), str(d), int(s), int(t), str(r)) for i, d, s, t, r in db.execute(sql, (value,))
    ]
    if not rows and older is not None:
        rows = older.find(kind, field, value)
    return rows


def _trader(db: Db, market: str, trader: str, card: str | None) -> Trader:
    """The trader a record names, with what the market's registry says about them."""
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


def _code_fields(code: str) -> TraceCodeFields | None:
    """The fields of a trace code of our structure; None for a code of any other."""
    try:
        fields = tracecode.parse_trace_code(code)
    except ValueError:
        return None
    return TraceCodeFields(
        market=str(fields["market"]),
        date=str(fields["date"]),
        day=str(fields["day"]),
        terminal=cast(int, fields["terminal"]),
        serial=cast(int, fields["serial"]),
    )


def _entries(
    db: Db, batch_id: str, older: RecordFinder | None = None
) -> list[tuple[int, str, int, int, Any]]:
    rows = _records(
        db,
        "SELECT id, dev, seq, ts, rec FROM records "
        "WHERE kind = 'market.entry' AND json_extract(rec, '$.body.batch_id') = ? ORDER BY id",
        batch_id,
        older,
        "market.entry",
        "batch_id",
    )
    return [(int(i), str(d), int(s), int(t), json.loads(r)["body"]) for i, d, s, t, r in rows]


def _entry(db: Db, dev: str, seq: int, ts: int, body: Mapping[str, Any]) -> Entry:
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


def _stock(db: Db, batch_id: str) -> Stock:
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


def stop_order(db: Db, batch_id: str) -> StopOrder | None:
    """The stop-trading order in force for a batch, if any."""
    row = db.execute(
        "SELECT reason, issued_ms FROM batch_stops WHERE batch_id = ?", (batch_id,)
    ).fetchone()
    return None if row is None else StopOrder(batch_id=batch_id, reason=row[0], issued_ms=row[1])


def _upstream(db: Db, batch_id: str, older: RecordFinder | None = None) -> UpstreamSale | None:
    rows = _records(
        db,
        "SELECT id, dev, seq, ts, rec FROM records WHERE kind = 'market.settlement' "
        "AND json_extract(rec, '$.body.tran_id') = ? ORDER BY id LIMIT 1",
        batch_id,
        older,
        "market.settlement",
        "tran_id",
    )
    if not rows:
        return None
    row = rows[0][1:]
    body = json.loads(row[3])["body"]
    return UpstreamSale(
        record=RecordRef(dev=row[0], seq=row[1], ts=row[2]),
        market=body["market"],
        tran_id=body["tran_id"],
        trace_id=body["trace_id"],
        seller=body["seller"],
    )


def _sale_by_id(db: Db, record_id: int) -> UpstreamSale | None:
    row = db.execute("SELECT dev, seq, ts, rec FROM records WHERE id = ?", (record_id,)).fetchone()
    if row is None:
        return None
    body = json.loads(row[3])["body"]
    return UpstreamSale(
        record=RecordRef(dev=str(row[0]), seq=int(row[1]), ts=int(row[2])),
        market=body["market"],
        tran_id=body["tran_id"],
        trace_id=body["trace_id"],
        seller=body["seller"],
    )


def _hops(
    db: Db, entry_id: int, older: RecordFinder | None, depth: int, seen: set[str]
) -> tuple[EntrySource | None, list[UpstreamHop], list[str]]:
    """What an entry names upstream, the hops back from it, and its chain flags."""
    src = chain.source_of(db, entry_id)
    if src is None:
        return None, [], []
    ups = chain.upstream_lines(db, entry_id)
    source = EntrySource(trace_id=src.trace_id, tran_id=src.tran_id, via=src.via, found=bool(ups))
    flags = [f.flag for f in chain.flags(db, None, entry_id=entry_id)]
    hops: list[UpstreamHop] = []
    for up in ups:
        sale = _sale_by_id(db, up.record_id)
        if sale is None:
            continue
        batch = None
        if up.batch_id is not None and depth < chain.MAX_DEPTH and up.batch_id not in seen:
            seen.add(up.batch_id)
            batch = _batch_link(db, up.batch_id, sale.market, older, depth + 1, seen)
        hops.append(UpstreamHop(sale=sale, line=up.line, batch=batch))
    return source, hops, flags


def _batch_link(
    db: Db,
    batch_id: str,
    market: str | None,
    older: RecordFinder | None = None,
    depth: int = 0,
    seen: set[str] | None = None,
) -> BatchLink:
    seen = {batch_id} if seen is None else seen
    entries = _entries(db, batch_id, older)
    # The entry in the sale's own market when there is one, else the first stored.
    chosen = next((e for e in entries if e[4].get("market") == market), None)
    if chosen is None and entries:
        chosen = entries[0]
    entry = None if chosen is None else _entry(db, chosen[1], chosen[2], chosen[3], chosen[4])
    chosen_id = None if chosen is None else chosen[0]
    others = [RecordRef(dev=d, seq=s, ts=t) for i, d, s, t, _ in entries if i != chosen_id]
    source, hops, flags = (
        (None, [], []) if chosen_id is None else _hops(db, chosen_id, older, depth, seen)
    )
    return BatchLink(
        batch_id=batch_id,
        entry=entry,
        other_entries=others,
        stock=_stock(db, batch_id),
        stop=stop_order(db, batch_id),
        upstream=_upstream(db, batch_id, older),
        source=source,
        hops=hops,
        chain_flags=flags,
    )


def _walk(link: BatchLink) -> list[BatchLink]:
    """``link`` and every batch behind it, nearest first along each hop."""
    out = [link]
    for h in link.hops:
        if h.batch is not None:
            out.extend(_walk(h.batch))
    return out


def batch_link(db: Db, batch_id: str, market: str | None = None) -> BatchLink:
    """A batch as a sale line links it: entry (the one in ``market`` when there is one, else
    the first stored), stock, stop order, upstream sale."""
    return _batch_link(db, batch_id, market)


def _balance_after(db: Db, batch_id: str, ts: int, record_id: int, line: int, stock: Stock) -> bool:
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


def trace_chain(db: Db, code: str, older: RecordFinder | None = None) -> TraceChain | None:
    """The chain sale → batch(es) → origin of a trace code; None if no settlement has it.

    When several settlements carry the code (a terminal numbering fault), the first stored is
    the sale and the others are listed in ``reused_by`` with the flag ``trace_code_reused``.
    ``older``: where the sale, a batch's entries or its upstream sale are looked for when
    the store has none (the archive); derived state (stock, stop flags) is the store's.
    """
    rows = _records(
        db,
        "SELECT id, dev, seq, ts, rec FROM records WHERE kind = 'market.settlement' "
        "AND json_extract(rec, '$.body.trace_id') = ? ORDER BY id",
        code,
        older,
        "market.settlement",
        "trace_id",
    )
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
        link = _batch_link(db, str(ln["batch_id"]), market, older)
        overdrew = _balance_after(db, link.batch_id, ts, rid, i, link.stock)
        after_stop = flagged.get(i, False)
        if link.entry is None:
            flags.append("unknown_batch")
        for behind in _walk(link):  # this market's batch, then every hop back
            if behind.entry is not None:
                origins.append(behind.entry.origin)
            flags.extend(behind.chain_flags)
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
        parsed=_code_fields(code),
        sale=sale,
        origins=list(dict.fromkeys(origins)),
        flags=list(dict.fromkeys(flags)),
        reused_by=reused,
    )


def batch_known(db: Db, batch_id: str) -> bool:
    """An entry or a sale names this batch id."""
    row = db.execute("SELECT 1 FROM market_batches WHERE batch_id = ?", (batch_id,)).fetchone()
    return row is not None


def batch_markets(db: Db, batch_id: str) -> frozenset[str]:
    """The markets where ``batch_id`` entered or was sold (what a market operator's scope is
    checked against)."""
    out = {
        str(r[0])
        for r in db.execute(
            "SELECT json_extract(rec, '$.body.market') FROM records "
            "WHERE kind = 'market.entry' AND json_extract(rec, '$.body.batch_id') = ?",
            (batch_id,),
        )
        if r[0] is not None
    }
    out.update(
        str(r[0])
        for r in db.execute(
            "SELECT DISTINCT json_extract(r.rec, '$.body.market') FROM market_lines AS l "
            "JOIN records AS r ON r.id = l.record_id WHERE l.batch_id = ?",
            (batch_id,),
        )
        if r[0] is not None
    )
    return frozenset(out)


def batch_view(db: Db, batch_id: str, limit: int = 1000) -> BatchView | None:
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
        source=link.source,
        hops=link.hops,
        chain_flags=link.chain_flags,
    )
