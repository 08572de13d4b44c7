"""Response and request models of the collector's market routes (:mod:`collector.api_markets`).

They describe to the API's clients (OpenAPI) the values the market readers return
(:mod:`collector.markets.results`): same names, same fields, read from those values'
attributes. ``ErrorOut`` is every route's error body.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ErrorOut(BaseModel):
    detail: str


class _Out(BaseModel):
    """A response model filled from a reader's result (a dataclass) by its attributes."""

    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------------------------------------
# What the readers return


class Trader(_Out):
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


class RecordRef(_Out):
    dev: str
    seq: int
    ts: int = Field(description="capture time, ms since the epoch (UTC)")


class Entry(_Out):
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


class StopOrder(_Out):
    batch_id: str
    reason: str
    issued_ms: int = Field(description="when the order was issued, ms since the epoch (UTC)")


class Stock(_Out):
    quantity_g: int | None = Field(description="registered on entry (null: no entry yet)")
    pieces: int | None = Field(description="registered pieces, for counted goods")
    sold_g: int
    sold_pieces: int
    remaining_g: int | None
    remaining_pieces: int | None
    overdrawn: bool = Field(description="more sold than registered: recorded and flagged")


class UpstreamSale(_Out):
    """The sale upstream whose voucher number this batch was registered under."""

    record: RecordRef
    market: str
    tran_id: str
    trace_id: str
    seller: str


class EntrySource(_Out):
    """The upstream sale an entry names (卡单同行), as read off the wholesale receipt."""

    trace_id: str | None = Field(description="the upstream receipt's trace code")
    tran_id: str | None = Field(description="the upstream sale's voucher number")
    via: str | None = Field(description="qr, barcode or keyed")
    found: bool = Field(description="linked to a line of that sale with the entry's goods")


class UpstreamHop(_Out):
    """One hop back: the upstream sale line the goods were bought in, and its batch."""

    sale: UpstreamSale
    line: int = Field(description="the line's index in the upstream sale")
    batch: BatchLink | None = Field(
        description="the batch the line sold from, with its own hops further back (null: the "
        "walk's depth bound, or a batch seen already)"
    )


class BatchLink(_Out):
    batch_id: str
    entry: Entry | None = Field(description="null: no entry for this batch at the collector")
    other_entries: list[RecordRef] = Field(description="further entries under the same id")
    stock: Stock
    stop: StopOrder | None
    upstream: UpstreamSale | None = None
    source: EntrySource | None = Field(
        default=None, description="the upstream sale the entry names (null: none named)"
    )
    hops: list[UpstreamHop] = Field(
        default_factory=list, description="every hop back to the origin (bounded depth)"
    )
    chain_flags: list[str] = Field(
        default_factory=list, description="source_unknown, source_over_quantity"
    )


class SaleLine(_Out):
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


class Sale(_Out):
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


class TraceCodeFields(_Out):
    market: str
    date: str = Field(description="yymmdd")
    day: str = Field(description="YYYY-MM-DD")
    terminal: int
    serial: int


class TraceChain(_Out):
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


class BatchSale(_Out):
    record: RecordRef
    line: int
    trace_id: str | None
    weight_g: int
    pieces: int
    balance_g: int | None = Field(description="grams left after this line (null: no entry)")
    balance_pieces: int | None
    overdrawn: bool = Field(description="the balance was below zero after this line")
    sold_after_stop: bool


class BatchView(_Out):
    batch_id: str
    entry: Entry | None
    other_entries: list[RecordRef]
    stock: Stock
    stop: StopOrder | None
    sold_after_stop: int = Field(description="lines sold after the stop order")
    sales_total: int
    sales: list[BatchSale] = Field(description="lines drawn from the batch, in capture order")
    source: EntrySource | None = Field(
        default=None, description="the upstream sale the entry names (null: none named)"
    )
    hops: list[UpstreamHop] = Field(
        default_factory=list, description="every hop back to the origin (bounded depth)"
    )
    chain_flags: list[str] = Field(
        default_factory=list, description="source_unknown, source_over_quantity"
    )


# ---------------------------------------------------------------------------------------------
# Stop orders


class StopRequest(BaseModel):
    reason: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",  # not blank: the schema says what the validator below enforces
        description="why trading stops (中止交易), or why a stop is lifted",
    )

    @field_validator("reason")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("reason must not be blank")
        try:
            v.encode("utf-8")
        except UnicodeError as exc:
            raise ValueError("reason must be valid Unicode text") from exc
        return v


class StopOut(BaseModel):
    stop: StopOrder
    issued: bool = Field(description="false: the batch was already stopped; the first order stands")
    flagged: int = Field(description="settlements already stored that this order flagged")
    relayed: bool = Field(description="the stop was handed to the relay to the terminals")


class LiftOut(BaseModel):
    lifted: StopOrder = Field(description="the stop order no longer in force")
    reason: str = Field(description="why it was lifted")
    relayed: bool = Field(
        False, description="the new stop list was published to the sites' agents at once"
    )


class ChainFlag(_Out):
    """A flag on the chain across markets (卡单同行): the goods are there, the paper is not."""

    flag: str = Field(description="source_unknown or source_over_quantity")
    batch_id: str = Field(description="the downstream batch whose entry named the source")
    entry_id: int
    trace_id: str | None = Field(description="the upstream trace code the entry named")
    tran_id: str | None = Field(description="the upstream voucher the entry named")
    detail: str
