"""The gateway ↔ centre hop with the broker wide open: an attacker who can subscribe and
publish anything cannot make an agent delete its outbox, apply a registry or stop list the
centre did not sign, or poison the status the collector keeps; every refusal is counted.

Real Mosquitto (anonymous, no ACL), the real agent and collector as processes, the
attacker a plain paho client.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from collector.store import site_report
from hostlib.registry import load_identity
from hostlib.sqlite import open_ro
from tests.conftest import SITE, Chain, wait_until
from wire import auth, topics
from wire.batch import decode_batch
from wire.command import sign_command


def attacker(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def stop(c: mqtt.Client) -> None:
    c.loop_stop()
    c.disconnect()


def test_an_impostor_collector_cannot_make_the_agent_delete_anything(
    chain_factory: Callable[..., Chain],
) -> None:
    """The impostor joins the collectors' shared subscription, so it receives about half of
    the batches, and answers each with acks: the old unsealed form, one sealed with a key it
    made up, and a copy of a genuine ack it saw, re-pointed at the batch it stole."""
    ch = chain_factory()
    genuine: list[bytes] = []
    stolen: list[str] = []
    imp = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="impostor")

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        if m.topic.endswith("/ack"):
            genuine.append(bytes(m.payload))
            return
        b = str(decode_batch(m.payload)["b"])
        stolen.append(b)
        ack_topic = topics.site_ack(SITE)
        c.publish(ack_topic, json.dumps({"b": b, "stored": 1, "dup": 0, "bad": 0}), qos=1)
        fake = auth.batch_ack(SITE, "GW-X", b, auth.batch_digest(m.payload), 1, 0, 0, b"k" * 32)
        c.publish(ack_topic, fake, qos=1)
        if genuine:
            replay = json.loads(genuine[-1])
            replay["b"] = b
            c.publish(ack_topic, json.dumps(replay), qos=1)

    imp.on_message = on_message
    imp.connect("127.0.0.1", ch.central.port)
    imp.loop_start()
    imp.subscribe(topics.shared_up("collectors"), qos=1)
    imp.subscribe(topics.site_ack(SITE), qos=1)
    time.sleep(0.5)
    try:
        out = ch.fleet().run(1500, drain_timeout_s=120)
        assert out["pending"] == 0
        ch.wait_forwarded(1500, timeout=180)
    finally:
        stop(imp)
    assert stolen, "the impostor received no batch: the attack did not happen"
    ch.assert_exactly_once(1500)
    st = ch.agent_status()
    assert st["depth"] == 0
    assert st["refused"]["forged_acks"] + st["refused"]["bad_acks"] >= len(stolen), st


def _import_cylinders(ch: Chain, path: Path) -> str:
    config = str(ch.collectors[0].config)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "traceedge",
            "collector",
            "import-cylinders",
            "--config",
            config,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    return cli.stdout


def _cylinder(cyl: str, status: str) -> dict[str, Any]:
    return {
        "cyl": cyl,
        "owner": SITE,
        "entrusted": [],
        "medium": "lpg",
        "status": status,
        "tare_g": 15000,
        "max_fill_g": 14500,
        "manufactured": "2020-01-01",
        "design_life_years": 15,
        "next_inspection": "2099-01-01",
    }


def test_forged_commands_are_refused_and_genuine_ones_still_apply(
    chain_factory: Callable[..., Chain], tmp_path: Path
) -> None:
    ch = chain_factory()
    entries = tmp_path / "cyl.json"
    entries.write_text(json.dumps([_cylinder("CYL-SCRAP-1", "scrapped")]))
    assert "registry version 1" in _import_cylinders(ch, entries)
    wait_until(lambda: ch.agent_status()["cylinder_registry_version"] == 1, 30, "registry v1")

    forged_registry = {
        "type": "cylinder_registry",
        "site": SITE,
        "version": 10**12,
        "expires": int(time.time() * 1000) + 3_600_000,
        "cylinders": [_cylinder("CYL-SCRAP-1", "in_service")],
    }
    stranger_key = Ed25519PrivateKey.generate()
    a = attacker(ch.central.port, "forger")
    cmd = topics.site_cmd(SITE)
    try:
        # unsigned, as before wire version 2; signed by a key that is not the centre's; a
        # genuine-looking stop list; and an expired command (signed by the stranger too)
        a.publish(cmd, json.dumps(forged_registry), qos=1, retain=True)
        a.publish(cmd, sign_command(forged_registry, stranger_key), qos=1, retain=True)
        stop_list = {
            "type": "stop_list",
            "site": SITE,
            "version": 10**12,
            "expires": int(time.time() * 1000) + 3_600_000,
            "batches": [{"batch_id": "B-NOT-STOPPED", "reason": "forged", "at": 0}],
        }
        a.publish(cmd, json.dumps(stop_list), qos=1)
        a.publish(cmd, sign_command(stop_list, stranger_key), qos=1)
        a.publish(cmd, b"\xff" * 100 + b"[" * 10_000, qos=1)
        wait_until(
            lambda: ch.agent_status()["refused"].get("commands_rejected", 0) >= 5,
            20,
            "the forgeries refused",
        )
    finally:
        stop(a)
    st = ch.agent_status()
    assert st["cylinder_registry_version"] == 1, st
    assert st["refused"]["commands_rejected_signature"] >= 4, st
    # the next genuine push still applies: no forged version blocks it
    entries.write_text(
        json.dumps([_cylinder("CYL-SCRAP-1", "scrapped"), _cylinder("CYL-OK-0002", "in_service")])
    )
    assert "registry version 2" in _import_cylinders(ch, entries)
    wait_until(lambda: ch.agent_status()["cylinder_registry_version"] == 2, 30, "registry v2")
    assert ch.agent_status()["cylinders_known"] == 2


def test_status_that_does_not_verify_is_not_kept(chain_factory: Callable[..., Chain]) -> None:
    ch = chain_factory()
    gw = load_identity(ch.trust.identity)
    a = attacker(ch.central.port, "status-forger")
    t = topics.site_status(SITE)
    try:
        a.publish(t, json.dumps({"site": SITE, "depth": 999_999}), qos=1)  # unsealed
        a.publish(t, auth.status(SITE, gw.dev, {"depth": 999_999}, b"k" * 32), qos=1)
        a.publish(t, auth.status(SITE, "GW-NOBODY", {"depth": 999_999}, gw.key), qos=1)

        def refused() -> dict[str, int]:
            procs = ch.collector_stats().get("processes", {})
            return next(iter(procs.values()), {}).get("status_refused", {}) if procs else {}

        wait_until(lambda: sum(refused().values()) >= 3, 30, "three forged statuses refused")
    finally:
        stop(a)
    assert refused() == {"type": 1, "mac": 1, "unknown_gateway": 1}
    # the agent's own sealed report is what the collector keeps
    wait_until(lambda: any(s.get("site") == SITE for s in _sites(ch)), 30, "genuine status")
    assert all(s.get("depth") != 999_999 for s in _sites(ch))


def _sites(ch: Chain) -> list[dict[str, Any]]:
    with open_ro(ch.store) as db:
        return site_report(db)
