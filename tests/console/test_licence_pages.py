"""The console's licence pages on both stores: the licences in scope with their use per site
against their quantity (overdrawn flagged, a filter for those only), one licence's versions
with what changed, its sales with the dispatch decision that let each leave, the reporting
list linking to it; a site's inspector sees its sites' licences and shares only (404
outside), holder names are escaped, and both languages render."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from collector import licence_sales, licences
from collector.api import make_app
from collector.console import pages_licences
from tests.collector.test_licence_use import LIC, licence, other
from tests.collector.test_markets import at, connect
from tests.collector.test_whviews import (
    DEV_A,
    DEV_B,
    A,
    B,
    PlanSpy,
    SiteFeed,
    feed_day,
    gid,
    goods_out,
)
from tests.console.test_warehouse_pages import login
from tests.stores import StoreUnderTest

GW_A = "GW-WH01"
HOSTILE = '<script>alert("x")</script> & Co'


def dispatch(reg_ver: int) -> dict[str, Any]:
    return {
        "site": A,
        "terminal": DEV_A,
        "operator": "OP-01",
        "product_class": "chemical_toxic",
        "items": [gid(3)],
        "quantity": 1_000,
        "unit": "g",
        "licence": LIC,
        "decision": "allow",
        "reasons": [],
        "reg_ver": reg_ver,
        "used_here": 55_000,
        "used_elsewhere": 10_000,
    }


def setup(sut: StoreUnderTest) -> int:
    """The day's sales (A: 55 000 g, B: 10 000 g against LIC), a licence changed twice
    (60 000 g at A and B: overdrawn), and one more sale at A the gateway's dispatch let go."""
    feed_day(sut)
    db = connect(sut)
    try:
        licences.import_licences(db, [{**licence(80_000, [A]), "valid_until": "2025-06-30"}])
        v2 = licences.import_licences(
            db,
            [
                licence(60_000, [A, B]),
                {**other("JD-B", [B]), "holder": HOSTILE},
                other("JD-ALL", ["*"]),
            ],
        )
    finally:
        db.close()
    f = SiteFeed(sut.store)
    f.seqs[DEV_A] = 100
    gate = f.make(GW_A, "goods.dispatch", at(8), dispatch(v2))
    out = f.make(DEV_A, "goods.out", at(8.01), {**goods_out(A, [3], 1_000, "L1"), "gate_seq": 1})
    sut.store.commit(A, "gw", [gate, out], [])
    return v2


def test_licence_pages_scope_overdraw_history_and_sales(any_store: StoreUnderTest) -> None:
    v2 = setup(any_store)
    app = TestClient(make_app(any_store.ctx()))
    admin = login(app, any_store.token("admin"))
    for url in (
        "/console/warehouse/licences",
        "/console/warehouse/licences?overdrawn=1",
        f"/console/warehouse/licences/{LIC}",
        "/console/warehouse/licences/JD-B",
    ):
        for lang in ("zh", "en"):
            sep = "&" if "?" in url else "?"
            r = admin.get(f"{url}{sep}lang={lang}")
            assert r.status_code == 200, (url, r.text[:400])

    page = admin.get("/console/warehouse/licences?lang=en").text
    assert f'href="/console/warehouse/licences/{LIC}"' in page
    assert "OVERDRAWN" in page and "over by 6000 g" in page  # 66 000 g against 60 000 g
    assert f"{A}: 56000 g" in page and f"{B}: 10000 g" in page
    assert "JD-ALL" in page and "every site" in page
    assert (
        HOSTILE not in page and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in page
    )
    only = admin.get("/console/warehouse/licences?overdrawn=1&lang=en").text
    assert LIC in only and "JD-ALL" not in only and "JD-B" not in only

    one = admin.get(f"/console/warehouse/licences/{LIC}?lang=en").text
    # versions oldest first, the second naming what changed: quantity, validity, sites
    versions = one[one.index("Versions as imported") : one.index("Sales against it")]
    assert versions.index("80000 g") < versions.index("60000 g")
    assert "first import" in versions and "quantity, validity, sites" in versions
    assert "Its sites together let 66000 g leave, above its 60000 g." in one
    # the sale the gateway let go, with its decision; the others had no gate_seq
    assert "allow" in one and f"{GW_A} #1" in one and f"registry version {v2}" in one
    assert one.count("宁波港华电镀厂") >= 5  # holder and the buyer of each of 5 sales
    assert one.count(f'href="/console/devices/{DEV_A}"') == 4
    report = admin.get("/console/warehouse/report").text
    assert f'<a href="/console/warehouse/licences/{LIC}">{LIC}</a>' in report

    # a site's inspector: the licences valid at its site, its own share, the total
    site_a = login(app, any_store.token("inspector", f"site:{A}"))
    page = site_a.get("/console/warehouse/licences?lang=en").text
    assert LIC in page and "JD-ALL" in page and "JD-B" not in page
    assert f"{A}: 56000 g" in page and f"{B}: 10000 g" not in page and "66000 g" in page
    one = site_a.get(f"/console/warehouse/licences/{LIC}?lang=en").text
    assert DEV_B not in one and one.count(f'href="/console/devices/{DEV_A}"') == 4
    assert site_a.get("/console/warehouse/licences/JD-B").status_code == 404
    site_b = login(app, any_store.token("inspector", f"site:{B}"))
    one = site_b.get(f"/console/warehouse/licences/{LIC}?lang=en").text
    assert "80000 g" not in one  # the first version was for A only
    assert DEV_A not in one and DEV_B in one
    assert site_b.get("/console/warehouse/licences/JD-NONE").status_code == 404
    nf = site_b.get("/console/warehouse/licences/JD-NONE?lang=en")
    assert "No such thing in your scope." in nf.text

    op = login(app, any_store.token("operator", "market:M1"))
    assert op.get("/console/warehouse/licences").status_code == 403
    assert op.get(f"/console/warehouse/licences/{LIC}").status_code == 403


def test_a_licence_number_with_a_slash_or_a_query_mark_links_to_its_page(
    any_store: StoreUnderTest,
) -> None:
    db = connect(any_store)
    try:
        licences.import_licences(db, [other("JD/2025?#1", [A])])
    finally:
        db.close()
    app = TestClient(make_app(any_store.ctx()))
    admin = login(app, any_store.token("admin"))
    page = admin.get("/console/warehouse/licences").text
    href = "/console/warehouse/licences/JD/2025%3F%231"
    assert f'href="{href}"' in page
    assert "JD/2025?#1" in admin.get(href).text


def test_the_sales_page_and_its_decisions_are_two_queries(any_store: StoreUnderTest) -> None:
    setup(any_store)
    with any_store.read() as db:
        seen: list[str] = []

        class Spy:
            def execute(self, sql: str, args: Any = ()) -> Any:
                seen.append(sql)
                return db.execute(sql, args)

        got = licence_sales.sales(Spy(), LIC, frozenset({A}), limit=2)  # type: ignore[arg-type]
        more = licence_sales.sales(db, LIC, frozenset({A}), limit=2, offset=2)
    assert [x.seq for x in got] == [4, 101] and got[0].dispatch is None  # newest first
    assert got[1].dispatch is not None and got[1].dispatch.reg_ver > 0
    assert [x.seq for x in more] == [6, 3]
    assert len(seen) == 2


def test_the_sales_and_their_decisions_are_read_from_indexes(any_store: StoreUnderTest) -> None:
    setup(any_store)
    with any_store.write() as db:
        if any_store.postgres:  # a tiny table: make the planner show it can use the index
            db.execute("SET LOCAL enable_seqscan = off")
        spy = PlanSpy(db, any_store.postgres)
        assert licence_sales.sales(spy, LIC, frozenset({A}))[1].dispatch is not None
    # the licensed sales' index, or the goods index by site (PostgreSQL picks the latter)
    assert "records_goods" in spy.plans[0] and "Seq Scan" not in spy.plans[0]
    assert ("records_site_ts" if any_store.postgres else "records_goods_dispatch") in spy.plans[1]


def test_the_sales_are_paged(any_store: StoreUnderTest, monkeypatch: Any) -> None:
    setup(any_store)
    monkeypatch.setattr(pages_licences, "SALES_PAGE", 3)
    app = TestClient(make_app(any_store.ctx()))
    admin = login(app, any_store.token("admin"))
    first = admin.get(f"/console/warehouse/licences/{LIC}").text
    older = f'href="/console/warehouse/licences/{LIC}?offset=3"'
    assert older in first and first.count('href="/console/devices/') == 3
    rest = admin.get(f"/console/warehouse/licences/{LIC}?offset=3").text
    assert "?offset=6" not in rest and rest.count('href="/console/devices/') == 2  # 5 sales
