"""Every console page over a real store (a market day: entries, sales from four scales, a
stop order, sales after it alarmed), rendered in-process: who may open which page, scope,
forms and their audit entries, both languages, nothing loaded from outside the collector.
The same store on SQLite and on PostgreSQL (tests/stores.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from collector import access, audit, sites
from collector.api import make_app
from collector.console import i18n
from collector.console.auth import FAIL_DELAY_S, Failures
from tests.collector.test_markets import MARKET, SITE, STOPPED_LOT, run_market_day
from tests.stores import KINDS, StoreUnderTest, store_of

CLI = audit.Actor("cli:test", "admin", "local")
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
TEMPLATES = Path(i18n.__file__).parent / "templates"


@dataclass
class Console:
    sut: StoreUnderTest
    app: TestClient
    tokens: dict[str, str]
    batch: str  # a batch of MARKET, trading
    stopped: str  # the batch stopped at noon
    key: Ed25519PrivateKey  # the centre's command key: signs the audit log's head

    def login(self, who: str) -> TestClient:
        c = TestClient(self.app.app, follow_redirects=False, headers=BROWSER)
        r = c.post("/console/login", data={"token": self.tokens[who]})
        assert r.status_code == 303, r.text
        return c


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no form token on the page"
    return m.group(1)


@pytest.fixture(scope="module", params=KINDS)
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    sut = store_of(request.param, tmp_path_factory.mktemp("console"))
    try:
        yield _console(sut)
    finally:
        sut.close()


def _console(sut: StoreUnderTest) -> Console:
    run_market_day(sut)
    sut.store.quarantine_payload(SITE, "bad_mac", "MKT-S01/9: the MAC does not verify", b"x")
    with sut.write() as db:
        sites.import_sites(
            db,
            [
                {
                    "site": SITE,
                    "name": "东园农贸市场",
                    "district": "330106",
                    "kind": "market",
                    "market": MARKET,
                },
                {"site": "OTHER", "name": "别处", "district": "310101", "market": "M310101009"},
            ],
        )
        store = access.TokenStore(db)
        tokens = {
            role: store.create(role, scope, f"{role} test", CLI)[1]
            for role, scope in [
                ("admin", "all"),
                ("inspector", "district:330106"),
                ("operator", f"market:{MARKET}"),
                ("monitor", "all"),
            ]
        }
        tokens["stranger"] = store.create("operator", "market:M310101009", "other market", CLI)[1]
        tokens["far_inspector"] = store.create("inspector", "district:310101", "far", CLI)[1]
        batch = db.execute(
            "SELECT batch_id FROM market_batches WHERE batch_id != ? AND sold_g > 0 "
            "ORDER BY batch_id LIMIT 1",
            (STOPPED_LOT.batch_id,),
        ).fetchone()[0]
    key = Ed25519PrivateKey.generate()
    ctx = sut.ctx(audit_key=key)
    return Console(sut, TestClient(make_app(ctx)), tokens, batch, STOPPED_LOT.batch_id, key)


def pages(c: Console) -> list[str]:
    return [
        "/console/",
        "/console/?devices=all&site=MKT",
        "/console/?state=red",
        "/console/devices/MKT-S01",
        "/console/alarms",
        "/console/alarms?show=all&kind=sold_after_stop",
        "/console/quarantine",
        "/console/elevators",
        "/console/elevators?days=30",
        "/console/cylinders",
        "/console/cylinders?stage=pre&days=1",
        "/console/markets",
        "/console/markets?stopped=1",
        f"/console/markets/batches/{c.batch}",
        f"/console/markets/batches/{c.stopped}",
        "/console/recall",
        f"/console/recall/{c.stopped}",
        "/console/audit",
    ]


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back(console: Console) -> None:
    anon = TestClient(console.app.app, follow_redirects=False, headers=BROWSER)
    api = TestClient(console.app.app, follow_redirects=False)
    for url in pages(console):
        r = anon.get(url)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/console/login?next=/console/"), url
        # a client that is not a browser gets the API's answer
        r = api.get(url)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", url
    assert anon.get("/console/login").status_code == 200
    assert anon.get("/static/console/console.css").status_code == 200


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_renders_in_both_languages_with_nothing_from_outside(
    console: Console, lang: str
) -> None:
    c = console.login("admin")
    for url in pages(console):
        sep = "&" if "?" in url else "?"
        r = c.get(f"{url}{sep}lang={lang}")
        assert r.status_code == 200, (url, r.text[:500])
        assert f'<html lang="{i18n.HTML_LANG[lang]}">' in r.text
        # offline: no asset or link leaves the collector
        assert not re.search(r'(src|href|action)="(https?:)?//', r.text), url
    csv = c.get(f"/console/recall/{console.stopped}.csv")
    assert csv.status_code == 200
    assert csv.headers["content-disposition"].endswith(f'recall-{console.stopped}.csv"')
    assert csv.text.startswith("\ufeff")


def test_the_language_sticks_in_a_cookie(console: Console) -> None:
    c = console.login("admin")
    assert "Sites and devices" in c.get("/console/?lang=en").text
    assert "Sites and devices" in c.get("/console/").text
    assert "站点与设备总览" in c.get("/console/?lang=zh").text


def test_every_catalogue_key_a_template_uses_exists_in_both_languages() -> None:
    used: set[str] = set()
    for t in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""_\(\s*["']([a-z_]+\.[a-z_.]+)["']""", t.read_text()))
    missing = sorted(used - set(i18n.CATALOGUE))
    assert not missing, missing
    for key, (zh, en) in i18n.CATALOGUE.items():
        assert zh and en, key


def test_sign_in_sets_a_strict_http_only_cookie_and_a_bad_token_is_audited_and_slowed(
    console: Console,
) -> None:
    c = TestClient(console.app.app, follow_redirects=False, headers=BROWSER)
    r = c.post("/console/login", data={"token": console.tokens["admin"]})
    cookie = r.headers["set-cookie"]
    assert "te_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    assert r.headers["location"] == "/console/"
    bad = console.tokens["admin"][:-4] + "AAAA"
    c = TestClient(console.app.app, follow_redirects=False, headers=BROWSER)
    t0 = time.monotonic()
    r = c.post("/console/login", data={"token": bad})
    assert time.monotonic() - t0 >= FAIL_DELAY_S
    assert r.status_code == 200 and "令牌无效" in r.text
    assert "te_token=" not in r.headers.get("set-cookie", "")
    with console.sut.read() as db:
        last = audit.entries(db, limit=1, action="login.failed")[0]
    assert last.target == "token:" + bad.split("_")[1]
    assert bad.split("_", 2)[2] not in str(last.detail)  # never the secret
    with console.sut.read() as db:  # the head stays signed with the centre's key
        assert audit.verify(db, console.key.public_key()).ok
    # a sign-in posted from another site's page is refused before the token is looked at
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    r = c.post("/console/login", data={"token": console.tokens["admin"]}, headers=evil)
    assert r.status_code == 400 and "te_token=" not in r.headers.get("set-cookie", "")
    assert "请粘贴访问令牌" in c.post("/console/login", data={"token": ""}).text
    out = TestClient(console.app.app, follow_redirects=False)
    out.cookies.set("te_token", console.tokens["admin"])
    r = out.post("/console/logout")
    assert r.status_code == 303 and 'te_token=""' in r.headers["set-cookie"]


def test_roles_see_their_pages_and_nothing_else(console: Console) -> None:
    monitor = console.login("monitor")
    r = monitor.get("/console/")
    assert r.status_code == 403 and "无权访问" in r.text
    op = console.login("operator")
    assert op.get("/console/").status_code == 403  # read:fleet is not the operator's
    assert op.get("/console/audit").status_code == 403
    assert op.get("/console/elevators").status_code == 403
    assert op.get("/console/cylinders").status_code == 403
    assert op.get("/console/markets").status_code == 200
    assert op.get(f"/console/markets/batches/{console.batch}").status_code == 200
    insp = console.login("inspector")
    assert insp.get("/console/audit").status_code == 403
    page = insp.get(f"/console/markets/batches/{console.batch}").text
    assert "中止该批次交易" not in page  # no stop form: inspectors may not stop
    # outside the scope: "not found", not "forbidden"
    for who in ("stranger", "far_inspector"):
        c = console.login(who)
        assert c.get(f"/console/markets/batches/{console.batch}").status_code == 404
        assert c.get(f"/console/recall/{console.stopped}").status_code == 404
        assert c.get(f"/console/recall/{console.stopped}.csv").status_code == 404
        assert console.batch not in c.get("/console/markets").text
    far = console.login("far_inspector")
    assert far.get("/console/devices/MKT-S01").status_code == 404
    assert SITE not in far.get("/console/").text.replace("MKT-", "")


def test_stop_and_lift_from_the_batch_page_are_audited(console: Console) -> None:
    op = console.login("operator")
    url = f"/console/markets/batches/{console.batch}"
    form = csrf(op.get(url).text)
    refused = op.post(url + "/stop", data={"reason": "x", "csrf": "0" * 32})
    assert refused.headers["location"].endswith("?problem=csrf")  # and nothing done:
    assert "表单已过期" in op.get(refused.headers["location"]).text
    with console.sut.read() as db:
        assert not audit.entries(db, limit=1, action="batch.")
    r = op.post(url + "/stop", data={"reason": "抽检不合格", "csrf": form})
    assert r.status_code == 303
    page = op.get(r.headers["location"]).text
    assert "已中止交易。" in page and "尚未下发到终端" in page  # no broker link here
    assert "抽检不合格" in page
    r = op.post(url + "/lift", data={"reason": "复检合格", "csrf": form})
    assert "已解除中止交易。" in op.get(r.headers["location"]).text
    with console.sut.read() as db:
        stop, lift = audit.entries(db, limit=2, action="batch.")[::-1]
    assert (stop.action, stop.target, stop.result) == ("batch.stop", console.batch, "ok")
    assert stop.detail["reason"] == "抽检不合格" and stop.role == "operator"
    assert (lift.action, lift.detail["reason"]) == ("batch.lift", "复检合格")
    stranger = console.login("stranger")
    r = stranger.post(
        url + "/stop", data={"reason": "x", "csrf": csrf(stranger.get("/console/markets").text)}
    )
    assert r.status_code == 404


def test_acknowledging_an_alarm_needs_a_comment_and_is_audited(console: Console) -> None:
    insp = console.login("inspector")
    page = insp.get("/console/alarms?kind=sold_after_stop").text
    alarm = int(re.findall(r'action="/console/alarms/(\d+)/ack"', page)[0])
    form = csrf(page)
    r = insp.post(f"/console/alarms/{alarm}/ack", data={"comment": " ", "csrf": form})
    assert "problem=comment" in r.headers["location"]
    r = insp.post(
        f"/console/alarms/{alarm}/ack",
        data={"comment": "已通知市场下架", "csrf": form, "back": "/console/alarms?show=all"},
    )
    assert r.headers["location"] == "/console/alarms?show=all&done=acked"
    page = insp.get("/console/alarms?show=acked").text
    assert "已通知市场下架" in page
    with console.sut.read() as db:
        e = audit.entries(db, limit=1, action="alarm.ack")[0]
    assert e.target == f"alarm:{alarm}" and e.detail["comment"] == "已通知市场下架"
    q = insp.get("/console/quarantine").text
    entry = int(re.findall(r'action="/console/quarantine/(\d+)/ack"', q)[0])
    r = insp.post(f"/console/quarantine/{entry}/ack", data={"comment": "密钥已轮换", "csrf": form})
    assert r.status_code == 303
    with console.sut.read() as db:
        assert audit.entries(db, limit=1, action="quarantine.ack")[0].result == "ok"


def test_failed_sign_ins_from_one_address_wait_longer_each_time() -> None:
    f = Failures()
    waits = [f.delay("10.0.0.9", now=100.0 + i) for i in range(8)]
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert f.delay("10.0.0.10", now=107.0) == 1  # another address is not slowed
    assert f.delay("10.0.0.9", now=100.0 + 8 + 900.5) == 1  # forgotten after the window


def test_each_role_lands_on_a_page_it_may_open(console: Console) -> None:
    for who, page in [("admin", "/console/"), ("operator", "/console/markets")]:
        c = TestClient(console.app.app, follow_redirects=False, headers=BROWSER)
        r = c.post("/console/login", data={"token": console.tokens[who]})
        assert r.headers["location"] == page
        assert c.get(page).status_code == 200
