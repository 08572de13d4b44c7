"""A batch's recall reach (销售范围及影响评估): every sale of it, who bought where known,
how much, on which terminals, over what time, and what was sold after the stop order.

API (stable; the console builds on it)::

    recall(db, batch_id, *, market_ok=None, limit=None) -> Recall | None
    recall_csv(reach, *, lang="zh-en", utc_offset_min=480) -> str   # UTF-8 text, BOM first

The reach follows the goods across markets (卡单同行): ``downstream`` lists every batch
entered from its sales (hop 1), from theirs (hop 2), and so on, each with its sales; the CSV
lists the batch's own lines, then theirs, with the batch and hop of each.

``db``: any connection to a store (read-only is fine). ``market_ok``: which markets' sales the
caller may see (a principal's scope, ``lambda m: p.may_market(db, m)``); None: all. A batch
none of whose sales or entry the caller may see is None, like an unknown one. ``limit``: keep
the first ``limit`` lines in ``lines`` (totals always count every line).

The lines come from ``market_lines`` through its index ``market_lines_batch`` (batch, capture
time), joined to their settlement records by row id: the cost grows with the batch's sales,
not with the store. A line is sold after the stop when its capture time is at or after the
order's (the flag the projection keeps, :mod:`collector.markets.stops`). Buyer fields are
personal data: for the regulator's listener only, never the public one.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collector import amounts
from collector.markets import chain
from collector.markets.queries import _batch_link, batch_known
from collector.markets.results import Entry, Stock, StopOrder
from hostlib.db import POSTGRES, Db, dialect

# One JSON parse per line in the database, not a whole settlement parsed in Python: the
# sale's fields as one array, and the line itself. SQLite reads both with json_extract;
# PostgreSQL (whose json_extract takes one path, no array subscripts) with jsonb operators.
LINES_SQL = (
    "SELECT l.record_id, l.line, l.ts, l.after_stop, r.dev, r.seq, "
    "json_extract(r.rec, '$.body.market', '$.body.terminal', '$.body.tran_id', "
    "'$.body.trace_id', '$.body.seller', '$.body.buyer', '$.body.buyer_card', '$.body.pay'), "
    "json_extract(r.rec, '$.body.lines[' || l.line || ']') "
    "FROM market_lines AS l JOIN records AS r ON r.id = l.record_id "
    "WHERE l.batch_id = ? ORDER BY l.ts, l.record_id, l.line"
)
LINES_SQL_PG = (
    "SELECT l.record_id, l.line, l.ts, l.after_stop, r.dev, r.seq, "
    "jsonb_build_array(b.v -> 'market', b.v -> 'terminal', b.v -> 'tran_id', "
    "b.v -> 'trace_id', b.v -> 'seller', b.v -> 'buyer', b.v -> 'buyer_card', b.v -> 'pay')::text, "
    "(b.v -> 'lines' -> l.line)::text "
    "FROM market_lines AS l JOIN records AS r ON r.id = l.record_id "
    "CROSS JOIN LATERAL (SELECT (r.rec::jsonb) -> 'body' AS v) AS b "
    "WHERE l.batch_id = ? ORDER BY l.ts, l.record_id, l.line"
)


def lines_sql(db: Db) -> str:
    """The query of a batch's lines for ``db``'s dialect (one parameter: the batch id)."""
    return LINES_SQL_PG if dialect(db) == POSTGRES else LINES_SQL


@dataclass(slots=True, kw_only=True)
class RecallLine:
    ts: int  # capture time of the sale, ms since the epoch
    trace_id: str
    tran_id: str
    market: str
    terminal: str
    dev: str
    seq: int
    line: int  # the line's index in its settlement
    seller: str
    seller_name: str | None  # from the market's trader registry
    buyer: str | None
    buyer_card: str | None
    goods_code: str
    goods_name: str
    mode: str  # weighed / counted
    weight_g: int | None
    pieces: int | None
    amount_fen: int
    pay: str | None
    sold_after_stop: bool
    batch_id: str = ""  # the batch the line sold from (the recalled one, or one downstream)
    hop: int = 0  # 0: the recalled batch; 1: a batch entered from its sales; ...


@dataclass(frozen=True, kw_only=True)
class RecallTerminal:
    market: str
    terminal: str
    dev: str
    lines: int
    first_ts: int
    last_ts: int


@dataclass(frozen=True, kw_only=True)
class RecallTotals:
    lines: int
    sales: int  # settlements (receipts) with at least one line of the batch
    weight_g: int
    pieces: int
    amount_fen: int
    buyers_known: int  # distinct buyers (id or card) named on the sales
    lines_with_buyer: int
    after_stop_lines: int
    after_stop_weight_g: int
    after_stop_pieces: int
    after_stop_amount_fen: int


@dataclass(frozen=True, kw_only=True)
class Recall:
    batch_id: str
    entry: Entry | None
    stock: Stock
    stop: StopOrder | None
    first_ts: int | None
    last_ts: int | None
    markets: list[str]
    terminals: list[RecallTerminal]
    totals: RecallTotals
    lines: list[RecallLine]  # capture order, the first ``limit``
    truncated: bool
    downstream: list[RecallHop] = field(default_factory=list)  # every hop forward


@dataclass(frozen=True, kw_only=True)
class RecallHop:
    """A batch entered in another market from goods of the recalled batch (卡单同行), and
    its sales: the recall reaches them too."""

    batch_id: str
    hop: int  # 1: bought in a sale of the recalled batch; 2: one market further; ...
    from_batch: str
    from_trace_id: str | None  # the upstream sale's trace code the entry named
    entry: Entry | None
    stop: StopOrder | None
    markets: list[str]
    totals: RecallTotals
    lines: list[RecallLine]  # capture order, the first ``limit``


def recall(
    db: Db,
    batch_id: str,
    *,
    market_ok: Callable[[str], bool] | None = None,
    limit: int | None = None,
    follow: bool = True,
) -> Recall | None:
    """The reach of ``batch_id``; None when unknown or outside ``market_ok``. ``follow``:
    with every batch entered downstream from its sales, hop by hop
    (:func:`collector.markets.chain.downstream`), in ``downstream``."""
    if not batch_known(db, batch_id):
        return None
    view = _batch_link(db, batch_id, None)  # entry, stock, stop order
    names = dict(((m, t), n) for m, t, n in db.execute("SELECT market, trader, name FROM traders"))
    lines = _lines(db, batch_id, names, market_ok, 0)
    entry_ok = view.entry is not None and (market_ok is None or market_ok(view.entry.market))
    hops: list[RecallHop] = []
    for d in chain.downstream(db, batch_id) if follow else []:
        sub = _batch_link(db, d.batch_id, None)
        sub_lines = _lines(db, d.batch_id, names, market_ok, d.hop)
        sub_entry = sub.entry
        if sub_entry is not None and market_ok is not None and not market_ok(sub_entry.market):
            sub_entry = None
        if market_ok is not None and not sub_lines and sub_entry is None:
            continue
        hops.append(
            RecallHop(
                batch_id=d.batch_id,
                hop=d.hop,
                from_batch=d.from_batch,
                from_trace_id=d.from_trace_id,
                entry=sub_entry,
                stop=sub.stop,
                markets=sorted({x.market for x in sub_lines}),
                totals=_totals(sub_lines),
                lines=sub_lines if limit is None else sub_lines[:limit],
            )
        )
    if market_ok is not None and not lines and not entry_ok and not hops:
        return None
    terms: dict[tuple[str, str, str], list[int]] = {}
    for x in lines:
        terms.setdefault((x.market, x.terminal, x.dev), []).append(x.ts)
    return Recall(
        batch_id=batch_id,
        entry=view.entry if entry_ok else None,
        stock=view.stock,
        stop=view.stop,
        first_ts=lines[0].ts if lines else None,
        last_ts=lines[-1].ts if lines else None,
        markets=sorted({x.market for x in lines}),
        terminals=[
            RecallTerminal(
                market=m, terminal=t, dev=d, lines=len(ts), first_ts=ts[0], last_ts=ts[-1]
            )
            for (m, t, d), ts in sorted(terms.items())
        ],
        totals=_totals(lines),
        lines=lines if limit is None else lines[:limit],
        truncated=limit is not None and len(lines) > limit,
        downstream=hops,
    )


def _lines(
    db: Db,
    batch_id: str,
    names: dict[tuple[str, str], str],
    market_ok: Callable[[str], bool] | None,
    hop: int,
) -> list[RecallLine]:
    lines: list[RecallLine] = []
    for _rid, idx, ts, after, dev, seq, sale, line in db.execute(lines_sql(db), (batch_id,)):
        market, terminal, tran_id, trace_id, seller, buyer, buyer_card, pay = json.loads(sale)
        market = str(market)
        if market_ok is not None and not market_ok(market):
            continue
        ln = json.loads(line)
        seller = str(seller)
        lines.append(
            RecallLine(
                ts=int(ts),
                trace_id=str(trace_id),
                tran_id=str(tran_id),
                market=market,
                terminal=str(terminal),
                dev=str(dev),
                seq=int(seq),
                line=int(idx),
                seller=seller,
                seller_name=names.get((market, seller)),
                buyer=buyer,
                buyer_card=buyer_card,
                goods_code=str(ln["goods_code"]),
                goods_name=str(ln["goods_name"]),
                mode=str(ln["mode"]),
                weight_g=ln.get("weight_g"),
                pieces=ln.get("pieces") if ln["mode"] == "counted" else None,
                amount_fen=int(ln["amount_fen"]),
                pay=pay,
                sold_after_stop=bool(after),
                batch_id=batch_id,
                hop=hop,
            )
        )
    return lines


def _totals(lines: list[RecallLine]) -> RecallTotals:
    after = [x for x in lines if x.sold_after_stop]
    buyers = {x.buyer or f"card:{x.buyer_card}" for x in lines if x.buyer or x.buyer_card}
    return RecallTotals(
        lines=len(lines),
        sales=len({(x.dev, x.seq) for x in lines}),
        weight_g=sum(x.weight_g or 0 for x in lines),
        pieces=sum(x.pieces or 0 for x in lines),
        amount_fen=sum(x.amount_fen for x in lines),
        buyers_known=len(buyers),
        lines_with_buyer=sum(1 for x in lines if x.buyer or x.buyer_card),
        after_stop_lines=len(after),
        after_stop_weight_g=sum(x.weight_g or 0 for x in after),
        after_stop_pieces=sum(x.pieces or 0 for x in after),
        after_stop_amount_fen=sum(x.amount_fen for x in after),
    )


# ---------------------------------------------------------------------------------------------
# CSV

COLUMNS: list[tuple[str, str, str]] = [
    ("sale_time", "销售时间", "Sale time"),
    ("trace_code", "追溯码", "Trace code"),
    ("tran_id", "交易凭证号", "Transaction id"),
    ("market", "市场", "Market"),
    ("terminal", "交易终端", "Terminal"),
    ("device", "设备", "Device"),
    ("seq", "记录序号", "Record seq"),
    ("seller", "卖方", "Seller"),
    ("seller_name", "卖方姓名", "Seller name"),
    ("buyer", "买方", "Buyer"),
    ("buyer_card", "买方卡号", "Buyer card"),
    ("goods_code", "商品编码", "Goods code"),
    ("goods_name", "商品名称", "Goods"),
    ("mode", "计量方式", "Mode"),
    ("weight_kg", "重量(千克)", "Weight (kg)"),
    ("pieces", "件数", "Pieces"),
    ("amount_yuan", "金额(元)", "Amount (yuan)"),
    ("pay", "支付方式", "Payment"),
    ("after_stop", "中止交易后售出", "Sold after stop"),
    ("batch", "批次号", "Batch"),
    ("hop", "流通环节", "Hop"),
]
LANGS = ("zh-en", "zh", "en")
_MODE = {"weighed": ("计重", "weighed"), "counted": ("计件", "counted")}
_YES_NO = {True: ("是", "yes"), False: ("否", "no")}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    """A text cell; one Excel would take for a formula is quoted with a leading '."""
    s = "" if value is None else value
    return "'" + s if s.startswith(_FORMULA) else s


def _header(lang: str) -> list[str]:
    if lang == "zh":
        return [zh for _, zh, _ in COLUMNS]
    if lang == "en":
        return [en for _, _, en in COLUMNS]
    return [f"{zh} {en}" for _, zh, en in COLUMNS]


def _word(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "en" else pair[0]


def recall_csv(reach: Recall, *, lang: str = "zh-en", utc_offset_min: int = 480) -> str:
    """Every line of ``reach`` as CSV for Excel: a byte-order mark first (so Excel reads
    UTF-8), a header row in Chinese and English (``lang`` ``zh-en``), Chinese (``zh``) or
    English (``en``), times as local time at ``utc_offset_min`` (China: 480), weights in kg
    and money in yuan with their exact decimals, CRLF line ends."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {', '.join(LANGS)}")
    offset_s = utc_offset_min * 60
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(_header(lang))
    every = list(reach.lines)
    for h in reach.downstream:
        every.extend(h.lines)
    for x in every:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(x.ts // 1000 + offset_s))
        w.writerow(
            [
                when,
                x.trace_id,
                x.tran_id,
                _text(x.market),
                _text(x.terminal),
                _text(x.dev),
                x.seq,
                _text(x.seller),
                _text(x.seller_name),
                _text(x.buyer),
                _text(x.buyer_card),
                _text(x.goods_code),
                _text(x.goods_name),
                _word(_MODE.get(x.mode, (x.mode, x.mode)), lang),
                amounts.kg(x.weight_g),
                "" if x.pieces is None else x.pieces,
                amounts.yuan(x.amount_fen),
                _text(x.pay),
                _word(_YES_NO[x.sold_after_stop], lang),
                _text(x.batch_id),
                x.hop,
            ]
        )
    return "\ufeff" + out.getvalue()
