"""Resume at once after a central-broker restart, whatever order the agent and the
collectors reconnect in, and a collector that dies hands its share to the others at once.

Real processes throughout (Mosquitto with persistence off, so a restart forgets every
session and subscription; an agent; two collectors on the shared subscription; the fake
platform). The order is forced by holding one side (SIGSTOP) until the other holds a TCP
connection to the broker, 0.2 s more, then letting it go: with the agent first, its
batches reach a broker where nobody holds the shared subscription yet, and are dropped.
Before the collectors announced themselves, the agent waited for its ack timeout (10 s
here, as in production: about 12 s to the first record); the bound below is 5 s for a
loaded CI machine (bench/resume.py measures it: well under 1 s).
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Chain, wait_until
from traceedge.brokers import connected
from traceedge.launch import Role

FIRST_RECORD_BOUND_S = 5.0
OUTAGE_S = 6.0  # long enough for the old backoff to reach its 5 s cap
PRODUCTION_UPLINK = {"ack_timeout_s": 10.0, "backoff_initial_s": 0.2, "backoff_max_s": 5.0}


def stored(store: Path) -> int:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT value FROM counters WHERE name = 'stored'").fetchall()
    finally:
        db.close()
    return int(rows[0][0]) if rows else 0


def pid(role: Role) -> int:
    assert role.proc is not None
    return role.proc.pid


@pytest.mark.parametrize("order", ["agent-first", "collectors-first", "together"])
def test_first_record_within_seconds_of_a_broker_restart_in_any_order(
    chain_factory: Callable[..., Chain], order: str
) -> None:
    ch = chain_factory(separate_central=True, collectors=2, uplink_overrides=PRODUCTION_UPLINK)
    fleet = ch.fleet(resend_after_s=3.0)
    assert fleet.run(300, drain_timeout_s=60)["pending"] == 0
    wait_until(lambda: stored(ch.store) == 300, 30, "the first records stored")

    ch.central.stop()
    down = time.monotonic()
    out = fleet.run(2000, drain_timeout_s=60)  # safe at the edge: acked by the agent
    assert out["pending"] == 0, out
    time.sleep(max(OUTAGE_S - (time.monotonic() - down), 0.0))
    assert stored(ch.store) == 300 and ch.agent_status()["depth"] == 2000

    held = {"agent-first": ch.collectors, "collectors-first": [ch.agent]}.get(order, [])
    first_up = [r for r in [ch.agent, *ch.collectors] if r not in held]
    for r in held:
        assert r.proc is not None
        r.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        ch.central.start()
        if held:
            wait_until(
                lambda: all(connected(pid(r), ch.central.port) for r in first_up),
                10,
                f"{order}: the first side to connect",
                every=0.01,
            )
            time.sleep(0.2)
    finally:
        for r in held:
            assert r.proc is not None
            r.proc.send_signal(signal.SIGCONT)
    wait_until(lambda: stored(ch.store) > 300, 30, "a record stored after the restart", 0.01)
    first = time.monotonic() - t0
    assert first < FIRST_RECORD_BOUND_S, f"{order}: first record after {first:.2f} s"

    ch.wait_forwarded(2300)
    ch.assert_exactly_once(2300)
    if order == "agent-first":  # its first batches found nobody: resent when one appeared
        wait_until(lambda: ch.agent_status()["collector_resends"] > 0, 5, "the status")


def test_a_dead_collector_drops_out_of_the_shared_subscription_at_once(
    chain_factory: Callable[..., Chain],
) -> None:
    """Clean sessions: a persistent session would stay in the shared group after its
    process died and the broker would queue every other batch for it (Mosquitto 2.0), each
    costing the agent an ack timeout (10 s) before a resend, itself a coin toss."""
    ch = chain_factory(collectors=2, uplink_overrides=PRODUCTION_UPLINK)
    ch.collectors[1].kill9()
    out = ch.fleet().run(3000, drain_timeout_s=60)
    assert out["pending"] == 0, out
    t0 = time.monotonic()
    wait_until(lambda: stored(ch.store) == 3000, 30, "every record stored by the survivor")
    assert time.monotonic() - t0 < FIRST_RECORD_BOUND_S
    assert ch.agent_status()["resends"] == 0  # nothing waited for an ack timeout
    ch.wait_forwarded(3000)
    ch.assert_exactly_once(3000)
