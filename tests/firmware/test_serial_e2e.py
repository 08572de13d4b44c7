"""The must-show for the wired terminals: the firmware's serial-link terminal (te.slink,
its elevator app, flash log and sender) under the real MicroPython interpreter (WebAssembly
in Node), its UART bytes crossing a real pty (Node opens the device file), a relay to a
second real pty that corrupts one record frame and drops another, and the agent's
``serial_link`` source (pyserial) on the far end, then the real agent, Mosquitto, collector
and platform. Every record the app made is stored once, byte for byte."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SITE
from tests.firmware.e2e_host import counters, run_app, stored
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
