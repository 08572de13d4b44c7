"""A batch's recall reach over a real store: the market day of test_markets (420 receipts on
four scales, a stop at noon, a scale delivering late) and a small day with known buyers, on
the SQLite store and on PostgreSQL.

SQLite only: the query plan check (``EXPLAIN QUERY PLAN`` is SQLite's)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from collector import markets
from collector.markets.recall import LINES_SQL, recall, recall_csv
from hostlib.db import Db
from tests.collector.test_markets import (
    LOTS,
    NOON,
    STOPPED_LOT,
    TRADERS,
    Feed,
    MarketDay,
    at,
    connect,
    entry_body,
    one_sale,
    run_market_day,
    settlement_body,
)
from tests.stores import KINDS, StoreUnderTest, store_of


@pytest.fixture(scope="module", params=KINDS)
def day(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MarketDay]:
    sut = store_of(request.param, tmp_path_factory.mktemp("recall"))
    try:
        yield run_market_day(sut)
    finally:
        sut.close()


@pytest.fixture
def db(day: MarketDay) -> Iterator[Db]:
    with day.sut.read() as conn:
        yield conn


def test_recall_totals_match_the_batch_view_for_every_batch(day: MarketDay, db: Db) -> None:
    for lot in LOTS:
        view = markets.batch_view(db, lot.batch_id)
        reach = recall(db, lot.batch_id)
        assert view is not None and reach is not None
        assert reach.totals.lines == view.sales_total == len(reach.lines)
        assert reach.totals.weight_g == view.stock.sold_g
        assert reach.totals.pieces == view.stock.sold_pieces
        assert reach.totals.after_stop_lines == view.sold_after_stop
        assert reach.entry == view.entry and reach.stock == view.stock
        # against the receipts themselves
        mine = [
            (r, ln)
            for r in day.receipts
            for lt, ln in zip(r.lots, r.lines, strict=True)
            if lt is lot
        ]
        assert reach.totals.amount_fen == sum(int(ln["amount_fen"]) for _, ln in mine)
        assert reach.totals.sales == len({r.trace_id for r, _ in mine})
        assert {x.trace_id for x in reach.lines} == {r.trace_id for r, _ in mine}
        assert [x.ts for x in reach.lines] == sorted(x.ts for x in reach.lines)
        assert reach.first_ts == min(r.ts for r, _ in mine)
        assert reach.last_ts == max(r.ts for r, _ in mine)
        assert {t.dev for t in reach.terminals} == {r.dev for r, _ in mine}
        assert sum(t.lines for t in reach.terminals) == reach.totals.lines


def test_recall_of_the_stopped_batch_names_what_sold_after_the_stop(
    db: Db,
) -> None:
    reach = recall(db, STOPPED_LOT.batch_id)
    assert reach is not None and reach.stop is not None
    after = [x for x in reach.lines if x.sold_after_stop]
    assert after and all(x.ts >= NOON for x in after)
    assert all(not x.sold_after_stop for x in reach.lines if x.ts < NOON)
    assert reach.totals.after_stop_weight_g == sum(x.weight_g or 0 for x in after)
    x = reach.lines[0]
    assert x.seller == STOPPED_LOT.trader and x.seller_name == "杨磊"
    assert x.terminal.startswith("M330106001-") and x.pay == "wechat"
    assert recall(db, "00000000000000000000") is None


def test_recall_is_limited_and_scoped(db: Db) -> None:
    full = recall(db, STOPPED_LOT.batch_id)
    few = recall(db, STOPPED_LOT.batch_id, limit=3)
    assert full is not None and few is not None
    assert len(few.lines) == 3 and few.truncated and few.totals == full.totals
    assert not full.truncated
    assert recall(db, STOPPED_LOT.batch_id, market_ok=lambda m: m == "OTHER") is None
    mine = recall(db, STOPPED_LOT.batch_id, market_ok=lambda m: m == "M330106001")
    assert mine is not None and mine.totals == full.totals


@pytest.mark.parametrize("day", ["sqlite"], indirect=True)  # SQLite's query planner
def test_recall_reads_through_the_batch_index(db: Db) -> None:
    plan = " ".join(
        str(r[3]) for r in db.execute("EXPLAIN QUERY PLAN " + LINES_SQL, (STOPPED_LOT.batch_id,))
    )
    assert (
        "USING INDEX market_lines_batch" in plan
        or "USING COVERING INDEX market_lines_batch" in plan
    ), plan
    assert "SCAN l" not in plan and "SCAN market_lines" not in plan, plan
    assert "USING INTEGER PRIMARY KEY" in plan, plan  # records by row id


@pytest.fixture
def buyers(any_store: StoreUnderTest) -> Iterator[Db]:
    """Three sales of the stopped lot on two scales, two with a buyer, one after the stop;
    a counted lot sold once."""
    feed = Feed(any_store.store)
    conn = connect(any_store)
    markets.import_traders(conn, TRADERS)
    counted = LOTS[6]
    feed.commit(
        [
            feed.make("MKT-GATE", "market.entry", at(5), entry_body(STOPPED_LOT)),
            feed.make("MKT-GATE", "market.entry", at(5), entry_body(counted)),
        ]
    )
    sales = [
        (one_sale(STOPPED_LOT, 1250, dev="MKT-S01", ts=at(9), serial=1), "B0001", "0A0B0C0D"),
        (one_sale(STOPPED_LOT, 800, dev="MKT-S02", ts=at(10), serial=1), None, "0A0B0C0E"),
        (one_sale(STOPPED_LOT, 2005, dev="MKT-S01", ts=at(13), serial=2), None, None),
    ]
    goods = []
    for r, buyer, card in sales:
        body = settlement_body(r)
        if buyer:
            body["buyer"] = buyer
        if card:
            body["buyer_card"] = card
        goods.append(feed.make(r.dev, "market.settlement", r.ts, body))
    line = {
        "batch_id": counted.batch_id,
        "goods_code": counted.goods_code,
        "goods_name": "=整鸡",  # a name Excel would take for a formula
        "mode": "counted",
        "pieces": 3,
        "price_fen_per_piece": counted.price,
        "amount_fen": 3 * counted.price,
    }
    r = one_sale(STOPPED_LOT, 1, dev="MKT-S03", ts=at(11), serial=1)
    body = settlement_body(r)
    body.update(seller=counted.trader, lines=[line], total_fen=line["amount_fen"])
    body["seller_card"] = next(t["card_uid"] for t in TRADERS if t["trader"] == counted.trader)
    goods.append(feed.make("MKT-S03", "market.settlement", r.ts, body))
    feed.commit(goods)
    markets.stop_trading(conn, STOPPED_LOT.batch_id, "瘦肉精检测阳性", now_ms=NOON)
    yield conn
    conn.close()


def test_buyers_terminals_and_time_span(buyers: Db) -> None:
    reach = recall(buyers, STOPPED_LOT.batch_id)
    assert reach is not None
    assert [(x.buyer, x.buyer_card) for x in reach.lines] == [
        ("B0001", "0A0B0C0D"),
        (None, "0A0B0C0E"),
        (None, None),
    ]
    t = reach.totals
    assert (t.lines, t.sales, t.weight_g, t.pieces) == (3, 3, 1250 + 800 + 2005, 0)
    assert (t.buyers_known, t.lines_with_buyer) == (2, 2)
    assert (t.after_stop_lines, t.after_stop_weight_g) == (1, 2005)
    assert (reach.first_ts, reach.last_ts) == (at(9), at(13))
    assert [(x.dev, x.lines) for x in reach.terminals] == [("MKT-S01", 2), ("MKT-S02", 1)]
    assert reach.markets == ["M330106001"]


def _rows(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def test_recall_csv_parses_back(buyers: Db) -> None:
    reach = recall(buyers, STOPPED_LOT.batch_id)
    assert reach is not None
    text = recall_csv(reach)
    assert "\r\n" in text and text.encode("utf-8").startswith(b"\xef\xbb\xbf")
    rows = _rows(text)
    assert rows[0][0] == "销售时间 Sale time" and rows[0][-3] == "中止交易后售出 Sold after stop"
    assert rows[0][-2:] == ["批次号 Batch", "流通环节 Hop"]  # the chain across markets
    assert len(rows) == 1 + len(reach.lines)
    head = rows[0]
    first = dict(zip(head, rows[1], strict=True))
    assert first["销售时间 Sale time"] == "2025-11-24 09:00:00"  # China Standard Time
    assert first["追溯码 Trace code"] == reach.lines[0].trace_id
    assert first["重量(千克) Weight (kg)"] == "1.250"
    assert first["买方 Buyer"] == "B0001" and first["买方卡号 Buyer card"] == "0A0B0C0D"
    assert first["卖方姓名 Seller name"] == "杨磊"
    assert first["计量方式 Mode"] == "计重" and first["中止交易后售出 Sold after stop"] == "否"
    last = dict(zip(head, rows[-1], strict=True))
    assert (
        last["中止交易后售出 Sold after stop"] == "是" and last["重量(千克) Weight (kg)"] == "2.005"
    )
    amounts = sum(round(float(r[head.index("金额(元) Amount (yuan)")]) * 100) for r in rows[1:])
    assert amounts == reach.totals.amount_fen
    en = _rows(recall_csv(reach, lang="en", utc_offset_min=0))
    assert en[0][0] == "Sale time" and en[1][0] == "2025-11-24 01:00:00"
    assert en[1][en[0].index("Sold after stop")] == "no"
    zh = _rows(recall_csv(reach, lang="zh"))
    assert zh[0][:2] == ["销售时间", "追溯码"]
    with pytest.raises(ValueError):
        recall_csv(reach, lang="fr")


def test_recall_csv_of_a_counted_batch_keeps_excel_from_running_formulas(
    buyers: Db,
) -> None:
    reach = recall(buyers, LOTS[6].batch_id)
    assert reach is not None and reach.totals.pieces == 3 and reach.totals.weight_g == 0
    rows = _rows(recall_csv(reach, lang="en"))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Goods"] == "'=整鸡" and row["Pieces"] == "3" and row["Weight (kg)"] == ""
    assert row["Mode"] == "counted"
