"""A stop-trading order issued at the collector reaches the market terminals: pushed down
to the site's agent, relayed retained on each market terminal's command topic, so even a
terminal that connects later gets it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.apiauth import admin_headers
from tests.conftest import Chain, wait_until
from traceedge.brokers import free_port
from wire import auth, topics


def test_stop_order_reaches_market_terminals(chain_factory: Callable[..., Chain]) -> None:
    port = free_port()
    ch = chain_factory(api_port=port)
    markets = [d for d in ch.devices if d.type == "market-scale"]
    out = ch.fleet(devices=markets).run(300, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(300)
    db = sqlite3.connect(ch.store)
    batch = db.execute(
        "SELECT json_extract(rec, '$.body.batch_id') FROM records WHERE kind = 'market.entry' "
        "LIMIT 1"
    ).fetchone()[0]
    db.close()
    # an anonymous order is refused and changes nothing
    url = f"http://127.0.0.1:{port}/markets/batches/{batch}"
    anon = httpx.post(f"{url}/stop", json={"reason": "forged"}, timeout=10)
    assert anon.status_code == 401
    headers = admin_headers(ch.store)
    r = httpx.post(
        f"{url}/stop", json={"reason": "瘦肉精 test positive"}, headers=headers, timeout=10
    )
    assert r.status_code == 200, r.text
    assert r.json()["relayed"] is True  # published to the sites at once
    got: dict[str, dict[str, object]] = {}
    lock = threading.Lock()

    keys = {d.dev: d.key for d in markets}

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        dev = m.topic.split("/")[1]
        # sealed with the terminal's own key: what the firmware checks before obeying
        msg = auth.open_stop_list(m.payload, dev, [keys[dev]])
        with lock:
            got[dev] = msg

    # a terminal connecting after the order still finds it (retained)
    time.sleep(3)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="late-terminal")
    c.on_message = on_message
    c.connect("127.0.0.1", ch.broker.port)
    c.loop_start()
    for d in markets:
        c.subscribe(topics.terminal_cmd(d.dev), qos=1)
    try:
        wait_until(lambda: len(got) == len(markets), 30, "every market terminal's stop list")
        for msg in got.values():
            batches = msg["batches"]
            assert isinstance(batches, list)
            assert [b["batch_id"] for b in batches] == [batch]
            assert batches[0]["reason"] == "瘦肉精 test positive"
        stopped_version = {dev: int(m["version"]) for dev, m in got.items()}  # type: ignore[call-overload]
        # the goods were cleared: the order is lifted, and a newer list without it follows
        r = httpx.post(f"{url}/lift", json={"reason": "复检合格"}, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["relayed"] is True
        assert r.json()["lifted"]["batch_id"] == batch
        wait_until(
            lambda: all(
                int(got[d]["version"]) > stopped_version[d] and got[d]["batches"] == []  # type: ignore[call-overload]
                for d in stopped_version
            ),
            30,
            "the lifted list at every terminal",
        )
    finally:
        c.loop_stop()
        c.disconnect()
    again = httpx.post(f"{url}/lift", json={"reason": "x"}, headers=headers, timeout=10)
    assert again.status_code == 404
    # each order, and the refused second lift, is in the audit log with who issued it
    log = httpx.get(
        f"http://127.0.0.1:{port}/audit", params={"action": "batch."}, headers=headers, timeout=10
    ).json()
    assert [(e["action"], e["result"]) for e in reversed(log)] == [
        ("batch.stop", "ok"),
        ("batch.lift", "ok"),
        ("batch.lift", "refused: no stop order in force"),
    ]
    assert all(e["target"] == batch and e["role"] == "admin" for e in log)
    assert log[-1]["detail"]["reason"] == "瘦肉精 test positive"
