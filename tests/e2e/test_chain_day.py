"""A multi-hop market day end to end (卡单同行): real Mosquitto, agent and collector.

A batch enters a wholesale market, is sold to two retail traders, enters two retail markets
(one entry scans the wholesale receipt's QR code, the other keys in its voucher) and is sold
to shoppers. Every shopper receipt walks back to the origin certificate on the regulator's
API and on the shopper's page; a stop order on the wholesale batch reaches both retail
markets' terminals (their sealed stop lists name the retail batches, and the stall
terminal's own sale logic refuses the goods); the recall reach lists every downstream sale.

One agent serves the terminals of all three markets (one site, three markets: a market code
is in each record's body, the agent relays whatever its terminals send); six terminals, a
gate and a scale per market, each registered as a ``market-scale``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.storedb import StoreDb
from collector.tokens import TokenStore
from edge_agent.terminal.sale import Sale, SaleError
from edge_agent.terminal.settings import Goods, SaleSettings
from simulators.chain import chain_day
from tests.apiauth import TEST_ACTOR
from tests.conftest import SITE, Chain, wait_until
from traceedge.brokers import free_port
from traceedge.provision import new_device
from wire import auth, topics

REASON = "瘦肉精抽检阳性"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """The collector's store: None for its SQLite file, else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def _admin(ch: Chain) -> dict[str, str]:
    store = StoreDb(ch.store, ch.store_url)  # what the collector writes, either kind
    try:
        with store.write() as db:
            _, token = TokenStore(db).create("admin", "all", "e2e", TEST_ACTOR)
    finally:
        store.close()
    return {"Authorization": f"Bearer {token}"}


def test_a_multi_hop_day(store_url: str | None, chain_factory: Callable[..., Chain]) -> None:
    """On either store; the shopper's page where the public listener runs (SQLite only,
    docs/public.md)."""
    api, public = free_port(), free_port()
    terminals = [new_device("market-scale", SITE) for _ in range(6)]
    ch = chain_factory(
        api_port=api,
        public={"port": public, "burst": 60} if store_url is None else None,
        extra_devices=terminals,
        store_url=store_url,
    )
    day = chain_day(int(time.time() * 1000) - 3_600_000, step_ms=1000)
    names = sorted({r.dev for r in day.records})
    assert len(names) == 6
    dev_of = {n: t.dev for n, t in zip(names, terminals, strict=True)}
    script = [(dev_of[r.dev], r.kind, r.ts, r.body) for r in day.records]
    out = ch.fleet(devices=terminals).run_script(script, drain_timeout_s=60)
    assert out["pending"] == 0 and out["rejected"] == 0, out
    ch.wait_forwarded(len(script))

    regulator = f"http://127.0.0.1:{api}"
    headers = _admin(ch)

    # the projection applies market records just behind ingest
    def linked() -> bool:
        for code in day.shopper_codes:
            r = httpx.get(f"{regulator}/trace/{code}", headers=headers, timeout=10)
            if r.status_code != 200 or not r.json()["sale"]["lines"][0]["batch"]["hops"]:
                return False
        return True

    wait_until(linked, 30, "every shopper receipt linked back through the wholesale market")
    # every shopper receipt walks back to the origin certificate
    for code in day.shopper_codes:
        r = httpx.get(f"{regulator}/trace/{code}", headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        batch = r.json()["sale"]["lines"][0]["batch"]
        assert batch["source"]["found"] is True
        (hop,) = batch["hops"]
        assert hop["sale"]["market"] == day.wholesale.code
        origin = hop["batch"]["entry"]
        assert hop["batch"]["batch_id"] in day.wholesale_batches and origin["cert_no"]
        assert origin["origin"] in r.json()["origins"]
        if store_url is None:
            page = httpx.get(f"http://127.0.0.1:{public}/t/{code}?lang=en", timeout=10)
            assert page.status_code == 200 and origin["cert_no"] in page.text

    # the stop order on the wholesale batch reaches both retail markets' terminals
    root = day.wholesale_batches[0]
    down = sorted(b for b in day.retail_batches if b[12:19] == root[12:19])
    retail_scales = {dev_of[m.scale] for m in day.retail}
    keys = {t.dev: t.key for t in terminals}
    got: dict[str, dict[str, object]] = {}
    lock = threading.Lock()

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        dev = m.topic.split("/")[1]
        msg = auth.open_stop_list(m.payload, dev, [keys[dev]])  # what the terminal checks
        with lock:
            got[dev] = msg

    r = httpx.post(
        f"{regulator}/markets/batches/{root}/stop",
        json={"reason": REASON},
        headers=headers,
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["relayed"] is True, r.text
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="retail-terminals")
    c.on_message = on_message
    c.connect("127.0.0.1", ch.broker.port)
    c.loop_start()
    for dev in retail_scales:
        c.subscribe(topics.terminal_cmd(dev), qos=1)

    def stopped_at(dev: str) -> set[str]:
        with lock:
            msg = got.get(dev)
        return set() if msg is None else {str(b["batch_id"]) for b in msg["batches"]}  # type: ignore[attr-defined]

    try:
        wait_until(
            lambda: all({root, *down} <= stopped_at(d) for d in retail_scales),
            30,
            "the wholesale batch and its retail batches on both retail terminals' stop lists",
        )
    finally:
        c.loop_stop()
        c.disconnect()
    # the stall terminal's own sale logic refuses the retail goods on that list
    for m, batch_id in zip(day.retail, down, strict=True):
        dev = dev_of[m.scale]
        trader, card = m.traders[0]
        cfg = SaleSettings(
            market=m.code,
            market_no=m.number,
            region=m.region,
            terminal=f"{m.code}-001",
            terminal_no=1,
            scale_sw="ACS-15RT V3.0.7",
            title=m.code,
            trace_url="https://t.example/t/",
            utc_offset_min=480,
            traders={card: trader},
            buyers={},
            goods={1: Goods(1, batch_id, "10010001", "白条猪", "weighed", trader, 3480)},
        )
        sale = Sale(cfg)
        sale.card(card, 0.0)
        with pytest.raises(SaleError, match="STOPPED"):
            sale.select(1, sorted(stopped_at(dev)), 0.0)

    # the recall reach lists every downstream sale, with the shoppers (regulator only)
    reach = httpx.get(f"{regulator}/markets/batches/{root}/recall", headers=headers, timeout=10)
    assert reach.status_code == 200, reach.text
    hops = reach.json()["downstream"]
    assert sorted(h["batch_id"] for h in hops) == down
    sold = {x["trace_id"] for h in hops for x in h["lines"]}
    expected = {
        r.body["trace_id"]
        for r in day.records
        if r.kind == "market.settlement" and r.body["lines"][0]["batch_id"] in down
    }
    assert sold == expected and len(sold) == 6
    assert all(h["stop"] and root in h["stop"]["reason"] for h in hops)
    csv_text = httpx.get(
        f"{regulator}/markets/batches/{root}/recall.csv", headers=headers, timeout=10
    ).text
    assert all(code in csv_text for code in expected)
