"""The public listener: the shopper's page, the public trace answer, the GS1 Digital Link
resolver, rate limits, security headers, and nothing of the regulator's API.

The store is a market day made like the terminals make it and committed like the collector
commits it (``tests/collector/test_markets.py``), plus goods registered under a GTIN, a
retail market buying from the wholesale one (卡单同行), and sales that name their buyer:
every public answer is searched for every card UID, buyer id, device id, terminal code and
record MAC in the store. The world is built on the SQLite store and on PostgreSQL
(tests/stores.py) and every public answer checked on each.

SQLite only for now: the running collector's two listeners (``[public]`` with a PostgreSQL
``[store] url`` is refused by the settings until the listeners read it).
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import markets, sites
from collector.public import SECURITY_HEADERS, make_public_app
from collector.ratelimit import RateLimiter, client_key
from collector.service import Collector
from collector.settings import CollectorSettings, PublicSettings, load_collector
from collector.store import SqliteStore
from hostlib.errors import ConfigError, StartupError
from hostlib.registry import add_devices
from tests.collector.test_markets import (
    DATE,
    LOTS,
    MARKET,
    MARKET_NO,
    NOON,
    STOPPED_LOT,
    TRADERS,
    Feed,
    Lot,
    MarketDay,
    Receipt,
    at,
    connect,
    entry_body,
    one_sale,
    run_market_day,
    settlement_body,
)
from tests.stores import KINDS, StoreUnderTest, store_of
from traceedge.brokers import free_port
from traceedge.launch import collector_config
from traceedge.provision import new_device, site_trust
from wire.checkdigit import with_check_digit
from wire.tracecode import make_trace_code

MARKET_NAME = "杭州市上城区城东农贸市场"
MARKET_PHONE = "0571-86001234"
RETAIL = "M330106777"
RETAIL_NAME = "上城区湖滨菜市场"
GTIN13 = with_check_digit("690123456789")  # a GTIN-13 (China's 690-699 prefix)
GTIN14 = "0" + GTIN13
OTHER_GTIN = with_check_digit("690123456788")
BUYERS = ("BUYER-7731", "BUYER-9904")
BUYER_CARDS = ("B7C1D2E3F4", "B7C1D2E3F5")
SITES = [
    {
        "site": "MKT01",
        "name": MARKET_NAME,
        "district": "330102",
        "kind": "market",
        "market": MARKET,
        "phone": MARKET_PHONE,
    },
    # the retail market: a name but no complaint phone on file
    {
        "site": "MKT02",
        "name": RETAIL_NAME,
        "district": "330102",
        "kind": "market",
        "market": RETAIL,
    },
]
# goods sold under a GTIN (boxed chilled pork), registered on entry with it as the goods code
GTIN_LOT = Lot(
    31, "T0002", GTIN13, "冷鲜猪里脊 500g", 50_000, 100, True, 2990, "3300777001", "浙江省金华市"
)
GTIN_STOP_REASON = "包装批次抽检不合格"


@dataclass
class World:
    day: MarketDay
    gtin_sale: Receipt  # sold before the GTIN batch was stopped
    buyer_sales: list[Receipt]
    wholesale: Receipt
    retail: Receipt
    gtin_stop_ms: int


def _sale(lot: Lot, dev: str, term: int, serial: int, ts: int) -> Receipt:
    r = one_sale(lot, 1000, ts=ts)
    r.dev = dev
    r.trace_id = make_trace_code(MARKET_NO, DATE, term, serial)
    r.tran_id = with_check_digit(f"330106{DATE}{term:02d}{serial:05d}")
    if lot.counted:
        r.lines[0] = {
            "batch_id": lot.batch_id,
            "goods_code": lot.goods_code,
            "goods_name": lot.goods_name,
            "mode": "counted",
            "pieces": 2,
            "price_fen_per_piece": lot.price,
            "amount_fen": 2 * lot.price,
        }
    return r


def _body(r: Receipt, **extra: Any) -> dict[str, Any]:
    body = dict(
        settlement_body(dataclasses.replace(r, dev="MKT-S01")), terminal=f"{MARKET}-{r.dev}"
    )
    body.update(extra)
    return body


def build_world(sut: StoreUnderTest) -> World:
    day = run_market_day(sut)
    feed = Feed(sut.store)  # devices of its own: their sequence numbers start afresh
    db = connect(sut)
    sites.import_sites(db, SITES)
    # goods under a GTIN: entered, sold, then stopped
    feed.commit([feed.make("GTIN-GATE", "market.entry", at(5), entry_body(GTIN_LOT))])
    gtin_sale = _sale(GTIN_LOT, "SCALE-90", 90, 1, at(9))
    feed.commit([feed.make("SCALE-90", "market.settlement", at(9), _body(gtin_sale))])
    stop_ms = at(15)
    markets.stop_trading(db, GTIN_LOT.batch_id, GTIN_STOP_REASON, now_ms=stop_ms)
    # sales that name their buyer (a canteen's card): never shown to the public
    buyer_sales = []
    for i, (buyer, card) in enumerate(zip(BUYERS, BUYER_CARDS, strict=True)):
        r = _sale(LOTS[i], "SCALE-91", 91, i + 1, at(10 + i))
        body = _body(r, buyer=buyer, buyer_card=card, pay="credit")
        feed.commit([feed.make("SCALE-91", "market.settlement", r.ts, body)])
        buyer_sales.append(r)
    # 卡单同行: a retail trader buys at the wholesale market, registers the voucher on entry
    lot = LOTS[2]
    wholesale = _sale(lot, "SCALE-92", 92, 1, at(4))
    wbody = _body(wholesale, buyer="WB-000123", buyer_card="C0FFEE0001")
    feed.commit([feed.make("SCALE-92", "market.settlement", at(4), wbody)])
    retail_entry = dict(
        entry_body(lot),
        market=RETAIL,
        trader="R0001",
        card="C0FFEE0001",
        batch_id=wholesale.tran_id,
        quantity_g=1000,
    )
    feed.commit([feed.make("R-GATE", "market.entry", at(6), retail_entry)])
    retail = _sale(lot, "R-SCALE-1", 93, 1, at(9))
    retail.lines[0]["batch_id"] = wholesale.tran_id
    rbody = dict(_body(retail), market=RETAIL, seller="R0001", seller_card="C0FFEE0001")
    feed.commit([feed.make("R-SCALE-1", "market.settlement", at(9), rbody)])
    db.close()
    return World(day, gtin_sale, buyer_sales, wholesale, retail, stop_ms)


@pytest.fixture(scope="module", params=KINDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    sut = store_of(request.param, tmp_path_factory.mktemp("public"))
    try:
        yield build_world(sut)
    finally:
        sut.close()


def public_app(sut: StoreUnderTest, rate_per_min: int = 60_000, burst: int = 10_000) -> FastAPI:
    return make_public_app(sut.ctx(), rate_per_min, burst)


@pytest.fixture(scope="module")
def client(world: World) -> TestClient:
    return TestClient(public_app(world.day.sut), raise_server_exceptions=False)


def secrets_in_store(sut: StoreUnderTest) -> set[str]:
    """Everything personal or device-bound the store holds: card UIDs (sellers', buyers',
    the registry's), buyer ids, device ids, terminal codes, record MACs."""
    found: set[str] = set()
    with sut.read() as db:
        for dev, text in db.execute("SELECT dev, rec FROM records"):
            rec = json.loads(text)
            found |= {dev, str(rec["mac"])}
            body = rec["body"]
            for key in ("card", "seller_card", "buyer", "buyer_card", "terminal"):
                if body.get(key):
                    found.add(str(body[key]))
        found |= {str(r[0]) for r in db.execute("SELECT card_uid FROM traders") if r[0]}
    return found


# ---------------------------------------------------------------------------------------------
# The shopper's page


def test_the_page_shows_names_codes_the_receipt_and_the_stop(
    world: World, client: TestClient
) -> None:
    r = next(r for r in world.day.receipts if any(r.after_stop()))
    res = client.get(f"/t/{r.trace_id}")
    assert res.status_code == 200
    assert res.headers["content-type"] == "text/html; charset=utf-8"
    text = res.text
    assert '<html lang="zh-CN">' in text
    seller = next(t for t in TRADERS if t["trader"] == r.seller)
    sold_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.ts // 1000 + 8 * 3600))
    for needle in (
        MARKET_NAME,
        f"({MARKET})",
        seller["name"],
        f"({seller['trader']})",
        seller["stall"],
        r.trace_id,
        r.tran_id,
        sold_at,
    ):
        assert needle in text, needle
    # the warning: prominent, first thing after the title, with reason and since when
    alert = re.search(r'<section class="alert" role="alert".*?</section>', text)
    assert alert is not None
    assert text.index('role="alert"') < text.index("小票信息")
    assert "瘦肉精检测阳性" in alert.group(0) and "2025-11-24 12:00:00" in alert.group(0)
    assert STOPPED_LOT.goods_name in alert.group(0)
    if r.ts >= NOON:
        assert "本次销售发生在中止交易之后" in alert.group(0)
        assert alert.group(0).count("<li>") == 1  # one batch, one item
    # the complaint lines, as links a phone dials
    assert 'href="tel:12315"' in text and f'href="tel:{MARKET_PHONE}"' in text
    # what the receipt shows: items, weights, prices, amounts, total
    total = sum(int(ln["amount_fen"]) for ln in r.lines)
    assert f"{total // 100}.{total % 100:02d} 元" in text
    for lot, ln in zip(r.lots, r.lines, strict=True):
        for needle in (lot.goods_name, lot.batch_id, lot.origin, lot.cert_no, "2025-11-24"):
            assert needle in text, needle
        amount = ln["amount_fen"]
        assert f"{amount // 100}.{amount % 100:02d} 元" in text
        if "weight_g" in ln:
            assert f"{ln['weight_g'] // 1000}.{ln['weight_g'] % 1000:03d} 公斤" in text
            assert f"{lot.price // 100}.{lot.price % 100:02d} 元/公斤" in text
        else:
            assert f"{ln['pieces']} 件" in text
    # accessible structure: one h1, table headers with scope, no inline style or script
    assert text.count("<h1>") == 1
    assert '<th scope="col"' in text and '<th scope="row"' in text
    assert "<th>" not in text
    assert "<script" not in text and "style=" not in text and "<style" not in text
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in text


def test_a_sale_without_a_stop_has_no_alert(world: World, client: TestClient) -> None:
    r = next(r for r in world.day.receipts if STOPPED_LOT not in r.lots)
    text = client.get(f"/t/{r.trace_id}").text
    assert 'role="alert"' not in text and "中止交易" not in text


def test_a_stopped_batch_sold_before_its_stop_still_warns(world: World, client: TestClient) -> None:
    text = client.get(f"/t/{world.gtin_sale.trace_id}").text
    alert = re.search(r'role="alert".*?</section>', text)
    assert alert is not None
    assert GTIN_STOP_REASON in alert.group(0) and "2025-11-24 15:00:00" in alert.group(0)
    assert "之后" not in alert.group(0)  # this sale came before the order


def test_english_is_a_switch_away(world: World, client: TestClient) -> None:
    r = next(r for r in world.day.receipts if any(r.after_stop()))
    zh = client.get(f"/t/{r.trace_id}").text
    assert f'href="/t/{r.trace_id}?lang=en"' in zh
    en = client.get(f"/t/{r.trace_id}?lang=en").text
    assert '<html lang="en">' in en
    for needle in ("Receipt", "Transaction no.", "trading of this batch has been stopped"):
        assert needle in en, needle
    assert "National market supervision complaint line 12315" in en
    assert f'href="/t/{r.trace_id}?lang=zh"' in en
    # the names stay as registered; only the labels change
    assert MARKET_NAME in en


def test_the_chain_across_markets_links_upstream(world: World, client: TestClient) -> None:
    text = client.get(f"/t/{world.retail.trace_id}").text
    assert RETAIL_NAME in text and f"({RETAIL})" in text
    assert f'href="/t/{world.wholesale.trace_id}"' in text and MARKET_NAME in text
    # the retail market has no phone on file: 12315 only
    assert 'href="tel:12315"' in text and "tel:0" not in text
    up = client.get(f"/t/{world.wholesale.trace_id}.json").json()
    assert up["lines"][0]["batch"]["origin"] == LOTS[2].origin


def test_old_page_address_and_lookup_form(world: World, client: TestClient) -> None:
    r = world.day.receipts[0]
    assert client.get(f"/trace/{r.trace_id}/page").text == client.get(f"/t/{r.trace_id}").text
    start = client.get("/")
    assert start.status_code == 200 and 'action="/t"' in start.text
    res = client.get("/t", params={"code": f" {r.trace_id[:10]} {r.trace_id[10:]} "})
    assert res.status_code == 200 and r.trace_id in res.text  # redirected to its page
    res = client.get("/t", params={"code": "12345", "lang": "en"})
    assert res.status_code == 422 and "Not a trace code" in res.text


def test_page_errors_are_pages(client: TestClient) -> None:
    code = make_trace_code(MARKET_NO, DATE, 9, 9999)
    bad = code[:-1] + str((int(code[-1]) + 1) % 10)
    for url, status, needle in (
        (f"/t/{bad}", 422, "追溯码无效"),
        (f"/trace/{bad}/page", 422, "追溯码无效"),
        (f"/t/{code}", 404, "未找到追溯信息"),
        ("/t/%3Cscript%3E", 422, "追溯码无效"),
        ("/nothing/here", 404, "页面不存在"),
    ):
        res = client.get(url)
        assert res.status_code == status, url
        assert res.headers["content-type"].startswith("text/html") and needle in res.text
    res = client.get(f"/t/{code}.json")
    assert res.status_code == 404 and res.json()["detail"] == f"没有追溯码为 {code} 的交易。"
    assert client.get(f"/t/{bad}.json").status_code == 422


def test_every_value_is_escaped(any_store: StoreUnderTest) -> None:
    feed = Feed(any_store.store)
    evil = "<script>alert(1)</script>"
    db = connect(any_store)
    markets.import_traders(
        db,
        [{"trader": "T0001", "name": '"><img src=x onerror=alert(2)>', "market": MARKET,
          "stall": "<b>A</b>"}],
    )  # fmt: skip
    sites.import_sites(db, [{"site": "MKT01", "name": "<i>市场</i>", "market": MARKET}])
    lot = LOTS[0]
    entry = dict(entry_body(lot), goods_name=evil, origin="<iframe src=//evil>", cert_no="&<>'\"")
    feed.commit([feed.make("G", "market.entry", at(5), entry)])
    markets.stop_trading(db, lot.batch_id, "</section><script>x()</script>", now_ms=at(6))
    db.close()
    r = one_sale(lot, 1234, ts=at(8))
    r.seller = "T0001"
    r.lines[0]["goods_name"] = evil
    feed.commit([feed.make("MKT-S01", "market.settlement", at(8), settlement_body(r))])
    for lang in ("zh", "en"):
        res = TestClient(public_app(any_store)).get(f"/t/{r.trace_id}?lang={lang}")
        assert res.status_code == 200
        text = res.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        assert "&lt;iframe src=//evil&gt;" in text and "&amp;&lt;&gt;&#x27;&quot;" in text
        assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in text
        assert "&lt;b&gt;A&lt;/b&gt;" in text and "&lt;i&gt;市场&lt;/i&gt;" in text
        assert "&lt;/section&gt;&lt;script&gt;x()&lt;/script&gt;" in text
        for raw in ("<script", "<iframe", "<img", "<b>", "<i>"):
            assert raw not in text
        assert "1.234" in text and "29.62" in text and "24.00" in text


# ---------------------------------------------------------------------------------------------
# The public trace answer: what it holds, and nothing personal anywhere


def test_the_json_answer_holds_what_the_page_shows(world: World, client: TestClient) -> None:
    r = next(r for r in world.day.receipts if any(r.after_stop()))
    got = client.get(f"/t/{r.trace_id}.json").json()
    assert got["trace_code"] == r.trace_id and got["tran_id"] == r.tran_id
    assert got["market"] == {"code": MARKET, "name": MARKET_NAME, "phone": MARKET_PHONE}
    seller = next(t for t in TRADERS if t["trader"] == r.seller)
    assert got["seller"] == {"code": r.seller, "name": seller["name"], "stall": seller["stall"]}
    assert got["total_fen"] == sum(int(ln["amount_fen"]) for ln in r.lines)
    assert got["stopped"] is True
    assert [c["number"] for c in got["complaints"]] == ["12315", MARKET_PHONE]
    for line, lot, after in zip(got["lines"], r.lots, r.after_stop(), strict=True):
        assert line["goods_name"] == lot.goods_name and line["sold_after_stop"] is after
        b = line["batch"]
        assert (b["batch_id"], b["origin"], b["cert_no"]) == (lot.batch_id, lot.origin, lot.cert_no)
        assert (b["stop"] is not None) is (lot is STOPPED_LOT)
    # the same when the page's address is asked for JSON
    assert client.get(f"/t/{r.trace_id}", headers={"Accept": "application/json"}).json() == got
    allowed = {
        "trace_code", "tran_id", "time", "time_ms", "market", "seller", "total_fen", "lines",
        "stopped", "warnings", "complaints",
    }  # fmt: skip
    assert set(got) == allowed


def public_answers(world: World) -> Iterator[tuple[str, str]]:
    """(URL, Accept) of every public answer about the store's sales and linked batches."""
    for r in [*world.day.receipts, world.gtin_sale, *world.buyer_sales, world.wholesale]:
        yield f"/t/{r.trace_id}", "text/html"
        yield f"/t/{r.trace_id}.json", "application/json"
    for accept in ("text/html", "application/json"):
        yield f"/t/{world.retail.trace_id}", accept
        link = f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}"
        yield link, accept
        yield link + f"/21/{world.gtin_sale.trace_id}", accept


def test_no_public_answer_holds_personal_or_device_data(world: World, client: TestClient) -> None:
    secrets = secrets_in_store(world.day.sut)
    # the store does hold them: buyers, buyer cards, seller cards, devices, terminals, MACs
    assert set(BUYERS) | set(BUYER_CARDS) | {"C0FFEE0001", "A1B2C301", "MKT-S01"} <= secrets
    assert any(s.startswith(f"{MARKET}-") for s in secrets)
    pattern = re.compile("|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True)))
    checked = 0
    for url, accept in public_answers(world):
        res = client.get(url, headers={"Accept": accept})
        assert res.status_code == 200, url
        assert pattern.findall(res.text) == [], (url, accept)
        checked += 1
    assert checked > 2 * len(world.day.receipts)


# ---------------------------------------------------------------------------------------------
# GS1 Digital Link


def test_a_digital_link_resolves_to_its_batch(world: World, client: TestClient) -> None:
    for gtin in (GTIN14, GTIN13):
        res = client.get(f"/01/{gtin}/10/{GTIN_LOT.batch_id}?17=261231&linkType=all")
        assert res.status_code == 200, res.text
        text = res.text
        for needle in (
            GTIN_LOT.goods_name,
            GTIN_LOT.batch_id,
            GTIN_LOT.origin,
            GTIN_LOT.cert_no,
            MARKET_NAME,
            GTIN14,
            'href="tel:12315"',
            GTIN_STOP_REASON,
        ):
            assert needle in text, needle
        assert 'role="alert"' in text
    got = client.get(
        f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}", headers={"Accept": "application/json"}
    ).json()
    assert got["gtin"] == GTIN14 and got["lot"] == GTIN_LOT.batch_id
    assert got["batch"]["goods_code"] == GTIN13 and got["batch"]["market"]["name"] == MARKET_NAME
    assert got["batch"]["stop"]["reason"] == GTIN_STOP_REASON
    assert got["batch"]["stop"]["since_ms"] == world.gtin_stop_ms
    # a browser's Accept (html first, */* after) gets the page
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    res = client.get(f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}", headers={"Accept": browser})
    assert res.headers["content-type"].startswith("text/html")
    assert res.headers["vary"] == "Accept"


def test_a_digital_link_with_the_receipts_serial_opens_the_sale(
    world: World, client: TestClient
) -> None:
    base = f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}"
    sale = client.get(f"{base}/21/{world.gtin_sale.trace_id}")
    assert sale.status_code == 200 and world.gtin_sale.tran_id in sale.text
    got = client.get(
        f"{base}/21/{world.gtin_sale.trace_id}", headers={"Accept": "application/json"}
    ).json()
    assert got["trace_code"] == world.gtin_sale.trace_id
    # a serial that is no sale of this batch: the batch, the serial ignored
    other = world.day.receipts[0].trace_id
    for serial in (other, "SN0042"):
        res = client.get(f"{base}/21/{serial}", headers={"Accept": "application/json"})
        assert res.status_code == 200 and res.json()["lot"] == GTIN_LOT.batch_id
    # a consumer product variant (22) before the lot is allowed and ignored
    assert client.get(f"/01/{GTIN14}/22/A1/10/{GTIN_LOT.batch_id}").status_code == 200


def test_bad_and_unknown_digital_links(world: World, client: TestClient) -> None:
    bad_check = GTIN14[:-1] + str((int(GTIN14[-1]) + 1) % 10)
    lot = GTIN_LOT.batch_id
    for url, status, needle in (
        (f"/01/{bad_check}/10/{lot}", 400, "商品条码无效"),
        (f"/01/12345/10/{lot}", 400, "商品条码无效"),
        (f"/01/{GTIN14[:-1]}X/10/{lot}", 400, "商品条码无效"),
        (f"/01/{GTIN14}/10/{'A' * 21}", 400, "批次号"),
        (f"/01/{GTIN14}/10/%E2%9C%93", 400, "批次号"),
        (f"/01/{GTIN14}", 404, "缺少批次号"),
        (f"/01/{GTIN14}/10/{with_check_digit(MARKET_NO + DATE + '9999999')}", 404, "未找到该批次"),
        (f"/01/{OTHER_GTIN}/10/{lot}", 404, "未找到该批次"),  # the batch, but other goods
        # goods registered under a market's own goods code have no Digital Link
        (f"/01/{GTIN14}/10/{LOTS[0].batch_id}", 404, "未找到该批次"),
    ):
        res = client.get(url)
        assert res.status_code == status, (url, res.status_code)
        assert res.headers["content-type"].startswith("text/html") and needle in res.text, url
    res = client.get(f"/01/{bad_check}/10/{lot}", headers={"Accept": "application/json"})
    assert res.status_code == 400 and "GTIN" in res.json()["detail"]
    res = client.get(f"/01/{bad_check}/10/{lot}?lang=en")
    assert "check digit" in res.text


# ---------------------------------------------------------------------------------------------
# What the listener refuses, and the headers it always sends


def test_the_regulator_api_is_not_here(world: World, client: TestClient) -> None:
    r = world.day.receipts[0]
    for url in (
        "/records",
        f"/records/{r.dev}/1",
        "/devices",
        "/stats",
        "/sites",
        "/forwarding",
        "/healthz",
        "/cylinders/C1",
        f"/trace/{r.trace_id}",
        "/markets/stops",
        f"/markets/batches/{LOTS[0].batch_id}",
        "/audit",
        "/console",
        "/metrics",
        "/docs",
        "/redoc",
        "/openapi.json",
        "/docs/oauth2-redirect",
    ):
        res = client.get(url)
        assert res.status_code == 404, url
    for url in (
        f"/markets/batches/{LOTS[0].batch_id}/stop",
        f"/markets/batches/{LOTS[0].batch_id}/lift",
    ):
        res = client.post(url, json={"reason": "x"})
        assert res.status_code == 404, url
    not_allowed = client.post(f"/t/{r.trace_id}")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "HEAD"}
    head = client.head(f"/t/{r.trace_id}")  # link checkers ask HEAD first
    assert head.status_code == 200 and head.content == b""
    # nothing was stopped through it
    with world.day.sut.read() as db:
        assert db.execute("SELECT COUNT(*) FROM batch_stops").fetchone()[0] == 2


def test_security_headers_on_every_response(world: World) -> None:
    app = public_app(world.day.sut, rate_per_min=60, burst=8)
    frozen(app)
    c = TestClient(app, raise_server_exceptions=False)
    r = world.day.receipts[0]
    responses = [
        c.get("/"),
        c.get(f"/t/{r.trace_id}"),
        c.get(f"/t/{r.trace_id}.json"),
        c.get("/assets/shopper.css"),
        c.get("/t/123"),
        c.get("/nowhere"),
        c.post("/t/123"),
        c.get(f"/01/{GTIN14}/10/{GTIN_LOT.batch_id}"),
    ]
    responses += [c.get("/") for _ in range(3)]  # past the burst: 429
    assert responses[-1].status_code == 429
    for res in responses:
        for name, value in SECURITY_HEADERS.items():
            assert res.headers.get(name) == value, (res.request.url, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert csp.startswith("default-src 'self'") and "frame-ancestors 'none'" in csp
    css = responses[3]
    assert css.headers["content-type"].startswith("text/css")
    assert "http" not in css.text and "url(" not in css.text  # no external assets


# ---------------------------------------------------------------------------------------------
# Rate limits


def frozen(app: FastAPI) -> list[float]:
    """Stop the app's rate limiter's clock (a loaded machine must not refill a bucket
    mid-test); move it by changing the list's one item."""
    now = [1000.0]
    app.state.limiter.clock = lambda: now[0]
    return now


def test_the_rate_limit_answers_429_after_the_burst_and_recovers(world: World) -> None:
    app = public_app(world.day.sut, rate_per_min=120, burst=5)  # one token each 0.5 s
    now = frozen(app)
    me = TestClient(app, client=("203.0.113.7", 40000))
    neighbour = TestClient(app, client=("203.0.113.8", 40000))
    url = f"/t/{world.day.receipts[0].trace_id}"
    assert [me.get(url).status_code for _ in range(5)] == [200] * 5
    refused = me.get(url)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "请求过于频繁" in refused.text and '<html lang="zh-CN">' in refused.text
    assert "Too many requests" in me.get(url + "?lang=en").text
    assert me.get(url + ".json").json()["detail"] == "请稍候 1 秒再试。"
    # another address has a bucket of its own
    assert neighbour.get(url).status_code == 200
    now[0] += 0.5  # one token back
    assert me.get(url).status_code == 200
    assert me.get(url).status_code == 429
    now[0] += 60  # a minute later: the whole burst again
    assert [me.get(url).status_code for _ in range(6)] == [200] * 5 + [429]
    # an IPv6 client is one client across its /64
    v6 = [TestClient(app, client=(f"2001:db8:1:2::{i:x}", 1)) for i in range(1, 8)]
    codes = [c.get("/").status_code for c in v6]
    assert codes[:5] == [200] * 5 and 429 in codes[5:]


def test_the_limiter_refills_and_keeps_its_table_bounded() -> None:
    now = [1000.0]
    lim = RateLimiter(60, 3, max_clients=100, clock=lambda: now[0])
    assert [lim.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert lim.take("a") == pytest.approx(1.0)
    now[0] += 0.5
    assert lim.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert lim.take("a") == 0.0
    now[0] += 3600  # refills to the burst, never beyond
    assert [lim.take("a") == 0.0 for _ in range(4)] == [True, True, True, False]
    for i in range(10_000):  # a flood of addresses
        lim.take(f"10.0.{i // 256}.{i % 256}")
    assert len(lim) == 100
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("2001:db8:0:1::1") != client_key("2001:db8::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "-"


# ---------------------------------------------------------------------------------------------
# [public] in the collector's config, and the listener in the running collector

COLLECTOR = """
[collector]
data_dir = "data"
registry = "devices.json"
command_key = "command.key"
[broker]
"""


def load_with(tmp_path: Path, extra: str) -> CollectorSettings:
    (tmp_path / "devices.json").write_text('{"devices": {}}')
    p = tmp_path / "collector.toml"
    p.write_text(COLLECTOR + extra)
    return load_collector(p, files=False)


def test_public_settings_defaults_and_values(tmp_path: Path) -> None:
    assert load_with(tmp_path, "").public == PublicSettings("127.0.0.1", 0, 60, 20)
    got = load_with(
        tmp_path, '[public]\nhost = "0.0.0.0"\nport = 8443\nrate_per_min = 30\nburst = 5\n'
    )
    assert got.public == PublicSettings("0.0.0.0", 8443, 30, 5)
    # the same port as the API on another address is another listener
    other = load_with(
        tmp_path, '[api]\nhost = "10.0.0.1"\nport = 80\n[public]\nhost = "10.0.0.2"\nport = 80\n'
    )
    assert other.public.port == other.api_port == 80


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[public]\nport = -1", "public.port: must be a port 1..65535 (0: off), not -1"),
        ("[public]\nport = 65536", "public.port: must be a port 1..65535 (0: off), not 65536"),
        ('[public]\nhost = ""\nport = 8081', "public.host: must be a host name or address"),
        ("[public]\nrate_per_min = 0", "public.rate_per_min: must be 1..60000 requests a minute"),
        ("[public]\nrate_per_min = 1.5", "public.rate_per_min"),
        ("[public]\nburst = 0", "public.burst: must be 1..10000 requests, not 0"),
        ("[public]\nburst = 100000", "public.burst: must be 1..10000 requests"),
        ("[public]\nrate = 5", "public.rate: unknown key"),
        ("[api]\nport = 8080\n[public]\nport = 8080", "public.port: must differ from api.port"),
        (
            '[api]\nhost = "0.0.0.0"\nport = 8080\n[public]\nhost = "127.0.0.1"\nport = 8080',
            "public.port: must differ from api.port",
        ),
    ],
)
def test_bad_public_settings_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_with(tmp_path, extra)
    assert message in str(ei.value)


def collector_cfg(tmp_path: Path, public: str, api_port: int = 0) -> Path:
    registry = tmp_path / "registry" / "devices.json"
    add_devices(registry, [new_device("market-scale", "MKT01")], int(time.time()))
    trust = site_trust(tmp_path, registry, "MKT01")
    cfg = collector_config(
        tmp_path / "collector.toml",
        tmp_path / "collector",
        registry,
        free_port(),  # no broker listens there: nothing is published
        None,
        command_key=trust.command_key,
        api_port=api_port,
    )
    with open(cfg, "a", encoding="utf-8") as f:
        f.write(f"\n[public]\n{public}\n")
    return cfg


def test_a_taken_public_port_stops_start_up(tmp_path: Path) -> None:
    api_port = free_port()
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    cfg = collector_cfg(tmp_path, f"port = {port}", api_port=api_port)
    try:
        with pytest.raises(
            StartupError, match=rf"public\.port: cannot listen on 127\.0\.0\.1:{port}"
        ):
            Collector(load_collector(cfg))
    finally:
        taken.close()
    # nothing was left held: the lock, the API's port; the next start-up binds both
    c = Collector(load_collector(cfg))
    assert c.public_server is not None and c.api_server is not None
    c.store.close()
    c.api_server.socket.close()
    c.public_server.socket.close()
    c.lock.release()


def test_the_running_collector_serves_both_listeners_apart(tmp_path: Path) -> None:
    api_port, port = free_port(), free_port()
    cfg = collector_cfg(tmp_path, f"port = {port}\nburst = 50", api_port=api_port)
    c = Collector(load_collector(cfg))
    build = Feed(SqliteStore(c.settings.store_path))
    lot = LOTS[0]
    build.commit([build.make("G", "market.entry", at(5), entry_body(lot))])
    sale = one_sale(lot, 1500, ts=at(8))
    build.commit([build.make("MKT-S01", "market.settlement", at(8), settlement_body(sale))])
    build.store.close()
    c.start()
    try:
        base = f"http://127.0.0.1:{port}"
        page = wait_for(f"{base}/t/{sale.trace_id}")
        assert page.status_code == 200 and sale.tran_id in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
        for path in ("/stats", "/records", "/devices", f"/trace/{sale.trace_id}", "/docs"):
            assert httpx.get(base + path, timeout=5).status_code == 404, path
        # the regulator's listener: the full trace needs a token there
        api = wait_for(f"http://127.0.0.1:{api_port}/healthz")
        assert api.status_code == 200
        full = httpx.get(f"http://127.0.0.1:{api_port}/trace/{sale.trace_id}", timeout=5)
        assert full.status_code == 401
    finally:
        c.stop()


def wait_for(url: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


_text = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    a=st.one_of(_text, st.from_regex(r"[0-9]{8,14}", fullmatch=True)),
    b=st.one_of(_text, st.from_regex(r"[0-9A-Za-z]{1,20}", fullmatch=True)),
    route=st.sampled_from(
        [
            "/t/{a}",
            "/t/{a}.json",
            "/trace/{a}/page",
            "/01/{a}",
            "/01/{a}/10/{b}",
            "/01/{a}/10/{b}/21/{a}",
            "/01/{a}/22/{b}/10/{b}",
            "/t?code={a}",
            "/?lang={b}",
        ]
    ),
    accept=st.sampled_from(["text/html", "application/json", "*/*", "application/json;q=x"]),
)
def test_the_public_routes_never_fail_on_any_input(
    client: TestClient, a: str, b: str, route: str, accept: str
) -> None:
    url = route.format(a=quote(a, safe=""), b=quote(b, safe=""))
    res = client.get(url, headers={"Accept": accept})
    assert res.status_code < 500, (url, res.status_code, res.text)
    assert res.headers["x-content-type-options"] == "nosniff"
