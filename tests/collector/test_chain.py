"""The chain across markets (卡单同行) on both stores: hops linked whichever record arrives
first, the walk back from a shopper's receipt to the origin, the recall reach forward, the
stop that follows the goods, and the chain flags."""

from __future__ import annotations

import csv
import io
from typing import Any

from collector import markets
from collector.markets import chain
from collector.markets.recall import recall, recall_csv
from simulators.chain import ChainDay, chain_day
from tests.collector.test_markets import Feed
from tests.stores import StoreUnderTest

T0 = 1_763_900_000_000


def _store(sut: StoreUnderTest, day: ChainDay, order: list[int] | None = None) -> None:
    """The day's records (signed in the order they happened: each device's seq grows with
    time) stored in ``order``, one commit a record, projected as each arrives."""
    feed = Feed(sut.store)
    goods = [feed.make(r.dev, r.kind, r.ts, r.body) for r in day.records]
    for i in list(range(len(day.records))) if order is None else order:
        feed.commit([goods[i]])
        while sut.store.project():
            pass


def _links(sut: StoreUnderTest) -> list[tuple[Any, ...]]:
    with sut.read() as db:
        return [
            tuple(r)
            for r in db.execute(
                "SELECT src.batch_id, s.dev, s.seq, l.line FROM market_links l "
                "JOIN market_sources src ON src.entry_id = l.entry_id "
                "JOIN records s ON s.id = l.record_id ORDER BY 1, 2, 3, 4"
            )
        ]


def test_every_shopper_receipt_walks_back_to_the_origin(any_store: StoreUnderTest) -> None:
    day = chain_day(T0)
    _store(any_store, day)
    with any_store.read() as db:
        for code in day.shopper_codes:
            tc = markets.trace_chain(db, code)
            assert tc is not None
            link = tc.sale.lines[0].batch
            assert link.batch_id in day.retail_batches
            assert link.source is not None and link.source.found
            assert len(link.hops) == 1
            hop = link.hops[0]
            assert hop.sale.market == day.wholesale.code
            assert hop.batch is not None and hop.batch.batch_id in day.wholesale_batches
            assert hop.batch.entry is not None and hop.batch.source is None  # the origin
            assert hop.batch.entry.origin in tc.origins
            assert "source_unknown" not in tc.flags


def test_hops_are_the_same_whichever_record_arrives_first(any_store: StoreUnderTest) -> None:
    day = chain_day(T0)
    n = len(day.records)
    _store(any_store, day, list(reversed(range(n))))  # every sale before its entry
    ordered = _links(any_store)
    assert len(ordered) == len(day.retail_batches)
    with any_store.read() as db:
        assert chain.flags(db) == []


def test_recall_reaches_every_downstream_sale(any_store: StoreUnderTest) -> None:
    day = chain_day(T0)
    _store(any_store, day)
    root = day.wholesale_batches[0]
    with any_store.read() as db:
        reach = recall(db, root)
        assert reach is not None
        down = {h.batch_id for h in reach.downstream}
        assert down == {b for b in day.retail_batches if b[12:19] == root[12:19]}
        assert all(h.hop == 1 and h.from_batch == root for h in reach.downstream)
        retail_codes = {x.trace_id for h in reach.downstream for x in h.lines}
        shoppers = {
            r.body["trace_id"]
            for r in day.records
            if r.kind == "market.settlement" and r.body["lines"][0]["batch_id"] in down
        }
        assert retail_codes == shoppers and len(shoppers) == 6
        assert {x.buyer for x in reach.lines} == {t[0] for m in day.retail for t in m.traders[:1]}
        rows = list(csv.reader(io.StringIO(recall_csv(reach, lang="en").lstrip("\ufeff"))))
        assert rows[0][-2:] == ["Batch", "Hop"]
        assert len(rows) == 1 + len(reach.lines) + len(shoppers)
        assert {r[-1] for r in rows[1:]} == {"0", "1"}


def test_a_stop_follows_the_goods_and_lifts_with_them(any_store: StoreUnderTest) -> None:
    day = chain_day(T0)
    half = [i for i, r in enumerate(day.records) if r.ts <= day.records[5].ts]
    rest = [i for i in range(len(day.records)) if i not in half]
    _store(any_store, day, half)
    root = day.wholesale_batches[0]
    down = [b for b in day.retail_batches if b[12:19] == root[12:19]]
    with any_store.write() as db:
        res = markets.stop_trading(db, root, "瘦肉精抽检阳性", now_ms=T0)
    assert res.issued
    with any_store.read() as db:
        stopped = {s.batch_id for s in markets.stops(db)}
        v1 = markets.stop_list_version(db)
    assert root in stopped
    # the first retail batch was entered already; the second arrives after the order
    assert down[0] in stopped and down[1] not in stopped
    _store(any_store, day, rest)
    with any_store.read() as db:
        stopped = {s.batch_id for s in markets.stops(db)}
        assert set(down) <= stopped
        assert markets.stop_list_version(db) > v1
        order = markets.stop_order(db, down[1])
        assert order is not None and root in order.reason and order.issued_ms == T0
        kinds = [
            r[0] for r in db.execute("SELECT detail FROM alarms WHERE kind = 'sold_after_stop'")
        ]
        assert any(down[1] in k for k in kinds)  # retail sales after the wholesale stop
    with any_store.write() as db:
        markets.lift_stop(db, root, "复检合格")
    with any_store.read() as db:
        assert markets.stops(db) == []


def test_unknown_and_over_quantity_sources_are_flagged_not_refused(
    any_store: StoreUnderTest,
) -> None:
    day = chain_day(T0)
    entries = [r for r in day.records if r.kind == "market.entry" and "source" in r.body]
    first = entries[0]
    feed = Feed(any_store.store)
    more = dict(first.body, batch_id="33061225112399999990", quantity_g=first.body["quantity_g"])
    feed.commit([feed.make(first.dev, "market.entry", first.ts, first.body)])
    feed.commit([feed.make(first.dev, "market.entry", first.ts + 1, more)])
    while any_store.store.project():
        pass
    with any_store.read() as db:
        got = {(f.flag, f.batch_id) for f in chain.flags(db)}
    assert got == {("source_unknown", first.body["batch_id"]), ("source_unknown", more["batch_id"])}
    # the upstream sale arrives: unknown clears, and two entries took twice what it sold
    sale = next(
        r
        for r in day.records
        if r.kind == "market.settlement" and r.body["trace_id"] == first.body["source"]["trace_id"]
    )
    feed.commit([feed.make(sale.dev, sale.kind, sale.ts, sale.body)])
    while any_store.store.project():
        pass
    with any_store.read() as db:
        got = {(f.flag, f.batch_id) for f in chain.flags(db)}
        assert got == {
            ("source_over_quantity", first.body["batch_id"]),
            ("source_over_quantity", more["batch_id"]),
        }
        tc = markets.trace_chain(db, sale.body["trace_id"])
        assert tc is not None


def test_the_public_answer_walks_back_without_personal_data(any_store: StoreUnderTest) -> None:
    from fastapi.testclient import TestClient

    from collector.public import make_public_app

    if any_store.postgres:  # the public listener reads the SQLite store (docs/public.md)
        return
    day = chain_day(T0)
    _store(any_store, day)
    client = TestClient(make_public_app(any_store.ctx(), 60_000, 10_000))
    code = day.shopper_codes[0]  # this shopper is named on the receipt
    got = client.get(f"/t/{code}.json")
    assert got.status_code == 200, got.text
    batch = got.json()["lines"][0]["batch"]
    assert len(batch["hops"]) == 1
    hop = batch["hops"][0]
    assert hop["market"]["code"] == day.wholesale.code
    assert hop["batch"]["batch_id"] in day.wholesale_batches
    assert "定点屠宰厂" in hop["batch"]["origin"] and hop["batch"]["cert_no"]
    text = got.text
    secrets = {t[1] for m in (day.wholesale, *day.retail) for t in m.traders}  # card UIDs
    secrets |= {
        str(r.body[k])
        for r in day.records
        for k in ("buyer", "buyer_card", "terminal", "card", "seller_card")
        if r.body.get(k)
    }
    secrets |= {r.dev for r in day.records}
    # a retail trader bought at wholesale: shown as the seller of its retail receipt (a
    # business, public), not as the buyer of the wholesale sale
    secrets -= {t[0] for m in day.retail for t in m.traders}
    assert not [s for s in secrets if s in text]
    assert "buyer" not in text
    page = client.get(f"/t/{code}?lang=en")
    assert page.status_code == 200
    assert "One step back (hop 1)" in page.text and hop["batch"]["cert_no"] in page.text
    assert not [s for s in secrets if s in page.text]


def test_the_regulators_api_gives_hops_reach_and_flags(any_store: StoreUnderTest) -> None:
    from fastapi.testclient import TestClient

    from collector.api import make_app

    day = chain_day(T0)
    _store(any_store, day)
    extra = next(r for r in day.records if r.kind == "market.entry" and "source" in r.body)
    feed = Feed(any_store.store)
    ghost = dict(extra.body, batch_id="33061225112399999990")
    ghost["source"] = {"trace_id": "83306122511230199999", "via": "barcode"}
    feed.commit([feed.make("GHOST-GATE", "market.entry", extra.ts, ghost)])
    client = TestClient(make_app(any_store.ctx()), headers=any_store.admin_headers())
    code = day.shopper_codes[0]
    tc = client.get(f"/trace/{code}")
    assert tc.status_code == 200, tc.text
    hop = tc.json()["sale"]["lines"][0]["batch"]["hops"][0]
    assert hop["batch"]["batch_id"] in day.wholesale_batches
    root = day.wholesale_batches[0]
    reach = client.get(f"/markets/batches/{root}/recall")
    assert reach.status_code == 200, reach.text
    down = reach.json()["downstream"]
    assert len(down) == 2 and all(d["lines"] for d in down)
    assert any(x["buyer"] for d in down for x in d["lines"])  # shoppers, for the regulator
    csv_text = client.get(f"/markets/batches/{root}/recall.csv").text
    assert all(d["batch_id"] in csv_text for d in down)
    flags = client.get("/markets/chain/flags").json()
    assert [(f["flag"], f["batch_id"]) for f in flags] == [("source_unknown", ghost["batch_id"])]


def test_the_console_recall_page_shows_the_downstream_markets(any_store: StoreUnderTest) -> None:
    from fastapi.testclient import TestClient

    from collector.api import make_app

    day = chain_day(T0)
    _store(any_store, day)
    token = any_store.token("admin", "all")
    c = TestClient(
        make_app(any_store.ctx()),
        follow_redirects=False,
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert c.post("/console/login", data={"token": token}).status_code == 303
    root = day.wholesale_batches[0]
    page = c.get(f"/console/recall/{root}?lang=en")
    assert page.status_code == 200, page.text
    down = [b for b in day.retail_batches if b[12:19] == root[12:19]]
    assert "Downstream" in page.text and all(b in page.text for b in down)
    retail_codes = [
        r.body["trace_id"]
        for r in day.records
        if r.kind == "market.settlement" and r.body["lines"][0]["batch_id"] in down
    ]
    assert all(code in page.text for code in retail_codes)


def _entry(batch: str, qty: int, source: dict[str, str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market": "M1",
        "trader": "T1",
        "batch_id": batch,
        "cert_no": "C1",
        "origin": "somewhere",
        "goods_code": "1001",
        "goods_name": "pork",
        "quantity_g": qty,
    }
    if source is not None:
        body["source"] = source
    return body


def _sale(trace: str, tran: str, batch: str, grams: int) -> dict[str, Any]:
    line = {
        "batch_id": batch,
        "goods_code": "1001",
        "goods_name": "pork",
        "mode": "weighed",
        "weight_g": grams,
        "price_fen_per_kg": 1000,
        "amount_fen": grams,
    }
    return {
        "market": "M1",
        "terminal": "M1-001",
        "scale_sw": "v1",
        "tran_id": tran,
        "trace_id": trace,
        "seller": "T1",
        "seller_card": "0A0B0C0D",
        "lines": [line],
        "total_fen": grams,
    }


A, B = "A" * 19 + "1", "B" * 19 + "1"
S1, S2 = "83000000000000000001", "83000000000000000002"
V1, V2 = "V" * 19 + "1", "V" * 19 + "2"


def test_a_cycle_of_hops_ends_the_walks(any_store: StoreUnderTest) -> None:
    """Impossible with honest codes (a sale names batches entered before it), so forged:
    A came from sale S2 of B, B from sale S1 of A. Every walk ends, each batch once."""
    feed = Feed(any_store.store)
    feed.commit(
        [
            feed.make("G", "market.entry", T0, _entry(A, 5000, {"trace_id": S2, "via": "qr"})),
            feed.make("G", "market.entry", T0 + 1, _entry(B, 5000, {"trace_id": S1, "via": "qr"})),
            feed.make("S", "market.settlement", T0 + 2, _sale(S1, V1, A, 4000)),
            feed.make("S", "market.settlement", T0 + 3, _sale(S2, V2, B, 4000)),
        ]
    )
    while any_store.store.project():
        pass
    with any_store.read() as db:
        tc = markets.trace_chain(db, S1)
        assert tc is not None
        link = tc.sale.lines[0].batch  # A
        assert link.hops[0].batch is not None and link.hops[0].batch.batch_id == B
        assert link.hops[0].batch.hops[0].batch is None  # A again: not walked twice
        assert [d.batch_id for d in chain.downstream(db, A)] == [B]
        reach = recall(db, A)
        assert reach is not None and [h.batch_id for h in reach.downstream] == [B]
    with any_store.write() as db:
        markets.stop_trading(db, A, "test", now_ms=T0)
    with any_store.read() as db:
        assert {s.batch_id for s in markets.stops(db)} == {A, B}


def test_over_quantity_has_a_tolerance_and_a_lifted_follower_stays_lifted(
    any_store: StoreUnderTest,
) -> None:
    feed = Feed(any_store.store)
    src = {"tran_id": V1, "via": "keyed"}
    feed.commit(
        [
            feed.make("G", "market.entry", T0, _entry(A, 100_000, None)),
            feed.make("S", "market.settlement", T0 + 1, _sale(S1, V1, A, 10_000)),
            # 2 % of 10 kg is 200 g: 10.2 kg is within, one more gram is not
            feed.make("R", "market.entry", T0 + 2, _entry(B, 10_200, src)),
        ]
    )
    while any_store.store.project():
        pass
    with any_store.read() as db:
        assert chain.flags(db) == []
    c = "C" * 19 + "1"
    feed.commit([feed.make("R", "market.entry", T0 + 3, _entry(c, 1, src))])
    while any_store.store.project():
        pass
    with any_store.read() as db:
        assert {(f.flag, f.batch_id) for f in chain.flags(db)} == {
            ("source_over_quantity", B),
            ("source_over_quantity", c),
        }
    with any_store.write() as db:
        markets.stop_trading(db, A, "test", now_ms=T0)
        markets.lift_stop(db, B, "B's goods tested clean")
    with any_store.write() as db:  # a later projection step does not stop B again
        markets.follow_stops(db)
    with any_store.read() as db:
        assert {s.batch_id for s in markets.stops(db)} == {A, c}
    with any_store.write() as db:
        markets.lift_stop(db, A, "cleared")
    with any_store.read() as db:
        assert markets.stops(db) == []


def test_the_console_lists_chain_flags_within_scope(any_store: StoreUnderTest) -> None:
    from fastapi.testclient import TestClient

    from collector.api import make_app

    feed = Feed(any_store.store)
    feed.commit(
        [feed.make("R", "market.entry", T0, _entry(B, 1000, {"tran_id": V1, "via": "keyed"}))]
    )
    while any_store.store.project():
        pass
    app = make_app(any_store.ctx())
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    seen = {}
    for who, scope in (("admin", "all"), ("operator", "market:M9")):
        c = TestClient(app, follow_redirects=False, headers=html)
        token = any_store.token(who, scope)
        assert c.post("/console/login", data={"token": token}).status_code == 303
        page = c.get("/console/recall?lang=en")
        assert page.status_code == 200, page.text
        seen[who] = "source_unknown" in page.text and B in page.text
    assert seen == {"admin": True, "operator": False}  # another market's operator sees none


def test_the_batch_view_shows_where_a_retail_batch_came_from(any_store: StoreUnderTest) -> None:
    from fastapi.testclient import TestClient

    from collector.api import make_app

    day = chain_day(T0)
    _store(any_store, day)
    retail = day.retail_batches[0]
    app = make_app(any_store.ctx())
    api = TestClient(app, headers=any_store.admin_headers())
    got = api.get(f"/markets/batches/{retail}")
    assert got.status_code == 200, got.text
    view = got.json()
    assert (
        view["source"]["found"]
        and view["hops"][0]["batch"]["batch_id"] == (day.wholesale_batches[0])
    )
    c = TestClient(
        app, follow_redirects=False, headers={"Accept": "text/html,application/xhtml+xml"}
    )
    assert c.post("/console/login", data={"token": any_store.token()}).status_code == 303
    page = c.get(f"/console/markets/batches/{retail}?lang=en")
    assert page.status_code == 200, page.text
    assert "Upstream sale" in page.text and day.wholesale_batches[0] in page.text
