"""The fill gate answers cylinder readers from the registry pushed down to the agent, while
the agent is cut off from the central side; every decision becomes a record that reaches
the collector once the link returns. Every answer is sealed for the reader and bound to
its request's nonce."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from collector.api import make_app
from hostlib.registry import Device
from tests.apiauth import admin_headers
from tests.conftest import SITE, Chain, wait_until
from wire import auth, topics

TODAY_SAFE = {
    "manufactured": "2020-01-01",
    "design_life_years": 15,
    "next_inspection": "2099-01-01",
}


def cylinders() -> list[dict[str, Any]]:
    base = {
        "owner": SITE,
        "entrusted": [],
        "medium": "lpg",
        "status": "in_service",
        "tare_g": 15000,
        "max_fill_g": 14500,
        **TODAY_SAFE,
    }
    return [
        {**base, "cyl": "CYL-OK-0001", "tag": "E2801160600002AA"},
        {**base, "cyl": "CYL-OLD-0002", "next_inspection": "2020-01-01"},
        {**base, "cyl": "CYL-SCRAP-003", "status": "scrapped"},
        {**base, "cyl": "CYL-ELSE-0004", "owner": "OTHER"},
    ]


class Reader:
    """A cylinder reader's side of the gate protocol: a request with a fresh nonce, then
    the answer, which must verify under the device key for that nonce."""

    def __init__(self, port: int, device: Device) -> None:
        self.dev = device.dev
        self.key = device.key
        self.answers: dict[int, dict[str, Any]] = {}
        self.got = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"reader-{self.dev}")
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(topics.terminal_cmd(self.dev), qos=1)
        time.sleep(0.3)

    def _on(self, c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        msg = json.loads(m.payload)
        if msg.get("t") == "gate":
            with self.got:
                self.answers[msg["id"]] = msg
                self.got.notify_all()

    def ask(self, req: dict[str, Any], timeout: float = 5.0) -> tuple[dict[str, Any], float]:
        nonce = secrets.token_hex(16)
        t0 = time.monotonic()
        self.c.publish(topics.terminal_gate(self.dev), json.dumps({"n": nonce, **req}), qos=1)
        with self.got:
            self.got.wait_for(lambda: req["id"] in self.answers, timeout)
        assert req["id"] in self.answers, f"no answer to {req}"
        ans = self.answers[req["id"]]
        assert auth.check_gate_answer(ans, self.dev, nonce, [self.key]), ans
        return ans, time.monotonic() - t0

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_gate_answers_offline_and_records_every_decision(
    chain_factory: Callable[..., Chain],
    tmp_path: Any,
) -> None:
    ch = chain_factory(separate_central=True)
    entries = tmp_path / "cyl.json"
    entries.write_text(json.dumps(cylinders()))
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "traceedge",
            "collector",
            "import-cylinders",
            "--config",
            str(ch.collectors[0].config),
            str(entries),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "registry version 1" in cli.stdout
    wait_until(
        lambda: ch.agent_status()["cylinder_registry_version"] == 1,
        30,
        "the registry to reach the agent",
    )
    ch.central.stop()  # cut off from the central side
    wait_until(lambda: not ch.agent_status()["uplink_connected"], 15, "the outage")
    reader = Reader(ch.broker.port, next(d for d in ch.devices if d.type == "cylinder-reader"))
    pre = {"appearance_ok": True, "residual_kpa": 100, "tare_g": 15000}
    cases = [
        ({"cyl": "CYL-OK-0001", "tag": "E2801160600002AA", "medium": "lpg", "pre": pre}, []),
        ({"cyl": "CYL-OLD-0002", "medium": "lpg", "pre": pre}, ["inspection_overdue"]),
        ({"cyl": "CYL-SCRAP-003", "pre": pre}, ["scrapped"]),
        (
            {"cyl": "CYL-ELSE-0004", "medium": "o2", "pre": pre},
            ["not_this_station", "wrong_medium"],
        ),
        ({"cyl": "CYL-NEVER-SEEN", "pre": pre}, ["unregistered"]),
        (
            {
                "cyl": "CYL-OK-0001",
                "tag": "E2801160600009FF",
                "pre": {"appearance_ok": False, "residual_kpa": 0, "tare_g": 15000},
            },
            ["registration_mismatch", "no_residual_pressure", "damaged"],
        ),
        (
            {
                "cyl": "CYL-OK-0001",
                "stage": "post",
                "post": {"reweigh_g": 30000, "leak_ok": True, "checker": "OP-5"},
            },
            ["overfilled"],
        ),
    ]
    worst = 0.0
    try:
        for i, (req, expected) in enumerate(cases, start=1):
            ans, took = reader.ask({"id": i, "operator": "OP-3", **req})
            worst = max(worst, took)
            assert ans["decision"] == ("deny" if expected else "allow"), ans
            assert ans["reasons"] == expected, ans
            assert ans["reg_ver"] == 1 and "error" not in ans, ans
        bad, _ = reader.ask({"id": 99, "cyl": "x"})
        assert bad["decision"] == "deny" and "bad request" in bad["error"]
    finally:
        reader.close()
    assert worst < 1.0, f"slowest answer took {worst:.3f} s"
    # agent status is refreshed once a second
    want = {"allow": 1, "deny": 6, "errors": 1, "refused": 0}
    wait_until(lambda: ch.agent_status()["gate"] == want, 10, f"gate counters {want}")
    st = ch.agent_status()
    assert st["waiting_by_kind"]["cylinder.check"] == 7  # recorded, waiting for the link
    ch.central.start()
    wait_until(lambda: ch.collector_stats().get("records", 0) == 7, 60, "the checks to arrive")
    assert ch.collector_stats()["gaps"] == 0
    api = TestClient(make_app(ch.store), headers=admin_headers(ch.store))
    hist = api.get("/cylinders/CYL-OK-0001").json()
    assert [e["body"]["stage"] for e in hist["events"]] == ["post", "pre", "pre"]
    assert hist["held_overfilled"] is True  # over-filled: must not leave
    assert api.get("/cylinders/CYL-NEVER-SEEN").json()["registered"] is False
    assert api.get("/cylinders/NOPE-NOPE").status_code == 404
