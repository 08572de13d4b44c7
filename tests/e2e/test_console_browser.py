"""The regulator's console in a real browser (Debian's Chromium through Playwright) against a
collector fed by the real chain: terminals → Mosquitto → edge agent → Mosquitto → collector.

One walk through, as a supervision office would use it: sign in with a token; the site is
green while its terminals report; stop a batch and watch the order reach the terminals'
stop list and the audit log; open the batch's recall reach and download its CSV; acknowledge
the alarm the next sale of the stopped batch raises; lift the stop and watch the newer list
reach the terminals; stop the edge agent and watch the site turn red. Every page is
screenshotted (artefacts under build/screenshots/console, path printed) and checked with
axe-core (no serious or critical violation), then every page again at phone width (390 px).

Walked on both stores: the collectors' SQLite file, and a PostgreSQL database they share
(screenshots under build/screenshots/console-postgres). Everything the test reads or writes
itself goes through :class:`collector.storedb.StoreDb` over the store the collectors use.
"""

from __future__ import annotations

import csv
import io
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector import access, audit, licences, sites
from collector.storedb import StoreDb, is_db_error
from simulators.fleet import Fleet
from tests.conftest import SITE, Chain, wait_until
from tests.e2e.browser import DESKTOP, PHONE, Pages, browser
from traceedge.brokers import free_port
from traceedge.launch import write_toml
from wire import auth, topics

GREEN_S, AMBER_S = 20.0, 40.0  # the agent reports every 10 s: green while it runs
CLI = audit.Actor("cli:test", "admin", "local")
REASON, LIFT_REASON, ACK = "瘦肉精抽检阳性", "复检合格", "已通知市场下架该批次"


class Feeder:
    """Terminals sending records at ``rate`` per second until stopped (a thread)."""

    def __init__(self, fleet: Fleet, rate: float) -> None:
        self.fleet, self.rate = fleet, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.fleet.run(max(1, int(self.rate)), rate=self.rate, drain_timeout_s=2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class StopLists:
    """The stop lists the gateway relays to each market terminal (retained, sealed with the
    terminal's key: what the firmware checks before obeying)."""

    def __init__(self, ch: Chain) -> None:
        self.keys = {d.dev: d.key for d in ch.devices if d.type == "market-scale"}
        self.got: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console-test-terminal")
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", ch.broker.port)
        self.c.loop_start()
        for dev in self.keys:
            self.c.subscribe(topics.terminal_cmd(dev), qos=1)

    def _on_message(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        dev = m.topic.split("/")[1]
        try:
            msg = auth.open_stop_list(bytes(m.payload), dev, [self.keys[dev]])
        except Exception:
            return  # another command on the topic
        with self.lock:
            self.got[dev] = msg

    def batches(self) -> dict[str, set[str]]:
        with self.lock:
            return {dev: {b["batch_id"] for b in m["batches"]} for dev, m in self.got.items()}

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def short_thresholds(ch: Chain, public_port: int) -> None:
    """Restart the collector with [api] green_s / amber_s short enough to watch, and its
    public listener (the shopper's pages) on ``public_port``."""
    role = ch.collectors[0]
    role.stop()
    tables = tomllib.loads(role.config.read_text())
    tables["api"].update(green_s=GREEN_S, amber_s=AMBER_S)
    tables["public"] = {"host": "127.0.0.1", "port": public_port}
    write_toml(role.config, tables)
    role.start()
    ch.wait_ready()


def wait_api(base: str) -> None:
    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, "the collector's API")


def busiest_batch(store: StoreDb) -> tuple[str, str]:
    """(batch id, market) of the registered batch with the most sales so far."""
    with store.read() as db:
        row = db.execute(
            "SELECT b.batch_id, json_extract(r.rec, '$.body.market') FROM market_batches AS b "
            "JOIN records AS r ON r.id = b.entry_id "
            "WHERE b.sold_g > 0 ORDER BY (SELECT COUNT(*) FROM market_lines AS l "
            "WHERE l.batch_id = b.batch_id) DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def has_sold_batch(store: StoreDb) -> bool:
    try:
        busiest_batch(store)
    except AssertionError:
        return False
    except Exception as exc:
        if is_db_error(exc):
            return False
        raise
    return True


def open_alarms(store: StoreDb, kind: str) -> int:
    with store.read() as db:
        return int(db.execute("SELECT COUNT(*) FROM alarms WHERE kind = ?", (kind,)).fetchone()[0])


LICENCE = {
    "licence": "JD-330100-2025-0007",
    "kind": "toxic_purchase",
    "holder": "杭州某电镀有限公司",
    "classes": ["chemical_toxic"],
    "quantity": 50_000,
    "unit": "g",
    "valid_from": "2025-01-01",
    "valid_until": "2099-12-31",
    "sites": ["*"],
}


def scalar(store: StoreDb, sql: str, args: tuple[Any, ...]) -> Any:
    with store.read() as db:
        row = db.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The collectors' store: None for their SQLite file, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def site_state(page: Any) -> str:
    return str(page.locator(f"#site-{SITE}").get_attribute("data-state"))


def test_the_console_in_a_browser(
    store_url: str | None, chain_factory: Callable[..., Chain]
) -> None:
    # store_url first: its database is made before the chain and dropped after it stops
    port, public_port = free_port(), free_port()
    ch = chain_factory(api_port=port, store_url=store_url)
    store = StoreDb(ch.store, ch.store_url)  # what the collectors write, either kind
    try:
        walk(ch, store, port, public_port)
    finally:
        store.close()


def walk(ch: Chain, store: StoreDb, port: int, public_port: int) -> None:
    short_thresholds(ch, public_port)
    base = f"http://127.0.0.1:{port}"
    wait_api(base)
    feeder = Feeder(ch.fleet(), rate=12)
    wait_until(lambda: has_sold_batch(store), 90, "a registered batch with sales")
    batch, market = busiest_batch(store)
    db = store.connect()
    try:
        sites.import_sites(
            db,
            [
                {
                    "site": SITE,
                    "name": "测试农贸市场",
                    "district": "330106",
                    "kind": "market",
                    "market": market,
                    "phone": "0571-12345678",
                }
            ],
        )
        licences.import_licences(db, [LICENCE])  # for the warehouse licence pages
        tokens = access.TokenStore(db)
        admin = tokens.create("admin", "all", "市监局值班", CLI)[1]
        operator = tokens.create("operator", f"market:{market}", "市场管理处", CLI)[1]
    finally:
        db.close()
    lists = StopLists(ch)
    pages = Pages("console" if store.url is None else "console-postgres")
    try:
        with browser() as b:
            ctx = b.new_context(viewport=DESKTOP, accept_downloads=True, locale="zh-CN")
            page = ctx.new_page()
            page.on("dialog", lambda d: d.accept())  # the confirm() before a stop or lift
            # --- sign in: anonymous → login page, a wrong token refused, the right one in
            page.goto(base + "/console/")
            assert "/console/login" in page.url
            pages.check(page, "login")
            page.fill("#token", admin[:-3] + "xyz")
            page.click("form.card button[type=submit]")
            assert "令牌无效" in page.inner_text("main")
            page.fill("#token", admin)
            page.click("form.card button[type=submit]")
            page.wait_for_url(base + "/console/")
            # --- the overview: the site green while its terminals report
            assert site_state(page) == "green", page.inner_text(f"#site-{SITE}")
            assert "绿" in page.inner_text(f"#site-{SITE}")  # said in words, not colour only
            assert "测试农贸市场" in page.inner_text(f"#site-{SITE}")
            pages.check(page, "overview")
            # every device green: the list says so and shows them all on request
            assert "未列出" in page.inner_text("main")
            page.click("text=显示全部设备")
            dev = next(d.dev for d in ch.devices if d.type == "market-scale")
            page.click(f"a[href='/console/devices/{dev}']")
            assert dev in page.inner_text("h1")
            pages.check(page, "device")
            # --- a stop order from the batch page: relayed, at the terminals, audited
            page.goto(base + "/console/markets")
            pages.check(page, "markets")
            page.fill("#f-q", batch)
            page.click("form.filters button[type=submit]")
            page.wait_for_url(f"**/console/markets/batches/{batch}")
            pages.check(page, "batch")
            page.fill("#stop-reason", REASON)
            page.click("#h-stop ~ button")
            notice = page.inner_text("p.notice")
            assert "已中止交易" in notice and "已下发到市场终端" in notice, notice
            assert REASON in page.inner_text("p.warn")
            pages.check(page, "batch stopped")
            wait_until(
                lambda: (
                    len(lists.got) == len(lists.keys)
                    and all(batch in bs for bs in lists.batches().values())
                ),
                30,
                "the stop order in every market terminal's stop list",
            )
            # --- the shopper's page (public listener) of a sale of the stopped batch, at 390 px
            code = scalar(
                store, "SELECT trace_id FROM market_lines WHERE batch_id = ? LIMIT 1", (batch,)
            )
            shopper = b.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
            sp = shopper.new_page()
            sp.goto(f"http://127.0.0.1:{public_port}/t/{code}")
            alert = sp.locator("[role=alert]")
            assert "已被中止交易" in alert.inner_text() and REASON in alert.inner_text()
            assert sp.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            pages.check(sp, "shopper stopped phone")
            shopper.close()
            # --- recall reach: page and CSV
            page.click(f"a[href='/console/recall/{batch}']")
            assert batch in page.inner_text("h1")
            pages.check(page, "recall")
            with page.expect_download() as dl:
                page.click(f"a[href='/console/recall/{batch}.csv']")
            path = Path(dl.value.path())
            rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
            assert rows[0][1] == "追溯码 Trace code"
            lines = scalar(store, "SELECT COUNT(*) FROM market_lines WHERE batch_id = ?", (batch,))
            assert len(rows) - 1 >= 1 and len(rows) - 1 <= lines
            # --- the alarm a sale after the stop raises, acknowledged with a comment
            wait_until(
                lambda: open_alarms(store, "sold_after_stop") > 0,
                240,
                "a sale of the stopped batch (alarm sold_after_stop)",
            )
            page.goto(base + "/console/alarms?kind=sold_after_stop")
            pages.check(page, "alarms")
            row = page.locator("tr[id^='alarms-']").first
            alarm_id = str(row.get_attribute("id")).split("-")[1]
            row.locator("input[name=comment]").fill(ACK)
            row.locator("button[type=submit]").click()
            assert "已确认" in page.inner_text("p.notice")
            page.goto(base + "/console/alarms?show=acked")
            assert ACK in page.inner_text(f"#alarms-{alarm_id}")
            page.goto(base + "/console/quarantine")
            pages.check(page, "quarantine")
            page.goto(base + "/console/elevators")
            pages.check(page, "elevators")
            page.goto(base + "/console/cylinders")
            pages.check(page, "cylinders")
            # --- the licences in scope, and one licence's page from its link
            page.goto(base + "/console/warehouse/licences")
            assert LICENCE["holder"] in page.inner_text("main")
            pages.check(page, "licences")
            page.click(f"a[href='/console/warehouse/licences/{LICENCE['licence']}']")
            page.wait_for_url(f"**/console/warehouse/licences/{LICENCE['licence']}")
            assert LICENCE["licence"] in page.inner_text("h1")
            assert "首次导入" in page.inner_text("main")  # its one version
            pages.check(page, "licence")
            # --- lift: relayed, the terminals get a newer list without the batch
            page.goto(base + f"/console/markets/batches/{batch}")
            page.fill("#lift-reason", LIFT_REASON)
            page.click("#h-lift ~ button")
            notice = page.inner_text("p.notice")
            assert "已解除中止交易" in notice and "已下发到市场终端" in notice, notice
            wait_until(
                lambda: all(batch not in bs for bs in lists.batches().values()),
                30,
                "the lifted list at every market terminal",
            )
            # --- the audit log has both orders and the acknowledgement, chain intact
            page.goto(base + "/console/audit")
            log = page.inner_text("table")
            for action in ("batch.stop", "batch.lift", "alarm.ack", "login.failed"):
                assert action in log, action
            assert REASON in log and LIFT_REASON in log and ACK in log
            assert "哈希链完整" in page.inner_text("main")
            pages.check(page, "audit")
            # --- English
            page.goto(base + "/console/?lang=en")
            assert "Sites and devices" in page.inner_text("h1")
            pages.check(page, "overview en")
            page.goto(base + "/console/?lang=zh")
            # --- the agent stops: the site turns red
            ch.agent.stop()
            t0 = time.monotonic()

            def red() -> bool:
                page.goto(base + "/console/")
                return site_state(page) == "red"

            wait_until(red, AMBER_S + 60, "the site to turn red after its agent stopped", 2)
            assert "红" in page.inner_text(f"#site-{SITE}")
            print(f"site red {time.monotonic() - t0:.0f} s after its agent stopped")
            pages.check(page, "overview red")
            # --- every page at phone width
            phone = b.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
            phone.add_cookies([{"name": "te_token", "value": admin, "url": base}])
            p2 = phone.new_page()
            for name, url in [
                ("overview", "/console/"),
                ("device", f"/console/devices/{dev}"),
                ("alarms", "/console/alarms?show=all"),
                ("quarantine", "/console/quarantine"),
                ("elevators", "/console/elevators"),
                ("cylinders", "/console/cylinders"),
                ("markets", "/console/markets"),
                ("batch", f"/console/markets/batches/{batch}"),
                ("recall", f"/console/recall/{batch}"),
                ("audit", "/console/audit"),
                ("licences", "/console/warehouse/licences"),
                ("licence", f"/console/warehouse/licences/{LICENCE['licence']}"),
            ]:
                p2.goto(base + url)
                assert p2.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], (
                    f"{name} scrolls sideways at {PHONE['width']} px"
                )
                pages.check(p2, f"{name} phone")
            # --- the market operator sees its market and not the fleet
            op = b.new_context(viewport=PHONE, locale="zh-CN")
            op.add_cookies([{"name": "te_token", "value": operator, "url": base}])
            p3 = op.new_page()
            p3.goto(base + "/console/markets")
            assert batch in p3.inner_text("main")
            p3.goto(base + "/console/")
            assert "无权访问" in p3.inner_text("h1")
            pages.check(p3, "operator refused overview")
    finally:
        feeder.stop()
        lists.close()
    pages.assert_accessible()
