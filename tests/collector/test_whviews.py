"""The collector's warehouse views on both stores: stock per site and product, movements,
the 5-day list of controlled-chemical sales for public security (JSON, CSV, marked reported,
audited), and a site-scoped inspector seeing only its site."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from collector import audit, whviews
from collector.api import make_app
from collector.public import make_public_app
from tests.collector.test_markets import Feed, at
from tests.stores import StoreUnderTest

A, B = "WH01", "WH02"
DEV_A, DEV_B = "WHS-A-0001", "WHS-B-0001"
DAY = 24.0


def gid(n: int) -> str:
    return f"https://id.gs1.org/01/06930000000013/21/{n}"


def item(n: int) -> dict[str, Any]:
    return {"scheme": "gs1", "id": gid(n), "level": "unit"}


def goods_in(site: str, ns: list[int], qty: int, lot: str, cls: str = "chemical_toxic") -> Any:
    return {
        "site": site,
        "operator": "OP-01",
        "product_class": cls,
        "product": {"name": "氰化钠", "code": "NACN-25"},
        "items": [item(n) for n in ns],
        "quantity": qty,
        "unit": "g",
        "lot": lot,
    }


def goods_out(site: str, ns: list[int], qty: int, lot: str, cls: str = "chemical_toxic") -> Any:
    return {
        **goods_in(site, ns, qty, lot, cls),
        "party": "宁波港华电镀厂",
        "party_address": "宁波市北仑区新碶街道1号",
        "handler": "李四",
        "handler_id": "330206198001011234",
        "licence": "JD-330200-2025-0042",
        "use": "电镀",
    }


class SiteFeed(Feed):
    """Commits each record under the site its body names (a site's gateway sends it)."""

    def commit(self, goods: list[Any]) -> tuple[int, int]:
        for site in (A, B):
            mine = [g for g in goods if g.dev == (DEV_A if site == A else DEV_B)]
            self.batches += 1
            self.store.commit(site, f"b{self.batches}", mine, [])
        return len(goods), 0


def feed_day(sut: StoreUnderTest) -> None:
    f = SiteFeed(sut.store)
    f.commit(
        [
            f.make(DEV_A, "goods.in", at(1), goods_in(A, [1, 2, 3], 75_000, "L1")),
            f.make(DEV_A, "goods.in", at(1.5), goods_in(A, [4], 25_000, "L2")),
            f.make(DEV_A, "goods.out", at(2), goods_out(A, [1], 25_000, "L1")),  # day 0
            f.make(DEV_A, "goods.out", at(DAY + 2), goods_out(A, [2], 25_000, "L1")),  # day 1
            f.make(
                DEV_A, "goods.in", at(3), goods_in(A, [9], 5_000, "F1", "fertiliser")
            ),  # not controlled
            f.make(DEV_A, "goods.out", at(4), goods_out(A, [9], 5_000, "F1", "fertiliser")),
            f.make(DEV_B, "goods.in", at(1), goods_in(B, [21], 10_000, "LB")),
            f.make(DEV_B, "goods.out", at(5), goods_out(B, [21], 10_000, "LB")),
        ]
    )


def test_stock_movements_and_the_report_list(any_store: StoreUnderTest) -> None:
    feed_day(any_store)
    with any_store.read() as db:
        st = whviews.stock(db)
        assert [(x.site, x.product, x.quantity, x.lots) for x in st] == [
            (A, "NACN-25", 50_000, ["L1", "L2"])  # fertiliser in and out: 0, left out
        ]
        assert st[0].product_class == "chemical_toxic" and st[0].unit == "g"
        assert whviews.stock(db, product_class="fertiliser") == []
        assert whviews.stock(db, frozenset({B})) == []
        mv = whviews.movements(db, frozenset({A}))
        assert len(mv) == 6 and mv[0].ts == at(DAY + 2) and {m.site for m in mv} == {A}
        assert [m.kind for m in whviews.movements(db, site=A, kinds=["goods.out"])] == [
            "goods.out"
        ] * 3
        page = whviews.movements(db, site=A, limit=2, offset=2)
        assert [m.ts for m in page] == [at(3), at(2)]
        assert len(whviews.movements(db, since_ms=at(1.2), until_ms=at(2.5))) == 2
        # one item's movements: in with three, out alone
        assert [m.ts for m in whviews.movements(db, item=gid(1))] == [at(2), at(1)]
        assert whviews.movements(db, item=gid(1)[:-1]) == []  # a prefix is not the id
        assert whviews.movements(db, item="https://id.gs1.org/01/0693000000001_/21/1") == []
        # the 5-day window by China's local date: a sale at 02:00 CST on day 0 is due day 5
        now = at(5 * DAY + 23.9)  # day 5, 23:54 CST
        rep = whviews.to_report(db, now_ms=now)
        assert [(x.site, x.ts, x.days_left, x.overdue) for x in rep] == [
            (A, at(2), 0, False),
            (B, at(5), 0, False),
            (A, at(DAY + 2), 1, False),
        ]
        late = whviews.to_report(db, now_ms=at(6 * DAY + 0.1))  # day 6, 00:06 CST
        assert [(x.days_left, x.overdue) for x in late][:1] == [(-1, True)]
        assert rep[0].buyer == "宁波港华电镀厂" and rep[0].handler_id == "330206198001011234"
        assert rep[0].sale_date == "2025-11-24" and rep[0].due_date == "2025-11-29"
        text = whviews.report_csv(rep)
        assert text.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(text[1:])))
        assert rows[0][0] == "售出时间 sold at" and len(rows) == 4
        assert rows[1][9] == "宁波港华电镀厂" and rows[1][14] == "电镀" and rows[1][17] == "否 no"


def test_marking_reported_empties_the_list_and_is_audited(any_store: StoreUnderTest) -> None:
    feed_day(any_store)
    with any_store.read() as db:
        rep = whviews.to_report(db, frozenset({A}), now_ms=at(30))
    keys = [(x.dev, x.seq) for x in rep]
    actor = audit.Actor("officer", "inspector", "10.0.0.1")
    with any_store.write() as db:
        try:
            whviews.mark_reported(db, [(DEV_B, 2)], actor, "x", frozenset({A}))
            raise AssertionError("out of scope marked")
        except whviews.UnknownSale:
            pass
    with any_store.write() as db:
        res = whviews.mark_reported(db, keys, actor, "公安回执 2025-118", frozenset({A}))
    assert len(res.marked) == 2 and res.already == []
    with any_store.write() as db:
        again = whviews.mark_reported(db, keys[:1], actor, "again", None)
    assert again.marked == [] and len(again.already) == 1
    with any_store.read() as db:
        assert whviews.to_report(db, frozenset({A}), now_ms=at(30)) == []
        assert [x.site for x in whviews.to_report(db, now_ms=at(30))] == [B]
        log = audit.entries(db, action="goods.reported")
        first = log[-1]  # newest first
        assert len(log) == 2 and first.actor == "officer" and first.role == "inspector"
        assert first.target == ",".join(res.marked) and first.detail["note"] == "公安回执 2025-118"


def test_the_api_serves_a_site_inspector_its_site_only(any_store: StoreUnderTest) -> None:
    feed_day(any_store)
    reg = any_store.path.parent / "devices.json"
    reg.write_text('{"devices": {}}')
    client = TestClient(make_app(any_store.ctx(registry_path=reg)))
    site_a = {"Authorization": f"Bearer {any_store.token('inspector', f'site:{A}')}"}
    rep = client.get("/warehouse/report", headers=site_a)
    assert rep.status_code == 200 and {x["site"] for x in rep.json()} == {A}
    assert len(rep.json()) == 2
    csv_ = client.get("/warehouse/report.csv", headers=site_a)
    assert csv_.headers["content-type"].startswith("text/csv")
    assert csv_.content.startswith("\ufeff".encode())
    assert {x["site"] for x in client.get("/warehouse/stock", headers=site_a).json()} == {A}
    mv = client.get("/warehouse/movements", params={"site": B}, headers=site_a)
    assert mv.status_code == 200 and mv.json() == []
    b_sale = {"sales": [{"dev": DEV_B, "seq": 2}], "note": "n"}
    assert client.post("/warehouse/report/marked", json=b_sale, headers=site_a).status_code == 404
    keys = [{"dev": x["dev"], "seq": x["seq"]} for x in rep.json()]
    ok = client.post("/warehouse/report/marked", json={"sales": keys, "note": "r1"}, headers=site_a)
    assert ok.status_code == 200 and len(ok.json()["marked"]) == 2
    assert client.get("/warehouse/report", headers=site_a).json() == []
    admin = any_store.admin_headers()
    assert [x["site"] for x in client.get("/warehouse/report", headers=admin).json()] == [B]
    op = {"Authorization": f"Bearer {any_store.token('operator', 'market:M1')}"}
    assert client.get("/warehouse/report", headers=op).status_code == 403
    # the public listener has none of it, with or without a token
    public = TestClient(make_public_app(any_store.ctx()))
    for url in ("/warehouse/report", "/warehouse/report.csv", "/warehouse/stock"):
        r = public.get(url, headers=admin)
        assert r.status_code == 404 and "宁波" not in r.text, url


class PlanSpy:
    """Runs each query and keeps its plan (EXPLAIN) on either store."""

    def __init__(self, db: Any, postgres: bool) -> None:
        self.db, self.postgres, self.plans = db, postgres, list[str]()

    def execute(self, sql: str, args: Any = ()) -> Any:
        explain = "EXPLAIN " if self.postgres else "EXPLAIN QUERY PLAN "
        self.plans.append(str(self.db.execute(explain + sql, args).fetchall()))
        return self.db.execute(sql, args)


def test_the_views_read_a_sites_goods_from_the_partial_indexes(any_store: StoreUnderTest) -> None:
    feed_day(any_store)
    with any_store.write() as db:
        if any_store.postgres:  # a tiny table: make the planner show it can use the index
            db.execute("SET LOCAL enable_seqscan = off")
        spy = PlanSpy(db, any_store.postgres)
        whviews.stock(spy, frozenset({A}))
        whviews.movements(spy, frozenset({A}))
        whviews.to_report(spy, frozenset({A}), now_ms=at(30))
    assert "records_goods" in spy.plans[0] and "records_goods" in spy.plans[1]
    assert "records_goods_controlled" in spy.plans[2]


JSON_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10
)  # no raw NUL in JSON


@given(st.text(max_size=40), JSON_TEXT, JSON_TEXT)
def test_an_items_like_pattern_matches_its_json_string_and_no_wildcard(
    item: str, before: str, after: str
) -> None:
    import sqlite3

    from wire.canonical import canonical

    db = sqlite3.connect(":memory:")
    text = before + canonical(item).decode() + after
    pattern = whviews.item_pattern(item)
    assert db.execute("SELECT ? LIKE ? ESCAPE '!'", (text, pattern)).fetchone()[0] == 1
    if "_" in item or "%" in item:  # the id with its wildcard characters replaced: no match
        other = canonical(item.replace("_", "x").replace("%", "y")).decode()
        assert db.execute("SELECT ? LIKE ? ESCAPE '!'", (other, pattern)).fetchone()[0] == 0
