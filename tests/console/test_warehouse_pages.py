"""The console's warehouse pages on both stores: stock, movements and the 5-day reporting
list render in both languages, the CSV downloads, ticked sales are marked reported through
the form (CSRF-checked, audited) and leave the list, and a site's inspector sees its site
only; a market operator gets none of them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from collector import audit
from collector.api import make_app
from tests.collector.test_whviews import DEV_A, DEV_B, A, B, feed_day
from tests.console.test_pages import BROWSER, csrf
from tests.stores import StoreUnderTest

PAGES = (
    "/console/warehouse",
    "/console/warehouse?product_class=chemical_toxic&site=WH01",
    "/console/warehouse/movements",
    "/console/warehouse/movements?kind=goods.out&offset=0",
    "/console/warehouse/report",
    "/console/warehouse/movements?item=https%3A%2F%2Fid.gs1.org%2F01%2F06930000000013%2F21%2F1",
)


def login(app: TestClient, token: str) -> TestClient:
    c = TestClient(app.app, follow_redirects=False, headers=BROWSER)
    assert c.post("/console/login", data={"token": token}).status_code == 303
    return c


def test_warehouse_pages_mark_reported_and_scope(any_store: StoreUnderTest) -> None:
    feed_day(any_store)
    app = TestClient(make_app(any_store.ctx()))
    admin = login(app, any_store.token("admin"))
    for url in PAGES:
        for lang in ("zh", "en"):
            sep = "&" if "?" in url else "?"
            r = admin.get(f"{url}{sep}lang={lang}")
            assert r.status_code == 200, (url, r.text[:400])
    page = admin.get("/console/warehouse/report?lang=zh").text
    assert "宁波港华电镀厂" in page and "330206198001011234" in page
    assert f'value="{DEV_A}/1"' not in page  # the goods.in records are no sales
    assert "氰化钠" in admin.get("/console/warehouse").text
    one = admin.get(PAGES[-1]).text  # one item's movements: in, and out to the buyer
    assert one.count("<tr><td>") == 2 and "宁波港华电镀厂" in one
    csv = admin.get("/console/warehouse/report.csv")
    assert csv.status_code == 200 and csv.text.startswith("\ufeff")
    assert csv.text.count("\r\n") == 4  # header and three sales

    site_a = login(app, any_store.token("inspector", f"site:{A}"))
    page = site_a.get("/console/warehouse/report").text
    assert DEV_A in page and DEV_B not in page
    assert B not in site_a.get("/console/warehouse").text
    assert DEV_B not in site_a.get("/console/warehouse/movements").text
    form = csrf(page)
    refused = site_a.post(
        "/console/warehouse/report/marked",
        data={"csrf": "0" * 32, "sale": f"{DEV_A}/3", "note": "x"},
    )
    assert refused.headers["location"].endswith("problem=csrf")
    other = site_a.post(
        "/console/warehouse/report/marked",
        data={"csrf": form, "sale": f"{DEV_B}/2", "note": "x"},
    )
    assert other.headers["location"].endswith("problem=unknown")
    with any_store.read() as db:
        assert not audit.entries(db, action="goods.reported")
    done = site_a.post(
        "/console/warehouse/report/marked",
        data={"csrf": form, "sale": [f"{DEV_A}/3", f"{DEV_A}/4"], "note": "公安回执 118"},
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=2")
    after = site_a.get(done.headers["location"]).text
    assert "已标记 2 笔为已报。" in after and "没有待报的销售。" in after
    with any_store.read() as db:
        entry = audit.entries(db, action="goods.reported")[0]
    assert entry.role == "inspector" and entry.detail["note"] == "公安回执 118"
    assert entry.target == f"{DEV_A}/3,{DEV_A}/4"

    op = login(app, any_store.token("operator", "market:M1"))
    for url in PAGES:
        assert op.get(url).status_code == 403, url
