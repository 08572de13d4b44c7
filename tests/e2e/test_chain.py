"""The record's journey through real processes: terminals → agent → broker → collector →
platform, with the failures DESIGN.md lists. Each test proves "once in effect": every
generated record is stored once and forwarded once."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from collector.api import make_app
from tests.apiauth import admin_headers
from tests.conftest import SITE, Chain, wait_until
from traceedge.brokers import free_port


def run_fleet_in_background(
    ch: Chain, n: int, rate: float
) -> tuple[threading.Thread, dict[str, int]]:
    fleet = ch.fleet(resend_after_s=3.0)
    out: dict[str, int] = {}

    def go() -> None:
        out.update(fleet.run(n, rate, drain_timeout_s=180))

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


def test_end_to_end_through_mosquitto(chain_factory: Callable[..., Chain]) -> None:
    metrics_port = free_port()
    ch = chain_factory(agent_overrides={"metrics_port": metrics_port})
    fleet = ch.fleet()
    out = fleet.run(3000, drain_timeout_s=60)
    assert out["generated"] == 3000 and out["pending"] == 0
    ch.wait_forwarded(3000)
    ch.assert_exactly_once(3000)
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert f'traceedge_agent_stored_records_total{{site="{SITE}"}} 3000.0' in metrics
    assert f'traceedge_agent_outbox_records{{site="{SITE}"}} 0.0' in metrics
    # device health at the collector includes the backlog its site's agent reported
    api = TestClient(make_app(ch.store), headers=admin_headers(ch.store))
    wait_until(lambda: api.get("/sites").json() != [], 15, "the agent's status report")
    site = api.get("/sites").json()[0]
    assert site["site"] == SITE and site["depth"] >= 0 and site["age_s"] < 15
    devices = api.get("/devices").json()
    assert len(devices) == len(ch.devices)
    for d in devices:
        assert d["missing"] == 0 and d["watermark"] == d["max_seq"] > 0
        assert d["agent_backlog"] is not None and d["silent_s"] < 60
    kinds = {
        k
        for (k,) in __import__("sqlite3")
        .connect(ch.store)
        .execute("SELECT DISTINCT kind FROM records")
    }
    assert len(kinds) == 7, kinds


def test_end_to_end_through_embedded_amqtt(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory(broker_kind="amqtt")
    out = ch.fleet().run(1000, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(1000)
    ch.assert_exactly_once(1000)


def test_agent_kill9_five_times_during_intake_and_upload(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    n = 6000
    t, out = run_fleet_in_background(ch, n, rate=600)
    rng = random.Random(5)
    for _ in range(5):
        time.sleep(rng.uniform(0.8, 2.0))
        ch.agent.kill9()
        time.sleep(rng.uniform(0.0, 0.5))
        ch.agent.start()
    assert ch.agent.starts == 6
    t.join(240)
    assert out["pending"] == 0, out
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)
    # Whether the kills cost acks (terminals resend) or the broker redelivered to the
    # agent's persistent session depends on timing; either way nothing is lost or doubled.


def test_collector_kill9_mid_batch_and_broker_restart(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    n = 6000
    t, out = run_fleet_in_background(ch, n, rate=800)
    rng = random.Random(9)
    for i in range(3):
        time.sleep(rng.uniform(1.0, 2.0))
        ch.collectors[0].kill9()
        time.sleep(0.3)
        ch.collectors[0].start()
        if i == 1:
            ch.broker.restart()  # persistence off: everything in flight is lost
    t.join(240)
    assert out["pending"] == 0, out
    ch.wait_forwarded(n)
    ch.assert_exactly_once(n)


def test_platform_down_then_back(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    ch.platform.platform.set_faults(down_for_s=20.0)
    out = ch.fleet().run(2000, drain_timeout_s=60)
    assert out["pending"] == 0
    # everything is safe centrally while the platform is still down
    wait_until(lambda: ch.collector_stats()["records"] == 2000, 15, "all stored centrally")
    assert ch.platform.platform.faults()["down_for_s"] > 0, "platform came back too soon"
    assert ch.platform_stats()["records"] == 0  # nothing got through
    ch.wait_forwarded(2000, timeout=60)
    ch.assert_exactly_once(2000)
    assert ch.collector_stats()["forward_failures"] > 0


def test_platform_errors_and_latency(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    ch.platform.platform.set_faults(error_rate=0.3, latency_ms=50)
    ch.fleet().run(2000, drain_timeout_s=60)
    ch.wait_forwarded(2000, timeout=120)
    ch.assert_exactly_once(2000)
    assert ch.platform_stats()["errors_injected"] > 0


def test_central_broker_unreachable_backlog_builds_then_drains(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory(separate_central=True)
    ch.central.stop()
    fleet = ch.fleet()
    out = fleet.run(3000, drain_timeout_s=60)
    # terminals are all acked by the agent: the records are safe at the edge
    assert out["pending"] == 0
    wait_until(lambda: not ch.agent_status()["uplink_connected"], 10, "status to show the outage")
    st = ch.agent_status()
    assert st["depth"] == 3000, st
    assert ch.platform_stats()["records"] == 0
    ch.central.start()
    t0 = time.monotonic()
    wait_until(lambda: ch.agent_status()["depth"] == 0, 60, "the backlog to drain")
    drained_in = time.monotonic() - t0
    ch.wait_forwarded(3000)
    ch.assert_exactly_once(3000)
    assert drained_in < 30, drained_in  # capped back-off: draining starts within seconds
