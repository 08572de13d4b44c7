"""Silent links, racing duplicates, a full outbox, and collectors sharing the load."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import SITE, Chain, make_chain, stop_chain, wait_until
from tests.proxy import SilentProxy
from traceedge.launch import Role, agent_config


def test_silent_link_then_reset_loses_nothing(tmp_path: Path) -> None:
    """The collector side freezes (half-open TCP): publishes 'return' but nothing arrives.
    Only the collector's ack deletes; after the reset every unacked batch goes again."""
    ch = make_chain(tmp_path / "c", separate_central=True)
    try:
        proxy = SilentProxy(ch.central.port).start()
        # re-point the agent's uplink through the proxy
        ch.agent.stop()
        acfg = agent_config(
            tmp_path / "agent2.toml",
            SITE,
            ch.root / "agent",
            ch.broker.port,
            proxy.port,
            devices=ch.trust.agent_devices,
            identity=ch.trust.identity,
            command_key=ch.trust.command_pub,
            uplink={"ack_timeout_s": 3.0},
        )
        ch.agent = Role("agent", acfg, tmp_path / "agent2.log").start()
        ch.wait_ready()
        wait_until(lambda: ch.agent_status()["uplink_connected"], 20, "uplink via proxy")
        fleet = ch.fleet()
        first = fleet.run(500, drain_timeout_s=60)
        ch.wait_forwarded(500)
        # every ack of the first run back at the agent, so the outage holds only new records
        wait_until(lambda: ch.agent_status()["depth"] == 0, 30, "the first run's acks")
        proxy.freeze()
        second = fleet.run(1500, drain_timeout_s=60)
        assert first["pending"] == 0 and second["pending"] == 0
        time.sleep(4)
        st = ch.agent_status()
        assert st["depth"] == 1500, st  # published into the void, still kept
        assert ch.collector_stats()["records"] == 500
        proxy.reset()
        ch.wait_forwarded(2000, timeout=90)
        ch.assert_exactly_once(2000)
        proxy.stop()
    finally:
        stop_chain(ch)


def test_duplicates_without_faults_reach_the_platform_once(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory()
    # terminals resend almost at once, racing the agent's acks: plenty of duplicates
    fleet = ch.fleet(resend_after_s=0.01)
    out = fleet.run(2000, rate=1000, drain_timeout_s=60)
    assert out["pending"] == 0
    assert out["resent"] > 100, out
    ch.wait_forwarded(2000)
    ch.assert_exactly_once(2000)
    c = ch.collector_stats()
    a = ch.agent_status()["counters"]
    assert a["duplicates"] + c["duplicates"] > 0


def test_outbox_full_thins_samples_keeps_protected_refuses_loudly(
    chain_factory: Callable[..., Chain],
) -> None:
    ch = chain_factory(separate_central=True, agent_overrides={"outbox_max_bytes": 400_000})
    ch.central.stop()
    elevators = [d for d in ch.devices if d.type == "elevator-box"]
    markets = [d for d in ch.devices if d.type == "market-scale"]
    sampler = ch.fleet(devices=elevators, resend_after_s=2.0)
    sampler.run(600, drain_timeout_s=30)  # mostly status samples
    sellers = ch.fleet(devices=markets, resend_after_s=2.0)
    done: dict[str, int] = {}
    t = threading.Thread(target=lambda: done.update(sellers.run(600, drain_timeout_s=240)))
    t.start()
    wait_until(lambda: ch.agent_status()["alarms"], 60, "the outbox_full alarm")
    st = ch.agent_status()
    assert st["counters"]["evicted"] > 0 and st["counters"]["refused"] > 0, st
    assert st["waiting_by_kind"].get("elevator.status", 0) < 400
    assert sellers.pending() > 0  # refused records stay with their terminals
    cli = subprocess.run(
        [sys.executable, "-m", "traceedge", "agent", "status", "--config", str(ch.agent.config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    assert "ALARM" in cli.stdout and "outbox_full" in cli.stdout
    ch.central.start()
    t.join(240)
    assert done["pending"] == 0, done
    wait_until(lambda: not ch.agent_status()["alarms"], 60, "the alarm to clear")
    wait_until(lambda: ch.agent_status()["depth"] == 0, 60, "drain")
    c = ch.collector_stats()
    evicted = ch.agent_status()["counters"]["evicted"]
    # every protected record arrived; the only missing ones are the thinned samples, seen
    # as gaps except those after a device's last stored record (nothing follows to show them)
    assert c["records"] + evicted == 1200, (c, evicted)
    assert 0 < c["gaps"] <= evicted, (c, evicted)
    import sqlite3

    db = sqlite3.connect(ch.store)
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind").fetchall())
    db.close()
    protected = sum(v for k, v in kinds.items() if k != "elevator.status")
    sampled = kinds.get("elevator.status", 0)
    assert protected + sampled + evicted == 1200


def test_two_collectors_share_the_load(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory(collectors=2)
    out = ch.fleet().run(4000, drain_timeout_s=60)
    assert out["pending"] == 0
    ch.wait_forwarded(4000)
    ch.assert_exactly_once(4000)

    # heartbeats are written once a second
    def both_worked() -> bool:
        procs = ch.collector_stats()["processes"]
        return len(procs) == 2 and all(p["batches"] > 0 for p in procs.values())

    wait_until(both_worked, 10, "both collectors to report batches")
