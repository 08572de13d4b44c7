"""Markets at the collector: a market day through a real store, then the query API over it.

Records are made and signed like a terminal makes them (bodies validated against the
schemas), committed through the store's ``commit`` as the collector does, and the batch
stock, stop orders, alarms and trace chains read back from the same store: the SQLite file
and PostgreSQL (tests/stores.py), the same day on each.

SQLite only: a store whose market schema came after its records (the backfill of
``markets.ensure_schema``; PostgreSQL has its schema from the first migration).
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import subprocess
import sys
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import api_models, markets
from collector.api import make_app
from collector.verify import Good
from hostlib.db import Db, PgDb
from simulators.records import make_body
from tests.stores import KINDS, StoreUnderTest, store_of
from wire.canonical import canonical
from wire.checkdigit import with_check_digit
from wire.envelope import make_record
from wire.schemas import default_validator
from wire.tracecode import make_trace_code, parse_trace_code, valid

SITE = "MKT01"
KEY = bytes(range(32))
MARKET = "M330106001"
MARKET_NO = "100001"  # the market's number in trace codes and batch codes
REGION = "330106"
DATE = "251124"
# 2025-11-24 00:00 China Standard Time, in ms since the epoch (UTC)
DAY0 = 1_763_856_000_000 + 16 * 3_600_000
HOUR = 3_600_000
NOON = DAY0 + 12 * HOUR


def at(hours: float) -> int:
    return DAY0 + int(hours * HOUR)


class Feed:
    """Signs records like terminals and commits them like the collector (one batch a call)."""

    def __init__(self, store: Any) -> None:  # SqliteStore | PostgresStore
        self.store = store
        self.seqs: dict[str, int] = defaultdict(int)
        self.batches = 0
        self.validator = default_validator()

    def make(self, dev: str, kind: str, ts: int, body: dict[str, Any]) -> Good:
        self.validator.validate(kind, body)
        self.seqs[dev] += 1
        seq = self.seqs[dev]
        rec = make_record(dev, seq, 1, kind, ts, "ntp", body, KEY)
        return Good(dev, seq, kind, ts, str(rec["mac"]), canonical(rec).decode())

    def commit(self, goods: list[Good]) -> tuple[int, int]:
        self.batches += 1
        res = self.store.commit(SITE, f"b{self.batches}", goods, [])
        return res.stored, res.duplicates


def connect(sut: StoreUnderTest) -> Db:
    """A connection to the store in autocommit, as the API's writes and the CLI use one."""
    if sut.url is None:
        return sqlite3.connect(str(sut.path), isolation_level=None)
    return PgDb(psycopg.connect(sut.url, autocommit=True))


# ---------------------------------------------------------------------------------------------
# The market day

TRADERS = [
    {
        "trader": "T0001",
        "name": "王建国",
        "card_uid": "A1B2C301",
        "market": MARKET,
        "stall": "A-01",
    },
    {
        "trader": "T0002",
        "name": "李秀英",
        "card_uid": "A1B2C302",
        "market": MARKET,
        "stall": "A-02",
    },
    {"trader": "T0003", "name": "张伟", "card_uid": "A1B2C303", "market": MARKET, "stall": "B-07"},
    {"trader": "T0004", "name": "刘芳", "card_uid": "A1B2C304", "market": MARKET, "stall": "B-08"},
    {"trader": "T0005", "name": "陈静", "card_uid": "A1B2C305", "market": MARKET, "stall": "C-11"},
    {"trader": "T0006", "name": "杨磊", "card_uid": "A1B2C306", "market": MARKET, "stall": "C-12"},
]


@dataclass(frozen=True)
class Lot:
    serial: int
    trader: str
    goods_code: str
    goods_name: str
    quantity_g: int
    pieces: int | None
    counted: bool
    price: int  # fen per kg, or per piece
    cert_no: str
    origin: str

    @property
    def batch_id(self) -> str:
        return with_check_digit(f"{MARKET_NO}{DATE}{self.serial:07d}")


LOTS = [
    Lot(
        1,
        "T0001",
        "10010001",
        "白条猪",
        400_000,
        None,
        False,
        2400,
        "3300112233",
        "浙江省嘉兴市 定点屠宰厂 A3301",
    ),
    Lot(
        2,
        "T0001",
        "10010004",
        "五花肉",
        250_000,
        None,
        False,
        3400,
        "3300112234",
        "浙江省嘉兴市 定点屠宰厂 A3301",
    ),
    Lot(
        3,
        "T0002",
        "10020001",
        "牛腩",
        300_000,
        None,
        False,
        7800,
        "3300556677",
        "内蒙古锡林郭勒盟 定点屠宰厂 A1502",
    ),
    Lot(
        4,
        "T0003",
        "20010001",
        "大白菜",
        800_000,
        None,
        False,
        260,
        "HG3301062511240001",
        "山东省寿光市",
    ),
    Lot(
        5,
        "T0004",
        "20010003",
        "菠菜",
        25_000,
        None,
        False,
        900,
        "HG3301062511240002",
        "河北省张家口市",
    ),
    Lot(
        6,
        "T0004",
        "20010004",
        "芹菜",
        600_000,
        None,
        False,
        650,
        "HG3301062511240003",
        "江苏省南京市江宁区",
    ),
    Lot(
        7,
        "T0005",
        "10040002",
        "整鸡",
        200_000,
        400,
        True,
        5500,
        "3300998877",
        "安徽省宣城市 定点屠宰厂 A3402",
    ),
    Lot(
        8,
        "T0006",
        "10010005",
        "猪排骨",
        400_000,
        None,
        False,
        4800,
        "3300123123",
        "河南省漯河市 定点屠宰厂 A4101",
    ),
    Lot(
        9,
        "T0006",
        "20040001",
        "豆腐",
        300_000,
        1000,
        True,
        250,
        "HG3301062511240004",
        "浙江省杭州市萧山区",
    ),
]
OVERDRAWN_LOT = LOTS[4]  # 25 kg of spinach, sold all day
STOPPED_LOT = LOTS[7]  # pork ribs: a residue test fails at noon
TERMINALS = {"MKT-S01": 1, "MKT-S02": 2, "MKT-S03": 3, "MKT-S04": 4}
N_SALES = 420


@dataclass
class Receipt:
    dev: str
    ts: int
    trace_id: str
    tran_id: str
    seller: str
    lines: list[dict[str, Any]]
    lots: list[Lot]
    good: Good | None = None
    delayed: bool = False

    def after_stop(self) -> list[bool]:
        return [lot is STOPPED_LOT and self.ts >= NOON for lot in self.lots]


def entry_body(lot: Lot) -> dict[str, Any]:
    card = next(t["card_uid"] for t in TRADERS if t["trader"] == lot.trader)
    body: dict[str, Any] = {
        "market": MARKET,
        "trader": lot.trader,
        "card": card,
        "batch_id": lot.batch_id,
        "cert_no": lot.cert_no,
        "origin": lot.origin,
        "goods_code": lot.goods_code,
        "goods_name": lot.goods_name,
        "quantity_g": lot.quantity_g,
    }
    if lot.pieces is not None:
        body["pieces"] = lot.pieces
    return body


def make_receipts(rng: random.Random) -> list[Receipt]:
    serials: dict[str, int] = defaultdict(int)
    out = []
    times = sorted(rng.randrange(at(6), at(18)) for _ in range(N_SALES))
    for ts in times:
        dev = rng.choice(sorted(TERMINALS))
        term = TERMINALS[dev]
        serials[dev] += 1
        seller = rng.choice(TRADERS)["trader"]
        own = [lot for lot in LOTS if lot.trader == seller]
        lots = rng.sample(own, rng.randint(1, len(own)))
        lines: list[dict[str, Any]] = []
        for lot in lots:
            line: dict[str, Any] = {
                "batch_id": lot.batch_id,
                "goods_code": lot.goods_code,
                "goods_name": lot.goods_name,
            }
            if lot.counted:
                n = rng.randint(1, 4)
                line.update(mode="counted", pieces=n, price_fen_per_piece=lot.price)
                line["amount_fen"] = n * lot.price
            else:
                grams = rng.randrange(300, 5000, 5)
                line.update(mode="weighed", weight_g=grams, price_fen_per_kg=lot.price)
                line["amount_fen"] = (grams * lot.price + 500) // 1000
            lines.append(line)
        out.append(
            Receipt(
                dev=dev,
                ts=ts,
                trace_id=make_trace_code(MARKET_NO, DATE, term, serials[dev]),
                tran_id=with_check_digit(f"{REGION}{DATE}{term:02d}{serials[dev]:05d}"),
                seller=seller,
                lines=lines,
                lots=lots,
            )
        )
    return out


def settlement_body(r: Receipt) -> dict[str, Any]:
    card = next(t["card_uid"] for t in TRADERS if t["trader"] == r.seller)
    return {
        "market": MARKET,
        "terminal": f"{MARKET}-{TERMINALS[r.dev]:03d}",
        "scale_sw": "ACS-15RT V3.0.7",
        "tran_id": r.tran_id,
        "trace_id": r.trace_id,
        "seller": r.seller,
        "seller_card": card,
        "lines": r.lines,
        "total_fen": sum(int(ln["amount_fen"]) for ln in r.lines),
        "pay": "wechat",
    }


def one_sale(lot: Lot, grams: int, *, dev: str = "MKT-S01", ts: int, serial: int = 1) -> Receipt:
    """A one-line weighed sale of ``grams`` from ``lot`` by the lot's trader."""
    term = TERMINALS[dev]
    line = {
        "batch_id": lot.batch_id,
        "goods_code": lot.goods_code,
        "goods_name": lot.goods_name,
        "mode": "weighed",
        "weight_g": grams,
        "price_fen_per_kg": lot.price,
        "amount_fen": (grams * lot.price + 500) // 1000,
    }
    return Receipt(
        dev=dev,
        ts=ts,
        trace_id=make_trace_code(MARKET_NO, DATE, term, serial),
        tran_id=with_check_digit(f"{REGION}{DATE}{term:02d}{serial:05d}"),
        seller=lot.trader,
        lines=[line],
        lots=[lot],
    )


@dataclass
class MarketDay:
    sut: StoreUnderTest
    receipts: list[Receipt]
    stop: markets.StopResult
    duplicates: int
    stored: int = 0
    log: list[str] = field(default_factory=list)


def run_market_day(sut: StoreUnderTest, *, schema_first: bool = True) -> MarketDay:
    """Entries at dawn, sales from four scales all day arriving in shuffled batches, a stop
    order at noon, a scale that was offline all morning delivering late, one batch resent.

    ``schema_first=False`` commits every record before the market schema exists (a SQLite
    store upgraded later): its backfill must reach the same state.
    """
    assert schema_first or not sut.postgres, "PostgreSQL has its market schema from the start"
    rng = random.Random(20251124)
    feed = Feed(sut.store)
    db = connect(sut)
    if schema_first:
        if isinstance(db, sqlite3.Connection):  # PostgreSQL: the migrations made it
            markets.ensure_schema(db)
        markets.import_traders(db, TRADERS)
    entries = [
        feed.make("MKT-GATE", "market.entry", at(5) + i * 60_000, entry_body(lot))
        for i, lot in enumerate(LOTS)
    ]
    stored, _ = feed.commit(entries)
    receipts = make_receipts(rng)
    for r in receipts:
        r.good = feed.make(r.dev, "market.settlement", r.ts, settlement_body(r))
        # scale 3 was offline until 14:00: its morning sales arrive after the stop order
        r.delayed = r.dev == "MKT-S03" and r.ts < at(14)
    morning = [r for r in receipts if r.ts < NOON and not r.delayed]
    afternoon = [r for r in receipts if r.ts >= NOON and not r.delayed]
    late = [r for r in receipts if r.delayed]
    assert any(STOPPED_LOT in r.lots for r in late if r.ts < NOON), "scenario needs a late sale"

    def deliver(batch: list[Receipt]) -> int:
        goods = [r.good for r in batch if r.good is not None]
        rng.shuffle(goods)
        n = 0
        for i in range(0, len(goods), 25):
            n += feed.commit(goods[i : i + 25])[0]
        return n

    stored += deliver(morning)
    # the gateway resends a batch it got no ack for: nothing is counted twice
    resend = [r.good for r in morning[:25] if r.good is not None]
    _, duplicates = feed.commit(resend)
    if schema_first:
        stop = markets.stop_trading(db, STOPPED_LOT.batch_id, "瘦肉精检测阳性", now_ms=NOON)
    stored += deliver(afternoon)
    stored += deliver(late)
    if not schema_first:
        assert isinstance(db, sqlite3.Connection)
        markets.ensure_schema(db)
        markets.import_traders(db, TRADERS)
        stop = markets.stop_trading(db, STOPPED_LOT.batch_id, "瘦肉精检测阳性", now_ms=NOON)
    db.close()
    return MarketDay(sut, receipts, stop, duplicates, stored)


@pytest.fixture(scope="module", params=KINDS)
def day(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MarketDay]:
    sut = store_of(request.param, tmp_path_factory.mktemp("market"))
    try:
        yield run_market_day(sut)
    finally:
        sut.close()


@pytest.fixture
def db(day: MarketDay) -> Iterator[Db]:
    """A read-only connection to the day's store."""
    with day.sut.read() as conn:
        yield conn


def expected_sold(receipts: list[Receipt]) -> dict[str, tuple[int, int]]:
    sold: dict[str, tuple[int, int]] = {}
    for r in receipts:
        for lot, ln in zip(r.lots, r.lines, strict=True):
            g, p = sold.get(lot.batch_id, (0, 0))
            sold[lot.batch_id] = (g + ln.get("weight_g", 0), p + ln.get("pieces", 0))
    return sold


def test_the_day_is_big_enough(day: MarketDay) -> None:
    assert len(day.receipts) == N_SALES
    assert day.stored == len(LOTS) + N_SALES
    assert day.duplicates == 25
    assert {r.dev for r in day.receipts} == set(TERMINALS)
    assert sum(len(r.lines) for r in day.receipts) > N_SALES


def test_every_receipt_traces_to_its_batches_and_origins(day: MarketDay, db: Db) -> None:
    by_batch = {lot.batch_id: lot for lot in LOTS}
    names = {t["trader"]: t for t in TRADERS}
    for r in day.receipts:
        chain = markets.trace_chain(db, r.trace_id)
        assert chain is not None, r.trace_id
        sale = chain.sale
        assert r.good is not None
        assert (sale.record.dev, sale.record.seq, sale.record.ts) == (r.dev, r.good.seq, r.ts)
        assert sale.tran_id == r.tran_id and sale.trace_id == r.trace_id
        assert sale.market == MARKET
        assert sale.terminal == f"{MARKET}-{TERMINALS[r.dev]:03d}"
        assert sale.seller.trader == r.seller
        assert sale.seller.registered and sale.seller.card_matches is True
        assert sale.seller.name == names[r.seller]["name"]
        assert sale.seller.stall == names[r.seller]["stall"]
        assert sale.total_fen == sum(ln["amount_fen"] for ln in r.lines)
        assert chain.parsed is not None
        assert chain.parsed.terminal == TERMINALS[r.dev] and chain.parsed.day == "2025-11-24"
        assert chain.reused_by == []
        assert len(sale.lines) == len(r.lines)
        for got, want, lot, after in zip(sale.lines, r.lines, r.lots, r.after_stop(), strict=True):
            assert got.batch_id == lot.batch_id
            assert got.goods_name == want["goods_name"] and got.mode == want["mode"]
            assert got.weight_g == want.get("weight_g")
            assert got.pieces == want.get("pieces")
            assert got.amount_fen == want["amount_fen"]
            assert got.sold_after_stop is after, (r.trace_id, lot.goods_name, r.ts)
            entry = got.batch.entry
            assert entry is not None
            assert entry.cert_no == lot.cert_no and entry.origin == lot.origin
            assert entry.seller.trader == lot.trader == r.seller
            assert entry.goods_code == lot.goods_code and entry.date == "2025-11-24"
            assert entry.record.dev == "MKT-GATE"
            assert by_batch[got.batch_id] is lot
        assert chain.origins == list(dict.fromkeys(lot.origin for lot in r.lots))
        assert ("sold_after_stop" in chain.flags) is any(r.after_stop())
        assert ("batch_overdrawn" in chain.flags) is (OVERDRAWN_LOT in r.lots)
        assert "unknown_batch" not in chain.flags


def test_stock_is_drawn_down_and_the_overdrawn_batch_is_flagged(day: MarketDay, db: Db) -> None:
    sold = expected_sold(day.receipts)
    for lot in LOTS:
        view = markets.batch_view(db, lot.batch_id, limit=10_000)
        assert view is not None
        g, p = sold[lot.batch_id]
        assert (view.stock.sold_g, view.stock.sold_pieces) == (g, p)  # resends counted once
        assert view.stock.remaining_g == lot.quantity_g - g
        assert view.stock.remaining_pieces == (None if lot.pieces is None else lot.pieces - p)
        assert view.stock.overdrawn is (lot is OVERDRAWN_LOT), lot.goods_name
        assert view.sales_total == len(view.sales) == sum(lot in r.lots for r in day.receipts)
        # the running balance: flagged from the line that took it below zero, in capture order
        balances = [s.balance_g for s in view.sales]
        assert balances == sorted(balances, key=lambda b: -(b or 0))
        assert [s.overdrawn for s in view.sales] == [
            (s.balance_g or 0) < 0 or (s.balance_pieces or 0) < 0 for s in view.sales
        ]
    over = markets.batch_view(db, OVERDRAWN_LOT.batch_id)
    assert over is not None and over.stock.remaining_g is not None
    assert over.stock.remaining_g < 0
    first = next(i for i, s in enumerate(over.sales) if s.overdrawn)
    assert 0 < first < len(over.sales) and all(s.overdrawn for s in over.sales[first:])
    # the chain of the sale that crossed zero says so, the one before does not
    crossing = markets.trace_chain(db, str(over.sales[first].trace_id))
    before = markets.trace_chain(db, str(over.sales[first - 1].trace_id))
    assert crossing is not None and before is not None

    def overdrew(chain: markets.TraceChain) -> bool:
        return next(ln.overdrew_batch for ln in chain.sale.lines if ln.batch_id == over.batch_id)

    assert overdrew(crossing) and not overdrew(before)
    alarms = db.execute("SELECT kind, detail FROM alarms WHERE kind = 'batch_overdrawn'").fetchall()
    assert len(alarms) == 1 and OVERDRAWN_LOT.batch_id in alarms[0][1]


def test_sales_after_the_stop_are_flagged_and_alarmed(day: MarketDay, db: Db) -> None:
    assert day.stop.issued and day.stop.stop.issued_ms == NOON
    # sales stored before the order were all captured before it: nothing to flag then
    assert day.stop.flagged == 0
    view = markets.batch_view(db, STOPPED_LOT.batch_id)
    assert view is not None and view.stop is not None
    assert view.stop.reason == "瘦肉精检测阳性"
    want = [
        (r.dev, r.ts >= NOON, r.delayed)
        for r in sorted(day.receipts, key=lambda r: r.ts)
        if STOPPED_LOT in r.lots
    ]
    assert [(s.record.dev, s.sold_after_stop) for s in view.sales] == [(d, a) for d, a, _ in want]
    # sold before noon by the offline scale, delivered after the order: not flagged
    assert any(late and not after for _, after, late in want)
    n_after = sum(after for _, after, _ in want)
    assert n_after > 0 and view.sold_after_stop == n_after
    alarms = db.execute("SELECT dev, seq, detail FROM alarms WHERE kind = 'sold_after_stop'")
    flagged = {(d, s) for d, s, detail in alarms if STOPPED_LOT.batch_id in detail}
    assert flagged == {
        (r.dev, r.good.seq) for r in day.receipts if r.good is not None and any(r.after_stop())
    }
    # every other batch trades on
    assert all(
        v.stop is None for v in (markets.batch_view(db, lot.batch_id) for lot in LOTS[:7]) if v
    )
    assert [s.batch_id for s in markets.stops(db)] == [STOPPED_LOT.batch_id]


def test_a_second_stop_order_changes_nothing(any_store: StoreUnderTest) -> None:
    db = connect(any_store)
    feed = Feed(any_store.store)
    feed.commit([feed.make("G", "market.entry", at(5), entry_body(LOTS[0]))])
    first = markets.stop_trading(db, LOTS[0].batch_id, "检测不合格", now_ms=at(9))
    again = markets.stop_trading(db, LOTS[0].batch_id, "another", now_ms=at(10))
    assert first.issued and not again.issued and again.stop == first.stop
    with pytest.raises(markets.UnknownBatch):
        markets.stop_trading(db, LOTS[1].batch_id, "no such batch")
    with pytest.raises(ValueError):
        markets.stop_trading(db, LOTS[0].batch_id, "  ")
    # a stop order reaches sales already stored that were captured after it
    r = one_sale(LOTS[7], 1000, ts=at(11))
    feed.commit([feed.make(r.dev, "market.settlement", r.ts, settlement_body(r))])
    res = markets.stop_trading(db, LOTS[7].batch_id, "检测不合格", now_ms=at(10))
    assert res.issued and res.flagged == 1
    chain = markets.trace_chain(db, r.trace_id)
    assert chain is not None and chain.sale.lines[0].sold_after_stop
    # no entry for that batch: the chain says so instead of inventing an origin
    assert chain.sale.lines[0].batch.entry is None and "unknown_batch" in chain.flags
    assert chain.sale.seller.registered is False and "seller_unregistered" in chain.flags
    db.close()


@pytest.mark.parametrize("day", ["sqlite"], indirect=True)  # the backfill: SQLite's alone
def test_a_store_upgraded_later_reaches_the_same_state(day: MarketDay, tmp_path: Path) -> None:
    late_store = store_of("sqlite", tmp_path)
    late = run_market_day(late_store, schema_first=False)
    a = sqlite3.connect(f"file:{day.sut.path}?mode=ro", uri=True)
    b = sqlite3.connect(f"file:{late.sut.path}?mode=ro", uri=True)
    for lot in LOTS:
        va, vb = markets.batch_view(a, lot.batch_id), markets.batch_view(b, lot.batch_id)
        assert va is not None and vb is not None
        assert dataclasses.replace(va, stop=None) == dataclasses.replace(vb, stop=None)
    for r in day.receipts[::7]:
        assert markets.trace_chain(a, r.trace_id) == markets.trace_chain(b, r.trace_id)
    kinds = "SELECT kind, COUNT(*) FROM alarms GROUP BY kind"
    assert dict(a.execute(kinds).fetchall()) == dict(b.execute(kinds).fetchall())
    a.close()
    b.close()
    late_store.close()


def test_duplicate_entry_and_reused_trace_code_are_flagged(any_store: StoreUnderTest) -> None:
    db = connect(any_store)
    feed = Feed(any_store.store)
    lot = LOTS[0]
    feed.commit([feed.make("G", "market.entry", at(5), entry_body(lot))])
    other = dict(entry_body(lot), origin="别处", quantity_g=1000)
    feed.commit([feed.make("G", "market.entry", at(6), other)])
    r = one_sale(lot, 2000, ts=at(8))
    feed.commit([feed.make("MKT-S01", "market.settlement", at(8), settlement_body(r))])
    feed.commit([feed.make("MKT-S02", "market.settlement", at(9), settlement_body(r))])
    chain = markets.trace_chain(db, r.trace_id)
    assert chain is not None
    assert chain.sale.record.dev == "MKT-S01"
    assert [ref.dev for ref in chain.reused_by] == ["MKT-S02"]
    assert "trace_code_reused" in chain.flags
    link = chain.sale.lines[0].batch
    assert link.entry is not None and link.entry.origin == lot.origin  # the first entry stands
    assert len(link.other_entries) == 1 and link.stock.quantity_g == lot.quantity_g
    assert link.stock.sold_g == 4000
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM alarms GROUP BY kind").fetchall())
    assert kinds == {"batch_entry_duplicate": 1}
    db.close()


def test_a_sale_stored_before_its_entry_draws_when_the_entry_arrives(
    any_store: StoreUnderTest,
) -> None:
    db = connect(any_store)
    feed = Feed(any_store.store)
    lot = OVERDRAWN_LOT
    r = one_sale(lot, 30_000, ts=at(7))
    feed.commit([feed.make("MKT-S01", "market.settlement", at(7), settlement_body(r))])
    view = markets.batch_view(db, lot.batch_id)
    assert view is not None and view.entry is None and view.stock.quantity_g is None
    assert not view.stock.overdrawn and view.sales[0].balance_g is None
    assert db.execute("SELECT COUNT(*) FROM alarms").fetchone()[0] == 0
    feed.commit([feed.make("G", "market.entry", at(8), entry_body(lot))])
    view = markets.batch_view(db, lot.batch_id)
    assert view is not None and view.entry is not None
    assert view.stock.remaining_g == -5_000 and view.stock.overdrawn
    assert view.sales[0].overdrawn and view.sales[0].balance_g == -5_000
    alarm = db.execute("SELECT kind, dev, detail FROM alarms").fetchall()
    assert [(k, d) for k, d, _ in alarm] == [("batch_overdrawn", "G")]
    db.close()


def test_a_retail_batch_under_a_wholesale_voucher_links_upstream(
    any_store: StoreUnderTest,
) -> None:
    """卡单同行: the buyer's voucher from the wholesale market is the retail entry's batch."""
    db = connect(any_store)
    feed = Feed(any_store.store)
    lot = LOTS[7]
    feed.commit([feed.make("G", "market.entry", at(2), entry_body(lot))])
    wholesale = one_sale(lot, 20_000, ts=at(3))
    feed.commit([feed.make("MKT-S01", "market.settlement", at(3), settlement_body(wholesale))])
    retail_entry = dict(
        entry_body(lot),
        market="M330106777",
        trader="R0001",
        batch_id=wholesale.tran_id,
        quantity_g=20_000,
        cert_no=lot.cert_no,
    )
    feed.commit([feed.make("R-GATE", "market.entry", at(6), retail_entry)])
    retail = one_sale(lot, 1_500, ts=at(9), dev="MKT-S02")
    retail.lines[0]["batch_id"] = wholesale.tran_id
    body = dict(settlement_body(retail), market="M330106777", seller="R0001")
    feed.commit([feed.make("R-S01", "market.settlement", at(9), body)])
    chain = markets.trace_chain(db, retail.trace_id)
    assert chain is not None
    link = chain.sale.lines[0].batch
    assert link.entry is not None and link.entry.market == "M330106777"
    assert link.upstream is not None
    assert link.upstream.trace_id == wholesale.trace_id and link.upstream.market == MARKET
    up = markets.trace_chain(db, link.upstream.trace_id)
    assert up is not None and up.origins == [lot.origin]
    db.close()


def test_import_traders_is_all_or_nothing(any_store: StoreUnderTest) -> None:
    db = connect(any_store)
    assert markets.import_traders(db, TRADERS) == len(TRADERS)
    assert markets.import_traders(db, [dict(TRADERS[0], name="王建国(改)")]) == 1
    row = db.execute("SELECT name, stall FROM traders WHERE trader = 'T0001'").fetchone()
    assert row == ("王建国(改)", "A-01")
    for bad in ({"trader": "T9", "market": MARKET}, dict(TRADERS[1], card_uid="xyz")):
        with pytest.raises(ValueError, match="trader row 1"):
            markets.import_traders(db, [{"trader": "T8", "name": "n", "market": MARKET}, bad])
    assert db.execute("SELECT COUNT(*) FROM traders").fetchone()[0] == len(TRADERS)
    db.close()


def test_simulated_market_records_link_every_sale_to_its_entries(
    any_store: StoreUnderTest,
) -> None:
    """Bodies from ``simulators/records.py``: a gate registering the day's 200 batches and
    three scales selling from them; every line of every sale finds its entry."""
    db = connect(any_store)
    feed = Feed(any_store.store)
    rng = random.Random(5)
    base = DAY0 + 8 * HOUR
    entries = [
        feed.make(
            "MKT-GATE",
            "market.entry",
            base + seq,
            make_body("market.entry", rng, "MKT-GATE", seq, SITE, now_ms=base + seq),
        )
        for seq in range(1, 201)
    ]
    feed.commit(entries)
    sales = []
    for dev in ("MKT-A", "MKT-B", "MKT-C"):
        for seq in range(1, 41):
            ts = base + 60_000 * seq
            body = make_body("market.settlement", rng, dev, seq, SITE, now_ms=ts)
            sales.append((body, feed.make(dev, "market.settlement", ts, body)))
    feed.commit([g for _, g in sales])
    entry_of = {b["batch_id"]: b for b in (json.loads(g.text)["body"] for g in entries)}
    for body, _ in sales:
        chain = markets.trace_chain(db, str(body["trace_id"]))
        assert chain is not None
        for line in chain.sale.lines:
            entry = line.batch.entry
            assert entry is not None, line.batch_id
            assert entry.goods_code == line.goods_code
            assert entry.seller.trader == chain.sale.seller.trader
            assert entry.origin == entry_of[line.batch_id]["origin"]
    db.close()


# ---------------------------------------------------------------------------------------------
# The API over the market day


@pytest.fixture(scope="module")
def relayed(day: MarketDay) -> list[int]:
    """The stop list versions the API relayed, on this day's store."""
    return []


@pytest.fixture(scope="module")
def client(day: MarketDay, relayed: list[int]) -> TestClient:
    def relay() -> bool:
        with day.sut.read() as db:  # what the pushdown would publish now
            relayed.append(markets.stop_list_version(db))
        return True

    app = make_app(day.sut.ctx(relay=relay))
    return TestClient(app, raise_server_exceptions=False, headers=day.sut.admin_headers())


def test_api_trace_chain_for_every_receipt(day: MarketDay, client: TestClient) -> None:
    for r in day.receipts:
        res = client.get(f"/trace/{r.trace_id}")
        assert res.status_code == 200, res.text
        got = res.json()
        assert got["sale"]["tran_id"] == r.tran_id
        assert [ln["batch"]["entry"]["origin"] for ln in got["sale"]["lines"]] == [
            lot.origin for lot in r.lots
        ]
        assert [ln["batch"]["entry"]["cert_no"] for ln in got["sale"]["lines"]] == [
            lot.cert_no for lot in r.lots
        ]
        assert [ln["sold_after_stop"] for ln in got["sale"]["lines"]] == r.after_stop()


def test_api_trace_errors(client: TestClient) -> None:
    code = make_trace_code(MARKET_NO, DATE, 9, 9999)
    assert client.get(f"/trace/{code}").status_code == 404
    assert client.get(f"/trace/{code}").json()["detail"].startswith("no sale")
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    res = client.get(f"/trace/{bad}")
    assert res.status_code == 422 and "check digit" in res.text
    for junk in ("123", "8" * 21, "abcdefghijabcdefghij", "８" * 20):
        assert client.get(f"/trace/{urllib.parse.quote(junk)}").status_code == 422


def test_api_batch_and_stop(day: MarketDay, client: TestClient, relayed: list[Any]) -> None:
    res = client.get(f"/markets/batches/{OVERDRAWN_LOT.batch_id}")
    assert res.status_code == 200
    body = res.json()
    assert body["stock"]["overdrawn"] is True and body["stock"]["remaining_g"] < 0
    assert body["entry"]["cert_no"] == OVERDRAWN_LOT.cert_no
    assert any(s["overdrawn"] for s in body["sales"])
    assert (
        client.get(f"/markets/batches/{OVERDRAWN_LOT.batch_id}?limit=3").json()["sales"][2:] != []
    )
    assert (
        len(client.get(f"/markets/batches/{OVERDRAWN_LOT.batch_id}?limit=3").json()["sales"]) == 3
    )
    unknown = with_check_digit(f"{MARKET_NO}{DATE}9999999")
    assert client.get(f"/markets/batches/{unknown}").status_code == 404
    assert client.get("/markets/batches/short").status_code == 422
    # the stop order: committed, relayed through the hook, visible in the batch view
    lot = LOTS[0]
    res = client.post(f"/markets/batches/{lot.batch_id}/stop", json={"reason": "抽检不合格"})
    assert res.status_code == 200, res.text
    out = res.json()
    assert out["issued"] is True and out["relayed"] is True
    assert len(relayed) == 1 and relayed[0] >= 1  # relayed after the order was committed
    assert client.get(f"/markets/batches/{lot.batch_id}").json()["stop"]["reason"] == "抽检不合格"
    again = client.post(f"/markets/batches/{lot.batch_id}/stop", json={"reason": "x"}).json()
    assert again["issued"] is False and again["stop"]["reason"] == "抽检不合格"
    assert len(relayed) == 2 and relayed[-1] == relayed[0]  # relayed again, same version
    assert {s["batch_id"] for s in client.get("/markets/stops").json()} == {
        lot.batch_id,
        STOPPED_LOT.batch_id,
    }
    assert client.post(f"/markets/batches/{unknown}/stop", json={"reason": "x"}).status_code == 404
    for bad in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 201}, {"reason": 5}):
        assert client.post(f"/markets/batches/{lot.batch_id}/stop", json=bad).status_code == 422


def test_api_stop_survives_a_failing_relay(any_store: StoreUnderTest) -> None:
    def boom() -> bool:
        raise RuntimeError("broker down")

    feed = Feed(any_store.store)
    feed.commit([feed.make("G", "market.entry", at(5), entry_body(LOTS[2]))])
    app = make_app(any_store.ctx(relay=boom))
    res = TestClient(app, raise_server_exceptions=False, headers=any_store.admin_headers()).post(
        f"/markets/batches/{LOTS[2].batch_id}/stop", json={"reason": "检测不合格"}
    )
    assert res.status_code == 200 and res.json()["relayed"] is False
    assert res.json()["issued"] is True


_text = st.text(st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    segment=st.one_of(_text, st.from_regex(r"[0-9]{20}", fullmatch=True)),
    route=st.sampled_from(["/trace/{}", "/markets/batches/{}"]),
    limit=st.one_of(st.none(), st.integers(-5, 20_000), _text),
)
def test_api_market_routes_never_fail_on_any_input(
    client: TestClient, segment: str, route: str, limit: object
) -> None:
    url = route.format(urllib.parse.quote(segment, safe=""))
    params = {} if limit is None else {"limit": str(limit)}
    res = client.get(url, params=params)
    assert res.status_code < 500, (url, res.status_code, res.text)
    res = client.post(
        f"/markets/batches/{urllib.parse.quote(segment, safe='')}/stop", json={"reason": segment}
    )
    assert res.status_code < 500, (segment, res.status_code, res.text)


def test_api_codes_in_the_store_parse(day: MarketDay) -> None:
    codes = Counter(r.trace_id for r in day.receipts)
    assert max(codes.values()) == 1
    assert all(valid(c) and parse_trace_code(c)["market"] == MARKET_NO for c in codes)


@pytest.mark.parametrize("kind", KINDS)
def test_stop_order_applies_records_stored_but_not_yet_projected(kind: str, tmp_path: Path) -> None:
    """Regression: with projection off the ingest path (the running collector), a stop order
    issued right after an entry was stored answered 'no batch'."""
    from collector.markets import projection_backlog, stop_trading
    from wire.envelope import unsigned

    sut = store_of(kind, tmp_path, project_inline=False)
    store = sut.store
    body = {
        "market": "M330100001",
        "trader": "T3301000001",
        "batch_id": "33010025112300000017",
        "cert_no": "33012345678",
        "origin": "浙江省嘉兴市",
        "goods_code": "10010001",
        "goods_name": "猪肉",
        "quantity_g": 100000,
    }
    rec = make_record("MKT-X-1", 1, 1, "market.entry", 1763900000000, "ntp", body, b"k" * 32)
    text = canonical(unsigned(rec))[:-1].decode() + f',"mac":"{rec["mac"]}"}}'
    store.commit(
        "X", "b1", [Good("MKT-X-1", 1, "market.entry", 1763900000000, str(rec["mac"]), text)], []
    )
    db = connect(sut)
    assert projection_backlog(db) == 1
    res = stop_trading(db, "33010025112300000017", "test positive")
    assert res.issued and projection_backlog(db) == 0
    db.close()
    sut.close()


def test_a_lifted_stop_no_longer_flags_sales_and_the_list_version_grows(
    any_store: StoreUnderTest,
) -> None:
    from collector.markets import lift_stop, stop_list_version, stop_trading, stops

    db = connect(any_store)
    db.execute(
        "INSERT INTO market_batches(batch_id, entries) VALUES (?, 1)", ("B-LIFT-1",)
    )  # a known batch, as an entry would make it
    assert stop_list_version(db) == 0
    stop_trading(db, "B-LIFT-1", "抽检不合格")
    assert stop_list_version(db) == 1 and [o.batch_id for o in stops(db)] == ["B-LIFT-1"]
    with pytest.raises(ValueError):
        lift_stop(db, "B-LIFT-1", "  ")
    lifted = lift_stop(db, "B-LIFT-1", "复检合格")
    assert lifted.reason == "抽检不合格"
    assert stop_list_version(db) == 2 and stops(db) == []
    assert db.execute("SELECT reason, stop_reason FROM batch_stop_lifts").fetchall() == [
        ("复检合格", "抽检不合格")
    ]
    with pytest.raises(markets.NotStopped):
        lift_stop(db, "B-LIFT-1", "again")
    stop_trading(db, "B-LIFT-1", "再次抽检不合格")  # stopped again later: a new order
    assert stop_list_version(db) == 3
    db.close()


# ---------------------------------------------------------------------------------------------
# The domain package and the API's models


RESULT_TYPES = [
    name
    for name in markets.__all__
    if dataclasses.is_dataclass(getattr(markets, name)) and name != "StopResult"
]


@pytest.mark.parametrize("name", RESULT_TYPES)
def test_every_result_field_is_described_by_the_api_model_of_the_same_name(name: str) -> None:
    """The API fills its response models from the readers' results by attribute: a field
    added to one and not the other would silently vanish from (or break) the answers."""
    result = getattr(markets, name)
    model = getattr(api_models, name)
    assert [f.name for f in dataclasses.fields(result)] == list(model.model_fields)


def test_the_market_domain_package_does_not_load_the_web_framework() -> None:
    code = (
        "import sys, collector.markets; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
