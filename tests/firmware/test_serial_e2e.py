"""The must-show for the wired terminals: the firmware's serial-link terminal (te.slink,
its elevator app, flash log and sender) under the real MicroPython interpreter (WebAssembly
in Node), its UART bytes crossing a real pty (Node opens the device file), a relay to a
second real pty that corrupts one record frame and drops another, and the agent's
``serial_link`` source (pyserial) on the far end, then the real agent, Mosquitto, collector
and platform. Every record the app made is stored once, byte for byte. The warehouse
handheld, wired the same way, asks the agent's real dispatch gate over the link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drivers.codecs import slink
from tests.conftest import SITE, wait_until
from tests.firmware.e2e_host import check_warehouse_run, counters, push_licence, run_app, stored
from tests.firmware.ptyrelay import PtyRelay
from traceedge.provision import new_device


def test_firmware_serial_terminal_over_a_real_pty_with_a_corrupted_and_a_dropped_frame(
    chain: Any, tmp_path: Path
) -> None:
    dev = new_device("elevator-box", SITE)
    link = tmp_path / "ttyGW0"
    relay = PtyRelay(link, corrupt={2}, drop={4}).start()
    try:
        source = {
            "kind": "serial_link",
            "name": "elevator-uart",
            "port": str(link),
            "devices": [dev.dev],
            "rto_ms": 200,
        }
        ch = chain(sources=[source], extra_devices=[dev])
        made, out = run_app(
            ch, "elevator_serial", "elevator-box", device=dev, port=relay.terminal.path
        )
    finally:
        relay.stop()
    assert relay.corrupted == 1 and relay.dropped == 1, (relay.corrupted, relay.dropped)
    kinds = [r["kind"] for r in made]
    assert kinds.count("elevator.fault") >= 2 and "elevator.status" in kinds, kinds
    n = counters(out)
    assert n["acks"] > 0 and n["forged_acks"] == 0, "the agent's sealed acks verify"
    s = counters(out, "E2E serial")
    assert s["retransmits"] >= 2, s  # the spoiled frames were sent again
    ch.wait_forwarded(len(made), timeout=30)
    assert stored(ch, dev.dev) == made, "stored once each, byte for byte the records made"
    ch.assert_exactly_once(len(made))


def test_firmware_serial_terminal_across_unplug_and_agent_kill9(chain: Any, tmp_path: Path) -> None:
    """The same wiring; mid-run the gateway's cable is pulled and plugged back (its pty
    hangs up, its path disappears, a new pty appears behind it), then the agent is killed
    with SIGKILL and started again while the terminal is sending. Nothing is lost (the
    flash log keeps every record until its sealed ack) and nothing is stored twice."""
    dev = new_device("elevator-box", SITE)
    link = tmp_path / "ttyGW0"
    relay = PtyRelay(link, corrupt=set(), drop=set()).start()
    try:
        source = {
            "kind": "serial_link",
            "name": "elevator-uart",
            "port": str(link),
            "devices": [dev.dev],
            "rto_ms": 200,
            "backoff_max_s": 0.5,
        }
        ch = chain(sources=[source], extra_devices=[dev])
        made, out = run_app(
            ch,
            "elevator_serial",
            "elevator-box",
            device=dev,
            on_mark={"unplug": relay.unplug, "replug": relay.replug},
            port=relay.terminal.path,
            marks=[[700, "unplug"], [1900, "replug"], [2300, "kill-agent"]],
        )
    finally:
        relay.stop()
    assert "E2E unplug" in out and "E2E kill-agent" in out
    assert ch.agent.starts == 2
    s = counters(out, "E2E serial")
    assert s["retransmits"] >= 1, s  # frames sent into the pulled cable went again
    n = counters(out)
    assert n["acks"] > 0 and n["forged_acks"] == 0
    ch.wait_forwarded(len(made), timeout=30)
    assert stored(ch, dev.dev) == made, "stored once each, byte for byte the records made"
    ch.assert_exactly_once(len(made))


def test_warehouse_handheld_asks_the_dispatch_gate_over_the_serial_link(
    chain: Any, tmp_path: Path
) -> None:
    """The warehouse handheld firmware wired to its gateway (no MQTT at all): its goods.in
    over the link, then its sealed dispatch request as a DISPATCH frame to the agent's
    source, which hands it to the real dispatch gate as t/{dev}/dispatch; the sealed allow
    comes back as a CMD frame and the goods.out is recorded with its gate_seq; the same item
    again is refused with the reason (already_dispatched). On the way the first request
    frame is corrupted and the second dropped: the link sends each again, and the gate
    decides each request once."""
    whs = new_device("warehouse-terminal", SITE)
    link = tmp_path / "ttyGW0"
    relay = PtyRelay(link, corrupt={1}, drop={2}, kind=slink.DISPATCH).start()
    try:
        source = {
            "kind": "serial_link",
            "name": "warehouse-uart",
            "port": str(link),
            "devices": [whs.dev],
            "rto_ms": 200,
        }
        ch = chain(sources=[source], extra_devices=[whs])
        push_licence(ch, tmp_path)
        made, out = run_app(ch, "warehouse_serial", "warehouse-terminal", device=whs,
                            port=relay.terminal.path)  # fmt: skip
    finally:
        relay.stop()
    assert relay.corrupted == 1 and relay.dropped == 1, (list(relay.seen), out[-40:])
    check_warehouse_run(ch, made, out)
    assert counters(out, "E2E serial")["retransmits"] >= 2
    want = {"allow": 1, "deny": 1, "errors": 0, "refused": 0}
    wait_until(lambda: ch.agent_status()["dispatch"] == want, 10, "both decisions in the status")
    (src,) = ch.agent_status()["sources"]
    c = src["counters"]
    assert c["dispatches"] == 2 and c["records"] >= 2 and c["foreign_dispatches"] == 0, c
