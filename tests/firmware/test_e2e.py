"""End to end: a firmware app under the real MicroPython interpreter (WebAssembly in
Node), its own MQTT client's bytes crossing a real TCP connection (Node ``net``) to a real
Mosquitto, a real edge agent (MAC-checked intake, outbox, uplink) and a real collector
(and the fake city platform). Every record the app made is stored once, unchanged.

The elevator run restarts the broker (persistence off) while records are in flight: the
terminal reconnects with its back-off and resends from its flash log. The cylinder run
asks the real agent's fill gate (its registry pushed down by ``collector
import-cylinders``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SITE
from tests.firmware.e2e_host import (
    check_warehouse_run,
    counters,
    push_licence,
    push_registry,
    run_app,
    stored,
)
from traceedge.provision import new_device


def test_elevator_box_through_mosquitto_agent_and_collector(chain: Any) -> None:
    ch = chain()
    made, out = run_app(ch, "elevator", "elevator-box")
    kinds = [r["kind"] for r in made]
    assert kinds.count("elevator.fault") == 6  # power, alarm, door open while moving
    assert kinds.count("elevator.maintenance") == 2 and kinds.count("elevator.status") >= 5
    done = next(x for x in out if x.startswith("E2E done"))
    assert " connects=1 " not in done, "the broker restart must have forced a reconnect"
    n = counters(out)
    assert n["acks"] > 0 and n["forged_acks"] == 0, "the agent's sealed acks verify"
    dev = str(made[0]["dev"])
    ch.wait_forwarded(len(made), timeout=30)
    assert stored(ch, dev) == made, "stored once each, byte for byte the records made"
    ch.assert_exactly_once(len(made))


def test_cylinder_reader_asks_the_real_fill_gate(chain: Any, tmp_path: Path) -> None:
    ch = chain()
    push_registry(
        ch,
        tmp_path,
        [
            {
                "cyl": "3301061512310042",
                "tag": "E28011700000020A1B2C3D4E",
                "owner": SITE,
                "entrusted": [],
                "medium": "lpg",
                "manufactured": "2020-05-01",
                "design_life_years": 15,
                "next_inspection": "2029-05-01",
                "status": "in_service",
                "tare_g": 15200,
                "max_fill_g": 15000,
            }
        ],
    )
    made, out = run_app(ch, "cylinder", "cylinder-reader")
    assert counters(out)["gate_forged"] == 0, "the agent's sealed answers verify"
    assert [(r["kind"], r["body"].get("stage")) for r in made] == [
        ("cylinder.check", "pre"),
        ("cylinder.fill", None),
        ("cylinder.check", "post"),
    ]
    assert [r["body"].get("decision") for r in made] == ["allow", None, "allow"]
    assert made[0]["body"]["reg_ver"] == 1 and made[1]["body"]["actual_net_g"] >= 14400
    dev = str(made[0]["dev"])
    # the agent recorded its own two decisions (gateway identity) before answering
    ch.wait_forwarded(len(made) + 2, timeout=30)
    assert stored(ch, dev) == made
    ch.assert_exactly_once(len(made) + 2)


def test_warehouse_handheld_asks_the_real_dispatch_gate(chain: Any, tmp_path: Path) -> None:
    """The handheld receives two items by tag, dispatches one to a licensed buyer (the real
    agent's gate allows it: the goods.in reached its stock, the licence was pushed down by
    ``collector import-licences``), then tries the same item again: refused, not recorded."""
    whs = new_device("warehouse-terminal", SITE)
    ch = chain(extra_devices=[whs])
    push_licence(ch, tmp_path)
    made, out = run_app(ch, "warehouse", "warehouse-terminal", device=whs)
    check_warehouse_run(ch, made, out)
