"""What the public may see of a sale or a batch: built from the store, with no personal data.

The public listener (:mod:`collector.public`) answers only with these values, as JSON or as
the shopper's page (:mod:`collector.shopper_page`), so what leaves it is decided here, in
one place: product, market and trader names and codes, stall, times, weights, prices,
batch, origin, certificate number, stop orders, the complaint lines, and every hop back to
the origin (卡单同行: the upstream market, its receipt's trace code, date and seller, and the
batch it sold from), never the upstream sale's buyer. Never a card UID, a
buyer id, a payment method, a terminal or device id, a record's key or sequence number.

Names come from the registries: traders from the market's trader registry
(:mod:`collector.markets.traders`), markets and their complaint phone from the sites
registry (:mod:`collector.sites`). A code without a registry entry is shown as the code.

GS1 Digital Link (``/01/{gtin}/10/{lot}``): the lot is the market's entry batch code
(``market.entry`` ``batch_id``, 20 characters, within AI (10)'s 20), and the GTIN must be the
goods code that entry registered the goods under, read as a GTIN (8, 12, 13 or 14 digits
with a valid GS1 check digit, compared padded to 14). Goods registered under a market's own
goods code (not a GTIN) have no Digital Link. A serial (AI 21) that is the trace code of a
sale of that batch names the sale.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from collector import markets, sites
from hostlib.db import Db
from wire import tracecode
from wire.checkdigit import all_digits, verify_check_digit

NATIONAL_COMPLAINT_LINE = "12315"  # 全国12315平台: market supervision complaints


@dataclass(frozen=True, kw_only=True)
class Place:
    """A market: its code, and its name and complaint phone when the sites registry has them."""

    code: str
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublicTrader:
    code: str
    name: str | None = None
    stall: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublicStop:
    reason: str
    since: str  # local time (China Standard Time) YYYY-MM-DD hh:mm:ss
    since_ms: int


@dataclass(frozen=True, kw_only=True)
class PublicUpstream:
    """The sale upstream (wholesale) this batch was registered under (卡单同行)."""

    market: Place
    trace_code: str


@dataclass(frozen=True, kw_only=True)
class PublicBatch:
    batch_id: str
    registered: bool  # an entry registration (进场登记) was found
    goods_code: str | None = None
    goods_name: str | None = None
    market: Place | None = None
    trader: PublicTrader | None = None
    entry_date: str | None = None  # YYYY-MM-DD
    origin: str | None = None
    cert_no: str | None = None
    stop: PublicStop | None = None
    upstream: PublicUpstream | None = None
    hops: list[PublicHop] = field(default_factory=list)  # back to the origin (卡单同行)


@dataclass(frozen=True, kw_only=True)
class PublicHop:
    """One hop back (卡单同行): the upstream sale the goods were bought in (its market, trace
    code, date, seller) and the batch it sold from, with that batch's own hops. The buyer of
    the upstream sale is not shown."""

    market: Place
    trace_code: str
    date: str  # YYYY-MM-DD, local
    seller: PublicTrader
    batch: PublicBatch | None


@dataclass(frozen=True, kw_only=True)
class PublicLine:
    goods_code: str
    goods_name: str
    mode: str  # "weighed" or "counted"
    weight_g: int | None
    price_fen_per_kg: int | None
    pieces: int | None
    price_fen_per_piece: int | None
    amount_fen: int
    sold_after_stop: bool
    batch: PublicBatch


@dataclass(frozen=True, kw_only=True)
class Complaint:
    number: str
    market: str | None = None  # None: the national line


@dataclass(frozen=True, kw_only=True)
class PublicTrace:
    """What the receipt shows and what stands behind it."""

    trace_code: str
    tran_id: str
    time: str  # local time of the sale, as the receipt prints it
    time_ms: int
    market: Place
    seller: PublicTrader
    total_fen: int
    lines: list[PublicLine]
    stopped: bool  # a batch of this sale is stopped now, or was sold after a stop
    warnings: list[str]  # the trace chain's flags (sold_after_stop, batch_overdrawn, ...)
    complaints: list[Complaint] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class PublicBatchAnswer:
    """A Digital Link resolved to a batch."""

    gtin: str
    lot: str
    batch: PublicBatch
    complaints: list[Complaint]


class _Names:
    """Registry look-ups of one answer, each asked once."""

    def __init__(self, db: Db) -> None:
        self.db = db
        self.places: dict[str, Place] = {}

    def place(self, market: str) -> Place:
        got = self.places.get(market)
        if got is None:
            try:
                info = sites.by_market(self.db, market)
            except sqlite3.OperationalError:  # a store from before the sites registry
                info = None
            got = (
                Place(code=market)
                if info is None
                else Place(code=market, name=info.name or None, phone=info.phone or None)
            )
            self.places[market] = got
        return got

    def trader(self, market: str, trader: str) -> PublicTrader:
        """A seller as the market's registry names them (code, name, stall)."""
        row = self.db.execute(
            "SELECT name, stall FROM traders WHERE market = ? AND trader = ?", (market, trader)
        ).fetchone()
        return (
            PublicTrader(code=trader)
            if row is None
            else PublicTrader(code=trader, name=row[0], stall=row[1])
        )


def _trader(t: markets.Trader) -> PublicTrader:
    return PublicTrader(code=t.trader, name=t.name, stall=t.stall)


def _stop(order: markets.StopOrder | None) -> PublicStop | None:
    if order is None:
        return None
    return PublicStop(
        reason=order.reason,
        since=tracecode.local_datetime(order.issued_ms),
        since_ms=order.issued_ms,
    )


def _batch(names: _Names, link: markets.BatchLink) -> PublicBatch:
    up = link.upstream
    upstream = (
        None
        if up is None
        else PublicUpstream(market=names.place(up.market), trace_code=up.trace_id)
    )
    hops = [
        PublicHop(
            market=names.place(h.sale.market),
            trace_code=h.sale.trace_id,
            date=tracecode.local_day(h.sale.record.ts),
            seller=names.trader(h.sale.market, h.sale.seller),
            batch=None if h.batch is None else _batch(names, h.batch),
        )
        for h in link.hops
    ]
    e = link.entry
    if e is None:
        return PublicBatch(
            batch_id=link.batch_id,
            registered=False,
            stop=_stop(link.stop),
            upstream=upstream,
            hops=hops,
        )
    return PublicBatch(
        batch_id=link.batch_id,
        registered=True,
        goods_code=e.goods_code,
        goods_name=e.goods_name,
        market=names.place(e.market),
        trader=_trader(e.seller),
        entry_date=e.date,
        origin=e.origin,
        cert_no=e.cert_no,
        stop=_stop(link.stop),
        upstream=upstream,
        hops=hops,
    )


def complaints(market: Place | None) -> list[Complaint]:
    """12315 always; the market's own line when the sites registry has one."""
    out = [Complaint(number=NATIONAL_COMPLAINT_LINE)]
    if market is not None and market.phone:
        out.append(Complaint(number=market.phone, market=market.name or market.code))
    return out


def trace_view(db: Db, code: str) -> PublicTrace | None:
    """The public view of the sale with trace code ``code``; None if no sale has it."""
    chain = markets.trace_chain(db, code)
    if chain is None:
        return None
    names = _Names(db)
    sale = chain.sale
    lines = [
        PublicLine(
            goods_code=ln.goods_code,
            goods_name=ln.goods_name,
            mode=ln.mode,
            weight_g=ln.weight_g,
            price_fen_per_kg=ln.price_fen_per_kg,
            pieces=ln.pieces,
            price_fen_per_piece=ln.price_fen_per_piece,
            amount_fen=ln.amount_fen,
            sold_after_stop=ln.sold_after_stop,
            batch=_batch(names, ln.batch),
        )
        for ln in sale.lines
    ]
    market = names.place(sale.market)
    return PublicTrace(
        trace_code=chain.trace_code,
        tran_id=sale.tran_id,
        time=tracecode.local_datetime(sale.record.ts),
        time_ms=sale.record.ts,
        market=market,
        seller=_trader(sale.seller),
        total_fen=sale.total_fen,
        lines=lines,
        stopped=any(ln.sold_after_stop or ln.batch.stop is not None for ln in lines),
        warnings=list(chain.flags),
        complaints=complaints(market),
    )


def gtin14(code: str) -> str | None:
    """``code`` as a GTIN-14 (GTIN-8, -12, -13 padded with zeros), or None if it is not a
    GTIN (wrong length, not digits, or a wrong GS1 check digit)."""
    if len(code) not in (8, 12, 13, 14) or not all_digits(code) or not verify_check_digit(code):
        return None
    return code.rjust(14, "0")


def batch_by_link(db: Db, gtin: str, lot: str) -> PublicBatchAnswer | None:
    """The batch a Digital Link ``/01/{gtin}/10/{lot}`` names (``gtin`` a valid GTIN-14), or
    None when no entry registered goods of that GTIN under that batch code."""
    link = markets.batch_link(db, lot)
    if link.entry is None or gtin14(link.entry.goods_code) != gtin:
        return None
    batch = _batch(_Names(db), link)
    return PublicBatchAnswer(gtin=gtin, lot=lot, batch=batch, complaints=complaints(batch.market))


def sale_of_batch(db: Db, code: str, gtin: str, lot: str) -> PublicTrace | None:
    """The sale with trace code ``code`` if one of its lines sold goods of GTIN ``gtin`` from
    batch ``lot``; else None."""
    if not tracecode.valid(code):
        return None
    view = trace_view(db, code)
    if view is None:
        return None
    for ln in view.lines:
        if ln.batch.batch_id == lot and gtin14(ln.goods_code) == gtin:
            return view
    return None
