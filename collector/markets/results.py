"""What the market readers and the stop order return: plain, frozen values.

The query API describes each of them to its clients with a response model of the same name
and the same fields (:mod:`collector.api_models`). Money in fen, weights in grams, times in
ms since the epoch (UTC): integers throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class RecordRef:
    dev: str
    seq: int
    ts: int


@dataclass(frozen=True, kw_only=True)
class Trader:
    """A trader as a record names them, and what the market's registry says about them."""

    trader: str
    registered: bool
    name: str | None = None
    stall: str | None = None
    card: str | None = None  # the IC card UID read at the sale or entry
    card_matches: bool | None = None  # None: no card read, or none on file


@dataclass(frozen=True, kw_only=True)
class Entry:
    """The entry registration (进场登记) of a batch."""

    record: RecordRef
    date: str  # YYYY-MM-DD, China Standard Time
    market: str
    seller: Trader
    batch_id: str
    cert_no: str
    origin: str
    goods_code: str
    goods_name: str
    quantity_g: int
    pieces: int | None = None


@dataclass(frozen=True, kw_only=True)
class StopOrder:
    batch_id: str
    reason: str
    issued_ms: int


@dataclass(frozen=True, kw_only=True)
class Stock:
    quantity_g: int | None  # None: no entry yet
    pieces: int | None
    sold_g: int
    sold_pieces: int
    remaining_g: int | None
    remaining_pieces: int | None
    overdrawn: bool


@dataclass(frozen=True, kw_only=True)
class UpstreamSale:
    """The sale upstream whose voucher number this batch was registered under."""

    record: RecordRef
    market: str
    tran_id: str
    trace_id: str
    seller: str


@dataclass(frozen=True, kw_only=True)
class EntrySource:
    """The upstream sale an entry names (卡单同行), as read off the wholesale receipt."""

    trace_id: str | None
    tran_id: str | None
    via: str | None  # qr, barcode, keyed
    found: bool  # linked to a line of that sale with the entry's goods


@dataclass(frozen=True, kw_only=True)
class UpstreamHop:
    """One hop back: the upstream sale line the entry's goods were bought in, and the batch
    that line sold from (its entry, and its own hops further back)."""

    sale: UpstreamSale
    line: int
    batch: BatchLink | None  # None: the walk's depth bound, or a batch seen already


@dataclass(frozen=True, kw_only=True)
class BatchLink:
    batch_id: str
    entry: Entry | None
    other_entries: list[RecordRef]
    stock: Stock
    stop: StopOrder | None
    upstream: UpstreamSale | None = None
    source: EntrySource | None = None  # what the entry names upstream
    hops: list[UpstreamHop] = field(default_factory=list)
    chain_flags: list[str] = field(default_factory=list)  # source_unknown, ...


@dataclass(frozen=True, kw_only=True)
class SaleLine:
    line: int
    batch_id: str
    goods_code: str
    goods_name: str
    mode: str
    weight_g: int | None
    price_fen_per_kg: int | None
    pieces: int | None
    price_fen_per_piece: int | None
    amount_fen: int
    sold_after_stop: bool
    overdrew_batch: bool
    batch: BatchLink


@dataclass(frozen=True, kw_only=True)
class Sale:
    record: RecordRef
    market: str
    terminal: str
    scale_sw: str
    tran_id: str
    trace_id: str
    seller: Trader
    buyer: str | None
    pay: str | None
    total_fen: int
    lines: list[SaleLine]


@dataclass(frozen=True, kw_only=True)
class TraceCodeFields:
    market: str
    date: str  # yymmdd
    day: str  # YYYY-MM-DD
    terminal: int
    serial: int


@dataclass(frozen=True, kw_only=True)
class TraceChain:
    """Sale → batch(es) → origin for one trace code."""

    trace_code: str
    parsed: TraceCodeFields | None  # None: a code of another structure
    sale: Sale
    origins: list[str]
    flags: list[str]
    reused_by: list[RecordRef]


@dataclass(frozen=True, kw_only=True)
class BatchSale:
    record: RecordRef
    line: int
    trace_id: str | None
    weight_g: int
    pieces: int
    balance_g: int | None  # None: no entry
    balance_pieces: int | None
    overdrawn: bool
    sold_after_stop: bool


@dataclass(frozen=True, kw_only=True)
class BatchView:
    batch_id: str
    entry: Entry | None
    other_entries: list[RecordRef]
    stock: Stock
    stop: StopOrder | None
    sold_after_stop: int
    sales_total: int
    sales: list[BatchSale]
    source: EntrySource | None = None  # what the entry names upstream (卡单同行)
    hops: list[UpstreamHop] = field(default_factory=list)
    chain_flags: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class StopResult:
    stop: StopOrder
    issued: bool  # False: the batch was already stopped (the first order stands)
    flagged: int  # settlements already stored that this order flagged
